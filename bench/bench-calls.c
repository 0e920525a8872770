/* SPDX-License-Identifier: MIT */
/*
 * N scalar calls (EXAMPLE_ADD) to the example driver of a running tetherd,
 * and nothing else: what bench/callgrind-call.sh runs under callgrind, on
 * both ends, to count the instructions one call costs. With "open", N
 * opens and closes of a connection instead. Not a test.
 * Usage: bench-calls SOCKET N [open]
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tether/tether.h>

#include "example/example.h"

int main(int argc, char **argv)
{
        if (argc != 3 && !(argc == 4 && !strcmp(argv[3], "open"))) {
                fprintf(stderr, "usage: bench-calls SOCKET N [open]\n");
                return 2;
        }
        long n = atol(argv[2]);
        bool opens = argc == 4;
        tether_session *s = NULL;
        tether_connect *c = NULL;
        tether_value *m = NULL;
        uint64_t id = 0;
        tether_ret_t r = tether_service_matching("ExampleDriver", &m);
        if (r == TETHER_SUCCESS)
                r = tether_session_open(argv[1], &s);
        if (r == TETHER_SUCCESS)
                r = tether_get_matching_service(s, m, &id);
        if (r == TETHER_SUCCESS)
                r = tether_service_open(s, id, EXAMPLE_CLIENT, 0, &c);
        tether_value_unref(m);
        uint64_t in[2] = { 1, 2 }, out = 0;
        for (long i = 0; opens && r == TETHER_SUCCESS && i < n; i++) {
                tether_connect *k = NULL;
                r = tether_service_open(s, id, EXAMPLE_CLIENT, 0, &k);
                if (r == TETHER_SUCCESS)
                        r = tether_service_close(k);
        }
        for (long i = 0; !opens && r == TETHER_SUCCESS && i < n; i++) {
                uint32_t k = 1;
                r = tether_call_scalar_method(c, EXAMPLE_ADD, in, 2, &out, &k);
                if (r == TETHER_SUCCESS && out != 3)
                        r = TETHER_ERR_INTERNAL;
        }
        if (r != TETHER_SUCCESS)
                fprintf(stderr, "bench-calls: %s\n", tether_strerror(r));
        tether_service_close(c);
        tether_session_close(s);
        return r == TETHER_SUCCESS ? 0 : 1;
}
