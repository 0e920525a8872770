/* SPDX-License-Identifier: MIT */
/*
 * tether-sim-dmm: a simulated Keysight 34461A digital multimeter's USB
 * side, served as virtual USB (src/usbtmc/vusb.h) on an inherited
 * SOCK_SEQPACKET socket, for a driver that must not know it talks to a
 * simulator. tetherd starts it for `--simulate 34461a`
 * (docs/sim-dmm.md).
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dmm-usb.h"
#include "vusb-server.h"

/* The models this simulator can be (--model), as tetherd's --simulate
 * table names them. */
static const char *const models[] = { "34461a" };

static bool known_model(const char *name)
{
        for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++)
                if (!strcasecmp(name, models[i]))
                        return true;
        return false;
}

static void usage(FILE *f)
{
        fprintf(f, "usage: tether-sim-dmm --usb-fd N [--model M] [--serial S] [--seed N]\n"
                   "Serves a simulated Keysight 34461A's USB side (USBTMC/USB488) as virtual USB on the\n"
                   "inherited SOCK_SEQPACKET socket N (docs/vusb.md), and exits 0 when the peer hangs up.\n"
                   "--model names the model (34461a, the default); --serial is the one *IDN? and the\n"
                   "descriptors give; --seed makes the readings' noise (the same seed, the same readings).\n");
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "usb-fd", required_argument, NULL, 'u' }, { "serial", required_argument, NULL, 's' },
                { "seed", required_argument, NULL, 'S' },   { "model", required_argument, NULL, 'm' },
                { "help", no_argument, NULL, 'h' },         { 0 },
        };
        sim_dmm_config cfg = { 0 };
        int c, usb_fd = -1;
        while ((c = getopt_long(argc, argv, "u:s:S:m:h", opts, NULL)) != -1) {
                switch (c) {
                case 'u':
                        if ((usb_fd = sim_vusb_fd_arg(optarg)) < 0) {
                                fprintf(stderr, "tether-sim-dmm: --usb-fd takes an open fd number\n");
                                return 2;
                        }
                        break;
                case 's':
                        cfg.serial = optarg;
                        break;
                case 'S': {
                        char *end = NULL;
                        errno = 0;
                        cfg.seed = strtoull(optarg, &end, 0);
                        if (errno || end == optarg || *end) {
                                fprintf(stderr, "tether-sim-dmm: --seed takes a number\n");
                                return 2;
                        }
                        break;
                }
                case 'm':
                        if (!known_model(optarg)) {
                                fprintf(stderr, "tether-sim-dmm: unknown model '%s' (known:", optarg);
                                for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++)
                                        fprintf(stderr, " %s", models[i]);
                                fprintf(stderr, ")\n");
                                return 2;
                        }
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (usb_fd < 0 || optind != argc) {
                usage(stderr);
                return 2;
        }
        const char *serial = cfg.serial ? cfg.serial : SIM_DMM_DEFAULT_SERIAL;
        sim_usbtmc_profile p;
        vusb_info info;
        sim_dmm_usb_profile(&p);
        sim_dmm *m = NULL;
        sim_usbtmc *dev = NULL;
        if (sim_vusb_profile_info(&p, serial, &info) != TETHER_SUCCESS ||
            sim_dmm_new(&cfg, &m) == TETHER_ERR_BAD_ARGUMENT) {
                fprintf(stderr, "tether-sim-dmm: --serial must be at most %u printable ASCII characters, no comma\n",
                        VUSB_MAX_SERIAL);
                return 2;
        }
        if (!m || sim_dmm_usbtmc_new(m, &dev) != TETHER_SUCCESS) {
                fprintf(stderr, "tether-sim-dmm: out of memory\n");
                sim_dmm_free(m);
                return 1;
        }
        int rc = sim_vusb_run("tether-sim-dmm", usb_fd, dev, serial);
        sim_usbtmc_free(dev);
        sim_dmm_free(m);
        return rc;
}
