/* SPDX-License-Identifier: MIT */
/*
 * For the tools tests: makes the example driver publish or remove an
 * ExampleDeviceNub, which ExampleDevice then matches, so a shell test can
 * cause arrivals and removals.
 *   example-devices publish UNIT     prints the nub's id
 *   example-devices remove NUB-ID
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
        if (!publish && !(argc == 3 && !strcmp(argv[1], "remove"))) {
                fprintf(stderr, "usage: example-devices publish UNIT | remove NUB-ID\n");
                return 2;
        }
        uint64_t arg = strtoull(argv[2], NULL, 0), nub = 0;
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
        if (r == TETHER_SUCCESS && publish)
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
