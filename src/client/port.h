/* SPDX-License-Identifier: MIT */
#ifndef TETHER_CLIENT_PORT_H
#define TETHER_CLIENT_PORT_H

#include "client/client.h"

/* The port a handle names, with a reference: put it with port_put() (NULL
 * is ignored). */
tether_ret_t port_get(tether_notification_port *h, client_port **ret);
void port_put(client_port *p);

/* Register a pending async call on port and fill ref for the wire:
 * [0] the port's id, [1] a token naming (callback, refcon) in this process.
 * No function pointer ever crosses the socket. TETHER_ERR_BAD_ARGUMENT once
 * the port is destroyed. */
tether_ret_t port_async_begin(client_port *port, tether_async_callback cb, void *refcon,
                              uint64_t ref[TETHER_ASYNC_REF_COUNT]);
void port_async_cancel(client_port *port, const uint64_t ref[TETHER_ASYNC_REF_COUNT]);

#endif
