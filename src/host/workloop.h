/* SPDX-License-Identifier: MIT */
#ifndef TETHER_HOST_WORKLOOP_H
#define TETHER_HOST_WORKLOOP_H

/*
 * Work loops (I/O Kit's IOWorkLoop) and their gates (IOCommandGate). A
 * loop is a thread that runs posted jobs and timers (a binary heap: O(log n)
 * however many are pending) and polls sources. Its gate serializes
 * everything done for it: the loop holds the gate while it runs a job or a
 * source, and threads of the loop's own (workloop_thread_start: a user
 * client's, blocked on its connection) take it to run a call, as I/O Kit
 * runs an external method on the caller's thread behind the command gate.
 * So a service's driver code runs one piece at a time, whichever thread it
 * is on. The gate is fair: whoever waits is served first come, first
 * served, the loop's own jobs included, so no connection can starve the
 * others or the loop. Part of the driver runtime: the same in a driver host
 * and in tetherd.
 */

#include <pthread.h>
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

/*
 * Work on a thread of the loop's, with a stack of its own: fn(arg), then,
 * once fn has returned and its thread is done with it, reaped(arg) on the
 * loop's thread, in the gate (where the owner frees what fn used). The
 * loop does not finish while one runs. Threads are the loop's: one whose
 * work is done waits a while for the next (LOOP_THREAD_IDLE_*, workloop.c),
 * and a finishing loop joins every one. A loop_thread lives in the owner's
 * memory, as loop_timer does.
 */
typedef struct loop_thread {
        workloop_fn fn, reaped;
        void *arg;
        char name[16];
        struct loop_thread *next;  /* the loop's lock: done, to be reaped */
} loop_thread;

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
/* Loop thread only. A source's fn runs in the gate. */
tether_ret_t workloop_add_source(workloop *wl, loop_source *src);
void workloop_remove_source(workloop *wl, loop_source *src);
/* This thread is the loop's own. */
bool workloop_on_thread(workloop *wl);
/* Start t (above); name is for ps and gdb. TETHER_ERR_OFFLINE once the loop
 * is finishing, TETHER_ERR_NO_RESOURCES if no thread can be made. */
tether_ret_t workloop_thread_start(workloop *wl, loop_thread *t, const char *name, size_t stack_size,
                                   workloop_fn fn, workloop_fn reaped, void *arg);
/* This thread is running t's fn. */
bool workloop_thread_is_current(const loop_thread *t);
/* Take the gate, waiting in turn; release it. Not recursive: a thread
 * holding it must not take it again. */
void workloop_gate_enter(workloop *wl);
void workloop_gate_leave(workloop *wl);
/* This thread holds the gate: what runs here is serialized with the rest
 * of the loop's work (IOWorkLoop::inGate). */
bool workloop_in_gate(const workloop *wl);
/* Ask the loop to finish: it runs the jobs already queued, waits for its
 * threads to return, then runs `last(arg)` on its own thread and exits.
 * Jobs posted later are refused, and so are threads. */
void workloop_finish(workloop *wl, workloop_fn last, void *arg);
/* Wait for the thread to exit (not from the loop's own thread). */
void workloop_join(workloop *wl);
/* Free a joined loop. */
void workloop_free(workloop *wl);

#endif
