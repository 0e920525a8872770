/* SPDX-License-Identifier: MIT */
/*
 * Driver hosts, from tetherd's side (docs/bundles.md): one process per
 * service, started when a personality whose driver runs out of process
 * wins a nub, talked to over a channel the main loop watches, pinged, and
 * replaced when it dies.
 *
 * A host is untrusted: everything it says is checked like a client's, it
 * may touch only its own service's entry and the nubs it published, and
 * anything malformed from it ends it. A crash costs only its service's
 * clients: their connections hang up (the sockets died with the host), the
 * service leaves the registry with TERMINATED, and its nub is matched again
 * after a backoff, unless its bundle keeps crashing and is marked failed.
 */
#include "daemon/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "daemon/manifest.h"
#include "daemon/server.h"
#include "wire/host-msg.h"

bool hosts_in_process;
unsigned hosts_watchdog_ms = TETHERD_WATCHDOG_MS;

/* A probe attach waiting for every host to have heard of it. */
typedef struct probe_sync {
        session *caller;               /* referenced */
        uint16_t type;
        uint32_t serial;
        int fd;                        /* the prober's end, handed over at the end */
        unsigned waiting;              /* hosts that have not answered */
} probe_sync;

/* A request to a host waiting for its answer, and whom to tell. */
typedef struct pending {
        uint32_t serial;
        uint16_t type;                 /* WIRE_HOST_* */
        session *caller;               /* referenced; NULL for START, TERMINATE, PING */
        uint16_t client_type;
        uint32_t client_serial;
        int client_fd;                 /* OPEN: the client's end, given on success */
        void *match;                   /* START: the candidates left */
        probe_sync *sync;              /* PROBES: the attach it is part of */
        prop_trace trace;              /* SET_PROPERTIES: for the probes */
        struct pending *next;
} pending;

/* Connections a session has open in a host: released if the host dies. */
typedef struct host_conn {
        session *caller;               /* referenced */
        unsigned n;
        struct host_conn *next;
} host_conn;

struct host {
        pid_t pid;                     /* 0 once waited for */
        loop_source src;               /* the channel, watched by the main loop */
        tether_service *svc;           /* not referenced: the service owns its host */
        bool dead;                     /* channel closed, process reaped */
        bool finalized;                /* the service's record has been let go */
        bool stopping;                 /* told to terminate: an exit is no crash */
        bool terminate_unsent;         /* TERMINATE to send on the main loop's next tick */
        uint64_t terminate_sent_ms;    /* TERMINATE sent and not answered: the watchdog runs */
        bool channel_charged;          /* its channel counts among tetherd's own fds */
        uint32_t next_serial;
        pending *pending;
        host_conn *conns;
        /* Sessions it has been handed a connection of, until they end: the
         * only ones it may ask ports of, and the only ones whose end it is
         * told of (a session that never opened it costs it nothing). */
        uint64_t *sessions;
        size_t n_sessions, cap_sessions;
        uint64_t start_ms;             /* when its driver was asked to start */
        uint64_t ping_sent_ms;         /* 0: no ping outstanding */
        uint64_t last_ping_ms;
        struct host *next;             /* every host alive */
};

/* A nub's category to match again once its backoff is over. */
typedef struct restart {
        entry *nub;                    /* referenced */
        char *category;                /* the crashed service's: the nub's others keep their drivers */
        uint64_t due_ms;
        struct restart *next;
} restart;

static host *hosts;                    /* main thread */
static restart *restarts;              /* main thread */

static void host_gone(host *h, const char *why);

static tether_ret_t send_to(host *h, wire_msg *m, int fd)
{
        if (h->dead)
                return TETHER_ERR_NOT_ATTACHED;
        tether_ret_t r = wire_msg_finish(m);
        if (r == TETHER_SUCCESS)
                r = wire_send(h->src.fd, m, fd);
        /* A host whose channel is full is not reading: it is stuck. One
         * that has hung up may have answered first (a START its driver
         * refused, and then it exits): host_readable reads those answers,
         * then the hang-up, and ends it there. Ended here, a refused start
         * would count as a crash. */
        if (r != TETHER_SUCCESS && r != TETHER_ERR_MESSAGE_TOO_LARGE && r != TETHER_ERR_NOT_ATTACHED)
                host_gone(h, r == TETHER_ERR_NOT_RESPONDING ? "stopped reading its channel" : NULL);
        return r;
}

/* A request with an answer to wait for; p (if any) is filled in and kept. */
static tether_ret_t request(host *h, wire_msg *m, pending *p, int fd)
{
        wire_header hd;
        memcpy(&hd, m->buf, sizeof(hd));
        hd.serial = ++h->next_serial ? h->next_serial : ++h->next_serial;
        memcpy(m->buf, &hd, sizeof(hd));
        if (p) {
                p->serial = hd.serial;
                p->type = hd.type;
                p->next = h->pending;
                h->pending = p;
        }
        return send_to(h, m, fd);
}

static pending *take_pending(host *h, uint32_t serial, uint16_t type)
{
        for (pending **pp = &h->pending; *pp; pp = &(*pp)->next) {
                pending *p = *pp;
                if (p->serial == serial && p->type == type) {
                        *pp = p->next;
                        return p;
                }
        }
        return NULL;
}

/* ---- connections a host holds for sessions ---- */

static bool knows_session(const host *h, uint64_t id, size_t *ret_at)
{
        for (size_t i = 0; i < h->n_sessions; i++) {
                if (h->sessions[i] == id) {
                        if (ret_at)
                                *ret_at = i;
                        return true;
                }
        }
        return false;
}

static tether_ret_t tell_session(host *h, uint64_t id)
{
        if (knows_session(h, id, NULL))
                return TETHER_SUCCESS;
        if (h->n_sessions == h->cap_sessions) {
                size_t cap = h->cap_sessions ? h->cap_sessions * 2 : 8;
                uint64_t *a = realloc(h->sessions, cap * sizeof(*a));
                if (!a)
                        return TETHER_ERR_NO_MEMORY;
                h->sessions = a;
                h->cap_sessions = cap;
        }
        h->sessions[h->n_sessions++] = id;
        return TETHER_SUCCESS;
}

static void conn_add(host *h, session *caller)
{
        host_conn *c = h->conns;
        while (c && c->caller != caller)
                c = c->next;
        if (!c && (c = calloc(1, sizeof(*c)))) {
                c->caller = session_ref(caller);
                c->next = h->conns;
                h->conns = c;
        }
        if (c)
                c->n++;
        env_service_open_count(h->svc, 1);
}

/* One of the session's connections in h closed (or went with h). */
static bool conn_closed(host *h, uint64_t session_id)
{
        for (host_conn **pp = &h->conns; *pp; pp = &(*pp)->next) {
                host_conn *c = *pp;
                if (c->caller->id != session_id)
                        continue;
                env_caller_connection_closed(c->caller);
                env_service_open_count(h->svc, -1);
                if (!--c->n) {
                        *pp = c->next;
                        session_unref(c->caller);
                        free(c);
                }
                return true;
        }
        return false;
}

/* ---- answers to what tetherd asked ---- */

static void answer_open(host *h, pending *p, tether_ret_t r, const host_msg *m)
{
        uint64_t id = m && m->has_u64 ? m->u64[0] : 0;
        if (r == TETHER_SUCCESS && !id)
                r = TETHER_ERR_IPC;
        if (r == TETHER_SUCCESS)
                conn_add(h, p->caller);
        env_caller_open_reply(p->caller, p->client_serial, r, id, p->client_fd);
        close(p->client_fd);
        env_caller_client_fd_passed(p->caller);
}

static void finish_pending(host *h, pending *p, tether_ret_t r, const host_msg *m)
{
        switch (p->type) {
        case WIRE_HOST_START:
                /* A TERMINATE sent while it started waits behind the start
                 * (its work loop runs them in order): its time runs from now. */
                if (h->terminate_sent_ms)
                        h->terminate_sent_ms = clock_mono_ms();
                service_host_started(h->svc, r, p->match);
                break;
        case WIRE_HOST_OPEN:
                answer_open(h, p, r, m);
                break;
        case WIRE_HOST_SET_PROPERTIES:
                /* The driver's reason, checked by host_msg_decode, passed on. */
                session_reply_set_properties(p->caller, &p->trace, p->client_type, p->client_serial, r,
                                             m ? m->reason : NULL);
                break;
        case WIRE_HOST_TERMINATE:
                h->terminate_sent_ms = 0;
                pthread_mutex_lock(&reg_lock);
                service_host_terminated_locked(h->svc);
                pthread_mutex_unlock(&reg_lock);
                break;
        case WIRE_HOST_PING:
                h->ping_sent_ms = 0;
                break;
        case WIRE_HOST_PROBES:
                if (p->sync && !--p->sync->waiting) {
                        session_reply(p->sync->caller, p->sync->type, p->sync->serial, TETHER_SUCCESS, NULL, p->sync->fd);
                        close(p->sync->fd);
                        session_unref(p->sync->caller);
                        free(p->sync);
                }
                break;
        default:
                break;
        }
        session_unref(p->caller);
        free(p);
}

/* ---- what a host asks ---- */

static void reply_to_host(host *h, const wire_header *hd, tether_ret_t r, const uint64_t *u64, int fd)
{
        wire_msg m;
        wire_msg_init(&m, hd->type | WIRE_REPLY_FLAG, hd->serial, r);
        if (u64)
                wire_put_u64(&m, *u64);
        send_to(h, &m, fd);
}

/* A request from a host, decoded and checked. False: it makes no sense
 * (a connection it never had), and the host is to be ended. */
static bool host_asks(host *h, const host_msg *m)
{
        tether_service *s = h->svc;
        tether_ret_t r;
        switch (m->h.type) {
        case WIRE_HOST_CLOSED:
                return conn_closed(h, m->u64[0]);
        case WIRE_HOST_APPLY:
                env_service_apply(s, m->dict);
                return true;
        case WIRE_HOST_REMOVE:
                env_service_remove(s, m->key);
                return true;
        case WIRE_HOST_PUBLISH_NUB: {
                uint64_t id = 0;
                r = env_service_publish_nub(s, m->class_name, m->name, m->location, m->props, &id);
                reply_to_host(h, &m->h, r, r == TETHER_SUCCESS ? &id : NULL, -1);
                return true;
        }
        case WIRE_HOST_TERMINATE_NUB:
                reply_to_host(h, &m->h, env_service_terminate_nub(s, m->u64[0]), NULL, -1);
                return true;
        case WIRE_HOST_PROBE:
                probe_forwarded(s->id, m);
                return true;
        case WIRE_HOST_DEVICE: {
                tether_device_kind kind = 0;
                int fd = -1;
                r = device_open(s, &kind, &fd);
                uint64_t k = kind;
                reply_to_host(h, &m->h, r, r == TETHER_SUCCESS ? &k : NULL, fd);
                if (fd >= 0)
                        close(fd); /* the host has its own copy now: tetherd keeps none */
                return true;
        }
        case WIRE_HOST_PORT: {
                int fd = -1;
                r = knows_session(h, m->u64[0], NULL) ? port_dup_for(m->u64[1], m->u64[0], &fd)
                                                      : TETHER_ERR_BAD_ARGUMENT;
                reply_to_host(h, &m->h, r, NULL, fd);
                if (fd >= 0)
                        close(fd);
                return true;
        }
        default:
                return false;
        }
}

static void host_readable(loop_source *src, uint32_t events)
{
        host *h = (host *)((char *)src - offsetof(host, src));
        static uint8_t rx[WIRE_MAX_MESSAGE];
        for (int i = 0; i < TETHERD_BATCH && !h->dead; i++) {
                size_t len = 0;
                bool fds = false;
                tether_ret_t r = wire_recv_nofds(h->src.fd, rx, sizeof(rx), &len, &fds);
                if (r == TETHER_ERR_NOT_READY)
                        return;
                if (r != TETHER_SUCCESS) {
                        host_gone(h, r == TETHER_ERR_MESSAGE_TOO_LARGE ? "sent an oversized message" : NULL);
                        return;
                }
                if (fds) { /* no host message carries one */
                        host_gone(h, "passed an fd");
                        return;
                }
                host_msg m;
                bool ok = host_msg_decode(rx, len, &m) == TETHER_SUCCESS;
                if (ok && (m.h.type & WIRE_REPLY_FLAG)) {
                        pending *p = take_pending(h, m.h.serial, m.h.type & ~WIRE_REPLY_FLAG);
                        if (p)
                                finish_pending(h, p, m.h.result, &m);
                        ok = p != NULL;
                } else if (ok) {
                        ok = host_asks(h, &m);
                }
                host_msg_clear(&m);
                if (!ok) {
                        host_gone(h, "sent a malformed message");
                        return;
                }
        }
}

/* ---- life and death ---- */

static const char *host_binary(void)
{
        const char *p = getenv(TETHERD_HOST_ENV);
        return p && *p ? p : TETHER_DRIVERHOST;
}

/* Who the host runs as: the manifest's user, else tether-driver, else
 * nobody; never root. Looked up before fork (not async-signal-safe). */
static bool host_user(const manifest *m, uid_t *uid, gid_t *gid)
{
        const char *names[] = { m->user, MANIFEST_DEFAULT_USER, MANIFEST_FALLBACK_USER };
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                struct passwd *pw = names[i] ? getpwnam(names[i]) : NULL;
                if (pw && pw->pw_uid != 0) {
                        *uid = pw->pw_uid;
                        *gid = pw->pw_gid;
                        return true;
                }
                if (i == 0 && m->user)
                        return false; /* named, and gone since the manifest was read */
        }
        return false;
}

static pid_t spawn(const manifest *m, int channel)
{
        uid_t uid = 0;
        gid_t gid = 0;
        bool drop = geteuid() == 0;
        if (drop && !host_user(m, &uid, &gid)) {
                log_bundle(LOG_LVL_ERR, m->bundle_id, "bundle %s: no user to run its host as", m->bundle_id);
                return -1;
        }
        /* A clean environment: what the host needs, and the settings that
         * make a sanitizer build and logging behave as tetherd's do: the
         * level in force (--verbose too, so drivers' debug lines show), and
         * JOURNAL_STREAM, since the host's stderr is tetherd's. */
        static const char *const keep[] = { "JOURNAL_STREAM", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS" };
        char *envp[sizeof(keep) / sizeof(keep[0]) + 2] = { 0 };
        size_t n = 0;
        if (asprintf(&envp[n], "TETHER_LOG=%s", log_level_env()) > 0)
                n++;
        else
                envp[n] = NULL;
        for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
                const char *v = getenv(keep[i]);
                char *kv = NULL;
                if (v && asprintf(&kv, "%s=%s", keep[i], v) > 0)
                        envp[n++] = kv;
        }
        const char *bin = host_binary();
        char *const argv[] = { (char *)"tether-driverhost", (char *)m->bundle_id, NULL };
        spawn_user who = { .drop = drop, .uid = uid, .gid = gid };
        pid_t pid = spawn_unprivileged(bin, channel, argv, envp, &who);
        for (size_t i = 0; i < n; i++)
                free(envp[i]);
        if (pid < 0)
                log_bundle(LOG_LVL_ERR, m->bundle_id, "bundle %s: cannot start a host (%s): %s", m->bundle_id, bin,
                           strerror(errno));
        return pid;
}

/* With the main loop's channel watch gone and the process waited for. */
static void reap(host *h, char *how, size_t how_size)
{
        int status = 0;
        if (h->pid > 0) {
                if (waitpid(h->pid, &status, WNOHANG) == 0) {
                        /* Alive with its channel closed, or stuck: either way, done. */
                        kill(h->pid, SIGKILL);
                        waitpid(h->pid, &status, 0);
                }
                h->pid = 0;
        }
        if (WIFSIGNALED(status))
                snprintf(how, how_size, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
        else if (WIFEXITED(status) && WEXITSTATUS(status) >= 126)
                snprintf(how, how_size, "could not be run (%s: %s)", host_binary(),
                         WEXITSTATUS(status) == 127 ? "cannot execute it" : "cannot drop to its user");
        else
                snprintf(how, how_size, "exited with status %d", WEXITSTATUS(status));
}

/* Let the service record go (once): its place in the registry is gone. */
static void finalize(host *h)
{
        if (h->finalized)
                return;
        h->finalized = true;
        for (host **pp = &hosts; *pp; pp = &(*pp)->next)
                if (*pp == h) {
                        *pp = h->next;
                        break;
                }
        env_service_loop_exit(h->svc);
}

static void schedule_restart(entry *nub, const char *category, int delay_ms)
{
        restart *r = calloc(1, sizeof(*r));
        if (r && !(r->category = strdup(category))) {
                free(r);
                r = NULL;
        }
        if (!r)
                return;
        r->nub = entry_ref(nub);
        r->due_ms = clock_mono_ms() + (uint64_t)delay_ms;
        r->next = restarts;
        restarts = r;
}

static void host_gone(host *h, const char *why)
{
        if (h->dead)
                return;
        h->dead = true;
        if (h->src.fd >= 0) {
                server_unwatch(&h->src);
                close(h->src.fd);
                h->src.fd = -1;
        }
        if (why && h->pid > 0)
                kill(h->pid, SIGKILL);
        char how[96];
        reap(h, how, sizeof(how));
        tether_service *s = h->svc;
        /* Dying while its driver starts is a crash too: the nub is tried
         * again after the backoff, not left without a driver. */
        bool starting = false;
        for (pending *p = h->pending; p; p = p->next)
                starting |= p->type == WIRE_HOST_START;
        bool crashed = !h->stopping && (s->started || starting);
        if (why || crashed)
                log_bundle(LOG_LVL_ERR, bundle_id(s->bundle), "bundle %s: host of %s %s%s%s", bundle_id(s->bundle),
                           s->class_name, why ? why : how, why ? "; killed" : "",
                           crashed ? "; its service is terminated" : "");
        while (h->conns)
                conn_closed(h, h->conns->caller->id);
        pthread_mutex_lock(&reg_lock);
        entry *nub = s->entry->parent ? entry_ref(s->entry->parent) : NULL;
        pthread_mutex_unlock(&reg_lock);
        /* Whatever it was asked and did not answer: answered now (a START
         * so answered detaches the service and tries the next driver). */
        while (h->pending) {
                pending *p = h->pending;
                h->pending = p->next;
                finish_pending(h, p, TETHER_ERR_NOT_ATTACHED, NULL);
        }
        pthread_mutex_lock(&reg_lock);
        service_host_gone_locked(s);
        pthread_mutex_unlock(&reg_lock);
        if (crashed && nub) {
                /* A bundle failed now matches no more: its category goes
                 * to the next driver of it at once. */
                int delay = bundle_crashed(s->bundle, why ? why : how);
                schedule_restart(nub, bundle_service_category(s->bundle, s->class_name), delay >= 0 ? delay : 0);
        }
        entry_unref(nub);
        finalize(h);
}

/* What probes are attached, as a request when an attach waits on it. */
static void tell_probes(host *h, probe_sync *sync)
{
        unsigned count = 0;
        bool usb = false;
        probe_state(&count, &usb);
        wire_msg m;
        wire_msg_init(&m, WIRE_HOST_PROBES, 0, 0);
        wire_put_u32(&m, count);
        wire_put_u32(&m, usb);
        pending *p = calloc(1, sizeof(*p));
        if (p) {
                p->client_fd = -1;
                p->sync = sync;
                if (sync)
                        sync->waiting++;
        }
        request(h, &m, p, -1);
}

void hosts_probes_sync(session *caller, uint16_t type, uint32_t serial, int probe_fd)
{
        probe_sync *sync = calloc(1, sizeof(*sync));
        if (sync) {
                *sync = (probe_sync){ .caller = session_ref(caller), .type = type, .serial = serial, .fd = probe_fd,
                                      .waiting = 1 /* this function's own, dropped below */ };
                for (host *h = hosts; h;) {
                        host *after = h->next; /* a failed send ends h */
                        if (!h->dead)
                                tell_probes(h, sync);
                        h = after;
                }
                probe_take_changed(); /* every host has just been told */
        }
        if (!sync || !--sync->waiting) {
                session_reply(caller, type, serial, TETHER_SUCCESS, NULL, probe_fd);
                close(probe_fd);
                if (sync) {
                        session_unref(sync->caller);
                        free(sync);
                }
        }
}

void host_start(tether_service *s, const candidate *c, void *match)
{
        const manifest *m = bundle_manifest(c->bundle);
        host *h = calloc(1, sizeof(*h));
        pending *p = calloc(1, sizeof(*p));
        int sv[2] = { -1, -1 };
        tether_value *what = NULL, *provider = NULL, *table = NULL;
        tether_ret_t r = h && p ? TETHER_SUCCESS : TETHER_ERR_NO_MEMORY;
        if (h) {
                /* The service owns its host record from here: host_free
                 * comes with the service's last reference. */
                h->svc = s;
                h->src = (loop_source){ .fd = -1, .fn = host_readable };
                s->host = h;
        }
        if (r == TETHER_SUCCESS && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                r = TETHER_ERR_NO_RESOURCES;
        /* tetherd's end never blocks the main loop: a host that stops
         * reading fills it, and is ended for it. */
        if (r == TETHER_SUCCESS)
                fcntl(sv[0], F_SETFL, O_NONBLOCK);
        /* Room for a burst both ways. On a loaded machine either side may
         * not read for a moment (a host's main thread waiting for the CPU,
         * or blocked telling tetherd something while tetherd's main loop is
         * busy), while the other keeps sending: opens, closes, sessions'
         * ends. With the default (~200 small messages) such a moment ended
         * a healthy host under the fuzz client. A host that really stops
         * reading still fills it, and one whose loop stops answers no
         * heartbeat. Root may go past wmem_max; anyone else gets what the
         * kernel allows. */
        if (r == TETHER_SUCCESS) {
                int sz = 1 << 20;
                for (int i = 0; i < 2; i++)
                        if (setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
                                setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
        }
        if (r == TETHER_SUCCESS) {
                h->src.fd = sv[0];
                h->channel_charged = true;
                budget_own_fds(1);
                h->pid = spawn(m, sv[1]);
                if (h->pid < 0) {
                        h->pid = 0;
                        r = TETHER_ERR_NO_RESOURCES;
                }
        }
        if (sv[1] >= 0)
                close(sv[1]);
        if (r == TETHER_SUCCESS && server_watch_input(&h->src) != TETHER_SUCCESS)
                r = TETHER_ERR_NO_RESOURCES;
        /* Which process serves it, for `tether reg -l` (DriverKit shows the
         * same as IOUserServerName and the dext's pid). */
        if (r == TETHER_SUCCESS) {
                tether_value *pid = NULL;
                if (tether_value_new_dict(&pid) == TETHER_SUCCESS &&
                    tether_value_dict_set_uint(pid, "TetherHostPID", (uint64_t)h->pid, 32) == TETHER_SUCCESS)
                        env_service_apply(s, pid);
                tether_value_unref(pid);
        }
        if (r == TETHER_SUCCESS) {
                h->next = hosts;
                hosts = h;
                h->last_ping_ms = h->start_ms = clock_mono_ms();
                pthread_mutex_lock(&reg_lock);
                entry *nub = s->entry->parent ? entry_ref(s->entry->parent) : NULL;
                pthread_mutex_unlock(&reg_lock);
                r = nub ? registry_copy_props(nub, &provider) : TETHER_ERR_NOT_ATTACHED;
                if (r == TETHER_SUCCESS)
                        r = registry_copy_props(s->entry, &table);
                entry_unref(nub);
        }
        if (r == TETHER_SUCCESS)
                r = tether_value_new_dict(&what);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(what, "library", m->library);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(what, "driver", c->driver_class);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set(what, "provider", provider);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set(what, "table", table);
        tether_value_unref(provider);
        tether_value_unref(table);
        if (r == TETHER_SUCCESS) {
                wire_msg msg;
                wire_msg_init(&msg, WIRE_HOST_START, 0, 0);
                wire_put_u64(&msg, s->id);
                wire_put_value(&msg, what);
                p->match = match;
                /* The library goes as an fd too: the host's user need not
                 * reach the bundle's folder (spawn.c says why). */
                int lib = open(m->library, O_RDONLY | O_CLOEXEC);
                r = request(h, &msg, p, lib);
                if (lib >= 0)
                        close(lib);
                p = NULL; /* pending now, or answered by host_gone */
                if (r == TETHER_SUCCESS && !h->dead)
                        tell_probes(h, NULL);
        }
        tether_value_unref(what);
        if (r == TETHER_SUCCESS)
                return;
        free(p);
        if (!h) {
                service_host_started(s, r, match);
                return;
        }
        if (h->dead)
                return; /* host_gone answered START */
        if (!h->next && hosts != h) {
                /* Never watched: nothing else knows of it. */
                if (h->src.fd >= 0)
                        close(h->src.fd);
                h->src.fd = -1;
                h->dead = true;
                char how[96];
                reap(h, how, sizeof(how));
                h->finalized = true; /* start_done's host_stop must not */
                service_host_started(s, r, match);
                env_service_loop_exit(s);
                return;
        }
        host_gone(h, "could not be started");
}

void host_terminate(tether_service *s)
{
        host *h = s->host;
        if (!h || h->dead || h->stopping)
                return;
        /* Sent by hosts_tick, on this same turn of the main loop: the
         * caller holds reg_lock, and a failed send ends the host, which
         * takes reg_lock. */
        h->stopping = true;
        h->terminate_unsent = true;
}

static void send_terminate(host *h)
{
        h->terminate_unsent = false;
        wire_msg m;
        wire_msg_init(&m, WIRE_HOST_TERMINATE, 0, 0);
        pending *p = calloc(1, sizeof(*p));
        if (!p) {
                host_gone(h, "could not be told to terminate (out of memory)");
                return;
        }
        h->terminate_sent_ms = clock_mono_ms();
        request(h, &m, p, -1);
}

void host_stop(tether_service *s)
{
        host *h = s->host;
        if (!h)
                return;
        h->stopping = true;
        if (!h->dead) {
                h->dead = true;
                if (h->src.fd >= 0) {
                        server_unwatch(&h->src);
                        close(h->src.fd);
                        h->src.fd = -1;
                }
                char how[96];
                reap(h, how, sizeof(how));
                /* A start still pending (tetherd is shutting down) is
                 * answered like the rest: its candidates are let go. */
                while (h->pending) {
                        pending *p = h->pending;
                        h->pending = p->next;
                        finish_pending(h, p, TETHER_ERR_ABORTED, NULL);
                }
                /* Connections whose close it had not told yet (tetherd
                 * stopped it while their clients were leaving): gone with
                 * it, and their sessions' references with them. */
                while (h->conns)
                        conn_closed(h, h->conns->caller->id);
        }
        finalize(h);
}

void host_open(tether_service *s, session *caller, uint32_t serial, uint32_t type, uint32_t options, int fds[2])
{
        host *h = s->host;
        pending *p = calloc(1, sizeof(*p));
        tether_ret_t r = !p                          ? TETHER_ERR_NO_MEMORY
                         : h->dead || s->terminated ? TETHER_ERR_NOT_ATTACHED
                                                    : TETHER_SUCCESS;
        if (r == TETHER_SUCCESS)
                r = tell_session(h, caller->id);
        if (r != TETHER_SUCCESS) {
                free(p);
                close(fds[0]);
                close(fds[1]);
                env_caller_client_fd_passed(caller);
                env_caller_open_reply(caller, serial, r, 0, -1);
                return;
        }
        *p = (pending){ .caller = session_ref(caller), .client_serial = serial, .client_fd = fds[1] };
        wire_msg m;
        wire_msg_init(&m, WIRE_HOST_OPEN, 0, 0);
        wire_put_u64(&m, caller->id);
        wire_put_task(&m, &caller->task);
        wire_put_u32(&m, type);
        wire_put_u32(&m, options);
        request(h, &m, p, fds[0]); /* answered by the host, or by host_gone */
        close(fds[0]);             /* the host has its own copy now */
}

void host_set_properties(tether_service *s, session *caller, uint16_t type, uint32_t serial, tether_value *dict,
                         const prop_trace *t)
{
        host *h = s->host;
        pending *p = calloc(1, sizeof(*p));
        if (!p || h->dead || s->terminated) {
                free(p);
                session_reply(caller, type, serial, !p ? TETHER_ERR_NO_MEMORY : TETHER_ERR_NOT_ATTACHED, NULL, -1);
                return;
        }
        *p = (pending){ .caller = session_ref(caller), .client_type = type, .client_serial = serial, .client_fd = -1,
                        .trace = *t };
        wire_msg m;
        wire_msg_init(&m, WIRE_HOST_SET_PROPERTIES, 0, 0);
        wire_put_task(&m, &caller->task); /* the driver decides what this writer may set */
        wire_put_value(&m, dict);
        request(h, &m, p, -1);
}

void hosts_session_gone(const session *s)
{
        for (host *h = hosts; h;) {
                host *next = h->next; /* a send that fails ends h */
                size_t at = 0;
                if (!knows_session(h, s->id, &at)) {
                        h = next;
                        continue;
                }
                h->sessions[at] = h->sessions[--h->n_sessions];
                wire_msg m;
                wire_msg_init(&m, WIRE_HOST_SESSION_GONE, 0, 0);
                wire_put_u64(&m, s->id);
                send_to(h, &m, -1);
                h = next;
        }
}

int hosts_tick(void)
{
        uint64_t now = clock_mono_ms();
        int next = -1;
        if (probe_take_changed())
                for (host *h = hosts; h;) {
                        host *after = h->next;
                        tell_probes(h, NULL);
                        h = after;
                }
        for (host *h = hosts; h;) {
                host *after = h->next;
                if (h->terminate_unsent && !h->dead)
                        send_terminate(h); /* may end h */
                else if (h->terminate_sent_ms && !h->dead) {
                        /* Its service stays in the registry until it
                         * answers: a host that never does is ended. Twice
                         * the heartbeat's time: a driver's stop() may do
                         * I/O, and nothing waits on a slow stop but the
                         * entry's leaving. */
                        uint64_t limit = 2 * (uint64_t)hosts_watchdog_ms;
                        if (now - h->terminate_sent_ms >= limit) {
                                char why[64];
                                snprintf(why, sizeof(why), "did not terminate within %llu ms",
                                         (unsigned long long)limit);
                                host_gone(h, why);
                        } else {
                                int left = (int)(h->terminate_sent_ms + limit - now);
                                if (next < 0 || left < next)
                                        next = left;
                        }
                }
                h = after;
        }
        for (host *h = hosts; h;) {
                host *after = h->next;
                /* A start that never answers would keep its nub busy, and
                 * tetherd from ever saying it is ready: the watchdog
                 * covers it too. */
                if (!h->dead && !h->svc->started && !h->stopping) {
                        if (now - h->start_ms >= hosts_watchdog_ms) {
                                char why[64];
                                snprintf(why, sizeof(why), "did not start its driver within %u ms", hosts_watchdog_ms);
                                host_gone(h, why);
                        } else {
                                int left = (int)(h->start_ms + hosts_watchdog_ms - now);
                                if (next < 0 || left < next)
                                        next = left;
                        }
                }
                if (!h->dead && h->svc->started && !h->stopping) {
                        if (h->ping_sent_ms && now - h->ping_sent_ms >= hosts_watchdog_ms) {
                                char why[64];
                                snprintf(why, sizeof(why), "did not answer a heartbeat within %u ms", hosts_watchdog_ms);
                                host_gone(h, why);
                        } else if (!h->ping_sent_ms && now - h->last_ping_ms >= TETHERD_HEARTBEAT_MS) {
                                wire_msg m;
                                wire_msg_init(&m, WIRE_HOST_PING, 0, 0);
                                pending *p = calloc(1, sizeof(*p));
                                h->ping_sent_ms = now;
                                h->last_ping_ms = now;
                                if (p)
                                        p->client_fd = -1;
                                request(h, &m, p, -1);
                        }
                        if (!h->dead) {
                                uint64_t due = h->ping_sent_ms ? h->ping_sent_ms + hosts_watchdog_ms
                                                               : h->last_ping_ms + TETHERD_HEARTBEAT_MS;
                                int left = due > now ? (int)(due - now) : 0;
                                if (next < 0 || left < next)
                                        next = left;
                        }
                }
                h = after;
        }
        for (restart **pp = &restarts; *pp;) {
                restart *r = *pp;
                if (r->due_ms > now) {
                        int left = (int)(r->due_ms - now);
                        if (next < 0 || left < next)
                                next = left;
                        pp = &r->next;
                        continue;
                }
                *pp = r->next;
                /* Still published, and the category still nobody's: match it again. */
                service_match_category(r->nub, r->category);
                entry_unref(r->nub);
                free(r->category);
                free(r);
        }
        return next;
}

void hosts_shutdown(void)
{
        while (hosts) {
                host *h = hosts;
                h->stopping = true;
                pthread_mutex_lock(&reg_lock);
                service_host_gone_locked(h->svc);
                pthread_mutex_unlock(&reg_lock);
                host_stop(h->svc);
        }
        while (restarts) {
                restart *r = restarts;
                restarts = r->next;
                entry_unref(r->nub);
                free(r->category);
                free(r);
        }
}

void host_free(host *h)
{
        if (!h)
                return;
        if (h->channel_charged)
                budget_own_fds(-1); /* its channel, taken in host_start */
        if (h->src.fd >= 0)
                close(h->src.fd);
        free(h->sessions);
        free(h);
}
