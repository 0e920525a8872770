/* SPDX-License-Identifier: MIT */
#include "mock-usb.h"

#include <errno.h>
#include <linux/ioctl.h>
#include <linux/usbdevice_fs.h>
#include <linux/usb/ch9.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <umockdev.h>

#include "scope.h"

#define DEVNODE "/dev/bus/usb/001/002"
#define BUSNUM 1
#define DEVNUM 2
#define SYSPATH "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1"
#define EP_OUT 0x02
#define EP_IN 0x81
/* How long the device side may hold a bulk-IN for an acquisition in
 * progress; libusb's own timeout still applies on the host side. */
#define SIM_IN_WAIT_MS 10000

/* One URB the emulated kernel holds: in flight (a bulk-IN the device has
 * no answer for yet, an interrupt-IN) or done and waiting to be reaped. */
typedef struct urb_rec {
        UMockdevIoctlClient *client; /* identity only: URBs are reaped per open file */
        UMockdevIoctlData *urb;      /* referenced; resolved with its buffer */
        bool done;
        struct urb_rec *next;
} urb_rec;

/* What usbfs keeps per open file (its usb_dev_state): one per client,
 * since each open of the node is its own connection to the handler. */
typedef struct file_rec {
        UMockdevIoctlClient *client;
        bool dropped;     /* USBDEVFS_DROP_PRIVILEGES issued */
        uint32_t allowed; /* interfaces it may still claim once dropped */
        struct file_rec *next;
} file_rec;

struct mock_usb {
        UMockdevTestbed *bed;
        UMockdevIoctlBase *handler;
        /* The handler runs on umockdev's worker thread, tests on theirs. */
        pthread_mutex_t lock;
        sim_scope *scope;
        sim_usbtmc *dev;
        urb_rec *urbs;
        file_rec *files;
        /* Interface 0's driver: the kernel's usbtmc, or usbfs for the file
         * that claimed it (owner), or none. Never both. */
        bool plugged, kernel_driver;
        UMockdevIoctlClient *owner;
        bool old_kernel; /* no DROP_PRIVILEGES, as before Linux 4.6 */
        mock_usb_stats stats;
};

static file_rec *file_of(mock_usb *m, UMockdevIoctlClient *client)
{
        for (file_rec *f = m->files; f; f = f->next)
                if (f->client == client)
                        return f;
        file_rec *f = calloc(1, sizeof(*f));
        if (!f)
                abort();
        /* Held until the file is closed, so no later client can reuse the
         * address while it still names this one. */
        f->client = g_object_ref(client);
        f->allowed = UINT32_MAX;
        f->next = m->files;
        m->files = f;
        return f;
}

static void drop_file(mock_usb *m, UMockdevIoctlClient *client)
{
        for (file_rec **p = &m->files; *p; p = &(*p)->next) {
                if ((*p)->client != client)
                        continue;
                file_rec *f = *p;
                *p = f->next;
                g_object_unref(f->client);
                free(f);
                return;
        }
}

static void drop_urbs(mock_usb *m, UMockdevIoctlClient *client)
{
        for (urb_rec **p = &m->urbs; *p;) {
                urb_rec *r = *p;
                if (client && r->client != client) {
                        p = &r->next;
                        continue;
                }
                *p = r->next;
                g_object_unref(r->urb);
                free(r);
        }
}

static void queue_urb(mock_usb *m, UMockdevIoctlClient *client, UMockdevIoctlData *urb, bool done)
{
        urb_rec *r = calloc(1, sizeof(*r));
        if (!r)
                abort();
        r->client = client;
        r->urb = g_object_ref(urb);
        r->done = done;
        urb_rec **p = &m->urbs;
        while (*p)
                p = &(*p)->next;
        *p = r; /* reaped in completion order, as the kernel does */
}

static int status_of(tether_ret_t r)
{
        switch (r) {
        case TETHER_SUCCESS: return 0;
        case TETHER_ERR_NO_DEVICE: return -ESHUTDOWN;
        default: return -EPIPE; /* the device stalled the endpoint */
        }
}

/* A string descriptor: 0 is the language list, then the device's strings. */
static size_t string_descriptor(uint8_t index, uint8_t *out, size_t cap)
{
        static const char *const strings[] = { NULL, "Agilent Technologies", "DSO-X 2002A", "MY57235663" };
        uint8_t d[2 + 2 * 64];
        size_t n;
        if (index == 0) {
                d[2] = 0x09; /* en-US */
                d[3] = 0x04;
                n = 4;
        } else if (index < sizeof(strings) / sizeof(strings[0])) {
                n = 2;
                for (const char *s = strings[index]; *s; s++) {
                        d[n++] = (uint8_t)*s;
                        d[n++] = 0;
                }
        } else
                return 0;
        d[0] = (uint8_t)n;
        d[1] = 3; /* STRING */
        n = n < cap ? n : cap;
        memcpy(out, d, n);
        return n;
}

/* A control transfer: setup packet, then the data stage (len bytes at
 * data). The class requests go to the simulator. Returns the URB status;
 * *ret_len is the data stage's length. */
static int control(mock_usb *m, const uint8_t setup[8], uint8_t *data, size_t len, size_t *ret_len)
{
        uint8_t type = setup[0], request = setup[1];
        uint16_t value = (uint16_t)(setup[2] | setup[3] << 8), index = (uint16_t)(setup[4] | setup[5] << 8);
        uint16_t length = (uint16_t)(setup[6] | setup[7] << 8);
        *ret_len = 0;
        if (length > len)
                return -EINVAL;
        if (type == 0x80 && request == 8 && length >= 1) { /* GET_CONFIGURATION: the only one, 1 */
                data[0] = 1;
                *ret_len = 1;
                return 0;
        }
        if (type == 0x80 && request == 6 && value >> 8 == 3) { /* GET_DESCRIPTOR(STRING) */
                *ret_len = string_descriptor(value & 0xff, data, length);
                return *ret_len ? 0 : -EPIPE;
        }
        if ((type & 0x60) == 0x20 && (type & 0x80)) { /* class, IN: USBTMC/USB488 */
                tether_ret_t r = sim_usbtmc_ops.control_in(m->dev, type, request, value, index, data, length,
                                                           ret_len, 1000);
                return status_of(r);
        }
        return -EPIPE; /* nothing else is supported: stall, as a device does */
}

/* A bulk-IN URB's answer as it is submitted. The device may say when its
 * answer will be ready (an acquisition): that is waited for here, up to
 * SIM_IN_WAIT_MS. A device with nothing coming NAKs (TETHER_ERR_NOT_READY):
 * the URB then waits in the kernel until the host discards it; this mock
 * does not ask the device again later. */
static tether_ret_t bulk_in_now(mock_usb *m, uint8_t *p, size_t len, size_t *ret_got)
{
        unsigned waited = 0;
        for (;;) {
                uint32_t wake = SIM_WAKE_NEVER;
                tether_ret_t r = sim_usbtmc_bulk_in_try(m->dev, p, len, ret_got, &wake);
                if (r != TETHER_ERR_NOT_READY || wake == SIM_WAKE_NEVER || waited + wake > SIM_IN_WAIT_MS)
                        return r;
                struct timespec ts = { .tv_sec = wake / 1000, .tv_nsec = (long)(wake % 1000) * 1000000L };
                nanosleep(&ts, NULL);
                waited += wake;
        }
}

static gboolean submit_urb(mock_usb *m, UMockdevIoctlClient *client, UMockdevIoctlData *arg)
{
        UMockdevIoctlData *urb_data = umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_urb), NULL);
        if (!urb_data) {
                umockdev_ioctl_client_complete(client, -1, EFAULT);
                return TRUE;
        }
        struct usbdevfs_urb *urb = (struct usbdevfs_urb *)urb_data->data;
        UMockdevIoctlData *buf = NULL;
        if (urb->buffer_length > 0)
                buf = umockdev_ioctl_data_resolve(urb_data, offsetof(struct usbdevfs_urb, buffer),
                                                  (gsize)urb->buffer_length, NULL);
        if (urb->buffer_length < 0 || (urb->buffer_length > 0 && !buf)) {
                umockdev_ioctl_client_complete(client, -1, EFAULT);
                return TRUE;
        }
        if (!m->plugged) {
                umockdev_ioctl_client_complete(client, -1, ENODEV);
                return TRUE;
        }
        uint8_t *p = buf ? buf->data : NULL;
        size_t len = (size_t)urb->buffer_length, got = 0;
        bool done = true;
        urb->actual_length = 0;
        urb->status = 0;
        if (urb->type == USBDEVFS_URB_TYPE_CONTROL) {
                m->stats.control++;
                if (len < 8) {
                        umockdev_ioctl_client_complete(client, -1, EINVAL);
                        return TRUE;
                }
                urb->status = control(m, p, p + 8, len - 8, &got);
                urb->actual_length = (int)got;
        } else if (urb->type == USBDEVFS_URB_TYPE_BULK && urb->endpoint == EP_OUT) {
                m->stats.bulk_out++;
                urb->status = status_of(sim_usbtmc_ops.bulk_out(m->dev, p, len, 1000));
                urb->actual_length = urb->status ? 0 : (int)len;
        } else if (urb->type == USBDEVFS_URB_TYPE_BULK && urb->endpoint == EP_IN) {
                m->stats.bulk_in++;
                tether_ret_t r = bulk_in_now(m, p, len, &got);
                if (r == TETHER_ERR_NOT_READY)
                        done = false; /* nothing to send: the URB waits until the host gives up */
                urb->status = r == TETHER_ERR_NOT_READY ? 0 : status_of(r);
                urb->actual_length = (int)got;
                if (got > m->stats.bulk_in_bytes_max)
                        m->stats.bulk_in_bytes_max = (unsigned)got;
        } else if (urb->type == USBDEVFS_URB_TYPE_INTERRUPT) {
                /* USB488 notifications (READ_STATUS_BYTE's answer); with none
                 * queued the URB waits, as on a quiet device. */
                m->stats.interrupt++;
                uint32_t wake;
                tether_ret_t r = sim_usbtmc_interrupt_in_try(m->dev, p, len, &got, &wake);
                done = r != TETHER_ERR_NOT_READY;
                urb->status = done ? status_of(r) : 0;
                urb->actual_length = (int)got;
        } else {
                umockdev_ioctl_client_complete(client, -1, EINVAL);
                return TRUE;
        }
        queue_urb(m, client, urb_data, done);
        umockdev_ioctl_client_complete(client, 0, 0);
        return TRUE;
}

static gboolean reap_urb(mock_usb *m, UMockdevIoctlClient *client, UMockdevIoctlData *arg)
{
        for (urb_rec **p = &m->urbs; *p; p = &(*p)->next) {
                urb_rec *r = *p;
                if (r->client != client || !r->done)
                        continue;
                UMockdevIoctlData *ptr = umockdev_ioctl_data_resolve(arg, 0, sizeof(void *), NULL);
                if (!ptr) {
                        umockdev_ioctl_client_complete(client, -1, EFAULT);
                        return TRUE;
                }
                /* The pointer the caller gets back is its own URB's
                 * address; the URB and its buffer are written back with it. */
                umockdev_ioctl_data_set_ptr(ptr, 0, r->urb);
                *p = r->next;
                g_object_unref(r->urb);
                free(r);
                m->stats.reaped++;
                umockdev_ioctl_client_complete(client, 0, 0);
                return TRUE;
        }
        umockdev_ioctl_client_complete(client, -1, m->plugged ? EAGAIN : ENODEV);
        return TRUE;
}

static gboolean discard_urb(mock_usb *m, UMockdevIoctlClient *client, UMockdevIoctlData *arg)
{
        gulong addr = *(gulong *)arg->data;
        for (urb_rec *r = m->urbs; r; r = r->next) {
                if (r->client != client || r->urb->client_addr != addr || r->done)
                        continue;
                struct usbdevfs_urb *urb = (struct usbdevfs_urb *)r->urb->data;
                if (urb->type == USBDEVFS_URB_TYPE_BULK && urb->endpoint == EP_IN)
                        sim_usbtmc_bulk_in_expired(m->dev); /* the host gave up on it */
                urb->status = -ENOENT;
                urb->actual_length = 0;
                r->done = true;
                m->stats.discarded++;
                umockdev_ioctl_client_complete(client, 0, 0);
                return TRUE;
        }
        umockdev_ioctl_client_complete(client, -1, EINVAL); /* already completed */
        return TRUE;
}

/* An ioctl whose argument is one unsigned int (interface or endpoint). */
static bool uint_arg(UMockdevIoctlData *arg, unsigned *ret)
{
        UMockdevIoctlData *d = umockdev_ioctl_data_resolve(arg, 0, sizeof(unsigned), NULL);
        if (!d)
                return false;
        memcpy(ret, d->data, sizeof(unsigned));
        return true;
}

/* A closed file loses its URBs and its claim, as in usbfs's release.
 * umockdev 0.17 declares a "client-vanished" signal but never emits it,
 * and a client's "connected" property changes without a notification; it
 * is read instead, whenever the mock's state is looked at. */
static void sweep_closed(mock_usb *m)
{
        for (file_rec *f = m->files, *next; f; f = next) {
                next = f->next;
                if (umockdev_ioctl_client_get_connected(f->client))
                        continue;
                drop_urbs(m, f->client);
                m->stats.closes++;
                if (m->owner == f->client) /* no kernel driver binds by itself */
                        m->owner = NULL;
                drop_file(m, f->client);
        }
}

static const char *driver_name(mock_usb *m)
{
        return m->owner ? "usbfs" : m->kernel_driver ? "usbtmc" : NULL;
}

static void refuse(mock_usb *m, UMockdevIoctlClient *client)
{
        m->stats.refused++;
        umockdev_ioctl_client_complete(client, -1, EACCES);
}

/* Interface 0 loses its driver: the kernel's, or a file's claim. */
static void unbind(mock_usb *m)
{
        if (m->kernel_driver) {
                m->kernel_driver = false;
                m->stats.driver_detached++;
        }
        m->owner = NULL;
}

/* devio.c's claimintf, in its order: already this file's, then the
 * dropped mask, then whether the interface exists, then whether it is free. */
static void claim(mock_usb *m, file_rec *file, unsigned ifnum)
{
        UMockdevIoctlClient *client = file->client;
        if (ifnum >= 32)
                umockdev_ioctl_client_complete(client, -1, EINVAL);
        else if (ifnum == 0 && m->owner == client)
                umockdev_ioctl_client_complete(client, 0, 0);
        else if (file->dropped && !(file->allowed & (1u << ifnum)))
                refuse(m, client);
        else if (ifnum != 0)
                umockdev_ioctl_client_complete(client, -1, ENOENT);
        else if (driver_name(m))
                umockdev_ioctl_client_complete(client, -1, EBUSY); /* usbtmc or another file has it */
        else {
                m->owner = client;
                m->stats.claims++;
                umockdev_ioctl_client_complete(client, 0, 0);
        }
}

/* USBDEVFS_CONNINFO_EX(len): as much of the structure as the caller asked
 * for, size saying how much the kernel has. */
static void conninfo_ex(UMockdevIoctlClient *client, UMockdevIoctlData *arg, size_t len)
{
        struct usbdevfs_conninfo_ex ci = { .size = sizeof(ci), .busnum = BUSNUM, .devnum = DEVNUM,
                                           .speed = USB_SPEED_HIGH, .num_ports = 1, .ports = { 1 } };
        if (len < sizeof(ci.size)) {
                umockdev_ioctl_client_complete(client, -1, EINVAL);
                return;
        }
        len = len < sizeof(ci) ? len : sizeof(ci);
        UMockdevIoctlData *d = umockdev_ioctl_data_resolve(arg, 0, len, NULL);
        if (!d) {
                umockdev_ioctl_client_complete(client, -1, EFAULT);
                return;
        }
        memcpy(d->data, &ci, len);
        umockdev_ioctl_client_complete(client, 0, 0);
}

static gboolean handle_ioctl(UMockdevIoctlBase *handler, UMockdevIoctlClient *client, gpointer user)
{
        (void)handler;
        mock_usb *m = user;
        gulong request = umockdev_ioctl_client_get_request(client);
        UMockdevIoctlData *arg = umockdev_ioctl_client_get_arg(client);
        unsigned u = 0;
        gboolean handled = TRUE;
        pthread_mutex_lock(&m->lock);
        sweep_closed(m);
        if (!m->plugged && request != USBDEVFS_REAPURBNDELAY && request != USBDEVFS_REAPURB &&
            request != (gulong)USBDEVFS_DISCARDURB) {
                umockdev_ioctl_client_complete(client, -1, ENODEV);
                goto out;
        }
        file_rec *file = file_of(m, client);
        /* Variable-size: the length is part of the request number. */
        if ((request & ~((gulong)_IOC_SIZEMASK << _IOC_SIZESHIFT)) == (gulong)USBDEVFS_CONNINFO_EX(0)) {
                conninfo_ex(client, arg, _IOC_SIZE(request));
                goto out;
        }
        switch (request) {
        case USBDEVFS_GET_CAPABILITIES: {
                UMockdevIoctlData *d = umockdev_ioctl_data_resolve(arg, 0, sizeof(uint32_t), NULL);
                /* One URB per transfer, however long, as on a current kernel. */
                uint32_t caps = USBDEVFS_CAP_NO_PACKET_SIZE_LIM | USBDEVFS_CAP_ZERO_PACKET |
                                USBDEVFS_CAP_REAP_AFTER_DISCONNECT | USBDEVFS_CAP_CONNINFO_EX;
                if (!m->old_kernel)
                        caps |= USBDEVFS_CAP_DROP_PRIVILEGES;
                if (d)
                        memcpy(d->data, &caps, sizeof(caps));
                umockdev_ioctl_client_complete(client, d ? 0 : -1, d ? 0 : EFAULT);
                break;
        }
        case USBDEVFS_DROP_PRIVILEGES: {
                UMockdevIoctlData *d = umockdev_ioctl_data_resolve(arg, 0, sizeof(uint32_t), NULL);
                uint32_t mask;
                if (m->old_kernel) {
                        umockdev_ioctl_client_complete(client, -1, ENOTTY);
                        break;
                }
                if (!d) {
                        umockdev_ioctl_client_complete(client, -1, EFAULT);
                        break;
                }
                /* One way: narrowed, never widened. */
                memcpy(&mask, d->data, sizeof(mask));
                file->allowed &= mask;
                file->dropped = true;
                m->stats.drops++;
                umockdev_ioctl_client_complete(client, 0, 0);
                break;
        }
        case USBDEVFS_CONNECTINFO: {
                UMockdevIoctlData *d =
                        umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_connectinfo), NULL);
                if (!d) {
                        umockdev_ioctl_client_complete(client, -1, EFAULT);
                        break;
                }
                struct usbdevfs_connectinfo *ci = (struct usbdevfs_connectinfo *)d->data;
                ci->devnum = DEVNUM;
                ci->slow = 0;
                umockdev_ioctl_client_complete(client, 0, 0);
                break;
        }
        case USBDEVFS_GET_SPEED:
                umockdev_ioctl_client_complete(client, USB_SPEED_HIGH, 0);
                break;
        case USBDEVFS_CLAIMINTERFACE:
                if (!uint_arg(arg, &u))
                        umockdev_ioctl_client_complete(client, -1, EFAULT);
                else
                        claim(m, file, u);
                break;
        case USBDEVFS_RELEASEINTERFACE:
                if (!uint_arg(arg, &u))
                        umockdev_ioctl_client_complete(client, -1, EFAULT);
                else if (u >= 32)
                        umockdev_ioctl_client_complete(client, -1, EINVAL);
                else if (u != 0)
                        umockdev_ioctl_client_complete(client, -1, ENOENT);
                else if (m->owner != client)
                        umockdev_ioctl_client_complete(client, -1, EINVAL); /* not this file's claim */
                else {
                        m->owner = NULL;
                        m->stats.releases++;
                        umockdev_ioctl_client_complete(client, 0, 0);
                }
                break;
        case USBDEVFS_GETDRIVER: {
                UMockdevIoctlData *d = umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_getdriver), NULL);
                struct usbdevfs_getdriver *g = d ? (struct usbdevfs_getdriver *)d->data : NULL;
                if (!g)
                        umockdev_ioctl_client_complete(client, -1, EFAULT);
                else if (g->interface != 0 || !driver_name(m))
                        umockdev_ioctl_client_complete(client, -1, ENODATA);
                else {
                        snprintf(g->driver, sizeof(g->driver), "%s", driver_name(m));
                        umockdev_ioctl_client_complete(client, 0, 0);
                }
                break;
        }
        case USBDEVFS_DISCONNECT_CLAIM: {
                UMockdevIoctlData *d =
                        umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_disconnect_claim), NULL);
                struct usbdevfs_disconnect_claim *dc = d ? (struct usbdevfs_disconnect_claim *)d->data : NULL;
                if (!dc || dc->interface != 0) {
                        umockdev_ioctl_client_complete(client, -1, dc ? EINVAL : EFAULT);
                        break;
                }
                const char *bound = driver_name(m);
                if (bound) {
                        bool named = !strncmp(dc->driver, bound, sizeof(dc->driver));
                        if (file->dropped) {
                                refuse(m, client); /* whoever the driver is, even this file's usbfs */
                                break;
                        }
                        if (((dc->flags & USBDEVFS_DISCONNECT_CLAIM_IF_DRIVER) && !named) ||
                            ((dc->flags & USBDEVFS_DISCONNECT_CLAIM_EXCEPT_DRIVER) && named)) {
                                umockdev_ioctl_client_complete(client, -1, EBUSY);
                                break;
                        }
                        unbind(m);
                }
                claim(m, file, dc->interface);
                break;
        }
        case USBDEVFS_IOCTL: {
                UMockdevIoctlData *d = umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_ioctl), NULL);
                struct usbdevfs_ioctl *io = d ? (struct usbdevfs_ioctl *)d->data : NULL;
                if (!io)
                        umockdev_ioctl_client_complete(client, -1, EFAULT);
                else if (file->dropped)
                        refuse(m, client); /* before anything else, as devio.c's proc_ioctl */
                else if (io->ifno != 0)
                        umockdev_ioctl_client_complete(client, -1, EINVAL);
                else if (io->ioctl_code == (int)USBDEVFS_CONNECT) {
                        if (driver_name(m)) {
                                umockdev_ioctl_client_complete(client, -1, EBUSY);
                                break;
                        }
                        m->kernel_driver = true;
                        m->stats.driver_attached++;
                        umockdev_ioctl_client_complete(client, 1, 0); /* 1: a driver bound */
                } else if (io->ioctl_code == (int)USBDEVFS_DISCONNECT) {
                        if (!driver_name(m)) {
                                umockdev_ioctl_client_complete(client, -1, ENODATA);
                                break;
                        }
                        unbind(m); /* a usbfs claim too: another file loses it */
                        umockdev_ioctl_client_complete(client, 0, 0);
                } else
                        umockdev_ioctl_client_complete(client, -1, ENOTTY);
                break;
        }
        case USBDEVFS_CLEAR_HALT:
                if (!uint_arg(arg, &u) || (u != EP_IN && u != EP_OUT)) {
                        umockdev_ioctl_client_complete(client, -1, EINVAL);
                        break;
                }
                m->stats.clear_halts++;
                sim_usbtmc_ops.clear_halt(m->dev, u == EP_OUT);
                umockdev_ioctl_client_complete(client, 0, 0);
                break;
        case USBDEVFS_CONTROL: {
                UMockdevIoctlData *d =
                        umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_ctrltransfer), NULL);
                struct usbdevfs_ctrltransfer *ct = d ? (struct usbdevfs_ctrltransfer *)d->data : NULL;
                UMockdevIoctlData *b = ct && ct->wLength
                        ? umockdev_ioctl_data_resolve(d, offsetof(struct usbdevfs_ctrltransfer, data), ct->wLength, NULL)
                        : NULL;
                if (!ct || (ct->wLength && !b)) {
                        umockdev_ioctl_client_complete(client, -1, EFAULT);
                        break;
                }
                uint8_t setup[8] = { ct->bRequestType, ct->bRequest, (uint8_t)ct->wValue, (uint8_t)(ct->wValue >> 8),
                                     (uint8_t)ct->wIndex, (uint8_t)(ct->wIndex >> 8), (uint8_t)ct->wLength,
                                     (uint8_t)(ct->wLength >> 8) };
                size_t got = 0;
                m->stats.control++;
                int st = control(m, setup, b ? b->data : NULL, ct->wLength, &got);
                umockdev_ioctl_client_complete(client, st ? -1 : (glong)got, st ? -st : 0);
                break;
        }
        case USBDEVFS_SUBMITURB:
                submit_urb(m, client, arg);
                break;
        case USBDEVFS_REAPURB:
        case USBDEVFS_REAPURBNDELAY:
                reap_urb(m, client, arg);
                break;
        case USBDEVFS_DISCARDURB:
                discard_urb(m, client, arg);
                break;
        case USBDEVFS_SETINTERFACE:
        case USBDEVFS_SETCONFIGURATION:
        case USBDEVFS_RESETEP:
                umockdev_ioctl_client_complete(client, 0, 0);
                break;
        default:
                m->stats.unknown++;
                fprintf(stderr, "mock-usb: unhandled ioctl 0x%lx\n", (unsigned long)request);
                handled = FALSE; /* umockdev answers ENOTTY */
                break;
        }
out:
        pthread_mutex_unlock(&m->lock);
        return handled;
}

static void client_connected(UMockdevIoctlBase *handler, UMockdevIoctlClient *client, gpointer user)
{
        (void)handler;
        mock_usb *m = user;
        pthread_mutex_lock(&m->lock);
        m->stats.clients++;
        (void)file_of(m, client);
        pthread_mutex_unlock(&m->lock);
}

int mock_usb_new(mock_usb **ret)
{
        /* Without the preload, the testbed would exist but nothing would
         * look at it: libusb would see the host's real bus. */
        const char *preload = getenv("LD_PRELOAD");
        if (!preload || !strstr(preload, "libumockdev-preload")) {
                fprintf(stderr, "mock-usb: run under umockdev-wrapper (the preload library is not loaded)\n");
                return -1;
        }
        mock_usb *m = calloc(1, sizeof(*m));
        if (!m)
                return -1;
        pthread_mutex_init(&m->lock, NULL);
        if (sim_scope_new(&(sim_scope_config){ 0 }, &m->scope) || sim_usbtmc_new(m->scope, &m->dev)) {
                mock_usb_free(m);
                return -1;
        }
        m->bed = umockdev_testbed_new();
        m->handler = umockdev_ioctl_base_new();
        g_signal_connect(m->handler, "handle-ioctl", G_CALLBACK(handle_ioctl), m);
        g_signal_connect(m->handler, "client-connected", G_CALLBACK(client_connected), m);
        *ret = m;
        return 0;
}

/* usbfs's read(): the device descriptor, then each configuration's. umockdev
 * makes a USB node an empty file, which libusb_wrap_sys_device (it reads
 * the descriptors from the fd) would find short; the sysfs "descriptors"
 * attribute has the same bytes. Written in place, not replaced, so an fd
 * opened at the "add" uevent sees them too. */
static bool node_reads_descriptors(mock_usb *m, GError **err)
{
        gchar *root = umockdev_testbed_get_root_dir(m->bed);
        char *attr = g_build_filename(root, SYSPATH, "descriptors", NULL);
        char *node = g_build_filename(root, DEVNODE, NULL);
        gchar *bytes = NULL;
        gsize len = 0;
        bool ok = g_file_get_contents(attr, &bytes, &len, err);
        FILE *f = ok ? fopen(node, "r+") : NULL;
        if (ok && (!f || fwrite(bytes, 1, len, f) != len)) {
                g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED, "cannot write %s", node);
                ok = false;
        }
        if (f && fclose(f) != 0)
                ok = false;
        g_free(bytes);
        g_free(node);
        g_free(attr);
        g_free(root);
        return ok;
}

int mock_usb_plug(mock_usb *m, bool kernel_driver)
{
        GError *err = NULL;
        pthread_mutex_lock(&m->lock);
        m->plugged = true;
        m->kernel_driver = kernel_driver;
        m->owner = NULL;
        sim_usbtmc_reset_faults(m->dev);
        pthread_mutex_unlock(&m->lock);
        /* The handler before the device: whoever reacts to the "add"
         * uevent may open the node at once. */
        if (!umockdev_testbed_attach_ioctl(m->bed, DEVNODE, m->handler, &err) ||
            !umockdev_testbed_add_from_file(m->bed, MOCK_USB_DEVICE_FILE, &err) || !node_reads_descriptors(m, &err)) {
                fprintf(stderr, "mock-usb: %s\n", err ? err->message : "cannot plug the device");
                g_clear_error(&err);
                return -1;
        }
        return 0;
}

int mock_usb_plug_other(mock_usb *m, const char *file)
{
        GError *err = NULL;
        if (!umockdev_testbed_add_from_file(m->bed, file, &err)) {
                fprintf(stderr, "mock-usb: %s\n", err ? err->message : "cannot plug the device");
                g_clear_error(&err);
                return -1;
        }
        return 0;
}

void mock_usb_unplug(mock_usb *m)
{
        pthread_mutex_lock(&m->lock);
        m->plugged = false;
        /* What was in flight completes with ESHUTDOWN, as on a disconnect. */
        for (urb_rec *r = m->urbs; r; r = r->next) {
                if (r->done)
                        continue;
                struct usbdevfs_urb *urb = (struct usbdevfs_urb *)r->urb->data;
                urb->status = -ESHUTDOWN;
                urb->actual_length = 0;
                r->done = true;
        }
        pthread_mutex_unlock(&m->lock);
        /* The uevent needs the sysfs entry for its properties (bus and
         * device number), so it goes out before the entry is removed. */
        umockdev_testbed_uevent(m->bed, SYSPATH, "remove");
        umockdev_testbed_remove_device(m->bed, SYSPATH);
        umockdev_testbed_detach_ioctl(m->bed, DEVNODE, NULL);
}

void mock_usb_inject(mock_usb *m, sim_fault fault)
{
        pthread_mutex_lock(&m->lock);
        sim_usbtmc_inject(m->dev, fault);
        pthread_mutex_unlock(&m->lock);
}

void mock_usb_stats_get(mock_usb *m, mock_usb_stats *ret)
{
        pthread_mutex_lock(&m->lock);
        sweep_closed(m);
        *ret = m->stats;
        pthread_mutex_unlock(&m->lock);
}

bool mock_usb_kernel_driver_bound(mock_usb *m)
{
        pthread_mutex_lock(&m->lock);
        sweep_closed(m);
        bool b = m->kernel_driver;
        pthread_mutex_unlock(&m->lock);
        return b;
}

bool mock_usb_claimed(mock_usb *m)
{
        pthread_mutex_lock(&m->lock);
        sweep_closed(m);
        bool c = m->owner != NULL;
        pthread_mutex_unlock(&m->lock);
        return c;
}

void mock_usb_set_old_kernel(mock_usb *m, bool old)
{
        pthread_mutex_lock(&m->lock);
        m->old_kernel = old;
        pthread_mutex_unlock(&m->lock);
}

void mock_usb_free(mock_usb *m)
{
        if (!m)
                return;
        if (m->bed)
                g_object_unref(m->bed); /* stops the worker: no handler runs after this */
        if (m->handler)
                g_object_unref(m->handler);
        drop_urbs(m, NULL);
        while (m->files)
                drop_file(m, m->files->client);
        sim_usbtmc_free(m->dev);
        sim_scope_free(m->scope);
        pthread_mutex_destroy(&m->lock);
        free(m);
}
