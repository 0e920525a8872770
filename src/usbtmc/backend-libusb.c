/* SPDX-License-Identifier: MIT */
#include "usbtmc/backend-libusb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "usbtmc/usbfs.h"

struct usbtmc_usb {
        libusb_device_handle *h;
        usbtmc_usb_device info;
        int fd;        /* the fd usbtmc_usb_wrap was given, ours to close; -1 when libusb opened the device */
        bool reattach; /* usbtmc_usb_wrap took the interface from a kernel driver: give it back on close */
};

static tether_ret_t from_libusb(int e)
{
        switch (e) {
        case LIBUSB_SUCCESS: return TETHER_SUCCESS;
        case LIBUSB_ERROR_TIMEOUT: return TETHER_ERR_TIMEOUT;
        case LIBUSB_ERROR_PIPE: return TETHER_ERR_IO;       /* a stall */
        case LIBUSB_ERROR_NO_DEVICE: return TETHER_ERR_NO_DEVICE; /* unplugged */
        case LIBUSB_ERROR_ACCESS: return TETHER_ERR_NOT_PERMITTED;
        case LIBUSB_ERROR_BUSY: return TETHER_ERR_EXCLUSIVE_ACCESS;
        case LIBUSB_ERROR_NO_MEM: return TETHER_ERR_NO_MEMORY;
        case LIBUSB_ERROR_OVERFLOW: return TETHER_ERR_OVERRUN;
        default: return TETHER_ERR_IO;
        }
}

/* The USBTMC interface of one configuration, if it has one. */
static bool find_interface(const struct libusb_config_descriptor *cfg, usbtmc_usb_device *d)
{
        for (int i = 0; i < cfg->bNumInterfaces; i++) {
                for (int a = 0; a < cfg->interface[i].num_altsetting; a++) {
                        const struct libusb_interface_descriptor *alt = &cfg->interface[i].altsetting[a];
                        if (alt->bInterfaceClass != 0xfe || alt->bInterfaceSubClass != 0x03)
                                continue;
                        d->interface = alt->bInterfaceNumber;
                        d->protocol = alt->bInterfaceProtocol;
                        for (int e = 0; e < alt->bNumEndpoints; e++) {
                                const struct libusb_endpoint_descriptor *ep = &alt->endpoint[e];
                                int type = ep->bmAttributes & LIBUSB_TRANSFER_TYPE_MASK;
                                bool in = ep->bEndpointAddress & LIBUSB_ENDPOINT_IN;
                                if (type == LIBUSB_TRANSFER_TYPE_BULK && !in && !d->ep_out)
                                        d->ep_out = ep->bEndpointAddress;
                                else if (type == LIBUSB_TRANSFER_TYPE_BULK && in && !d->ep_in) {
                                        d->ep_in = ep->bEndpointAddress;
                                        d->max_packet_in = ep->wMaxPacketSize;
                                } else if (type == LIBUSB_TRANSFER_TYPE_INTERRUPT && in && !d->ep_interrupt)
                                        d->ep_interrupt = ep->bEndpointAddress;
                        }
                        /* Bulk-OUT and bulk-IN are required by USBTMC. */
                        return d->ep_out && d->ep_in;
                }
        }
        return false;
}

/* The scan and the wrap describe a device the same way; they differ in
 * how the serial is read: through the handle the caller has (a wrapped fd
 * cannot be opened again through libusb), or by opening the device briefly. */
static tether_ret_t describe(libusb_device *dev, libusb_device_handle *open_handle, usbtmc_usb_device *ret)
{
        struct libusb_device_descriptor dd;
        struct libusb_config_descriptor *cfg = NULL;
        int e = libusb_get_device_descriptor(dev, &dd);
        if (e != 0)
                return from_libusb(e);
        if (libusb_get_active_config_descriptor(dev, &cfg) != 0 && (e = libusb_get_config_descriptor(dev, 0, &cfg)) != 0)
                return from_libusb(e);
        usbtmc_usb_device d = { .bus = libusb_get_bus_number(dev),
                                .address = libusb_get_device_address(dev),
                                .vendor = dd.idVendor, .product = dd.idProduct };
        bool ours = find_interface(cfg, &d);
        libusb_free_config_descriptor(cfg);
        if (!ours)
                return TETHER_ERR_NOT_FOUND;
        /* The serial needs the device opened; without permission
         * (or under emulation) it stays empty, which is not an error. */
        libusb_device_handle *h = open_handle;
        if (dd.iSerialNumber && (h || libusb_open(dev, &h) == 0)) {
                if (libusb_get_string_descriptor_ascii(h, dd.iSerialNumber, (unsigned char *)d.serial,
                                                       sizeof(d.serial)) < 0)
                        d.serial[0] = '\0';
                if (h != open_handle)
                        libusb_close(h);
        }
        *ret = d;
        return TETHER_SUCCESS;
}

tether_ret_t usbtmc_usb_describe(libusb_device *dev, usbtmc_usb_device *ret)
{
        if (!dev || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        return describe(dev, NULL, ret);
}

tether_ret_t usbtmc_usb_scan(libusb_context *ctx, usbtmc_usb_device *out, size_t cap, size_t *ret_n)
{
        libusb_device **list = NULL;
        ssize_t n = libusb_get_device_list(ctx, &list);
        if (n < 0)
                return from_libusb((int)n);
        size_t found = 0;
        for (ssize_t i = 0; i < n && found < cap; i++)
                if (usbtmc_usb_describe(list[i], &out[found]) == TETHER_SUCCESS)
                        found++;
        libusb_free_device_list(list, 1);
        *ret_n = found;
        return TETHER_SUCCESS;
}

tether_ret_t usbtmc_usb_open(libusb_context *ctx, const usbtmc_usb_device *d, usbtmc_usb **ret)
{
        libusb_device **list = NULL;
        ssize_t n = libusb_get_device_list(ctx, &list);
        if (n < 0)
                return from_libusb((int)n);
        libusb_device_handle *h = NULL;
        int e = LIBUSB_ERROR_NO_DEVICE;
        for (ssize_t i = 0; i < n; i++)
                if (libusb_get_bus_number(list[i]) == d->bus && libusb_get_device_address(list[i]) == d->address)
                        e = libusb_open(list[i], &h);
        libusb_free_device_list(list, 1);
        if (e != 0)
                return from_libusb(e);
        /* The kernel's usbtmc driver may own the interface: take it for
         * now, and let libusb give it back when we release it. */
        libusb_set_auto_detach_kernel_driver(h, 1);
        e = libusb_claim_interface(h, d->interface);
        usbtmc_usb *u = e == 0 ? calloc(1, sizeof(*u)) : NULL;
        if (!u) {
                if (e == 0)
                        libusb_release_interface(h, d->interface);
                libusb_close(h);
                return e ? from_libusb(e) : TETHER_ERR_NO_MEMORY;
        }
        u->h = h;
        u->info = *d;
        u->fd = -1;
        *ret = u;
        return TETHER_SUCCESS;
}

tether_ret_t usbtmc_usb_no_discovery(void)
{
        /* On a NULL context the option becomes a default for the contexts
         * made after it; set on a context once made, it would come too
         * late, libusb_init having scanned the bus already. */
        return from_libusb(libusb_set_option(NULL, LIBUSB_OPTION_NO_DEVICE_DISCOVERY));
}

tether_ret_t usbtmc_usb_context_for_host(libusb_context **ret)
{
        if (!ret)
                return TETHER_ERR_BAD_ARGUMENT;
        tether_ret_t r = usbtmc_usb_no_discovery();
        return r == TETHER_SUCCESS ? from_libusb(libusb_init(ret)) : r;
}

tether_ret_t usbtmc_usb_wrap(libusb_context *ctx, int fd, usbtmc_usb **ret)
{
        if (!ctx || fd < 0 || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        libusb_device_handle *h = NULL;
        int e = libusb_wrap_sys_device(ctx, (intptr_t)fd, &h);
        if (e != 0)
                return from_libusb(e);
        usbtmc_usb_device d;
        tether_ret_t r = describe(libusb_get_device(h), h, &d);
        /* libusb takes bus and address from the fd's path in /proc; bus 0
         * means the path told it nothing (another mount namespace, or
         * umockdev's testbed), and the kernel can still say. */
        uint8_t bus = 0, address = 0;
        if (r == TETHER_SUCCESS && d.bus == 0 && usbfs_location(fd, &bus, &address) == TETHER_SUCCESS) {
                d.bus = bus;
                d.address = address;
        }
        /* Through usbfs rather than libusb's auto-detach: its errors say
         * whether a dropped fd was refused (NOT_PERMITTED) or someone else
         * has the interface, where libusb would answer LIBUSB_ERROR_OTHER. */
        bool detached = false;
        if (r == TETHER_SUCCESS)
                r = usbfs_take_interface(fd, d.interface, &detached);
        /* The kernel has the claim already; libusb must know of it too. */
        if (r == TETHER_SUCCESS && (e = libusb_claim_interface(h, d.interface)) != 0)
                r = from_libusb(e);
        usbtmc_usb *u = r == TETHER_SUCCESS ? calloc(1, sizeof(*u)) : NULL;
        if (r == TETHER_SUCCESS && !u)
                r = TETHER_ERR_NO_MEMORY;
        if (r != TETHER_SUCCESS) {
                if (detached) { /* as the kernel driver had it */
                        (void)usbfs_release_interface(fd, d.interface);
                        (void)usbfs_attach_kernel_driver(fd, d.interface);
                }
                libusb_close(h); /* leaves the fd open: it is still the caller's */
                return r;
        }
        u->h = h;
        u->info = d;
        u->fd = fd;
        u->reattach = detached;
        *ret = u;
        return TETHER_SUCCESS;
}

tether_ret_t usbtmc_usb_get_device(const usbtmc_usb *u, usbtmc_usb_device *ret)
{
        if (!u || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret = u->info;
        return TETHER_SUCCESS;
}

void usbtmc_usb_close(usbtmc_usb *u)
{
        if (!u)
                return;
        libusb_release_interface(u->h, u->info.interface);
        if (u->reattach)
                (void)usbfs_attach_kernel_driver(u->fd, u->info.interface);
        libusb_close(u->h);
        /* libusb_close leaves a wrapped fd open; the claims on it last
         * until the file is closed, so it is closed here, last. */
        if (u->fd >= 0)
                close(u->fd);
        free(u);
}

static tether_ret_t b_out(void *ctx, const uint8_t *data, size_t len, unsigned timeout_ms)
{
        usbtmc_usb *u = ctx;
        int done = 0;
        if (len > INT32_MAX)
                return TETHER_ERR_BAD_ARGUMENT;
        int e = libusb_bulk_transfer(u->h, u->info.ep_out, (unsigned char *)data, (int)len, &done, timeout_ms);
        if (e == 0 && (size_t)done != len)
                return TETHER_ERR_IO;
        return from_libusb(e);
}

static tether_ret_t b_in(void *ctx, uint8_t *data, size_t cap, size_t *ret_len, unsigned timeout_ms)
{
        usbtmc_usb *u = ctx;
        int got = 0;
        int e = libusb_bulk_transfer(u->h, u->info.ep_in, data, cap > INT32_MAX ? INT32_MAX : (int)cap, &got,
                                     timeout_ms);
        *ret_len = got > 0 ? (size_t)got : 0;
        return from_libusb(e);
}

static tether_ret_t b_control(void *ctx, uint8_t type, uint8_t request, uint16_t value, uint16_t index,
                              uint8_t *data, uint16_t len, size_t *ret_len, unsigned timeout_ms)
{
        usbtmc_usb *u = ctx;
        int n = libusb_control_transfer(u->h, type, request, value, index, data, len, timeout_ms);
        if (n < 0)
                return from_libusb(n);
        *ret_len = (size_t)n;
        return TETHER_SUCCESS;
}

static tether_ret_t b_clear_halt(void *ctx, bool out)
{
        usbtmc_usb *u = ctx;
        return from_libusb(libusb_clear_halt(u->h, out ? u->info.ep_out : u->info.ep_in));
}

static tether_ret_t b_interrupt(void *ctx, uint8_t *data, size_t cap, size_t *ret_len, unsigned timeout_ms)
{
        usbtmc_usb *u = ctx;
        int got = 0;
        if (!u->info.ep_interrupt)
                return TETHER_ERR_UNSUPPORTED;
        int e = libusb_interrupt_transfer(u->h, u->info.ep_interrupt, data, cap > INT32_MAX ? INT32_MAX : (int)cap,
                                          &got, timeout_ms);
        *ret_len = got > 0 ? (size_t)got : 0;
        return from_libusb(e);
}

static const usbtmc_backend_ops usb_ops = {
        .bulk_out = b_out,
        .bulk_in = b_in,
        .control_in = b_control,
        .clear_halt = b_clear_halt,
        .interrupt_in = b_interrupt,
};

void usbtmc_usb_attach(usbtmc *t, usbtmc_usb *u)
{
        usbtmc_init(t, &usb_ops, u);
        t->ep_out = u->info.ep_out;
        t->ep_in = u->info.ep_in;
        t->ep_interrupt = u->info.ep_interrupt;
        t->interface = u->info.interface;
        if (u->info.max_packet_in)
                t->max_packet = u->info.max_packet_in;
}
