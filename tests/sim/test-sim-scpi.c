/* SPDX-License-Identifier: MIT */
/* The simulated DSO-X 2002A at the SCPI level: parser rules, settings,
 * errors and status, acquisition, waveform formats, measurements. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scope.h"
#include "scpi/scpi.h"

static uint8_t out[200000];

/* Execute and return the whole answer, NUL-terminated. */
static const char *q(sim_scope *s, const char *cmd)
{
        sim_scope_execute(s, cmd, strlen(cmd));
        size_t n = sim_scope_output_take(s, out, sizeof(out) - 1);
        out[n] = '\0';
        return (const char *)out;
}

static int setup(void **state)
{
        sim_scope *s = NULL;
        assert_int_equal(sim_scope_new(NULL, &s), 0);
        *state = s;
        return 0;
}

static int teardown(void **state)
{
        sim_scope_free(*state);
        return 0;
}

static void identity(void **state)
{
        assert_string_equal(q(*state, "*IDN?"), "AGILENT TECHNOLOGIES,DSO-X 2002A,MY57235663,02.42.2017032900\n");
        sim_scope *k = NULL;
        sim_scope_config cfg = { .manufacturer = "KEYSIGHT TECHNOLOGIES", .serial = "CN123" };
        sim_scope_new(&cfg, &k);
        assert_string_equal(q(k, "*idn?"), "KEYSIGHT TECHNOLOGIES,DSO-X 2002A,CN123,02.42.2017032900\n");
        sim_scope_free(k);
}

static void long_short_and_case(void **state)
{
        sim_scope *s = *state;
        q(s, ":TIMebase:SCALe 2E-4");
        assert_string_equal(q(s, ":tim:scal?"), "+2.00000000E-04\n");
        q(s, ":timebase:scale 500us");
        assert_string_equal(q(s, ":TIMEBASE:SCALE?"), "+5.00000000E-04\n");
        /* Neither long nor short: an undefined header. */
        q(s, ":TIMeb:SCAL 1");
        assert_string_equal(q(s, ":SYST:ERR?"), "-113,\"Undefined header\"\n");
}

static void chaining_keeps_the_subsystem(void **state)
{
        sim_scope *s = *state;
        /* After ';' a header without ':' continues in CHANnel2; a leading
         * ':' goes back to the root; '*' leaves the subsystem alone. */
        assert_string_equal(q(s, ":CHAN2:SCAL 0.5;OFFS 0.25;*OPC?;SCAL?;:TIM:SCAL?"),
                            "1;+5.00000000E-01;+1.00000000E-04\n");
        assert_string_equal(q(s, ":CHAN2:OFFS?"), "+2.50000000E-01\n");
        /* A new line is a new program message: back at the root. */
        q(s, ":CHAN1:SCAL 0.2\nSCAL 0.1");
        assert_string_equal(q(s, ":SYST:ERR?"), "-113,\"Undefined header\"\n");
        assert_string_equal(q(s, ":CHAN1:SCAL?"), "+2.00000000E-01\n");
}

static void numeric_suffix_and_units(void **state)
{
        sim_scope *s = *state;
        q(s, ":CHANNEL2:SCALE 200mV");
        assert_string_equal(q(s, ":CHAN2:SCAL?"), "+2.00000000E-01\n");
        q(s, ":CHAN:SCAL 2"); /* no suffix: channel 1 */
        assert_string_equal(q(s, ":CHAN1:SCAL?"), "+2.00000000E+00\n");
        q(s, ":CHAN3:SCAL 1"); /* a 2-channel model */
        assert_string_equal(q(s, ":SYST:ERR?"), "-113,\"Undefined header\"\n");
}

static void parameter_errors(void **state)
{
        sim_scope *s = *state;
        q(s, ":TIM:SCAL");
        assert_string_equal(q(s, ":SYST:ERR?"), "-109,\"Missing parameter\"\n");
        q(s, ":TIM:SCAL 1,2");
        assert_string_equal(q(s, ":SYST:ERR?"), "-108,\"Parameter not allowed\"\n");
        q(s, ":TIM:SCAL 100"); /* past 50 s/div */
        assert_string_equal(q(s, ":SYST:ERR?"), "-222,\"Data out of range\"\n");
        assert_string_equal(q(s, ":TIM:SCAL?"), "+1.00000000E-04\n"); /* unchanged */
        q(s, ":CHAN1:COUP GROUND");
        assert_string_equal(q(s, ":SYST:ERR?"), "-224,\"Illegal parameter value\"\n");
        q(s, ":CHAN1:SCAL 0.1;OFFS 3"); /* +-2 V at 100 mV/div */
        assert_string_equal(q(s, ":SYST:ERR?"), "-222,\"Data out of range\"\n");
        assert_string_equal(q(s, ":SYST:ERR?"), "+0,\"No error\"\n");
}

static void error_queue_and_status(void **state)
{
        sim_scope *s = *state;
        for (int i = 0; i < 35; i++)
                q(s, ":NOPE");
        assert_true(sim_scope_status_byte(s) & 0x04); /* error queue not empty */
        /* 30 entries, the last replaced by the overflow. */
        for (int i = 0; i < 29; i++)
                assert_string_equal(q(s, ":SYST:ERR?"), "-113,\"Undefined header\"\n");
        assert_string_equal(q(s, ":SYST:ERR?"), "-350,\"Queue overflow\"\n");
        assert_string_equal(q(s, ":SYST:ERR?"), "+0,\"No error\"\n");
        assert_string_equal(q(s, "*ESR?"), "32\n"); /* CME */
        assert_string_equal(q(s, "*ESR?"), "0\n");  /* read clears */
        q(s, "*ESE 32;:NOPE");
        assert_true(sim_scope_status_byte(s) & 0x20); /* ESB: CME is enabled */
        q(s, "*CLS");
        assert_int_equal(sim_scope_status_byte(s), 0);
        q(s, "*OPC");
        assert_string_equal(q(s, "*ESR?"), "1\n");
}

static void interrupted_and_unterminated(void **state)
{
        sim_scope *s = *state;
        sim_scope_execute(s, "*IDN?", 5);
        assert_true(sim_scope_status_byte(s) & 0x10); /* MAV */
        /* A new command before the answer was read: it is lost (-410). */
        q(s, "*RST");
        assert_int_equal(sim_scope_output_pending(s), 0);
        assert_string_equal(q(s, ":SYST:ERR?"), "-410,\"Query INTERRUPTED\"\n");
        sim_scope_query_unterminated(s);
        assert_string_equal(q(s, ":SYST:ERR?"), "-420,\"Query UNTERMINATED\"\n");
}

static double number(const char *text)
{
        return strtod(text, NULL);
}

static void measurements_after_autoscale(void **state)
{
        sim_scope *s = *state;
        q(s, ":AUToscale");
        double f = number(q(s, ":MEAS:FREQ?"));
        assert_true(fabs(f - 1000.0) < 1.0);
        double vpp = number(q(s, ":MEAS:VPP? CHAN1"));
        assert_true(vpp > 2.45 && vpp < 2.6); /* 2.5 V plus noise */
        double avg = number(q(s, ":MEAS:VAV?"));
        assert_true(fabs(avg - 1.25) < 0.05);
        double f2 = number(q(s, ":MEAS:FREQ? CHAN2"));
        assert_true(fabs(f2 - 10000.0) < 10.0);
        double rms2 = number(q(s, ":MEAS:VRMS? CHAN2"));
        assert_true(fabs(rms2 - 1.0 / sqrt(2)) < 0.02); /* 2 Vpp sine */
        double period = number(q(s, ":MEAS:PER?"));
        assert_true(fabs(period - 1e-3) < 1e-6);
}

static void no_valid_result(void **state)
{
        sim_scope *s = *state;
        /* At reset the window holds under one period at 10 us/div. */
        q(s, ":TIM:SCAL 10us");
        assert_string_equal(q(s, ":MEAS:FREQ?"), "+9.9E+37\n"); /* as the guide writes it */
}

static void waveform_byte_block_and_preamble(void **state)
{
        sim_scope *s = *state;
        q(s, ":AUT;:WAV:SOUR CHAN1;FORM BYTE;POIN 1000");
        scpi_preamble p;
        assert_int_equal(scpi_preamble_parse(q(s, ":WAV:PRE?"), &p), TETHER_SUCCESS);
        assert_int_equal(p.format, SCPI_FORMAT_BYTE);
        assert_int_equal(p.points, 1000);
        assert_true(fabs(p.x_increment - 5e-6) < 1e-12); /* 5 ms across 1000 points */
        assert_true(fabs(p.x_origin + 2.5e-3) < 1e-12);
        assert_true(fabs(p.y_origin - 1.25) < 1e-9);
        sim_scope_execute(s, ":WAV:DATA?", 10);
        size_t n = sim_scope_output_take(s, out, sizeof(out));
        const uint8_t *data;
        size_t len;
        assert_int_equal(scpi_block_parse(out, n, &data, &len), TETHER_SUCCESS);
        assert_int_equal(len, 1000);
        assert_int_equal(out[n - 1], '\n');
        double v[1000];
        assert_int_equal(scpi_samples_to_volts(&p, data, len, true, true, v, 1000), TETHER_SUCCESS);
        /* The trigger (rising edge) sits at t = 0: just before it low, just after high. */
        size_t zero = (size_t)((0 - p.x_origin) / p.x_increment);
        assert_true(v[zero - 3] < 0.2);
        assert_true(v[zero + 3] > 2.3);
}

static void waveform_word_signed_and_ascii(void **state)
{
        sim_scope *s = *state;
        q(s, ":AUT;:STOP;:WAV:SOUR CHAN2;FORM WORD;BYT LSBF;UNS 0;POIN 500");
        scpi_preamble p;
        assert_int_equal(scpi_preamble_parse(q(s, ":WAV:PRE?"), &p), TETHER_SUCCESS);
        assert_int_equal(p.format, SCPI_FORMAT_WORD);
        assert_true(p.y_reference == 0); /* signed codes */
        sim_scope_execute(s, ":WAV:DATA?", 10);
        size_t n = sim_scope_output_take(s, out, sizeof(out));
        const uint8_t *data;
        size_t len;
        assert_int_equal(scpi_block_parse(out, n, &data, &len), TETHER_SUCCESS);
        assert_int_equal(len, 1000);
        double w[500];
        assert_int_equal(scpi_samples_to_volts(&p, data, len, false, false, w, 500), TETHER_SUCCESS);
        /* Stopped: ASCii of the same record gives the same volts. */
        q(s, ":WAV:FORM ASC");
        const char *text = q(s, ":WAV:DATA?");
        assert_int_equal(scpi_block_parse((const uint8_t *)text, strlen(text), &data, &len), TETHER_SUCCESS);
        char *end = NULL;
        const char *c = (const char *)data;
        for (int i = 0; i < 500; i++) {
                double a = strtod(c, &end);
                assert_true(fabs(a - w[i]) < 2 * p.y_increment);
                c = end + 1;
        }
}

/* Execute and copy the answer into buf; its length. */
static size_t take(sim_scope *s, const char *cmd, uint8_t *buf, size_t cap)
{
        sim_scope_execute(s, cmd, strlen(cmd));
        return sim_scope_output_take(s, buf, cap);
}

static void determinism_and_run_stop(void **state)
{
        sim_scope *a = NULL, *b = NULL, *c = NULL;
        sim_scope_config seed7 = { .seed = 7 }, seed8 = { .seed = 8 };
        sim_scope_new(&seed7, &a);
        sim_scope_new(&seed7, &b);
        sim_scope_new(&seed8, &c);
        /* 16-bit data: 4 mV of noise seldom moves an 8-bit code. */
        const char *cmd = ":AUT;:WAV:FORM WORD;POIN 1000;:WAV:DATA?";
        static uint8_t x[4096], y[4096];
        size_t n = take(a, cmd, x, sizeof(x));
        assert_int_equal(n, 2007); /* "#42000" + 2000 bytes + "\n" */
        assert_int_equal(take(b, cmd, y, sizeof(y)), n);
        assert_memory_equal(x, y, n); /* same seed, same samples */
        assert_int_equal(take(c, cmd, y, sizeof(y)), n);
        assert_memory_not_equal(x, y, n); /* another seed, other noise */

        /* Running: each read is a new acquisition. Stopped: the same one. */
        take(a, ":WAV:DATA?", x, sizeof(x));
        take(a, ":WAV:DATA?", y, sizeof(y));
        assert_memory_not_equal(x, y, n);
        take(a, ":STOP", x, sizeof(x));
        take(a, ":WAV:DATA?", x, sizeof(x));
        take(a, ":WAV:DATA?", y, sizeof(y));
        assert_memory_equal(x, y, n);
        sim_scope_free(a);
        sim_scope_free(b);
        sim_scope_free(c);
}

static void hidden_channel_has_no_data(void **state)
{
        sim_scope *s = *state;
        q(s, ":CHAN2:DISP OFF;:WAV:SOUR CHAN2");
        assert_string_equal(q(s, ":WAV:DATA?"), "#10\n");
        assert_string_equal(q(s, ":SYST:ERR?"), "-221,\"Settings conflict\"\n");
}

static void normal_sweep_without_trigger(void **state)
{
        sim_scope *s = *state;
        /* Level above the square wave: AUTO free-runs, NORMal has nothing. */
        q(s, ":CHAN1:SCAL 1;:TRIG:EDGE:LEV 5;:TRIG:SWE AUTO");
        assert_int_equal(q(s, ":WAV:DATA?")[1], '4'); /* "#41000": data */
        q(s, ":TRIG:SWE NORM");
        assert_string_equal(q(s, ":WAV:DATA?"), "#10\n");
        assert_string_equal(q(s, ":SYST:ERR?"), "-200,\"Execution error\"\n");
}

static void record_and_sample_rate(void **state)
{
        sim_scope *s = *state;
        q(s, ":TIM:SCAL 1ms");
        assert_string_equal(q(s, ":ACQ:POIN?"), "62500\n");
        assert_string_equal(q(s, ":ACQ:SRAT?"), "+6.25000000E+06\n");
        q(s, ":TIM:SCAL 5ns"); /* 50 ns at 2 GSa/s: 100 points */
        assert_string_equal(q(s, ":ACQ:POIN?"), "100\n");
        assert_string_equal(q(s, ":ACQ:SRAT?"), "+2.00000000E+09\n");
        q(s, ":CHAN2:DISP ON"); /* two channels share: 1 GSa/s */
        assert_string_equal(q(s, ":ACQ:SRAT?"), "+2.00000000E+09\n"); /* floor of 100 points */
        q(s, ":TIM:SCAL 100ns");
        assert_string_equal(q(s, ":ACQ:SRAT?"), "+1.00000000E+09\n");
}

static void screenshot_png(void **state)
{
        sim_scope *s = *state;
        q(s, ":AUT;:CHAN2:DISP ON");
        sim_scope_execute(s, ":DISP:DATA? PNG, COLor", 22);
        size_t n = sim_scope_output_take(s, out, sizeof(out));
        const uint8_t *png;
        size_t len;
        assert_int_equal(scpi_block_parse(out, n, &png, &len), TETHER_SUCCESS);
        assert_true(len > 1000);
        assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
        /* IHDR: width 800, height 480, as the series' screen. */
        assert_memory_equal(png + 16, "\0\0\x03\x20\0\0\x01\xe0", 8);
        assert_int_equal(out[n - 1], '\n');
        q(s, ":DISP:DATA? BMP");
        assert_string_equal(q(s, ":SYST:ERR?"), "-224,\"Illegal parameter value\"\n");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        const struct CMUnitTest tests[] = {
                T(identity),
                T(long_short_and_case),
                T(chaining_keeps_the_subsystem),
                T(numeric_suffix_and_units),
                T(parameter_errors),
                T(error_queue_and_status),
                T(interrupted_and_unterminated),
                T(measurements_after_autoscale),
                T(no_valid_result),
                T(waveform_byte_block_and_preamble),
                T(waveform_word_signed_and_ascii),
                cmocka_unit_test(determinism_and_run_stop),
                T(hidden_channel_has_no_data),
                T(normal_sweep_without_trigger),
                T(record_and_sample_rate),
                T(screenshot_png),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
