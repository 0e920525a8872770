/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "core/value-private.h"

static tether_value *alloc_value(tether_value_type type)
{
        tether_value *v = calloc(1, sizeof(*v));
        if (v) {
                atomic_init(&v->refs, 1);
                v->type = type;
                v->depth = type == TETHER_TYPE_ARRAY || type == TETHER_TYPE_DICT;
        }
        return v;
}

static bool width_ok(unsigned bits)
{
        return bits == 8 || bits == 16 || bits == 32 || bits == 64;
}

tether_ret_t tether_value_new_int(int64_t x, unsigned bits, tether_value **ret)
{
        if (!ret || !width_ok(bits))
                return TETHER_ERR_BAD_ARGUMENT;
        if (bits < 64) {
                int64_t lim = (int64_t)1 << (bits - 1);
                if (x < -lim || x >= lim)
                        return TETHER_ERR_BAD_ARGUMENT;
        }
        tether_value *v = alloc_value(TETHER_TYPE_INT);
        if (!v)
                return TETHER_ERR_NO_MEMORY;
        v->bits = bits;
        v->u.i = x;
        *ret = v;
        return TETHER_SUCCESS;
}

tether_ret_t tether_value_new_uint(uint64_t x, unsigned bits, tether_value **ret)
{
        if (!ret || !width_ok(bits) || (bits < 64 && x >> bits))
                return TETHER_ERR_BAD_ARGUMENT;
        tether_value *v = alloc_value(TETHER_TYPE_UINT);
        if (!v)
                return TETHER_ERR_NO_MEMORY;
        v->bits = bits;
        v->u.u = x;
        *ret = v;
        return TETHER_SUCCESS;
}

tether_ret_t tether_value_new_double(double x, tether_value **ret)
{
        if (!ret)
                return TETHER_ERR_BAD_ARGUMENT;
        tether_value *v = alloc_value(TETHER_TYPE_DOUBLE);
        if (!v)
                return TETHER_ERR_NO_MEMORY;
        v->u.d = x;
        *ret = v;
        return TETHER_SUCCESS;
}

tether_ret_t tether_value_new_bool(bool x, tether_value **ret)
{
        if (!ret)
                return TETHER_ERR_BAD_ARGUMENT;
        tether_value *v = alloc_value(TETHER_TYPE_BOOL);
        if (!v)
                return TETHER_ERR_NO_MEMORY;
        v->u.b = x;
        *ret = v;
        return TETHER_SUCCESS;
}

static tether_ret_t new_bytes(tether_value_type type, const void *p, size_t len, tether_value **ret)
{
        tether_value *v = alloc_value(type);
        char *copy = malloc(len + 1);
        if (!v || !copy) {
                free(v);
                free(copy);
                return TETHER_ERR_NO_MEMORY;
        }
        if (len)
                memcpy(copy, p, len);
        copy[len] = '\0';
        v->u.bytes.p = copy;
        v->u.bytes.len = len;
        *ret = v;
        return TETHER_SUCCESS;
}

bool value_utf8_valid(const char *str, size_t len)
{
        const unsigned char *s = (const unsigned char *)str;
        size_t i = 0;
        while (i < len) {
                unsigned char c = s[i];
                if (c == 0)
                        return false;
                if (c < 0x80) {
                        i++;
                        continue;
                }
                size_t n;
                uint32_t cp, min;
                if ((c & 0xe0) == 0xc0) {
                        n = 1, cp = c & 0x1f, min = 0x80;
                } else if ((c & 0xf0) == 0xe0) {
                        n = 2, cp = c & 0x0f, min = 0x800;
                } else if ((c & 0xf8) == 0xf0) {
                        n = 3, cp = c & 0x07, min = 0x10000;
                } else {
                        return false;
                }
                if (len - i <= n)
                        return false;
                for (size_t k = 1; k <= n; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (s[i + k] & 0x3f);
                }
                if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                i += n + 1;
        }
        return true;
}

tether_ret_t value_new_string_n(const char *s, size_t len, tether_value **ret)
{
        if (!s || !ret || len > TETHER_VALUE_MAX_STRING || !value_utf8_valid(s, len))
                return TETHER_ERR_BAD_ARGUMENT;
        return new_bytes(TETHER_TYPE_STRING, s, len, ret);
}

tether_ret_t tether_value_new_string(const char *s, tether_value **ret)
{
        if (!s)
                return TETHER_ERR_BAD_ARGUMENT;
        /* Bounded, so an unterminated or huge string is refused without
         * reading past the limit. */
        return value_new_string_n(s, strnlen(s, TETHER_VALUE_MAX_STRING + 1), ret);
}

tether_ret_t tether_value_new_data(const void *bytes, size_t len, tether_value **ret)
{
        if (!ret || (len && !bytes) || len > TETHER_VALUE_MAX_STRING)
                return TETHER_ERR_BAD_ARGUMENT;
        return new_bytes(TETHER_TYPE_DATA, bytes, len, ret);
}

tether_ret_t tether_value_new_array(tether_value **ret)
{
        if (!ret)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret = alloc_value(TETHER_TYPE_ARRAY);
        return *ret ? TETHER_SUCCESS : TETHER_ERR_NO_MEMORY;
}

tether_ret_t tether_value_new_dict(tether_value **ret)
{
        if (!ret)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret = alloc_value(TETHER_TYPE_DICT);
        return *ret ? TETHER_SUCCESS : TETHER_ERR_NO_MEMORY;
}

tether_value *tether_value_ref(tether_value *v)
{
        if (v)
                atomic_fetch_add(&v->refs, 1);
        return v;
}

tether_value *tether_value_unref(tether_value *v)
{
        if (!v || atomic_fetch_sub(&v->refs, 1) != 1)
                return NULL;
        switch (v->type) {
        case TETHER_TYPE_STRING:
        case TETHER_TYPE_DATA:
                free(v->u.bytes.p);
                break;
        case TETHER_TYPE_ARRAY:
                for (size_t i = 0; i < v->u.array.n; i++)
                        tether_value_unref(v->u.array.items[i]);
                free(v->u.array.items);
                break;
        case TETHER_TYPE_DICT:
                for (size_t i = 0; i < v->u.dict.n; i++) {
                        free(v->u.dict.entries[i].key);
                        tether_value_unref(v->u.dict.entries[i].value);
                }
                free(v->u.dict.entries);
                break;
        default:
                break;
        }
        free(v);
        return NULL;
}

tether_value_type tether_value_get_type(const tether_value *v)
{
        return v ? v->type : 0;
}

const char *tether_value_type_name(tether_value_type t)
{
        switch (t) {
        case TETHER_TYPE_INT: return "int";
        case TETHER_TYPE_UINT: return "uint";
        case TETHER_TYPE_DOUBLE: return "double";
        case TETHER_TYPE_BOOL: return "bool";
        case TETHER_TYPE_STRING: return "string";
        case TETHER_TYPE_DATA: return "data";
        case TETHER_TYPE_ARRAY: return "array";
        case TETHER_TYPE_DICT: return "dict";
        }
        return "invalid";
}

tether_ret_t tether_value_get_int(const tether_value *v, int64_t *ret)
{
        if (!v || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        if (v->type == TETHER_TYPE_INT)
                *ret = v->u.i;
        else if (v->type == TETHER_TYPE_UINT && v->u.u <= INT64_MAX)
                *ret = (int64_t)v->u.u;
        else
                return TETHER_ERR_BAD_ARGUMENT;
        return TETHER_SUCCESS;
}

tether_ret_t tether_value_get_uint(const tether_value *v, uint64_t *ret)
{
        if (!v || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        if (v->type == TETHER_TYPE_UINT)
                *ret = v->u.u;
        else if (v->type == TETHER_TYPE_INT && v->u.i >= 0)
                *ret = (uint64_t)v->u.i;
        else
                return TETHER_ERR_BAD_ARGUMENT;
        return TETHER_SUCCESS;
}

unsigned tether_value_get_bits(const tether_value *v)
{
        return v && (v->type == TETHER_TYPE_INT || v->type == TETHER_TYPE_UINT) ? v->bits : 0;
}

tether_ret_t tether_value_get_double(const tether_value *v, double *ret)
{
        if (!v || !ret || v->type != TETHER_TYPE_DOUBLE)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret = v->u.d;
        return TETHER_SUCCESS;
}

tether_ret_t tether_value_get_bool(const tether_value *v, bool *ret)
{
        if (!v || !ret || v->type != TETHER_TYPE_BOOL)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret = v->u.b;
        return TETHER_SUCCESS;
}

tether_ret_t tether_value_get_string(const tether_value *v, const char **ret)
{
        if (!v || !ret || v->type != TETHER_TYPE_STRING)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret = v->u.bytes.p;
        return TETHER_SUCCESS;
}

tether_ret_t tether_value_get_data(const tether_value *v, const void **ret_bytes, size_t *ret_len)
{
        if (!v || !ret_bytes || !ret_len || v->type != TETHER_TYPE_DATA)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret_bytes = v->u.bytes.p;
        *ret_len = v->u.bytes.len;
        return TETHER_SUCCESS;
}

size_t tether_value_count(const tether_value *v)
{
        if (!v)
                return 0;
        if (v->type == TETHER_TYPE_ARRAY)
                return v->u.array.n;
        if (v->type == TETHER_TYPE_DICT)
                return v->u.dict.n;
        return 0;
}

/* The item may not be the container itself, and the result may not nest
 * deeper than the decoder would accept (so whatever we build, we can read
 * back). Members are immutable once inserted, so their recorded depth
 * stays true and no deeper cycle can form. */
static bool insertable(const tether_value *container, const tether_value *item)
{
        return item && item != container && item->depth < TETHER_VALUE_MAX_DEPTH;
}

/* After a member was replaced or removed the dict may have become shallower;
 * a stale, larger depth would wrongly refuse inserting it somewhere later. */
static void dict_redepth(tether_value *d)
{
        unsigned depth = 0;
        for (size_t i = 0; i < d->u.dict.n; i++)
                if (d->u.dict.entries[i].value->depth > depth)
                        depth = d->u.dict.entries[i].value->depth;
        d->depth = depth + 1;
}

/* mem (n members of size bytes used, *cap allocated) with room for one
 * more: the same or a moved block, or NULL (mem untouched) when out of
 * memory. */
static void *grow(void *mem, size_t n, size_t *cap, size_t size)
{
        if (n < *cap)
                return mem;
        size_t next = *cap ? *cap * 2 : 4;
        if (next < *cap || next > SIZE_MAX / size)
                return NULL;
        void *p = realloc(mem, next * size);
        if (p)
                *cap = next;
        return p;
}

tether_ret_t tether_value_array_append(tether_value *a, tether_value *item)
{
        if (!a || a->type != TETHER_TYPE_ARRAY || !insertable(a, item))
                return TETHER_ERR_BAD_ARGUMENT;
        tether_value **items = grow(a->u.array.items, a->u.array.n, &a->u.array.cap, sizeof(*items));
        if (!items)
                return TETHER_ERR_NO_MEMORY;
        a->u.array.items = items;
        a->u.array.items[a->u.array.n++] = tether_value_ref(item);
        if (item->depth + 1 > a->depth)
                a->depth = item->depth + 1;
        return TETHER_SUCCESS;
}

tether_ret_t tether_value_array_get(const tether_value *a, size_t index, tether_value **ret)
{
        if (!a || !ret || a->type != TETHER_TYPE_ARRAY || index >= a->u.array.n)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret = a->u.array.items[index];
        return TETHER_SUCCESS;
}

/* Binary search: the index of key, or where it would go. */
static size_t dict_find(const tether_value *d, const char *key, bool *found)
{
        size_t lo = 0, hi = d->u.dict.n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(d->u.dict.entries[mid].key, key);
                if (c == 0) {
                        *found = true;
                        return mid;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *found = false;
        return lo;
}

static bool key_ok(const char *key)
{
        if (!key)
                return false;
        size_t len = strnlen(key, TETHER_VALUE_MAX_STRING + 1);
        return len <= TETHER_VALUE_MAX_STRING && value_utf8_valid(key, len);
}

tether_ret_t tether_value_dict_set(tether_value *d, const char *key, tether_value *item)
{
        if (!d || d->type != TETHER_TYPE_DICT || !key_ok(key) || !insertable(d, item))
                return TETHER_ERR_BAD_ARGUMENT;
        bool found;
        size_t i = dict_find(d, key, &found);
        if (found) {
                tether_value *old = d->u.dict.entries[i].value;
                d->u.dict.entries[i].value = tether_value_ref(item);
                tether_value_unref(old);
                dict_redepth(d);
                return TETHER_SUCCESS;
        }
        dict_entry *entries = grow(d->u.dict.entries, d->u.dict.n, &d->u.dict.cap, sizeof(*entries));
        if (!entries)
                return TETHER_ERR_NO_MEMORY;
        d->u.dict.entries = entries;
        char *k = strdup(key);
        if (!k)
                return TETHER_ERR_NO_MEMORY;
        memmove(&d->u.dict.entries[i + 1], &d->u.dict.entries[i], (d->u.dict.n - i) * sizeof(dict_entry));
        d->u.dict.entries[i] = (dict_entry){ .key = k, .value = tether_value_ref(item) };
        d->u.dict.n++;
        if (item->depth + 1 > d->depth)
                d->depth = item->depth + 1;
        return TETHER_SUCCESS;
}

tether_ret_t tether_value_dict_get(const tether_value *d, const char *key, tether_value **ret)
{
        if (!d || !key || !ret || d->type != TETHER_TYPE_DICT)
                return TETHER_ERR_BAD_ARGUMENT;
        bool found;
        size_t i = dict_find(d, key, &found);
        if (!found)
                return TETHER_ERR_NOT_FOUND;
        *ret = d->u.dict.entries[i].value;
        return TETHER_SUCCESS;
}

const char *tether_value_dict_string(const tether_value *d, const char *key)
{
        tether_value *v = NULL;
        const char *str = NULL;
        if (tether_value_dict_get(d, key, &v) == TETHER_SUCCESS)
                tether_value_get_string(v, &str);
        return str;
}

uint64_t tether_value_dict_uint(const tether_value *d, const char *key, uint64_t otherwise)
{
        tether_value *v = NULL;
        uint64_t u = otherwise;
        if (tether_value_dict_get(d, key, &v) != TETHER_SUCCESS || tether_value_get_uint(v, &u) != TETHER_SUCCESS)
                return otherwise;
        return u;
}

tether_ret_t tether_value_dict_remove(tether_value *d, const char *key)
{
        if (!d || !key || d->type != TETHER_TYPE_DICT)
                return TETHER_ERR_BAD_ARGUMENT;
        bool found;
        size_t i = dict_find(d, key, &found);
        if (!found)
                return TETHER_ERR_NOT_FOUND;
        free(d->u.dict.entries[i].key);
        tether_value_unref(d->u.dict.entries[i].value);
        memmove(&d->u.dict.entries[i], &d->u.dict.entries[i + 1], (d->u.dict.n - i - 1) * sizeof(dict_entry));
        d->u.dict.n--;
        dict_redepth(d);
        return TETHER_SUCCESS;
}

tether_ret_t tether_value_dict_entry(const tether_value *d, size_t index, const char **ret_key,
                                     tether_value **ret_value)
{
        if (!d || !ret_key || !ret_value || d->type != TETHER_TYPE_DICT || index >= d->u.dict.n)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret_key = d->u.dict.entries[index].key;
        *ret_value = d->u.dict.entries[index].value;
        return TETHER_SUCCESS;
}

/* Set a freshly made value (made == its constructor's result) and drop our
 * reference: every shorthand below is this. */
static tether_ret_t set_made(tether_value *d, const char *key, tether_ret_t made, tether_value *v)
{
        tether_ret_t r = made == TETHER_SUCCESS ? tether_value_dict_set(d, key, v) : made;
        tether_value_unref(v);
        return r;
}

tether_ret_t tether_value_dict_set_int(tether_value *d, const char *key, int64_t x, unsigned bits)
{
        tether_value *v = NULL;
        tether_ret_t r = tether_value_new_int(x, bits, &v);
        return set_made(d, key, r, v);
}

tether_ret_t tether_value_dict_set_uint(tether_value *d, const char *key, uint64_t x, unsigned bits)
{
        tether_value *v = NULL;
        tether_ret_t r = tether_value_new_uint(x, bits, &v);
        return set_made(d, key, r, v);
}

tether_ret_t tether_value_dict_set_double(tether_value *d, const char *key, double x)
{
        tether_value *v = NULL;
        tether_ret_t r = tether_value_new_double(x, &v);
        return set_made(d, key, r, v);
}

tether_ret_t tether_value_dict_set_bool(tether_value *d, const char *key, bool x)
{
        tether_value *v = NULL;
        tether_ret_t r = tether_value_new_bool(x, &v);
        return set_made(d, key, r, v);
}

tether_ret_t tether_value_dict_set_string(tether_value *d, const char *key, const char *s)
{
        tether_value *v = NULL;
        tether_ret_t r = tether_value_new_string(s, &v);
        return set_made(d, key, r, v);
}

tether_ret_t tether_value_dict_set_data(tether_value *d, const char *key, const void *b, size_t n)
{
        tether_value *v = NULL;
        tether_ret_t r = tether_value_new_data(b, n, &v);
        return set_made(d, key, r, v);
}

bool tether_value_equal(const tether_value *a, const tether_value *b)
{
        if (a == b)
                return true;
        if (!a || !b || a->type != b->type)
                return false;
        switch (a->type) {
        case TETHER_TYPE_INT:
                return a->bits == b->bits && a->u.i == b->u.i;
        case TETHER_TYPE_UINT:
                return a->bits == b->bits && a->u.u == b->u.u;
        case TETHER_TYPE_DOUBLE:
                return !memcmp(&a->u.d, &b->u.d, sizeof(double)); /* NaN == NaN, -0 != +0 */
        case TETHER_TYPE_BOOL:
                return a->u.b == b->u.b;
        case TETHER_TYPE_STRING:
        case TETHER_TYPE_DATA:
                return a->u.bytes.len == b->u.bytes.len && !memcmp(a->u.bytes.p, b->u.bytes.p, a->u.bytes.len);
        case TETHER_TYPE_ARRAY:
                if (a->u.array.n != b->u.array.n)
                        return false;
                for (size_t i = 0; i < a->u.array.n; i++)
                        if (!tether_value_equal(a->u.array.items[i], b->u.array.items[i]))
                                return false;
                return true;
        case TETHER_TYPE_DICT:
                if (a->u.dict.n != b->u.dict.n)
                        return false;
                for (size_t i = 0; i < a->u.dict.n; i++)
                        if (strcmp(a->u.dict.entries[i].key, b->u.dict.entries[i].key) ||
                            !tether_value_equal(a->u.dict.entries[i].value, b->u.dict.entries[i].value))
                                return false;
                return true;
        }
        return false;
}

tether_ret_t tether_value_copy(const tether_value *v, tether_value **ret)
{
        if (!v || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        tether_value *c = NULL;
        tether_ret_t r;
        switch (v->type) {
        case TETHER_TYPE_STRING:
        case TETHER_TYPE_DATA:
                r = new_bytes(v->type, v->u.bytes.p, v->u.bytes.len, &c);
                break;
        case TETHER_TYPE_ARRAY:
                r = tether_value_new_array(&c);
                for (size_t i = 0; r == TETHER_SUCCESS && i < v->u.array.n; i++) {
                        tether_value *item = NULL;
                        r = tether_value_copy(v->u.array.items[i], &item);
                        if (r == TETHER_SUCCESS)
                                r = tether_value_array_append(c, item);
                        tether_value_unref(item);
                }
                break;
        case TETHER_TYPE_DICT:
                r = tether_value_new_dict(&c);
                for (size_t i = 0; r == TETHER_SUCCESS && i < v->u.dict.n; i++) {
                        tether_value *item = NULL;
                        r = tether_value_copy(v->u.dict.entries[i].value, &item);
                        if (r == TETHER_SUCCESS)
                                r = tether_value_dict_set(c, v->u.dict.entries[i].key, item);
                        tether_value_unref(item);
                }
                break;
        default:
                c = alloc_value(v->type);
                r = c ? TETHER_SUCCESS : TETHER_ERR_NO_MEMORY;
                if (c) {
                        c->bits = v->bits;
                        c->u = v->u;
                }
                break;
        }
        if (r != TETHER_SUCCESS) {
                tether_value_unref(c);
                return r;
        }
        *ret = c;
        return TETHER_SUCCESS;
}

tether_ret_t tether_value_dict_merge(tether_value *dst, const tether_value *src)
{
        if (!dst || !src || dst->type != TETHER_TYPE_DICT || src->type != TETHER_TYPE_DICT)
                return TETHER_ERR_BAD_ARGUMENT;
        if (dst == src)
                return TETHER_SUCCESS; /* already has every key */
        for (size_t i = 0; i < src->u.dict.n; i++) {
                tether_ret_t r = tether_value_dict_set(dst, src->u.dict.entries[i].key, src->u.dict.entries[i].value);
                if (r != TETHER_SUCCESS)
                        return r;
        }
        return TETHER_SUCCESS;
}
