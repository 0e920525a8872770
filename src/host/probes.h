/* SPDX-License-Identifier: MIT */
#ifndef TETHER_HOST_PROBES_H
#define TETHER_HOST_PROBES_H

/*
 * What the driver runtime tells `tether probe` about: every call and async
 * completion, and the context a USB transfer happens in. tetherd fans the
 * events out to attached probes (src/daemon/probe.c); the cost when nobody
 * probes is one relaxed atomic load per call.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <tether/driver.h>

#define PROBE_ANY_SELECTOR 0xFFFFFFFFu

/* What a work loop is doing now, so that a USB transfer can be tagged
 * with the call it happened in. Set by the loop's own thread. */
typedef struct probe_context {
        uint64_t service_id, session_id, connection_id;
        int32_t pid;
        uint32_t selector;
        bool in_call;
} probe_context;

typedef struct probe_call_event {
        uint64_t start_ns, duration_ns;
        tether_ret_t result;
        uint32_t flags;        /* WIRE_CALL_* */
        uint32_t scalar_in, scalar_out, struct_in, struct_out;
        const char *method;    /* NULL if the driver names none */
} probe_call_event;

extern atomic_uint probe_count;
extern __thread probe_context probe_current;

/* The whole cost of probing when nobody probes. */
static inline bool probe_on(void)
{
        return atomic_load_explicit(&probe_count, memory_order_relaxed) != 0;
}
uint64_t probe_now_ns(void);  /* CLOCK_REALTIME, for the record */
uint64_t probe_mono_ns(void); /* CLOCK_MONOTONIC, for durations */
void probe_call(const probe_call_event *e);
void probe_async(const tether_async_ref *ref, tether_ret_t result, const uint64_t *args, uint32_t count);

#endif
