/* SPDX-License-Identifier: MIT */
#ifndef TETHER_TOOLS_DRIVER_H
#define TETHER_TOOLS_DRIVER_H

/* tether driver list | load PATH | unload ID (driver.c). */
int cmd_driver(int argc, char **argv);

#endif
