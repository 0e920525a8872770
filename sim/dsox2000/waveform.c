/* SPDX-License-Identifier: MIT */
#include "waveform.h"

#include <math.h>

static double fmod_pos(double a, double m)
{
        double r = fmod(a, m);
        return r < 0 ? r + m : r;
}

double wave_signal(int channel, double t)
{
        if (channel == 1) {
                double period = 1.0 / WAVE_PROBE_COMP_HZ;
                return fmod_pos(t, period) < period / 2 ? WAVE_PROBE_COMP_VPP : 0.0;
        }
        return WAVE_SINE_VPP / 2 * sin(2 * M_PI * WAVE_SINE_HZ * t);
}

/* splitmix64: a small, well-mixed, seedable generator. */
static uint64_t mix(uint64_t *s)
{
        uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

static double uniform(uint64_t *s)
{
        return (double)(mix(s) >> 11) / 9007199254740992.0; /* [0, 1) */
}

/* Box-Muller, one value per call. */
static double gaussian(uint64_t *s)
{
        double u = uniform(s), v = uniform(s);
        return sqrt(-2.0 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

static void source_range(int channel, double *lo, double *hi)
{
        if (channel == 1) {
                *lo = 0.0;
                *hi = WAVE_PROBE_COMP_VPP;
        } else {
                *lo = -WAVE_SINE_VPP / 2;
                *hi = WAVE_SINE_VPP / 2;
        }
}

/* Where, within one period of the source, its signal crosses level on
 * slope; the record is shifted so that crossing lands at t = 0. */
static double trigger_offset(const wave_trigger *trig)
{
        if (trig->source == 1) {
                double period = 1.0 / WAVE_PROBE_COMP_HZ;
                return trig->slope == WAVE_RISING ? 0.0 : period / 2;
        }
        double a = WAVE_SINE_VPP / 2;
        double phase = asin(trig->level / a) / (2 * M_PI * WAVE_SINE_HZ);
        return trig->slope == WAVE_RISING ? phase : 1.0 / (2 * WAVE_SINE_HZ) - phase;
}

bool wave_acquire(int channel, const wave_trigger *trig, double x_origin, double x_increment, size_t n,
                  uint64_t seed, uint64_t count, double *out)
{
        double lo, hi;
        source_range(trig->source, &lo, &hi);
        bool triggers = trig->level > lo && trig->level < hi;
        uint64_t state = seed ^ (count * 0xd1b54a32d192ed03ull) ^ (uint64_t)channel;
        double shift;
        if (triggers)
                shift = trigger_offset(trig);
        else if (trig->auto_sweep)
                shift = uniform(&state) / WAVE_PROBE_COMP_HZ; /* free-running: any phase */
        else
                return false;
        for (size_t i = 0; i < n; i++) {
                double t = x_origin + (double)i * x_increment;
                out[i] = wave_signal(channel, t + shift) + WAVE_NOISE_VRMS * gaussian(&state);
        }
        return true;
}

bool wave_measure(const double *v, size_t n, double x_increment, wave_measurement m, double *ret)
{
        if (n == 0)
                return false;
        double lo = v[0], hi = v[0], sum = 0, sq = 0;
        for (size_t i = 0; i < n; i++) {
                lo = v[i] < lo ? v[i] : lo;
                hi = v[i] > hi ? v[i] : hi;
                sum += v[i];
                sq += v[i] * v[i];
        }
        switch (m) {
        case WAVE_VPP:
                *ret = hi - lo;
                return true;
        case WAVE_VMAX:
                *ret = hi;
                return true;
        case WAVE_VMIN:
                *ret = lo;
                return true;
        case WAVE_VAVERAGE:
                *ret = sum / (double)n;
                return true;
        case WAVE_VRMS:
                *ret = sqrt(sq / (double)n);
                return true;
        case WAVE_FREQUENCY:
        case WAVE_PERIOD: {
                /* Rising crossings of the middle level, with hysteresis of a
                 * tenth of the swing so noise does not count as edges. */
                double mid = (hi + lo) / 2, hyst = (hi - lo) / 10;
                /* A flat line with noise on it has no edges: as on the real
                 * instrument, a swing well above the noise is required. */
                if (hi - lo < 20 * WAVE_NOISE_VRMS)
                        return false;
                bool armed = false;
                double first = -1, last = -1;
                size_t edges = 0;
                for (size_t i = 1; i < n; i++) {
                        if (v[i] < mid - hyst)
                                armed = true;
                        if (armed && v[i - 1] < mid && v[i] >= mid) {
                                /* Interpolate between the two samples. */
                                double t = ((double)(i - 1) + (mid - v[i - 1]) / (v[i] - v[i - 1])) * x_increment;
                                if (first < 0)
                                        first = t;
                                last = t;
                                edges++;
                                armed = false;
                        }
                }
                if (edges < 2)
                        return false;
                double period = (last - first) / (double)(edges - 1);
                *ret = m == WAVE_PERIOD ? period : 1.0 / period;
                return true;
        }
        }
        return false;
}
