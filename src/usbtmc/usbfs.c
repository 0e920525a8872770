/* SPDX-License-Identifier: MIT */
#include "usbtmc/usbfs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/usbdevice_fs.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* The drop mask is 32 bits wide, and so is what usbfs lets one file claim. */
#define USBFS_MAX_INTERFACES 32u

static tether_ret_t open_node(uint8_t bus, uint8_t address, int *ret_fd)
{
        char path[32];
        snprintf(path, sizeof(path), "/dev/bus/usb/%03u/%03u", bus, address);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd >= 0) {
                *ret_fd = fd;
                return TETHER_SUCCESS;
        }
        switch (errno) {
        case ENOENT:
        case ENODEV:
        case ENXIO: return TETHER_ERR_NO_DEVICE; /* unplugged since it was matched */
        case EACCES:
        case EPERM: return TETHER_ERR_NOT_PRIVILEGED;
        case EMFILE:
        case ENFILE: return TETHER_ERR_NO_RESOURCES;
        case ENOMEM: return TETHER_ERR_NO_MEMORY;
        default: return TETHER_ERR_IO;
        }
}

/* What a failed claim-like ioctl means, errno as devio.c sets it. */
static tether_ret_t claim_error(int e)
{
        switch (e) {
        case EACCES: return TETHER_ERR_NOT_PERMITTED;    /* privileges dropped */
        case EBUSY: return TETHER_ERR_EXCLUSIVE_ACCESS;
        case ENOENT: return TETHER_ERR_NOT_FOUND;        /* no such interface */
        case EINVAL: return TETHER_ERR_BAD_ARGUMENT;
        case ENODEV: return TETHER_ERR_NO_DEVICE;
        case ENOTTY: return TETHER_ERR_UNSUPPORTED;
        default: return TETHER_ERR_IO;
        }
}

tether_ret_t usbfs_capabilities(int fd, uint32_t *ret_caps)
{
        if (fd < 0 || !ret_caps)
                return TETHER_ERR_BAD_ARGUMENT;
        uint32_t caps = 0;
        if (ioctl(fd, USBDEVFS_GET_CAPABILITIES, &caps) != 0) {
                if (errno != ENOTTY)
                        return errno == ENODEV ? TETHER_ERR_NO_DEVICE : TETHER_ERR_IO;
                caps = 0; /* a kernel older than the ioctl has none of the capabilities */
        }
        *ret_caps = caps;
        return TETHER_SUCCESS;
}

tether_ret_t usbfs_take_interface(int fd, unsigned interface, bool *ret_detached)
{
        if (fd < 0 || interface >= USBFS_MAX_INTERFACES || !ret_detached)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret_detached = false;
        /* Twice at most: a kernel driver may let go between our look and our claim. */
        for (int attempt = 0; attempt < 2; attempt++) {
                unsigned n = interface;
                /* Succeeds when the interface is free, and also when this
                 * file claimed it already (tetherd did, before passing it). */
                if (ioctl(fd, USBDEVFS_CLAIMINTERFACE, &n) == 0)
                        return TETHER_SUCCESS;
                if (errno != EBUSY)
                        return claim_error(errno);
                struct usbdevfs_getdriver gd = { .interface = interface };
                if (ioctl(fd, USBDEVFS_GETDRIVER, &gd) != 0) {
                        if (errno == ENODATA)
                                continue;
                        return errno == ENODEV ? TETHER_ERR_NO_DEVICE : TETHER_ERR_IO;
                }
                gd.driver[sizeof(gd.driver) - 1] = '\0';
                if (!strcmp(gd.driver, "usbfs"))
                        return TETHER_ERR_EXCLUSIVE_ACCESS; /* another program's claim: never taken */
                /* Detach only the driver just seen, and claim in the same
                 * step, so no other driver can bind in between. */
                struct usbdevfs_disconnect_claim dc = { .interface = interface,
                                                        .flags = USBDEVFS_DISCONNECT_CLAIM_IF_DRIVER };
                memcpy(dc.driver, gd.driver, sizeof(dc.driver));
                if (ioctl(fd, USBDEVFS_DISCONNECT_CLAIM, &dc) == 0) {
                        *ret_detached = true;
                        return TETHER_SUCCESS;
                }
                return claim_error(errno);
        }
        return TETHER_ERR_EXCLUSIVE_ACCESS;
}

tether_ret_t usbfs_attach_kernel_driver(int fd, unsigned interface)
{
        if (fd < 0 || interface >= USBFS_MAX_INTERFACES)
                return TETHER_ERR_BAD_ARGUMENT;
        struct usbdevfs_ioctl io = { .ifno = (int)interface, .ioctl_code = USBDEVFS_CONNECT, .data = NULL };
        /* 1: a driver bound; 0: none wanted the interface, also fine. */
        if (ioctl(fd, USBDEVFS_IOCTL, &io) >= 0)
                return TETHER_SUCCESS;
        if (errno != EBUSY)
                return errno == EINVAL ? TETHER_ERR_NOT_FOUND : claim_error(errno);
        /* Some driver has it: a kernel one is what we wanted; usbfs means
         * a program (the host, if it has not exited) still claims it. */
        struct usbdevfs_getdriver gd = { .interface = interface };
        if (ioctl(fd, USBDEVFS_GETDRIVER, &gd) != 0)
                return errno == ENODATA ? TETHER_ERR_EXCLUSIVE_ACCESS : claim_error(errno);
        gd.driver[sizeof(gd.driver) - 1] = '\0';
        return strcmp(gd.driver, "usbfs") ? TETHER_SUCCESS : TETHER_ERR_EXCLUSIVE_ACCESS;
}

tether_ret_t usbfs_location(int fd, uint8_t *ret_bus, uint8_t *ret_address)
{
        if (fd < 0 || !ret_bus || !ret_address)
                return TETHER_ERR_BAD_ARGUMENT;
        struct usbdevfs_conninfo_ex ci;
        memset(&ci, 0, sizeof(ci));
        if (ioctl(fd, USBDEVFS_CONNINFO_EX(sizeof(ci)), &ci) != 0)
                return errno == ENOTTY ? TETHER_ERR_UNSUPPORTED
                     : errno == ENODEV ? TETHER_ERR_NO_DEVICE : TETHER_ERR_IO;
        /* The kernel says how much it filled; bus and address came first. */
        if (ci.size < offsetof(struct usbdevfs_conninfo_ex, devnum) + sizeof(ci.devnum) || ci.busnum > UINT8_MAX ||
            ci.devnum > UINT8_MAX)
                return TETHER_ERR_IO;
        *ret_bus = (uint8_t)ci.busnum;
        *ret_address = (uint8_t)ci.devnum;
        return TETHER_SUCCESS;
}

tether_ret_t usbfs_release_interface(int fd, unsigned interface)
{
        if (fd < 0 || interface >= USBFS_MAX_INTERFACES)
                return TETHER_ERR_BAD_ARGUMENT;
        unsigned n = interface;
        if (ioctl(fd, USBDEVFS_RELEASEINTERFACE, &n) == 0)
                return TETHER_SUCCESS;
        return errno == EINVAL ? TETHER_ERR_NOT_OPEN /* not claimed by this file */ : claim_error(errno);
}

/* Leave the device as it was found: release what was claimed and let the
 * kernel drivers that were detached bind again. */
static void undo(int fd, uint32_t claimed, uint32_t detached)
{
        for (unsigned i = 0; i < USBFS_MAX_INTERFACES; i++) {
                if (!(claimed & (1u << i)))
                        continue;
                (void)usbfs_release_interface(fd, i);
                if (detached & (1u << i))
                        (void)usbfs_attach_kernel_driver(fd, i);
        }
}

tether_ret_t usbfs_open_for_driver(uint8_t bus, uint8_t address, uint32_t interface_mask, int *ret_fd)
{
        if (!ret_fd || !interface_mask || !bus || !address)
                return TETHER_ERR_BAD_ARGUMENT;
        int fd = -1;
        tether_ret_t r = open_node(bus, address, &fd);
        if (r != TETHER_SUCCESS)
                return r;
        uint32_t caps = 0, claimed = 0, detached = 0;
        r = usbfs_capabilities(fd, &caps);
        for (unsigned i = 0; r == TETHER_SUCCESS && i < USBFS_MAX_INTERFACES; i++) {
                if (!(interface_mask & (1u << i)))
                        continue;
                bool d = false;
                r = usbfs_take_interface(fd, i, &d);
                if (r == TETHER_SUCCESS) {
                        claimed |= 1u << i;
                        detached |= d ? 1u << i : 0;
                }
        }
        /* Last, since a dropped fd could no longer detach anything. A
         * kernel that has the capability and still refuses gets no fd:
         * handing out full rights we meant to withhold is worse. */
        if (r == TETHER_SUCCESS && (caps & USBDEVFS_CAP_DROP_PRIVILEGES)) {
                uint32_t mask = interface_mask;
                if (ioctl(fd, USBDEVFS_DROP_PRIVILEGES, &mask) != 0)
                        r = errno == ENODEV ? TETHER_ERR_NO_DEVICE : TETHER_ERR_IO;
        }
        if (r != TETHER_SUCCESS) {
                undo(fd, claimed, detached);
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return TETHER_SUCCESS;
}

tether_ret_t usbfs_give_back(uint8_t bus, uint8_t address, uint32_t interface_mask)
{
        if (!interface_mask || !bus || !address)
                return TETHER_ERR_BAD_ARGUMENT;
        int fd = -1;
        tether_ret_t r = open_node(bus, address, &fd);
        if (r != TETHER_SUCCESS)
                return r;
        /* Every interface gets its chance; the first failure is the answer. */
        tether_ret_t first = TETHER_SUCCESS;
        for (unsigned i = 0; i < USBFS_MAX_INTERFACES; i++) {
                if (!(interface_mask & (1u << i)))
                        continue;
                r = usbfs_attach_kernel_driver(fd, i);
                if (first == TETHER_SUCCESS)
                        first = r;
        }
        close(fd);
        return first;
}
