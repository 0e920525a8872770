/* SPDX-License-Identifier: MIT */
/* What the bundle org.tether.dsox2000 exports. */
#include <tether/driver.h>

extern const tether_driver dsox2000_driver;

TETHER_BUNDLE(&dsox2000_driver);
