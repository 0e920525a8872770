/* SPDX-License-Identifier: MIT */
/*
 * For tests/tools/test-sdk.sh: calls examples/hello-driver's HelloDriver.
 *   hello-client        opens a connection, calls add(40, 2) and greet,
 *                       prints "add(40, 2) = N" and "greet = "TEXT""
 *   hello-client hold   the same, then "holding"; once stdin ends, calls add
 *                       again and prints "after unload: RESULT"
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <tether/tether.h>

/* examples/hello-driver/hello.c's selectors. */
enum { HELLO_ADD, HELLO_GREET };

static int fail(const char *what, tether_ret_t r)
{
        fprintf(stderr, "hello-client: %s: %s (%s)\n", what, tether_strerror(r), tether_ret_name(r));
        return 1;
}

int main(int argc, char **argv)
{
        bool hold = argc == 2 && !strcmp(argv[1], "hold");
        if (argc != 1 && !hold) {
                fprintf(stderr, "usage: hello-client [hold]\n");
                return 2;
        }
        tether_session *s = NULL;
        tether_value *m = NULL;
        tether_connect *c = NULL;
        uint64_t svc = 0;
        tether_ret_t r = tether_session_open(NULL, &s);
        if (r != TETHER_SUCCESS)
                return fail("cannot reach tetherd", r);
        r = tether_service_matching("HelloDriver", &m);
        if (r == TETHER_SUCCESS)
                r = tether_get_matching_service(s, m, &svc);
        tether_value_unref(m);
        if (r != TETHER_SUCCESS)
                return fail("no HelloDriver", r);
        if ((r = tether_service_open(s, svc, 0, 0, &c)) != TETHER_SUCCESS)
                return fail("open", r);

        uint64_t in[2] = { 40, 2 }, sum = 0;
        uint32_t n_out = 1;
        if ((r = tether_call_scalar_method(c, HELLO_ADD, in, 2, &sum, &n_out)) != TETHER_SUCCESS)
                return fail("add", r);
        printf("add(40, 2) = %" PRIu64 "\n", sum);
        char greeting[64];
        size_t size = sizeof(greeting);
        r = tether_call_method(c, HELLO_GREET, NULL, 0, NULL, 0, NULL, NULL, greeting, &size);
        if (r != TETHER_SUCCESS)
                return fail("greet", r);
        printf("greet = \"%.*s\"\n", (int)size, greeting);

        if (hold) {
                printf("holding\n");
                fflush(stdout);
                while (getchar() != EOF)
                        ;
                r = tether_call_scalar_method(c, HELLO_ADD, in, 2, &sum, &n_out);
                printf("after unload: %s\n", tether_ret_name(r));
        }
        tether_service_close(c);
        tether_session_close(s);
        return 0;
}
