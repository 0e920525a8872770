/* SPDX-License-Identifier: MIT */
/*
 * Service requests. While some connection listens (TMC_SRQ_ENABLE), the
 * driver looks for SRQs every TMC_SRQ_POLL_MS: on interrupt-IN (USB488's
 * notification, bNotify1 0x81, with the status byte), or, on an instrument
 * without that endpoint, in the status byte itself (READ_STATUS_BYTE every
 * TMC_STB_POLL_MS, an SRQ when MSS rises). Such an instrument cannot be
 * SR1 and its control reply's bit 6 (RQS) is always 0 (USB488 4.3.1.1):
 * MSS is computed as IEEE 488.2 defines it, the summary bits ANDed with
 * the service request enable mask, which the driver follows (*SRE? at
 * start, every *SRE n written since). SRQs a client's status-byte
 * read meets count too: on interrupt-IN ahead of its answer, or as RQS in
 * it (a serial poll clears RQS, so the poll would not see that one).
 *
 * Each listener gets one async result per SRQ (TMC_SRQ_ARG_*). A port
 * that is full refuses a result and tether queues nothing, so each
 * connection has a queue of its own here, TMC_SRQ_QUEUE long, offered
 * again every TMC_SRQ_RETRY_MS; when it overflows, the oldest SRQ goes and
 * the connection's lost count grows. Every result carries its SRQ's
 * sequence number and the lost count, so a client can account for each
 * one. A storm costs the driver that queue per listener and bounded work
 * per poll, nothing more.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "instrument.h"

/* Notifications taken from interrupt-IN per poll, at most. */
#define POLL_MAX 256u

static void srq_off(tmc_client *c)
{
        if (!c->srq_on)
                return;
        c->srq_on = false;
        c->srq_n = c->srq_head = 0;
        tmc_instr *in = c->in;
        if (--in->srq_listeners == 0)
                tether_timer_cancel(in->srq_timer);
}

/* Offer what is queued; true if something stays for later. */
static bool flush(tmc_client *c)
{
        while (c->srq_on && c->srq_n) {
                uint64_t args[TMC_SRQ_ARGS] = {
                        [TMC_SRQ_ARG_STB] = c->srq_stb[c->srq_head],
                        [TMC_SRQ_ARG_SEQ] = c->srq_seq_of[c->srq_head],
                        [TMC_SRQ_ARG_LOST] = c->srq_lost,
                };
                tether_ret_t r = tether_async_send(&c->srq_ref, TETHER_SUCCESS, args, TMC_SRQ_ARGS, 0);
                if (r == TETHER_ERR_NO_SPACE)
                        return true;
                if (r != TETHER_SUCCESS) {
                        srq_off(c); /* cancelled, or nobody there any more */
                        return false;
                }
                c->srq_head = (c->srq_head + 1) % TMC_SRQ_QUEUE;
                c->srq_n--;
        }
        return false;
}

static void flush_all(tmc_instr *in)
{
        bool again = false;
        for (tmc_client *c = in->clients; c; c = c->next)
                if (c->srq_on && flush(c))
                        again = true;
        if (again && !tether_timer_is_armed(in->srq_retry_timer))
                tether_timer_arm(in->srq_retry_timer, TMC_SRQ_RETRY_MS);
}

void tmc_srq_seen(void *ctx, uint8_t stb)
{
        tmc_instr *in = ctx;
        for (tmc_client *c = in->clients; c; c = c->next) {
                if (!c->srq_on)
                        continue;
                if (c->srq_n == TMC_SRQ_QUEUE) {
                        c->srq_head = (c->srq_head + 1) % TMC_SRQ_QUEUE; /* the oldest goes */
                        c->srq_n--;
                        c->srq_lost++;
                }
                unsigned slot = (c->srq_head + c->srq_n) % TMC_SRQ_QUEUE;
                c->srq_stb[slot] = stb;
                c->srq_seq_of[slot] = ++c->srq_seq;
                c->srq_n++;
        }
        flush_all(in);
}

void tmc_srq_end_all(tmc_instr *in, tether_ret_t why)
{
        for (tmc_client *c = in->clients; c; c = c->next) {
                if (!c->srq_on)
                        continue;
                uint64_t args[TMC_SRQ_ARGS] = { [TMC_SRQ_ARG_SEQ] = c->srq_seq, [TMC_SRQ_ARG_LOST] = c->srq_lost };
                tether_async_send(&c->srq_ref, why, args, TMC_SRQ_ARGS, TETHER_ASYNC_LAST);
                srq_off(c);
        }
}

void tmc_srq_status_byte(tmc_instr *in, uint8_t stb)
{
        if (in->usb.ep_interrupt && in->usb.ops->interrupt_in)
                return; /* SRQs come as notifications there */
        bool mss = (stb & 0x40) || (stb & in->sre & (uint8_t)~0x40);
        if (mss && !in->stb_rqs && in->srq_listeners)
                tmc_srq_seen(in, (uint8_t)(stb | 0x40));
        in->stb_rqs = mss;
}

static bool header_is(const char *p, const char *end, const char *h)
{
        size_t n = strlen(h);
        return (size_t)(end - p) >= n && !strncasecmp(p, h, n);
}

void tmc_srq_note_message(tmc_instr *in, const void *msg, size_t n)
{
        const char *p = msg, *end = p + n;
        /* Each message unit: "*SRE 32", "*SRE +32", among others after ';'. */
        while (p < end) {
                while (p < end && (*p == ' ' || *p == '\t' || *p == ';' || *p == '\n' || *p == '\r'))
                        p++;
                /* *CLS clears the event registers, and a new mask redefines
                 * MSS: either way a 100 ms poll could miss MSS falling and
                 * rising again, so the next MSS seen is a new SRQ. */
                if (header_is(p, end, "*CLS") || header_is(p, end, "*SRE "))
                        in->stb_rqs = false;
                if (header_is(p, end, "*SRE") && p + 4 < end && (p[4] == ' ' || p[4] == '\t')) {
                        const char *q = p + 5;
                        while (q < end && (*q == ' ' || *q == '\t'))
                                q++;
                        if (q < end && *q == '+')
                                q++;
                        unsigned long v = 0;
                        bool digits = false;
                        while (q < end && isdigit((unsigned char)*q) && v <= 255) {
                                v = v * 10 + (unsigned long)(*q++ - '0');
                                digits = true;
                        }
                        if (digits && v <= 255)
                                in->sre = (uint8_t)(v & ~0x40u); /* bit 6 cannot be enabled */
                }
                const char *semi = memchr(p, ';', (size_t)(end - p));
                p = semi ? semi + 1 : end;
        }
}

static void poll_status_byte(tmc_instr *in)
{
        uint8_t stb = 0;
        if (tmc_link_result(in, usbtmc_read_status_byte(&in->usb, &stb)) == TETHER_SUCCESS)
                tmc_srq_status_byte(in, stb);
}

void tmc_srq_timer_fired(tether_service *svc, tether_timer *timer, void *refcon, tether_ret_t status)
{
        tmc_instr *in = refcon;
        if (status != TETHER_SUCCESS || in->gone || !in->srq_listeners)
                return;
        if (in->usb.ep_interrupt && in->usb.ops->interrupt_in) {
                unsigned n = 0;
                /* 1 ms each: the notifications already there, not a wait. */
                tmc_link_result(in, usbtmc_poll_interrupt(&in->usb, 1, POLL_MAX, &n));
        } else {
                poll_status_byte(in);
        }
}

void tmc_srq_retry_fired(tether_service *svc, tether_timer *timer, void *refcon, tether_ret_t status)
{
        if (status == TETHER_SUCCESS)
                flush_all(refcon);
}

tether_ret_t tmc_srq_enable(tmc_client *c, const tether_async_ref *async_ref)
{
        tmc_instr *in = c->in;
        if (c->srq_on)
                return TETHER_ERR_BUSY; /* one stream per connection */
        bool interrupt = in->usb.ep_interrupt && in->usb.ops->interrupt_in;
        tether_ret_t r = TETHER_SUCCESS;
        if (in->srq_listeners == 0)
                r = tether_timer_arm_periodic(in->srq_timer, interrupt ? TMC_SRQ_POLL_MS : TMC_STB_POLL_MS);
        if (r != TETHER_SUCCESS)
                return r;
        c->srq_on = true;
        c->srq_ref = *async_ref;
        c->srq_n = c->srq_head = 0;
        c->srq_seq = c->srq_lost = 0;
        in->srq_listeners++;
        return TETHER_SUCCESS;
}

tether_ret_t tmc_srq_disable(tmc_client *c)
{
        if (!c->srq_on)
                return TETHER_SUCCESS;
        uint64_t args[TMC_SRQ_ARGS] = { [TMC_SRQ_ARG_SEQ] = c->srq_seq, [TMC_SRQ_ARG_LOST] = c->srq_lost };
        tether_async_send(&c->srq_ref, TETHER_ERR_ABORTED, args, TMC_SRQ_ARGS, TETHER_ASYNC_LAST);
        srq_off(c);
        return TETHER_SUCCESS;
}

void tmc_srq_forget(tmc_client *c)
{
        srq_off(c);
}
