/* SPDX-License-Identifier: MIT */
/* libFuzzer target: everything tetherd decodes from a driver host, which it
 * treats as untrusted (src/wire/host-msg.c). What the decoder accepts must
 * be what tetherd's handlers rely on. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/host-msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        host_msg m;
        if (host_msg_decode(data, size, &m) != TETHER_SUCCESS) {
                if (m.dict) /* a refusal keeps nothing */
                        __builtin_trap();
                return 0;
        }
        /* A reason tetherd passes on is printable and goes with an error. */
        if (m.reason[0] && (m.h.type != (WIRE_HOST_SET_PROPERTIES | WIRE_REPLY_FLAG) || m.h.result == TETHER_SUCCESS ||
                            !wire_reason_valid(m.reason, strlen(m.reason))))
                __builtin_trap();
        switch (m.h.type) {
        case WIRE_HOST_APPLY:
                if (tether_value_get_type(m.dict) != TETHER_TYPE_DICT)
                        __builtin_trap();
                break;
        case WIRE_HOST_REMOVE:
                if (!m.key[0] || strlen(m.key) > HOST_MSG_MAX_KEY)
                        __builtin_trap();
                break;
        case WIRE_HOST_PUBLISH_NUB:
                if (!m.class_name || !m.name || (m.props && tether_value_get_type(m.props) != TETHER_TYPE_DICT))
                        __builtin_trap();
                break;
        case WIRE_HOST_PROBE:
                /* Every offset tetherd writes through lies inside the event. */
                if (m.event < data || m.event + m.event_len > data + size || m.context_at + 32 > m.event_len ||
                    (size_t)m.dropped_at + 4 > m.event_len || m.data_at > m.event_len ||
                    (m.captured_at && (size_t)m.captured_at + 4 > m.event_len))
                        __builtin_trap();
                break;
        default:
                break;
        }
        host_msg_clear(&m);
        return 0;
}
