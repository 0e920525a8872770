/* SPDX-License-Identifier: MIT */
/*
 * ExampleDriver's data queues: a fast producer, the pattern a driver that
 * streams (samples, events, packets) follows.
 *
 *   - Enqueue until the queue refuses (TETHER_ERR_NO_SPACE), then stop and
 *     let the serviced handler resume once the client has drained it:
 *     nothing is dropped and the driver never polls.
 *   - Never hold the work loop for long: a batch per turn, the next batch
 *     scheduled behind whatever else the loop has to do, so the service's
 *     other connections are served while a stream of millions runs.
 *   - A scheduled batch names its stream by a token, not a pointer: the
 *     connection may close before it runs, and then the token finds nothing.
 */
#include "example/queue.h"

#include <pthread.h>
#include <stdlib.h>

#include "example/example.h"

/* Every connection's streams, for a batch's token to find. Only touched on
 * the service's loop, but a process could run two ExampleDrivers. */
static example_streams *live;
static uintptr_t next_kick;
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;

void example_streams_start(example_streams *ss, tether_user_client *uc)
{
        ss->uc = uc;
        for (unsigned i = 0; i < TETHER_DATA_QUEUES_PER_CONNECTION; i++)
                ss->s[i].owner = ss;
        pthread_mutex_lock(&live_lock);
        ss->next = live;
        live = ss;
        pthread_mutex_unlock(&live_lock);
}

void example_streams_stop(example_streams *ss)
{
        pthread_mutex_lock(&live_lock);
        for (example_streams **pp = &live; *pp; pp = &(*pp)->next) {
                if (*pp == ss) {
                        *pp = ss->next;
                        break;
                }
        }
        pthread_mutex_unlock(&live_lock);
        /* The queues themselves go with the user client. */
        for (unsigned i = 0; i < TETHER_DATA_QUEUES_PER_CONNECTION; i++) {
                free(ss->s[i].item);
                ss->s[i] = (example_stream){ 0 };
        }
}

static example_stream *stream_of(tether_user_client *uc, uint64_t type)
{
        example_streams *ss = example_streams_of(uc);
        for (unsigned i = 0; i < TETHER_DATA_QUEUES_PER_CONNECTION; i++)
                if (ss->s[i].q && ss->s[i].type == type)
                        return &ss->s[i];
        return NULL;
}

static void run(example_stream *st);

static void kicked(tether_service *svc, void *ctx)
{
        uintptr_t token = (uintptr_t)ctx;
        example_stream *found = NULL;
        pthread_mutex_lock(&live_lock);
        for (example_streams *ss = live; ss && !found; ss = ss->next)
                for (unsigned i = 0; i < TETHER_DATA_QUEUES_PER_CONNECTION; i++)
                        if (ss->s[i].q && ss->s[i].kick == token)
                                found = &ss->s[i];
        pthread_mutex_unlock(&live_lock);
        /* Its connection can only close on this loop, so it stays while we
         * run it. */
        if (found) {
                found->kick = 0;
                run(found);
        }
}

/* One batch. Returns the last enqueue's result. */
static tether_ret_t batch(example_stream *st, uint64_t *ret_n)
{
        tether_ret_t r = TETHER_SUCCESS;
        uint64_t n = 0;
        while (st->left && n < EXAMPLE_STREAM_BATCH) {
                example_item_fill(st->item, st->next_seq, st->item_size);
                /* One data-available message for the batch, not one per
                 * item the client happens to find the queue empty for. */
                r = tether_data_queue_enqueue_coalesced(st->q, st->item, st->item_size);
                if (r == TETHER_ERR_NO_SPACE) {
                        st->refused++;
                        if (st->flags & EXAMPLE_PRODUCE_UNTIL_FULL)
                                st->left = 0;
                        break; /* the serviced handler goes on */
                }
                if (r != TETHER_SUCCESS) {
                        st->last_error = r;
                        st->left = 0;
                        break;
                }
                st->enqueued++;
                st->next_seq++;
                st->left--;
                n++;
        }
        tether_data_queue_send_data_available(st->q);
        if (ret_n)
                *ret_n = n;
        return r;
}

/* A batch, and the next one scheduled if this one ended for want of turns
 * rather than of room. */
static tether_ret_t run_batch(example_stream *st, uint64_t *ret_n)
{
        tether_ret_t r = batch(st, ret_n);
        tether_service *svc = tether_user_client_provider(st->owner->uc);
        if (r == TETHER_SUCCESS && st->left && !st->kick && svc) {
                pthread_mutex_lock(&live_lock);
                uintptr_t token = ++next_kick;
                pthread_mutex_unlock(&live_lock);
                if (tether_service_schedule(svc, 0, kicked, (void *)token) == TETHER_SUCCESS)
                        st->kick = token;
        }
        return r;
}

static void run(example_stream *st)
{
        (void)run_batch(st, NULL);
}

/* DataServiced: the client drained the queue that refused us. */
static void serviced(tether_data_queue *q, void *ctx)
{
        example_stream *st = ctx;
        st->serviced++;
        if (!st->kick)
                run(st);
}

tether_ret_t example_streams_start_queue(tether_user_client *uc)
{
        example_stream *st = &example_streams_of(uc)->s[0];
        tether_ret_t r = tether_data_queue_create(uc, EXAMPLE_EVENT_QUEUE, EXAMPLE_EVENT_QUEUE_SIZE, serviced, st,
                                                  &st->q);
        if (r == TETHER_SUCCESS)
                st->type = EXAMPLE_EVENT_QUEUE;
        return r;
}

tether_ret_t example_m_queue_create(void *target, void *ref, tether_method_args *a)
{
        example_streams *ss = example_streams_of(target);
        if (stream_of(target, a->scalar_input[0]) || a->scalar_input[0] > UINT32_MAX)
                return TETHER_ERR_BAD_ARGUMENT;
        example_stream *st = NULL;
        for (unsigned i = 0; i < TETHER_DATA_QUEUES_PER_CONNECTION && !st; i++)
                if (!ss->s[i].q)
                        st = &ss->s[i];
        if (!st)
                return TETHER_ERR_NO_RESOURCES;
        tether_ret_t r = tether_data_queue_create(target, (uint32_t)a->scalar_input[0], (size_t)a->scalar_input[1],
                                                  serviced, st, &st->q);
        if (r != TETHER_SUCCESS)
                return r;
        st->type = (uint32_t)a->scalar_input[0];
        a->scalar_output[0] = tether_data_queue_capacity(st->q);
        return TETHER_SUCCESS;
}

tether_ret_t example_m_queue_produce(void *target, void *ref, tether_method_args *a)
{
        example_stream *st = stream_of(target, a->scalar_input[0]);
        uint64_t count = a->scalar_input[1], size = a->scalar_input[2], flags = a->scalar_input[3];
        if (!st)
                return TETHER_ERR_NOT_FOUND;
        if (size < EXAMPLE_ITEM_MIN || size > TETHER_DATA_QUEUE_MAX_ITEM(tether_data_queue_capacity(st->q)) ||
            (flags & ~(uint64_t)EXAMPLE_PRODUCE_UNTIL_FULL))
                return TETHER_ERR_BAD_ARGUMENT;
        if (st->left)
                return TETHER_ERR_BUSY;
        if (st->item_size != size) {
                uint8_t *item = realloc(st->item, size);
                if (!item)
                        return TETHER_ERR_NO_MEMORY;
                st->item = item;
                st->item_size = (uint32_t)size;
        }
        st->left = count;
        st->flags = (uint32_t)flags;
        uint64_t n = 0;
        tether_ret_t r = run_batch(st, &n);
        a->scalar_output[0] = n;
        a->scalar_output[1] = (uint64_t)(int64_t)r;
        return TETHER_SUCCESS;
}

tether_ret_t example_m_queue_stats(void *target, void *ref, tether_method_args *a)
{
        example_stream *st = stream_of(target, a->scalar_input[0]);
        if (!st)
                return TETHER_ERR_NOT_FOUND;
        a->scalar_output[0] = st->enqueued;
        a->scalar_output[1] = st->refused;
        a->scalar_output[2] = st->serviced;
        a->scalar_output[3] = (uint64_t)(int64_t)st->last_error;
        a->scalar_output[4] = st->left;
        return TETHER_SUCCESS;
}

tether_ret_t example_m_queue_destroy(void *target, void *ref, tether_method_args *a)
{
        example_stream *st = stream_of(target, a->scalar_input[0]);
        if (!st)
                return TETHER_ERR_NOT_FOUND;
        tether_data_queue_destroy(st->q);
        free(st->item);
        example_streams *owner = st->owner;
        *st = (example_stream){ .owner = owner }; /* a batch scheduled for it finds nothing */
        return TETHER_SUCCESS;
}
