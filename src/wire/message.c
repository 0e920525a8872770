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
        if (c->scalar_in_count > TETHER_MAX_SCALARS) {
                m->poisoned = true;
                return;
        }
        size_t scalars = c->scalar_in_count * sizeof(uint64_t);
        size_t inline_in = (c->flags & WIRE_CALL_OOL_IN) ? 0 : c->struct_in_size;
        if (m->poisoned || WIRE_CALL_HEAD + scalars + inline_in > sizeof(m->buf) - m->len) {
                m->poisoned = true;
                return;
        }
        memcpy(m->buf + m->len, c, WIRE_CALL_HEAD + scalars);
        m->len += WIRE_CALL_HEAD + scalars;
        if (inline_in)
                memcpy(m->buf + m->len, c->struct_in, inline_in);
        m->len += inline_in;
}

static bool size_ok(uint32_t size, bool ool)
{
        return ool ? size <= TETHER_MAX_OOL_STRUCT : size <= TETHER_MAX_INLINE_STRUCT;
}

tether_ret_t wire_call_decode(const void *body, size_t len, wire_call *ret)
{
        if (len < WIRE_CALL_HEAD)
                return TETHER_ERR_BAD_ARGUMENT;
        memcpy(ret, body, WIRE_CALL_HEAD);
        ret->struct_in = NULL;
        if ((ret->flags & ~WIRE_CALL_FLAGS) || ret->scalar_in_count > TETHER_MAX_SCALARS ||
            ret->scalar_out_count > TETHER_MAX_SCALARS ||
            !size_ok(ret->struct_in_size, ret->flags & WIRE_CALL_OOL_IN) ||
            !size_ok(ret->struct_out_size, ret->flags & WIRE_CALL_OOL_OUT))
                return TETHER_ERR_BAD_ARGUMENT;
        /* Exactly the scalars and the inline input it names: nothing short,
         * nothing trailing. Each term is bounded above, so no sum wraps. */
        size_t scalars = ret->scalar_in_count * sizeof(uint64_t);
        size_t inline_in = (ret->flags & WIRE_CALL_OOL_IN) ? 0 : ret->struct_in_size;
        if (len != WIRE_CALL_HEAD + scalars + inline_in)
                return TETHER_ERR_BAD_ARGUMENT;
        const uint8_t *p = (const uint8_t *)body + WIRE_CALL_HEAD;
        memcpy(ret->scalars, p, scalars);
        if (!(ret->flags & WIRE_CALL_OOL_IN))
                ret->struct_in = p + scalars;
        return TETHER_SUCCESS;
}

void wire_call_reply_encode(wire_msg *m, const wire_call_reply *r, bool ool_out)
{
        if (r->scalar_out_count > TETHER_MAX_SCALARS) {
                m->poisoned = true;
                return;
        }
        size_t head = WIRE_CALL_REPLY_HEAD + r->scalar_out_count * sizeof(uint64_t);
        size_t inline_out = ool_out ? 0 : r->struct_out_size;
        if (m->poisoned || head + inline_out > sizeof(m->buf) - m->len) {
                m->poisoned = true;
                return;
        }
        memcpy(m->buf + m->len, r, head);
        m->len += head;
        if (inline_out)
                memcpy(m->buf + m->len, r->struct_out, inline_out);
        m->len += inline_out;
}

tether_ret_t wire_call_reply_view(const void *body, size_t len, bool ool_out, wire_call_reply *ret,
                                  const uint8_t **ret_scalars)
{
        if (len < WIRE_CALL_REPLY_HEAD)
                return TETHER_ERR_BAD_ARGUMENT;
        memcpy(ret, body, WIRE_CALL_REPLY_HEAD);
        ret->struct_out = NULL;
        if (ret->scalar_out_count > TETHER_MAX_SCALARS || !size_ok(ret->struct_out_size, ool_out))
                return TETHER_ERR_BAD_ARGUMENT;
        size_t scalars = ret->scalar_out_count * sizeof(uint64_t);
        size_t inline_out = ool_out ? 0 : ret->struct_out_size;
        if (len != WIRE_CALL_REPLY_HEAD + scalars + inline_out)
                return TETHER_ERR_BAD_ARGUMENT;
        const uint8_t *p = (const uint8_t *)body + WIRE_CALL_REPLY_HEAD;
        if (ret_scalars)
                *ret_scalars = p;
        else
                memcpy(ret->scalars, p, scalars);
        if (!ool_out)
                ret->struct_out = p + scalars;
        return TETHER_SUCCESS;
}

tether_ret_t wire_call_reply_decode(const void *body, size_t len, bool ool_out, wire_call_reply *ret)
{
        return wire_call_reply_view(body, len, ool_out, ret, NULL);
}
