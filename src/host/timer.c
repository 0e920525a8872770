/* SPDX-License-Identifier: MIT */
/*
 * Timers (include/tether/driver.h): IOTimerEventSource for a tether
 * service. Each is a cancellable job on the service's work loop
 * (workloop.h's loop_timer), so a callback runs with everything else the
 * driver does, one at a time, and a cancelled or re-armed timer leaves no
 * stale entry behind.
 *
 * Everything here runs in the service's gate (its loop's thread, or a user
 * client's in a call): a timer's state needs no lock of its own, and "is
 * its callback running?" has a plain answer, which is what makes freeing a
 * timer from any callback (its own included) safe.
 */
#include "host/runtime.h"

#include <stdlib.h>

struct tether_timer {
        tether_service *svc;
        tether_timer_fn fn;
        void *refcon;
        loop_timer job;
        uint64_t due_ns;           /* while armed: when */
        uint32_t period_ms;        /* 0: one-shot */
        bool armed;
        bool running;              /* its callback is on the stack */
        bool freed;                /* freed by its own callback: free once it returns */
        tether_timer *prev, *next; /* the service's timers */
};

/* Outside the gate a callback may be running at this moment: nothing done
 * from there could be safe, so nothing is done, and the driver is told. */
static bool on_loop(tether_service *s, const char *what)
{
        if (workloop_in_gate(s->loop))
                return true;
        service_log_bug(s, "%s called off the service's work loop: refused", what);
        return false;
}

static void call(tether_timer *t, tether_ret_t status)
{
        t->running = true;
        t->fn(t->svc, t, t->refcon, status);
        t->running = false;
        if (t->freed)
                free(t);
}

static void fire(void *arg)
{
        tether_timer *t = arg;
        tether_service *s = t->svc;
        tether_ret_t status = TETHER_SUCCESS;
        if (s->terminated || s->timers_closed) {
                /* Stopped without its timers being aborted (a start() that
                 * succeeded on a nub gone meanwhile is never stopped): the
                 * owner is told all the same, and this is its last call. */
                status = TETHER_ERR_ABORTED;
                t->armed = false;
        } else if (t->period_ms) {
                /* Re-armed before the callback, so the callback can cancel
                 * or re-arm it like any other armed timer. */
                uint64_t period = (uint64_t)t->period_ms * 1000000u, now = workloop_now_ns();
                uint64_t next = t->due_ns + period;
                if (next <= now)
                        next = now + period; /* a busy loop skips periods, never bursts */
                t->due_ns = next;
                t->armed = workloop_timer_arm(s->loop, &t->job, next) == TETHER_SUCCESS;
        } else {
                t->armed = false;
        }
        call(t, status);
}

tether_ret_t tether_timer_create(tether_service *svc, tether_timer_fn fn, void *refcon, tether_timer **ret_timer)
{
        if (!svc || !fn || !ret_timer)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret_timer = NULL;
        if (!on_loop(svc, "tether_timer_create"))
                return TETHER_ERR_NOT_PERMITTED;
        if (svc->terminated || svc->timers_closed) {
                service_log_bug(svc, "tether_timer_create on a stopped service: refused (NotAttached)");
                return TETHER_ERR_NOT_ATTACHED;
        }
        if (svc->n_timers >= TETHER_MAX_TIMERS_PER_SERVICE) {
                service_log_bug(svc, "tether_timer_create: at the limit of %u timers", TETHER_MAX_TIMERS_PER_SERVICE);
                return TETHER_ERR_NO_RESOURCES;
        }
        tether_timer *t = calloc(1, sizeof(*t));
        if (!t)
                return TETHER_ERR_NO_MEMORY;
        t->svc = svc;
        t->fn = fn;
        t->refcon = refcon;
        loop_timer_init(&t->job, fire, t);
        t->next = svc->timers;
        if (svc->timers)
                svc->timers->prev = t;
        svc->timers = t;
        svc->n_timers++;
        *ret_timer = t;
        return TETHER_SUCCESS;
}

static void disarm(tether_timer *t)
{
        workloop_timer_cancel(t->svc->loop, &t->job);
        t->armed = false;
        t->period_ms = 0;
}

static tether_ret_t arm(tether_timer *t, uint32_t delay_ms, uint32_t period_ms, const char *what)
{
        if (!t || t->freed)
                return TETHER_ERR_BAD_ARGUMENT;
        tether_service *s = t->svc;
        if (!on_loop(s, what))
                return TETHER_ERR_NOT_PERMITTED;
        if (s->terminated || s->timers_closed) {
                service_log_bug(s, "%s on a stopped service: refused (NotAttached)", what);
                return TETHER_ERR_NOT_ATTACHED;
        }
        uint64_t due = workloop_now_ns() + (uint64_t)delay_ms * 1000000u;
        tether_ret_t r = workloop_timer_arm(s->loop, &t->job, due);
        if (r != TETHER_SUCCESS) {
                disarm(t); /* whatever was pending is gone too: a defined state */
                return r;
        }
        t->due_ns = due;
        t->period_ms = period_ms;
        t->armed = true;
        return TETHER_SUCCESS;
}

tether_ret_t tether_timer_arm(tether_timer *timer, uint32_t delay_ms)
{
        return arm(timer, delay_ms, 0, "tether_timer_arm");
}

tether_ret_t tether_timer_arm_periodic(tether_timer *timer, uint32_t period_ms)
{
        /* A zero period would make the loop do nothing else. */
        if (!period_ms)
                return TETHER_ERR_BAD_ARGUMENT;
        return arm(timer, period_ms, period_ms, "tether_timer_arm_periodic");
}

tether_ret_t tether_timer_cancel(tether_timer *timer)
{
        if (!timer || timer->freed)
                return TETHER_ERR_BAD_ARGUMENT;
        if (!on_loop(timer->svc, "tether_timer_cancel"))
                return TETHER_ERR_NOT_PERMITTED;
        disarm(timer);
        return TETHER_SUCCESS;
}

bool tether_timer_is_armed(tether_timer *timer)
{
        return timer && !timer->freed && timer->armed;
}

static void unlink_timer(tether_timer *t)
{
        tether_service *s = t->svc;
        if (t->prev)
                t->prev->next = t->next;
        else
                s->timers = t->next;
        if (t->next)
                t->next->prev = t->prev;
        t->prev = t->next = NULL;
        s->n_timers--;
}

void tether_timer_free(tether_timer *timer)
{
        if (!timer || timer->freed || !on_loop(timer->svc, "tether_timer_free"))
                return;
        disarm(timer);
        unlink_timer(timer);
        if (timer->running)
                timer->freed = true; /* call() frees it when the callback returns */
        else
                free(timer);
}

void service_timers_abort(tether_service *s)
{
        /* From the head each time: a callback may free any other timer. Each
         * turn disarms one, and none can be armed again, so this ends. */
        s->timers_closed = true;
        for (;;) {
                tether_timer *t = s->timers;
                while (t && !t->armed)
                        t = t->next;
                if (!t)
                        return;
                disarm(t);
                if (!t->running) /* stopped from its own callback: it knows */
                        call(t, TETHER_ERR_ABORTED);
        }
}

void service_timers_release(tether_service *s)
{
        while (s->timers) {
                tether_timer *t = s->timers;
                s->timers = t->next;
                free(t);
        }
        s->n_timers = 0;
}
