/* SPDX-License-Identifier: MIT */
#ifndef TETHER_CLIENT_PORT_H
#define TETHER_CLIENT_PORT_H

#include <tether/tether.h>

/* Register a pending async call on port and fill ref for the wire:
 * [0] the port's id, [1] a token naming (callback, refcon) in this process.
 * No function pointer ever crosses the socket. */
tether_ret_t port_async_begin(tether_notification_port *port, tether_async_callback cb, void *refcon,
                              uint64_t ref[TETHER_ASYNC_REF_COUNT]);
void port_async_cancel(tether_notification_port *port, const uint64_t ref[TETHER_ASYNC_REF_COUNT]);

#endif
