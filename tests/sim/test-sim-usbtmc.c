/* SPDX-License-Identifier: MIT */
/* tether's USBTMC host code against the simulated scope's USBTMC device:
 * queries, large multi-transfer reads, capabilities, status, and each
 * injected fault with its recovery, checking no stale data comes back. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scpi/scpi.h"
#include "usbtmc-device.h"

typedef struct rig {
        sim_scope *scope;
        sim_usbtmc *dev;
        usbtmc t;
} rig;

static int setup(void **state)
{
        rig *r = calloc(1, sizeof(*r));
        sim_scope_new(NULL, &r->scope);
        sim_usbtmc_new(r->scope, &r->dev);
        usbtmc_init(&r->t, &sim_usbtmc_ops, r->dev);
        r->t.ep_interrupt = SIM_USBTMC_EP_INTERRUPT; /* as the real scope's descriptors say */
        *state = r;
        return 0;
}

static int teardown(void **state)
{
        rig *r = *state;
        sim_usbtmc_free(r->dev);
        sim_scope_free(r->scope);
        free(r);
        return 0;
}

static double ms_now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static char answer[256];

static tether_ret_t query(rig *r, const char *cmd)
{
        tether_ret_t e = usbtmc_write(&r->t, cmd, strlen(cmd));
        size_t n = 0;
        memset(answer, 0, sizeof(answer));
        if (e == TETHER_SUCCESS)
                e = usbtmc_read(&r->t, answer, sizeof(answer) - 1, &n);
        return e;
}

static void idn_over_usbtmc(void **state)
{
        rig *r = *state;
        assert_int_equal(query(r, "*IDN?\n"), TETHER_SUCCESS);
        assert_string_equal(answer, "AGILENT TECHNOLOGIES,DSO-X 2002A,MY57235663,02.42.2017032900\n");
}

static void capabilities_and_status_byte(void **state)
{
        rig *r = *state;
        usbtmc_caps c;
        assert_int_equal(usbtmc_get_capabilities(&r->t, &c), TETHER_SUCCESS);
        assert_int_equal(c.bcd_usbtmc, 0x0100);
        assert_int_equal(c.bcd_usb488, 0x0100);
        assert_true(c.usb488_interface_caps & USB488_CAP_IS_488_2);
        uint8_t stb = 0xff;
        assert_int_equal(usbtmc_read_status_byte(&r->t, &stb), TETHER_SUCCESS);
        assert_int_equal(stb, 0);
        usbtmc_write(&r->t, "*IDN?", 5);
        assert_int_equal(usbtmc_read_status_byte(&r->t, &stb), TETHER_SUCCESS);
        assert_int_equal(stb & 0x10, 0x10); /* MAV: an answer waits */
}

/* With an interrupt endpoint the status byte arrives there; the control
 * reply's STB field is reserved (0). A host that reads only the control
 * reply never sees MAV. */
static void status_byte_comes_on_interrupt_in(void **state)
{
        rig *r = *state;
        uint8_t stb = 0;
        usbtmc_write(&r->t, "*IDN?", 5);
        r->t.ep_interrupt = 0;
        assert_int_equal(usbtmc_read_status_byte(&r->t, &stb), TETHER_SUCCESS);
        assert_int_equal(stb, 0);
        r->t.ep_interrupt = SIM_USBTMC_EP_INTERRUPT;
        /* The notification the host ignored is still queued: it is not
         * ours (another bTag) and is skipped. */
        assert_int_equal(usbtmc_read_status_byte(&r->t, &stb), TETHER_SUCCESS);
        assert_int_equal(stb & 0x10, 0x10);
        /* An SRQ notification met on the way is kept for the caller. */
        sim_usbtmc_notify_srq(r->dev);
        assert_false(r->t.srq_pending);
        assert_int_equal(usbtmc_read_status_byte(&r->t, &stb), TETHER_SUCCESS);
        assert_int_equal(stb & 0x10, 0x10);
        assert_true(r->t.srq_pending);
        assert_int_equal(r->t.srq_stb & 0x10, 0x10);
        /* Nothing more queued: the interrupt pipe is empty. */
        uint8_t n[2];
        size_t got = 0;
        assert_int_equal(sim_usbtmc_ops.interrupt_in(r->dev, n, 2, &got, 10), TETHER_ERR_TIMEOUT);
}

static void full_record_in_many_transfers(void **state)
{
        rig *r = *state;
        r->t.max_transfer = 4096; /* 62,500 points take 16 rounds */
        /* After POIN:MODE the subsystem is WAVeform:POINts, so the points need
         * an absolute header (as on the real instrument). */
        const char *setup_cmd = ":AUT;:WAV:SOUR CHAN1;FORM BYTE;POIN:MODE NORM;:WAV:POIN 62500";
        assert_int_equal(usbtmc_write(&r->t, setup_cmd, strlen(setup_cmd)), TETHER_SUCCESS);
        assert_int_equal(query(r, ":WAV:PRE?"), TETHER_SUCCESS);
        scpi_preamble p;
        assert_int_equal(scpi_preamble_parse(answer, &p), TETHER_SUCCESS);
        assert_int_equal(p.points, 62500);
        assert_int_equal(usbtmc_write(&r->t, ":WAV:DATA?", 10), TETHER_SUCCESS);
        uint8_t *buf = malloc(70000);
        size_t n = 0;
        assert_int_equal(usbtmc_read(&r->t, buf, 70000, &n), TETHER_SUCCESS);
        const uint8_t *data;
        size_t len;
        assert_int_equal(scpi_block_parse(buf, n, &data, &len), TETHER_SUCCESS);
        assert_int_equal(len, 62500);
        double *v = malloc(62500 * sizeof(double));
        assert_int_equal(scpi_samples_to_volts(&p, data, len, true, true, v, 62500), TETHER_SUCCESS);
        double lo = 9, hi = -9;
        for (size_t i = 0; i < 62500; i++) {
                lo = v[i] < lo ? v[i] : lo;
                hi = v[i] > hi ? v[i] : hi;
        }
        assert_true(lo > -0.1 && lo < 0.1);  /* the probe-compensation square wave */
        assert_true(hi > 2.4 && hi < 2.6);
        free(v);
        free(buf);
}

static void overrun_keeps_the_stream_in_step(void **state)
{
        rig *r = *state;
        char small[8];
        size_t n = 0;
        usbtmc_write(&r->t, "*IDN?", 5);
        assert_int_equal(usbtmc_read(&r->t, small, sizeof(small), &n), TETHER_ERR_OVERRUN);
        assert_int_equal(n, sizeof(small));
        /* The rest was drained: the next answer is the next question's. */
        assert_int_equal(query(r, "*OPC?"), TETHER_SUCCESS);
        assert_string_equal(answer, "1\n");
}

static void delay_past_timeout_then_recovers(void **state)
{
        rig *r = *state;
        /* The late answer is held back for the whole timeout: a short one. */
        r->t.timeout_ms = 200;
        sim_usbtmc_inject(r->dev, SIM_FAULT_DELAY);
        double t0 = ms_now();
        assert_int_equal(query(r, "*IDN?"), TETHER_ERR_TIMEOUT);
        assert_true(ms_now() - t0 >= 200);
        /* The late answer was flushed by the abort and clear: the next
         * query gets its own answer, not the stale *IDN? one. */
        assert_int_equal(query(r, ":TIM:SCAL?"), TETHER_SUCCESS);
        assert_string_equal(answer, "+1.00000000E-04\n");
}

static void wrong_btag_then_recovers(void **state)
{
        rig *r = *state;
        sim_usbtmc_inject(r->dev, SIM_FAULT_WRONG_BTAG);
        assert_int_equal(query(r, "*IDN?"), TETHER_ERR_IO);
        assert_int_equal(query(r, "*OPC?"), TETHER_SUCCESS);
        assert_string_equal(answer, "1\n");
}

static void short_packets_are_reassembled(void **state)
{
        rig *r = *state;
        sim_usbtmc_inject(r->dev, SIM_FAULT_SHORT_PACKETS);
        assert_int_equal(query(r, "*IDN?"), TETHER_SUCCESS);
        assert_string_equal(answer, "AGILENT TECHNOLOGIES,DSO-X 2002A,MY57235663,02.42.2017032900\n");
}

static void stall_then_recovers(void **state)
{
        rig *r = *state;
        sim_usbtmc_inject(r->dev, SIM_FAULT_STALL);
        assert_int_equal(query(r, "*IDN?"), TETHER_ERR_IO);
        assert_int_equal(query(r, "*OPC?"), TETHER_SUCCESS);
        assert_string_equal(answer, "1\n");
}

static void unplugged(void **state)
{
        rig *r = *state;
        sim_usbtmc_inject(r->dev, SIM_FAULT_UNPLUG);
        assert_int_equal(query(r, "*IDN?"), TETHER_ERR_NO_DEVICE);
        uint8_t stb;
        assert_int_equal(usbtmc_read_status_byte(&r->t, &stb), TETHER_ERR_NO_DEVICE);
        sim_usbtmc_reset_faults(r->dev); /* plugged back in */
        assert_int_equal(query(r, "*OPC?"), TETHER_SUCCESS);
        assert_string_equal(answer, "1\n");
}

static void read_with_nothing_asked(void **state)
{
        rig *r = *state;
        char buf[16];
        size_t n;
        /* No query was sent: the scope logs -420, NAKs bulk-IN until the
         * read times out (its whole timeout), and the link recovers. */
        r->t.timeout_ms = 200;
        double t0 = ms_now();
        assert_int_equal(usbtmc_read(&r->t, buf, sizeof(buf), &n), TETHER_ERR_TIMEOUT);
        assert_true(ms_now() - t0 >= 200);
        assert_int_equal(query(r, ":SYST:ERR?"), TETHER_SUCCESS);
        assert_string_equal(answer, "-420,\"Query UNTERMINATED\"\n");
}


static void acquisition_takes_a_sweep(void **state)
{
        rig *r = *state;
        /* 20 ms/div: a single acquisition sweeps 200 ms. */
        assert_int_equal(usbtmc_write(&r->t, ":TIM:SCAL 20ms", 14), TETHER_SUCCESS);
        r->t.timeout_ms = 100;
        assert_int_equal(query(r, ":DIG CHAN1;*OPC?"), TETHER_ERR_TIMEOUT);
        /* Given time for the sweep, the same request answers once it ends. */
        r->t.timeout_ms = 1000;
        double t0 = ms_now();
        assert_int_equal(query(r, ":DIG CHAN1;*OPC?"), TETHER_SUCCESS);
        assert_string_equal(answer, "1\n");
        assert_true(ms_now() - t0 >= 190);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        const struct CMUnitTest tests[] = {
                T(idn_over_usbtmc),
                T(capabilities_and_status_byte),
                T(status_byte_comes_on_interrupt_in),
                T(full_record_in_many_transfers),
                T(overrun_keeps_the_stream_in_step),
                T(delay_past_timeout_then_recovers),
                T(wrong_btag_then_recovers),
                T(short_packets_are_reassembled),
                T(stall_then_recovers),
                T(unplugged),
                T(read_with_nothing_asked),
                T(acquisition_takes_a_sweep),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
