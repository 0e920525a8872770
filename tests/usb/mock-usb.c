/* SPDX-License-Identifier: MIT */
#include "mock-usb.h"

#include <errno.h>
#include <linux/ioctl.h>
#include <linux/usbdevice_fs.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <umockdev.h>

#include "scope.h"

#define DEVNODE "/dev/bus/usb/001/002"
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

struct mock_usb {
        UMockdevTestbed *bed;
        UMockdevIoctlBase *handler;
        /* The handler runs on umockdev's worker thread, tests on theirs. */
        pthread_mutex_t lock;
        sim_scope *scope;
        sim_usbtmc *dev;
        urb_rec *urbs;
        bool plugged, kernel_driver;
        mock_usb_stats stats;
};

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
                tether_ret_t r = sim_usbtmc_ops.bulk_in(m->dev, p, len, &got, SIM_IN_WAIT_MS);
                if (r == TETHER_ERR_TIMEOUT)
                        done = false; /* nothing to send: the URB waits until the host gives up */
                urb->status = r == TETHER_ERR_TIMEOUT ? 0 : status_of(r);
                urb->actual_length = (int)got;
                if (got > m->stats.bulk_in_bytes_max)
                        m->stats.bulk_in_bytes_max = (unsigned)got;
        } else if (urb->type == USBDEVFS_URB_TYPE_INTERRUPT) {
                /* USB488 notifications (READ_STATUS_BYTE's answer); with none
                 * queued the URB waits, as on a quiet device. */
                m->stats.interrupt++;
                tether_ret_t r = sim_usbtmc_ops.interrupt_in(m->dev, p, len, &got, 0);
                done = r != TETHER_ERR_TIMEOUT;
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

static gboolean handle_ioctl(UMockdevIoctlBase *handler, UMockdevIoctlClient *client, gpointer user)
{
        (void)handler;
        mock_usb *m = user;
        gulong request = umockdev_ioctl_client_get_request(client);
        UMockdevIoctlData *arg = umockdev_ioctl_client_get_arg(client);
        unsigned u = 0;
        gboolean handled = TRUE;
        pthread_mutex_lock(&m->lock);
        if (!m->plugged && request != USBDEVFS_REAPURBNDELAY && request != USBDEVFS_REAPURB &&
            request != (gulong)USBDEVFS_DISCARDURB) {
                umockdev_ioctl_client_complete(client, -1, ENODEV);
                goto out;
        }
        switch (request) {
        case USBDEVFS_GET_CAPABILITIES: {
                UMockdevIoctlData *d = umockdev_ioctl_data_resolve(arg, 0, sizeof(uint32_t), NULL);
                /* One URB per transfer, however long, as on a current kernel. */
                uint32_t caps = USBDEVFS_CAP_NO_PACKET_SIZE_LIM | USBDEVFS_CAP_ZERO_PACKET |
                                USBDEVFS_CAP_REAP_AFTER_DISCONNECT;
                if (d)
                        memcpy(d->data, &caps, sizeof(caps));
                umockdev_ioctl_client_complete(client, d ? 0 : -1, d ? 0 : EFAULT);
                break;
        }
        case USBDEVFS_CLAIMINTERFACE:
                if (!uint_arg(arg, &u) || u != 0)
                        umockdev_ioctl_client_complete(client, -1, EINVAL);
                else if (m->kernel_driver)
                        umockdev_ioctl_client_complete(client, -1, EBUSY); /* usbtmc has it */
                else {
                        m->stats.claims++;
                        umockdev_ioctl_client_complete(client, 0, 0);
                }
                break;
        case USBDEVFS_RELEASEINTERFACE:
                m->stats.releases++;
                umockdev_ioctl_client_complete(client, 0, 0);
                break;
        case USBDEVFS_GETDRIVER: {
                UMockdevIoctlData *d = umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_getdriver), NULL);
                if (!d)
                        umockdev_ioctl_client_complete(client, -1, EFAULT);
                else if (!m->kernel_driver)
                        umockdev_ioctl_client_complete(client, -1, ENODATA);
                else {
                        struct usbdevfs_getdriver *g = (struct usbdevfs_getdriver *)d->data;
                        snprintf(g->driver, sizeof(g->driver), "usbtmc");
                        umockdev_ioctl_client_complete(client, 0, 0);
                }
                break;
        }
        case USBDEVFS_DISCONNECT_CLAIM: {
                UMockdevIoctlData *d =
                        umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_disconnect_claim), NULL);
                struct usbdevfs_disconnect_claim *dc = d ? (struct usbdevfs_disconnect_claim *)d->data : NULL;
                if (!dc || dc->interface != 0) {
                        umockdev_ioctl_client_complete(client, -1, EINVAL);
                        break;
                }
                bool named = !strncmp(dc->driver, "usbtmc", sizeof(dc->driver));
                bool take = (dc->flags & USBDEVFS_DISCONNECT_CLAIM_IF_DRIVER) ? named
                          : (dc->flags & USBDEVFS_DISCONNECT_CLAIM_EXCEPT_DRIVER) ? !named : true;
                if (m->kernel_driver && !take) {
                        umockdev_ioctl_client_complete(client, -1, EBUSY);
                        break;
                }
                if (m->kernel_driver) {
                        m->kernel_driver = false;
                        m->stats.driver_detached++;
                }
                m->stats.claims++;
                umockdev_ioctl_client_complete(client, 0, 0);
                break;
        }
        case USBDEVFS_IOCTL: {
                UMockdevIoctlData *d = umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_ioctl), NULL);
                struct usbdevfs_ioctl *io = d ? (struct usbdevfs_ioctl *)d->data : NULL;
                if (io && io->ioctl_code == (int)USBDEVFS_CONNECT) {
                        if (m->kernel_driver) {
                                umockdev_ioctl_client_complete(client, -1, EBUSY);
                                break;
                        }
                        m->kernel_driver = true;
                        m->stats.driver_attached++;
                        umockdev_ioctl_client_complete(client, 0, 0);
                } else if (io && io->ioctl_code == (int)USBDEVFS_DISCONNECT) {
                        if (!m->kernel_driver) {
                                umockdev_ioctl_client_complete(client, -1, ENODATA);
                                break;
                        }
                        m->kernel_driver = false;
                        m->stats.driver_detached++;
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
        (void)client;
        mock_usb *m = user;
        pthread_mutex_lock(&m->lock);
        m->stats.clients++;
        pthread_mutex_unlock(&m->lock);
}

/* A closed file loses its URBs, as usbfs frees them on release. */
static void client_vanished(UMockdevIoctlBase *handler, UMockdevIoctlClient *client, gpointer user)
{
        (void)handler;
        mock_usb *m = user;
        pthread_mutex_lock(&m->lock);
        drop_urbs(m, client);
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
        g_signal_connect(m->handler, "client-vanished", G_CALLBACK(client_vanished), m);
        *ret = m;
        return 0;
}

int mock_usb_plug(mock_usb *m, bool kernel_driver)
{
        GError *err = NULL;
        pthread_mutex_lock(&m->lock);
        m->plugged = true;
        m->kernel_driver = kernel_driver;
        sim_usbtmc_reset_faults(m->dev);
        pthread_mutex_unlock(&m->lock);
        /* The handler before the device: whoever reacts to the "add"
         * uevent may open the node at once. */
        if (!umockdev_testbed_attach_ioctl(m->bed, DEVNODE, m->handler, &err) ||
            !umockdev_testbed_add_from_file(m->bed, MOCK_USB_DEVICE_FILE, &err)) {
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
        *ret = m->stats;
        pthread_mutex_unlock(&m->lock);
}

bool mock_usb_kernel_driver_bound(mock_usb *m)
{
        pthread_mutex_lock(&m->lock);
        bool b = m->kernel_driver;
        pthread_mutex_unlock(&m->lock);
        return b;
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
        sim_usbtmc_free(m->dev);
        sim_scope_free(m->scope);
        pthread_mutex_destroy(&m->lock);
        free(m);
}
