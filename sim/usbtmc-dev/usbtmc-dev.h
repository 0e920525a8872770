/* SPDX-License-Identifier: MIT */
#ifndef TETHER_SIM_USBTMC_DEV_H
#define TETHER_SIM_USBTMC_DEV_H

/*
 * A simulated instrument's USB side: a USBTMC/USB488 interface (bulk-OUT,
 * bulk-IN, an interrupt-IN or none, the class control requests) in front
 * of an instrument's message exchange, presented as a usbtmc backend so
 * tether's real host protocol code drives it. What differs between
 * instruments is data and hooks: a profile (USB ids, endpoints,
 * GET_CAPABILITIES bits) and the instrument's function layer
 * (sim_instrument). From the profile follow the quirks a host must
 * handle: with an interrupt endpoint READ_STATUS_BYTE answers there and
 * service requests arrive as notifications; without one the status byte
 * comes in the control reply and the device never requests service; a
 * request or TRIGGER the capabilities deny is stalled; TermChar is honoured
 * only where the capabilities offer it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <tether/return.h>

#include "usbtmc/usbtmc.h"

typedef enum sim_fault {
        SIM_FAULT_NONE = 0,
        SIM_FAULT_DELAY,         /* next response misses the host's timeout (stays queued), until an abort or clear */
        SIM_FAULT_STALL,         /* bulk-IN stalls until the host clears the halt */
        SIM_FAULT_SHORT_PACKETS, /* responses come in 64-byte pieces (a device quirk), until reset */
        SIM_FAULT_WRONG_BTAG,    /* next response carries the wrong bTag */
        SIM_FAULT_UNPLUG,        /* the device is gone: everything fails NO_DEVICE */
} sim_fault;

/* The instrument behind the interface (IEEE 488.2's device): inst is
 * passed back to each hook. */
typedef struct sim_instrument {
        /* One complete program message (the bulk-OUT transfers up to EOM). */
        void (*execute)(void *inst, const char *msg, size_t len);
        /* Bytes in the output queue, ready or not. */
        size_t (*output_pending)(const void *inst);
        /* Up to cap of them, taken from the queue. */
        size_t (*output_take)(void *inst, uint8_t *buf, size_t cap);
        /* Up to cap of them, left in the queue. NULL: the device cannot end
         * a transfer on TermChar (the profile must not say it can). */
        size_t (*output_peek)(const void *inst, uint8_t *buf, size_t cap);
        /* Milliseconds until the queued answers may go (a measurement or a
         * sweep still running); 0 when ready. NULL: always ready. */
        unsigned (*output_ready_in_ms)(const void *inst);
        /* The host asked for an answer and none is queued (-420). */
        void (*query_unterminated)(void *inst);
        /* INITIATE_CLEAR: IEEE 488.2 device clear. */
        void (*device_clear)(void *inst);
        /* The status byte as *STB? answers it (bit 6 MSS). It may change
         * with time alone (a measurement completing). */
        uint8_t (*status_byte)(void *inst);
        /* USB488 TRIGGER, as a GPIB Group Execute Trigger. NULL: the
         * interface has no TRIGGER (the profile must not say it has). */
        void (*trigger)(void *inst);
} sim_instrument;

/* GET_CAPABILITIES bits (USBTMC 1.0 Table 37, USB488 1.0 Table 8). */
#define SIM_CAP_INDICATOR_PULSE 0x04u /* USBTMC interface capabilities */
#define SIM_CAP_TERM_CHAR       0x01u /* USBTMC device capabilities */
#define SIM_CAP_488_2           0x04u /* USB488 interface capabilities */
#define SIM_CAP_REN_GTL_LLO     0x02u
#define SIM_CAP_TRIGGER         0x01u
#define SIM_CAP_SCPI            0x08u /* USB488 device capabilities */
#define SIM_CAP_SR1             0x04u
#define SIM_CAP_RL1             0x02u
#define SIM_CAP_DT1             0x01u

/* What a host reads from the device's descriptors and GET_CAPABILITIES. */
typedef struct sim_usbtmc_profile {
        uint16_t vendor, product;
        uint8_t interface, protocol;      /* bInterfaceNumber, bInterfaceProtocol (1: USB488) */
        uint8_t ep_out, ep_in;            /* bulk endpoint addresses */
        uint8_t ep_interrupt;             /* interrupt-IN address, 0: none */
        uint16_t max_packet;              /* wMaxPacketSize of bulk-IN */
        uint16_t bcd_usbtmc, bcd_usb488;
        uint8_t interface_caps, device_caps;            /* USBTMC */
        uint8_t usb488_interface_caps, usb488_device_caps;
} sim_usbtmc_profile;

/* IEEE 488.1 remote/local states (USB488 Figure 2), for RL1 devices. */
typedef enum sim_remote_state {
        SIM_LOCS = 0, /* local */
        SIM_REMS,     /* remote */
        SIM_LWLS,     /* local with lockout */
        SIM_RWLS,     /* remote with lockout */
} sim_remote_state;

typedef struct sim_usbtmc sim_usbtmc;

/* A device side for inst (the caller keeps it, and ops and profile are
 * copied). TETHER_ERR_BAD_ARGUMENT: a profile no USB488 interface may have
 * (USB488 4.2.2's rules: a 488.2 or SR1 interface without an interrupt
 * endpoint, DT1 without TRIGGER, RL1 without REN/GTL/LLO, SCPI without
 * 488.2 and SR1), or capabilities its hooks cannot back (TermChar without
 * output_peek, TRIGGER without trigger), or a hook missing. */
tether_ret_t sim_usbtmc_create(const sim_usbtmc_profile *profile, const sim_instrument *ops, void *inst,
                               sim_usbtmc **ret);
void sim_usbtmc_free(sim_usbtmc *d);
const sim_usbtmc_profile *sim_usbtmc_profile_of(const sim_usbtmc *d);

void sim_usbtmc_inject(sim_usbtmc *d, sim_fault fault);
/* Undo persistent faults (short packets, unplug). */
void sim_usbtmc_reset_faults(sim_usbtmc *d);

/* Queue an SRQ notification (bNotify1 0x81, the status byte with RQS) on
 * interrupt-IN now, whatever the status: a test's shortcut. Nothing on a
 * device without an interrupt endpoint. */
void sim_usbtmc_notify_srq(sim_usbtmc *d);
/* Look at the instrument's status again (it changed by other means than
 * the USB side): a new reason for service (MSS rising) on an SR1 device
 * queues an SRQ notification, as after every transfer. */
void sim_usbtmc_poll(sim_usbtmc *d);

/* What the host has done to the device, for tests. */
sim_remote_state sim_usbtmc_remote_state(const sim_usbtmc *d);
bool sim_usbtmc_ren(const sim_usbtmc *d);
unsigned sim_usbtmc_indicator_pulses(const sim_usbtmc *d);
bool sim_usbtmc_out_halted(const sim_usbtmc *d);

/*
 * The IN endpoints as a host controller sees them: a transfer asks, and
 * the device either has something for it or NAKs, for as long as it likes.
 * Nothing here waits; whoever holds the transfer (the vusb server, a test's
 * mock bus, sim_usbtmc_ops below) decides how long to go on asking.
 *
 * TETHER_SUCCESS: *ret_len bytes (0 is a zero-length packet, which ends a
 * transfer as any short packet does). TETHER_ERR_NOT_READY: a NAK, nothing
 * to send yet; *ret_wake_ms says when asking again may find something (an
 * answer still being made: a sweep, a measurement, a status that changes
 * with time), SIM_WAKE_NEVER when only the host can change that (a new
 * request, an abort or clear). Any other error ends the transfer: a stall
 * (TETHER_ERR_IO), TETHER_ERR_NO_DEVICE.
 */
#define SIM_WAKE_NEVER UINT32_MAX
tether_ret_t sim_usbtmc_bulk_in_try(sim_usbtmc *d, uint8_t *data, size_t cap, size_t *ret_len,
                                    uint32_t *ret_wake_ms);
tether_ret_t sim_usbtmc_interrupt_in_try(sim_usbtmc *d, uint8_t *data, size_t cap, size_t *ret_len,
                                         uint32_t *ret_wake_ms);
/* The host gave up on a bulk-IN transfer that got nothing (its timeout
 * ran out, or it was cancelled). */
void sim_usbtmc_bulk_in_expired(sim_usbtmc *d);

/* ctx is the sim_usbtmc. Each transfer waits, sleeping on the caller's
 * thread, until the device has something or its timeout runs out (then
 * TETHER_ERR_TIMEOUT), as a synchronous libusb transfer does: for host
 * code driving a device in the same process. */
extern const usbtmc_backend_ops sim_usbtmc_ops;

#endif
