/* SPDX-License-Identifier: MIT */
/* USBTMC framing and the recovery sequences, against a scripted device
 * that records every transfer and control request. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "usbtmc/usbtmc.h"

/* ---- a scripted device ---- */

typedef struct ctl_call {
        uint8_t type, request;
        uint16_t value, index, len;
} ctl_call;

typedef struct mock {
        uint8_t out[16][256];      /* bulk-OUT transfers seen */
        size_t out_len[16];
        int n_out;
        ctl_call ctl[32];
        int n_ctl;
        /* scripted replies */
        uint8_t ctl_reply[32][8];
        int n_ctl_reply, next_ctl_reply;
        uint8_t in[8][256];
        size_t in_len[8];
        int n_in, next_in;
        int halts_cleared_out, halts_cleared_in;
} mock;

static tether_ret_t m_bulk_out(void *ctx, const uint8_t *data, size_t len, unsigned t)
{
        mock *m = ctx;
        if (m->n_out < 16) {
                memcpy(m->out[m->n_out], data, len < 256 ? len : 256);
                m->out_len[m->n_out++] = len;
        }
        return TETHER_SUCCESS;
}

static tether_ret_t m_bulk_in(void *ctx, uint8_t *data, size_t cap, size_t *ret_len, unsigned t)
{
        mock *m = ctx;
        if (m->next_in >= m->n_in)
                return TETHER_ERR_TIMEOUT;
        size_t n = m->in_len[m->next_in] < cap ? m->in_len[m->next_in] : cap;
        memcpy(data, m->in[m->next_in++], n);
        *ret_len = n;
        return TETHER_SUCCESS;
}

static tether_ret_t m_control(void *ctx, uint8_t type, uint8_t request, uint16_t value, uint16_t index,
                              uint8_t *data, uint16_t len, size_t *ret_len, unsigned t)
{
        mock *m = ctx;
        if (m->n_ctl < 32)
                m->ctl[m->n_ctl++] = (ctl_call){ type, request, value, index, len };
        if (m->next_ctl_reply >= m->n_ctl_reply)
                return TETHER_ERR_IO;
        memcpy(data, m->ctl_reply[m->next_ctl_reply++], len < 8 ? len : 8);
        *ret_len = len;
        return TETHER_SUCCESS;
}

static tether_ret_t m_clear_halt(void *ctx, bool out)
{
        mock *m = ctx;
        if (out)
                m->halts_cleared_out++;
        else
                m->halts_cleared_in++;
        return TETHER_SUCCESS;
}

static const usbtmc_backend_ops mock_ops = {
        .bulk_out = m_bulk_out, .bulk_in = m_bulk_in, .control_in = m_control, .clear_halt = m_clear_halt,
};

static void reply(mock *m, uint8_t b0, uint8_t b1)
{
        m->ctl_reply[m->n_ctl_reply][0] = b0;
        m->ctl_reply[m->n_ctl_reply++][1] = b1;
}

/* A DEV_DEP_MSG_IN transfer the device will send. */
static void in_transfer(mock *m, uint8_t btag, const char *payload, bool eom)
{
        usbtmc_header h = { .msg_id = USBTMC_DEV_DEP_MSG_IN, .btag = btag, .transfer_size = (uint32_t)strlen(payload),
                            .attributes = eom ? USBTMC_ATTR_EOM : 0 };
        usbtmc_header_encode(&h, m->in[m->n_in]);
        memcpy(m->in[m->n_in] + USBTMC_HEADER_SIZE, payload, strlen(payload));
        m->in_len[m->n_in++] = USBTMC_HEADER_SIZE + usbtmc_padded(strlen(payload));
}

/* ---- framing ---- */

static void header_layout(void **state)
{
        uint8_t b[12];
        usbtmc_header h = { .msg_id = USBTMC_DEV_DEP_MSG_OUT, .btag = 0x5b, .transfer_size = 0x01020304,
                            .attributes = USBTMC_ATTR_EOM };
        usbtmc_header_encode(&h, b);
        const uint8_t want[12] = { 1, 0x5b, 0xa4, 0, 4, 3, 2, 1, 1, 0, 0, 0 };
        assert_memory_equal(b, want, 12);
        usbtmc_header d;
        assert_int_equal(usbtmc_header_decode(b, 12, &d), TETHER_SUCCESS);
        assert_int_equal(d.transfer_size, 0x01020304);
        b[2] ^= 1; /* bTagInverse wrong */
        assert_int_equal(usbtmc_header_decode(b, 12, &d), TETHER_ERR_IO);
        b[2] ^= 1;
        b[10] = 1; /* reserved not zero */
        assert_int_equal(usbtmc_header_decode(b, 12, &d), TETHER_ERR_IO);
        b[10] = 0;
        b[1] = 0;
        b[2] = 0xff; /* bTag 0 is never valid */
        assert_int_equal(usbtmc_header_decode(b, 12, &d), TETHER_ERR_IO);
        assert_int_equal(usbtmc_header_decode(b, 11, &d), TETHER_ERR_UNDERRUN);
}

static void btag_and_padding(void **state)
{
        assert_int_equal(usbtmc_next_btag(1), 2);
        assert_int_equal(usbtmc_next_btag(254), 255);
        assert_int_equal(usbtmc_next_btag(255), 1); /* never 0 */
        assert_int_equal(usbtmc_padded(0), 0);
        assert_int_equal(usbtmc_padded(1), 4);
        assert_int_equal(usbtmc_padded(4), 4);
        assert_int_equal(usbtmc_padded(6), 8);
}

static void write_splits_with_eom_on_last(void **state)
{
        mock m = { 0 };
        usbtmc t;
        usbtmc_init(&t, &mock_ops, &m);
        t.max_transfer = 8;
        assert_int_equal(usbtmc_write(&t, ":TIM:SCAL 1E-3\n", 15), TETHER_SUCCESS);
        assert_int_equal(m.n_out, 2);
        usbtmc_header a, b;
        assert_int_equal(usbtmc_header_decode(m.out[0], m.out_len[0], &a), TETHER_SUCCESS);
        assert_int_equal(usbtmc_header_decode(m.out[1], m.out_len[1], &b), TETHER_SUCCESS);
        assert_int_equal(a.transfer_size, 8);
        assert_int_equal(a.attributes & USBTMC_ATTR_EOM, 0);
        assert_int_equal(b.transfer_size, 7);
        assert_int_equal(b.attributes & USBTMC_ATTR_EOM, USBTMC_ATTR_EOM);
        assert_int_equal(b.btag, usbtmc_next_btag(a.btag));
        assert_int_equal(m.out_len[1], 12 + 8); /* 7 bytes padded to 8 */
        assert_int_equal(m.out[1][12 + 7], 0);
        assert_memory_equal(m.out[0] + 12, ":TIM:SCA", 8);
}

static void read_follows_eom_over_rounds(void **state)
{
        mock m = { 0 };
        usbtmc t;
        usbtmc_init(&t, &mock_ops, &m);
        /* btags: the first REQUEST gets 1, the second 2. */
        in_transfer(&m, 1, "+1.000", false);
        in_transfer(&m, 2, "E-03\n", true);
        char buf[64];
        size_t n = 0;
        assert_int_equal(usbtmc_read(&t, buf, sizeof(buf), &n), TETHER_SUCCESS);
        assert_int_equal(n, 11);
        assert_memory_equal(buf, "+1.000E-03\n", 11);
        assert_int_equal(m.n_out, 2); /* two REQUEST_DEV_DEP_MSG_IN */
        usbtmc_header r;
        usbtmc_header_decode(m.out[0], m.out_len[0], &r);
        assert_int_equal(r.msg_id, USBTMC_REQUEST_DEV_DEP_MSG_IN);
        assert_int_equal(r.transfer_size, sizeof(buf));
}

static void wrong_btag_aborts_and_clears(void **state)
{
        mock m = { 0 };
        usbtmc t;
        usbtmc_init(&t, &mock_ops, &m);
        in_transfer(&m, 9, "stale\n", true); /* the request will carry bTag 1 */
        reply(&m, USBTMC_STATUS_SUCCESS, 1);  /* INITIATE_ABORT_BULK_IN */
        reply(&m, USBTMC_STATUS_PENDING, 0);  /* CHECK_ABORT_BULK_IN_STATUS */
        reply(&m, USBTMC_STATUS_SUCCESS, 0);
        reply(&m, USBTMC_STATUS_SUCCESS, 0);  /* INITIATE_CLEAR */
        reply(&m, USBTMC_STATUS_SUCCESS, 0);  /* CHECK_CLEAR_STATUS */
        char buf[32];
        size_t n = 0;
        assert_int_equal(usbtmc_read(&t, buf, sizeof(buf), &n), TETHER_ERR_IO);
        assert_int_equal(m.n_ctl, 5);
        assert_int_equal(m.ctl[0].request, USBTMC_INITIATE_ABORT_BULK_IN);
        assert_int_equal(m.ctl[0].type, USBTMC_REQ_ENDPOINT);
        assert_int_equal(m.ctl[0].value, 1);      /* the bTag in flight */
        assert_int_equal(m.ctl[0].index, t.ep_in);
        assert_int_equal(m.ctl[0].len, 2);
        assert_int_equal(m.ctl[1].request, USBTMC_CHECK_ABORT_BULK_IN_STATUS);
        assert_int_equal(m.ctl[1].len, 8);
        assert_int_equal(m.ctl[2].request, USBTMC_CHECK_ABORT_BULK_IN_STATUS); /* polled while PENDING */
        assert_int_equal(m.ctl[3].request, USBTMC_INITIATE_CLEAR);
        assert_int_equal(m.ctl[3].type, USBTMC_REQ_INTERFACE);
        assert_int_equal(m.ctl[4].request, USBTMC_CHECK_CLEAR_STATUS);
        assert_int_equal(m.halts_cleared_out, 1); /* clear ends with CLEAR_FEATURE on bulk-OUT */
}

static void abort_with_nothing_in_flight(void **state)
{
        mock m = { 0 };
        usbtmc t;
        usbtmc_init(&t, &mock_ops, &m);
        reply(&m, USBTMC_STATUS_TRANSFER_NOT_IN_PROGRESS, 0);
        assert_int_equal(usbtmc_abort_bulk_in(&t), TETHER_SUCCESS);
        assert_int_equal(m.n_ctl, 1); /* no status polling */
}

static void abort_bulk_out_sequence(void **state)
{
        mock m = { 0 };
        usbtmc t;
        usbtmc_init(&t, &mock_ops, &m);
        reply(&m, USBTMC_STATUS_SUCCESS, 0);
        reply(&m, USBTMC_STATUS_PENDING, 0);
        reply(&m, USBTMC_STATUS_SUCCESS, 0);
        assert_int_equal(usbtmc_abort_bulk_out(&t), TETHER_SUCCESS);
        assert_int_equal(m.ctl[0].request, USBTMC_INITIATE_ABORT_BULK_OUT);
        assert_int_equal(m.ctl[0].index, t.ep_out);
        assert_int_equal(m.ctl[1].request, USBTMC_CHECK_ABORT_BULK_OUT_STATUS);
        assert_int_equal(m.ctl[2].request, USBTMC_CHECK_ABORT_BULK_OUT_STATUS);
        assert_int_equal(m.halts_cleared_out, 1);
}

static void clear_drains_while_bmclear(void **state)
{
        mock m = { 0 };
        usbtmc t;
        usbtmc_init(&t, &mock_ops, &m);
        t.max_packet = 16;
        reply(&m, USBTMC_STATUS_SUCCESS, 0);
        reply(&m, USBTMC_STATUS_PENDING, 1); /* bmClear: bulk-IN still has data */
        reply(&m, USBTMC_STATUS_SUCCESS, 0);
        m.in_len[0] = 16; /* a full packet, then a short one ends the drain */
        m.in_len[1] = 3;
        m.n_in = 2;
        assert_int_equal(usbtmc_clear(&t), TETHER_SUCCESS);
        assert_int_equal(m.next_in, 2);
        assert_int_equal(m.halts_cleared_out, 1);
}

static void status_byte_tags_cycle(void **state)
{
        mock m = { 0 };
        usbtmc t;
        usbtmc_init(&t, &mock_ops, &m);
        uint8_t stb = 0;
        for (int i = 0; i < 130; i++) {
                uint8_t tag = (uint8_t)(t.stb_btag >= 127 ? 2 : t.stb_btag + 1);
                m.ctl_reply[0][0] = USBTMC_STATUS_SUCCESS;
                m.ctl_reply[0][1] = tag;
                m.ctl_reply[0][2] = 0x10;
                m.n_ctl_reply = 1;
                m.next_ctl_reply = 0;
                m.n_ctl = 0;
                assert_int_equal(usbtmc_read_status_byte(&t, &stb), TETHER_SUCCESS);
                assert_true(m.ctl[0].value >= 2 && m.ctl[0].value <= 127);
                assert_int_equal(stb, 0x10);
        }
        /* A reply with another tag is out of step. */
        m.ctl_reply[0][1] = 1;
        m.next_ctl_reply = 0;
        assert_int_equal(usbtmc_read_status_byte(&t, &stb), TETHER_ERR_IO);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(header_layout),
                cmocka_unit_test(btag_and_padding),
                cmocka_unit_test(write_splits_with_eom_on_last),
                cmocka_unit_test(read_follows_eom_over_rounds),
                cmocka_unit_test(wrong_btag_aborts_and_clears),
                cmocka_unit_test(abort_with_nothing_in_flight),
                cmocka_unit_test(abort_bulk_out_sequence),
                cmocka_unit_test(clear_drains_while_bmclear),
                cmocka_unit_test(status_byte_tags_cycle),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
