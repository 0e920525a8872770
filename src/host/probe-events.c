/* SPDX-License-Identifier: MIT */
/*
 * What `tether probe` sees, built where it happens: a call, an async
 * completion or a USBTMC transfer becomes one event datagram (docs/wire.md),
 * built once, whole (USB data up to PROBE_MAX_SNAPLEN), and handed to
 * probe_emit: tetherd delivers it to its probes, a driver host forwards it
 * to tetherd, which does.
 */
#include "host/probes.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <tether/value.h>

#include "usbtmc/usbtmc.h"
#include "wire/message.h"
#include "wire/scratch.h"

atomic_uint probe_count;
__thread probe_context probe_current;


static uint64_t clock_ns(clockid_t clock)
{
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t probe_now_ns(void)
{
        return clock_ns(CLOCK_REALTIME);
}

uint64_t probe_mono_ns(void)
{
        return clock_ns(CLOCK_MONOTONIC);
}

static void put_context(wire_msg *ev, const probe_context *c)
{
        wire_put_u64(ev, c->service_id);
        wire_put_u64(ev, c->session_id);
        wire_put_u64(ev, c->connection_id);
        wire_put_u32(ev, (uint32_t)c->pid);
        wire_put_u32(ev, c->in_call ? c->selector : PROBE_ANY_SELECTOR);
}

/* An event's common head: its type and result, two times, and who it is
 * of; NULL when there is no memory (the probes lose this one). */
static wire_msg *begin_event(uint16_t type, tether_ret_t result, uint64_t t0, uint64_t t1, const probe_context *c)
{
        wire_msg *ev = wire_scratch(WIRE_SCRATCH_PROBE_EVENT);
        if (!ev)
                return NULL;
        wire_msg_init(ev, type, 0, result);
        wire_put_u64(ev, t0);
        wire_put_u64(ev, t1);
        put_context(ev, c);
        return ev;
}

void probe_call(const probe_call_event *e)
{
        wire_msg *ev = begin_event(WIRE_PROBE_CALL, e->result, e->start_ns, e->duration_ns, &probe_current);
        if (!ev)
                return;
        wire_put_u32(ev, e->flags);
        wire_put_u32(ev, e->scalar_in);
        wire_put_u32(ev, e->scalar_out);
        wire_put_u32(ev, e->struct_in);
        wire_put_u32(ev, e->struct_out);
        probe_layout at = { .kind = PROBE_CALLS, .dropped_at = ev->len };
        wire_put_u32(ev, 0);
        char name[PROBE_NAME_SIZE] = "";
        if (e->method)
                snprintf(name, sizeof(name), "%s", e->method);
        wire_put_bytes(ev, name, sizeof(name));
        at.data_at = ev->len;
        probe_emit(ev, &at, &probe_current);
}

void probe_async(const tether_async_ref *ref, tether_ret_t result, const uint64_t *args, uint32_t count,
                 uint32_t flags, tether_ret_t delivery)
{
        wire_msg *ev = wire_scratch(WIRE_SCRATCH_PROBE_EVENT);
        if (!ev)
                return; /* no memory: the probes lose this one */
        /* The completion names its own connection, whatever the loop is doing. */
        probe_context c = probe_current;
        c.connection_id = ref->connection;
        wire_msg_init(ev, WIRE_PROBE_ASYNC, 0, result);
        wire_put_u64(ev, probe_now_ns());
        put_context(ev, &c);
        probe_layout at = { .kind = PROBE_CALLS, .dropped_at = ev->len };
        wire_put_u32(ev, 0);
        wire_put_u32(ev, flags);
        wire_put_u32(ev, (uint32_t)delivery);
        wire_put_u32(ev, count);
        wire_put_bytes(ev, args, count * sizeof(uint64_t));
        at.data_at = ev->len;
        probe_emit(ev, &at, &c);
}

void probe_property(const probe_property_event *e)
{
        wire_msg *ev = begin_event(WIRE_PROBE_PROPERTY, e->result, e->start_ns, e->duration_ns, &e->ctx);
        if (!ev)
                return;
        probe_layout at = { .kind = PROBE_CALLS, .dropped_at = ev->len };
        wire_put_u32(ev, 0);
        size_t n = e->keys ? strlen(e->keys) : 0;
        wire_put_u32(ev, (uint32_t)n);
        wire_put_bytes(ev, e->keys, n);
        n = e->reason ? strlen(e->reason) : 0;
        wire_put_u32(ev, (uint32_t)n);
        wire_put_bytes(ev, e->reason, n);
        at.data_at = ev->len;
        probe_emit(ev, &at, &e->ctx);
}

void probe_keys_of(const tether_value *dict, char *out, size_t size)
{
        size_t len = 0;
        out[0] = '\0';
        const char *key = NULL;
        tether_value *v = NULL;
        for (size_t i = 0; tether_value_dict_entry(dict, i, &key, &v) == TETHER_SUCCESS; i++) {
                size_t k = strlen(key), sep = i ? 1 : 0;
                /* Room for this key and, if more follow, for "..." after it. */
                if (len + sep + k + 4 > size) {
                        if (len + 4 <= size)
                                memcpy(out + len, "...", 4);
                        return;
                }
                if (sep)
                        out[len++] = ',';
                memcpy(out + len, key, k + 1);
                len += k;
        }
}

void probe_usb_transfer(const usbtmc *t, const usbtmc_xfer *x)
{
        wire_msg *ev = begin_event(WIRE_PROBE_USB, x->status, x->submit_ns, x->done_ns, &probe_current);
        if (!ev)
                return;
        wire_put_u32(ev, (uint32_t)t->bus | (uint32_t)t->address << 16 | (uint32_t)x->type << 24);
        wire_put_u32(ev, x->endpoint);
        wire_put_bytes(ev, x->setup, sizeof(x->setup));
        wire_put_u32(ev, (uint32_t)x->requested);
        wire_put_u32(ev, (uint32_t)x->actual);
        probe_layout at = { .kind = PROBE_USB, .captured_at = ev->len };
        wire_put_u32(ev, 0);
        at.dropped_at = ev->len;
        wire_put_u32(ev, 0);
        at.data_at = ev->len;
        /* OUT data was submitted whatever became of it; IN data is what came. */
        size_t n = (x->endpoint & 0x80) ? x->actual : x->requested;
        if (!x->data)
                n = 0;
        if (n > PROBE_MAX_SNAPLEN)
                n = PROBE_MAX_SNAPLEN;
        wire_put_bytes(ev, x->data, n);
        probe_emit(ev, &at, &probe_current);
}
