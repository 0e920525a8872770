/* SPDX-License-Identifier: MIT */
#ifndef TETHER_CLIENT_DATAQUEUE_H
#define TETHER_CLIENT_DATAQUEUE_H

/* Data queues, the client's side (dataqueue.c), and what it needs of
 * connections and ports. */

#include "client/client.h"
#include "client/port.h"

/* connect.c: DATA_QUEUE_MAP on a live connection. *ret_memfd is the
 * queue's memory, *ret_sock a duplicate of the connection's socket, for
 * the one message the consumer sends (serviced) without waiting behind a
 * call another thread has in flight; the caller owns both. */
tether_ret_t connect_map_data_queue(tether_connect *c, uint32_t type, uint64_t port_id, uint64_t cookie,
                                    int *ret_memfd, uint64_t *ret_size, uint32_t *ret_capacity, int *ret_sock);
/* dataqueue.c, from connect_close(): the connection's queues die with it. */
void data_queue_connection_closed(uintptr_t connection);
/* dataqueue.c, from a port's dispatch: a NOTIFY_DATA_QUEUE came. */
void data_queue_deliver(uint64_t port_id, wire_reader *rd);
/* notify.c: the port's id in tetherd. */
uint64_t port_id_of(client_port *p);

#endif
