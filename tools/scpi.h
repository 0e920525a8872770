/* SPDX-License-Identifier: MIT */
#ifndef TETHER_TOOLS_SCPI_H
#define TETHER_TOOLS_SCPI_H

int cmd_scpi(int argc, char **argv);

#endif
