/* SPDX-License-Identifier: MIT */
#ifndef TETHER_DAEMON_SERVER_H
#define TETHER_DAEMON_SERVER_H

/* Serve path until SIGTERM/SIGINT. Writes "READY\n" to ready_fd (if >= 0)
 * once clients can connect. Returns the exit status. */
int server_run(const char *path, int ready_fd);
void server_close_sessions(void);

#endif
