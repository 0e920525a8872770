/* SPDX-License-Identifier: MIT */
#include "wire/message.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the wire is little-endian; add swaps for big-endian hosts");

void wire_msg_init(wire_msg *m, uint16_t type, uint32_t serial, int32_t result)
{
        wire_header h = { .type = type, .version = WIRE_VERSION, .serial = serial, .result = result };
        memcpy(m->buf, &h, sizeof(h));
        m->len = sizeof(h);
        m->poisoned = false;
}

void wire_put_bytes(wire_msg *m, const void *p, size_t n)
{
        if (m->poisoned || n > sizeof(m->buf) - m->len) {
                m->poisoned = true;
                return;
        }
        if (n)
                memcpy(m->buf + m->len, p, n);
        m->len += n;
}

void wire_put_u32(wire_msg *m, uint32_t v)
{
        wire_put_bytes(m, &v, sizeof(v));
}

void wire_put_u64(wire_msg *m, uint64_t v)
{
        wire_put_bytes(m, &v, sizeof(v));
}

void wire_put_value(wire_msg *m, const tether_value *v)
{
        uint8_t *buf = NULL;
        size_t len = 0;
        if (tether_value_encode(v, &buf, &len) != TETHER_SUCCESS) {
                m->poisoned = true;
                return;
        }
        wire_put_bytes(m, buf, len);
        free(buf);
}

tether_ret_t wire_msg_finish(wire_msg *m)
{
        if (m->poisoned)
                return TETHER_ERR_MESSAGE_TOO_LARGE;
        uint32_t size = (uint32_t)m->len;
        memcpy(m->buf + offsetof(wire_header, size), &size, sizeof(size));
        return TETHER_SUCCESS;
}

void wire_reader_init(wire_reader *r, const void *body, size_t len)
{
        r->p = body;
        r->left = len;
        r->bad = false;
}

const uint8_t *wire_get_bytes(wire_reader *r, size_t n)
{
        if (r->bad || n > r->left) {
                r->bad = true;
                return NULL;
        }
        const uint8_t *p = r->p;
        r->p += n;
        r->left -= n;
        return p;
}

uint32_t wire_get_u32(wire_reader *r)
{
        uint32_t v = 0;
        const uint8_t *p = wire_get_bytes(r, sizeof(v));
        if (p)
                memcpy(&v, p, sizeof(v));
        return v;
}

uint64_t wire_get_u64(wire_reader *r)
{
        uint64_t v = 0;
        const uint8_t *p = wire_get_bytes(r, sizeof(v));
        if (p)
                memcpy(&v, p, sizeof(v));
        return v;
}

tether_ret_t wire_get_value(wire_reader *r, tether_value **ret)
{
        if (r->bad)
                return TETHER_ERR_BAD_ARGUMENT;
        size_t n = r->left;
        const uint8_t *p = wire_get_bytes(r, n);
        return tether_value_decode(p, n, ret);
}

void wire_put_task(wire_msg *m, const tether_task *t)
{
        wire_put_u32(m, (uint32_t)t->pid);
        wire_put_u32(m, t->uid);
        wire_put_u32(m, t->gid);
        wire_put_u32(m, t->abi_word_bits);
        wire_put_u32(m, t->privileges);
}

void wire_get_task(wire_reader *r, tether_task *ret)
{
        *ret = (tether_task){ .pid = (pid_t)wire_get_u32(r) };
        ret->uid = wire_get_u32(r);
        ret->gid = wire_get_u32(r);
        ret->abi_word_bits = wire_get_u32(r);
        ret->privileges = wire_get_u32(r);
}

tether_ret_t wire_reader_done(const wire_reader *r)
{
        return (r->bad || r->left) ? TETHER_ERR_BAD_ARGUMENT : TETHER_SUCCESS;
}

tether_ret_t wire_header_check(const void *buf, size_t len, wire_header *ret)
{
        if (!buf || len < sizeof(wire_header))
                return TETHER_ERR_BAD_ARGUMENT;
        wire_header h;
        memcpy(&h, buf, sizeof(h));
        if (h.size != len)
                return TETHER_ERR_BAD_ARGUMENT;
        if (h.version != WIRE_VERSION)
                return TETHER_ERR_BAD_MESSAGE_ID;
        *ret = h;
        return TETHER_SUCCESS;
}

void wire_call_encode(wire_msg *m, const wire_call *c)
{
        wire_put_u32(m, c->selector);
        wire_put_u32(m, c->flags);
        wire_put_u32(m, c->scalar_in_count);
        wire_put_u32(m, c->scalar_out_count);
        wire_put_u32(m, c->struct_in_size);
        wire_put_u32(m, c->struct_out_size);
        wire_put_bytes(m, c->async_ref, sizeof(c->async_ref));
        if (c->scalar_in_count > TETHER_MAX_SCALARS) {
                m->poisoned = true;
                return;
        }
        wire_put_bytes(m, c->scalars, c->scalar_in_count * sizeof(uint64_t));
        if (!(c->flags & WIRE_CALL_OOL_IN))
                wire_put_bytes(m, c->struct_in, c->struct_in_size);
}

static bool size_ok(uint32_t size, bool ool)
{
        return ool ? size <= TETHER_MAX_OOL_STRUCT : size <= TETHER_MAX_INLINE_STRUCT;
}

tether_ret_t wire_call_decode(const void *body, size_t len, wire_call *ret)
{
        wire_reader r;
        wire_reader_init(&r, body, len);
        memset(ret, 0, sizeof(*ret));
        ret->selector = wire_get_u32(&r);
        ret->flags = wire_get_u32(&r);
        ret->scalar_in_count = wire_get_u32(&r);
        ret->scalar_out_count = wire_get_u32(&r);
        ret->struct_in_size = wire_get_u32(&r);
        ret->struct_out_size = wire_get_u32(&r);
        const uint8_t *ref = wire_get_bytes(&r, sizeof(ret->async_ref));
        if (r.bad)
                return TETHER_ERR_BAD_ARGUMENT;
        memcpy(ret->async_ref, ref, sizeof(ret->async_ref));
        if ((ret->flags & ~WIRE_CALL_FLAGS) || ret->scalar_in_count > TETHER_MAX_SCALARS ||
            ret->scalar_out_count > TETHER_MAX_SCALARS ||
            !size_ok(ret->struct_in_size, ret->flags & WIRE_CALL_OOL_IN) ||
            !size_ok(ret->struct_out_size, ret->flags & WIRE_CALL_OOL_OUT))
                return TETHER_ERR_BAD_ARGUMENT;
        const uint8_t *s = wire_get_bytes(&r, ret->scalar_in_count * sizeof(uint64_t));
        if (r.bad)
                return TETHER_ERR_BAD_ARGUMENT;
        memcpy(ret->scalars, s, ret->scalar_in_count * sizeof(uint64_t));
        if (!(ret->flags & WIRE_CALL_OOL_IN))
                ret->struct_in = wire_get_bytes(&r, ret->struct_in_size);
        return wire_reader_done(&r);
}

void wire_call_reply_encode(wire_msg *m, const wire_call_reply *r, bool ool_out)
{
        wire_put_u32(m, r->scalar_out_count);
        wire_put_u32(m, r->struct_out_size);
        if (r->scalar_out_count > TETHER_MAX_SCALARS) {
                m->poisoned = true;
                return;
        }
        wire_put_bytes(m, r->scalars, r->scalar_out_count * sizeof(uint64_t));
        if (!ool_out)
                wire_put_bytes(m, r->struct_out, r->struct_out_size);
}

tether_ret_t wire_call_reply_decode(const void *body, size_t len, bool ool_out, wire_call_reply *ret)
{
        wire_reader r;
        wire_reader_init(&r, body, len);
        memset(ret, 0, sizeof(*ret));
        ret->scalar_out_count = wire_get_u32(&r);
        ret->struct_out_size = wire_get_u32(&r);
        if (r.bad || ret->scalar_out_count > TETHER_MAX_SCALARS || !size_ok(ret->struct_out_size, ool_out))
                return TETHER_ERR_BAD_ARGUMENT;
        const uint8_t *s = wire_get_bytes(&r, ret->scalar_out_count * sizeof(uint64_t));
        if (r.bad)
                return TETHER_ERR_BAD_ARGUMENT;
        memcpy(ret->scalars, s, ret->scalar_out_count * sizeof(uint64_t));
        if (!ool_out)
                ret->struct_out = wire_get_bytes(&r, ret->struct_out_size);
        return wire_reader_done(&r);
}
