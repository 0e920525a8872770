/* SPDX-License-Identifier: MIT */
#ifndef TETHER_CLIENT_PORT_H
#define TETHER_CLIENT_PORT_H

#include "client/client.h"

/* The port a handle names, with a reference: put it with port_put() (NULL
 * is ignored). */
tether_ret_t port_get(tether_notification_port *h, client_port **ret);
void port_put(client_port *p);

/* Register an async reference on port for a call on the connection named
 * conn, and fill ref for the wire: [0] the port's id, [1] a token naming
 * (callback, refcon) in this process. No function pointer ever crosses the
 * socket. TETHER_ERR_BAD_ARGUMENT once the port is destroyed. */
tether_ret_t port_async_begin(client_port *port, tether_async_callback cb, void *refcon, uintptr_t conn,
                              uint64_t ref[TETHER_ASYNC_REF_COUNT]);
/* The call was refused: it opened nothing. */
void port_async_unregister(client_port *port, const uint64_t ref[TETHER_ASYNC_REF_COUNT]);
/* The connection named conn closed, and its references with it: forget
 * them on every port of s. */
void port_forget_connection(client_session *s, uintptr_t conn);
/* Tell the connection named conn that the client cancelled the reference
 * (port_id, token); TETHER_ERR_BAD_ARGUMENT if it is closed. */
tether_ret_t connect_async_cancel(uintptr_t conn, uint64_t port_id, uint64_t token);

#endif
