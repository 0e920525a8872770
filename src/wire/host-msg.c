/* SPDX-License-Identifier: MIT */
#include "wire/host-msg.h"

#include <string.h>

#define PROBE_KIND_CALLS 1u /* host/probes.h's PROBE_CALLS and PROBE_USB */
#define PROBE_KIND_USB   2u

static tether_ret_t decode_dict(wire_reader *rd, tether_value **ret)
{
        tether_ret_t r = wire_get_value(rd, ret);
        if (r == TETHER_SUCCESS && tether_value_get_type(*ret) != TETHER_TYPE_DICT)
                r = TETHER_ERR_BAD_ARGUMENT;
        return r;
}

/* Every event has its times after the header (one u64 for an async
 * completion, two for the others), then the same 32-byte context; the
 * lost count, the data and (for USB) the captured length after that. */
static tether_ret_t decode_probe(wire_reader *rd, host_msg *m)
{
        m->probe_kind = wire_get_u32(rd);
        m->probe_lost = wire_get_u32(rd);
        m->dropped_at = wire_get_u32(rd);
        m->captured_at = wire_get_u32(rd);
        m->data_at = wire_get_u32(rd);
        m->event_len = rd->left;
        m->event = wire_get_bytes(rd, m->event_len);
        wire_header h;
        if (rd->bad || wire_header_check(m->event, m->event_len, &h) != TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT;
        bool usb = h.type == WIRE_PROBE_USB;
        if (h.type != WIRE_PROBE_CALL && h.type != WIRE_PROBE_ASYNC && !usb)
                return TETHER_ERR_BAD_ARGUMENT;
        if (m->probe_kind != (usb ? PROBE_KIND_USB : PROBE_KIND_CALLS))
                return TETHER_ERR_BAD_ARGUMENT;
        size_t ctx = WIRE_HEADER_SIZE + (h.type == WIRE_PROBE_ASYNC ? 8u : 16u), after = ctx + 32, n = m->event_len;
        m->context_at = (uint32_t)ctx;
        bool ok = after <= n && m->dropped_at >= after && (size_t)m->dropped_at + 4 <= n &&
                  m->data_at >= (size_t)m->dropped_at + 4 && m->data_at <= n &&
                  (usb ? m->captured_at >= after && (size_t)m->captured_at + 4 <= m->dropped_at : !m->captured_at);
        return ok ? TETHER_SUCCESS : TETHER_ERR_BAD_ARGUMENT;
}

tether_ret_t host_msg_decode(const void *buf, size_t len, host_msg *m)
{
        memset(m, 0, sizeof(*m));
        if (wire_header_check(buf, len, &m->h) != TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT;
        wire_reader rd;
        wire_reader_init(&rd, (const uint8_t *)buf + WIRE_HEADER_SIZE, len - WIRE_HEADER_SIZE);
        tether_ret_t r = TETHER_SUCCESS;
        if (m->h.type & WIRE_REPLY_FLAG) {
                /* An answer to tetherd's START, OPEN, SET_PROPERTIES,
                 * TERMINATE, PING or PROBES: at most a u64 (OPEN's id). */
                uint16_t asked = m->h.type & ~WIRE_REPLY_FLAG;
                if (asked < WIRE_HOST_START || asked > WIRE_HOST_PROBES)
                        return TETHER_ERR_BAD_ARGUMENT;
                if (asked == WIRE_HOST_SET_PROPERTIES) {
                        /* A refusal may say why; tetherd prints nothing a
                         * client's terminal would act on. */
                        size_t n = rd.left;
                        if (!n)
                                return TETHER_SUCCESS;
                        const uint8_t *text = wire_get_bytes(&rd, n);
                        if (m->h.result == TETHER_SUCCESS || !wire_reason_valid(text, n))
                                return TETHER_ERR_BAD_ARGUMENT;
                        memcpy(m->reason, text, n);
                        m->reason[n] = '\0';
                        return TETHER_SUCCESS;
                }
                if (rd.left == 8) {
                        m->u64[0] = wire_get_u64(&rd);
                        m->has_u64 = true;
                }
                return wire_reader_done(&rd);
        }
        switch (m->h.type) {
        case WIRE_HOST_CLOSED:
        case WIRE_HOST_TERMINATE_NUB:
                m->u64[0] = wire_get_u64(&rd);
                r = wire_reader_done(&rd);
                break;
        case WIRE_HOST_PORT:
                m->u64[0] = wire_get_u64(&rd);
                m->u64[1] = wire_get_u64(&rd);
                r = wire_reader_done(&rd);
                break;
        case WIRE_HOST_DEVICE:
                r = wire_reader_done(&rd);
                break;
        case WIRE_HOST_APPLY:
                r = decode_dict(&rd, &m->dict);
                break;
        case WIRE_HOST_REMOVE: {
                size_t n = rd.left;
                const uint8_t *k = wire_get_bytes(&rd, n);
                if (!n || n > HOST_MSG_MAX_KEY || memchr(k, 0, n))
                        return TETHER_ERR_BAD_ARGUMENT;
                memcpy(m->key, k, n);
                m->key[n] = '\0';
                break;
        }
        case WIRE_HOST_PUBLISH_NUB:
                r = decode_dict(&rd, &m->dict);
                if (r != TETHER_SUCCESS)
                        break;
                m->class_name = tether_value_dict_string(m->dict, "class");
                m->name = tether_value_dict_string(m->dict, "name");
                m->location = tether_value_dict_string(m->dict, "location");
                if (tether_value_dict_get(m->dict, "props", &m->props) == TETHER_SUCCESS &&
                    tether_value_get_type(m->props) != TETHER_TYPE_DICT)
                        r = TETHER_ERR_BAD_ARGUMENT;
                if (!m->class_name || !m->name)
                        r = TETHER_ERR_BAD_ARGUMENT;
                break;
        case WIRE_HOST_PROBE:
                r = decode_probe(&rd, m);
                break;
        default:
                r = TETHER_ERR_BAD_ARGUMENT;
                break;
        }
        if (r != TETHER_SUCCESS)
                host_msg_clear(m);
        return r;
}

void host_msg_clear(host_msg *m)
{
        tether_value_unref(m->dict);
        m->dict = NULL;
        m->props = NULL;
        m->class_name = m->name = m->location = NULL;
}
