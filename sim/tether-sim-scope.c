/* SPDX-License-Identifier: MIT */
/*
 * tether-sim-scope: the simulated DSO-X 2002A on a TCP port, as a LAN-
 * equipped instrument serves raw SCPI on 5025. Any SCPI client can use it
 * (pyvisa "TCPIP::127.0.0.1::5025::SOCKET", lxi scpi, netcat) and so can
 * tetherd (--lan HOST:PORT).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tcp-front.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
        stop = 1;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "listen", required_argument, NULL, 'l' }, { "serial", required_argument, NULL, 's' },
                { "seed", required_argument, NULL, 'S' },   { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        char host[64] = "127.0.0.1";
        unsigned port = 5025;
        sim_scope_config cfg = { 0 };
        int c;
        while ((c = getopt_long(argc, argv, "l:s:S:h", opts, NULL)) != -1) {
                switch (c) {
                case 'l':
                        if (sscanf(optarg, "%63[^:]:%u", host, &port) != 2 || port > 65535) {
                                fprintf(stderr, "tether-sim-scope: --listen takes HOST:PORT\n");
                                return 2;
                        }
                        break;
                case 's': cfg.serial = optarg; break;
                case 'S': cfg.seed = strtoull(optarg, NULL, 0); break;
                case 'h':
                        printf("usage: tether-sim-scope [--listen HOST:PORT] [--serial S] [--seed N]\n"
                               "Serves a simulated DSO-X 2002A's SCPI on TCP (default 127.0.0.1:5025;\n"
                               "port 0 picks a free one). Prints LISTENING <port> when ready.\n");
                        return 0;
                default:
                        return 2;
                }
        }
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
