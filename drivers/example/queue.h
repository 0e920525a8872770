/* SPDX-License-Identifier: MIT */
#ifndef TETHER_EXAMPLE_QUEUE_H
#define TETHER_EXAMPLE_QUEUE_H

/* The example driver's data-queue methods (queue.c): a producer of numbered
 * items per queue, as fast as the client takes them. */

#include <stdint.h>
#include <tether/driver.h>

typedef struct example_stream {
        tether_data_queue *q;
        uint32_t type;
        uint32_t item_size;
        uint8_t *item;           /* item_size bytes: the one being built */
        uint64_t next_seq;
        uint64_t left;           /* items still to enqueue */
        uint32_t flags;          /* EXAMPLE_PRODUCE_* */
        uintptr_t kick;          /* the token of its scheduled next batch, 0: none */
        uint64_t enqueued, refused, serviced;
        tether_ret_t last_error;
        struct example_streams *owner;
} example_stream;

/* One per connection, in its private state. */
typedef struct example_streams {
        tether_user_client *uc;
        example_stream s[TETHER_DATA_QUEUES_PER_CONNECTION];
        struct example_streams *next;
} example_streams;

/* The connection's streams (api.c keeps them in its private state). */
example_streams *example_streams_of(tether_user_client *uc);
/* From the user client's start and stop. */
void example_streams_start(example_streams *ss, tether_user_client *uc);
void example_streams_stop(example_streams *ss);
/* EXAMPLE_CLIENT_STREAMING's start: its queue, made before any call. */
tether_ret_t example_streams_start_queue(tether_user_client *uc);

tether_ret_t example_m_queue_create(void *target, void *ref, tether_method_args *a);
tether_ret_t example_m_queue_produce(void *target, void *ref, tether_method_args *a);
tether_ret_t example_m_queue_stats(void *target, void *ref, tether_method_args *a);
tether_ret_t example_m_queue_destroy(void *target, void *ref, tether_method_args *a);

#endif
