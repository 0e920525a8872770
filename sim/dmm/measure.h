/* SPDX-License-Identifier: MIT */
#ifndef TETHER_SIM_DMM_MEASURE_H
#define TETHER_SIM_DMM_MEASURE_H

/*
 * The simulated 34461A's measurement model: its functions and ranges, the
 * resolution an integration time gives (the Truevolt guide's ResFactor
 * table), how long a reading takes, and the readings themselves: the
 * simulated input plus noise that is a pure function of the seed and the
 * reading's number, rounded to the resolution as the instrument reports
 * it. No state: the instrument keeps the settings and the count.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum dmm_function {
        DMM_VOLT_DC = 0,
        DMM_VOLT_AC,
        DMM_CURR_DC,
        DMM_CURR_AC,
        DMM_RES,
        DMM_FUNCTIONS,
} dmm_function;

/* An overloaded reading, as the instrument returns it. */
#define DMM_OVERLOAD 9.9e37
/* The power line the integration times are counted in (50 Hz: assumed). */
#define DMM_LINE_HZ 50.0
/* The integration times the 34461A offers, in power line cycles. */
#define DMM_NPLCS 5u
extern const double dmm_nplc_values[DMM_NPLCS];

typedef struct dmm_function_info {
        const char *name;      /* FUNCtion? and CONFigure? answer it: "VOLT", "VOLT:AC" */
        const double *ranges;  /* ascending */
        size_t n_ranges;
        bool has_nplc;         /* DC and resistance: NPLC sets resolution and speed */
        double input;          /* the simulated input it sees by default */
        unsigned ques_overload; /* its Questionable Data bit for an overload */
} dmm_function_info;

const dmm_function_info *dmm_function_get(dmm_function f);

/* The smallest range that holds |value| (autoranging); the largest if
 * none does. */
double dmm_autorange(dmm_function f, double value);
/* A range as asked for (a value is rounded up to the next range): false
 * when above the largest. */
bool dmm_range_for(dmm_function f, double asked, double *ret);
/* Resolution of a reading (ResFactor x range): for NPLC functions from
 * the integration time, for AC ones fixed (assumed 10 ppm of range). */
double dmm_resolution(dmm_function f, double range, double nplc);
/* The fastest integration time whose resolution on range is at least as
 * fine as res; false when even 100 PLC is coarser. */
bool dmm_nplc_for_resolution(double range, double res, double *ret_nplc);
/* Seconds one reading takes. */
double dmm_reading_seconds(dmm_function f, double nplc);
/* Reading number index of a run with this seed: input plus gaussian noise
 * of one resolution step rms, rounded to the resolution; DMM_OVERLOAD
 * when the input exceeds 120 % of a fixed range. */
double dmm_reading(dmm_function f, double input, double range, double nplc, uint64_t seed, uint64_t index);

#endif
