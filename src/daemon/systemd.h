/* SPDX-License-Identifier: MIT */
#ifndef TETHER_DAEMON_SYSTEMD_H
#define TETHER_DAEMON_SYSTEMD_H

/*
 * tetherd under systemd (docs/systemd.md): the socket tetherd.socket
 * passes (socket activation), and what tetherd tells the manager
 * (sd_notify: READY, STATUS, STOPPING). Outside systemd, none of it
 * applies and nothing here does anything.
 */

#include <stddef.h>
#include <tether/return.h>

/*
 * The listening socket systemd passed, if tetherd was socket-activated:
 * *ret_fd is it (non-blocking, close-on-exec) and path its address (for
 * the log), or -1 when nothing was passed to tetherd (no LISTEN_FDS, or
 * LISTEN_PID names another process, whose environment tetherd inherited).
 * Activation that passed no usable socket (LISTEN_FDS naming fds that are
 * not open, none, more than one, one that is not an AF_UNIX SOCK_SEQPACKET
 * socket, or one not listening) is an error, logged with what was wrong:
 * tetherd must fail rather than serve a socket nobody connects to.
 * LISTEN_* are removed from the environment either way.
 */
tether_ret_t systemd_listener(int *ret_fd, char *path, size_t path_size);

/* Tells the manager tetherd serves: READY=1 and a STATUS naming path. */
void systemd_notify_ready(const char *path);
/* STATUS=, with the number of connected clients; said only when it changed
 * and no more than once a second. */
void systemd_notify_clients(size_t clients);
/* STOPPING=1: tetherd is shutting down. */
void systemd_notify_stopping(void);

#endif
