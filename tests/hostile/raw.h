/* SPDX-License-Identifier: MIT */
#ifndef TETHER_TEST_RAW_H
#define TETHER_TEST_RAW_H

/*
 * The wire protocol spoken by hand, for the hostile clients: no libtether,
 * so they can say what libtether never would (no HELLO, 0-byte datagrams,
 * 253 fds, replies left unread). Every wait is bounded by a timeout.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire/message.h"

/* raw_recv: a datagram came. */
#define RAW_GOT     0
/* What a wait can end with besides a tether_ret_t (those are all <= 0). */
#define RAW_EOF     1 /* tetherd hung up (or reset the socket) */
#define RAW_TIMEOUT 2 /* nothing came in time */
#define RAW_SEND    3 /* the request could not be sent */

#define RAW_MAX_FDS 253 /* SCM_MAX_FD */

typedef struct raw_reply {
        wire_header h;
        bool unsolicited;            /* type WIRE_REPLY_FLAG, serial 0: about no request */
        uint8_t buf[WIRE_MAX_MESSAGE];
        size_t len;                  /* the whole datagram */
        const uint8_t *body;
        size_t body_len;
        int fd;                      /* the first fd passed with it, or -1 (the rest are closed) */
        int nfds;                    /* how many came */
} raw_reply;

uint64_t raw_now_ms(void);
/* A fresh serial, never 0 (tetherd's unsolicited errors use 0). */
uint32_t raw_serial(void);
/* The name of a result, or of RAW_EOF / RAW_TIMEOUT / RAW_SEND. */
const char *raw_code_name(int32_t code);

/* A blocking SOCK_SEQPACKET connection to path; connect waits at most
 * timeout_ms for a full backlog. -1 (errno set) on failure. */
int raw_connect(const char *path, int timeout_ms);
/* One datagram with fds attached (nfds <= RAW_MAX_FDS). dontwait: fail with
 * EAGAIN rather than block. 0, or -errno. */
int raw_send(int sock, const void *buf, size_t len, const int *fds, int nfds, bool dontwait);
/* Finish m and send it. */
int raw_send_msg(int sock, wire_msg *m, const int *fds, int nfds, bool dontwait);
/* Wait up to timeout_ms for one datagram: RAW_GOT with it in r, else RAW_EOF
 * or RAW_TIMEOUT (0 ms: do not wait). */
int raw_recv(int sock, raw_reply *r, int timeout_ms);
/* Send m, then read until its reply (same serial, type | WIRE_REPLY_FLAG) or
 * an unsolicited error arrives; other datagrams are skipped. The reply's
 * result, or RAW_EOF / RAW_TIMEOUT / RAW_SEND. */
int32_t raw_request(int sock, wire_msg *m, const int *fds, int nfds, raw_reply *r, int timeout_ms);

int32_t raw_hello(int sock, raw_reply *r, int timeout_ms);
/* The first service whose class is class_name, by GET_MATCHING. */
int32_t raw_find(int sock, const char *class_name, uint64_t *ret_id, raw_reply *r, int timeout_ms);
void raw_open_msg(wire_msg *m, uint64_t service, uint32_t type, uint32_t options);
/* OPEN; the connection socket in *ret_conn (or -1). */
int32_t raw_open(int sock, uint64_t service, uint32_t type, int *ret_conn, raw_reply *r, int timeout_ms);
int32_t raw_port_create(int sock, uint64_t *ret_id, int *ret_port, raw_reply *r, int timeout_ms);
/* A CALL of c with a fresh serial. */
void raw_call_msg(wire_msg *m, const wire_call *c);
/* A CALL; the first scalar out in *ret_out0 when it succeeds (may be NULL). */
int32_t raw_call(int conn, const wire_call *c, uint64_t *ret_out0, raw_reply *r, int timeout_ms);
/* A memfd of size bytes (sparse: ftruncate only), sealed against
 * shrinking if sealed. -1 on failure. */
int raw_memfd(uint64_t size, bool sealed);

#endif
