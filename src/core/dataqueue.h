/* SPDX-License-Identifier: MIT */
#ifndef TETHER_CORE_DATAQUEUE_H
#define TETHER_CORE_DATAQUEUE_H

/*
 * The data queue's ring: one producer (the driver) and one consumer (the
 * client), in memory both map, with no lock and no system call per item.
 * Both sides link this file; neither trusts the other's half of the shared
 * header (docs/dataqueue.md has the layout and the rules).
 *
 *   - head and tail are byte counters that run freely and wrap at 2^32;
 *     an offset is a counter masked by the capacity, a power of two, so
 *     tail - head is the bytes in use and the whole capacity is usable.
 *   - Each side keeps its own counter privately and only publishes it:
 *     the producer never reads tail back from the shared header, the
 *     consumer never reads head back. What either reads of the other's
 *     half is checked before it is used: a counter the other side set to
 *     garbage makes the queue broken (TETHER_ERR_IPC, for good), never an
 *     access outside the ring or a loop.
 *   - An item is an 8-byte header (u32 length, u32 0) and its bytes,
 *     padded to 8. An item never wraps: one that does not fit before the
 *     end is placed at offset 0 behind a pad marker (length DQ_PAD) that
 *     fills the rest. So an item may take at most half the capacity: then
 *     an empty queue takes it wherever its counters stand.
 *   - Every call does bounded work: one item, at most one pad skipped.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <tether/return.h>

#define DQ_MIN_CAPACITY  4096u
#define DQ_MAX_CAPACITY  (16u << 20)
/* The shared header has a page of its own; the ring follows it. */
#define DQ_HEADER_SIZE   4096u
#define DQ_ITEM_HEADER   8u
#define DQ_PAD           0xFFFFFFFFu
#define DQ_MAGIC         0x31514454u /* "TDQ1" */

/* The largest item a queue of this capacity takes. */
#define DQ_MAX_ITEM(capacity) ((capacity) / 2u - DQ_ITEM_HEADER)

/*
 * The shared header. Each counter has a cache line of its own, so the
 * producer's stores to tail do not slow the consumer's reads of its own
 * line and the other way round.
 */
typedef struct dq_shared {
        uint32_t magic;                  /* for debuggers; neither side reads it back */
        uint32_t capacity;
        uint8_t reserved0[56];
        _Atomic uint32_t tail;           /* the producer's */
        uint8_t reserved1[60];
        _Atomic uint32_t head;           /* the consumer's */
        /* Set by the producer when it was refused for want of space,
         * cleared by the consumer that then tells it (DataServiced). */
        _Atomic uint32_t producer_waiting;
        uint8_t reserved2[56];
} dq_shared;

_Static_assert(sizeof(dq_shared) <= DQ_HEADER_SIZE, "the header fits its page");

typedef struct dq_producer {
        dq_shared *hdr;
        uint8_t *ring;
        uint32_t capacity;
        uint32_t tail;                   /* private: never read back */
        bool broken;
} dq_producer;

typedef struct dq_consumer {
        dq_shared *hdr;
        uint8_t *ring;
        uint32_t capacity;
        uint32_t head;                   /* private: never read back */
        bool broken;
} dq_consumer;

/* The capacity a queue asked for `want` bytes gets: rounded up to a power
 * of two, at least DQ_MIN_CAPACITY; TETHER_ERR_BAD_ARGUMENT past
 * DQ_MAX_CAPACITY or for 0. */
tether_ret_t dq_capacity_for(size_t want, uint32_t *ret_capacity);
/* Bytes of memory a queue of this capacity needs: its header and ring. */
size_t dq_memory_size(uint32_t capacity);

/* mem: dq_memory_size(capacity) bytes, zeroed, the producer's to set up. */
void dq_producer_init(dq_producer *p, void *mem, uint32_t capacity);
/*
 * Append one item of len bytes (len <= DQ_MAX_ITEM). Never overwrites:
 *   TETHER_ERR_NO_SPACE   it does not fit now; producer_waiting is set, so
 *                         the consumer says when it has drained (serviced)
 *   TETHER_ERR_IPC        the consumer's head is impossible; broken for good
 *   TETHER_ERR_BAD_ARGUMENT len too large, or data NULL with len > 0
 * *ret_notify: the queue was empty, or the consumer emptied it meanwhile,
 * so the consumer may be asleep and must be told (data available). Not set
 * for an item that found items before it: one wake-up covers them all.
 */
tether_ret_t dq_enqueue(dq_producer *p, const void *data, uint32_t len, bool *ret_notify);

/* mem: the consumer's mapping of map_size bytes, of a queue the producer
 * says has this capacity. TETHER_ERR_IPC if that cannot be (not a power of
 * two in range, or more than the mapping holds). Starts from the head the
 * header holds now. */
tether_ret_t dq_consumer_init(dq_consumer *c, void *mem, size_t map_size, uint32_t capacity);
/* The next item, in place: valid until it is dequeued. TETHER_ERR_UNDERRUN
 * when empty, TETHER_ERR_IPC when the producer's tail or an item's length
 * is impossible (broken for good). */
tether_ret_t dq_peek(dq_consumer *c, const void **ret_data, uint32_t *ret_len);
/*
 * Take the next item: copied into buf (cap bytes), or dropped if buf is
 * NULL. *ret_len is its length; TETHER_ERR_NO_SPACE (nothing taken) if it
 * is longer than cap. TETHER_ERR_UNDERRUN, TETHER_ERR_IPC as dq_peek.
 * *ret_serviced: the producer was refused and the queue is now at most
 * half full: tell it (once; the flag is cleared).
 */
tether_ret_t dq_dequeue(dq_consumer *c, void *buf, size_t cap, uint32_t *ret_len, bool *ret_serviced);
/* The serviced message could not be sent: raise the flag again, so the
 * next dequeue tries once more rather than leave the producer waiting. */
void dq_serviced_unsent(dq_consumer *c);
/* Whether an item waits (or the queue is broken: the next call says so). */
bool dq_available(dq_consumer *c);

#endif
