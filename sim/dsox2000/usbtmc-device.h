/* SPDX-License-Identifier: MIT */
#ifndef TETHER_SIM_SCOPE_USB_H
#define TETHER_SIM_SCOPE_USB_H

/*
 * The simulated scope's USB side: the DSO-X 2002A's descriptors and
 * capabilities, and the scope as the instrument behind the shared
 * USBTMC/USB488 device (usbtmc-dev.h). It has the real scope's
 * interrupt-IN endpoint, so READ_STATUS_BYTE answers there, and it is SR1:
 * when its status byte's MSS rises (*SRE), an SRQ notification goes out
 * there too.
 */

#include "scope.h"
#include "usbtmc-dev.h"
#include "usbtmc/vusb.h"

/* What a 2000 X's descriptors say; the product id is the model's
 * (sim_model.usb_product: 0x179b for the DSO-X 2002A). */
#define SIM_VUSB_VENDOR     0x0957u
#define SIM_VUSB_EP_OUT     0x02u
#define SIM_VUSB_EP_IN      0x81u
#define SIM_VUSB_MAX_PACKET 512u
#define SIM_USBTMC_EP_INTERRUPT 0x83u
/* sim_scope's default serial (its *IDN?), for the descriptors to match. */
#define SIM_VUSB_DEFAULT_SERIAL "MY57235663"

/* The profile of a 2000 X of this model (NULL: the DSO-X 2002A). */
void sim_scope_usb_profile(const sim_model *model, sim_usbtmc_profile *ret);
/* The scope's hooks; inst is the sim_scope. */
extern const sim_instrument sim_scope_instrument;

/* The USB side of scope, as the model it plays (the caller keeps
 * ownership of it): 0, or -1 when out of memory. */
int sim_usbtmc_new(sim_scope *scope, sim_usbtmc **ret);
/* The simulated DSO-X 2002A's identity with this serial (NULL or "" for
 * none), as DESCRIBE answers it. TETHER_ERR_BAD_ARGUMENT: the serial is
 * longer than VUSB_MAX_SERIAL or not printable ASCII. */
tether_ret_t sim_vusb_info(const char *serial, vusb_info *ret);

#endif
