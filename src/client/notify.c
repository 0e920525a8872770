/* SPDX-License-Identifier: MIT */
#include "client/client.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/dataqueue.h"
#include "client/port.h"

/* An open async reference: its callback runs for every result until the
 * last, a cancel, or its connection's or port's close. */
typedef struct pending_async {
        uint64_t token;
        tether_async_callback cb;
        void *refcon;
        uintptr_t conn;            /* the connection's handle, to cancel through and to close with */
        struct pending_async *next;
} pending_async;

/* What a tether_notification * names. */
typedef struct client_notification {
        handle_obj obj;
        uintptr_t name;            /* its handle, for the port to remove it by */
        client_port *port;         /* a reference */
        uint64_t id;               /* tetherd's (the session's lock) */
        uint64_t cookie;           /* ours, echoed in each message */
        tether_service_callback cb;
        void *refcon;
        struct client_notification *next; /* in the port's list (its lock) */
} client_notification;

/* What a tether_notification_port * names. */
struct client_port {
        handle_obj obj;
        uintptr_t name;            /* its handle, for the session to destroy it by */
        client_session *session;   /* a reference */
        uint64_t id;
        /* Closed with the last reference, not by destroy: dispatch reads it
         * without a lock, and may be reading on another thread. */
        int fd;
        pthread_mutex_t lock;      /* all below */
        bool closed;               /* destroyed: no new notification or async call */
        uint64_t next_token;
        pending_async *pending;
        client_notification *notifications; /* each link holds a reference */
        uint8_t rx[WIRE_MAX_MESSAGE];
        client_port *next;         /* in the session's list (its lock) */
};

tether_ret_t port_get(tether_notification_port *h, client_port **ret)
{
        handle_obj *o = NULL;
        tether_ret_t r = handle_get(h, HANDLE_PORT, &o);
        if (r == TETHER_SUCCESS)
                *ret = handle_container(o, client_port, obj);
        return r;
}

void port_put(client_port *p)
{
        if (p)
                handle_obj_put(&p->obj);
}

static void free_pending(pending_async *a)
{
        while (a) {
                pending_async *next = a->next;
                free(a);
                a = next;
        }
}

static void port_free(handle_obj *o)
{
        client_port *p = handle_container(o, client_port, obj);
        free_pending(p->pending);
        if (p->fd >= 0)
                close(p->fd); /* tetherd retires the port, and its notifications with it */
        pthread_mutex_destroy(&p->lock);
        session_put(p->session);
        free(p);
}

tether_ret_t tether_notification_port_create(tether_session *hs, tether_notification_port **ret)
{
        client_session *s = NULL;
        if (!ret || session_get(hs, &s) != TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT;
        client_port *p = calloc(1, sizeof(*p));
        if (!p) {
                session_put(s);
                return TETHER_ERR_NO_MEMORY;
        }
        handle_obj_init(&p->obj, port_free);
        pthread_mutex_init(&p->lock, NULL);
        p->fd = -1;
        p->next_token = 1;
        p->session = s; /* takes the lookup's reference */
        tether_ret_t r = session_lock_live(s);
        if (r == TETHER_SUCCESS) {
                session_begin_locked(s, WIRE_PORT_CREATE);
                client_reply rep;
                r = session_call_locked(s, &rep);
                if (r == TETHER_SUCCESS) {
                        p->id = wire_get_u64(&rep.body);
                        p->fd = rep.fd;
                        if (wire_reader_done(&rep.body) != TETHER_SUCCESS || rep.fd < 0)
                                r = TETHER_ERR_IPC;
                }
                if (r == TETHER_SUCCESS) {
                        /* Non-blocking: dispatch runs what is waiting and
                         * returns, so it fits any event loop. */
                        fcntl(p->fd, F_SETFL, O_NONBLOCK);
                        r = handle_add(&p->obj, HANDLE_PORT, &p->name);
                }
                if (r == TETHER_SUCCESS) {
                        handle_obj_ref(&p->obj);
                        p->next = s->ports;
                        s->ports = p;
                }
                pthread_mutex_unlock(&s->lock);
        }
        if (r == TETHER_SUCCESS)
                *ret = (tether_notification_port *)p->name;
        port_put(p);
        return r;
}

static tether_ret_t notification_remove(uintptr_t name);

/* Once, by whoever killed the port's name: no new notifications or async
 * calls, and the ones it has die (tetherd forgets them when the socket
 * closes). */
static void port_shutdown(client_port *p)
{
        pthread_mutex_lock(&p->lock);
        p->closed = true;
        client_notification *list = p->notifications;
        p->notifications = NULL;
        pending_async *pending = p->pending;
        p->pending = NULL;
        pthread_mutex_unlock(&p->lock);
        free_pending(pending);
        while (list) {
                client_notification *n = list;
                list = n->next;
                (void)notification_remove(n->name); /* fails if the application removed it meanwhile */
                handle_obj_put(&n->obj);            /* the list's reference */
        }
}

/* Kills a port's name and destroys it; see connect_close(). */
static tether_ret_t port_destroy(uintptr_t name)
{
        handle_obj *o = NULL;
        if (handle_remove((const void *)name, HANDLE_PORT, &o) != TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT;
        client_port *p = handle_container(o, client_port, obj);
        client_session *s = p->session;
        bool listed = false;
        pthread_mutex_lock(&s->lock);
        for (client_port **pp = &s->ports; *pp; pp = &(*pp)->next) {
                if (*pp == p) {
                        *pp = p->next;
                        listed = true;
                        break;
                }
        }
        pthread_mutex_unlock(&s->lock);
        if (listed)
                port_put(p);
        port_shutdown(p);
        port_put(p);
        return TETHER_SUCCESS;
}

void tether_notification_port_destroy(tether_notification_port *port)
{
        (void)port_destroy((uintptr_t)port);
}

void port_destroy_list(client_port *list)
{
        while (list) {
                client_port *p = list;
                list = p->next;
                (void)port_destroy(p->name);
                port_put(p);
        }
}

int tether_notification_port_get_fd(tether_notification_port *h)
{
        client_port *p = NULL;
        if (port_get(h, &p) != TETHER_SUCCESS)
                return -1;
        int fd = p->fd;
        port_put(p);
        return fd;
}

tether_ret_t port_async_begin(client_port *port, tether_async_callback cb, void *refcon, uintptr_t conn,
                              uint64_t ref[TETHER_ASYNC_REF_COUNT])
{
        pending_async *a = calloc(1, sizeof(*a));
        if (!a)
                return TETHER_ERR_NO_MEMORY;
        a->cb = cb;
        a->refcon = refcon;
        a->conn = conn;
        pthread_mutex_lock(&port->lock);
        bool closed = port->closed;
        /* Copied under the lock: once listed, a destroy may free it. */
        uint64_t token = 0;
        if (!closed) {
                token = a->token = port->next_token++;
                a->next = port->pending;
                port->pending = a;
        }
        pthread_mutex_unlock(&port->lock);
        if (closed) {
                free(a);
                return TETHER_ERR_BAD_ARGUMENT;
        }
        memset(ref, 0, TETHER_ASYNC_REF_COUNT * sizeof(uint64_t));
        ref[0] = port->id;
        ref[1] = token;
        return TETHER_SUCCESS;
}

static pending_async *take_pending(client_port *port, uint64_t token)
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

void port_async_unregister(client_port *port, const uint64_t ref[TETHER_ASYNC_REF_COUNT])
{
        free(take_pending(port, ref[1]));
}

void port_forget_connection(client_session *s, uintptr_t conn)
{
        pending_async *gone = NULL;
        pthread_mutex_lock(&s->lock);
        for (client_port *p = s->ports; p; p = p->next) {
                pthread_mutex_lock(&p->lock);
                for (pending_async **pp = &p->pending; *pp;) {
                        pending_async *a = *pp;
                        if (a->conn == conn) {
                                *pp = a->next;
                                a->next = gone;
                                gone = a;
                        } else {
                                pp = &a->next;
                        }
                }
                pthread_mutex_unlock(&p->lock);
        }
        pthread_mutex_unlock(&s->lock);
        free_pending(gone);
}

tether_ret_t tether_async_cancel(tether_notification_port *h, tether_async_callback callback, void *refcon)
{
        client_port *port = NULL;
        if (!callback || port_get(h, &port) != TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT;
        pending_async *taken = NULL;
        pthread_mutex_lock(&port->lock);
        for (pending_async **pp = &port->pending; *pp;) {
                pending_async *a = *pp;
                if (a->cb == callback && a->refcon == refcon) {
                        *pp = a->next;
                        a->next = taken;
                        taken = a;
                } else {
                        pp = &a->next;
                }
        }
        pthread_mutex_unlock(&port->lock);
        tether_ret_t r = taken ? TETHER_SUCCESS : TETHER_ERR_NOT_FOUND;
        while (taken) {
                pending_async *a = taken;
                taken = a->next;
                /* Off the port already, so nothing more runs whatever the
                 * runtime says; a connection closed meanwhile closed the
                 * reference itself. */
                (void)connect_async_cancel(a->conn, port->id, a->token);
                free(a);
        }
        port_put(port);
        return r;
}

static void deliver_async(client_port *port, wire_reader *rd)
{
        uint64_t ref[TETHER_ASYNC_REF_COUNT];
        const uint8_t *rb = wire_get_bytes(rd, sizeof(ref));
        int32_t result = (int32_t)wire_get_u32(rd);
        uint32_t count = wire_get_u32(rd);
        uint32_t flags = wire_get_u32(rd);
        (void)wire_get_u32(rd);
        uint64_t args[TETHER_MAX_ASYNC_ARGS] = { 0 };
        if (rd->bad || count > TETHER_MAX_ASYNC_ARGS)
                return;
        const uint8_t *ab = wire_get_bytes(rd, count * sizeof(uint64_t));
        if (wire_reader_done(rd) != TETHER_SUCCESS)
                return;
        memcpy(ref, rb, sizeof(ref));
        memcpy(args, ab, count * sizeof(uint64_t));
        if (ref[0] != port->id)
                return; /* not ours */
        tether_async_callback cb = NULL;
        void *refcon = NULL;
        pending_async *last = NULL;
        if (flags & WIRE_ASYNC_LAST) {
                last = take_pending(port, ref[1]);
                if (last) {
                        cb = last->cb;
                        refcon = last->refcon;
                }
        } else {
                pthread_mutex_lock(&port->lock);
                for (pending_async *a = port->pending; a; a = a->next) {
                        if (a->token == ref[1]) {
                                cb = a->cb;
                                refcon = a->refcon;
                                break;
                        }
                }
                pthread_mutex_unlock(&port->lock);
        }
        /* Called without the lock: a callback may cancel its own reference,
         * start another or destroy the port. */
        if (cb)
                cb(refcon, result, args, count);
        free(last);
}

static void deliver_service(client_port *port, wire_reader *rd)
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
        for (client_notification *n = port->notifications; n; n = n->next) {
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

static bool port_closed(client_port *port)
{
        pthread_mutex_lock(&port->lock);
        bool closed = port->closed;
        pthread_mutex_unlock(&port->lock);
        return closed;
}

/* A callback may destroy the port: the loop holds a reference, so the
 * socket stays open, and stops at the next message. */
static tether_ret_t dispatch(client_port *port)
{
        while (!port_closed(port)) {
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
                else if (h.type == WIRE_NOTIFY_DATA_QUEUE)
                        data_queue_deliver(port->id, &rd);
        }
        return TETHER_SUCCESS;
}

tether_ret_t tether_notification_port_dispatch(tether_notification_port *h)
{
        client_port *port = NULL;
        tether_ret_t r = port_get(h, &port);
        if (r == TETHER_SUCCESS)
                r = dispatch(port);
        port_put(port);
        return r;
}

static void notification_free(handle_obj *o)
{
        client_notification *n = handle_container(o, client_notification, obj);
        port_put(n->port);
        free(n);
}

tether_ret_t tether_service_add_matching_notification(tether_notification_port *h, uint32_t type,
                                                      const tether_value *matching,
                                                      tether_service_callback callback, void *refcon,
                                                      tether_notification **ret)
{
        client_port *port = NULL;
        if (!matching || !callback || !ret || port_get(h, &port) != TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT;
        client_notification *n = calloc(1, sizeof(*n));
        if (!n) {
                port_put(port);
                return TETHER_ERR_NO_MEMORY;
        }
        handle_obj_init(&n->obj, notification_free);
        n->port = port; /* takes the lookup's reference */
        n->cb = callback;
        n->refcon = refcon;
        tether_ret_t r = handle_add(&n->obj, HANDLE_NOTIFICATION, &n->name);
        /* Listed before tetherd is asked, so the existing matches it sends
         * at once find their callback. */
        if (r == TETHER_SUCCESS) {
                pthread_mutex_lock(&port->lock);
                if (port->closed) {
                        r = TETHER_ERR_BAD_ARGUMENT;
                } else {
                        n->cookie = port->next_token++;
                        handle_obj_ref(&n->obj);
                        n->next = port->notifications;
                        port->notifications = n;
                }
                pthread_mutex_unlock(&port->lock);
        }
        client_session *s = port->session;
        if (r == TETHER_SUCCESS)
                r = session_lock_live(s);
        if (r == TETHER_SUCCESS) {
                session_begin_locked(s, WIRE_ADD_NOTIFICATION);
                wire_put_u64(&s->tx, port->id);
                wire_put_u32(&s->tx, type);
                wire_put_u32(&s->tx, 0);
                wire_put_u64(&s->tx, n->cookie);
                wire_put_value(&s->tx, matching);
                client_reply rep;
                r = session_call_locked(s, &rep);
                if (r == TETHER_SUCCESS) {
                        n->id = wire_get_u64(&rep.body);
                        if (wire_reader_done(&rep.body) != TETHER_SUCCESS)
                                r = TETHER_ERR_IPC;
                }
                pthread_mutex_unlock(&s->lock);
        }
        if (r != TETHER_SUCCESS && n->name)
                (void)notification_remove(n->name);
        if (r == TETHER_SUCCESS)
                *ret = (tether_notification *)n->name;
        handle_obj_put(&n->obj);
        return r;
}

/* Kills a notification's name, takes it off its port and tells tetherd;
 * see connect_close(). */
static tether_ret_t notification_remove(uintptr_t name)
{
        handle_obj *o = NULL;
        if (handle_remove((const void *)name, HANDLE_NOTIFICATION, &o) != TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT;
        client_notification *n = handle_container(o, client_notification, obj);
        client_port *port = n->port;
        bool listed = false;
        pthread_mutex_lock(&port->lock);
        for (client_notification **pp = &port->notifications; *pp; pp = &(*pp)->next) {
                if (*pp == n) {
                        *pp = n->next;
                        listed = true;
                        break;
                }
        }
        pthread_mutex_unlock(&port->lock);
        if (listed)
                handle_obj_put(&n->obj);
        /* Not listed: the port is going, and its socket takes the
         * notification with it in tetherd. */
        client_session *s = port->session;
        if (listed && session_lock_live(s) == TETHER_SUCCESS) {
                if (n->id) {
                        session_begin_locked(s, WIRE_REMOVE_NOTIFICATION);
                        wire_put_u64(&s->tx, n->id);
                        client_reply rep;
                        (void)session_call_locked(s, &rep);
                }
                pthread_mutex_unlock(&s->lock);
        }
        handle_obj_put(&n->obj);
        return TETHER_SUCCESS;
}

void tether_notification_remove(tether_notification *n)
{
        (void)notification_remove((uintptr_t)n);
}

uint64_t port_id_of(client_port *p)
{
        return p->id;
}
