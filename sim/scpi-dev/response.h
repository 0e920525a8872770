/* SPDX-License-Identifier: MIT */
#ifndef TETHER_SIM_SCPI_RESPONSE_H
#define TETHER_SIM_SCPI_RESPONSE_H

/*
 * IEEE 488.2 response messages, device side (8.4.1): the units one
 * program message's queries answer, joined with ';', a newline after the
 * last. The bytes go to the instrument's output queue; how the queue is
 * read, and when its answer may go, stay the instrument's.
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "bytes.h"

/* A unit's text as scpi_response_printf writes it: longer is cut. */
#define SCPI_RESPONSE_UNIT_MAX 511u

typedef struct scpi_response {
        bytes *out;     /* the instrument's output queue */
        size_t max;     /* the most it may hold: what does not fit is cut, as a full queue would cut it */
        unsigned units; /* in the message being executed */
} scpi_response;

void scpi_response_init(scpi_response *r, bytes *out, size_t max);
/* A program message starts: no unit yet. */
void scpi_response_begin(scpi_response *r);
/* A unit starts: ';' before every one but the first. */
void scpi_response_unit(scpi_response *r);
/* Bytes of the unit (also cut when out of memory). */
void scpi_response_append(scpi_response *r, const void *p, size_t n);
/* A whole unit, printf-style. */
void scpi_response_printf(scpi_response *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void scpi_response_vprintf(scpi_response *r, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* The program message ends: the newline after its last unit. False when
 * it had none. */
bool scpi_response_end(scpi_response *r);

#endif
