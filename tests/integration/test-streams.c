/* SPDX-License-Identifier: MIT */
/* Async references that stay open for many results (streams), through a
 * real tetherd and the example driver's EXAMPLE_STREAM: order, the three
 * ways a stream ends (the driver's last result, a cancel, a close), the
 * async bounds, and a port nobody reads. EXAMPLE_STREAM_STATS is how the
 * driver's side is seen: what tether_async_send() told it. */
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
#include "raw.h"
#include "wire/message.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#else
#define UNDER_ASAN 0
#endif

static harness H;

static int group_setup(void **state)
{
        /* Its log is read: a driver sending on a closed connection is said. */
        H.log_to_file = true;
        return harness_start(&H);
}

static int group_teardown(void **state)
{
        return harness_stop(&H) == 0 ? 0 : -1;
}

static uint64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static tether_connect *open_example(tether_session *s)
{
        tether_connect *c = NULL;
        assert_int_equal(tether_service_open(s, harness_find(s, "ExampleDriver"), EXAMPLE_CLIENT, 0, &c),
                         TETHER_SUCCESS);
        return c;
}

/* ---- what one stream's callback saw ---- */

typedef struct seen {
        uint64_t count;            /* the count asked for */
        int results;               /* callbacks run */
        uint64_t last_seq;         /* the last one's EXAMPLE_STREAM_SEQ */
        int out_of_order;          /* seqs that did not follow on (gaps allowed only if gaps_ok) */
        int wrong;                 /* a result that was not the driver's stream result */
        bool gaps_ok;
        /* cancel its own reference from the callback at this result (0: never) */
        int cancel_at;
        tether_notification_port *port;
        tether_ret_t cancel_ret;
} seen;

static void on_result(void *refcon, tether_ret_t result, const uint64_t *args, uint32_t n)
{
        seen *a = refcon;
        a->results++;
        if (result != TETHER_SUCCESS || n != EXAMPLE_STREAM_ARGS || args[EXAMPLE_STREAM_COUNT] != a->count) {
                a->wrong++;
                return;
        }
        uint64_t seq = args[EXAMPLE_STREAM_SEQ];
        if (a->gaps_ok ? seq <= a->last_seq : seq != a->last_seq + 1)
                a->out_of_order++;
        a->last_seq = seq;
        if (a->cancel_at && a->results == a->cancel_at)
                a->cancel_ret = tether_async_cancel(a->port, on_result, a);
}

static tether_ret_t start_stream(tether_connect *c, tether_notification_port *p, seen *a, uint64_t count,
                                 uint64_t interval_ms)
{
        a->count = count;
        uint64_t in[2] = { count, interval_ms };
        return tether_call_async_method(c, EXAMPLE_STREAM, p, on_result, a, in, 2, NULL, 0, NULL, NULL, NULL, NULL);
}

/* Dispatch p for up to ms, or until done(ctx). */
static bool pump(tether_notification_port *p, int ms, bool (*done)(void *), void *ctx)
{
        struct pollfd pfd = { .fd = tether_notification_port_get_fd(p), .events = POLLIN };
        uint64_t end = now_ms() + (uint64_t)ms;
        while (!(done && done(ctx)) && now_ms() < end) {
                if (poll(&pfd, 1, 10) > 0)
                        assert_int_equal(tether_notification_port_dispatch(p), TETHER_SUCCESS);
        }
        return done && done(ctx);
}

static bool all_in(void *ctx)
{
        seen *a = ctx;
        return (uint64_t)a->results >= a->count;
}

typedef struct at_least {
        seen *a;
        int n;
} at_least;

static bool got_at_least(void *ctx)
{
        at_least *w = ctx;
        return w->a->results >= w->n;
}

/* ---- the driver's side ---- */

typedef struct stats {
        uint64_t v[EXAMPLE_STATS_COUNT];
} stats;

static stats stream_stats(tether_connect *c)
{
        stats st = { { 0 } };
        uint32_t n = EXAMPLE_STATS_COUNT;
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_STREAM_STATS, NULL, 0, st.v, &n), TETHER_SUCCESS);
        assert_int_equal(n, EXAMPLE_STATS_COUNT);
        return st;
}

/* Wait (up to ms) until the driver has ended `ended` streams more than in
 * before, by the given ways, and runs as many as before minus those. */
typedef struct want_stats {
        tether_connect *c;
        stats before;
        uint64_t finished, cancelled, detached;
        stats now;
} want_stats;

static bool stats_reached(void *ctx)
{
        want_stats *w = ctx;
        w->now = stream_stats(w->c);
        return w->now.v[EXAMPLE_STATS_FINISHED] - w->before.v[EXAMPLE_STATS_FINISHED] >= w->finished &&
               w->now.v[EXAMPLE_STATS_CANCELLED] - w->before.v[EXAMPLE_STATS_CANCELLED] >= w->cancelled &&
               w->now.v[EXAMPLE_STATS_DETACHED] - w->before.v[EXAMPLE_STATS_DETACHED] >= w->detached;
}

static bool no_stream_running(void *ctx)
{
        return stream_stats(ctx).v[EXAMPLE_STATS_RUNNING] == 0;
}

/* The example driver's process: its host, or tetherd under --in-process. */
static pid_t driver_pid(tether_session *s)
{
        tether_value *v = NULL;
        uint64_t pid = 0;
        if (tether_registry_entry_get_property(s, harness_find(s, "ExampleDriver"), "TetherHostPID", &v) ==
            TETHER_SUCCESS)
                assert_int_equal(tether_value_get_uint(v, &pid), TETHER_SUCCESS);
        tether_value_unref(v);
        return pid ? (pid_t)pid : H.pid;
}

static long rss_kib(pid_t pid)
{
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        FILE *f = fopen(path, "re");
        long kib = -1;
        while (f && fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
                        break;
        if (f)
                fclose(f);
        return kib;
}

/* Lines of tetherd's log (drivers' hosts write there too) holding all of
 * the needles given (NULL-terminated). */
static int log_lines(const char *needle, ...)
{
        FILE *f = fopen(H.log, "re");
        assert_non_null(f);
        char line[1024];
        int n = 0;
        while (fgets(line, sizeof(line), f)) {
                va_list ap;
                va_start(ap, needle);
                bool all = true;
                for (const char *k = needle; k && all; k = va_arg(ap, const char *))
                        all = strstr(line, k) != NULL;
                va_end(ap);
                n += all;
        }
        fclose(f);
        return n;
}

/* ---- many results, in order ---- */

static void a_thousand_results_arrive_in_order(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c1 = open_example(s), *c2 = open_example(s);
        tether_notification_port *p = NULL;
        assert_int_equal(tether_notification_port_create(s, &p), TETHER_SUCCESS);
        stats before = stream_stats(c1);
        assert_int_equal(before.v[EXAMPLE_STATS_RUNNING], 0);

        /* Two streams at once on one port, from two connections: each
         * result runs its own callback, each stream in its own order. */
        seen a = { 0 }, b = { 0 };
        assert_int_equal(start_stream(c1, p, &a, 1000, 1), TETHER_SUCCESS);
        assert_int_equal(start_stream(c2, p, &b, 500, 1), TETHER_SUCCESS);
        at_least both = { &b, 500 };
        assert_true(pump(p, 30000, all_in, &a));
        assert_true(pump(p, 10000, got_at_least, &both));
        assert_int_equal(a.results, 1000);
        assert_int_equal(a.last_seq, 1000);
        assert_int_equal(a.out_of_order, 0);
        assert_int_equal(a.wrong, 0);
        assert_int_equal(b.results, 500);
        assert_int_equal(b.out_of_order, 0);
        assert_int_equal(b.wrong, 0);
        /* The last result closed the reference: nothing more runs, and
         * there is nothing left to cancel. */
        pump(p, 100, NULL, NULL);
        assert_int_equal(a.results, 1000);
        assert_int_equal(tether_async_cancel(p, on_result, &a), TETHER_ERR_NOT_FOUND);
        assert_int_equal(tether_async_cancel(p, on_result, &b), TETHER_ERR_NOT_FOUND);

        want_stats w = { .c = c1, .before = before, .finished = 2 };
        assert_true(pump(p, 5000, stats_reached, &w));
        assert_int_equal(w.now.v[EXAMPLE_STATS_STARTED] - before.v[EXAMPLE_STATS_STARTED], 2);
        assert_int_equal(w.now.v[EXAMPLE_STATS_FINISHED] - before.v[EXAMPLE_STATS_FINISHED], 2);
        assert_int_equal(w.now.v[EXAMPLE_STATS_DROPPED], before.v[EXAMPLE_STATS_DROPPED]);
        assert_int_equal(w.now.v[EXAMPLE_STATS_RUNNING], 0);

        /* A stream's results come only as results. */
        uint64_t in[2] = { 3, 0 };
        assert_int_equal(tether_call_scalar_method(c1, EXAMPLE_STREAM, in, 2, NULL, NULL), TETHER_ERR_BAD_ARGUMENT);
        seen z = { 0 };
        assert_int_equal(start_stream(c1, p, &z, 0, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(start_stream(c1, p, &z, EXAMPLE_MAX_STREAM_COUNT + 1, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_async_cancel(p, on_result, &z), TETHER_ERR_NOT_FOUND); /* refused: never open */
        assert_int_equal(tether_async_cancel(p, NULL, &z), TETHER_ERR_BAD_ARGUMENT);

        tether_notification_port_destroy(p);
        assert_int_equal(tether_async_cancel(p, on_result, &z), TETHER_ERR_BAD_ARGUMENT);
        tether_service_close(c1);
        tether_service_close(c2);
        tether_session_close(s);
}

/* ---- the client ends it ---- */

static void a_cancel_ends_the_stream(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c = open_example(s);
        tether_notification_port *p = NULL;
        assert_int_equal(tether_notification_port_create(s, &p), TETHER_SUCCESS);
        stats before = stream_stats(c);

        seen a = { 0 };
        assert_int_equal(start_stream(c, p, &a, EXAMPLE_MAX_STREAM_COUNT, 2), TETHER_SUCCESS);
        at_least five = { &a, 5 };
        assert_true(pump(p, 5000, got_at_least, &five));
        assert_int_equal(tether_async_cancel(p, on_result, &a), TETHER_SUCCESS);
        int n = a.results;
        /* Not one more callback: results already on the port are dropped. */
        pump(p, 200, NULL, NULL);
        assert_int_equal(a.results, n);
        assert_int_equal(a.out_of_order + a.wrong, 0);
        assert_int_equal(tether_async_cancel(p, on_result, &a), TETHER_ERR_NOT_FOUND);
        /* The driver is told at its next send (Aborted), and stops. */
        want_stats w = { .c = c, .before = before, .cancelled = 1 };
        assert_true(pump(p, 5000, stats_reached, &w));
        assert_int_equal(w.now.v[EXAMPLE_STATS_RUNNING], 0);
        assert_int_equal(w.now.v[EXAMPLE_STATS_DETACHED], before.v[EXAMPLE_STATS_DETACHED]);

        /* From its own callback. */
        seen b = { .cancel_at = 10, .port = p };
        assert_int_equal(start_stream(c, p, &b, EXAMPLE_MAX_STREAM_COUNT, 1), TETHER_SUCCESS);
        w.cancelled = 2;
        assert_true(pump(p, 5000, stats_reached, &w));
        pump(p, 100, NULL, NULL);
        assert_int_equal(b.cancel_ret, TETHER_SUCCESS);
        assert_int_equal(b.results, 10);

        /* A cancel racing the last result: the driver sees one or the
         * other, never both, and every reference is given back (64 are
         * open again on this connection afterwards). */
        enum { ROUNDS = 64 };
        static seen r[ROUNDS];
        memset(r, 0, sizeof(r));
        stats mid = stream_stats(c);
        int cancelled = 0;
        for (int i = 0; i < ROUNDS; i++) {
                assert_int_equal(start_stream(c, p, &r[i], 1 + (uint64_t)(i % 4), 0), TETHER_SUCCESS);
                if (i % 3)
                        pump(p, i % 5, NULL, NULL);
                tether_ret_t k = tether_async_cancel(p, on_result, &r[i]);
                assert_true(k == TETHER_SUCCESS || k == TETHER_ERR_NOT_FOUND);
                cancelled += k == TETHER_SUCCESS;
        }
        assert_true(pump(p, 5000, no_stream_running, c));
        stats after = stream_stats(c);
        uint64_t fin = after.v[EXAMPLE_STATS_FINISHED] - mid.v[EXAMPLE_STATS_FINISHED];
        uint64_t can = after.v[EXAMPLE_STATS_CANCELLED] - mid.v[EXAMPLE_STATS_CANCELLED];
        print_message("%d cancels got through before the last result; the driver finished %llu, was told of %llu\n",
                      cancelled, (unsigned long long)fin, (unsigned long long)can);
        assert_int_equal(fin + can, ROUNDS);
        assert_int_equal(after.v[EXAMPLE_STATS_DETACHED], mid.v[EXAMPLE_STATS_DETACHED]);
        /* A cancel that found the reference open may still lose to the
         * last result in the driver, so at most that many were aborted. */
        assert_in_range(can, 0, (uint64_t)cancelled);
        static seen again[64];
        memset(again, 0, sizeof(again));
        for (int i = 0; i < 64; i++)
                assert_int_equal(start_stream(c, p, &again[i], EXAMPLE_MAX_STREAM_COUNT, 1000), TETHER_SUCCESS);
        seen over = { 0 };
        assert_int_equal(start_stream(c, p, &over, 1, 0), TETHER_ERR_NO_RESOURCES);

        tether_service_close(c);
        tether_notification_port_destroy(p);
        c = open_example(s);
        assert_true(pump(p, 5000, no_stream_running, c));
        tether_service_close(c);
        tether_session_close(s);
}

/* ---- the connection, or the port, goes first ---- */

static void closing_mid_stream_ends_only_that_stream(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c1 = open_example(s), *c2 = open_example(s);
        tether_notification_port *p = NULL;
        assert_int_equal(tether_notification_port_create(s, &p), TETHER_SUCCESS);
        stats before = stream_stats(c2);
        uint64_t id1 = tether_connect_id(c1);
        char conn[64];
        snprintf(conn, sizeof(conn), "connection %llu,", (unsigned long long)id1);
        assert_int_equal(log_lines(conn, NULL), 0);

        seen a = { 0 }, b = { 0 };
        assert_int_equal(start_stream(c1, p, &a, EXAMPLE_MAX_STREAM_COUNT, 2), TETHER_SUCCESS);
        assert_int_equal(start_stream(c2, p, &b, 300, 1), TETHER_SUCCESS);
        at_least five = { &a, 5 };
        assert_true(pump(p, 5000, got_at_least, &five));
        tether_service_close(c1);
        int n = a.results;
        /* The other connection's stream goes on to its end, in order. */
        assert_true(pump(p, 10000, all_in, &b));
        assert_int_equal(b.out_of_order + b.wrong, 0);
        assert_int_equal(a.results, n);
        /* The driver's next send on the closed connection: NotAttached, and
         * tetherd's log names the driver and the connection. */
        want_stats w = { .c = c2, .before = before, .finished = 1, .detached = 1 };
        assert_true(pump(p, 5000, stats_reached, &w));
        assert_int_equal(w.now.v[EXAMPLE_STATS_RUNNING], 0);
        assert_int_equal(w.now.v[EXAMPLE_STATS_CANCELLED], before.v[EXAMPLE_STATS_CANCELLED]);
        for (int i = 0; i < 100 && !log_lines(conn, NULL); i++)
                usleep(10000);
        assert_int_equal(log_lines("bundle org.tether.example: ExampleDriver (0x", "): async result for", conn,
                                   "which has closed", "(NotAttached)", NULL),
                         1);

        /* The port goes while its stream runs: the same for the driver, and
         * the reference is given back (the connection fills up again). */
        tether_notification_port *p2 = NULL;
        assert_int_equal(tether_notification_port_create(s, &p2), TETHER_SUCCESS);
        seen d = { 0 };
        assert_int_equal(start_stream(c2, p2, &d, EXAMPLE_MAX_STREAM_COUNT, 2), TETHER_SUCCESS);
        at_least one = { &d, 1 };
        assert_true(pump(p2, 5000, got_at_least, &one));
        tether_notification_port_destroy(p2);
        w.detached = 2;
        assert_true(pump(p, 5000, stats_reached, &w));
        assert_int_equal(w.now.v[EXAMPLE_STATS_RUNNING], 0);
        snprintf(conn, sizeof(conn), "connection %llu,", (unsigned long long)tether_connect_id(c2));
        for (int i = 0; i < 100 && !log_lines(conn, NULL); i++)
                usleep(10000);
        assert_int_equal(log_lines("bundle org.tether.example: ExampleDriver (0x", "): async result for", conn,
                                   "whose client closed the notification port", "(NotAttached)", NULL),
                         1);
        static seen fill[64];
        memset(fill, 0, sizeof(fill));
        for (int i = 0; i < 64; i++)
                assert_int_equal(start_stream(c2, p, &fill[i], EXAMPLE_MAX_STREAM_COUNT, 1000), TETHER_SUCCESS);
        tether_service_close(c2);
        tether_connect *c = open_example(s);
        assert_true(pump(p, 5000, no_stream_running, c));
        tether_service_close(c);
        tether_notification_port_destroy(p);
        tether_session_close(s);
}

/* ---- the async bounds ---- */

static void open_streams_count_against_the_async_bounds(void **state)
{
        enum { PER_CONN = 64, PER_SESSION = 256, CONNS = PER_SESSION / PER_CONN + 1 };
        tether_session *s = harness_session(&H);
        tether_notification_port *p = NULL;
        assert_int_equal(tether_notification_port_create(s, &p), TETHER_SUCCESS);
        tether_connect *c[CONNS];
        for (int k = 0; k < CONNS; k++)
                c[k] = open_example(s);
        static seen st[CONNS][PER_CONN + 1];
        memset(st, 0, sizeof(st));
        /* The first waits 2 s for its first result: a cancel made now
         * reaches its driver only then. */
        assert_int_equal(start_stream(c[0], p, &st[0][0], EXAMPLE_MAX_STREAM_COUNT, 2000), TETHER_SUCCESS);
        for (int i = 1; i < PER_CONN; i++)
                assert_int_equal(start_stream(c[0], p, &st[0][i], EXAMPLE_MAX_STREAM_COUNT, 1000), TETHER_SUCCESS);
        assert_int_equal(start_stream(c[0], p, &st[0][PER_CONN], 1, 0), TETHER_ERR_NO_RESOURCES);
        /* A sync call on a full connection still works. */
        uint64_t in[2] = { 1, 2 }, out = 0;
        uint32_t n = 1;
        assert_int_equal(tether_call_scalar_method(c[0], EXAMPLE_ADD, in, 2, &out, &n), TETHER_SUCCESS);
        assert_int_equal(out, 3);
        /* The session's bound: 256 over its connections. */
        for (int k = 1; k < CONNS - 1; k++)
                for (int i = 0; i < PER_CONN; i++)
                        assert_int_equal(start_stream(c[k], p, &st[k][i], EXAMPLE_MAX_STREAM_COUNT, 1000),
                                         TETHER_SUCCESS);
        assert_int_equal(start_stream(c[CONNS - 1], p, &st[CONNS - 1][0], 1, 0), TETHER_ERR_NO_RESOURCES);

        /* A cancelled stream counts until its driver is told, or a client
         * could cancel and reopen streams faster than drivers let go. */
        stats before = stream_stats(c[0]);
        assert_int_equal(tether_async_cancel(p, on_result, &st[0][0]), TETHER_SUCCESS);
        assert_int_equal(start_stream(c[0], p, &st[0][PER_CONN], 1, 0), TETHER_ERR_NO_RESOURCES);
        want_stats w = { .c = c[0], .before = before, .cancelled = 1 };
        assert_true(pump(p, 5000, stats_reached, &w));
        assert_int_equal(start_stream(c[0], p, &st[0][PER_CONN], EXAMPLE_MAX_STREAM_COUNT, 1000), TETHER_SUCCESS);
        assert_int_equal(start_stream(c[0], p, &st[0][0], 1, 0), TETHER_ERR_NO_RESOURCES);

        /* A closed connection's streams stop counting at once. */
        tether_service_close(c[1]);
        assert_int_equal(start_stream(c[CONNS - 1], p, &st[CONNS - 1][0], 3, 0), TETHER_SUCCESS);
        for (int k = 0; k < CONNS; k++)
                if (k != 1)
                        tether_service_close(c[k]);
        tether_connect *x = open_example(s);
        assert_true(pump(p, 5000, no_stream_running, x));
        tether_service_close(x);
        tether_notification_port_destroy(p);
        tether_session_close(s);
}

/* ---- a port nobody reads ---- */

static void a_port_nobody_reads_loses_results_and_nothing_grows(void **state)
{
        enum { COUNT = EXAMPLE_MAX_STREAM_COUNT };
        tether_session *s = harness_session(&H);
        tether_connect *c = open_example(s), *other = open_example(s);
        tether_notification_port *p = NULL;
        assert_int_equal(tether_notification_port_create(s, &p), TETHER_SUCCESS);
        pid_t drv = driver_pid(s);
        stats before = stream_stats(c);
        assert_int_equal(before.v[EXAMPLE_STATS_RUNNING], 0);
        long rss0 = rss_kib(drv);
        int full0 = log_lines("notification port", "is full", NULL);
        int drained0 = log_lines("notification port", "drained", NULL);

        /* As fast as the driver can: the port is full after a few hundred,
         * and every result after that is dropped (and counted) at once. */
        seen a = { .gaps_ok = true };
        assert_int_equal(start_stream(c, p, &a, COUNT, 0), TETHER_SUCCESS);
        /* ... and the service's loop still serves its other connections. */
        uint64_t slowest = 0;
        int calls = 0;
        want_stats w = { .c = other, .before = before, .finished = 1 };
        for (uint64_t end = now_ms() + 60000; now_ms() < end; calls++) {
                uint64_t in[2] = { 20, 22 }, out = 0, t0 = now_ms();
                uint32_t n = 1;
                assert_int_equal(tether_call_scalar_method(other, EXAMPLE_ADD, in, 2, &out, &n), TETHER_SUCCESS);
                assert_int_equal(out, 42);
                bool done = stats_reached(&w);
                slowest = now_ms() - t0 > slowest ? now_ms() - t0 : slowest;
                if (done)
                        break;
                usleep(1000);
        }
        long rss1 = rss_kib(drv);
        assert_true(stats_reached(&w));
        uint64_t dropped = w.now.v[EXAMPLE_STATS_DROPPED] - before.v[EXAMPLE_STATS_DROPPED];
        print_message("%d calls beside the stream, slowest %llu ms; %llu of %d results dropped; "
                      "driver RSS %ld -> %ld KiB\n",
                      calls, (unsigned long long)slowest, (unsigned long long)dropped, COUNT, rss0, rss1);
        /* The loop took turns: calls all along the stream, none held up. */
        assert_in_range(calls, 10, INT32_MAX);
        assert_in_range(slowest, 0, 500);
        assert_true(dropped > 0);
        /* Nothing queued for the client anywhere: 100,000 results would
         * be megabytes. (Under ASan freed memory is kept aside a while:
         * each result's timer is a small allocation.) */
        assert_in_range(rss1, 0, rss0 + (UNDER_ASAN ? 32768 : 4096));
        /* Said once, not per result. */
        assert_int_equal(log_lines("notification port", "is full", NULL) - full0, 1);

        /* What is on the port is what was not dropped: nothing else. */
        pump(p, 300, NULL, NULL);
        print_message("%d results were on the port\n", a.results);
        assert_int_equal((uint64_t)a.results + dropped, COUNT);
        assert_true(a.results > 0);
        assert_int_equal(a.out_of_order + a.wrong, 0);

        /* Read again, the port gets a stream whole. */
        seen b = { 0 };
        assert_int_equal(start_stream(c, p, &b, 50, 2), TETHER_SUCCESS);
        assert_true(pump(p, 10000, all_in, &b));
        assert_int_equal(b.out_of_order + b.wrong, 0);
        for (int i = 0; i < 100 && log_lines("notification port", "drained", NULL) == drained0; i++)
                usleep(10000);
        assert_int_equal(log_lines("notification port", "drained", "messages were dropped", NULL) - drained0, 1);

        tether_service_close(c);
        assert_true(pump(p, 5000, no_stream_running, other));
        tether_service_close(other);
        tether_notification_port_destroy(p);
        tether_session_close(s);
}

/* ---- the wire, spoken by hand ---- */

static void notify_async_flags_and_async_cancel_on_the_wire(void **state)
{
        tether_session *ts = harness_session(&H);
        uint64_t svc = harness_find(ts, "ExampleDriver");
        tether_session_close(ts);
        int s = raw_session(H.sock);
        int c = raw_open(s, svc, EXAMPLE_CLIENT);
        uint64_t port_id = 0;
        int port = raw_port(s, &port_id);

        wire_call call = { .selector = EXAMPLE_STREAM, .flags = WIRE_CALL_ASYNC, .scalar_in_count = 2,
                           .scalars = { 3, 0 } };
        call.async_ref[0] = port_id;
        call.async_ref[1] = 7;
        call.async_ref[7] = 0x7777; /* the rest of the reference is the client's, echoed */
        assert_int_equal(raw_call(c, 1, &call), TETHER_SUCCESS);
        for (uint32_t i = 1; i <= 3; i++) {
                uint8_t buf[WIRE_MAX_MESSAGE];
                size_t len = 0;
                int fd = -1;
                assert_int_equal(wire_recv(port, buf, sizeof(buf), &len, &fd), TETHER_SUCCESS);
                assert_int_equal(fd, -1);
                /* u64 ref[8], i32 result, u32 count, u32 flags, u32 0, u64 args[count] */
                assert_int_equal(len, WIRE_HEADER_SIZE + 64 + 16 + 2 * 8);
                wire_header h;
                memcpy(&h, buf, sizeof(h));
                assert_int_equal(h.type, WIRE_NOTIFY_ASYNC);
                const uint8_t *b = buf + WIRE_HEADER_SIZE;
                uint64_t ref[8], args[2];
                uint32_t f[4];
                memcpy(ref, b, sizeof(ref));
                memcpy(f, b + 64, sizeof(f));
                memcpy(args, b + 80, sizeof(args));
                assert_int_equal(ref[0], port_id);
                assert_int_equal(ref[1], 7);
                assert_int_equal(ref[7], 0x7777);
                assert_int_equal((int32_t)f[0], TETHER_SUCCESS);
                assert_int_equal(f[1], 2);
                assert_int_equal(f[2], i == 3 ? WIRE_ASYNC_LAST : 0); /* only the last closes it */
                assert_int_equal(f[3], 0);
                assert_int_equal(args[EXAMPLE_STREAM_SEQ], i);
                assert_int_equal(args[EXAMPLE_STREAM_COUNT], 3);
        }
        /* Closed by its last result. */
        assert_int_equal(raw_async_cancel(c, 2, port_id, 7), TETHER_ERR_NOT_FOUND);
        /* Open: cancelled once; a second is NotFound. */
        call.scalars[0] = EXAMPLE_MAX_STREAM_COUNT;
        call.scalars[1] = 1000;
        call.async_ref[1] = 8;
        assert_int_equal(raw_call(c, 3, &call), TETHER_SUCCESS);
        /* One connection never has two references open under one name. */
        assert_int_equal(raw_call(c, 4, &call), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(raw_async_cancel(c, 5, port_id, 8), TETHER_SUCCESS);
        assert_int_equal(raw_async_cancel(c, 6, port_id, 8), TETHER_ERR_NOT_FOUND);
        /* Names that were never open, and a message cut short. */
        assert_int_equal(raw_async_cancel(c, 7, port_id, 9), TETHER_ERR_NOT_FOUND);
        assert_int_equal(raw_async_cancel(c, 8, port_id + 1000, 8), TETHER_ERR_NOT_FOUND);
        wire_msg m;
        wire_msg_init(&m, WIRE_ASYNC_CANCEL, 9, 0);
        wire_put_u64(&m, port_id);
        wire_msg_finish(&m);
        assert_int_equal(raw_exchange(c, m.buf, m.len), TETHER_ERR_BAD_ARGUMENT);
        close(port);
        close(c);
        close(s);
        tether_session *s2 = harness_session(&H);
        tether_connect *x = open_example(s2);
        for (int i = 0; i < 300 && stream_stats(x).v[EXAMPLE_STATS_RUNNING]; i++)
                usleep(10000);
        assert_int_equal(stream_stats(x).v[EXAMPLE_STATS_RUNNING], 0);
        tether_service_close(x);
        tether_session_close(s2);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                /* First: tetherd says "port full" at most 10 times in 5 s
                 * about one uid, and the others make it say some. */
                cmocka_unit_test(a_port_nobody_reads_loses_results_and_nothing_grows),
                /* Second: the same holds for drivers' late results, and
                 * the ones after it close connections with streams open. */
                cmocka_unit_test(closing_mid_stream_ends_only_that_stream),
                cmocka_unit_test(a_thousand_results_arrive_in_order),
                cmocka_unit_test(a_cancel_ends_the_stream),
                cmocka_unit_test(open_streams_count_against_the_async_bounds),
                cmocka_unit_test(notify_async_flags_and_async_cancel_on_the_wire),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
