/* SPDX-License-Identifier: MIT */
#ifndef TETHER_BENCH_UTIL_H
#define TETHER_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <tether/tether.h>

#include "harness.h"

/* Monotonic time in microseconds. */
double bench_now_us(void);
/* The baseline every bulk figure is compared with, measured in the same
 * run: memcpy of size bytes, reps times, in bytes per microsecond (MB/s). */
double bench_memcpy_mbs(size_t size, int reps);

/* Start tetherd (h->simulate as set), open a session and a connection of
 * type to the first service of class_name. On failure: says why on stderr,
 * stops tetherd, returns -1. */
int bench_open(harness *h, const char *class_name, uint32_t type, tether_session **ret_s, tether_connect **ret_c);
/* Close them and stop tetherd: 0 if it exited cleanly. */
int bench_close(harness *h, tether_session *s, tether_connect *c);

#endif
