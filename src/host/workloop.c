/* SPDX-License-Identifier: MIT */
#include "host/workloop.h"

#include <pthread.h>
#include <stdatomic.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"

struct job {
        workloop_fn fn;
        void *arg;
        uint64_t due_ns;
        uint64_t seq;              /* posting order: FIFO among equal due times */
        loop_timer *timer;         /* a cancellable job: told where it moves */
};

/* One thread waiting for the gate, on its own stack. */
typedef struct gate_waiter {
        pthread_cond_t cond;
        bool granted;              /* the gate is this thread's now */
        struct gate_waiter *next;
} gate_waiter;

/* A thread of the loop's: runs one loop_thread's fn after another. Once
 * one returns, the thread waits a while for the next (opening a connection
 * then costs a wake-up, not a thread made and joined), and ends when none
 * comes, when enough others wait, or when the loop finishes. */
typedef struct pooled {
        pthread_t thread;
        workloop *wl;
        loop_thread *job;          /* the loop's lock: what it runs; NULL while idle */
        pthread_cond_t wake;       /* a job, or the loop finishing */
        size_t stack;              /* its stack's size */
        struct pooled *next;       /* the loop's lock: in its idle or its ended list */
} pooled;


/* Threads kept waiting for the next loop_thread, at most, and how long. */
#define LOOP_THREAD_IDLE_MAX 4u
#define LOOP_THREAD_IDLE_S   2

struct workloop {
        pthread_t thread;
        char name[32];
        int epfd;
        loop_source wake;          /* eventfd: a job was posted, or a thread returned */
        /* The gate: 0 open, 1 held, 2 held with threads queued (or queueing)
         * for it. Taken and given back with one atomic operation each while
         * nobody waits; otherwise handed from holder to the first waiter,
         * so it is never open while someone waits. */
        atomic_int gate;
        pthread_mutex_t gate_lock; /* the queue */
        gate_waiter *gate_head, *gate_tail;
        pthread_mutex_t lock;
        /* A binary min-heap on (due_ns, seq): posting and running cost
         * O(log n) however many timers a busy service has pending. */
        struct job *jobs;
        size_t n_jobs, cap_jobs;
        uint64_t next_seq;
        bool finishing;
        workloop_fn last;
        void *last_arg;
        /* Its threads (workloop_thread_start): */
        unsigned n_jobs_running;   /* loop_threads started and not yet reaped */
        unsigned n_threads;        /* threads made and not yet joined, busy or idle */
        loop_thread *returned;     /* done: their owners' to free (reaped) */
        struct pooled *idle;       /* threads waiting for a loop_thread to run */
        unsigned n_idle;
        struct pooled *ended;      /* threads that have returned, to be joined */
};

/* The gate this thread holds, if any: a thread runs in one gate at a time. */
static __thread const workloop *held_gate;

/* Someone holds the gate: wait in line, unless it opens before we are in. */
static void gate_wait(workloop *wl)
{
        gate_waiter w = { .granted = false };
        pthread_mutex_lock(&wl->gate_lock);
        for (;;) {
                int g = atomic_load_explicit(&wl->gate, memory_order_relaxed);
                if (g == 0) {
                        if (atomic_compare_exchange_weak_explicit(&wl->gate, &g, 1, memory_order_acquire,
                                                                  memory_order_relaxed)) {
                                pthread_mutex_unlock(&wl->gate_lock);
                                return;
                        }
                } else if (g == 2 || atomic_compare_exchange_weak_explicit(&wl->gate, &g, 2, memory_order_relaxed,
                                                                           memory_order_relaxed)) {
                        break; /* the holder now gives it back through the queue */
                }
        }
        pthread_cond_init(&w.cond, NULL);
        if (wl->gate_tail)
                wl->gate_tail->next = &w;
        else
                wl->gate_head = &w;
        wl->gate_tail = &w;
        while (!w.granted)
                pthread_cond_wait(&w.cond, &wl->gate_lock);
        pthread_mutex_unlock(&wl->gate_lock);
        pthread_cond_destroy(&w.cond);
}

void workloop_gate_enter(workloop *wl)
{
        int open = 0;
        if (!atomic_compare_exchange_strong_explicit(&wl->gate, &open, 1, memory_order_acquire, memory_order_relaxed))
                gate_wait(wl);
        held_gate = wl;
}

void workloop_gate_leave(workloop *wl)
{
        held_gate = NULL;
        int held = 1;
        if (atomic_compare_exchange_strong_explicit(&wl->gate, &held, 0, memory_order_release, memory_order_relaxed))
                return;
        /* Someone waits: the first in line gets it, still held. */
        pthread_mutex_lock(&wl->gate_lock);
        gate_waiter *w = wl->gate_head;
        if (w) {
                wl->gate_head = w->next;
                if (!wl->gate_head) {
                        wl->gate_tail = NULL;
                        atomic_store_explicit(&wl->gate, 1, memory_order_relaxed);
                }
                w->granted = true;
                pthread_cond_signal(&w->cond);
        } else {
                atomic_store_explicit(&wl->gate, 0, memory_order_release); /* cannot happen: 2 means queued */
        }
        pthread_mutex_unlock(&wl->gate_lock);
}

bool workloop_in_gate(const workloop *wl)
{
        return wl && held_gate == wl;
}

uint64_t workloop_now_ns(void)
{
        return clock_mono_ns();
}

static bool job_before(const struct job *a, const struct job *b)
{
        return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->seq < b->seq);
}

/* With wl->lock held: every move of a job goes through here, so a
 * cancellable one always knows its index. */
static void heap_put(workloop *wl, size_t i, struct job j)
{
        wl->jobs[i] = j;
        if (j.timer)
                j.timer->index = i;
}

static void heap_up(workloop *wl, size_t i)
{
        struct job j = wl->jobs[i];
        while (i) {
                size_t parent = (i - 1) / 2;
                if (!job_before(&j, &wl->jobs[parent]))
                        break;
                heap_put(wl, i, wl->jobs[parent]);
                i = parent;
        }
        heap_put(wl, i, j);
}

static void heap_down(workloop *wl, size_t i)
{
        struct job j = wl->jobs[i];
        size_t n = wl->n_jobs;
        for (;;) {
                size_t l = 2 * i + 1, r = l + 1, m = l;
                if (l >= n)
                        break;
                if (r < n && job_before(&wl->jobs[r], &wl->jobs[l]))
                        m = r;
                if (!job_before(&wl->jobs[m], &j))
                        break;
                heap_put(wl, i, wl->jobs[m]);
                i = m;
        }
        heap_put(wl, i, j);
}

/* With wl->lock held: a burst of timers must not pin its peak memory forever. */
static void heap_shrink(workloop *wl)
{
        if (wl->cap_jobs > 64 && wl->n_jobs < wl->cap_jobs / 4) {
                struct job *h = realloc(wl->jobs, wl->cap_jobs / 2 * sizeof(*h));
                if (h) {
                        wl->jobs = h;
                        wl->cap_jobs /= 2;
                }
        }
}

/* With wl->lock held: take out the job at i, keeping the heap a heap. */
static struct job heap_remove(workloop *wl, size_t i)
{
        struct job out = wl->jobs[i];
        if (out.timer)
                out.timer->index = LOOP_TIMER_IDLE;
        struct job last = wl->jobs[--wl->n_jobs];
        if (i < wl->n_jobs) {
                heap_put(wl, i, last);
                /* The last leaf may belong above or below the hole. */
                if (i && job_before(&last, &wl->jobs[(i - 1) / 2]))
                        heap_up(wl, i);
                else
                        heap_down(wl, i);
        }
        heap_shrink(wl);
        return out;
}

/* With wl->lock held: room for one more, then it goes in at its place. */
static tether_ret_t heap_insert(workloop *wl, struct job j)
{
        if (wl->n_jobs == wl->cap_jobs) {
                size_t cap = wl->cap_jobs ? wl->cap_jobs * 2 : 16;
                struct job *h = realloc(wl->jobs, cap * sizeof(*h));
                if (!h)
                        return TETHER_ERR_NO_MEMORY;
                wl->jobs = h;
                wl->cap_jobs = cap;
        }
        j.seq = wl->next_seq++;
        wl->jobs[wl->n_jobs] = j;
        heap_up(wl, wl->n_jobs++);
        return TETHER_SUCCESS;
}

static void drain_wake(loop_source *src, uint32_t events)
{
        uint64_t v;
        while (read(src->fd, &v, sizeof(v)) > 0)
                ;
}

/* Next timeout for epoll_wait, in ms: -1 if no job, rounded up so a timer
 * never fires early. A finishing loop runs every job at once, and waits
 * for its threads, which wake it as they return. */
static int next_timeout(workloop *wl)
{
        int t = -1;
        pthread_mutex_lock(&wl->lock);
        if (wl->finishing) {
                t = wl->n_jobs || wl->returned || wl->ended ? 0 : -1;
        } else if (wl->n_jobs) {
                uint64_t now = workloop_now_ns();
                if (wl->jobs[0].due_ns <= now)
                        t = 0;
                else {
                        uint64_t ms = (wl->jobs[0].due_ns - now + 999999) / 1000000;
                        t = ms > 60000 ? 60000 : (int)ms;
                }
        }
        pthread_mutex_unlock(&wl->lock);
        return t;
}

/* Run the jobs that are due. Once finishing, every queued job runs at once,
 * timers included: jobs hold references that only running them releases,
 * and each checks whether its service is still alive before calling a
 * driver. Returns true when the loop should exit.
 * One pass runs what was due when it began, and nothing posted during it:
 * a job that posts itself again with no delay (a timer re-armed at 0 from
 * its own callback) runs once per pass, so the sockets are still served
 * between its runs. */
static bool run_due(workloop *wl)
{
        pthread_mutex_lock(&wl->lock);
        uint64_t now = workloop_now_ns(), seq_end = wl->next_seq;
        pthread_mutex_unlock(&wl->lock);
        for (;;) {
                pthread_mutex_lock(&wl->lock);
                bool run = wl->n_jobs && (wl->finishing || (wl->jobs[0].due_ns <= now && wl->jobs[0].seq < seq_end));
                if (!run) {
                        bool exit_now = wl->finishing && !wl->n_jobs && !wl->n_jobs_running && !wl->n_threads;
                        pthread_mutex_unlock(&wl->lock);
                        return exit_now;
                }
                struct job j = heap_remove(wl, 0);
                pthread_mutex_unlock(&wl->lock);
                /* One job per turn at the gate: a thread waiting for it
                 * waits for one job at most. */
                workloop_gate_enter(wl);
                j.fn(j.arg);
                workloop_gate_leave(wl);
        }
}

/* Let the owners of loop_threads that are done free what they used, and
 * join the threads that have ended. */
static void reap_threads(workloop *wl)
{
        pthread_mutex_lock(&wl->lock);
        loop_thread *done = wl->returned;
        pooled *ended = wl->ended;
        wl->returned = NULL;
        wl->ended = NULL;
        pthread_mutex_unlock(&wl->lock);
        while (done) {
                loop_thread *t = done;
                done = t->next;
                if (t->reaped) {
                        workloop_gate_enter(wl);
                        t->reaped(t->arg);
                        workloop_gate_leave(wl);
                }
                pthread_mutex_lock(&wl->lock);
                wl->n_jobs_running--;
                pthread_mutex_unlock(&wl->lock);
        }
        while (ended) {
                pooled *p = ended;
                ended = p->next;
                pthread_join(p->thread, NULL);
                pthread_cond_destroy(&p->wake);
                free(p);
                pthread_mutex_lock(&wl->lock);
                wl->n_threads--;
                pthread_mutex_unlock(&wl->lock);
        }
}

static void *loop_main(void *arg)
{
        workloop *wl = arg;
        struct epoll_event evs[16];
        for (;;) {
                int n = epoll_wait(wl->epfd, evs, 16, next_timeout(wl));
                if (n < 0 && errno != EINTR) {
                        log_err("tether bug: work loop %s: epoll_wait: %s", wl->name, strerror(errno));
                        break;
                }
                for (int i = 0; i < n; i++) {
                        loop_source *src = evs[i].data.ptr;
                        if (src == &wl->wake) {
                                drain_wake(src, evs[i].events);
                        } else if (!src->removed) {
                                workloop_gate_enter(wl);
                                src->fn(src, evs[i].events);
                                workloop_gate_leave(wl);
                        }
                }
                reap_threads(wl);
                if (run_due(wl))
                        break;
        }
        if (wl->last)
                wl->last(wl->last_arg);
        return NULL;
}

tether_ret_t workloop_new(const char *name, workloop **ret)
{
        workloop *wl = calloc(1, sizeof(*wl));
        if (!wl)
                return TETHER_ERR_NO_MEMORY;
        snprintf(wl->name, sizeof(wl->name), "%s", name);
        pthread_mutex_init(&wl->lock, NULL);
        pthread_mutex_init(&wl->gate_lock, NULL);
        atomic_init(&wl->gate, 0);
        wl->epfd = epoll_create1(EPOLL_CLOEXEC);
        wl->wake.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        wl->wake.fn = drain_wake;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &wl->wake };
        if (wl->epfd < 0 || wl->wake.fd < 0 || epoll_ctl(wl->epfd, EPOLL_CTL_ADD, wl->wake.fd, &ev) < 0)
                goto fail;
        if (pthread_create(&wl->thread, NULL, loop_main, wl) != 0)
                goto fail;
        /* Thread names show up in top, gdb and perf: worth the line. */
        char tname[16];
        snprintf(tname, sizeof(tname), "wl:%s", name);
        pthread_setname_np(wl->thread, tname);
        *ret = wl;
        return TETHER_SUCCESS;
fail:
        if (wl->epfd >= 0)
                close(wl->epfd);
        if (wl->wake.fd >= 0)
                close(wl->wake.fd);
        pthread_mutex_destroy(&wl->lock);
        pthread_mutex_destroy(&wl->gate_lock);
        free(wl);
        return TETHER_ERR_NO_RESOURCES;
}

static void wake(workloop *wl)
{
        uint64_t one = 1;
        ssize_t n = write(wl->wake.fd, &one, sizeof(one));
        (void)n; /* EAGAIN means a wake-up is already pending */
}

tether_ret_t workloop_post(workloop *wl, uint32_t delay_ms, workloop_fn fn, void *arg)
{
        if (!wl || !fn)
                return TETHER_ERR_BAD_ARGUMENT;
        struct job j = { .fn = fn, .arg = arg, .due_ns = workloop_now_ns() + (uint64_t)delay_ms * 1000000ull };
        pthread_mutex_lock(&wl->lock);
        tether_ret_t r = wl->finishing ? TETHER_ERR_OFFLINE : heap_insert(wl, j);
        bool first = r == TETHER_SUCCESS && wl->jobs[0].seq == wl->next_seq - 1;
        pthread_mutex_unlock(&wl->lock);
        if (first)
                wake(wl);
        return r;
}

void loop_timer_init(loop_timer *t, workloop_fn fn, void *arg)
{
        *t = (loop_timer){ .fn = fn, .arg = arg, .index = LOOP_TIMER_IDLE };
}

tether_ret_t workloop_timer_arm(workloop *wl, loop_timer *t, uint64_t due_ns)
{
        if (!wl || !t || !t->fn)
                return TETHER_ERR_BAD_ARGUMENT;
        struct job j = { .fn = t->fn, .arg = t->arg, .due_ns = due_ns, .timer = t };
        pthread_mutex_lock(&wl->lock);
        tether_ret_t r = TETHER_ERR_OFFLINE;
        if (!wl->finishing) {
                if (t->index != LOOP_TIMER_IDLE)
                        heap_remove(wl, t->index);
                r = heap_insert(wl, j);
        }
        bool first = r == TETHER_SUCCESS && t->index == 0;
        pthread_mutex_unlock(&wl->lock);
        if (first)
                wake(wl);
        return r;
}

bool workloop_timer_cancel(workloop *wl, loop_timer *t)
{
        if (!wl || !t)
                return false;
        pthread_mutex_lock(&wl->lock);
        bool queued = t->index != LOOP_TIMER_IDLE;
        if (queued)
                heap_remove(wl, t->index);
        pthread_mutex_unlock(&wl->lock);
        return queued;
}

tether_ret_t workloop_add_source(workloop *wl, loop_source *src)
{
        src->removed = false;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = src };
        return epoll_ctl(wl->epfd, EPOLL_CTL_ADD, src->fd, &ev) < 0 ? TETHER_ERR_NO_RESOURCES
                                                                   : TETHER_SUCCESS;
}

void workloop_remove_source(workloop *wl, loop_source *src)
{
        if (src->removed)
                return;
        src->removed = true;
        epoll_ctl(wl->epfd, EPOLL_CTL_DEL, src->fd, NULL);
}

bool workloop_on_thread(workloop *wl)
{
        return pthread_equal(pthread_self(), wl->thread);
}

/* The loop_thread this thread runs now, if it is a loop's. */
static __thread const loop_thread *current_job;

bool workloop_thread_is_current(const loop_thread *t)
{
        return t && current_job == t;
}

static void *pooled_main(void *arg)
{
        pooled *p = arg;
        workloop *wl = p->wl;
        pthread_mutex_lock(&wl->lock);
        if (p->job && p->job->name[0])
                pthread_setname_np(pthread_self(), p->job->name);
        for (;;) {
                if (!p->job && !wl->finishing) {
                        struct timespec until;
                        clock_gettime(CLOCK_REALTIME, &until);
                        until.tv_sec += LOOP_THREAD_IDLE_S;
                        while (!p->job && !wl->finishing)
                                if (pthread_cond_timedwait(&p->wake, &wl->lock, &until) != 0)
                                        break;
                }
                loop_thread *t = p->job;
                if (!t) {
                        /* Idle too long, or the loop is finishing: out of
                         * the idle list, and done. */
                        for (pooled **pp = &wl->idle; *pp; pp = &(*pp)->next)
                                if (*pp == p) {
                                        *pp = p->next;
                                        wl->n_idle--;
                                        break;
                                }
                        break;
                }
                pthread_mutex_unlock(&wl->lock);
                current_job = t;
                t->fn(t->arg);
                current_job = NULL;
                pthread_mutex_lock(&wl->lock);
                /* From here t is the loop's to reap, never touched again. */
                t->next = wl->returned;
                wl->returned = t;
                p->job = NULL;
                wake(wl);
                if (wl->finishing || wl->n_idle >= LOOP_THREAD_IDLE_MAX)
                        break;
                p->next = wl->idle;
                wl->idle = p;
                wl->n_idle++;
        }
        /* The loop joins us and cannot end before: wl outlives this. */
        p->next = wl->ended;
        wl->ended = p;
        pthread_mutex_unlock(&wl->lock);
        wake(wl);
        return NULL;
}

tether_ret_t workloop_thread_start(workloop *wl, loop_thread *t, const char *name, size_t stack_size,
                                   workloop_fn fn, workloop_fn reaped, void *arg)
{
        if (!wl || !t || !fn)
                return TETHER_ERR_BAD_ARGUMENT;
        *t = (loop_thread){ .fn = fn, .reaped = reaped, .arg = arg };
        /* Named by the thread itself: ps, gdb and perf show it. */
        snprintf(t->name, sizeof(t->name), "%s", name ? name : "");
        pthread_mutex_lock(&wl->lock);
        if (wl->finishing) {
                pthread_mutex_unlock(&wl->lock);
                return TETHER_ERR_OFFLINE;
        }
        wl->n_jobs_running++;
        /* One waiting for work, with a stack of this size: it takes this. */
        for (pooled **pp = &wl->idle; *pp; pp = &(*pp)->next) {
                pooled *p = *pp;
                if (p->stack != stack_size)
                        continue;
                *pp = p->next;
                wl->n_idle--;
                p->job = t;
                pthread_cond_signal(&p->wake);
                pthread_mutex_unlock(&wl->lock);
                return TETHER_SUCCESS;
        }
        wl->n_threads++;
        pthread_mutex_unlock(&wl->lock);
        pooled *p = calloc(1, sizeof(*p));
        int e = p ? 0 : ENOMEM;
        pthread_attr_t attr;
        if (e == 0)
                e = pthread_attr_init(&attr);
        if (e == 0) {
                p->wl = wl;
                p->job = t;
                p->stack = stack_size;
                pthread_cond_init(&p->wake, NULL);
                e = pthread_attr_setstacksize(&attr, stack_size);
                if (e == 0)
                        e = pthread_create(&p->thread, &attr, pooled_main, p);
                pthread_attr_destroy(&attr);
                if (e != 0)
                        pthread_cond_destroy(&p->wake);
        }
        if (e != 0) {
                free(p);
                pthread_mutex_lock(&wl->lock);
                wl->n_threads--;
                wl->n_jobs_running--;
                pthread_mutex_unlock(&wl->lock);
                return TETHER_ERR_NO_RESOURCES;
        }
        return TETHER_SUCCESS;
}

void workloop_finish(workloop *wl, workloop_fn last, void *arg)
{
        pthread_mutex_lock(&wl->lock);
        if (!wl->finishing) {
                wl->finishing = true;
                wl->last = last;
                wl->last_arg = arg;
                for (pooled *p = wl->idle; p; p = p->next)
                        pthread_cond_signal(&p->wake);
        }
        pthread_mutex_unlock(&wl->lock);
        wake(wl);
}

void workloop_join(workloop *wl)
{
        pthread_join(wl->thread, NULL);
}

void workloop_free(workloop *wl)
{
        if (!wl)
                return;
        free(wl->jobs);
        close(wl->epfd);
        close(wl->wake.fd);
        pthread_mutex_destroy(&wl->lock);
        pthread_mutex_destroy(&wl->gate_lock);
        free(wl);
}
