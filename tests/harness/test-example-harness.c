/* SPDX-License-Identifier: MIT */
/*
 * The example bundle (drivers/example) under the driver test harness
 * (include/tether/driver-test.h): no tetherd, no driver host. The bundle
 * folder is loaded as built; ExampleDriver and ExampleDevice start on nubs
 * the test makes or the driver publishes, and everything a client does
 * goes through libtether on a harness session: both KPIs and their checks,
 * async completions, shared memory, properties, a timer, termination.
 * Each test makes its own harness and frees it, so ASan's leak check at
 * exit covers every teardown path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tether/driver-test.h>

#include "example/example.h"

#ifndef EXAMPLE_BUNDLE
#error "EXAMPLE_BUNDLE: the built org.tether.example.tether folder"
#endif

#define USER_UID 1000
#define USER_GID 1001
#define ADMIN_UID 1002

/* Who calls: root; an ordinary user; an administrator who is not root (a
 * member of tetherd's admin group, as tetherd would have found). */
static const tether_task root_task = { .uid = 0, .gid = 0, .privileges = TETHER_PRIVILEGE_ADMINISTRATOR };
static const tether_task user_task = { .uid = USER_UID, .gid = USER_GID };
static const tether_task admin_task = { .uid = ADMIN_UID, .gid = ADMIN_UID,
                                        .privileges = TETHER_PRIVILEGE_ADMINISTRATOR };

typedef struct fx {
        tether_test *t;
        tether_test_bundle *b;
        tether_test_nub *resources;
        tether_test_service *drv;
        tether_session *root, *user;
} fx;

static int setup(void **state)
{
        fx *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        assert_int_equal(tether_test_new(&f->t), TETHER_SUCCESS);
        assert_int_equal(tether_test_load(f->t, EXAMPLE_BUNDLE, &f->b), TETHER_SUCCESS);
        assert_int_equal(tether_test_nub_new(f->t, "TetherResources", NULL, &f->resources), TETHER_SUCCESS);
        assert_int_equal(tether_test_start(f->b, "ExampleDriver", f->resources, &f->drv), TETHER_SUCCESS);
        assert_int_equal(tether_test_session_open(f->t, &root_task, &f->root), TETHER_SUCCESS);
        assert_int_equal(tether_test_session_open(f->t, &user_task, &f->user), TETHER_SUCCESS);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        fx *f = *state;
        tether_session_close(f->user);
        tether_session_close(f->root);
        tether_test_free(f->t);
        free(f);
        return 0;
}

static uint64_t prop_uint(tether_test_service *svc, const char *key)
{
        tether_value *v = NULL;
        uint64_t x = 0;
        assert_int_equal(tether_test_property(svc, key, &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_uint(v, &x), TETHER_SUCCESS);
        tether_value_unref(v);
        return x;
}

static tether_connect *open_as(tether_session *s, tether_test_service *svc, uint32_t type)
{
        tether_connect *c = NULL;
        assert_int_equal(tether_service_open(s, tether_test_service_id(svc), type, 0, &c), TETHER_SUCCESS);
        return c;
}

/* ---- bundles, manifests, matching ---- */

static void test_load_and_match(void **state)
{
        fx *f = *state;
        tether_test *second = NULL;
        assert_int_equal(tether_test_new(&second), TETHER_ERR_BUSY); /* one env per process */
        assert_null(second);

        tether_test_bundle *b = NULL;
        assert_int_equal(tether_test_load(f->t, "/nonexistent/x.tether", &b), TETHER_ERR_NOT_FOUND);
        /* A folder with no manifest, and a file that is no library. */
        assert_int_equal(tether_test_load(f->t, "/", &b), TETHER_ERR_NOT_FOUND);
        assert_int_equal(tether_test_load(f->t, EXAMPLE_BUNDLE "/manifest.json", &b), TETHER_ERR_NOT_FOUND);
        assert_null(b);
        /* The bare library loads too, without personalities. */
        assert_int_equal(tether_test_load(f->t, EXAMPLE_BUNDLE "/example.so", &b), TETHER_SUCCESS);
        const char *drv = NULL;
        assert_int_equal(tether_test_match(b, f->resources, &drv), TETHER_ERR_UNSUPPORTED);

        /* The manifest's personalities, as tetherd would match them. */
        assert_int_equal(tether_test_match(f->b, f->resources, &drv), TETHER_SUCCESS);
        assert_string_equal(drv, "ExampleDriver");
        tether_value *props = NULL;
        assert_int_equal(tether_value_new_dict(&props), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_uint(props, "Unit", 3, 32), TETHER_SUCCESS);
        tether_test_nub *dev = NULL, *other = NULL;
        assert_int_equal(tether_test_nub_new(f->t, "ExampleDeviceNub", props, &dev), TETHER_SUCCESS);
        tether_value_unref(props);
        assert_int_equal(tether_test_match(f->b, dev, &drv), TETHER_SUCCESS);
        assert_string_equal(drv, "ExampleDevice");
        assert_int_equal(tether_test_nub_new(f->t, "SomethingElse", NULL, &other), TETHER_SUCCESS);
        assert_int_equal(tether_test_match(f->b, other, &drv), TETHER_ERR_NOT_FOUND);

        /* A driver the bundle does not have; a start() that refuses (no Unit). */
        tether_test_service *svc = (tether_test_service *)1;
        assert_int_equal(tether_test_start(f->b, "NoSuchDriver", other, &svc), TETHER_ERR_NOT_FOUND);
        assert_null(svc);
        assert_int_equal(tether_test_start(f->b, "ExampleDevice", other, &svc), TETHER_ERR_NOT_FOUND);
        assert_null(svc);
        /* A terminated nub takes no driver. */
        assert_int_equal(tether_test_nub_terminate(other), TETHER_SUCCESS);
        assert_int_equal(tether_test_nub_terminate(other), TETHER_ERR_NOT_ATTACHED);
        assert_int_equal(tether_test_start(f->b, "ExampleDriver", other, &svc), TETHER_ERR_NOT_ATTACHED);
}

/* A bundle folder of the example's library with this manifest text, in a
 * fresh temporary folder (removed by remove_bundle). */
static void make_bundle(char *dir, size_t size, const char *manifest)
{
        char tmp[] = "/tmp/tether-harness-XXXXXX";
        assert_non_null(mkdtemp(tmp));
        snprintf(dir, size, "%s/org.tether.example.tether", tmp);
        assert_int_equal(mkdir(dir, 0755), 0);
        char path[512];
        snprintf(path, sizeof(path), "%s/manifest.json", dir);
        FILE *m = fopen(path, "w");
        assert_non_null(m);
        fputs(manifest, m);
        fclose(m);
        FILE *in = fopen(EXAMPLE_BUNDLE "/example.so", "rb");
        snprintf(path, sizeof(path), "%s/example.so", dir);
        FILE *out = fopen(path, "wb");
        assert_non_null(in);
        assert_non_null(out);
        char buf[65536];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
                assert_int_equal(fwrite(buf, 1, n, out), n);
        fclose(in);
        fclose(out);
}

static void remove_bundle(const char *dir)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/manifest.json", dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/example.so", dir);
        unlink(path);
        rmdir(dir);
        snprintf(path, sizeof(path), "%s", dir);
        *strrchr(path, '/') = '\0';
        rmdir(path);
}

#define MANIFEST_HEAD                                                                                  \
        "{ \"schema\": 1, \"bundle\": \"org.tether.example\", \"version\": \"1\", "                  \
        "\"library\": \"example.so\", \"personalities\": { \"ExampleDriver\": { "                   \
        "\"driver\": \"ExampleDriver\", \"IOProviderClass\": \"TetherResources\" } }"

/* The manifest's access policy holds for opens through the harness, as
 * tetherd applies it; a manifest tetherd would refuse is refused here. */
static void test_access_policy(void **state)
{
        fx *f = *state;
        char dir[256];
        tether_test_bundle *b = NULL;
        make_bundle(dir, sizeof(dir), MANIFEST_HEAD ", \"acess\": {} }");
        assert_int_equal(tether_test_load(f->t, dir, &b), TETHER_ERR_BAD_ARGUMENT); /* a typo in a key */
        remove_bundle(dir);
        make_bundle(dir, sizeof(dir),
                    MANIFEST_HEAD ", \"access\": { \"default\": { \"users\": [\"root\"] }, "
                                  "\"0\": { \"users\": [\"*\"] } } }");
        assert_int_equal(tether_test_load(f->t, dir, &b), TETHER_SUCCESS);
        remove_bundle(dir); /* loaded: the folder is no longer needed */
        tether_test_service *svc = NULL;
        assert_int_equal(tether_test_start(b, "ExampleDriver", f->resources, &svc), TETHER_SUCCESS);
        uint64_t id = tether_test_service_id(svc);
        tether_connect *c = NULL;
        assert_int_equal(tether_service_open(f->user, id, EXAMPLE_CLIENT_LEGACY, 0, &c), TETHER_ERR_NOT_PRIVILEGED);
        c = open_as(f->root, svc, EXAMPLE_CLIENT_LEGACY);
        tether_service_close(c);
        c = open_as(f->user, svc, EXAMPLE_CLIENT); /* type 0: anyone */
        tether_service_close(c);
        /* Writes follow the default entry: root only here, before the driver's say. */
        tether_value *d = NULL;
        char why[TETHER_MAX_REASON + 1];
        char *why2 = NULL;
        assert_int_equal(tether_value_new_dict(&d), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_string(d, EXAMPLE_PROP_GREETING, "hi"), TETHER_SUCCESS);
        assert_int_equal(tether_test_set_properties(svc, &user_task, d, why), TETHER_ERR_NOT_PRIVILEGED);
        assert_non_null(strstr(why, "access policy"));
        assert_int_equal(tether_registry_entry_set_properties_why(f->user, id, d, &why2), TETHER_ERR_NOT_PRIVILEGED);
        assert_non_null(why2);
        assert_non_null(strstr(why2, "access policy"));
        free(why2);
        assert_int_equal(tether_test_set_properties(svc, &root_task, d, why), TETHER_SUCCESS);
        assert_string_equal(why, "");
        tether_value_unref(d);
}

/* ---- properties ---- */

static void test_properties(void **state)
{
        fx *f = *state;
        tether_value *v = NULL;
        const char *s = NULL;
        assert_int_equal(tether_test_property(f->drv, "CFBundleIdentifier", &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_string(v, &s), TETHER_SUCCESS);
        assert_string_equal(s, "org.tether.example");
        v = tether_value_unref(v);
        assert_int_equal(prop_uint(f->drv, EXAMPLE_PROP_BAUD_RATE), 9600);
        assert_int_equal(tether_test_property(f->drv, "NoSuchKey", &v), TETHER_ERR_NOT_FOUND);

        /* Through the driver's hook: a good write lands ... */
        tether_value *d = NULL;
        assert_int_equal(tether_value_new_dict(&d), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_uint(d, EXAMPLE_PROP_BAUD_RATE, 19200, 64), TETHER_SUCCESS);
        assert_int_equal(tether_test_set_properties(f->drv, &user_task, d, NULL), TETHER_SUCCESS);
        assert_int_equal(prop_uint(f->drv, EXAMPLE_PROP_BAUD_RATE), 19200);
        assert_int_equal(tether_test_property(f->drv, EXAMPLE_PROP_BAUD_RATE, &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_bits(v), 32); /* stored as the driver publishes it */
        v = tether_value_unref(v);
        /* ... a bad one is refused, and a request with one bad key changes nothing. */
        assert_int_equal(tether_value_dict_set_uint(d, EXAMPLE_PROP_BAUD_RATE, 1234, 32), TETHER_SUCCESS);
        assert_int_equal(tether_test_set_properties(f->drv, &user_task, d, NULL), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_dict_set_uint(d, EXAMPLE_PROP_BAUD_RATE, 38400, 32), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_string(d, "Model", "mine"), TETHER_SUCCESS);
        assert_int_equal(tether_test_set_properties(f->drv, &user_task, d, NULL), TETHER_ERR_NOT_WRITABLE);
        assert_int_equal(prop_uint(f->drv, EXAMPLE_PROP_BAUD_RATE), 19200);
        tether_value_unref(d);
        /* Who writes reaches the hook: Locked is an administrator's, and
         * the driver says why it refuses. */
        char why[TETHER_MAX_REASON + 1];
        assert_int_equal(tether_value_new_dict(&d), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_bool(d, EXAMPLE_PROP_LOCKED, true), TETHER_SUCCESS);
        assert_int_equal(tether_test_set_properties(f->drv, &user_task, d, why), TETHER_ERR_NOT_PRIVILEGED);
        assert_non_null(strstr(why, "administrator"));
        assert_int_equal(tether_test_set_properties(f->drv, &admin_task, d, why), TETHER_SUCCESS);
        assert_string_equal(why, "");
        tether_connect *locked_out = NULL;
        assert_int_equal(tether_service_open(f->user, tether_test_service_id(f->drv), EXAMPLE_CLIENT, 0, &locked_out),
                         TETHER_ERR_NOT_PERMITTED);
        assert_int_equal(tether_value_dict_set_bool(d, EXAMPLE_PROP_LOCKED, false), TETHER_SUCCESS);
        assert_int_equal(tether_test_set_properties(f->drv, NULL, d, NULL), geteuid() == 0 ? TETHER_SUCCESS
                                                                                           : TETHER_ERR_NOT_PRIVILEGED);
        assert_int_equal(tether_test_set_properties(f->drv, &root_task, d, NULL), TETHER_SUCCESS);
        tether_value_unref(d);

        /* The same through libtether on a session, as an application does. */
        uint64_t id = 0;
        tether_value *match = NULL;
        assert_int_equal(tether_service_matching("ExampleDriver", &match), TETHER_SUCCESS);
        assert_int_equal(tether_get_matching_service(f->user, match, &id), TETHER_SUCCESS);
        tether_value_unref(match);
        assert_int_equal(id, tether_test_service_id(f->drv));
        assert_int_equal(tether_registry_entry_get_property(f->user, id, EXAMPLE_PROP_BAUD_RATE, &v), TETHER_SUCCESS);
        uint64_t rate = 0;
        assert_int_equal(tether_value_get_uint(v, &rate), TETHER_SUCCESS);
        assert_int_equal(rate, 19200);
        v = tether_value_unref(v);
        assert_int_equal(tether_value_new_dict(&d), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_string(d, EXAMPLE_PROP_GREETING, "hi"), TETHER_SUCCESS);
        assert_int_equal(tether_registry_entry_set_properties(f->user, id, d), TETHER_SUCCESS);
        assert_int_equal(tether_test_property(f->drv, EXAMPLE_PROP_GREETING, &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_string(v, &s), TETHER_SUCCESS);
        assert_string_equal(s, "hi");
        v = tether_value_unref(v);
        assert_int_equal(tether_value_dict_set_string(d, EXAMPLE_PROP_GREETING, ""), TETHER_SUCCESS);
        char *reason = NULL;
        assert_int_equal(tether_registry_entry_set_properties_why(f->user, id, d, &reason), TETHER_ERR_BAD_ARGUMENT);
        assert_non_null(reason);
        assert_string_equal(reason, "Greeting must be a string of 1 to 64 bytes");
        free(reason);
        /* A nub has no driver to write through; what the harness does not serve says so. */
        uint64_t nub_id = 0;
        tether_test_nub_info info;
        assert_int_equal(tether_test_nub_get_info(f->resources, &info), TETHER_SUCCESS);
        nub_id = info.id;
        assert_int_equal(tether_registry_entry_set_properties(f->user, nub_id, d), TETHER_ERR_UNSUPPORTED);
        tether_value_unref(d);
        char *path = NULL;
        assert_int_equal(tether_registry_entry_get_path(f->user, id, &path), TETHER_ERR_UNSUPPORTED);
}

/* ---- calls: the new KPI, its checks, who the caller is ---- */

static void test_calls(void **state)
{
        fx *f = *state;
        tether_connect *c = open_as(f->user, f->drv, EXAMPLE_CLIENT);
        uint64_t in[16], out[4];
        uint32_t n = 1;
        in[0] = 40, in[1] = 2;
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_ADD, in, 2, out, &n), TETHER_SUCCESS);
        assert_int_equal(n, 1);
        assert_int_equal(out[0], 42);
        /* The table's checks, before the driver runs. */
        n = 1;
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_ADD, in, 3, out, &n), TETHER_ERR_BAD_ARGUMENT);
        n = 0;
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_ADD, in, 2, out, &n), TETHER_ERR_BAD_ARGUMENT);
        n = 1;
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_SELECTOR_COUNT, NULL, 0, out, &n),
                         TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_RESERVED, NULL, 0, NULL, NULL), TETHER_ERR_UNSUPPORTED);
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_RESET, NULL, 0, NULL, NULL), TETHER_ERR_NOT_PRIVILEGED);
        /* An administrator need not be root: the session's privileges decide. */
        tether_session *admin = NULL;
        assert_int_equal(tether_test_session_open(f->t, &admin_task, &admin), TETHER_SUCCESS);
        tether_connect *rc = open_as(admin, f->drv, EXAMPLE_CLIENT);
        assert_int_equal(tether_call_scalar_method(rc, EXAMPLE_RESET, NULL, 0, NULL, NULL), TETHER_SUCCESS);
        n = 4;
        assert_int_equal(tether_call_scalar_method(rc, EXAMPLE_WHO_AM_I, NULL, 0, out, &n), TETHER_SUCCESS);
        assert_int_equal(out[1], ADMIN_UID);
        assert_int_equal(tether_service_close(rc), TETHER_SUCCESS);
        tether_session_close(admin);

        /* The article's method: two scalars in, a variable struct out. */
        uint8_t buf[64];
        size_t size = sizeof(buf);
        in[0] = 0x10, in[1] = 8;
        assert_int_equal(tether_call_method(c, EXAMPLE_MY_METHOD, in, 2, NULL, 0, NULL, NULL, buf, &size),
                         TETHER_SUCCESS);
        assert_int_equal(size, 8);
        for (int i = 0; i < 8; i++)
                assert_int_equal(buf[i], 0x10 + i);
        /* Any number of scalars, up to I/O Kit's 16. */
        uint64_t sum = 0;
        for (int i = 0; i < 16; i++)
                sum += in[i] = (uint64_t)i << 40;
        n = 1;
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_SUM, in, 16, out, &n), TETHER_SUCCESS);
        assert_int_equal(out[0], sum);
        /* A struct past the inline limit goes through shared memory both ways. */
        size_t big = 3 * TETHER_MAX_INLINE_STRUCT + 5;
        uint8_t *src = malloc(big), *dst = calloc(1, big);
        assert_non_null(src);
        assert_non_null(dst);
        for (size_t i = 0; i < big; i++)
                src[i] = (uint8_t)(i * 13);
        size = big;
        assert_int_equal(tether_call_struct_method(c, EXAMPLE_ECHO, src, big, dst, &size), TETHER_SUCCESS);
        assert_int_equal(size, big);
        assert_memory_equal(src, dst, big);
        free(src);
        free(dst);

        /* The task init_with_task saw: this session's identity. */
        n = 4;
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_WHO_AM_I, NULL, 0, out, &n), TETHER_SUCCESS);
        assert_int_equal(out[0], (uint64_t)getpid());
        assert_int_equal(out[1], USER_UID);
        assert_int_equal(out[2], USER_GID);
        assert_int_equal(out[3], sizeof(void *) * 8);
        /* A method that runs on the provider. */
        n = 1;
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_GET_BAUD_RATE, NULL, 0, out, &n), TETHER_SUCCESS);
        assert_int_equal(out[0], 9600);
        assert_int_equal(tether_service_close(c), TETHER_SUCCESS);

        /* An open the driver refuses: an unknown type. */
        assert_int_equal(tether_service_open(f->user, tether_test_service_id(f->drv), 77, 0, &c),
                         TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_service_open(f->user, 0xdead, EXAMPLE_CLIENT, 0, &c), TETHER_ERR_NOT_FOUND);
}

/* ---- the legacy KPI ---- */

static void completed_never(void *refcon, tether_ret_t result, const uint64_t *args, uint32_t count)
{
        fail_msg("a refused async call completed");
}

static void test_legacy(void **state)
{
        fx *f = *state;
        tether_connect *c = open_as(f->user, f->drv, EXAMPLE_CLIENT_LEGACY);
        uint64_t in[2] = { (1ull << 32) | 40, 2 }, out[1];
        uint32_t n = 1;
        /* Legacy scalars are 32 bits: the top half is dropped, as in I/O Kit. */
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_LEGACY_ADD, in, 2, out, &n), TETHER_SUCCESS);
        assert_int_equal(out[0], 42);
        n = 1;
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_LEGACY_ADD, in, 1, out, &n), TETHER_ERR_BAD_ARGUMENT);
        n = 1;
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_LEGACY_GET_BAUD_RATE, NULL, 0, out, &n), TETHER_SUCCESS);
        assert_int_equal(out[0], 9600);
        /* Never async. */
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(f->user, &port), TETHER_SUCCESS);
        n = 1;
        assert_int_equal(tether_call_async_method(c, EXAMPLE_LEGACY_ADD, port, completed_never, NULL, in, 2, NULL, 0,
                                                  out, &n, NULL, NULL),
                         TETHER_ERR_UNSUPPORTED);
        const char name[] = "probe";
        assert_int_equal(tether_call_method(c, EXAMPLE_LEGACY_SET_NAME, in, 1, name, 5, NULL, NULL, NULL, NULL),
                         TETHER_SUCCESS);
        char got[16];
        size_t size = sizeof(got);
        assert_int_equal(tether_call_struct_method(c, EXAMPLE_LEGACY_GET_NAME, NULL, 0, got, &size), TETHER_SUCCESS);
        assert_int_equal(size, 5);
        assert_memory_equal(got, "probe", 5);
        tether_notification_port_destroy(port);
        tether_service_close(c);
}

/* ---- async completions ---- */

typedef struct completion {
        int calls;
        tether_ret_t result;
        uint64_t args[4];
        uint32_t count;
} completion;

static void completed(void *refcon, tether_ret_t result, const uint64_t *args, uint32_t count)
{
        completion *c = refcon;
        c->calls++;
        c->result = result;
        c->count = count;
        memcpy(c->args, args, (count < 4 ? count : 4) * sizeof(uint64_t));
}

static void test_async(void **state)
{
        fx *f = *state;
        tether_connect *c = open_as(f->user, f->drv, EXAMPLE_CLIENT);
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(f->user, &port), TETHER_SUCCESS);
        assert_int_equal(tether_test_port_wait(port, 20), TETHER_ERR_TIMEOUT); /* nothing yet */

        completion done = { 0 };
        uint64_t in[3] = { 2, 3, 30 };
        assert_int_equal(tether_call_async_method(c, EXAMPLE_DELAYED_ADD, port, completed, &done, in, 3, NULL, 0,
                                                  NULL, NULL, NULL, NULL),
                         TETHER_SUCCESS);
        assert_int_equal(done.calls, 0); /* accepted; the sum comes 30 ms later */
        assert_int_equal(tether_test_port_wait(port, 5000), TETHER_SUCCESS);
        assert_int_equal(done.calls, 1);
        assert_int_equal(done.result, TETHER_SUCCESS);
        assert_int_equal(done.count, 2);
        assert_int_equal(done.args[0], 5);
        /* Async to a method without ALLOW_ASYNC; and a port of another session. */
        uint32_t n = 1;
        uint64_t out[1];
        assert_int_equal(tether_call_async_method(c, EXAMPLE_ADD, port, completed, &done, in, 2, NULL, 0, out, &n,
                                                  NULL, NULL),
                         TETHER_ERR_UNSUPPORTED);
        tether_notification_port *theirs = NULL;
        assert_int_equal(tether_notification_port_create(f->root, &theirs), TETHER_SUCCESS);
        assert_int_equal(tether_call_async_method(c, EXAMPLE_DELAYED_ADD, theirs, completed, &done, in, 3, NULL, 0,
                                                  NULL, NULL, NULL, NULL),
                         TETHER_ERR_BAD_ARGUMENT);
        tether_notification_port_destroy(theirs);

        /* A stream: one reference, a result each turn of the loop, in
         * order; the last closes it. A cancel ends another, at once. */
        completion st = { 0 };
        uint64_t sin[2] = { 20, 0 };
        assert_int_equal(tether_call_async_method(c, EXAMPLE_STREAM, port, completed, &st, sin, 2, NULL, 0, NULL, NULL,
                                                  NULL, NULL),
                         TETHER_SUCCESS);
        for (int i = 0; i < 200 && st.calls < 20; i++) {
                /* However many one wait ran, the last was number calls:
                 * none missing, none out of order. */
                assert_int_equal(tether_test_port_wait(port, 5000), TETHER_SUCCESS);
                assert_int_equal(st.args[EXAMPLE_STREAM_SEQ], st.calls);
        }
        assert_int_equal(st.calls, 20);
        assert_int_equal(st.count, EXAMPLE_STREAM_ARGS);
        assert_int_equal(tether_async_cancel(port, completed, &st), TETHER_ERR_NOT_FOUND);
        completion endless = { 0 };
        sin[0] = EXAMPLE_MAX_STREAM_COUNT;
        sin[1] = 5;
        assert_int_equal(tether_call_async_method(c, EXAMPLE_STREAM, port, completed, &endless, sin, 2, NULL, 0, NULL,
                                                  NULL, NULL, NULL),
                         TETHER_SUCCESS);
        assert_int_equal(tether_test_port_wait(port, 5000), TETHER_SUCCESS);
        assert_int_equal(tether_async_cancel(port, completed, &endless), TETHER_SUCCESS);
        int seen = endless.calls;
        assert_int_equal(tether_test_port_wait(port, 50), TETHER_ERR_TIMEOUT);
        assert_int_equal(endless.calls, seen);

        /* Queued work is dropped at stop, its context freed by the driver:
         * no completion comes, and ASan sees no leak. */
        in[2] = 10000;
        assert_int_equal(tether_call_async_method(c, EXAMPLE_DELAYED_ADD, port, completed, &done, in, 3, NULL, 0,
                                                  NULL, NULL, NULL, NULL),
                         TETHER_SUCCESS);
        assert_int_equal(tether_test_stop(f->drv), TETHER_SUCCESS);
        assert_int_equal(tether_test_port_wait(port, 50), TETHER_ERR_TIMEOUT);
        assert_int_equal(done.calls, 1);
        tether_notification_port_destroy(port);
        tether_service_close(c);
}

/* ---- shared memory ---- */

static void test_memory(void **state)
{
        fx *f = *state;
        tether_connect *c = open_as(f->user, f->drv, EXAMPLE_CLIENT);
        void *addr = NULL;
        size_t size = 0;
        assert_int_equal(tether_map_memory(c, EXAMPLE_MEMORY_BUFFER, 0, &addr, &size), TETHER_SUCCESS);
        assert_int_equal(size, EXAMPLE_BUFFER_SIZE);
        uint64_t in[2] = { EXAMPLE_MEMORY_BUFFER, 0xab };
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_FILL_MEMORY, in, 2, NULL, NULL), TETHER_SUCCESS);
        assert_int_equal(((uint8_t *)addr)[0], 0xab);
        assert_int_equal(((uint8_t *)addr)[EXAMPLE_BUFFER_SIZE - 1], 0xab);
        /* The driver says read-only; the counter shows through it. */
        void *status = NULL;
        assert_int_equal(tether_map_memory(c, EXAMPLE_MEMORY_STATUS, 0, &status, &size), TETHER_SUCCESS);
        uint64_t out[1];
        uint32_t n = 1;
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_COUNT, NULL, 0, out, &n), TETHER_SUCCESS);
        assert_int_equal(out[0], 1);
        assert_int_equal(*(volatile uint64_t *)status, 1);
        assert_int_equal(mprotect(status, 4096, PROT_READ | PROT_WRITE), -1);
        tether_service_close(c);
}

/* ---- the provider's device, and driver code on the loop ---- */

typedef struct device_ask {
        tether_ret_t r;
        tether_device_kind kind;
        int fd;
} device_ask;

static void ask_device(tether_service *svc, void *ctx)
{
        device_ask *a = ctx;
        a->fd = -1;
        a->r = tether_service_open_provider_device(svc, &a->kind, &a->fd);
}

static int opened;

static tether_ret_t vusb_device(void *ctx, tether_test_nub *nub, tether_device_kind *kind, int *fd)
{
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return TETHER_ERR_NO_RESOURCES;
        close(sv[1]); /* a simulator would have this end */
        opened++;
        *kind = TETHER_DEVICE_VUSB;
        *fd = sv[0];
        return TETHER_SUCCESS;
}

static tether_ret_t broken_device(void *ctx, tether_test_nub *nub, tether_device_kind *kind, int *fd)
{
        *kind = 99;
        *fd = -1;
        return TETHER_SUCCESS;
}

static void test_device(void **state)
{
        fx *f = *state;
        device_ask a;
        assert_int_equal(tether_test_on_loop(f->drv, ask_device, &a), TETHER_SUCCESS);
        assert_int_equal(a.r, TETHER_ERR_UNSUPPORTED); /* a nub with no device, as tetherd's own resources */
        assert_int_equal(tether_test_nub_set_device(f->resources, vusb_device, NULL), TETHER_SUCCESS);
        assert_int_equal(tether_test_on_loop(f->drv, ask_device, &a), TETHER_SUCCESS);
        assert_int_equal(a.r, TETHER_SUCCESS);
        assert_int_equal(a.kind, TETHER_DEVICE_VUSB);
        assert_true(a.fd >= 0);
        assert_int_equal(opened, 1);
        close(a.fd); /* the driver's to close */
        assert_int_equal(tether_test_nub_set_device(f->resources, broken_device, NULL), TETHER_SUCCESS);
        assert_int_equal(tether_test_on_loop(f->drv, ask_device, &a), TETHER_SUCCESS);
        assert_int_equal(a.r, TETHER_ERR_INTERNAL);
        assert_int_equal(a.fd, -1);
}

/* ---- a bus: published nubs, ExampleDevice on one, its timer ---- */

typedef struct ticks_at_least {
        tether_test_service *svc;
        uint64_t n;
} ticks_at_least;

static bool has_ticks(void *ctx)
{
        ticks_at_least *w = ctx;
        return prop_uint(w->svc, EXAMPLE_DEVICE_PROP_TICKS) >= w->n;
}

static void test_device_driver(void **state)
{
        fx *f = *state;
        tether_connect *user = open_as(f->user, f->drv, EXAMPLE_CLIENT);
        tether_connect *admin = open_as(f->root, f->drv, EXAMPLE_CLIENT);
        uint64_t unit = 7, id = 0;
        uint32_t n = 1;
        assert_int_equal(tether_call_scalar_method(user, EXAMPLE_PUBLISH_DEVICE, &unit, 1, &id, &n),
                         TETHER_ERR_NOT_PRIVILEGED);
        tether_test_nub *nub = NULL;
        assert_int_equal(tether_test_published(f->drv, 0, &nub), TETHER_ERR_NOT_FOUND);
        n = 1;
        assert_int_equal(tether_call_scalar_method(admin, EXAMPLE_PUBLISH_DEVICE, &unit, 1, &id, &n), TETHER_SUCCESS);
        assert_int_equal(tether_test_published(f->drv, 0, &nub), TETHER_SUCCESS);
        tether_test_nub_info info;
        assert_int_equal(tether_test_nub_get_info(nub, &info), TETHER_SUCCESS);
        assert_int_equal(info.id, id);
        assert_string_equal(info.class_name, "ExampleDeviceNub");
        assert_string_equal(info.location, "7");
        assert_ptr_equal(info.publisher, f->drv);
        assert_false(info.terminated);
        tether_value *v = NULL;
        uint64_t x = 0;
        assert_int_equal(tether_test_nub_property(nub, "Unit", &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_uint(v, &x), TETHER_SUCCESS);
        assert_int_equal(x, 7);
        tether_value_unref(v);

        const char *cls = NULL;
        tether_test_service *dev = NULL;
        assert_int_equal(tether_test_match(f->b, nub, &cls), TETHER_SUCCESS);
        assert_int_equal(tether_test_start(f->b, cls, nub, &dev), TETHER_SUCCESS);
        assert_int_equal(prop_uint(dev, "Unit"), 7);
        tether_connect *dc = open_as(f->user, dev, 0);
        n = 1;
        assert_int_equal(tether_call_scalar_method(dc, EXAMPLE_DEVICE_GET_UNIT, NULL, 0, &x, &n), TETHER_SUCCESS);
        assert_int_equal(x, 7);

        /* TICK: a periodic timer on the device's loop; the call completes
         * after 3 periods with the count, and Ticks followed it. */
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(f->user, &port), TETHER_SUCCESS);
        completion done = { 0 };
        uint64_t in[2] = { EXAMPLE_TICK_MIN_MS, 3 };
        assert_int_equal(tether_call_async_method(dc, EXAMPLE_DEVICE_TICK, port, completed, &done, in, 2, NULL, 0,
                                                  NULL, NULL, NULL, NULL),
                         TETHER_SUCCESS);
        n = 1;
        assert_int_equal(tether_call_scalar_method(dc, EXAMPLE_DEVICE_TICK, in, 2, NULL, NULL),
                         TETHER_ERR_BAD_ARGUMENT); /* async only: the driver says so */
        assert_int_equal(tether_test_port_wait(port, 5000), TETHER_SUCCESS);
        assert_int_equal(done.calls, 1);
        assert_int_equal(done.result, TETHER_SUCCESS);
        assert_int_equal(done.args[0], 3);
        assert_int_equal(prop_uint(dev, EXAMPLE_DEVICE_PROP_TICKS), 3);
        n = 1;
        assert_int_equal(tether_call_scalar_method(dc, EXAMPLE_DEVICE_TICK_CANCEL, NULL, 0, &x, &n),
                         TETHER_ERR_NOT_FOUND);

        /* A long one, then the publisher removes the device: the timer is
         * told ABORTED before stop(), so the call completes with it. */
        in[1] = EXAMPLE_TICK_MAX_COUNT;
        assert_int_equal(tether_call_async_method(dc, EXAMPLE_DEVICE_TICK, port, completed, &done, in, 2, NULL, 0,
                                                  NULL, NULL, NULL, NULL),
                         TETHER_SUCCESS);
        ticks_at_least w = { dev, 5 };
        assert_int_equal(tether_test_wait(f->t, has_ticks, &w, 5000), TETHER_SUCCESS);
        w.n = (uint64_t)-1;
        assert_int_equal(tether_test_wait(f->t, has_ticks, &w, 30), TETHER_ERR_TIMEOUT);
        n = 0;
        assert_int_equal(tether_call_scalar_method(admin, EXAMPLE_REMOVE_DEVICE, &id, 1, NULL, &n), TETHER_SUCCESS);
        assert_int_equal(tether_test_port_wait(port, 5000), TETHER_SUCCESS);
        assert_int_equal(done.calls, 2);
        assert_int_equal(done.result, TETHER_ERR_ABORTED);
        assert_true(done.args[0] >= 2);
        assert_true(tether_test_stopped(dev));
        assert_int_equal(tether_test_nub_get_info(nub, &info), TETHER_SUCCESS);
        assert_true(info.terminated);
        n = 1;
        assert_int_equal(tether_call_scalar_method(dc, EXAMPLE_DEVICE_GET_UNIT, NULL, 0, &x, &n),
                         TETHER_ERR_NOT_ATTACHED);
        assert_int_equal(tether_test_stop(dev), TETHER_ERR_NOT_ATTACHED);
        /* Nothing ticks after. */
        uint64_t ticks = prop_uint(dev, EXAMPLE_DEVICE_PROP_TICKS);
        assert_int_equal(tether_test_port_wait(port, 3 * EXAMPLE_TICK_MIN_MS), TETHER_ERR_TIMEOUT);
        assert_int_equal(prop_uint(dev, EXAMPLE_DEVICE_PROP_TICKS), ticks);
        n = 0;
        assert_int_equal(tether_call_scalar_method(admin, EXAMPLE_REMOVE_DEVICE, &id, 1, NULL, &n),
                         TETHER_ERR_NOT_FOUND);
        tether_service_close(dc);
        tether_notification_port_destroy(port);
        tether_service_close(admin);
        tether_service_close(user);
}

/* ---- termination ---- */

static bool loop_gone(void *ctx)
{
        device_ask a;
        return tether_test_on_loop(ctx, ask_device, &a) == TETHER_ERR_NOT_ATTACHED;
}

static void test_stop(void **state)
{
        fx *f = *state;
        tether_connect *c = open_as(f->user, f->drv, EXAMPLE_CLIENT);
        /* A device below it, started; stopping the driver stops it first. */
        tether_connect *admin = open_as(f->root, f->drv, EXAMPLE_CLIENT);
        uint64_t unit = 9, id = 0;
        uint32_t n = 1;
        assert_int_equal(tether_call_scalar_method(admin, EXAMPLE_PUBLISH_DEVICE, &unit, 1, &id, &n), TETHER_SUCCESS);
        tether_service_close(admin);
        tether_test_nub *nub = NULL;
        tether_test_service *dev = NULL;
        assert_int_equal(tether_test_published(f->drv, 0, &nub), TETHER_SUCCESS);
        assert_int_equal(tether_test_start(f->b, "ExampleDevice", nub, &dev), TETHER_SUCCESS);

        assert_int_equal(tether_test_stop(f->drv), TETHER_SUCCESS);
        assert_true(tether_test_stopped(f->drv));
        assert_true(tether_test_stopped(dev));
        tether_test_nub_info info;
        assert_int_equal(tether_test_nub_get_info(nub, &info), TETHER_SUCCESS);
        assert_true(info.terminated);
        assert_int_equal(tether_test_stop(f->drv), TETHER_ERR_NOT_ATTACHED);
        /* The open connection: NotAttached, as from tetherd. */
        uint64_t in[2] = { 1, 2 }, out[1];
        n = 1;
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_ADD, in, 2, out, &n), TETHER_ERR_NOT_ATTACHED);
        tether_value *d = NULL;
        assert_int_equal(tether_value_new_dict(&d), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_uint(d, EXAMPLE_PROP_BAUD_RATE, 300, 32), TETHER_SUCCESS);
        assert_int_equal(tether_test_set_properties(f->drv, &root_task, d, NULL), TETHER_ERR_NOT_ATTACHED);
        tether_value_unref(d);
        tether_connect *c2 = NULL;
        assert_int_equal(tether_service_open(f->user, tether_test_service_id(f->drv), EXAMPLE_CLIENT, 0, &c2),
                         TETHER_ERR_NOT_FOUND);
        /* The table stays readable; the loop ends with the last connection. */
        assert_int_equal(prop_uint(f->drv, EXAMPLE_PROP_BAUD_RATE), 9600);
        assert_false(loop_gone(f->drv));
        tether_service_close(c);
        assert_int_equal(tether_test_wait(f->t, loop_gone, f->drv, 5000), TETHER_SUCCESS);
}

static void test_nub_terminate(void **state)
{
        fx *f = *state;
        tether_connect *c = open_as(f->user, f->drv, EXAMPLE_CLIENT);
        assert_int_equal(tether_test_nub_terminate(f->resources), TETHER_SUCCESS);
        assert_true(tether_test_stopped(f->drv));
        uint64_t in[2] = { 1, 2 }, out[1];
        uint32_t n = 1;
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_ADD, in, 2, out, &n), TETHER_ERR_NOT_ATTACHED);
        tether_service_close(c);
}

/* The harness freed with everything still running: a connection open, a
 * device ticking, a delayed add queued. tetherd's exit, and ASan checks
 * it leaves nothing. */
static void test_free_while_busy(void **state)
{
        fx *f = *state;
        tether_connect *admin = open_as(f->root, f->drv, EXAMPLE_CLIENT);
        uint64_t unit = 11, id = 0;
        uint32_t n = 1;
        assert_int_equal(tether_call_scalar_method(admin, EXAMPLE_PUBLISH_DEVICE, &unit, 1, &id, &n), TETHER_SUCCESS);
        tether_test_nub *nub = NULL;
        tether_test_service *dev = NULL;
        assert_int_equal(tether_test_published(f->drv, 0, &nub), TETHER_SUCCESS);
        assert_int_equal(tether_test_start(f->b, "ExampleDevice", nub, &dev), TETHER_SUCCESS);
        tether_connect *dc = open_as(f->user, dev, 0);
        tether_notification_port *port = NULL, *admin_port = NULL;
        assert_int_equal(tether_notification_port_create(f->user, &port), TETHER_SUCCESS);
        assert_int_equal(tether_notification_port_create(f->root, &admin_port), TETHER_SUCCESS);
        completion done = { 0 };
        uint64_t tick[2] = { EXAMPLE_TICK_MIN_MS, EXAMPLE_TICK_MAX_COUNT }, add[3] = { 1, 2, 10000 };
        assert_int_equal(tether_call_async_method(dc, EXAMPLE_DEVICE_TICK, port, completed, &done, tick, 2, NULL, 0,
                                                  NULL, NULL, NULL, NULL),
                         TETHER_SUCCESS);
        assert_int_equal(tether_call_async_method(admin, EXAMPLE_DELAYED_ADD, admin_port, completed, &done, add, 3, NULL,
                                                  0, NULL, NULL, NULL, NULL),
                         TETHER_SUCCESS);
        tether_test_free(f->t);
        f->t = NULL;
        /* The client's side outlives it and closes without harm. */
        n = 1;
        assert_int_equal(tether_call_scalar_method(dc, EXAMPLE_DEVICE_GET_UNIT, NULL, 0, &id, &n),
                         TETHER_ERR_NOT_ATTACHED);
        tether_notification_port_destroy(port);
        tether_notification_port_destroy(admin_port);
        tether_service_close(dc);
        tether_service_close(admin);
        /* A new harness after it works as the first did. */
        assert_int_equal(tether_test_new(&f->t), TETHER_SUCCESS);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_load_and_match, setup, teardown),
                cmocka_unit_test_setup_teardown(test_access_policy, setup, teardown),
                cmocka_unit_test_setup_teardown(test_properties, setup, teardown),
                cmocka_unit_test_setup_teardown(test_calls, setup, teardown),
                cmocka_unit_test_setup_teardown(test_legacy, setup, teardown),
                cmocka_unit_test_setup_teardown(test_async, setup, teardown),
                cmocka_unit_test_setup_teardown(test_memory, setup, teardown),
                cmocka_unit_test_setup_teardown(test_device, setup, teardown),
                cmocka_unit_test_setup_teardown(test_device_driver, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
                cmocka_unit_test_setup_teardown(test_nub_terminate, setup, teardown),
                cmocka_unit_test_setup_teardown(test_free_while_busy, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
