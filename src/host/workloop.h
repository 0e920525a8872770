/* SPDX-License-Identifier: MIT */
#ifndef TETHER_HOST_WORKLOOP_H
#define TETHER_HOST_WORKLOOP_H

/*
 * Work loops (I/O Kit's IOWorkLoop): one thread per service, on which every
 * driver callback of that service and its user clients runs, one at a
 * time. A loop polls sources (the connections' sockets) and runs posted
 * jobs and timers (a binary heap: O(log n) however many are pending).
 * Part of the driver runtime: the same in a driver host and in tetherd.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <tether/return.h>

typedef struct workloop workloop;
typedef void (*workloop_fn)(void *arg);
typedef struct loop_source loop_source;
/* events: EPOLL* bits */
typedef void (*loop_source_fn)(loop_source *src, uint32_t events);
struct loop_source {
        int fd;
        loop_source_fn fn;
        bool removed;  /* set by remove; its owner frees it in a later job, so
                        * events already fetched in the same batch are skipped */
        /* server_retire(): what to free, and the retired list's link. */
        void *retire_obj;
        loop_source *retire_next;
};

/*
 * A job its owner can take back before it runs (the driver API's timers).
 * It lives in the owner's memory and knows its place in the heap, so
 * cancelling or moving it costs O(log n) and leaves nothing behind: a
 * driver re-arming a long timer over and over never grows the heap.
 */
typedef struct loop_timer {
        workloop_fn fn;
        void *arg;
        size_t index;              /* the loop's lock: its place in the heap, or LOOP_TIMER_IDLE */
} loop_timer;
#define LOOP_TIMER_IDLE ((size_t)-1)

tether_ret_t workloop_new(const char *name, workloop **ret);
/* Run fn(arg) on the loop after delay_ms. Thread-safe. Fails once stopping. */
tether_ret_t workloop_post(workloop *wl, uint32_t delay_ms, workloop_fn fn, void *arg);
/* CLOCK_MONOTONIC in ns: the clock timers are due on. */
uint64_t workloop_now_ns(void);
void loop_timer_init(loop_timer *t, workloop_fn fn, void *arg);
/* Run t->fn(t->arg) once, at due_ns (workloop_now_ns's clock), instead of
 * whenever it was due before. Thread-safe. Fails once stopping. */
tether_ret_t workloop_timer_arm(workloop *wl, loop_timer *t, uint64_t due_ns);
/* Take t out of the heap; true if it was there (it will not run). A timer
 * already taken out to run is not: cancel it from the loop's thread to
 * know it is not running either. Thread-safe. */
bool workloop_timer_cancel(workloop *wl, loop_timer *t);
/* Loop thread only. */
tether_ret_t workloop_add_source(workloop *wl, loop_source *src);
void workloop_remove_source(workloop *wl, loop_source *src);
bool workloop_on_thread(workloop *wl);
/* Ask the loop to finish: it runs the jobs already queued, then `last(arg)`
 * on its own thread, then exits. Jobs posted later are refused. */
void workloop_finish(workloop *wl, workloop_fn last, void *arg);
/* Wait for the thread to exit (not from the loop's own thread). */
void workloop_join(workloop *wl);
/* Free a joined loop. */
void workloop_free(workloop *wl);

#endif
