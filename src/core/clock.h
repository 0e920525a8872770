/* SPDX-License-Identifier: MIT */
#ifndef TETHER_CORE_CLOCK_H
#define TETHER_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC, for deadlines and durations: the wall clock can jump. */
static inline uint64_t clock_mono_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t clock_mono_ms(void)
{
        return clock_mono_ns() / 1000000u;
}

#endif
