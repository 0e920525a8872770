/* SPDX-License-Identifier: MIT */
#include "usbtmc-device.h"

#include "bytes.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SHORT_PIECE 64u

struct sim_usbtmc {
        sim_scope *scope;
        bytes in;                 /* a message arriving over bulk-OUT, until EOM */
        bool pending;             /* a REQUEST_DEV_DEP_MSG_IN waits for an answer */
        uint8_t pending_btag;
        uint32_t pending_size;
        uint8_t *flight;          /* a DEV_DEP_MSG_IN transfer partly delivered */
        size_t flight_len, flight_pos;
        uint8_t flight_btag;
        bool in_halted;
        bool delay_next, wrong_btag_next, short_packets, unplugged;
        /* Interrupt-IN notifications waiting, 2 bytes each (the DSO-X 2002A
         * has an interrupt endpoint, so READ_STATUS_BYTE answers there). */
        uint8_t notes[8][2];
        unsigned n_notes;
};

int sim_usbtmc_new(sim_scope *scope, sim_usbtmc **ret)
{
        sim_usbtmc *d = calloc(1, sizeof(*d));
        if (!d)
                return -1;
        d->scope = scope;
        *ret = d;
        return 0;
}

void sim_usbtmc_free(sim_usbtmc *d)
{
        if (!d)
                return;
        free(d->in.p);
        free(d->flight);
        free(d);
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

static void drop_flight(sim_usbtmc *d)
{
        free(d->flight);
        d->flight = NULL;
        d->flight_len = d->flight_pos = 0;
}

static tether_ret_t dev_bulk_out(void *ctx, const uint8_t *data, size_t len, unsigned timeout_ms)
{
        sim_usbtmc *d = ctx;
        if (d->unplugged)
                return TETHER_ERR_NO_DEVICE;
        usbtmc_header h;
        if (usbtmc_header_decode(data, len, &h) != TETHER_SUCCESS)
                return TETHER_ERR_IO; /* the device stalls a transfer it cannot parse */
        switch (h.msg_id) {
        case USBTMC_DEV_DEP_MSG_OUT:
                if (h.transfer_size == 0 || USBTMC_HEADER_SIZE + (size_t)h.transfer_size > len)
                        return TETHER_ERR_IO;
                if (!bytes_append(&d->in, data + USBTMC_HEADER_SIZE, h.transfer_size))
                        return TETHER_ERR_NO_MEMORY;
                if (h.attributes & USBTMC_ATTR_EOM) {
                        sim_scope_execute(d->scope, (const char *)d->in.p, d->in.len);
                        d->in.len = 0;
                }
                return TETHER_SUCCESS;
        case USBTMC_REQUEST_DEV_DEP_MSG_IN:
                if (h.transfer_size == 0)
                        return TETHER_ERR_IO;
                d->pending = true;
                d->pending_btag = h.btag;
                d->pending_size = h.transfer_size;
                return TETHER_SUCCESS;
        case USB488_TRIGGER:
                return TETHER_SUCCESS;
        default:
                return TETHER_ERR_IO;
        }
}

/* Make the DEV_DEP_MSG_IN transfer answering the pending request. */
static tether_ret_t build_flight(sim_usbtmc *d)
{
        size_t avail = sim_scope_output_pending(d->scope);
        size_t n = avail < d->pending_size ? avail : d->pending_size;
        size_t total = USBTMC_HEADER_SIZE + usbtmc_padded(n);
        d->flight = calloc(1, total);
        if (!d->flight)
                return TETHER_ERR_NO_MEMORY;
        sim_scope_output_take(d->scope, d->flight + USBTMC_HEADER_SIZE, n);
        uint8_t tag = d->pending_btag;
        if (d->wrong_btag_next) {
                tag = usbtmc_next_btag(tag);
                d->wrong_btag_next = false;
        }
        usbtmc_header h = { .msg_id = USBTMC_DEV_DEP_MSG_IN, .btag = tag, .transfer_size = (uint32_t)n,
                            .attributes = sim_scope_output_pending(d->scope) ? 0 : USBTMC_ATTR_EOM };
        usbtmc_header_encode(&h, d->flight);
        d->flight_len = total;
        d->flight_pos = 0;
        d->flight_btag = d->pending_btag;
        d->pending = false;
        return TETHER_SUCCESS;
}

static tether_ret_t dev_bulk_in(void *ctx, uint8_t *data, size_t cap, size_t *ret_len, unsigned timeout_ms)
{
        sim_usbtmc *d = ctx;
        *ret_len = 0;
        if (d->unplugged)
                return TETHER_ERR_NO_DEVICE;
        if (d->in_halted)
                return TETHER_ERR_IO; /* STALL */
        if (!d->flight) {
                if (!d->pending)
                        return TETHER_ERR_TIMEOUT; /* nothing asked for: nothing comes */
                if (d->delay_next) {
                        /* The answer is late: the host's timeout fires first,
                         * and the answer stays queued for a recovery to flush. */
                        d->delay_next = false;
                        return TETHER_ERR_TIMEOUT;
                }
                /* An acquisition is still sweeping: a real device holds
                 * bulk-IN until its answer exists, or the host gives up. */
                unsigned wait = sim_scope_output_ready_in_ms(d->scope);
                if (wait) {
                        unsigned nap = wait <= timeout_ms ? wait : timeout_ms;
                        struct timespec ts = { .tv_sec = nap / 1000, .tv_nsec = (long)(nap % 1000) * 1000000L };
                        nanosleep(&ts, NULL);
                        if (wait > timeout_ms)
                                return TETHER_ERR_TIMEOUT;
                }
                if (!sim_scope_output_pending(d->scope)) {
                        d->pending = false;
                        sim_scope_query_unterminated(d->scope);
                        return TETHER_ERR_TIMEOUT;
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
        return TETHER_SUCCESS;
}

static tether_ret_t dev_control_in(void *ctx, uint8_t type, uint8_t request, uint16_t value, uint16_t index,
                                   uint8_t *data, uint16_t len, size_t *ret_len, unsigned timeout_ms)
{
        sim_usbtmc *d = ctx;
        uint8_t b[0x18] = { 0 };
        size_t n = 0;
        if (d->unplugged)
                return TETHER_ERR_NO_DEVICE;
        switch (request) {
        case USBTMC_INITIATE_ABORT_BULK_IN: {
                bool busy = d->pending || d->flight;
                uint8_t tag = d->flight ? d->flight_btag : d->pending_btag;
                b[0] = !busy ? USBTMC_STATUS_TRANSFER_NOT_IN_PROGRESS
                             : tag == (uint8_t)value ? USBTMC_STATUS_SUCCESS : USBTMC_STATUS_FAILED;
                b[1] = tag;
                if (b[0] == USBTMC_STATUS_SUCCESS) {
                        d->pending = false;
                        drop_flight(d);
                }
                n = 2;
                break;
        }
        case USBTMC_CHECK_ABORT_BULK_IN_STATUS:
                b[0] = USBTMC_STATUS_SUCCESS;
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
                d->pending = false;
                drop_flight(d);
                sim_scope_device_clear(d->scope);
                b[0] = USBTMC_STATUS_SUCCESS;
                n = 1;
                break;
        case USBTMC_CHECK_CLEAR_STATUS:
                b[0] = USBTMC_STATUS_SUCCESS;
                n = 2;
                break;
        case USBTMC_GET_CAPABILITIES:
                b[0] = USBTMC_STATUS_SUCCESS;
                b[2] = 0x00; /* bcdUSBTMC 1.00 */
                b[3] = 0x01;
                b[12] = 0x00; /* bcdUSB488 1.00 */
                b[13] = 0x01;
                b[14] = 0x07; /* 488.2, REN/GTL/LLO, TRIGGER */
                b[15] = 0x0f; /* SCPI, SR1, RL1, DT1 */
                n = 0x18;
                break;
        case USB488_READ_STATUS_BYTE:
                /* A second request while the first's answer still waits
                 * on the interrupt pipe is refused, as USB488 says. */
                if (d->n_notes == sizeof(d->notes) / sizeof(d->notes[0])) {
                        b[0] = USB488_STATUS_INTERRUPT_IN_BUSY;
                        n = 3;
                        break;
                }
                b[0] = USBTMC_STATUS_SUCCESS;
                b[1] = (uint8_t)value;
                b[2] = 0; /* reserved: the STB goes out on interrupt-IN */
                d->notes[d->n_notes][0] = (uint8_t)(0x80u | (value & 0x7fu));
                d->notes[d->n_notes][1] = sim_scope_status_byte(d->scope);
                d->n_notes++;
                n = 3;
                break;
        case USBTMC_INDICATOR_PULSE:
        case USB488_REN_CONTROL:
        case USB488_GO_TO_LOCAL:
        case USB488_LOCAL_LOCKOUT:
                b[0] = USBTMC_STATUS_SUCCESS;
                n = 1;
                break;
        default:
                return TETHER_ERR_IO; /* STALL on the control pipe */
        }
        (void)type;
        (void)index;
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
        if (!out)
                d->in_halted = false;
        return TETHER_SUCCESS;
}

static tether_ret_t dev_interrupt_in(void *ctx, uint8_t *data, size_t cap, size_t *ret_len, unsigned timeout_ms)
{
        sim_usbtmc *d = ctx;
        if (d->unplugged)
                return TETHER_ERR_NO_DEVICE;
        if (!d->n_notes)
                return TETHER_ERR_TIMEOUT; /* nothing to notify: the host waits its timeout */
        size_t n = cap < 2 ? cap : 2;
        memcpy(data, d->notes[0], n);
        memmove(d->notes[0], d->notes[1], (d->n_notes - 1) * sizeof(d->notes[0]));
        d->n_notes--;
        *ret_len = n;
        return TETHER_SUCCESS;
}

void sim_usbtmc_notify_srq(sim_usbtmc *d)
{
        if (d->n_notes < sizeof(d->notes) / sizeof(d->notes[0])) {
                d->notes[d->n_notes][0] = 0x81;
                d->notes[d->n_notes][1] = sim_scope_status_byte(d->scope);
                d->n_notes++;
        }
}

const usbtmc_backend_ops sim_usbtmc_ops = {
        .interrupt_in = dev_interrupt_in,
        .bulk_out = dev_bulk_out,
        .bulk_in = dev_bulk_in,
        .control_in = dev_control_in,
        .clear_halt = dev_clear_halt,
};
