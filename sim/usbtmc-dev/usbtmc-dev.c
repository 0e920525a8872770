/* SPDX-License-Identifier: MIT */
#include "usbtmc-dev.h"

#include "bytes.h"
#include "core/clock.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SHORT_PIECE 64u
/* A program message longer than this is refused (the bulk-OUT endpoint
 * halts), as a real instrument's input buffer is finite: a host cannot
 * make the simulator hold more. */
#define MAX_MESSAGE (1u << 20)
#define NOTES 8u
#define STB_RQS 0x40u
/* How often an instrument's status is looked at again while an
 * interrupt-IN transfer waits on it: it may change with time alone. */
#define STATUS_SCAN_MS 10u

struct sim_usbtmc {
        sim_usbtmc_profile p;
        sim_instrument ops;
        void *inst;
        bytes in;                 /* a message arriving over bulk-OUT, until EOM */
        bool pending;             /* a REQUEST_DEV_DEP_MSG_IN waits for an answer */
        uint8_t pending_btag;
        uint32_t pending_size;
        bool pending_term;        /* ... to end on pending_char (TermChar) */
        uint8_t pending_char;
        bool unterminated;        /* ... and -420 was reported for it */
        /* A short packet (zero-length) waits on bulk-IN: the end of a
         * transfer an abort or clear cut off (USBTMC 1.0 4.2.1.4, 4.2.1.6). */
        bool zlp;
        uint8_t *flight;          /* a DEV_DEP_MSG_IN transfer partly delivered */
        size_t flight_len, flight_pos;
        uint8_t flight_btag;
        bool in_halted, out_halted;
        bool delay_next, wrong_btag_next, short_packets, unplugged;
        /* Interrupt-IN notifications waiting, 2 bytes each. */
        uint8_t notes[NOTES][2];
        unsigned n_notes;
        /* Service requests (SR1): MSS as last seen, and RQS, set when MSS
         * rises and cleared once the notification is queued. */
        bool mss_was, rqs;
        /* RL1 */
        bool ren;
        sim_remote_state rl;
        unsigned pulses;
};

static bool profile_ok(const sim_usbtmc_profile *p, const sim_instrument *o)
{
        bool has_int = p->ep_interrupt != 0;
        if (!o->execute || !o->output_pending || !o->output_take || !o->query_unterminated || !o->device_clear ||
            !o->status_byte)
                return false;
        if (p->protocol > 1 || (p->ep_out & 0x80) || !(p->ep_in & 0x80) || (has_int && !(p->ep_interrupt & 0x80)) ||
            !p->max_packet)
                return false;
        if ((p->device_caps & SIM_CAP_TERM_CHAR) && !o->output_peek)
                return false;
        if (p->protocol != 1)
                return !p->usb488_interface_caps && !p->usb488_device_caps && !p->bcd_usb488;
        uint8_t ic = p->usb488_interface_caps, dc = p->usb488_device_caps;
        if (((ic & SIM_CAP_488_2) || (dc & SIM_CAP_SR1)) && !has_int)
                return false; /* USB488 3.4: both need an interrupt-IN endpoint */
        if ((ic & SIM_CAP_488_2) && !(dc & SIM_CAP_SR1))
                return false;
        if ((dc & SIM_CAP_DT1) && !(ic & SIM_CAP_TRIGGER))
                return false;
        if ((dc & SIM_CAP_RL1) && !(ic & SIM_CAP_REN_GTL_LLO))
                return false;
        if ((dc & SIM_CAP_SCPI) && !((dc & SIM_CAP_SR1) && (ic & SIM_CAP_488_2)))
                return false;
        if ((ic & SIM_CAP_TRIGGER) && !o->trigger)
                return false;
        return true;
}

tether_ret_t sim_usbtmc_create(const sim_usbtmc_profile *profile, const sim_instrument *ops, void *inst,
                               sim_usbtmc **ret)
{
        if (!profile || !ops || !ret || !profile_ok(profile, ops))
                return TETHER_ERR_BAD_ARGUMENT;
        sim_usbtmc *d = calloc(1, sizeof(*d));
        if (!d)
                return TETHER_ERR_NO_MEMORY;
        d->p = *profile;
        d->ops = *ops;
        d->inst = inst;
        *ret = d;
        return TETHER_SUCCESS;
}

void sim_usbtmc_free(sim_usbtmc *d)
{
        if (!d)
                return;
        free(d->in.p);
        free(d->flight);
        free(d);
}

const sim_usbtmc_profile *sim_usbtmc_profile_of(const sim_usbtmc *d)
{
        return &d->p;
}

void sim_usbtmc_inject(sim_usbtmc *d, sim_fault fault)
{
        switch (fault) {
        case SIM_FAULT_DELAY: d->delay_next = true; break;
        case SIM_FAULT_STALL: d->in_halted = true; break;
        case SIM_FAULT_SHORT_PACKETS: d->short_packets = true; break;
        case SIM_FAULT_WRONG_BTAG: d->wrong_btag_next = true; break;
        case SIM_FAULT_UNPLUG: d->unplugged = true; break;
        case SIM_FAULT_NONE: break;
        }
}

void sim_usbtmc_reset_faults(sim_usbtmc *d)
{
        d->short_packets = false;
        d->unplugged = false;
}

sim_remote_state sim_usbtmc_remote_state(const sim_usbtmc *d) { return d->rl; }
bool sim_usbtmc_ren(const sim_usbtmc *d) { return d->ren; }
unsigned sim_usbtmc_indicator_pulses(const sim_usbtmc *d) { return d->pulses; }
bool sim_usbtmc_out_halted(const sim_usbtmc *d) { return d->out_halted; }

static bool sr1(const sim_usbtmc *d)
{
        return d->p.ep_interrupt && (d->p.usb488_device_caps & SIM_CAP_SR1);
}

static bool rl1(const sim_usbtmc *d)
{
        return d->p.protocol == 1 && (d->p.usb488_device_caps & SIM_CAP_RL1);
}

static void note(sim_usbtmc *d, uint8_t b1, uint8_t b2)
{
        d->notes[d->n_notes][0] = b1;
        d->notes[d->n_notes][1] = b2;
        d->n_notes++;
}

/* IEEE 488.2 11.3.2: a service request is a new reason for service, MSS
 * going true; USB488 3.4.1: it goes out as a notification, and queueing
 * it clears RQS as a serial poll would. One that finds the interrupt FIFO
 * full stays pending (RQS set) until there is room. */
static void check_srq(sim_usbtmc *d)
{
        if (!sr1(d) || d->unplugged)
                return;
        uint8_t stb = d->ops.status_byte(d->inst);
        bool mss = stb & STB_RQS;
        if (mss && !d->mss_was)
                d->rqs = true;
        d->mss_was = mss;
        if (d->rqs && d->n_notes < NOTES) {
                note(d, 0x81, (uint8_t)(stb | STB_RQS));
                d->rqs = false;
        }
}

void sim_usbtmc_poll(sim_usbtmc *d)
{
        check_srq(d);
}

void sim_usbtmc_notify_srq(sim_usbtmc *d)
{
        if (d->p.ep_interrupt && d->n_notes < NOTES)
                note(d, 0x81, (uint8_t)(d->ops.status_byte(d->inst) | STB_RQS));
}

/* The status byte as a serial poll reads it: bit 6 is RQS, not MSS. */
static uint8_t polled_stb(sim_usbtmc *d)
{
        uint8_t stb = (uint8_t)(d->ops.status_byte(d->inst) & ~STB_RQS);
        if (d->rqs)
                stb |= STB_RQS;
        d->rqs = false;
        return stb;
}

/* USB488 Figure 2: what a message, TRIGGER or clear does with REN. */
static void bus_activity(sim_usbtmc *d)
{
        if (!rl1(d) || !d->ren)
                return;
        if (d->rl == SIM_LOCS)
                d->rl = SIM_REMS;
        else if (d->rl == SIM_LWLS)
                d->rl = SIM_RWLS;
}

static void drop_flight(sim_usbtmc *d)
{
        free(d->flight);
        d->flight = NULL;
        d->flight_len = d->flight_pos = 0;
}

/* An abort or clear cuts the bulk-IN transfer off: the request and what
 * was left of its answer go, and a short packet ends the transfer for a
 * host still reading it (the late answer of a delayed one goes too). */
static void end_in_transfer(sim_usbtmc *d)
{
        d->pending = false;
        drop_flight(d);
        d->zlp = true;
        d->delay_next = false;
}

/* USBTMC Table 7: a transfer the device cannot take halts bulk-OUT, and
 * what was arriving is dropped; CLEAR_FEATURE(ENDPOINT_HALT) ends it. */
static tether_ret_t halt_out(sim_usbtmc *d)
{
        d->out_halted = true;
        d->in.len = 0;
        return TETHER_ERR_IO;
}

static tether_ret_t dev_bulk_out(void *ctx, const uint8_t *data, size_t len, unsigned timeout_ms)
{
        sim_usbtmc *d = ctx;
        if (d->unplugged)
                return TETHER_ERR_NO_DEVICE;
        if (d->out_halted)
                return TETHER_ERR_IO;
        usbtmc_header h;
        if (usbtmc_header_decode(data, len, &h) != TETHER_SUCCESS)
                return halt_out(d);
        tether_ret_t r = TETHER_SUCCESS;
        switch (h.msg_id) {
        case USBTMC_DEV_DEP_MSG_OUT:
                if (h.transfer_size == 0 || USBTMC_HEADER_SIZE + (size_t)h.transfer_size > len ||
                    d->in.len + h.transfer_size > MAX_MESSAGE)
                        return halt_out(d);
                if (!bytes_append(&d->in, data + USBTMC_HEADER_SIZE, h.transfer_size))
                        return TETHER_ERR_NO_MEMORY;
                bus_activity(d);
                if (h.attributes & USBTMC_ATTR_EOM) {
                        d->ops.execute(d->inst, (const char *)d->in.p, d->in.len);
                        d->in.len = 0;
                }
                break;
        case USBTMC_REQUEST_DEV_DEP_MSG_IN:
                if (h.transfer_size == 0)
                        return halt_out(d);
                d->pending = true;
                d->unterminated = false;
                d->pending_btag = h.btag;
                d->pending_size = h.transfer_size;
                /* A device without TermChar ignores the request for it. */
                d->pending_term = (d->p.device_caps & SIM_CAP_TERM_CHAR) && (h.attributes & USBTMC_ATTR_TERM_CHAR);
                d->pending_char = h.term_char;
                break;
        case USB488_TRIGGER:
                /* USB488 Table 8, D0: without TRIGGER the MsgID is unknown. */
                if (d->p.protocol != 1 || !(d->p.usb488_interface_caps & SIM_CAP_TRIGGER))
                        return halt_out(d);
                bus_activity(d);
                d->ops.trigger(d->inst);
                break;
        default:
                return halt_out(d);
        }
        check_srq(d);
        return r;
}

/* Make the DEV_DEP_MSG_IN transfer answering the pending request: as much
 * as was asked for, or up to and including TermChar if that came first. */
static tether_ret_t build_flight(sim_usbtmc *d)
{
        size_t avail = d->ops.output_pending(d->inst);
        size_t n = avail < d->pending_size ? avail : d->pending_size;
        size_t total = USBTMC_HEADER_SIZE + usbtmc_padded(n);
        d->flight = calloc(1, total);
        if (!d->flight)
                return TETHER_ERR_NO_MEMORY;
        uint8_t *payload = d->flight + USBTMC_HEADER_SIZE;
        bool on_term = false;
        if (d->pending_term) {
                size_t seen = d->ops.output_peek(d->inst, payload, n);
                const uint8_t *hit = memchr(payload, d->pending_char, seen);
                if (hit) {
                        n = (size_t)(hit - payload) + 1;
                        on_term = true;
                }
                memset(payload, 0, total - USBTMC_HEADER_SIZE);
                total = USBTMC_HEADER_SIZE + usbtmc_padded(n);
        }
        n = d->ops.output_take(d->inst, payload, n);
        uint8_t tag = d->pending_btag;
        if (d->wrong_btag_next) {
                tag = usbtmc_next_btag(tag);
                d->wrong_btag_next = false;
        }
        uint8_t attr = d->ops.output_pending(d->inst) ? 0 : USBTMC_ATTR_EOM;
        if (on_term)
                attr |= USBTMC_ATTR_TERM_CHAR;
        usbtmc_header h = { .msg_id = USBTMC_DEV_DEP_MSG_IN, .btag = tag, .transfer_size = (uint32_t)n,
                            .attributes = attr };
        usbtmc_header_encode(&h, d->flight);
        d->flight_len = total;
        d->flight_pos = 0;
        d->flight_btag = d->pending_btag;
        d->pending = false;
        return TETHER_SUCCESS;
}

tether_ret_t sim_usbtmc_bulk_in_try(sim_usbtmc *d, uint8_t *data, size_t cap, size_t *ret_len, uint32_t *ret_wake_ms)
{
        *ret_len = 0;
        *ret_wake_ms = SIM_WAKE_NEVER;
        if (d->unplugged)
                return TETHER_ERR_NO_DEVICE;
        if (d->in_halted)
                return TETHER_ERR_IO; /* STALL */
        if (d->zlp) {
                d->zlp = false;
                return TETHER_SUCCESS;
        }
        if (!d->flight) {
                /* Nothing asked for: nothing comes, the device NAKs until
                 * the host gives up. */
                if (!d->pending)
                        return TETHER_ERR_NOT_READY;
                /* The answer is late: it misses this transfer, and stays
                 * queued for a recovery to flush. */
                if (d->delay_next)
                        return TETHER_ERR_NOT_READY;
                /* The instrument is still busy (a sweep, a measurement): a
                 * real device holds bulk-IN until its answer exists. */
                unsigned wait = d->ops.output_ready_in_ms ? d->ops.output_ready_in_ms(d->inst) : 0;
                if (wait) {
                        *ret_wake_ms = wait;
                        return TETHER_ERR_NOT_READY;
                }
                /* Asked to talk with nothing to say: IEEE 488.2's Query
                 * UNTERMINATED, once; the request stands until the host
                 * aborts it or clears the device. */
                if (!d->ops.output_pending(d->inst)) {
                        if (!d->unterminated) {
                                d->unterminated = true;
                                d->ops.query_unterminated(d->inst);
                                check_srq(d);
                        }
                        return TETHER_ERR_NOT_READY;
                }
                tether_ret_t r = build_flight(d);
                if (r != TETHER_SUCCESS)
                        return r;
        }
        size_t left = d->flight_len - d->flight_pos;
        size_t n = left < cap ? left : cap;
        if (d->short_packets && n > SHORT_PIECE)
                n = SHORT_PIECE;
        memcpy(data, d->flight + d->flight_pos, n);
        d->flight_pos += n;
        *ret_len = n;
        if (d->flight_pos == d->flight_len)
                drop_flight(d);
        check_srq(d);
        return TETHER_SUCCESS;
}

void sim_usbtmc_bulk_in_expired(sim_usbtmc *d)
{
        /* The late answer has missed its transfer; the next one is on time. */
        d->delay_next = false;
}

static void nap_ms(uint64_t ms)
{
        struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

typedef tether_ret_t (*in_try_fn)(sim_usbtmc *d, uint8_t *data, size_t cap, size_t *ret_len, uint32_t *ret_wake_ms);

/* A synchronous transfer on an IN endpoint: ask, and while the device
 * NAKs, sleep until it may have something or the timeout runs out. */
static tether_ret_t wait_in(sim_usbtmc *d, in_try_fn try_in, uint8_t *data, size_t cap, size_t *ret_len,
                            unsigned timeout_ms)
{
        uint64_t deadline = clock_mono_ms() + timeout_ms;
        for (;;) {
                uint32_t wake = SIM_WAKE_NEVER;
                tether_ret_t r = try_in(d, data, cap, ret_len, &wake);
                if (r != TETHER_ERR_NOT_READY)
                        return r;
                uint64_t now = clock_mono_ms();
                if (now >= deadline)
                        return TETHER_ERR_TIMEOUT;
                nap_ms(wake < deadline - now ? wake : deadline - now);
        }
}

static tether_ret_t dev_bulk_in(void *ctx, uint8_t *data, size_t cap, size_t *ret_len, unsigned timeout_ms)
{
        tether_ret_t r = wait_in(ctx, sim_usbtmc_bulk_in_try, data, cap, ret_len, timeout_ms);
        if (r == TETHER_ERR_TIMEOUT)
                sim_usbtmc_bulk_in_expired(ctx);
        return r;
}

/* A class request the capabilities deny: a Request Error (STALL). */
#define STALL TETHER_ERR_IO

static tether_ret_t dev_control_in(void *ctx, uint8_t type, uint8_t request, uint16_t value, uint16_t index,
                                   uint8_t *data, uint16_t len, size_t *ret_len, unsigned timeout_ms)
{
        sim_usbtmc *d = ctx;
        uint8_t b[0x18] = { 0 };
        size_t n = 0;
        bool usb488 = d->p.protocol == 1;
        if (d->unplugged)
                return TETHER_ERR_NO_DEVICE;
        switch (request) {
        case USBTMC_INITIATE_ABORT_BULK_IN: {
                bool busy = d->pending || d->flight;
                uint8_t tag = d->flight ? d->flight_btag : d->pending_btag;
                b[0] = !busy ? USBTMC_STATUS_TRANSFER_NOT_IN_PROGRESS
                             : tag == (uint8_t)value ? USBTMC_STATUS_SUCCESS : USBTMC_STATUS_FAILED;
                b[1] = tag;
                if (b[0] == USBTMC_STATUS_SUCCESS)
                        end_in_transfer(d);
                n = 2;
                break;
        }
        case USBTMC_CHECK_ABORT_BULK_IN_STATUS:
                /* Done once the host has read the short packet;
                 * bmAbortBulkIn D0 says it is still there to read. */
                b[0] = d->zlp ? USBTMC_STATUS_PENDING : USBTMC_STATUS_SUCCESS;
                b[1] = d->zlp ? 1 : 0;
                n = 8;
                break;
        case USBTMC_INITIATE_ABORT_BULK_OUT:
                b[0] = d->in.len ? USBTMC_STATUS_SUCCESS : USBTMC_STATUS_TRANSFER_NOT_IN_PROGRESS;
                b[1] = (uint8_t)value;
                d->in.len = 0;
                n = 2;
                break;
        case USBTMC_CHECK_ABORT_BULK_OUT_STATUS:
                b[0] = USBTMC_STATUS_SUCCESS;
                n = 8;
                break;
        case USBTMC_INITIATE_CLEAR:
                d->in.len = 0;
                if (d->pending || d->flight)
                        end_in_transfer(d);
                d->delay_next = false;
                d->ops.device_clear(d->inst);
                bus_activity(d);
                b[0] = USBTMC_STATUS_SUCCESS;
                n = 1;
                break;
        case USBTMC_CHECK_CLEAR_STATUS:
                /* bmClear D0: a short packet still waits on bulk-IN. */
                b[0] = d->zlp ? USBTMC_STATUS_PENDING : USBTMC_STATUS_SUCCESS;
                b[1] = d->zlp ? 1 : 0;
                n = 2;
                break;
        case USBTMC_GET_CAPABILITIES:
                b[0] = USBTMC_STATUS_SUCCESS;
                b[2] = (uint8_t)d->p.bcd_usbtmc;
                b[3] = (uint8_t)(d->p.bcd_usbtmc >> 8);
                b[4] = d->p.interface_caps;
                b[5] = d->p.device_caps;
                if (usb488) {
                        b[12] = (uint8_t)d->p.bcd_usb488;
                        b[13] = (uint8_t)(d->p.bcd_usb488 >> 8);
                        b[14] = d->p.usb488_interface_caps;
                        b[15] = d->p.usb488_device_caps;
                }
                n = 0x18;
                break;
        case USBTMC_INDICATOR_PULSE:
                if (!(d->p.interface_caps & SIM_CAP_INDICATOR_PULSE))
                        return STALL;
                d->pulses++;
                b[0] = USBTMC_STATUS_SUCCESS;
                n = 1;
                break;
        case USB488_READ_STATUS_BYTE:
                if (!usb488)
                        return STALL;
                n = 3;
                b[1] = (uint8_t)value;
                if (!d->p.ep_interrupt) {
                        /* USB488 4.3.1.1: in the reply, RQS always 0 (with
                         * no interrupt endpoint the device is SR0). */
                        b[0] = USBTMC_STATUS_SUCCESS;
                        b[2] = (uint8_t)(d->ops.status_byte(d->inst) & ~STB_RQS);
                        break;
                }
                /* A request while the interrupt FIFO is full is refused,
                 * as USB488 says; the STB goes out on interrupt-IN. */
                check_srq(d);
                if (d->n_notes == NOTES) {
                        b[0] = USB488_STATUS_INTERRUPT_IN_BUSY;
                        break;
                }
                b[0] = USBTMC_STATUS_SUCCESS;
                b[2] = 0;
                note(d, (uint8_t)(0x80u | (value & 0x7fu)), polled_stb(d));
                break;
        case USB488_REN_CONTROL:
        case USB488_GO_TO_LOCAL:
        case USB488_LOCAL_LOCKOUT:
                if (!usb488 || !(d->p.usb488_interface_caps & SIM_CAP_REN_GTL_LLO))
                        return STALL;
                b[0] = USBTMC_STATUS_SUCCESS;
                n = 1;
                if (request == USB488_REN_CONTROL && (value & 0xff) > 1) {
                        b[0] = USBTMC_STATUS_FAILED;
                        break;
                }
                if (!rl1(d))
                        break;
                if (request == USB488_REN_CONTROL) {
                        d->ren = value & 1;
                        if (!d->ren)
                                d->rl = SIM_LOCS;
                } else if (request == USB488_GO_TO_LOCAL) {
                        d->rl = d->rl == SIM_RWLS ? SIM_LWLS : d->rl == SIM_REMS ? SIM_LOCS : d->rl;
                } else if (d->rl == SIM_REMS) {
                        d->rl = SIM_RWLS;
                } else if (d->rl == SIM_LOCS && d->ren) {
                        d->rl = SIM_LWLS;
                }
                break;
        default:
                return STALL;
        }
        (void)type;
        (void)index;
        check_srq(d);
        n = n < len ? n : len;
        memcpy(data, b, n);
        *ret_len = n;
        return TETHER_SUCCESS;
}

static tether_ret_t dev_clear_halt(void *ctx, bool out)
{
        sim_usbtmc *d = ctx;
        if (d->unplugged)
                return TETHER_ERR_NO_DEVICE;
        if (out)
                d->out_halted = false;
        else
                d->in_halted = false;
        return TETHER_SUCCESS;
}

tether_ret_t sim_usbtmc_interrupt_in_try(sim_usbtmc *d, uint8_t *data, size_t cap, size_t *ret_len,
                                         uint32_t *ret_wake_ms)
{
        *ret_len = 0;
        *ret_wake_ms = SIM_WAKE_NEVER;
        if (d->unplugged)
                return TETHER_ERR_NO_DEVICE;
        if (!d->p.ep_interrupt)
                return TETHER_ERR_IO; /* no such endpoint */
        /* The instrument may have moved on by itself (time passing). */
        check_srq(d);
        if (!d->n_notes) {
                /* Nothing to notify: NAK, and look again a little later. */
                *ret_wake_ms = sr1(d) ? STATUS_SCAN_MS : SIM_WAKE_NEVER;
                return TETHER_ERR_NOT_READY;
        }
        size_t n = cap < 2 ? cap : 2;
        memcpy(data, d->notes[0], n);
        memmove(d->notes[0], d->notes[1], (d->n_notes - 1) * sizeof(d->notes[0]));
        d->n_notes--;
        *ret_len = n;
        return TETHER_SUCCESS;
}

static tether_ret_t dev_interrupt_in(void *ctx, uint8_t *data, size_t cap, size_t *ret_len, unsigned timeout_ms)
{
        return wait_in(ctx, sim_usbtmc_interrupt_in_try, data, cap, ret_len, timeout_ms);
}

const usbtmc_backend_ops sim_usbtmc_ops = {
        .interrupt_in = dev_interrupt_in,
        .bulk_out = dev_bulk_out,
        .bulk_in = dev_bulk_in,
        .control_in = dev_control_in,
        .clear_halt = dev_clear_halt,
};
