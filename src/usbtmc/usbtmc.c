/* SPDX-License-Identifier: MIT */
#include "usbtmc/usbtmc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Recovery polls a bounded number of times, a short sleep apart, as Linux's
 * usbtmc driver does: a device that never finishes is given up on. */
#define POLL_TRIES  100
#define POLL_SLEEP_MS 10
#define DRAIN_TRIES 256

static void le32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
        p[2] = (uint8_t)(v >> 16);
        p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void sleep_ms(unsigned ms)
{
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

void usbtmc_header_encode(const usbtmc_header *h, uint8_t out[USBTMC_HEADER_SIZE])
{
        out[0] = h->msg_id;
        out[1] = h->btag;
        out[2] = (uint8_t)~h->btag;
        out[3] = 0;
        le32(out + 4, h->transfer_size);
        out[8] = h->attributes;
        out[9] = h->term_char;
        out[10] = 0;
        out[11] = 0;
}

tether_ret_t usbtmc_header_decode(const uint8_t *in, size_t len, usbtmc_header *ret)
{
        if (!in || !ret || len < USBTMC_HEADER_SIZE)
                return TETHER_ERR_UNDERRUN;
        if (in[1] == 0 || (uint8_t)(in[1] ^ in[2]) != 0xff || in[3] != 0 || in[10] != 0 || in[11] != 0)
                return TETHER_ERR_IO;
        ret->msg_id = in[0];
        ret->btag = in[1];
        ret->transfer_size = get_le32(in + 4);
        ret->attributes = in[8];
        ret->term_char = in[9];
        return TETHER_SUCCESS;
}

size_t usbtmc_padded(size_t bytes)
{
        return (bytes + 3u) & ~(size_t)3u;
}

uint8_t usbtmc_next_btag(uint8_t btag)
{
        return btag == 255 ? 1 : (uint8_t)(btag + 1);
}

static _Atomic(usbtmc_observer) observer;

void usbtmc_set_observer(usbtmc_observer fn)
{
        atomic_store(&observer, fn);
}

static uint64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The backend calls, each reported to the observer when there is one. */
static tether_ret_t do_bulk_out(usbtmc *t, const uint8_t *data, size_t len, unsigned timeout_ms)
{
        usbtmc_observer fn = atomic_load_explicit(&observer, memory_order_relaxed);
        if (!fn)
                return t->ops->bulk_out(t->ctx, data, len, timeout_ms);
        usbtmc_xfer x = { .type = USBTMC_XFER_BULK, .endpoint = t->ep_out, .data = data, .requested = len,
                          .submit_ns = now_ns() };
        x.status = t->ops->bulk_out(t->ctx, data, len, timeout_ms);
        x.done_ns = now_ns();
        x.actual = x.status == TETHER_SUCCESS ? len : 0;
        fn(t, &x);
        return x.status;
}

static tether_ret_t do_bulk_in(usbtmc *t, uint8_t *data, size_t cap, size_t *ret_len, unsigned timeout_ms)
{
        usbtmc_observer fn = atomic_load_explicit(&observer, memory_order_relaxed);
        if (!fn)
                return t->ops->bulk_in(t->ctx, data, cap, ret_len, timeout_ms);
        usbtmc_xfer x = { .type = USBTMC_XFER_BULK, .endpoint = t->ep_in, .data = data, .requested = cap,
                          .submit_ns = now_ns() };
        *ret_len = 0;
        x.status = t->ops->bulk_in(t->ctx, data, cap, ret_len, timeout_ms);
        x.done_ns = now_ns();
        x.actual = *ret_len;
        fn(t, &x);
        return x.status;
}

static tether_ret_t do_interrupt_in(usbtmc *t, uint8_t *data, size_t cap, size_t *ret_len, unsigned timeout_ms)
{
        usbtmc_observer fn = atomic_load_explicit(&observer, memory_order_relaxed);
        if (!fn)
                return t->ops->interrupt_in(t->ctx, data, cap, ret_len, timeout_ms);
        usbtmc_xfer x = { .type = USBTMC_XFER_INTERRUPT, .endpoint = t->ep_interrupt, .data = data,
                          .requested = cap, .submit_ns = now_ns() };
        *ret_len = 0;
        x.status = t->ops->interrupt_in(t->ctx, data, cap, ret_len, timeout_ms);
        x.done_ns = now_ns();
        x.actual = *ret_len;
        fn(t, &x);
        return x.status;
}

static void setup_packet(uint8_t out[8], uint8_t type, uint8_t request, uint16_t value, uint16_t index, uint16_t len)
{
        out[0] = type;
        out[1] = request;
        out[2] = (uint8_t)value;
        out[3] = (uint8_t)(value >> 8);
        out[4] = (uint8_t)index;
        out[5] = (uint8_t)(index >> 8);
        out[6] = (uint8_t)len;
        out[7] = (uint8_t)(len >> 8);
}

static tether_ret_t do_control_in(usbtmc *t, uint8_t type, uint8_t request, uint16_t value, uint16_t index,
                                  uint8_t *data, uint16_t len, size_t *ret_len)
{
        usbtmc_observer fn = atomic_load_explicit(&observer, memory_order_relaxed);
        if (!fn)
                return t->ops->control_in(t->ctx, type, request, value, index, data, len, ret_len, t->timeout_ms);
        usbtmc_xfer x = { .type = USBTMC_XFER_CONTROL, .endpoint = 0x80, .data = data, .requested = len,
                          .submit_ns = now_ns() };
        setup_packet(x.setup, type, request, value, index, len);
        *ret_len = 0;
        x.status = t->ops->control_in(t->ctx, type, request, value, index, data, len, ret_len, t->timeout_ms);
        x.done_ns = now_ns();
        x.actual = *ret_len;
        fn(t, &x);
        return x.status;
}

static tether_ret_t do_clear_halt(usbtmc *t, bool out)
{
        usbtmc_observer fn = atomic_load_explicit(&observer, memory_order_relaxed);
        if (!fn)
                return t->ops->clear_halt(t->ctx, out);
        /* CLEAR_FEATURE(ENDPOINT_HALT): a standard request to the endpoint. */
        usbtmc_xfer x = { .type = USBTMC_XFER_CONTROL, .endpoint = 0x00, .submit_ns = now_ns() };
        setup_packet(x.setup, 0x02, 0x01, 0, out ? t->ep_out : t->ep_in, 0);
        x.status = t->ops->clear_halt(t->ctx, out);
        x.done_ns = now_ns();
        fn(t, &x);
        return x.status;
}

void usbtmc_init(usbtmc *t, const usbtmc_backend_ops *ops, void *ctx)
{
        memset(t, 0, sizeof(*t));
        t->ops = ops;
        t->ctx = ctx;
        t->ep_out = 0x02;
        t->ep_in = 0x81;
        t->max_packet = 512;
        t->max_transfer = 1u << 20;
        t->timeout_ms = 5000;
        t->stb_btag = 1;
}

tether_ret_t usbtmc_write_msg(usbtmc *t, const void *msg, size_t len, bool eom)
{
        if (!t || (!msg && len) || len == 0)
                return TETHER_ERR_BAD_ARGUMENT;
        size_t chunk_max = t->max_transfer;
        uint8_t *buf = malloc(USBTMC_HEADER_SIZE + usbtmc_padded(chunk_max < len ? chunk_max : len));
        if (!buf)
                return TETHER_ERR_NO_MEMORY;
        const uint8_t *p = msg;
        tether_ret_t r = TETHER_SUCCESS;
        while (len && r == TETHER_SUCCESS) {
                size_t n = len < chunk_max ? len : chunk_max;
                t->btag = usbtmc_next_btag(t->btag);
                usbtmc_header h = { .msg_id = USBTMC_DEV_DEP_MSG_OUT, .btag = t->btag, .transfer_size = (uint32_t)n,
                                    .attributes = n == len && eom ? USBTMC_ATTR_EOM : 0 };
                usbtmc_header_encode(&h, buf);
                memcpy(buf + USBTMC_HEADER_SIZE, p, n);
                size_t total = USBTMC_HEADER_SIZE + usbtmc_padded(n);
                memset(buf + USBTMC_HEADER_SIZE + n, 0, total - USBTMC_HEADER_SIZE - n);
                r = do_bulk_out(t, buf, total, t->timeout_ms);
                p += n;
                len -= n;
        }
        free(buf);
        if (r == TETHER_ERR_TIMEOUT || r == TETHER_ERR_IO)
                usbtmc_abort_bulk_out(t); /* best effort; the caller hears the first error */
        return r;
}

tether_ret_t usbtmc_write(usbtmc *t, const void *msg, size_t len)
{
        return usbtmc_write_msg(t, msg, len, true);
}

/* Read and drop bulk-IN data until a short packet: what a device still had
 * queued for an aborted or unwanted transfer. */
static void drain_in(usbtmc *t)
{
        uint8_t *junk = malloc(t->max_packet);
        if (!junk)
                return;
        for (int i = 0; i < DRAIN_TRIES; i++) {
                size_t n = 0;
                if (do_bulk_in(t, junk, t->max_packet, &n, 50) != TETHER_SUCCESS || n < t->max_packet)
                        break;
        }
        free(junk);
}

tether_ret_t usbtmc_request_in(usbtmc *t, size_t want)
{
        if (!t || want == 0 || want > t->max_transfer || want > UINT32_MAX)
                return TETHER_ERR_BAD_ARGUMENT;
        uint8_t req[USBTMC_HEADER_SIZE];
        t->btag = usbtmc_next_btag(t->btag);
        t->last_in_btag = t->btag;
        t->in_want = want;
        usbtmc_header h = { .msg_id = USBTMC_REQUEST_DEV_DEP_MSG_IN, .btag = t->btag, .transfer_size = (uint32_t)want };
        if (t->term_char_enabled) {
                h.attributes = USBTMC_ATTR_TERM_CHAR;
                h.term_char = t->term_char;
        }
        usbtmc_header_encode(&h, req);
        return do_bulk_out(t, req, sizeof(req), t->timeout_ms);
}

tether_ret_t usbtmc_receive_in(usbtmc *t, uint8_t *dst, unsigned wait_ms, size_t *ret_n, uint8_t *ret_attributes)
{
        if (!t || !ret_n || !ret_attributes || t->in_want == 0)
                return TETHER_ERR_BAD_ARGUMENT;
        size_t want = t->in_want;
        size_t cap = USBTMC_HEADER_SIZE + usbtmc_padded(want);
        uint8_t *in = malloc(cap);
        if (!in)
                return TETHER_ERR_NO_MEMORY;
        size_t got = 0;
        tether_ret_t r = do_bulk_in(t, in, cap, &got, wait_ms ? wait_ms : 1);
        /* A transfer that began as the wait ran out came in part: the
         * rest follows below. Nothing at all: the device is still busy,
         * and the request stands. */
        if (r == TETHER_ERR_TIMEOUT && got > 0)
                r = TETHER_SUCCESS;
        while (r == TETHER_SUCCESS && got < USBTMC_HEADER_SIZE) {
                size_t more = 0;
                r = do_bulk_in(t, in + got, cap - got, &more, t->timeout_ms);
                if (r == TETHER_SUCCESS && more == 0)
                        r = TETHER_ERR_UNDERRUN;
                got += more;
        }
        usbtmc_header rh;
        if (r == TETHER_SUCCESS)
                r = usbtmc_header_decode(in, got, &rh);
        if (r == TETHER_SUCCESS &&
            (rh.msg_id != USBTMC_DEV_DEP_MSG_IN || rh.btag != t->last_in_btag || rh.transfer_size > want))
                r = TETHER_ERR_IO; /* out of step with the device */
        /* Some devices end a transfer early with a short packet: keep
         * reading until the bytes the header announced are here. */
        while (r == TETHER_SUCCESS && got < USBTMC_HEADER_SIZE + rh.transfer_size) {
                size_t more = 0;
                r = do_bulk_in(t, in + got, cap - got, &more, t->timeout_ms);
                if (r == TETHER_SUCCESS && more == 0)
                        r = TETHER_ERR_UNDERRUN;
                got += more;
        }
        /* Bytes came, then the rest did not: that transfer is spent, and
         * TETHER_ERR_TIMEOUT must keep meaning "nothing consumed". */
        if (r == TETHER_ERR_TIMEOUT && got > 0)
                r = TETHER_ERR_IO;
        if (r == TETHER_SUCCESS) {
                if (dst)
                        memcpy(dst, in + USBTMC_HEADER_SIZE, rh.transfer_size);
                *ret_n = rh.transfer_size;
                *ret_attributes = rh.attributes;
                t->in_want = 0; /* answered */
        }
        free(in);
        return r;
}

/* One REQUEST_DEV_DEP_MSG_IN round: up to want bytes into dst (NULL to
 * drop them). */
static tether_ret_t read_round(usbtmc *t, uint8_t *dst, size_t want, size_t *ret_n, uint8_t *ret_attributes)
{
        tether_ret_t r = usbtmc_request_in(t, want);
        if (r == TETHER_SUCCESS)
                r = usbtmc_receive_in(t, dst, t->timeout_ms, ret_n, ret_attributes);
        return r;
}

void usbtmc_recover(usbtmc *t)
{
        /* Abort what is in flight and clear the device: the next command
         * then starts from a clean state. A stalled bulk-IN must be
         * un-halted first, or nothing more comes through. */
        do_clear_halt(t, false);
        usbtmc_abort_bulk_in(t);
        usbtmc_clear(t);
        t->in_want = 0;
}

/* The errors after which the link is out of step until recovered. */
static bool needs_recovery(tether_ret_t r)
{
        return r == TETHER_ERR_TIMEOUT || r == TETHER_ERR_IO || r == TETHER_ERR_UNDERRUN;
}

tether_ret_t usbtmc_read(usbtmc *t, void *buf, size_t cap, size_t *ret_len)
{
        if (!t || (!buf && cap) || !ret_len)
                return TETHER_ERR_BAD_ARGUMENT;
        uint8_t *p = buf;
        size_t total = 0;
        bool eom = false, overrun = false;
        tether_ret_t r = TETHER_SUCCESS;
        while (!eom && r == TETHER_SUCCESS) {
                size_t room = cap - total;
                size_t want = room ? (room < t->max_transfer ? room : t->max_transfer) : t->max_transfer;
                size_t n = 0;
                uint8_t attributes = 0;
                /* With no room left the rest is read and dropped, so the
                 * device's output queue ends empty and in step. */
                r = read_round(t, room ? p + total : NULL, want, &n, &attributes);
                if (r == TETHER_SUCCESS) {
                        eom = attributes & USBTMC_ATTR_EOM;
                        if (room)
                                total += n;
                        else
                                overrun = true;
                }
        }
        if (needs_recovery(r)) {
                usbtmc_recover(t);
                return r;
        }
        if (r != TETHER_SUCCESS)
                return r;
        *ret_len = total;
        return overrun ? TETHER_ERR_OVERRUN : TETHER_SUCCESS;
}

/* Transfers with no data and no EOM in a row before a device is taken to
 * be out of step (it would otherwise keep a reader busy for ever). */
#define MAX_EMPTY_ROUNDS 16

tether_ret_t usbtmc_read_some(usbtmc *t, void *buf, size_t cap, size_t *ret_len, unsigned *ret_end)
{
        if (!t || !buf || cap == 0 || !ret_len || !ret_end)
                return TETHER_ERR_BAD_ARGUMENT;
        uint8_t *p = buf;
        size_t total = 0;
        unsigned end = 0, empty = 0;
        tether_ret_t r = TETHER_SUCCESS;
        while (!end && total < cap && r == TETHER_SUCCESS) {
                size_t room = cap - total;
                size_t n = 0;
                uint8_t attributes = 0;
                r = read_round(t, p + total, room < t->max_transfer ? room : t->max_transfer, &n, &attributes);
                if (r != TETHER_SUCCESS)
                        break;
                total += n;
                if (attributes & USBTMC_ATTR_EOM)
                        end |= USBTMC_END_EOM;
                /* The device marks a transfer it ended on TermChar; one
                 * that ended on it by chance counts too, as it would have
                 * stopped there anyway. */
                if (t->term_char_enabled && n &&
                    ((attributes & USBTMC_ATTR_TERM_CHAR) || p[total - 1] == t->term_char))
                        end |= USBTMC_END_TERM_CHAR;
                if (n == 0 && !end && ++empty > MAX_EMPTY_ROUNDS)
                        r = TETHER_ERR_IO;
        }
        *ret_len = total;
        *ret_end = end;
        if (needs_recovery(r))
                usbtmc_recover(t);
        return r;
}

static tether_ret_t control(usbtmc *t, uint8_t type, uint8_t request, uint16_t value, uint16_t index,
                            uint8_t *data, uint16_t len)
{
        size_t got = 0;
        tether_ret_t r = do_control_in(t, type, request, value, index, data, len, &got);
        if (r == TETHER_SUCCESS && got < 1)
                r = TETHER_ERR_UNDERRUN;
        return r;
}

tether_ret_t usbtmc_get_capabilities(usbtmc *t, usbtmc_caps *ret)
{
        uint8_t b[0x18] = { 0 };
        tether_ret_t r = control(t, USBTMC_REQ_INTERFACE, USBTMC_GET_CAPABILITIES, 0, t->interface, b, sizeof(b));
        if (r != TETHER_SUCCESS)
                return r;
        if (b[0] != USBTMC_STATUS_SUCCESS)
                return TETHER_ERR_DEVICE_ERROR;
        usbtmc_caps c = {
                .bcd_usbtmc = (uint16_t)(b[2] | b[3] << 8),
                .interface_caps = b[4],
                .device_caps = b[5],
                .bcd_usb488 = (uint16_t)(b[12] | b[13] << 8),
                .usb488_interface_caps = b[14],
                .usb488_device_caps = b[15],
        };
        t->caps = c;
        if (ret)
                *ret = c;
        return TETHER_SUCCESS;
}

/* An SRQ notification: kept, and told to whoever listens. */
static void srq_seen(usbtmc *t, uint8_t stb)
{
        t->srq_stb = stb;
        t->srq_pending = true;
        if (t->on_srq)
                t->on_srq(t->srq_ctx, stb);
}

static uint64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

tether_ret_t usbtmc_read_status_byte(usbtmc *t, uint8_t *ret_stb)
{
        /* Its own tag, 2..127, separate from the bulk bTag. */
        t->stb_btag = t->stb_btag >= 127 ? 2 : (uint8_t)(t->stb_btag + 1);
        uint8_t b[3] = { 0 };
        tether_ret_t r = control(t, USBTMC_REQ_INTERFACE, USB488_READ_STATUS_BYTE, t->stb_btag, t->interface, b, 3);
        if (r != TETHER_SUCCESS)
                return r;
        if (b[0] != USBTMC_STATUS_SUCCESS)
                return b[0] == USB488_STATUS_INTERRUPT_IN_BUSY ? TETHER_ERR_BUSY : TETHER_ERR_DEVICE_ERROR;
        if (b[1] != t->stb_btag)
                return TETHER_ERR_IO;
        if (!t->ep_interrupt || !t->ops->interrupt_in) {
                *ret_stb = b[2];
                return TETHER_SUCCESS;
        }
        /* The answer comes as a notification; SRQs (any number of them,
         * a device may be storming) and stale answers may come first. */
        uint64_t deadline = mono_ms() + t->timeout_ms;
        for (;;) {
                uint64_t now = mono_ms();
                if (now >= deadline)
                        return TETHER_ERR_TIMEOUT;
                uint8_t n[2];
                size_t got = 0;
                r = do_interrupt_in(t, n, sizeof(n), &got, (unsigned)(deadline - now));
                if (r == TETHER_ERR_TIMEOUT && got < 2)
                        return r;
                if (r != TETHER_SUCCESS && r != TETHER_ERR_TIMEOUT)
                        return r;
                if (got < 2)
                        continue;
                if (n[0] == (0x80u | t->stb_btag)) {
                        *ret_stb = n[1];
                        return TETHER_SUCCESS;
                }
                if (n[0] == USB488_NOTIFY_SRQ)
                        srq_seen(t, n[1]);
        }
}

tether_ret_t usbtmc_poll_interrupt(usbtmc *t, unsigned wait_ms, unsigned max, unsigned *ret_n)
{
        if (!t || !ret_n)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret_n = 0;
        if (!t->ep_interrupt || !t->ops->interrupt_in)
                return TETHER_ERR_UNSUPPORTED;
        for (unsigned i = 0; i < max; i++) {
                uint8_t n[2];
                size_t got = 0;
                tether_ret_t r = do_interrupt_in(t, n, sizeof(n), &got, wait_ms ? wait_ms : 1);
                /* A packet that came as the wait ran out still counts. */
                if (r == TETHER_ERR_TIMEOUT && got == 0)
                        return TETHER_SUCCESS;
                if (r != TETHER_SUCCESS && r != TETHER_ERR_TIMEOUT)
                        return r;
                (*ret_n)++;
                if (got >= 2 && n[0] == USB488_NOTIFY_SRQ)
                        srq_seen(t, n[1]);
        }
        return TETHER_SUCCESS;
}

tether_ret_t usbtmc_abort_bulk_in(usbtmc *t)
{
        uint8_t b[8] = { 0 };
        tether_ret_t r = control(t, USBTMC_REQ_ENDPOINT, USBTMC_INITIATE_ABORT_BULK_IN, t->last_in_btag, t->ep_in, b, 2);
        if (r != TETHER_SUCCESS)
                return r;
        if (b[0] == USBTMC_STATUS_FAILED || b[0] == USBTMC_STATUS_TRANSFER_NOT_IN_PROGRESS)
                return TETHER_SUCCESS; /* nothing in flight: nothing to abort */
        if (b[0] != USBTMC_STATUS_SUCCESS)
                return TETHER_ERR_DEVICE_ERROR;
        drain_in(t);
        for (int i = 0; i < POLL_TRIES; i++) {
                memset(b, 0, sizeof(b));
                r = control(t, USBTMC_REQ_ENDPOINT, USBTMC_CHECK_ABORT_BULK_IN_STATUS, 0, t->ep_in, b, 8);
                if (r != TETHER_SUCCESS)
                        return r;
                if (b[0] != USBTMC_STATUS_PENDING)
                        return b[0] == USBTMC_STATUS_SUCCESS ? TETHER_SUCCESS : TETHER_ERR_DEVICE_ERROR;
                if (b[1] & 0x01)
                        drain_in(t); /* bmAbortBulkIn: data still queued */
                else
                        sleep_ms(POLL_SLEEP_MS);
        }
        return TETHER_ERR_TIMEOUT;
}

tether_ret_t usbtmc_abort_bulk_out(usbtmc *t)
{
        uint8_t b[8] = { 0 };
        tether_ret_t r = control(t, USBTMC_REQ_ENDPOINT, USBTMC_INITIATE_ABORT_BULK_OUT, t->btag, t->ep_out, b, 2);
        if (r != TETHER_SUCCESS)
                return r;
        if (b[0] == USBTMC_STATUS_FAILED || b[0] == USBTMC_STATUS_TRANSFER_NOT_IN_PROGRESS)
                return TETHER_SUCCESS;
        if (b[0] != USBTMC_STATUS_SUCCESS)
                return TETHER_ERR_DEVICE_ERROR;
        for (int i = 0; i < POLL_TRIES; i++) {
                memset(b, 0, sizeof(b));
                r = control(t, USBTMC_REQ_ENDPOINT, USBTMC_CHECK_ABORT_BULK_OUT_STATUS, 0, t->ep_out, b, 8);
                if (r != TETHER_SUCCESS)
                        return r;
                if (b[0] != USBTMC_STATUS_PENDING)
                        return b[0] == USBTMC_STATUS_SUCCESS ? do_clear_halt(t, true)
                                                            : TETHER_ERR_DEVICE_ERROR;
                sleep_ms(POLL_SLEEP_MS);
        }
        return TETHER_ERR_TIMEOUT;
}

tether_ret_t usbtmc_clear(usbtmc *t)
{
        uint8_t b[2] = { 0 };
        tether_ret_t r = control(t, USBTMC_REQ_INTERFACE, USBTMC_INITIATE_CLEAR, 0, t->interface, b, 1);
        if (r != TETHER_SUCCESS)
                return r;
        if (b[0] != USBTMC_STATUS_SUCCESS)
                return TETHER_ERR_DEVICE_ERROR;
        for (int i = 0; i < POLL_TRIES; i++) {
                memset(b, 0, sizeof(b));
                r = control(t, USBTMC_REQ_INTERFACE, USBTMC_CHECK_CLEAR_STATUS, 0, t->interface, b, 2);
                if (r != TETHER_SUCCESS)
                        return r;
                if (b[0] != USBTMC_STATUS_PENDING)
                        return b[0] == USBTMC_STATUS_SUCCESS ? do_clear_halt(t, true)
                                                            : TETHER_ERR_DEVICE_ERROR;
                if (b[1] & 0x01)
                        drain_in(t); /* bmClear: bulk-IN still has data */
                else
                        sleep_ms(POLL_SLEEP_MS);
        }
        return TETHER_ERR_TIMEOUT;
}

tether_ret_t usbtmc_clear_halt(usbtmc *t, bool out)
{
        return t ? do_clear_halt(t, out) : TETHER_ERR_BAD_ARGUMENT;
}

tether_ret_t usbtmc_trigger(usbtmc *t)
{
        uint8_t b[USBTMC_HEADER_SIZE];
        t->btag = usbtmc_next_btag(t->btag);
        usbtmc_header h = { .msg_id = USB488_TRIGGER, .btag = t->btag };
        usbtmc_header_encode(&h, b);
        return do_bulk_out(t, b, sizeof(b), t->timeout_ms);
}

/* A class request whose answer is one status byte. */
static tether_ret_t simple_request(usbtmc *t, uint8_t request, uint16_t value)
{
        uint8_t b[1] = { 0 };
        tether_ret_t r = control(t, USBTMC_REQ_INTERFACE, request, value, t->interface, b, 1);
        if (r != TETHER_SUCCESS)
                return r;
        return b[0] == USBTMC_STATUS_SUCCESS ? TETHER_SUCCESS : TETHER_ERR_DEVICE_ERROR;
}

tether_ret_t usbtmc_indicator_pulse(usbtmc *t)
{
        if (!t)
                return TETHER_ERR_BAD_ARGUMENT;
        if (!(t->caps.interface_caps & USBTMC_CAP_INDICATOR_PULSE))
                return TETHER_ERR_UNSUPPORTED;
        return simple_request(t, USBTMC_INDICATOR_PULSE, 0);
}

tether_ret_t usbtmc_ren_control(usbtmc *t, bool enable)
{
        if (!t)
                return TETHER_ERR_BAD_ARGUMENT;
        if (!(t->caps.usb488_interface_caps & USB488_CAP_REMOTE_LOCAL))
                return TETHER_ERR_UNSUPPORTED;
        return simple_request(t, USB488_REN_CONTROL, enable ? 1 : 0);
}

tether_ret_t usbtmc_go_to_local(usbtmc *t)
{
        if (!t)
                return TETHER_ERR_BAD_ARGUMENT;
        if (!(t->caps.usb488_interface_caps & USB488_CAP_REMOTE_LOCAL))
                return TETHER_ERR_UNSUPPORTED;
        return simple_request(t, USB488_GO_TO_LOCAL, 0);
}

tether_ret_t usbtmc_local_lockout(usbtmc *t)
{
        if (!t)
                return TETHER_ERR_BAD_ARGUMENT;
        if (!(t->caps.usb488_interface_caps & USB488_CAP_REMOTE_LOCAL))
                return TETHER_ERR_UNSUPPORTED;
        return simple_request(t, USB488_LOCAL_LOCKOUT, 0);
}
