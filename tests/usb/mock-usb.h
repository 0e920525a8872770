/* SPDX-License-Identifier: MIT */
#ifndef TETHER_TEST_MOCK_USB_H
#define TETHER_TEST_MOCK_USB_H

/*
 * An emulated DSO-X 2002A on an emulated USB bus, for tests of the real
 * libusb path: a umockdev testbed holds its sysfs entry and descriptors,
 * and an ioctl handler plays the kernel's usbfs (URBs, claims per open
 * file, the kernel driver binding, dropped privileges with the rules of
 * drivers/usb/core/devio.c), with the simulator's USBTMC device side
 * answering the transfers. The process must run under umockdev's preload library
 * (umockdev-wrapper); children it starts inherit the emulation, and their
 * ioctls are served by this process.
 */

#include <stdbool.h>
#include <stdint.h>

#include "usbtmc-device.h"

typedef struct mock_usb mock_usb;

/* What the emulated kernel saw, for tests to assert on. */
typedef struct mock_usb_stats {
        unsigned bulk_out, bulk_in, control, interrupt; /* URBs submitted */
        unsigned bulk_in_bytes_max;                     /* largest bulk-IN completion */
        unsigned reaped, discarded;
        unsigned claims, releases, clear_halts;
        unsigned drops;                                 /* USBDEVFS_DROP_PRIVILEGES */
        unsigned refused;                               /* EACCES: what a dropped file may not do */
        unsigned driver_detached, driver_attached;      /* the kernel's usbtmc driver */
        unsigned unknown;                               /* ioctls nobody answered */
        unsigned clients;                               /* opens of the device node */
        unsigned closes;                                /* and closes, as umockdev reports them */
} mock_usb_stats;

/* A testbed (sets $UMOCKDEV_DIR) with no device yet. Fails unless the
 * process runs under umockdev's preload. */
int mock_usb_new(mock_usb **ret);
/* Plug in the scope: the ioctl handler first, then the sysfs entry from
 * tests/usb/dsox2002a.umockdev (an "add" uevent follows). kernel_driver:
 * the kernel's usbtmc driver starts bound to the interface, as it would on
 * a real machine, so a claim has to take it over. */
int mock_usb_plug(mock_usb *m, bool kernel_driver);
/* Unplug: a "remove" uevent, the sysfs entry goes, and every later ioctl
 * on an open handle fails ENODEV, as on a real disconnect. */
void mock_usb_unplug(mock_usb *m);
/* Plug in some other device from a umockdev file (descriptors only, no
 * ioctls answered): a keyboard, say. */
int mock_usb_plug_other(mock_usb *m, const char *file);
void mock_usb_inject(mock_usb *m, sim_fault fault);
void mock_usb_stats_get(mock_usb *m, mock_usb_stats *ret);
/* True while the kernel driver is bound (not claimed away by a user). */
bool mock_usb_kernel_driver_bound(mock_usb *m);
/* True while an open file (a usbfs user) claims the interface. A closed
 * file's claim goes when umockdev reports the client gone, a little after
 * close() returns (the kernel drops it within close). */
bool mock_usb_claimed(mock_usb *m);
/* A kernel before Linux 4.6: no USBDEVFS_CAP_DROP_PRIVILEGES, and
 * USBDEVFS_DROP_PRIVILEGES is ENOTTY. */
void mock_usb_set_old_kernel(mock_usb *m, bool old);
void mock_usb_free(mock_usb *m);

#endif
