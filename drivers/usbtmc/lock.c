/* SPDX-License-Identifier: MIT */
/*
 * The exclusive lock (VISA's viLock with VI_EXCLUSIVE_LOCK): while one
 * connection holds it, every other connection's calls that use the
 * instrument, and property writes from other processes, get Busy. It goes
 * with an UNLOCK, the close of its connection or the death of its client.
 *
 * Waiting for it cannot block: the holder's own calls, its UNLOCK among
 * them, run on the same work loop. So a LOCK that finds the lock taken
 * answers Busy at once when called synchronously (or with no time to
 * wait), and when called async with a timeout it is queued: its result
 * comes when the lock is its (TETHER_SUCCESS) or when the time is up
 * (TETHER_ERR_TIMEOUT). Waiters are served first come, first served.
 */
#include "instrument.h"

/* The waiter that came first, or NULL. */
static tmc_client *first_waiter(tmc_instr *in)
{
        tmc_client *first = NULL;
        for (tmc_client *c = in->clients; c; c = c->next)
                if (c->waiting && (!first || c->lock_seq < first->lock_seq))
                        first = c;
        return first;
}

static void stop_waiting(tmc_client *c)
{
        if (!c->waiting)
                return;
        c->waiting = false;
        c->in->n_waiters--;
}

/* Arm the timer for the earliest deadline among the waiters. */
static void rearm(tmc_instr *in)
{
        uint64_t soonest = UINT64_MAX;
        for (tmc_client *c = in->clients; c; c = c->next)
                if (c->waiting && c->lock_deadline < soonest)
                        soonest = c->lock_deadline;
        if (soonest == UINT64_MAX) {
                tether_timer_cancel(in->lock_timer);
                return;
        }
        uint64_t now = clock_mono_ms();
        tether_timer_arm(in->lock_timer, soonest > now ? (uint32_t)(soonest - now) : 0);
}

/* The lock is free: the first waiter who still hears of it gets it. One
 * whose result cannot be delivered (it cancelled, closed, or its port is
 * full) would hold a lock it does not know it has: it is passed over. */
static void grant_next(tmc_instr *in)
{
        tmc_client *c;
        while (!in->lock_owner && (c = first_waiter(in))) {
                stop_waiting(c);
                if (tether_async_complete(&c->lock_ref, TETHER_SUCCESS, NULL, 0) == TETHER_SUCCESS)
                        in->lock_owner = c;
        }
        rearm(in);
}

tether_ret_t tmc_lock(tmc_client *c, uint64_t timeout_ms, const tether_async_ref *async_ref)
{
        tmc_instr *in = c->in;
        if (!in->lock_owner || in->lock_owner == c) {
                in->lock_owner = c;
                if (async_ref)
                        tether_async_complete(async_ref, TETHER_SUCCESS, NULL, 0);
                return TETHER_SUCCESS;
        }
        if (!async_ref || timeout_ms == 0 || c->waiting)
                return TETHER_ERR_BUSY;
        if (in->n_waiters >= TMC_MAX_LOCK_WAITERS)
                return TETHER_ERR_NO_RESOURCES;
        c->waiting = true;
        c->lock_ref = *async_ref;
        c->lock_deadline = clock_mono_ms() + timeout_ms;
        c->lock_seq = ++in->wait_seq;
        in->n_waiters++;
        rearm(in);
        return TETHER_SUCCESS;
}

tether_ret_t tmc_unlock(tmc_client *c)
{
        tmc_instr *in = c->in;
        if (in->lock_owner != c)
                return TETHER_ERR_NOT_OPEN; /* not ours to release */
        in->lock_owner = NULL;
        grant_next(in);
        return TETHER_SUCCESS;
}

void tmc_lock_forget(tmc_client *c)
{
        tmc_instr *in = c->in;
        if (c->waiting) {
                stop_waiting(c);
                rearm(in);
        }
        if (in->lock_owner == c) {
                in->lock_owner = NULL;
                grant_next(in);
        }
}

void tmc_lock_timer_fired(tether_service *svc, tether_timer *timer, void *refcon, tether_ret_t status)
{
        tmc_instr *in = refcon;
        uint64_t now = clock_mono_ms();
        for (tmc_client *c = in->clients; c; c = c->next) {
                if (!c->waiting || (status == TETHER_SUCCESS && c->lock_deadline > now))
                        continue;
                stop_waiting(c);
                /* The service stopping: the waiter hears it is gone. */
                tether_async_complete(&c->lock_ref, status == TETHER_SUCCESS ? TETHER_ERR_TIMEOUT : TETHER_ERR_NOT_ATTACHED,
                                      NULL, 0);
        }
        if (status == TETHER_SUCCESS)
                rearm(in);
}
