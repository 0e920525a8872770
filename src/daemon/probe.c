/* SPDX-License-Identifier: MIT */
/*
 * Probes: `tether probe` attaches one and tetherd streams what it sees
 * through it: every user-client call, async completion and USBTMC transfer,
 * each tagged with the call it happened in.
 *
 * Cost when nobody listens: one relaxed atomic load per call (probe_on())
 * and one per USB transfer (the usbtmc observer is installed only while a
 * probe is attached). With probes attached, an event is built once and sent
 * without blocking to each matching probe; a prober that does not keep up
 * loses events, counted and reported in the next one it gets, rather than
 * ever slowing a work loop.
 */
#include "daemon/daemon.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "daemon/server.h"
#include "usbtmc/usbtmc.h"

typedef struct probe {
        int fd;                 /* tetherd's end, non-blocking, write only */
        loop_source src;        /* the main loop watches fd for the prober's hang-up */
        const session *owner;   /* compared, never dereferenced */
        probe_filter filter;
        uint32_t dropped;       /* events lost since the last one delivered */
        struct probe *next;
} probe;

atomic_uint probe_count;
static unsigned usb_probes; /* probe_lock */
__thread probe_context probe_current;

static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;
static probe *probes;
static __thread wire_msg ev;

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

static void usb_observer(const usbtmc *t, const usbtmc_xfer *x);
static void probe_hangup(loop_source *src, uint32_t events);

tether_ret_t probe_attach(session *s, const probe_filter *f, int *ret_client_fd)
{
        if (f->kinds & ~(uint32_t)PROBE_KINDS || !f->kinds)
                return TETHER_ERR_BAD_ARGUMENT;
        int sv[2];
        probe *p = calloc(1, sizeof(*p));
        if (!p)
                return TETHER_ERR_NO_MEMORY;
        tether_ret_t r = wire_channel_pair(true, sv);
        if (r != TETHER_SUCCESS) {
                free(p);
                return r;
        }
        /* Room for bursts (a capture is a few hundred events): a prober
         * that is a little behind should not lose any. Root may go past
         * wmem_max; anyone else gets what the kernel allows. */
        int sz = 8 << 20;
        if (setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
                setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
        p->fd = sv[0];
        p->src = (loop_source){ .fd = sv[0], .fn = probe_hangup };
        if (server_watch(&p->src) != TETHER_SUCCESS) {
                close(sv[0]);
                close(sv[1]);
                free(p);
                return TETHER_ERR_NO_RESOURCES;
        }
        p->owner = s;
        p->filter = *f;
        if (p->filter.snaplen > PROBE_MAX_SNAPLEN)
                p->filter.snaplen = PROBE_MAX_SNAPLEN;
        pthread_mutex_lock(&probe_lock);
        p->next = probes;
        probes = p;
        atomic_fetch_add(&probe_count, 1);
        if ((p->filter.kinds & PROBE_USB) && usb_probes++ == 0)
                usbtmc_set_observer(usb_observer);
        pthread_mutex_unlock(&probe_lock);
        *ret_client_fd = sv[1];
        return TETHER_SUCCESS;
}

/* probe_lock held; any thread. */
static void probe_end_locked(probe **link)
{
        probe *p = *link;
        *link = p->next;
        if ((p->filter.kinds & PROBE_USB) && --usb_probes == 0)
                usbtmc_set_observer(NULL);
        atomic_fetch_sub(&probe_count, 1);
        server_retire(&p->src, p); /* freed between the main loop's batches */
}

/* Main thread. The prober closed its end: end the probe now rather than
 * at the next event, so a probe nobody reads costs nothing afterwards. */
static void probe_hangup(loop_source *src, uint32_t events)
{
        probe *p = (probe *)((char *)src - offsetof(probe, src));
        pthread_mutex_lock(&probe_lock);
        for (probe **l = &probes; *l; l = &(*l)->next) {
                if (*l == p) {
                        probe_end_locked(l);
                        break;
                }
        }
        pthread_mutex_unlock(&probe_lock);
}

void probes_release_session(const session *s)
{
        pthread_mutex_lock(&probe_lock);
        for (probe **l = &probes; *l;) {
                if ((*l)->owner == s)
                        probe_end_locked(l);
                else
                        l = &(*l)->next;
        }
        pthread_mutex_unlock(&probe_lock);
}

void probe_shutdown(void)
{
        pthread_mutex_lock(&probe_lock);
        while (probes)
                probe_end_locked(&probes);
        pthread_mutex_unlock(&probe_lock);
        server_reap_retired();
}

static bool wanted(const probe_filter *f, uint32_t kind, const probe_context *c)
{
        if (!(f->kinds & kind))
                return false;
        if (f->service_id && f->service_id != c->service_id)
                return false;
        if (f->pid && f->pid != c->pid)
                return false;
        return f->selector == PROBE_ANY_SELECTOR || (c->in_call && f->selector == c->selector);
}

/* The event is in `ev` without its dropped count and data; each probe gets
 * it with its own count and as much data as its snaplen allows. */
static void deliver(uint32_t kind, const probe_context *ctx, size_t dropped_at, const uint8_t *data, size_t data_len,
                    size_t captured_at)
{
        size_t base = ev.len;
        pthread_mutex_lock(&probe_lock);
        for (probe **l = &probes; *l;) {
                probe *p = *l;
                if (!wanted(&p->filter, kind, ctx)) {
                        l = &p->next;
                        continue;
                }
                ev.len = base;
                size_t cap = data_len < p->filter.snaplen ? data_len : p->filter.snaplen;
                wire_put_bytes(&ev, data, cap);
                uint32_t cap32 = (uint32_t)cap;
                if (captured_at)
                        memcpy(ev.buf + captured_at, &cap32, 4);
                memcpy(ev.buf + dropped_at, &p->dropped, 4);
                tether_ret_t r = wire_msg_finish(&ev);
                if (r == TETHER_SUCCESS)
                        r = wire_send(p->fd, &ev, -1);
                if (r == TETHER_ERR_NOT_ATTACHED) {
                        probe_end_locked(l); /* the prober went away */
                        continue;
                }
                if (r == TETHER_SUCCESS)
                        p->dropped = 0;
                else if (p->dropped < UINT32_MAX)
                        p->dropped++;
                l = &p->next;
        }
        pthread_mutex_unlock(&probe_lock);
}

static void put_context(const probe_context *c)
{
        wire_put_u64(&ev, c->service_id);
        wire_put_u64(&ev, c->session_id);
        wire_put_u64(&ev, c->connection_id);
        wire_put_u32(&ev, (uint32_t)c->pid);
        wire_put_u32(&ev, c->in_call ? c->selector : PROBE_ANY_SELECTOR);
}

void probe_call(const probe_call_event *e)
{
        wire_msg_init(&ev, WIRE_PROBE_CALL, 0, e->result);
        wire_put_u64(&ev, e->start_ns);
        wire_put_u64(&ev, e->duration_ns);
        put_context(&probe_current);
        wire_put_u32(&ev, e->flags);
        wire_put_u32(&ev, e->scalar_in);
        wire_put_u32(&ev, e->scalar_out);
        wire_put_u32(&ev, e->struct_in);
        wire_put_u32(&ev, e->struct_out);
        size_t dropped_at = ev.len;
        wire_put_u32(&ev, 0);
        char name[PROBE_NAME_SIZE] = "";
        if (e->method)
                snprintf(name, sizeof(name), "%s", e->method);
        wire_put_bytes(&ev, name, sizeof(name));
        deliver(PROBE_CALLS, &probe_current, dropped_at, NULL, 0, 0);
}

void probe_async(const tether_async_ref *ref, tether_ret_t result, const uint64_t *args, uint32_t count)
{
        /* The completion names its own connection, whatever the loop is doing. */
        probe_context c = probe_current;
        c.connection_id = ref->connection;
        wire_msg_init(&ev, WIRE_PROBE_ASYNC, 0, result);
        wire_put_u64(&ev, probe_now_ns());
        put_context(&c);
        size_t dropped_at = ev.len;
        wire_put_u32(&ev, 0);
        wire_put_u32(&ev, count);
        wire_put_bytes(&ev, args, count * sizeof(uint64_t));
        deliver(PROBE_CALLS, &c, dropped_at, NULL, 0, 0);
}

static void usb_observer(const usbtmc *t, const usbtmc_xfer *x)
{
        wire_msg_init(&ev, WIRE_PROBE_USB, 0, x->status);
        wire_put_u64(&ev, x->submit_ns);
        wire_put_u64(&ev, x->done_ns);
        put_context(&probe_current);
        wire_put_u32(&ev, (uint32_t)t->bus | (uint32_t)t->address << 16 | (uint32_t)x->type << 24);
        wire_put_u32(&ev, x->endpoint);
        wire_put_bytes(&ev, x->setup, sizeof(x->setup));
        wire_put_u32(&ev, (uint32_t)x->requested);
        wire_put_u32(&ev, (uint32_t)x->actual);
        size_t captured_at = ev.len;
        wire_put_u32(&ev, 0);
        size_t dropped_at = ev.len;
        wire_put_u32(&ev, 0);
        /* OUT data was submitted whatever became of it; IN data is what came. */
        size_t n = (x->endpoint & 0x80) ? x->actual : x->requested;
        deliver(PROBE_USB, &probe_current, dropped_at, x->data, x->data ? n : 0, captured_at);
}
