/* SPDX-License-Identifier: MIT */
#ifndef TETHER_DSOX2000_PROTOCOL_H
#define TETHER_DSOX2000_PROTOCOL_H

/*
 * The DSO-X 2000 wire: SCPI commands and queries over a link (USBTMC or
 * TCP), and
 * what comes back parsed (identity, preamble, waveform, measurements). No
 * tether service state here: api.c owns that.
 */

#include <stddef.h>
#include <stdint.h>
#include <tether/return.h>

#include "scpi/scpi.h"
#include "scpi/link.h"

typedef struct dso_identity {
        char manufacturer[64], model[32], serial[32], firmware[32];
} dso_identity;

/* Send a command (no answer expected). */
tether_ret_t dso_command(scpi_link *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Send a query and read its answer, trailing newline removed, NUL-terminated. */
tether_ret_t dso_query(scpi_link *l, char *answer, size_t cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
tether_ret_t dso_query_double(scpi_link *l, double *ret, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* *IDN? split into its four fields. */
tether_ret_t dso_identify(scpi_link *l, dso_identity *ret);

/* Pop :SYSTem:ERRor? once; *ret_code 0 when the queue is empty. */
tether_ret_t dso_next_error(scpi_link *l, int *ret_code, char *text, size_t cap);

/* Set the waveform source and points (BYTE, unsigned), then read the
 * preamble and the data block: raw codes into codes (cap bytes). */
tether_ret_t dso_read_waveform(scpi_link *l, int channel, uint32_t points, scpi_preamble *ret_preamble,
                               uint8_t *codes, size_t cap, size_t *ret_n);

/* The value a measurement query returned; TETHER_ERR_NOT_READY for the
 * series' 9.9E+37 ("no valid result"). */
tether_ret_t dso_measure(scpi_link *l, const char *what, int channel, double *ret);

#endif
