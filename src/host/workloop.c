/* SPDX-License-Identifier: MIT */
#include "host/workloop.h"

#include <pthread.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

struct job {
        workloop_fn fn;
        void *arg;
        uint64_t due_ns;
        uint64_t seq;              /* posting order: FIFO among equal due times */
        loop_timer *timer;         /* a cancellable job: told where it moves */
};

struct workloop {
        pthread_t thread;
        char name[32];
        int epfd;
        loop_source wake;          /* eventfd: a job was posted */
        pthread_mutex_t lock;
        /* A binary min-heap on (due_ns, seq): posting and running cost
         * O(log n) however many timers a busy service has pending. */
        struct job *jobs;
        size_t n_jobs, cap_jobs;
        uint64_t next_seq;
        bool finishing;
        workloop_fn last;
        void *last_arg;
};

uint64_t workloop_now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
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
 * never fires early. */
static int next_timeout(workloop *wl)
{
        int t = -1;
        pthread_mutex_lock(&wl->lock);
        if (wl->finishing) {
                t = 0;
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
                        bool exit_now = wl->finishing && !wl->n_jobs;
                        pthread_mutex_unlock(&wl->lock);
                        return exit_now;
                }
                struct job j = heap_remove(wl, 0);
                pthread_mutex_unlock(&wl->lock);
                j.fn(j.arg);
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
                        if (!src->removed)
                                src->fn(src, evs[i].events);
                }
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

void workloop_finish(workloop *wl, workloop_fn last, void *arg)
{
        pthread_mutex_lock(&wl->lock);
        if (!wl->finishing) {
                wl->finishing = true;
                wl->last = last;
                wl->last_arg = arg;
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
        free(wl);
}
