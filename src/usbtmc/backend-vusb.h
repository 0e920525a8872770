/* SPDX-License-Identifier: MIT */
#ifndef TETHER_USBTMC_BACKEND_VUSB_H
#define TETHER_USBTMC_BACKEND_VUSB_H

/*
 * USBTMC over virtual USB (usbtmc/vusb.h): the backend ops that move
 * transfers over a SOCK_SEQPACKET socket to a device served by another
 * process (a simulator). The usbtmc code above cannot tell it from libusb.
 *
 * The server is not trusted: every wait is bounded (the transfer's timeout
 * plus VUSB_REPLY_MARGIN_MS, then TETHER_ERR_TIMEOUT), every reply is
 * checked against what was asked. A peer that hangs up gives
 * TETHER_ERR_NO_DEVICE, as an unplugged device does through libusb; a
 * reply that breaks the protocol gives TETHER_ERR_IPC. Both are final:
 * every later call on the link fails the same way at once.
 *
 * One thread at a time per link (a service's work loop).
 */

#include "usbtmc/usbtmc.h"
#include "usbtmc/vusb.h"

/* What the server may take beyond a transfer's own timeout to answer
 * (scheduling, a busy machine). */
#define VUSB_REPLY_MARGIN_MS 1000u
/* Requests without a timeout of their own: DESCRIBE, CLEAR_HALT (usbfs
 * gives a CLEAR_FEATURE 5 s). */
#define VUSB_DEFAULT_TIMEOUT_MS 5000u

typedef struct usbtmc_vusb usbtmc_vusb;

/* Takes fd (a connected SOCK_SEQPACKET socket) whatever the outcome, makes
 * it non-blocking and close-on-exec, and asks the server what it serves
 * (DESCRIBE). TETHER_ERR_BAD_ARGUMENT: fd is not a SEQPACKET socket. */
tether_ret_t usbtmc_vusb_open(int fd, usbtmc_vusb **ret);
/* Closes the socket: the server sees the hang-up. */
void usbtmc_vusb_close(usbtmc_vusb *v);
/* Point t at v: its ops, endpoints, interface, packet size, and a
 * max_transfer that keeps every transfer within one datagram. */
void usbtmc_vusb_attach(usbtmc *t, usbtmc_vusb *v);
/* The device's ids, interface, endpoints and serial, as DESCRIBE said. */
tether_ret_t usbtmc_vusb_get_info(const usbtmc_vusb *v, vusb_info *ret);


#endif
