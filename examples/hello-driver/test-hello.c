/* SPDX-License-Identifier: MIT */
/*
 * A unit test of HelloDriver, with no tetherd running: tether's driver test
 * harness (pkg-config tether-driver-test) loads the bundle into this
 * process, starts the driver on a nub made here, and this test talks to it
 * through libtether exactly as an application would.
 *
 *     test-hello BUNDLE      BUNDLE: hello.so, or the installed bundle
 *                            folder org.example.hello.tether (then the
 *                            manifest's matching is checked too)
 *
 * `meson test` runs it on the hello.so just built.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <tether/driver-test.h>

/* hello.c's selectors: in a real driver, a header shared with its clients. */
enum { HELLO_ADD, HELLO_GREET };

static int failures;

/* Every check says what it expected and what came, and the test goes on. */
#define EXPECT(expr, want)                                                                             \
        do {                                                                                           \
                tether_ret_t got_ = (expr);                                                            \
                if (got_ != (want)) {                                                                  \
                        fprintf(stderr, "%s:%d: %s: %s, expected %s\n", __FILE__, __LINE__, #expr,       \
                                tether_ret_name(got_), tether_ret_name(want));                         \
                        failures++;                                                                    \
                }                                                                                      \
        } while (0)
#define CHECK(cond)                                                                                    \
        do {                                                                                           \
                if (!(cond)) {                                                                         \
                        fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond);               \
                        failures++;                                                                    \
                }                                                                                      \
        } while (0)

/* The greeting, as a client gets it from greet. */
static void greet_is(tether_connect *c, const char *want)
{
        char buf[64] = "";
        size_t size = sizeof(buf) - 1;
        EXPECT(tether_call_struct_method(c, HELLO_GREET, NULL, 0, buf, &size), TETHER_SUCCESS);
        buf[size < sizeof(buf) ? size : sizeof(buf) - 1] = '\0';
        if (strcmp(buf, want)) {
                fprintf(stderr, "greet: \"%s\", expected \"%s\"\n", buf, want);
                failures++;
        }
}

/* An ordinary user: no privileges. */
static const tether_task user = { .uid = 1000, .gid = 1000 };

/* A write of one key as that user; why: the driver's reason for a refusal. */
static tether_ret_t set_greeting(tether_test_service *svc, const char *key, const char *greeting, char *why)
{
        tether_value *d = NULL;
        tether_ret_t r = tether_value_new_dict(&d);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(d, key, greeting);
        if (r == TETHER_SUCCESS)
                r = tether_test_set_properties(svc, &user, d, why);
        tether_value_unref(d);
        return r;
}

static tether_ret_t new_unit(tether_test *t, uint64_t unit, tether_test_nub **ret)
{
        tether_value *props = NULL;
        tether_ret_t r = tether_value_new_dict(&props);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_uint(props, "Unit", unit, 32);
        if (r == TETHER_SUCCESS)
                r = tether_test_nub_new(t, "ExampleDeviceNub", props, ret);
        tether_value_unref(props);
        return r;
}

int main(int argc, char **argv)
{
        if (argc != 2) {
                fprintf(stderr, "usage: test-hello BUNDLE\n");
                return 2;
        }
        struct stat st;
        bool folder = stat(argv[1], &st) == 0 && S_ISDIR(st.st_mode);
        tether_test *t = NULL;
        tether_test_bundle *b = NULL;
        tether_test_nub *unit42 = NULL, *unit7 = NULL;
        tether_test_service *svc = NULL;
        if (tether_test_new(&t) != TETHER_SUCCESS || tether_test_load(t, argv[1], &b) != TETHER_SUCCESS ||
            new_unit(t, 42, &unit42) != TETHER_SUCCESS || new_unit(t, 7, &unit7) != TETHER_SUCCESS) {
                fprintf(stderr, "test-hello: cannot load %s into the harness\n", argv[1]);
                tether_test_free(t);
                return 1;
        }

        /* The manifest: HelloDriver wants the nub whose Unit is 42, no other. */
        if (folder) {
                const char *driver = NULL;
                EXPECT(tether_test_match(b, unit42, &driver), TETHER_SUCCESS);
                CHECK(driver && !strcmp(driver, "HelloDriver"));
                EXPECT(tether_test_match(b, unit7, &driver), TETHER_ERR_NOT_FOUND);
        }

        /* start(): its properties. */
        EXPECT(tether_test_start(b, "HelloDriver", unit42, &svc), TETHER_SUCCESS);
        if (!svc) {
                tether_test_free(t);
                return 1;
        }
        tether_value *v = NULL;
        uint64_t unit = 0;
        EXPECT(tether_test_property(svc, "Unit", &v), TETHER_SUCCESS);
        EXPECT(tether_value_get_uint(v, &unit), TETHER_SUCCESS);
        CHECK(unit == 42);
        tether_value_unref(v);

        /* A client: calls through the method table and its checks. */
        tether_session *s = NULL;
        tether_connect *c = NULL;
        EXPECT(tether_test_session_open(t, &user, &s), TETHER_SUCCESS);
        EXPECT(tether_service_open(s, tether_test_service_id(svc), 0, 0, &c), TETHER_SUCCESS);
        uint64_t in[2] = { 40, 2 }, out[1] = { 0 };
        uint32_t n = 1;
        EXPECT(tether_call_scalar_method(c, HELLO_ADD, in, 2, out, &n), TETHER_SUCCESS);
        CHECK(n == 1 && out[0] == 42);
        n = 1;
        EXPECT(tether_call_scalar_method(c, HELLO_ADD, in, 1, out, &n), TETHER_ERR_BAD_ARGUMENT);
        EXPECT(tether_call_scalar_method(c, 2, NULL, 0, NULL, NULL), TETHER_ERR_BAD_ARGUMENT);
        greet_is(c, "hello");
        tether_connect *other = NULL;
        EXPECT(tether_service_open(s, tether_test_service_id(svc), 1, 0, &other), TETHER_ERR_BAD_ARGUMENT);

        /* set_properties: checked, all or nothing, and a refusal says why. */
        char why[TETHER_MAX_REASON + 1];
        EXPECT(set_greeting(svc, "Greeting", "hi", why), TETHER_SUCCESS);
        greet_is(c, "hi");
        EXPECT(set_greeting(svc, "Greeting", "", why), TETHER_ERR_BAD_ARGUMENT);
        CHECK(!strcmp(why, "Greeting must be a string of 1 to 64 bytes"));
        EXPECT(set_greeting(svc, "Unit", "7", why), TETHER_ERR_NOT_WRITABLE);
        CHECK(!strcmp(why, "only Greeting can be set"));
        greet_is(c, "hi");

        /* Terminated: the open connection gets NotAttached. */
        EXPECT(tether_test_stop(svc), TETHER_SUCCESS);
        n = 1;
        EXPECT(tether_call_scalar_method(c, HELLO_ADD, in, 2, out, &n), TETHER_ERR_NOT_ATTACHED);
        tether_service_close(c);
        tether_session_close(s);
        tether_test_free(t);
        if (failures) {
                fprintf(stderr, "test-hello: %d check(s) failed\n", failures);
                return 1;
        }
        printf("test-hello: all checks passed%s\n", folder ? " (with the manifest)" : "");
        return 0;
}
