/* SPDX-License-Identifier: MIT */
#include "daemon/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/matching.h"
#include "daemon/manifest.h"
#include "daemon/server.h"
#include "daemon/systemd.h"
#include "wire/reason.h"
#include "wire/scratch.h"

static wire_msg tx;                /* the main thread's replies */
static uint8_t rx[WIRE_MAX_MESSAGE];
static int epfd = -1;
static uint64_t next_session_id = 1;
static size_t n_unidentified;      /* live sessions without a HELLO yet */

/* Sessions closed during the current epoll batch; released after it, so a
 * later event of the same batch never names freed memory. */
static session **closing;
static size_t n_closing, cap_closing;

/* Every open session, so shutdown can release them. */
static session **live;
static size_t n_live, cap_live;

static bool live_add(session *s)
{
        if (n_live == cap_live) {
                size_t cap = cap_live ? cap_live * 2 : 16;
                session **l = realloc(live, cap * sizeof(*l));
                if (!l)
                        return false;
                live = l;
                cap_live = cap;
        }
        live[n_live++] = s;
        return true;
}

static void live_remove(session *s)
{
        for (size_t i = 0; i < n_live; i++) {
                if (live[i] == s) {
                        live[i] = live[--n_live];
                        return;
                }
        }
}

session *session_ref(session *s)
{
        if (s)
                atomic_fetch_add(&s->refs, 1);
        return s;
}

session *session_unref(session *s)
{
        if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
                return NULL;
        close(s->fd);
        free(s);
        return NULL;
}

/* ---- a session as the driver runtime sees it (host/env.h) ---- */

env_caller *env_caller_ref(env_caller *c)
{
        return session_ref(c);
}

void env_caller_unref(env_caller *c)
{
        session_unref(c);
}

uint64_t env_caller_id(const env_caller *c)
{
        return c->id;
}

const tether_task *env_caller_task(const env_caller *c)
{
        return &c->task;
}

log_limit *env_caller_log(env_caller *c)
{
        return budget_log(c->budget);
}

const char *env_caller_who(const env_caller *c)
{
        return budget_who(c->budget);
}

atomic_uint *env_caller_async(env_caller *c)
{
        return &c->n_async;
}

bool env_caller_port_owned(env_caller *c, uint64_t port_id)
{
        return port_owned_by(port_id, c);
}

void env_caller_open_reply(env_caller *c, uint32_t serial, tether_ret_t r, uint64_t connection_id, int client_fd)
{
        if (r != TETHER_SUCCESS) {
                /* The open is over: its connection's place and fd are free. */
                env_caller_connection_closed(c);
                session_reply(c, WIRE_OPEN, serial, r, NULL, -1);
                return;
        }
        wire_msg *m = wire_scratch(WIRE_SCRATCH_OPEN);
        if (!m) {
                /* Answered all the same. The connection is counted open
                 * until its user client is gone, which the client's end,
                 * closed by our caller, makes happen. */
                session_reply(c, WIRE_OPEN, serial, TETHER_ERR_NO_MEMORY, NULL, -1);
                return;
        }
        wire_msg_init(m, WIRE_OPEN | WIRE_REPLY_FLAG, serial, r);
        wire_put_u64(m, connection_id);
        wire_msg_finish(m);
        session_reply(c, WIRE_OPEN, serial, r, m, client_fd);
}

void env_caller_connection_closed(env_caller *c)
{
        atomic_fetch_sub(&c->n_connections, 1);
        budget_release_fds(c->budget, 1);
}

void env_caller_client_fd_passed(env_caller *c)
{
        budget_release_fds(c->budget, 1);
}

tether_ret_t env_caller_charge_fds(env_caller *c, int n)
{
        if (n > 0)
                return budget_charge_fds(c->budget, (unsigned)n);
        budget_release_fds(c->budget, (unsigned)-n);
        return TETHER_SUCCESS;
}

void session_reply(session *s, uint16_t type, uint32_t serial, tether_ret_t result,
                   const wire_msg *body_or_null, int fd)
{
        const wire_msg *m = body_or_null;
        wire_msg status;
        if (!m) {
                wire_msg_init(&status, type | WIRE_REPLY_FLAG, serial, result);
                wire_msg_finish(&status);
                m = &status;
        }
        tether_ret_t r = wire_send(s->fd, m, fd);
        if (r == TETHER_ERR_NOT_RESPONDING) {
                /* The client is not reading. Hanging up makes the main loop
                 * reap it; nothing here may block a work loop. */
                session_warn(s, "client pid %d: not reading replies; closing its session", (int)s->task.pid);
                shutdown(s->fd, SHUT_RDWR);
        }
}

static void reply_status(session *s, const wire_header *h, tether_ret_t r)
{
        session_reply(s, h->type, h->serial, r, NULL, -1);
}

void session_reply_reason(session *s, uint16_t type, uint32_t serial, tether_ret_t result, const char *reason)
{
        size_t n = reason ? strlen(reason) : 0;
        if (result == TETHER_SUCCESS || !wire_reason_valid(reason, n)) {
                session_reply(s, type, serial, result, NULL, -1);
                return;
        }
        /* A work loop answers an in-process write: this thread's buffer. */
        wire_msg *m = wire_scratch(WIRE_SCRATCH_SESSION);
        if (!m) {
                session_reply(s, type, serial, result, NULL, -1); /* the verdict, without its reason */
                return;
        }
        wire_msg_init(m, type | WIRE_REPLY_FLAG, serial, result);
        wire_put_bytes(m, reason, n);
        wire_msg_finish(m);
        session_reply(s, type, serial, result, m, -1);
}

void prop_trace_begin(prop_trace *t, uint64_t service_id, const tether_value *dict)
{
        t->on = probe_on();
        if (!t->on)
                return;
        t->service_id = service_id;
        t->start_ns = probe_now_ns();
        t->start_mono_ns = probe_mono_ns();
        probe_keys_of(dict, t->keys, sizeof(t->keys));
}

void session_reply_set_properties(session *s, const prop_trace *t, uint16_t type, uint32_t serial, tether_ret_t r,
                                  const char *reason)
{
        session_reply_reason(s, type, serial, r, reason);
        if (!t->on || !probe_on())
                return;
        probe_property_event e = {
                .start_ns = t->start_ns,
                .duration_ns = probe_mono_ns() - t->start_mono_ns,
                .ctx = { .service_id = t->service_id, .session_id = s->id, .pid = s->task.pid },
                .result = r,
                .keys = t->keys,
                .reason = r != TETHER_SUCCESS ? reason : NULL,
        };
        probe_property(&e);
}

const char *tetherd_admin_group = TETHERD_ADMIN_GROUP;

/* What tetherd lets s's client do beyond what anyone may, decided once,
 * when it first opens a connection or writes properties (most sessions,
 * `tether reg` reading the tree, never do: they pay no user-database
 * lookup). The credentials are SO_PEERCRED's, fixed at connect; a group
 * joined later counts from the next session on. Main thread. */
static void resolve_privileges(session *s)
{
        if (s->privileges_known)
                return;
        s->privileges_known = true;
        if (s->task.uid == 0 || manifest_in_group(s->task.uid, s->task.gid, tetherd_admin_group))
                s->task.privileges |= TETHER_PRIVILEGE_ADMINISTRATOR;
}

static void reply_msg(session *s, const wire_header *h)
{
        if (wire_msg_finish(&tx) != TETHER_SUCCESS)
                reply_status(s, h, TETHER_ERR_MESSAGE_TOO_LARGE);
        else
                session_reply(s, h->type, h->serial, TETHER_SUCCESS, &tx, -1);
}

/* ---- handlers ---- */

static tether_ret_t entry_info_locked(entry *e, tether_value **ret)
{
        tether_value *d = NULL, *kids = NULL;
        char *path = NULL;
        tether_ret_t r = tether_value_new_dict(&d);
        if (r == TETHER_SUCCESS)
                r = tether_value_new_array(&kids);
        for (size_t i = 0; r == TETHER_SUCCESS && i < e->n_children; i++) {
                tether_value *id = NULL;
                r = tether_value_new_uint(e->children[i]->id, 64, &id);
                if (r == TETHER_SUCCESS)
                        r = tether_value_array_append(kids, id);
                tether_value_unref(id);
        }
        if (r == TETHER_SUCCESS)
                r = registry_path_locked(e, &path);
        bool is_service = e->service && e->service->entry == e;
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_uint(d, "id", e->id, 64);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_uint(d, "parent", e->parent ? e->parent->id : 0, 64);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(d, "class", e->class_name);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(d, "name", e->name);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(d, "location", e->location);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(d, "path", path);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_uint(d, "state", e->state, 32);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_uint(d, "busy", e->busy, 32);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_uint(d, "openCount", e->open_count, 32);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(d, "driver", !is_service            ? ""
                                                              : e->service->driver ? e->service->driver->name
                                                                                   : bundle_id(e->service->bundle));
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(d, "bundle", is_service ? bundle_id(e->service->bundle) : "");
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set(d, "children", kids);
        free(path);
        tether_value_unref(kids);
        if (r != TETHER_SUCCESS)
                d = tether_value_unref(d);
        *ret = d;
        return r;
}

static void handle_get_entry(session *s, const wire_header *h, wire_reader *rd)
{
        uint64_t id = wire_get_u64(rd);
        tether_ret_t r = wire_reader_done(rd);
        tether_value *info = NULL;
        if (r == TETHER_SUCCESS) {
                pthread_mutex_lock(&reg_lock);
                entry *e = registry_lookup_locked(id);
                r = e ? entry_info_locked(e, &info) : TETHER_ERR_NOT_FOUND;
                pthread_mutex_unlock(&reg_lock);
        }
        if (r != TETHER_SUCCESS) {
                reply_status(s, h, r);
                return;
        }
        wire_msg_init(&tx, h->type | WIRE_REPLY_FLAG, h->serial, TETHER_SUCCESS);
        wire_put_value(&tx, info);
        tether_value_unref(info);
        reply_msg(s, h);
}

static void handle_get_property(session *s, const wire_header *h, wire_reader *rd)
{
        uint64_t id = wire_get_u64(rd);
        size_t klen = rd->left;
        const uint8_t *kbytes = wire_get_bytes(rd, klen);
        if (rd->bad || klen > 1024 || (klen && memchr(kbytes, 0, klen))) {
                reply_status(s, h, TETHER_ERR_BAD_ARGUMENT);
                return;
        }
        char key[1025];
        memcpy(key, kbytes, klen);
        key[klen] = '\0';
        tether_value *v = NULL;
        tether_ret_t r = TETHER_ERR_NOT_FOUND;
        pthread_mutex_lock(&reg_lock);
        entry *e = registry_lookup_locked(id);
        if (e && klen) {
                r = tether_value_dict_get(e->props, key, &v);
                tether_value_ref(v);
        } else if (e) {
                v = tether_value_ref(e->props);
                r = TETHER_SUCCESS;
        }
        pthread_mutex_unlock(&reg_lock);
        if (r != TETHER_SUCCESS) {
                reply_status(s, h, r);
                return;
        }
        /* Encoding happens outside the lock: the snapshot is immutable. */
        wire_msg_init(&tx, h->type | WIRE_REPLY_FLAG, h->serial, TETHER_SUCCESS);
        wire_put_value(&tx, v);
        tether_value_unref(v);
        reply_msg(s, h);
}

typedef struct set_props_job {
        session *s;
        tether_service *svc;
        tether_value *dict;
        wire_header h;
        prop_trace trace;
} set_props_job;

static void run_set_props(void *arg)
{
        set_props_job *j = arg;
        char reason[WIRE_MAX_REASON + 1];
        /* The session's task is settled (resolve_privileges ran before the
         * post) and no longer written: safe to read here. */
        tether_ret_t r = service_set_properties(j->svc, &j->s->task, j->dict, reason);
        session_reply_set_properties(j->s, &j->trace, j->h.type, j->h.serial, r, reason);
        tether_value_unref(j->dict);
        service_unref(j->svc);
        session_unref(j->s);
        free(j);
}

/* The service behind an id, referenced; NULL with *ret_err set otherwise. */
static tether_service *lookup_service(uint64_t id, tether_ret_t *ret_err)
{
        tether_service *svc = NULL;
        pthread_mutex_lock(&reg_lock);
        entry *e = registry_lookup_locked(id);
        if (!e)
                *ret_err = TETHER_ERR_NOT_FOUND;
        else if (!e->service || e->service->entry != e)
                *ret_err = TETHER_ERR_UNSUPPORTED; /* a nub: no driver owns it */
        else
                svc = service_ref(e->service);
        pthread_mutex_unlock(&reg_lock);
        return svc;
}

static void handle_set_properties(session *s, const wire_header *h, wire_reader *rd)
{
        uint64_t id = wire_get_u64(rd);
        tether_value *dict = NULL;
        tether_ret_t r = wire_get_value(rd, &dict);
        if (r == TETHER_SUCCESS && tether_value_get_type(dict) != TETHER_TYPE_DICT)
                r = TETHER_ERR_BAD_ARGUMENT;
        tether_service *svc = r == TETHER_SUCCESS ? lookup_service(id, &r) : NULL;
        resolve_privileges(s);
        prop_trace trace = { 0 };
        if (svc)
                prop_trace_begin(&trace, svc->id, dict);
        /* The bundle's access policy first: a caller it keeps from the
         * instrument is kept from its settings too. The driver then
         * decides each key. */
        char why[WIRE_MAX_REASON + 1];
        if (svc && svc->bundle &&
            manifest_write_refused(bundle_manifest(svc->bundle), s->task.uid, s->task.gid, why, sizeof(why))) {
                session_warn(s, "client pid %d: uid %u may not write properties of %s", (int)s->task.pid,
                             (unsigned)s->task.uid, bundle_id(svc->bundle));
                service_unref(svc);
                tether_value_unref(dict);
                session_reply_set_properties(s, &trace, h->type, h->serial, TETHER_ERR_NOT_PRIVILEGED, why);
                return;
        }
        if (svc && svc->host) {
                host_set_properties(svc, s, h->type, h->serial, dict, &trace);
                service_unref(svc);
                tether_value_unref(dict);
                return;
        }
        set_props_job *j = svc ? malloc(sizeof(*j)) : NULL;
        if (svc && !j)
                r = TETHER_ERR_NO_MEMORY;
        if (j) {
                *j = (set_props_job){ .s = session_ref(s), .svc = svc, .dict = dict, .h = *h, .trace = trace };
                if (workloop_post(svc->loop, 0, run_set_props, j) == TETHER_SUCCESS)
                        return;
                session_unref(s);
                free(j);
                r = TETHER_ERR_NOT_ATTACHED;
        }
        service_unref(svc);
        tether_value_unref(dict);
        reply_status(s, h, r);
}

typedef struct match_ctx {
        const tether_value *matching;
        wire_msg *m;
        size_t n;
} match_ctx;

static bool collect_match(entry *e, void *arg)
{
        match_ctx *c = arg;
        if ((e->state & TETHER_ENTRY_ACTIVE) && registry_match_locked(c->matching, e)) {
                wire_put_u64(c->m, e->id);
                c->n++;
        }
        return !c->m->poisoned;
}

static void handle_get_matching(session *s, const wire_header *h, wire_reader *rd)
{
        tether_value *matching = NULL;
        tether_ret_t r = wire_get_value(rd, &matching);
        if (r == TETHER_SUCCESS)
                r = matching_validate(matching);
        if (r != TETHER_SUCCESS) {
                tether_value_unref(matching);
                reply_status(s, h, r);
                return;
        }
        wire_msg_init(&tx, h->type | WIRE_REPLY_FLAG, h->serial, TETHER_SUCCESS);
        match_ctx c = { .matching = matching, .m = &tx };
        pthread_mutex_lock(&reg_lock);
        registry_walk_locked(registry_root(), collect_match, &c);
        pthread_mutex_unlock(&reg_lock);
        tether_value_unref(matching);
        reply_msg(s, h);
}

static void handle_lookup_path(session *s, const wire_header *h, wire_reader *rd)
{
        size_t n = rd->left;
        const uint8_t *p = wire_get_bytes(rd, n);
        if (!n || n > 4096 || memchr(p, 0, n)) {
                reply_status(s, h, TETHER_ERR_BAD_ARGUMENT);
                return;
        }
        char *path = strndup((const char *)p, n);
        if (!path) {
                reply_status(s, h, TETHER_ERR_NO_MEMORY);
                return;
        }
        pthread_mutex_lock(&reg_lock);
        entry *e = registry_lookup_path_locked(path);
        uint64_t id = e ? e->id : 0;
        pthread_mutex_unlock(&reg_lock);
        free(path);
        if (!id) {
                reply_status(s, h, TETHER_ERR_NOT_FOUND);
                return;
        }
        wire_msg_init(&tx, h->type | WIRE_REPLY_FLAG, h->serial, TETHER_SUCCESS);
        wire_put_u64(&tx, id);
        reply_msg(s, h);
}

static void handle_open(session *s, const wire_header *h, wire_reader *rd)
{
        uint64_t id = wire_get_u64(rd);
        uint32_t type = wire_get_u32(rd);
        uint32_t options = wire_get_u32(rd);
        tether_ret_t r = wire_reader_done(rd);
        if (r == TETHER_SUCCESS && (options & ~TETHER_OPEN_EXCLUSIVE))
                r = TETHER_ERR_BAD_ARGUMENT;
        resolve_privileges(s); /* before the task goes to a driver, here or in a host */
        tether_service *svc = r == TETHER_SUCCESS ? lookup_service(id, &r) : NULL;
        /* The bundle's access policy (DriverKit's user-client access
         * entitlement): checked here, before the driver hears of it. */
        if (svc && svc->bundle && !manifest_may_open(bundle_manifest(svc->bundle), type, s->task.uid, s->task.gid)) {
                session_warn(s, "client pid %d: uid %u may not open type %u of %s", (int)s->task.pid,
                             (unsigned)s->task.uid, type, bundle_id(svc->bundle));
                svc = service_unref(svc);
                r = TETHER_ERR_NOT_PRIVILEGED;
        }
        if (!svc) {
                reply_status(s, h, r);
                return;
        }
        if (atomic_fetch_add(&s->n_connections, 1) >= TETHERD_MAX_CONNECTIONS_PER_SESSION) {
                atomic_fetch_sub(&s->n_connections, 1);
                service_unref(svc);
                reply_status(s, h, TETHER_ERR_NO_RESOURCES);
                return;
        }
        /* Two fds until the reply hands the client its end. */
        if (budget_charge_fds(s->budget, 2) != TETHER_SUCCESS) {
                atomic_fetch_sub(&s->n_connections, 1);
                service_unref(svc);
                reply_status(s, h, TETHER_ERR_NO_RESOURCES);
                return;
        }
        open_request *req = calloc(1, sizeof(*req));
        int sv[2] = { -1, -1 };
        r = req ? wire_channel_pair(false, sv) : TETHER_ERR_NO_MEMORY;
        if (r == TETHER_SUCCESS && svc->host) {
                free(req);
                host_open(svc, s, h->serial, type, options, sv);
                service_unref(svc);
                return;
        }
        if (r == TETHER_SUCCESS) {
                *req = (open_request){ .caller = session_ref(s), .service = svc, .serial = h->serial,
                                       .type = type, .options = options, .fds = { sv[0], sv[1] } };
                /* init_with_task and start are driver code: they run on the
                 * service's loop, which also sends the reply. */
                if (workloop_post(svc->loop, 0, user_client_open, req) == TETHER_SUCCESS)
                        return;
                session_unref(s);
                close(sv[0]);
                close(sv[1]);
                r = TETHER_ERR_NOT_ATTACHED;
        }
        free(req);
        atomic_fetch_sub(&s->n_connections, 1);
        budget_release_fds(s->budget, 2);
        service_unref(svc);
        reply_status(s, h, r);
}

static void handle_port_create(session *s, const wire_header *h, wire_reader *rd)
{
        if (wire_reader_done(rd) != TETHER_SUCCESS) {
                reply_status(s, h, TETHER_ERR_BAD_ARGUMENT);
                return;
        }
        if (s->n_ports >= TETHERD_MAX_PORTS_PER_SESSION) {
                reply_status(s, h, TETHER_ERR_NO_RESOURCES);
                return;
        }
        uint64_t id = 0;
        int fd = -1;
        tether_ret_t r = port_create(s, &id, &fd); /* charges the port's fd to s's uid */
        if (r != TETHER_SUCCESS) {
                reply_status(s, h, r);
                return;
        }
        s->n_ports++;
        wire_msg_init(&tx, h->type | WIRE_REPLY_FLAG, h->serial, TETHER_SUCCESS);
        wire_put_u64(&tx, id);
        wire_msg_finish(&tx);
        session_reply(s, h->type, h->serial, TETHER_SUCCESS, &tx, fd);
        close(fd);
}

static void handle_add_notification(session *s, const wire_header *h, wire_reader *rd)
{
        uint64_t port_id = wire_get_u64(rd);
        uint32_t type = wire_get_u32(rd);
        uint32_t zero = wire_get_u32(rd);
        uint64_t cookie = wire_get_u64(rd);
        tether_value *matching = NULL;
        tether_ret_t r = rd->bad || zero ? TETHER_ERR_BAD_ARGUMENT : wire_get_value(rd, &matching);
        uint64_t id = 0;
        if (r == TETHER_SUCCESS)
                r = notification_add(s, port_id, type, cookie, matching, &id);
        tether_value_unref(matching);
        if (r != TETHER_SUCCESS) {
                reply_status(s, h, r);
                return;
        }
        wire_msg_init(&tx, h->type | WIRE_REPLY_FLAG, h->serial, TETHER_SUCCESS);
        wire_put_u64(&tx, id);
        reply_msg(s, h);
}

/* Root, or the user tetherd runs as: they own the machine. */
static bool privileged(const session *s)
{
        return s->task.uid == 0 || s->task.uid == geteuid();
}

/* Probes see every client's calls and the instruments' traffic, so only
 * root and tetherd's own user may attach one (as only root may run
 * usbmon). */
static void handle_probe_attach(session *s, const wire_header *h, wire_reader *rd)
{
        probe_filter f = { .kinds = wire_get_u32(rd), .snaplen = wire_get_u32(rd) };
        f.service_id = wire_get_u64(rd);
        f.pid = (int32_t)wire_get_u32(rd);
        f.selector = wire_get_u32(rd);
        tether_ret_t r = wire_reader_done(rd);
        if (r == TETHER_SUCCESS && !privileged(s))
                r = TETHER_ERR_NOT_PRIVILEGED;
        int fd = -1;
        if (r == TETHER_SUCCESS)
                r = probe_attach(s, &f, &fd);
        if (r != TETHER_SUCCESS) {
                reply_status(s, h, r);
                return;
        }
        /* Driver hosts build their own events: the probe sees every call
         * made after it is attached once each host has heard of it. */
        hosts_probes_sync(s, h->type, h->serial, fd);
}

/* The rest of the message as a C string: 1..4096 bytes, no NUL. */
static char *body_string(wire_reader *rd)
{
        size_t n = rd->left;
        const uint8_t *p = wire_get_bytes(rd, n);
        if (!n || n > 4096 || memchr(p, 0, n))
                return NULL;
        return strndup((const char *)p, n);
}

static void handle_driver_list(session *s, const wire_header *h, wire_reader *rd)
{
        tether_value *list = NULL;
        tether_ret_t r = wire_reader_done(rd);
        if (r == TETHER_SUCCESS)
                r = bundles_describe(&list);
        if (r != TETHER_SUCCESS) {
                reply_status(s, h, r);
                return;
        }
        wire_msg_init(&tx, h->type | WIRE_REPLY_FLAG, h->serial, TETHER_SUCCESS);
        wire_put_value(&tx, list);
        tether_value_unref(list);
        reply_msg(s, h);
}

/* kextload: a bundle's personalities match at once, the nubs already
 * published included. Privileged, as loading a kext is: a bundle decides
 * which code runs for every user's instruments. */
static void handle_driver_load(session *s, const wire_header *h, wire_reader *rd)
{
        char *path = body_string(rd);
        char why[256] = "";
        tether_ret_t r = !path ? TETHER_ERR_BAD_ARGUMENT
                         : !privileged(s) ? TETHER_ERR_NOT_PRIVILEGED
                                          : bundle_load(path, why, sizeof(why));
        if (r == TETHER_SUCCESS)
                service_match_unclaimed();
        else if (path && *why)
                log_warn("client pid %d: bundle %s refused: %s", (int)s->task.pid, path, why);
        free(path);
        /* The reason goes back with the error: the tool says it. */
        wire_msg_init(&tx, h->type | WIRE_REPLY_FLAG, h->serial, r);
        wire_put_bytes(&tx, why, strlen(why));
        reply_msg(s, h);
}

/* An unload is answered when its bundle's services have left the registry
 * (their clients stopped, TERMINATED told), as kextunload returns once the
 * kext's services are gone: a client that calls after `tether driver
 * unload` returned gets NotAttached, not a race. Bounded: a host that does
 * not terminate is killed within twice the watchdog period. */
typedef struct unload_wait {
        session *s;                /* referenced */
        wire_header h;
        bundle *b;                 /* referenced */
        uint64_t deadline_ns;
        struct unload_wait *next;
} unload_wait;

static unload_wait *unload_waits;  /* main thread */

static uint64_t mono_ns(void);

static void handle_driver_unload(session *s, const wire_header *h, wire_reader *rd)
{
        char *id = body_string(rd);
        bundle *b = NULL;
        tether_ret_t r = !id ? TETHER_ERR_BAD_ARGUMENT : !privileged(s) ? TETHER_ERR_NOT_PRIVILEGED : bundle_unload(id, &b);
        free(id);
        unload_wait *w = b ? malloc(sizeof(*w)) : NULL;
        if (!w) {
                bundle_unref(b);
                reply_status(s, h, r);
                return;
        }
        *w = (unload_wait){ .s = session_ref(s), .h = *h, .b = b,
                            .deadline_ns = mono_ns() + (2ull * hosts_watchdog_ms + 1000) * 1000000ull,
                            .next = unload_waits };
        unload_waits = w;
}

/* Main loop, each turn. */
static void unload_waits_tick(bool all)
{
        uint64_t now = mono_ns();
        for (unload_wait **l = &unload_waits; *l;) {
                unload_wait *w = *l;
                if (!all && now < w->deadline_ns && service_bundle_in_registry(w->b)) {
                        l = &w->next;
                        continue;
                }
                *l = w->next;
                reply_status(w->s, &w->h, TETHER_SUCCESS);
                session_unref(w->s);
                bundle_unref(w->b);
                free(w);
        }
}

static void handle_hello(session *s, const wire_header *h, wire_reader *rd)
{
        uint32_t abi = wire_get_u32(rd);
        uint32_t zero = wire_get_u32(rd);
        if (wire_reader_done(rd) != TETHER_SUCCESS || zero || (abi != 32 && abi != 64) || s->hello_done) {
                reply_status(s, h, TETHER_ERR_BAD_ARGUMENT);
                return;
        }
        s->task.abi_word_bits = abi;
        s->hello_done = true;
        budget_identified(s->budget);
        n_unidentified--;
        wire_msg_init(&tx, h->type | WIRE_REPLY_FLAG, h->serial, TETHER_SUCCESS);
        wire_put_u64(&tx, s->id);
        wire_put_u64(&tx, registry_root()->id);
        reply_msg(s, h);
}

static void session_close(session *s);

/* had_fd: the message came with fds, which the kernel dropped: no session
 * request carries one. */
static void handle_message(session *s, const uint8_t *buf, size_t len, bool had_fd)
{
        wire_header h;
        tether_ret_t r = wire_header_check(buf, len, &h);
        if (r != TETHER_SUCCESS) {
                session_warn(s, "client pid %d: malformed message (%s)", (int)s->task.pid, tether_strerror(r));
                wire_header bad = { 0 };
                reply_status(s, &bad, r);
                return;
        }
        if (had_fd) {
                session_warn(s, "client pid %d: a session request carried fds; refused", (int)s->task.pid);
                reply_status(s, &h, TETHER_ERR_BAD_ARGUMENT);
                return;
        }
        wire_reader rd;
        wire_reader_init(&rd, buf + WIRE_HEADER_SIZE, len - WIRE_HEADER_SIZE);
        if (!s->hello_done && h.type != WIRE_HELLO) {
                reply_status(s, &h, TETHER_ERR_NOT_OPEN);
                return;
        }
        switch (h.type) {
        case WIRE_HELLO:
                handle_hello(s, &h, &rd);
                break;
        case WIRE_GET_ENTRY:
                handle_get_entry(s, &h, &rd);
                break;
        case WIRE_GET_PROPERTY:
                handle_get_property(s, &h, &rd);
                break;
        case WIRE_SET_PROPERTIES:
                handle_set_properties(s, &h, &rd);
                break;
        case WIRE_GET_MATCHING:
                handle_get_matching(s, &h, &rd);
                break;
        case WIRE_LOOKUP_PATH:
                handle_lookup_path(s, &h, &rd);
                break;
        case WIRE_OPEN:
                handle_open(s, &h, &rd);
                break;
        case WIRE_PORT_CREATE:
                handle_port_create(s, &h, &rd);
                break;
        case WIRE_ADD_NOTIFICATION:
                handle_add_notification(s, &h, &rd);
                break;
        case WIRE_PROBE_ATTACH:
                handle_probe_attach(s, &h, &rd);
                break;
        case WIRE_DRIVER_LIST:
                handle_driver_list(s, &h, &rd);
                break;
        case WIRE_DRIVER_LOAD:
                handle_driver_load(s, &h, &rd);
                break;
        case WIRE_DRIVER_UNLOAD:
                handle_driver_unload(s, &h, &rd);
                break;
        case WIRE_REMOVE_NOTIFICATION: {
                uint64_t id = wire_get_u64(&rd);
                r = wire_reader_done(&rd);
                reply_status(s, &h, r == TETHER_SUCCESS ? notification_remove(s, id) : r);
                break;
        }
        default:
                reply_status(s, &h, TETHER_ERR_BAD_MESSAGE_ID);
                break;
        }
}

/* ---- the main loop ---- */

static unsigned hello_timeout_ms = TETHERD_HELLO_TIMEOUT_MS;
static log_limit accept_log;       /* fd exhaustion, refusals: not one client's doing */
static int reserve_fd = -1;        /* given up to accept, and refuse, when out of fds */
static bool listener_paused;
static loop_source *listener;

static uint64_t mono_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Read and drop whatever the client queued: fds in flight in our receive
 * queue (its own session socket, say, with our OPEN reply unread in its
 * queue) would otherwise keep both ends alive after the client is gone.
 * Our reading side is shut down first, so nothing more can arrive. */
static void drain(int fd)
{
        static uint8_t junk[WIRE_MAX_MESSAGE];
        for (int i = 0; i < 4096; i++) {
                size_t len;
                bool fds;
                tether_ret_t r = wire_recv_nofds(fd, junk, sizeof(junk), &len, &fds);
                if (r != TETHER_SUCCESS && r != TETHER_ERR_MESSAGE_TOO_LARGE)
                        return;
        }
}

/* Tell a socket we will not serve it why, and close it. Shutting down our
 * reading side first makes a HELLO sent after this fail at once with EPIPE
 * (libtether then reads this answer), and draining what came before means
 * the close reports no unread data, which the kernel would otherwise turn
 * into ECONNRESET ahead of our answer. */
static void refuse_socket(int fd, tether_ret_t why)
{
        shutdown(fd, SHUT_RD);
        drain(fd);
        wire_msg m;
        wire_msg_init(&m, WIRE_REPLY_FLAG, 0, why);
        wire_msg_finish(&m);
        (void)wire_send(fd, &m, -1);
        close(fd);
}

static void session_close(session *s)
{
        if (s->src.removed)
                return;
        s->src.removed = true;
        epoll_ctl(epfd, EPOLL_CTL_DEL, s->fd, NULL);
        /* Wake anything still blocked on it. Then the socket itself goes
         * at once, whatever still names it (a connection's reference keeps
         * the session): /dev/null takes its number, so no thread ever
         * writes to a reused one, and closing the socket is what frees the
         * fds still in flight in its queue, which draining cannot promise
         * (after our own shutdown a 0-byte datagram reads as the end). */
        shutdown(s->fd, SHUT_RDWR);
        drain(s->fd);
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0) {
                dup2(null, s->fd);
                close(null);
        }
        ports_release_session(s);
        probes_release_session(s);
        hosts_session_gone(s);
        live_remove(s);
        budget_leave(s->budget, s->hello_done);
        if (!s->hello_done)
                n_unidentified--;
        if (n_closing == cap_closing) {
                size_t cap = cap_closing ? cap_closing * 2 : 8;
                session **c = realloc(closing, cap * sizeof(*c));
                if (!c) {
                        session_unref(s); /* cannot defer: at worst a late event is skipped by `removed` */
                        return;
                }
                closing = c;
                cap_closing = cap;
        }
        closing[n_closing++] = s;
}

static void session_readable(loop_source *src, uint32_t events)
{
        session *s = (session *)((char *)src - offsetof(session, src));
        for (int i = 0; i < TETHERD_BATCH; i++) {
                size_t len = 0;
                bool fds = false;
                tether_ret_t r = wire_recv_nofds(s->fd, rx, sizeof(rx), &len, &fds);
                if (r == TETHER_ERR_NOT_READY)
                        return;
                if (r == TETHER_ERR_MESSAGE_TOO_LARGE) {
                        session_warn(s, "client pid %d: oversized message", (int)s->task.pid);
                        wire_header bad = { 0 };
                        reply_status(s, &bad, r);
                        continue;
                }
                if (r != TETHER_SUCCESS) {
                        session_close(s);
                        return;
                }
                handle_message(s, rx, len, fds);
                if (s->src.removed)
                        return;
        }
}

/* Sockets that never said HELLO are closed at the deadline: a silent
 * client must not hold a slot (and an fd) for as long as it likes. Returns
 * the ms until the next deadline, or -1 if none is pending. */
static int sweep_unidentified(void)
{
        uint64_t now = mono_ns(), limit = (uint64_t)hello_timeout_ms * 1000000u;
        int64_t next = -1;
        for (size_t i = 0; i < n_live;) {
                session *s = live[i];
                if (s->hello_done) {
                        i++;
                        continue;
                }
                uint64_t age = now - s->accepted_ns;
                if (age >= limit) {
                        session_warn(s, "client pid %d: no HELLO within %u ms; closed", (int)s->task.pid,
                                     hello_timeout_ms);
                        wire_header bad = { 0 };
                        reply_status(s, &bad, TETHER_ERR_TIMEOUT);
                        session_close(s); /* swaps the last live session into slot i */
                        continue;
                }
                int64_t left = (int64_t)((limit - age + 999999) / 1000000);
                if (next < 0 || left < next)
                        next = left;
                i++;
        }
        return (int)next;
}

static void listener_set(bool on)
{
        struct epoll_event ev = { .events = on ? EPOLLIN : 0, .data.ptr = listener };
        epoll_ctl(epfd, EPOLL_CTL_MOD, listener->fd, &ev);
        listener_paused = !on;
}

/* Out of fds: accept with the reserve fd and refuse, so the client gets an
 * answer instead of hanging in the backlog, and the listener does not stay
 * ready (epoll would wake us for it forever). Without a reserve, stop
 * listening until the main loop gets one back. */
static bool accept_when_out_of_fds(int listen_fd)
{
        if (reserve_fd < 0) {
                log_limited(&accept_log, LOG_LVL_WARN, "new clients", "out of fds; not accepting for now");
                listener_set(false);
                return false;
        }
        close(reserve_fd);
        reserve_fd = -1;
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
                log_limited(&accept_log, LOG_LVL_WARN, "new clients", "out of fds; a new client was refused");
                refuse_socket(fd, TETHER_ERR_NO_RESOURCES);
        }
        reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        return fd >= 0;
}

static void accept_ready(loop_source *src, uint32_t events)
{
        /* A batch per wake-up, like every other socket: a connect flood
         * must not keep the main loop from the sessions it serves. */
        for (int i = 0; i < TETHERD_BATCH; i++) {
                int fd = accept4(src->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        if ((errno == EMFILE || errno == ENFILE) && accept_when_out_of_fds(src->fd))
                                continue;
                        return;
                }
                struct ucred cred;
                socklen_t cl = sizeof(cred);
                if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
                        close(fd);
                        continue;
                }
                uid_budget *b = budget_for(cred.uid);
                tether_ret_t r = !b ? TETHER_ERR_NO_MEMORY : budget_admit(b);
                /* The last sessions are root's: others cannot take them all. */
                if (r == TETHER_SUCCESS && n_live >= TETHERD_MAX_SOCKETS - (budget_privileged(b) ? 0 : 64)) {
                        budget_leave(b, false);
                        r = TETHER_ERR_NO_RESOURCES;
                }
                session *s = r == TETHER_SUCCESS ? calloc(1, sizeof(*s)) : NULL;
                if (r == TETHER_SUCCESS && !s) {
                        budget_leave(b, false);
                        r = TETHER_ERR_NO_MEMORY;
                }
                if (r != TETHER_SUCCESS) {
                        log_limited(&accept_log, LOG_LVL_WARN, "new clients",
                                    "client pid %d: uid %u is at its limit of sessions or fds; refused",
                                    (int)cred.pid, (unsigned)cred.uid);
                        refuse_socket(fd, r);
                        continue;
                }
                atomic_init(&s->refs, 1);
                s->fd = fd;
                s->id = next_session_id++;
                s->task = (tether_task){ .pid = cred.pid, .uid = cred.uid, .gid = cred.gid, .abi_word_bits = 64 };
                s->src.fd = fd;
                s->src.fn = session_readable;
                s->budget = b;
                s->accepted_ns = mono_ns();
                struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = &s->src };
                if (!live_add(s) || epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                        live_remove(s);
                        budget_leave(b, false);
                        session_unref(s);
                        continue;
                }
                n_unidentified++;
                log_debug("session %llu: pid %d uid %u", (unsigned long long)s->id, (int)cred.pid,
                          (unsigned)cred.uid);
        }
}

static volatile sig_atomic_t quit;

static void signal_ready(loop_source *src, uint32_t events)
{
        struct signalfd_siginfo si;
        while (read(src->fd, &si, sizeof(si)) == sizeof(si))
                quit = 1;
}

static int listen_on(const char *path)
{
        struct sockaddr_un addr = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(addr.sun_path)) {
                log_err("socket path too long: %s", path);
                return -1;
        }
        strcpy(addr.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -1;
        unlink(path);
        /* Anyone who can reach the socket may read the registry; which
         * users can reach it is the socket directory's permissions. */
        if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || chmod(path, 0666) < 0 ||
            listen(fd, 128) < 0) {
                log_err("cannot listen on %s: %s", path, strerror(errno));
                close(fd);
                return -1;
        }
        return fd;
}

static int server_epoll(void)
{
        if (epfd < 0)
                epfd = epoll_create1(EPOLL_CLOEXEC);
        return epfd;
}

/* One turn of the main loop: events, deadlines, deferred frees. Returns
 * how long the next turn may wait. */
static int loop_once(int wait_ms)
{
        struct epoll_event evs[32];
        /* A bounded wait: finished work loops are joined promptly. */
        int n = epoll_wait(epfd, evs, 32, wait_ms);
        for (int i = 0; i < n; i++) {
                loop_source *src = evs[i].data.ptr;
                if (!src->removed)
                        src->fn(src, evs[i].events);
        }
        int next = n_unidentified ? sweep_unidentified() : -1;
        budgets_tick();
        devices_tick();
        int host_next = hosts_tick();
        if (host_next >= 0 && (next < 0 || host_next < next))
                next = host_next;
        if (unload_waits) {
                unload_waits_tick(false);
                if (unload_waits && (next < 0 || next > 10))
                        next = 10; /* a service leaves on a work loop too: look again soon */
        }
        for (size_t i = 0; i < n_closing; i++)
                session_unref(closing[i]);
        n_closing = 0;
        server_reap_retired();
        service_reap();
        if (listener_paused) {
                if (reserve_fd < 0)
                        reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (reserve_fd >= 0)
                        listener_set(true);
        }
        return next >= 0 && next < 500 ? next : 500;
}

int server_run(int listen_fd, const char *path, int ready_fd, unsigned hello_ms)
{
        if (hello_ms)
                hello_timeout_ms = hello_ms;
        log_limit_init(&accept_log);
        sigset_t mask; /* blocked since main() started */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);

        loop_source lsrc = { .fn = accept_ready }, ssrc = { .fn = signal_ready };
        ssrc.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (server_epoll() < 0 || ssrc.fd < 0)
                return 1;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &ssrc };
        epoll_ctl(epfd, EPOLL_CTL_ADD, ssrc.fd, &ev);
        /* Clients that connect find every driver started (IOKitWaitQuiet).
         * Drivers in hosts answer through this loop, so it runs meanwhile,
         * polling briefly: in-process starts end on their own threads. */
        while (!quit && !registry_quiet())
                loop_once(10);
        /* A socket systemd passed is already listening: its clients wait
         * in the backlog meanwhile, as they would for the socket to appear. */
        lsrc.fd = listen_fd >= 0 ? listen_fd : listen_on(path);
        if (lsrc.fd < 0)
                return 1;
        listener = &lsrc;
        reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        budget_init();
        ev.data.ptr = &lsrc;
        epoll_ctl(epfd, EPOLL_CTL_ADD, lsrc.fd, &ev);
        log_info("listening on %s", path);
        if (ready_fd >= 0) {
                ssize_t n = write(ready_fd, "READY\n", 6);
                (void)n;
                close(ready_fd);
        }
        systemd_notify_ready(path);
        int wait_ms = 500;
        while (!quit) {
                wait_ms = loop_once(wait_ms);
                systemd_notify_clients(n_live);
        }
        systemd_notify_stopping();
        log_info("shutting down");
        if (reserve_fd >= 0)
                close(reserve_fd);
        reserve_fd = -1;
        log_limit_flush(&accept_log, "new clients");
        log_limit_destroy(&accept_log);
        close(lsrc.fd);
        /* systemd's socket stays: the next client starts tetherd again. */
        if (listen_fd < 0)
                unlink(path);
        close(ssrc.fd);
        return 0;
}

tether_ret_t server_watch_input(loop_source *src)
{
        src->removed = false;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = src };
        return server_epoll() >= 0 && epoll_ctl(epfd, EPOLL_CTL_ADD, src->fd, &ev) == 0 ? TETHER_SUCCESS
                                                                                       : TETHER_ERR_NO_RESOURCES;
}

void server_unwatch(loop_source *src)
{
        src->removed = true;
        if (epfd >= 0)
                epoll_ctl(epfd, EPOLL_CTL_DEL, src->fd, NULL);
}

tether_ret_t server_watch(loop_source *src)
{
        struct epoll_event ev = { .events = 0, .data.ptr = src }; /* hang-ups are always reported */
        return server_epoll() >= 0 && epoll_ctl(epfd, EPOLL_CTL_ADD, src->fd, &ev) == 0 ? TETHER_SUCCESS
                                                                                       : TETHER_ERR_NO_RESOURCES;
}

static pthread_mutex_t retired_lock = PTHREAD_MUTEX_INITIALIZER;
static loop_source *retired;

void server_retire(loop_source *src, void *obj)
{
        pthread_mutex_lock(&retired_lock);
        src->retire_obj = obj;
        src->retire_next = retired;
        retired = src;
        pthread_mutex_unlock(&retired_lock);
}

void server_reap_retired(void)
{
        pthread_mutex_lock(&retired_lock);
        loop_source *r = retired;
        retired = NULL;
        pthread_mutex_unlock(&retired_lock);
        while (r) {
                loop_source *next = r->retire_next;
                r->removed = true;
                if (epfd >= 0)
                        epoll_ctl(epfd, EPOLL_CTL_DEL, r->fd, NULL);
                close(r->fd);
                free(r->retire_obj);
                r = next;
        }
}

void server_close_sessions(void)
{
        /* Sessions still open at exit: release them so clients see the
         * hang-up and leak checkers see a clean exit. */
        unload_waits_tick(true);
        while (n_live)
                session_close(live[0]);
        for (size_t i = 0; i < n_closing; i++)
                session_unref(closing[i]);
        n_closing = 0;
        free(live);
        live = NULL;
        free(closing);
        closing = NULL;
        budget_shutdown();
        if (epfd >= 0)
                close(epfd);
        epfd = -1;
}
