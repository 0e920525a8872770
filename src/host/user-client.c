/* SPDX-License-Identifier: MIT */
#include "host/runtime.h"

#include <tether/tether.h>

#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dispatch.h"
#include "core/log.h"
#include "core/memory.h"
#include "host/data-queue.h"
#include "host/probes.h"
#include "wire/message.h"

enum { SLOT_IN, SLOT_OUT, N_SLOTS };

/* An open async reference: from the call its method accepted until its
 * last result, its cancellation reaching the driver, or the connection's
 * close. The client names it by its port and token (words 0 and 1), so
 * one connection never has two open under the same name. */
typedef struct async_open {
        uint64_t port, token;
        bool cancelled;           /* the client ended it; its driver is told at its next send */
        struct async_open *next;
} async_open;

/* What the user client's thread builds its replies in, on its stack. */
typedef struct call_buffers {
        wire_msg tx;
        bool reply;               /* tx is a reply to send once out of the gate */
        /* Drivers cast it to their output struct (floats, doubles): it
         * must be aligned as malloc's memory is, not follow a bool. */
        _Alignas(max_align_t) uint8_t inline_out[TETHER_MAX_INLINE_STRUCT];
} call_buffers;

struct tether_user_client {
        uint64_t id;
        const tether_user_client_ops *ops;
        void *priv;
        tether_service *svc;      /* referenced */
        env_caller *caller;       /* referenced */
        tether_task task;
        int fd;                   /* the connection socket: blocking reads, sends that never wait */
        loop_thread thread;       /* blocked on fd, and in the gate for a request */
        call_buffers *buf;        /* its thread's */
        bool privileged;          /* root's or an administrator's: not counted against its uid */
        bool admin;               /* its task has TETHER_PRIVILEGE_ADMINISTRATOR (fixed at open) */
        bool stopped;             /* provider terminated: calls fail NOT_ATTACHED */
        bool gone;                /* destroyed (closed, died, or cut at exit): its thread ends */
        bool exclusive;
        struct {
                void *map;
                size_t size;
        } ool[N_SLOTS];
        async_open *open_refs;    /* uc_table_lock, as are the two below */
        unsigned n_async;         /* how many: each is charged to the session too */
        tether_data_queue *queues; /* its data queues (data-queue.c) */
        tether_user_client *next;
        tether_user_client *hash_next;   /* uc_table_lock */
};

static atomic_uint_fast64_t next_uc_id = 1;

/* Live user clients by id, so that a result (which names its connection
 * only by id, and may be sent from any thread) finds its reference, and
 * one sent after the connection closed finds nothing. */
#define UC_BUCKETS 256u
static tether_user_client *uc_table[UC_BUCKETS];
static pthread_mutex_t uc_table_lock = PTHREAD_MUTEX_INITIALIZER;

static void uc_table_add(tether_user_client *uc)
{
        pthread_mutex_lock(&uc_table_lock);
        tether_user_client **b = &uc_table[uc->id % UC_BUCKETS];
        uc->hash_next = *b;
        *b = uc;
        pthread_mutex_unlock(&uc_table_lock);
}

static tether_user_client *uc_table_find_locked(uint64_t id)
{
        for (tether_user_client *uc = uc_table[id % UC_BUCKETS]; uc; uc = uc->hash_next)
                if (uc->id == id)
                        return uc;
        return NULL;
}

/* Off the table, its open references closed and off its session's count:
 * a result sent later finds no one to deliver to or to charge. */
static void uc_table_remove(tether_user_client *uc)
{
        pthread_mutex_lock(&uc_table_lock);
        for (tether_user_client **pp = &uc_table[uc->id % UC_BUCKETS]; *pp; pp = &(*pp)->hash_next) {
                if (*pp == uc) {
                        *pp = uc->hash_next;
                        break;
                }
        }
        atomic_fetch_sub(env_caller_async(uc->caller), uc->n_async);
        uc->n_async = 0;
        async_open *list = uc->open_refs;
        uc->open_refs = NULL;
        pthread_mutex_unlock(&uc_table_lock);
        while (list) {
                async_open *a = list;
                list = a->next;
                free(a);
        }
}

static async_open **uc_async_find_locked(tether_user_client *uc, uint64_t port, uint64_t token)
{
        for (async_open **pp = &uc->open_refs; *pp; pp = &(*pp)->next)
                if ((*pp)->port == port && (*pp)->token == token)
                        return pp;
        return NULL;
}

static void uc_async_close_locked(tether_user_client *uc, async_open **link)
{
        async_open *a = *link;
        *link = a->next;
        free(a);
        uc->n_async--;
        atomic_fetch_sub(env_caller_async(uc->caller), 1);
}

/* An async call is about to be accepted: open its reference and charge
 * it, or refuse it. */
static tether_ret_t uc_async_open(tether_user_client *uc, const uint64_t *words)
{
        async_open *a = calloc(1, sizeof(*a));
        if (!a)
                return TETHER_ERR_NO_MEMORY;
        a->port = words[0];
        a->token = words[1];
        tether_ret_t r = TETHER_ERR_NO_RESOURCES;
        pthread_mutex_lock(&uc_table_lock);
        if (uc_async_find_locked(uc, a->port, a->token)) {
                r = TETHER_ERR_BAD_ARGUMENT; /* a raw client reusing a token it has open */
        } else if (uc->n_async < TETHERD_MAX_ASYNC_PER_CONNECTION) {
                if (atomic_fetch_add(env_caller_async(uc->caller), 1) < TETHERD_MAX_ASYNC_PER_SESSION) {
                        uc->n_async++;
                        a->next = uc->open_refs;
                        uc->open_refs = a;
                        a = NULL;
                        r = TETHER_SUCCESS;
                } else {
                        atomic_fetch_sub(env_caller_async(uc->caller), 1);
                }
        }
        pthread_mutex_unlock(&uc_table_lock);
        free(a);
        return r;
}

/* A call whose method refused it never opened its reference (unless the
 * method sent its last result already, which closed it). */
static void uc_async_unopen(tether_user_client *uc, const uint64_t *words)
{
        pthread_mutex_lock(&uc_table_lock);
        async_open **link = uc_async_find_locked(uc, words[0], words[1]);
        if (link)
                uc_async_close_locked(uc, link);
        pthread_mutex_unlock(&uc_table_lock);
}

/* The client cancels a reference: nothing more reaches it, and its driver
 * learns at its next send (TETHER_ERR_ABORTED), which closes it. Until
 * then it still counts, or a client could cancel and reopen streams that
 * its driver keeps state for, without bound. */
static tether_ret_t uc_async_cancel(tether_user_client *uc, wire_reader *rd)
{
        uint64_t port = wire_get_u64(rd);
        uint64_t token = wire_get_u64(rd);
        if (wire_reader_done(rd) != TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT;
        pthread_mutex_lock(&uc_table_lock);
        async_open **link = uc_async_find_locked(uc, port, token);
        tether_ret_t r = link && !(*link)->cancelled ? TETHER_SUCCESS : TETHER_ERR_NOT_FOUND;
        if (link)
                (*link)->cancelled = true;
        pthread_mutex_unlock(&uc_table_lock);
        return r;
}

tether_ret_t user_client_async_send(const tether_async_ref *ref, const wire_msg *m, bool last,
                                    bool *ret_connection_closed)
{
        pthread_mutex_lock(&uc_table_lock);
        tether_user_client *uc = uc_table_find_locked(ref->connection);
        async_open **link = uc ? uc_async_find_locked(uc, ref->words[0], ref->words[1]) : NULL;
        tether_ret_t r;
        *ret_connection_closed = !uc;
        if (!uc) {
                r = TETHER_ERR_NOT_ATTACHED;
        } else if (!link) {
                r = TETHER_ERR_NOT_FOUND;
        } else if ((*link)->cancelled) {
                r = TETHER_ERR_ABORTED;
                uc_async_close_locked(uc, link);
        } else {
                /* Under the lock, so that results sent on one reference
                 * reach the port in the order they were sent; the send
                 * never blocks. A port that has gone closes the reference:
                 * nothing sent on it could ever arrive. */
                r = env_port_send(ref->words[0], m);
                if (last || r == TETHER_ERR_NOT_ATTACHED)
                        uc_async_close_locked(uc, link);
        }
        pthread_mutex_unlock(&uc_table_lock);
        return r;
}

/* ---- connections per service, and per uid (runtime.h) ---- */

typedef struct uid_clients {
        uid_t uid;
        unsigned n;
        struct uid_clients *next;
} uid_clients;

static bool privileged_task(const tether_task *t)
{
        return t->uid == 0 || tether_task_has_privilege(t, TETHER_PRIVILEGE_ADMINISTRATOR) == TETHER_SUCCESS;
}

/* In the gate: room for one more connection of task's, counted if so. */
static tether_ret_t clients_admit(tether_service *s, const tether_task *task, bool privileged)
{
        if (s->n_clients >= TETHER_MAX_CONNECTIONS_PER_SERVICE)
                return TETHER_ERR_NO_RESOURCES;
        if (!privileged) {
                uid_clients *u = s->client_uids;
                while (u && u->uid != task->uid)
                        u = u->next;
                if (s->n_unprivileged >= TETHER_MAX_CONNECTIONS_PER_SERVICE - TETHER_CONNECTIONS_RESERVED ||
                    (u && u->n >= TETHER_MAX_CONNECTIONS_PER_UID))
                        return TETHER_ERR_NO_RESOURCES;
                if (!u) {
                        if (!(u = calloc(1, sizeof(*u))))
                                return TETHER_ERR_NO_MEMORY;
                        u->uid = task->uid;
                        u->next = s->client_uids;
                        s->client_uids = u;
                }
                u->n++;
                s->n_unprivileged++;
        }
        s->n_clients++;
        return TETHER_SUCCESS;
}

static void clients_release(tether_service *s, const tether_task *task, bool privileged)
{
        s->n_clients--;
        if (privileged)
                return;
        s->n_unprivileged--;
        for (uid_clients **pp = &s->client_uids; *pp; pp = &(*pp)->next) {
                uid_clients *u = *pp;
                if (u->uid == task->uid) {
                        if (!--u->n) {
                                *pp = u->next;
                                free(u);
                        }
                        return;
                }
        }
}

void *tether_user_client_priv(tether_user_client *uc)
{
        return uc ? uc->priv : NULL;
}

tether_service *tether_user_client_provider(tether_user_client *uc)
{
        return uc && !uc->stopped ? uc->svc : NULL;
}

const tether_task *tether_user_client_task(tether_user_client *uc)
{
        return uc ? &uc->task : NULL;
}

uint64_t tether_user_client_id(tether_user_client *uc)
{
        return uc ? uc->id : 0;
}

/* Its thread is done with it for good (the loop's thread, in the gate). */
static void uc_reaped(void *arg)
{
        tether_user_client *uc = arg;
        close(uc->fd);
        env_caller_unref(uc->caller);
        service_unref(uc->svc);
        free(uc->priv);
        free(uc);
}

/* In the gate: unhook uc from everything now. Its thread ends, and the
 * loop frees it once it has (uc_reaped): until then its socket stays open,
 * so a reply sent after this (CLOSE's) still goes out. From any thread but
 * its own, the socket is shut down too, which wakes the thread. */
static void uc_destroy(tether_user_client *uc)
{
        tether_service *s = uc->svc;
        uc->gone = true;
        if (!workloop_thread_is_current(&uc->thread))
                shutdown(uc->fd, SHUT_RDWR);
        uc_table_remove(uc);
        if (!uc->stopped && uc->ops->stop)
                uc->ops->stop(uc);
        data_queue_free_all(&uc->queues);
        for (tether_user_client **pp = &s->clients; *pp; pp = &(*pp)->next) {
                if (*pp == uc) {
                        *pp = uc->next;
                        break;
                }
        }
        if (uc->exclusive)
                s->exclusive = false;
        for (int i = 0; i < N_SLOTS; i++)
                if (uc->ool[i].map)
                        munmap(uc->ool[i].map, uc->ool[i].size);
        /* Counted out now, not when its thread is joined: whoever is told
         * the connection is closed may open another at once. */
        clients_release(s, &uc->task, uc->privileged);
        env_caller_connection_closed(uc->caller);
        env_service_open_count(s, -1);
        service_finish_if_idle(s);
}

static void uc_died(tether_user_client *uc)
{
        if (!uc->stopped) {
                if (uc->ops->client_died)
                        uc->ops->client_died(uc);
                else if (uc->ops->client_close)
                        uc->ops->client_close(uc);
        }
        uc_destroy(uc);
}

/* A reply could not be sent (in the gate): the connection ends. A client
 * that does not read its replies must not be able to stall the service,
 * so a send never waits, and a full queue ends the connection. */
static void uc_send_failed(tether_user_client *uc, tether_ret_t r)
{
        if (r == TETHER_ERR_NOT_RESPONDING)
                env_warn(uc->caller, "client pid %d: not reading replies on connection %llu; closing it",
                         (int)uc->task.pid, (unsigned long long)uc->id);
        uc_died(uc);
}

/* Send now, in the gate (a reply with an fd, or one that must go before
 * what the handler does next); false if the connection had to be dropped. */
static bool uc_send(tether_user_client *uc, const wire_msg *m, int fd)
{
        tether_ret_t r = wire_send_nowait(uc->fd, m, fd);
        if (r == TETHER_SUCCESS)
                return true;
        uc_send_failed(uc, r);
        return false;
}

/* A reply to send once out of the gate (the thread's loop does). */
static bool uc_reply_later(tether_user_client *uc)
{
        if (wire_msg_finish(&uc->buf->tx) != TETHER_SUCCESS)
                return false;
        uc->buf->reply = true;
        return true;
}

static bool uc_reply_status(tether_user_client *uc, uint16_t type, uint32_t serial, tether_ret_t r)
{
        wire_msg_init(&uc->buf->tx, type | WIRE_REPLY_FLAG, serial, r);
        return uc_reply_later(uc);
}

static tether_ret_t set_buffer(tether_user_client *uc, wire_reader *rd, int fd)
{
        uint32_t slot = wire_get_u32(rd);
        uint32_t zero = wire_get_u32(rd);
        if (wire_reader_done(rd) != TETHER_SUCCESS || slot >= N_SLOTS || zero || fd < 0)
                return TETHER_ERR_BAD_ARGUMENT;
        struct stat st;
        int seals = fcntl(fd, F_GET_SEALS);
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || seals < 0 || !(seals & F_SEAL_SHRINK) ||
            st.st_size <= 0 || (uint64_t)st.st_size > (uint64_t)TETHER_MAX_OOL_STRUCT + 65536)
                return TETHER_ERR_BAD_ARGUMENT;
        int prot = slot == SLOT_IN ? PROT_READ : PROT_READ | PROT_WRITE;
        void *map = mmap(NULL, (size_t)st.st_size, prot, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED)
                return TETHER_ERR_VM;
        if (uc->ool[slot].map)
                munmap(uc->ool[slot].map, uc->ool[slot].size);
        uc->ool[slot].map = map;
        uc->ool[slot].size = (size_t)st.st_size;
        return TETHER_SUCCESS;
}

static const char *method_name(const tether_user_client_ops *ops, uint32_t selector)
{
        uint32_t n = ops->methods ? ops->method_count : ops->legacy_method_count;
        return ops->method_names && selector < n ? ops->method_names[selector] : NULL;
}

/* Starts a call's probe event with what came in, and sets the context the
 * call's USB transfers will carry. c is NULL for a call that did not decode. */
static void probe_call_begin(tether_user_client *uc, const wire_call *c, probe_call_event *e)
{
        probe_current.session_id = env_caller_id(uc->caller);
        probe_current.connection_id = uc->id;
        probe_current.pid = uc->task.pid;
        probe_current.selector = c ? c->selector : PROBE_ANY_SELECTOR;
        probe_current.in_call = true;
        *e = (probe_call_event){ .start_ns = probe_now_ns() };
        if (c) {
                e->flags = c->flags;
                e->scalar_in = c->scalar_in_count;
                e->struct_in = c->struct_in_size;
                e->method = method_name(uc->ops, c->selector);
        }
}

static void probe_call_end(const probe_call_event *e)
{
        probe_call(e);
        probe_current.session_id = probe_current.connection_id = 0;
        probe_current.pid = 0;
        probe_current.in_call = false;
}

/* A call while someone probes: timed, and USB transfers it makes carry
 * its pid, connection and selector. */
static tether_ret_t probed_invoke(tether_user_client *uc, const wire_call *c, const dispatch_method *m,
                                  tether_method_args *args)
{
        probe_call_event e;
        probe_call_begin(uc, c, &e);
        uint64_t t0 = probe_mono_ns();
        e.result = dispatch_invoke(m, args);
        e.duration_ns = probe_mono_ns() - t0;
        if (e.result == TETHER_SUCCESS) {
                e.scalar_out = args->scalar_output_count;
                e.struct_out = args->struct_output_size;
        }
        probe_call_end(&e);
        return e.result;
}

/* Decode, check against the table, and only then copy an out-of-line
 * input: a call the table refuses costs nothing, however large the input
 * it names (a sparse 1 GiB memfd costs its sender nothing either). */
static bool handle_call(tether_user_client *uc, uint32_t serial, const uint8_t *body, size_t len)
{
        wire_call c;
        /* The driver's scalar outputs go straight into the reply. */
        wire_call_reply rep;
        rep.scalar_out_count = rep.struct_out_size = 0;
        rep.struct_out = uc->buf->inline_out;
        void *ool_in_copy = NULL;
        tether_async_ref ref;
        tether_method_args args;
        dispatch_method m;
        tether_ret_t r = wire_call_decode(body, len, &c);
        bool decoded = r == TETHER_SUCCESS;
        bool ool_in = decoded && (c.flags & WIRE_CALL_OOL_IN);
        bool ool_out = decoded && (c.flags & WIRE_CALL_OOL_OUT);
        bool async = decoded && (c.flags & WIRE_CALL_ASYNC);

        if (r == TETHER_SUCCESS && uc->stopped)
                r = TETHER_ERR_NOT_ATTACHED;
        if (r == TETHER_SUCCESS && ool_in && c.struct_in_size > uc->ool[SLOT_IN].size)
                r = TETHER_ERR_BAD_ARGUMENT;
        if (r == TETHER_SUCCESS && ool_out && c.struct_out_size > uc->ool[SLOT_OUT].size)
                r = TETHER_ERR_BAD_ARGUMENT;
        if (r == TETHER_SUCCESS && async && !env_caller_port_owned(uc->caller, c.async_ref[0]))
                r = TETHER_ERR_BAD_ARGUMENT;

        if (r == TETHER_SUCCESS) {
                /* What the driver does not write of its outputs is sent as
                 * 0, never as what the stack held. */
                memset(rep.scalars, 0, c.scalar_out_count * sizeof(uint64_t));
                args = (tether_method_args){
                        .selector = c.selector,
                        .scalar_input = c.scalars,
                        .scalar_input_count = c.scalar_in_count,
                        /* The checks read only the size; the copy comes after them. */
                        .struct_input = ool_in ? uc->ool[SLOT_IN].map : c.struct_in,
                        .struct_input_size = c.struct_in_size,
                        .struct_input_out_of_line = ool_in,
                        .scalar_output = rep.scalars,
                        .scalar_output_count = c.scalar_out_count,
                        .struct_output = ool_out ? uc->ool[SLOT_OUT].map : uc->buf->inline_out,
                        .struct_output_size = c.struct_out_size,
                        .struct_output_out_of_line = ool_out,
                        .task = &uc->task,
                };
                if (async) {
                        memcpy(ref.words, c.async_ref, sizeof(ref.words));
                        ref.connection = uc->id;
                        args.async_ref = &ref;
                }
                dispatch_target t = {
                        .user_client = uc,
                        .provider = uc->svc->terminated ? NULL : uc->svc,
                        .reference = NULL,
                        .caller_is_admin = uc->admin,
                };
                r = dispatch_check(uc->ops, &t, &args, &m);
        }
        if (r == TETHER_SUCCESS && async)
                r = uc_async_open(uc, c.async_ref);
        if (r == TETHER_SUCCESS && ool_in && c.struct_in_size) {
                /* A private copy: the client can still write its mapping,
                 * and a driver must never read twice from memory that can
                 * change under it. */
                ool_in_copy = malloc(c.struct_in_size);
                if (ool_in_copy) {
                        memcpy(ool_in_copy, uc->ool[SLOT_IN].map, c.struct_in_size);
                        args.struct_input = ool_in_copy;
                } else {
                        r = TETHER_ERR_NO_MEMORY;
                        if (async)
                                uc_async_unopen(uc, c.async_ref);
                }
        }
        if (r == TETHER_SUCCESS) {
                r = probe_on() ? probed_invoke(uc, &c, &m, &args) : dispatch_invoke(&m, &args);
                /* A refused async call will never complete. */
                if (r != TETHER_SUCCESS && async)
                        uc_async_unopen(uc, c.async_ref);
        } else if (probe_on()) {
                /* Refused before the driver ran: still worth seeing. */
                probe_call_event e;
                probe_call_begin(uc, decoded ? &c : NULL, &e);
                e.result = r;
                probe_call_end(&e);
        }
        free(ool_in_copy);

        if (r == TETHER_SUCCESS) {
                rep.scalar_out_count = args.scalar_output_count;
                rep.struct_out_size = args.struct_output_size;
        }
        wire_msg *tx = &uc->buf->tx;
        wire_msg_init(tx, WIRE_CALL | WIRE_REPLY_FLAG, serial, r);
        wire_call_reply_encode(tx, &rep, ool_out);
        if (!uc_reply_later(uc))
                return uc_reply_status(uc, WIRE_CALL, serial, TETHER_ERR_INTERNAL);
        return true;
}

static bool handle_map(tether_user_client *uc, uint32_t serial, wire_reader *rd)
{
        uint32_t type = wire_get_u32(rd);
        uint32_t options = wire_get_u32(rd);
        tether_ret_t r = wire_reader_done(rd);
        tether_memory *mem = NULL;
        if (r == TETHER_SUCCESS && (options & ~TETHER_MAP_READ_ONLY))
                r = TETHER_ERR_BAD_ARGUMENT;
        if (r == TETHER_SUCCESS && uc->stopped)
                r = TETHER_ERR_NOT_ATTACHED;
        if (r == TETHER_SUCCESS && !uc->ops->client_memory_for_type)
                r = TETHER_ERR_UNSUPPORTED;
        uint32_t drv_options = 0;
        if (r == TETHER_SUCCESS)
                r = uc->ops->client_memory_for_type(uc, type, &drv_options, &mem);
        if (r == TETHER_SUCCESS && !mem)
                r = TETHER_ERR_INTERNAL;
        if (r != TETHER_SUCCESS) {
                tether_memory_unref(mem);
                return uc_reply_status(uc, WIRE_MAP_MEMORY, serial, r);
        }
        options |= drv_options & TETHER_MAP_READ_ONLY;
        int fd = memory_fd(mem), ro_fd = -1;
        if (options & TETHER_MAP_READ_ONLY) {
                /* A read-only reopen of the memfd: the client cannot map it
                 * writable whatever it asks of mmap. */
                char path[64];
                snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
                ro_fd = open(path, O_RDONLY | O_CLOEXEC);
                fd = ro_fd;
        }
        if (fd < 0) {
                tether_memory_unref(mem);
                return uc_reply_status(uc, WIRE_MAP_MEMORY, serial, TETHER_ERR_NO_RESOURCES);
        }
        wire_msg *tx = &uc->buf->tx;
        wire_msg_init(tx, WIRE_MAP_MEMORY | WIRE_REPLY_FLAG, serial, TETHER_SUCCESS);
        wire_put_u64(tx, tether_memory_size(mem));
        wire_put_u32(tx, options);
        wire_msg_finish(tx);
        bool alive = uc_send(uc, tx, fd);
        if (ro_fd >= 0)
                close(ro_fd);
        tether_memory_unref(mem);
        return alive;
}

/* Returns false once uc is gone. */
static bool handle_message(tether_user_client *uc, const uint8_t *buf, size_t len, int fd)
{
        wire_header h;
        tether_ret_t r = wire_header_check(buf, len, &h);
        if (r != TETHER_SUCCESS) {
                if (fd >= 0)
                        close(fd);
                env_warn(uc->caller, "client pid %d: malformed message on connection %llu",
                             (int)uc->task.pid, (unsigned long long)uc->id);
                return uc_reply_status(uc, 0, 0, r);
        }
        const uint8_t *body = buf + WIRE_HEADER_SIZE;
        size_t blen = len - WIRE_HEADER_SIZE;
        wire_reader rd;
        wire_reader_init(&rd, body, blen);
        /* Only SET_BUFFER carries an fd, and only one. */
        if (fd == WIRE_FD_REFUSED || (fd >= 0 && h.type != WIRE_SET_BUFFER)) {
                if (fd >= 0)
                        close(fd);
                env_warn(uc->caller, "client pid %d: unexpected fds on connection %llu; refused",
                             (int)uc->task.pid, (unsigned long long)uc->id);
                return uc_reply_status(uc, h.type, h.serial, TETHER_ERR_BAD_ARGUMENT);
        }
        switch (h.type) {
        case WIRE_CALL:
                return handle_call(uc, h.serial, body, blen);
        case WIRE_SET_BUFFER:
                r = set_buffer(uc, &rd, fd);
                if (fd >= 0)
                        close(fd); /* mapped or refused: either way not needed */
                return uc_reply_status(uc, h.type, h.serial, r);
        case WIRE_MAP_MEMORY:
                return handle_map(uc, h.serial, &rd);
        case WIRE_ASYNC_CANCEL:
                return uc_reply_status(uc, h.type, h.serial, uc_async_cancel(uc, &rd));
        case WIRE_DATA_QUEUE_MAP:
                return data_queue_map_request(uc, h.serial, &rd);
        case WIRE_DATA_QUEUE_SERVICED:
                data_queue_serviced_request(uc, &rd);
                return true;
        case WIRE_CLOSE:
                if (!uc->stopped && uc->ops->client_close)
                        uc->ops->client_close(uc);
                /* client_close has run, so whether or not the reply gets
                 * through, this is a close and not a death. The reply goes
                 * after uc_destroy (the socket stays open until the thread
                 * is joined), so the close has fully happened when it
                 * arrives. */
                uc_destroy(uc);
                wire_msg_init(&uc->buf->tx, WIRE_CLOSE | WIRE_REPLY_FLAG, h.serial, TETHER_SUCCESS);
                uc_reply_later(uc);
                return false;
        default:
                return uc_reply_status(uc, h.type, h.serial, TETHER_ERR_BAD_MESSAGE_ID);
        }
}

/*
 * A connection's thread: blocked in recv on its socket, it takes the
 * service's gate for each request, runs it (the driver's method on this
 * thread, as I/O Kit runs an external method on its caller's), leaves the
 * gate and only then sends the reply. A call is one recv and one send here,
 * as in a plain echo server, with no poll in between and no hand-off to
 * another thread. It ends once the user client is gone (closed, died, or
 * cut when the process exits); the loop joins it and frees the user client.
 */
static void uc_thread(void *arg)
{
        tether_user_client *uc = arg;
        tether_service *s = uc->svc;
        /* The inline struct input is read in place, 8-aligned within it. */
        _Alignas(max_align_t) uint8_t rx[WIRE_MAX_MESSAGE];
        call_buffers buf;
        buf.reply = false;
        service_bind_thread(s);
        /* Only this thread uses its buffers: set outside the gate, which
         * the open that started it still holds. Cut before it ran, it
         * finds its socket shut down, and uc gone once in the gate. */
        uc->buf = &buf;
        bool alive = true;
        while (alive) {
                size_t len = 0;
                int fd = -1;
                tether_ret_t r = wire_recv(uc->fd, rx, sizeof(rx), &len, &fd);
                workloop_gate_enter(s->loop);
                if (uc->gone) {
                        /* Cut while we waited (the process is ending). */
                        if (fd >= 0)
                                close(fd);
                        alive = false;
                } else {
                        if (r == TETHER_ERR_MESSAGE_TOO_LARGE) {
                                env_warn(uc->caller, "client pid %d: oversized message on connection %llu",
                                         (int)uc->task.pid, (unsigned long long)uc->id);
                                uc_reply_status(uc, 0, 0, r);
                        } else if (r != TETHER_SUCCESS) {
                                uc_died(uc);
                        } else {
                                handle_message(uc, rx, len, fd);
                        }
                        /* Whatever a handler says, the thread ends exactly
                         * when its user client is gone. */
                        alive = !uc->gone;
                }
                workloop_gate_leave(s->loop);
                if (!buf.reply)
                        continue;
                buf.reply = false;
                r = wire_send_nowait(uc->fd, &buf.tx, -1);
                if (r != TETHER_SUCCESS && alive) {
                        workloop_gate_enter(s->loop);
                        if (!uc->gone)
                                uc_send_failed(uc, r);
                        workloop_gate_leave(s->loop);
                        alive = false;
                }
        }
        uc->buf = NULL;
}

static tether_ret_t uc_create(open_request *req, tether_user_client **ret)
{
        tether_service *s = req->service;
        if (s->terminated || !s->started)
                return TETHER_ERR_NOT_ATTACHED;
        if (s->exclusive || ((req->options & TETHER_OPEN_EXCLUSIVE) && s->clients))
                return TETHER_ERR_EXCLUSIVE_ACCESS;
        if (!s->driver->new_user_client)
                return TETHER_ERR_UNSUPPORTED;
        const tether_user_client_ops *ops = NULL;
        tether_ret_t r = s->driver->new_user_client(s, req->type, &ops);
        if (r != TETHER_SUCCESS)
                return r;
        char why[128] = "no ops";
        if (!ops || dispatch_validate_ops_explain(ops, why, sizeof(why)) != TETHER_SUCCESS) {
                log_err("driver %s: bad method table for user client type %u: %s (driver bug)",
                        s->driver->name, req->type, why);
                return TETHER_ERR_INTERNAL;
        }
        const tether_task *task = env_caller_task(req->caller);
        bool privileged = privileged_task(task);
        r = clients_admit(s, task, privileged);
        if (r != TETHER_SUCCESS)
                return r;
        tether_user_client *uc = calloc(1, sizeof(*uc));
        if (uc && !(uc->priv = calloc(1, ops->priv_size ? ops->priv_size : 1))) {
                free(uc);
                uc = NULL;
        }
        if (!uc) {
                clients_release(s, task, privileged);
                return TETHER_ERR_NO_MEMORY;
        }
        uc->privileged = privileged;
        uc->admin = tether_task_has_privilege(task, TETHER_PRIVILEGE_ADMINISTRATOR) == TETHER_SUCCESS;
        uc->id = atomic_fetch_add(&next_uc_id, 1);
        uc->ops = ops;
        uc->task = *env_caller_task(req->caller);
        /* Before the driver's callbacks: a data queue made in start() is
         * charged to the caller. */
        uc->caller = env_caller_ref(req->caller);
        uc->fd = req->fds[0];
        /* Its thread blocks reading it; its sends say MSG_DONTWAIT. */
        int fl = fcntl(uc->fd, F_GETFL);
        if (fl < 0 || fcntl(uc->fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
                r = TETHER_ERR_NO_RESOURCES;
        if (r == TETHER_SUCCESS)
                r = ops->init_with_task ? ops->init_with_task(uc, &uc->task, req->type) : TETHER_SUCCESS;
        if (r == TETHER_SUCCESS && ops->start)
                r = ops->start(uc, s);
        uc->svc = s; /* its thread's: referenced below once it runs */
        if (r == TETHER_SUCCESS) {
                char name[16];
                snprintf(name, sizeof(name), "uc:%s", s->class_name);
                if (workloop_thread_start(s->loop, &uc->thread, name, TETHER_CALL_STACK_SIZE, uc_thread, uc_reaped,
                                          uc) != TETHER_SUCCESS) {
                        if (ops->stop)
                                ops->stop(uc);
                        r = TETHER_ERR_NO_RESOURCES;
                }
        }
        if (r != TETHER_SUCCESS) {
                data_queue_free_all(&uc->queues); /* made by a start() that failed after */
                env_caller_unref(uc->caller);
                clients_release(s, task, privileged);
                free(uc->priv);
                free(uc);
                return r;
        }
        /* The thread waits for the gate, which this job holds: everything
         * below is done before it reads a request. */
        service_ref(s);
        uc->exclusive = req->options & TETHER_OPEN_EXCLUSIVE;
        if (uc->exclusive)
                s->exclusive = true;
        uc->next = s->clients;
        s->clients = uc;
        uc_table_add(uc);
        env_service_open_count(s, 1);
        *ret = uc;
        return TETHER_SUCCESS;
}

void user_client_open(void *arg)
{
        open_request *req = arg;
        tether_user_client *uc = NULL;
        tether_ret_t r = uc_create(req, &uc);
        if (r == TETHER_SUCCESS) {
                env_caller_open_reply(req->caller, req->serial, r, uc->id, req->fds[1]);
                /* If that reply was lost, closing our copy of the client's
                 * end makes the connection hang up, and clientDied runs. */
        } else {
                close(req->fds[0]);
                env_caller_open_reply(req->caller, req->serial, r, 0, -1);
        }
        /* In a driver host the client's end never came here: tetherd has it. */
        if (req->fds[1] >= 0)
                close(req->fds[1]);
        env_caller_client_fd_passed(req->caller);
        env_caller_unref(req->caller);
        service_unref(req->service);
        free(req);
}

void user_client_stop_all(tether_service *s)
{
        for (tether_user_client *uc = s->clients; uc; uc = uc->next) {
                if (!uc->stopped && uc->ops->stop)
                        uc->ops->stop(uc);
                uc->stopped = true;
        }
}

void user_client_free_all(tether_service *s)
{
        while (s->clients)
                uc_destroy(s->clients);
}

/* ---- for data-queue.c ---- */

tether_data_queue **user_client_queues(tether_user_client *uc)
{
        return &uc->queues;
}

env_caller *user_client_caller(tether_user_client *uc)
{
        return uc->caller;
}

bool user_client_detached(tether_user_client *uc)
{
        return uc->stopped;
}

bool user_client_send(tether_user_client *uc, const wire_msg *m, int fd)
{
        return uc_send(uc, m, fd);
}

bool user_client_reply_status(tether_user_client *uc, uint16_t type, uint32_t serial, tether_ret_t r)
{
        return uc_reply_status(uc, type, serial, r);
}
