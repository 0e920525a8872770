/* SPDX-License-Identifier: MIT */
#ifndef TETHER_BENCH_UTIL_H
#define TETHER_BENCH_UTIL_H

#include <stddef.h>

/* Monotonic time in microseconds. */
double bench_now_us(void);
/* The baseline every bulk figure is compared with, measured in the same
 * run: memcpy of size bytes, reps times, in bytes per microsecond (MB/s). */
double bench_memcpy_mbs(size_t size, int reps);

#endif
