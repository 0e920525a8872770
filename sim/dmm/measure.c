/* SPDX-License-Identifier: MIT */
#include "measure.h"

#include <math.h>

/* Ascending NPLC, and the 34461A's ResFactor for each (Truevolt guide,
 * "Range, Resolution and Integration Time"). */
const double dmm_nplc_values[DMM_NPLCS] = { 0.02, 0.2, 1, 10, 100 };
static const double res_factor[DMM_NPLCS] = { 100e-6, 10e-6, 3e-6, 1e-6, 0.3e-6 };

static const double volt_dc[] = { 0.1, 1, 10, 100, 1000 };
static const double volt_ac[] = { 0.1, 1, 10, 100, 750 };
static const double curr[] = { 100e-6, 1e-3, 10e-3, 100e-3, 1, 3 };
static const double res[] = { 100, 1e3, 10e3, 100e3, 1e6, 10e6, 100e6 };

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Questionable Data bits (Truevolt guide): 0 voltage, 1 current, 9
 * resistance overload. The inputs are the simulator's own choice: a 5 V
 * reference that reads a little low, a 1 V peak sine, 12.3 mA, 5 mA AC,
 * a 10 kOhm resistor. */
static const dmm_function_info functions[DMM_FUNCTIONS] = {
        [DMM_VOLT_DC] = { "VOLT", volt_dc, N(volt_dc), true, 4.99873, 1u << 0 },
        [DMM_VOLT_AC] = { "VOLT:AC", volt_ac, N(volt_ac), false, 0.707107, 1u << 0 },
        [DMM_CURR_DC] = { "CURR", curr, N(curr), true, 12.3e-3, 1u << 1 },
        [DMM_CURR_AC] = { "CURR:AC", curr, N(curr), false, 5e-3, 1u << 1 },
        [DMM_RES] = { "RES", res, N(res), true, 9.9862e3, 1u << 9 },
};

const dmm_function_info *dmm_function_get(dmm_function f)
{
        return (unsigned)f < DMM_FUNCTIONS ? &functions[f] : &functions[DMM_VOLT_DC];
}

double dmm_autorange(dmm_function f, double value)
{
        const dmm_function_info *fi = dmm_function_get(f);
        for (size_t i = 0; i < fi->n_ranges; i++)
                if (fabs(value) <= fi->ranges[i])
                        return fi->ranges[i];
        return fi->ranges[fi->n_ranges - 1];
}

bool dmm_range_for(dmm_function f, double asked, double *ret)
{
        const dmm_function_info *fi = dmm_function_get(f);
        for (size_t i = 0; i < fi->n_ranges; i++) {
                /* A little slack: "0.1" written as 1E-1 is the range itself. */
                if (fabs(asked) <= fi->ranges[i] * (1 + 1e-9)) {
                        *ret = fi->ranges[i];
                        return true;
                }
        }
        return false;
}

static size_t nplc_index(double nplc)
{
        for (size_t i = 0; i < DMM_NPLCS; i++)
                if (nplc <= dmm_nplc_values[i] * (1 + 1e-9))
                        return i;
        return DMM_NPLCS - 1;
}

double dmm_resolution(dmm_function f, double range, double nplc)
{
        if (!dmm_function_get(f)->has_nplc)
                return 10e-6 * range;
        return res_factor[nplc_index(nplc)] * range;
}

bool dmm_nplc_for_resolution(double range, double res_wanted, double *ret_nplc)
{
        for (size_t i = 0; i < DMM_NPLCS; i++) {
                if (res_factor[i] * range <= res_wanted * (1 + 1e-9)) {
                        *ret_nplc = dmm_nplc_values[i];
                        return true;
                }
        }
        return false;
}

double dmm_reading_seconds(dmm_function f, double nplc)
{
        /* AC readings settle through a filter; a tenth of a second is this
         * simulator's figure, not the instrument's. */
        if (!dmm_function_get(f)->has_nplc)
                return 0.1;
        return dmm_nplc_values[nplc_index(nplc)] / DMM_LINE_HZ;
}

static uint64_t splitmix64(uint64_t x)
{
        x += 0x9e3779b97f4a7c15ull;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
        return x ^ (x >> 31);
}

/* A standard normal deviate from (seed, index) alone (Box-Muller). */
static double gaussian(uint64_t seed, uint64_t index)
{
        uint64_t a = splitmix64(seed ^ splitmix64(index));
        uint64_t b = splitmix64(a);
        double u1 = ((double)(a >> 11) + 1.0) / 9007199254740993.0; /* (0, 1] */
        double u2 = (double)(b >> 11) / 9007199254740992.0;         /* [0, 1) */
        return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

double dmm_reading(dmm_function f, double input, double range, double nplc, uint64_t seed, uint64_t index)
{
        if (fabs(input) > 1.2 * range)
                return DMM_OVERLOAD;
        double r = dmm_resolution(f, range, nplc);
        double v = input + r * gaussian(seed, index);
        return round(v / r) * r;
}
