/* SPDX-License-Identifier: MIT */
/*
 * Items per second from a driver to its client, measured in the same run
 * two ways, against the example driver:
 *   - the baseline: one async completion per item, the way a stream went
 *     before data queues (EXAMPLE_DELAYED_ADD with no delay: an async call
 *     and its completion, whose two 64-bit results are the item's 16 bytes),
 *     with 32 calls in flight so the client never waits on one round trip;
 *   - a data queue (1 MiB): the driver enqueues (EXAMPLE_QUEUE_PRODUCE),
 *     the client dequeues and sleeps on the port when it is empty.
 * Each figure is the median of 3 rounds, baseline and queue alternating;
 * the driver runs in a driver host (tetherd's default), then inside
 * tetherd (--in-process). Not a test: it prints figures and ratios.
 * TETHERD names the daemon.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tether/tether.h>

#include "example/example.h"
#include "bench-util.h"
#include "harness.h"

#define ROUNDS    3
#define WINDOW    32
#define QUEUE_CAP (1u << 20)

static long completions;

static void completed(void *refcon, tether_ret_t result, const uint64_t *args, uint32_t n)
{
        if (result == TETHER_SUCCESS && n == 2)
                completions++;
}

/* Items per second through async completions, WINDOW in flight. */
static double async_items_per_s(tether_connect *c, tether_notification_port *port, long n)
{
        completions = 0;
        long issued = 0;
        int fd = tether_notification_port_get_fd(port);
        double t0 = bench_now_us();
        while (completions < n) {
                while (issued < n && issued - completions < WINDOW) {
                        uint64_t in[3] = { (uint64_t)issued, 1, 0 };
                        if (tether_call_async_method(c, EXAMPLE_DELAYED_ADD, port, completed, NULL, in, 3, NULL, 0,
                                                     NULL, NULL, NULL, NULL) != TETHER_SUCCESS) {
                                fprintf(stderr, "bench: async call failed\n");
                                return 0;
                        }
                        issued++;
                }
                /* The window is full, or all are sent: wait for completions. */
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (poll(&p, 1, 10000) != 1) {
                        fprintf(stderr, "bench: completions stalled at %ld of %ld\n", completions, n);
                        return 0;
                }
                tether_notification_port_dispatch(port);
        }
        return n / ((bench_now_us() - t0) / 1e6);
}

/* Items per second through a data queue of items of size bytes. */
static double queue_items_per_s(tether_connect *c, tether_mapped_queue *q, long n, uint32_t size)
{
        static uint8_t buf[QUEUE_CAP / 2];
        uint64_t in[4] = { 1, (uint64_t)n, size, 0 }, out[2];
        uint32_t nout = 2;
        double t0 = bench_now_us();
        if (tether_call_scalar_method(c, EXAMPLE_QUEUE_PRODUCE, in, 4, out, &nout) != TETHER_SUCCESS) {
                fprintf(stderr, "bench: produce failed\n");
                return 0;
        }
        for (long got = 0; got < n;) {
                size_t len;
                tether_ret_t r = tether_data_queue_dequeue(q, buf, sizeof(buf), &len);
                if (r == TETHER_SUCCESS) {
                        got++;
                } else if (r == TETHER_ERR_UNDERRUN) {
                        if (tether_data_queue_wait(q, 10000) != TETHER_SUCCESS) {
                                fprintf(stderr, "bench: queue stalled at %ld of %ld\n", got, n);
                                return 0;
                        }
                } else {
                        fprintf(stderr, "bench: dequeue: %s\n", tether_ret_name(r));
                        return 0;
                }
        }
        return n / ((bench_now_us() - t0) / 1e6);
}

static int cmp(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double median(double *v)
{
        qsort(v, ROUNDS, sizeof(*v), cmp);
        return v[ROUNDS / 2];
}

static int run(const char *what, const char *const *args)
{
        harness h = { .args = args };
        tether_session *s = NULL;
        tether_connect *c = NULL;
        if (bench_open(&h, "ExampleDriver", EXAMPLE_CLIENT, &s, &c) != 0)
                return 1;
        tether_notification_port *port = NULL;
        tether_mapped_queue *q = NULL;
        uint64_t in[2] = { 1, QUEUE_CAP }, cap = 0;
        uint32_t nout = 1;
        if (tether_notification_port_create(s, &port) != TETHER_SUCCESS ||
            tether_call_scalar_method(c, EXAMPLE_QUEUE_CREATE, in, 2, &cap, &nout) != TETHER_SUCCESS ||
            tether_data_queue_map(c, 1, port, NULL, NULL, &q) != TETHER_SUCCESS) {
                fprintf(stderr, "bench: cannot set up the queue\n");
                bench_close(&h, s, c);
                return 1;
        }
        static const uint32_t sizes[] = { 16, 64, 4096 };
        double base[ROUNDS], qs[3][ROUNDS];
        for (int r = 0; r < ROUNDS; r++) {
                base[r] = async_items_per_s(c, port, 20000);
                for (int k = 0; k < 3; k++)
                        qs[k][r] = queue_items_per_s(c, q, sizes[k] == 4096 ? 200000 : 2000000, sizes[k]);
        }
        double b = median(base);
        printf("%s\n", what);
        printf("  %-44s %12.0f items/s  (%.1f us each)\n", "async completion per item (16 bytes)", b, 1e6 / b);
        for (int k = 0; k < 3; k++) {
                double v = median(qs[k]);
                printf("  data queue, %4u-byte items %16s %12.0f items/s  %7.1f MB/s  %6.1fx the baseline\n",
                       sizes[k], "", v, v * sizes[k] / 1e6, v / b);
        }
        tether_data_queue_unmap(q);
        tether_notification_port_destroy(port);
        return bench_close(&h, s, c);
}

int main(void)
{
        printf("bench-queue: driver -> client items, medians of %d rounds (1 MiB queue, %d async calls in flight)\n\n",
               ROUNDS, WINDOW);
        static const char *const in_process[] = { "--in-process", NULL };
        int r = run("the example driver in its driver host (the default)", NULL);
        r |= run("the example driver inside tetherd (--in-process)", in_process);
        return r;
}
