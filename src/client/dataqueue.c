/* SPDX-License-Identifier: MIT */
/*
 * Data queues, the client's side: the driver's queue mapped once, items
 * taken with no message (core/dataqueue.c does the ring and trusts nothing
 * the driver wrote), data-available messages routed from a port's dispatch
 * to the queue's callback, and the one message a consumer sends: serviced,
 * when a driver that was refused can go on.
 */
#include "client/dataqueue.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/dataqueue.h"

/* What a tether_mapped_queue * names. */
typedef struct client_queue {
        handle_obj obj;
        uintptr_t name;            /* queues_lock; 0 until the map is done */
        uintptr_t conn;            /* its connection's handle */
        tether_notification_port *port; /* the port's handle, or NULL */
        uint64_t port_id;
        uint64_t cookie;           /* how the driver's messages name it */
        uint32_t type;
        tether_data_queue_callback cb;
        void *refcon;
        bool closing;              /* queues_lock: its connection closed while it was being mapped */
        pthread_mutex_t lock;      /* one consumer at a time; all below */
        bool dead;
        int sock;
        void *map;
        size_t map_size;
        dq_consumer ring;
        struct client_queue *next; /* queues_lock */
} client_queue;

/* Every queue of the process, for the port's dispatch to find by cookie
 * and a connection's close to find by connection. */
static client_queue *queues;
static uint64_t next_cookie;
static pthread_mutex_t queues_lock = PTHREAD_MUTEX_INITIALIZER;

static void queue_free(handle_obj *o)
{
        client_queue *q = handle_container(o, client_queue, obj);
        pthread_mutex_destroy(&q->lock);
        free(q);
}

static void unlist(client_queue *q)
{
        pthread_mutex_lock(&queues_lock);
        for (client_queue **pp = &queues; *pp; pp = &(*pp)->next) {
                if (*pp == q) {
                        *pp = q->next;
                        break;
                }
        }
        pthread_mutex_unlock(&queues_lock);
}

/* Once, by whoever killed the name: after this no call touches the
 * mapping, since each takes q->lock and finds it dead. */
static void teardown(client_queue *q)
{
        unlist(q);
        pthread_mutex_lock(&q->lock);
        q->dead = true;
        if (q->map)
                munmap(q->map, q->map_size);
        q->map = NULL;
        if (q->sock >= 0)
                close(q->sock);
        q->sock = -1;
        pthread_mutex_unlock(&q->lock);
}

static tether_ret_t queue_kill(uintptr_t name)
{
        handle_obj *o = NULL;
        if (handle_remove((const void *)name, HANDLE_DATA_QUEUE, &o) != TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT;
        client_queue *q = handle_container(o, client_queue, obj);
        teardown(q);
        handle_obj_put(&q->obj); /* the list's */
        handle_obj_put(&q->obj); /* the table's */
        return TETHER_SUCCESS;
}

tether_ret_t tether_data_queue_map(tether_connect *c, uint32_t type, tether_notification_port *port,
                                   tether_data_queue_callback callback, void *refcon, tether_mapped_queue **ret)
{
        if (!ret || (callback && !port))
                return TETHER_ERR_BAD_ARGUMENT;
        uint64_t port_id = 0;
        if (port) {
                client_port *p = NULL;
                if (port_get(port, &p) != TETHER_SUCCESS)
                        return TETHER_ERR_BAD_ARGUMENT;
                port_id = port_id_of(p);
                port_put(p);
        }
        client_queue *q = calloc(1, sizeof(*q));
        if (!q)
                return TETHER_ERR_NO_MEMORY;
        handle_obj_init(&q->obj, queue_free);
        pthread_mutex_init(&q->lock, NULL);
        q->conn = (uintptr_t)c;
        q->port = port;
        q->port_id = port_id;
        q->type = type;
        q->cb = callback;
        q->refcon = refcon;
        q->sock = -1;

        /* Listed before it is mapped, so that a second map of the same
         * queue is refused even while this one is in flight: two consumers
         * would take each other's items. */
        tether_ret_t r = TETHER_SUCCESS;
        pthread_mutex_lock(&queues_lock);
        for (client_queue *o = queues; o; o = o->next)
                if (o->conn == q->conn && o->type == type)
                        r = TETHER_ERR_EXCLUSIVE_ACCESS;
        if (r == TETHER_SUCCESS) {
                q->cookie = ++next_cookie;
                q->next = queues;
                queues = q; /* the list holds the creator's reference from here */
        }
        pthread_mutex_unlock(&queues_lock);
        if (r != TETHER_SUCCESS) {
                handle_obj_put(&q->obj);
                return r;
        }

        int memfd = -1;
        uint64_t size = 0;
        uint32_t capacity = 0;
        r = connect_map_data_queue(c, type, port_id, q->cookie, &memfd, &size, &capacity, &q->sock);
        if (r == TETHER_SUCCESS) {
                q->map = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
                close(memfd); /* the mapping keeps the memory */
                if (q->map == MAP_FAILED) {
                        q->map = NULL;
                        r = TETHER_ERR_VM;
                }
                q->map_size = (size_t)size;
        }
        /* The capacity comes from the reply, not from the header the driver
         * can rewrite: checked against what was really mapped. */
        if (r == TETHER_SUCCESS)
                r = dq_consumer_init(&q->ring, q->map, q->map_size, capacity);
        uintptr_t name = 0;
        if (r == TETHER_SUCCESS)
                r = handle_add(&q->obj, HANDLE_DATA_QUEUE, &name);
        if (r == TETHER_SUCCESS) {
                pthread_mutex_lock(&queues_lock);
                q->name = name;
                bool closing = q->closing;
                pthread_mutex_unlock(&queues_lock);
                if (closing) {
                        /* Its connection closed meanwhile, and did not know
                         * the name to kill. */
                        queue_kill(name);
                        return TETHER_ERR_BAD_ARGUMENT;
                }
                *ret = (tether_mapped_queue *)name;
                return TETHER_SUCCESS;
        }
        teardown(q);
        handle_obj_put(&q->obj);
        return r;
}

/* The queue behind a handle, locked, live and referenced. */
static tether_ret_t queue_acquire(tether_mapped_queue *h, client_queue **ret)
{
        handle_obj *o = NULL;
        if (handle_get(h, HANDLE_DATA_QUEUE, &o) != TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT;
        client_queue *q = handle_container(o, client_queue, obj);
        pthread_mutex_lock(&q->lock);
        if (q->dead) {
                pthread_mutex_unlock(&q->lock);
                handle_obj_put(&q->obj);
                return TETHER_ERR_BAD_ARGUMENT;
        }
        *ret = q;
        return TETHER_SUCCESS;
}

static void queue_release(client_queue *q)
{
        pthread_mutex_unlock(&q->lock);
        handle_obj_put(&q->obj);
}

/* Serviced: a bare header and the queue's type. Never waits: a call in
 * flight on the connection holds its lock, and a full socket means the
 * driver has messages to read anyway; unsent, the flag goes back up and
 * the next dequeue tries again. */
static void send_serviced(client_queue *q)
{
        uint8_t m[WIRE_HEADER_SIZE + 8] = { 0 };
        wire_header h = { .type = WIRE_DATA_QUEUE_SERVICED, .version = WIRE_VERSION, .size = sizeof(m) };
        memcpy(m, &h, sizeof(h));
        memcpy(m + WIRE_HEADER_SIZE, &q->type, sizeof(q->type));
        if (send(q->sock, m, sizeof(m), MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(m))
                dq_serviced_unsent(&q->ring);
}

tether_ret_t tether_data_queue_dequeue(tether_mapped_queue *h, void *buf, size_t cap, size_t *ret_len)
{
        if (cap && !buf)
                return TETHER_ERR_BAD_ARGUMENT;
        client_queue *q = NULL;
        tether_ret_t r = queue_acquire(h, &q);
        if (r != TETHER_SUCCESS)
                return r;
        uint32_t len = 0;
        bool serviced = false;
        r = dq_dequeue(&q->ring, buf, cap, &len, &serviced);
        if (serviced)
                send_serviced(q);
        queue_release(q);
        if (ret_len && (r == TETHER_SUCCESS || r == TETHER_ERR_NO_SPACE))
                *ret_len = len;
        return r;
}

tether_ret_t tether_data_queue_peek(tether_mapped_queue *h, const void **ret_data, size_t *ret_len)
{
        if (!ret_data || !ret_len)
                return TETHER_ERR_BAD_ARGUMENT;
        client_queue *q = NULL;
        tether_ret_t r = queue_acquire(h, &q);
        if (r != TETHER_SUCCESS)
                return r;
        uint32_t len = 0;
        r = dq_peek(&q->ring, ret_data, &len);
        queue_release(q);
        if (r == TETHER_SUCCESS)
                *ret_len = len;
        return r;
}

tether_ret_t tether_data_queue_wait(tether_mapped_queue *h, int timeout_ms)
{
        int64_t deadline = timeout_ms >= 0 ? (int64_t)clock_mono_ms() + timeout_ms : -1;
        for (;;) {
                client_queue *q = NULL;
                tether_ret_t r = queue_acquire(h, &q);
                if (r != TETHER_SUCCESS)
                        return r;
                bool ready = dq_available(&q->ring);
                tether_notification_port *port = q->port;
                queue_release(q);
                if (ready)
                        return TETHER_SUCCESS;
                int fd = port ? tether_notification_port_get_fd(port) : -1;
                if (fd < 0)
                        return TETHER_ERR_BAD_ARGUMENT; /* no port, or it was destroyed */
                int left = -1;
                if (deadline >= 0) {
                        int64_t l = deadline - (int64_t)clock_mono_ms();
                        if (l <= 0)
                                return TETHER_ERR_TIMEOUT;
                        left = l > 60000 ? 60000 : (int)l;
                }
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int n = poll(&p, 1, left);
                if (n < 0 && errno != EINTR)
                        return TETHER_ERR_IPC;
                if (n > 0 && tether_notification_port_dispatch(port) != TETHER_SUCCESS)
                        return TETHER_ERR_NOT_ATTACHED; /* tetherd went away */
        }
}

tether_ret_t tether_data_queue_unmap(tether_mapped_queue *h)
{
        return queue_kill((uintptr_t)h);
}

void data_queue_connection_closed(uintptr_t connection)
{
        for (;;) {
                uintptr_t name = 0;
                pthread_mutex_lock(&queues_lock);
                for (client_queue *q = queues; q; q = q->next) {
                        if (q->conn != connection || q->closing)
                                continue;
                        q->closing = true;
                        if (q->name) {
                                name = q->name;
                                break;
                        }
                }
                pthread_mutex_unlock(&queues_lock);
                if (!name)
                        return;
                /* Fails if the application unmapped it meanwhile: then
                 * that did it. */
                (void)queue_kill(name);
        }
}

void data_queue_deliver(uint64_t port_id, wire_reader *rd)
{
        uint64_t cookie = wire_get_u64(rd);
        (void)wire_get_u32(rd);
        (void)wire_get_u32(rd);
        if (wire_reader_done(rd) != TETHER_SUCCESS)
                return;
        client_queue *found = NULL;
        pthread_mutex_lock(&queues_lock);
        for (client_queue *q = queues; q; q = q->next) {
                if (q->cookie == cookie && q->port_id == port_id && q->name && !q->closing) {
                        found = q;
                        handle_obj_ref(&q->obj);
                        break;
                }
        }
        pthread_mutex_unlock(&queues_lock);
        if (!found)
                return; /* unmapped since, or not ours */
        /* Without a lock: the callback dequeues, and may unmap. */
        if (found->cb)
                found->cb(found->refcon, (tether_mapped_queue *)found->name);
        handle_obj_put(&found->obj);
}
