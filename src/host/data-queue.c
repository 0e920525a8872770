/* SPDX-License-Identifier: MIT */
/*
 * Data queues, the driver's side: a ring (core/dataqueue.c) in a memfd the
 * client maps, the data-available message to the client's port, and the
 * serviced handler when the client has drained a queue that refused an
 * item. Everything here runs in the service's gate, as the user client
 * that owns the queue does, except the session bound, which a session's
 * connections on other loops share.
 */
#include "host/data-queue.h"

#include <pthread.h>
#include <stdlib.h>

#include "core/dataqueue.h"
#include "core/log.h"
#include "core/memory.h"
#include "wire/scratch.h"

_Static_assert(TETHER_DATA_QUEUE_MIN_CAPACITY == DQ_MIN_CAPACITY, "driver.h and the ring agree");
_Static_assert(TETHER_DATA_QUEUE_MAX_CAPACITY == DQ_MAX_CAPACITY, "driver.h and the ring agree");
_Static_assert(TETHER_DATA_QUEUE_MAX_ITEM(4096u) == DQ_MAX_ITEM(4096u), "driver.h and the ring agree");

struct tether_data_queue {
        tether_user_client *uc;
        uint32_t type;
        uint32_t capacity;
        env_caller *caller;        /* referenced: charged for its capacity and its memfd */
        tether_memory *mem;
        dq_producer ring;
        uint64_t port_id;          /* where data-available goes; 0: nowhere yet */
        uint64_t cookie;           /* the client's name for the queue, echoed */
        tether_data_queue_serviced serviced;
        void *ctx;
        bool available_due;        /* a data-available message held back (coalesced) */
        bool refused;              /* an item was refused and none fitted since */
        bool warned;
        tether_data_queue *next;   /* in its user client's list */
};

/* ---- the session bound: its connections may be on several loops ---- */

typedef struct session_charge {
        uint64_t session;
        size_t bytes;
        unsigned queues;
        struct session_charge *next;
} session_charge;

static session_charge *charges;
static pthread_mutex_t charge_lock = PTHREAD_MUTEX_INITIALIZER;

static tether_ret_t charge(uint64_t session, size_t bytes)
{
        tether_ret_t r = TETHER_SUCCESS;
        pthread_mutex_lock(&charge_lock);
        session_charge *c = charges;
        while (c && c->session != session)
                c = c->next;
        if (!c && (c = calloc(1, sizeof(*c)))) {
                c->session = session;
                c->next = charges;
                charges = c;
        }
        if (!c) {
                r = TETHER_ERR_NO_MEMORY;
        } else if (c->bytes + bytes > TETHER_DATA_QUEUE_BYTES_PER_SESSION ||
                   c->queues >= TETHER_DATA_QUEUES_PER_SESSION) {
                r = TETHER_ERR_NO_RESOURCES;
                if (!c->queues) {
                        charges = c->next; /* just made, and refused: not kept */
                        free(c);
                }
        } else {
                c->bytes += bytes;
                c->queues++;
        }
        pthread_mutex_unlock(&charge_lock);
        return r;
}

static void uncharge(uint64_t session, size_t bytes)
{
        pthread_mutex_lock(&charge_lock);
        for (session_charge **pp = &charges; *pp; pp = &(*pp)->next) {
                session_charge *c = *pp;
                if (c->session != session)
                        continue;
                c->bytes -= bytes;
                c->queues--;
                /* Gone with its last queue: a session that opens and closes
                 * connections all day leaves nothing behind. */
                if (!c->queues) {
                        *pp = c->next;
                        free(c);
                }
                break;
        }
        pthread_mutex_unlock(&charge_lock);
}

/* ---- the driver API ---- */

static tether_data_queue *find(tether_user_client *uc, uint32_t type)
{
        for (tether_data_queue *q = *user_client_queues(uc); q; q = q->next)
                if (q->type == type)
                        return q;
        return NULL;
}

tether_ret_t tether_data_queue_create(tether_user_client *uc, uint32_t type, size_t capacity,
                                      tether_data_queue_serviced serviced, void *ctx, tether_data_queue **ret)
{
        uint32_t cap = 0;
        if (!uc || !ret || dq_capacity_for(capacity, &cap) != TETHER_SUCCESS || find(uc, type))
                return TETHER_ERR_BAD_ARGUMENT;
        if (user_client_detached(uc))
                return TETHER_ERR_NOT_ATTACHED;
        unsigned n = 0;
        size_t held = 0;
        for (tether_data_queue *q = *user_client_queues(uc); q; q = q->next, n++)
                held += q->capacity;
        if (n >= TETHER_DATA_QUEUES_PER_CONNECTION || held + cap > TETHER_DATA_QUEUE_BYTES_PER_CONNECTION)
                return TETHER_ERR_NO_RESOURCES;
        tether_data_queue *q = calloc(1, sizeof(*q));
        if (!q)
                return TETHER_ERR_NO_MEMORY;
        q->caller = user_client_caller(uc);
        uint64_t session = env_caller_id(q->caller);
        tether_ret_t r = charge(session, cap);
        bool bytes_charged = r == TETHER_SUCCESS, fd_charged = false;
        /* The memfd stays open, to be passed whenever the client maps it:
         * in tetherd that is an fd of the caller's uid's share. */
        if (r == TETHER_SUCCESS)
                fd_charged = (r = env_caller_charge_fds(q->caller, 1)) == TETHER_SUCCESS;
        if (r == TETHER_SUCCESS)
                r = tether_memory_create(dq_memory_size(cap), "tether-data-queue", &q->mem);
        if (r != TETHER_SUCCESS) {
                if (fd_charged)
                        env_caller_charge_fds(q->caller, -1);
                if (bytes_charged)
                        uncharge(session, cap);
                free(q);
                return r;
        }
        env_caller_ref(q->caller);
        q->uc = uc;
        q->type = type;
        q->capacity = cap;
        q->serviced = serviced;
        q->ctx = ctx;
        dq_producer_init(&q->ring, tether_memory_ptr(q->mem), cap);
        q->next = *user_client_queues(uc);
        *user_client_queues(uc) = q;
        *ret = q;
        return TETHER_SUCCESS;
}

static void queue_free(tether_data_queue *q)
{
        tether_memory_unref(q->mem);
        env_caller_charge_fds(q->caller, -1);
        uncharge(env_caller_id(q->caller), q->capacity);
        env_caller_unref(q->caller);
        free(q);
}

void tether_data_queue_destroy(tether_data_queue *q)
{
        if (!q)
                return;
        for (tether_data_queue **pp = user_client_queues(q->uc); *pp; pp = &(*pp)->next) {
                if (*pp == q) {
                        *pp = q->next;
                        break;
                }
        }
        queue_free(q);
}

void data_queue_free_all(tether_data_queue **list)
{
        while (*list) {
                tether_data_queue *q = *list;
                *list = q->next;
                queue_free(q);
        }
}

size_t tether_data_queue_capacity(tether_data_queue *q)
{
        return q ? q->capacity : 0;
}

/* Data-available, to the port the client named when it mapped the queue.
 * Never blocks: a port its client does not drain loses it, and then the
 * client has other messages waiting, which wake it all the same. */
static void send_available(tether_data_queue *q)
{
        wire_msg *m = q->port_id ? wire_scratch(WIRE_SCRATCH_DATA_QUEUE) : NULL;
        if (!m)
                return; /* no port yet, or no memory: the client's next wait finds the items */
        wire_msg_init(m, WIRE_NOTIFY_DATA_QUEUE, 0, TETHER_SUCCESS);
        wire_put_u64(m, q->cookie);
        wire_put_u32(m, q->type);
        wire_put_u32(m, 0);
        wire_msg_finish(m);
        if (env_port_send(q->port_id, m) == TETHER_ERR_NOT_ATTACHED)
                q->port_id = 0; /* the client destroyed its port */
}

static tether_ret_t enqueue(tether_data_queue *q, const void *data, size_t len, bool hold)
{
        if (!q || len > UINT32_MAX)
                return TETHER_ERR_BAD_ARGUMENT;
        if (user_client_detached(q->uc))
                return TETHER_ERR_NOT_ATTACHED;
        bool notify = false;
        tether_ret_t r = dq_enqueue(&q->ring, data, (uint32_t)len, &notify);
        if (r == TETHER_SUCCESS) {
                q->refused = false;
                q->available_due |= notify;
                if (!hold)
                        tether_data_queue_send_data_available(q);
        } else if (r == TETHER_ERR_NO_SPACE) {
                q->refused = true;
        } else if (r == TETHER_ERR_IPC && !q->warned) {
                q->warned = true;
                env_caller *c = user_client_caller(q->uc);
                env_warn(c, "client pid %d: data queue %u of connection %llu: the client set its head to an "
                            "impossible value; the queue is broken",
                         (int)tether_user_client_task(q->uc)->pid, q->type,
                         (unsigned long long)tether_user_client_id(q->uc));
        }
        return r;
}

tether_ret_t tether_data_queue_enqueue(tether_data_queue *q, const void *data, size_t len)
{
        return enqueue(q, data, len, false);
}

tether_ret_t tether_data_queue_enqueue_coalesced(tether_data_queue *q, const void *data, size_t len)
{
        return enqueue(q, data, len, true);
}

void tether_data_queue_send_data_available(tether_data_queue *q)
{
        if (q && q->available_due) {
                q->available_due = false;
                send_available(q);
        }
}

/* ---- the client's messages ---- */

bool data_queue_map_request(tether_user_client *uc, uint32_t serial, wire_reader *rd)
{
        uint32_t type = wire_get_u32(rd);
        uint32_t zero = wire_get_u32(rd);
        uint64_t port = wire_get_u64(rd);
        uint64_t cookie = wire_get_u64(rd);
        tether_ret_t r = wire_reader_done(rd);
        tether_data_queue *q = NULL;
        if (r == TETHER_SUCCESS && zero)
                r = TETHER_ERR_BAD_ARGUMENT;
        if (r == TETHER_SUCCESS && user_client_detached(uc))
                r = TETHER_ERR_NOT_ATTACHED;
        if (r == TETHER_SUCCESS && !(q = find(uc, type)))
                r = TETHER_ERR_NOT_FOUND;
        /* As for an async call: only a port of the caller's own session. */
        if (r == TETHER_SUCCESS && port && !env_caller_port_owned(user_client_caller(uc), port))
                r = TETHER_ERR_BAD_ARGUMENT;
        wire_msg *m = wire_scratch(WIRE_SCRATCH_QUEUE_MAP);
        if (!m)
                return user_client_reply_status(uc, WIRE_DATA_QUEUE_MAP, serial, TETHER_ERR_NO_MEMORY);
        wire_msg_init(m, WIRE_DATA_QUEUE_MAP | WIRE_REPLY_FLAG, serial, r);
        if (r != TETHER_SUCCESS) {
                wire_msg_finish(m);
                return user_client_send(uc, m, -1);
        }
        /* Mapped again (the same client after an unmap, or with another
         * port): the last port named is the one told. */
        q->port_id = port;
        q->cookie = cookie;
        wire_put_u64(m, tether_memory_size(q->mem));
        wire_put_u32(m, q->capacity);
        wire_put_u32(m, 0);
        wire_msg_finish(m);
        /* Read-write: the client publishes its head in it. */
        if (!user_client_send(uc, m, memory_fd(q->mem)))
                return false;
        /* Items that came before the port did: tell it now, as DriverKit
         * does when a data-available handler is installed. Only a
         * comparison of the client's head, so garbage there costs nothing. */
        if (port && atomic_load_explicit(&((dq_shared *)tether_memory_ptr(q->mem))->head, memory_order_acquire) !=
                            q->ring.tail)
                send_available(q);
        return true;
}

void data_queue_serviced_request(tether_user_client *uc, wire_reader *rd)
{
        uint32_t type = wire_get_u32(rd);
        uint32_t zero = wire_get_u32(rd);
        if (wire_reader_done(rd) != TETHER_SUCCESS || zero || user_client_detached(uc))
                return;
        tether_data_queue *q = find(uc, type);
        /* Only for a refusal not yet answered: a client sending this over
         * and over costs a lookup, never a driver callback. */
        if (!q || !q->refused || !q->serviced)
                return;
        q->refused = false;
        q->serviced(q, q->ctx); /* may enqueue, or destroy q */
}
