/* SPDX-License-Identifier: MIT */
#ifndef TETHER_USBTMC_VUSB_H
#define TETHER_USBTMC_VUSB_H

/*
 * Virtual USB: one USBTMC interface served over an AF_UNIX SOCK_SEQPACKET
 * socket, USB/IP-like, so a driver talks to a simulated device (in another
 * process) through the same usbtmc code as to a real one. One request
 * datagram, one reply datagram; little-endian; layouts in docs/vusb.md.
 *
 * Neither side trusts the other: the client is a driver host, the server a
 * simulator, each a separate process. Everything here checks lengths
 * against what was received and against the bounds below before use.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <tether/return.h>

#define VUSB_VERSION 1u

#define VUSB_HEADER_SIZE 16u
/* Data bytes of one transfer, at most. A datagram must fit the peer's
 * socket buffer (about 208 KiB by default) or the send fails; 64 KiB also
 * keeps each side's fixed buffers small. */
#define VUSB_MAX_DATA 65536u
/* A request's fixed arguments, at most (CONTROL_IN's 12 bytes). */
#define VUSB_MAX_ARGS 16u
#define VUSB_MAX_MSG (VUSB_HEADER_SIZE + VUSB_MAX_ARGS + VUSB_MAX_DATA)
/* Bytes of the serial number string DESCRIBE carries, at most. */
#define VUSB_MAX_SERIAL 63u
/* A server may take less per transfer, never less than this. */
#define VUSB_MIN_DATA 64u

enum vusb_op {
        VUSB_DESCRIBE = 1,
        VUSB_BULK_OUT = 2,
        VUSB_BULK_IN = 3,
        VUSB_CONTROL_IN = 4,
        VUSB_CLEAR_HALT = 5,
        VUSB_INTERRUPT_IN = 6,
        VUSB_REPLY = 0x8000, /* or'ed into a reply's op */
};

/* Fixed arguments of each request (bytes after the header; BULK_OUT's
 * data follows its arguments). */
#define VUSB_ARGS_DESCRIBE     0u
#define VUSB_ARGS_BULK_OUT     4u  /* u32 timeout_ms */
#define VUSB_ARGS_BULK_IN      8u  /* u32 timeout_ms, u32 length */
#define VUSB_ARGS_CONTROL_IN   12u /* u32 timeout_ms, u8 type, u8 request, u16 value, u16 index, u16 length */
#define VUSB_ARGS_CLEAR_HALT   4u  /* u8 endpoint, 3 bytes 0 */
#define VUSB_ARGS_INTERRUPT_IN 8u  /* u32 timeout_ms, u32 length */

typedef struct vusb_header {
        uint16_t op;
        uint16_t version;
        uint32_t id;        /* chosen by the client, echoed in the reply */
        int32_t status;     /* a reply's tether_ret_t; 0 in requests */
        uint32_t size;      /* the whole datagram, header included */
} vusb_header;

void vusb_header_encode(const vusb_header *h, uint8_t out[VUSB_HEADER_SIZE]);
/* Any 16 bytes decode; checking the fields is the receiver's business. */
tether_ret_t vusb_header_decode(const uint8_t *in, size_t len, vusb_header *ret);

/* What DESCRIBE answers: what a host would read from the descriptors. */
typedef struct vusb_info {
        uint16_t vendor, product;
        uint8_t interface, protocol;        /* bInterfaceNumber, bInterfaceProtocol (1: USB488) */
        uint8_t ep_out, ep_in, ep_interrupt; /* addresses; ep_interrupt 0 when absent */
        uint16_t max_packet_in;             /* wMaxPacketSize of bulk-IN */
        uint32_t max_data;                  /* data bytes per transfer the server takes */
        char serial[VUSB_MAX_SERIAL + 1];   /* printable ASCII, "" when none */
} vusb_info;

#define VUSB_DESCRIBE_FIXED 16u

/* Body of a DESCRIBE reply: VUSB_DESCRIBE_FIXED bytes and the serial. */
tether_ret_t vusb_info_encode(const vusb_info *info, uint8_t *out, size_t cap, size_t *ret_len);
/* Rejects what no USBTMC interface could be: wrong endpoint directions,
 * a zero packet size, a transfer bound out of range, an unprintable or
 * too long serial (TETHER_ERR_IPC: the server is broken or hostile). */
tether_ret_t vusb_info_decode(const uint8_t *in, size_t len, vusb_info *ret);
/* The same checks on a vusb_info about to be sent. */
tether_ret_t vusb_info_check(const vusb_info *info);

/* Little-endian access, for both sides' argument layouts. */
static inline void vusb_put16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
}

static inline void vusb_put32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
        p[2] = (uint8_t)(v >> 16);
        p[3] = (uint8_t)(v >> 24);
}

static inline uint16_t vusb_get16(const uint8_t *p)
{
        return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t vusb_get32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* One datagram into buf, never blocking (the socket may be blocking or
 * not). TETHER_ERR_NOT_READY: none waiting. TETHER_ERR_NO_DEVICE: the peer
 * hung up. TETHER_ERR_MESSAGE_TOO_LARGE: it did not fit in cap (*ret_len
 * is then cap, what was kept). Fds passed along are refused by the kernel
 * (no room for them is offered), so none lands in this process. */
tether_ret_t vusb_recv(int fd, uint8_t *buf, size_t cap, size_t *ret_len);

#endif
