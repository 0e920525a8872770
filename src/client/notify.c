/* SPDX-License-Identifier: MIT */
#include "client/client.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/port.h"

typedef struct pending_async {
        uint64_t token;
        tether_async_callback cb;
        void *refcon;
        struct pending_async *next;
} pending_async;

struct tether_notification {
        tether_notification_port *port;
        uint64_t id;               /* tetherd's */
        uint64_t cookie;           /* ours, echoed in each message */
        tether_service_callback cb;
        void *refcon;
        tether_notification *next;
};

struct tether_notification_port {
        tether_session *session;
        int fd;
        uint64_t id;
        pthread_mutex_t lock;      /* the lists below */
        uint64_t next_token;
        pending_async *pending;
        tether_notification *notifications;
        uint8_t rx[WIRE_MAX_MESSAGE];
        tether_notification_port *next;
};

tether_ret_t tether_notification_port_create(tether_session *s, tether_notification_port **ret)
{
        if (!s || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        tether_notification_port *p = calloc(1, sizeof(*p));
        if (!p)
                return TETHER_ERR_NO_MEMORY;
        pthread_mutex_lock(&s->lock);
        session_begin_locked(s, WIRE_PORT_CREATE);
        client_reply rep;
        tether_ret_t r = session_call_locked(s, &rep);
        if (r == TETHER_SUCCESS) {
                p->id = wire_get_u64(&rep.body);
                if (wire_reader_done(&rep.body) != TETHER_SUCCESS || rep.fd < 0) {
                        if (rep.fd >= 0)
                                close(rep.fd);
                        r = TETHER_ERR_IPC;
                }
        }
        if (r == TETHER_SUCCESS) {
                /* Non-blocking: dispatch runs what is waiting and returns,
                 * so it fits any event loop. */
                fcntl(rep.fd, F_SETFL, O_NONBLOCK);
                p->fd = rep.fd;
                p->session = s;
                p->next_token = 1;
                pthread_mutex_init(&p->lock, NULL);
                p->next = s->ports;
                s->ports = p;
        }
        pthread_mutex_unlock(&s->lock);
        if (r != TETHER_SUCCESS) {
                free(p);
                return r;
        }
        *ret = p;
        return TETHER_SUCCESS;
}

static void port_free(tether_notification_port *p)
{
        while (p->pending) {
                pending_async *a = p->pending;
                p->pending = a->next;
                free(a);
        }
        while (p->notifications) {
                tether_notification *n = p->notifications;
                p->notifications = n->next;
                free(n);
        }
        close(p->fd);
        pthread_mutex_destroy(&p->lock);
        free(p);
}

void tether_notification_port_destroy(tether_notification_port *port)
{
        if (!port)
                return;
        tether_session *s = port->session;
        pthread_mutex_lock(&s->lock);
        for (tether_notification_port **pp = &s->ports; *pp; pp = &(*pp)->next) {
                if (*pp == port) {
                        *pp = port->next;
                        break;
                }
        }
        pthread_mutex_unlock(&s->lock);
        /* tetherd forgets the port's notifications when the session ends;
         * until then they are harmless: the socket is gone, sends fail. */
        port_free(port);
}

void port_destroy_all(tether_session *s)
{
        while (s->ports) {
                tether_notification_port *p = s->ports;
                s->ports = p->next;
                port_free(p);
        }
}

int tether_notification_port_get_fd(tether_notification_port *port)
{
        return port ? port->fd : -1;
}

tether_ret_t port_async_begin(tether_notification_port *port, tether_async_callback cb, void *refcon,
                              uint64_t ref[TETHER_ASYNC_REF_COUNT])
{
        pending_async *a = calloc(1, sizeof(*a));
        if (!a)
                return TETHER_ERR_NO_MEMORY;
        a->cb = cb;
        a->refcon = refcon;
        pthread_mutex_lock(&port->lock);
        a->token = port->next_token++;
        a->next = port->pending;
        port->pending = a;
        pthread_mutex_unlock(&port->lock);
        memset(ref, 0, TETHER_ASYNC_REF_COUNT * sizeof(uint64_t));
        ref[0] = port->id;
        ref[1] = a->token;
        return TETHER_SUCCESS;
}

static pending_async *take_pending(tether_notification_port *port, uint64_t token)
{
        pthread_mutex_lock(&port->lock);
        pending_async *found = NULL;
        for (pending_async **pp = &port->pending; *pp; pp = &(*pp)->next) {
                if ((*pp)->token == token) {
                        found = *pp;
                        *pp = found->next;
                        break;
                }
        }
        pthread_mutex_unlock(&port->lock);
        return found;
}

void port_async_cancel(tether_notification_port *port, const uint64_t ref[TETHER_ASYNC_REF_COUNT])
{
        free(take_pending(port, ref[1]));
}

static void deliver_async(tether_notification_port *port, wire_reader *rd)
{
        uint64_t ref[TETHER_ASYNC_REF_COUNT];
        const uint8_t *rb = wire_get_bytes(rd, sizeof(ref));
        int32_t result = (int32_t)wire_get_u32(rd);
        uint32_t count = wire_get_u32(rd);
        uint64_t args[TETHER_MAX_ASYNC_ARGS] = { 0 };
        if (rd->bad || count > TETHER_MAX_ASYNC_ARGS)
                return;
        const uint8_t *ab = wire_get_bytes(rd, count * sizeof(uint64_t));
        if (wire_reader_done(rd) != TETHER_SUCCESS)
                return;
        memcpy(ref, rb, sizeof(ref));
        memcpy(args, ab, count * sizeof(uint64_t));
        pending_async *a = ref[0] == port->id ? take_pending(port, ref[1]) : NULL;
        if (!a)
                return; /* cancelled, or not ours */
        a->cb(a->refcon, result, args, count);
        free(a);
}

static void deliver_service(tether_notification_port *port, wire_reader *rd)
{
        uint64_t cookie = wire_get_u64(rd);
        uint32_t type = wire_get_u32(rd);
        (void)wire_get_u32(rd);
        uint64_t service = wire_get_u64(rd);
        if (wire_reader_done(rd) != TETHER_SUCCESS)
                return;
        tether_service_callback cb = NULL;
        void *refcon = NULL;
        pthread_mutex_lock(&port->lock);
        for (tether_notification *n = port->notifications; n; n = n->next) {
                if (n->cookie == cookie) {
                        cb = n->cb;
                        refcon = n->refcon;
                        break;
                }
        }
        pthread_mutex_unlock(&port->lock);
        /* Called without the lock: a callback may add or remove notifications. */
        if (cb)
                cb(refcon, type, service);
}

tether_ret_t tether_notification_port_dispatch(tether_notification_port *port)
{
        if (!port)
                return TETHER_ERR_BAD_ARGUMENT;
        for (;;) {
                size_t len = 0;
                int fd = -1;
                tether_ret_t r = wire_recv(port->fd, port->rx, sizeof(port->rx), &len, &fd);
                if (fd >= 0)
                        close(fd);
                if (r == TETHER_ERR_NOT_READY)
                        return TETHER_SUCCESS;
                if (r == TETHER_ERR_MESSAGE_TOO_LARGE)
                        continue;
                if (r != TETHER_SUCCESS)
                        return TETHER_ERR_IPC;
                wire_header h;
                if (wire_header_check(port->rx, len, &h) != TETHER_SUCCESS)
                        continue;
                wire_reader rd;
                wire_reader_init(&rd, port->rx + WIRE_HEADER_SIZE, len - WIRE_HEADER_SIZE);
                if (h.type == WIRE_NOTIFY_ASYNC)
                        deliver_async(port, &rd);
                else if (h.type == WIRE_NOTIFY_SERVICE)
                        deliver_service(port, &rd);
        }
}

tether_ret_t tether_service_add_matching_notification(tether_notification_port *port, uint32_t type,
                                                      const tether_value *matching,
                                                      tether_service_callback callback, void *refcon,
                                                      tether_notification **ret)
{
        if (!port || !matching || !callback || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        tether_notification *n = calloc(1, sizeof(*n));
        if (!n)
                return TETHER_ERR_NO_MEMORY;
        n->port = port;
        n->cb = callback;
        n->refcon = refcon;
        /* Registered before tetherd is asked, so the existing matches it
         * sends at once find their callback. */
        pthread_mutex_lock(&port->lock);
        n->cookie = port->next_token++;
        n->next = port->notifications;
        port->notifications = n;
        pthread_mutex_unlock(&port->lock);

        tether_session *s = port->session;
        pthread_mutex_lock(&s->lock);
        session_begin_locked(s, WIRE_ADD_NOTIFICATION);
        wire_put_u64(&s->tx, port->id);
        wire_put_u32(&s->tx, type);
        wire_put_u32(&s->tx, 0);
        wire_put_u64(&s->tx, n->cookie);
        wire_put_value(&s->tx, matching);
        client_reply rep;
        tether_ret_t r = session_call_locked(s, &rep);
        if (r == TETHER_SUCCESS) {
                n->id = wire_get_u64(&rep.body);
                if (wire_reader_done(&rep.body) != TETHER_SUCCESS)
                        r = TETHER_ERR_IPC;
        }
        pthread_mutex_unlock(&s->lock);
        if (r != TETHER_SUCCESS) {
                tether_notification_remove(n);
                return r;
        }
        *ret = n;
        return TETHER_SUCCESS;
}

void tether_notification_remove(tether_notification *n)
{
        if (!n)
                return;
        tether_notification_port *port = n->port;
        if (n->id) {
                tether_session *s = port->session;
                pthread_mutex_lock(&s->lock);
                session_begin_locked(s, WIRE_REMOVE_NOTIFICATION);
                wire_put_u64(&s->tx, n->id);
                client_reply rep;
                (void)session_call_locked(s, &rep);
                pthread_mutex_unlock(&s->lock);
        }
        pthread_mutex_lock(&port->lock);
        for (tether_notification **pp = &port->notifications; *pp; pp = &(*pp)->next) {
                if (*pp == n) {
                        *pp = n->next;
                        break;
                }
        }
        pthread_mutex_unlock(&port->lock);
        free(n);
}
