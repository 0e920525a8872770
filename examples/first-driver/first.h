/* SPDX-License-Identifier: MIT */
#ifndef FIRST_H
#define FIRST_H

/* FirstDriver's interface: what its clients and the driver share (a macOS
 * driver's UserClientShared.h). Selectors and property names are its
 * public contract: never renumber them. */

enum first_selector {
        FIRST_READ,       /* -> one reading, in thousandths of a degree */
        FIRST_READ_MANY,  /* count (1 .. FIRST_MAX_READINGS) -> int32_t[count], in thousandths */
        FIRST_METHOD_COUNT
};
#define FIRST_MAX_READINGS 64

#define FIRST_PROP_UNITS       "Units"       /* string "C" or "F": anyone may set it */
#define FIRST_PROP_CALIBRATION "Calibration" /* double, -5 .. 5 degrees C: administrators only */

#endif
