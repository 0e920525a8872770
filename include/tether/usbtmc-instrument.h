/* SPDX-License-Identifier: MIT */
#ifndef TETHER_USBTMC_INSTRUMENT_H
#define TETHER_USBTMC_INSTRUMENT_H

/*
 * The generic USBTMC/USB488 instrument driver (bundle org.tether.usbtmc),
 * as applications see it: registry class, property names, selectors,
 * limits and flags (the macOS "UserClientShared.h"). It serves any
 * USBTMC interface no model driver claimed: a DMM, a power supply, a
 * function generator, a scope without a driver of its own. What a VISA
 * library needs, one method each; docs/usbtmc-driver.md has the whole
 * contract (sizes, errors, the lock, service requests, limits).
 *
 *     tether_service_matching(TMC_CLASS, &m);
 *     tether_get_matching_service(s, m, &svc);
 *     tether_service_open(s, svc, 0, 0, &c);
 *     char answer[256];
 *     size_t n = sizeof(answer);
 *     uint64_t end = 0;
 *     uint32_t n_end = 1;
 *     tether_call_method(c, TMC_QUERY, NULL, 0, "*IDN?\n", 6, &end, &n_end, answer, &n);
 */

#include <stdint.h>

#define TMC_CLASS "USBTMCInstrument"
#define TMC_BUNDLE "org.tether.usbtmc"

/* ---- properties ---- */

/* From *IDN? (empty strings for an instrument that does not answer it). */
#define TMC_PROP_VENDOR           "Vendor"
#define TMC_PROP_MODEL            "Model"
#define TMC_PROP_SERIAL           "SerialNumber"
#define TMC_PROP_FIRMWARE         "Firmware"
/* USB0::0xVVVV::0xPPPP::SERIAL::INSTR, with ::N before ::INSTR when the
 * USBTMC interface is number N != 0. SERIAL is the USB serial number,
 * else *IDN?'s, else "0". */
#define TMC_PROP_VISA_RESOURCE    "VISAResource"

/* From GET_CAPABILITIES: bcd versions (uint16) and one bool per bit. */
#define TMC_PROP_USBTMC_VERSION   "USBTMCVersion"       /* bcdUSBTMC, e.g. 0x0100 */
#define TMC_PROP_USB488_VERSION   "USB488Version"       /* bcdUSB488; 0 for a plain USBTMC interface */
#define TMC_PROP_CAN_TERM_CHAR    "SupportsTermChar"    /* device capabilities D0 */
#define TMC_PROP_CAN_PULSE        "SupportsIndicatorPulse" /* interface capabilities D2 */
#define TMC_PROP_TALK_ONLY        "TalkOnly"            /* interface capabilities D1 */
#define TMC_PROP_LISTEN_ONLY      "ListenOnly"          /* interface capabilities D0 */
#define TMC_PROP_IS_488_2         "USB488.2"            /* USB488 interface capabilities D2 */
#define TMC_PROP_CAN_REMOTE_LOCAL "SupportsRemoteLocal" /* D1: REN_CONTROL, GO_TO_LOCAL, LOCAL_LOCKOUT */
#define TMC_PROP_CAN_TRIGGER      "SupportsTrigger"     /* D0: the USB488 TRIGGER message */
#define TMC_PROP_SCPI             "SCPI"                /* USB488 device capabilities D3 */
#define TMC_PROP_SR1              "SR1"                 /* D2: service requests */
#define TMC_PROP_RL1              "RL1"                 /* D1: remote/local */
#define TMC_PROP_DT1              "DT1"                 /* D0: device trigger */
/* The interface has an interrupt-IN endpoint: the status byte and SRQs
 * arrive there (else the status byte is in READ_STATUS_BYTE's reply and
 * SRQs are found by polling it). */
#define TMC_PROP_INTERRUPT_IN     "InterruptEndpoint"

/* Settable. */
#define TMC_PROP_TIMEOUT          "TimeoutMs"       /* uint, 100 ... 600000: per transfer; synchronous
                                                     * calls wait at most 8000 of it (docs/usbtmc-driver.md) */
#define TMC_PROP_TERM_CHAR        "TermChar"        /* uint, 0 ... 255 (default 10, '\n') */
#define TMC_PROP_TERM_CHAR_ON     "TermCharEnabled" /* bool; true refused without SupportsTermChar */

/* ---- the user client (type 0) ---- */

enum tmc_selector {
        /* struct in: the bytes (1 .. TMC_MAX_WRITE); scalar in: TMC_WRITE_* flags */
        TMC_WRITE = 0,
        /* struct out: up to its capacity (1 .. TMC_MAX_READ); scalar out: TMC_END_* */
        TMC_READ,
        /* struct in: the command; struct out: the whole answer; scalar out: TMC_END_*.
         * An answer longer than the capacity: TETHER_ERR_NO_SPACE, the answer
         * kept for this connection (TMC_HELD says how much, TMC_READ returns it). */
        TMC_QUERY,
        /* scalar out: the status byte (USB488 READ_STATUS_BYTE) */
        TMC_READ_STB,
        /* device clear: INITIATE_CLEAR + CHECK_CLEAR_STATUS, then the halts cleared */
        TMC_CLEAR,
        /* ends the async read in flight (TMC_READ_ASYNC): it completes TETHER_ERR_ABORTED */
        TMC_ABORT,
        /* the USB488 TRIGGER message (SupportsTrigger) */
        TMC_TRIGGER,
        /* scalar in: 1 assert REN, 0 release it (SupportsRemoteLocal) */
        TMC_REN_CONTROL,
        TMC_GO_TO_LOCAL,   /* SupportsRemoteLocal */
        TMC_LOCAL_LOCKOUT, /* SupportsRemoteLocal */
        TMC_INDICATOR_PULSE, /* SupportsIndicatorPulse */
        /* scalar in: how long to wait for it, ms (0 ... TMC_MAX_LOCK_WAIT_MS).
         * May be async: waits, then completes TETHER_SUCCESS or TETHER_ERR_TIMEOUT */
        TMC_LOCK,
        TMC_UNLOCK,
        /* async only, a stream: one result per service request, args TMC_SRQ_ARG_* */
        TMC_SRQ_ENABLE,
        /* ends this connection's SRQ stream (its last result, TETHER_ERR_ABORTED) */
        TMC_SRQ_DISABLE,
        /* async only; scalar in: up to how many bytes (1 .. TMC_READ_BUFFER_SIZE).
         * The bytes land in the memory of type TMC_MEMORY_READ_BUFFER (map it
         * read-only with tether_map_memory); completes with args TMC_READ_ARG_* */
        TMC_READ_ASYNC,
        /* scalars out: bytes kept for this connection, and their TMC_END_* */
        TMC_HELD,
        TMC_SELECTOR_COUNT
};

/* TMC_WRITE's flags */
#define TMC_WRITE_MORE 0x1u /* no EOM: the message goes on in the next TMC_WRITE */

/* How a read ended (TMC_READ, TMC_QUERY, TMC_READ_ASYNC, TMC_HELD); 0: the
 * buffer filled first, and the rest of the message comes with the next read. */
#define TMC_END_EOM       0x1u /* the device's end of message */
#define TMC_END_TERM_CHAR 0x2u /* ended on TermChar (TermCharEnabled) */

/* TMC_READ_ASYNC's completion */
#define TMC_READ_ARG_BYTES 0 /* bytes in the read buffer (also on TETHER_ERR_ABORTED: what came before) */
#define TMC_READ_ARG_END   1 /* TMC_END_* */
#define TMC_READ_ARGS      2

/* A service request, one async result each */
#define TMC_SRQ_ARG_STB  0 /* the status byte the device sent with it */
#define TMC_SRQ_ARG_SEQ  1 /* 1, 2, ...: every SRQ seen since TMC_SRQ_ENABLE, delivered or not */
#define TMC_SRQ_ARG_LOST 2 /* SRQs this connection lost so far (its queue was full) */
#define TMC_SRQ_ARGS     3

/* Shared memory types (tether_map_memory) */
#define TMC_MEMORY_READ_BUFFER 0

/* ---- limits ---- */
#define TMC_MAX_WRITE        (16u << 20) /* bytes per TMC_WRITE or TMC_QUERY command */
#define TMC_MAX_READ         (16u << 20) /* capacity per TMC_READ or TMC_QUERY */
#define TMC_READ_BUFFER_SIZE (1u << 20)  /* TMC_MEMORY_READ_BUFFER */
#define TMC_MAX_HELD         (1u << 20)  /* how far past its capacity a TMC_QUERY reads ahead */
#define TMC_MAX_LOCK_WAIT_MS 600000u
#define TMC_SRQ_QUEUE        64u         /* SRQs kept per connection while its port is full */
#define TMC_MAX_LOCK_WAITERS 64u         /* connections waiting for the lock, per instrument */

#endif
