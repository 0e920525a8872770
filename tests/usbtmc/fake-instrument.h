/* SPDX-License-Identifier: MIT */
#ifndef TETHER_TEST_FAKE_INSTRUMENT_H
#define TETHER_TEST_FAKE_INSTRUMENT_H

/*
 * A scripted USBTMC/USB488 instrument served over virtual USB
 * (usbtmc/vusb.h) from a thread of the test, for driving the generic
 * driver into what the simulated scope never does: a device that never
 * answers, answers longer than any buffer, TermChar, no interrupt
 * endpoint, SRQ storms, an unplug in the middle of a read.
 *
 * It understands a few messages (each ends at EOM; text after the keyword
 * is its argument):
 *   *IDN?          the configured identity (none if idn is NULL)
 *   ECHO? text     "text\n"
 *   DATA? n        n bytes 'A'..'Z' repeating, then "\n"
 *   LINES?         "one\ntwo\nthree\n"
 *   SLOW? ms       "done\n", ready ms after the request
 *   SILENT?        nothing: a read waits for ever, as on a busy device
 *   *STB?          the status byte, as text
 * and ignores anything else (a command). A bulk-IN with nothing to send
 * waits out its timeout, as a device that NAKs does.
 */

#include <stdbool.h>
#include <stdint.h>

typedef struct fake_config {
        uint16_t vendor, product;
        uint8_t interface;
        const char *serial;        /* USB serial; NULL or "" for none */
        const char *idn;           /* *IDN?'s answer without "\n"; NULL: never answers it */
        bool interrupt_ep;         /* an interrupt-IN endpoint (USB488 notifications) */
        uint8_t interface_caps, device_caps, usb488_interface_caps, usb488_device_caps;
        uint16_t bcd_usb488;
} fake_config;

/* A DSO-X-like USB488 device: interrupt endpoint, 488.2, REN/GTL/LLO,
 * TRIGGER, SR1 RL1 DT1 SCPI, no TermChar, no indicator pulse. */
fake_config fake_config_default(void);

typedef struct fake_instrument fake_instrument;

/* Serves on a socket pair; *ret_fd is the client's end (the caller's). */
int fake_start(const fake_config *cfg, fake_instrument **ret, int *ret_fd);
/* Ends the thread (as an unplug if still served) and frees. */
void fake_free(fake_instrument *f);
/* The device goes away: its socket closes, even in the middle of a wait. */
void fake_unplug(fake_instrument *f);
/* Raise n service requests with status byte stb: n notifications on
 * interrupt-IN, or RQS in the status byte without that endpoint. */
void fake_srq(fake_instrument *f, unsigned n, uint8_t stb);
void fake_set_stb(fake_instrument *f, uint8_t stb);

typedef struct fake_counts {
        unsigned requests;         /* vusb requests served */
        unsigned triggers, clears, aborts_in, pulses, gtl, llo, stb_reads;
        int ren;                   /* last REN_CONTROL value, -1 before any */
        unsigned srq_sent;         /* SRQ notifications taken from interrupt-IN */
        unsigned srq_raised;       /* fake_srq's n, summed */
        bool term_char_seen;       /* a REQUEST_DEV_DEP_MSG_IN asked for TermChar */
        uint8_t term_char;
        unsigned in_flight;        /* a request waiting for an answer (0/1) */
} fake_counts;
fake_counts fake_get_counts(fake_instrument *f);

#endif
