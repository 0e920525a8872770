/* SPDX-License-Identifier: MIT */
#ifndef TETHER_TEST_RAW_H
#define TETHER_TEST_RAW_H

/* Speaking tether's wire protocol by hand, as a client that does not use
 * libtether (or misbehaves on purpose) would. Failures abort the test. */

#include <stddef.h>
#include <stdint.h>

#include "wire/message.h"

/* A session socket to path, with a 5 s receive timeout. */
int raw_connect(const char *path);
/* Send buf, read one reply; its result code. */
int32_t raw_exchange(int fd, const void *buf, size_t len);
/* The same, and the reply's header. */
int32_t raw_exchange_header(int fd, const void *buf, size_t len, wire_header *ret);
/* HELLO on a fresh session socket. */
int raw_session(const char *path);
/* OPEN service_id/type on session fd; the connection socket (5 s timeout). */
int raw_open(int session_fd, uint64_t service_id, uint32_t type);
/* Only send the OPEN request (its reply is left unread). */
void raw_open_request(int session_fd, uint64_t service_id, uint32_t type);
/* SET_BUFFER slot with memfd on a connection; the reply's result. */
int32_t raw_set_buffer(int conn, uint32_t slot, int memfd);
/* One call on a connection; the reply's result. */
int32_t raw_call(int conn, uint32_t serial, const wire_call *c);
/* Send m with fds[0..n) attached (n may be 0). */
void raw_send_fds(int sock, const wire_msg *m, const int *fds, int n);
/* PORT_CREATE on session fd: the port's socket, its id in *ret_id. */
int raw_port(int session_fd, uint64_t *ret_id);
/* ASYNC_CANCEL of (port, token) on a connection; the reply's result. */
int32_t raw_async_cancel(int conn, uint32_t serial, uint64_t port, uint64_t token);

#endif
