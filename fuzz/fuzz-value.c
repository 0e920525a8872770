/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the CBOR value decoder, and the round trip of whatever
 * it accepts (decode -> encode -> decode gives the same value and bytes). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <tether/value.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        tether_value *v = NULL, *again = NULL;
        if (tether_value_decode(data, size, &v) != TETHER_SUCCESS)
                return 0;
        uint8_t *buf = NULL, *buf2 = NULL;
        size_t len = 0, len2 = 0;
        if (tether_value_encode(v, &buf, &len) != TETHER_SUCCESS)
                __builtin_trap();
        if (tether_value_decode(buf, len, &again) != TETHER_SUCCESS || !tether_value_equal(v, again))
                __builtin_trap();
        if (tether_value_encode(again, &buf2, &len2) != TETHER_SUCCESS || len2 != len || memcmp(buf, buf2, len))
                __builtin_trap();
        char *text = NULL;
        if (tether_value_format(v, &text) != TETHER_SUCCESS)
                __builtin_trap();
        free(text);
        if (tether_value_to_json(v, &text) != TETHER_SUCCESS)
                __builtin_trap();
        free(text);
        free(buf);
        free(buf2);
        tether_value_unref(again);
        tether_value_unref(v);
        return 0;
}
