/* SPDX-License-Identifier: MIT */
#ifndef TETHER_SIM_DMM_USB_H
#define TETHER_SIM_DMM_USB_H

/*
 * The simulated 34461A's USB side: its identity and capabilities, and the
 * DMM as the instrument behind the shared USBTMC/USB488 device
 * (usbtmc-dev.h). Its quirks differ from the scope's on purpose, so a
 * generic driver meets both kinds: no interrupt-IN endpoint (the status
 * byte comes in READ_STATUS_BYTE's control reply, RQS 0, and it never
 * requests service over USB: SR0, hence by USB488's rules not a 488.2
 * interface and no SCPI bit either), TermChar honoured, INDICATOR_PULSE,
 * REN/GTL/LLO (RL1) but no TRIGGER, and other endpoint addresses.
 */

#include "dmm.h"
#include "usbtmc-dev.h"
#include "usbtmc/vusb.h"

#define SIM_DMM_VENDOR     0x2a8du /* Keysight Technologies */
#define SIM_DMM_PRODUCT    0x1301u /* the 34461A as Keysight-era units enumerate */
#define SIM_DMM_EP_OUT     0x01u
#define SIM_DMM_EP_IN      0x82u
#define SIM_DMM_MAX_PACKET 512u

void sim_dmm_usb_profile(sim_usbtmc_profile *ret);
/* The DMM's hooks; inst is the sim_dmm. */
extern const sim_instrument sim_dmm_instrument;

/* The 34461A's USB side for dmm (the caller keeps ownership of it). */
tether_ret_t sim_dmm_usbtmc_new(sim_dmm *dmm, sim_usbtmc **ret);

#endif
