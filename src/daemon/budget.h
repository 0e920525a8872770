/* SPDX-License-Identifier: MIT */
#ifndef TETHER_DAEMON_BUDGET_H
#define TETHER_DAEMON_BUDGET_H

/*
 * What each uid may make tetherd hold: file descriptors, sessions, and
 * sockets that have not finished their handshake. Bounds past which a
 * request fails with TETHER_ERR_NO_RESOURCES; root and tetherd's own user
 * are not bound (budget.c says why and how the fd pool is sized).
 */

#include <stdbool.h>
#include <sys/types.h>
#include <tether/return.h>

#define TETHERD_MAX_SESSIONS_PER_UID     64
#define TETHERD_MAX_UNIDENTIFIED_PER_UID 8    /* connected, no HELLO yet */
#define TETHERD_ROOT_RESERVE_FDS         32   /* at least; L/8 on a larger limit */

typedef struct uid_budget uid_budget;

/* Soft fd limit up to the hard one: before anything opens fds. */
void budget_raise_fd_limit(void);
/* Size the pool from the limit and the fds tetherd holds now: once the
 * services started at start-up have started (--in-process: their loops'
 * fds; in hosts: their channels), before serving. */
void budget_init(void);
void budget_shutdown(void);

/* Main thread. The uid's budget, made on first use; NULL if out of memory. */
uid_budget *budget_for(uid_t uid);
bool budget_privileged(const uid_budget *b);

/* Any thread. */
tether_ret_t budget_charge_fds(uid_budget *b, unsigned n);
void budget_release_fds(uid_budget *b, unsigned n);
unsigned budget_fds_in_use(const uid_budget *b);
/* Warnings about the uid's clients, rate-limited together, and its name
 * in the "messages suppressed" line. */
struct log_limit;
struct log_limit *budget_log(uid_budget *b);
const char *budget_who(const uid_budget *b);

/* Main thread, now and then: held-back warnings said once due. */
void budgets_tick(void);

/* Any thread: tetherd took (delta > 0) or gave back fds of its own. */
void budget_own_fds(int delta);

/* Main thread: a new socket of b's uid (charges its fd), its HELLO, its end. */
tether_ret_t budget_admit(uid_budget *b);
void budget_identified(uid_budget *b);
void budget_leave(uid_budget *b, bool identified);

#endif
