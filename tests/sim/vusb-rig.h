/* SPDX-License-Identifier: MIT */
#ifndef TETHER_TEST_VUSB_RIG_H
#define TETHER_TEST_VUSB_RIG_H

/*
 * A simulated instrument's device side served over virtual USB for a test:
 * on a thread of the test (sim_vusb_serve on one end of a socket pair), or
 * as its program with --usb-fd 3 (tether-sim-scope, tether-sim-dmm); and
 * a query through tether's USBTMC host code. Failures fail the test.
 */

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

#include "usbtmc/backend-vusb.h"
#include "usbtmc/usbtmc.h"
#include "usbtmc-dev.h"

typedef struct vusb_rig {
        sim_usbtmc *dev;      /* the caller's */
        void *owner;          /* the caller's too: what dev is the device side of */
        const char *serial;
        int server_fd;
        int client_fd;        /* the raw client end, -1 once attached */
        pthread_t thread;
        int served;           /* sim_vusb_serve's result */
        usbtmc_vusb *v;
        usbtmc t;
} vusb_rig;

/* dev served on a thread; the client end stays raw (r->client_fd). */
void vusb_rig_serve(vusb_rig *r, sim_usbtmc *dev, const char *serial);
/* The client end handed to the vusb backend, r->t attached to it. */
void vusb_rig_attach(vusb_rig *r);
/* Hang up: the server's loop must end with 0. dev stays the caller's. */
void vusb_rig_stop(vusb_rig *r);

/* The program $env names, run as `program --usb-fd 3 args...` with fd 3
 * one end of a SEQPACKET socket pair; the other end in *ret_fd. */
pid_t sim_spawn(const char *env, const char *const *args, int *ret_fd);
/* The child's exit status (128 + the signal for one killed), waiting at
 * most ms; -1 if it is still running. */
int sim_wait_exit(pid_t pid, unsigned ms);

/* CLOCK_MONOTONIC in milliseconds, with their fractions: tests compare
 * durations with thresholds near what they measure. */
double ms_now(void);

/* The last query's answer, NUL-terminated. */
extern char answer[4096];
/* Write cmd, then read its answer into answer[]. */
tether_ret_t query(usbtmc *t, const char *cmd);

#endif
