/* SPDX-License-Identifier: MIT */
/* The simulators' shared IEEE 488.2/SCPI status (sim/scpi-dev/status.h):
 * the error queue and its overflow, SYSTem:ERRor?'s answers, the Standard
 * Event register's classes, *CLS, the status byte's summary and MSS, and
 * SCPI's condition/event/enable registers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "status.h"

static void queue_length_is_clamped(void **state)
{
        scpi_status st;
        scpi_status_init(&st, 0);
        assert_int_equal(st.queue_len, 1);
        scpi_status_init(&st, 1000);
        assert_int_equal(st.queue_len, SCPI_STATUS_QUEUE_MAX);
        scpi_status_init(&st, 20);
        assert_int_equal(st.queue_len, 20);
        assert_int_equal(st.n_errors, 0);
        assert_int_equal(st.esr | st.ese | st.sre, 0);
        assert_int_equal(st.last_error, 0);
}

static void errors_set_their_class_bit(void **state)
{
        static const struct {
                int code;
                uint8_t esr;
        } cases[] = {
                { -113, SCPI_ESR_CME }, { -100, SCPI_ESR_CME }, { -200, SCPI_ESR_EXE }, { -222, SCPI_ESR_EXE },
                { -350, SCPI_ESR_DDE }, { -410, SCPI_ESR_QYE }, { -420, SCPI_ESR_QYE },
                /* Outside the 488.2 classes: queued, no ESR bit. */
                { -500, 0 }, { -99, 0 }, { 1, 0 },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                scpi_status st;
                scpi_status_init(&st, 4);
                scpi_status_push_error(&st, cases[i].code);
                assert_int_equal(st.esr, cases[i].esr);
                assert_int_equal(st.last_error, cases[i].code);
                assert_int_equal(st.n_errors, 1);
        }
}

/* SYSTem:ERRor?'s next answer is want. */
static void next_is(scpi_status *st, const char *want)
{
        char a[SCPI_ERROR_ANSWER_MAX];
        scpi_status_next_error(st, a);
        assert_string_equal(a, want);
}

static void next_error_drains_oldest_first(void **state)
{
        scpi_status st;
        scpi_status_init(&st, 4);
        next_is(&st, "+0,\"No error\"");
        scpi_status_push_error(&st, -113);
        scpi_status_push_error(&st, -222);
        scpi_status_push_error(&st, -777);
        next_is(&st, "-113,\"Undefined header\"");
        next_is(&st, "-222,\"Data out of range\"");
        next_is(&st, "-777,\"Error\"");
        next_is(&st, "+0,\"No error\"");
        assert_int_equal(st.n_errors, 0);
        /* Reading the queue leaves the ESR alone. */
        assert_int_equal(st.esr, SCPI_ESR_CME | SCPI_ESR_EXE);
}

static void a_full_queue_reports_the_overflow_last(void **state)
{
        scpi_status st;
        scpi_status_init(&st, 3);
        for (int i = 0; i < 10; i++)
                scpi_status_push_error(&st, -100 - i);
        assert_int_equal(st.n_errors, 3);
        assert_int_equal(st.last_error, -109);
        next_is(&st, "-100,\"Command error\"");
        next_is(&st, "-101,\"Error\"");
        next_is(&st, "-350,\"Queue overflow\"");
        /* Room again: errors queue as before. */
        scpi_status_push_error(&st, -420);
        next_is(&st, "-420,\"Query UNTERMINATED\"");
}

static void error_texts(void **state)
{
        assert_string_equal(scpi_error_text(-102), "Syntax error");
        assert_string_equal(scpi_error_text(-211), "Trigger ignored");
        assert_string_equal(scpi_error_text(-230), "Data corrupt or stale");
        assert_string_equal(scpi_error_text(-410), "Query INTERRUPTED");
        assert_string_equal(scpi_error_text(0), "Error");
}

static void clear_and_take_esr(void **state)
{
        scpi_status st;
        scpi_status_init(&st, 4);
        st.ese = 0x20;
        st.sre = 0x30;
        scpi_status_push_error(&st, -113);
        st.esr |= SCPI_ESR_OPC;
        assert_int_equal(scpi_status_take_esr(&st), SCPI_ESR_CME | SCPI_ESR_OPC);
        assert_int_equal(scpi_status_take_esr(&st), 0);
        scpi_status_push_error(&st, -222);
        scpi_status_clear(&st);
        assert_int_equal(st.n_errors, 0);
        assert_int_equal(st.esr, 0);
        /* *CLS leaves the enables. */
        assert_int_equal(st.ese, 0x20);
        assert_int_equal(st.sre, 0x30);
}

static void status_byte_summary_and_mss(void **state)
{
        scpi_status st;
        scpi_status_init(&st, 4);
        assert_int_equal(scpi_status_byte(&st, 0), 0);
        /* The instrument's own bits pass; bit 6 is never the instrument's. */
        assert_int_equal(scpi_status_byte(&st, SCPI_STB_MAV | SCPI_STB_QUES), SCPI_STB_MAV | SCPI_STB_QUES);
        assert_int_equal(scpi_status_byte(&st, SCPI_STB_MSS), 0);
        scpi_status_push_error(&st, -113);
        assert_int_equal(scpi_status_byte(&st, 0), SCPI_STB_EAV);
        /* ESB only for an event the ESE enables. */
        st.ese = SCPI_ESR_EXE;
        assert_int_equal(scpi_status_byte(&st, 0), SCPI_STB_EAV);
        st.ese = SCPI_ESR_CME;
        assert_int_equal(scpi_status_byte(&st, 0), SCPI_STB_EAV | SCPI_STB_ESB);
        /* MSS when a summary bit the SRE enables is set. */
        st.sre = SCPI_STB_MAV;
        assert_int_equal(scpi_status_byte(&st, 0), SCPI_STB_EAV | SCPI_STB_ESB);
        assert_int_equal(scpi_status_byte(&st, SCPI_STB_MAV),
                         SCPI_STB_EAV | SCPI_STB_ESB | SCPI_STB_MAV | SCPI_STB_MSS);
        st.sre = SCPI_STB_ESB;
        assert_int_equal(scpi_status_byte(&st, 0), SCPI_STB_EAV | SCPI_STB_ESB | SCPI_STB_MSS);
        /* An SRE with bit 6 set does not make MSS of itself. */
        scpi_status_clear(&st);
        st.sre = 0xff;
        assert_int_equal(scpi_status_byte(&st, 0), 0);
        assert_int_equal(scpi_status_byte(&st, SCPI_STB_OPER), SCPI_STB_OPER | SCPI_STB_MSS);
}

static void register_latches_rises(void **state)
{
        scpi_register r = { 0 };
        scpi_register_set(&r, 0x0010, true);
        assert_int_equal(r.cond, 0x0010);
        assert_int_equal(r.event, 0x0010);
        assert_false(scpi_register_summary(&r));
        r.enable = 0x0010;
        assert_true(scpi_register_summary(&r));
        assert_int_equal(scpi_register_take_event(&r), 0x0010);
        assert_int_equal(r.event, 0);
        assert_false(scpi_register_summary(&r));
        /* Already set: no new rise; a fall is no event either. */
        scpi_register_set(&r, 0x0010, true);
        assert_int_equal(r.event, 0);
        scpi_register_set(&r, 0x0010, false);
        assert_int_equal(r.cond, 0);
        assert_int_equal(r.event, 0);
        /* Several bits at once, only those that rose latch. */
        scpi_register_set(&r, 0x0100, true);
        scpi_register_take_event(&r);
        scpi_register_set(&r, 0x0120, true);
        assert_int_equal(r.cond, 0x0120);
        assert_int_equal(r.event, 0x0020);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(queue_length_is_clamped),
                cmocka_unit_test(errors_set_their_class_bit),
                cmocka_unit_test(next_error_drains_oldest_first),
                cmocka_unit_test(a_full_queue_reports_the_overflow_last),
                cmocka_unit_test(error_texts),
                cmocka_unit_test(clear_and_take_esr),
                cmocka_unit_test(status_byte_summary_and_mss),
                cmocka_unit_test(register_latches_rises),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
