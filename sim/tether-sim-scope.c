/* SPDX-License-Identifier: MIT */
/*
 * tether-sim-scope: the simulated DSO-X 2002A on a TCP port, as a LAN-
 * equipped instrument serves raw SCPI on 5025. Any SCPI client can use it
 * (pyvisa "TCPIP::127.0.0.1::5025::SOCKET", lxi scpi, netcat) and so can
 * tetherd (--lan HOST:PORT).
 *
 * With --usb-fd it is the instrument's USB side instead: USBTMC transfers
 * over virtual USB (src/usbtmc/vusb.h) on an inherited SOCK_SEQPACKET
 * socket, for a driver that must not know it talks to a simulator.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tcp-front.h"
#include "usbtmc-device.h"
#include "vusb-server.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
        stop = 1;
}

/* The models this simulator can be (--model): tetherd passes the name its
 * --simulate table gives. */
static const char *const models[] = { "dsox2002a" };

static bool known_model(const char *name)
{
        for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++)
                if (!strcasecmp(name, models[i]))
                        return true;
        return false;
}

/* Serve the USB side on fd until the peer hangs up (sim_vusb_run). */
static int serve_usb(int fd, const sim_scope_config *cfg)
{
        /* The descriptors' serial is the one *IDN? gives. */
        const char *serial = cfg->serial ? cfg->serial : SIM_VUSB_DEFAULT_SERIAL;
        vusb_info info;
        if (sim_vusb_info(serial, &info) != TETHER_SUCCESS) {
                fprintf(stderr, "tether-sim-scope: --serial must be at most %u printable ASCII characters\n",
                        VUSB_MAX_SERIAL);
                return 2;
        }
        sim_scope *s = NULL;
        sim_usbtmc *dev = NULL;
        if (sim_scope_new(cfg, &s) || sim_usbtmc_new(s, &dev)) {
                fprintf(stderr, "tether-sim-scope: out of memory\n");
                sim_scope_free(s);
                return 1;
        }
        int rc = sim_vusb_run("tether-sim-scope", fd, dev, serial);
        sim_usbtmc_free(dev);
        sim_scope_free(s);
        return rc;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "listen", required_argument, NULL, 'l' }, { "serial", required_argument, NULL, 's' },
                { "seed", required_argument, NULL, 'S' },   { "help", no_argument, NULL, 'h' },
                { "usb-fd", required_argument, NULL, 'u' }, { "model", required_argument, NULL, 'm' },
                { 0 },
        };
        char host[64] = "127.0.0.1";
        unsigned port = 5025;
        sim_scope_config cfg = { 0 };
        int c, usb_fd = -1;
        bool listen_given = false;
        while ((c = getopt_long(argc, argv, "l:s:S:u:m:h", opts, NULL)) != -1) {
                switch (c) {
                case 'm':
                        if (!known_model(optarg)) {
                                fprintf(stderr, "tether-sim-scope: unknown model '%s' (known:", optarg);
                                for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++)
                                        fprintf(stderr, " %s", models[i]);
                                fprintf(stderr, ")\n");
                                return 2;
                        }
                        break;
                case 'u':
                        if ((usb_fd = sim_vusb_fd_arg(optarg)) < 0) {
                                fprintf(stderr, "tether-sim-scope: --usb-fd takes an open fd number\n");
                                return 2;
                        }
                        break;
                case 'l':
                        listen_given = true;
                        if (sscanf(optarg, "%63[^:]:%u", host, &port) != 2 || port > 65535) {
                                fprintf(stderr, "tether-sim-scope: --listen takes HOST:PORT\n");
                                return 2;
                        }
                        break;
                case 's': cfg.serial = optarg; break;
                case 'S': cfg.seed = strtoull(optarg, NULL, 0); break;
                case 'h':
                        printf("usage: tether-sim-scope [--model M] [--listen HOST:PORT] [--serial S] [--seed N]\n"
                               "       tether-sim-scope --usb-fd N [--model M] [--serial S] [--seed N]\n"
                               "Serves a simulated DSO-X 2002A's SCPI on TCP (default 127.0.0.1:5025;\n"
                               "port 0 picks a free one). Prints LISTENING <port> when ready.\n"
                               "With --usb-fd, serves its USB side (USBTMC/USB488) instead, as virtual\n"
                               "USB on the inherited SOCK_SEQPACKET socket N (docs/vusb.md), and exits\n"
                               "0 when the peer hangs up. --model names the model (dsox2002a, the default).\n");
                        return 0;
                default:
                        return 2;
                }
        }
        if (usb_fd >= 0 && listen_given) {
                fprintf(stderr, "tether-sim-scope: --usb-fd and --listen exclude each other\n");
                return 2;
        }
        if (usb_fd >= 0)
                return serve_usb(usb_fd, &cfg);
        struct sigaction sa = { .sa_handler = on_signal };
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        uint16_t bound = 0;
        int fd = sim_tcp_listen(host, (uint16_t)port, &bound);
        sim_scope *s = NULL;
        if (fd < 0 || sim_scope_new(&cfg, &s)) {
                fprintf(stderr, "tether-sim-scope: cannot listen on %s:%u\n", host, port);
                return 1;
        }
        printf("LISTENING %u\n", bound);
        fflush(stdout);
        sim_tcp_serve(s, fd, &stop);
        close(fd);
        sim_scope_free(s);
        return 0;
}
