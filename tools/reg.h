/* SPDX-License-Identifier: MIT */
#ifndef TETHER_TOOLS_REG_H
#define TETHER_TOOLS_REG_H

/* `tether reg ...`: argv[0] is "reg". Returns the process exit status. */
int cmd_reg(int argc, char **argv);

#endif
