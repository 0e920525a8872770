/* SPDX-License-Identifier: MIT */
#ifndef TETHER_HOST_DATA_QUEUE_H
#define TETHER_HOST_DATA_QUEUE_H

/*
 * Data queues as the driver runtime serves them (data-queue.c): the driver
 * API of driver.h, and the two connection messages a client sends about
 * them. A user client keeps the list of its queues; these are the hooks it
 * calls, and what they need of it.
 */

#include <stdbool.h>
#include <stdint.h>
#include <tether/driver.h>

#include "host/env.h"
#include "wire/message.h"

/* ---- called by user-client.c, in the gate (on the connection's thread) ---- */

/* DATA_QUEUE_MAP: maps the queue of that type for the client and records
 * its notification port. Answers the request itself; false once uc is gone
 * (the reply could not be sent). */
bool data_queue_map_request(tether_user_client *uc, uint32_t serial, wire_reader *rd);
/* DATA_QUEUE_SERVICED: never answered, whatever it says. */
void data_queue_serviced_request(tether_user_client *uc, wire_reader *rd);
/* uc's stop() has returned: free the queues the driver left. */
void data_queue_free_all(tether_data_queue **list);

/* ---- what they need of a user client (user-client.c) ---- */

tether_data_queue **user_client_queues(tether_user_client *uc);
env_caller *user_client_caller(tether_user_client *uc);
/* Its provider was terminated, or it is being closed: no more enqueues. */
bool user_client_detached(tether_user_client *uc);
/* Send a reply (with fd, or -1); false if the connection was dropped. */
bool user_client_send(tether_user_client *uc, const wire_msg *m, int fd);
/* A status reply, sent once the request is done. */
bool user_client_reply_status(tether_user_client *uc, uint16_t type, uint32_t serial, tether_ret_t r);

#endif
