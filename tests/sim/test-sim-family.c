/* SPDX-License-Identifier: MIT */
/*
 * The simulator as each model of the InfiniiVision 2000 X series, at the
 * SCPI level: identity, channels (analog and digital), *OPT?, every query
 * of the subset tether uses (../shared/reference/scope.md) answering on
 * every model and channel, measurements on a clipped trace, and unknown
 * headers on the error queue. Expected values are written here from the
 * data sheet, not read from the simulator's table.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models.h"
#include "scope.h"
#include "scpi/scpi.h"

static uint8_t out[400000];
static size_t out_len;

/* Execute and return the whole answer, NUL-terminated (a block may hold
 * NULs: out_len has its length). */
static const char *q(sim_scope *s, const char *cmd)
{
        sim_scope_execute(s, cmd, strlen(cmd));
        out_len = sim_scope_output_take(s, out, sizeof(out) - 1);
        out[out_len] = '\0';
        return (const char *)out;
}

static double number(const char *text)
{
        char *end = NULL;
        double v = strtod(text, &end);
        assert_true(end != text);
        return v;
}

static const struct {
        const char *name, *idn;
        unsigned channels, digital;
        const char *opt;
} expected[] = {
        { "dsox2002a", "DSO-X 2002A", 2, 0, "0,0,0" }, { "dsox2004a", "DSO-X 2004A", 4, 0, "0,0,0" },
        { "dsox2012a", "DSO-X 2012A", 2, 0, "0,0,0" }, { "dsox2014a", "DSO-X 2014A", 4, 0, "0,0,0" },
        { "dsox2022a", "DSO-X 2022A", 2, 0, "0,0,0" }, { "dsox2024a", "DSO-X 2024A", 4, 0, "0,0,0" },
        { "msox2002a", "MSO-X 2002A", 2, 8, "0,0,MSO" }, { "msox2004a", "MSO-X 2004A", 4, 8, "0,0,MSO" },
        { "msox2012a", "MSO-X 2012A", 2, 8, "0,0,MSO" }, { "msox2014a", "MSO-X 2014A", 4, 8, "0,0,MSO" },
        { "msox2022a", "MSO-X 2022A", 2, 8, "0,0,MSO" }, { "msox2024a", "MSO-X 2024A", 4, 8, "0,0,MSO" },
};
#define N_EXPECTED (sizeof(expected) / sizeof(expected[0]))

static sim_scope *new_model(const char *name)
{
        const sim_model *m = sim_model_find(name);
        assert_non_null(m);
        sim_scope_config cfg = { .spec = m, .serial = "MY00000001" };
        sim_scope *s = NULL;
        assert_int_equal(sim_scope_new(&cfg, &s), 0);
        return s;
}

/* The error queue is empty (and says so). */
static void no_error(sim_scope *s, const char *after)
{
        const char *e = q(s, ":SYST:ERR?");
        if (strcmp(e, "+0,\"No error\"\n"))
                fail_msg("after %s: %s", after, e);
}

static void error_is(sim_scope *s, const char *want)
{
        assert_string_equal(q(s, ":SYST:ERR?"), want);
}

static void every_model_has_its_identity_and_channels(void **state)
{
        for (size_t i = 0; i < N_EXPECTED; i++) {
                sim_scope *s = new_model(expected[i].name);
                char want[128], cmd[64];
                snprintf(want, sizeof(want), "AGILENT TECHNOLOGIES,%s,MY00000001,02.42.2017032900\n", expected[i].idn);
                assert_string_equal(q(s, "*IDN?"), want);
                snprintf(want, sizeof(want), "%s\n", expected[i].opt);
                assert_string_equal(q(s, "*OPT?"), want);
                /* Analog channels 1 to n; n + 1 is no header of this model. */
                for (unsigned ch = 1; ch <= expected[i].channels; ch++) {
                        snprintf(cmd, sizeof(cmd), ":CHANnel%u:DISPlay?", ch);
                        assert_string_equal(q(s, cmd), ch == 1 ? "1\n" : "0\n");
                        snprintf(cmd, sizeof(cmd), ":TRIGger:EDGE:SOURce CHANnel%u", ch);
                        q(s, cmd);
                        no_error(s, cmd);
                }
                snprintf(cmd, sizeof(cmd), ":CHANnel%u:DISPlay?", expected[i].channels + 1);
                assert_string_equal(q(s, cmd), "");
                error_is(s, "-113,\"Undefined header\"\n");
                snprintf(cmd, sizeof(cmd), ":TRIGger:EDGE:SOURce CHANnel%u", expected[i].channels + 1);
                q(s, cmd);
                error_is(s, "-224,\"Illegal parameter value\"\n");
                snprintf(cmd, sizeof(cmd), ":MEASure:VPP? CHANnel%u", expected[i].channels + 1);
                assert_string_equal(q(s, cmd), "");
                error_is(s, "-224,\"Illegal parameter value\"\n");
                /* Digital channels D0 to D7 on an MSO; none on a DSO. */
                if (expected[i].digital) {
                        assert_string_equal(q(s, ":DIGital0:DISPlay?"), "0\n");
                        q(s, ":DIG7:DISP ON");
                        assert_string_equal(q(s, ":DIGital7:DISPlay?"), "1\n");
                        no_error(s, ":DIG7:DISP ON");
                        assert_string_equal(q(s, ":DIGital8:DISPlay?"), "");
                        error_is(s, "-113,\"Undefined header\"\n");
                } else {
                        assert_string_equal(q(s, ":DIGital0:DISPlay?"), "");
                        error_is(s, "-113,\"Undefined header\"\n");
                }
                no_error(s, expected[i].name);
                sim_scope_free(s);
        }
        /* And the default is the DSO-X 2002A. */
        sim_scope *s = NULL;
        assert_int_equal(sim_scope_new(NULL, &s), 0);
        assert_string_equal(q(s, "*IDN?"), "AGILENT TECHNOLOGIES,DSO-X 2002A,MY57235663,02.42.2017032900\n");
        sim_scope_free(s);
        assert_null(sim_model_find("dsox2099a"));
        assert_non_null(sim_model_find("MSOX2024A"));
}

/* The queries of the subset; <n> is each channel of the model. */
static const char *const subset[] = {
        "*IDN?", "*OPC?", "*ESR?", "*STB?", "*ESE?", "*SRE?", "*TST?", "*OPT?", ":SYSTem:ERRor?",
        ":TIMebase:SCALe?", ":TIMebase:POSition?", ":TIMebase:MODE?", ":TIMebase:RANGe?",
        ":CHANnel<n>:SCALe?", ":CHANnel<n>:OFFSet?", ":CHANnel<n>:COUPling?", ":CHANnel<n>:DISPlay?",
        ":CHANnel<n>:PROBe?", ":CHANnel<n>:RANGe?",
        ":TRIGger:MODE?", ":TRIGger:EDGE:SOURce?", ":TRIGger:EDGE:LEVel?", ":TRIGger:EDGE:SLOPe?", ":TRIGger:SWEep?",
        ":ACQuire:TYPE?", ":ACQuire:COUNt?", ":ACQuire:SRATe?", ":ACQuire:POINts?",
        ":WAVeform:SOURce CHANnel<n>;:WAVeform:SOURce?", ":WAVeform:FORMat?", ":WAVeform:BYTeorder?",
        ":WAVeform:UNSigned?", ":WAVeform:POINts:MODE?", ":WAVeform:POINts?", ":WAVeform:PREamble?",
        ":WAVeform:SOURce CHANnel<n>;:WAVeform:DATA?",
        ":MEASure:FREQuency? CHANnel<n>", ":MEASure:PERiod? CHANnel<n>", ":MEASure:VPP? CHANnel<n>",
        ":MEASure:VMAX? CHANnel<n>", ":MEASure:VMIN? CHANnel<n>", ":MEASure:VAVerage? CHANnel<n>",
        ":MEASure:VRMS? CHANnel<n>",
};

/* Each query of the subset answers, on every model and every channel it
 * has, with no error queued: after :AUToscale, so every channel is on
 * screen and measurable. */
static void every_query_of_the_subset_answers(void **state)
{
        for (size_t i = 0; i < N_EXPECTED; i++) {
                sim_scope *s = new_model(expected[i].name);
                q(s, "*CLS;:AUToscale;:DIGitize");
                no_error(s, ":AUT");
                for (size_t k = 0; k < sizeof(subset) / sizeof(subset[0]); k++) {
                        bool per_channel = strstr(subset[k], "<n>") != NULL;
                        for (unsigned ch = 1; ch <= (per_channel ? expected[i].channels : 1); ch++) {
                                char cmd[128], *at;
                                snprintf(cmd, sizeof(cmd), "%s", subset[k]);
                                while ((at = strstr(cmd, "<n>"))) {
                                        memmove(at + 1, at + 3, strlen(at + 3) + 1);
                                        *at = (char)('0' + ch);
                                }
                                q(s, cmd);
                                if (out_len < 2 || out[out_len - 1] != '\n')
                                        fail_msg("%s on the %s: no answer", cmd, expected[i].idn);
                                if (strstr(cmd, "MEASure") && strstr((const char *)out, "9.9E+37"))
                                        fail_msg("%s on the %s: no valid result", cmd, expected[i].idn);
                                if (strstr(cmd, "ERRor") || strstr(cmd, "*ESR") || strstr(cmd, "*STB"))
                                        continue; /* they read the state the others must leave clean */
                                char after[160];
                                snprintf(after, sizeof(after), "%s on the %s", cmd, expected[i].idn);
                                no_error(s, after);
                        }
                }
                /* The screen, too: a PNG in a block. */
                q(s, ":DISPlay:DATA? PNG, COLor");
                assert_true(out_len > 1000);
                assert_memory_equal(out + 2 + (out[1] - '0'), "\x89PNG", 4);
                no_error(s, ":DISP:DATA?");
                sim_scope_free(s);
        }
}

/*
 * The probe-compensation square, 0 to 2.5 V, at 0.5 V/div: about 0 V the
 * screen ends at +2 V and the data clips there. What the screen cut off
 * cannot be measured: the guide's +9.9E+37 for Vpp and Vmax (and for the
 * average and RMS, which would be the clipped trace's); Vmin and the
 * frequency are on screen. (Before, Vpp said 2.53 V of data clipped at
 * 2.0 V.)
 */
static void clipped_trace_measurements(void **state)
{
        sim_scope *s = new_model("dsox2002a");
        q(s, ":TIM:SCAL 500us;:CHAN1:SCAL 0.5;OFFS 0");
        const char *invalid = "+9.9E+37\n";
        assert_string_equal(q(s, ":MEAS:VPP? CHAN1"), invalid);
        assert_string_equal(q(s, ":MEAS:VMAX? CHAN1"), invalid);
        assert_string_equal(q(s, ":MEAS:VAV? CHAN1"), invalid);
        assert_string_equal(q(s, ":MEAS:VRMS? CHAN1"), invalid);
        assert_true(fabs(number(q(s, ":MEAS:VMIN? CHAN1"))) < 0.05);
        assert_true(fabs(number(q(s, ":MEAS:FREQ? CHAN1")) - 1000) < 1);
        assert_true(fabs(number(q(s, ":MEAS:PER? CHAN1")) - 1e-3) < 1e-6);
        no_error(s, "measuring a clipped trace"); /* no result is not an error */
        /* The data clips at the same edge: its top code, 2.0 V. */
        q(s, ":STOP;:WAV:SOUR CHAN1;FORM BYTE;UNS 1;POIN 1000");
        scpi_preamble p;
        assert_int_equal(scpi_preamble_parse(q(s, ":WAV:PRE?"), &p), TETHER_SUCCESS);
        q(s, ":WAV:DATA?");
        const uint8_t *data = NULL;
        size_t len = 0;
        assert_int_equal(scpi_block_parse(out, out_len, &data, &len), TETHER_SUCCESS);
        unsigned top = 0;
        for (size_t i = 0; i < len; i++)
                top = data[i] > top ? data[i] : top;
        assert_int_equal(top, 255);
        assert_true(fabs(scpi_code_to_volts(&p, 255) - 2.0) < 0.016); /* within a code of the edge */

        /* Clipped at the bottom instead: offset 2 V puts the screen at 0 to
         * 4 V, and the low level's noise dips under 0. */
        q(s, ":RUN;:CHAN1:OFFS 2");
        assert_string_equal(q(s, ":MEAS:VMIN? CHAN1"), invalid);
        assert_string_equal(q(s, ":MEAS:VPP? CHAN1"), invalid);
        assert_true(fabs(number(q(s, ":MEAS:VMAX? CHAN1")) - 2.5) < 0.05);

        /* All on screen: every measurement valid again. */
        q(s, ":CHAN1:SCAL 1;OFFS 1.25");
        assert_true(fabs(number(q(s, ":MEAS:VPP? CHAN1")) - 2.5) < 0.1);
        assert_true(fabs(number(q(s, ":MEAS:VAV? CHAN1")) - 1.25) < 0.05);
        sim_scope_free(s);
}

/* A header the scope does not know: -113 on the error queue, CME in
 * *ESR?, no answer for a query; what else the message holds still runs. */
static void unknown_headers_go_to_the_error_queue(void **state)
{
        sim_scope *s = new_model("dsox2024a");
        q(s, "*CLS");
        assert_string_equal(q(s, ":NOSUCH:THING?"), "");
        assert_string_equal(q(s, "*STB?"), "4\n"); /* the error queue is not empty */
        error_is(s, "-113,\"Undefined header\"\n");
        q(s, ":TIMebase:NOSUCH 1");
        error_is(s, "-113,\"Undefined header\"\n");
        assert_string_equal(q(s, "*NOSUCH?"), "");
        error_is(s, "-113,\"Undefined header\"\n");
        assert_string_equal(q(s, ":CHANnel5:SCALe?"), ""); /* a 4-channel model */
        error_is(s, "-113,\"Undefined header\"\n");
        /* In a chain: the known parts answer. */
        assert_string_equal(q(s, ":NOSUCH?;*OPT?"), "0,0,0\n");
        error_is(s, "-113,\"Undefined header\"\n");
        no_error(s, "the queue drained");
        assert_int_equal((int)number(q(s, "*ESR?")) & 0x20, 0x20); /* CME */
        assert_string_equal(q(s, "*ESR?"), "0\n");               /* read clears it */
        sim_scope_free(s);
}

/* 2 GSa/s with one channel of each pair (1-2, 3-4) on, 1 GSa/s when both
 * of a pair are; the fastest timebase per bandwidth. */
static void sample_rate_and_timebase_follow_the_model(void **state)
{
        sim_scope *s = new_model("dsox2024a");
        q(s, ":TIM:SCAL 1us;:CHAN1:DISP 1;:CHAN3:DISP 1");
        assert_true(number(q(s, ":ACQ:SRAT?")) == 2e9);
        q(s, ":CHAN2:DISP 1");
        assert_true(number(q(s, ":ACQ:SRAT?")) == 1e9);
        q(s, ":TIM:SCAL 2ns");
        no_error(s, "2 ns/div on a 200 MHz model");
        sim_scope_free(s);
        s = new_model("dsox2002a");
        q(s, ":TIM:SCAL 2ns");
        error_is(s, "-222,\"Data out of range\"\n");
        q(s, ":TIM:SCAL 5ns");
        no_error(s, "5 ns/div on a 70 MHz model");
        q(s, ":TIM:SCAL 1us;:CHAN2:DISP 1");
        assert_true(number(q(s, ":ACQ:SRAT?")) == 1e9);
        sim_scope_free(s);
}

/* Channels 3 and 4 carry their own signals, and trigger. */
static void channels_3_and_4_have_signals(void **state)
{
        sim_scope *s = new_model("msox2014a");
        q(s, ":AUT");
        assert_true(fabs(number(q(s, ":MEAS:FREQ? CHAN3")) - 5000) < 5);
        assert_true(fabs(number(q(s, ":MEAS:VPP? CHAN3")) - 3.0) < 0.1);
        assert_true(fabs(number(q(s, ":MEAS:FREQ? CHAN4")) - 25000) < 25);
        assert_true(fabs(number(q(s, ":MEAS:VMAX? CHAN4")) - 3.3) < 0.05);
        /* Triggered on channel 3's rising edge at 0 V: the record starts
         * 5 divisions before it, so the middle sample is near 0 V and
         * rising. */
        q(s, ":TIM:SCAL 20us;:TRIG:EDGE:SOUR CHAN3;LEV 0;SLOP POS;:DIG CHAN3;:WAV:SOUR CHAN3;FORM ASC;POIN 1000");
        q(s, ":WAV:DATA?");
        const uint8_t *data = NULL;
        size_t len = 0;
        assert_int_equal(scpi_block_parse(out, out_len, &data, &len), TETHER_SUCCESS);
        double v[1000];
        size_t n = 0;
        char *text = strndup((const char *)data, len);
        for (char *tok = strtok(text, ","); tok && n < 1000; tok = strtok(NULL, ","))
                v[n++] = strtod(tok, NULL);
        free(text);
        assert_int_equal(n, 1000);
        assert_true(fabs(v[500]) < 0.05);
        assert_true(v[510] > v[490]);
        no_error(s, "channel 3");
        sim_scope_free(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(every_model_has_its_identity_and_channels),
                cmocka_unit_test(every_query_of_the_subset_answers),
                cmocka_unit_test(clipped_trace_measurements),
                cmocka_unit_test(unknown_headers_go_to_the_error_queue),
                cmocka_unit_test(sample_rate_and_timebase_follow_the_model),
                cmocka_unit_test(channels_3_and_4_have_signals),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
