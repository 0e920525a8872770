/* SPDX-License-Identifier: MIT */
#ifndef TETHER_HOST_RUNTIME_H
#define TETHER_HOST_RUNTIME_H

/*
 * The driver runtime: what a driver's code runs inside. A service as its
 * driver sees it, its work loop, its user clients and their calls. The
 * same code runs in a driver host, a process of the driver's own, and in
 * tetherd under --in-process; what differs is the env (env.h) that
 * answers its questions about the registry and the clients.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <tether/driver.h>

#include "host/env.h"
#include "host/workloop.h"

/* ---- limits a user client enforces ---- */
/* Open async references (accepted, last result not yet sent, not
 * cancelled and told, connection open): NO_RESOURCES past either. */
#define TETHERD_MAX_ASYNC_PER_CONNECTION 64
#define TETHERD_MAX_ASYNC_PER_SESSION    256
#define TETHERD_BATCH                    32   /* tetherd: messages served per wake-up per socket */

/* Each connection is a thread in the driver's process (its user client's,
 * blocked on the socket, docs/concepts/work-loops.md), so connections are
 * bounded per service: NO_RESOURCES at open past either bound. Users other
 * than administrators (root, the admin group) share all but the reserve,
 * and one uid may hold at most a quarter, so neither one user nor a few
 * can shut the others out. */
#define TETHER_MAX_CONNECTIONS_PER_SERVICE 1024
#define TETHER_CONNECTIONS_RESERVED        64   /* of those, for administrators */
#define TETHER_MAX_CONNECTIONS_PER_UID     256  /* of one service, for one uid (not an administrator) */
/* A user client's thread's stack: its receive and reply buffers (132 KiB)
 * and what its driver's methods use (docs/concepts/work-loops.md). */
#define TETHER_CALL_STACK_SIZE             (512u * 1024u)

typedef struct tether_user_client user_client;

/*
 * A service. The runtime's code uses only the fields above the line;
 * tetherd keeps its registry record of the service below it (they are
 * NULL in a process that has no registry).
 */
struct tether_service {
        atomic_uint refs;
        uint64_t id;                   /* its registry entry's */
        const char *class_name;        /* its registry class: the driver's */
        const tether_driver *driver;
        void *priv;
        workloop *loop;
        /* in the gate only (its loop's thread, or a user client's in a call): */
        bool started;
        bool terminated;
        bool exclusive;                /* an exclusive connection is open */
        user_client *clients;          /* list of open user clients */
        tether_value *staged;          /* set_properties in progress */
        struct tether_timer *timers;   /* every timer its driver made and has not freed */
        unsigned n_timers;
        bool timers_closed;            /* aborted: none can be made or armed again */
        /* Its driver's log lines (tether_service_log), rate-limited as one
         * party, and the name they go by: bundle, class, registry id. */
        log_limit log;
        char log_who[320];
        char *refusal;                 /* set_properties in progress: tether_service_refuse's
                                        * reason goes here (WIRE_MAX_REASON + 1 bytes) */
        bool refusal_cut_logged;       /* an over-long reason is logged once per service */
        unsigned n_clients;            /* user clients open, and of them not an administrator's: */
        unsigned n_unprivileged;
        struct uid_clients *client_uids;  /* per uid, for those */
        /* ---- tetherd's ---- */
        struct entry *entry;           /* referenced */
        struct bundle *bundle;         /* referenced: the bundle whose personality started it */
        struct host *host;             /* its driver host, when its code runs in one */
        bool left_registry;            /* reg_lock: a hosted service, detached and TERMINATED told */
        struct entry *leave_nub;       /* reg_lock, referenced: its nub when told to terminate */
        struct device_claim *device;   /* USB interfaces opened for its driver, to give back */
        tether_service *next_all;      /* reg_lock: every live service, for shutdown */
};

/* Once its id and driver are set, before its loop runs anything: the
 * runtime's own state (its log's name and limiter). bundle_id may be NULL. */
void service_runtime_init(tether_service *s, const char *bundle_id);
/* This thread serves s (its loop's, or one of its user clients'): probe
 * events and log lines made here name s. */
void service_bind_thread(tether_service *s);
tether_service *service_ref(tether_service *s);
tether_service *service_unref(tether_service *s);
/* In the gate: a terminated service whose last user client went away. */
void service_finish_if_idle(tether_service *s);
/* Loop thread, in the gate: the driver's start(), unless the service was terminated
 * first (TETHER_ERR_ABORTED). */
tether_ret_t service_run_start(tether_service *s);
/* In the gate: stop its user clients and its driver; false if it was
 * stopped already (the caller then has nothing to tell the registry). */
bool service_run_stop(tether_service *s);
/* In the gate: a client's property write through the driver's hook; what
 * the hook sets lands in the table at once, all of it or nothing. caller is
 * the writer. On a refusal, reason (WIRE_MAX_REASON + 1 bytes) holds the
 * driver's reason, or "" if it gave none. */
tether_ret_t service_set_properties(tether_service *s, const tether_task *caller, const tether_value *dict,
                                    char *reason);

/* ---- timers (timer.c) ---- */

/* In the gate: the service is stopping (or its start failed): every armed
 * timer is disarmed and its callback runs once with TETHER_ERR_ABORTED;
 * from then on none can be made or armed. Before any stop(): a second
 * call finds nothing to do. */
void service_timers_abort(tether_service *s);
/* The last reference went: free the timers its driver never freed,
 * without calling anything. */
void service_timers_release(tether_service *s);

/* ---- the driver's log (driver-log.c) ---- */

/* A runtime line about what this service's driver did wrong, named and
 * rate-limited with the driver's own lines. */
void service_log_bug(tether_service *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- user clients (user-client.c) ---- */

/* Loop-thread job: create a user client for an open request, with the
 * thread that serves its connection. */
typedef struct open_request {
        env_caller *caller;            /* referenced */
        tether_service *service;       /* referenced */
        uint32_t serial, type, options;
        int fds[2];                    /* [0] ours, [1] the client's */
} open_request;
void user_client_open(void *open_request);
/* In the gate: the service is terminating; stop its user clients (their
 * calls fail NOT_ATTACHED from now on). */
void user_client_stop_all(tether_service *s);
/* In the gate: daemon exit; cut every connection without telling the
 * driver more than stop(). Their threads end, and the loop joins them
 * before it finishes. */
void user_client_free_all(tether_service *s);
/* Any thread: send m, a NOTIFY_ASYNC built for ref, to the client's port
 * if ref is open, and close ref if last; tether_async_send()'s results
 * (driver.h). On TETHER_ERR_NOT_ATTACHED, *ret_connection_closed says
 * whether the connection (true) or its client's port (false) went. */
struct wire_msg;
tether_ret_t user_client_async_send(const tether_async_ref *ref, const struct wire_msg *m, bool last,
                                    bool *ret_connection_closed);

#endif
