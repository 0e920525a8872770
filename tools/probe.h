/* SPDX-License-Identifier: MIT */
#ifndef TETHER_TOOLS_PROBE_H
#define TETHER_TOOLS_PROBE_H

/* `tether probe ...`: argv[0] is "probe". Returns the exit status. */
int cmd_probe(int argc, char **argv);

#endif
