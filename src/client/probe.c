/* SPDX-License-Identifier: MIT */
/* Probes: a socket tetherd writes call and USB events to (docs/wire.md). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client.h"

/* What a tether_probe * names. */
typedef struct client_probe {
        handle_obj obj;
        /* Closed with the last reference: a read may be under way on
         * another thread when the probe is detached. */
        int fd;
        uint8_t rx[WIRE_MAX_MESSAGE];
} client_probe;

static void probe_free(handle_obj *o)
{
        client_probe *p = handle_container(o, client_probe, obj);
        if (p->fd >= 0)
                close(p->fd);
        free(p);
}

/* PROBE_ATTACH on the session: the probe's socket, or an error. */
static tether_ret_t request_probe(client_session *s, const tether_probe_filter *f, int *ret_fd)
{
        tether_ret_t r = session_lock_live(s);
        if (r != TETHER_SUCCESS)
                return r;
        session_begin_locked(s, WIRE_PROBE_ATTACH);
        wire_put_u32(&s->tx, f->kinds);
        wire_put_u32(&s->tx, f->snaplen);
        wire_put_u64(&s->tx, f->service_id);
        wire_put_u32(&s->tx, (uint32_t)f->pid);
        wire_put_u32(&s->tx, f->selector);
        client_reply rep;
        r = session_call_locked(s, &rep);
        pthread_mutex_unlock(&s->lock);
        if (r == TETHER_SUCCESS && rep.fd < 0)
                r = TETHER_ERR_IPC;
        if (r == TETHER_SUCCESS)
                *ret_fd = rep.fd;
        return r;
}

tether_ret_t tether_probe_attach(tether_session *h, const tether_probe_filter *f, tether_probe **ret)
{
        client_session *s = NULL;
        if (!f || !ret || session_get(h, &s) != TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT;
        client_probe *p = calloc(1, sizeof(*p));
        if (!p) {
                session_put(s);
                return TETHER_ERR_NO_MEMORY;
        }
        handle_obj_init(&p->obj, probe_free);
        p->fd = -1;
        tether_ret_t r = request_probe(s, f, &p->fd);
        session_put(s); /* the probe has a socket of its own */
        uintptr_t name = 0;
        if (r == TETHER_SUCCESS) {
                fcntl(p->fd, F_SETFL, O_NONBLOCK);
                r = handle_add(&p->obj, HANDLE_PROBE, &name);
        }
        if (r == TETHER_SUCCESS)
                *ret = (tether_probe *)name;
        handle_obj_put(&p->obj);
        return r;
}

int tether_probe_get_fd(tether_probe *h)
{
        handle_obj *o = NULL;
        if (handle_get(h, HANDLE_PROBE, &o) != TETHER_SUCCESS)
                return -1;
        int fd = handle_container(o, client_probe, obj)->fd;
        handle_obj_put(o);
        return fd;
}

void tether_probe_detach(tether_probe *h)
{
        handle_obj *o = NULL;
        if (handle_remove(h, HANDLE_PROBE, &o) == TETHER_SUCCESS)
                handle_obj_put(o);
}

static void get_context(wire_reader *rd, tether_probe_event *e)
{
        e->service_id = wire_get_u64(rd);
        e->session_id = wire_get_u64(rd);
        e->connection_id = wire_get_u64(rd);
        e->pid = (int32_t)wire_get_u32(rd);
        e->selector = wire_get_u32(rd);
}

static tether_ret_t decode_call(wire_reader *rd, tether_probe_event *e)
{
        e->time_ns = wire_get_u64(rd);
        e->duration_ns = wire_get_u64(rd);
        get_context(rd, e);
        e->call_flags = wire_get_u32(rd);
        e->scalar_in = wire_get_u32(rd);
        e->scalar_out = wire_get_u32(rd);
        e->struct_in = wire_get_u32(rd);
        e->struct_out = wire_get_u32(rd);
        e->dropped = wire_get_u32(rd);
        const uint8_t *name = wire_get_bytes(rd, sizeof(e->method));
        if (name) {
                memcpy(e->method, name, sizeof(e->method));
                e->method[sizeof(e->method) - 1] = 0;
        }
        return wire_reader_done(rd);
}

static tether_ret_t decode_async(wire_reader *rd, tether_probe_event *e)
{
        e->time_ns = wire_get_u64(rd);
        get_context(rd, e);
        e->dropped = wire_get_u32(rd);
        e->async_flags = wire_get_u32(rd);
        e->delivery = (tether_ret_t)wire_get_u32(rd);
        e->arg_count = wire_get_u32(rd);
        if (e->arg_count > 16)
                return TETHER_ERR_IPC;
        for (uint32_t i = 0; i < e->arg_count; i++)
                e->args[i] = wire_get_u64(rd);
        return wire_reader_done(rd);
}

/* A u32 length, then that many bytes of text: into out, NUL-terminated. */
static tether_ret_t get_text(wire_reader *rd, char *out, size_t size)
{
        uint32_t n = wire_get_u32(rd);
        if (n >= size)
                return TETHER_ERR_IPC;
        const uint8_t *p = wire_get_bytes(rd, n);
        if (!p)
                return TETHER_ERR_IPC;
        memcpy(out, p, n);
        out[n] = '\0';
        return strlen(out) == n ? TETHER_SUCCESS : TETHER_ERR_IPC;
}

static tether_ret_t decode_property(wire_reader *rd, tether_probe_event *e)
{
        e->time_ns = wire_get_u64(rd);
        e->duration_ns = wire_get_u64(rd);
        get_context(rd, e);
        e->dropped = wire_get_u32(rd);
        tether_ret_t r = get_text(rd, e->keys, sizeof(e->keys));
        if (r == TETHER_SUCCESS)
                r = get_text(rd, e->reason, sizeof(e->reason));
        return r == TETHER_SUCCESS ? wire_reader_done(rd) : r;
}

static tether_ret_t decode_usb(wire_reader *rd, tether_probe_event *e)
{
        e->time_ns = wire_get_u64(rd);
        uint64_t done = wire_get_u64(rd);
        e->duration_ns = done > e->time_ns ? done - e->time_ns : 0;
        get_context(rd, e);
        uint32_t where = wire_get_u32(rd);
        e->bus = (uint16_t)where;
        e->address = (uint8_t)(where >> 16);
        e->transfer_type = (uint8_t)(where >> 24);
        e->endpoint = (uint8_t)wire_get_u32(rd);
        const uint8_t *setup = wire_get_bytes(rd, sizeof(e->setup));
        if (setup)
                memcpy(e->setup, setup, sizeof(e->setup));
        e->requested = wire_get_u32(rd);
        e->actual = wire_get_u32(rd);
        e->captured = wire_get_u32(rd);
        e->dropped = wire_get_u32(rd);
        e->data = wire_get_bytes(rd, e->captured);
        return wire_reader_done(rd);
}

static tether_ret_t probe_read(client_probe *p, tether_probe_event *ret)
{
        size_t len = 0;
        int fd = -1;
        tether_ret_t r = wire_recv(p->fd, p->rx, sizeof(p->rx), &len, &fd);
        if (fd >= 0)
                close(fd); /* probes never carry descriptors */
        if (r != TETHER_SUCCESS)
                return r;
        wire_header h;
        r = wire_header_check(p->rx, len, &h);
        if (r != TETHER_SUCCESS)
                return TETHER_ERR_IPC;
        wire_reader rd;
        wire_reader_init(&rd, p->rx + WIRE_HEADER_SIZE, len - WIRE_HEADER_SIZE);
        memset(ret, 0, sizeof(*ret));
        ret->result = h.result;
        switch (h.type) {
        case WIRE_PROBE_CALL:
                ret->kind = TETHER_PROBE_EVENT_CALL;
                r = decode_call(&rd, ret);
                break;
        case WIRE_PROBE_ASYNC:
                ret->kind = TETHER_PROBE_EVENT_ASYNC;
                r = decode_async(&rd, ret);
                break;
        case WIRE_PROBE_USB:
                ret->kind = TETHER_PROBE_EVENT_USB;
                r = decode_usb(&rd, ret);
                break;
        case WIRE_PROBE_PROPERTY:
                ret->kind = TETHER_PROBE_EVENT_PROPERTY;
                r = decode_property(&rd, ret);
                break;
        default:
                r = TETHER_ERR_BAD_MESSAGE_ID;
        }
        return r == TETHER_SUCCESS ? r : TETHER_ERR_IPC;
}

tether_ret_t tether_probe_read(tether_probe *h, tether_probe_event *ret)
{
        handle_obj *o = NULL;
        if (!ret || handle_get(h, HANDLE_PROBE, &o) != TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT;
        tether_ret_t r = probe_read(handle_container(o, client_probe, obj), ret);
        handle_obj_put(o);
        return r;
}
