/* SPDX-License-Identifier: MIT */
#ifndef TETHER_SIM_VUSB_SERVER_H
#define TETHER_SIM_VUSB_SERVER_H

/*
 * A simulated instrument's USB side served over virtual USB
 * (usbtmc/vusb.h): requests from a socket carried out on a sim_usbtmc
 * through sim_usbtmc_ops, as a USB host controller would carry them to
 * the device; DESCRIBE answers from the device's profile. The client (a
 * driver host) is not trusted: whatever it sends gets an answer or ends
 * the session, never more memory than one datagram's worth, never a crash.
 */

#include "usbtmc-dev.h"
#include "usbtmc/vusb.h"

/* What DESCRIBE answers for a device of this profile with this serial
 * (NULL or "" for none). TETHER_ERR_BAD_ARGUMENT: the serial is longer
 * than VUSB_MAX_SERIAL or not printable ASCII. */
tether_ret_t sim_vusb_profile_info(const sim_usbtmc_profile *p, const char *serial, vusb_info *ret);

/* One request (len bytes, any content: a malformed one is answered with
 * an error) → its reply, into reply (VUSB_MAX_MSG bytes), *ret_len bytes.
 * len above VUSB_MAX_MSG means the datagram was bigger than that (only its
 * start is in req); it is answered TETHER_ERR_MESSAGE_TOO_LARGE. */
tether_ret_t sim_vusb_handle(sim_usbtmc *dev, const vusb_info *info, const uint8_t *req, size_t len,
                             uint8_t *reply, size_t *ret_len);

/* Answer requests on fd (a SOCK_SEQPACKET socket, left open) until the
 * peer hangs up: 0. -1 when the socket fails or serial is refused (see
 * sim_vusb_profile_info). Runs on the caller's thread; dev is used on it
 * only. */
int sim_vusb_serve(int fd, sim_usbtmc *dev, const char *serial);

/* For a simulator's --usb-fd N: the fd number, if arg is digits only and
 * names an open fd; -1 otherwise. */
int sim_vusb_fd_arg(const char *arg);
/* A simulator process's life with --usb-fd: fd must be a SOCK_SEQPACKET
 * socket (said on stderr, naming prog, if not); serves it until the peer
 * hangs up, then closes it. The exit status to give: 0 on hang-up, 1 when
 * the socket failed, 2 for a bad fd. */
int sim_vusb_run(const char *prog, int fd, sim_usbtmc *dev, const char *serial);

#endif
