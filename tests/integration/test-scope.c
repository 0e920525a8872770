/* SPDX-License-Identifier: MIT */
/* The DSO-X 2000 driver through a real tetherd with a simulated DSO-X 2002A:
 * properties, every user-client method, the lock, async digitize. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dsox2000/dsox2000.h"
#include "harness.h"

static harness H = { .simulate = "dsox2002a:MY00001234" };

static int group_setup(void **state)
{
        return harness_start(&H);
}

static int group_teardown(void **state)
{
        return harness_stop(&H) == 0 ? 0 : -1;
}

static double prop_double(tether_session *s, uint64_t id, const char *key)
{
        tether_value *v = NULL;
        double d = NAN;
        assert_int_equal(tether_registry_entry_get_property(s, id, key, &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_double(v, &d), TETHER_SUCCESS);
        tether_value_unref(v);
        return d;
}

static tether_ret_t set_double(tether_session *s, uint64_t id, const char *key, double x)
{
        tether_value *v = NULL;
        tether_value_new_double(x, &v);
        return harness_set(s, id, key, v);
}

static void identity_properties(void **state)
{
        tether_session *s = harness_session(&H);
        uint64_t id = harness_find(s, DSO_CLASS);
        tether_value *v = NULL;
        const char *str;
        assert_int_equal(tether_registry_entry_get_property(s, id, DSO_PROP_MODEL, &v), TETHER_SUCCESS);
        tether_value_get_string(v, &str);
        assert_string_equal(str, "DSO-X 2002A");
        tether_value_unref(v);
        assert_int_equal(tether_registry_entry_get_property(s, id, DSO_PROP_SERIAL, &v), TETHER_SUCCESS);
        tether_value_get_string(v, &str);
        assert_string_equal(str, "MY00001234"); /* the serial given to --simulate */
        tether_value_unref(v);
        /* Its provider is the USB device nub, with the scope's ids. */
        uint64_t nub = 0;
        assert_int_equal(tether_registry_entry_get_parent(s, id, &nub), TETHER_SUCCESS);
        assert_int_equal(tether_registry_entry_get_property(s, nub, "idVendor", &v), TETHER_SUCCESS);
        uint64_t vid = 0;
        tether_value_get_uint(v, &vid);
        assert_int_equal(vid, 0x0957);
        tether_value_unref(v);
        tether_session_close(s);
}

static void settable_properties(void **state)
{
        tether_session *s = harness_session(&H);
        uint64_t id = harness_find(s, DSO_CLASS);
        assert_int_equal(set_double(s, id, DSO_PROP_TIMEBASE, 2e-4), TETHER_SUCCESS);
        assert_true(prop_double(s, id, DSO_PROP_TIMEBASE) == 2e-4);
        /* Outside the series' range: refused by the driver, unchanged. */
        assert_int_equal(set_double(s, id, DSO_PROP_TIMEBASE, 100), TETHER_ERR_BAD_ARGUMENT);
        assert_true(prop_double(s, id, DSO_PROP_TIMEBASE) == 2e-4);
        /* Within the driver's bounds but not the scope's at this scale:
         * the instrument refuses, and the table shows what it really has. */
        assert_int_equal(set_double(s, id, "Channel1Scale", 0.1), TETHER_SUCCESS);
        assert_int_equal(set_double(s, id, "Channel1Offset", 3.0), TETHER_ERR_BAD_ARGUMENT);
        assert_true(prop_double(s, id, "Channel1Offset") == 0.0);
        tether_value *v = NULL;
        tether_value_new_string("CHAN3", &v);
        assert_int_equal(harness_set(s, id, DSO_PROP_TRIG_SOURCE, v), TETHER_ERR_BAD_ARGUMENT);
        tether_value_new_string("AC", &v);
        assert_int_equal(harness_set(s, id, "Channel2Coupling", v), TETHER_SUCCESS);
        tether_value_new_string("DSO-X 9999", &v);
        assert_int_equal(harness_set(s, id, DSO_PROP_MODEL, v), TETHER_ERR_NOT_WRITABLE);
        tether_session_close(s);
}

static tether_connect *open_scope(tether_session *s)
{
        tether_connect *c = NULL;
        assert_int_equal(tether_service_open(s, harness_find(s, DSO_CLASS), 0, 0, &c), TETHER_SUCCESS);
        return c;
}

static double measure(tether_connect *c, int ch, int what)
{
        uint64_t in[2] = { (uint64_t)ch, (uint64_t)what }, out = 0;
        uint32_t n = 1;
        assert_int_equal(tether_call_scalar_method(c, DSO_MEASURE, in, 2, &out, &n), TETHER_SUCCESS);
        double d;
        memcpy(&d, &out, sizeof(d));
        return d;
}

static void autoscale_and_measure(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c = open_scope(s);
        uint64_t id = harness_find(s, DSO_CLASS);
        assert_int_equal(tether_call_scalar_method(c, DSO_AUTOSCALE, NULL, 0, NULL, NULL), TETHER_SUCCESS);
        /* The properties follow what autoscale chose. */
        assert_true(prop_double(s, id, DSO_PROP_TIMEBASE) == 5e-4);
        assert_true(prop_double(s, id, DSO_PROP_TRIG_LEVEL) == 1.25);
        assert_true(fabs(measure(c, 1, DSO_MEAS_FREQUENCY) - 1000) < 1);
        assert_true(fabs(measure(c, 1, DSO_MEAS_VPP) - 2.5) < 0.1);
        assert_true(fabs(measure(c, 2, DSO_MEAS_FREQUENCY) - 10000) < 10);
        uint64_t bad[2] = { 3, DSO_MEAS_VPP };
        uint64_t out;
        uint32_t n = 1;
        assert_int_equal(tether_call_scalar_method(c, DSO_MEASURE, bad, 2, &out, &n), TETHER_ERR_BAD_ARGUMENT);
        tether_service_close(c);
        tether_session_close(s);
}

static void waveforms(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c = open_scope(s);
        assert_int_equal(tether_call_scalar_method(c, DSO_AUTOSCALE, NULL, 0, NULL, NULL), TETHER_SUCCESS);
        uint64_t mask = 1;
        assert_int_equal(tether_call_scalar_method(c, DSO_DIGITIZE, &mask, 1, NULL, NULL), TETHER_SUCCESS);

        uint64_t ch = 1;
        dso_preamble p;
        size_t size = sizeof(p);
        assert_int_equal(tether_call_method(c, DSO_GET_PREAMBLE, &ch, 1, NULL, 0, NULL, NULL, &p, &size), TETHER_SUCCESS);
        assert_int_equal(size, sizeof(p));
        assert_true(p.y_origin == 1.25);

        uint64_t in[2] = { 1, 1000 };
        uint8_t raw[1000];
        size = sizeof(raw);
        assert_int_equal(tether_call_method(c, DSO_GET_WAVEFORM, in, 2, NULL, 0, NULL, NULL, raw, &size), TETHER_SUCCESS);
        assert_int_equal(size, 1000);

        /* The full record as volts: 250 kB, through shared memory. */
        in[1] = DSO_MAX_POINTS;
        float *v = malloc(DSO_MAX_POINTS * sizeof(float));
        size = DSO_MAX_POINTS * sizeof(float);
        assert_int_equal(tether_call_method(c, DSO_GET_VOLTS, in, 2, NULL, 0, NULL, NULL, v, &size), TETHER_SUCCESS);
        assert_int_equal(size, DSO_MAX_POINTS * sizeof(float));
        float lo = 99, hi = -99;
        for (size_t i = 0; i < DSO_MAX_POINTS; i++) {
                lo = v[i] < lo ? v[i] : lo;
                hi = v[i] > hi ? v[i] : hi;
        }
        assert_true(lo > -0.1f && lo < 0.1f);
        assert_true(hi > 2.4f && hi < 2.6f);
        /* Stopped by DIGITIZE: the raw codes match the volts' record. */
        free(v);

        in[1] = 50; /* under the minimum */
        size = sizeof(raw);
        assert_int_equal(tether_call_method(c, DSO_GET_WAVEFORM, in, 2, NULL, 0, NULL, NULL, raw, &size),
                         TETHER_ERR_BAD_ARGUMENT);
        tether_service_close(c);
        tether_session_close(s);
}

static void scpi_pass_through(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c = open_scope(s);
        char out[128];
        size_t size = sizeof(out);
        assert_int_equal(tether_call_struct_method(c, DSO_SCPI, "*IDN?", 5, out, &size), TETHER_SUCCESS);
        assert_memory_equal(out, "AGILENT TECHNOLOGIES,DSO-X 2002A,MY00001234,", 44);
        size = sizeof(out);
        assert_int_equal(tether_call_struct_method(c, DSO_SCPI, ":TIM:SCAL 1E-3", 14, out, &size), TETHER_SUCCESS);
        assert_int_equal(size, 0);
        assert_true(prop_double(s, harness_find(s, DSO_CLASS), DSO_PROP_TIMEBASE) == 1e-3);
        tether_service_close(c);
        tether_session_close(s);
}

static void lock_makes_others_busy_until_release(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *a = open_scope(s), *b = open_scope(s);
        uint64_t id = harness_find(s, DSO_CLASS);
        assert_int_equal(tether_call_scalar_method(a, DSO_LOCK, NULL, 0, NULL, NULL), TETHER_SUCCESS);
        assert_int_equal(tether_call_scalar_method(b, DSO_RUN, NULL, 0, NULL, NULL), TETHER_ERR_BUSY);
        assert_int_equal(tether_call_scalar_method(b, DSO_LOCK, NULL, 0, NULL, NULL), TETHER_ERR_BUSY);
        assert_int_equal(tether_call_scalar_method(b, DSO_UNLOCK, NULL, 0, NULL, NULL), TETHER_ERR_NOT_OPEN);
        assert_int_equal(set_double(s, id, DSO_PROP_TIMEBASE, 1e-3), TETHER_ERR_BUSY);
        assert_int_equal(tether_call_scalar_method(a, DSO_RUN, NULL, 0, NULL, NULL), TETHER_SUCCESS);
        /* The holder goes away: the lock goes with it. */
        tether_service_close(a);
        assert_int_equal(tether_call_scalar_method(b, DSO_RUN, NULL, 0, NULL, NULL), TETHER_SUCCESS);
        assert_int_equal(tether_call_scalar_method(b, DSO_LOCK, NULL, 0, NULL, NULL), TETHER_SUCCESS);
        assert_int_equal(tether_call_scalar_method(b, DSO_UNLOCK, NULL, 0, NULL, NULL), TETHER_SUCCESS);
        tether_service_close(b);
        tether_session_close(s);
}

typedef struct done {
        int calls;
        tether_ret_t result;
        uint64_t mask;
} done;

static void on_digitized(void *refcon, tether_ret_t result, const uint64_t *args, uint32_t n)
{
        done *d = refcon;
        d->calls++;
        d->result = result;
        d->mask = n ? args[0] : 0;
}

static void async_digitize(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c = open_scope(s);
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(s, &port), TETHER_SUCCESS);
        done d = { 0 };
        uint64_t mask = 3;
        assert_int_equal(tether_call_async_method(c, DSO_DIGITIZE, port, on_digitized, &d, &mask, 1, NULL, 0, NULL,
                                                  NULL, NULL, NULL),
                         TETHER_SUCCESS);
        struct pollfd pfd = { .fd = tether_notification_port_get_fd(port), .events = POLLIN };
        for (int i = 0; i < 50 && !d.calls; i++)
                if (poll(&pfd, 1, 100) > 0)
                        tether_notification_port_dispatch(port);
        assert_int_equal(d.calls, 1);
        assert_int_equal(d.result, TETHER_SUCCESS);
        assert_int_equal(d.mask, 3);
        tether_notification_port_destroy(port);
        tether_service_close(c);
        tether_session_close(s);
}

/* The host's pid, or 0 with the driver in tetherd (--in-process). */
static uint64_t host_pid(tether_session *s, uint64_t id)
{
        tether_value *v = NULL;
        uint64_t pid = 0;
        if (tether_registry_entry_get_property(s, id, "TetherHostPID", &v) == TETHER_SUCCESS)
                tether_value_get_uint(v, &pid);
        tether_value_unref(v);
        return pid;
}

static uint64_t ms_now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Dispatch port until done has n calls, for at most ms. */
static void wait_done(tether_notification_port *port, const done *d, int n, int ms)
{
        struct pollfd pfd = { .fd = tether_notification_port_get_fd(port), .events = POLLIN };
        uint64_t end = ms_now() + (uint64_t)ms;
        while (d->calls < n && ms_now() < end)
                if (poll(&pfd, 1, 50) > 0)
                        tether_notification_port_dispatch(port);
}

/*
 * A sweep longer than tetherd's watchdog (1.5 s here: 0.25 s/div is 2.5 s),
 * digitized async: the driver waits for it in slices, so its host answers
 * the heartbeat and lives; meanwhile other calls and property writes are
 * told Busy at once, a second async DIGITIZE waits its turn, and after both
 * the scope is usable again. A synchronous DIGITIZE of a sweep longer than
 * a call may hold the driver is refused before anything is sent.
 */
static void long_acquisitions_do_not_hold_the_driver(void **state)
{
        static const char *const args[] = { "--watchdog", "1500", NULL };
        harness h = { .simulate = "dsox2002a:MY00005678", .args = args };
        assert_int_equal(harness_start(&h), 0);
        tether_session *s = harness_session(&h);
        uint64_t id = harness_find(s, DSO_CLASS);
        uint64_t pid = host_pid(s, id);
        tether_connect *a = open_scope(s), *b = open_scope(s);
        uint64_t mask = 1;
        assert_int_equal(set_double(s, id, DSO_PROP_TIMEBASE, 1.0), TETHER_SUCCESS); /* a 10 s sweep */
        uint64_t t0 = ms_now();
        assert_int_equal(tether_call_scalar_method(a, DSO_DIGITIZE, &mask, 1, NULL, NULL), TETHER_ERR_UNSUPPORTED);
        assert_true(ms_now() - t0 < 1000);
        assert_int_equal(set_double(s, id, DSO_PROP_TIMEBASE, 0.25), TETHER_SUCCESS);

        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(s, &port), TETHER_SUCCESS);
        done first = { 0 }, second = { 0 };
        t0 = ms_now();
        assert_int_equal(tether_call_async_method(a, DSO_DIGITIZE, port, on_digitized, &first, &mask, 1, NULL, 0,
                                                  NULL, NULL, NULL, NULL),
                         TETHER_SUCCESS);
        uint64_t both = 3;
        assert_int_equal(tether_call_async_method(b, DSO_DIGITIZE, port, on_digitized, &second, &both, 1, NULL, 0,
                                                  NULL, NULL, NULL, NULL),
                         TETHER_SUCCESS);
        usleep(300 * 1000); /* the first is acquiring */
        uint64_t t1 = ms_now();
        assert_int_equal(tether_call_scalar_method(b, DSO_RUN, NULL, 0, NULL, NULL), TETHER_ERR_BUSY);
        assert_int_equal(set_double(s, id, DSO_PROP_TIMEBASE, 1e-3), TETHER_ERR_BUSY);
        assert_int_equal(tether_call_scalar_method(a, DSO_DIGITIZE, &mask, 1, NULL, NULL), TETHER_ERR_BUSY);
        assert_true(ms_now() - t1 < 500); /* told at once, not behind the sweep */
        wait_done(port, &first, 1, 10000);
        assert_int_equal(first.calls, 1);
        assert_int_equal(first.result, TETHER_SUCCESS);
        assert_int_equal(first.mask, 1);
        assert_true(ms_now() - t0 >= 2500); /* the whole sweep */
        assert_int_equal(second.calls, 0); /* its own sweep starts now */
        wait_done(port, &second, 1, 10000);
        assert_int_equal(second.result, TETHER_SUCCESS);
        assert_int_equal(second.mask, 3);
        assert_true(ms_now() - t0 >= 5000);
        /* Past the watchdog three times over, and the same host. */
        assert_int_equal(host_pid(s, id), pid);
        assert_int_equal(set_double(s, id, DSO_PROP_TIMEBASE, 1e-3), TETHER_SUCCESS);
        char out[16];
        size_t size = sizeof(out);
        assert_int_equal(tether_call_struct_method(b, DSO_SCPI, "*OPC?", 5, out, &size), TETHER_SUCCESS);
        assert_memory_equal(out, "1\n", 2);
        assert_int_equal(tether_call_scalar_method(a, DSO_DIGITIZE, &mask, 1, NULL, NULL), TETHER_SUCCESS);
        tether_notification_port_destroy(port);
        tether_service_close(a);
        tether_service_close(b);
        tether_session_close(s);
        assert_int_equal(harness_stop(&h), 0);
}

/* Nobody (uid 65534) queues acquisitions of a 5 s sweep, as many as its
 * connection may have outstanding, and dies: the scope is the polite
 * client's again at once, not after 64 sweeps. */
static void acquisitions_of_a_dead_client_end_with_it(void **state)
{
        tether_session *s = harness_session(&H);
        uint64_t id = harness_find(s, DSO_CLASS);
        assert_int_equal(set_double(s, id, DSO_PROP_TIMEBASE, 0.5), TETHER_SUCCESS);
        int ready[2];
        assert_int_equal(pipe(ready), 0);
        pid_t child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                close(ready[0]);
                if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
                        _exit(2);
                tether_session *ns = NULL;
                tether_connect *c = NULL;
                tether_notification_port *port = NULL;
                if (tether_session_open(H.sock, &ns) != TETHER_SUCCESS ||
                    tether_service_open(ns, id, 0, 0, &c) != TETHER_SUCCESS ||
                    tether_notification_port_create(ns, &port) != TETHER_SUCCESS)
                        _exit(3);
                done d = { 0 };
                uint64_t mask = 1;
                int queued = 0;
                while (tether_call_async_method(c, DSO_DIGITIZE, port, on_digitized, &d, &mask, 1, NULL, 0, NULL, NULL,
                                                NULL, NULL) == TETHER_SUCCESS)
                        queued++;
                if (write(ready[1], &queued, sizeof(queued)) != sizeof(queued))
                        _exit(4);
                pause();
                _exit(0);
        }
        close(ready[1]);
        int queued = 0;
        assert_int_equal(read(ready[0], &queued, sizeof(queued)), sizeof(queued));
        close(ready[0]);
        assert_true(queued >= 32); /* up to its connection's bound on outstanding calls */
        tether_connect *c = open_scope(s);
        assert_int_equal(tether_call_scalar_method(c, DSO_RUN, NULL, 0, NULL, NULL), TETHER_ERR_BUSY);
        kill(child, SIGKILL);
        uint64_t t0 = ms_now();
        int status = 0;
        assert_int_equal(waitpid(child, &status, 0), child);
        tether_ret_t r = TETHER_ERR_BUSY;
        while (r == TETHER_ERR_BUSY && ms_now() - t0 < 3000) {
                usleep(20 * 1000);
                r = tether_call_scalar_method(c, DSO_RUN, NULL, 0, NULL, NULL);
        }
        assert_int_equal(r, TETHER_SUCCESS);
        assert_true(ms_now() - t0 < 1500); /* not behind the sweep under way, nor the queue */
        assert_int_equal(set_double(s, id, DSO_PROP_TIMEBASE, 1e-3), TETHER_SUCCESS);
        tether_service_close(c);
        tether_session_close(s);
}

static void screenshot(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c = open_scope(s);
        size_t size = 1u << 20;
        uint8_t *png = malloc(size);
        assert_int_equal(tether_call_struct_method(c, DSO_SCREENSHOT, NULL, 0, png, &size), TETHER_SUCCESS);
        assert_true(size > 1000);
        assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
        /* Too small a buffer: the driver says so rather than cutting it. */
        size = 100;
        assert_int_equal(tether_call_struct_method(c, DSO_SCREENSHOT, NULL, 0, png, &size), TETHER_ERR_NO_SPACE);
        free(png);
        tether_service_close(c);
        tether_session_close(s);
}

static void acquisition_timeout_follows_the_timebase(void **state)
{
        tether_session *s = harness_session(&H);
        uint64_t id = harness_find(s, DSO_CLASS);
        tether_value *v = NULL;
        tether_value_new_uint(50, 32, &v);
        assert_int_equal(harness_set(s, id, DSO_PROP_TIMEOUT, v), TETHER_ERR_BAD_ARGUMENT); /* under 100 ms */
        tether_value_new_uint(200, 32, &v);
        assert_int_equal(harness_set(s, id, DSO_PROP_TIMEOUT, v), TETHER_SUCCESS);
        /* 50 ms/div: a 500 ms sweep, well past the 200 ms answer timeout. */
        assert_int_equal(set_double(s, id, DSO_PROP_TIMEBASE, 0.05), TETHER_SUCCESS);
        tether_connect *c = open_scope(s);
        /* Through the pass-through the wait is the plain timeout: too short. */
        char out[16];
        size_t size = sizeof(out);
        assert_int_equal(tether_call_struct_method(c, DSO_SCPI, ":DIG CHAN1;*OPC?", 16, out, &size), TETHER_ERR_TIMEOUT);
        /* DIGITIZE adds the sweep time: it completes. */
        uint64_t mask = 1;
        assert_int_equal(tether_call_scalar_method(c, DSO_DIGITIZE, &mask, 1, NULL, NULL), TETHER_SUCCESS);
        /* And the link is back to its plain timeout, and in step. */
        size = sizeof(out);
        assert_int_equal(tether_call_struct_method(c, DSO_SCPI, "*OPC?", 5, out, &size), TETHER_SUCCESS);
        assert_memory_equal(out, "1\n", 2);
        tether_value_new_uint(5000, 32, &v);
        assert_int_equal(harness_set(s, id, DSO_PROP_TIMEOUT, v), TETHER_SUCCESS);
        tether_service_close(c);
        tether_session_close(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(identity_properties),
                cmocka_unit_test(settable_properties),
                cmocka_unit_test(autoscale_and_measure),
                cmocka_unit_test(waveforms),
                cmocka_unit_test(scpi_pass_through),
                cmocka_unit_test(lock_makes_others_busy_until_release),
                cmocka_unit_test(async_digitize),
                cmocka_unit_test(screenshot),
                cmocka_unit_test(acquisition_timeout_follows_the_timebase),
                cmocka_unit_test(long_acquisitions_do_not_hold_the_driver),
                cmocka_unit_test(acquisitions_of_a_dead_client_end_with_it),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
