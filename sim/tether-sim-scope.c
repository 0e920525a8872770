/* SPDX-License-Identifier: MIT */
/*
 * tether-sim-scope: a simulated InfiniiVision 2000 X (the DSO-X 2002A, or
 * any model of the series with --model) on a TCP port, as a LAN-
 * equipped instrument serves raw SCPI on 5025. Any SCPI client can use it
 * (pyvisa "TCPIP::127.0.0.1::5025::SOCKET", lxi scpi, netcat) and so can
 * tetherd (--lan HOST:PORT).
 *
 * With --usb-fd it is the instrument's USB side instead: USBTMC transfers
 * over virtual USB (src/usbtmc/vusb.h) on an inherited SOCK_SEQPACKET
 * socket, for a driver that must not know it talks to a simulator.
 */
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "models.h"
#include "tcp-front.h"
#include "usbtmc-device.h"
#include "vusb-server.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
        stop = 1;
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
                { "idn-model", required_argument, NULL, 'I' }, { "list-models", no_argument, NULL, 'L' },
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
                        if (!(cfg.spec = sim_model_find(optarg))) {
                                fprintf(stderr, "tether-sim-scope: --model: unknown model '%s' (--list-models lists them)\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case 'I':
                        /* What *IDN? calls the model, whatever it is: firmware that
                         * spells it otherwise, or a model the driver does not know. */
                        if (!*optarg || strlen(optarg) > 31 || strpbrk(optarg, ",\n")) {
                                fprintf(stderr, "tether-sim-scope: --idn-model takes 1 to 31 characters, no comma\n");
                                return 2;
                        }
                        cfg.model = optarg;
                        break;
                case 'L':
                        for (size_t i = 0; sim_model_at(i); i++) {
                                const sim_model *m = sim_model_at(i);
                                printf("%-10s %-12s 0957:%04x  %u channels%s  %.0f MHz\n", m->name, m->idn_model,
                                       m->usb_product, m->channels, m->digital ? " + 8 digital" : "",
                                       m->bandwidth / 1e6);
                        }
                        return 0;
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
                               "       tether-sim-scope [--model M] --usb-fd N [--serial S] [--seed N]\n"
                               "       tether-sim-scope --list-models\n"
                               "Serves a simulated InfiniiVision 2000 X's SCPI on TCP (default 127.0.0.1:5025;\n"
                               "port 0 picks a free one). Prints LISTENING <port> when ready.\n"
                               "--model picks the model (dsox2002a, the default, ... msox2024a; any case).\n"
                               "--idn-model TEXT makes *IDN? call it TEXT instead of its own name.\n"
                               "With --usb-fd, serves its USB side (USBTMC/USB488) instead, as virtual\n"
                               "USB on the inherited SOCK_SEQPACKET socket N (docs/vusb.md), and exits\n"
                               "0 when the peer hangs up.\n");
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
