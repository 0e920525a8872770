/* SPDX-License-Identifier: MIT */
#ifndef TETHER_TEST_SCOPE_CHECK_H
#define TETHER_TEST_SCOPE_CHECK_H

/*
 * What the emulated DSO-X 2002A must answer, checked (cmocka asserts) the
 * same way whichever way the transfers reached it: a device libusb found
 * on the bus, or a fd it was handed.
 */

#include <stddef.h>
#include <stdint.h>

#include "usbtmc/usbtmc.h"

void scope_query(usbtmc *t, const char *q, char *out, size_t cap, size_t *ret_len);
void scope_check_idn(usbtmc *t);

/* Channel 1's 62,500 points as one IEEE 488.2 block. */
extern const char scope_wave_cmds[];
/* The same commands sent to a simulator reached without USB: what came
 * through USB must be byte for byte what the instrument produced. */
size_t scope_reference_waveform(const char *cmds, uint8_t *out, size_t cap);

#endif
