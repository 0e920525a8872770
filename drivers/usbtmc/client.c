/* SPDX-License-Identifier: MIT */
/*
 * The generic USBTMC driver's user client: what a VISA library needs, one
 * method each, in a static table checked before any of them runs
 * (docs/usbtmc-driver.md is the contract).
 *
 * Everything runs on the service's work loop, so a synchronous call holds
 * the instrument (and every other client's calls) until it returns: a read
 * waits at most TimeoutMs for each transfer, then the link is recovered
 * and the call fails Timeout. An async read (TMC_READ_ASYNC) waits in
 * slices of TMC_SLICE_MS on timers instead, so between two slices other
 * calls run: a TMC_ABORT from any connection allowed to use the
 * instrument, a status byte, SRQ polling.
 */
#include <stdlib.h>
#include <string.h>

#include "instrument.h"

static tmc_client *client_of(void *target)
{
        return tether_user_client_priv(target);
}

/* What may touch the device decides who gets Busy. */
enum access {
        ACCESS_CONTROL, /* the default pipe only: fine beside an async read */
        ACCESS_BULK,    /* bulk transfers: not while an async read waits on bulk-IN */
};

/* Every method but TMC_UNLOCK, TMC_HELD, TMC_SRQ_* comes through here. */
static tether_ret_t usable(void *target, enum access access, tmc_client **ret_c, tmc_instr **ret_in)
{
        tmc_client *c = client_of(target);
        tmc_instr *in = c->in;
        if (!in || !tether_user_client_provider(target) || in->gone)
                return TETHER_ERR_NOT_ATTACHED;
        if (in->lock_owner && in->lock_owner != c)
                return TETHER_ERR_BUSY;
        if (access == ACCESS_BULK && in->reader)
                return TETHER_ERR_BUSY;
        *ret_c = c;
        *ret_in = in;
        return TETHER_SUCCESS;
}

/* ---- held answers ---- */

static void drop_held(tmc_client *c)
{
        free(c->held);
        c->held = NULL;
        c->held_len = c->held_off = 0;
        c->held_end = 0;
}

/* What is held, first: up to cap bytes into out. *ret_end: the held bytes
 * ran out and ended the message. */
static size_t take_held(tmc_client *c, uint8_t *out, size_t cap, unsigned *ret_end)
{
        *ret_end = 0;
        if (!c->held)
                return 0;
        size_t left = c->held_len - c->held_off;
        size_t n = left < cap ? left : cap;
        memcpy(out, c->held + c->held_off, n);
        c->held_off += n;
        if (c->held_off == c->held_len) {
                *ret_end = c->held_end;
                drop_held(c);
        }
        return n;
}

/* ---- write, read, query ---- */

static tether_ret_t check_input(const tether_method_args *a)
{
        return a->struct_input_size >= 1 && a->struct_input_size <= TMC_MAX_WRITE ? TETHER_SUCCESS
                                                                                   : TETHER_ERR_BAD_ARGUMENT;
}

static tether_ret_t check_output(const tether_method_args *a)
{
        return a->struct_output_size >= 1 && a->struct_output_size <= TMC_MAX_READ ? TETHER_SUCCESS
                                                                                   : TETHER_ERR_BAD_ARGUMENT;
}

static tether_ret_t m_write(void *t, void *ref, tether_method_args *a)
{
        tmc_client *c;
        tmc_instr *in;
        tether_ret_t r = usable(t, ACCESS_BULK, &c, &in);
        if (r == TETHER_SUCCESS)
                r = check_input(a);
        if (r == TETHER_SUCCESS && (a->scalar_input[0] & ~(uint64_t)TMC_WRITE_MORE))
                r = TETHER_ERR_BAD_ARGUMENT;
        if (r != TETHER_SUCCESS)
                return r;
        /* A new message: the device drops an answer not read by now, and so
         * does this connection. */
        drop_held(c);
        r = usbtmc_write_msg(&in->usb, a->struct_input, a->struct_input_size,
                             !(a->scalar_input[0] & TMC_WRITE_MORE));
        if (r == TETHER_SUCCESS)
                tmc_srq_note_message(in, a->struct_input, a->struct_input_size);
        return tmc_link_result(in, r);
}

/* Up to cap bytes into out: what is held first, then the device. */
static tether_ret_t read_into(tmc_client *c, tmc_instr *in, uint8_t *out, size_t cap, size_t *ret_n, unsigned *ret_end)
{
        unsigned end = 0;
        size_t n = take_held(c, out, cap, &end);
        tether_ret_t r = TETHER_SUCCESS;
        if (!end && n < cap) {
                size_t m = 0;
                r = usbtmc_read_some(&in->usb, out + n, cap - n, &m, &end);
                n += m;
        }
        *ret_n = n;
        *ret_end = end;
        return tmc_link_result(in, r);
}

static tether_ret_t m_read(void *t, void *ref, tether_method_args *a)
{
        tmc_client *c;
        tmc_instr *in;
        tether_ret_t r = usable(t, ACCESS_BULK, &c, &in);
        if (r == TETHER_SUCCESS)
                r = check_output(a);
        if (r != TETHER_SUCCESS)
                return r;
        size_t n = 0;
        unsigned end = 0;
        r = read_into(c, in, a->struct_output, a->struct_output_size, &n, &end);
        if (r != TETHER_SUCCESS)
                return r;
        a->struct_output_size = (uint32_t)n;
        a->scalar_output[0] = end;
        return TETHER_SUCCESS;
}

/* An answer longer than the caller's buffer: kept for this connection,
 * with what follows it (up to TMC_MAX_HELD more), so TMC_HELD can say how
 * big it is and TMC_READ return it. */
static tether_ret_t hold(tmc_client *c, tmc_instr *in, const uint8_t *first, size_t n)
{
        uint8_t *h = malloc(n + TMC_MAX_HELD);
        if (!h)
                return TETHER_ERR_NO_MEMORY;
        memcpy(h, first, n);
        size_t more = 0;
        unsigned end = 0;
        tether_ret_t r = usbtmc_read_some(&in->usb, h + n, TMC_MAX_HELD, &more, &end);
        uint8_t *fit = realloc(h, n + more); /* what it holds, not what it might have */
        if (fit)
                h = fit;
        c->held = h;
        c->held_len = n + more;
        c->held_off = 0;
        c->held_end = end;
        return tmc_link_result(in, r);
}

static tether_ret_t m_query(void *t, void *ref, tether_method_args *a)
{
        tmc_client *c;
        tmc_instr *in;
        tether_ret_t r = usable(t, ACCESS_BULK, &c, &in);
        if (r == TETHER_SUCCESS)
                r = check_input(a);
        if (r == TETHER_SUCCESS)
                r = check_output(a);
        if (r != TETHER_SUCCESS)
                return r;
        drop_held(c);
        r = tmc_link_result(in, usbtmc_write(&in->usb, a->struct_input, a->struct_input_size));
        if (r == TETHER_SUCCESS)
                tmc_srq_note_message(in, a->struct_input, a->struct_input_size);
        size_t n = 0;
        unsigned end = 0;
        if (r == TETHER_SUCCESS)
                r = read_into(c, in, a->struct_output, a->struct_output_size, &n, &end);
        if (r != TETHER_SUCCESS)
                return r;
        if (!end) {
                /* The caller's buffer is full and the answer goes on:
                 * nothing of it is lost, it waits here. */
                r = hold(c, in, a->struct_output, n);
                return r == TETHER_SUCCESS ? TETHER_ERR_NO_SPACE : r;
        }
        a->struct_output_size = (uint32_t)n;
        a->scalar_output[0] = end;
        return TETHER_SUCCESS;
}

static tether_ret_t m_held(void *t, void *ref, tether_method_args *a)
{
        tmc_client *c = client_of(t);
        if (!c->in)
                return TETHER_ERR_NOT_ATTACHED;
        a->scalar_output[0] = c->held ? c->held_len - c->held_off : 0;
        a->scalar_output[1] = c->held ? c->held_end : 0;
        return TETHER_SUCCESS;
}

/* ---- USB488 and USBTMC requests ---- */

static tether_ret_t m_read_stb(void *t, void *ref, tether_method_args *a)
{
        tmc_client *c;
        tmc_instr *in;
        tether_ret_t r = usable(t, ACCESS_CONTROL, &c, &in);
        uint8_t stb = 0;
        if (r == TETHER_SUCCESS)
                r = tmc_link_result(in, usbtmc_read_status_byte(&in->usb, &stb));
        if (r == TETHER_SUCCESS) {
                a->scalar_output[0] = stb;
                tmc_srq_status_byte(in, stb);
        }
        return r;
}

static tether_ret_t m_clear(void *t, void *ref, tether_method_args *a)
{
        tmc_client *c;
        tmc_instr *in;
        tether_ret_t r = usable(t, ACCESS_CONTROL, &c, &in);
        if (r != TETHER_SUCCESS)
                return r;
        /* A clear ends whatever is in flight: the read is told first. */
        if (in->reader)
                tmc_read_finish(in, TETHER_ERR_ABORTED, true);
        drop_held(c);
        r = tmc_link_result(in, usbtmc_clear(&in->usb)); /* bulk-OUT's halt cleared there */
        if (r == TETHER_SUCCESS)
                r = tmc_link_result(in, usbtmc_clear_halt(&in->usb, false));
        return r;
}

static tether_ret_t m_abort(void *t, void *ref, tether_method_args *a)
{
        tmc_client *c = client_of(t);
        tmc_instr *in = c->in;
        if (!in || !tether_user_client_provider(t))
                return TETHER_ERR_NOT_ATTACHED;
        /* The reader may always end its own read; others as the lock says. */
        if (in->reader != c) {
                tether_ret_t r = usable(t, ACCESS_CONTROL, &c, &in);
                if (r != TETHER_SUCCESS)
                        return r;
        }
        if (!in->reader)
                return TETHER_ERR_NOT_FOUND;
        tmc_read_finish(in, TETHER_ERR_ABORTED, true);
        return TETHER_SUCCESS;
}

static tether_ret_t m_trigger(void *t, void *ref, tether_method_args *a)
{
        tmc_client *c;
        tmc_instr *in;
        tether_ret_t r = usable(t, ACCESS_BULK, &c, &in);
        if (r != TETHER_SUCCESS)
                return r;
        if (!(in->usb.caps.usb488_interface_caps & USB488_CAP_TRIGGER))
                return TETHER_ERR_UNSUPPORTED;
        return tmc_link_result(in, usbtmc_trigger(&in->usb));
}

static tether_ret_t m_ren_control(void *t, void *ref, tether_method_args *a)
{
        tmc_client *c;
        tmc_instr *in;
        tether_ret_t r = usable(t, ACCESS_CONTROL, &c, &in);
        if (r == TETHER_SUCCESS && a->scalar_input[0] > 1)
                r = TETHER_ERR_BAD_ARGUMENT;
        if (r == TETHER_SUCCESS)
                r = tmc_link_result(in, usbtmc_ren_control(&in->usb, a->scalar_input[0] == 1));
        return r;
}

static tether_ret_t m_go_to_local(void *t, void *ref, tether_method_args *a)
{
        tmc_client *c;
        tmc_instr *in;
        tether_ret_t r = usable(t, ACCESS_CONTROL, &c, &in);
        return r == TETHER_SUCCESS ? tmc_link_result(in, usbtmc_go_to_local(&in->usb)) : r;
}

static tether_ret_t m_local_lockout(void *t, void *ref, tether_method_args *a)
{
        tmc_client *c;
        tmc_instr *in;
        tether_ret_t r = usable(t, ACCESS_CONTROL, &c, &in);
        return r == TETHER_SUCCESS ? tmc_link_result(in, usbtmc_local_lockout(&in->usb)) : r;
}

static tether_ret_t m_indicator_pulse(void *t, void *ref, tether_method_args *a)
{
        tmc_client *c;
        tmc_instr *in;
        tether_ret_t r = usable(t, ACCESS_CONTROL, &c, &in);
        return r == TETHER_SUCCESS ? tmc_link_result(in, usbtmc_indicator_pulse(&in->usb)) : r;
}

/* ---- the lock and service requests (lock.c, srq.c) ---- */

static tether_ret_t m_lock(void *t, void *ref, tether_method_args *a)
{
        tmc_client *c = client_of(t);
        if (!c->in || !tether_user_client_provider(t))
                return TETHER_ERR_NOT_ATTACHED;
        if (a->scalar_input[0] > TMC_MAX_LOCK_WAIT_MS)
                return TETHER_ERR_BAD_ARGUMENT;
        return tmc_lock(c, a->scalar_input[0], a->async_ref);
}

static tether_ret_t m_unlock(void *t, void *ref, tether_method_args *a)
{
        tmc_client *c = client_of(t);
        if (!c->in)
                return TETHER_ERR_NOT_ATTACHED;
        return tmc_unlock(c);
}

static tether_ret_t m_srq_enable(void *t, void *ref, tether_method_args *a)
{
        tmc_client *c = client_of(t);
        if (!a->async_ref)
                return TETHER_ERR_BAD_ARGUMENT; /* SRQs come only as results */
        if (!c->in || !tether_user_client_provider(t) || c->in->gone)
                return TETHER_ERR_NOT_ATTACHED;
        return tmc_srq_enable(c, a->async_ref);
}

static tether_ret_t m_srq_disable(void *t, void *ref, tether_method_args *a)
{
        tmc_client *c = client_of(t);
        if (!c->in)
                return TETHER_ERR_NOT_ATTACHED;
        return tmc_srq_disable(c);
}

/* ---- async reads ---- */

static tether_ret_t read_memory(tmc_client *c, tether_memory **ret)
{
        if (!c->read_mem) {
                tether_ret_t r = tether_memory_create(TMC_READ_BUFFER_SIZE, "usbtmc-read", &c->read_mem);
                if (r != TETHER_SUCCESS)
                        return r;
        }
        *ret = c->read_mem;
        return TETHER_SUCCESS;
}

static unsigned end_of(const tmc_instr *in, const uint8_t *data, size_t n, uint8_t attributes)
{
        unsigned end = attributes & USBTMC_ATTR_EOM ? TMC_END_EOM : 0;
        if (in->usb.term_char_enabled && n &&
            ((attributes & USBTMC_ATTR_TERM_CHAR) || data[n - 1] == in->usb.term_char))
                end |= TMC_END_TERM_CHAR;
        return end;
}

static void read_complete(tmc_client *c, tether_ret_t result, unsigned end)
{
        uint64_t args[TMC_READ_ARGS] = { [TMC_READ_ARG_BYTES] = c->read_n, [TMC_READ_ARG_END] = end };
        /* Whatever came of it (the client gone, its port full), the read
         * is over: there is nothing to keep. */
        tether_async_complete(&c->read_ref, result, args, TMC_READ_ARGS);
}

static void finish(tmc_instr *in, tether_ret_t result, unsigned end)
{
        tmc_client *c = in->reader;
        in->reader = NULL;
        tether_timer_cancel(in->read_timer);
        if (c)
                read_complete(c, result, end);
}

void tmc_read_finish(tmc_instr *in, tether_ret_t result, bool abort_device)
{
        if (!in->reader)
                return;
        /* The device still holds the request (or is sending its answer):
         * INITIATE_ABORT_BULK_IN ends that transfer, as USBTMC has it. */
        if (abort_device && in->usb.in_want && !in->gone) {
                tmc_link_result(in, usbtmc_abort_bulk_in(&in->usb));
                in->usb.in_want = 0;
        }
        finish(in, result, 0);
}

/* Ask for the next part of the answer and wait for it in slices. */
static tether_ret_t request_next(tmc_instr *in, tmc_client *c)
{
        size_t want = c->read_max - c->read_n;
        if (want > in->usb.max_transfer)
                want = in->usb.max_transfer;
        tether_ret_t r = tmc_link_result(in, usbtmc_request_in(&in->usb, want));
        if (r == TETHER_SUCCESS) {
                c->read_deadline = clock_mono_ms() + in->timeout_ms;
                r = tether_timer_arm(in->read_timer, 0);
        }
        return r;
}

void tmc_read_timer_fired(tether_service *svc, tether_timer *timer, void *refcon, tether_ret_t status)
{
        tmc_instr *in = refcon;
        tmc_client *c = in->reader;
        if (!c)
                return;
        if (status != TETHER_SUCCESS) {
                finish(in, TETHER_ERR_NOT_ATTACHED, 0); /* the service is stopping */
                return;
        }
        uint64_t start = clock_mono_ms();
        uint64_t left = c->read_deadline > start ? c->read_deadline - start : 0;
        uint8_t *buf = tether_memory_ptr(c->read_mem);
        size_t n = 0;
        uint8_t attributes = 0;
        tether_ret_t r = usbtmc_receive_in(&in->usb, buf + c->read_n, (unsigned)(left < TMC_SLICE_MS ? left : TMC_SLICE_MS),
                                           &n, &attributes);
        if (r == TETHER_ERR_TIMEOUT) {
                uint64_t now = clock_mono_ms();
                if (now >= c->read_deadline) {
                        usbtmc_recover(&in->usb);
                        finish(in, TETHER_ERR_TIMEOUT, 0);
                        return;
                }
                /* A device (a simulator) that says "nothing yet" at once
                 * is asked again a slice later, not in a busy loop. */
                uint64_t spent = now - start;
                r = tether_timer_arm(in->read_timer, spent >= TMC_SLICE_MS ? 0 : (uint32_t)(TMC_SLICE_MS - spent));
                if (r != TETHER_SUCCESS)
                        finish(in, r, 0);
                return;
        }
        if (r != TETHER_SUCCESS) {
                r = tmc_link_result(in, r);
                if (r != TETHER_ERR_NOT_ATTACHED)
                        usbtmc_recover(&in->usb);
                finish(in, r, 0);
                return;
        }
        unsigned end = end_of(in, buf + c->read_n, n, attributes);
        c->read_n += n;
        if (end || c->read_n == c->read_max) {
                finish(in, TETHER_SUCCESS, end);
                return;
        }
        r = request_next(in, c);
        if (r != TETHER_SUCCESS)
                finish(in, r, 0);
}

static tether_ret_t m_read_async(void *t, void *ref, tether_method_args *a)
{
        tmc_client *c;
        tmc_instr *in;
        if (!a->async_ref)
                return TETHER_ERR_BAD_ARGUMENT; /* its bytes come with a result */
        tether_ret_t r = usable(t, ACCESS_BULK, &c, &in);
        if (r != TETHER_SUCCESS)
                return r;
        uint64_t max = a->scalar_input[0];
        if (max < 1 || max > TMC_READ_BUFFER_SIZE)
                return TETHER_ERR_BAD_ARGUMENT;
        tether_memory *mem;
        if ((r = read_memory(c, &mem)) != TETHER_SUCCESS)
                return r;
        c->read_ref = *a->async_ref;
        c->read_max = (size_t)max;
        unsigned end = 0;
        c->read_n = take_held(c, tether_memory_ptr(mem), c->read_max, &end);
        if (end || c->read_n == c->read_max) {
                read_complete(c, TETHER_SUCCESS, end); /* all of it was here */
                return TETHER_SUCCESS;
        }
        in->reader = c;
        r = request_next(in, c);
        if (r != TETHER_SUCCESS) {
                /* Accepted all the same: the held bytes it took go back
                 * with the error, as a result. */
                in->reader = NULL;
                read_complete(c, r, 0);
        }
        return TETHER_SUCCESS;
}

static tether_ret_t client_memory(tether_user_client *uc, uint32_t type, uint32_t *options, tether_memory **ret)
{
        tmc_client *c = tether_user_client_priv(uc);
        if (type != TMC_MEMORY_READ_BUFFER)
                return TETHER_ERR_BAD_ARGUMENT;
        if (!c->in)
                return TETHER_ERR_NOT_ATTACHED;
        tether_memory *mem;
        tether_ret_t r = read_memory(c, &mem);
        if (r != TETHER_SUCCESS)
                return r;
        *options |= TETHER_MAP_READ_ONLY; /* the driver's to write */
        *ret = tether_memory_ref(mem);
        return TETHER_SUCCESS;
}

/* ---- the connection's life ---- */

static tether_ret_t client_start(tether_user_client *uc, tether_service *provider)
{
        if (strcmp(tether_service_class(provider), TMC_CLASS))
                return TETHER_ERR_BAD_ARGUMENT;
        tmc_instr *in = tether_service_priv(provider);
        tmc_client *c = tether_user_client_priv(uc);
        c->uc = uc;
        c->in = in;
        c->next = in->clients;
        if (in->clients)
                in->clients->prev = c;
        in->clients = c;
        return TETHER_SUCCESS;
}

/* Closed, dead or stopped: the same for the instrument. Its read ends, its
 * lock goes to the next waiter, its SRQ stream ends. */
static void client_gone(tether_user_client *uc)
{
        tmc_client *c = tether_user_client_priv(uc);
        tmc_instr *in = c->in;
        if (!in)
                return;
        if (in->reader == c)
                tmc_read_finish(in, TETHER_ERR_ABORTED, true);
        tmc_lock_forget(c);
        tmc_srq_forget(c);
}

static void client_stop(tether_user_client *uc)
{
        tmc_client *c = tether_user_client_priv(uc);
        tmc_instr *in = c->in;
        if (!in)
                return;
        client_gone(uc);
        if (c->prev)
                c->prev->next = c->next;
        else
                in->clients = c->next;
        if (c->next)
                c->next->prev = c->prev;
        c->in = NULL;
        drop_held(c);
        tether_memory_unref(c->read_mem);
        c->read_mem = NULL;
}

#define V TETHER_VARIABLE_SIZE
static const tether_method_dispatch methods[TMC_SELECTOR_COUNT] = {
        /* function,            scalars in, struct in, scalars out, struct out, flags */
        [TMC_WRITE] = { m_write, 1, V, 0, 0, 0 },
        [TMC_READ] = { m_read, 0, 0, 1, V, 0 },
        [TMC_QUERY] = { m_query, 0, V, 1, V, 0 },
        [TMC_READ_STB] = { m_read_stb, 0, 0, 1, 0, 0 },
        [TMC_CLEAR] = { m_clear, 0, 0, 0, 0, 0 },
        [TMC_ABORT] = { m_abort, 0, 0, 0, 0, 0 },
        [TMC_TRIGGER] = { m_trigger, 0, 0, 0, 0, 0 },
        [TMC_REN_CONTROL] = { m_ren_control, 1, 0, 0, 0, 0 },
        [TMC_GO_TO_LOCAL] = { m_go_to_local, 0, 0, 0, 0, 0 },
        [TMC_LOCAL_LOCKOUT] = { m_local_lockout, 0, 0, 0, 0, 0 },
        [TMC_INDICATOR_PULSE] = { m_indicator_pulse, 0, 0, 0, 0, 0 },
        [TMC_LOCK] = { m_lock, 1, 0, 0, 0, TETHER_METHOD_ALLOW_ASYNC },
        [TMC_UNLOCK] = { m_unlock, 0, 0, 0, 0, 0 },
        [TMC_SRQ_ENABLE] = { m_srq_enable, 0, 0, 0, 0, TETHER_METHOD_ALLOW_ASYNC },
        [TMC_SRQ_DISABLE] = { m_srq_disable, 0, 0, 0, 0, 0 },
        [TMC_READ_ASYNC] = { m_read_async, 1, 0, 0, 0, TETHER_METHOD_ALLOW_ASYNC },
        [TMC_HELD] = { m_held, 0, 0, 2, 0, 0 },
};
#undef V

static const char *const method_names[TMC_SELECTOR_COUNT] = {
        [TMC_WRITE] = "write", [TMC_READ] = "read", [TMC_QUERY] = "query", [TMC_READ_STB] = "readSTB",
        [TMC_CLEAR] = "clear", [TMC_ABORT] = "abort", [TMC_TRIGGER] = "trigger", [TMC_REN_CONTROL] = "renControl",
        [TMC_GO_TO_LOCAL] = "goToLocal", [TMC_LOCAL_LOCKOUT] = "localLockout",
        [TMC_INDICATOR_PULSE] = "indicatorPulse", [TMC_LOCK] = "lock", [TMC_UNLOCK] = "unlock",
        [TMC_SRQ_ENABLE] = "srqEnable", [TMC_SRQ_DISABLE] = "srqDisable", [TMC_READ_ASYNC] = "readAsync",
        [TMC_HELD] = "held",
};

const tether_user_client_ops tmc_client_ops = {
        .class_name = "USBTMCInstrumentUserClient",
        .priv_size = sizeof(tmc_client),
        .start = client_start,
        .client_close = client_gone,
        .stop = client_stop,
        .methods = methods,
        .method_count = TMC_SELECTOR_COUNT,
        .method_names = method_names,
        .client_memory_for_type = client_memory,
};
