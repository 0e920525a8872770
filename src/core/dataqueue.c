/* SPDX-License-Identifier: MIT */
#include "core/dataqueue.h"

#include <string.h>

/* An item's length field, read once: the other side may rewrite it while
 * we look, and a second read could see another value than the one checked. */
static uint32_t load_len(const uint8_t *at)
{
        return __atomic_load_n((const uint32_t *)at, __ATOMIC_RELAXED);
}

static void store_header(uint8_t *at, uint32_t len)
{
        uint32_t h[2] = { len, 0 };
        memcpy(at, h, sizeof(h));
}

static uint64_t item_size(uint32_t len)
{
        return DQ_ITEM_HEADER + (((uint64_t)len + 7u) & ~(uint64_t)7u);
}

tether_ret_t dq_capacity_for(size_t want, uint32_t *ret_capacity)
{
        if (!ret_capacity || want == 0 || want > DQ_MAX_CAPACITY)
                return TETHER_ERR_BAD_ARGUMENT;
        uint32_t c = DQ_MIN_CAPACITY;
        while (c < want)
                c <<= 1;
        *ret_capacity = c;
        return TETHER_SUCCESS;
}

size_t dq_memory_size(uint32_t capacity)
{
        return (size_t)DQ_HEADER_SIZE + capacity;
}

void dq_producer_init(dq_producer *p, void *mem, uint32_t capacity)
{
        *p = (dq_producer){ .hdr = mem, .ring = (uint8_t *)mem + DQ_HEADER_SIZE, .capacity = capacity };
        p->hdr->magic = DQ_MAGIC;
        p->hdr->capacity = capacity;
        atomic_store_explicit(&p->hdr->head, 0, memory_order_relaxed);
        atomic_store_explicit(&p->hdr->producer_waiting, 0, memory_order_relaxed);
        atomic_store_explicit(&p->hdr->tail, 0, memory_order_release);
}

/* Bytes in use if head is one the consumer could have published: at most
 * the capacity behind our tail, on an item boundary. */
static bool used_from(const dq_producer *p, uint32_t head, uint32_t *ret_used)
{
        uint32_t used = p->tail - head;
        if (used > p->capacity || (used & 7u))
                return false;
        *ret_used = used;
        return true;
}

tether_ret_t dq_enqueue(dq_producer *p, const void *data, uint32_t len, bool *ret_notify)
{
        *ret_notify = false;
        if (p->broken)
                return TETHER_ERR_IPC;
        if (len > DQ_MAX_ITEM(p->capacity) || (len && !data))
                return TETHER_ERR_BAD_ARGUMENT;
        uint32_t need = (uint32_t)item_size(len);
        uint32_t off = p->tail & (p->capacity - 1);
        uint32_t pad = p->capacity - off < need ? p->capacity - off : 0;
        uint32_t head = atomic_load_explicit(&p->hdr->head, memory_order_acquire);
        uint32_t used;
        if (!used_from(p, head, &used)) {
                p->broken = true;
                return TETHER_ERR_IPC;
        }
        if (used + pad + need > p->capacity) {
                /* Ask to be told, then look once more: a consumer that
                 * drained between our first look and the flag did so
                 * before it could see the flag. The fences pair with the
                 * one in dq_dequeue so that one of us sees the other. */
                atomic_store_explicit(&p->hdr->producer_waiting, 1, memory_order_relaxed);
                atomic_thread_fence(memory_order_seq_cst);
                head = atomic_load_explicit(&p->hdr->head, memory_order_acquire);
                if (!used_from(p, head, &used)) {
                        p->broken = true;
                        return TETHER_ERR_IPC;
                }
                if (used + pad + need > p->capacity)
                        return TETHER_ERR_NO_SPACE;
        }
        uint32_t old_tail = p->tail;
        if (pad) {
                store_header(p->ring + off, DQ_PAD);
                off = 0;
        }
        store_header(p->ring + off, len);
        if (len)
                memcpy(p->ring + off + DQ_ITEM_HEADER, data, len);
        p->tail += pad + need;
        atomic_store_explicit(&p->hdr->tail, p->tail, memory_order_release);
        if (head != old_tail) {
                /* Not empty when we looked: the consumer may have emptied it
                 * since and be going to sleep without having seen this item.
                 * Pairs with the consumer's fence after it stores head. */
                atomic_thread_fence(memory_order_seq_cst);
                head = atomic_load_explicit(&p->hdr->head, memory_order_relaxed);
        }
        *ret_notify = head == old_tail;
        return TETHER_SUCCESS;
}

tether_ret_t dq_consumer_init(dq_consumer *c, void *mem, size_t map_size, uint32_t capacity)
{
        *c = (dq_consumer){ .broken = true };
        if (!mem || capacity < DQ_MIN_CAPACITY || capacity > DQ_MAX_CAPACITY || (capacity & (capacity - 1)) ||
            map_size < dq_memory_size(capacity))
                return TETHER_ERR_IPC;
        *c = (dq_consumer){ .hdr = mem, .ring = (uint8_t *)mem + DQ_HEADER_SIZE, .capacity = capacity };
        c->head = atomic_load_explicit(&c->hdr->head, memory_order_relaxed);
        /* The one value of the producer's we take without a tail to check
         * it against: off an item boundary, an offset near the end would
         * put an item's header past the ring. */
        if (c->head & 7u) {
                c->broken = true;
                return TETHER_ERR_IPC;
        }
        return TETHER_SUCCESS;
}

/* Where the next item is: its offset, the bytes before it to skip (a pad),
 * its length and whole size. TETHER_ERR_UNDERRUN when there is none. */
typedef struct dq_next {
        uint32_t off, skip, len, size;
} dq_next;

static tether_ret_t locate(dq_consumer *c, dq_next *n)
{
        if (c->broken)
                return TETHER_ERR_IPC;
        uint32_t tail = atomic_load_explicit(&c->hdr->tail, memory_order_acquire);
        uint32_t avail = tail - c->head;
        if (avail == 0)
                return TETHER_ERR_UNDERRUN;
        if (avail > c->capacity || (avail & 7u))
                goto broken;
        n->off = c->head & (c->capacity - 1);
        n->skip = 0;
        n->len = load_len(c->ring + n->off);
        if (n->len == DQ_PAD) {
                /* A pad runs to the end and an item always follows it, at
                 * offset 0 (so a pad at 0, the whole ring, fails this too). */
                n->skip = c->capacity - n->off;
                if ((uint64_t)n->skip + DQ_ITEM_HEADER > avail)
                        goto broken;
                n->off = 0;
                n->len = load_len(c->ring);
                if (n->len == DQ_PAD)
                        goto broken;
        }
        uint64_t size = item_size(n->len);
        if (size > avail - n->skip || size > c->capacity - n->off)
                goto broken;
        n->size = (uint32_t)size;
        return TETHER_SUCCESS;
broken:
        c->broken = true;
        return TETHER_ERR_IPC;
}

tether_ret_t dq_peek(dq_consumer *c, const void **ret_data, uint32_t *ret_len)
{
        dq_next n;
        tether_ret_t r = locate(c, &n);
        if (r != TETHER_SUCCESS)
                return r;
        *ret_data = c->ring + n.off + DQ_ITEM_HEADER;
        *ret_len = n.len;
        return TETHER_SUCCESS;
}

/* After the consumer made room: was the producer refused, and is there
 * room enough now (half the queue) that waking it is worth a message? Not
 * sooner: a producer woken for every item taken would be refused again at
 * once, one message per item. */
static bool take_serviced(dq_consumer *c, uint32_t tail_seen)
{
        atomic_thread_fence(memory_order_seq_cst);
        if (!atomic_load_explicit(&c->hdr->producer_waiting, memory_order_relaxed))
                return false;
        if (tail_seen - c->head > c->capacity / 2)
                return false;
        return atomic_exchange_explicit(&c->hdr->producer_waiting, 0, memory_order_relaxed) != 0;
}

tether_ret_t dq_dequeue(dq_consumer *c, void *buf, size_t cap, uint32_t *ret_len, bool *ret_serviced)
{
        *ret_serviced = false;
        dq_next n;
        tether_ret_t r = locate(c, &n);
        if (r == TETHER_ERR_UNDERRUN) {
                /* Nothing left: a producer still flagged as waiting has all
                 * the room there is. */
                *ret_serviced = take_serviced(c, c->head);
                return r;
        }
        if (r != TETHER_SUCCESS)
                return r;
        *ret_len = n.len;
        if (buf && n.len > cap)
                return TETHER_ERR_NO_SPACE;
        if (buf && n.len)
                memcpy(buf, c->ring + n.off + DQ_ITEM_HEADER, n.len);
        c->head += n.skip + n.size;
        /* Release: our reads of the item are done before the producer may
         * reuse its bytes. */
        atomic_store_explicit(&c->hdr->head, c->head, memory_order_release);
        uint32_t tail = atomic_load_explicit(&c->hdr->tail, memory_order_relaxed);
        /* A tail that moved impossibly is caught by the next call; here it
         * only decides whether to send a message, so clamp it. */
        if (tail - c->head > c->capacity)
                tail = c->head;
        *ret_serviced = take_serviced(c, tail);
        return TETHER_SUCCESS;
}

void dq_serviced_unsent(dq_consumer *c)
{
        atomic_store_explicit(&c->hdr->producer_waiting, 1, memory_order_relaxed);
}

bool dq_available(dq_consumer *c)
{
        return c->broken || atomic_load_explicit(&c->hdr->tail, memory_order_acquire) != c->head;
}
