/* SPDX-License-Identifier: MIT */
#ifndef TETHER_WIRE_MESSAGE_H
#define TETHER_WIRE_MESSAGE_H

/*
 * tether's wire protocol: one SOCK_SEQPACKET datagram per message, each
 * starting with a 16-byte header, little-endian (the host order of every
 * Linux target tether supports; the handshake refuses a mismatch).
 *
 * Three kinds of socket, each with its own messages (docs/wire.md):
 *   session     client <-> tetherd main loop: registry, properties, open
 *   connection  one per user client, served by the service's work loop: calls
 *   port        tetherd -> client only: notifications and async results
 * Method calls use fixed binary layouts, so a call is cheap to build and to
 * check; property tables and matching dictionaries are CBOR.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <tether/driver.h>
#include <tether/return.h>
#include <tether/value.h>

#define WIRE_VERSION     2u /* 2: NOTIFY_ASYNC flags, set-properties reasons, data queues */
#define WIRE_MAX_MESSAGE (64u * 1024u) /* header included */
#define WIRE_HEADER_SIZE 16u

enum wire_type {
        /* session */
        WIRE_HELLO = 1,
        WIRE_GET_ENTRY,          /* u64 id -> CBOR info dict */
        WIRE_GET_PROPERTY,       /* u64 id, key bytes (empty: all) -> CBOR */
        WIRE_SET_PROPERTIES,     /* u64 id, CBOR dict -> result (+ reason text on failure) */
        WIRE_GET_MATCHING,       /* CBOR dict -> u64 ids */
        WIRE_LOOKUP_PATH,        /* path bytes -> u64 id */
        WIRE_OPEN,               /* u64 id, u32 type, u32 options -> u64 conn id + fd */
        WIRE_PORT_CREATE,        /* -> u64 port id + fd */
        WIRE_ADD_NOTIFICATION,   /* u64 port, u32 type, u32 0, u64 cookie, CBOR -> u64 id */
        WIRE_REMOVE_NOTIFICATION,/* u64 id */
        WIRE_PROBE_ATTACH = 11,  /* u32 kinds, u32 snaplen, u64 service, i32 pid, u32 selector -> fd */
        WIRE_DRIVER_LIST,        /* -> CBOR array, a dict per bundle */
        WIRE_DRIVER_LOAD,        /* path bytes -> result (+ reason text on failure); privileged */
        WIRE_DRIVER_UNLOAD,      /* bundle id bytes -> result; privileged */
        /* connection */
        WIRE_CALL = 32,          /* struct wire_call -> struct wire_call_reply */
        WIRE_CLOSE,              /* -> result, then tetherd closes the socket */
        WIRE_MAP_MEMORY,         /* u32 type, u32 options -> u64 size, u32 options + fd */
        WIRE_SET_BUFFER,         /* u32 slot (0 in, 1 out), u32 0, + sealed memfd -> result */
        WIRE_ASYNC_CANCEL,       /* u64 port id, u64 token: close an open async reference -> result */
        /* data queues (numbered apart, so other messages can be added above) */
        WIRE_DATA_QUEUE_MAP = 40,/* u32 type, u32 0, u64 port id (0: none), u64 cookie
                                  * -> u64 size, u32 capacity, u32 0 + the queue's memfd */
        WIRE_DATA_QUEUE_SERVICED = 41, /* u32 type, u32 0: the client drained a refused producer's
                                        * queue; never answered */
        /* port */
        WIRE_NOTIFY_SERVICE = 64,/* u64 notification cookie, u32 type, u32 0, u64 service id */
        WIRE_NOTIFY_ASYNC,       /* u64 ref[8], i32 result, u32 count, u32 flags, u32 0, u64 args[count] */
        WIRE_NOTIFY_DATA_QUEUE = 72, /* u64 cookie, u32 type, u32 0: a data queue has data */
        /* probe (docs/wire.md has the layouts) */
        WIRE_PROBE_CALL = 80,    /* a user-client call, after it returned */
        WIRE_PROBE_USB,          /* a USBTMC transfer, after it finished */
        WIRE_PROBE_ASYNC,        /* an async result sent, and what became of it */
        WIRE_PROBE_PROPERTY,     /* a property write answered */
        /* driver host channel (docs/bundles.md): tetherd -> host */
        WIRE_HOST_START = 96,    /* u64 service id, CBOR {driver, library, class, provider, table} -> result */
        WIRE_HOST_OPEN,          /* u64 session id, task, u32 type, u32 options
                                  * + connection fd -> u64 connection id */
        WIRE_HOST_SET_PROPERTIES,/* task, CBOR dict -> result (+ reason text on failure) */
        WIRE_HOST_TERMINATE,     /* -> result; the host exits once its clients are gone */
        WIRE_HOST_PING,          /* -> result, answered from the service's work loop */
        WIRE_HOST_SESSION_GONE,  /* u64 session id: forget it (its ports) */
        WIRE_HOST_PROBES,        /* u32 probes attached, u32 1 if any wants USB: build events or not */
        /* host -> tetherd */
        WIRE_HOST_CLOSED = 112,  /* u64 session id: one of its connections closed */
        WIRE_HOST_APPLY,         /* CBOR dict: merge into the service's table */
        WIRE_HOST_REMOVE,        /* key bytes */
        WIRE_HOST_PUBLISH_NUB,   /* CBOR {class, name, location, props} -> u64 nub id */
        WIRE_HOST_TERMINATE_NUB, /* u64 nub id -> result */
        WIRE_HOST_PORT,          /* u64 session id, u64 port id -> result + the port's fd */
        WIRE_HOST_PROBE,         /* u32 kind, u32 lost before, u32 dropped at, u32 captured at, u32 data at,
                                  * + a probe event */
        WIRE_HOST_DEVICE,        /* -> u64 tether_device_kind + the provider's device fd */
        WIRE_REPLY_FLAG = 0x8000,/* or'ed into a reply's type */
};

typedef struct wire_header {
        uint16_t type;
        uint16_t version;
        uint32_t serial;   /* chosen by the requester, echoed in the reply */
        int32_t result;    /* replies only */
        uint32_t size;     /* the whole datagram, header included */
} wire_header;

_Static_assert(sizeof(wire_header) == WIRE_HEADER_SIZE, "header layout");

/* ---- building ---- */

/* A message under construction. A failed put poisons it; finish reports. */
typedef struct wire_msg {
        uint8_t buf[WIRE_MAX_MESSAGE];
        size_t len;
        bool poisoned;
} wire_msg;

void wire_msg_init(wire_msg *m, uint16_t type, uint32_t serial, int32_t result);
void wire_put_u32(wire_msg *m, uint32_t v);
void wire_put_u64(wire_msg *m, uint64_t v);
void wire_put_bytes(wire_msg *m, const void *p, size_t n);
void wire_put_value(wire_msg *m, const tether_value *v);
/* Writes the size into the header. TETHER_ERR_MESSAGE_TOO_LARGE if poisoned. */
tether_ret_t wire_msg_finish(wire_msg *m);

/* ---- reading ---- */

typedef struct wire_reader {
        const uint8_t *p;
        size_t left;
        bool bad;      /* a get ran past the end */
} wire_reader;

void wire_reader_init(wire_reader *r, const void *body, size_t len);
uint32_t wire_get_u32(wire_reader *r);
uint64_t wire_get_u64(wire_reader *r);
const uint8_t *wire_get_bytes(wire_reader *r, size_t n);
/* The rest as a CBOR value; TETHER_ERR_BAD_ARGUMENT if malformed. */
tether_ret_t wire_get_value(wire_reader *r, tether_value **ret);
/* TETHER_SUCCESS if everything was consumed and nothing ran short. */
tether_ret_t wire_reader_done(const wire_reader *r);

/* A caller (tether_task) as tetherd tells a driver host: i32 pid, u32 uid,
 * u32 gid, u32 abi word bits, u32 privileges (20 bytes). */
void wire_put_task(wire_msg *m, const tether_task *t);
void wire_get_task(wire_reader *r, tether_task *ret);

/* Check a received datagram's header: size matches, version known. */
tether_ret_t wire_header_check(const void *buf, size_t len, wire_header *ret);

/* ---- method calls ---- */

#define WIRE_CALL_ASYNC   (1u << 0)
#define WIRE_CALL_OOL_IN  (1u << 1) /* struct input is in the connection's input buffer */
#define WIRE_CALL_OOL_OUT (1u << 2) /* struct output goes to the connection's output buffer */
#define WIRE_CALL_FLAGS   0x7u

/* NOTIFY_ASYNC flags: the result is its reference's last, which is closed
 * now (the client forgets its callback). */
#define WIRE_ASYNC_LAST   (1u << 0)

/*
 * Out-of-line buffers are per connection and reused across calls, because
 * mapping is the expensive part (machine.md: ~8 ms for 64 MiB). When a call
 * needs a bigger one the client first sends WIRE_SET_BUFFER with a new
 * memfd sealed against shrinking (so tetherd can never take SIGBUS).
 */
typedef struct wire_call {
        uint32_t selector;
        uint32_t flags;
        uint32_t scalar_in_count;
        uint32_t scalar_out_count;   /* capacity */
        uint32_t struct_in_size;
        uint32_t struct_out_size;    /* capacity */
        uint64_t async_ref[TETHER_ASYNC_REF_COUNT];
        uint64_t scalars[TETHER_MAX_SCALARS];
        const uint8_t *struct_in;    /* inline input, pointing into the datagram */
} wire_call;

typedef struct wire_call_reply {
        uint32_t scalar_out_count;
        uint32_t struct_out_size;
        uint64_t scalars[TETHER_MAX_SCALARS];
        const uint8_t *struct_out;   /* inline output, pointing into the datagram */
} wire_call_reply;

void wire_call_encode(wire_msg *m, const wire_call *c);
/* Every count, size and flag checked: scalars <= 16, inline structs <= 4096
 * and present exactly, out-of-line sizes <= TETHER_MAX_OOL_STRUCT, no
 * unknown flags, no trailing bytes. */
tether_ret_t wire_call_decode(const void *body, size_t len, wire_call *ret);
void wire_call_reply_encode(wire_msg *m, const wire_call_reply *r, bool ool_out);
tether_ret_t wire_call_reply_decode(const void *body, size_t len, bool ool_out, wire_call_reply *ret);

/* ---- socket I/O (fdpass.c) ---- */

/* A connected SOCK_SEQPACKET pair for a new channel: fds[0] stays in
 * tetherd, non-blocking (nothing may stall a loop on a slow client);
 * fds[1] is passed to the client. outbound_only shuts down fds[0]'s
 * reading side, for channels tetherd only writes to (ports, probes). */
tether_ret_t wire_channel_pair(bool outbound_only, int fds[2]);

/* Send one message, with fd attached if fd >= 0. Never raises SIGPIPE.
 * TETHER_ERR_NOT_RESPONDING if the peer's queue is full on a non-blocking
 * socket, TETHER_ERR_NOT_ATTACHED if the peer is gone. */
tether_ret_t wire_send(int sock, const wire_msg *m, int fd);
/* The most fds one message can carry (the kernel's SCM_MAX_FD). */
#define WIRE_MAX_PASSED_FDS 253
/* *ret_fd when a message came with more fds than the one a request may
 * carry: none of them stays open; answer it as malformed. */
#define WIRE_FD_REFUSED     (-2)

/* Receive one datagram into buf (cap >= WIRE_MAX_MESSAGE). At most one fd is
 * accepted (*ret_fd, else -1, or WIRE_FD_REFUSED if more came: the kernel
 * drops all but one before they reach this process, and that one is
 * closed; with ret_fd NULL any fd is closed). TETHER_ERR_NOT_ATTACHED when
 * the peer hung up (a zero-length datagram from a live peer is returned as
 * one, length 0), TETHER_ERR_MESSAGE_TOO_LARGE for a truncated datagram,
 * TETHER_ERR_NOT_READY if nothing is waiting on a non-blocking socket. */
tether_ret_t wire_recv(int sock, void *buf, size_t cap, size_t *ret_len, int *ret_fd);
/* The same for a socket on which no message may carry an fd: any that
 * come are dropped by the kernel and never enter this process's fd table;
 * *ret_refused says some came. */
tether_ret_t wire_recv_nofds(int sock, void *buf, size_t cap, size_t *ret_len, bool *ret_refused);

#endif
