/* SPDX-License-Identifier: MIT */
#ifndef TETHER_CLIENT_H
#define TETHER_CLIENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <tether/tether.h>

#include "wire/message.h"

/* A received reply: header plus a reader over its body. */
typedef struct client_reply {
        wire_header h;
        wire_reader body;
        int fd;                   /* passed with the reply, or -1; the caller owns it */
} client_reply;

struct tether_session {
        int fd;
        pthread_mutex_t lock;     /* one request at a time on the session socket */
        uint32_t serial;
        uint64_t id;
        uint64_t root_id;
        uint8_t rx[WIRE_MAX_MESSAGE];
        wire_msg tx;
        /* what the session owns, closed with it (guarded by `lock`) */
        tether_connect *connects;
        tether_notification_port *ports;
};

/* Send the message built in s->tx (type and body) and wait for its reply,
 * with s->lock held by the caller. The reply's body points into s->rx. */
tether_ret_t session_call_locked(tether_session *s, client_reply *ret);
/* Start building a request in s->tx; the caller holds s->lock. */
void session_begin_locked(tether_session *s, uint16_t type);

/* One round trip on a seqpacket socket: send m (with fd if >= 0), then read
 * until the reply to m's serial arrives. */
tether_ret_t client_roundtrip(int sock, wire_msg *m, int fd, uint8_t *rx, client_reply *ret);

void connect_close_all(tether_session *s);
void port_destroy_all(tether_session *s);

#endif
