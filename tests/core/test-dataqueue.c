/* SPDX-License-Identifier: MIT */
/* The data queue's ring, both sides in one process: order, wrap, full,
 * empty, exact fit, the wake-up rules, and a header or item lengths set to
 * garbage by either side. The ring is allocated to its exact size, so under
 * ASan any access outside it fails the test. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "core/dataqueue.h"

typedef struct ring {
        void *mem;
        uint32_t capacity;
        dq_producer p;
        dq_consumer c;
} ring;

static ring *ring_new(uint32_t capacity)
{
        ring *q = calloc(1, sizeof(*q));
        assert_non_null(q);
        q->capacity = capacity;
        q->mem = calloc(1, dq_memory_size(capacity));
        assert_non_null(q->mem);
        dq_producer_init(&q->p, q->mem, capacity);
        assert_int_equal(dq_consumer_init(&q->c, q->mem, dq_memory_size(capacity), capacity), TETHER_SUCCESS);
        return q;
}

static void ring_free(ring *q)
{
        free(q->mem);
        free(q);
}

static dq_shared *hdr(ring *q)
{
        return q->mem;
}

/* An empty queue whose counters stand at `at`, as after that many bytes. */
static void ring_at(ring *q, uint32_t at)
{
        q->p.tail = q->c.head = at;
        atomic_store(&hdr(q)->head, at);
        atomic_store(&hdr(q)->tail, at);
}

static void fill(uint8_t *buf, uint64_t seq, uint32_t len)
{
        for (uint32_t i = 0; i < len; i++)
                buf[i] = (uint8_t)(seq * 131 + i);
        if (len >= 8)
                memcpy(buf, &seq, 8);
}

static void check(const uint8_t *buf, uint64_t seq, uint32_t len)
{
        static uint8_t want[DQ_MAX_CAPACITY / 2];
        fill(want, seq, len);
        assert_memory_equal(buf, want, len);
}

static tether_ret_t put(ring *q, uint64_t seq, uint32_t len, bool *notify)
{
        static uint8_t buf[DQ_MAX_CAPACITY / 2];
        bool n = false;
        fill(buf, seq, len);
        tether_ret_t r = dq_enqueue(&q->p, buf, len, &n);
        if (notify)
                *notify = n;
        return r;
}

static void take(ring *q, uint64_t seq, uint32_t len)
{
        static uint8_t buf[DQ_MAX_CAPACITY / 2];
        uint32_t got = 0;
        bool serviced;
        assert_int_equal(dq_dequeue(&q->c, buf, sizeof(buf), &got, &serviced), TETHER_SUCCESS);
        assert_int_equal(got, len);
        check(buf, seq, len);
}

static void assert_empty(ring *q)
{
        uint8_t b[8];
        uint32_t len = 0;
        bool serviced;
        const void *p;
        assert_false(dq_available(&q->c));
        assert_int_equal(dq_dequeue(&q->c, b, sizeof(b), &len, &serviced), TETHER_ERR_UNDERRUN);
        assert_int_equal(dq_peek(&q->c, &p, &len), TETHER_ERR_UNDERRUN);
}

/* ---- sizes ---- */

static void capacity_is_a_power_of_two_in_range(void **state)
{
        uint32_t c = 0;
        assert_int_equal(dq_capacity_for(1, &c), TETHER_SUCCESS);
        assert_int_equal(c, 4096);
        assert_int_equal(dq_capacity_for(4096, &c), TETHER_SUCCESS);
        assert_int_equal(c, 4096);
        assert_int_equal(dq_capacity_for(4097, &c), TETHER_SUCCESS);
        assert_int_equal(c, 8192);
        assert_int_equal(dq_capacity_for(DQ_MAX_CAPACITY, &c), TETHER_SUCCESS);
        assert_int_equal(c, DQ_MAX_CAPACITY);
        assert_int_equal(dq_capacity_for(DQ_MAX_CAPACITY + 1, &c), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(dq_capacity_for(0, &c), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(dq_memory_size(4096), 8192);
}

static void consumer_refuses_an_impossible_geometry(void **state)
{
        static uint8_t mem[DQ_HEADER_SIZE + 8192];
        dq_consumer c;
        uint32_t len;
        const void *p;
        assert_int_equal(dq_consumer_init(&c, mem, sizeof(mem), 6144), TETHER_ERR_IPC);  /* not a power of 2 */
        assert_int_equal(dq_consumer_init(&c, mem, sizeof(mem), 2048), TETHER_ERR_IPC);  /* too small */
        assert_int_equal(dq_consumer_init(&c, mem, sizeof(mem), 16384), TETHER_ERR_IPC); /* more than mapped */
        assert_int_equal(dq_consumer_init(&c, mem, sizeof(mem) - 1, 8192), TETHER_ERR_IPC);
        assert_int_equal(dq_peek(&c, &p, &len), TETHER_ERR_IPC); /* and it stays unusable */
        /* A head off an item boundary: an offset 2 bytes before the end
         * would read an item's length past the ring. */
        atomic_store(&((dq_shared *)mem)->head, 8192 - 2);
        assert_int_equal(dq_consumer_init(&c, mem, sizeof(mem), 8192), TETHER_ERR_IPC);
        assert_int_equal(dq_peek(&c, &p, &len), TETHER_ERR_IPC);
        atomic_store(&((dq_shared *)mem)->head, 8192 - 8);
        assert_int_equal(dq_consumer_init(&c, mem, sizeof(mem), 8192), TETHER_SUCCESS);
}

/* ---- order, wrap, empty ---- */

static void empty_queue_underruns(void **state)
{
        ring *q = ring_new(4096);
        assert_empty(q);
        assert_int_equal(hdr(q)->magic, DQ_MAGIC);
        assert_int_equal(hdr(q)->capacity, 4096);
        ring_free(q);
}

static void data_available_only_when_the_queue_was_empty(void **state)
{
        ring *q = ring_new(4096);
        bool notify = false;
        assert_int_equal(put(q, 0, 10, &notify), TETHER_SUCCESS);
        assert_true(notify);
        for (int i = 1; i < 100; i++) {
                assert_int_equal(put(q, (uint64_t)i, 10, &notify), TETHER_SUCCESS);
                assert_false(notify); /* one wake-up covers them all */
        }
        for (int i = 0; i < 100; i++)
                take(q, (uint64_t)i, 10);
        assert_empty(q);
        assert_int_equal(put(q, 100, 10, &notify), TETHER_SUCCESS);
        assert_true(notify);
        take(q, 100, 10);
        ring_free(q);
}

/* Bursts of random sizes in and out, over many laps of the ring, with the
 * counters crossing 2^32 on the way. */
static void items_keep_their_order_across_wraps(void **state)
{
        ring *q = ring_new(8192);
        ring_at(q, (UINT32_MAX - 20000) & ~7u);
        uint32_t seed = 12345;
        uint64_t in = 0, out = 0;
        uint32_t lens[4096];
        uint64_t laps_bytes = 0;
        while (out < 200000) {
                seed = seed * 1103515245u + 12345u;
                int burst = (int)(seed >> 24) % 40;
                for (int i = 0; i < burst; i++) {
                        seed = seed * 1103515245u + 12345u;
                        uint32_t len = (seed >> 8) % (DQ_MAX_ITEM(q->capacity) + 1);
                        if (seed & 1)
                                len %= 64;
                        tether_ret_t r = put(q, in, len, NULL);
                        if (r == TETHER_ERR_NO_SPACE)
                                break;
                        assert_int_equal(r, TETHER_SUCCESS);
                        lens[in % 4096] = len;
                        laps_bytes += len;
                        in++;
                }
                seed = seed * 1103515245u + 12345u;
                int drain = (int)(seed >> 24) % 40;
                for (int i = 0; i < drain && out < in; i++, out++)
                        take(q, out, lens[out % 4096]);
                assert_true(in - out < 4096);
        }
        while (out < in) {
                take(q, out, lens[out % 4096]);
                out++;
        }
        assert_empty(q);
        assert_true(q->c.head < 1u << 30); /* the counters did wrap */
        assert_true(laps_bytes > 100ull * q->capacity);
        ring_free(q);
}

/* ---- full ---- */

static void a_full_queue_refuses_and_overwrites_nothing(void **state)
{
        ring *q = ring_new(4096);
        uint64_t n = 0;
        tether_ret_t r;
        while ((r = put(q, n, 100, NULL)) == TETHER_SUCCESS)
                n++;
        assert_int_equal(r, TETHER_ERR_NO_SPACE);
        assert_int_equal(n, 4096 / 112); /* 100 bytes + header, padded: 112 */
        assert_int_equal(atomic_load(&hdr(q)->producer_waiting), 1);
        /* Refused again and again: still nothing overwritten. */
        for (int i = 0; i < 10; i++)
                assert_int_equal(put(q, 999, 100, NULL), TETHER_ERR_NO_SPACE);
        for (uint64_t i = 0; i < n; i++)
                take(q, i, 100);
        assert_empty(q);
        ring_free(q);
}

static void items_that_fill_it_exactly_fit(void **state)
{
        ring *q = ring_new(4096);
        uint32_t max = DQ_MAX_ITEM(4096); /* 2040: two make 4096 */
        assert_int_equal(put(q, 1, max, NULL), TETHER_SUCCESS);
        assert_int_equal(put(q, 2, max, NULL), TETHER_SUCCESS);
        assert_int_equal(q->p.tail - atomic_load(&hdr(q)->head), 4096);
        assert_int_equal(put(q, 3, 0, NULL), TETHER_ERR_NO_SPACE);
        take(q, 1, max);
        take(q, 2, max);
        assert_empty(q);
        /* An item that ends exactly at the end of the ring needs no pad. */
        ring_at(q, 4096 - 64);
        assert_int_equal(put(q, 4, 56, NULL), TETHER_SUCCESS);
        assert_int_equal(q->p.tail, 4096);
        take(q, 4, 56);
        /* One 8 bytes longer does: a pad to the end, then it at 0. */
        ring_at(q, 4096 - 64);
        assert_int_equal(put(q, 5, 64, NULL), TETHER_SUCCESS);
        assert_int_equal(q->p.tail, 4096 + 72);
        uint32_t pad;
        memcpy(&pad, (uint8_t *)q->mem + DQ_HEADER_SIZE + 4096 - 64, 4);
        assert_int_equal(pad, DQ_PAD);
        const void *p = NULL;
        uint32_t len = 0;
        assert_int_equal(dq_peek(&q->c, &p, &len), TETHER_SUCCESS);
        assert_int_equal(len, 64);
        assert_ptr_equal(p, (uint8_t *)q->mem + DQ_HEADER_SIZE + DQ_ITEM_HEADER);
        take(q, 5, 64);
        assert_empty(q);
        ring_free(q);
}

/* The largest item fits an empty queue wherever its counters stand, so a
 * producer that was refused is never refused for good. */
static void the_largest_item_fits_wherever_the_queue_is_empty(void **state)
{
        ring *q = ring_new(4096);
        uint32_t max = DQ_MAX_ITEM(4096);
        for (uint32_t at = 0; at < 2 * 4096; at += 8) {
                ring_at(q, at);
                assert_int_equal(put(q, at, max, NULL), TETHER_SUCCESS);
                take(q, at, max);
        }
        assert_int_equal(put(q, 0, max + 1, NULL), TETHER_ERR_BAD_ARGUMENT);
        bool n;
        assert_int_equal(dq_enqueue(&q->p, NULL, 4, &n), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(dq_enqueue(&q->p, NULL, 0, &n), TETHER_SUCCESS);
        ring_free(q);
}

static void serviced_once_drained_to_half(void **state)
{
        ring *q = ring_new(4096);
        uint64_t n = 0;
        while (put(q, n, 56, NULL) == TETHER_SUCCESS) /* 64 bytes each: 64 fit */
                n++;
        assert_int_equal(n, 64);
        uint8_t buf[64];
        uint32_t len;
        bool serviced;
        uint64_t i = 0;
        for (; i < 31; i++) {
                assert_int_equal(dq_dequeue(&q->c, buf, sizeof(buf), &len, &serviced), TETHER_SUCCESS);
                assert_false(serviced); /* more than half still in use */
        }
        assert_int_equal(dq_dequeue(&q->c, buf, sizeof(buf), &len, &serviced), TETHER_SUCCESS);
        assert_true(serviced); /* 32 of 64 left: half */
        i++;
        for (; i < 64; i++) {
                assert_int_equal(dq_dequeue(&q->c, buf, sizeof(buf), &len, &serviced), TETHER_SUCCESS);
                assert_false(serviced); /* told once */
        }
        /* Nobody refused: nothing to say, even when it empties. */
        assert_int_equal(put(q, 0, 8, NULL), TETHER_SUCCESS);
        assert_int_equal(dq_dequeue(&q->c, buf, sizeof(buf), &len, &serviced), TETHER_SUCCESS);
        assert_false(serviced);
        /* Refused, then the consumer finds the queue empty: told then. */
        atomic_store(&hdr(q)->producer_waiting, 1);
        assert_int_equal(dq_dequeue(&q->c, buf, sizeof(buf), &len, &serviced), TETHER_ERR_UNDERRUN);
        assert_true(serviced);
        ring_free(q);
}

static void a_short_buffer_takes_nothing_and_null_drops(void **state)
{
        ring *q = ring_new(4096);
        assert_int_equal(put(q, 1, 100, NULL), TETHER_SUCCESS);
        assert_int_equal(put(q, 2, 30, NULL), TETHER_SUCCESS);
        uint8_t buf[100];
        uint32_t len = 0;
        bool serviced;
        assert_int_equal(dq_dequeue(&q->c, buf, 99, &len, &serviced), TETHER_ERR_NO_SPACE);
        assert_int_equal(len, 100);
        assert_int_equal(dq_dequeue(&q->c, NULL, 0, &len, &serviced), TETHER_SUCCESS); /* dropped */
        assert_int_equal(len, 100);
        take(q, 2, 30);
        assert_empty(q);
        ring_free(q);
}

/* ---- a hostile consumer: head set to garbage ---- */

static void producer_refuses_an_impossible_head(void **state)
{
        struct {
                const char *what;
                int64_t delta; /* head = tail + delta */
        } cases[] = {
                { "ahead of the tail", 8 },
                { "more than the capacity behind", -(4096 + 8) },
                { "not on an item boundary", -4 },
                { "far away", 0x40000000 },
        };
        for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
                ring *q = ring_new(4096);
                ring_at(q, 1000 * 8);
                assert_int_equal(put(q, 0, 100, NULL), TETHER_SUCCESS);
                atomic_store(&hdr(q)->head, (uint32_t)(q->p.tail + cases[k].delta));
                print_message("head %s\n", cases[k].what);
                assert_int_equal(put(q, 1, 8, NULL), TETHER_ERR_IPC);
                /* Put right again: the queue stays broken. */
                atomic_store(&hdr(q)->head, q->p.tail);
                assert_int_equal(put(q, 2, 8, NULL), TETHER_ERR_IPC);
                ring_free(q);
        }
        /* Garbage in a full queue whose producer was refused: the same. */
        ring *q = ring_new(4096);
        while (put(q, 0, 200, NULL) == TETHER_SUCCESS)
                ;
        atomic_store(&hdr(q)->head, q->p.tail + 64);
        assert_int_equal(put(q, 0, 200, NULL), TETHER_ERR_IPC);
        ring_free(q);
}

/* ---- a hostile producer: tail and lengths set to garbage ---- */

typedef enum { T_AHEAD, T_UNALIGNED, L_HUGE, L_PAST_AVAIL, L_PAST_END, PAD_AT_0, PAD_PAD, PAD_ALONE } corruption;

static void corrupt(ring *q, corruption how)
{
        uint8_t *r = (uint8_t *)q->mem + DQ_HEADER_SIZE;
        uint32_t head = q->c.head, off = head & (q->capacity - 1);
        uint32_t *len = (uint32_t *)(r + off);
        switch (how) {
        case T_AHEAD:
                atomic_store(&hdr(q)->tail, head + q->capacity + 8);
                break;
        case T_UNALIGNED:
                atomic_store(&hdr(q)->tail, atomic_load(&hdr(q)->tail) + 3);
                break;
        case L_HUGE: /* 8 + its padded size overflows 32 bits */
                *len = 0xFFFFFFF0u;
                break;
        case L_PAST_AVAIL:
                *len = atomic_load(&hdr(q)->tail) - head; /* + the header is more than there is */
                break;
        case L_PAST_END: /* within what is published, but running off the ring */
                *len = q->capacity - off;
                atomic_store(&hdr(q)->tail, head + q->capacity);
                break;
        case PAD_AT_0:
                ring_at(q, 4096 * 3);
                *(uint32_t *)r = DQ_PAD;
                atomic_store(&hdr(q)->tail, 4096 * 3 + 64);
                break;
        case PAD_PAD:
                *len = DQ_PAD;
                *(uint32_t *)r = DQ_PAD;
                atomic_store(&hdr(q)->tail, head + (q->capacity - off) + 64);
                break;
        case PAD_ALONE:
                *len = DQ_PAD;
                atomic_store(&hdr(q)->tail, head + (q->capacity - off));
                break;
        }
}

static void consumer_refuses_an_impossible_tail_or_length(void **state)
{
        const char *names[] = { "tail ahead by more than the capacity", "tail off an item boundary",
                                "length overflowing", "length past what is published",
                                "length past the end of the ring", "pad at offset 0",
                                "pad followed by a pad", "pad with no item after it" };
        for (int how = T_AHEAD; how <= PAD_ALONE; how++) {
                print_message("%s\n", names[how]);
                ring *q = ring_new(4096);
                ring_at(q, 4096 - 128); /* near the end, so a pad is possible */
                assert_int_equal(put(q, 0, 40, NULL), TETHER_SUCCESS);
                assert_int_equal(put(q, 1, 40, NULL), TETHER_SUCCESS);
                corrupt(q, (corruption)how);
                uint8_t buf[4096];
                uint32_t len = 0;
                bool serviced;
                const void *p;
                assert_int_equal(dq_peek(&q->c, &p, &len), TETHER_ERR_IPC);
                assert_true(dq_available(&q->c)); /* so a waiter calls and learns it */
                /* Put right again: still broken. */
                memset((uint8_t *)q->mem + DQ_HEADER_SIZE, 0, 4096);
                atomic_store(&hdr(q)->tail, q->c.head);
                assert_int_equal(dq_dequeue(&q->c, buf, sizeof(buf), &len, &serviced), TETHER_ERR_IPC);
                ring_free(q);
        }
}

/* ---- garbage everywhere, at random: every call returns, in bounds ---- */

static uint64_t rnd(uint64_t *s)
{
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        return *s * 0x2545F4914F6CDD1Dull;
}

static void random_scribbles_never_escape_the_ring(void **state)
{
        uint64_t s = 0x9e3779b97f4a7c15ull;
        int broken_p = 0, broken_c = 0;
        for (int round = 0; round < 400; round++) {
                ring *q = ring_new(4096);
                ring_at(q, (uint32_t)rnd(&s) & ~7u);
                uint8_t *mem = q->mem;
                for (int op = 0; op < 200; op++) {
                        uint64_t x = rnd(&s);
                        switch (x % 8) {
                        case 0: /* a byte of the ring, or of a counter */
                                mem[DQ_HEADER_SIZE + (x >> 8) % 4096] = (uint8_t)(x >> 40);
                                break;
                        case 1:
                                atomic_store(&hdr(q)->head, (x >> 16) % 3 ? q->c.head + (uint32_t)((x >> 20) % 64) * 4
                                                                           : (uint32_t)(x >> 32));
                                break;
                        case 2:
                                atomic_store(&hdr(q)->tail, (x >> 16) % 3 ? q->p.tail + (uint32_t)((x >> 20) % 64) * 4
                                                                           : (uint32_t)(x >> 32));
                                break;
                        case 3: { /* an item length, where the consumer looks */
                                uint32_t v = (x >> 16) % 2 ? DQ_PAD : (uint32_t)(x >> 32) % 8192;
                                memcpy(mem + DQ_HEADER_SIZE + (q->c.head & 4095), &v, 4);
                                break;
                        }
                        default: {
                                tether_ret_t r = put(q, (uint64_t)op, (uint32_t)(x >> 16) % 300, NULL);
                                assert_true(r == TETHER_SUCCESS || r == TETHER_ERR_NO_SPACE || r == TETHER_ERR_IPC);
                                uint8_t buf[4096];
                                uint32_t len = 0;
                                bool serviced;
                                r = dq_dequeue(&q->c, buf, sizeof(buf), &len, &serviced);
                                assert_true(r == TETHER_SUCCESS || r == TETHER_ERR_UNDERRUN || r == TETHER_ERR_IPC ||
                                            r == TETHER_ERR_NO_SPACE);
                                if (r == TETHER_SUCCESS)
                                        assert_true(len <= 4096 - DQ_ITEM_HEADER);
                                const void *p;
                                r = dq_peek(&q->c, &p, &len);
                                if (r == TETHER_SUCCESS)
                                        assert_true((const uint8_t *)p >= mem + DQ_HEADER_SIZE &&
                                                    (const uint8_t *)p + len <= mem + DQ_HEADER_SIZE + 4096);
                        }
                        }
                }
                broken_p += q->p.broken;
                broken_c += q->c.broken;
                ring_free(q);
        }
        /* The scribbles did reach both sides' checks. */
        assert_true(broken_p > 50);
        assert_true(broken_c > 50);
}

/* ---- two threads: the memory ordering ---- */

#define THREAD_ITEMS 1000000u

static void *producer_thread(void *arg)
{
        ring *q = arg;
        uint8_t buf[64];
        for (uint64_t i = 0; i < THREAD_ITEMS;) {
                uint32_t len = 8 + (uint32_t)(i % 7) * 8;
                fill(buf, i, len);
                bool n;
                tether_ret_t r = dq_enqueue(&q->p, buf, len, &n);
                if (r == TETHER_ERR_NO_SPACE) {
                        sched_yield();
                        continue;
                }
                if (r != TETHER_SUCCESS)
                        return (void *)1;
                i++;
        }
        return NULL;
}

static void one_producer_and_one_consumer_on_two_threads(void **state)
{
        ring *q = ring_new(4096);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, producer_thread, q), 0);
        uint8_t buf[64];
        unsigned serviced_count = 0;
        for (uint64_t i = 0; i < THREAD_ITEMS;) {
                uint32_t len = 0;
                bool serviced = false;
                tether_ret_t r = dq_dequeue(&q->c, buf, sizeof(buf), &len, &serviced);
                serviced_count += serviced;
                if (r == TETHER_ERR_UNDERRUN) {
                        sched_yield();
                        continue;
                }
                assert_int_equal(r, TETHER_SUCCESS);
                assert_int_equal(len, 8 + (i % 7) * 8);
                check(buf, i, len);
                i++;
        }
        void *ret;
        pthread_join(t, &ret);
        assert_null(ret);
        assert_empty(q);
        print_message("%u serviced messages for %u items\n", serviced_count, THREAD_ITEMS);
        ring_free(q);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(capacity_is_a_power_of_two_in_range),
                cmocka_unit_test(consumer_refuses_an_impossible_geometry),
                cmocka_unit_test(empty_queue_underruns),
                cmocka_unit_test(data_available_only_when_the_queue_was_empty),
                cmocka_unit_test(items_keep_their_order_across_wraps),
                cmocka_unit_test(a_full_queue_refuses_and_overwrites_nothing),
                cmocka_unit_test(items_that_fill_it_exactly_fit),
                cmocka_unit_test(the_largest_item_fits_wherever_the_queue_is_empty),
                cmocka_unit_test(serviced_once_drained_to_half),
                cmocka_unit_test(a_short_buffer_takes_nothing_and_null_drops),
                cmocka_unit_test(producer_refuses_an_impossible_head),
                cmocka_unit_test(consumer_refuses_an_impossible_tail_or_length),
                cmocka_unit_test(random_scribbles_never_escape_the_ring),
                cmocka_unit_test(one_producer_and_one_consumer_on_two_threads),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
