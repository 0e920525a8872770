/* SPDX-License-Identifier: MIT */
#ifndef TETHER_PLOT_H
#define TETHER_PLOT_H

/* The scope's screen as a PNG: used by `tether scope` for captures and by
 * the simulator for :DISPlay:DATA?, so both look like the instrument. */

#include <stddef.h>
#include <stdint.h>
#include <tether/return.h>

typedef struct plot_trace {
        int channel;            /* 1 to 4: picks the scope's trace colour */
        const float *volts;
        size_t n;
        double volts_per_div, offset;   /* screen centre, as the scope shows it */
} plot_trace;

/* A PNG like the scope's screen: 10 x 8 divisions, time across, each trace
 * at its own vertical scale, with a legend of the scales. */
tether_ret_t plot_png(const char *path, const plot_trace *traces, int n_traces, double seconds_per_div,
                      double x_origin, const char *title);
/* The same picture into memory: *ret_png is malloc()ed. */
tether_ret_t plot_png_buffer(const plot_trace *traces, int n_traces, double seconds_per_div, double x_origin,
                             const char *title, uint8_t **ret_png, size_t *ret_len);

#endif
