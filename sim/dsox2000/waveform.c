/* SPDX-License-Identifier: MIT */
#include "waveform.h"

#include <math.h>
#include <stdlib.h>

static double fmod_pos(double a, double m)
{
        double r = fmod(a, m);
        return r < 0 ? r + m : r;
}

typedef enum { SIG_SQUARE, SIG_SINE, SIG_TRIANGLE } sig_kind;

typedef struct source {
        sig_kind kind;
        double hz, lo, hi;
        double duty; /* SIG_SQUARE: the high part of a period */
} source;

static const source sources[WAVE_CHANNELS] = {
        { SIG_SQUARE, WAVE_PROBE_COMP_HZ, 0.0, WAVE_PROBE_COMP_VPP, 0.5 },
        { SIG_SINE, WAVE_SINE_HZ, -WAVE_SINE_VPP / 2, WAVE_SINE_VPP / 2, 0 },
        { SIG_TRIANGLE, WAVE_TRIANGLE_HZ, -WAVE_TRIANGLE_VPP / 2, WAVE_TRIANGLE_VPP / 2, 0 },
        { SIG_SQUARE, WAVE_PULSE_HZ, 0.0, WAVE_PULSE_HIGH, WAVE_PULSE_DUTY },
};

static const source *source_of(int channel)
{
        return &sources[(channel >= 1 && channel <= WAVE_CHANNELS ? channel : 1) - 1];
}

double wave_signal(int channel, double t)
{
        const source *src = source_of(channel);
        double period = 1.0 / src->hz, phase = fmod_pos(t, period) / period; /* [0, 1) */
        switch (src->kind) {
        case SIG_SQUARE:
                return phase < src->duty ? src->hi : src->lo;
        case SIG_SINE:
                return (src->hi + src->lo) / 2 + (src->hi - src->lo) / 2 * sin(2 * M_PI * phase);
        case SIG_TRIANGLE:
                /* Up from lo over the first half, back down over the second. */
                return src->lo + (src->hi - src->lo) * (phase < 0.5 ? 2 * phase : 2 - 2 * phase);
        }
        return 0;
}

double wave_frequency(int channel)
{
        return source_of(channel)->hz;
}

void wave_range(int channel, double *lo, double *hi)
{
        *lo = source_of(channel)->lo;
        *hi = source_of(channel)->hi;
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

/* Where, within one period of the source, its signal crosses level on
 * slope; the record is shifted so that crossing lands at t = 0. The level
 * is strictly between the source's extremes. */
static double trigger_offset(const wave_trigger *trig)
{
        const source *src = source_of(trig->source);
        double period = 1.0 / src->hz, a = (src->hi - src->lo) / 2, mid = (src->hi + src->lo) / 2;
        bool rising = trig->slope == WAVE_RISING;
        switch (src->kind) {
        case SIG_SQUARE:
                return rising ? 0.0 : src->duty * period;
        case SIG_SINE: {
                double phase = asin((trig->level - mid) / a) / (2 * M_PI) * period;
                return rising ? phase : period / 2 - phase;
        }
        case SIG_TRIANGLE: {
                double up = (trig->level - src->lo) / (src->hi - src->lo) * period / 2;
                return rising ? up : period - up;
        }
        }
        return 0;
}

bool wave_acquire(int channel, const wave_trigger *trig, double x_origin, double x_increment, size_t n,
                  uint64_t seed, uint64_t count, double *out)
{
        double lo, hi;
        wave_range(trig->source, &lo, &hi);
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

bool wave_measure_screen(const double *v, size_t n, double x_increment, double bottom, double top,
                         wave_measurement m, double *ret)
{
        if (n == 0 || !(bottom < top))
                return false;
        bool clipped_top = false, clipped_bottom = false;
        for (size_t i = 0; i < n; i++) {
                clipped_top |= v[i] >= top;
                clipped_bottom |= v[i] <= bottom;
        }
        switch (m) {
        case WAVE_VPP:
        case WAVE_VAVERAGE:
        case WAVE_VRMS:
                if (clipped_top || clipped_bottom)
                        return false;
                break;
        case WAVE_VMAX:
                if (clipped_top)
                        return false;
                break;
        case WAVE_VMIN:
                if (clipped_bottom)
                        return false;
                break;
        case WAVE_FREQUENCY:
        case WAVE_PERIOD:
                break;
        }
        if (!clipped_top && !clipped_bottom)
                return wave_measure(v, n, x_increment, m, ret);
        double *shown = malloc(n * sizeof(*shown));
        if (!shown)
                return false;
        for (size_t i = 0; i < n; i++)
                shown[i] = v[i] > top ? top : v[i] < bottom ? bottom : v[i];
        bool ok = wave_measure(shown, n, x_increment, m, ret);
        free(shown);
        return ok;
}
