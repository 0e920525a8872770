/* SPDX-License-Identifier: MIT */
/* What the generic instrument driver needs of the USBTMC layer, against a
 * scripted device: TermChar in REQUEST_DEV_DEP_MSG_IN, reads that stop at
 * the caller's size without dropping the rest, a round split in two
 * (request, then a wait in slices), messages without EOM, the optional
 * class requests and their capability bits, and interrupt-IN polling. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "usbtmc/usbtmc.h"

typedef struct ctl_call {
        uint8_t type, request;
        uint16_t value, index, len;
} ctl_call;

typedef struct in_step {
        tether_ret_t r;
        uint8_t data[256];
        size_t len;
} in_step;

typedef struct mock {
        uint8_t out[16][64];
        size_t out_len[16];
        int n_out;
        in_step in[32];
        int n_in, next_in;
        ctl_call ctl[16];
        int n_ctl;
        uint8_t ctl_reply[16][4];
        int n_ctl_reply, next_ctl_reply;
        uint8_t notes[300][2];
        int n_notes, next_note;
        unsigned last_wait;
} mock;

static tether_ret_t m_bulk_out(void *ctx, const uint8_t *data, size_t len, unsigned t)
{
        mock *m = ctx;
        if (m->n_out < 16) {
                memcpy(m->out[m->n_out], data, len < 64 ? len : 64);
                m->out_len[m->n_out++] = len;
        }
        return TETHER_SUCCESS;
}

static tether_ret_t m_bulk_in(void *ctx, uint8_t *data, size_t cap, size_t *ret_len, unsigned t)
{
        mock *m = ctx;
        m->last_wait = t;
        *ret_len = 0;
        if (m->next_in >= m->n_in)
                return TETHER_ERR_TIMEOUT;
        in_step *s = &m->in[m->next_in++];
        size_t n = s->len < cap ? s->len : cap;
        memcpy(data, s->data, n);
        *ret_len = n;
        return s->r;
}

static tether_ret_t m_control(void *ctx, uint8_t type, uint8_t request, uint16_t value, uint16_t index,
                              uint8_t *data, uint16_t len, size_t *ret_len, unsigned t)
{
        mock *m = ctx;
        if (m->n_ctl < 16)
                m->ctl[m->n_ctl++] = (ctl_call){ type, request, value, index, len };
        if (m->next_ctl_reply >= m->n_ctl_reply)
                return TETHER_ERR_IO;
        memcpy(data, m->ctl_reply[m->next_ctl_reply++], len < 4 ? len : 4);
        *ret_len = len < 4 ? len : 4;
        return TETHER_SUCCESS;
}

static tether_ret_t m_clear_halt(void *ctx, bool out)
{
        return TETHER_SUCCESS;
}

static tether_ret_t m_interrupt(void *ctx, uint8_t *data, size_t cap, size_t *ret_len, unsigned t)
{
        mock *m = ctx;
        m->last_wait = t;
        *ret_len = 0;
        if (m->next_note >= m->n_notes)
                return TETHER_ERR_TIMEOUT;
        memcpy(data, m->notes[m->next_note++], 2);
        *ret_len = 2;
        return TETHER_SUCCESS;
}

static const usbtmc_backend_ops ops = {
        .bulk_out = m_bulk_out, .bulk_in = m_bulk_in, .control_in = m_control, .clear_halt = m_clear_halt,
        .interrupt_in = m_interrupt,
};

static void link_to(usbtmc *t, mock *m)
{
        memset(m, 0, sizeof(*m));
        usbtmc_init(t, &ops, m);
}

/* The DEV_DEP_MSG_IN transfer answering bTag btag. */
static void answer(mock *m, uint8_t btag, const char *payload, uint8_t attributes)
{
        in_step *s = &m->in[m->n_in++];
        size_t n = strlen(payload);
        usbtmc_header h = { .msg_id = USBTMC_DEV_DEP_MSG_IN, .btag = btag, .transfer_size = (uint32_t)n,
                            .attributes = attributes };
        usbtmc_header_encode(&h, s->data);
        memcpy(s->data + USBTMC_HEADER_SIZE, payload, n);
        s->len = USBTMC_HEADER_SIZE + usbtmc_padded(n);
        s->r = TETHER_SUCCESS;
}

static void nothing_yet(mock *m)
{
        m->in[m->n_in++] = (in_step){ .r = TETHER_ERR_TIMEOUT };
}

static usbtmc_header sent(mock *m, int i)
{
        usbtmc_header h;
        assert_true(i < m->n_out);
        assert_int_equal(usbtmc_header_decode(m->out[i], m->out_len[i], &h), TETHER_SUCCESS);
        return h;
}

static void term_char_in_the_request(void **state)
{
        mock m;
        usbtmc t;
        link_to(&t, &m);
        t.term_char_enabled = true;
        t.term_char = ';';
        answer(&m, 1, "a;", USBTMC_ATTR_TERM_CHAR);
        char buf[16];
        size_t n = 0;
        unsigned end = 0;
        assert_int_equal(usbtmc_read_some(&t, buf, sizeof(buf), &n, &end), TETHER_SUCCESS);
        usbtmc_header r = sent(&m, 0);
        assert_int_equal(r.msg_id, USBTMC_REQUEST_DEV_DEP_MSG_IN);
        assert_int_equal(r.attributes, USBTMC_ATTR_TERM_CHAR);
        assert_int_equal(r.term_char, ';');
        assert_int_equal(m.out[0][9], ';');
        assert_int_equal(n, 2);
        assert_int_equal(end, USBTMC_END_TERM_CHAR);
        /* Disabled: neither the bit nor the character. */
        link_to(&t, &m);
        answer(&m, 1, "x\n", USBTMC_ATTR_EOM);
        assert_int_equal(usbtmc_read_some(&t, buf, sizeof(buf), &n, &end), TETHER_SUCCESS);
        r = sent(&m, 0);
        assert_int_equal(r.attributes, 0);
        assert_int_equal(r.term_char, 0);
        assert_int_equal(end, USBTMC_END_EOM);
}

/* The device is asked for no more than fits: the rest of the message stays
 * there, nothing read and dropped, no recovery. */
static void read_some_stops_at_the_size(void **state)
{
        mock m;
        usbtmc t;
        link_to(&t, &m);
        answer(&m, 1, "12345678", 0);
        char buf[8];
        size_t n = 0;
        unsigned end = 9;
        assert_int_equal(usbtmc_read_some(&t, buf, sizeof(buf), &n, &end), TETHER_SUCCESS);
        assert_int_equal(n, 8);
        assert_int_equal(end, 0);
        assert_int_equal(m.n_out, 1);
        assert_int_equal(sent(&m, 0).transfer_size, 8);
        assert_int_equal(m.n_ctl, 0);
        /* The next call picks up where it stopped, over two rounds. */
        answer(&m, 2, "9", 0);
        answer(&m, 3, "0\n", USBTMC_ATTR_EOM);
        assert_int_equal(usbtmc_read_some(&t, buf, sizeof(buf), &n, &end), TETHER_SUCCESS);
        assert_int_equal(n, 3);
        assert_memory_equal(buf, "90\n", 3);
        assert_int_equal(end, USBTMC_END_EOM);
        assert_int_equal(sent(&m, 1).transfer_size, 8);
        assert_int_equal(sent(&m, 2).transfer_size, 7); /* what is left of the buffer */
        /* A device that sends empty non-final transfers for ever is out of step. */
        link_to(&t, &m);
        for (int i = 0; i < 17; i++)
                answer(&m, (uint8_t)(i + 1), "", 0);
        m.ctl_reply[0][0] = USBTMC_STATUS_TRANSFER_NOT_IN_PROGRESS; /* the abort */
        m.ctl_reply[1][0] = USBTMC_STATUS_SUCCESS;                  /* the clear */
        m.ctl_reply[2][0] = USBTMC_STATUS_SUCCESS;
        m.n_ctl_reply = 3;
        assert_int_equal(usbtmc_read_some(&t, buf, sizeof(buf), &n, &end), TETHER_ERR_IO);
}

/* A round in two halves: a wait that ends empty consumes nothing, and is
 * tried again; the answer then comes in. */
static void request_then_wait_in_slices(void **state)
{
        mock m;
        usbtmc t;
        link_to(&t, &m);
        assert_int_equal(usbtmc_request_in(&t, 16), TETHER_SUCCESS);
        assert_int_equal(t.in_want, 16);
        nothing_yet(&m);
        nothing_yet(&m);
        answer(&m, 1, "late\n", USBTMC_ATTR_EOM);
        uint8_t buf[16];
        size_t n = 0;
        uint8_t attributes = 0;
        assert_int_equal(usbtmc_receive_in(&t, buf, 20, &n, &attributes), TETHER_ERR_TIMEOUT);
        assert_int_equal(m.last_wait, 20);
        assert_int_equal(usbtmc_receive_in(&t, buf, 20, &n, &attributes), TETHER_ERR_TIMEOUT);
        assert_int_equal(usbtmc_receive_in(&t, buf, 20, &n, &attributes), TETHER_SUCCESS);
        assert_int_equal(n, 5);
        assert_int_equal(attributes, USBTMC_ATTR_EOM);
        assert_memory_equal(buf, "late\n", 5);
        assert_int_equal(t.in_want, 0);
        assert_int_equal(m.n_out, 1); /* one request for all three waits */
        assert_int_equal(m.n_ctl, 0);
        /* Nothing asked: refused. Too much asked: refused. */
        assert_int_equal(usbtmc_receive_in(&t, buf, 20, &n, &attributes), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(usbtmc_request_in(&t, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(usbtmc_request_in(&t, t.max_transfer + 1), TETHER_ERR_BAD_ARGUMENT);
}

/* A transfer that began just as a slice ran out is not lost: its first
 * bytes came with the timeout, the rest follows. */
static void partial_transfer_at_the_end_of_a_wait(void **state)
{
        mock m;
        usbtmc t;
        link_to(&t, &m);
        assert_int_equal(usbtmc_request_in(&t, 32), TETHER_SUCCESS);
        answer(&m, 1, "abcdefghijkl", USBTMC_ATTR_EOM);
        /* split the transfer: 8 bytes with the timeout, the rest after */
        in_step whole = m.in[0];
        m.in[0] = (in_step){ .r = TETHER_ERR_TIMEOUT, .len = 8 };
        memcpy(m.in[0].data, whole.data, 8);
        m.in[1] = (in_step){ .r = TETHER_SUCCESS, .len = whole.len - 8 };
        memcpy(m.in[1].data, whole.data + 8, whole.len - 8);
        m.n_in = 2;
        uint8_t buf[32];
        size_t n = 0;
        uint8_t attributes = 0;
        assert_int_equal(usbtmc_receive_in(&t, buf, 5, &n, &attributes), TETHER_SUCCESS);
        assert_int_equal(n, 12);
        assert_memory_equal(buf, "abcdefghijkl", 12);
        /* A wrong bTag: out of step. */
        assert_int_equal(usbtmc_request_in(&t, 32), TETHER_SUCCESS);
        answer(&m, 7, "x", USBTMC_ATTR_EOM);
        assert_int_equal(usbtmc_receive_in(&t, buf, 5, &n, &attributes), TETHER_ERR_IO);
}

static void write_without_eom(void **state)
{
        mock m;
        usbtmc t;
        link_to(&t, &m);
        assert_int_equal(usbtmc_write_msg(&t, "ab", 2, false), TETHER_SUCCESS);
        assert_int_equal(usbtmc_write_msg(&t, "cd", 2, true), TETHER_SUCCESS);
        assert_int_equal(sent(&m, 0).attributes & USBTMC_ATTR_EOM, 0);
        assert_int_equal(sent(&m, 1).attributes & USBTMC_ATTR_EOM, USBTMC_ATTR_EOM);
        assert_int_equal(usbtmc_write_msg(&t, "", 0, true), TETHER_ERR_BAD_ARGUMENT);
}

/* REN_CONTROL, GO_TO_LOCAL, LOCAL_LOCKOUT, INDICATOR_PULSE: refused with no
 * request at all when the capability bit is clear; otherwise the request
 * as USB488 lays it out, and the device's status. */
static void optional_requests(void **state)
{
        mock m;
        usbtmc t;
        link_to(&t, &m);
        t.interface = 3;
        assert_int_equal(usbtmc_ren_control(&t, true), TETHER_ERR_UNSUPPORTED);
        assert_int_equal(usbtmc_go_to_local(&t), TETHER_ERR_UNSUPPORTED);
        assert_int_equal(usbtmc_local_lockout(&t), TETHER_ERR_UNSUPPORTED);
        assert_int_equal(usbtmc_indicator_pulse(&t), TETHER_ERR_UNSUPPORTED);
        assert_int_equal(m.n_ctl, 0);
        t.caps.usb488_interface_caps = USB488_CAP_REMOTE_LOCAL;
        t.caps.interface_caps = USBTMC_CAP_INDICATOR_PULSE;
        for (int i = 0; i < 5; i++)
                m.ctl_reply[i][0] = USBTMC_STATUS_SUCCESS;
        m.ctl_reply[5][0] = USBTMC_STATUS_FAILED;
        m.n_ctl_reply = 6;
        assert_int_equal(usbtmc_ren_control(&t, true), TETHER_SUCCESS);
        assert_int_equal(usbtmc_ren_control(&t, false), TETHER_SUCCESS);
        assert_int_equal(usbtmc_go_to_local(&t), TETHER_SUCCESS);
        assert_int_equal(usbtmc_local_lockout(&t), TETHER_SUCCESS);
        assert_int_equal(usbtmc_indicator_pulse(&t), TETHER_SUCCESS);
        assert_int_equal(usbtmc_local_lockout(&t), TETHER_ERR_DEVICE_ERROR);
        const ctl_call want[] = {
                { USBTMC_REQ_INTERFACE, USB488_REN_CONTROL, 1, 3, 1 },
                { USBTMC_REQ_INTERFACE, USB488_REN_CONTROL, 0, 3, 1 },
                { USBTMC_REQ_INTERFACE, USB488_GO_TO_LOCAL, 0, 3, 1 },
                { USBTMC_REQ_INTERFACE, USB488_LOCAL_LOCKOUT, 0, 3, 1 },
                { USBTMC_REQ_INTERFACE, USBTMC_INDICATOR_PULSE, 0, 3, 1 },
        };
        for (int i = 0; i < 5; i++) {
                assert_int_equal(m.ctl[i].type, want[i].type);
                assert_int_equal(m.ctl[i].request, want[i].request);
                assert_int_equal(m.ctl[i].value, want[i].value);
                assert_int_equal(m.ctl[i].index, want[i].index);
                assert_int_equal(m.ctl[i].len, want[i].len);
        }
        assert_int_equal(usbtmc_clear_halt(NULL, true), TETHER_ERR_BAD_ARGUMENT);
}

typedef struct srqs {
        int n;
        uint8_t stb[300];
} srqs;

static void on_srq(void *ctx, uint8_t stb)
{
        srqs *s = ctx;
        s->stb[s->n++] = stb;
}

static void note(mock *m, uint8_t b1, uint8_t b2)
{
        m->notes[m->n_notes][0] = b1;
        m->notes[m->n_notes++][1] = b2;
}

static void interrupt_polling(void **state)
{
        mock m;
        usbtmc t;
        srqs s = { 0 };
        link_to(&t, &m);
        t.on_srq = on_srq;
        t.srq_ctx = &s;
        unsigned n = 9;
        assert_int_equal(usbtmc_poll_interrupt(&t, 1, 10, &n), TETHER_ERR_UNSUPPORTED); /* no endpoint */
        assert_int_equal(n, 0);
        t.ep_interrupt = 0x83;
        note(&m, USB488_NOTIFY_SRQ, 0x41);
        note(&m, 0x85, 0x00); /* a status byte nobody waits for any more */
        note(&m, 0x01, 0x02); /* vendor-specific */
        note(&m, USB488_NOTIFY_SRQ, 0x42);
        assert_int_equal(usbtmc_poll_interrupt(&t, 1, 10, &n), TETHER_SUCCESS);
        assert_int_equal(n, 4);
        assert_int_equal(s.n, 2);
        assert_int_equal(s.stb[0], 0x41);
        assert_int_equal(s.stb[1], 0x42);
        assert_true(t.srq_pending);
        assert_int_equal(t.srq_stb, 0x42);
        /* At most max per call: bounded work in a storm. */
        for (int i = 0; i < 20; i++)
                note(&m, USB488_NOTIFY_SRQ, 0x40);
        assert_int_equal(usbtmc_poll_interrupt(&t, 1, 8, &n), TETHER_SUCCESS);
        assert_int_equal(n, 8);
        assert_int_equal(s.n, 10);
}

/* READ_STATUS_BYTE finds its answer behind any number of SRQs, each told. */
static void status_byte_behind_a_storm(void **state)
{
        mock m;
        usbtmc t;
        srqs s = { 0 };
        link_to(&t, &m);
        t.on_srq = on_srq;
        t.srq_ctx = &s;
        t.ep_interrupt = 0x83;
        m.ctl_reply[0][0] = USBTMC_STATUS_SUCCESS;
        m.ctl_reply[0][1] = 2; /* the first tag */
        m.n_ctl_reply = 1;
        for (int i = 0; i < 200; i++)
                note(&m, USB488_NOTIFY_SRQ, 0x40);
        note(&m, 0x82, 0x10);
        uint8_t stb = 0;
        assert_int_equal(usbtmc_read_status_byte(&t, &stb), TETHER_SUCCESS);
        assert_int_equal(stb, 0x10);
        assert_int_equal(s.n, 200);
        /* No answer at all: a timeout, not a hang. */
        m.ctl_reply[1][0] = USBTMC_STATUS_SUCCESS;
        m.ctl_reply[1][1] = 3;
        m.n_ctl_reply = 2;
        t.timeout_ms = 50;
        assert_int_equal(usbtmc_read_status_byte(&t, &stb), TETHER_ERR_TIMEOUT);
        /* Without the endpoint the control reply carries it. */
        t.ep_interrupt = 0;
        m.ctl_reply[2][0] = USBTMC_STATUS_SUCCESS;
        m.ctl_reply[2][1] = 4;
        m.ctl_reply[2][2] = 0x24;
        m.n_ctl_reply = 3;
        assert_int_equal(usbtmc_read_status_byte(&t, &stb), TETHER_SUCCESS);
        assert_int_equal(stb, 0x24);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(term_char_in_the_request),
                cmocka_unit_test(read_some_stops_at_the_size),
                cmocka_unit_test(request_then_wait_in_slices),
                cmocka_unit_test(partial_transfer_at_the_end_of_a_wait),
                cmocka_unit_test(write_without_eom),
                cmocka_unit_test(optional_requests),
                cmocka_unit_test(interrupt_polling),
                cmocka_unit_test(status_byte_behind_a_storm),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
