/* SPDX-License-Identifier: MIT */
#ifndef TETHER_SIM_TCP_FRONT_H
#define TETHER_SIM_TCP_FRONT_H

/*
 * The simulated scope's LAN side: raw SCPI on a TCP socket (the series'
 * port 5025). Program messages end with a newline; answers are written as
 * the instrument queues them.
 */

#include <signal.h>
#include <stdint.h>

#include "scope.h"

/* A listening socket on host:port (port 0: any free one, see *ret_port). */
int sim_tcp_listen(const char *host, uint16_t port, uint16_t *ret_port);
/* Serve one client at a time until *stop becomes non-zero. */
void sim_tcp_serve(sim_scope *s, int listen_fd, volatile sig_atomic_t *stop);

#endif
