/* SPDX-License-Identifier: MIT */
#include "bench-util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double bench_now_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

double bench_memcpy_mbs(size_t size, int reps)
{
        uint8_t *a = malloc(size), *b = malloc(size);
        if (!a || !b) {
                free(a);
                free(b);
                return 0;
        }
        memset(a, 1, size);
        memset(b, 2, size);
        memcpy(b, a, size);
        double t0 = bench_now_us();
        for (int i = 0; i < reps; i++) {
                a[(size_t)i % size] = (uint8_t)i; /* the copy cannot be hoisted */
                memcpy(b, a, size);
        }
        double dt = bench_now_us() - t0;
        volatile uint8_t sink = b[size / 2];
        (void)sink;
        free(a);
        free(b);
        return (double)size * reps / dt;
}

int bench_open(harness *h, const char *class_name, uint32_t type, tether_session **ret_s, tether_connect **ret_c)
{
        /* The drivers measured are the ones this build made, unless told. */
        setenv("TETHER_DRIVERS", BENCH_BUNDLES, 0);
        setenv("TETHER_DRIVERHOST", BENCH_DRIVERHOST, 0);
        setenv("TETHER_SIM_SCOPE", BENCH_SIM_SCOPE, 0);
        if (harness_start(h) != 0) {
                fprintf(stderr, "bench: cannot start tetherd (set TETHERD)\n");
                return -1;
        }
        tether_value *m = NULL;
        uint64_t id = 0;
        *ret_s = NULL;
        *ret_c = NULL;
        tether_ret_t r = tether_service_matching(class_name, &m);
        if (r == TETHER_SUCCESS)
                r = tether_session_open(h->sock, ret_s);
        if (r == TETHER_SUCCESS)
                r = tether_get_matching_service(*ret_s, m, &id);
        if (r == TETHER_SUCCESS)
                r = tether_service_open(*ret_s, id, type, 0, ret_c);
        tether_value_unref(m);
        if (r != TETHER_SUCCESS) {
                fprintf(stderr, "bench: cannot open %s: %s\n", class_name, tether_strerror(r));
                tether_session_close(*ret_s);
                harness_stop(h);
                return -1;
        }
        return 0;
}

int bench_close(harness *h, tether_session *s, tether_connect *c)
{
        tether_service_close(c);
        tether_session_close(s);
        return harness_stop(h) == 0 ? 0 : 1;
}
