/* SPDX-License-Identifier: MIT */
#ifndef TETHER_SIM_SCPI_H
#define TETHER_SIM_SCPI_H

/*
 * An IEEE 488.2 / SCPI program-message parser, device side. Headers have a
 * long and a short form (the uppercase part of "TIMebase" is "TIM"), are
 * case-insensitive, may carry a numeric suffix ("CHAN2"), and chain with
 * ';': a header after ';' without a leading ':' continues in the previous
 * subsystem, a leading ':' returns to the root, and common commands ('*')
 * leave the subsystem alone.
 */

#include <stdbool.h>
#include <stddef.h>

#define SCPI_MAX_ARGS 8

typedef struct scpi_call {
        bool query;
        int suffix[4];        /* numeric suffixes of the header's nodes, in pattern order ('#'); 1 when absent */
        int n_args;
        const char *args[SCPI_MAX_ARGS]; /* NUL-terminated, whitespace trimmed, quotes kept */
        int arg;              /* the matched row's arg */
} scpi_call;

typedef struct scpi_ctx scpi_ctx;

/* A command: pattern like "TIMebase:SCALe" or "CHANnel#:OFFSet" ('#' = an
 * optional numeric suffix, 1 when absent) or "*IDN"; a node in brackets
 * may be left out, as the manuals write it ("[SENSe:]VOLTage[:DC]:RANGe").
 * The handler returns 0 or a SCPI error number (e.g. -222). */
typedef int (*scpi_handler)(void *dev, const scpi_call *c);

typedef struct scpi_command {
        const char *pattern;
        scpi_handler set;     /* NULL: no command form */
        scpi_handler query;   /* NULL: no query form */
        /* Handed to the handler as c->arg: one handler serves rows that
         * differ only in what they act on (a measurement function, a
         * status register). */
        int arg;
} scpi_command;

/* Errors found while parsing (undefined header -113, missing parameter
 * -109, ...) are reported through this, as are the handlers' own. */
typedef void (*scpi_error_fn)(void *dev, int code);

/* Execute one program message (everything up to EOM). */
void scpi_execute(const scpi_command *table, void *dev, scpi_error_fn on_error, const char *msg, size_t len);

/* ---- parameter helpers, for handlers ---- */

/* A decimal number (NR1/NR2/NR3) with an optional SI multiplier and unit
 * ("500mV", "1E-3", "2 us"). Returns false if it is not one. */
bool scpi_number(const char *arg, double *ret);
/* Match an enumeration parameter against a pattern ("NORMal"). */
bool scpi_keyword(const char *arg, const char *pattern);
/* "ON"/"1" -> true, "OFF"/"0" -> false. */
bool scpi_bool(const char *arg, bool *ret);
/* Does a mnemonic (with optional numeric suffix) match a pattern node? */
bool scpi_mnemonic(const char *word, size_t len, const char *node, size_t node_len, int *ret_suffix);

#endif
