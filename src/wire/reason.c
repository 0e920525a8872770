/* SPDX-License-Identifier: MIT */
#include "wire/reason.h"

#include <stdint.h>
#include <string.h>

/* The length of the printable UTF-8 character at p (left bytes there), or
 * 0 if it is a control character or not well-formed UTF-8: overlong forms,
 * surrogates and code points past U+10FFFF included, since a terminal or
 * a decoder downstream may read those some other way. */
static size_t printable_char(const uint8_t *p, size_t left)
{
        uint8_t c = p[0];
        if (c < 0x80)
                return c >= 0x20 && c != 0x7f ? 1 : 0;
        size_t n;
        uint8_t lo = 0x80, hi = 0xbf; /* the second byte's range */
        if (c >= 0xc2 && c <= 0xdf) {
                n = 2;
                if (c == 0xc2)
                        lo = 0xa0; /* U+0080..U+009F are the C1 controls */
        } else if (c >= 0xe0 && c <= 0xef) {
                n = 3;
                if (c == 0xe0)
                        lo = 0xa0; /* overlong */
                else if (c == 0xed)
                        hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
                n = 4;
                if (c == 0xf0)
                        lo = 0x90; /* overlong */
                else if (c == 0xf4)
                        hi = 0x8f; /* past U+10FFFF */
        } else {
                return 0;
        }
        if (left < n || p[1] < lo || p[1] > hi)
                return 0;
        for (size_t i = 2; i < n; i++)
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
        return n;
}

bool wire_reason_valid(const void *p, size_t n)
{
        const uint8_t *b = p;
        if (!b || !n || n > WIRE_MAX_REASON)
                return false;
        for (size_t i = 0; i < n;) {
                size_t k = printable_char(b + i, n - i);
                if (!k)
                        return false;
                i += k;
        }
        return true;
}

size_t wire_reason_clean(const char *text, char *out, bool *ret_cut)
{
        const uint8_t *p = (const uint8_t *)text;
        size_t left = strlen(text), len = 0;
        while (left) {
                size_t k = printable_char(p, left);
                const uint8_t *from = k ? p : (const uint8_t *)"?";
                size_t put = k ? k : 1;
                if (len + put > WIRE_MAX_REASON)
                        break;
                memcpy(out + len, from, put);
                len += put;
                p += k ? k : 1;
                left -= k ? k : 1;
        }
        out[len] = '\0';
        *ret_cut = left != 0;
        return len;
}
