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
#include "wire/host-msg.h"
#include "usbtmc/usbtmc.h"

typedef struct probe {
        int fd;                 /* tetherd's end, non-blocking, write only */
        loop_source src;        /* the main loop watches fd for the prober's hang-up */
        const session *owner;   /* compared, never dereferenced */
        probe_filter filter;
        uint32_t dropped;       /* events lost since the last one delivered */
        struct probe *next;
} probe;

static unsigned usb_probes; /* probe_lock */
static bool probes_changed;  /* probe_lock: hosts are told on the main loop's next turn */
static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;
static probe *probes;

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
                usbtmc_set_observer(probe_usb_transfer);
        probes_changed = true;
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
        probes_changed = true;
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

/* Each probe that wants it gets the event with its own count of lost
 * events and as much data as its snaplen allows. Any thread. */
void probe_emit(wire_msg *ev, const probe_layout *at, const probe_context *ctx)
{
        size_t whole = ev->len;
        pthread_mutex_lock(&probe_lock);
        for (probe **l = &probes; *l;) {
                probe *p = *l;
                if (!wanted(&p->filter, at->kind, ctx)) {
                        l = &p->next;
                        continue;
                }
                /* Lost on the way from a driver host: lost to this probe too. */
                uint64_t dropped = (uint64_t)p->dropped + at->lost;
                p->dropped = dropped > UINT32_MAX ? UINT32_MAX : (uint32_t)dropped;
                size_t data = whole - at->data_at;
                size_t cap = data < p->filter.snaplen ? data : p->filter.snaplen;
                ev->len = at->data_at + cap;
                uint32_t cap32 = (uint32_t)cap;
                if (at->captured_at)
                        memcpy(ev->buf + at->captured_at, &cap32, 4);
                memcpy(ev->buf + at->dropped_at, &p->dropped, 4);
                tether_ret_t r = wire_msg_finish(ev);
                if (r == TETHER_SUCCESS)
                        r = wire_send(p->fd, ev, -1);
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
        ev->len = whole;
}

void probe_state(unsigned *count, bool *usb)
{
        pthread_mutex_lock(&probe_lock);
        *count = atomic_load(&probe_count);
        *usb = usb_probes > 0;
        pthread_mutex_unlock(&probe_lock);
}

/* An event a driver host built, checked by host_msg_decode. It is about
 * the host's own service whatever it says: the service id is written over. */
void probe_forwarded(uint64_t service_id, const host_msg *m)
{
        static wire_msg ev;
        memcpy(ev.buf, m->event, m->event_len);
        ev.len = m->event_len;
        ev.poisoned = false;
        size_t at = m->context_at;
        memcpy(ev.buf + at, &service_id, 8);
        probe_context c = { .service_id = service_id };
        uint32_t pid, selector;
        memcpy(&c.session_id, ev.buf + at + 8, 8);
        memcpy(&c.connection_id, ev.buf + at + 16, 8);
        memcpy(&pid, ev.buf + at + 24, 4);
        memcpy(&selector, ev.buf + at + 28, 4);
        c.pid = (int32_t)pid;
        c.selector = selector;
        c.in_call = selector != PROBE_ANY_SELECTOR;
        probe_layout layout = { .kind = m->probe_kind, .dropped_at = m->dropped_at, .captured_at = m->captured_at,
                                .data_at = m->data_at, .lost = m->probe_lost };
        probe_emit(&ev, &layout, &c);
}

bool probe_take_changed(void)
{
        pthread_mutex_lock(&probe_lock);
        bool changed = probes_changed;
        probes_changed = false;
        pthread_mutex_unlock(&probe_lock);
        return changed;
}
