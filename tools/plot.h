/* SPDX-License-Identifier: MIT */
#ifndef TETHER_TOOLS_PLOT_H
#define TETHER_TOOLS_PLOT_H

#include <stddef.h>
#include <tether/return.h>

typedef struct plot_trace {
        int channel;            /* 1 or 2: picks the scope's trace colour */
        const float *volts;
        size_t n;
        double volts_per_div, offset;   /* screen centre, as the scope shows it */
} plot_trace;

/* A PNG like the scope's screen: 10 x 8 divisions, time across, each trace
 * at its own vertical scale, with a legend of the scales. */
tether_ret_t plot_png(const char *path, const plot_trace *traces, int n_traces, double seconds_per_div,
                      double x_origin, const char *title);

#endif
