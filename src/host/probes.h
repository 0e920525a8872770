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
#include <stddef.h>
#include <stdint.h>
#include <tether/driver.h>

#define PROBE_CALLS        (1u << 0) /* calls and async completions */
#define PROBE_USB          (1u << 1) /* USBTMC transfers */
#define PROBE_KINDS        (PROBE_CALLS | PROBE_USB)
#define PROBE_ANY_SELECTOR 0xFFFFFFFFu
#define PROBE_NAME_SIZE    32u
/* Data bytes per USB event: what fits in one datagram beside its fields. */
#define PROBE_MAX_SNAPLEN  (64u * 1024u - 256u)

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
/* flags: WIRE_ASYNC_LAST; delivery: what became of the result (SUCCESS:
 * on the client's port; NoSpace: dropped, the port was full; NotAttached:
 * the port or connection is gone; Aborted: the client cancelled it). */
void probe_async(const tether_async_ref *ref, tether_ret_t result, const uint64_t *args, uint32_t count,
                 uint32_t flags, tether_ret_t delivery);

/* A property write, answered (tetherd builds it: the driver's answer and
 * reason reach tetherd whether the driver is hosted or not). */
#define PROBE_KEYS_SIZE 96u
typedef struct probe_property_event {
        uint64_t start_ns, duration_ns;
        probe_context ctx;     /* service, session, pid; never in a call */
        tether_ret_t result;
        const char *keys;      /* the keys written, comma-separated */
        const char *reason;    /* the refusal's reason, NULL or "" if none */
} probe_property_event;
void probe_property(const probe_property_event *e);
struct tether_value;
/* dict's keys, comma-separated, cut with "..." to fit size bytes. */
void probe_keys_of(const struct tether_value *dict, char *out, size_t size);
struct usbtmc;
struct usbtmc_xfer;
/* The usbtmc observer while a probe wants USB events. */
void probe_usb_transfer(const struct usbtmc *t, const struct usbtmc_xfer *x);

/* Where in a built event its per-probe parts are: each probe gets it with
 * its own count of events it lost, and data cut to its snaplen. */
typedef struct probe_layout {
        uint32_t kind;           /* PROBE_CALLS or PROBE_USB */
        size_t dropped_at;       /* u32: events lost before this one */
        size_t captured_at;      /* u32: data bytes kept (USB), 0: none */
        size_t data_at;          /* the data, up to the end of the event */
        uint32_t lost;           /* events lost before it reached the sink (a host's) */
} probe_layout;

struct wire_msg;
/* The process's sink for a built event (ctx: what it is about): tetherd
 * delivers it to the probes that want it, a driver host forwards it. */
void probe_emit(struct wire_msg *ev, const probe_layout *at, const probe_context *ctx);

#endif
