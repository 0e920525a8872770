/* SPDX-License-Identifier: MIT */
/*
 * The harness's sessions: the part of tetherd's session protocol
 * (docs/wire.md) a driver's client needs, served on a work loop of the
 * harness's own, so the test's side is libtether itself. OPEN hands the
 * connection to the service's loop exactly as tetherd --in-process does
 * (user_client_open), so every call after it is the runtime's code on
 * both ends. A session is the runtime's env_caller; its notification
 * ports are where async completions go (env_port_send).
 */
#include "harness/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "core/matching.h"
#include "wire/message.h"
#include "wire/scratch.h"
#include "wire/reason.h"

struct env_caller {
        atomic_uint refs;
        tether_test *t;
        uint64_t id;
        tether_task task;
        atomic_uint n_async;
        log_limit log;
        char who[48];
        int fd;                        /* closed with the last reference */
        pthread_mutex_t send_lock;     /* replies come from the server and from services' loops */
        loop_source src;
        bool hello;                    /* the server's thread only */
        env_caller *next;              /* t->sessions (t->lock) */
};

struct hport {
        uint64_t id;
        env_caller *owner;             /* not referenced: ports go when their session does */
        int fd;                        /* ours: non-blocking, write only */
        hport *next;                    /* t->ports (t->lock) */
};

/* The server's thread only. */
static uint8_t rx[WIRE_MAX_MESSAGE];
static wire_msg tx;

/* ---- a session as the runtime sees it ---- */

env_caller *env_caller_ref(env_caller *c)
{
        atomic_fetch_add(&c->refs, 1);
        return c;
}

void env_caller_unref(env_caller *c)
{
        if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
                return;
        log_limit_flush(&c->log, c->who);
        log_limit_destroy(&c->log);
        pthread_mutex_destroy(&c->send_lock);
        close(c->fd);
        free(c);
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
        return &c->log;
}

const char *env_caller_who(const env_caller *c)
{
        return c->who;
}

atomic_uint *env_caller_async(env_caller *c)
{
        return &c->n_async;
}

static hport *find_port_locked(tether_test *t, uint64_t id)
{
        for (hport *p = t->ports; p; p = p->next)
                if (p->id == id)
                        return p;
        return NULL;
}

bool env_caller_port_owned(env_caller *c, uint64_t port_id)
{
        pthread_mutex_lock(&c->t->lock);
        hport *p = find_port_locked(c->t, port_id);
        bool owned = p && p->owner == c;
        pthread_mutex_unlock(&c->t->lock);
        return owned;
}

tether_ret_t env_port_send(uint64_t port_id, const wire_msg *m)
{
        tether_test *t = harness;
        if (!t)
                return TETHER_ERR_NOT_ATTACHED; /* a driver's thread outliving its stop() */
        pthread_mutex_lock(&t->lock);
        hport *p = find_port_locked(t, port_id);
        tether_ret_t r = p ? wire_send(p->fd, m, -1) : TETHER_ERR_NOT_ATTACHED;
        pthread_mutex_unlock(&t->lock);
        /* A client that does not drain its port loses messages, as with
         * tetherd: a driver is never held up by it, and is told
         * (env.h: TETHER_ERR_NO_SPACE, or TETHER_ERR_NOT_ATTACHED for a port
         * its client closed). */
        if (r == TETHER_SUCCESS)
                return r;
        return r == TETHER_ERR_NOT_RESPONDING ? TETHER_ERR_NO_SPACE : TETHER_ERR_NOT_ATTACHED;
}

static void session_send(env_caller *c, const wire_msg *m, int fd)
{
        pthread_mutex_lock(&c->send_lock);
        tether_ret_t r = wire_send(c->fd, m, fd);
        pthread_mutex_unlock(&c->send_lock);
        if (r != TETHER_SUCCESS && r != TETHER_ERR_NOT_ATTACHED)
                log_limited(&c->log, LOG_LVL_WARN, c->who, "tether-test: %s: reply lost: %s", c->who,
                            tether_strerror(r));
}

static void reply_status(env_caller *c, uint16_t type, uint32_t serial, tether_ret_t r)
{
        wire_msg m;
        wire_msg_init(&m, type | WIRE_REPLY_FLAG, serial, r);
        wire_msg_finish(&m);
        session_send(c, &m, -1);
}

/* tx, built by a handler on the server's thread. */
static void reply_tx(env_caller *c, const wire_header *h, int fd)
{
        if (wire_msg_finish(&tx) != TETHER_SUCCESS)
                reply_status(c, h->type, h->serial, TETHER_ERR_MESSAGE_TOO_LARGE);
        else
                session_send(c, &tx, fd);
}

void env_caller_open_reply(env_caller *c, uint32_t serial, tether_ret_t r, uint64_t connection_id, int client_fd)
{
        if (r != TETHER_SUCCESS) {
                reply_status(c, WIRE_OPEN, serial, r);
                return;
        }
        wire_msg *m = wire_scratch(WIRE_SCRATCH_OPEN); /* a service's loop: not 64 KiB of its stack */
        if (!m) {
                reply_status(c, WIRE_OPEN, serial, TETHER_ERR_NO_MEMORY);
                return;
        }
        wire_msg_init(m, WIRE_OPEN | WIRE_REPLY_FLAG, serial, r);
        wire_put_u64(m, connection_id);
        wire_msg_finish(m);
        session_send(c, m, client_fd);
}

void env_caller_connection_closed(env_caller *c)
{
        /* tetherd's per-session limits: the harness keeps none. */
}

void env_caller_client_fd_passed(env_caller *c)
{
}

/* No uid budgets here (they are tetherd's); a driver's data queues are
 * bounded per session by the runtime itself, as in a driver host. */
tether_ret_t env_caller_charge_fds(env_caller *c, int n)
{
        return TETHER_SUCCESS;
}

/* ---- requests ---- */

static void handle_hello(env_caller *c, const wire_header *h, wire_reader *rd)
{
        uint32_t abi = wire_get_u32(rd), zero = wire_get_u32(rd);
        if (wire_reader_done(rd) != TETHER_SUCCESS || zero || (abi != 32 && abi != 64) || c->hello) {
                reply_status(c, h->type, h->serial, TETHER_ERR_BAD_ARGUMENT);
                return;
        }
        c->task.abi_word_bits = abi;
        c->hello = true;
        wire_msg_init(&tx, h->type | WIRE_REPLY_FLAG, h->serial, TETHER_SUCCESS);
        wire_put_u64(&tx, c->id);
        wire_put_u64(&tx, HARNESS_ROOT_ID);
        reply_tx(c, h, -1);
}

static void handle_get_property(env_caller *c, const wire_header *h, wire_reader *rd)
{
        uint64_t id = wire_get_u64(rd);
        size_t klen = rd->left;
        const uint8_t *kb = wire_get_bytes(rd, klen);
        if (rd->bad || klen > 1024 || (klen && memchr(kb, 0, klen))) {
                reply_status(c, h->type, h->serial, TETHER_ERR_BAD_ARGUMENT);
                return;
        }
        char key[1025];
        memcpy(key, kb, klen);
        key[klen] = '\0';
        tether_test *t = c->t;
        tether_value *v = NULL;
        pthread_mutex_lock(&t->lock);
        hentry *e = harness_lookup_locked(t, id, NULL);
        tether_ret_t r = !e ? TETHER_ERR_NOT_FOUND : klen ? tether_value_dict_get(e->props, key, &v) : TETHER_SUCCESS;
        if (r == TETHER_SUCCESS)
                v = tether_value_ref(klen ? v : e->props);
        pthread_mutex_unlock(&t->lock);
        if (r != TETHER_SUCCESS) {
                reply_status(c, h->type, h->serial, r);
                return;
        }
        wire_msg_init(&tx, h->type | WIRE_REPLY_FLAG, h->serial, TETHER_SUCCESS);
        wire_put_value(&tx, v);
        tether_value_unref(v);
        reply_tx(c, h, -1);
}

/* The running service with this id, referenced; or why not. */
static tether_service *service_for(tether_test *t, uint64_t id, tether_test_service **ret_h, tether_ret_t *ret_err)
{
        tether_test_service *h = NULL;
        tether_service *s = NULL;
        pthread_mutex_lock(&t->lock);
        hentry *e = harness_lookup_locked(t, id, &h);
        if (!e)
                *ret_err = TETHER_ERR_NOT_FOUND;
        else if (!h)
                *ret_err = TETHER_ERR_UNSUPPORTED; /* a nub: no driver owns it */
        else
                s = service_ref(h->rt);
        pthread_mutex_unlock(&t->lock);
        *ret_h = h;
        return s;
}

typedef struct set_props_job {
        env_caller *c;
        tether_service *s;
        tether_value *dict;
        wire_header h;
} set_props_job;

/* A refusal's reason, when the wire admits it, as tetherd sends it: the
 * reply's body. A service's loop may send one: its own buffer. */
static void reply_reason(env_caller *c, uint16_t type, uint32_t serial, tether_ret_t r, const char *reason)
{
        size_t n = reason ? strlen(reason) : 0;
        if (r == TETHER_SUCCESS || !wire_reason_valid(reason, n)) {
                reply_status(c, type, serial, r);
                return;
        }
        wire_msg *m = wire_scratch(WIRE_SCRATCH_SESSION);
        if (!m) {
                reply_status(c, type, serial, r);
                return;
        }
        wire_msg_init(m, type | WIRE_REPLY_FLAG, serial, r);
        wire_put_bytes(m, reason, n);
        wire_msg_finish(m);
        session_send(c, m, -1);
}

static void run_set_props(void *arg)
{
        set_props_job *j = arg;
        char reason[WIRE_MAX_REASON + 1];
        /* The session's task is set at accept and HELLO, both before any
         * request: read-only from here on. */
        tether_ret_t r = service_set_properties(j->s, &j->c->task, j->dict, reason);
        reply_reason(j->c, j->h.type, j->h.serial, r, reason);
        tether_value_unref(j->dict);
        service_unref(j->s);
        env_caller_unref(j->c);
        free(j);
}

static void handle_set_properties(env_caller *c, const wire_header *h, wire_reader *rd)
{
        uint64_t id = wire_get_u64(rd);
        tether_value *dict = NULL;
        tether_ret_t r = rd->bad ? TETHER_ERR_BAD_ARGUMENT : wire_get_value(rd, &dict);
        if (r == TETHER_SUCCESS && tether_value_get_type(dict) != TETHER_TYPE_DICT)
                r = TETHER_ERR_BAD_ARGUMENT;
        tether_test_service *hs = NULL;
        tether_service *s = r == TETHER_SUCCESS ? service_for(c->t, id, &hs, &r) : NULL;
        /* The bundle's access policy first, as tetherd: the driver then
         * decides each key. */
        const manifest *m = s ? hs->bundle->m : NULL;
        char why[WIRE_MAX_REASON + 1];
        if (m && manifest_write_refused(m, c->task.uid, c->task.gid, why, sizeof(why))) {
                service_unref(s);
                tether_value_unref(dict);
                reply_reason(c, h->type, h->serial, TETHER_ERR_NOT_PRIVILEGED, why);
                return;
        }
        set_props_job *j = s ? malloc(sizeof(*j)) : NULL;
        if (s && !j)
                r = TETHER_ERR_NO_MEMORY;
        if (j) {
                /* The hook is driver code: on the service's loop, which replies. */
                *j = (set_props_job){ .c = env_caller_ref(c), .s = s, .dict = dict, .h = *h };
                if (workloop_post(s->loop, 0, run_set_props, j) == TETHER_SUCCESS)
                        return;
                env_caller_unref(c);
                free(j);
                r = TETHER_ERR_NOT_ATTACHED;
        }
        service_unref(s);
        tether_value_unref(dict);
        reply_status(c, h->type, h->serial, r);
}

static void handle_get_matching(env_caller *c, const wire_header *h, wire_reader *rd)
{
        tether_value *matching = NULL;
        tether_ret_t r = wire_get_value(rd, &matching);
        if (r == TETHER_SUCCESS)
                r = matching_validate(matching);
        if (r != TETHER_SUCCESS) {
                tether_value_unref(matching);
                reply_status(c, h->type, h->serial, r);
                return;
        }
        tether_test *t = c->t;
        wire_msg_init(&tx, h->type | WIRE_REPLY_FLAG, h->serial, TETHER_SUCCESS);
        pthread_mutex_lock(&t->lock);
        /* Oldest first, as a walk of tetherd's tree finds a provider before
         * what attached below it. */
        for (int pass = 0; pass < 2; pass++) {
                for (tether_test_nub *n = t->nubs; pass == 0 && n; n = n->next)
                        if (!n->terminated && matching_match(matching, &n->e, &harness_entry_view))
                                wire_put_u64(&tx, n->e.id);
                for (tether_test_service *s = t->services; pass == 1 && s; s = s->next)
                        if (harness_service_live_locked(s) && matching_match(matching, &s->e, &harness_entry_view))
                                wire_put_u64(&tx, s->e.id);
        }
        pthread_mutex_unlock(&t->lock);
        tether_value_unref(matching);
        reply_tx(c, h, -1);
}

static void handle_open(env_caller *c, const wire_header *h, wire_reader *rd)
{
        uint64_t id = wire_get_u64(rd);
        uint32_t type = wire_get_u32(rd), options = wire_get_u32(rd);
        tether_ret_t r = wire_reader_done(rd);
        if (r == TETHER_SUCCESS && (options & ~TETHER_OPEN_EXCLUSIVE))
                r = TETHER_ERR_BAD_ARGUMENT;
        tether_test_service *hs = NULL;
        tether_service *s = r == TETHER_SUCCESS ? service_for(c->t, id, &hs, &r) : NULL;
        /* The bundle's access policy, as tetherd applies it before the
         * driver hears of the open. */
        if (s && hs->bundle->m && !manifest_may_open(hs->bundle->m, type, c->task.uid, c->task.gid)) {
                log_limited(&c->log, LOG_LVL_WARN, c->who, "tether-test: %s: uid %u may not open type %u of %s",
                            c->who, (unsigned)c->task.uid, type, hs->bundle->m->bundle_id);
                s = service_unref(s);
                r = TETHER_ERR_NOT_PRIVILEGED;
        }
        open_request *req = s ? calloc(1, sizeof(*req)) : NULL;
        int sv[2] = { -1, -1 };
        if (s)
                r = req ? wire_channel_pair(false, sv) : TETHER_ERR_NO_MEMORY;
        if (s && r == TETHER_SUCCESS) {
                *req = (open_request){ .caller = env_caller_ref(c), .service = s, .serial = h->serial,
                                       .type = type, .options = options, .fds = { sv[0], sv[1] } };
                /* init_with_task and start are driver code: on the service's
                 * loop, which also replies. */
                if (workloop_post(s->loop, 0, user_client_open, req) == TETHER_SUCCESS)
                        return;
                env_caller_unref(c);
                close(sv[0]);
                close(sv[1]);
                r = TETHER_ERR_NOT_ATTACHED;
        }
        free(req);
        service_unref(s);
        reply_status(c, h->type, h->serial, r);
}

static void handle_port_create(env_caller *c, const wire_header *h, wire_reader *rd)
{
        int fds[2] = { -1, -1 };
        hport *p = NULL;
        tether_ret_t r = wire_reader_done(rd);
        if (r == TETHER_SUCCESS && !(p = calloc(1, sizeof(*p))))
                r = TETHER_ERR_NO_MEMORY;
        if (r == TETHER_SUCCESS)
                r = wire_channel_pair(true, fds);
        if (r != TETHER_SUCCESS) {
                free(p);
                reply_status(c, h->type, h->serial, r);
                return;
        }
        tether_test *t = c->t;
        pthread_mutex_lock(&t->lock);
        *p = (hport){ .id = t->next_port++, .owner = c, .fd = fds[0], .next = t->ports };
        t->ports = p;
        pthread_mutex_unlock(&t->lock);
        wire_msg_init(&tx, h->type | WIRE_REPLY_FLAG, h->serial, TETHER_SUCCESS);
        wire_put_u64(&tx, p->id);
        reply_tx(c, h, fds[1]);
        close(fds[1]);
}

static void handle_message(env_caller *c, size_t len, bool had_fds)
{
        wire_header h;
        tether_ret_t r = wire_header_check(rx, len, &h);
        if (r != TETHER_SUCCESS) {
                reply_status(c, 0, 0, r);
                return;
        }
        if (had_fds) {
                reply_status(c, h.type, h.serial, TETHER_ERR_BAD_ARGUMENT);
                return;
        }
        wire_reader rd;
        wire_reader_init(&rd, rx + WIRE_HEADER_SIZE, len - WIRE_HEADER_SIZE);
        if (!c->hello && h.type != WIRE_HELLO) {
                reply_status(c, h.type, h.serial, TETHER_ERR_NOT_OPEN);
                return;
        }
        switch (h.type) {
        case WIRE_HELLO:
                handle_hello(c, &h, &rd);
                break;
        case WIRE_GET_PROPERTY:
                handle_get_property(c, &h, &rd);
                break;
        case WIRE_SET_PROPERTIES:
                handle_set_properties(c, &h, &rd);
                break;
        case WIRE_GET_MATCHING:
                handle_get_matching(c, &h, &rd);
                break;
        case WIRE_OPEN:
                handle_open(c, &h, &rd);
                break;
        case WIRE_PORT_CREATE:
                handle_port_create(c, &h, &rd);
                break;
        default:
                /* tetherd's own business (the tree, notifications, probes,
                 * bundles): a harness has none of it. */
                reply_status(c, h.type, h.serial, TETHER_ERR_UNSUPPORTED);
                break;
        }
}

/* ---- sessions on the server's loop ---- */

static void unref_job(void *arg)
{
        env_caller_unref(arg);
}

/* Off the loop and the list, its ports closed; freed in a later job, so
 * events of this epoll batch that still name it are skipped first. */
static void session_close(env_caller *c)
{
        tether_test *t = c->t;
        workloop_remove_source(t->server, &c->src);
        pthread_mutex_lock(&t->lock);
        for (env_caller **pp = &t->sessions; *pp; pp = &(*pp)->next) {
                if (*pp == c) {
                        *pp = c->next;
                        break;
                }
        }
        for (hport **pp = &t->ports; *pp;) {
                hport *p = *pp;
                if (p->owner == c) {
                        *pp = p->next;
                        close(p->fd);
                        free(p);
                } else {
                        pp = &p->next;
                }
        }
        pthread_mutex_unlock(&t->lock);
        shutdown(c->fd, SHUT_RDWR);
        if (workloop_post(t->server, 0, unref_job, c) != TETHER_SUCCESS)
                env_caller_unref(c); /* the loop is finishing: no batch is left to name it */
}

static void session_readable(loop_source *src, uint32_t events)
{
        env_caller *c = (env_caller *)((char *)src - offsetof(env_caller, src));
        size_t len = 0;
        bool refused = false;
        tether_ret_t r = wire_recv_nofds(src->fd, rx, sizeof(rx), &len, &refused);
        if (r == TETHER_ERR_NOT_READY)
                return;
        if (r == TETHER_ERR_MESSAGE_TOO_LARGE) {
                reply_status(c, 0, 0, r);
                return;
        }
        if (r != TETHER_SUCCESS) {
                session_close(c); /* hung up */
                return;
        }
        handle_message(c, len, refused);
}

static void accept_ready(loop_source *src, uint32_t events)
{
        tether_test *t = (tether_test *)((char *)src - offsetof(tether_test, listener));
        for (;;) {
                int fd = accept4(src->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0)
                        return; /* EAGAIN, or out of fds: the client's connect then fails */
                struct ucred cred;
                socklen_t cl = sizeof(cred);
                env_caller *c = calloc(1, sizeof(*c));
                if (!c || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
                        free(c);
                        close(fd);
                        continue;
                }
                atomic_init(&c->refs, 1); /* the server's, until it hangs up */
                c->t = t;
                c->fd = fd;
                c->task = (tether_task){ .pid = cred.pid, .uid = cred.uid, .gid = cred.gid, .abi_word_bits = 64 };
                log_limit_init(&c->log);
                pthread_mutex_init(&c->send_lock, NULL);
                c->src = (loop_source){ .fd = fd, .fn = session_readable };
                pthread_mutex_lock(&t->lock);
                /* tether_test_session_open is connecting: it is who the
                 * test asked for, not who the process is. */
                if (t->pending) {
                        c->task.uid = t->pending_task.uid;
                        c->task.gid = t->pending_task.gid;
                        c->task.privileges = t->pending_task.privileges;
                } else if (c->task.uid == 0) {
                        c->task.privileges = TETHER_PRIVILEGE_ADMINISTRATOR; /* tetherd's rule, no admin group */
                }
                c->id = t->next_session++;
                c->next = t->sessions;
                t->sessions = c;
                pthread_mutex_unlock(&t->lock);
                snprintf(c->who, sizeof(c->who), "client pid %d uid %u", (int)c->task.pid, (unsigned)c->task.uid);
                if (workloop_add_source(t->server, &c->src) != TETHER_SUCCESS)
                        session_close(c);
        }
}

static void add_listener(void *arg)
{
        tether_test *t = arg;
        if (workloop_add_source(t->server, &t->listener) != TETHER_SUCCESS)
                log_err("tether-test: cannot watch the session socket; sessions will not open");
}

tether_ret_t tether_test_session_open(tether_test *t, const tether_task *as, tether_session **ret)
{
        if (!t || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        tether_task me = harness_process_task();
        pthread_mutex_lock(&t->open_lock);
        pthread_mutex_lock(&t->lock);
        t->pending = true;
        t->pending_task = as ? *as : me;
        pthread_mutex_unlock(&t->lock);
        /* Accepted and answered (HELLO) before this returns: the identity
         * is taken while it is pending. */
        tether_ret_t r = tether_session_open(t->path, ret);
        pthread_mutex_lock(&t->lock);
        t->pending = false;
        pthread_mutex_unlock(&t->lock);
        pthread_mutex_unlock(&t->open_lock);
        return r;
}

tether_ret_t server_start(tether_test *t)
{
        const char *tmp = getenv("TMPDIR");
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        /* The socket's path must fit sun_path: a long TMPDIR falls back to /tmp. */
        if (!tmp || !*tmp || strlen(tmp) + sizeof("/tether-harness-XXXXXX/s.sock") > sizeof(a.sun_path))
                tmp = "/tmp";
        snprintf(t->dir, sizeof(t->dir), "%.*s/tether-harness-XXXXXX", (int)(sizeof(t->dir) - 32), tmp);
        if (!mkdtemp(t->dir)) {
                log_err("tether-test: cannot make a folder for the session socket in %s: %s", tmp, strerror(errno));
                return TETHER_ERR_IO;
        }
        snprintf(t->path, sizeof(t->path), "%s/s.sock", t->dir);
        strcpy(a.sun_path, t->path);
        t->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        tether_ret_t r = TETHER_SUCCESS;
        if (t->listen_fd < 0 || bind(t->listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            listen(t->listen_fd, 16) < 0) {
                log_err("tether-test: cannot listen on %s: %s", t->path, strerror(errno));
                r = TETHER_ERR_IO;
        }
        if (r == TETHER_SUCCESS)
                r = workloop_new("tether-test", &t->server);
        if (r == TETHER_SUCCESS) {
                t->listener = (loop_source){ .fd = t->listen_fd, .fn = accept_ready };
                r = workloop_post(t->server, 0, add_listener, t);
        }
        if (r != TETHER_SUCCESS) {
                if (t->server) {
                        workloop_finish(t->server, NULL, NULL);
                        workloop_join(t->server);
                        workloop_free(t->server);
                        t->server = NULL;
                }
                if (t->listen_fd >= 0)
                        close(t->listen_fd);
                t->listen_fd = -1;
                unlink(t->path);
                rmdir(t->dir);
        }
        return r;
}

static void close_all(void *arg)
{
        tether_test *t = arg;
        workloop_remove_source(t->server, &t->listener);
        close(t->listen_fd);
        t->listen_fd = -1;
        for (;;) {
                pthread_mutex_lock(&t->lock);
                env_caller *c = t->sessions;
                pthread_mutex_unlock(&t->lock);
                if (!c)
                        break;
                session_close(c);
        }
}

void server_stop(tether_test *t)
{
        (void)workloop_post(t->server, 0, close_all, t);
        workloop_finish(t->server, NULL, NULL);
        workloop_join(t->server);
        workloop_free(t->server);
        t->server = NULL;
        /* Ports of sessions the loop never saw close: none should be left. */
        while (t->ports) {
                hport *p = t->ports;
                t->ports = p->next;
                close(p->fd);
                free(p);
        }
        unlink(t->path);
        rmdir(t->dir);
}
