/* SPDX-License-Identifier: MIT */
/* Probes through a real tetherd: what a call and a USB transfer look like to
 * `tether probe`, the filters, async completions, lost events, and who may
 * attach. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dsox2000/dsox2000.h"
#include "example/example.h"
#include "harness.h"

static harness H = { .simulate = "dsox2002a:PROBE0001" };

static int group_setup(void **state)
{
        return harness_start(&H);
}

static int group_teardown(void **state)
{
        return harness_stop(&H) == 0 ? 0 : -1;
}

static tether_probe *attach(tether_session *s, uint32_t kinds, uint64_t service, int32_t pid, uint32_t selector)
{
        tether_probe_filter f = { .kinds = kinds, .snaplen = 4096, .service_id = service, .pid = pid,
                                  .selector = selector };
        tether_probe *p = NULL;
        assert_int_equal(tether_probe_attach(s, &f, &p), TETHER_SUCCESS);
        return p;
}

/* The next event within 2 s; false if none came. */
static bool next_event(tether_probe *p, tether_probe_event *e)
{
        struct pollfd pfd = { .fd = tether_probe_get_fd(p), .events = POLLIN };
        for (int i = 0; i < 2; i++) {
                tether_ret_t r = tether_probe_read(p, e);
                if (r == TETHER_SUCCESS)
                        return true;
                assert_int_equal(r, TETHER_ERR_NOT_READY);
                if (i == 0 && poll(&pfd, 1, 2000) <= 0)
                        return false;
        }
        return false;
}

/* Nothing waiting: give tetherd a moment to have sent anything it would. */
static void assert_quiet(tether_probe *p)
{
        struct pollfd pfd = { .fd = tether_probe_get_fd(p), .events = POLLIN };
        assert_int_equal(poll(&pfd, 1, 100), 0);
}

static tether_connect *open_class(tether_session *s, const char *class_name)
{
        tether_connect *c = NULL;
        assert_int_equal(tether_service_open(s, harness_find(s, class_name), 0, 0, &c), TETHER_SUCCESS);
        return c;
}

static void call_event_fields(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c = open_class(s, "ExampleDriver");
        tether_probe *p = attach(s, TETHER_PROBE_CALLS, 0, 0, TETHER_PROBE_ANY_SELECTOR);
        uint64_t in[2] = { 40, 2 }, out = 0;
        uint32_t n = 1;
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_ADD, in, 2, &out, &n), TETHER_SUCCESS);
        tether_probe_event e;
        assert_true(next_event(p, &e));
        assert_int_equal(e.kind, TETHER_PROBE_EVENT_CALL);
        assert_int_equal(e.result, TETHER_SUCCESS);
        assert_int_equal(e.selector, EXAMPLE_ADD);
        assert_string_equal(e.method, "add");
        assert_int_equal(e.pid, getpid());
        assert_int_equal(e.connection_id, tether_connect_id(c));
        assert_int_equal(e.service_id, harness_find(s, "ExampleDriver"));
        assert_int_equal(e.scalar_in, 2);
        assert_int_equal(e.scalar_out, 1);
        assert_int_equal(e.struct_in, 0);
        assert_int_equal(e.dropped, 0);
        assert_true(e.duration_ns > 0 && e.duration_ns < 1000000000u);

        /* A struct call: sizes both ways. */
        char buf[100] = "hello", back[100];
        size_t back_size = sizeof(back);
        assert_int_equal(tether_call_struct_method(c, EXAMPLE_ECHO, buf, 5, back, &back_size), TETHER_SUCCESS);
        assert_true(next_event(p, &e));
        assert_string_equal(e.method, "echo");
        assert_int_equal(e.struct_in, 5);
        assert_int_equal(e.struct_out, 5);

        /* Refused by the checker: seen with its error, before any driver code. */
        n = 1;
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_ADD, in, 1, &out, &n), TETHER_ERR_BAD_ARGUMENT);
        assert_true(next_event(p, &e));
        assert_int_equal(e.result, TETHER_ERR_BAD_ARGUMENT);
        assert_string_equal(e.method, "add");
        assert_int_equal(e.scalar_in, 1);
        /* A reserved slot and a selector past the table: no name to show. */
        n = 0;
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_RESERVED, NULL, 0, NULL, &n), TETHER_ERR_UNSUPPORTED);
        assert_true(next_event(p, &e));
        assert_int_equal(e.result, TETHER_ERR_UNSUPPORTED);
        assert_string_equal(e.method, "");
        assert_int_equal(tether_call_scalar_method(c, 999, NULL, 0, NULL, &n), TETHER_ERR_BAD_ARGUMENT);
        assert_true(next_event(p, &e));
        assert_int_equal(e.selector, 999);
        assert_quiet(p);
        tether_probe_detach(p);
        tether_service_close(c);
        tether_session_close(s);
}

static void filters(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c = open_class(s, "ExampleDriver");
        tether_connect *scope = open_class(s, DSO_CLASS);
        uint64_t example = harness_find(s, "ExampleDriver");
        tether_probe *by_sel = attach(s, TETHER_PROBE_CALLS, 0, 0, EXAMPLE_COUNT);
        tether_probe *by_service = attach(s, TETHER_PROBE_CALLS, example, 0, TETHER_PROBE_ANY_SELECTOR);
        tether_probe *other_pid = attach(s, TETHER_PROBE_CALLS, 0, getpid() + 100000, TETHER_PROBE_ANY_SELECTOR);
        tether_probe *mine = attach(s, TETHER_PROBE_CALLS, 0, getpid(), TETHER_PROBE_ANY_SELECTOR);

        uint64_t in[2] = { 1, 2 }, out = 0;
        uint32_t n = 1;
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_ADD, in, 2, &out, &n), TETHER_SUCCESS);
        n = 1;
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_COUNT, NULL, 0, &out, &n), TETHER_SUCCESS);
        n = 0;
        assert_int_equal(tether_call_scalar_method(scope, DSO_STOP, NULL, 0, NULL, &n), TETHER_SUCCESS);

        tether_probe_event e;
        assert_true(next_event(by_sel, &e));
        assert_int_equal(e.selector, EXAMPLE_COUNT);
        assert_quiet(by_sel);
        assert_true(next_event(by_service, &e));
        assert_string_equal(e.method, "add");
        assert_true(next_event(by_service, &e));
        assert_string_equal(e.method, "count");
        assert_quiet(by_service); /* not the scope's stop */
        assert_quiet(other_pid);
        const char *seen[3] = { "add", "count", "stop" };
        for (int i = 0; i < 3; i++) {
                assert_true(next_event(mine, &e));
                assert_string_equal(e.method, seen[i]);
        }
        tether_probe_detach(by_sel);
        tether_probe_detach(by_service);
        tether_probe_detach(other_pid);
        tether_probe_detach(mine);
        tether_service_close(scope);
        tether_service_close(c);
        tether_session_close(s);
}

/* A SCPI query through the scope driver: the transfers it makes carry the
 * call's pid and selector, and their bytes are the USBTMC messages. */
static void usb_transfers(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *scope = open_class(s, DSO_CLASS);
        tether_probe *p = attach(s, TETHER_PROBE_USB, 0, 0, TETHER_PROBE_ANY_SELECTOR);
        char answer[256];
        size_t len = sizeof(answer);
        assert_int_equal(tether_call_struct_method(scope, DSO_SCPI, "*IDN?", 5, answer, &len), TETHER_SUCCESS);
        tether_probe_event e;
        bool saw_query = false, saw_request = false, saw_answer = false;
        while (!saw_answer && next_event(p, &e)) {
                assert_int_equal(e.kind, TETHER_PROBE_EVENT_USB);
                assert_int_equal(e.transfer_type, 3);
                assert_int_equal(e.result, TETHER_SUCCESS);
                assert_int_equal(e.pid, getpid());
                assert_int_equal(e.selector, DSO_SCPI);
                assert_int_equal(e.connection_id, tether_connect_id(scope));
                assert_int_equal(e.captured, e.endpoint & 0x80 ? e.actual : e.requested);
                assert_true(e.captured >= 12);
                if (e.endpoint == 0x02 && e.data[0] == 1) { /* DEV_DEP_MSG_OUT */
                        assert_int_equal(e.data[1] ^ e.data[2], 0xff); /* bTag, bTagInverse */
                        assert_memory_equal(e.data + 12, "*IDN?\n", 6);
                        saw_query = true;
                } else if (e.endpoint == 0x02 && e.data[0] == 2) { /* REQUEST_DEV_DEP_MSG_IN */
                        saw_request = saw_query;
                } else {
                        assert_int_equal(e.endpoint, 0x81);
                        assert_int_equal(e.data[0], 2); /* DEV_DEP_MSG_IN */
                        assert_true(e.captured - 12 >= len);
                        assert_memory_equal(e.data + 12, answer, len);
                        saw_answer = saw_request;
                }
        }
        assert_true(saw_answer);
        assert_quiet(p);
        tether_probe_detach(p);

        /* The snaplen bounds what is kept, not what is reported moved. */
        tether_probe_filter f = { .kinds = TETHER_PROBE_USB, .snaplen = 4, .selector = TETHER_PROBE_ANY_SELECTOR };
        assert_int_equal(tether_probe_attach(s, &f, &p), TETHER_SUCCESS);
        len = sizeof(answer);
        assert_int_equal(tether_call_struct_method(scope, DSO_SCPI, "*IDN?", 5, answer, &len), TETHER_SUCCESS);
        assert_true(next_event(p, &e));
        assert_int_equal(e.captured, 4);
        assert_true(e.requested > 12);
        tether_probe_detach(p);
        tether_service_close(scope);
        tether_session_close(s);
}

static void ignore_completion(void *refcon, tether_ret_t result, const uint64_t *args, uint32_t arg_count)
{
}

static void async_completion(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c = open_class(s, "ExampleDriver");
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(s, &port), TETHER_SUCCESS);
        tether_probe *p = attach(s, TETHER_PROBE_CALLS, 0, 0, TETHER_PROBE_ANY_SELECTOR);
        uint64_t in[3] = { 20, 22, 10 };
        assert_int_equal(tether_call_async_method(c, EXAMPLE_DELAYED_ADD, port, ignore_completion, NULL, in, 3, NULL, 0, NULL, NULL,
                                                  NULL, NULL),
                         TETHER_SUCCESS);
        tether_probe_event e;
        assert_true(next_event(p, &e));
        assert_int_equal(e.kind, TETHER_PROBE_EVENT_CALL);
        assert_true(e.call_flags & TETHER_PROBE_CALL_ASYNC);
        assert_string_equal(e.method, "delayedAdd");
        assert_true(next_event(p, &e));
        assert_int_equal(e.kind, TETHER_PROBE_EVENT_ASYNC);
        assert_int_equal(e.result, TETHER_SUCCESS);
        assert_int_equal(e.connection_id, tether_connect_id(c));
        assert_true(e.arg_count >= 1);
        assert_int_equal(e.args[0], 42);
        /* A one-shot completion is its reference's last, and it arrived. */
        assert_true(e.async_flags & TETHER_PROBE_ASYNC_LAST);
        assert_int_equal(e.delivery, TETHER_SUCCESS);
        tether_probe_detach(p);
        tether_notification_port_destroy(port);
        tether_service_close(c);
        tether_session_close(s);
}

/* A stream whose client does not read its port: the probe sees every
 * result the driver sent, which of them the full port dropped, and the
 * last one flagged. */
static void stream_results_dropped_at_a_full_port(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c = open_class(s, "ExampleDriver");
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(s, &port), TETHER_SUCCESS);
        tether_probe *p = attach(s, TETHER_PROBE_CALLS, 0, 0, TETHER_PROBE_ANY_SELECTOR);
        enum { COUNT = 3000 };
        uint64_t in[2] = { COUNT, 0 };
        assert_int_equal(tether_call_async_method(c, EXAMPLE_STREAM, port, ignore_completion, NULL, in, 2, NULL, 0,
                                                  NULL, NULL, NULL, NULL),
                         TETHER_SUCCESS);
        tether_probe_event e;
        unsigned results = 0, delivered = 0, dropped = 0, lost = 0;
        uint64_t last_seq = 0;
        bool ended = false;
        while (!ended && next_event(p, &e)) {
                lost += e.dropped;
                if (e.kind != TETHER_PROBE_EVENT_ASYNC)
                        continue;
                results++;
                assert_int_equal(e.connection_id, tether_connect_id(c));
                assert_int_equal(e.arg_count, EXAMPLE_STREAM_ARGS);
                assert_true(e.args[EXAMPLE_STREAM_SEQ] > last_seq);
                last_seq = e.args[EXAMPLE_STREAM_SEQ];
                if (e.delivery == TETHER_SUCCESS)
                        delivered++;
                else if (e.delivery == TETHER_ERR_NO_SPACE)
                        dropped++;
                else
                        fail_msg("result %u: delivery %d", results, e.delivery);
                ended = e.async_flags & TETHER_PROBE_ASYNC_LAST;
                /* Only the stream's last result is flagged so. */
                assert_int_equal(ended, e.args[EXAMPLE_STREAM_SEQ] == COUNT);
        }
        assert_true(ended);
        assert_int_equal(lost, 0);
        assert_int_equal(results, COUNT);
        assert_true(delivered > 0);
        assert_true(dropped > 0); /* nobody read the port: it filled */
        /* The driver was told the same: its count of NoSpace sends. */
        uint64_t stats[EXAMPLE_STATS_COUNT] = { 0 };
        uint32_t n = EXAMPLE_STATS_COUNT;
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_STREAM_STATS, NULL, 0, stats, &n), TETHER_SUCCESS);
        assert_true(stats[EXAMPLE_STATS_DROPPED] >= dropped);
        tether_probe_detach(p);
        tether_notification_port_destroy(port);
        tether_service_close(c);
        tether_session_close(s);
}

/* A property write is an event: its keys, the driver's answer, and the
 * reason it gave for a refusal. */
static void property_write_with_reason(void **state)
{
        tether_session *s = harness_session(&H);
        uint64_t scope = harness_find(s, DSO_CLASS);
        tether_probe *p = attach(s, TETHER_PROBE_CALLS, scope, 0, TETHER_PROBE_ANY_SELECTOR);
        tether_value *d = NULL;
        assert_int_equal(tether_value_new_dict(&d), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_uint(d, DSO_PROP_TIMEOUT, 5, 32), TETHER_SUCCESS);
        char *why = NULL;
        assert_int_equal(tether_registry_entry_set_properties_why(s, scope, d, &why), TETHER_ERR_BAD_ARGUMENT);
        assert_non_null(why);
        tether_probe_event e;
        assert_true(next_event(p, &e));
        assert_int_equal(e.kind, TETHER_PROBE_EVENT_PROPERTY);
        assert_int_equal(e.result, TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(e.service_id, scope);
        assert_int_equal(e.pid, getpid());
        assert_int_equal(e.selector, TETHER_PROBE_ANY_SELECTOR);
        assert_string_equal(e.keys, DSO_PROP_TIMEOUT);
        assert_string_equal(e.reason, why);
        assert_non_null(strstr(e.reason, "from 100 to 600000"));
        free(why);
        /* Accepted: no reason; two keys, both named. */
        assert_int_equal(tether_value_dict_set_uint(d, DSO_PROP_TIMEOUT, 5000, 32), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_double(d, DSO_PROP_TRIG_LEVEL, 0.5), TETHER_SUCCESS);
        assert_int_equal(tether_registry_entry_set_properties(s, scope, d), TETHER_SUCCESS);
        assert_true(next_event(p, &e));
        assert_int_equal(e.kind, TETHER_PROBE_EVENT_PROPERTY);
        assert_int_equal(e.result, TETHER_SUCCESS);
        assert_string_equal(e.reason, "");
        assert_true(!strcmp(e.keys, DSO_PROP_TIMEOUT "," DSO_PROP_TRIG_LEVEL) ||
                    !strcmp(e.keys, DSO_PROP_TRIG_LEVEL "," DSO_PROP_TIMEOUT));
        tether_value_unref(d);
        /* A selector filter leaves property writes out: they have none. */
        tether_probe_detach(p);
        p = attach(s, TETHER_PROBE_CALLS, scope, 0, DSO_SCPI);
        assert_int_equal(tether_value_new_dict(&d), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_uint(d, DSO_PROP_TIMEOUT, 5, 32), TETHER_SUCCESS);
        assert_int_equal(tether_registry_entry_set_properties(s, scope, d), TETHER_ERR_BAD_ARGUMENT);
        tether_value_unref(d);
        assert_quiet(p);
        tether_probe_detach(p);
        tether_session_close(s);
}

/* A prober that stops reading loses events, never slows the driver, and
 * is told how many it lost. */
static void lost_events_are_counted(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c = open_class(s, "ExampleDriver");
        tether_probe *p = attach(s, TETHER_PROBE_CALLS, 0, 0, EXAMPLE_COUNT);
        uint64_t out = 0;
        uint32_t n = 1;
        enum { CALLS = 40000 };
        for (int i = 0; i < CALLS; i++) {
                n = 1;
                assert_int_equal(tether_call_scalar_method(c, EXAMPLE_COUNT, NULL, 0, &out, &n), TETHER_SUCCESS);
        }
        tether_probe_event e;
        unsigned long got = 0, lost = 0;
        while (tether_probe_read(p, &e) == TETHER_SUCCESS) {
                got++;
                lost += e.dropped;
        }
        assert_true(got < CALLS); /* the buffer filled */
        /* Every event is either delivered or counted, but the count of the
         * last run of losses travels with the next event, so make one. */
        n = 1;
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_COUNT, NULL, 0, &out, &n), TETHER_SUCCESS);
        assert_true(next_event(p, &e));
        got++;
        lost += e.dropped;
        assert_int_equal(got + lost, CALLS + 1);
        tether_probe_detach(p);
        tether_service_close(c);
        tether_session_close(s);
}

static void only_root_or_tetherds_user(void **state)
{
        if (geteuid() != 0 || harness_fd_count(&H) < 0)
                skip();
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (setgid(65534) || setuid(65534))
                        _exit(2);
                tether_session *s = NULL;
                if (tether_session_open(H.sock, &s) != TETHER_SUCCESS)
                        _exit(3); /* the socket's directory keeps nobody out */
                tether_probe_filter f = { .kinds = TETHER_PROBE_CALLS, .selector = TETHER_PROBE_ANY_SELECTOR };
                tether_probe *p = NULL;
                tether_ret_t r = tether_probe_attach(s, &f, &p);
                tether_session_close(s);
                _exit(r == TETHER_ERR_NOT_PRIVILEGED ? 0 : 1);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        assert_true(WIFEXITED(st));
        if (WEXITSTATUS(st) == 3)
                skip();
        assert_int_equal(WEXITSTATUS(st), 0);
}

static bool fds_at_most(void *ctx)
{
        int n = harness_fd_count(&H);
        return n >= 0 && n <= *(int *)ctx;
}

static void bad_filters_and_detach_under_traffic(void **state)
{
        tether_session *s = harness_session(&H);
        tether_probe_filter f = { .kinds = 0, .selector = TETHER_PROBE_ANY_SELECTOR };
        tether_probe *p = NULL;
        assert_int_equal(tether_probe_attach(s, &f, &p), TETHER_ERR_BAD_ARGUMENT);
        f.kinds = 0x80;
        assert_int_equal(tether_probe_attach(s, &f, &p), TETHER_ERR_BAD_ARGUMENT);

        /* Probers come and go while calls run; the daemon keeps count. */
        tether_connect *c = open_class(s, "ExampleDriver");
        int fds = harness_fd_count(&H);
        for (int i = 0; i < 50; i++) {
                p = attach(s, TETHER_PROBE_CALLS | TETHER_PROBE_USB, 0, 0, TETHER_PROBE_ANY_SELECTOR);
                uint64_t out = 0;
                uint32_t n = 1;
                assert_int_equal(tether_call_scalar_method(c, EXAMPLE_COUNT, NULL, 0, &out, &n), TETHER_SUCCESS);
                tether_probe_detach(p);
        }
        /* Detached probes end when tetherd sees the hang-up, traffic or
         * not: no growth. Waited for: hang-ups arrive asynchronously (the
         * kernel may even take one more datagram for a closed peer), and a
         * leak never settles. */
        assert_true(harness_wait(fds_at_most, &fds, 2000));
        tether_service_close(c);
        tether_session_close(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(call_event_fields),
                cmocka_unit_test(filters),
                cmocka_unit_test(usb_transfers),
                cmocka_unit_test(async_completion),
                cmocka_unit_test(stream_results_dropped_at_a_full_port),
                cmocka_unit_test(property_write_with_reason),
                cmocka_unit_test(lost_events_are_counted),
                cmocka_unit_test(only_root_or_tetherds_user),
                cmocka_unit_test(bad_filters_and_detach_under_traffic),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
