/* SPDX-License-Identifier: MIT */
#ifndef TETHER_CORE_VALUE_PRIVATE_H
#define TETHER_CORE_VALUE_PRIVATE_H

#include <stdatomic.h>
#include <tether/value.h>

typedef struct dict_entry {
        char *key;
        tether_value *value;
} dict_entry;

struct tether_value {
        atomic_uint refs;
        tether_value_type type;
        unsigned bits;                 /* INT/UINT width */
        /* Container levels: 0 for a scalar, 1 for a flat array or dict.
         * Kept on insert so the depth limit costs O(1) instead of a walk
         * (a walk would be exponential on a DAG of shared members). */
        unsigned depth;
        union {
                int64_t i;
                uint64_t u;
                double d;
                bool b;
                struct {
                        char *p;       /* NUL-terminated for strings */
                        size_t len;
                } bytes;
                struct {
                        tether_value **items;
                        size_t n, cap;
                } array;
                struct {
                        dict_entry *entries; /* sorted by key, byte-wise */
                        size_t n, cap;
                } dict;
        } u;
};

/* Well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF)
 * with no NUL byte. */
bool value_utf8_valid(const char *s, size_t len);

/* A string from len bytes that need not be NUL-terminated (the decoder's
 * input); checked like tether_value_new_string. */
tether_ret_t value_new_string_n(const char *s, size_t len, tether_value **ret);

/* Width tags of the CBOR mapping (docs/values.md). */
#define VALUE_TAG_SINT_BASE 55800u /* + 0..3 for 8, 16, 32, 64 bits */
#define VALUE_TAG_UINT_BASE 55804u

#endif
