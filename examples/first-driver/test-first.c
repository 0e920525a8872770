/* SPDX-License-Identifier: MIT */
/*
 * FirstDriver's unit test, with no tetherd: tether's driver test harness
 * loads the bundle into this process and the test calls the driver
 * through libtether, as first-client does.
 *     test-first BUNDLE      a folder holding manifest.json and first.so
 */
#include <grp.h>
#include <stdio.h>
#include <string.h>

#include <tether/driver-test.h>

#include "first.h"

static int failures;

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

/* A write of one property as writer; why gets the driver's reason. */
static tether_ret_t set(tether_test_service *svc, const tether_task *writer, const char *key, tether_value *v,
                        char *why)
{
        tether_value *d = NULL;
        tether_ret_t r = tether_value_new_dict(&d);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set(d, key, v);
        if (r == TETHER_SUCCESS)
                r = tether_test_set_properties(svc, writer, d, why);
        tether_value_unref(d);
        tether_value_unref(v);
        return r;
}

static tether_value *string(const char *s)
{
        tether_value *v = NULL;
        tether_value_new_string(s, &v);
        return v;
}

static tether_value *number(double x)
{
        tether_value *v = NULL;
        tether_value_new_double(x, &v);
        return v;
}

static int64_t read_one(tether_connect *c)
{
        uint64_t out = 0;
        uint32_t n = 1;
        EXPECT(tether_call_scalar_method(c, FIRST_READ, NULL, 0, &out, &n), TETHER_SUCCESS);
        return (int64_t)out;
}

int main(int argc, char **argv)
{
        if (argc != 2) {
                fprintf(stderr, "usage: test-first BUNDLE\n");
                return 2;
        }
        struct group *plugdev = getgrnam("plugdev");
        /* Callers as the driver sees them (uid, gid, privileges). */
        const tether_task user = { .uid = 1000, .gid = 1000 };
        const tether_task lab = { .uid = 1001, .gid = plugdev ? plugdev->gr_gid : 0 };
        const tether_task admin = { .uid = 1002, .gid = 1002, .privileges = TETHER_PRIVILEGE_ADMINISTRATOR };
        tether_test *t = NULL;
        tether_test_bundle *b = NULL;
        tether_test_nub *resources = NULL;
        tether_test_service *svc = NULL;
        const char *driver = NULL;
        if (!plugdev || tether_test_new(&t) != TETHER_SUCCESS || tether_test_load(t, argv[1], &b) != TETHER_SUCCESS ||
            tether_test_nub_new(t, "TetherResources", NULL, &resources) != TETHER_SUCCESS) {
                fprintf(stderr, "test-first: cannot load %s into the harness (is there a group plugdev?)\n", argv[1]);
                tether_test_free(t);
                return 1;
        }

        /* Matching: the manifest's personality wants TetherResources. */
        EXPECT(tether_test_match(b, resources, &driver), TETHER_SUCCESS);
        CHECK(driver && !strcmp(driver, "FirstDriver"));

        /* start(): its properties. */
        EXPECT(tether_test_start(b, "FirstDriver", resources, &svc), TETHER_SUCCESS);
        if (!svc) {
                tether_test_free(t);
                return 1;
        }
        tether_value *v = NULL;
        const char *s = NULL;
        EXPECT(tether_test_property(svc, FIRST_PROP_UNITS, &v), TETHER_SUCCESS);
        CHECK(tether_value_get_string(v, &s) == TETHER_SUCCESS && !strcmp(s, "C"));
        tether_value_unref(v);

        /* The access policy: type 0 is root's and plugdev's. */
        tether_session *su = NULL, *sl = NULL;
        tether_connect *c = NULL;
        EXPECT(tether_test_session_open(t, &user, &su), TETHER_SUCCESS);
        EXPECT(tether_service_open(su, tether_test_service_id(svc), 0, 0, &c), TETHER_ERR_NOT_PRIVILEGED);
        EXPECT(tether_test_session_open(t, &lab, &sl), TETHER_SUCCESS);
        /* Type 1: the policy's default admits anyone, the driver has no such type. */
        EXPECT(tether_service_open(sl, tether_test_service_id(svc), 1, 0, &c), TETHER_ERR_BAD_ARGUMENT);
        EXPECT(tether_service_open(sl, tether_test_service_id(svc), 0, 0, &c), TETHER_SUCCESS);

        /* Calls, checked against the table before the driver runs. */
        CHECK(read_one(c) == 21500);
        int32_t many[FIRST_MAX_READINGS];
        size_t size = sizeof(many);
        uint64_t count = 4;
        EXPECT(tether_call_method(c, FIRST_READ_MANY, &count, 1, NULL, 0, NULL, NULL, many, &size), TETHER_SUCCESS);
        CHECK(size == 4 * sizeof(int32_t) && many[0] == 21510 && many[3] == 21540);
        uint64_t out[2];
        uint32_t n = 1;
        EXPECT(tether_call_scalar_method(c, FIRST_READ, &count, 1, out, &n), TETHER_ERR_BAD_ARGUMENT); /* 1 in, not 0 */
        n = 2;
        EXPECT(tether_call_scalar_method(c, FIRST_READ, NULL, 0, out, &n), TETHER_ERR_BAD_ARGUMENT); /* room for 2 out */
        n = 1;
        EXPECT(tether_call_scalar_method(c, FIRST_METHOD_COUNT, NULL, 0, out, &n), TETHER_ERR_BAD_ARGUMENT);
        count = FIRST_MAX_READINGS + 1; /* the method's own check */
        EXPECT(tether_call_method(c, FIRST_READ_MANY, &count, 1, NULL, 0, NULL, NULL, many, &size), TETHER_ERR_BAD_ARGUMENT);

        /* Properties: checked, all or nothing, and a refusal says why. */
        char why[TETHER_MAX_REASON + 1];
        EXPECT(set(svc, &user, FIRST_PROP_UNITS, string("K"), why), TETHER_ERR_BAD_ARGUMENT);
        CHECK(!strcmp(why, "Units must be C or F"));
        EXPECT(set(svc, &user, FIRST_PROP_CALIBRATION, number(1), why), TETHER_ERR_NOT_PRIVILEGED);
        CHECK(!strcmp(why, "Calibration may be set by an administrator only"));
        EXPECT(set(svc, &admin, FIRST_PROP_CALIBRATION, number(9), why), TETHER_ERR_BAD_ARGUMENT);
        CHECK(!strcmp(why, "Calibration must be a double from -5 to 5"));
        EXPECT(set(svc, &user, "Model", string("x"), why), TETHER_ERR_NOT_WRITABLE);
        CHECK(!strcmp(why, "Model cannot be set"));
        EXPECT(set(svc, &admin, FIRST_PROP_CALIBRATION, number(1), why), TETHER_SUCCESS);
        EXPECT(set(svc, &user, FIRST_PROP_UNITS, string("F"), why), TETHER_SUCCESS);
        CHECK(read_one(c) == 72500); /* the sixth: 21.5 C + 1 = 22.5 C = 72.5 F */

        /* Terminated: the open connection gets NotAttached. */
        EXPECT(tether_test_stop(svc), TETHER_SUCCESS);
        n = 1;
        EXPECT(tether_call_scalar_method(c, FIRST_READ, NULL, 0, out, &n), TETHER_ERR_NOT_ATTACHED);
        tether_service_close(c);
        tether_session_close(su);
        tether_session_close(sl);
        tether_test_free(t);
        if (failures) {
                fprintf(stderr, "test-first: %d check(s) failed\n", failures);
                return 1;
        }
        printf("test-first: all checks passed\n");
        return 0;
}
