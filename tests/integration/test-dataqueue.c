/* SPDX-License-Identifier: MIT */
/* Data queues through a real tetherd and the example driver (in its host,
 * or inside tetherd with TETHER_IN_PROCESS=1): order, nothing lost or
 * duplicated, a full queue refusing, the producer resumed by the client's
 * draining, the data-available message and its coalescing, the bounds, a
 * queue the driver corrupted, and a hostile client of another uid
 * scribbling on its own queue's header beside a polite one. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tether/driver.h> /* the bounds on a connection's queues */

#include "core/dataqueue.h"
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

static double now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static tether_connect *open_example(tether_session *s)
{
        tether_connect *c = NULL;
        assert_int_equal(tether_service_open(s, harness_find(s, "ExampleDriver"), EXAMPLE_CLIENT, 0, &c),
                         TETHER_SUCCESS);
        return c;
}

static tether_ret_t q_create(tether_connect *c, uint32_t type, uint64_t capacity, uint64_t *ret_capacity)
{
        uint64_t in[2] = { type, capacity }, out = 0;
        uint32_t n = 1;
        tether_ret_t r = tether_call_scalar_method(c, EXAMPLE_QUEUE_CREATE, in, 2, &out, &n);
        if (ret_capacity)
                *ret_capacity = out;
        return r;
}

/* Start count items of size; *ret_n: how many this call enqueued, and the
 * result of its last enqueue. */
static tether_ret_t q_produce(tether_connect *c, uint32_t type, uint64_t count, uint64_t size, uint64_t flags,
                              uint64_t *ret_n, tether_ret_t *ret_last)
{
        uint64_t in[4] = { type, count, size, flags }, out[2] = { 0 };
        uint32_t n = 2;
        tether_ret_t r = tether_call_scalar_method(c, EXAMPLE_QUEUE_PRODUCE, in, 4, out, &n);
        if (ret_n)
                *ret_n = out[0];
        if (ret_last)
                *ret_last = (tether_ret_t)(int64_t)out[1];
        return r;
}

typedef struct stats {
        uint64_t enqueued, refused, serviced;
        tether_ret_t last_error;
        uint64_t left;
} stats;

static stats q_stats(tether_connect *c, uint32_t type)
{
        uint64_t in = type, out[5] = { 0 };
        uint32_t n = 5;
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_QUEUE_STATS, &in, 1, out, &n), TETHER_SUCCESS);
        return (stats){ out[0], out[1], out[2], (tether_ret_t)(int64_t)out[3], out[4] };
}

static tether_ret_t q_destroy(tether_connect *c, uint32_t type)
{
        uint64_t in = type;
        return tether_call_scalar_method(c, EXAMPLE_QUEUE_DESTROY, &in, 1, NULL, NULL);
}

static void count_cb(void *refcon, tether_mapped_queue *q)
{
        (*(int *)refcon)++;
}

/* Take items seq .. seq + n - 1 of size, waiting for them as needed (on
 * the port if the queue has one, else by polling), each checked whole. */
static void consume(tether_mapped_queue *q, bool has_port, uint64_t seq, uint64_t n, size_t size, int timeout_ms)
{
        static uint8_t buf[TETHER_DATA_QUEUE_MAX_ITEM(TETHER_DATA_QUEUE_MAX_CAPACITY)];
        double deadline = now_ms() + timeout_ms;
        for (uint64_t i = 0; i < n;) {
                size_t len = 0;
                tether_ret_t r = tether_data_queue_dequeue(q, buf, sizeof(buf), &len);
                if (r == TETHER_ERR_UNDERRUN) {
                        assert_true(now_ms() < deadline);
                        if (has_port)
                                assert_int_equal(tether_data_queue_wait(q, 5000), TETHER_SUCCESS);
                        else
                                usleep(200);
                        continue;
                }
                assert_int_equal(r, TETHER_SUCCESS);
                assert_int_equal(len, size);
                if (!example_item_check(buf, seq + i, size))
                        fail_msg("item %llu: not item %llu, or not whole", (unsigned long long)i,
                                 (unsigned long long)(seq + i));
                i++;
        }
}

static void assert_empty(tether_mapped_queue *q)
{
        uint8_t b[8];
        size_t len;
        assert_int_equal(tether_data_queue_dequeue(q, b, sizeof(b), &len), TETHER_ERR_UNDERRUN);
}

/* ---- order, nothing lost or duplicated ---- */

static void items_arrive_in_order_none_lost_or_duplicated(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c = open_example(s);
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(s, &port), TETHER_SUCCESS);
        uint64_t cap = 0;
        assert_int_equal(q_create(c, 1, 60000, &cap), TETHER_SUCCESS);
        assert_int_equal(cap, 65536); /* rounded up to a power of two */
        int told = 0;
        tether_mapped_queue *q = NULL;
        assert_int_equal(tether_data_queue_map(c, 1, port, count_cb, &told, &q), TETHER_SUCCESS);
        enum { N = 200000 };
        assert_int_equal(q_produce(c, 1, N, 24, 0, NULL, NULL), TETHER_SUCCESS);
        consume(q, true, 0, N, 24, 60000);
        /* Then bigger items, numbered on. */
        assert_int_equal(q_produce(c, 1, 3000, 5000, 0, NULL, NULL), TETHER_SUCCESS);
        consume(q, true, N, 3000, 5000, 60000);
        assert_empty(q);
        stats st = q_stats(c, 1);
        assert_int_equal(st.enqueued, N + 3000);
        assert_int_equal(st.left, 0);
        assert_int_equal(st.last_error, TETHER_SUCCESS);
        /* A consumer that never had to wait never ran the port's callbacks:
         * run what came (the first message, at least, was sent on mapping
         * or on the first item). */
        for (int i = 0; i < 50 && !told; i++) {
                tether_notification_port_dispatch(port);
                if (!told)
                        usleep(20 * 1000);
        }
        print_message("%d data-available messages, %llu refusals, %llu serviced, for %d items\n", told,
                      (unsigned long long)st.refused, (unsigned long long)st.serviced, N + 3000);
        assert_true(told >= 1);
        assert_true(told < N / 4); /* coalesced: far fewer than items */
        assert_true(st.serviced <= st.refused);
        tether_data_queue_unmap(q);
        tether_notification_port_destroy(port);
        tether_service_close(c);
        tether_session_close(s);
}

/* ---- full: refused, nothing overwritten ---- */

static void a_faster_producer_is_refused_and_nothing_is_overwritten(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c = open_example(s);
        assert_int_equal(q_create(c, 2, 16384, NULL), TETHER_SUCCESS);
        tether_mapped_queue *q = NULL;
        assert_int_equal(tether_data_queue_map(c, 2, NULL, NULL, NULL, &q), TETHER_SUCCESS);
        uint64_t n = 0;
        tether_ret_t last = 0;
        assert_int_equal(q_produce(c, 2, 1000000, 100, EXAMPLE_PRODUCE_UNTIL_FULL, &n, &last), TETHER_SUCCESS);
        assert_int_equal(last, TETHER_ERR_NO_SPACE);
        assert_int_equal(n, 16384 / 112); /* 100 bytes, an 8-byte header, padded to 8 */
        /* Refused again: still nothing overwritten. */
        uint64_t n2 = 99;
        assert_int_equal(q_produce(c, 2, 10, 100, EXAMPLE_PRODUCE_UNTIL_FULL, &n2, &last), TETHER_SUCCESS);
        assert_int_equal(n2, 0);
        assert_int_equal(last, TETHER_ERR_NO_SPACE);
        consume(q, false, 0, n, 100, 5000);
        assert_empty(q);
        stats st = q_stats(c, 2);
        assert_int_equal(st.enqueued, n);
        assert_int_equal(st.refused, 2);
        assert_int_equal(st.last_error, TETHER_SUCCESS);
        tether_service_close(c);
        tether_session_close(s);
}

/* ---- the producer resumed by the client's draining (DataServiced) ---- */

static void the_producer_waits_until_the_client_drains(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c = open_example(s);
        assert_int_equal(q_create(c, 3, 16384, NULL), TETHER_SUCCESS);
        tether_mapped_queue *q = NULL;
        assert_int_equal(tether_data_queue_map(c, 3, NULL, NULL, NULL, &q), TETHER_SUCCESS);
        uint64_t n = 0;
        tether_ret_t last = 0;
        assert_int_equal(q_produce(c, 3, 5000, 100, 0, &n, &last), TETHER_SUCCESS);
        assert_int_equal(last, TETHER_ERR_NO_SPACE);
        assert_int_equal(n, 146);
        /* It waits: no polling, no more refusals, nothing lost. */
        usleep(300 * 1000);
        stats st = q_stats(c, 3);
        assert_int_equal(st.enqueued, 146);
        assert_int_equal(st.refused, 1);
        assert_int_equal(st.serviced, 0);
        assert_int_equal(st.left, 5000 - 146);
        /* Half drained: told once, and it fills the queue again. */
        consume(q, false, 0, 73, 100, 5000);
        double t0 = now_ms();
        while (q_stats(c, 3).serviced == 0 && now_ms() - t0 < 5000)
                usleep(1000);
        st = q_stats(c, 3);
        assert_int_equal(st.serviced, 1);
        assert_int_equal(st.enqueued, 146 + 73);
        consume(q, false, 73, 5000 - 73, 100, 30000);
        assert_empty(q);
        st = q_stats(c, 3);
        assert_int_equal(st.enqueued, 5000);
        assert_int_equal(st.left, 0);
        assert_true(st.serviced >= 2);
        assert_true(st.serviced <= st.refused);
        tether_service_close(c);
        tether_session_close(s);
}

/* ---- data available: empty to non-empty, coalesced ---- */

static bool port_ready(tether_notification_port *port, int ms)
{
        struct pollfd p = { .fd = tether_notification_port_get_fd(port), .events = POLLIN };
        return poll(&p, 1, ms) == 1;
}

static void data_available_when_the_queue_goes_from_empty(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c = open_example(s);
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(s, &port), TETHER_SUCCESS);
        assert_int_equal(q_create(c, 4, 65536, NULL), TETHER_SUCCESS);
        int told = 0;
        tether_mapped_queue *q = NULL;
        assert_int_equal(tether_data_queue_map(c, 4, port, count_cb, &told, &q), TETHER_SUCCESS);
        assert_false(port_ready(port, 200)); /* empty: nothing said */
        assert_int_equal(q_produce(c, 4, 1, 16, 0, NULL, NULL), TETHER_SUCCESS);
        assert_true(port_ready(port, 5000));
        assert_int_equal(tether_notification_port_dispatch(port), TETHER_SUCCESS);
        assert_int_equal(told, 1);
        /* 100 more into a queue that is not empty: no message. */
        assert_int_equal(q_produce(c, 4, 100, 16, 0, NULL, NULL), TETHER_SUCCESS);
        double t0 = now_ms();
        while (q_stats(c, 4).enqueued < 101 && now_ms() - t0 < 5000)
                usleep(1000);
        assert_false(port_ready(port, 300));
        consume(q, true, 0, 101, 16, 5000);
        assert_empty(q);
        assert_int_equal(told, 1);
        /* Empty again: the next item is told. */
        assert_int_equal(q_produce(c, 4, 1, 16, 0, NULL, NULL), TETHER_SUCCESS);
        assert_true(port_ready(port, 5000));
        assert_int_equal(tether_notification_port_dispatch(port), TETHER_SUCCESS);
        assert_int_equal(told, 2);
        consume(q, true, 101, 1, 16, 5000);
        /* Items that came while it was not mapped are told at the map. */
        assert_int_equal(tether_data_queue_unmap(q), TETHER_SUCCESS);
        assert_int_equal(tether_data_queue_unmap(q), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(q_produce(c, 4, 5, 16, 0, NULL, NULL), TETHER_SUCCESS);
        t0 = now_ms();
        while (q_stats(c, 4).enqueued < 107 && now_ms() - t0 < 5000)
                usleep(1000);
        assert_int_equal(tether_data_queue_map(c, 4, port, count_cb, &told, &q), TETHER_SUCCESS);
        /* The port may hold a message for the unmapped queue first (its
         * driver did not know), which is dropped: wait for the new one. */
        t0 = now_ms();
        while (told < 3 && now_ms() - t0 < 5000) {
                if (port_ready(port, 100))
                        assert_int_equal(tether_notification_port_dispatch(port), TETHER_SUCCESS);
        }
        assert_int_equal(told, 3);
        consume(q, true, 102, 5, 16, 5000);
        /* Waiting with nothing coming times out. */
        t0 = now_ms();
        assert_int_equal(tether_data_queue_wait(q, 200), TETHER_ERR_TIMEOUT);
        assert_true(now_ms() - t0 >= 190);
        tether_service_close(c);
        tether_session_close(s);
}

/* ---- peek, short buffers, dropping ---- */

static void peek_short_buffers_and_dropping(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c = open_example(s);
        assert_int_equal(q_create(c, 5, 4096, NULL), TETHER_SUCCESS);
        tether_mapped_queue *q = NULL;
        assert_int_equal(tether_data_queue_map(c, 5, NULL, NULL, NULL, &q), TETHER_SUCCESS);
        const void *p = NULL;
        size_t len = 0;
        assert_int_equal(tether_data_queue_peek(q, &p, &len), TETHER_ERR_UNDERRUN);
        uint64_t n = 0;
        assert_int_equal(q_produce(c, 5, 3, 64, 0, &n, NULL), TETHER_SUCCESS);
        assert_int_equal(n, 3);
        assert_int_equal(tether_data_queue_peek(q, &p, &len), TETHER_SUCCESS);
        assert_int_equal(len, 64);
        assert_true(example_item_check(p, 0, 64));
        uint8_t small[10];
        len = 0;
        assert_int_equal(tether_data_queue_dequeue(q, small, sizeof(small), &len), TETHER_ERR_NO_SPACE);
        assert_int_equal(len, 64);
        assert_int_equal(tether_data_queue_dequeue(q, NULL, 0, &len), TETHER_SUCCESS); /* item 0 dropped */
        assert_int_equal(tether_data_queue_dequeue(q, NULL, 5, &len), TETHER_ERR_BAD_ARGUMENT);
        consume(q, false, 1, 2, 64, 5000);
        assert_empty(q);
        tether_service_close(c);
        tether_session_close(s);
}

/* ---- a queue the driver corrupted: refused, for good ---- */

/* The shared header of a fresh queue whose first item is in place: a peek
 * points just past that item's header, at offset 0 of the ring. */
static dq_shared *header_of(tether_mapped_queue *q)
{
        const void *p = NULL;
        size_t len;
        assert_int_equal(tether_data_queue_peek(q, &p, &len), TETHER_SUCCESS);
        return (dq_shared *)((uintptr_t)p - DQ_ITEM_HEADER - DQ_HEADER_SIZE);
}

static void a_queue_the_driver_corrupted_is_refused(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c = open_example(s);
        for (int k = 0; k < 3; k++) {
                uint32_t type = 10 + (uint32_t)k;
                assert_int_equal(q_create(c, type, 4096, NULL), TETHER_SUCCESS);
                tether_mapped_queue *q = NULL;
                assert_int_equal(tether_data_queue_map(c, type, NULL, NULL, NULL, &q), TETHER_SUCCESS);
                assert_int_equal(q_produce(c, type, 2, 32, 0, NULL, NULL), TETHER_SUCCESS);
                dq_shared *h = header_of(q);
                uint32_t tail = atomic_load(&h->tail);
                uint8_t *ring = (uint8_t *)h + DQ_HEADER_SIZE;
                /* What a misbehaving driver could write: */
                if (k == 0)
                        atomic_store(&h->tail, tail + 4096 * 2); /* more than the queue holds */
                else if (k == 1)
                        memcpy(ring, &(uint32_t){ 0x7ffffff0u }, 4); /* an item longer than the queue */
                else
                        memcpy(ring, &(uint32_t){ DQ_PAD }, 4); /* a pad at offset 0 */
                uint8_t buf[64];
                size_t len;
                assert_int_equal(tether_data_queue_dequeue(q, buf, sizeof(buf), &len), TETHER_ERR_IPC);
                /* Put right: still refused, and a waiter is not left asleep. */
                atomic_store(&h->tail, tail);
                memcpy(ring, &(uint32_t){ 32 }, 4);
                assert_int_equal(tether_data_queue_wait(q, 1000), TETHER_SUCCESS); /* at once: call and learn */
                assert_int_equal(tether_data_queue_dequeue(q, buf, sizeof(buf), &len), TETHER_ERR_IPC);
                const void *p;
                assert_int_equal(tether_data_queue_peek(q, &p, &len), TETHER_ERR_IPC);
        }
        tether_service_close(c);
        tether_session_close(s);
}

/* ---- bounds ---- */

static void queues_are_bounded_per_connection_and_per_session(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *a = open_example(s);
        assert_int_equal(q_create(a, 1, 0, NULL), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(q_create(a, 1, TETHER_DATA_QUEUE_MAX_CAPACITY + 1, NULL), TETHER_ERR_BAD_ARGUMENT);
        for (uint32_t t = 0; t < TETHER_DATA_QUEUES_PER_CONNECTION; t++)
                assert_int_equal(q_create(a, t, 4096, NULL), TETHER_SUCCESS);
        assert_int_equal(q_create(a, 3, 4096, NULL), TETHER_ERR_BAD_ARGUMENT); /* a type it has */
        assert_int_equal(q_create(a, 100, 4096, NULL), TETHER_ERR_NO_RESOURCES);
        assert_int_equal(q_destroy(a, 3), TETHER_SUCCESS);
        assert_int_equal(q_create(a, 100, 4096, NULL), TETHER_SUCCESS);

        /* Bytes per connection. */
        tether_connect *b = open_example(s);
        assert_int_equal(q_create(b, 1, TETHER_DATA_QUEUE_MAX_CAPACITY, NULL), TETHER_SUCCESS);
        assert_int_equal(q_create(b, 2, 4096, NULL), TETHER_ERR_NO_RESOURCES);

        /* Bytes per session, over its connections: a holds 32 KiB, b 16 MiB. */
        tether_connect *more[3];
        for (int i = 0; i < 3; i++)
                more[i] = open_example(s);
        assert_int_equal(q_create(more[0], 1, 16u << 20, NULL), TETHER_SUCCESS);
        assert_int_equal(q_create(more[1], 1, 16u << 20, NULL), TETHER_SUCCESS);
        assert_int_equal(q_create(more[2], 1, 16u << 20, NULL), TETHER_ERR_NO_RESOURCES);
        assert_int_equal(q_create(more[2], 1, 8u << 20, NULL), TETHER_SUCCESS);
        assert_int_equal(q_create(more[2], 2, 8u << 20, NULL), TETHER_ERR_NO_RESOURCES);
        /* Another session has a budget of its own. */
        tether_session *s2 = harness_session(&H);
        tether_connect *other = open_example(s2);
        assert_int_equal(q_create(other, 1, 16u << 20, NULL), TETHER_SUCCESS);
        /* A closed connection gives its room back: a's 32 KiB were what
         * stood between 56 MiB and 64. */
        tether_service_close(a);
        assert_int_equal(q_create(more[2], 2, 8u << 20, NULL), TETHER_SUCCESS);
        assert_int_equal(q_create(more[2], 3, 4096, NULL), TETHER_ERR_NO_RESOURCES);
        tether_service_close(b);
        for (int i = 0; i < 3; i++)
                tether_service_close(more[i]);
        tether_session_close(s2);
        tether_session_close(s);

        /* Queues per session, however small: each holds an fd in the
         * driver's process. */
        s = harness_session(&H);
        tether_connect *full[TETHER_DATA_QUEUES_PER_SESSION / TETHER_DATA_QUEUES_PER_CONNECTION + 1];
        size_t nfull = sizeof(full) / sizeof(full[0]);
        for (size_t i = 0; i < nfull; i++) {
                full[i] = open_example(s);
                for (uint32_t t = 0; t < TETHER_DATA_QUEUES_PER_CONNECTION; t++)
                        assert_int_equal(q_create(full[i], t, 4096, NULL),
                                         i < nfull - 1 ? TETHER_SUCCESS : TETHER_ERR_NO_RESOURCES);
        }
        /* A connection whose start() makes a queue cannot be opened then. */
        tether_connect *streaming = NULL;
        assert_int_equal(tether_service_open(s, harness_find(s, "ExampleDriver"), EXAMPLE_CLIENT_STREAMING, 0,
                                             &streaming),
                         TETHER_ERR_NO_RESOURCES);
        tether_service_close(full[0]);
        assert_int_equal(q_create(full[nfull - 1], 0, 4096, NULL), TETHER_SUCCESS);
        assert_int_equal(tether_service_open(s, harness_find(s, "ExampleDriver"), EXAMPLE_CLIENT_STREAMING, 0,
                                             &streaming),
                         TETHER_SUCCESS);
        tether_session_close(s);
}

/* ---- a queue's fd, in tetherd, is its caller's uid's ---- */

static bool in_process(void)
{
        const char *v = getenv("TETHER_IN_PROCESS");
        return v && *v && strcmp(v, "0");
}

/* As uid 65534: six connections, then queues until refused (48 at most).
 * Exit 0 if what happened is what the mode says should. */
static int make_queues_as_nobody(const char *sock)
{
        tether_session *s = NULL;
        tether_value *m = NULL;
        uint64_t svc = 0;
        if (tether_session_open(sock, &s) != TETHER_SUCCESS || tether_service_matching("ExampleDriver", &m) ||
            tether_get_matching_service(s, m, &svc) != TETHER_SUCCESS)
                return 1;
        tether_connect *c[6];
        for (int i = 0; i < 6; i++)
                if (tether_service_open(s, svc, EXAMPLE_CLIENT, 0, &c[i]) != TETHER_SUCCESS)
                        return 2;
        int made = 0;
        tether_ret_t r = TETHER_SUCCESS;
        while (made < 48 && (r = q_create(c[made / 8], (uint32_t)made % 8, 4096, NULL)) == TETHER_SUCCESS)
                made++;
        printf("nobody made %d queues (%s)\n", made, tether_ret_name(r));
        fflush(stdout);
        if (!in_process())
                return made == 48 ? 0 : 3; /* a host's fds are its own: the session bound only */
        /* tetherd's fds: its share of them ran out first, and a closed
         * connection gives its queues' back. */
        if (r != TETHER_ERR_NO_RESOURCES || made < 8 || made >= 48)
                return 4;
        tether_service_close(c[0]);
        if (made / 8 == 0 || q_create(c[made / 8], (uint32_t)made % 8, 4096, NULL) != TETHER_SUCCESS)
                return 5;
        tether_session_close(s);
        return 0;
}

typedef struct fd_count {
        const harness *h;
        int want;
} fd_count;

static bool fds_back(void *arg)
{
        fd_count *f = arg;
        return harness_fd_count(f->h) <= f->want;
}

static void queue_fds_count_against_the_uid_in_tetherd(void **state)
{
        if (geteuid() != 0) {
                print_message("skipped: needs root (to be uid 65534)\n");
                skip();
        }
        harness L = { .nofile = 256 };
        assert_int_equal(harness_start(&L), 0);
        int before = harness_fd_count(&L);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
                    setresuid(65534, 65534, 65534) < 0)
                        _exit(100);
                _exit(make_queues_as_nobody(L.sock));
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        /* Nothing of the client's is left in tetherd. */
        fd_count f = { &L, before };
        assert_true(harness_wait(fds_back, &f, 5000));
        assert_int_equal(harness_stop(&L), 0);
}

/* ---- a queue made in the user client's start() ---- */

static void a_queue_made_in_start_is_there_before_any_call(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c = NULL;
        assert_int_equal(tether_service_open(s, harness_find(s, "ExampleDriver"), EXAMPLE_CLIENT_STREAMING, 0, &c),
                         TETHER_SUCCESS);
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(s, &port), TETHER_SUCCESS);
        tether_mapped_queue *q = NULL;
        assert_int_equal(tether_data_queue_map(c, EXAMPLE_EVENT_QUEUE, port, NULL, NULL, &q), TETHER_SUCCESS);
        assert_int_equal(q_produce(c, EXAMPLE_EVENT_QUEUE, 50000, 32, 0, NULL, NULL), TETHER_SUCCESS);
        consume(q, true, 0, 50000, 32, 30000);
        assert_empty(q);
        tether_session_close(s);
}

/* ---- mapping: what is refused, and handles that die ---- */

static void mapping_rules_and_dead_handles(void **state)
{
        tether_session *s = harness_session(&H);
        tether_session *s2 = harness_session(&H);
        tether_connect *c = open_example(s);
        tether_notification_port *mine = NULL, *theirs = NULL;
        assert_int_equal(tether_notification_port_create(s, &mine), TETHER_SUCCESS);
        assert_int_equal(tether_notification_port_create(s2, &theirs), TETHER_SUCCESS);
        tether_mapped_queue *q = NULL, *q2 = NULL;
        assert_int_equal(tether_data_queue_map(c, 1, NULL, NULL, NULL, &q), TETHER_ERR_NOT_FOUND);
        assert_int_equal(q_create(c, 1, 4096, NULL), TETHER_SUCCESS);
        assert_int_equal(tether_data_queue_map(c, 1, NULL, count_cb, NULL, &q), TETHER_ERR_BAD_ARGUMENT);
        /* Another session's port: as for an async call, refused. */
        assert_int_equal(tether_data_queue_map(c, 1, theirs, NULL, NULL, &q), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_data_queue_map(c, 1, mine, NULL, NULL, &q), TETHER_SUCCESS);
        /* One consumer per queue in a process. */
        assert_int_equal(tether_data_queue_map(c, 1, NULL, NULL, NULL, &q2), TETHER_ERR_EXCLUSIVE_ACCESS);
        /* The wrong kind of handle, and nonsense. */
        size_t len;
        assert_int_equal(tether_data_queue_dequeue((tether_mapped_queue *)c, NULL, 0, &len), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_data_queue_dequeue(NULL, NULL, 0, &len), TETHER_ERR_BAD_ARGUMENT);
        /* The queue dies with its connection. */
        assert_int_equal(q_produce(c, 1, 1, 16, 0, NULL, NULL), TETHER_SUCCESS);
        tether_service_close(c);
        assert_int_equal(tether_data_queue_dequeue(q, NULL, 0, &len), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_data_queue_wait(q, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_data_queue_unmap(q), TETHER_ERR_BAD_ARGUMENT);
        /* And with its session. */
        c = open_example(s2);
        assert_int_equal(q_create(c, 1, 4096, NULL), TETHER_SUCCESS);
        assert_int_equal(tether_data_queue_map(c, 1, theirs, count_cb, NULL, &q2), TETHER_SUCCESS);
        tether_session_close(s2);
        const void *p;
        assert_int_equal(tether_data_queue_peek(q2, &p, &len), TETHER_ERR_BAD_ARGUMENT);
        tether_session_close(s);
}

/* ---- a connection closed mid-stream ---- */

static void closing_mid_stream_leaves_the_driver_serving(void **state)
{
        tether_session *s = harness_session(&H);
        for (int round = 0; round < 5; round++) {
                tether_connect *c = open_example(s);
                assert_int_equal(q_create(c, 1, 65536, NULL), TETHER_SUCCESS);
                tether_mapped_queue *q = NULL;
                assert_int_equal(tether_data_queue_map(c, 1, NULL, NULL, NULL, &q), TETHER_SUCCESS);
                assert_int_equal(q_produce(c, 1, 1u << 30, 40, 0, NULL, NULL), TETHER_SUCCESS);
                consume(q, false, 0, 5000 * (uint64_t)round, 40, 10000); /* draining, so it runs batch after batch */
                tether_service_close(c);
        }
        /* The service still answers, and streams for a new connection. */
        tether_connect *c = open_example(s);
        uint64_t in[2] = { 2, 3 }, out = 0;
        uint32_t n = 1;
        assert_int_equal(tether_call_scalar_method(c, EXAMPLE_ADD, in, 2, &out, &n), TETHER_SUCCESS);
        assert_int_equal(out, 5);
        assert_int_equal(q_create(c, 1, 65536, NULL), TETHER_SUCCESS);
        tether_mapped_queue *q = NULL;
        assert_int_equal(tether_data_queue_map(c, 1, NULL, NULL, NULL, &q), TETHER_SUCCESS);
        assert_int_equal(q_produce(c, 1, 20000, 40, 0, NULL, NULL), TETHER_SUCCESS);
        consume(q, false, 0, 20000, 40, 20000);
        tether_service_close(c);
        tether_session_close(s);
}

/* ---- a hostile client of another uid, beside a polite one ---- */

static bool said(const char *out, const char *line)
{
        for (const char *p = out; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (!strncmp(p, line, strlen(line)))
                        return true;
        return false;
}

static long said_value(const char *out, const char *key)
{
        long v = -1;
        size_t k = strlen(key);
        for (const char *p = out; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (!strncmp(p, key, k) && p[k] == ' ')
                        v = strtol(p + k + 1, NULL, 10);
        return v;
}

static void a_hostile_client_scribbling_its_queue_hurts_no_one(void **state)
{
        const char *attacker = getenv("TETHER_ATTACKER");
        if (geteuid() != 0 || !attacker) {
                print_message("skipped: needs root (to run the attacker as uid 65534) and TETHER_ATTACKER\n");
                skip();
        }
        tether_session *s = harness_session(&H);
        tether_connect *c = open_example(s);
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(s, &port), TETHER_SUCCESS);
        assert_int_equal(q_create(c, 1, 65536, NULL), TETHER_SUCCESS);
        tether_mapped_queue *q = NULL;
        assert_int_equal(tether_data_queue_map(c, 1, port, NULL, NULL, &q), TETHER_SUCCESS);

        int out[2];
        assert_int_equal(pipe2(out, O_CLOEXEC), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                dup2(out[1], STDOUT_FILENO);
                execlp("setpriv", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", attacker, H.sock,
                       "queue-scribble", "seconds=4", (char *)NULL);
                _exit(127);
        }
        close(out[1]);

        /* The polite client streams through its own queue for as long as
         * the attack lasts, and its calls stay quick. */
        static char buf[65536];
        size_t len = 0;
        bool attacking = true;
        uint64_t done = 0;
        double t0 = now_ms(), slowest = 0;
        while (attacking) {
                assert_true(now_ms() - t0 < 60000);
                assert_int_equal(q_produce(c, 1, 20000, 64, 0, NULL, NULL), TETHER_SUCCESS);
                consume(q, true, done, 20000, 64, 30000);
                done += 20000;
                double c0 = now_ms();
                uint64_t in[2] = { done, 1 }, sum = 0;
                uint32_t n = 1;
                assert_int_equal(tether_call_scalar_method(c, EXAMPLE_ADD, in, 2, &sum, &n), TETHER_SUCCESS);
                assert_int_equal(sum, done + 1);
                if (now_ms() - c0 > slowest)
                        slowest = now_ms() - c0;
                struct pollfd p = { .fd = out[0], .events = POLLIN };
                while (poll(&p, 1, 0) == 1) {
                        ssize_t k = read(out[0], buf + len, sizeof(buf) - 1 - len);
                        if (k <= 0) {
                                attacking = false;
                                break;
                        }
                        len += (size_t)k;
                }
        }
        buf[len] = '\0';
        close(out[0]);
        print_message("polite: %llu items in %.0f ms beside the attacker, slowest call %.1f ms\n",
                      (unsigned long long)done, now_ms() - t0, slowest);
        assert_true(slowest < 1000);
        assert_true(done >= 100000);
        assert_empty(q);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        print_message("attacker: %ld rounds, %ld calls, slowest %ld ms\n", said_value(buf, "rounds"),
                      said_value(buf, "calls"), said_value(buf, "slowest_ms"));
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert_true(said(buf, "uid 65534"));
        assert_true(said(buf, "create 0 "));
        assert_true(said(buf, "map 0 "));
        char line[64];
        snprintf(line, sizeof(line), "map_foreign_port %d ", TETHER_ERR_BAD_ARGUMENT);
        assert_true(said(buf, line));
        snprintf(line, sizeof(line), "map_unknown_type %d ", TETHER_ERR_NOT_FOUND);
        assert_true(said(buf, line));
        assert_int_equal(said_value(buf, "truncate_errno"), EPERM);
        /* A head set to garbage broke that queue, as the driver saw it. */
        snprintf(line, sizeof(line), "pattern ahead last_error %d ", TETHER_ERR_IPC);
        assert_true(said(buf, line));
        snprintf(line, sizeof(line), "pattern far last_error %d ", TETHER_ERR_IPC);
        assert_true(said(buf, line));
        snprintf(line, sizeof(line), "pattern unaligned last_error %d ", TETHER_ERR_IPC);
        assert_true(said(buf, line));
        /* Plausible values are served as what they say. */
        assert_true(said(buf, "pattern stale_full last_error 0 "));
        assert_true(said(buf, "pattern drain_flood last_error 0 "));
        assert_true(said(buf, "pattern malformed last_error 0 "));
        /* The serviced handler ran only for refusals, however many
         * serviced messages came. */
        for (const char *l = strstr(buf, "pattern "); l; l = strstr(l + 1, "pattern ")) {
                unsigned long long refused = 0, serviced = 0;
                const char *r = strstr(l, " refused ");
                assert_non_null(r);
                assert_int_equal(sscanf(r, " refused %llu serviced %llu", &refused, &serviced), 2);
                assert_true(serviced <= refused);
        }
        assert_true(said_value(buf, "rounds") >= 7);
        assert_int_equal(said_value(buf, "unanswered"), 0);
        assert_true(said_value(buf, "slowest_ms") < 1000);

        /* Still serving: a new session, a new queue. */
        tether_session *s2 = harness_session(&H);
        tether_connect *c2 = open_example(s2);
        assert_int_equal(q_create(c2, 1, 4096, NULL), TETHER_SUCCESS);
        tether_mapped_queue *q2 = NULL;
        assert_int_equal(tether_data_queue_map(c2, 1, NULL, NULL, NULL, &q2), TETHER_SUCCESS);
        assert_int_equal(q_produce(c2, 1, 1000, 16, 0, NULL, NULL), TETHER_SUCCESS);
        consume(q2, false, 0, 1000, 16, 10000);
        tether_session_close(s2);
        tether_session_close(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(items_arrive_in_order_none_lost_or_duplicated),
                cmocka_unit_test(a_faster_producer_is_refused_and_nothing_is_overwritten),
                cmocka_unit_test(the_producer_waits_until_the_client_drains),
                cmocka_unit_test(data_available_when_the_queue_goes_from_empty),
                cmocka_unit_test(peek_short_buffers_and_dropping),
                cmocka_unit_test(a_queue_the_driver_corrupted_is_refused),
                cmocka_unit_test(queues_are_bounded_per_connection_and_per_session),
                cmocka_unit_test(a_queue_made_in_start_is_there_before_any_call),
                cmocka_unit_test(queue_fds_count_against_the_uid_in_tetherd),
                cmocka_unit_test(mapping_rules_and_dead_handles),
                cmocka_unit_test(closing_mid_stream_leaves_the_driver_serving),
                cmocka_unit_test(a_hostile_client_scribbling_its_queue_hurts_no_one),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
