/* SPDX-License-Identifier: MIT */
#include "daemon/daemon.h"

/* The drivers built into tetherd, in matching order for equal scores. */
extern const tether_driver example_driver;
extern const tether_driver example_device_driver;
extern const tether_driver dsox2000_driver;

const tether_driver *const builtin_drivers[] = {
        &example_driver,
        &example_device_driver,
        &dsox2000_driver,
        NULL,
};
