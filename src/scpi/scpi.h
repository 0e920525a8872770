/* SPDX-License-Identifier: MIT */
#ifndef TETHER_SCPI_H
#define TETHER_SCPI_H

/*
 * Host-side SCPI helpers for InfiniiVision scopes: IEEE 488.2 definite-
 * length blocks, the :WAVeform:PREamble? fields and the conversion of
 * sample codes to volts and indexes to time.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <tether/return.h>

/* "#<d><d digits: length><bytes>", optionally followed by "\n". The data
 * points into buf. Indefinite blocks ("#0") and lengths past the buffer
 * are refused (TETHER_ERR_BAD_ARGUMENT / TETHER_ERR_UNDERRUN). */
tether_ret_t scpi_block_parse(const uint8_t *buf, size_t len, const uint8_t **ret_data, size_t *ret_len);

enum { SCPI_FORMAT_BYTE = 0, SCPI_FORMAT_WORD = 1, SCPI_FORMAT_ASCII = 4 };

typedef struct scpi_preamble {
        int format, type;
        uint32_t points, count;
        double x_increment, x_origin, x_reference;
        double y_increment, y_origin, y_reference;
} scpi_preamble;

/* The 10 comma-separated fields, in InfiniiVision's order. */
tether_ret_t scpi_preamble_parse(const char *text, scpi_preamble *ret);

/* volts = (code - yreference) * yincrement + yorigin */
double scpi_code_to_volts(const scpi_preamble *p, double code);
/* time = (index - xreference) * xincrement + xorigin */
double scpi_index_to_time(const scpi_preamble *p, size_t index);

/* Decode n samples of a BYTE or WORD block into volts. WORD samples are
 * big-endian when msb_first. Codes are signed when !is_unsigned. */
tether_ret_t scpi_samples_to_volts(const scpi_preamble *p, const uint8_t *data, size_t len, bool msb_first,
                                   bool is_unsigned, double *volts, size_t n);

#endif
