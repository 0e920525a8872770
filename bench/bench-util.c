/* SPDX-License-Identifier: MIT */
#include "bench-util.h"

#include <stdint.h>
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
