/* SPDX-License-Identifier: MIT */
/*
 * Driver timers and the driver log through a real tetherd, with the driver
 * in its host or (timers-in-process) inside tetherd: ExampleDevice's
 * ticker (a periodic timer per connection) fires, is cancelled, and is
 * told when its service is terminated, after which nothing fires; a
 * driver's lines reach tetherd's log naming bundle, class and service, and
 * a flood from one driver is cut to a burst and a count.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "example/example.h"
#include "harness.h"

static harness H = { .log_to_file = true };

static int group_setup(void **state)
{
        return harness_start(&H);
}

static int group_teardown(void **state)
{
        return harness_stop(&H) == 0 ? 0 : -1;
}

static double now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- an ExampleDevice of our own ---- */

typedef struct device {
        tether_session *s;
        tether_connect *ctl;    /* ExampleDriver: publishes and removes it */
        uint64_t nub, id;
        tether_connect *c;
        tether_notification_port *port;
} device;

static void device_publish(const harness *h, device *d, uint64_t unit)
{
        d->s = harness_session(h);
        assert_int_equal(tether_service_open(d->s, harness_find(d->s, "ExampleDriver"), EXAMPLE_CLIENT, 0, &d->ctl),
                         TETHER_SUCCESS);
        uint32_t one = 1;
        assert_int_equal(tether_call_scalar_method(d->ctl, EXAMPLE_PUBLISH_DEVICE, &unit, 1, &d->nub, &one),
                         TETHER_SUCCESS);
        /* Its ExampleDevice, by unit: other tests' devices may be about. */
        tether_value *m = NULL, *props = NULL;
        assert_int_equal(tether_service_matching("ExampleDevice", &m), TETHER_SUCCESS);
        assert_int_equal(tether_value_new_dict(&props), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_uint(props, "Unit", unit, 32), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set(m, "IOPropertyMatch", props), TETHER_SUCCESS);
        tether_value_unref(props);
        d->id = 0;
        for (int i = 0; i < 500 && tether_get_matching_service(d->s, m, &d->id) != TETHER_SUCCESS; i++)
                usleep(10000);
        tether_value_unref(m);
        assert_int_not_equal(d->id, 0);
        d->c = NULL;
        for (int i = 0; i < 500 && tether_service_open(d->s, d->id, 0, 0, &d->c) != TETHER_SUCCESS; i++)
                usleep(10000);
        assert_non_null(d->c);
        assert_int_equal(tether_notification_port_create(d->s, &d->port), TETHER_SUCCESS);
}

static void device_remove(device *d)
{
        assert_int_equal(tether_call_scalar_method(d->ctl, EXAMPLE_REMOVE_DEVICE, &d->nub, 1, NULL, NULL),
                         TETHER_SUCCESS);
}

static void device_close(device *d)
{
        tether_service_close(d->c);
        tether_notification_port_destroy(d->port);
        tether_service_close(d->ctl);
        tether_session_close(d->s);
}

static uint64_t ticks(device *d)
{
        tether_value *v = NULL;
        uint64_t n = 0;
        assert_int_equal(tether_registry_entry_get_property(d->s, d->id, EXAMPLE_DEVICE_PROP_TICKS, &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_uint(v, &n), TETHER_SUCCESS);
        tether_value_unref(v);
        return n;
}

/* ---- completions ---- */

typedef struct seen {
        int calls;
        tether_ret_t result;
        uint64_t ticks;
} seen;

static void on_done(void *refcon, tether_ret_t result, const uint64_t *args, uint32_t n)
{
        seen *a = refcon;
        a->calls++;
        a->result = result;
        a->ticks = n ? args[0] : ~0ull;
}

/* Deliver what comes on the port for ms; true once a has at least `calls`. */
static bool wait_calls(device *d, seen *a, int calls, int ms)
{
        struct pollfd pfd = { .fd = tether_notification_port_get_fd(d->port), .events = POLLIN };
        double until = now_ms() + ms;
        while (a->calls < calls && now_ms() < until)
                if (poll(&pfd, 1, 20) > 0)
                        tether_notification_port_dispatch(d->port);
        return a->calls >= calls;
}

/* Listen for ms more, counting anything that still comes. */
static void listen_ms(device *d, seen *a, int ms)
{
        wait_calls(d, a, 1 << 30, ms);
}

static tether_ret_t tick(device *d, seen *a, uint64_t period_ms, uint64_t count)
{
        uint64_t in[2] = { period_ms, count };
        return tether_call_async_method(d->c, EXAMPLE_DEVICE_TICK, d->port, on_done, a, in, 2, NULL, 0, NULL, NULL, NULL,
                                        NULL);
}

static bool ticks_reach(device *d, uint64_t n, int ms)
{
        double until = now_ms() + ms;
        while (ticks(d) < n && now_ms() < until)
                usleep(5000);
        return ticks(d) >= n;
}

/* ---- tetherd's log ---- */

static unsigned log_lines(const harness *h, const char *needle, unsigned *ret_suppressed)
{
        FILE *f = fopen(h->log, "r");
        assert_non_null(f);
        char line[1200];
        unsigned n = 0;
        while (fgets(line, sizeof(line), f)) {
                const char *p = strstr(line, needle);
                if (!p)
                        continue;
                n++;
                const char *q = strstr(p, " messages suppressed");
                if (q && ret_suppressed) {
                        while (q > line && q[-1] >= '0' && q[-1] <= '9')
                                q--;
                        *ret_suppressed += (unsigned)strtoul(q, NULL, 10);
                }
        }
        fclose(f);
        return n;
}

static bool log_shows(const harness *h, const char *needle, int ms)
{
        double until = now_ms() + ms;
        while (!log_lines(h, needle, NULL) && now_ms() < until)
                usleep(10000);
        return log_lines(h, needle, NULL) > 0;
}

/* How a driver's lines name it: bundle, class, registry id. */
static void who(char *buf, size_t size, const device *d)
{
        snprintf(buf, size, "bundle org.tether.example: ExampleDevice (0x%llx): ", (unsigned long long)d->id);
}

/* ---- the tests ---- */

static void ticker_fires_then_completes(void **state)
{
        device d;
        device_publish(&H, &d, 21);
        seen a = { 0 };
        double t0 = now_ms();
        assert_int_equal(tick(&d, &a, 20, 5), TETHER_SUCCESS);
        assert_true(wait_calls(&d, &a, 1, 5000));
        assert_int_equal(a.result, TETHER_SUCCESS);
        assert_int_equal(a.ticks, 5);
        assert_true(now_ms() - t0 >= 5 * 20); /* never early */
        assert_int_equal(ticks(&d), 5);
        /* Done: it ticks no more. */
        listen_ms(&d, &a, 150);
        assert_int_equal(a.calls, 1);
        assert_int_equal(ticks(&d), 5);
        /* Refused before anything is armed. */
        assert_int_equal(tick(&d, &a, 1, 5), TETHER_ERR_BAD_ARGUMENT);
        device_remove(&d);
        device_close(&d);
}

static void ticker_cancelled(void **state)
{
        device d;
        device_publish(&H, &d, 22);
        seen a = { 0 }, b = { 0 };
        assert_int_equal(tick(&d, &a, 20, 100000), TETHER_SUCCESS);
        assert_int_equal(tick(&d, &b, 20, 5), TETHER_ERR_BUSY); /* one per connection */
        assert_true(ticks_reach(&d, 3, 5000));
        uint64_t n = 0;
        uint32_t one = 1;
        assert_int_equal(tether_call_scalar_method(d.c, EXAMPLE_DEVICE_TICK_CANCEL, NULL, 0, &n, &one), TETHER_SUCCESS);
        assert_true(n >= 3);
        assert_true(wait_calls(&d, &a, 1, 2000));
        assert_int_equal(a.result, TETHER_ERR_ABORTED);
        assert_int_equal(a.ticks, n);
        /* Cancelled: not one tick more. */
        assert_int_equal(ticks(&d), n);
        listen_ms(&d, &a, 200);
        assert_int_equal(ticks(&d), n);
        assert_int_equal(a.calls, 1);
        assert_int_equal(b.calls, 0);
        one = 1;
        assert_int_equal(tether_call_scalar_method(d.c, EXAMPLE_DEVICE_TICK_CANCEL, NULL, 0, &n, &one),
                         TETHER_ERR_NOT_FOUND);
        /* The same timer again, after its cancel. */
        assert_int_equal(tick(&d, &b, 10, 2), TETHER_SUCCESS);
        assert_true(wait_calls(&d, &b, 1, 5000));
        assert_int_equal(b.result, TETHER_SUCCESS);
        assert_int_equal(b.ticks, 2);
        char line[160];
        who(line, sizeof(line), &d);
        strcat(line, "tick with no TICK call running");
        assert_int_equal(log_lines(&H, line, NULL), 0);
        device_remove(&d);
        device_close(&d);
}

static void termination_tells_the_ticker_and_ends_it(void **state)
{
        device d;
        device_publish(&H, &d, 23);
        seen a = { 0 };
        /* Two connections ticking: both are told. */
        tether_connect *c2 = NULL;
        assert_int_equal(tether_service_open(d.s, d.id, 0, 0, &c2), TETHER_SUCCESS);
        seen a2 = { 0 };
        uint64_t in[2] = { 15, 100000 };
        assert_int_equal(tether_call_async_method(c2, EXAMPLE_DEVICE_TICK, d.port, on_done, &a2, in, 2, NULL, 0, NULL,
                                                  NULL, NULL, NULL),
                         TETHER_SUCCESS);
        assert_int_equal(tick(&d, &a, 20, 100000), TETHER_SUCCESS);
        assert_true(ticks_reach(&d, 6, 5000));
        device_remove(&d);
        /* The owner is told, once, with what it had done... */
        assert_true(wait_calls(&d, &a, 1, 5000));
        assert_true(wait_calls(&d, &a2, 1, 5000));
        assert_int_equal(a.result, TETHER_ERR_ABORTED);
        assert_int_equal(a2.result, TETHER_ERR_ABORTED);
        assert_true(a.ticks >= 1 && a.ticks < 100000);
        assert_true(a2.ticks >= 1 && a2.ticks < 100000);
        /* ...and nothing fires after: no completion, no tick logged by the
         * driver's own check, the calls refused. */
        listen_ms(&d, &a, 300);
        assert_int_equal(a.calls, 1);
        assert_int_equal(a2.calls, 1);
        uint64_t n = 0;
        uint32_t one = 1;
        assert_int_equal(tether_call_scalar_method(d.c, EXAMPLE_DEVICE_TICK_CANCEL, NULL, 0, &n, &one),
                         TETHER_ERR_NOT_ATTACHED);
        char line[200];
        who(line, sizeof(line), &d);
        strcat(line, "tick with no TICK call running");
        assert_int_equal(log_lines(&H, line, NULL), 0);
        /* The driver's line about it, naming the service, in tetherd's log
         * (from the host's stderr, unless in-process). */
        who(line, sizeof(line), &d);
        strcat(line, "ticker stopped after ");
        assert_true(log_shows(&H, line, 2000));
        assert_int_equal(log_lines(&H, line, NULL), 2);
        tether_service_close(c2);
        device_close(&d);
}

static void driver_lines_are_named_and_limited(void **state)
{
        device d, quiet;
        device_publish(&H, &d, 24);
        device_publish(&H, &quiet, 25);
        char prefix[160], line[220];
        who(prefix, sizeof(prefix), &d);
        /* A flood from one driver: 10 lines, the rest counted. */
        uint64_t in[2] = { EXAMPLE_LOG_WARNING, 50 };
        assert_int_equal(tether_call_scalar_method(d.c, EXAMPLE_DEVICE_LOG, in, 2, NULL, NULL), TETHER_SUCCESS);
        snprintf(line, sizeof(line), "tetherd: warning: %slog line 1 of 50", prefix);
        assert_true(log_shows(&H, line, 2000));
        snprintf(line, sizeof(line), "%slog line ", prefix);
        assert_int_equal(log_lines(&H, line, NULL), 10);
        /* Another driver's service has a budget of its own. */
        in[1] = 3;
        assert_int_equal(tether_call_scalar_method(quiet.c, EXAMPLE_DEVICE_LOG, in, 2, NULL, NULL), TETHER_SUCCESS);
        char qline[220];
        who(qline, sizeof(qline), &quiet);
        strcat(qline, "log line ");
        assert_true(log_shows(&H, qline, 2000));
        assert_int_equal(log_lines(&H, qline, NULL), 3);
        /* Debug lines: tetherd runs without --verbose here. */
        in[0] = EXAMPLE_LOG_DEBUG;
        in[1] = 1;
        assert_int_equal(tether_call_scalar_method(quiet.c, EXAMPLE_DEVICE_LOG, in, 2, NULL, NULL), TETHER_SUCCESS);
        /* The count is said when the service goes. */
        device_remove(&d);
        snprintf(line, sizeof(line), "%s40 messages suppressed", prefix);
        assert_true(log_shows(&H, line, 3000));
        unsigned suppressed = 0;
        assert_int_equal(log_lines(&H, prefix, &suppressed), 10 + 1);
        assert_int_equal(suppressed, 40);
        assert_int_equal(log_lines(&H, "debug: bundle org.tether.example: ExampleDevice", NULL), 0);
        device_remove(&quiet);
        device_close(&d);
        device_close(&quiet);
}

/* A tetherd of its own, stopped whatever the test's outcome. */
static harness V;

static int verbose_setup(void **state)
{
        static const char *const args[] = { "--verbose", NULL };
        V = (harness){ .log_to_file = true, .args = args };
        return harness_start(&V);
}

static int verbose_teardown(void **state)
{
        return harness_stop(&V) == 0 ? 0 : -1;
}

static void verbose_shows_driver_debug_lines(void **state)
{
        device d;
        device_publish(&V, &d, 26);
        uint64_t in[2] = { EXAMPLE_LOG_DEBUG, 1 };
        assert_int_equal(tether_call_scalar_method(d.c, EXAMPLE_DEVICE_LOG, in, 2, NULL, NULL), TETHER_SUCCESS);
        char line[220], prefix[160];
        who(prefix, sizeof(prefix), &d);
        snprintf(line, sizeof(line), "debug: %slog line 1 of 1", prefix);
        assert_true(log_shows(&V, line, 2000));
        device_remove(&d);
        device_close(&d);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(ticker_fires_then_completes),
                cmocka_unit_test(ticker_cancelled),
                cmocka_unit_test(termination_tells_the_ticker_and_ends_it),
                cmocka_unit_test(driver_lines_are_named_and_limited),
                cmocka_unit_test_setup_teardown(verbose_shows_driver_debug_lines, verbose_setup, verbose_teardown),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
