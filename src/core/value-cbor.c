/* SPDX-License-Identifier: MIT */
/*
 * Values as CBOR, with libcbor. Encoding uses libcbor's item encoders into
 * one growing buffer. Decoding uses libcbor's streaming decoder, one item
 * per call, with our own explicit stack: nothing is allocated from a count
 * the peer declared, so a few bytes claiming 2^32 items fail at once.
 */
#include <cbor.h>
#include <stdlib.h>
#include <string.h>

#include "core/value-private.h"

/* ---- encoding ---- */

typedef struct out {
        uint8_t *p;
        size_t len, cap;
        bool oom;
} out;

static uint8_t *reserve(out *o, size_t n)
{
        if (o->oom)
                return NULL;
        if (o->cap - o->len < n) {
                size_t cap = o->cap ? o->cap : 64;
                while (cap - o->len < n)
                        cap *= 2;
                uint8_t *p = realloc(o->p, cap);
                if (!p) {
                        o->oom = true;
                        return NULL;
                }
                o->p = p;
                o->cap = cap;
        }
        return o->p + o->len;
}

enum head { H_UINT, H_NEGINT, H_BYTES, H_TEXT, H_ARRAY, H_MAP, H_TAG };

/* A CBOR item head: at most 9 bytes, written by libcbor. */
static void put_head(out *o, enum head kind, uint64_t x)
{
        uint8_t *p = reserve(o, 9);
        if (!p)
                return;
        size_t n = 0;
        switch (kind) {
        case H_UINT: n = cbor_encode_uint(x, p, 9); break;
        case H_NEGINT: n = cbor_encode_negint(x, p, 9); break;
        case H_BYTES: n = cbor_encode_bytestring_start((size_t)x, p, 9); break;
        case H_TEXT: n = cbor_encode_string_start((size_t)x, p, 9); break;
        case H_ARRAY: n = cbor_encode_array_start((size_t)x, p, 9); break;
        case H_MAP: n = cbor_encode_map_start((size_t)x, p, 9); break;
        case H_TAG: n = cbor_encode_tag(x, p, 9); break;
        }
        o->len += n;
}

static void put_raw(out *o, const void *src, size_t n)
{
        uint8_t *p = n ? reserve(o, n) : NULL;
        if (p) {
                memcpy(p, src, n);
                o->len += n;
        }
}

static unsigned width_index(unsigned bits)
{
        return bits == 8 ? 0 : bits == 16 ? 1 : bits == 32 ? 2 : 3;
}

static void encode(out *o, const tether_value *v)
{
        uint8_t *p;
        switch (v->type) {
        case TETHER_TYPE_INT:
                put_head(o, H_TAG, VALUE_TAG_SINT_BASE + width_index(v->bits));
                if (v->u.i < 0)
                        put_head(o, H_NEGINT, (uint64_t)(-1 - v->u.i));
                else
                        put_head(o, H_UINT, (uint64_t)v->u.i);
                break;
        case TETHER_TYPE_UINT:
                put_head(o, H_TAG, VALUE_TAG_UINT_BASE + width_index(v->bits));
                put_head(o, H_UINT, v->u.u);
                break;
        case TETHER_TYPE_DOUBLE:
                if ((p = reserve(o, 9)))
                        o->len += cbor_encode_double(v->u.d, p, 9);
                break;
        case TETHER_TYPE_BOOL:
                if ((p = reserve(o, 1)))
                        o->len += cbor_encode_bool(v->u.b, p, 1);
                break;
        case TETHER_TYPE_STRING:
        case TETHER_TYPE_DATA:
                put_head(o, v->type == TETHER_TYPE_STRING ? H_TEXT : H_BYTES, v->u.bytes.len);
                put_raw(o, v->u.bytes.p, v->u.bytes.len);
                break;
        case TETHER_TYPE_ARRAY:
                put_head(o, H_ARRAY, v->u.array.n);
                for (size_t i = 0; i < v->u.array.n; i++)
                        encode(o, v->u.array.items[i]);
                break;
        case TETHER_TYPE_DICT:
                /* Keys are kept sorted, so the encoding is deterministic. */
                put_head(o, H_MAP, v->u.dict.n);
                for (size_t i = 0; i < v->u.dict.n; i++) {
                        size_t klen = strlen(v->u.dict.entries[i].key);
                        put_head(o, H_TEXT, klen);
                        put_raw(o, v->u.dict.entries[i].key, klen);
                        encode(o, v->u.dict.entries[i].value);
                }
                break;
        }
}

tether_ret_t tether_value_encode(const tether_value *v, uint8_t **ret_buf, size_t *ret_len)
{
        if (!v || !ret_buf || !ret_len)
                return TETHER_ERR_BAD_ARGUMENT;
        out o = { 0 };
        encode(&o, v);
        if (o.oom) {
                free(o.p);
                return TETHER_ERR_NO_MEMORY;
        }
        *ret_buf = o.p;
        *ret_len = o.len;
        return TETHER_SUCCESS;
}

/* ---- decoding ---- */

typedef struct frame {
        tether_value *container;
        uint64_t remaining;       /* items still to come (a map counts keys and values) */
        char *key;                /* a map's key waiting for its value */
} frame;

typedef struct dec {
        frame stack[TETHER_VALUE_MAX_DEPTH];
        unsigned depth;
        tether_value *root;
        const uint8_t *item;      /* the current item's first byte */
        size_t avail;             /* input bytes from there on */
        bool have_tag;
        uint64_t tag;
        tether_ret_t err;
} dec;

static void fail(dec *d, tether_ret_t r)
{
        if (d->err == TETHER_SUCCESS)
                d->err = r;
}

/* Place a finished value: into the open container, or as the root. Takes
 * the reference. Completed containers are placed in turn. */
static void place(dec *d, tether_value *v)
{
        while (v) {
                if (d->err != TETHER_SUCCESS || d->have_tag) {
                        /* A tag may only wrap an integer (handled before). */
                        fail(d, TETHER_ERR_BAD_ARGUMENT);
                        tether_value_unref(v);
                        return;
                }
                if (d->depth == 0) {
                        if (d->root)
                                fail(d, TETHER_ERR_BAD_ARGUMENT);
                        else
                                d->root = v;
                        if (d->root != v)
                                tether_value_unref(v);
                        return;
                }
                frame *f = &d->stack[d->depth - 1];
                tether_ret_t r;
                if (f->container->type == TETHER_TYPE_ARRAY) {
                        r = tether_value_array_append(f->container, v);
                } else if (!f->key) {
                        /* A map key: text only, as OSDictionary keys are symbols. */
                        const char *k;
                        r = tether_value_get_string(v, &k);
                        if (r == TETHER_SUCCESS) {
                                tether_value *dup = NULL;
                                if (tether_value_dict_get(f->container, k, &dup) == TETHER_SUCCESS)
                                        r = TETHER_ERR_BAD_ARGUMENT; /* duplicate key */
                                else if (!(f->key = strdup(k)))
                                        r = TETHER_ERR_NO_MEMORY;
                        }
                } else {
                        r = tether_value_dict_set(f->container, f->key, v);
                        free(f->key);
                        f->key = NULL;
                }
                tether_value_unref(v);
                v = NULL;
                if (r != TETHER_SUCCESS) {
                        fail(d, r);
                        return;
                }
                if (--f->remaining == 0) {
                        v = f->container;
                        f->container = NULL;
                        d->depth--;
                }
        }
}

static void made(dec *d, tether_ret_t r, tether_value *v)
{
        if (r != TETHER_SUCCESS)
                fail(d, r);
        else
                place(d, v);
}

/* An integer: untagged, or inside a width tag. negative: the value is
 * -1 - n. */
static void integer(dec *d, uint64_t n, bool negative)
{
        tether_value *v = NULL;
        tether_ret_t r;
        if (!d->have_tag) {
                r = negative ? (n > INT64_MAX ? TETHER_ERR_BAD_ARGUMENT : tether_value_new_int(-1 - (int64_t)n, 64, &v))
                             : tether_value_new_uint(n, 64, &v);
                made(d, r, v);
                return;
        }
        uint64_t tag = d->tag;
        d->have_tag = false;
        if (tag >= VALUE_TAG_SINT_BASE && tag < VALUE_TAG_SINT_BASE + 4) {
                unsigned bits = 8u << (tag - VALUE_TAG_SINT_BASE);
                if (negative)
                        r = n > INT64_MAX ? TETHER_ERR_BAD_ARGUMENT : tether_value_new_int(-1 - (int64_t)n, bits, &v);
                else
                        r = n > INT64_MAX ? TETHER_ERR_BAD_ARGUMENT : tether_value_new_int((int64_t)n, bits, &v);
        } else if (tag >= VALUE_TAG_UINT_BASE && tag < VALUE_TAG_UINT_BASE + 4 && !negative) {
                r = tether_value_new_uint(n, 8u << (tag - VALUE_TAG_UINT_BASE), &v);
        } else {
                r = TETHER_ERR_BAD_ARGUMENT;
        }
        made(d, r, v);
}

static void cb_u8(void *c, uint8_t x) { integer(c, x, false); }
static void cb_u16(void *c, uint16_t x) { integer(c, x, false); }
static void cb_u32(void *c, uint32_t x) { integer(c, x, false); }
static void cb_u64(void *c, uint64_t x) { integer(c, x, false); }
static void cb_n8(void *c, uint8_t x) { integer(c, x, true); }
static void cb_n16(void *c, uint16_t x) { integer(c, x, true); }
static void cb_n32(void *c, uint32_t x) { integer(c, x, true); }
static void cb_n64(void *c, uint64_t x) { integer(c, x, true); }

static void cb_text(void *c, cbor_data p, size_t n)
{
        tether_value *v = NULL;
        tether_ret_t r = value_new_string_n((const char *)p, n, &v);
        made(c, r, v);
}

static void cb_bytes(void *c, cbor_data p, size_t n)
{
        dec *d = c;
        tether_value *v = NULL;
        tether_ret_t r = n > TETHER_VALUE_MAX_STRING ? TETHER_ERR_BAD_ARGUMENT : tether_value_new_data(p, n, &v);
        made(d, r, v);
}

/* Bytes in the head of the current item (initial byte and its argument). */
static size_t head_len(const dec *d)
{
        static const uint8_t extra[4] = { 1, 2, 4, 8 };
        unsigned info = d->item[0] & 0x1f;
        return 1 + (info < 24 ? 0 : info < 28 ? extra[info - 24] : 0);
}

static void open_container(dec *d, tether_value_type type, uint64_t items)
{
        /* Each member takes at least one byte of what follows the head:
         * a count the input cannot hold fails before anything is built. */
        if (d->have_tag || d->depth >= TETHER_VALUE_MAX_DEPTH || items > d->avail - head_len(d)) {
                fail(d, TETHER_ERR_BAD_ARGUMENT);
                return;
        }
        tether_value *v = NULL;
        tether_ret_t r = type == TETHER_TYPE_ARRAY ? tether_value_new_array(&v) : tether_value_new_dict(&v);
        if (r != TETHER_SUCCESS) {
                fail(d, r);
                return;
        }
        if (items == 0) {
                place(d, v);
                return;
        }
        d->stack[d->depth++] = (frame){ .container = v, .remaining = items };
}

static void cb_array(void *c, size_t n)
{
        open_container(c, TETHER_TYPE_ARRAY, n);
}

static void cb_map(void *c, size_t n)
{
        /* n pairs: keys and values both count. */
        open_container(c, TETHER_TYPE_DICT, n > SIZE_MAX / 2 ? SIZE_MAX : (uint64_t)n * 2);
}

_Static_assert(VALUE_TAG_SINT_BASE + 4 == VALUE_TAG_UINT_BASE, "the width tags are one run of eight");

static void cb_tag(void *c, uint64_t tag)
{
        dec *d = c;
        /* Only the eight width tags, and never one tag inside another. */
        if (d->have_tag || tag < VALUE_TAG_SINT_BASE || tag >= VALUE_TAG_UINT_BASE + 4)
                fail(d, TETHER_ERR_BAD_ARGUMENT);
        d->have_tag = true;
        d->tag = tag;
}

static void cb_float(void *c, float f)
{
        tether_value *v = NULL;
        tether_ret_t r = tether_value_new_double(f, &v);
        made(c, r, v);
}

static void cb_double(void *c, double f)
{
        tether_value *v = NULL;
        tether_ret_t r = tether_value_new_double(f, &v);
        made(c, r, v);
}

static void cb_bool(void *c, bool b)
{
        tether_value *v = NULL;
        tether_ret_t r = tether_value_new_bool(b, &v);
        made(c, r, v);
}

/* null, undefined, indefinite-length items and breaks have no tether type. */
static void cb_refuse(void *c)
{
        fail(c, TETHER_ERR_BAD_ARGUMENT);
}


static const struct cbor_callbacks callbacks = {
        .uint8 = cb_u8, .uint16 = cb_u16, .uint32 = cb_u32, .uint64 = cb_u64,
        .negint8 = cb_n8, .negint16 = cb_n16, .negint32 = cb_n32, .negint64 = cb_n64,
        .byte_string = cb_bytes, .byte_string_start = cb_refuse,
        .string = cb_text, .string_start = cb_refuse,
        .array_start = cb_array, .indef_array_start = cb_refuse,
        .map_start = cb_map, .indef_map_start = cb_refuse,
        .tag = cb_tag,
        .float2 = cb_float, .float4 = cb_float, .float8 = cb_double,
        .undefined = cb_refuse, .null = cb_refuse, .boolean = cb_bool,
        .indef_break = cb_refuse,
};

static void dec_free(dec *d)
{
        for (unsigned i = 0; i < d->depth; i++) {
                tether_value_unref(d->stack[i].container);
                free(d->stack[i].key);
        }
        tether_value_unref(d->root);
}

/*
 * libcbor hands a string's or a container's length to its callbacks as a
 * size_t, cut from an 8-byte head's 64-bit argument. On a 32-bit build a
 * string claiming 2^32 + 3 bytes would so read as a string of 3, and an
 * array of 2^32 + 1 items as one of 1: the same bytes would decode to a
 * value there and be refused on a 64-bit build (as truncated). A length the
 * input left cannot hold is refused before libcbor sees it, whatever the
 * word size: a string's bytes, and each item of a container, take at least
 * one byte each.
 */
static bool length_fits(const uint8_t *p, size_t avail)
{
        unsigned major = p[0] >> 5, info = p[0] & 0x1f;
        if (major < 2 || major > 5 || info != 27 || avail < 9)
                return true; /* no 8-byte length (a short head libcbor refuses itself) */
        uint64_t n = 0;
        for (int i = 1; i <= 8; i++)
                n = n << 8 | p[i];
        return n <= avail - 9;
}

tether_ret_t tether_value_decode(const void *buf, size_t len, tether_value **ret)
{
        if (!buf || !ret || len == 0)
                return TETHER_ERR_BAD_ARGUMENT;
        dec d = { .err = TETHER_SUCCESS };
        size_t off = 0;
        while (off < len && d.err == TETHER_SUCCESS && !(d.root && d.depth == 0)) {
                d.item = (const uint8_t *)buf + off;
                d.avail = len - off;
                if (!length_fits(d.item, d.avail)) {
                        fail(&d, TETHER_ERR_BAD_ARGUMENT);
                        break;
                }
                struct cbor_decoder_result res = cbor_stream_decode((cbor_data)buf + off, len - off, &callbacks, &d);
                if (res.status != CBOR_DECODER_FINISHED || res.read == 0) {
                        fail(&d, TETHER_ERR_BAD_ARGUMENT); /* malformed or truncated */
                        break;
                }
                off += res.read;
        }
        /* One whole item, nothing after it, no dangling tag. */
        if (d.err == TETHER_SUCCESS && (!d.root || d.depth || d.have_tag || off != len))
                d.err = TETHER_ERR_BAD_ARGUMENT;
        if (d.err != TETHER_SUCCESS) {
                dec_free(&d);
                return d.err;
        }
        *ret = d.root;
        return TETHER_SUCCESS;
}
