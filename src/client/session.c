/* SPDX-License-Identifier: MIT */
#include "client/client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

tether_ret_t client_roundtrip(int sock, wire_msg *m, int fd, bool reply_fd, uint8_t *rx, client_reply *ret)
{
        ret->fd = -1;
        tether_ret_t r = wire_msg_finish(m);
        if (r != TETHER_SUCCESS)
                return r;
        wire_header sent;
        memcpy(&sent, m->buf, sizeof(sent));
        r = wire_send(sock, m, fd);
        if (r == TETHER_ERR_MESSAGE_TOO_LARGE)
                return r;
        /* If tetherd hung up, it may have said why first (a refused
         * session): read that rather than report a bare IPC error. */
        bool hung_up = r != TETHER_SUCCESS;
        for (;;) {
                size_t len = 0;
                int rfd = -1;
                r = reply_fd ? wire_recv(sock, rx, WIRE_MAX_MESSAGE, &len, &rfd)
                             : wire_recv_plain(sock, rx, WIRE_MAX_MESSAGE, &len);
                if (r != TETHER_SUCCESS)
                        return TETHER_ERR_IPC; /* tetherd went away */
                if (hung_up) {
                        wire_header e;
                        if (rfd >= 0)
                                close(rfd);
                        if (wire_header_check(rx, len, &e) == TETHER_SUCCESS && e.serial == 0 &&
                            e.type == WIRE_REPLY_FLAG && e.result != TETHER_SUCCESS)
                                return e.result;
                        return TETHER_ERR_IPC;
                }
                wire_header h;
                bool valid = wire_header_check(rx, len, &h) == TETHER_SUCCESS;
                if (!valid || h.type != (sent.type | WIRE_REPLY_FLAG) || h.serial != sent.serial) {
                        if (rfd >= 0)
                                close(rfd);
                        /* tetherd could not parse a datagram of ours (it has
                         * no serial to echo): that was this request. */
                        if (valid && h.serial == 0 && h.type == WIRE_REPLY_FLAG && h.result != TETHER_SUCCESS)
                                return h.result;
                        /* Otherwise a stale reply to a request whose caller
                         * gave up: skip it. */
                        continue;
                }
                ret->h = h;
                ret->fd = rfd;
                wire_reader_init(&ret->body, rx + WIRE_HEADER_SIZE, len - WIRE_HEADER_SIZE);
                if (h.result != TETHER_SUCCESS && rfd >= 0) {
                        close(rfd);
                        ret->fd = -1;
                }
                return h.result;
        }
}

void session_begin_locked(client_session *s, uint16_t type)
{
        if (++s->serial == 0)
                s->serial = 1; /* 0 is reserved for tetherd's unsolicited errors */
        wire_msg_init(&s->tx, type, s->serial, 0);
}

tether_ret_t session_call_locked(client_session *s, client_reply *ret)
{
        return client_roundtrip(s->fd, &s->tx, -1, true, s->rx, ret);
}

tether_ret_t session_get(tether_session *h, client_session **ret)
{
        handle_obj *o = NULL;
        tether_ret_t r = handle_get(h, HANDLE_SESSION, &o);
        if (r == TETHER_SUCCESS)
                *ret = handle_container(o, client_session, obj);
        return r;
}

void session_put(client_session *s)
{
        if (s)
                handle_obj_put(&s->obj);
}

tether_ret_t session_lock_live(client_session *s)
{
        pthread_mutex_lock(&s->lock);
        if (!s->closed)
                return TETHER_SUCCESS;
        pthread_mutex_unlock(&s->lock);
        return TETHER_ERR_BAD_ARGUMENT;
}

tether_ret_t session_acquire(tether_session *h, client_session **ret)
{
        client_session *s = NULL;
        tether_ret_t r = session_get(h, &s);
        if (r == TETHER_SUCCESS)
                r = session_lock_live(s);
        if (r == TETHER_SUCCESS)
                *ret = s;
        else
                session_put(s);
        return r;
}

void session_release(client_session *s)
{
        pthread_mutex_unlock(&s->lock);
        session_put(s);
}

/* The last reference: connections and ports hold one each, so the socket
 * and lock outlive every child. */
static void session_free(handle_obj *o)
{
        client_session *s = handle_container(o, client_session, obj);
        if (s->fd >= 0)
                close(s->fd);
        pthread_mutex_destroy(&s->lock);
        free(s);
}

/* connect() and HELLO: tetherd's ids for the session. */
static tether_ret_t session_connect(client_session *s, const char *path)
{
        struct sockaddr_un addr = { .sun_family = AF_UNIX };
        strcpy(addr.sun_path, path);
        s->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
                return (errno == EACCES || errno == EPERM) ? TETHER_ERR_NOT_PERMITTED : TETHER_ERR_NOT_RESPONDING;
        pthread_mutex_lock(&s->lock);
        session_begin_locked(s, WIRE_HELLO);
        wire_put_u32(&s->tx, (uint32_t)(sizeof(void *) * 8));
        wire_put_u32(&s->tx, 0);
        client_reply rep;
        tether_ret_t r = session_call_locked(s, &rep);
        if (r == TETHER_SUCCESS) {
                s->id = wire_get_u64(&rep.body);
                s->root_id = wire_get_u64(&rep.body);
                r = wire_reader_done(&rep.body) == TETHER_SUCCESS ? TETHER_SUCCESS : TETHER_ERR_IPC;
        }
        pthread_mutex_unlock(&s->lock);
        return r;
}

tether_ret_t tether_session_open(const char *path, tether_session **ret)
{
        if (!ret)
                return TETHER_ERR_BAD_ARGUMENT;
        if (!path)
                path = getenv(TETHER_SOCKET_ENV);
        if (!path)
                path = TETHER_DEFAULT_SOCKET;
        if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
                return TETHER_ERR_BAD_ARGUMENT;
        client_session *s = calloc(1, sizeof(*s));
        if (!s)
                return TETHER_ERR_NO_MEMORY;
        handle_obj_init(&s->obj, session_free);
        pthread_mutex_init(&s->lock, NULL);
        tether_ret_t r = session_connect(s, path);
        uintptr_t name = 0;
        if (r == TETHER_SUCCESS)
                r = handle_add(&s->obj, HANDLE_SESSION, &name);
        if (r == TETHER_SUCCESS)
                *ret = (tether_session *)name;
        session_put(s); /* the table's reference keeps it, or it goes */
        return r;
}

void tether_session_close(tether_session *h)
{
        handle_obj *o = NULL;
        if (handle_remove(h, HANDLE_SESSION, &o) != TETHER_SUCCESS)
                return; /* closed already, or never a session */
        client_session *s = handle_container(o, client_session, obj);
        /* Closed first, so no request starts and no connection or port
         * joins the lists after they are taken. */
        pthread_mutex_lock(&s->lock);
        s->closed = true;
        client_connect *connects = s->connects;
        client_port *ports = s->ports;
        s->connects = NULL;
        s->ports = NULL;
        pthread_mutex_unlock(&s->lock);
        connect_close_list(connects);
        port_destroy_list(ports);
        /* No lock: every user checks `closed` under it, so none is left. */
        close(s->fd);
        s->fd = -1;
        session_put(s);
}
