/* SPDX-License-Identifier: MIT */
#ifndef TETHER_CLIENT_H
#define TETHER_CLIENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <tether/tether.h>

#include "client/handle.h"
#include "wire/message.h"

/* A received reply: header plus a reader over its body. */
typedef struct client_reply {
        wire_header h;
        wire_reader body;
        int fd;                   /* passed with the reply, or -1; the caller owns it */
} client_reply;

typedef struct client_connect client_connect;
typedef struct client_port client_port;

/* What a tether_session * names. */
typedef struct client_session {
        handle_obj obj;
        int fd;
        pthread_mutex_t lock;     /* one request at a time on the session socket; all below */
        bool closed;              /* requests fail and nothing new joins the lists */
        uint32_t serial;
        uint64_t id;
        uint64_t root_id;
        uint8_t rx[WIRE_MAX_MESSAGE];
        wire_msg tx;
        /* What the session owns, closed with it; each link holds a reference. */
        client_connect *connects;
        client_port *ports;
} client_session;

/* The session a handle names, with a reference: put it with session_put(). */
tether_ret_t session_get(tether_session *h, client_session **ret);
void session_put(client_session *s);
/* Takes s->lock for a request; TETHER_ERR_BAD_ARGUMENT (and no lock) once
 * the session is closed, whoever closed it while the caller held it. */
tether_ret_t session_lock_live(client_session *s);
/* Both: a live session for one request, locked and referenced; end the
 * request with session_release(). */
tether_ret_t session_acquire(tether_session *h, client_session **ret);
void session_release(client_session *s);

/* Send the message built in s->tx (type and body) and wait for its reply,
 * with s->lock held by the caller. The reply's body points into s->rx. */
tether_ret_t session_call_locked(client_session *s, client_reply *ret);
/* Start building a request in s->tx; the caller holds s->lock. */
void session_begin_locked(client_session *s, uint16_t type);

/* One round trip on a seqpacket socket: send m (with fd if >= 0), then read
 * until the reply to m's serial arrives. reply_fd: the reply may carry an
 * fd (ret->fd); otherwise any fd that comes is dropped unseen. */
tether_ret_t client_roundtrip(int sock, wire_msg *m, int fd, bool reply_fd, uint8_t *rx, client_reply *ret);

/* A closing session's lists, taken out of it: closes every member still
 * live and drops the list's references. */
void connect_close_list(client_connect *list);
void port_destroy_list(client_port *list);

#endif
