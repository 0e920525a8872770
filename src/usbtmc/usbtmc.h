/* SPDX-License-Identifier: MIT */
#ifndef TETHER_USBTMC_H
#define TETHER_USBTMC_H

/*
 * The USBTMC / USB488 host protocol (USB-IF USBTMC 1.0, USB488 1.0): bulk
 * message framing with bTag, transfer sizes, EOM and 4-byte padding;
 * multi-transfer reads; the class control requests; and recovery (abort,
 * clear) after a timeout or a stream out of sync.
 *
 * How bytes reach the device is a backend's job (usbtmc_backend_ops):
 * libusb for real instruments, the simulator in tests and demos. The
 * protocol code here is the same for both, so the simulator exercises it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <tether/return.h>

#define USBTMC_HEADER_SIZE 12u

/* MsgID (bulk) */
#define USBTMC_DEV_DEP_MSG_OUT            1u
#define USBTMC_REQUEST_DEV_DEP_MSG_IN     2u
#define USBTMC_DEV_DEP_MSG_IN             2u
#define USBTMC_VENDOR_SPECIFIC_OUT        126u
#define USBTMC_REQUEST_VENDOR_SPECIFIC_IN 127u
#define USBTMC_VENDOR_SPECIFIC_IN         127u
#define USB488_TRIGGER                    128u

/* bmTransferAttributes */
#define USBTMC_ATTR_EOM          0x01u /* DEV_DEP_MSG_OUT/IN: last transfer of the message */
#define USBTMC_ATTR_TERM_CHAR    0x02u /* REQUEST_DEV_DEP_MSG_IN: stop at TermChar; IN: ended on it */

/* Class requests (bRequest) */
#define USBTMC_INITIATE_ABORT_BULK_OUT     1u
#define USBTMC_CHECK_ABORT_BULK_OUT_STATUS 2u
#define USBTMC_INITIATE_ABORT_BULK_IN      3u
#define USBTMC_CHECK_ABORT_BULK_IN_STATUS  4u
#define USBTMC_INITIATE_CLEAR              5u
#define USBTMC_CHECK_CLEAR_STATUS          6u
#define USBTMC_GET_CAPABILITIES            7u
#define USBTMC_INDICATOR_PULSE             64u
#define USB488_READ_STATUS_BYTE            128u
#define USB488_REN_CONTROL                 160u
#define USB488_GO_TO_LOCAL                 161u
#define USB488_LOCAL_LOCKOUT               162u

/* bmRequestType */
#define USBTMC_REQ_ENDPOINT  0xA2u /* IN | class | endpoint */
#define USBTMC_REQ_INTERFACE 0xA1u /* IN | class | interface */

/* USBTMC_status */
#define USBTMC_STATUS_SUCCESS                  0x01u
#define USBTMC_STATUS_PENDING                  0x02u
#define USBTMC_STATUS_FAILED                   0x80u
#define USBTMC_STATUS_TRANSFER_NOT_IN_PROGRESS 0x81u
#define USBTMC_STATUS_SPLIT_NOT_IN_PROGRESS    0x82u
#define USBTMC_STATUS_SPLIT_IN_PROGRESS        0x83u
#define USB488_STATUS_INTERRUPT_IN_BUSY        0x20u

typedef struct usbtmc_header {
        uint8_t msg_id;
        uint8_t btag;
        uint32_t transfer_size;
        uint8_t attributes;
        uint8_t term_char;
} usbtmc_header;

void usbtmc_header_encode(const usbtmc_header *h, uint8_t out[USBTMC_HEADER_SIZE]);
/* Checks bTagInverse, bTag != 0 and the reserved bytes. */
tether_ret_t usbtmc_header_decode(const uint8_t *in, size_t len, usbtmc_header *ret);
/* bytes rounded up to a multiple of 4 (transfers are padded with zeros). */
size_t usbtmc_padded(size_t bytes);
/* The next bTag: 1..255, wrapping past 0. */
uint8_t usbtmc_next_btag(uint8_t btag);

/* ---- the link to a device ---- */

typedef struct usbtmc_backend_ops {
        /* One bulk-OUT transfer of len bytes. */
        tether_ret_t (*bulk_out)(void *ctx, const uint8_t *data, size_t len, unsigned timeout_ms);
        /* One bulk-IN transfer: up to cap bytes, ending early on a short
         * packet. TETHER_ERR_TIMEOUT when nothing came in time. */
        tether_ret_t (*bulk_in)(void *ctx, uint8_t *data, size_t cap, size_t *ret_len, unsigned timeout_ms);
        /* A class control request with an IN data stage. */
        tether_ret_t (*control_in)(void *ctx, uint8_t request_type, uint8_t request, uint16_t value,
                                   uint16_t index, uint8_t *data, uint16_t len, size_t *ret_len,
                                   unsigned timeout_ms);
        /* CLEAR_FEATURE(ENDPOINT_HALT) on the bulk-OUT (out=true) or bulk-IN endpoint. */
        tether_ret_t (*clear_halt)(void *ctx, bool out);
        /* One interrupt-IN packet (USB488 notifications). NULL when the
         * backend has no interrupt endpoint. */
        tether_ret_t (*interrupt_in)(void *ctx, uint8_t *data, size_t cap, size_t *ret_len, unsigned timeout_ms);
} usbtmc_backend_ops;

typedef struct usbtmc_caps {
        uint16_t bcd_usbtmc, bcd_usb488;
        uint8_t interface_caps, device_caps;        /* USBTMC */
        uint8_t usb488_interface_caps, usb488_device_caps;
} usbtmc_caps;

/* GET_CAPABILITIES (USBTMC 1.0 table 37, USB488 1.0 table 8). */
#define USBTMC_CAP_LISTEN_ONLY     0x01u /* interface_caps bit 0 */
#define USBTMC_CAP_TALK_ONLY       0x02u /* interface_caps bit 1 */
#define USBTMC_CAP_INDICATOR_PULSE 0x04u /* interface_caps bit 2: accepts INDICATOR_PULSE */
#define USBTMC_CAP_TERM_CHAR       0x01u /* device_caps bit 0 */
#define USB488_CAP_TRIGGER         0x01u /* usb488_interface_caps bit 0: accepts the TRIGGER message */
#define USB488_CAP_REMOTE_LOCAL    0x02u /* usb488_interface_caps bit 1: REN_CONTROL, GO_TO_LOCAL, LOCAL_LOCKOUT */
#define USB488_CAP_IS_488_2        0x04u /* usb488_interface_caps bit 2 */
#define USB488_CAP_DT1             0x01u /* usb488_device_caps bit 0 */
#define USB488_CAP_RL1             0x02u /* usb488_device_caps bit 1 */
#define USB488_CAP_SR1             0x04u /* usb488_device_caps bit 2 */
#define USB488_CAP_SCPI            0x08u /* usb488_device_caps bit 3 */

/* USB488 interrupt-IN notification, bNotify1: 0x80 | bTag answers a
 * READ_STATUS_BYTE (bTag 2..127), 0x81 is a service request; bNotify2 is
 * the status byte either way. D7 clear: vendor-specific. */
#define USB488_NOTIFY_SRQ 0x81u

typedef struct usbtmc {
        const usbtmc_backend_ops *ops;
        void *ctx;
        uint8_t ep_out, ep_in;       /* endpoint addresses, for wIndex of endpoint requests */
        uint8_t ep_interrupt;        /* USB488 interrupt-IN, 0 if the device has none */
        uint8_t srq_stb;             /* STB of the last SRQ notification seen (bNotify1 0x81) */
        bool srq_pending;
        /* Called for every SRQ notification met, wherever it was met (a
         * status-byte read, usbtmc_poll_interrupt); NULL: only srq_stb. */
        void (*on_srq)(void *srq_ctx, uint8_t stb);
        void *srq_ctx;
        /* TermChar for REQUEST_DEV_DEP_MSG_IN: when enabled, the device
         * ends a transfer after this byte (if it has the capability). */
        bool term_char_enabled;
        uint8_t term_char;
        size_t in_want;              /* what the last REQUEST_DEV_DEP_MSG_IN asked for */
        uint8_t interface;
        uint16_t max_packet;         /* wMaxPacketSize of bulk-IN */
        uint32_t max_transfer;       /* payload bytes per transfer we use (a multiple of 4) */
        unsigned timeout_ms;         /* per transfer; per command it may be raised */
        uint8_t btag;                /* last used */
        uint8_t last_in_btag;        /* of the last REQUEST_DEV_DEP_MSG_IN */
        uint8_t stb_btag;            /* READ_STATUS_BYTE's own tag, 2..127 */
        usbtmc_caps caps;
        /* Where the device sits, for probes only (0.0 for a simulated one). */
        uint16_t bus;
        uint8_t address;
} usbtmc;

void usbtmc_init(usbtmc *t, const usbtmc_backend_ops *ops, void *ctx);

/* ---- observing transfers (tether probe) ---- */

#define USBTMC_XFER_INTERRUPT 1u /* usbmon's transfer types */
#define USBTMC_XFER_CONTROL 2u
#define USBTMC_XFER_BULK    3u

/* One finished transfer as a prober sees it. */
typedef struct usbtmc_xfer {
        uint8_t type;           /* USBTMC_XFER_* */
        uint8_t endpoint;       /* address, 0x80 set for IN; 0x00/0x80 for control */
        uint8_t setup[8];       /* control transfers: the setup packet as sent */
        const uint8_t *data;    /* OUT: the bytes sent; IN: the bytes received */
        size_t requested;       /* OUT: length; IN: capacity */
        size_t actual;          /* bytes moved */
        tether_ret_t status;
        uint64_t submit_ns, done_ns; /* CLOCK_REALTIME */
} usbtmc_xfer;

typedef void (*usbtmc_observer)(const usbtmc *t, const usbtmc_xfer *x);

/* Process-wide: every transfer of every link is reported to fn (NULL to
 * stop). With none set, a transfer costs one relaxed load more. */
void usbtmc_set_observer(usbtmc_observer fn);

/* A whole device-dependent message, split into transfers, EOM on the last. */
tether_ret_t usbtmc_write(usbtmc *t, const void *msg, size_t len);
/* A whole response: REQUEST_DEV_DEP_MSG_IN rounds until EOM. A response
 * longer than cap: TETHER_ERR_OVERRUN after the rest was read and dropped,
 * so the stream stays in step. A wrong bTag or a malformed header aborts
 * the transfer and clears the device (TETHER_ERR_IO); so does a timeout
 * (TETHER_ERR_TIMEOUT): either way the next command works. */
tether_ret_t usbtmc_read(usbtmc *t, void *buf, size_t cap, size_t *ret_len);

/* As usbtmc_write, with EOM on the last transfer only if eom: a message
 * sent in pieces, the last with EOM. */
tether_ret_t usbtmc_write_msg(usbtmc *t, const void *msg, size_t len, bool eom);

/* How a usbtmc_read_some ended (bits of *ret_end; 0: cap bytes came first). */
#define USBTMC_END_EOM       0x01u /* the device's EOM: the message is complete */
#define USBTMC_END_TERM_CHAR 0x02u /* TermChar was the last byte (term_char_enabled) */

/*
 * A read as VISA's viRead: up to cap bytes, ending at EOM, at TermChar when
 * term_char_enabled, or when cap bytes are in (*ret_end 0: more of the
 * message may follow). The device is never asked for more than fits, so
 * the rest of a longer message stays in it for the next read: nothing is
 * dropped. Errors recover as usbtmc_read's do; *ret_len is then what came
 * before the error.
 */
tether_ret_t usbtmc_read_some(usbtmc *t, void *buf, size_t cap, size_t *ret_len, unsigned *ret_end);

/*
 * The two halves of one REQUEST_DEV_DEP_MSG_IN round, for a caller that
 * waits for an answer in slices (a work loop that must stay responsive):
 * usbtmc_request_in asks for up to want bytes (1 .. max_transfer; with
 * TermChar when enabled); usbtmc_receive_in waits up to wait_ms for the
 * answer's first bytes, then takes the rest of that transfer with the
 * link's timeout. TETHER_ERR_TIMEOUT from it means nothing came and nothing
 * was consumed: call it again. On success dst (in_want bytes of room) has
 * *ret_n bytes and *ret_attributes the transfer's bmTransferAttributes.
 * Any other error leaves the link out of step: usbtmc_recover.
 */
tether_ret_t usbtmc_request_in(usbtmc *t, size_t want);
tether_ret_t usbtmc_receive_in(usbtmc *t, uint8_t *dst, unsigned wait_ms, size_t *ret_n, uint8_t *ret_attributes);
/* After a failed or abandoned read: un-halt bulk-IN, abort the transfer,
 * clear the device (what usbtmc_read does after a timeout). */
void usbtmc_recover(usbtmc *t);

tether_ret_t usbtmc_get_capabilities(usbtmc *t, usbtmc_caps *ret);
/* USB488 READ_STATUS_BYTE. With an interrupt-IN endpoint the device sends
 * the status byte there (bNotify1 = 0x80 | bTag, bNotify2 = STB), not in
 * the control reply: it is read from there, and an SRQ notification met
 * on the way is kept in srq_stb. */
tether_ret_t usbtmc_read_status_byte(usbtmc *t, uint8_t *ret_stb);
tether_ret_t usbtmc_abort_bulk_in(usbtmc *t);
tether_ret_t usbtmc_abort_bulk_out(usbtmc *t);
tether_ret_t usbtmc_clear(usbtmc *t);
/* CLEAR_FEATURE(ENDPOINT_HALT) on bulk-OUT (out) or bulk-IN. */
tether_ret_t usbtmc_clear_halt(usbtmc *t, bool out);
tether_ret_t usbtmc_trigger(usbtmc *t);

/*
 * The optional class requests. Each answers TETHER_ERR_UNSUPPORTED without
 * touching the device when its capability bit (t->caps, from
 * usbtmc_get_capabilities) is clear, TETHER_ERR_DEVICE_ERROR when the
 * device answers with a status other than SUCCESS.
 */
tether_ret_t usbtmc_indicator_pulse(usbtmc *t);              /* USBTMC_CAP_INDICATOR_PULSE */
tether_ret_t usbtmc_ren_control(usbtmc *t, bool enable);     /* USB488_CAP_REMOTE_LOCAL */
tether_ret_t usbtmc_go_to_local(usbtmc *t);                  /* USB488_CAP_REMOTE_LOCAL */
tether_ret_t usbtmc_local_lockout(usbtmc *t);                /* USB488_CAP_REMOTE_LOCAL */

/*
 * Read what waits on interrupt-IN: up to max notifications, each waited
 * for at most wait_ms (>= 1), stopping at the first wait that ends empty.
 * SRQs go to on_srq (and srq_stb); a status-byte answer nobody awaits any
 * more (its READ_STATUS_BYTE timed out) and vendor notifications are
 * dropped. *ret_n: notifications read. TETHER_ERR_UNSUPPORTED: no
 * interrupt endpoint.
 */
tether_ret_t usbtmc_poll_interrupt(usbtmc *t, unsigned wait_ms, unsigned max, unsigned *ret_n);

#endif
