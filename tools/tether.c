/* SPDX-License-Identifier: MIT */
/*
 * tether: the command-line tool. Each subcommand lives in its own module;
 * this file only picks one.
 */
#include <stdio.h>
#include <string.h>

#include <tether/tether.h>

#include "driver.h"
#include "probe.h"
#include "reg.h"
#include "scope.h"
#include "scpi.h"

static void usage(FILE *f)
{
        fprintf(f, "usage: tether reg [options] [ENTRY]          the registry as a tree (tether reg --help)\n"
                   "       tether reg set [-t TYPE] ENTRY KEY VALUE  write a property through its driver\n"
                   "       tether reg watch [-c CLASS] [-n NAME]     arrivals, removals, property changes\n"
                   "       tether probe [...]                        follow calls and USB transfers (tether probe --help)\n"
                   "       tether scope ...                          oscilloscopes (tether scope --help)\n"
                   "       tether scpi [ENTRY] ['CMD']                 SCPI to any instrument, or a shell (tether scpi --help)\n"
                   "       tether driver [list|load PATH|unload ID]  driver bundles (tether driver --help)\n"
                   "The daemon's socket is $TETHER_SOCKET or " TETHER_DEFAULT_SOCKET ".\n");
}

int main(int argc, char **argv)
{
        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        if (!strcmp(argv[1], "reg"))
                return cmd_reg(argc - 1, argv + 1);
        if (!strcmp(argv[1], "probe"))
                return cmd_probe(argc - 1, argv + 1);
        if (!strcmp(argv[1], "scope"))
                return cmd_scope(argc - 1, argv + 1);
        if (!strcmp(argv[1], "scpi"))
                return cmd_scpi(argc - 1, argv + 1);
        if (!strcmp(argv[1], "driver"))
                return cmd_driver(argc - 1, argv + 1);
        if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
                usage(stdout);
                return 0;
        }
        usage(stderr);
        return 2;
}
