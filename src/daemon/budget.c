/* SPDX-License-Identifier: MIT */
#include "daemon/budget.h"

#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/log.h"

/*
 * File descriptors are what a local client can most cheaply make tetherd
 * run out of, and running out hurts everyone (no accept, no open, no
 * socketpair). So every fd a client makes tetherd hold is charged to the
 * client's uid: a session's socket (1), a connection (2 while its OPEN
 * reply is in flight, then 1), a notification port (1). Privileged callers
 * (root, tetherd's own user) are not charged: they own the machine, and the
 * reserve kept out of everyone else's reach is theirs.
 *
 * Of the fd limit L: what tetherd itself holds when it starts serving
 * (base) plus headroom for services that come later, and a root reserve,
 * are never lent out; unprivileged uids share the rest (the pool), and one
 * uid may hold at most a quarter of it, so no single user can drain it.
 */

struct uid_budget {
        uid_t uid;
        bool privileged;
        atomic_uint fds;           /* charged fds */
        unsigned sessions;         /* main thread */
        unsigned unidentified;     /* main thread: sockets that have not said HELLO */
        /* Warnings about this uid's clients: per uid, so that reconnecting
         * (a new session, a new pid) does not buy a client a new burst. */
        log_limit log;
        char who[24];              /* "uid N" */
        struct uid_budget *next;
};

static uid_budget *budgets;        /* main thread adds; never removed before shutdown */
static atomic_uint pool_used;
static unsigned pool_size, per_uid_fds;
/* fds tetherd itself took since the pool was sized (services started
 * later: a work loop's two, a host's channel), less those it gave back:
 * past the headroom they come out of the pool, so that what root starts
 * (64 published nubs are 128 fds) never eats into root's reserve. */
static atomic_int own_since;

/* Services started later (hotplugged instruments, published nubs) take
 * fds of tetherd's own: a thread's epoll and eventfd, libusb's. */
#define OWN_HEADROOM 32u

static unsigned open_fds(void)
{
        unsigned n = 0;
        DIR *d = opendir("/proc/self/fd");
        if (!d)
                return 64; /* a guess on the safe side: /proc is always there on Linux */
        while (readdir(d))
                n++;
        closedir(d);
        return n > 3 ? n - 3 : 0; /* ".", ".." and the directory's own fd */
}

void budget_raise_fd_limit(void)
{
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rlim_t want = rl.rlim_max;
                /* The limit, not the fds, is what can be huge; a pool sized
                 * from a limit of 2^30 would be meaningless. */
                if (want > 1u << 20)
                        want = 1u << 20;
                if (want > rl.rlim_cur) {
                        rl.rlim_cur = want;
                        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                                log_warn("cannot raise the fd limit to %llu", (unsigned long long)want);
                }
        }
}

void budget_init(void)
{
        struct rlimit rl = { 1024, 1024 };
        getrlimit(RLIMIT_NOFILE, &rl);
        unsigned limit = rl.rlim_cur > 1u << 20 ? 1u << 20 : (unsigned)rl.rlim_cur;
        unsigned reserve = limit / 8 > TETHERD_ROOT_RESERVE_FDS ? limit / 8 : TETHERD_ROOT_RESERVE_FDS;
        unsigned kept = open_fds() + OWN_HEADROOM + reserve;
        pool_size = limit > kept ? limit - kept : 0;
        atomic_store(&own_since, 0);
        per_uid_fds = pool_size / 4;
        atomic_store(&pool_used, 0);
        log_info("fd limit %u: %u for unprivileged clients, at most %u per uid, %u kept for root",
                 limit, pool_size, per_uid_fds, reserve);
}

uid_budget *budget_for(uid_t uid)
{
        for (uid_budget *b = budgets; b; b = b->next)
                if (b->uid == uid)
                        return b;
        uid_budget *b = calloc(1, sizeof(*b));
        if (!b)
                return NULL;
        b->uid = uid;
        b->privileged = uid == 0 || uid == geteuid();
        log_limit_init(&b->log);
        snprintf(b->who, sizeof(b->who), "uid %u", (unsigned)uid);
        b->next = budgets;
        budgets = b;
        return b;
}

bool budget_privileged(const uid_budget *b)
{
        return b->privileged;
}

tether_ret_t budget_charge_fds(uid_budget *b, unsigned n)
{
        if (b->privileged)
                return TETHER_SUCCESS;
        /* Charge first, then check, so two threads charging at once can
         * never both slip under the bound. */
        unsigned mine = atomic_fetch_add(&b->fds, n) + n;
        unsigned all = atomic_fetch_add(&pool_used, n) + n;
        int own = atomic_load(&own_since) - (int)OWN_HEADROOM;
        unsigned pool = own <= 0 ? pool_size : (unsigned)own >= pool_size ? 0 : pool_size - (unsigned)own;
        if (mine > per_uid_fds || all > pool) {
                budget_release_fds(b, n);
                return TETHER_ERR_NO_RESOURCES;
        }
        return TETHER_SUCCESS;
}

void budget_release_fds(uid_budget *b, unsigned n)
{
        if (!b || b->privileged || !n)
                return;
        atomic_fetch_sub(&b->fds, n);
        atomic_fetch_sub(&pool_used, n);
}

tether_ret_t budget_admit(uid_budget *b)
{
        if (b->privileged) {
                b->unidentified++;
                b->sessions++;
                return TETHER_SUCCESS;
        }
        if (b->unidentified >= TETHERD_MAX_UNIDENTIFIED_PER_UID || b->sessions >= TETHERD_MAX_SESSIONS_PER_UID)
                return TETHER_ERR_NO_RESOURCES;
        tether_ret_t r = budget_charge_fds(b, 1);
        if (r != TETHER_SUCCESS)
                return r;
        b->unidentified++;
        b->sessions++;
        return TETHER_SUCCESS;
}

void budget_identified(uid_budget *b)
{
        if (b->unidentified)
                b->unidentified--;
}

void budget_leave(uid_budget *b, bool identified)
{
        if (!identified)
                budget_identified(b);
        if (b->sessions)
                b->sessions--;
        budget_release_fds(b, 1);
}

void budgets_tick(void)
{
        /* What each uid's clients had held back is said once its window is
         * over, whether or not they misbehave again (or are still here). */
        for (uid_budget *b = budgets; b; b = b->next)
                log_limit_flush_due(&b->log, b->who);
}

void budget_own_fds(int delta)
{
        atomic_fetch_add(&own_since, delta);
}

log_limit *budget_log(uid_budget *b)
{
        return &b->log;
}

const char *budget_who(const uid_budget *b)
{
        return b->who;
}

unsigned budget_fds_in_use(const uid_budget *b)
{
        return atomic_load(&b->fds);
}

void budget_shutdown(void)
{
        while (budgets) {
                uid_budget *b = budgets;
                budgets = b->next;
                log_limit_flush(&b->log, b->who);
                log_limit_destroy(&b->log);
                free(b);
        }
}
