/* SPDX-License-Identifier: MIT */
#ifndef TETHER_USBTMC_BACKEND_LIBUSB_H
#define TETHER_USBTMC_BACKEND_LIBUSB_H

/*
 * USBTMC over libusb-1.0: finding instruments on the bus, and the backend
 * ops that move USBTMC transfers to and from a real device.
 */

#include <libusb.h>

#include "usbtmc/usbtmc.h"

typedef struct usbtmc_usb_device {
        uint8_t bus, address;
        uint16_t vendor, product;
        uint8_t interface, protocol;      /* protocol 1: USB488 */
        uint8_t ep_out, ep_in, ep_interrupt; /* 0 when absent */
        uint16_t max_packet_in;
        char serial[64];                  /* "" when it could not be read */
} usbtmc_usb_device;

/* Every USBTMC interface (class 0xFE, subclass 0x03) on the bus, from the
 * descriptors (no device is claimed). At most cap are returned. */
tether_ret_t usbtmc_usb_scan(libusb_context *ctx, usbtmc_usb_device *out, size_t cap, size_t *ret_n);

/* One device: its USBTMC interface and serial, or TETHER_ERR_NOT_FOUND
 * when it has none. Opens the device briefly to read the serial, so not
 * from inside a libusb event callback. */
tether_ret_t usbtmc_usb_describe(libusb_device *dev, usbtmc_usb_device *ret);

typedef struct usbtmc_usb usbtmc_usb;

/* Open the device at bus/address and claim its USBTMC interface, taking
 * it from the kernel's usbtmc driver if that has it (given back on close). */
tether_ret_t usbtmc_usb_open(libusb_context *ctx, const usbtmc_usb_device *d, usbtmc_usb **ret);

/*
 * A libusb context for a driver host, which never scans the bus: it gets
 * its device as a fd (usbtmc_usb_wrap). libusb 1.0.26 makes this
 * process-wide and for good: the option is recorded as a default for
 * every context made after it, and its Linux backend keeps the setting in
 * a global, so no later context in the process discovers devices either.
 * A process that scans (tetherd) must not call it. Nothing under
 * /dev/bus/usb need be reachable: libusb_init looks for usbfs before it
 * looks at the option, but a build with udev (Debian's) assumes
 * /dev/bus/usb when it finds none; only a build without udev fails there
 * (until libusb 1.0.30).
 */
tether_ret_t usbtmc_usb_context_for_host(libusb_context **ret);
/* The option alone, for the process: tether-driverhost sets it before it
 * loads a bundle, so a driver's own libusb_init never scans the bus there
 * and the same driver code still works inside tetherd (--in-process). */
tether_ret_t usbtmc_usb_no_discovery(void);

/*
 * The USBTMC device behind fd, an open usbfs node (/dev/bus/usb/BBB/DDD),
 * typically passed by tetherd from usbfs_open_for_driver: its descriptors
 * are read from the fd, its USBTMC interface found and claimed. An
 * interface tetherd claimed on the fd before passing it is simply ours;
 * a free one is claimed; one a kernel driver has is taken from it when the
 * fd still may (then given back on close). With privileges dropped it may
 * not: TETHER_ERR_NOT_PERMITTED, as for an interface outside the fd's
 * mask; TETHER_ERR_EXCLUSIVE_ACCESS when another program has it.
 *
 * On success the usbtmc_usb owns fd and usbtmc_usb_close closes it (libusb
 * does not close a wrapped fd, and the claim lasts as long as the file).
 * On failure fd stays open and the caller's.
 */
tether_ret_t usbtmc_usb_wrap(libusb_context *ctx, int fd, usbtmc_usb **ret);

/* What was found on the device u was opened or wrapped on: vendor,
 * product, serial, interface, endpoints. Bus 0: not known. */
tether_ret_t usbtmc_usb_get_device(const usbtmc_usb *u, usbtmc_usb_device *ret);

void usbtmc_usb_close(usbtmc_usb *u);
/* Point t at u: its ops, endpoints, interface and packet size. */
void usbtmc_usb_attach(usbtmc *t, usbtmc_usb *u);

#endif
