/* SPDX-License-Identifier: MIT */
/*
 * tether-driverhost: one service of one bundle, in a process of its own
 * (docs/bundles.md). tetherd starts it with its channel on fd 3, tells it
 * which driver of which library to start on which nub, hands it each
 * connection's socket as clients open the service, and watches it: if it
 * dies, only this service's clients notice.
 *
 * Threads: the main thread reads the channel and answers what it can at
 * once; everything that runs driver code is posted to the service's work
 * loop, exactly as in tetherd. The driver API's registry half (host/env.h)
 * becomes messages to tetherd; the few that need an answer (publishing a
 * nub, a client's notification port) wait for it on the loop's thread
 * while the main thread keeps reading.
 */
#include "host/runtime.h"

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log-journal.h"
#include "core/log.h"
#include "host/bundle-lib.h"
#include "host/probes.h"
#include "usbtmc/usbtmc.h"
#include "usbtmc/backend-libusb.h"
#include "wire/message.h"
#include "wire/reason.h"

#include <sys/socket.h>

#define CHANNEL_FD 3

static tether_service *svc;                /* the one service this host runs */
static const char *bundle_id;              /* argv[1], from tetherd: its lines name it */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* everything below */
static tether_value *table;                /* the service's property table, as this host set it */
static tether_value *provider;             /* the nub's table, as it was at start */

/* ---- sending ---- */

static pthread_mutex_t send_lock = PTHREAD_MUTEX_INITIALIZER;

/* The channel is blocking: tetherd reads it from its main loop and a
 * host that cannot tell it things has nothing better to do than wait. */
static tether_ret_t send_msg(wire_msg *m, int fd)
{
        if (wire_msg_finish(m) != TETHER_SUCCESS)
                return TETHER_ERR_MESSAGE_TOO_LARGE;
        pthread_mutex_lock(&send_lock);
        tether_ret_t r = wire_send(CHANNEL_FD, m, fd);
        pthread_mutex_unlock(&send_lock);
        return r;
}

static void reply(uint16_t type, uint32_t serial, tether_ret_t r)
{
        wire_msg m;
        wire_msg_init(&m, type | WIRE_REPLY_FLAG, serial, r);
        send_msg(&m, -1);
}

/* ---- asking tetherd and waiting (the loop thread only) ---- */

static pthread_cond_t rpc_done = PTHREAD_COND_INITIALIZER;
static struct {
        uint32_t serial;           /* waited for; 0 when none */
        bool done;
        tether_ret_t result;
        uint64_t u64;
        int fd;
} rpc;
static uint32_t next_serial = 1;

static tether_ret_t ask(wire_msg *m, uint64_t *ret_u64, int *ret_fd)
{
        wire_header h;
        pthread_mutex_lock(&lock);
        uint32_t serial = next_serial++;
        memcpy(&h, m->buf, sizeof(h));
        h.serial = serial;
        memcpy(m->buf, &h, sizeof(h));
        rpc.serial = serial;
        rpc.done = false;
        rpc.fd = -1;
        pthread_mutex_unlock(&lock);
        tether_ret_t r = send_msg(m, -1);
        pthread_mutex_lock(&lock);
        while (r == TETHER_SUCCESS && !rpc.done)
                pthread_cond_wait(&rpc_done, &lock);
        if (r == TETHER_SUCCESS) {
                r = rpc.result;
                if (ret_u64)
                        *ret_u64 = rpc.u64;
                if (ret_fd)
                        *ret_fd = rpc.fd;
                else if (rpc.fd >= 0)
                        close(rpc.fd);
        }
        rpc.serial = 0;
        pthread_mutex_unlock(&lock);
        return r;
}

static void answered(const wire_header *h, wire_reader *rd, int fd)
{
        pthread_mutex_lock(&lock);
        if (h->serial && h->serial == rpc.serial && !rpc.done) {
                rpc.result = h->result;
                rpc.u64 = rd->left >= 8 ? wire_get_u64(rd) : 0;
                rpc.fd = fd;
                rpc.done = true;
                pthread_cond_signal(&rpc_done);
                fd = -1;
        }
        pthread_mutex_unlock(&lock);
        if (fd >= 0)
                close(fd);
}

/* ---- callers: the sessions that opened connections here ---- */

/* Warnings are limited per uid, as in tetherd: a client reconnecting (a
 * new session) does not buy itself a new burst. Kept for the host's life:
 * a host serves few users. */
typedef struct uid_log {
        uid_t uid;
        log_limit log;
        char who[24];
        struct uid_log *next;
} uid_log;
static uid_log *uid_logs;          /* lock */

struct env_caller {
        atomic_uint refs;
        uint64_t id;
        tether_task task;
        atomic_uint n_async;
        uid_log *log;
        env_caller *next;          /* lock */
};

static env_caller *callers;        /* lock: one record per session, while referenced */

/* A notification port of a session, as tetherd passed it. */
typedef struct port {
        uint64_t id, session;
        int fd;
        bool overflowed;           /* full: dropping until it drains */
        uint64_t dropped;          /* messages lost this overflow */
        struct port *next;
} port;
static port *ports;                /* lock */

env_caller *env_caller_ref(env_caller *c)
{
        atomic_fetch_add(&c->refs, 1);
        return c;
}

void env_caller_unref(env_caller *c)
{
        pthread_mutex_lock(&lock);
        bool last = atomic_fetch_sub(&c->refs, 1) == 1;
        if (last)
                for (env_caller **pp = &callers; *pp; pp = &(*pp)->next)
                        if (*pp == c) {
                                *pp = c->next;
                                break;
                        }
        pthread_mutex_unlock(&lock);
        if (last)
                free(c);
}

static env_caller *caller_for(uint64_t session, const tether_task *task)
{
        pthread_mutex_lock(&lock);
        env_caller *c = callers;
        while (c && c->id != session)
                c = c->next;
        if (c) {
                atomic_fetch_add(&c->refs, 1);
        } else if ((c = calloc(1, sizeof(*c)))) {
                uid_log *l = uid_logs;
                while (l && l->uid != task->uid)
                        l = l->next;
                if (!l && (l = calloc(1, sizeof(*l)))) {
                        l->uid = task->uid;
                        log_limit_init(&l->log);
                        snprintf(l->who, sizeof(l->who), "uid %u", (unsigned)task->uid);
                        l->next = uid_logs;
                        uid_logs = l;
                }
                if (!l) {
                        free(c);
                        c = NULL;
                } else {
                        atomic_init(&c->refs, 1);
                        c->id = session;
                        c->task = *task;
                        c->log = l;
                        c->next = callers;
                        callers = c;
                }
        }
        pthread_mutex_unlock(&lock);
        return c;
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
        return &c->log->log;
}

const char *env_caller_who(const env_caller *c)
{
        return c->log->who;
}

atomic_uint *env_caller_async(env_caller *c)
{
        return &c->n_async;
}

static port *find_port_locked(uint64_t id)
{
        for (port *p = ports; p; p = p->next)
                if (p->id == id)
                        return p;
        return NULL;
}

static void port_free_locked(port **link)
{
        port *p = *link;
        *link = p->next;
        close(p->fd);
        free(p);
}

/* Forget the ports whose client has closed them: their fds are ours until
 * the session goes, and a client that makes and closes ports, naming each
 * in a call, would otherwise have this host hold an fd for every one. Their
 * peer gone, the socket reads as hung up. */
static void prune_ports_locked(void)
{
        for (port **pp = &ports; *pp;) {
                struct pollfd pfd = { .fd = (*pp)->fd, .events = 0 };
                if (poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)))
                        port_free_locked(pp);
                else
                        pp = &(*pp)->next;
        }
}

/* A port is this session's if tetherd says so; it passes the port's fd with
 * its answer, kept for the results to come. */
bool env_caller_port_owned(env_caller *c, uint64_t port_id)
{
        pthread_mutex_lock(&lock);
        port *p = find_port_locked(port_id);
        bool known = p != NULL, owned = p && p->session == c->id;
        /* Only before taking another fd: a call naming a port we have
         * costs no system call. */
        if (!known)
                prune_ports_locked();
        pthread_mutex_unlock(&lock);
        if (known)
                return owned;
        wire_msg m;
        wire_msg_init(&m, WIRE_HOST_PORT, 0, 0);
        wire_put_u64(&m, c->id);
        wire_put_u64(&m, port_id);
        int fd = -1;
        if (ask(&m, NULL, &fd) != TETHER_SUCCESS || fd < 0)
                return false;
        p = calloc(1, sizeof(*p));
        if (!p) {
                close(fd);
                return false;
        }
        *p = (port){ .id = port_id, .session = c->id, .fd = fd };
        pthread_mutex_lock(&lock);
        p->next = ports;
        ports = p;
        pthread_mutex_unlock(&lock);
        return true;
}

static env_caller *find_caller_locked(uint64_t session)
{
        for (env_caller *c = callers; c; c = c->next)
                if (c->id == session)
                        return c;
        return NULL;
}

tether_ret_t env_caller_charge_fds(env_caller *c, int n)
{
        return TETHER_SUCCESS;
}

tether_ret_t env_port_send(uint64_t port_id, const wire_msg *m)
{
        pthread_mutex_lock(&lock);
        port **link = &ports;
        while (*link && (*link)->id != port_id)
                link = &(*link)->next;
        port *p = *link;
        /* Never blocks: the port's socket is non-blocking, as tetherd's own
         * end is. A client that does not drain its port loses messages, and
         * nothing is queued for it here: said once an overflow, as tetherd
         * says it, and what it lost once it reads again. */
        tether_ret_t r = p ? wire_send(p->fd, m, -1) : TETHER_ERR_NOT_ATTACHED;
        env_caller *c = p ? find_caller_locked(p->session) : NULL;
        if (r == TETHER_ERR_NOT_RESPONDING) {
                if (!p->overflowed && c)
                        env_warn(c, "client pid %d: notification port %llu is full; dropping messages until it drains",
                                 (int)c->task.pid, (unsigned long long)p->id);
                p->overflowed = true;
                p->dropped++;
                r = TETHER_ERR_NO_SPACE;
        } else if (r == TETHER_SUCCESS && p->overflowed) {
                if (c)
                        env_warn(c, "client pid %d: notification port %llu drained; %llu messages were dropped",
                                 (int)c->task.pid, (unsigned long long)p->id, (unsigned long long)p->dropped);
                p->overflowed = false;
                p->dropped = 0;
        } else if (p && r != TETHER_SUCCESS) {
                port_free_locked(link); /* the client closed it: nothing can reach it again */
        }
        pthread_mutex_unlock(&lock);
        return r == TETHER_SUCCESS || r == TETHER_ERR_NO_SPACE ? r : TETHER_ERR_NOT_ATTACHED;
}

static void forget_session(uint64_t session)
{
        pthread_mutex_lock(&lock);
        for (port **pp = &ports; *pp;) {
                if ((*pp)->session == session)
                        port_free_locked(pp);
                else
                        pp = &(*pp)->next;
        }
        pthread_mutex_unlock(&lock);
}

void env_caller_open_reply(env_caller *c, uint32_t serial, tether_ret_t r, uint64_t connection_id, int client_fd)
{
        wire_msg m;
        wire_msg_init(&m, WIRE_HOST_OPEN | WIRE_REPLY_FLAG, serial, r);
        if (r == TETHER_SUCCESS)
                wire_put_u64(&m, connection_id);
        send_msg(&m, -1);
}

void env_caller_connection_closed(env_caller *c)
{
        wire_msg m;
        wire_msg_init(&m, WIRE_HOST_CLOSED, 0, 0);
        wire_put_u64(&m, c->id);
        send_msg(&m, -1);
}

void env_caller_client_fd_passed(env_caller *c)
{
        /* tetherd holds the client's end, not this process. */
}

/* ---- the service's place in the registry ---- */

void env_service_release(tether_service *s)
{
}

void env_service_open_count(tether_service *s, int delta)
{
        /* tetherd counts from the opens it forwarded and the closes told. */
}

void env_service_loop_exit(void *arg)
{
        /* The service is terminated and its last client gone: so is this
         * host. tetherd sees the channel close. */
        exit(0);
}

/* The mirror of the service's table changes (merge, or remove a key) and
 * tetherd is told the same. */
static tether_ret_t change_table(const tether_value *merge, const char *remove)
{
        pthread_mutex_lock(&lock);
        tether_value *next = NULL;
        tether_ret_t r = tether_value_copy(table, &next);
        if (r == TETHER_SUCCESS)
                r = merge ? tether_value_dict_merge(next, merge) : tether_value_dict_remove(next, remove);
        if (r == TETHER_SUCCESS) {
                tether_value_unref(table);
                table = next;
                next = NULL;
        }
        pthread_mutex_unlock(&lock);
        tether_value_unref(next);
        if (r != TETHER_SUCCESS)
                return r;
        wire_msg m;
        wire_msg_init(&m, merge ? WIRE_HOST_APPLY : WIRE_HOST_REMOVE, 0, 0);
        if (merge)
                wire_put_value(&m, merge);
        else
                wire_put_bytes(&m, remove, strlen(remove));
        return send_msg(&m, -1);
}

tether_ret_t env_service_apply(tether_service *s, const tether_value *changes)
{
        return change_table(changes, NULL);
}

tether_ret_t env_service_remove(tether_service *s, const char *key)
{
        return change_table(NULL, key);
}

static tether_ret_t copy_from(tether_value *dict, const char *key, tether_value **ret)
{
        pthread_mutex_lock(&lock);
        tether_value *v = NULL;
        tether_ret_t r = tether_value_dict_get(dict, key, &v);
        *ret = tether_value_ref(v);
        pthread_mutex_unlock(&lock);
        return r;
}

tether_ret_t env_service_copy(tether_service *s, const char *key, tether_value **ret)
{
        return copy_from(table, key, ret);
}

/* The nub's table as it was when the service started: nubs describe a
 * device, and a device does not change what it is. */
tether_ret_t env_service_provider_property(tether_service *s, const char *key, tether_value **ret)
{
        return copy_from(provider, key, ret);
}

tether_ret_t env_service_publish_nub(tether_service *s, const char *class_name, const char *name,
                                     const char *location, tether_value *props, uint64_t *ret_id)
{
        tether_value *d = NULL;
        tether_ret_t r = tether_value_new_dict(&d);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(d, "class", class_name);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(d, "name", name);
        if (r == TETHER_SUCCESS && location)
                r = tether_value_dict_set_string(d, "location", location);
        if (r == TETHER_SUCCESS && props)
                r = tether_value_dict_set(d, "props", props);
        wire_msg m;
        wire_msg_init(&m, WIRE_HOST_PUBLISH_NUB, 0, 0);
        wire_put_value(&m, d);
        tether_value_unref(d);
        uint64_t id = 0;
        if (r == TETHER_SUCCESS)
                r = ask(&m, &id, NULL);
        if (r == TETHER_SUCCESS && ret_id)
                *ret_id = id;
        return r;
}

tether_ret_t env_service_open_device(tether_service *s, tether_device_kind *ret_kind, int *ret_fd)
{
        wire_msg m;
        wire_msg_init(&m, WIRE_HOST_DEVICE, 0, 0);
        uint64_t kind = 0;
        int fd = -1;
        tether_ret_t r = ask(&m, &kind, &fd);
        if (r == TETHER_SUCCESS && (fd < 0 || (kind != TETHER_DEVICE_USBFS && kind != TETHER_DEVICE_VUSB)))
                r = TETHER_ERR_IPC;
        if (r != TETHER_SUCCESS) {
                if (fd >= 0)
                        close(fd);
                return r;
        }
        *ret_kind = (tether_device_kind)kind;
        *ret_fd = fd;
        return TETHER_SUCCESS;
}

tether_ret_t env_service_terminate_nub(tether_service *s, uint64_t nub_id)
{
        wire_msg m;
        wire_msg_init(&m, WIRE_HOST_TERMINATE_NUB, 0, 0);
        wire_put_u64(&m, nub_id);
        return ask(&m, NULL, NULL);
}

/* ---- probes: events built here, delivered by tetherd ---- */

/* Never blocks the loop that made the event: a probe that cannot keep up
 * loses events, here as in tetherd. */
void probe_emit(wire_msg *ev, const probe_layout *at, const probe_context *ctx)
{
        static __thread wire_msg m;
        size_t room = WIRE_MAX_MESSAGE - WIRE_HEADER_SIZE - 16;
        if (ev->len > room)
                ev->len = room > at->data_at ? room : at->data_at;
        if (wire_msg_finish(ev) != TETHER_SUCCESS)
                return;
        /* Events this host could not hand over: tetherd counts them as lost. */
        static atomic_uint lost;
        uint32_t lost_before = atomic_exchange(&lost, 0);
        wire_msg_init(&m, WIRE_HOST_PROBE, 0, 0);
        wire_put_u32(&m, at->kind);
        wire_put_u32(&m, lost_before);
        wire_put_u32(&m, (uint32_t)at->dropped_at);
        wire_put_u32(&m, (uint32_t)at->captured_at);
        wire_put_u32(&m, (uint32_t)at->data_at);
        wire_put_bytes(&m, ev->buf, ev->len);
        if (wire_msg_finish(&m) != TETHER_SUCCESS ||
            send(CHANNEL_FD, m.buf, m.len, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)m.len)
                atomic_fetch_add(&lost, lost_before + 1);
}

static tether_ret_t probes_wanted(wire_reader *rd)
{
        uint32_t count = wire_get_u32(rd), usb = wire_get_u32(rd);
        if (wire_reader_done(rd) != TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT;
        atomic_store(&probe_count, count);
        usbtmc_set_observer(count && usb ? probe_usb_transfer : NULL);
        return TETHER_SUCCESS;
}

/* ---- what tetherd asks ---- */

typedef struct job {
        uint16_t type;
        uint32_t serial;
        tether_value *dict;
        tether_task writer;        /* SET_PROPERTIES */
} job;

static void run_job(void *arg)
{
        job *j = arg;
        tether_ret_t r = TETHER_SUCCESS;
        char reason[WIRE_MAX_REASON + 1] = "";
        switch (j->type) {
        case WIRE_HOST_START:
                r = service_run_start(svc);
                svc->started = r == TETHER_SUCCESS;
                break;
        case WIRE_HOST_SET_PROPERTIES:
                r = service_set_properties(svc, &j->writer, j->dict, reason);
                break;
        case WIRE_HOST_TERMINATE:
                service_run_stop(svc);
                break;
        default: /* PING: the loop is alive */
                break;
        }
        if (reason[0] && r != TETHER_SUCCESS) {
                /* The driver's reason goes with its verdict, for tetherd to pass on. */
                wire_msg m;
                wire_msg_init(&m, j->type | WIRE_REPLY_FLAG, j->serial, r);
                wire_put_bytes(&m, reason, strlen(reason));
                send_msg(&m, -1);
        } else {
                reply(j->type, j->serial, r);
        }
        if (j->type == WIRE_HOST_START && r != TETHER_SUCCESS)
                exit(0); /* tetherd tries the next driver; nothing here to keep */
        if (j->type == WIRE_HOST_TERMINATE)
                service_finish_if_idle(svc);
        tether_value_unref(j->dict);
        free(j);
}

static tether_ret_t post(uint16_t type, uint32_t serial, tether_value *dict, const tether_task *writer)
{
        job *j = malloc(sizeof(*j));
        if (!j)
                return TETHER_ERR_NO_MEMORY;
        *j = (job){ .type = type, .serial = serial, .dict = dict };
        if (writer)
                j->writer = *writer;
        tether_ret_t r = svc ? workloop_post(svc->loop, 0, run_job, j) : TETHER_ERR_NOT_READY;
        if (r != TETHER_SUCCESS)
                free(j);
        return r;
}

/* Load the library, find the driver, make the service: everything but
 * start(), which runs on its loop. */
/* lib_fd: the library, opened by tetherd (its path is for messages). */
static tether_ret_t start(uint64_t id, const tether_value *what, int lib_fd)
{
        const char *lib = tether_value_dict_string(what, "library"), *cls = tether_value_dict_string(what, "driver");
        tether_value *prov = NULL, *tab = NULL;
        if (svc || !lib || !cls || tether_value_dict_get(what, "provider", &prov) != TETHER_SUCCESS ||
            tether_value_dict_get(what, "table", &tab) != TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT;
        const tether_bundle_entry *entry = NULL;
        const tether_driver *drv = NULL;
        char why[BUNDLE_LIB_WHY_SIZE] = "";
        char by_fd[32];
        snprintf(by_fd, sizeof(by_fd), "/proc/self/fd/%d", lib_fd);
        tether_ret_t found = lib_fd >= 0 ? bundle_lib_open(by_fd, &entry, why, sizeof(why)) : TETHER_ERR_NOT_FOUND;
        if (lib_fd < 0)
                snprintf(why, sizeof(why), "tetherd could not open it");
        if (found == TETHER_SUCCESS)
                found = bundle_lib_driver(entry, cls, &drv, why, sizeof(why));
        if (found != TETHER_SUCCESS) {
                log_err("bundle library %s: %s", lib, why);
                return found;
        }
        tether_service *s = calloc(1, sizeof(*s));
        if (!s)
                return TETHER_ERR_NO_MEMORY;
        atomic_init(&s->refs, 1);
        s->id = id;
        s->class_name = drv->class_name;
        s->driver = drv;
        service_runtime_init(s, bundle_id);
        s->priv = calloc(1, drv->priv_size ? drv->priv_size : 1);
        tether_ret_t r = s->priv ? workloop_new(drv->class_name, &s->loop) : TETHER_ERR_NO_MEMORY;
        if (r != TETHER_SUCCESS) {
                log_limit_destroy(&s->log);
                free(s->priv);
                free(s);
                return r;
        }
        pthread_mutex_lock(&lock);
        provider = tether_value_ref(prov);
        table = tether_value_ref(tab);
        pthread_mutex_unlock(&lock);
        svc = s;
        return TETHER_SUCCESS;
}

static void open_connection(uint32_t serial, wire_reader *rd, int fd)
{
        uint64_t session = wire_get_u64(rd);
        tether_task task;
        wire_get_task(rd, &task);
        uint32_t type = wire_get_u32(rd), options = wire_get_u32(rd);
        env_caller *c = NULL;
        open_request *req = NULL;
        tether_ret_t r = wire_reader_done(rd) != TETHER_SUCCESS || fd < 0 || !svc ? TETHER_ERR_BAD_ARGUMENT
                         : !(c = caller_for(session, &task))                    ? TETHER_ERR_NO_MEMORY
                         : !(req = calloc(1, sizeof(*req)))                      ? TETHER_ERR_NO_MEMORY
                                                                                 : TETHER_SUCCESS;
        if (r == TETHER_SUCCESS) {
                *req = (open_request){ .caller = c, .service = service_ref(svc), .serial = serial, .type = type,
                                       .options = options, .fds = { fd, -1 } };
                if (workloop_post(svc->loop, 0, user_client_open, req) == TETHER_SUCCESS)
                        return;
                service_unref(svc);
                r = TETHER_ERR_NOT_ATTACHED;
        }
        free(req);
        if (c)
                env_caller_unref(c);
        if (fd >= 0)
                close(fd);
        reply(WIRE_HOST_OPEN, serial, r);
}

static void handle(const wire_header *h, wire_reader *rd, int fd)
{
        tether_value *v = NULL;
        tether_ret_t r;
        if (h->type & WIRE_REPLY_FLAG) {
                answered(h, rd, fd);
                return;
        }
        if (h->type == WIRE_HOST_OPEN) {
                open_connection(h->serial, rd, fd);
                return;
        }
        if (h->type == WIRE_HOST_START) {
                uint64_t id = wire_get_u64(rd);
                r = wire_get_value(rd, &v);
                if (r == TETHER_SUCCESS)
                        r = start(id, v, fd);
                tether_value_unref(v);
                if (fd >= 0)
                        close(fd); /* loaded, or not: the mapping is what stays */
                if (r == TETHER_SUCCESS)
                        r = post(h->type, h->serial, NULL, NULL);
                if (r != TETHER_SUCCESS) {
                        reply(h->type, h->serial, r);
                        exit(0);
                }
                return;
        }
        if (fd >= 0)
                close(fd);
        switch (h->type) {
        case WIRE_HOST_SET_PROPERTIES: {
                tether_task writer;
                wire_get_task(rd, &writer);
                r = rd->bad ? TETHER_ERR_BAD_ARGUMENT : wire_get_value(rd, &v);
                if (r == TETHER_SUCCESS && (r = post(h->type, h->serial, v, &writer)) == TETHER_SUCCESS)
                        return;
                tether_value_unref(v);
                break;
        }
        case WIRE_HOST_TERMINATE:
        case WIRE_HOST_PING:
                r = post(h->type, h->serial, NULL, NULL);
                if (r == TETHER_SUCCESS)
                        return;
                break;
        case WIRE_HOST_SESSION_GONE:
                forget_session(wire_get_u64(rd));
                return;
        case WIRE_HOST_PROBES:
                /* Answered once in force: the next call made is seen. */
                r = probes_wanted(rd);
                break;
        default:
                r = TETHER_ERR_BAD_MESSAGE_ID;
                break;
        }
        reply(h->type, h->serial, r);
}

int main(int argc, char **argv)
{
        log_init_from_env();
        if (argc > 1)
                bundle_id = argv[1];
        /* Every line of a host is about its bundle: in the journal, each
         * carries TETHER_BUNDLE (its stderr is tetherd's, so it is the
         * journal whenever tetherd's is). */
        log_set_process_bundle(bundle_id);
        log_journal_use("tether-driverhost");
        signal(SIGPIPE, SIG_IGN);
        /* Devices come as fds from tetherd (tether_service_open_provider_device):
         * nothing here scans the bus, whatever a driver's libusb_init would do. */
        if (usbtmc_usb_no_discovery() != TETHER_SUCCESS)
                log_warn("tether-driverhost: libusb cannot be told not to scan the bus");
        static uint8_t rx[WIRE_MAX_MESSAGE];
        for (;;) {
                size_t len = 0;
                int fd = -1;
                tether_ret_t r = wire_recv(CHANNEL_FD, rx, sizeof(rx), &len, &fd);
                if (r == TETHER_ERR_MESSAGE_TOO_LARGE)
                        continue;
                if (r != TETHER_SUCCESS)
                        break; /* tetherd is gone: so is everything this host serves */
                wire_header h;
                if (wire_header_check(rx, len, &h) != TETHER_SUCCESS) {
                        if (fd >= 0)
                                close(fd);
                        continue;
                }
                wire_reader rd;
                wire_reader_init(&rd, rx + WIRE_HEADER_SIZE, len - WIRE_HEADER_SIZE);
                handle(&h, &rd, fd);
        }
        return 0;
}
