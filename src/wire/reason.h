/* SPDX-License-Identifier: MIT */
#ifndef TETHER_WIRE_REASON_H
#define TETHER_WIRE_REASON_H

/*
 * Why a property write was refused: a short text a driver (or tetherd)
 * gives with the error, carried to the client and printed on its terminal.
 * It crosses two trust boundaries (a driver host to tetherd, tetherd to a
 * client), so the wire admits only what is safe to print: 1 to
 * WIRE_MAX_REASON bytes of UTF-8, no control characters (C0, DEL, C1: a
 * terminal acts on those), no NUL.
 */

#include <stdbool.h>
#include <stddef.h>

#define WIRE_MAX_REASON 200u

/* Whether the n bytes at p are such a reason. */
bool wire_reason_valid(const void *p, size_t n);

/* text made into such a reason in out (WIRE_MAX_REASON + 1 bytes, NUL
 * terminated): each control character or byte that is not part of valid
 * UTF-8 becomes '?', and the result is cut at a character boundary to at
 * most WIRE_MAX_REASON bytes. Its length, 0 when text is empty (no reason);
 * *ret_cut says whether anything was cut. */
size_t wire_reason_clean(const char *text, char *out, bool *ret_cut);

#endif
