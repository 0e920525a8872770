/* SPDX-License-Identifier: MIT */
/*
 * The generic USBTMC driver against the simulated Keysight 34461A DMM,
 * with the simulated DSO-X 2002A beside it and every bundle loaded
 * (tetherd --simulate dsox2002a --simulate 34461a): DSOX2000 serves the
 * scope, the generic driver the DMM. The DMM differs where instruments
 * differ (docs/sim-dmm.md): TermChar, no interrupt-IN (the status byte in
 * the control reply, service requests only as MSS under *SRE), REN/GTL/LLO
 * but no TRIGGER. Each is checked end to end through tetherd.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tether/usbtmc-instrument.h>

#include "dsox2000/dsox2000.h"
#include "core/clock.h"
#include "harness.h"
#include "tmc-client.h"

#define DMM_SERIAL "DMMINT01"
#define SCOPE_SERIAL "SCOPEINT1"

static const char *const both_args[] = { "--simulate", "dsox2002a:" SCOPE_SERIAL, NULL };
static harness H = { .simulate = "34461a:" DMM_SERIAL, .args = both_args };

static int setup(void **state)
{
        return harness_start(&H);
}

static int teardown(void **state)
{
        return harness_stop(&H) == 0 ? 0 : -1;
}

static uint64_t dmm_id(tether_session *s)
{
        find_ctx fc = { s, TMC_CLASS, 0 };
        assert_true(harness_wait(service_up, &fc, 10000));
        return fc.id;
}

static tether_connect *open_dmm(tether_session *s)
{
        tether_connect *c = NULL;
        assert_int_equal(tether_service_open(s, dmm_id(s), 0, 0, &c), TETHER_SUCCESS);
        return c;
}

/* v is consumed (harness_set's rule). */
static tether_ret_t set_prop(tether_session *s, uint64_t id, const char *key, tether_value *v)
{
        return harness_set(s, id, key, v);
}

/* Each driver on its own instrument: DSOX2000 the scope, the generic one
 * the DMM, and neither on the other's. */
static void each_driver_its_instrument(void **state)
{
        tether_session *s = harness_session(&H);
        uint64_t dmm = dmm_id(s);
        find_ctx fc = { s, DSO_CLASS, 0 };
        assert_true(harness_wait(service_up, &fc, 10000));
        assert_string_equal(prop_string(s, fc.id, DSO_PROP_SERIAL), SCOPE_SERIAL);
        assert_string_equal(prop_string(s, dmm, TMC_PROP_SERIAL), DMM_SERIAL);
        tether_value *m = NULL;
        uint64_t *ids = NULL;
        size_t n = 0;
        tether_service_matching(TMC_CLASS, &m);
        assert_int_equal(tether_get_matching_services(s, m, &ids, &n), TETHER_SUCCESS);
        assert_int_equal(n, 1); /* not on the scope */
        free(ids);
        tether_value_unref(m);
        tether_session_close(s);
}

static void identity_and_capabilities(void **state)
{
        tether_session *s = harness_session(&H);
        uint64_t id = dmm_id(s);
        assert_string_equal(prop_string(s, id, TMC_PROP_VENDOR), "Keysight Technologies");
        assert_string_equal(prop_string(s, id, TMC_PROP_MODEL), "34461A");
        assert_string_equal(prop_string(s, id, TMC_PROP_FIRMWARE), "A.02.08-02.37-02.08-00.49-01-01");
        assert_string_equal(prop_string(s, id, TMC_PROP_VISA_RESOURCE), "USB0::0x2A8D::0x1301::" DMM_SERIAL "::INSTR");
        assert_true(prop_bool(s, id, TMC_PROP_CAN_TERM_CHAR));
        assert_true(prop_bool(s, id, TMC_PROP_CAN_PULSE));
        assert_false(prop_bool(s, id, TMC_PROP_INTERRUPT_IN));
        assert_true(prop_bool(s, id, TMC_PROP_CAN_REMOTE_LOCAL));
        assert_false(prop_bool(s, id, TMC_PROP_CAN_TRIGGER));
        assert_false(prop_bool(s, id, TMC_PROP_SR1));
        assert_true(prop_bool(s, id, TMC_PROP_RL1));
        assert_false(prop_bool(s, id, TMC_PROP_IS_488_2));

        tether_connect *c = open_dmm(s);
        /* TRIGGER would halt the DMM's bulk-OUT: the driver refuses it. */
        assert_int_equal(call0(c, TMC_TRIGGER), TETHER_ERR_UNSUPPORTED);
        assert_int_equal(call1(c, TMC_REN_CONTROL, 1), TETHER_SUCCESS);
        assert_int_equal(call0(c, TMC_LOCAL_LOCKOUT), TETHER_SUCCESS);
        assert_int_equal(call0(c, TMC_GO_TO_LOCAL), TETHER_SUCCESS);
        assert_int_equal(call1(c, TMC_REN_CONTROL, 0), TETHER_SUCCESS);
        assert_int_equal(call0(c, TMC_INDICATOR_PULSE), TETHER_SUCCESS);
        assert_true(!strncmp(ask(c, "*IDN?\n"), "Keysight Technologies,34461A," DMM_SERIAL ",", 31));
        tether_service_close(c);
        tether_session_close(s);
}

static double reading(tether_connect *c, const char *cmd)
{
        const char *a = ask(c, cmd);
        char *end = NULL;
        double v = strtod(a, &end);
        assert_true(end != a && *end == '\n');
        return v;
}

/* The simulator's inputs, within a few resolution steps of noise. */
static void measurements(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c = open_dmm(s);
        assert_int_equal(tmc_write(c, "*RST;*CLS\n"), TETHER_SUCCESS);
        double v = reading(c, "MEAS:VOLT:DC? 10\n");
        assert_true(v > 4.99873 - 5e-5 && v < 4.99873 + 5e-5);
        v = reading(c, "MEAS:VOLT:AC?\n");
        assert_true(v > 0.707107 - 1e-4 && v < 0.707107 + 1e-4);
        v = reading(c, "MEAS:CURR:DC?\n");
        assert_true(v > 12.3e-3 - 1e-6 && v < 12.3e-3 + 1e-6);
        v = reading(c, "MEAS:RES?\n");
        assert_true(v > 9986.2 - 1 && v < 9986.2 + 1);
        assert_string_equal(ask(c, "SYST:ERR?\n"), "+0,\"No error\"\n");
        tether_service_close(c);
        tether_session_close(s);
}

/* TermChar: the DMM ends a transfer after it, the driver a read. */
static void term_char_reads(void **state)
{
        tether_session *s = harness_session(&H);
        uint64_t id = dmm_id(s);
        tether_connect *c = open_dmm(s);
        tether_value *v = NULL;
        tether_value_new_uint(',', 8, &v);
        assert_int_equal(set_prop(s, id, TMC_PROP_TERM_CHAR, v), TETHER_SUCCESS);
        tether_value_new_bool(true, &v);
        assert_int_equal(set_prop(s, id, TMC_PROP_TERM_CHAR_ON, v), TETHER_SUCCESS);
        assert_int_equal(tmc_write(c, "*RST;:CONF:VOLT:DC 10;:VOLT:NPLC 0.02;:SAMP:COUN 3\n"), TETHER_SUCCESS);
        assert_int_equal(tmc_write(c, "READ?\n"), TETHER_SUCCESS);
        char buf[256];
        size_t n = 0;
        uint64_t end = 0;
        for (int i = 0; i < 3; i++) {
                assert_int_equal(tmc_read(c, buf, sizeof(buf) - 1, &n, &end), TETHER_SUCCESS);
                buf[n] = '\0';
                if (i < 2) {
                        assert_int_equal(end, TMC_END_TERM_CHAR);
                        assert_int_equal(buf[n - 1], ',');
                } else {
                        assert_true(end & TMC_END_EOM);
                        assert_int_equal(buf[n - 1], '\n');
                }
                double r = strtod(buf, NULL);
                assert_true(r > 4.99 && r < 5.01);
        }
        tether_value_new_bool(false, &v);
        assert_int_equal(set_prop(s, id, TMC_PROP_TERM_CHAR_ON, v), TETHER_SUCCESS);
        assert_int_equal(tmc_write(c, "*RST\n"), TETHER_SUCCESS);
        tether_service_close(c);
        tether_session_close(s);
}

/* The status byte comes in READ_STATUS_BYTE's control reply: MAV while an
 * answer waits, as *STB? says; a device clear empties the output. */
static void status_byte_and_clear(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c = open_dmm(s);
        assert_int_equal(tmc_write(c, "*CLS;*SRE 0\n"), TETHER_SUCCESS);
        assert_int_equal(read_stb(c) & 0x10, 0);
        assert_int_equal(tmc_write(c, "*IDN?\n"), TETHER_SUCCESS);
        uint64_t until = clock_mono_ms() + 2000;
        while (!(read_stb(c) & 0x10) && clock_mono_ms() < until)
                usleep(10000);
        assert_int_equal(read_stb(c) & 0x10, 0x10); /* MAV: an answer waits */
        assert_int_equal(call0(c, TMC_CLEAR), TETHER_SUCCESS);
        assert_int_equal(read_stb(c) & 0x10, 0); /* cleared: the answer is gone */
        assert_string_equal(ask(c, "*STB?\n"), "+0\n");
        assert_true(!strncmp(ask(c, "*IDN?\n"), "Keysight Technologies,34461A", 28));
        tether_service_close(c);
        tether_session_close(s);
}

typedef struct srq_log {
        unsigned delivered;
        uint64_t seq, lost;
        uint8_t stb;
} srq_log;

static void on_srq(void *refcon, tether_ret_t r, const uint64_t *args, uint32_t n)
{
        srq_log *l = refcon;
        if (r != TETHER_SUCCESS || n < TMC_SRQ_ARGS)
                return;
        l->delivered++;
        l->seq = args[TMC_SRQ_ARG_SEQ];
        l->lost = args[TMC_SRQ_ARG_LOST];
        l->stb = (uint8_t)args[TMC_SRQ_ARG_STB];
}

static void wait_srq(tether_notification_port *port, srq_log *l, unsigned want, unsigned ms)
{
        int fd = tether_notification_port_get_fd(port);
        for (uint64_t until = clock_mono_ms() + ms; l->delivered < want && clock_mono_ms() < until;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                poll(&p, 1, 50);
                tether_notification_port_dispatch(port);
        }
}

/* A service request from an instrument without interrupt-IN: the DMM's
 * reply always has RQS 0, so the driver finds MSS as the summary bits
 * under the *SRE mask it saw written. Two conditions: a limit failure
 * (QUES), then measurement complete (ESB). */
static void srq_without_interrupt_endpoint(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *c = open_dmm(s);
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(s, &port), TETHER_SUCCESS);
        srq_log l = { 0 };
        assert_int_equal(tmc_write(c, "*RST;*CLS;:STAT:PRES;*SRE 8;:STAT:QUES:ENAB 4096\n"), TETHER_SUCCESS);
        assert_int_equal(tether_call_async_method(c, TMC_SRQ_ENABLE, port, on_srq, &l, NULL, 0, NULL, 0, NULL, NULL,
                                                  NULL, NULL),
                         TETHER_SUCCESS);
        /* No condition yet: nothing comes. */
        wait_srq(port, &l, 1, 400);
        assert_int_equal(l.delivered, 0);
        assert_int_equal(tmc_write(c, "CONF:VOLT 10;:VOLT:NPLC 0.02;:CALC:LIM:LOW 3.2;UPP 4.5;:CALC:LIM:STAT ON;:INIT\n"),
                         TETHER_SUCCESS);
        wait_srq(port, &l, 1, 5000);
        assert_int_equal(l.delivered, 1);
        assert_int_equal(l.seq, 1);
        assert_int_equal(l.lost, 0);
        assert_int_equal(l.stb & 0x48, 0x48); /* QUES, and MSS */
        /* Cleared: *CLS drops the event, MSS falls; the next condition is a new SRQ. */
        assert_int_equal(tmc_write(c, "*CLS;:CALC:LIM:STAT OFF;*ESE 1;*SRE 32;:CONF:VOLT:DC;:VOLT:NPLC 0.02;:INIT;*OPC\n"),
                         TETHER_SUCCESS);
        wait_srq(port, &l, 2, 5000);
        assert_int_equal(l.delivered, 2);
        assert_int_equal(l.seq, 2);
        assert_int_equal(l.stb & 0x60, 0x60); /* ESB, and MSS */
        assert_int_equal(call0(c, TMC_SRQ_DISABLE), TETHER_SUCCESS);
        assert_int_equal(tmc_write(c, "*CLS;*ESE 0;*SRE 0\n"), TETHER_SUCCESS);
        tether_notification_port_destroy(port);
        tether_service_close(c);
        tether_session_close(s);
}

/* The lock: another connection gets Busy until it is released. */
static void lock(void **state)
{
        tether_session *s = harness_session(&H);
        tether_connect *a = open_dmm(s), *b = open_dmm(s);
        assert_int_equal(call1(a, TMC_LOCK, 0), TETHER_SUCCESS);
        char buf[64];
        size_t n = sizeof(buf);
        uint64_t end = 0;
        uint32_t n_end = 1;
        assert_int_equal(tether_call_method(b, TMC_QUERY, NULL, 0, "*IDN?\n", 6, &end, &n_end, buf, &n),
                         TETHER_ERR_BUSY);
        assert_int_equal(call1(b, TMC_LOCK, 0), TETHER_ERR_BUSY);
        assert_true(!strncmp(ask(a, "*IDN?\n"), "Keysight", 8));
        assert_int_equal(call0(a, TMC_UNLOCK), TETHER_SUCCESS);
        assert_true(!strncmp(ask(b, "*IDN?\n"), "Keysight", 8));
        tether_service_close(a);
        tether_service_close(b);
        tether_session_close(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(each_driver_its_instrument),
                cmocka_unit_test(identity_and_capabilities),
                cmocka_unit_test(measurements),
                cmocka_unit_test(term_char_reads),
                cmocka_unit_test(status_byte_and_clear),
                cmocka_unit_test(srq_without_interrupt_endpoint),
                cmocka_unit_test(lock),
        };
        return cmocka_run_group_tests_name("generic driver and the 34461A", tests, setup, teardown);
}
