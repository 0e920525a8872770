/* SPDX-License-Identifier: MIT */
#ifndef TETHER_USBTMC_USBFS_H
#define TETHER_USBTMC_USBFS_H

/*
 * The kernel's usbfs spoken directly, without libusb: what tetherd, still
 * root, does to a device node before it hands the fd to a driver host
 * (the Chrome OS permission_broker pattern), and the few ioctls whose
 * errno libusb would flatten into LIBUSB_ERROR_OTHER.
 *
 * Rights on a usbfs fd belong to the open file, not to a process: a fd
 * passed with SCM_RIGHTS (or dup'ed) carries its claims and its dropped
 * privileges with it. USBDEVFS_DROP_PRIVILEGES (Linux 4.6) is one-way
 * and per file. Once it is issued (from drivers/usb/core/devio.c):
 * - claiming an interface outside the mask fails EACCES, also the implicit
 *   claim usbfs makes when a transfer names an unclaimed interface's
 *   endpoint; claims made before the drop stay;
 * - USBDEVFS_IOCTL fails EACCES: no DISCONNECT, no CONNECT, no ioctls
 *   into the interface's kernel driver;
 * - USBDEVFS_DISCONNECT_CLAIM fails EACCES when any driver (a kernel
 *   driver, or usbfs for another file, or for this one) has the interface;
 * - USBDEVFS_RESET fails EACCES while any interface is claimed by someone
 *   other than this file;
 * - the mask can be narrowed by another DROP_PRIVILEGES, never widened.
 * Left allowed: transfers on its claimed interfaces, control requests to
 * the device, GETDRIVER, CONNECTINFO, SETCONFIGURATION (EBUSY anyway while
 * any interface is claimed) and reading the descriptors.
 */

#include <stdbool.h>
#include <stdint.h>

#include "tether/return.h"

/*
 * Open /dev/bus/usb/BBB/DDD for a driver host. For each interface in
 * interface_mask (bit n: interface n), take it from a kernel driver that
 * has it and claim it on this file, while still privileged; then drop the
 * file's privileges to those interfaces. The host that receives the fd
 * finds its interfaces already claimed (its own CLAIMINTERFACE is a no-op)
 * and can claim nothing else, detach no kernel driver, and not reset the
 * device under another interface's driver.
 *
 * Claiming here rather than only detaching closes the window in which a
 * kernel driver could bind again (a modprobe, a udev rule) before the host
 * claims. An interface another program holds through usbfs is not taken
 * (TETHER_ERR_EXCLUSIVE_ACCESS); a bit for an interface the device does
 * not have gives TETHER_ERR_NOT_FOUND. On failure every interface taken
 * is released and its kernel driver given back.
 *
 * Kernels before 4.6 have no DROP_PRIVILEGES (GET_CAPABILITIES lacks
 * USBDEVFS_CAP_DROP_PRIVILEGES): the fd is returned claimed but not
 * restricted, so its holder could also claim the device's other
 * interfaces and detach their drivers. A caller that will not accept that
 * checks usbfs_capabilities() on the fd and closes it.
 *
 * The fd is O_CLOEXEC. Keep no copy once it is sent: the claims last
 * until the last copy of the file is closed.
 */
tether_ret_t usbfs_open_for_driver(uint8_t bus, uint8_t address, uint32_t interface_mask, int *ret_fd);

/*
 * Let kernel drivers bind again to the interfaces in interface_mask, once
 * the driver host is done with them. This needs USBDEVFS_IOCTL(CONNECT),
 * which a dropped fd may not issue, so it opens the node afresh (the
 * caller must still be privileged) rather than using the host's fd. While
 * a usbfs file still claims an interface (the host has not released it or
 * not yet exited) the kernel refuses: TETHER_ERR_EXCLUSIVE_ACCESS, and the
 * caller tries again after the host is gone. An interface no kernel driver
 * wants, or one a kernel driver already has, is not an error.
 * TETHER_ERR_NO_DEVICE: the device is gone, there is nothing to give back.
 */
tether_ret_t usbfs_give_back(uint8_t bus, uint8_t address, uint32_t interface_mask);

/* USBDEVFS_CAP_* of the fd's kernel; 0 on kernels before GET_CAPABILITIES (3.15). */
tether_ret_t usbfs_capabilities(int fd, uint32_t *ret_caps);

/*
 * Make the interface this file's: claimed already (0), free, or taken
 * from the kernel driver that has it (*ret_detached true: give it back
 * with usbfs_attach_kernel_driver after the release). Errors say why:
 * TETHER_ERR_NOT_PERMITTED: the fd's privileges were dropped and the
 * interface is outside its mask, or a kernel driver has it and a dropped
 * fd may not detach it (whoever opened the fd should have taken it);
 * TETHER_ERR_EXCLUSIVE_ACCESS: another program has it through usbfs.
 */
tether_ret_t usbfs_take_interface(int fd, unsigned interface, bool *ret_detached);
tether_ret_t usbfs_release_interface(int fd, unsigned interface);
/* Let a kernel driver bind to the interface (USBDEVFS_CONNECT): on an
 * undropped fd only, and once no usbfs file claims the interface. */
tether_ret_t usbfs_attach_kernel_driver(int fd, unsigned interface);

/* The device's bus and address from the fd alone (USBDEVFS_CONNINFO_EX,
 * Linux 5.3): for a fd whose path says nothing, e.g. one received from
 * another process or mount namespace. TETHER_ERR_UNSUPPORTED before 5.3. */
tether_ret_t usbfs_location(int fd, uint8_t *ret_bus, uint8_t *ret_address);

#endif
