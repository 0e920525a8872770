/* SPDX-License-Identifier: MIT */
#include "client/client.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client/port.h"

#define MAX_MAPPINGS 16

enum { SLOT_IN, SLOT_OUT, N_SLOTS };

struct tether_connect {
        tether_session *session;
        int fd;
        uint64_t id;
        pthread_mutex_t lock;      /* one call at a time per connection */
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
        tether_connect *next;      /* in the session's list */
};

tether_ret_t tether_service_open(tether_session *s, uint64_t service_id, uint32_t type, uint32_t options,
                                 tether_connect **ret)
{
        if (!s || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        tether_connect *c = calloc(1, sizeof(*c));
        if (!c)
                return TETHER_ERR_NO_MEMORY;
        pthread_mutex_lock(&s->lock);
        session_begin_locked(s, WIRE_OPEN);
        wire_put_u64(&s->tx, service_id);
        wire_put_u32(&s->tx, type);
        wire_put_u32(&s->tx, options);
        client_reply rep;
        tether_ret_t r = session_call_locked(s, &rep);
        if (r == TETHER_SUCCESS) {
                c->id = wire_get_u64(&rep.body);
                if (wire_reader_done(&rep.body) != TETHER_SUCCESS || rep.fd < 0) {
                        if (rep.fd >= 0)
                                close(rep.fd);
                        r = TETHER_ERR_IPC;
                }
        }
        if (r == TETHER_SUCCESS) {
                c->fd = rep.fd;
                c->session = s;
                pthread_mutex_init(&c->lock, NULL);
                c->next = s->connects;
                s->connects = c;
        }
        pthread_mutex_unlock(&s->lock);
        if (r != TETHER_SUCCESS) {
                free(c);
                return r;
        }
        *ret = c;
        return TETHER_SUCCESS;
}

uint64_t tether_connect_id(tether_connect *c)
{
        return c ? c->id : 0;
}

static void begin(tether_connect *c, uint16_t type)
{
        if (++c->serial == 0)
                c->serial = 1;
        wire_msg_init(&c->tx, type, c->serial, 0);
}

static void connect_free(tether_connect *c)
{
        for (int i = 0; i < N_SLOTS; i++)
                if (c->ool[i].map)
                        munmap(c->ool[i].map, c->ool[i].size);
        for (unsigned i = 0; i < c->n_maps; i++)
                munmap(c->maps[i].addr, c->maps[i].size);
        close(c->fd);
        pthread_mutex_destroy(&c->lock);
        free(c);
}

/* With c->lock held: send CLOSE (clientClose) and free c. */
static tether_ret_t close_locked(tether_connect *c)
{
        begin(c, WIRE_CLOSE);
        client_reply rep;
        tether_ret_t r = client_roundtrip(c->fd, &c->tx, -1, c->rx, &rep);
        pthread_mutex_unlock(&c->lock);
        connect_free(c);
        return r;
}

tether_ret_t tether_service_close(tether_connect *c)
{
        if (!c)
                return TETHER_ERR_BAD_ARGUMENT;
        tether_session *s = c->session;
        pthread_mutex_lock(&s->lock);
        for (tether_connect **pp = &s->connects; *pp; pp = &(*pp)->next) {
                if (*pp == c) {
                        *pp = c->next;
                        break;
                }
        }
        pthread_mutex_unlock(&s->lock);
        pthread_mutex_lock(&c->lock);
        return close_locked(c);
}

void connect_close_all(tether_session *s)
{
        while (s->connects) {
                tether_connect *c = s->connects;
                s->connects = c->next;
                pthread_mutex_lock(&c->lock);
                close_locked(c);
        }
}

/* An out-of-line buffer of at least size bytes in slot, made (or grown) and
 * handed to tetherd once; later calls reuse it, because mapping is what
 * costs (milliseconds for tens of MiB), not the call. */
static tether_ret_t ensure_slot(tether_connect *c, int slot, size_t size)
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
        tether_ret_t r = client_roundtrip(c->fd, &c->tx, fd, c->rx, &rep);
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

static tether_ret_t call(tether_connect *c, uint32_t selector, const uint64_t *async_ref,
                         const uint64_t *scalar_input, uint32_t scalar_input_count,
                         const void *struct_input, size_t struct_input_size,
                         uint64_t *scalar_output, uint32_t *scalar_output_count,
                         void *struct_output, size_t *struct_output_size)
{
        uint32_t out_cap = scalar_output_count ? *scalar_output_count : 0;
        size_t struct_cap = struct_output_size ? *struct_output_size : 0;
        if (!c || scalar_input_count > TETHER_MAX_SCALARS || out_cap > TETHER_MAX_SCALARS ||
            (scalar_input_count && !scalar_input) || (out_cap && !scalar_output) ||
            (struct_input_size && !struct_input) || (struct_cap && !struct_output) ||
            struct_input_size > TETHER_MAX_OOL_STRUCT || struct_cap > TETHER_MAX_OOL_STRUCT)
                return TETHER_ERR_BAD_ARGUMENT;

        wire_call wc = {
                .selector = selector,
                .scalar_in_count = scalar_input_count,
                .scalar_out_count = out_cap,
                .struct_in_size = (uint32_t)struct_input_size,
                .struct_out_size = (uint32_t)struct_cap,
                .struct_in = struct_input,
        };
        if (async_ref) {
                wc.flags |= WIRE_CALL_ASYNC;
                memcpy(wc.async_ref, async_ref, sizeof(wc.async_ref));
        }
        if (scalar_input_count)
                memcpy(wc.scalars, scalar_input, scalar_input_count * sizeof(uint64_t));

        pthread_mutex_lock(&c->lock);
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
                r = client_roundtrip(c->fd, &c->tx, -1, c->rx, &rep);
        }
        wire_call_reply cr;
        if (r == TETHER_SUCCESS &&
            (wire_call_reply_decode(rep.body.p, rep.body.left, wc.flags & WIRE_CALL_OOL_OUT, &cr) != TETHER_SUCCESS ||
             cr.scalar_out_count > out_cap || cr.struct_out_size > struct_cap))
                r = TETHER_ERR_IPC;
        if (r == TETHER_SUCCESS) {
                if (cr.scalar_out_count)
                        memcpy(scalar_output, cr.scalars, cr.scalar_out_count * sizeof(uint64_t));
                if (cr.struct_out_size)
                        memcpy(struct_output,
                               (wc.flags & WIRE_CALL_OOL_OUT) ? c->ool[SLOT_OUT].map : (const void *)cr.struct_out,
                               cr.struct_out_size);
                if (scalar_output_count)
                        *scalar_output_count = cr.scalar_out_count;
                if (struct_output_size)
                        *struct_output_size = cr.struct_out_size;
        }
        pthread_mutex_unlock(&c->lock);
        return r;
}

tether_ret_t tether_call_method(tether_connect *c, uint32_t selector, const uint64_t *scalar_input,
                                uint32_t scalar_input_count, const void *struct_input, size_t struct_input_size,
                                uint64_t *scalar_output, uint32_t *scalar_output_count, void *struct_output,
                                size_t *struct_output_size)
{
        return call(c, selector, NULL, scalar_input, scalar_input_count, struct_input, struct_input_size,
                    scalar_output, scalar_output_count, struct_output, struct_output_size);
}

tether_ret_t tether_call_scalar_method(tether_connect *c, uint32_t selector, const uint64_t *input,
                                       uint32_t input_count, uint64_t *output, uint32_t *output_count)
{
        return call(c, selector, NULL, input, input_count, NULL, 0, output, output_count, NULL, NULL);
}

tether_ret_t tether_call_struct_method(tether_connect *c, uint32_t selector, const void *input, size_t input_size,
                                       void *output, size_t *output_size)
{
        return call(c, selector, NULL, NULL, 0, input, input_size, NULL, NULL, output, output_size);
}

tether_ret_t tether_call_async_method(tether_connect *c, uint32_t selector, tether_notification_port *port,
                                      tether_async_callback callback, void *refcon,
                                      const uint64_t *scalar_input, uint32_t scalar_input_count,
                                      const void *struct_input, size_t struct_input_size,
                                      uint64_t *scalar_output, uint32_t *scalar_output_count,
                                      void *struct_output, size_t *struct_output_size)
{
        if (!c || !port || !callback)
                return TETHER_ERR_BAD_ARGUMENT;
        uint64_t ref[TETHER_ASYNC_REF_COUNT] = { 0 };
        tether_ret_t r = port_async_begin(port, callback, refcon, ref);
        if (r != TETHER_SUCCESS)
                return r;
        r = call(c, selector, ref, scalar_input, scalar_input_count, struct_input, struct_input_size,
                 scalar_output, scalar_output_count, struct_output, struct_output_size);
        if (r != TETHER_SUCCESS)
                port_async_cancel(port, ref);
        return r;
}

tether_ret_t tether_map_memory(tether_connect *c, uint32_t type, uint32_t options, void **ret_addr,
                               size_t *ret_size)
{
        if (!c || !ret_addr || (options & ~TETHER_MAP_READ_ONLY))
                return TETHER_ERR_BAD_ARGUMENT;
        pthread_mutex_lock(&c->lock);
        for (unsigned i = 0; i < c->n_maps; i++) {
                if (c->maps[i].type == type) {
                        *ret_addr = c->maps[i].addr;
                        if (ret_size)
                                *ret_size = c->maps[i].size;
                        pthread_mutex_unlock(&c->lock);
                        return TETHER_SUCCESS;
                }
        }
        tether_ret_t r = c->n_maps < MAX_MAPPINGS ? TETHER_SUCCESS : TETHER_ERR_NO_RESOURCES;
        client_reply rep = { .fd = -1 };
        if (r == TETHER_SUCCESS) {
                begin(c, WIRE_MAP_MEMORY);
                wire_put_u32(&c->tx, type);
                wire_put_u32(&c->tx, options);
                r = client_roundtrip(c->fd, &c->tx, -1, c->rx, &rep);
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
        pthread_mutex_unlock(&c->lock);
        return r;
}

tether_ret_t tether_unmap_memory(tether_connect *c, uint32_t type, void *addr)
{
        if (!c)
                return TETHER_ERR_BAD_ARGUMENT;
        tether_ret_t r = TETHER_ERR_NOT_FOUND;
        pthread_mutex_lock(&c->lock);
        for (unsigned i = 0; i < c->n_maps; i++) {
                if (c->maps[i].type == type && c->maps[i].addr == addr) {
                        munmap(addr, c->maps[i].size);
                        c->maps[i] = c->maps[--c->n_maps];
                        r = TETHER_SUCCESS;
                        break;
                }
        }
        pthread_mutex_unlock(&c->lock);
        return r;
}
