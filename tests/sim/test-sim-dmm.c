/* SPDX-License-Identifier: MIT */
/* The simulated 34461A at the SCPI level, on a clock the test steps: its
 * answers and their formats, readings that follow the seed, a measurement
 * that takes its integration time, the trigger system, ranges and
 * resolution, limit testing, the status registers and the service
 * request (MSS) they raise, the error queue. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmm.h"

typedef struct rig {
        double t; /* the DMM's clock, seconds */
        sim_dmm *m;
        char out[1 << 18];
} rig;

static double clock_of(void *ctx)
{
        return ((rig *)ctx)->t;
}

static sim_dmm *make(rig *r, uint64_t seed)
{
        sim_dmm_config cfg = { .seed = seed, .clock = clock_of, .clock_ctx = r };
        sim_dmm *m = NULL;
        assert_int_equal(sim_dmm_new(&cfg, &m), TETHER_SUCCESS);
        return m;
}

static int setup(void **state)
{
        rig *r = calloc(1, sizeof(*r));
        r->t = 100;
        r->m = make(r, 1);
        *state = r;
        return 0;
}

static int teardown(void **state)
{
        rig *r = *state;
        sim_dmm_free(r->m);
        free(r);
        return 0;
}

static void send(rig *r, const char *cmd)
{
        sim_dmm_execute(r->m, cmd, strlen(cmd));
}

/* The answer as a host would get it: only once the DMM says it may go. */
static const char *answer(rig *r)
{
        assert_int_equal(sim_dmm_output_ready_in_ms(r->m), 0);
        size_t n = sim_dmm_output_take(r->m, (uint8_t *)r->out, sizeof(r->out) - 1);
        r->out[n] = '\0';
        return r->out;
}

static const char *query(rig *r, const char *cmd)
{
        send(r, cmd);
        return answer(r);
}

/* A query whose answer waits for a measurement: its wait, then it. */
static const char *query_after(rig *r, const char *cmd, double seconds)
{
        send(r, cmd);
        unsigned ms = sim_dmm_output_ready_in_ms(r->m);
        assert_true(fabs(ms - seconds * 1000) <= 2);
        r->t += seconds + 1e-6; /* just past it: the clock is a double */
        return answer(r);
}

static void identity_and_power_on(void **state)
{
        rig *r = *state;
        assert_string_equal(query(r, "*IDN?"),
                            "Keysight Technologies,34461A,MY59001234,A.02.08-02.37-02.08-00.49-01-01\n");
        /* Power On in the Standard Event register, once. */
        assert_string_equal(query(r, "*ESR?"), "+128\n");
        assert_string_equal(query(r, "*esr?"), "+0\n");
        assert_string_equal(query(r, "SYST:ERR?"), "+0,\"No error\"\n");
        assert_string_equal(query(r, "SYSTem:ERRor:NEXT?"), "+0,\"No error\"\n");
        /* *RST's settings. */
        assert_string_equal(query(r, "FUNC?;:SAMP:COUN?;:TRIG:SOUR?;:VOLT:NPLC?;:VOLT:RANG:AUTO?;:CALC:LIM?"),
                            "\"VOLT\";+1;IMM;+1.00000000E+01;1;0\n");
        sim_dmm_config bad = { .serial = "MY1,2" };
        sim_dmm *m = NULL;
        assert_int_equal(sim_dmm_new(&bad, &m), TETHER_ERR_BAD_ARGUMENT);
}

/* 10 PLC at 50 Hz: 0.2 s a reading, and the answer waits for it. The
 * value follows the seed: the same seed, the same readings. */
static void readings_follow_the_seed(void **state)
{
        rig *r = *state;
        assert_string_equal(query_after(r, "MEAS:VOLT:DC?", 0.2), "+4.99873000E+00\n");
        assert_string_equal(query_after(r, "MEAS?", 0.2), "+4.99873000E+00\n");
        /* The same seed again: the same sequence. */
        rig *again = calloc(1, sizeof(*again));
        again->m = make(again, 1);
        assert_string_equal(query_after(again, "MEASure:VOLTage:DC?", 0.2), "+4.99873000E+00\n");
        assert_string_equal(query_after(again, "MEAS:VOLT?", 0.2), "+4.99873000E+00\n");
        sim_dmm_free(again->m);
        /* Another seed: other noise, the same input within it. */
        again->m = make(again, 2);
        int differ = 0;
        send(r, "CONF:VOLT:DC;:SAMP:COUN 20");
        send(again, "CONF:VOLT:DC;:SAMP:COUN 20");
        query_after(r, "READ?", 4.0);
        const char *other = query_after(again, "READ?", 4.0);
        double a[20], b[20];
        const char *p = r->out, *q = other;
        for (int i = 0; i < 20; i++) {
                char *end;
                a[i] = strtod(p, &end);
                p = end + 1;
                b[i] = strtod(q, &end);
                q = end + 1;
                assert_true(fabs(a[i] - 4.99873) <= 3e-5);
                assert_true(fabs(b[i] - 4.99873) <= 3e-5);
                differ += a[i] != b[i];
        }
        assert_true(differ > 0);
        sim_dmm_free(again->m);
        free(again);
}

static void functions_ranges_and_resolution(void **state)
{
        rig *r = *state;
        /* The resolution the integration time gives: 100 ppm of the 10 V
         * range at 0.02 PLC (MAX resolution), 1 ppm at 10 PLC. */
        send(r, "CONF:VOLT 10,MAX");
        assert_string_equal(query(r, "CONF?;:VOLT:NPLC?"), "\"VOLT +1.00000000E+01,+1.00000000E-03\";+2.00000000E-02\n");
        assert_string_equal(query_after(r, "READ?", 0.0004), "+4.99800000E+00\n");
        send(r, "CONF:VOLT:DC 10,1E-5");
        assert_string_equal(query(r, "VOLT:DC:NPLC?"), "+1.00000000E+01\n"); /* the guide's example */
        send(r, "CONF:VOLT:DC 10,3E-6");
        assert_string_equal(query(r, "VOLT:DC:NPLC?"), "+1.00000000E+02\n");
        send(r, "CONF:VOLT:DC 10,1E-6"); /* finer than 100 PLC gives */
        assert_string_equal(query(r, "SYST:ERR?"), "-222,\"Data out of range\"\n");
        /* [SENSe:] is optional, and so is :DC. */
        send(r, "SENSe:VOLTage:DC:RANGe 100");
        assert_string_equal(query(r, "VOLT:RANG?;RANG:AUTO?"), "+1.00000000E+02;0\n");
        assert_string_equal(query(r, "VOLT:RANG? MIN;:VOLT:RANG? MAX"), "+1.00000000E-01;+1.00000000E+03\n");
        /* Autorange: 12.3 mA on the 100 mA range, 10 kOhm on 10 kOhm. */
        assert_string_equal(query_after(r, "MEAS:CURR?", 0.2), "+1.23000000E-02\n");
        assert_string_equal(query(r, "CURR:RANG?"), "+1.00000000E-01\n");
        assert_string_equal(query_after(r, "MEAS:RES?", 0.2), "+9.98620000E+03\n");
        assert_string_equal(query_after(r, "MEAS:VOLT:AC?", 0.1), "+7.07100000E-01\n");
        assert_string_equal(query_after(r, "MEAS:CURR:AC?", 0.1), "+5.00010000E-03\n");
        assert_string_equal(query(r, "FUNC?"), "\"CURR:AC\"\n");
        send(r, "FUNC \"VOLT:AC\"");
        assert_string_equal(query(r, "FUNC?"), "\"VOLT:AC\"\n");
        send(r, "FUNC 'RES'");
        assert_string_equal(query(r, "FUNC?"), "\"RES\"\n");
        send(r, "FUNC \"FREQ\"");
        assert_string_equal(query(r, "SYST:ERR?"), "-224,\"Illegal parameter value\"\n");
        /* An input beyond 120 % of a fixed range: overload, and a
         * voltage overload event in the Questionable Data register. */
        send(r, "CONF:VOLT:DC 1");
        assert_string_equal(query_after(r, "READ?", 0.2), "+9.90000000E+37\n");
        assert_string_equal(query(r, "STAT:QUES?;:STAT:QUES?"), "+1;+0\n");
        sim_dmm_set_input(r->m, DMM_VOLT_DC, 1.1);
        assert_string_equal(query_after(r, "READ?", 0.2), "+1.09999900E+00\n");
        assert_string_equal(query(r, "CONF?"), "\"VOLT +1.00000000E+00,+1.00000000E-06\"\n");
}

/* INITiate, the trigger, FETCh?: the Operation register follows. */
static void trigger_system(void **state)
{
        rig *r = *state;
        send(r, "CONF:VOLT:DC;:SAMP:COUN 3;:TRIG:SOUR BUS;:INIT");
        assert_string_equal(query(r, "STAT:OPER:COND?;:DATA:POIN?"), "+32;+0\n");
        /* The answer cannot come before the trigger. */
        send(r, "FETC?");
        assert_true(sim_dmm_output_ready_in_ms(r->m) > 3600 * 1000);
        sim_dmm_device_clear(r->m); /* what a host's recovery does: the run is aborted */
        assert_string_equal(query(r, "STAT:OPER:COND?;:FETC?"), "+0\n");
        assert_string_equal(query(r, "SYST:ERR?"), "-230,\"Data corrupt or stale\"\n");
        send(r, "INIT");
        send(r, "*TRG");
        assert_string_equal(query(r, "STAT:OPER:COND?"), "+16\n");
        r->t += 0.25;
        assert_string_equal(query(r, "DATA:POIN?"), "+1\n");
        assert_string_equal(query_after(r, "FETC?", 0.35), "+4.99873000E+00,+4.99874000E+00,+4.99873000E+00\n");
        assert_string_equal(query(r, "STAT:OPER:COND?;:DATA:POIN?"), "+0;+3\n");
        /* Memory keeps them: FETCh? again gives the same. */
        assert_string_equal(query(r, "FETC?"), "+4.99873000E+00,+4.99874000E+00,+4.99873000E+00\n");
        /* The events seen: waiting for the trigger, measuring, the
         * configuration change. */
        assert_string_equal(query(r, "STAT:OPER?;:STAT:OPER?"), "+304;+0\n");
        /* *TRG with nothing waiting, INIT while running. */
        send(r, "*TRG");
        send(r, "TRIG:SOUR IMM;:INIT;:INIT");
        assert_string_equal(query(r, "SYST:ERR?;:SYST:ERR?"), "-211,\"Trigger ignored\";-213,\"Init ignored\"\n");
        send(r, "ABOR");
        assert_string_equal(query(r, "STAT:OPER:COND?"), "+0\n");
        /* *OPC? waits for the run. */
        send(r, "INIT");
        assert_string_equal(query_after(r, "*OPC?", 0.6), "1\n");
        /* A run aborted by ABORt is done (*OPC completes); by a device
         * clear it is not (488.2: *OPC is left idle). */
        send(r, "*CLS;:TRIG:SOUR BUS;:INIT;*OPC");
        send(r, "ABOR");
        assert_string_equal(query(r, "*ESR?"), "+1\n");
        send(r, "INIT;*OPC");
        sim_dmm_device_clear(r->m);
        assert_string_equal(query(r, "*ESR?;:STAT:OPER:COND?"), "+0;+0\n");
}

/* The Truevolt guide's limit example: a reading above the upper limit
 * sets Upper Limit Failed; with its bit enabled into the status byte and
 * *SRE, the DMM requests service (MSS) once the reading exists. */
static void limit_failure_requests_service(void **state)
{
        rig *r = *state;
        send(r, "*CLS;:STAT:PRES;*SRE 8;:STAT:QUES:ENAB 4096");
        send(r, "CONF:VOLT 10;:SAMP:COUN 2;:CALC:LIM:LOW 3.2;UPP 4.5;:CALC:LIM:STAT ON;:INIT");
        assert_int_equal(sim_dmm_status_byte(r->m), 0);
        r->t += 0.25;
        assert_int_equal(sim_dmm_status_byte(r->m), 8 | 64); /* QUES summary, MSS */
        assert_string_equal(query(r, "*STB?"), "+72\n");
        r->t += 0.2;
        assert_string_equal(query(r, "STAT:QUES:COND?;:STAT:QUES?"), "+4096;+4096\n");
        assert_int_equal(sim_dmm_status_byte(r->m), 0); /* the event was read */
        /* Below the lower limit: the other bit, not enabled: no MSS. */
        send(r, "CALC:LIM:LOW 6;UPP 7");
        query_after(r, "READ?", 0.4);
        assert_string_equal(query(r, "STAT:QUES:COND?;:STAT:QUES?"), "+2048;+2048\n");
        assert_int_equal(sim_dmm_status_byte(r->m), 0);
        send(r, "CALC:LIM:CLE");
        assert_string_equal(query(r, "STAT:QUES:COND?;:CALC:LIM:LOW?;UPP?"), "+0;+6.00000000E+00;+7.00000000E+00\n");
}

/* Measurement complete: *OPC after INITiate sets OPC when the last reading
 * is taken; *ESE 1 and *SRE 32 make that a service request. */
static void completion_requests_service(void **state)
{
        rig *r = *state;
        send(r, "*CLS;*ESE 1;*SRE 32;:CONF:VOLT:DC;:SAMP:COUN 5;:INIT;*OPC");
        assert_string_equal(query(r, "*ESE?;*SRE?"), "+1;+32\n");
        r->t += 0.99;
        assert_int_equal(sim_dmm_status_byte(r->m) & 0x60, 0);
        r->t += 0.02;
        assert_int_equal(sim_dmm_status_byte(r->m), 32 | 64);
        assert_string_equal(query(r, "*ESR?"), "+1\n");
        assert_int_equal(sim_dmm_status_byte(r->m), 0);
        /* *SRE cannot enable bit 6. */
        send(r, "*SRE 255");
        assert_string_equal(query(r, "*SRE?"), "+191\n");
}

static void errors_and_queues(void **state)
{
        rig *r = *state;
        send(r, "BOGUS;:MEAS:VOLT:DC? 10,1,2;:SAMP:COUN 0;:SAMP:COUN fish;:CONF:VOLT 5000");
        assert_string_equal(query(r, "SYST:ERR?;:SYST:ERR?;:SYST:ERR?;:SYST:ERR?;:SYST:ERR?"),
                            "-113,\"Undefined header\";-108,\"Parameter not allowed\";-222,\"Data out of range\";"
                            "-224,\"Illegal parameter value\";-222,\"Data out of range\"\n");
        assert_string_equal(query(r, "*ESR?"), "+176\n"); /* PON, CME, EXE */
        /* 20 errors fit; the 21st turns the last into -350. */
        for (int i = 0; i < 21; i++)
                send(r, "NOPE");
        assert_int_equal(sim_dmm_status_byte(r->m) & 4, 4);
        for (int i = 0; i < 19; i++)
                assert_string_equal(query(r, "SYST:ERR?"), "-113,\"Undefined header\"\n");
        assert_string_equal(query(r, "SYST:ERR?"), "-350,\"Queue overflow\"\n");
        assert_int_equal(sim_dmm_status_byte(r->m) & 4, 0);
        /* A new message while an answer is unread: -410, the answer lost. */
        send(r, "*IDN?");
        send(r, "*ESE 0");
        assert_int_equal(sim_dmm_output_pending(r->m), 0);
        assert_int_equal(sim_dmm_last_error(r->m), -410);
        sim_dmm_query_unterminated(r->m);
        assert_string_equal(query(r, "SYST:ERR?"), "-410,\"Query INTERRUPTED\"\n");
        assert_string_equal(query(r, "SYST:ERR?;:SYST:ERR?"), "-420,\"Query UNTERMINATED\";+0,\"No error\"\n");
        /* An answer bigger than one may be, and answers bigger than the
         * output queue: refused, not grown into. */
        send(r, "CONF:VOLT 10,MAX;:SAMP:COUN 70000;:READ?");
        assert_int_equal(sim_dmm_output_pending(r->m), 0);
        assert_string_equal(query(r, "SYST:ERR?"), "-223,\"Too much data\"\n");
        send(r, "*CLS;:SAMP:COUN 10000;:READ?");
        r->t += 5;
        size_t len = 0;
        char *many = malloc(6 * 100 + 1);
        for (int i = 0; i < 100; i++)
                len += (size_t)sprintf(many + len, "FETC?;");
        send(r, "*CLS");
        sim_dmm_execute(r->m, many, len);
        free(many);
        size_t pending = sim_dmm_output_pending(r->m);
        assert_true(pending <= SIM_DMM_MAX_OUTPUT);
        assert_true(pending >= SIM_DMM_MAX_OUTPUT - 160001);
        send(r, "*ESE 0"); /* the unread answers go (-410) */
        assert_string_equal(query(r, "SYST:ERR?"), "-223,\"Too much data\"\n");
}

/* More readings than memory holds: the oldest go, Memory Overflow is set,
 * FETCh? gives the last 10,000. */
static void memory_overflow(void **state)
{
        rig *r = *state;
        send(r, "CONF:VOLT 10,MAX;:SAMP:COUN 10001;:INIT");
        r->t += 10001 * 0.0004 + 0.01;
        assert_string_equal(query(r, "DATA:POIN?;:STAT:QUES:COND?"), "+10000;+16384\n");
        send(r, "FETC?");
        char *kept = strdup(answer(r));
        assert_int_equal(strlen(kept), 10000 * 16);
        /* They are the run's last 10,000: the same readings from a DMM of
         * the same seed, returned whole by READ? (which needs no memory). */
        rig *twin = calloc(1, sizeof(*twin));
        twin->m = make(twin, 1);
        send(twin, "CONF:VOLT 10,MAX;:SAMP:COUN 10001");
        const char *all = query_after(twin, "READ?", 10001 * 0.0004);
        assert_int_equal(strlen(all), 10001 * 16);
        assert_string_equal(all + 16, kept);
        free(kept);
        sim_dmm_free(twin->m);
        free(twin);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        const struct CMUnitTest tests[] = {
                T(identity_and_power_on),
                T(readings_follow_the_seed),
                T(functions_ranges_and_resolution),
                T(trigger_system),
                T(limit_failure_requests_service),
                T(completion_requests_service),
                T(errors_and_queues),
                T(memory_overflow),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
