/* SPDX-License-Identifier: MIT */
#ifndef TETHER_TOOLS_SCOPE_H
#define TETHER_TOOLS_SCOPE_H

/* `tether scope ...`: argv[0] is "scope". */
int cmd_scope(int argc, char **argv);

#endif
