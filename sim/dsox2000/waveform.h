/* SPDX-License-Identifier: MIT */
#ifndef TETHER_SIM_WAVEFORM_H
#define TETHER_SIM_WAVEFORM_H

/*
 * The simulated scope's signals and what it measures on them. Channel 1 is
 * wired to the front-panel probe-compensation output: a 1 kHz square wave
 * from 0 V to WAVE_PROBE_COMP_VPP. Channel 2 carries a sine. Noise is
 * seeded, so every acquisition is reproducible from (seed, count).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WAVE_PROBE_COMP_HZ   1000.0
#define WAVE_PROBE_COMP_VPP  2.5     /* our choice within the 2.5-3 V the series gives */
#define WAVE_SINE_HZ         10000.0
#define WAVE_SINE_VPP        2.0
#define WAVE_NOISE_VRMS      0.004

typedef enum wave_slope { WAVE_RISING, WAVE_FALLING } wave_slope;

typedef struct wave_trigger {
        int source;          /* 1 or 2 */
        double level;        /* volts */
        wave_slope slope;
        bool auto_sweep;     /* AUTO: free-runs when nothing triggers */
} wave_trigger;

/* The signal on a channel at time t (seconds from the trigger point),
 * without noise. */
double wave_signal(int channel, double t);

/* Acquire n samples of channel over [x_origin, x_origin + n * x_increment),
 * time 0 being the trigger. When the trigger can never fire (level outside
 * the source's range) an AUTO sweep free-runs: the record starts at a
 * seeded random phase. Returns false when nothing triggered and the sweep
 * is NORMal (no acquisition). */
bool wave_acquire(int channel, const wave_trigger *trig, double x_origin, double x_increment, size_t n,
                  uint64_t seed, uint64_t count, double *out);

typedef enum wave_measurement {
        WAVE_FREQUENCY, WAVE_PERIOD, WAVE_VPP, WAVE_VMAX, WAVE_VMIN, WAVE_VAVERAGE, WAVE_VRMS,
} wave_measurement;

/* A measurement over the record; false when it has no valid result (the
 * scope then answers 9.9E+37). */
bool wave_measure(const double *v, size_t n, double x_increment, wave_measurement m, double *ret);

#endif
