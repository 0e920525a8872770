/* SPDX-License-Identifier: MIT */
#ifndef TETHER_WIRE_SCRATCH_H
#define TETHER_WIRE_SCRATCH_H

/*
 * Messages to build in, one per thread and per use, made on a thread's first
 * use and freed when it exits. A wire_msg is 64 KiB: as a static __thread
 * each would be in every thread's static TLS, which glibc zeroes at every
 * thread's start and carves out of its stack, so a process whose user
 * clients each have a thread of their own (docs/concepts/work-loops.md)
 * would pay ~0.5 MiB per connection whether it sends such a message or not.
 * Here a thread pays for the uses it makes, and only the pages it writes.
 */

#include "wire/message.h"

/* One per use: a use never builds into a message another use, running
 * further up the same thread's stack, is still building. */
typedef enum wire_scratch_use {
        WIRE_SCRATCH_ASYNC,        /* tether_async_send */
        WIRE_SCRATCH_DATA_QUEUE,   /* data-available */
        WIRE_SCRATCH_QUEUE_MAP,    /* a data queue's map reply */
        WIRE_SCRATCH_PROBE_EVENT,  /* a probe event, as built */
        WIRE_SCRATCH_PROBE_SINK,   /* a probe event, as handed on (a host's) */
        WIRE_SCRATCH_SESSION,      /* tetherd's and the harness's session replies */
        WIRE_SCRATCH_OPEN,         /* an OPEN's reply */
        WIRE_SCRATCH_NOTIFY,       /* a notification */
        WIRE_SCRATCH_HOST,         /* a driver host's messages to tetherd */
        WIRE_SCRATCH_USES
} wire_scratch_use;

/* This thread's message for use, or NULL if there is no memory for it. */
wire_msg *wire_scratch(wire_scratch_use use);

#endif
