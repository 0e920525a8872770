/* SPDX-License-Identifier: MIT */
/* Registry, matching, properties and notifications, through libtether
 * against a real tetherd running the example driver. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "example/example.h"
#include "harness.h"
#include "wire/message.h"
#include "wire/reason.h"

static harness H;

static int group_setup(void **state)
{
        return harness_start(&H);
}

static int group_teardown(void **state)
{
        return harness_stop(&H) == 0 ? 0 : -1;
}

static void root_and_children(void **state)
{
        tether_session *s = harness_session(&H);
        uint64_t root = 0, *kids = NULL;
        size_t n = 0;
        assert_int_equal(tether_registry_get_root(s, &root), TETHER_SUCCESS);
        tether_entry_info *info = NULL;
        assert_int_equal(tether_registry_entry_get_info(s, root, &info), TETHER_SUCCESS);
        assert_string_equal(info->path, "TetherService:/");
        assert_int_equal(info->parent_id, 0);
        tether_entry_info_free(info);

        /* The root holds the resources nub and the USB bus. */
        assert_int_equal(tether_registry_entry_get_children(s, root, &kids, &n), TETHER_SUCCESS);
        assert_int_equal(n, 2);
        assert_int_equal(tether_registry_entry_get_info(s, kids[0], &info), TETHER_SUCCESS);
        assert_string_equal(info->class_name, "TetherResources");
        tether_entry_info *usb = NULL;
        assert_int_equal(tether_registry_entry_get_info(s, kids[1], &usb), TETHER_SUCCESS);
        assert_string_equal(usb->class_name, "TetherUSBBus");
        tether_entry_info_free(usb);
        assert_string_equal(info->path, "TetherService:/TetherResources");
        assert_true(info->state & TETHER_ENTRY_MATCHED);
        uint64_t parent = 0;
        assert_int_equal(tether_registry_entry_get_parent(s, kids[0], &parent), TETHER_SUCCESS);
        assert_int_equal(parent, root);
        assert_int_equal(tether_registry_entry_get_parent(s, root, &parent), TETHER_ERR_NOT_FOUND);
        tether_entry_info_free(info);
        free(kids);
        tether_session_close(s);
}

static void service_entry_and_path(void **state)
{
        tether_session *s = harness_session(&H);
        uint64_t id = harness_find(s, "ExampleDriver");
        tether_entry_info *info = NULL;
        assert_int_equal(tether_registry_entry_get_info(s, id, &info), TETHER_SUCCESS);
        assert_string_equal(info->class_name, "ExampleDriver");
        assert_string_equal(info->driver, "org.tether.example");
        assert_string_equal(info->path, "TetherService:/TetherResources/ExampleDriver");
        assert_int_equal(info->state & (TETHER_ENTRY_REGISTERED | TETHER_ENTRY_MATCHED | TETHER_ENTRY_ACTIVE),
                         TETHER_ENTRY_REGISTERED | TETHER_ENTRY_MATCHED | TETHER_ENTRY_ACTIVE);
        uint64_t back = 0;
        assert_int_equal(tether_registry_entry_from_path(s, info->path, &back), TETHER_SUCCESS);
        assert_int_equal(back, id);
        /* Without the plane prefix too. */
        assert_int_equal(tether_registry_entry_from_path(s, "/TetherResources/ExampleDriver", &back), TETHER_SUCCESS);
        assert_int_equal(back, id);
        assert_int_equal(tether_registry_entry_from_path(s, "/TetherResources/Nope", &back), TETHER_ERR_NOT_FOUND);
        tether_entry_info_free(info);
        assert_int_equal(tether_registry_entry_get_info(s, 0xdead, &info), TETHER_ERR_NOT_FOUND);
        tether_session_close(s);
}

static size_t count_matches(tether_session *s, tether_value *m)
{
        uint64_t *ids = NULL;
        size_t n = 0;
        assert_int_equal(tether_get_matching_services(s, m, &ids, &n), TETHER_SUCCESS);
        free(ids);
        tether_value_unref(m);
        return n;
}

static void matching_dictionaries(void **state)
{
        tether_session *s = harness_session(&H);
        tether_value *m = NULL, *sub = NULL;

        assert_int_equal(tether_service_name_matching("ExampleDriver", &m), TETHER_SUCCESS);
        assert_int_equal(count_matches(s, m), 1);
        assert_int_equal(tether_service_matching("NoSuchClass", &m), TETHER_SUCCESS);
        assert_int_equal(count_matches(s, m), 0);

        /* By property value: type matters. */
        tether_value_new_dict(&m);
        tether_value_new_dict(&sub);
        tether_value_dict_set_string(sub, "Model", "tether example");
        tether_value_dict_set(m, "IOPropertyMatch", sub);
        tether_value_unref(sub);
        assert_int_equal(count_matches(s, m), 1);

        /* By provider: ExampleDriver's parent is TetherResources. */
        tether_value_new_dict(&m);
        tether_value_dict_set_string(m, "IOProviderClass", "ExampleDriver");
        tether_service_matching("TetherResources", &sub);
        tether_value_dict_set(m, "IOParentMatch", sub);
        tether_value_unref(sub);
        assert_int_equal(count_matches(s, m), 1);
        tether_value_new_dict(&m);
        tether_value_dict_set_string(m, "IOProviderClass", "ExampleDriver");
        tether_service_matching("ExampleDriver", &sub);
        tether_value_dict_set(m, "IOParentMatch", sub);
        tether_value_unref(sub);
        assert_int_equal(count_matches(s, m), 0);

        /* A malformed matching dictionary is refused, not matched. */
        tether_value_new_dict(&m);
        tether_value_dict_set_int(m, "IOProviderClass", 5, 32);
        uint64_t *ids = NULL;
        size_t n = 0;
        assert_int_equal(tether_get_matching_services(s, m, &ids, &n), TETHER_ERR_BAD_ARGUMENT);
        tether_value_unref(m);
        tether_session_close(s);
}

static void read_properties(void **state)
{
        tether_session *s = harness_session(&H);
        uint64_t id = harness_find(s, "ExampleDriver");
        tether_value *props = NULL, *v = NULL;
        assert_int_equal(tether_registry_entry_get_properties(s, id, &props), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_type(props), TETHER_TYPE_DICT);
        assert_int_equal(tether_value_dict_get(props, "Model", &v), TETHER_SUCCESS);
        const char *str;
        assert_int_equal(tether_value_get_string(v, &str), TETHER_SUCCESS);
        assert_string_equal(str, "tether example");
        tether_value_unref(props);

        assert_int_equal(tether_registry_entry_get_property(s, id, EXAMPLE_PROP_BAUD_RATE, &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_type(v), TETHER_TYPE_UINT);
        assert_int_equal(tether_value_get_bits(v), 32); /* the width survives the wire */
        tether_value_unref(v);
        assert_int_equal(tether_registry_entry_get_property(s, id, "NoSuchKey", &v), TETHER_ERR_NOT_FOUND);
        tether_session_close(s);
}

static uint64_t baud(tether_session *s, uint64_t id)
{
        tether_value *v = NULL;
        uint64_t u = 0;
        assert_int_equal(tether_registry_entry_get_property(s, id, EXAMPLE_PROP_BAUD_RATE, &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_uint(v, &u), TETHER_SUCCESS);
        tether_value_unref(v);
        return u;
}

static void write_properties_through_the_driver(void **state)
{
        tether_session *a = harness_session(&H), *b = harness_session(&H);
        uint64_t id = harness_find(a, "ExampleDriver");
        tether_value *v = NULL;

        tether_value_new_uint(19200, 32, &v);
        assert_int_equal(harness_set(a, id, EXAMPLE_PROP_BAUD_RATE, v), TETHER_SUCCESS);
        assert_int_equal(baud(b, id), 19200); /* another reader sees it at once */

        /* Out of range: refused, table unchanged. */
        tether_value_new_uint(12345, 32, &v);
        assert_int_equal(harness_set(a, id, EXAMPLE_PROP_BAUD_RATE, v), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(baud(b, id), 19200);

        /* Type confusion: a string where a number belongs. */
        tether_value_new_string("9600", &v);
        assert_int_equal(harness_set(a, id, EXAMPLE_PROP_BAUD_RATE, v), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(baud(b, id), 19200);

        /* Read-only and unknown keys. */
        tether_value_new_string("hacked", &v);
        assert_int_equal(harness_set(a, id, "Model", v), TETHER_ERR_NOT_WRITABLE);
        tether_value_new_bool(true, &v);
        assert_int_equal(harness_set(a, id, "Whatever", v), TETHER_ERR_NOT_WRITABLE);

        /* A plain 64-bit int (what another language would send) is accepted
         * and stored at the driver's width. */
        tether_value_new_int(57600, 64, &v);
        assert_int_equal(harness_set(a, id, EXAMPLE_PROP_BAUD_RATE, v), TETHER_SUCCESS);
        assert_int_equal(baud(b, id), 57600);

        /* All or nothing: one bad key refuses the whole request. */
        tether_value *d = NULL;
        tether_value_new_dict(&d);
        tether_value_dict_set_uint(d, EXAMPLE_PROP_BAUD_RATE, 300, 32);
        tether_value_dict_set_string(d, EXAMPLE_PROP_GREETING, "");
        assert_int_equal(tether_registry_entry_set_properties(a, id, d), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(baud(b, id), 57600);
        tether_value_dict_set_string(d, EXAMPLE_PROP_GREETING, "bonjour");
        assert_int_equal(tether_registry_entry_set_properties(a, id, d), TETHER_SUCCESS);
        assert_int_equal(baud(b, id), 300);
        tether_value_unref(d);

        /* A nub has no driver to validate writes. */
        uint64_t res = harness_find(a, "TetherResources");
        tether_value_new_uint(1, 32, &v);
        assert_int_equal(harness_set(a, res, "X", v), TETHER_ERR_UNSUPPORTED);
        tether_session_close(a);
        tether_session_close(b);
}

/* ---- who writes, and why a write is refused ---- */

/* One key written; *ret_why as tether_registry_entry_set_properties_why
 * leaves it (free it). Consumes v. */
static tether_ret_t set_why(tether_session *s, uint64_t id, const char *key, tether_value *v, char **ret_why)
{
        tether_value *d = NULL;
        if (tether_value_new_dict(&d) != TETHER_SUCCESS || tether_value_dict_set(d, key, v) != TETHER_SUCCESS)
                return TETHER_ERR_NO_MEMORY;
        tether_value_unref(v);
        tether_ret_t r = tether_registry_entry_set_properties_why(s, id, d, ret_why);
        tether_value_unref(d);
        return r;
}

static tether_ret_t set_bool_why(tether_session *s, uint64_t id, const char *key, bool b, char **ret_why)
{
        tether_value *v = NULL;
        tether_value_new_bool(b, &v);
        return set_why(s, id, key, v, ret_why);
}

/* A boolean property; one never set (HoldDeviceStart) reads as false. */
static bool prop_bool(tether_session *s, uint64_t id, const char *key)
{
        tether_value *v = NULL;
        bool b = false;
        tether_ret_t r = tether_registry_entry_get_property(s, id, key, &v);
        if (r == TETHER_ERR_NOT_FOUND)
                return false;
        assert_int_equal(r, TETHER_SUCCESS);
        assert_int_equal(tether_value_get_bool(v, &b), TETHER_SUCCESS);
        tether_value_unref(v);
        return b;
}

/* Run fn(h) in a child as uid 65534 with gid as its only group; its exit
 * status: 0 if every expectation held, else the step that failed. */
static int as_uid_65534(int (*fn)(const harness *h), const harness *h, gid_t gid)
{
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(65534, 65534, 65534) < 0)
                        _exit(100);
                _exit(fn(h));
        }
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        return WEXITSTATUS(st);
}

/* Not an administrator: the example's Locked and HoldDeviceStart are
 * refused with the driver's reason, ordinary keys are not. */
static int ordinary_writer(const harness *h)
{
        tether_session *s = NULL;
        if (tether_session_open(h->sock, &s) != TETHER_SUCCESS)
                return 1;
        tether_value *m = NULL;
        uint64_t id = 0;
        tether_service_matching("ExampleDriver", &m);
        tether_get_matching_service(s, m, &id);
        tether_value_unref(m);
        char *why = NULL;
        if (set_bool_why(s, id, EXAMPLE_PROP_LOCKED, true, &why) != TETHER_ERR_NOT_PRIVILEGED)
                return 2;
        if (!why || strcmp(why, "Locked may be set by an administrator only (root, or tetherd's admin group); "
                                "uid 65534 is not one"))
                return 3;
        free(why);
        /* Privilege comes before the value: a bad value says nothing more. */
        tether_value *v = NULL;
        tether_value_new_string("yes", &v);
        if (set_why(s, id, EXAMPLE_PROP_HOLD_DEVICE_START, v, &why) != TETHER_ERR_NOT_PRIVILEGED ||
            !strstr(why, "HoldDeviceStart may be set by an administrator only"))
                return 4;
        free(why);
        tether_value_new_string("from nobody", &v);
        if (set_why(s, id, EXAMPLE_PROP_GREETING, v, &why) != TETHER_SUCCESS || why)
                return 5;
        /* Method calls see the same privilege: TETHER_METHOD_ADMIN. */
        tether_connect *c = NULL;
        if (tether_service_open(s, id, EXAMPLE_CLIENT, 0, &c) != TETHER_SUCCESS)
                return 6;
        if (tether_call_scalar_method(c, EXAMPLE_RESET, NULL, 0, NULL, NULL) != TETHER_ERR_NOT_PRIVILEGED)
                return 7;
        tether_service_close(c);
        tether_session_close(s);
        return 0;
}

static void admin_properties_need_an_administrator(void **state)
{
        if (getuid() != 0)
                skip(); /* the child must become another user */
        tether_session *s = harness_session(&H);
        uint64_t id = harness_find(s, "ExampleDriver");
        assert_false(prop_bool(s, id, EXAMPLE_PROP_LOCKED));
        assert_int_equal(as_uid_65534(ordinary_writer, &H, 65534), 0);
        /* Refused: the table is as it was. Accepted: the greeting. */
        assert_false(prop_bool(s, id, EXAMPLE_PROP_LOCKED));
        assert_false(prop_bool(s, id, EXAMPLE_PROP_HOLD_DEVICE_START));
        tether_value *v = NULL;
        const char *str = NULL;
        assert_int_equal(tether_registry_entry_get_property(s, id, EXAMPLE_PROP_GREETING, &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_string(v, &str), TETHER_SUCCESS);
        assert_string_equal(str, "from nobody");
        tether_value_unref(v);
        /* Root is an administrator. */
        char *why = NULL;
        assert_int_equal(set_bool_why(s, id, EXAMPLE_PROP_LOCKED, true, &why), TETHER_SUCCESS);
        assert_null(why);
        assert_true(prop_bool(s, id, EXAMPLE_PROP_LOCKED));
        assert_int_equal(set_bool_why(s, id, EXAMPLE_PROP_LOCKED, false, &why), TETHER_SUCCESS);
        assert_false(prop_bool(s, id, EXAMPLE_PROP_LOCKED));
        tether_session_close(s);
}

/* In tetherd's admin group: an administrator, for writes and methods. */
static int admin_group_writer(const harness *h)
{
        tether_session *s = NULL;
        if (tether_session_open(h->sock, &s) != TETHER_SUCCESS)
                return 1;
        tether_value *m = NULL;
        uint64_t id = 0;
        tether_service_matching("ExampleDriver", &m);
        tether_get_matching_service(s, m, &id);
        tether_value_unref(m);
        char *why = NULL;
        if (set_bool_why(s, id, EXAMPLE_PROP_LOCKED, true, &why) != TETHER_SUCCESS)
                return 2;
        if (set_bool_why(s, id, EXAMPLE_PROP_LOCKED, false, &why) != TETHER_SUCCESS)
                return 3;
        /* Unlocked again: the open below is not refused by Locked. */
        tether_connect *c = NULL;
        if (tether_service_open(s, id, EXAMPLE_CLIENT, 0, &c) != TETHER_SUCCESS)
                return 4;
        if (tether_call_scalar_method(c, EXAMPLE_RESET, NULL, 0, NULL, NULL) != TETHER_SUCCESS)
                return 5;
        tether_service_close(c);
        tether_session_close(s);
        return 0;
}

/* A second tetherd for one test, started by its setup and stopped by its
 * teardown, which cmocka runs even when the test fails: a failed test
 * leaves no daemon behind (holding the test's output open). */
static harness H2;
static const char *h2_args[4];
static char policy_dir[32];

static int start_h2(void)
{
        memset(&H2, 0, sizeof(H2));
        H2.args = h2_args;
        return harness_start(&H2);
}

static int stop_h2(void **state)
{
        int r = H2.pid ? harness_stop(&H2) : 0;
        H2.pid = 0;
        if (policy_dir[0]) {
                char cmd[64];
                snprintf(cmd, sizeof(cmd), "rm -rf %s", policy_dir);
                if (system(cmd) != 0)
                        r = -1;
                policy_dir[0] = '\0';
        }
        return r == 0 ? 0 : -1;
}

static int start_with_admin_group(void **state)
{
        h2_args[0] = "--admin-group";
        h2_args[1] = "users";
        h2_args[2] = NULL;
        return getuid() == 0 && getgrnam("users") ? start_h2() : 0;
}

static void admin_group_members_are_administrators(void **state)
{
        if (!H2.pid)
                skip(); /* not root, or no group "users" */
        gid_t users = getgrnam("users")->gr_gid;
        assert_int_equal(as_uid_65534(admin_group_writer, &H2, users), 0);
        /* The same uid outside the group is no administrator. */
        assert_int_equal(as_uid_65534(ordinary_writer, &H2, 65534), 0);
}

/* A bundle whose access policy keeps its services to root and the group
 * users: others may not write their properties either, whatever the
 * driver would say; inside the policy, the driver still decides. */
static int outside_the_policy(const harness *h)
{
        tether_session *s = NULL;
        if (tether_session_open(h->sock, &s) != TETHER_SUCCESS)
                return 1;
        tether_value *m = NULL, *v = NULL;
        uint64_t id = 0;
        tether_service_matching("ExampleDriver", &m);
        tether_get_matching_service(s, m, &id);
        tether_value_unref(m);
        char *why = NULL;
        tether_value_new_string("let me", &v);
        if (set_why(s, id, EXAMPLE_PROP_GREETING, v, &why) != TETHER_ERR_NOT_PRIVILEGED)
                return 2;
        if (!why || strcmp(why, "the access policy of org.tether.example does not admit uid 65534"))
                return 3;
        free(why);
        tether_session_close(s);
        return 0;
}

static int inside_the_policy(const harness *h)
{
        tether_session *s = NULL;
        if (tether_session_open(h->sock, &s) != TETHER_SUCCESS)
                return 1;
        tether_value *m = NULL, *v = NULL;
        uint64_t id = 0;
        tether_service_matching("ExampleDriver", &m);
        tether_get_matching_service(s, m, &id);
        tether_value_unref(m);
        char *why = NULL;
        tether_value_new_string("group member", &v);
        if (set_why(s, id, EXAMPLE_PROP_GREETING, v, &why) != TETHER_SUCCESS)
                return 2;
        if (set_bool_why(s, id, EXAMPLE_PROP_LOCKED, true, &why) != TETHER_ERR_NOT_PRIVILEGED ||
            !strstr(why, "administrator only"))
                return 3;
        free(why);
        tether_session_close(s);
        return 0;
}

/* A copy of the example bundle whose access policy admits root and the
 * group users; given with --drivers, which tetherd reads before
 * TETHER_DRIVERS, so the in-tree bundle of the same id is refused as a
 * duplicate and this one runs. */
static int start_with_policy(void **state)
{
        const char *from = getenv("TETHER_DRIVERS");
        if (getuid() != 0 || !getgrnam("users") || !from)
                return 0;
        char cmd[512], path[256];
        strcpy(policy_dir, "/tmp/tether-policy-XXXXXX");
        if (!mkdtemp(policy_dir))
                return -1;
        snprintf(path, sizeof(path), "%s/org.tether.example.tether", policy_dir);
        snprintf(cmd, sizeof(cmd), "cp %s/org.tether.example.tether/example.so %s/", from, path);
        if (mkdir(path, 0755) != 0 || system(cmd) != 0)
                return -1;
        snprintf(path, sizeof(path), "%s/org.tether.example.tether/manifest.json", policy_dir);
        FILE *f = fopen(path, "w");
        if (!f)
                return -1;
        fputs("{\"schema\":1,\"bundle\":\"org.tether.example\",\"version\":\"0.1.0\",\"library\":\"example.so\","
              "\"personalities\":{\"ExampleDriver\":{\"driver\":\"ExampleDriver\",\"IOProviderClass\":\"TetherResources\"}},"
              "\"access\":{\"default\":{\"users\":[\"root\"],\"groups\":[\"users\"]}}}",
              f);
        fclose(f);
        h2_args[0] = "--drivers";
        h2_args[1] = policy_dir;
        h2_args[2] = NULL;
        return start_h2();
}

static void access_policy_decides_who_may_write(void **state)
{
        if (!H2.pid)
                skip();
        gid_t users = getgrnam("users")->gr_gid;
        assert_int_equal(as_uid_65534(outside_the_policy, &H2, 65534), 0);
        assert_int_equal(as_uid_65534(inside_the_policy, &H2, users), 0);
        tether_session *s = harness_session(&H2);
        uint64_t id = harness_find(s, "ExampleDriver");
        assert_false(prop_bool(s, id, EXAMPLE_PROP_LOCKED));
        tether_value *v = NULL;
        tether_value_new_string("root", &v);
        assert_int_equal(harness_set(s, id, EXAMPLE_PROP_GREETING, v), TETHER_SUCCESS);
        tether_session_close(s);
}

static void refusals_say_why(void **state)
{
        tether_session *s = harness_session(&H);
        uint64_t id = harness_find(s, "ExampleDriver");
        tether_value *v = NULL;
        char *why = NULL;
        tether_value_new_uint(12345, 32, &v);
        assert_int_equal(set_why(s, id, EXAMPLE_PROP_BAUD_RATE, v, &why), TETHER_ERR_BAD_ARGUMENT);
        assert_string_equal(why, "BaudRate must be a standard rate: 300, 1200, 2400, 4800, 9600, 19200, 38400, 57600 "
                                 "or 115200");
        free(why);
        tether_value_new_string("hacked", &v);
        assert_int_equal(set_why(s, id, "Model", v, &why), TETHER_ERR_NOT_WRITABLE);
        assert_string_equal(why, "Model is read-only");
        free(why);
        tether_value_new_string("", &v);
        assert_int_equal(set_why(s, id, EXAMPLE_PROP_GREETING, v, &why), TETHER_ERR_BAD_ARGUMENT);
        assert_string_equal(why, "Greeting must be a string of 1 to 64 bytes");
        free(why);
        /* The key as the writer sent it, control characters made harmless. */
        tether_value_new_bool(true, &v);
        assert_int_equal(set_why(s, id, "Oops\x1b[2J", v, &why), TETHER_ERR_NOT_WRITABLE);
        assert_string_equal(why, "ExampleDriver has no writable property \"Oops?[2J\"");
        free(why);
        /* Over-long: cut to TETHER_MAX_REASON bytes. */
        char key[301];
        memset(key, 'K', 300);
        key[300] = '\0';
        tether_value_new_bool(true, &v);
        assert_int_equal(set_why(s, id, key, v, &why), TETHER_ERR_NOT_WRITABLE);
        assert_int_equal(strlen(why), TETHER_MAX_REASON);
        assert_memory_equal(why, "ExampleDriver has no writable property \"KKKK", 44);
        free(why);
        /* A refusal without a reason: "" (a nub has no driver). */
        tether_value_new_uint(1, 32, &v);
        assert_int_equal(set_why(s, harness_find(s, "TetherResources"), "X", v, &why), TETHER_ERR_UNSUPPORTED);
        assert_string_equal(why, "");
        free(why);
        /* No reason asked for: the plain call is the same call. */
        tether_value_new_uint(7, 32, &v);
        assert_int_equal(harness_set(s, id, EXAMPLE_PROP_BAUD_RATE, v), TETHER_ERR_BAD_ARGUMENT);
        tether_session_close(s);
}

/* libtether checks a reason itself before handing it over: whatever it
 * holds is printed on a terminal, so it must not depend on tetherd having
 * checked. A stand-in tetherd answers HELLO, then three writes: with an
 * escape sequence, with 201 bytes, with a good reason. */
static void *lying_tetherd(void *arg)
{
        int lfd = *(int *)arg, fd = accept(lfd, NULL, NULL);
        static uint8_t rx[WIRE_MAX_MESSAGE];
        static const char *const bodies[] = { "\x1b[2Jgotcha", NULL, "plain words" };
        char big[WIRE_MAX_REASON + 1];
        memset(big, 'x', sizeof(big));
        for (int i = -1; fd >= 0 && i < 3; i++) {
                size_t len = 0;
                if (wire_recv(fd, rx, sizeof(rx), &len, NULL) != TETHER_SUCCESS)
                        break;
                wire_header h;
                memcpy(&h, rx, sizeof(h));
                wire_msg m;
                wire_msg_init(&m, h.type | WIRE_REPLY_FLAG, h.serial, i < 0 ? TETHER_SUCCESS : TETHER_ERR_BAD_ARGUMENT);
                if (i < 0) {
                        wire_put_u64(&m, 1);
                        wire_put_u64(&m, 1);
                } else if (bodies[i]) {
                        wire_put_bytes(&m, bodies[i], strlen(bodies[i]));
                } else {
                        wire_put_bytes(&m, big, sizeof(big));
                }
                wire_msg_finish(&m);
                wire_send(fd, &m, -1);
        }
        if (fd >= 0)
                close(fd);
        return NULL;
}

static void libtether_drops_a_reason_that_is_not_one(void **state)
{
        char path[] = "/tmp/tether-liar-XXXXXX";
        assert_non_null(mkdtemp(path));
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        snprintf(a.sun_path, sizeof(a.sun_path), "%s/s", path);
        int lfd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
        assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(listen(lfd, 1), 0);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, lying_tetherd, &lfd), 0);
        tether_session *s = NULL;
        assert_int_equal(tether_session_open(a.sun_path, &s), TETHER_SUCCESS);
        tether_value *d = NULL;
        tether_value_new_dict(&d);
        tether_value_dict_set_bool(d, "K", true);
        char *why = NULL;
        assert_int_equal(tether_registry_entry_set_properties_why(s, 5, d, &why), TETHER_ERR_BAD_ARGUMENT);
        assert_string_equal(why, "");
        free(why);
        assert_int_equal(tether_registry_entry_set_properties_why(s, 5, d, &why), TETHER_ERR_BAD_ARGUMENT);
        assert_string_equal(why, "");
        free(why);
        assert_int_equal(tether_registry_entry_set_properties_why(s, 5, d, &why), TETHER_ERR_BAD_ARGUMENT);
        assert_string_equal(why, "plain words");
        free(why);
        tether_value_unref(d);
        tether_session_close(s);
        pthread_join(t, NULL);
        close(lfd);
        unlink(a.sun_path);
        rmdir(path);
}

/* ---- notifications ---- */

typedef struct seen {
        int matched, terminated;
        uint64_t last;
} seen;

static void on_service(void *refcon, uint32_t type, uint64_t id)
{
        seen *sn = refcon;
        if (type == TETHER_NOTIFY_TERMINATED)
                sn->terminated++;
        else
                sn->matched++;
        sn->last = id;
}

static void pump(tether_notification_port *p, int ms)
{
        struct pollfd pfd = { .fd = tether_notification_port_get_fd(p), .events = POLLIN };
        if (poll(&pfd, 1, ms) > 0)
                assert_int_equal(tether_notification_port_dispatch(p), TETHER_SUCCESS);
}

static void matched_and_terminated_notifications(void **state)
{
        tether_session *s = harness_session(&H);
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(s, &port), TETHER_SUCCESS);

        /* MATCHED delivers what exists at once: ExampleDriver is there. */
        seen drv = { 0 };
        tether_value *m = NULL;
        tether_notification *n1 = NULL, *n2 = NULL, *n3 = NULL;
        tether_service_matching("ExampleDriver", &m);
        assert_int_equal(tether_service_add_matching_notification(port, TETHER_NOTIFY_MATCHED, m, on_service, &drv, &n1),
                         TETHER_SUCCESS);
        tether_value_unref(m);
        pump(port, 2000);
        assert_int_equal(drv.matched, 1);

        seen dev = { 0 }, gone = { 0 };
        tether_service_matching("ExampleDevice", &m);
        assert_int_equal(tether_service_add_matching_notification(port, TETHER_NOTIFY_PUBLISHED, m, on_service, &dev, &n2),
                         TETHER_SUCCESS);
        assert_int_equal(tether_service_add_matching_notification(port, TETHER_NOTIFY_TERMINATED, m, on_service, &gone, &n3),
                         TETHER_SUCCESS);
        tether_value_unref(m);

        /* The example driver publishes a nub; ExampleDevice matches it. */
        tether_connect *c = NULL;
        assert_int_equal(tether_service_open(s, harness_find(s, "ExampleDriver"), EXAMPLE_CLIENT, 0, &c), TETHER_SUCCESS);
        uint64_t unit = 7, nub = 0;
        uint32_t one = 1;
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_PUBLISH_DEVICE, &unit, 1, &nub, &one), TETHER_SUCCESS);
        for (int i = 0; i < 50 && !dev.matched; i++)
                pump(port, 100);
        assert_int_equal(dev.matched, 1);
        uint64_t devid = dev.last;
        tether_entry_info *info = NULL;
        assert_int_equal(tether_registry_entry_get_info(s, devid, &info), TETHER_SUCCESS);
        assert_string_equal(info->class_name, "ExampleDevice");
        assert_int_equal(info->parent_id, nub);
        assert_string_equal(info->path, "TetherService:/TetherResources/ExampleDriver/ExampleDeviceNub@7/ExampleDevice@7");
        tether_entry_info_free(info);

        /* A connection to the device works until the device goes away... */
        tether_connect *dc = NULL;
        uint64_t got = 0;
        assert_int_equal(tether_service_open(s, devid, 0, 0, &dc), TETHER_SUCCESS);
        assert_int_equal(tether_call_scalar_method(dc, EXAMPLE_DEVICE_GET_UNIT, NULL, 0, &got, &one), TETHER_SUCCESS);
        assert_int_equal(got, 7);

        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_REMOVE_DEVICE, &nub, 1, NULL, NULL), TETHER_SUCCESS);
        for (int i = 0; i < 50 && !gone.terminated; i++)
                pump(port, 100);
        assert_int_equal(gone.terminated, 1);
        assert_int_equal(gone.last, devid);
        assert_int_equal(tether_registry_entry_get_info(s, devid, &info), TETHER_ERR_NOT_FOUND);

        /* ...then calls fail cleanly, at once (a driver in a host stopped its
         * clients before tetherd told anyone TERMINATED), and closing still
         * works. */
        one = 1;
        assert_int_equal(tether_call_scalar_method(dc, EXAMPLE_DEVICE_GET_UNIT, NULL, 0, &got, &one),
                         TETHER_ERR_NOT_ATTACHED);
        assert_int_equal(tether_service_close(dc), TETHER_SUCCESS);
        /* Removing it again: it is gone. */
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_REMOVE_DEVICE, &nub, 1, NULL, NULL), TETHER_ERR_NOT_FOUND);

        /* A removed notification is silent. */
        tether_notification_remove(n2);
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_PUBLISH_DEVICE, &unit, 1, &nub, &one), TETHER_SUCCESS);
        pump(port, 300);
        assert_int_equal(dev.matched, 1);
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_REMOVE_DEVICE, &nub, 1, NULL, NULL), TETHER_SUCCESS);

        tether_notification_remove(n1);
        tether_notification_remove(n3);
        tether_service_close(c);
        tether_notification_port_destroy(port);
        tether_session_close(s);
}

typedef struct changes {
        int count, other_types;
        uint64_t last;
} changes;

static void on_change(void *refcon, uint32_t type, uint64_t id)
{
        changes *c = refcon;
        if (type == TETHER_NOTIFY_PROPERTIES_CHANGED)
                c->count++;
        else
                c->other_types++;
        c->last = id;
}

static tether_ret_t set_baud(tether_session *s, uint64_t id, uint64_t rate)
{
        tether_value *v = NULL;
        tether_value_new_uint(rate, 32, &v);
        return harness_set(s, id, EXAMPLE_PROP_BAUD_RATE, v); /* it takes v */
}

static void properties_changed_notifications(void **state)
{
        tether_session *s = harness_session(&H);
        uint64_t drv = harness_find(s, "ExampleDriver");
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(s, &port), TETHER_SUCCESS);
        changes mine = { 0 }, others = { 0 };
        tether_value *m = NULL;
        tether_notification *n1 = NULL, *n2 = NULL, *bad = NULL;
        tether_service_matching("ExampleDriver", &m);
        assert_int_equal(tether_service_add_matching_notification(port, TETHER_NOTIFY_PROPERTIES_CHANGED, m, on_change,
                                                                  &mine, &n1),
                         TETHER_SUCCESS);
        /* Types past the last one are refused. */
        assert_int_equal(tether_service_add_matching_notification(port, TETHER_NOTIFY_PROPERTIES_CHANGED + 1, m,
                                                                  on_change, &mine, &bad),
                         TETHER_ERR_BAD_ARGUMENT);
        tether_value_unref(m);
        tether_service_matching("DSOX2000", &m);
        assert_int_equal(tether_service_add_matching_notification(port, TETHER_NOTIFY_PROPERTIES_CHANGED, m, on_change,
                                                                  &others, &n2),
                         TETHER_SUCCESS);
        tether_value_unref(m);

        uint64_t before = baud(s, drv), after = before == 19200 ? 38400 : 19200;
        /* Neither a refused write nor one of the value already there is a change. */
        assert_int_equal(set_baud(s, drv, 12345), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(set_baud(s, drv, before), TETHER_SUCCESS);
        assert_int_equal(set_baud(s, drv, after), TETHER_SUCCESS);
        for (int i = 0; i < 50 && !mine.count; i++)
                pump(port, 100);
        /* The port is in order: had either of the first two been sent, it
         * would have come first, and a second message would follow. */
        pump(port, 300);
        assert_int_equal(mine.count, 1);
        assert_int_equal(mine.other_types, 0);
        assert_int_equal(mine.last, drv);
        assert_int_equal(others.count + others.other_types, 0);

        /* After removal, silence. */
        tether_notification_remove(n1);
        assert_int_equal(set_baud(s, drv, before), TETHER_SUCCESS);
        pump(port, 300);
        assert_int_equal(mine.count, 1);
        assert_int_equal(baud(s, drv), before);

        tether_notification_remove(n2);
        tether_notification_port_destroy(port);
        tether_session_close(s);
}

static void notification_needs_own_port_and_valid_dict(void **state)
{
        tether_session *s = harness_session(&H);
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(s, &port), TETHER_SUCCESS);
        tether_value *m = NULL;
        tether_notification *n = NULL;
        tether_value_new_dict(&m);
        tether_value_dict_set_bool(m, "IONameMatch", true);
        assert_int_equal(tether_service_add_matching_notification(port, TETHER_NOTIFY_MATCHED, m, on_service, NULL, &n),
                         TETHER_ERR_BAD_ARGUMENT);
        tether_value_unref(m);
        tether_service_matching("X", &m);
        assert_int_equal(tether_service_add_matching_notification(port, 99, m, on_service, NULL, &n),
                         TETHER_ERR_BAD_ARGUMENT);
        tether_value_unref(m);
        tether_notification_port_destroy(port);
        tether_session_close(s);
}

static bool fds_at_most(void *ctx)
{
        int n = harness_fd_count(&H);
        return n >= 0 && n <= *(int *)ctx;
}

/* A long-lived session creates and drops ports: a dropped port gives back
 * its place under the per-session limits (16 ports, 256 notifications)
 * and its socket, without the session ending. */
static void ports_come_and_go(void **state)
{
        tether_session *s = harness_session(&H);
        int fds = harness_fd_count(&H);
        tether_value *m = NULL;
        tether_service_matching("ExampleDriver", &m);
        for (int round = 0; round < 40; round++) {
                tether_notification_port *port = NULL;
                assert_int_equal(tether_notification_port_create(s, &port), TETHER_SUCCESS);
                for (int i = 0; i < 10; i++) {
                        tether_notification *n = NULL;
                        assert_int_equal(tether_service_add_matching_notification(port, TETHER_NOTIFY_PUBLISHED, m,
                                                                                  on_service, NULL, &n),
                                         TETHER_SUCCESS);
                }
                tether_notification_port_destroy(port);
        }
        tether_value_unref(m);
        /* Hang-ups reach tetherd's main loop asynchronously; a leak never
         * settles. */
        assert_true(harness_wait(fds_at_most, &fds, 2000));
        tether_session_close(s);
}

/* The per-uid session limit, as uid 65534 (root is not bound by it: the
 * sessions it leaves are root's way in). Runs in a child that drops to
 * that uid; returns 0 if every expectation held, else the failed step. */
static int sessions_per_uid_child(void)
{
        enum { LIMIT = 64 };
        if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
                return 10;
        tether_session *s[LIMIT + 1];
        int n = 0;
        tether_ret_t r = TETHER_SUCCESS;
        /* Exactly the limit opens once tetherd has noticed the earlier
         * sessions closing (asynchronously): retry until it has. A leaked
         * session never frees its slot, and this fails. */
        for (int attempt = 0; attempt < 50; attempt++) {
                n = 0;
                while (n <= LIMIT && (r = tether_session_open(H.sock, &s[n])) == TETHER_SUCCESS)
                        n++;
                if (n == LIMIT)
                        break;
                while (n)
                        tether_session_close(s[--n]);
                usleep(20000);
        }
        if (n != LIMIT)
                return 1;
        if (r != TETHER_ERR_NO_RESOURCES)
                return 2;
        /* One closes, one more may open. */
        tether_session_close(s[--n]);
        tether_session *t = NULL;
        for (int i = 0; i < 100 && tether_session_open(H.sock, &t) != TETHER_SUCCESS; i++)
                usleep(10000); /* the daemon notices the close on its next turn */
        if (!t)
                return 3;
        tether_session_close(t);
        while (n)
                tether_session_close(s[--n]);
        return 0;
}

static void sessions_per_uid_are_limited(void **state)
{
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(sessions_per_uid_child());
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        /* Meanwhile root is not bound: more than the limit opens. */
        tether_session *s[70];
        for (int i = 0; i < 70; i++)
                assert_int_equal(tether_session_open(H.sock, &s[i]), TETHER_SUCCESS);
        for (int i = 0; i < 70; i++)
                tether_session_close(s[i]);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(root_and_children),
                cmocka_unit_test(service_entry_and_path),
                cmocka_unit_test(matching_dictionaries),
                cmocka_unit_test(read_properties),
                cmocka_unit_test(write_properties_through_the_driver),
                cmocka_unit_test(refusals_say_why),
                cmocka_unit_test(libtether_drops_a_reason_that_is_not_one),
                cmocka_unit_test(admin_properties_need_an_administrator),
                cmocka_unit_test_setup_teardown(admin_group_members_are_administrators, start_with_admin_group, stop_h2),
                cmocka_unit_test_setup_teardown(access_policy_decides_who_may_write, start_with_policy, stop_h2),
                cmocka_unit_test(matched_and_terminated_notifications),
                cmocka_unit_test(properties_changed_notifications),
                cmocka_unit_test(notification_needs_own_port_and_valid_dict),
                cmocka_unit_test(ports_come_and_go),
                cmocka_unit_test(sessions_per_uid_are_limited),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
