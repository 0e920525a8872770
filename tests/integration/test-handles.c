/* SPDX-License-Identifier: MIT */
/* Stale handles through a real tetherd: after a close (of the handle or of
 * its session) every call fails with BadArgument, closes are harmless, a
 * reused slot never lets an old handle reach the new object, kinds are not
 * confused, and a close racing calls on other threads is no use-after-free.
 *
 * Against the old libtether, whose handles were heap pointers, these tests
 * crash or abort (a use after free, a double free, or under ASan a report)
 * or see Success where BadArgument is wanted: a call through a closed
 * connection whose address a new open reused ran on the new one. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client/handle.h"
#include "example/example.h"
#include "harness.h"

static harness H;

static int group_setup(void **state)
{
        return harness_start(&H);
}

static int group_teardown(void **state)
{
        return harness_stop(&H) == 0 ? 0 : -1;
}

static tether_connect *open_example(tether_session *s)
{
        tether_connect *c = NULL;
        assert_int_equal(tether_service_open(s, harness_find(s, "ExampleDriver"), EXAMPLE_CLIENT, 0, &c), TETHER_SUCCESS);
        return c;
}

static tether_ret_t add(tether_connect *c, uint64_t *out)
{
        uint64_t in[2] = { 1, 2 };
        uint32_t n = 1;
        return tether_call_scalar_method(c, EXAMPLE_ADD, in, 2, out, &n);
}

/* EXAMPLE_COUNT: the connection's own counter, incremented, so the answer
 * tells which connection a call reached. */
static tether_ret_t count(tether_connect *c, uint64_t *out)
{
        uint32_t n = 1;
        return tether_call_scalar_method(c, EXAMPLE_COUNT, NULL, 0, out, &n);
}

static uint32_t open_count(tether_session *s)
{
        tether_entry_info *info = NULL;
        assert_int_equal(tether_registry_entry_get_info(s, harness_find(s, "ExampleDriver"), &info), TETHER_SUCCESS);
        uint32_t n = info->open_count;
        tether_entry_info_free(info);
        return n;
}

static void on_async(void *refcon, tether_ret_t result, const uint64_t *args, uint32_t n)
{
        (*(int *)refcon)++;
}

static void on_service(void *refcon, uint32_t type, uint64_t id)
{
        (*(int *)refcon)++;
}

static void pump(tether_notification_port *p, int ms)
{
        struct pollfd pfd = { .fd = tether_notification_port_get_fd(p), .events = POLLIN };
        if (poll(&pfd, 1, ms) > 0)
                assert_int_equal(tether_notification_port_dispatch(p), TETHER_SUCCESS);
}

/* Every function that takes a connection, through a dead one. */
static void assert_connect_dead(tether_connect *c)
{
        uint64_t out = 0, in[3] = { 1, 2, 0 };
        uint32_t n = 1;
        uint8_t buf[16];
        size_t size = sizeof(buf);
        assert_int_equal(add(c, &out), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_call_method(c, EXAMPLE_ADD, in, 2, NULL, 0, &out, &n, NULL, NULL), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_call_struct_method(c, EXAMPLE_ECHO, buf, sizeof(buf), buf, &size), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(size, sizeof(buf)); /* untouched */
        assert_int_equal(tether_connect_id(c), 0);
        void *addr = NULL;
        assert_int_equal(tether_map_memory(c, EXAMPLE_MEMORY_STATUS, 0, &addr, NULL), TETHER_ERR_BAD_ARGUMENT);
        assert_null(addr);
        assert_int_equal(tether_unmap_memory(c, EXAMPLE_MEMORY_STATUS, buf), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_service_close(c), TETHER_ERR_BAD_ARGUMENT);
}

/* ---- connections ---- */

static void call_after_close_and_double_close(void **state)
{
        tether_session *s = harness_session(&H);
        uint32_t before = open_count(s);
        tether_connect *c = open_example(s);
        uint64_t out = 0;
        assert_int_equal(add(c, &out), TETHER_SUCCESS);
        assert_int_equal(out, 3);
        assert_int_not_equal(tether_connect_id(c), 0);
        assert_int_equal(tether_service_close(c), TETHER_SUCCESS);
        assert_int_equal(open_count(s), before);
        assert_connect_dead(c);
        /* A double close is harmless: the session and tetherd are fine. */
        assert_int_equal(tether_service_close(c), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_service_close(NULL), TETHER_ERR_BAD_ARGUMENT);
        tether_connect *d = open_example(s);
        assert_int_equal(add(d, &out), TETHER_SUCCESS);
        assert_int_equal(tether_service_close(d), TETHER_SUCCESS);
        tether_session_close(s);
}

/* The case that used to run a call on the wrong connection: the old handle's
 * slot taken by a new connection. */
static void reopen_at_the_same_slot_never_reaches_the_new_connection(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *old = open_example(s);
        uint64_t n = 0;
        for (int i = 0; i < 5; i++)
                assert_int_equal(count(old, &n), TETHER_SUCCESS);
        assert_int_equal(n, 5);
        assert_int_equal(tether_service_close(old), TETHER_SUCCESS);

        /* Free slots come back first in, first out: open and close until a
         * connection lands in the old one's slot. */
        tether_connect *fresh = NULL;
        for (uint32_t i = 0; i <= HANDLE_MAX_SLOTS && !fresh; i++) {
                tether_connect *c = open_example(s);
                if (handle_name_index((uintptr_t)c) == handle_name_index((uintptr_t)old))
                        fresh = c;
                else
                        assert_int_equal(tether_service_close(c), TETHER_SUCCESS);
        }
        assert_non_null(fresh);
        assert_ptr_not_equal(fresh, old);
        assert_int_not_equal(handle_name_generation((uintptr_t)fresh), handle_name_generation((uintptr_t)old));

        /* The old handle fails, and does not touch the new connection's
         * counter: its first call answers 1. */
        assert_int_equal(count(old, &n), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_service_close(old), TETHER_ERR_BAD_ARGUMENT);
        assert_connect_dead(old);
        assert_int_equal(count(fresh, &n), TETHER_SUCCESS);
        assert_int_equal(n, 1);
        assert_int_equal(count(fresh, &n), TETHER_SUCCESS);
        assert_int_equal(n, 2);
        assert_int_equal(tether_service_close(fresh), TETHER_SUCCESS);
        tether_session_close(s);
}

/* ---- sessions ---- */

static void session_close_kills_everything_it_had(void **state)
{
        tether_session *s = harness_session(&H), *other = harness_session(&H);
        uint32_t before = open_count(other);
        tether_connect *c = open_example(s);
        void *mem = NULL;
        size_t size = 0;
        assert_int_equal(tether_map_memory(c, EXAMPLE_MEMORY_STATUS, 0, &mem, &size), TETHER_SUCCESS);
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(s, &port), TETHER_SUCCESS);
        tether_value *m = NULL;
        tether_notification *n = NULL;
        int seen = 0;
        assert_int_equal(tether_service_matching("ExampleDriver", &m), TETHER_SUCCESS);
        assert_int_equal(tether_service_add_matching_notification(port, TETHER_NOTIFY_MATCHED, m, on_service, &seen, &n),
                         TETHER_SUCCESS);
        pump(port, 2000);
        assert_int_equal(seen, 1);
        assert_int_equal(open_count(other), before + 1);

        tether_session_close(s);

        /* tetherd saw the connection close. */
        assert_int_equal(open_count(other), before);
        /* The session ... */
        uint64_t id = 0;
        assert_int_equal(tether_registry_get_root(s, &id), TETHER_ERR_BAD_ARGUMENT);
        tether_entry_info *info = NULL;
        assert_int_equal(tether_registry_entry_get_info(s, 1, &info), TETHER_ERR_BAD_ARGUMENT);
        uint64_t *ids = NULL;
        size_t count_ids = 0;
        assert_int_equal(tether_get_matching_services(s, m, &ids, &count_ids), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_get_matching_service(s, m, &id), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_registry_entry_from_path(s, "TetherService:/TetherResources", &id),
                         TETHER_ERR_BAD_ARGUMENT);
        tether_value *v = NULL;
        assert_int_equal(tether_registry_entry_get_properties(s, 1, &v), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_registry_entry_set_properties(s, 1, m), TETHER_ERR_BAD_ARGUMENT);
        tether_connect *c2 = NULL;
        assert_int_equal(tether_service_open(s, 1, EXAMPLE_CLIENT, 0, &c2), TETHER_ERR_BAD_ARGUMENT);
        assert_null(c2);
        tether_notification_port *p2 = NULL;
        assert_int_equal(tether_notification_port_create(s, &p2), TETHER_ERR_BAD_ARGUMENT);
        tether_probe_filter f = { .kinds = TETHER_PROBE_CALLS, .selector = TETHER_PROBE_ANY_SELECTOR };
        tether_probe *probe = NULL;
        assert_int_equal(tether_probe_attach(s, &f, &probe), TETHER_ERR_BAD_ARGUMENT);
        tether_session_close(s); /* twice: nothing */
        /* ... its connection, whose mapping went with it ... */
        assert_connect_dead(c);
        unsigned char vec;
        assert_int_equal(mincore(mem, 1, &vec), -1);
        assert_int_equal(errno, ENOMEM);
        /* ... its port ... */
        assert_int_equal(tether_notification_port_get_fd(port), -1);
        assert_int_equal(tether_notification_port_dispatch(port), TETHER_ERR_BAD_ARGUMENT);
        tether_notification *n2 = NULL;
        assert_int_equal(tether_service_add_matching_notification(port, TETHER_NOTIFY_MATCHED, m, on_service, &seen, &n2),
                         TETHER_ERR_BAD_ARGUMENT);
        tether_notification_port_destroy(port);
        /* ... and its notification. */
        tether_notification_remove(n);
        tether_value_unref(m);
        assert_int_equal(seen, 1);

        /* The other session never noticed. */
        tether_connect *d = open_example(other);
        uint64_t out = 0;
        assert_int_equal(add(d, &out), TETHER_SUCCESS);
        tether_service_close(d);
        tether_session_close(other);
}

/* ---- ports, notifications, probes ---- */

static void port_after_destroy(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c = open_example(s);
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(s, &port), TETHER_SUCCESS);
        assert_true(tether_notification_port_get_fd(port) >= 0);
        tether_value *m = NULL;
        tether_notification *n = NULL;
        int seen = 0, done = 0;
        assert_int_equal(tether_service_matching("ExampleDriver", &m), TETHER_SUCCESS);
        assert_int_equal(tether_service_add_matching_notification(port, TETHER_NOTIFY_MATCHED, m, on_service, &seen, &n),
                         TETHER_SUCCESS);

        tether_notification_port_destroy(port);

        assert_int_equal(tether_notification_port_get_fd(port), -1);
        assert_int_equal(tether_notification_port_dispatch(port), TETHER_ERR_BAD_ARGUMENT);
        tether_notification *n2 = NULL;
        assert_int_equal(tether_service_add_matching_notification(port, TETHER_NOTIFY_MATCHED, m, on_service, &seen, &n2),
                         TETHER_ERR_BAD_ARGUMENT);
        assert_null(n2);
        uint64_t in[3] = { 1, 2, 10 };
        assert_int_equal(tether_call_async_method(c, EXAMPLE_DELAYED_ADD, port, on_async, &done, in, 3, NULL, 0, NULL,
                                                  NULL, NULL, NULL),
                         TETHER_ERR_BAD_ARGUMENT);
        tether_notification_remove(n); /* went with its port */
        tether_notification_port_destroy(port);
        tether_notification_port_destroy(NULL);

        /* The connection and the session go on; a new port works. */
        assert_int_equal(tether_notification_port_create(s, &port), TETHER_SUCCESS);
        assert_int_equal(tether_call_async_method(c, EXAMPLE_DELAYED_ADD, port, on_async, &done, in, 3, NULL, 0, NULL,
                                                  NULL, NULL, NULL),
                         TETHER_SUCCESS);
        for (int i = 0; i < 50 && !done; i++)
                pump(port, 100);
        assert_int_equal(done, 1);
        assert_int_equal(seen, 0); /* nothing was dispatched on the dead port */
        tether_value_unref(m);
        tether_notification_port_destroy(port);
        tether_service_close(c);
        tether_session_close(s);
}

static tether_value *greeting(int i)
{
        char text[32];
        snprintf(text, sizeof(text), "hello %d", i);
        tether_value *v = NULL;
        assert_int_equal(tether_value_new_string(text, &v), TETHER_SUCCESS);
        return v;
}

static void notification_removed_twice(void **state)
{
        tether_session *s = harness_session(&H);
        uint64_t drv = harness_find(s, "ExampleDriver");
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(s, &port), TETHER_SUCCESS);
        tether_value *m = NULL;
        assert_int_equal(tether_service_matching("ExampleDriver", &m), TETHER_SUCCESS);
        int first = 0, second = 0;
        tether_notification *n1 = NULL, *n2 = NULL;
        assert_int_equal(tether_service_add_matching_notification(port, TETHER_NOTIFY_PROPERTIES_CHANGED, m, on_service,
                                                                  &first, &n1),
                         TETHER_SUCCESS);
        assert_int_equal(harness_set(s, drv, EXAMPLE_PROP_GREETING, greeting(1)), TETHER_SUCCESS);
        for (int i = 0; i < 50 && !first; i++)
                pump(port, 100);
        assert_int_equal(first, 1);

        tether_notification_remove(n1);
        tether_notification_remove(n1);
        assert_int_equal(tether_service_add_matching_notification(port, TETHER_NOTIFY_PROPERTIES_CHANGED, m, on_service,
                                                                  &second, &n2),
                         TETHER_SUCCESS);
        /* The stale handle again, now that another notification lives: it
         * must not take that one away. */
        tether_notification_remove(n1);
        assert_int_equal(harness_set(s, drv, EXAMPLE_PROP_GREETING, greeting(2)), TETHER_SUCCESS);
        for (int i = 0; i < 50 && !second; i++)
                pump(port, 100);
        assert_int_equal(second, 1);
        assert_int_equal(first, 1);

        tether_notification_remove(n2);
        tether_notification_remove(n2);
        tether_notification_remove(NULL);
        assert_int_equal(harness_set(s, drv, EXAMPLE_PROP_GREETING, greeting(3)), TETHER_SUCCESS);
        pump(port, 300);
        assert_int_equal(second, 1);
        tether_value_unref(m);
        tether_notification_port_destroy(port);
        tether_session_close(s);
}

static void probe_after_detach(void **state)
{
        tether_session *s = harness_session(&H);
        tether_probe_filter f = { .kinds = TETHER_PROBE_CALLS, .selector = TETHER_PROBE_ANY_SELECTOR };
        tether_probe *p = NULL;
        assert_int_equal(tether_probe_attach(s, &f, &p), TETHER_SUCCESS);
        assert_true(tether_probe_get_fd(p) >= 0);
        tether_probe_event e;
        assert_int_equal(tether_probe_read(p, &e), TETHER_ERR_NOT_READY);
        tether_probe_detach(p);
        assert_int_equal(tether_probe_get_fd(p), -1);
        assert_int_equal(tether_probe_read(p, &e), TETHER_ERR_BAD_ARGUMENT);
        tether_probe_detach(p);
        tether_probe_detach(NULL);
        tether_session_close(s);
}

/* ---- kinds ---- */

static void a_handle_of_one_kind_is_not_another(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c = open_example(s);
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(s, &port), TETHER_SUCCESS);
        uint64_t out = 0, id = 0;

        /* A session as a connection, port, notification or probe. */
        tether_connect *sc = (tether_connect *)s;
        assert_int_equal(add(sc, &out), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_service_close(sc), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_connect_id(sc), 0);
        assert_int_equal(tether_notification_port_dispatch((tether_notification_port *)s), TETHER_ERR_BAD_ARGUMENT);
        tether_notification_port_destroy((tether_notification_port *)s);
        tether_notification_remove((tether_notification *)s);
        tether_probe_event e;
        assert_int_equal(tether_probe_read((tether_probe *)s, &e), TETHER_ERR_BAD_ARGUMENT);
        tether_probe_detach((tether_probe *)s);
        /* A connection or a port as a session. */
        assert_int_equal(tether_registry_get_root((tether_session *)c, &id), TETHER_ERR_BAD_ARGUMENT);
        tether_session_close((tether_session *)c);
        tether_session_close((tether_session *)port);
        /* A port as a connection, a connection as a port. */
        assert_int_equal(tether_service_close((tether_connect *)port), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_notification_port_get_fd((tether_notification_port *)c), -1);
        tether_notification_port_destroy((tether_notification_port *)c);
        /* Something that was never a handle: an address. */
        assert_int_equal(add((tether_connect *)&out, &out), TETHER_ERR_BAD_ARGUMENT);
        tether_session_close((tether_session *)&out);

        /* Everything survived the mix-ups. */
        assert_int_equal(tether_registry_get_root(s, &id), TETHER_SUCCESS);
        assert_int_equal(add(c, &out), TETHER_SUCCESS);
        assert_true(tether_notification_port_get_fd(port) >= 0);
        assert_int_equal(tether_notification_port_dispatch(port), TETHER_SUCCESS);
        tether_notification_port_destroy(port);
        assert_int_equal(tether_service_close(c), TETHER_SUCCESS);
        tether_session_close(s);
}

/* ---- mappings ---- */

static void unmap_after_unmap_and_after_close(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c = open_example(s);
        void *buf = NULL, *status = NULL;
        assert_int_equal(tether_map_memory(c, EXAMPLE_MEMORY_BUFFER, 0, &buf, NULL), TETHER_SUCCESS);
        assert_int_equal(tether_unmap_memory(c, EXAMPLE_MEMORY_BUFFER, buf), TETHER_SUCCESS);
        assert_int_equal(tether_unmap_memory(c, EXAMPLE_MEMORY_BUFFER, buf), TETHER_ERR_NOT_FOUND);
        assert_int_equal(tether_unmap_memory(c, EXAMPLE_MEMORY_BUFFER, NULL), TETHER_ERR_NOT_FOUND);

        assert_int_equal(tether_map_memory(c, EXAMPLE_MEMORY_BUFFER, 0, &buf, NULL), TETHER_SUCCESS);
        assert_int_equal(tether_map_memory(c, EXAMPLE_MEMORY_STATUS, 0, &status, NULL), TETHER_SUCCESS);
        assert_int_equal(tether_unmap_memory(c, EXAMPLE_MEMORY_STATUS, status), TETHER_SUCCESS);
        assert_int_equal(tether_service_close(c), TETHER_SUCCESS);
        /* Stale connection: BadArgument, whether the mapping was still there
         * at the close (it went with it) or had been unmapped before. */
        assert_int_equal(tether_unmap_memory(c, EXAMPLE_MEMORY_BUFFER, buf), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_unmap_memory(c, EXAMPLE_MEMORY_STATUS, status), TETHER_ERR_BAD_ARGUMENT);
        unsigned char vec;
        assert_int_equal(mincore(buf, 1, &vec), -1);
        assert_int_equal(errno, ENOMEM);
        tether_session_close(s);
}

/* ---- threads ---- */

typedef struct caller {
        tether_connect *c;
        atomic_long successes;
        atomic_bool stop;
        atomic_long failures;  /* BadArgument or NotAttached */
        long wrong;            /* any other result, or a Success after a failure */
        tether_ret_t first_wrong;
} caller;

/* Calls until told to stop. Once a call has failed the handle is dead, so a
 * later Success would mean the call reached some other connection. */
static void *call_loop(void *arg)
{
        caller *k = arg;
        while (!atomic_load(&k->stop)) {
                uint64_t out = 0;
                tether_ret_t r = add(k->c, &out);
                if (r == TETHER_SUCCESS && out == 3 && !atomic_load(&k->failures)) {
                        atomic_fetch_add(&k->successes, 1);
                } else if (r == TETHER_ERR_BAD_ARGUMENT || r == TETHER_ERR_NOT_ATTACHED) {
                        atomic_fetch_add(&k->failures, 1);
                } else {
                        if (!k->wrong)
                                k->first_wrong = r;
                        k->wrong++;
                }
        }
        return NULL;
}

static void wait_successes(caller *k, int n, long at_least)
{
        for (int spins = 0; spins < 10000; spins++) {
                long total = 0;
                for (int i = 0; i < n; i++)
                        total += atomic_load(&k[i].successes);
                if (total >= at_least)
                        return;
                usleep(1000);
        }
        fail_msg("the callers made no progress");
}

/* Until every caller has met the dead handle (bounded): on a loaded machine
 * a caller may not run at all for a while after the close. */
static void wait_all_failed(caller *k, int n)
{
        for (int spins = 0; spins < 5000; spins++) {
                int met = 0;
                for (int i = 0; i < n; i++)
                        met += atomic_load(&k[i].failures) > 0;
                if (met == n)
                        return;
                usleep(1000);
        }
}

static void check_callers(caller *k, int n)
{
        for (int i = 0; i < n; i++) {
                if (k[i].wrong)
                        fail_msg("caller %d: %ld wrong results, the first %s", i, k[i].wrong,
                                 tether_ret_name(k[i].first_wrong));
                assert_true(atomic_load(&k[i].failures) > 0);
        }
}

/* One thread closes a connection while two call on it in a loop, and then
 * opens new ones that may take its slot while the callers keep going. */
static void close_racing_calls(void **state)
{
        enum { CALLERS = 2 };
        tether_session *s = harness_session(&H);
        for (int round = 0; round < 10; round++) {
                caller k[CALLERS] = { 0 };
                pthread_t t[CALLERS];
                tether_connect *c = open_example(s);
                for (int i = 0; i < CALLERS; i++) {
                        k[i].c = c;
                        pthread_create(&t[i], NULL, call_loop, &k[i]);
                }
                wait_successes(k, CALLERS, 20 + round * 10);
                assert_int_equal(tether_service_close(c), TETHER_SUCCESS);
                tether_connect *others[8];
                for (int i = 0; i < 8; i++)
                        others[i] = open_example(s);
                wait_all_failed(k, CALLERS);
                for (int i = 0; i < CALLERS; i++) {
                        atomic_store(&k[i].stop, true);
                        pthread_join(t[i], NULL);
                }
                check_callers(k, CALLERS);
                for (int i = 0; i < 8; i++) {
                        uint64_t n = 0;
                        assert_int_equal(count(others[i], &n), TETHER_SUCCESS);
                        assert_int_equal(n, 1); /* no stray call reached them */
                        assert_int_equal(tether_service_close(others[i]), TETHER_SUCCESS);
                }
        }
        tether_session_close(s);
}

/* The same with the whole session closed under the callers. */
static void session_close_racing_calls(void **state)
{
        enum { CALLERS = 3 };
        for (int round = 0; round < 5; round++) {
                tether_session *s = harness_session(&H);
                caller k[CALLERS] = { 0 };
                pthread_t t[CALLERS];
                tether_connect *c[CALLERS];
                for (int i = 0; i < CALLERS; i++) {
                        c[i] = open_example(s);
                        k[i].c = c[i];
                        pthread_create(&t[i], NULL, call_loop, &k[i]);
                }
                wait_successes(k, CALLERS, 30);
                tether_session_close(s);
                wait_all_failed(k, CALLERS);
                for (int i = 0; i < CALLERS; i++) {
                        atomic_store(&k[i].stop, true);
                        pthread_join(t[i], NULL);
                }
                check_callers(k, CALLERS);
                for (int i = 0; i < CALLERS; i++)
                        assert_int_equal(tether_service_close(c[i]), TETHER_ERR_BAD_ARGUMENT);
        }
}

typedef struct closer {
        tether_connect *c;
        pthread_barrier_t *go;
        tether_ret_t result;
} closer;

static void *close_once(void *arg)
{
        closer *k = arg;
        pthread_barrier_wait(k->go);
        k->result = tether_service_close(k->c);
        return NULL;
}

/* Two threads close the same connection at once: one closes it, the other
 * is told BadArgument. */
static void racing_double_close(void **state)
{
        tether_session *s = harness_session(&H);
        uint32_t before = open_count(s);
        for (int round = 0; round < 20; round++) {
                tether_connect *c = open_example(s);
                pthread_barrier_t go;
                pthread_barrier_init(&go, NULL, 2);
                closer k[2] = { { c, &go, 1 }, { c, &go, 1 } };
                pthread_t t[2];
                for (int i = 0; i < 2; i++)
                        pthread_create(&t[i], NULL, close_once, &k[i]);
                for (int i = 0; i < 2; i++)
                        pthread_join(t[i], NULL);
                pthread_barrier_destroy(&go);
                assert_true((k[0].result == TETHER_SUCCESS && k[1].result == TETHER_ERR_BAD_ARGUMENT) ||
                            (k[1].result == TETHER_SUCCESS && k[0].result == TETHER_ERR_BAD_ARGUMENT));
        }
        assert_int_equal(open_count(s), before);
        tether_session_close(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(call_after_close_and_double_close),
                cmocka_unit_test(reopen_at_the_same_slot_never_reaches_the_new_connection),
                cmocka_unit_test(session_close_kills_everything_it_had),
                cmocka_unit_test(port_after_destroy),
                cmocka_unit_test(notification_removed_twice),
                cmocka_unit_test(probe_after_detach),
                cmocka_unit_test(a_handle_of_one_kind_is_not_another),
                cmocka_unit_test(unmap_after_unmap_and_after_close),
                cmocka_unit_test(close_racing_calls),
                cmocka_unit_test(session_close_racing_calls),
                cmocka_unit_test(racing_double_close),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
