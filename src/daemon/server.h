/* SPDX-License-Identifier: MIT */
#ifndef TETHER_DAEMON_SERVER_H
#define TETHER_DAEMON_SERVER_H

#include <tether/return.h>

/* Serve until SIGTERM/SIGINT: on listen_fd, a listening socket systemd
 * passed (left in place at exit), or, if it is -1, on a socket of its own
 * bound at path once every driver has started (unlinked at exit). Once
 * clients can connect, writes "READY\n" to ready_fd (if >= 0) and tells
 * systemd (READY=1). hello_ms: the HELLO deadline (0: the default).
 * Returns the exit status. */
int server_run(int listen_fd, const char *path, int ready_fd, unsigned hello_ms);
void server_close_sessions(void);

/* Main thread: have the main loop call src->fn when src->fd hangs up
 * (EPOLLHUP/EPOLLERR only), and stop. */
struct loop_source;
tether_ret_t server_watch(struct loop_source *src);
/* Main thread: the same, for src->fd's messages too (EPOLLIN). */
tether_ret_t server_watch_input(struct loop_source *src);
/* Main thread: stop watching src now (src->removed skips events already
 * fetched); its owner closes the fd. */
void server_unwatch(struct loop_source *src);
/* Any thread: src is done with. Between its epoll batches (an event of the
 * current batch may still name src) the main thread stops watching it,
 * closes src->fd and frees obj, the object src is part of. */
void server_retire(struct loop_source *src, void *obj);
/* Main thread: do that now for everything retired so far. */
void server_reap_retired(void);

#endif
