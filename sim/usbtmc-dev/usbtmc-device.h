/* SPDX-License-Identifier: MIT */
#ifndef TETHER_SIM_USBTMC_DEVICE_H
#define TETHER_SIM_USBTMC_DEVICE_H

/*
 * The simulated scope's USB side: a USBTMC/USB488 device (bulk-OUT,
 * bulk-IN, class control requests) in front of a sim_scope, presented as a
 * usbtmc backend, so tether's real host protocol code drives it.
 */

#include "scope.h"
#include "usbtmc/usbtmc.h"

typedef enum sim_fault {
        SIM_FAULT_NONE = 0,
        SIM_FAULT_DELAY,         /* next response misses the host's timeout (stays queued) */
        SIM_FAULT_STALL,         /* bulk-IN stalls until the host clears the halt */
        SIM_FAULT_SHORT_PACKETS, /* responses come in 64-byte pieces (a device quirk), until reset */
        SIM_FAULT_WRONG_BTAG,    /* next response carries the wrong bTag */
        SIM_FAULT_UNPLUG,        /* the device is gone: everything fails NO_DEVICE */
} sim_fault;

typedef struct sim_usbtmc sim_usbtmc;

/* The device uses scope; the caller keeps ownership of it. */
int sim_usbtmc_new(sim_scope *scope, sim_usbtmc **ret);
void sim_usbtmc_free(sim_usbtmc *d);
void sim_usbtmc_inject(sim_usbtmc *d, sim_fault fault);
/* Undo persistent faults (short packets, unplug). */
void sim_usbtmc_reset_faults(sim_usbtmc *d);

/* Queue an SRQ notification (bNotify1 0x81, the STB) on interrupt-IN,
 * as the scope sends when a service request is enabled and raised. */
void sim_usbtmc_notify_srq(sim_usbtmc *d);
/* The simulated DSO-X 2002A's interrupt-IN endpoint, as on the real one. */
#define SIM_USBTMC_EP_INTERRUPT 0x83u

/* ctx is the sim_usbtmc. */
extern const usbtmc_backend_ops sim_usbtmc_ops;

#endif
