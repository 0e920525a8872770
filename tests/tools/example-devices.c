/* SPDX-License-Identifier: MIT */
/*
 * For the tools tests: makes the example driver publish or remove an
 * ExampleDeviceNub, which ExampleDevice then matches, so a shell test can
 * cause arrivals and removals.
 *   example-devices publish UNIT     prints the nub's id
 *   example-devices remove NUB-ID
 *   example-devices hold             opens a connection, says "holding", and
 *                                    calls again once stdin ends, printing
 *                                    "after unload: RESULT" (bundle unloads)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tether/tether.h>

#include "example/example.h"

int main(int argc, char **argv)
{
        bool publish = argc == 3 && !strcmp(argv[1], "publish");
        bool hold = argc == 2 && !strcmp(argv[1], "hold");
        if (!publish && !hold && !(argc == 3 && !strcmp(argv[1], "remove"))) {
                fprintf(stderr, "usage: example-devices publish UNIT | remove NUB-ID | hold\n");
                return 2;
        }
        uint64_t arg = hold ? 0 : strtoull(argv[2], NULL, 0), nub = 0;
        tether_session *s = NULL;
        tether_value *m = NULL;
        tether_connect *c = NULL;
        uint64_t svc = 0;
        uint32_t one = 1;
        tether_ret_t r = tether_session_open(NULL, &s);
        if (r == TETHER_SUCCESS)
                r = tether_service_matching("ExampleDriver", &m);
        if (r == TETHER_SUCCESS)
                r = tether_get_matching_service(s, m, &svc);
        if (r == TETHER_SUCCESS)
                r = tether_service_open(s, svc, EXAMPLE_CLIENT, 0, &c);
        if (r == TETHER_SUCCESS && hold) {
                uint64_t in[2] = { 2, 3 }, sum = 0;
                r = tether_call_scalar_method(c, EXAMPLE_ADD, in, 2, &sum, &one);
                printf("holding\n");
                fflush(stdout);
                while (r == TETHER_SUCCESS && getchar() != EOF)
                        ;
                r = tether_call_scalar_method(c, EXAMPLE_ADD, in, 2, &sum, &one);
                printf("after unload: %s\n", tether_ret_name(r));
                r = TETHER_SUCCESS;
        } else if (r == TETHER_SUCCESS && publish)
                r = tether_call_scalar_method(c, EXAMPLE_PUBLISH_DEVICE, &arg, 1, &nub, &one);
        else if (r == TETHER_SUCCESS)
                r = tether_call_scalar_method(c, EXAMPLE_REMOVE_DEVICE, &arg, 1, NULL, NULL);
        if (c)
                tether_service_close(c);
        tether_value_unref(m);
        tether_session_close(s);
        if (r != TETHER_SUCCESS) {
                fprintf(stderr, "example-devices: %s\n", tether_strerror(r));
                return 1;
        }
        if (publish)
                printf("0x%" PRIx64 "\n", nub);
        return 0;
}
