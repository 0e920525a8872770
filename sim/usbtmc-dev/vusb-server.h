/* SPDX-License-Identifier: MIT */
#ifndef TETHER_SIM_VUSB_SERVER_H
#define TETHER_SIM_VUSB_SERVER_H

/*
 * The simulated scope's USB side served over virtual USB (usbtmc/vusb.h):
 * requests from a socket carried out on a sim_usbtmc through
 * sim_usbtmc_ops, as a USB host controller would carry them to the
 * device. The client (a driver host) is not trusted: whatever it sends
 * gets an answer or ends the session, never more memory than one
 * datagram's worth, never a crash.
 */

#include "usbtmc-device.h"
#include "usbtmc/vusb.h"

/* What the DSO-X 2002A's descriptors say (as tests/usb/dsox2002a.umockdev). */
#define SIM_VUSB_VENDOR     0x0957u
#define SIM_VUSB_PRODUCT    0x1799u
#define SIM_VUSB_EP_OUT     0x02u
#define SIM_VUSB_EP_IN      0x81u
#define SIM_VUSB_MAX_PACKET 512u
/* sim_scope's default serial (its *IDN?), for the descriptors to match. */
#define SIM_VUSB_DEFAULT_SERIAL "MY57235663"

/* The simulated DSO-X 2002A's identity with this serial (NULL or "" for
 * none). TETHER_ERR_BAD_ARGUMENT: the serial is longer than
 * VUSB_MAX_SERIAL or not printable ASCII. */
tether_ret_t sim_vusb_info(const char *serial, vusb_info *ret);

/* One request (len bytes, any content: a malformed one is answered with
 * an error) → its reply, into reply (VUSB_MAX_MSG bytes), *ret_len bytes.
 * len above VUSB_MAX_MSG means the datagram was bigger than that (only its
 * start is in req); it is answered TETHER_ERR_MESSAGE_TOO_LARGE. */
tether_ret_t sim_vusb_handle(sim_usbtmc *dev, const vusb_info *info, const uint8_t *req, size_t len,
                             uint8_t *reply, size_t *ret_len);

/* Answer requests on fd (a SOCK_SEQPACKET socket, left open) until the
 * peer hangs up: 0. -1 when the socket fails or serial is refused (see
 * sim_vusb_info). Runs on the caller's thread; dev is used on it only. */
int sim_vusb_serve(int fd, sim_usbtmc *dev, const char *serial);

#endif
