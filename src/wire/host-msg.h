/* SPDX-License-Identifier: MIT */
#ifndef TETHER_WIRE_HOST_MSG_H
#define TETHER_WIRE_HOST_MSG_H

/*
 * What a driver host may say to tetherd (message.h's WIRE_HOST_* from the
 * host's side), decoded and checked in one place before tetherd acts on
 * any of it: a host is untrusted, and anything this refuses ends it.
 * Pure (no daemon state), so a fuzzer drives it.
 */

#include <stddef.h>
#include <stdint.h>
#include <tether/value.h>

#include "wire/message.h"
#include "wire/reason.h"

#define HOST_MSG_MAX_KEY 1024u

typedef struct host_msg {
        wire_header h;
        uint64_t u64[2];               /* CLOSED: session; TERMINATE_NUB: nub; PORT: session, port;
                                        * a reply: its u64, if it has one (has_u64) */
        bool has_u64;
        char reason[WIRE_MAX_REASON + 1]; /* a SET_PROPERTIES reply: the driver's reason for a refusal,
                                        * "" if none */
        tether_value *dict;            /* APPLY: the changes; PUBLISH_NUB: the whole request */
        /* PUBLISH_NUB, pointing into dict: */
        const char *class_name, *name, *location;
        tether_value *props;           /* NULL when none */
        char key[HOST_MSG_MAX_KEY + 1];/* REMOVE */
        /* PROBE: where the event and its parts are */
        const uint8_t *event;
        size_t event_len;
        uint32_t probe_kind, probe_lost, dropped_at, captured_at, data_at, context_at;
} host_msg;

/* TETHER_SUCCESS, or TETHER_ERR_BAD_ARGUMENT for anything malformed: an
 * unknown type, a short or long body, a value of the wrong kind, an event
 * whose parts do not lie where its type says, a reason that is not one
 * (too long, not UTF-8, a control character) or that comes with a success.
 * m->event points into buf. */
tether_ret_t host_msg_decode(const void *buf, size_t len, host_msg *m);
void host_msg_clear(host_msg *m);

#endif
