/* SPDX-License-Identifier: MIT */
/* What the bundle org.tether.usbtmc exports. */
#include <tether/driver.h>

extern const tether_driver usbtmc_instrument_driver;

TETHER_BUNDLE(&usbtmc_instrument_driver);
