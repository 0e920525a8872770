/* SPDX-License-Identifier: MIT */
/*
 * first-client: reads FirstDriver's thermometer, through both channels: a
 * property (Units) from the registry, readings through a connection.
 *     first-client [COUNT]      one reading, then COUNT more (default 4)
 */
#include <stdio.h>
#include <stdlib.h>

#include <tether/tether.h>

#include "first.h"

static int fail(const char *what, tether_ret_t r)
{
        fprintf(stderr, "first-client: %s: %s (%s)\n", what, tether_ret_name(r), tether_strerror(r));
        return 1;
}

int main(int argc, char **argv)
{
        uint64_t count = argc > 1 ? strtoull(argv[1], NULL, 10) : 4;
        tether_session *s = NULL;
        tether_ret_t r = tether_session_open(NULL, &s); /* $TETHER_SOCKET, else /run/tether/tetherd.sock */
        if (r != TETHER_SUCCESS)
                return fail("cannot reach tetherd", r);

        /* Find the service, and read a property: no connection needed. */
        tether_value *match = NULL, *units = NULL;
        uint64_t id = 0;
        char u[16] = "?";
        r = tether_service_matching("FirstDriver", &match);
        if (r == TETHER_SUCCESS)
                r = tether_get_matching_service(s, match, &id);
        tether_value_unref(match);
        if (r != TETHER_SUCCESS)
                return fail("no FirstDriver", r);
        const char *text = NULL;
        if (tether_registry_entry_get_property(s, id, "Units", &units) == TETHER_SUCCESS &&
            tether_value_get_string(units, &text) == TETHER_SUCCESS)
                snprintf(u, sizeof(u), "%s", text);
        tether_value_unref(units); /* u is a copy: no return below leaves the value behind */

        /* A connection: a user client of its own in the driver. */
        tether_connect *c = NULL;
        if ((r = tether_service_open(s, id, 0, 0, &c)) != TETHER_SUCCESS)
                return fail("open", r);
        uint64_t one = 0;
        uint32_t n = 1;
        if ((r = tether_call_scalar_method(c, FIRST_READ, NULL, 0, &one, &n)) != TETHER_SUCCESS)
                return fail("read", r);
        printf("reading: %.3f %s\n", (int64_t)one / 1000.0, u);

        int32_t many[FIRST_MAX_READINGS];
        size_t size = sizeof(many); /* in: room; out: bytes the driver wrote */
        r = tether_call_method(c, FIRST_READ_MANY, &count, 1, NULL, 0, NULL, NULL, many, &size);
        if (r != TETHER_SUCCESS)
                return fail("readMany", r);
        printf("%zu readings:", size / sizeof(many[0]));
        for (size_t i = 0; i < size / sizeof(many[0]); i++)
                printf(" %.3f", many[i] / 1000.0);
        printf(" %s\n", u);

        tether_service_close(c);
        tether_session_close(s);
        return 0;
}
