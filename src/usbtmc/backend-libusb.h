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
void usbtmc_usb_close(usbtmc_usb *u);
/* Point t at u: its ops, endpoints, interface and packet size. */
void usbtmc_usb_attach(usbtmc *t, usbtmc_usb *u);

#endif
