/* SPDX-License-Identifier: MIT */
#ifndef TETHER_SIM_BYTES_H
#define TETHER_SIM_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A growable byte buffer: the instrument's queues. */
typedef struct bytes {
        uint8_t *p;
        size_t len, cap;
} bytes;

/* Append n bytes; false when out of memory (nothing appended). */
static inline bool bytes_append(bytes *b, const void *src, size_t n)
{
        if (b->cap - b->len < n) {
                size_t cap = b->cap ? b->cap : 256;
                while (cap - b->len < n)
                        cap *= 2;
                uint8_t *p = realloc(b->p, cap);
                if (!p)
                        return false;
                b->p = p;
                b->cap = cap;
        }
        if (n)
                memcpy(b->p + b->len, src, n);
        b->len += n;
        return true;
}

#endif
