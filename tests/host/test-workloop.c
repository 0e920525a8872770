/* SPDX-License-Identifier: MIT */
/*
 * Work loops and their gates (src/host/workloop.c), as the driver runtime
 * uses them: jobs on the loop's thread and calls on threads of the loop's
 * own (a user client's) take one gate, so one piece of a service's work
 * runs at a time; the gate serves waiters in turn; a finishing loop waits
 * for its threads, joins them and lets their owners free what they used.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "host/workloop.h"

static uint64_t now_ms(void)
{
        return workloop_now_ns() / 1000000u;
}

/* ---- what runs in the gate checks it is alone there ---- */

typedef struct shared {
        workloop *wl;
        atomic_int inside;         /* 1 while someone is in the gate */
        long count;                /* only ever touched in the gate */
        atomic_int overlaps;       /* two in the gate at once */
        atomic_int not_in_gate;    /* workloop_in_gate said no in the gate */
        atomic_int off_loop_jobs;  /* a job not on the loop's thread */
} shared;

static void in_gate_work(shared *s)
{
        if (!workloop_in_gate(s->wl))
                atomic_fetch_add(&s->not_in_gate, 1);
        if (atomic_exchange(&s->inside, 1))
                atomic_fetch_add(&s->overlaps, 1);
        long c = s->count;
        if (c % 7 == 0)
                sched_yield(); /* let another thread try its luck meanwhile */
        s->count = c + 1;
        atomic_store(&s->inside, 0);
}

static void job(void *arg)
{
        shared *s = arg;
        if (!workloop_on_thread(s->wl))
                atomic_fetch_add(&s->off_loop_jobs, 1);
        in_gate_work(s);
}

enum { THREADS = 4, ROUNDS = 3000, JOBS = 300 };

typedef struct worker {
        loop_thread t;
        shared *s;
        atomic_int reaped;         /* reaped() ran: once, in the gate, on the loop */
        atomic_int reaped_wrong;
} worker;

static void worker_main(void *arg)
{
        worker *w = arg;
        for (int i = 0; i < ROUNDS; i++) {
                workloop_gate_enter(w->s->wl);
                in_gate_work(w->s);
                workloop_gate_leave(w->s->wl);
        }
}

static void worker_reaped(void *arg)
{
        worker *w = arg;
        if (!workloop_in_gate(w->s->wl) || !workloop_on_thread(w->s->wl))
                atomic_fetch_add(&w->reaped_wrong, 1);
        atomic_fetch_add(&w->reaped, 1);
}

static void loop_and_threads_take_turns(void **state)
{
        shared s = { 0 };
        assert_int_equal(workloop_new("test", &s.wl), TETHER_SUCCESS);
        static worker w[THREADS];
        memset(w, 0, sizeof(w));
        for (int i = 0; i < THREADS; i++) {
                w[i].s = &s;
                assert_int_equal(workloop_thread_start(s.wl, &w[i].t, "test", 256u * 1024u, worker_main,
                                                       worker_reaped, &w[i]),
                                 TETHER_SUCCESS);
        }
        for (int i = 0; i < JOBS; i++)
                assert_int_equal(workloop_post(s.wl, 0, job, &s), TETHER_SUCCESS);
        /* Outside, this thread is in no gate. */
        assert_false(workloop_in_gate(s.wl));
        workloop_finish(s.wl, NULL, NULL);
        workloop_join(s.wl);
        assert_int_equal(s.count, THREADS * ROUNDS + JOBS);
        assert_int_equal(atomic_load(&s.overlaps), 0);
        assert_int_equal(atomic_load(&s.not_in_gate), 0);
        assert_int_equal(atomic_load(&s.off_loop_jobs), 0);
        for (int i = 0; i < THREADS; i++) {
                assert_int_equal(atomic_load(&w[i].reaped), 1);
                assert_int_equal(atomic_load(&w[i].reaped_wrong), 0);
        }
        workloop_free(s.wl);
}

/* ---- the gate serves in turn: a busy thread cannot starve the loop ---- */

typedef struct hog {
        loop_thread t;
        workloop *wl;
        atomic_int stop;
        atomic_long turns;
} hog;

static void hog_main(void *arg)
{
        hog *h = arg;
        while (!atomic_load(&h->stop)) {
                workloop_gate_enter(h->wl);
                atomic_fetch_add(&h->turns, 1);
                workloop_gate_leave(h->wl); /* and straight back in line */
        }
}

static atomic_llong job_ran_ms;

static void timed_job(void *arg)
{
        atomic_store(&job_ran_ms, (long long)now_ms());
}

static void a_busy_thread_cannot_starve_the_loop(void **state)
{
        workloop *wl = NULL;
        assert_int_equal(workloop_new("test", &wl), TETHER_SUCCESS);
        static hog h[2];
        memset(h, 0, sizeof(h));
        for (int i = 0; i < 2; i++) {
                h[i].wl = wl;
                assert_int_equal(workloop_thread_start(wl, &h[i].t, "hog", 256u * 1024u, hog_main, NULL, &h[i]),
                                 TETHER_SUCCESS);
        }
        while (atomic_load(&h[0].turns) < 1000 || atomic_load(&h[1].turns) < 1000)
                usleep(1000);
        for (int k = 0; k < 20; k++) {
                atomic_store(&job_ran_ms, 0);
                long long t0 = (long long)now_ms();
                assert_int_equal(workloop_post(wl, 0, timed_job, NULL), TETHER_SUCCESS);
                while (!atomic_load(&job_ran_ms) && (long long)now_ms() - t0 < 5000)
                        usleep(100);
                /* Its turn comes after the holder's, and the other's. A
                 * loaded machine may keep the loop off a CPU for a while. */
                assert_true(atomic_load(&job_ran_ms));
                assert_in_range(atomic_load(&job_ran_ms) - t0, 0, 1000);
        }
        /* Both hogs got turns too: the gate is theirs as much as the loop's. */
        long a = atomic_load(&h[0].turns), b = atomic_load(&h[1].turns);
        usleep(20000);
        assert_true(atomic_load(&h[0].turns) > a);
        assert_true(atomic_load(&h[1].turns) > b);
        for (int i = 0; i < 2; i++)
                atomic_store(&h[i].stop, 1);
        workloop_finish(wl, NULL, NULL);
        workloop_join(wl);
        workloop_free(wl);
}

/* ---- a finishing loop waits for its threads ---- */

typedef struct waiter {
        loop_thread t;
        workloop *wl;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool go;
        atomic_int returned, reaped;
        atomic_int last_before_reaped;
} waiter;

static void waiter_main(void *arg)
{
        waiter *w = arg;
        pthread_mutex_lock(&w->lock);
        while (!w->go)
                pthread_cond_wait(&w->cond, &w->lock);
        pthread_mutex_unlock(&w->lock);
        atomic_store(&w->returned, 1);
}

static void waiter_reaped(void *arg)
{
        waiter *w = arg;
        atomic_store(&w->reaped, 1);
}

static void waiter_last(void *arg)
{
        waiter *w = arg;
        if (!atomic_load(&w->reaped))
                atomic_store(&w->last_before_reaped, 1);
}

static void finish_waits_for_threads(void **state)
{
        static waiter w;
        memset(&w, 0, sizeof(w));
        pthread_mutex_init(&w.lock, NULL);
        pthread_cond_init(&w.cond, NULL);
        assert_int_equal(workloop_new("test", &w.wl), TETHER_SUCCESS);
        assert_int_equal(workloop_thread_start(w.wl, &w.t, "waiter", 256u * 1024u, waiter_main, waiter_reaped, &w),
                         TETHER_SUCCESS);
        workloop_finish(w.wl, waiter_last, &w);
        /* Finishing: no more jobs, no more threads. */
        static loop_thread late;
        assert_int_equal(workloop_thread_start(w.wl, &late, "late", 256u * 1024u, waiter_main, NULL, &w),
                         TETHER_ERR_OFFLINE);
        assert_int_equal(workloop_post(w.wl, 0, timed_job, NULL), TETHER_ERR_OFFLINE);
        usleep(100000);
        /* The loop is still there, waiting: nothing was reaped. */
        assert_int_equal(atomic_load(&w.reaped), 0);
        pthread_mutex_lock(&w.lock);
        w.go = true;
        pthread_cond_signal(&w.cond);
        pthread_mutex_unlock(&w.lock);
        workloop_join(w.wl);
        assert_int_equal(atomic_load(&w.returned), 1);
        assert_int_equal(atomic_load(&w.reaped), 1);
        assert_int_equal(atomic_load(&w.last_before_reaped), 0);
        workloop_free(w.wl);
}

/* ---- a thread whose work is done takes the next ---- */

typedef struct who {
        loop_thread t;
        workloop *wl;
        pthread_t ran_on;
        atomic_int reaped;
} who;

static void who_main(void *arg)
{
        who *w = arg;
        w->ran_on = pthread_self();
        if (!workloop_thread_is_current(&w->t))
                w->ran_on = 0;
}

static void who_reaped(void *arg)
{
        who *w = arg;
        atomic_store(&w->reaped, 1);
}

static void threads_are_kept_for_the_next(void **state)
{
        workloop *wl = NULL;
        assert_int_equal(workloop_new("test", &wl), TETHER_SUCCESS);
        static who a, b;
        memset(&a, 0, sizeof(a));
        memset(&b, 0, sizeof(b));
        assert_int_equal(workloop_thread_start(wl, &a.t, "a", 256u * 1024u, who_main, who_reaped, &a), TETHER_SUCCESS);
        for (int i = 0; i < 5000 && !atomic_load(&a.reaped); i++)
                usleep(1000);
        assert_true(atomic_load(&a.reaped));
        assert_false(workloop_thread_is_current(&a.t));
        assert_int_equal(workloop_thread_start(wl, &b.t, "b", 256u * 1024u, who_main, who_reaped, &b), TETHER_SUCCESS);
        for (int i = 0; i < 5000 && !atomic_load(&b.reaped); i++)
                usleep(1000);
        assert_true(atomic_load(&b.reaped));
        assert_true(a.ran_on != 0);
        assert_true(pthread_equal(a.ran_on, b.ran_on));
        /* A finishing loop ends the thread that waits, and joins it. */
        workloop_finish(wl, NULL, NULL);
        workloop_join(wl);
        workloop_free(wl);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(loop_and_threads_take_turns),
                cmocka_unit_test(a_busy_thread_cannot_starve_the_loop),
                cmocka_unit_test(finish_waits_for_threads),
                cmocka_unit_test(threads_are_kept_for_the_next),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
