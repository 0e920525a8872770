/* SPDX-License-Identifier: MIT */
#ifndef TETHER_VALUE_H
#define TETHER_VALUE_H

/*
 * Typed values: the OSNumber/OSString/OSData/OSBoolean/OSArray/OSDictionary
 * of tether. Property tables and matching dictionaries are made of these.
 *
 * Values are reference counted (atomically, so they may be shared between
 * threads). A value that has been handed to another party (stored in a
 * property table, sent, put in a container) must be treated as immutable:
 * build a new one instead of changing it. Containers hold their own
 * reference to each member. Dictionary keys are UTF-8 strings, kept in
 * byte-wise sorted order, so iteration and encoding are deterministic.
 *
 * On the wire values are CBOR (RFC 8949), so any language can speak to
 * tetherd; see docs/values.md for the mapping of integer widths.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <tether/return.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tether_value tether_value;

typedef enum tether_value_type {
        TETHER_TYPE_INT = 1, /* signed integer of 8, 16, 32 or 64 bits */
        TETHER_TYPE_UINT,    /* unsigned integer of 8, 16, 32 or 64 bits */
        TETHER_TYPE_DOUBLE,
        TETHER_TYPE_BOOL,
        TETHER_TYPE_STRING,  /* UTF-8, no embedded NUL */
        TETHER_TYPE_DATA,    /* bytes */
        TETHER_TYPE_ARRAY,
        TETHER_TYPE_DICT,
} tether_value_type;

/* Limits enforced by the decoder (and by builders where they apply). */
#define TETHER_VALUE_MAX_DEPTH      32
#define TETHER_VALUE_MAX_STRING     (1u << 20)

/* Constructors. bits must be 8, 16, 32 or 64 and the value must fit
 * (TETHER_ERR_BAD_ARGUMENT otherwise). */
tether_ret_t tether_value_new_int(int64_t v, unsigned bits, tether_value **ret);
tether_ret_t tether_value_new_uint(uint64_t v, unsigned bits, tether_value **ret);
tether_ret_t tether_value_new_double(double v, tether_value **ret);
tether_ret_t tether_value_new_bool(bool v, tether_value **ret);
/* s must be valid UTF-8 (checked). */
tether_ret_t tether_value_new_string(const char *s, tether_value **ret);
tether_ret_t tether_value_new_data(const void *bytes, size_t len, tether_value **ret);
tether_ret_t tether_value_new_array(tether_value **ret);
tether_ret_t tether_value_new_dict(tether_value **ret);

/* ref returns v; unref returns NULL, so `v = tether_value_unref(v);` clears. NULL is fine. */
tether_value *tether_value_ref(tether_value *v);
tether_value *tether_value_unref(tether_value *v);

tether_value_type tether_value_get_type(const tether_value *v);
const char *tether_value_type_name(tether_value_type t);

/* Accessors are strict about type: TETHER_ERR_BAD_ARGUMENT on a mismatch.
 * get_int accepts a UINT that fits in int64; get_uint accepts an INT >= 0. */
tether_ret_t tether_value_get_int(const tether_value *v, int64_t *ret);
tether_ret_t tether_value_get_uint(const tether_value *v, uint64_t *ret);
/* Width of an INT or UINT; 0 for other types. */
unsigned tether_value_get_bits(const tether_value *v);
tether_ret_t tether_value_get_double(const tether_value *v, double *ret);
tether_ret_t tether_value_get_bool(const tether_value *v, bool *ret);
/* The string stays valid while v is referenced. */
tether_ret_t tether_value_get_string(const tether_value *v, const char **ret);
tether_ret_t tether_value_get_data(const tether_value *v, const void **ret_bytes, size_t *ret_len);

/* Number of members of an array or dict; 0 for other types. */
size_t tether_value_count(const tether_value *v);

/* Containers. Setters take their own reference to item; the caller keeps its. */
tether_ret_t tether_value_array_append(tether_value *array, tether_value *item);
/* Borrowed: valid while array is referenced and unchanged. */
tether_ret_t tether_value_array_get(const tether_value *array, size_t index, tether_value **ret);

tether_ret_t tether_value_dict_set(tether_value *dict, const char *key, tether_value *item);
/* TETHER_ERR_NOT_FOUND if absent. Borrowed, like array_get. */
tether_ret_t tether_value_dict_get(const tether_value *dict, const char *key, tether_value **ret);
tether_ret_t tether_value_dict_remove(tether_value *dict, const char *key);
/* Typed reads of one key for the common case. A borrowed string, or NULL
 * when the key is absent or no string; an unsigned integer of any width,
 * or `otherwise` when absent or no unsigned integer. */
const char *tether_value_dict_string(const tether_value *dict, const char *key);
uint64_t tether_value_dict_uint(const tether_value *dict, const char *key, uint64_t otherwise);
/* index-th entry in key order. Both results borrowed. */
tether_ret_t tether_value_dict_entry(const tether_value *dict, size_t index,
                                     const char **ret_key, tether_value **ret_value);

/* Shorthands for building dictionaries: construct the value and set it. */
tether_ret_t tether_value_dict_set_int(tether_value *dict, const char *key, int64_t v, unsigned bits);
tether_ret_t tether_value_dict_set_uint(tether_value *dict, const char *key, uint64_t v, unsigned bits);
tether_ret_t tether_value_dict_set_double(tether_value *dict, const char *key, double v);
tether_ret_t tether_value_dict_set_bool(tether_value *dict, const char *key, bool v);
tether_ret_t tether_value_dict_set_string(tether_value *dict, const char *key, const char *s);
tether_ret_t tether_value_dict_set_data(tether_value *dict, const char *key, const void *b, size_t n);

/* Deep equality: same type, width, contents. NaN equals NaN bitwise. */
bool tether_value_equal(const tether_value *a, const tether_value *b);

/* Deep copy: a new, unshared value that the caller may change. */
tether_ret_t tether_value_copy(const tether_value *v, tether_value **ret);

/* dst gets every key of src (dst's own value for a key is replaced). */
tether_ret_t tether_value_dict_merge(tether_value *dst, const tether_value *src);

/* CBOR. encode allocates *ret_buf with malloc(); the caller frees it.
 * decode never trusts its input: malformed, truncated, too deep, trailing
 * bytes, non-string map keys, duplicate keys, invalid UTF-8 all give
 * TETHER_ERR_BAD_ARGUMENT (TETHER_ERR_NO_MEMORY when out of memory). */
tether_ret_t tether_value_encode(const tether_value *v, uint8_t **ret_buf, size_t *ret_len);
tether_ret_t tether_value_decode(const void *buf, size_t len, tether_value **ret);

/* Human-readable text in the style of ioreg (`"Key" = value`), and JSON.
 * Both allocate *ret with malloc(). JSON: ints and uints as numbers, data as
 * a lowercase hex string, dicts as objects. */
tether_ret_t tether_value_format(const tether_value *v, char **ret);
tether_ret_t tether_value_to_json(const tether_value *v, char **ret);

#ifdef __cplusplus
}
#endif
#endif
