/* SPDX-License-Identifier: MIT */
#ifndef TETHER_SIM_WAVEFORM_H
#define TETHER_SIM_WAVEFORM_H

/*
 * The simulated scope's signals and what it measures on them. Channel 1 is
 * wired to the front-panel probe-compensation output: a 1 kHz square wave
 * from 0 V to WAVE_PROBE_COMP_VPP. Channel 2 carries a sine; on a
 * 4-channel model channel 3 a triangle and channel 4 a pulse train, each
 * at a frequency of its own so a test can tell them apart. Noise is
 * seeded, so every acquisition is reproducible from (seed, count).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WAVE_PROBE_COMP_HZ   1000.0
#define WAVE_PROBE_COMP_VPP  2.5     /* our choice within the 2.5-3 V the series gives */
#define WAVE_SINE_HZ         10000.0
#define WAVE_SINE_VPP        2.0
#define WAVE_TRIANGLE_HZ     5000.0
#define WAVE_TRIANGLE_VPP    3.0     /* -1.5 V to +1.5 V */
#define WAVE_PULSE_HZ        25000.0
#define WAVE_PULSE_HIGH      3.3     /* 0 V to 3.3 V ... */
#define WAVE_PULSE_DUTY      0.2     /* ... high a fifth of each period */
#define WAVE_NOISE_VRMS      0.004
#define WAVE_CHANNELS        4

typedef enum wave_slope { WAVE_RISING, WAVE_FALLING } wave_slope;

typedef struct wave_trigger {
        int source;          /* 1 to WAVE_CHANNELS */
        double level;        /* volts */
        wave_slope slope;
        bool auto_sweep;     /* AUTO: free-runs when nothing triggers */
} wave_trigger;

/* The signal on a channel (1 to WAVE_CHANNELS) at time t (seconds from
 * the trigger point), without noise. */
double wave_signal(int channel, double t);
/* Its frequency, and the lowest and highest volts it reaches. */
double wave_frequency(int channel);
void wave_range(int channel, double *lo, double *hi);

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

/* A measurement on what the screen shows, as the instrument makes it: the
 * record clipped to [bottom, top] (the screen's edges, in volts). A
 * measurement that needs a part of the signal the screen cut off has no
 * valid result: Vpp when either edge clips, Vmax at the top, Vmin at the
 * bottom, the average and RMS at either (their value would be the clipped
 * trace's). Frequency and period need only the crossings, and are made on
 * the clipped trace. */
bool wave_measure_screen(const double *v, size_t n, double x_increment, double bottom, double top,
                         wave_measurement m, double *ret);

#endif
