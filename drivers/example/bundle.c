/* SPDX-License-Identifier: MIT */
/* What the bundle org.tether.example exports: its two drivers. */
#include <tether/driver.h>

extern const tether_driver example_driver;
extern const tether_driver example_device_driver;

TETHER_BUNDLE(&example_driver, &example_device_driver);
