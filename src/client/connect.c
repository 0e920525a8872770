/* SPDX-License-Identifier: MIT */
#include "client/client.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client/dataqueue.h"
#include "client/port.h"

#define MAX_MAPPINGS 16

enum { SLOT_IN, SLOT_OUT, N_SLOTS };

/* What a tether_connect * names. */
struct client_connect {
        handle_obj obj;
        uintptr_t name;            /* its handle, for the session to close it by */
        client_session *session;   /* a reference */
        uint64_t id;
        pthread_mutex_t lock;      /* one call at a time per connection; all below */
        bool closed;               /* clientClose sent: calls by those who looked it up before fail */
        int fd;
        uint32_t serial;
        struct {
                void *map;
                size_t size;
        } ool[N_SLOTS];
        struct {
                uint32_t type;
                void *addr;
                size_t size;
        } maps[MAX_MAPPINGS];
        unsigned n_maps;
        uint8_t rx[WIRE_MAX_MESSAGE];
        wire_msg tx;
        client_connect *next;      /* in the session's list (its lock) */
};

static void begin(client_connect *c, uint16_t type)
{
        if (++c->serial == 0)
                c->serial = 1;
        wire_msg_init(&c->tx, type, c->serial, 0);
}

/* Mappings die with their connection: the driver's memory is the
 * connection's, and the caller's pointers into it are void from here. */
static void unmap_all(client_connect *c)
{
        for (int i = 0; i < N_SLOTS; i++) {
                if (c->ool[i].map)
                        munmap(c->ool[i].map, c->ool[i].size);
                c->ool[i].map = NULL;
                c->ool[i].size = 0;
        }
        for (unsigned i = 0; i < c->n_maps; i++)
                munmap(c->maps[i].addr, c->maps[i].size);
        c->n_maps = 0;
}

static void connect_free(handle_obj *o)
{
        client_connect *c = handle_container(o, client_connect, obj);
        unmap_all(c);
        if (c->fd >= 0)
                close(c->fd);
        pthread_mutex_destroy(&c->lock);
        session_put(c->session);
        free(c);
}

/* One request on the connection. A connection whose other end went away
 * (its driver's process died, or tetherd) has no user client any more:
 * that is NotAttached, as a call to a terminated provider is, not an IPC
 * error for the caller to puzzle over. */
static tether_ret_t connection_roundtrip(client_connect *c, int fd, client_reply *rep)
{
        /* Only these replies carry an fd; a call's never does. */
        uint16_t type;
        memcpy(&type, c->tx.buf + offsetof(wire_header, type), sizeof(type));
        bool reply_fd = type == WIRE_MAP_MEMORY || type == WIRE_DATA_QUEUE_MAP;
        tether_ret_t r = client_roundtrip(c->fd, &c->tx, fd, reply_fd, c->rx, rep);
        return r == TETHER_ERR_IPC ? TETHER_ERR_NOT_ATTACHED : r;
}

/* clientClose, once, after any call in flight: calls are serialised by
 * c->lock, so the socket closes under none. */
static tether_ret_t connect_shutdown(client_connect *c)
{
        pthread_mutex_lock(&c->lock);
        tether_ret_t r = TETHER_ERR_BAD_ARGUMENT;
        if (!c->closed) {
                begin(c, WIRE_CLOSE);
                client_reply rep;
                r = connection_roundtrip(c, -1, &rep);
                unmap_all(c);
                close(c->fd);
                c->fd = -1;
                c->closed = true;
        }
        pthread_mutex_unlock(&c->lock);
        return r;
}

/* The connection behind a handle, with a reference. */
static tether_ret_t connect_get(tether_connect *h, client_connect **ret)
{
        handle_obj *o = NULL;
        tether_ret_t r = handle_get(h, HANDLE_CONNECT, &o);
        if (r == TETHER_SUCCESS)
                *ret = handle_container(o, client_connect, obj);
        return r;
}

static void connect_put(client_connect *c)
{
        handle_obj_put(&c->obj);
}

/* Takes c->lock for a call; TETHER_ERR_BAD_ARGUMENT (and no lock) if it was
 * closed while the caller waited for it. */
static tether_ret_t connect_lock_live(client_connect *c)
{
        pthread_mutex_lock(&c->lock);
        if (!c->closed)
                return TETHER_SUCCESS;
        pthread_mutex_unlock(&c->lock);
        return TETHER_ERR_BAD_ARGUMENT;
}

tether_ret_t tether_service_open(tether_session *hs, uint64_t service_id, uint32_t type, uint32_t options,
                                 tether_connect **ret)
{
        client_session *s = NULL;
        if (!ret || session_get(hs, &s) != TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT;
        client_connect *c = calloc(1, sizeof(*c));
        if (!c) {
                session_put(s);
                return TETHER_ERR_NO_MEMORY;
        }
        handle_obj_init(&c->obj, connect_free);
        pthread_mutex_init(&c->lock, NULL);
        c->fd = -1;
        c->session = s; /* takes the lookup's reference */
        tether_ret_t r = session_lock_live(s);
        if (r == TETHER_SUCCESS) {
                session_begin_locked(s, WIRE_OPEN);
                wire_put_u64(&s->tx, service_id);
                wire_put_u32(&s->tx, type);
                wire_put_u32(&s->tx, options);
                client_reply rep;
                r = session_call_locked(s, &rep);
                if (r == TETHER_SUCCESS) {
                        c->id = wire_get_u64(&rep.body);
                        c->fd = rep.fd;
                        if (wire_reader_done(&rep.body) != TETHER_SUCCESS || rep.fd < 0)
                                r = TETHER_ERR_IPC;
                }
                if (r == TETHER_SUCCESS)
                        r = handle_add(&c->obj, HANDLE_CONNECT, &c->name);
                if (r == TETHER_SUCCESS) {
                        /* Under the lock that saw the session live: a
                         * session_close after this finds it in the list. */
                        handle_obj_ref(&c->obj);
                        c->next = s->connects;
                        s->connects = c;
                }
                pthread_mutex_unlock(&s->lock);
        }
        if (r != TETHER_SUCCESS && c->fd >= 0)
                connect_shutdown(c); /* tetherd opened it, but it has no name here: clientClose */
        if (r == TETHER_SUCCESS)
                *ret = (tether_connect *)c->name;
        connect_put(c);
        return r;
}

uint64_t tether_connect_id(tether_connect *h)
{
        client_connect *c = NULL;
        if (connect_get(h, &c) != TETHER_SUCCESS)
                return 0;
        uint64_t id = c->id;
        connect_put(c);
        return id;
}

/* Kills a connection's name and closes it: whoever kills the name (the
 * application or its session's close) is the one that tears it down. */
static tether_ret_t connect_close(uintptr_t name)
{
        handle_obj *o = NULL;
        if (handle_remove((const void *)name, HANDLE_CONNECT, &o) != TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT;
        client_connect *c = handle_container(o, client_connect, obj);
        client_session *s = c->session;
        bool listed = false;
        pthread_mutex_lock(&s->lock);
        for (client_connect **pp = &s->connects; *pp; pp = &(*pp)->next) {
                if (*pp == c) {
                        *pp = c->next;
                        listed = true;
                        break;
                }
        }
        pthread_mutex_unlock(&s->lock);
        if (listed)
                connect_put(c); /* the list's reference; the table's is still ours */
        tether_ret_t r = connect_shutdown(c);
        /* Its async references closed with it: their callbacks go too;
         * and so did its data queues. */
        port_forget_connection(s, name);
        data_queue_connection_closed(name);
        connect_put(c);
        return r;
}

tether_ret_t connect_async_cancel(uintptr_t name, uint64_t port_id, uint64_t token)
{
        client_connect *c = NULL;
        tether_ret_t r = connect_get((tether_connect *)name, &c);
        if (r != TETHER_SUCCESS)
                return r;
        r = connect_lock_live(c);
        if (r == TETHER_SUCCESS) {
                begin(c, WIRE_ASYNC_CANCEL);
                wire_put_u64(&c->tx, port_id);
                wire_put_u64(&c->tx, token);
                client_reply rep;
                r = connection_roundtrip(c, -1, &rep);
                pthread_mutex_unlock(&c->lock);
        }
        connect_put(c);
        return r;
}

tether_ret_t tether_service_close(tether_connect *h)
{
        return connect_close((uintptr_t)h);
}

void connect_close_list(client_connect *list)
{
        while (list) {
                client_connect *c = list;
                list = c->next;
                /* Fails if the application closed it meanwhile; then it
                 * shuts it down itself. */
                (void)connect_close(c->name);
                connect_put(c);
        }
}

/* An out-of-line buffer of at least size bytes in slot, made (or grown) and
 * handed to tetherd once; later calls reuse it, because mapping is what
 * costs (milliseconds for tens of MiB), not the call. */
static tether_ret_t ensure_slot(client_connect *c, int slot, size_t size)
{
        if (c->ool[slot].size >= size)
                return TETHER_SUCCESS;
        size_t want = 1u << 16;
        while (want < size)
                want <<= 1;
        int fd = memfd_create(slot == SLOT_IN ? "tether-in" : "tether-out", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return TETHER_ERR_NO_RESOURCES;
        void *map = MAP_FAILED;
        /* Sealed so tetherd can trust the size: a shrink under its mapping
         * would kill it with SIGBUS. */
        if (ftruncate(fd, (off_t)want) == 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0)
                map = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) {
                close(fd);
                return TETHER_ERR_NO_MEMORY;
        }
        begin(c, WIRE_SET_BUFFER);
        wire_put_u32(&c->tx, (uint32_t)slot);
        wire_put_u32(&c->tx, 0);
        client_reply rep;
        tether_ret_t r = connection_roundtrip(c, fd, &rep);
        close(fd);
        if (r != TETHER_SUCCESS) {
                munmap(map, want);
                return r;
        }
        if (c->ool[slot].map)
                munmap(c->ool[slot].map, c->ool[slot].size);
        c->ool[slot].map = map;
        c->ool[slot].size = want;
        return TETHER_SUCCESS;
}

/* With c->lock held and c live. */
static tether_ret_t call_locked(client_connect *c, uint32_t selector, const uint64_t *async_ref,
                                const uint64_t *scalar_input, uint32_t scalar_input_count,
                                const void *struct_input, size_t struct_input_size,
                                uint64_t *scalar_output, uint32_t *scalar_output_count,
                                void *struct_output, size_t *struct_output_size)
{
        uint32_t out_cap = scalar_output_count ? *scalar_output_count : 0;
        size_t struct_cap = struct_output_size ? *struct_output_size : 0;
        /* Field by field, not zeroed whole: the scalars past the count are
         * never sent (wire_call_encode copies the head and the count). */
        wire_call wc;
        wc.selector = selector;
        wc.flags = 0;
        wc.scalar_in_count = scalar_input_count;
        wc.scalar_out_count = out_cap;
        wc.struct_in_size = (uint32_t)struct_input_size;
        wc.struct_out_size = (uint32_t)struct_cap;
        wc.struct_in = struct_input;
        if (async_ref) {
                wc.flags |= WIRE_CALL_ASYNC;
                memcpy(wc.async_ref, async_ref, sizeof(wc.async_ref));
        } else {
                memset(wc.async_ref, 0, sizeof(wc.async_ref));
        }
        if (scalar_input_count)
                memcpy(wc.scalars, scalar_input, scalar_input_count * sizeof(uint64_t));

        tether_ret_t r = TETHER_SUCCESS;
        if (struct_input_size > TETHER_MAX_INLINE_STRUCT) {
                wc.flags |= WIRE_CALL_OOL_IN;
                r = ensure_slot(c, SLOT_IN, struct_input_size);
                if (r == TETHER_SUCCESS)
                        memcpy(c->ool[SLOT_IN].map, struct_input, struct_input_size);
        }
        if (r == TETHER_SUCCESS && struct_cap > TETHER_MAX_INLINE_STRUCT) {
                wc.flags |= WIRE_CALL_OOL_OUT;
                r = ensure_slot(c, SLOT_OUT, struct_cap);
        }
        client_reply rep;
        if (r == TETHER_SUCCESS) {
                begin(c, WIRE_CALL);
                wire_call_encode(&c->tx, &wc);
                r = connection_roundtrip(c, -1, &rep);
        }
        wire_call_reply cr;
        const uint8_t *scalars = NULL; /* in the reply: copied once, to the caller */
        if (r == TETHER_SUCCESS &&
            (wire_call_reply_view(rep.body.p, rep.body.left, wc.flags & WIRE_CALL_OOL_OUT, &cr, &scalars) !=
                     TETHER_SUCCESS ||
             cr.scalar_out_count > out_cap || cr.struct_out_size > struct_cap))
                r = TETHER_ERR_IPC;
        if (r == TETHER_SUCCESS) {
                if (cr.scalar_out_count)
                        memcpy(scalar_output, scalars, cr.scalar_out_count * sizeof(uint64_t));
                if (cr.struct_out_size)
                        memcpy(struct_output,
                               (wc.flags & WIRE_CALL_OOL_OUT) ? c->ool[SLOT_OUT].map : (const void *)cr.struct_out,
                               cr.struct_out_size);
                if (scalar_output_count)
                        *scalar_output_count = cr.scalar_out_count;
                if (struct_output_size)
                        *struct_output_size = cr.struct_out_size;
        }
        return r;
}

static tether_ret_t call(tether_connect *h, uint32_t selector, tether_notification_port *port,
                         tether_async_callback callback, void *refcon,
                         const uint64_t *scalar_input, uint32_t scalar_input_count,
                         const void *struct_input, size_t struct_input_size,
                         uint64_t *scalar_output, uint32_t *scalar_output_count,
                         void *struct_output, size_t *struct_output_size)
{
        uint32_t out_cap = scalar_output_count ? *scalar_output_count : 0;
        size_t struct_cap = struct_output_size ? *struct_output_size : 0;
        if (scalar_input_count > TETHER_MAX_SCALARS || out_cap > TETHER_MAX_SCALARS ||
            (scalar_input_count && !scalar_input) || (out_cap && !scalar_output) ||
            (struct_input_size && !struct_input) || (struct_cap && !struct_output) ||
            struct_input_size > TETHER_MAX_OOL_STRUCT || struct_cap > TETHER_MAX_OOL_STRUCT)
                return TETHER_ERR_BAD_ARGUMENT;
        client_connect *c = NULL;
        client_port *p = NULL;
        tether_ret_t r = connect_get(h, &c);
        if (r != TETHER_SUCCESS)
                return r;
        uint64_t ref[TETHER_ASYNC_REF_COUNT];
        if (port) {
                memset(ref, 0, sizeof(ref));
                r = port_get(port, &p);
                if (r == TETHER_SUCCESS)
                        r = port_async_begin(p, callback, refcon, (uintptr_t)h, ref);
        }
        if (r == TETHER_SUCCESS)
                r = connect_lock_live(c);
        if (r == TETHER_SUCCESS) {
                r = call_locked(c, selector, port ? ref : NULL, scalar_input, scalar_input_count, struct_input,
                                struct_input_size, scalar_output, scalar_output_count, struct_output,
                                struct_output_size);
                pthread_mutex_unlock(&c->lock);
        }
        if (p && r != TETHER_SUCCESS)
                port_async_unregister(p, ref);
        port_put(p);
        connect_put(c);
        return r;
}

tether_ret_t tether_call_method(tether_connect *c, uint32_t selector, const uint64_t *scalar_input,
                                uint32_t scalar_input_count, const void *struct_input, size_t struct_input_size,
                                uint64_t *scalar_output, uint32_t *scalar_output_count, void *struct_output,
                                size_t *struct_output_size)
{
        return call(c, selector, NULL, NULL, NULL, scalar_input, scalar_input_count, struct_input, struct_input_size,
                    scalar_output, scalar_output_count, struct_output, struct_output_size);
}

tether_ret_t tether_call_scalar_method(tether_connect *c, uint32_t selector, const uint64_t *input,
                                       uint32_t input_count, uint64_t *output, uint32_t *output_count)
{
        return call(c, selector, NULL, NULL, NULL, input, input_count, NULL, 0, output, output_count, NULL, NULL);
}

tether_ret_t tether_call_struct_method(tether_connect *c, uint32_t selector, const void *input, size_t input_size,
                                       void *output, size_t *output_size)
{
        return call(c, selector, NULL, NULL, NULL, NULL, 0, input, input_size, NULL, NULL, output, output_size);
}

tether_ret_t tether_call_async_method(tether_connect *c, uint32_t selector, tether_notification_port *port,
                                      tether_async_callback callback, void *refcon,
                                      const uint64_t *scalar_input, uint32_t scalar_input_count,
                                      const void *struct_input, size_t struct_input_size,
                                      uint64_t *scalar_output, uint32_t *scalar_output_count,
                                      void *struct_output, size_t *struct_output_size)
{
        if (!port || !callback)
                return TETHER_ERR_BAD_ARGUMENT;
        return call(c, selector, port, callback, refcon, scalar_input, scalar_input_count, struct_input,
                    struct_input_size, scalar_output, scalar_output_count, struct_output, struct_output_size);
}

/* With c->lock held and c live. */
static tether_ret_t map_locked(client_connect *c, uint32_t type, uint32_t options, void **ret_addr,
                               size_t *ret_size)
{
        for (unsigned i = 0; i < c->n_maps; i++) {
                if (c->maps[i].type == type) {
                        *ret_addr = c->maps[i].addr;
                        if (ret_size)
                                *ret_size = c->maps[i].size;
                        return TETHER_SUCCESS;
                }
        }
        tether_ret_t r = c->n_maps < MAX_MAPPINGS ? TETHER_SUCCESS : TETHER_ERR_NO_RESOURCES;
        client_reply rep = { .fd = -1 };
        if (r == TETHER_SUCCESS) {
                begin(c, WIRE_MAP_MEMORY);
                wire_put_u32(&c->tx, type);
                wire_put_u32(&c->tx, options);
                r = connection_roundtrip(c, -1, &rep);
        }
        uint64_t size = 0;
        uint32_t granted = 0;
        if (r == TETHER_SUCCESS) {
                size = wire_get_u64(&rep.body);
                granted = wire_get_u32(&rep.body);
                if (wire_reader_done(&rep.body) != TETHER_SUCCESS || rep.fd < 0 || !size || size > SIZE_MAX)
                        r = TETHER_ERR_IPC;
        }
        void *addr = MAP_FAILED;
        if (r == TETHER_SUCCESS) {
                int prot = (granted & TETHER_MAP_READ_ONLY) ? PROT_READ : PROT_READ | PROT_WRITE;
                addr = mmap(NULL, (size_t)size, prot, MAP_SHARED, rep.fd, 0);
                if (addr == MAP_FAILED)
                        r = TETHER_ERR_VM;
        }
        if (rep.fd >= 0)
                close(rep.fd); /* mapped or refused: the mapping keeps the memory */
        if (r == TETHER_SUCCESS) {
                c->maps[c->n_maps].type = type;
                c->maps[c->n_maps].addr = addr;
                c->maps[c->n_maps].size = (size_t)size;
                c->n_maps++;
                *ret_addr = addr;
                if (ret_size)
                        *ret_size = (size_t)size;
        }
        return r;
}

tether_ret_t tether_map_memory(tether_connect *h, uint32_t type, uint32_t options, void **ret_addr,
                               size_t *ret_size)
{
        client_connect *c = NULL;
        if (!ret_addr || (options & ~TETHER_MAP_READ_ONLY) || connect_get(h, &c) != TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT;
        tether_ret_t r = connect_lock_live(c);
        if (r == TETHER_SUCCESS) {
                r = map_locked(c, type, options, ret_addr, ret_size);
                pthread_mutex_unlock(&c->lock);
        }
        connect_put(c);
        return r;
}

tether_ret_t tether_unmap_memory(tether_connect *h, uint32_t type, void *addr)
{
        client_connect *c = NULL;
        if (connect_get(h, &c) != TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT;
        tether_ret_t r = connect_lock_live(c);
        if (r == TETHER_SUCCESS) {
                r = TETHER_ERR_NOT_FOUND;
                for (unsigned i = 0; i < c->n_maps; i++) {
                        if (c->maps[i].type == type && c->maps[i].addr == addr) {
                                munmap(addr, c->maps[i].size);
                                c->maps[i] = c->maps[--c->n_maps];
                                r = TETHER_SUCCESS;
                                break;
                        }
                }
                pthread_mutex_unlock(&c->lock);
        }
        connect_put(c);
        return r;
}

tether_ret_t connect_map_data_queue(tether_connect *h, uint32_t type, uint64_t port_id, uint64_t cookie,
                                    int *ret_memfd, uint64_t *ret_size, uint32_t *ret_capacity, int *ret_sock)
{
        client_connect *c = NULL;
        if (connect_get(h, &c) != TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT;
        tether_ret_t r = connect_lock_live(c);
        if (r == TETHER_SUCCESS) {
                begin(c, WIRE_DATA_QUEUE_MAP);
                wire_put_u32(&c->tx, type);
                wire_put_u32(&c->tx, 0);
                wire_put_u64(&c->tx, port_id);
                wire_put_u64(&c->tx, cookie);
                client_reply rep = { .fd = -1 };
                r = connection_roundtrip(c, -1, &rep);
                uint64_t size = 0;
                uint32_t capacity = 0, zero = 0;
                if (r == TETHER_SUCCESS) {
                        size = wire_get_u64(&rep.body);
                        capacity = wire_get_u32(&rep.body);
                        zero = wire_get_u32(&rep.body);
                        if (wire_reader_done(&rep.body) != TETHER_SUCCESS || rep.fd < 0 || zero || !size ||
                            size > SIZE_MAX)
                                r = TETHER_ERR_IPC;
                }
                int sock = -1;
                if (r == TETHER_SUCCESS && (sock = fcntl(c->fd, F_DUPFD_CLOEXEC, 0)) < 0)
                        r = TETHER_ERR_NO_RESOURCES;
                if (r == TETHER_SUCCESS) {
                        *ret_memfd = rep.fd;
                        *ret_size = size;
                        *ret_capacity = capacity;
                        *ret_sock = sock;
                } else if (rep.fd >= 0) {
                        close(rep.fd);
                }
                pthread_mutex_unlock(&c->lock);
        }
        connect_put(c);
        return r;
}
