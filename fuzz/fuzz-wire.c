/* SPDX-License-Identifier: MIT */
/* libFuzzer target: everything tetherd decodes from a peer's datagram. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        wire_header h;
        /* Accept headerless input too: fuzz the bodies directly, so the
         * fuzzer need not learn the size field first. */
        const uint8_t *body = data;
        size_t blen = size;
        if (wire_header_check(data, size, &h) == TETHER_SUCCESS) {
                body = data + WIRE_HEADER_SIZE;
                blen = size - WIRE_HEADER_SIZE;
        }
        wire_call c;
        if (wire_call_decode(body, blen, &c) == TETHER_SUCCESS) {
                if (c.scalar_in_count > TETHER_MAX_SCALARS)
                        __builtin_trap();
                if (!(c.flags & WIRE_CALL_OOL_IN) && c.struct_in_size &&
                    (c.struct_in < body || c.struct_in + c.struct_in_size > body + blen))
                        __builtin_trap();
                /* Re-encoding a decoded call gives the same bytes. */
                static wire_msg m;
                wire_msg_init(&m, WIRE_CALL, 1, 0);
                wire_call_encode(&m, &c);
                if (wire_msg_finish(&m) != TETHER_SUCCESS || m.len - WIRE_HEADER_SIZE != blen ||
                    memcmp(m.buf + WIRE_HEADER_SIZE, body, blen))
                        __builtin_trap();
        }
        for (int ool = 0; ool < 2; ool++) {
                wire_call_reply r;
                if (wire_call_reply_decode(body, blen, ool, &r) == TETHER_SUCCESS && r.scalar_out_count > TETHER_MAX_SCALARS)
                        __builtin_trap();
        }
        wire_reader rd;
        wire_reader_init(&rd, body, blen);
        (void)wire_get_u64(&rd);
        tether_value *v = NULL;
        if (wire_get_value(&rd, &v) == TETHER_SUCCESS)
                tether_value_unref(v);
        return 0;
}
