/* SPDX-License-Identifier: MIT */
#ifndef TETHER_DAEMON_H
#define TETHER_DAEMON_H

/*
 * tetherd's private model.
 *
 * Threads and what they own:
 *   main thread   the listening socket, every session socket, ports. It
 *                 answers registry and property reads itself and never runs
 *                 driver code.
 *   work loops    one thread per service. Every driver callback of that
 *                 service and its user clients runs there, so a slow driver
 *                 delays only itself. Each user client's connection socket
 *                 is polled by its service's loop, so a call goes socket ->
 *                 loop -> driver -> socket with no hand-off between threads.
 * Locks: `reg_lock` guards the registry tree, property tables, states,
 * open counts, ports and notifications. It is never held while driver code
 * runs or while blocking on I/O (sends are non-blocking).
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <tether/driver.h>
#include <tether/tether.h>

#include "core/log.h"
#include "daemon/budget.h"
#include "host/probes.h"
#include "host/runtime.h"
#include "host/workloop.h"
#include "wire/message.h"

/* A session is what the driver runtime calls a caller (host/env.h). */
typedef struct env_caller session;

/* A property write as probes see it once answered; filled only while
 * probes are attached, so a write costs nothing more otherwise. */
typedef struct prop_trace {
        bool on;
        uint64_t service_id, start_ns, start_mono_ns;
        char keys[PROBE_KEYS_SIZE];
} prop_trace;

/* ---- limits (named, with clear errors; per-uid ones in budget.h) ---- */
#define TETHERD_MAX_SOCKETS              4096 /* sessions in all: beyond, refused at connect */
#define TETHERD_HELLO_TIMEOUT_MS         5000 /* default: a socket silent this long is closed */
#define TETHERD_MAX_CONNECTIONS_PER_SESSION 256 /* TETHER_ERR_NO_RESOURCES at open */
#define TETHERD_MAX_PORTS_PER_SESSION    16
#define TETHERD_MAX_NOTIFICATIONS_PER_SESSION 256
#define TETHERD_MAX_NUBS_PER_SERVICE     64   /* nubs a driver publishes: each may cost a thread */
#define TETHERD_MAX_SERVICES_PER_DRIVER  256  /* services of one driver, however they came */
#define TETHERD_MAX_DRIVERS_PER_NUB      16   /* services on one nub at once, one per match category */
#define REGISTRY_MAX_DEPTH               32   /* nubs below nubs below ... */

/* ---- registry (registry.c) ---- */

typedef struct entry entry;
struct entry {
        atomic_uint refs;
        uint64_t id;
        char *class_name;
        char *name;
        char *location;
        entry *parent;            /* referenced; NULL for the root and once detached */
        entry **children;         /* referenced */
        size_t n_children, cap_children;
        tether_value *props;      /* a dict, replaced whole on change */
        uint32_t state;           /* TETHER_ENTRY_* */
        uint32_t open_count;
        uint32_t busy;            /* services starting at or below it, as I/O Kit's busy state */
        struct tether_service *service;   /* set on a service's own entry */
        uint64_t publisher_id;    /* the service entry that published this nub (0: tetherd) */
        /* Set by tetherd on a simulated instrument's nub it published
         * (--simulate): which simulator stands behind it. Never from a
         * property, which a driver's nub could carry too. */
        const struct simulator *simulator;
};

extern pthread_mutex_t reg_lock;

tether_ret_t registry_init(void);
void registry_shutdown(void);
entry *registry_root(void);                /* borrowed; lives until shutdown */
/* New detached entry with one reference. props may be NULL. */
tether_ret_t entry_new(const char *class_name, const char *name, const char *location,
                       tether_value *props, entry **ret);
entry *entry_ref(entry *e);
entry *entry_unref(entry *e);
/* With reg_lock held. attach takes its own reference for the tree. */
tether_ret_t registry_attach_locked(entry *child, entry *parent);
void registry_detach_locked(entry *e);
/* A service at e starts (+1) or has finished starting (-1): e and every
 * ancestor count it, so a busy subtree shows from the root down. */
void registry_adjust_busy_locked(entry *e, int delta);
entry *registry_lookup_locked(uint64_t id); /* borrowed */
tether_ret_t registry_path_locked(const entry *e, char **ret);
entry *registry_lookup_path_locked(const char *path);
/* Visit every entry, depth first; fn returns false to stop. */
void registry_walk_locked(entry *from, bool (*fn)(entry *e, void *ctx), void *ctx);
bool registry_match_locked(const tether_value *matching, const entry *e);
/* A referenced snapshot of e's property table (never NULL on success). */
tether_ret_t registry_copy_props(entry *e, tether_value **ret);
/* IOKitWaitQuiet: whether no service is still starting. */
void registry_busy_inc(void);
void registry_busy_dec(void);
bool registry_quiet(void);

/* ---- bundles (bundle.c; docs/bundles.md) ---- */

/* Bundle folders tetherd loads besides its system folder (colon-separated). */
#define TETHER_DRIVERS_ENV "TETHER_DRIVERS"

typedef struct bundle bundle;
bundle *bundle_ref(bundle *b);
bundle *bundle_unref(bundle *b);
const char *bundle_id(const bundle *b);
/* Main thread. Load one bundle folder; on failure *why says why. */
tether_ret_t bundle_load(const char *path, char *why, size_t why_size);
/* Main thread. Every "*.tether" folder in dir, in name order; a bad one is
 * logged and skipped (a missing dir too, when it must exist). */
void bundles_load_dir(const char *dir, bool must_exist);
/* Its personalities stop matching and its services are terminated. */
/* *ret_b: the bundle, referenced, for the caller to wait on its services'
 * leaving (service_bundle_in_registry). */
tether_ret_t bundle_unload(const char *id, bundle **ret_b);
struct manifest;
const struct manifest *bundle_manifest(const bundle *b);
/* A host of b died (how: "killed by SIGSEGV", "exited with status 3"...):
 * the ms to wait before matching its nub again, or -1 when b has crashed
 * too often and is now failed (its personalities match no more). */
int bundle_crashed(bundle *b, const char *how);
/* Loaded and not failed. */
bool bundle_active(const bundle *b);
bool bundle_active_locked(const bundle *b);
/* The personality of b that started a service (class_name is that
 * service's, a candidate's driver_class), or NULL; and its category. */
struct manifest_personality;
const struct manifest_personality *bundle_service_personality(const bundle *b, const char *class_name);
const char *bundle_service_category(const bundle *b, const char *class_name);
/* Where lines about matching on the nubs b's drivers publish are
 * rate-limited, and the name its "suppressed" line gives. */
struct log_limit *bundle_log(bundle *b);
const char *bundle_log_who(const bundle *b);
/* Main thread, each turn: what each bundle's limit held back, once due. */
void bundles_tick(void);
/* With reg_lock held: a service of b started (+1) or went (-1). */
void bundle_service_started_locked(bundle *b, int delta);
/* A driver that may take a nub, best first. */
typedef struct candidate {
        const tether_driver *driver;   /* --in-process: its code, loaded here; NULL: run it in a driver host */
        const char *driver_class;      /* the personality's "driver" (the bundle keeps it) */
        const char *category;          /* its IOMatchCategory, or the default (the bundle keeps it) */
        bundle *bundle;                /* referenced */
        int64_t score;
        uint64_t order;
        size_t index;                  /* of the personality in its manifest */
} candidate;
/* With reg_lock held: every active personality that matches nub, sorted by
 * score, then load order. Free with candidates_free. */
tether_ret_t bundles_candidates_locked(entry *nub, candidate **ret, size_t *ret_count);
void candidates_free(candidate *c, size_t n);
/* With reg_lock held: changes whenever a bundle is loaded (I/O Kit's
 * catalogue generation), so a match can tell its candidates are stale. */
uint64_t bundles_generation_locked(void);
/* A CBOR array with a dict per bundle, for `tether driver list`. */
tether_ret_t bundles_describe(tether_value **ret);
void bundles_shutdown(void);

/* ---- services (service.c) ---- */

/* Match drivers against a nub and start the winners (asynchronously, on
 * their loops or in their hosts): in each match category the nub has free,
 * the best candidate whose start() accepts it. Any thread. */
void service_match_nub(entry *nub);
/* The same for one category of nub only (a crashed host's). Main thread. */
void service_match_category(entry *nub, const char *category);
/* Post the termination of every service at or below e (reg_lock held). */
void service_terminate_subtree_locked(entry *e);
/* Daemon exit: terminate everything and join every loop. */
void service_shutdown_all(void);
/* Main thread: join the loops of services that have finished. */
void service_reap(void);
/* With reg_lock held: post the termination of every service of b. */
void service_terminate_bundle_locked(bundle *b);
/* Main thread: let drivers match every nub in the categories it has free
 * (a bundle was loaded). */
void service_match_unclaimed(void);
/* Main thread: a hosted service's start() answered (match: from host_start). */
void service_host_started(tether_service *s, tether_ret_t r, void *match);
/* With reg_lock held: a hosted service's host is gone; it leaves the
 * registry (TERMINATED to watchers) if it has not already. */
void service_host_gone_locked(tether_service *s);
/* With reg_lock held: its host answered TERMINATE (its user clients are
 * stopped): it leaves the registry, TERMINATED to watchers. */
void service_host_terminated_locked(tether_service *s);
/* Whether a service of b is still in the registry (terminating). */
bool service_bundle_in_registry(const bundle *b);

/* ---- processes started for drivers (spawn.c) ---- */

typedef struct spawn_user {
        bool drop; /* tetherd is root: become uid/gid, with no groups */
        uid_t uid;
        gid_t gid;
} spawn_user;

/* bin (opened here, run from its fd) with channel at fd 3, /dev/null on 0
 * and 1, stderr shared, no other fd, killed with tetherd, no new
 * privileges. The child exits 126 when it cannot be set up (or cannot drop
 * to who), 127 when the exec fails. -1 and errno: bin cannot be opened, or
 * no fork. */
pid_t spawn_unprivileged(const char *bin, int channel, char *const argv[], char *const envp[], const spawn_user *who);

/* ---- devices opened for drivers (device.c; docs/bundles.md) ---- */

#define TETHERD_MAX_SIMS_PER_SERVICE  2  /* simulator processes alive per service ... */
#define TETHERD_MAX_SIMS              64 /* ... and in all */

/* The device behind s's nub as an fd for its driver (the caller owns it):
 * TETHER_ERR_UNSUPPORTED for a nub that is no device tetherd published. */
tether_ret_t device_open(tether_service *s, tether_device_kind *ret_kind, int *ret_fd);
/* The driver is gone: what it held through tetherd goes back (USB
 * interfaces to their kernel drivers). */
void device_release(tether_service *s);
/* Main loop: wait for simulators that exited. */
void devices_tick(void);
void devices_shutdown(void);

/* ---- driver hosts (host.c; docs/bundles.md) ---- */

#define TETHERD_HOST_ENV        "TETHER_DRIVERHOST"   /* the host binary, overriding the installed one */
#define TETHERD_HEARTBEAT_MS    1000  /* a host is pinged this often ... */
#define TETHERD_WATCHDOG_MS     10000 /* ... and killed if its loop has not answered for this long */
#define TETHERD_CRASHES_TO_FAIL 5     /* crashes of a bundle within ... */
#define TETHERD_CRASH_WINDOW_MS 60000 /* ... this: the bundle is marked failed */

typedef struct host host;
void host_free(host *h);

/* tetherd --in-process: load each bundle's library here and run its drivers
 * on work loops in tetherd, not in hosts (debugging; device fds that only
 * this process can use). Set before any bundle is loaded. */
extern bool hosts_in_process;
extern unsigned hosts_watchdog_ms;
/* Main thread: start a host for s (created, attached, busy) and its
 * driver; service_host_started answers, from the main loop. */
void host_start(tether_service *s, const candidate *c, void *match);
/* Main thread: tell s's host to stop its service; it exits once the
 * service's clients are gone. */
void host_terminate(tether_service *s);
/* Main thread: s did not start; end its host now. */
void host_stop(tether_service *s);
/* An OPEN and a property write for a hosted service: the host answers,
 * and host.c answers the session. */
void host_open(tether_service *s, session *caller, uint32_t serial, uint32_t type, uint32_t options, int fds[2]);
/* The write goes to s's host with caller's task; the host's verdict (and
 * the driver's reason, if it gave one) goes back to caller. */
void host_set_properties(tether_service *s, session *caller, uint16_t type, uint32_t serial, tether_value *dict,
                         const prop_trace *t);
/* Main thread: tell every host the probes now attached, then answer the
 * attach (with the probe's fd, which this closes) once all have heard. */
void hosts_probes_sync(session *caller, uint16_t type, uint32_t serial, int probe_fd);
/* A session ended: hosts forget its ports. */
void hosts_session_gone(const session *s);
/* Main thread, each turn: heartbeats, watchdogs, restarts due. Returns the
 * ms until it next has something to do. */
int hosts_tick(void);
void hosts_shutdown(void);

/* ---- sessions (session.c) ---- */

struct env_caller {
        atomic_uint refs;
        int fd;                        /* closed when the last reference goes */
        uint64_t id;
        tether_task task;              /* privileges: main thread, once privileges_known */
        bool privileges_known;         /* main thread */
        bool hello_done;               /* main thread */
        uint64_t accepted_ns;          /* CLOCK_MONOTONIC: the HELLO deadline runs from here */
        uid_budget *budget;            /* its uid's; lives until tetherd exits */
        atomic_uint n_connections;
        atomic_uint n_async;           /* accepted async calls of its connections, not completed */
        unsigned n_ports;              /* main thread */
        unsigned n_notifications;      /* reg_lock */
        loop_source src;               /* main loop registration */
};

/* Administrators (TETHER_PRIVILEGE_ADMINISTRATOR) are uid 0 and the members
 * of this group (tetherd --admin-group; a group that does not exist makes
 * none). */
#define TETHERD_ADMIN_GROUP "tether-admin"
extern const char *tetherd_admin_group;

session *session_ref(session *s);
session *session_unref(session *s);
/* A warning about what this client did, rate-limited per uid. */
#define session_warn(s, ...) log_limited(budget_log((s)->budget), LOG_LVL_WARN, budget_who((s)->budget), __VA_ARGS__)
/* Reply on a session socket from any thread. */
void session_reply(session *s, uint16_t type, uint32_t serial, tether_ret_t result,
                   const wire_msg *body_or_null, int fd);
/* The same for a refused property write, with its reason as the body
 * (docs/wire.md) when there is one: a reason is dropped on success, and
 * when it is not one the wire admits (wire/reason.h). */
void session_reply_reason(session *s, uint16_t type, uint32_t serial, tether_ret_t result, const char *reason);

void prop_trace_begin(prop_trace *t, uint64_t service_id, const tether_value *dict);
/* Answers a SET_PROPERTIES on s (any thread) and tells the probes. */
void session_reply_set_properties(session *s, const prop_trace *t, uint16_t type, uint32_t serial, tether_ret_t r,
                                  const char *reason);

/* ---- ports and notifications (notify.c) ---- */

tether_ret_t port_create(session *s, uint64_t *ret_id, int *ret_client_fd);
/* A duplicate of tetherd's end of a port, if it is that session's (a
 * driver host delivers async completions to it). */
tether_ret_t port_dup_for(uint64_t port_id, uint64_t session_id, int *ret_fd);
/* The port must belong to session s (async references are checked). */
bool port_owned_by(uint64_t port_id, const session *s);
void ports_release_session(session *s);
tether_ret_t notification_add(session *s, uint64_t port_id, uint32_t type, uint64_t cookie,
                              tether_value *matching, uint64_t *ret_id);
tether_ret_t notification_remove(session *s, uint64_t id);
/* With reg_lock held: tell every interested port about e. */
void notify_service_locked(entry *e, uint32_t type);
/* With reg_lock held, after e's property table was swapped for a new one. */
void notify_properties_changed_locked(entry *e);
void notify_shutdown(void);

/* ---- probes (probe.c) ---- */

typedef struct probe_filter {
        uint32_t kinds;        /* PROBE_* */
        uint32_t snaplen;      /* USB data bytes to keep per transfer */
        uint64_t service_id;   /* 0: every service */
        int32_t pid;           /* 0: every client */
        uint32_t selector;     /* PROBE_ANY_SELECTOR: every call */
} probe_filter;

tether_ret_t probe_attach(session *s, const probe_filter *f, int *ret_client_fd);
void probes_release_session(const session *s);
void probe_shutdown(void);
/* Main thread: an event a driver host built about its service. */
struct host_msg;
void probe_forwarded(uint64_t service_id, const struct host_msg *m);
/* What hosts must know to build events: how many probes, any for USB. */
void probe_state(unsigned *count, bool *usb);
/* Whether probes came or went since the last call (hosts are then told). */
bool probe_take_changed(void);

/* ---- nubs tetherd publishes itself (main.c) ---- */

/* Make a nub of class/name@loc with props (a dict, or NULL), attach it
 * under parent and let drivers match it. props stays the caller's. */
tether_ret_t nub_publish_new(entry *parent, const char *class_name, const char *name, const char *loc,
                             tether_value *props);
/* What every USB device nub carries: the ids and the USBTMC interface a
 * driver matches on, and the serial when known. A new dict in *ret. */
tether_ret_t usb_identity(uint16_t vendor, uint16_t product, uint8_t protocol, uint8_t interface,
                          const char *serial, tether_value **ret);

/* As nub_publish_new, for a simulated instrument: the nub records sim
 * (entry.simulator), what device_open starts for its driver. */
tether_ret_t nub_publish_simulated(entry *parent, const char *name, const char *loc, tether_value *props,
                                   const struct simulator *sim);

/* ---- simulated instruments (simulate.c) ---- */

/* One instrument tetherd can simulate: what --simulate NAME publishes and
 * what it starts for the driver that opens it. tetherd's own table; the
 * only one device_open trusts. */
typedef struct simulator {
        const char *name;           /* --simulate NAME; the nub's TetherSimulatedModel */
        const char *program;        /* the simulator program; the nub's TetherSimulator */
        const char *env;            /* the environment variable that names its binary */
        const char *installed;      /* its binary where meson installs it */
        uint16_t vendor, product;   /* the USB ids its descriptors give */
        uint8_t protocol;           /* bInterfaceProtocol (1: USB488) */
        uint8_t interface;          /* bInterfaceNumber */
        const char *product_name;   /* "USB Product Name", and the nub's name */
        const char *default_serial; /* when --simulate gives none (what its *IDN? says by default) */
} simulator;

/* A folder holding every simulator program, under its program name
 * (a build tree's sim/); a program's own variable wins over it. */
#define TETHERD_SIM_DIR_ENV "TETHER_SIM_DIR"
#define TETHERD_SIM_SERIAL_MAX 31 /* --simulate NAME:SERIAL */

/* The table entry of NAME (case-insensitive), or NULL. */
const simulator *simulator_find(const char *name);
/* "dsox2002a, ..., 34461a": the names, for messages; with a line of at
 * most width characters, each line starting with indent (a static buffer,
 * main thread). */
const char *simulator_names(const char *indent, size_t width);
/* The binary to start for sim: $<env>, else $TETHER_SIM_DIR/<program>,
 * else the installed one. buf holds the composed path when needed. */
const char *simulator_binary(const simulator *sim, char *buf, size_t size);
/* Main thread: --simulate NAME[:SERIAL], a nub under usb at location
 * "sim<index>". TETHER_ERR_BAD_ARGUMENT (and a log line saying why) for an
 * unknown name or an unfit serial. */
tether_ret_t simulate_publish(entry *usb, const char *spec, unsigned index);

/* ---- the USB bus (usb.c) ---- */

/* Publish every USBTMC instrument on the bus under `bus`, then follow
 * arrivals and departures (where libusb supports hotplug). Main thread,
 * before serving. */
void usb_bus_start(entry *bus);
/* Stop following the bus (joins its thread). Safe if never started. */
void usb_bus_stop(void);

#endif
