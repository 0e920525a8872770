/* SPDX-License-Identifier: MIT */
#ifndef TETHER_HARNESS_HARNESS_H
#define TETHER_HARNESS_HARNESS_H

/*
 * The driver test harness (include/tether/driver-test.h): the third
 * process that runs driver code, beside tetherd --in-process and the
 * driver host. Its env (host/env.h) is a registry of its own in memory
 * (harness.c, env.c), and its sessions are served by a small server on a
 * work loop of its own (server.c) so the test's client side is libtether.
 */

#include <pthread.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <tether/driver-test.h>

#include "daemon/manifest.h"
#include "host/runtime.h"

/* A registry entry as matching, GET_PROPERTY and OPEN see it: a nub or a
 * service. Strings are owned; props is replaced whole on every change
 * (readers take a reference under the harness's lock). */
typedef struct hentry {
        uint64_t id;
        char *class_name;
        char *name;
        struct hentry *parent;        /* NULL: a top-level nub */
        tether_value *props;          /* lock */
} hentry;

struct tether_test_bundle {
        tether_test *t;
        char *path;
        const tether_bundle_entry *entry;
        manifest *m;                  /* NULL: a bare library */
        tether_test_bundle *next;
};

struct tether_test_nub {
        hentry e;                     /* first: a nub is its entry */
        tether_test *t;
        char *location;
        tether_test_service *publisher;
        bool terminated;              /* lock */
        tether_test_device_fn device; /* lock */
        void *device_ctx;
        tether_test_nub *next;        /* t->nubs */
};

struct tether_test_service {
        hentry e;                     /* first: a service is its entry */
        tether_test *t;
        tether_test_bundle *bundle;
        tether_test_nub *nub;         /* its provider */
        /* The runtime's service: referenced until its loop has ended and
         * been joined (reap), NULL after. */
        tether_service *rt;
        /* lock: */
        bool start_done;
        tether_ret_t start_result;
        bool stop_posted;             /* a stop is on its way, or it never started */
        bool stopped;                 /* the driver's stop() has run (or never will) */
        bool idle_at_stop;            /* no connection was open: its loop ends now */
        bool loop_ended;              /* env_service_loop_exit has run */
        tether_test_nub **published;
        size_t n_published, cap_published;
        unsigned live_published;
        tether_test_service *next;    /* t->services */
};

/* The runtime's service, as the harness allocates it: the runtime frees
 * it with free(s) at its last reference, which is this whole block since
 * the service comes first. */
typedef struct rt_service {
        tether_service s;
        tether_test_service *h;
} rt_service;
_Static_assert(offsetof(rt_service, s) == 0, "the runtime frees the service's own pointer");

static inline tether_test_service *handle_of(tether_service *s)
{
        return ((rt_service *)s)->h;
}

typedef struct hport hport;

/* What HELLO names as the registry's root: no entry has it, since the
 * harness has no tree above the nubs a test makes. */
#define HARNESS_ROOT_ID 0x100u

struct tether_test {
        pthread_mutex_t lock;         /* everything marked lock, here and in handles */
        pthread_cond_t changed;       /* broadcast with gen++ on any change */
        uint64_t gen;
        uint64_t next_id;
        tether_test_bundle *bundles;
        tether_test_nub *nubs;
        tether_test_service *services;
        /* ---- the session server (server.c) ---- */
        char dir[128];                /* private temporary folder, and */
        char path[160];               /* the socket in it */
        int listen_fd;
        workloop *server;
        loop_source listener;
        env_caller *sessions;         /* lock */
        hport *ports;                  /* lock */
        uint64_t next_session, next_port;
        /* Who the next accepted session is (tether_test_session_open). */
        pthread_mutex_t open_lock;    /* one harness open at a time */
        bool pending;                 /* lock */
        tether_task pending_task;     /* its uid, gid and privileges */
};

/* The one harness of the process; env.c's functions reach it here. */
extern tether_test *harness;

/* Lock held: something a waiter may be waiting for has changed. */
void harness_changed_locked(tether_test *t);
/* Lock held: the entry with this id still in the registry (a running
 * service, a nub not terminated); NULL if none. */
hentry *harness_lookup_locked(tether_test *t, uint64_t id, tether_test_service **ret_service);
/* Lock held: whether a service is running (started, not stopping). */
bool harness_service_live_locked(const tether_test_service *h);
/* Lock held, any thread: post the service's stop (and its published nubs'
 * termination, below it) without waiting for it. */
void harness_post_stop_locked(tether_test_service *h);
/* Lock held: the nub and everything started below it end (posted, not
 * waited for). */
void harness_terminate_nub_locked(tether_test_nub *nub);

/* Lock held, a loop thread: a nub the service's driver publishes
 * (tether_service_publish_nub), recorded, matched against nothing. */
tether_ret_t harness_publish_locked(tether_test_service *h, const char *class_name, const char *name,
                                    const char *location, const tether_value *props, uint64_t *ret_id);

/* Who the test process is, as tetherd would see it without an admin
 * group: an administrator if root. */
tether_task harness_process_task(void);

/* The matching view over hentry (lock held while it is used). */
extern const struct matching_entry_view harness_entry_view;

/* ---- server.c ---- */
tether_ret_t server_start(tether_test *t);
/* Hang up every session, end the loop, remove the socket. */
void server_stop(tether_test *t);

#endif
