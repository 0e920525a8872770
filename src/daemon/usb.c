/* SPDX-License-Identifier: MIT */
/*
 * The USB bus: every USBTMC interface becomes a TetherUSBDevice nub under
 * TetherUSB, found at start-up and then followed through libusb's hotplug
 * events; a departure terminates the nub, which cascades to the driver on
 * it and its user clients (NotAttached). tetherd only looks: drivers claim.
 *
 * Hotplug runs on a thread of its own rather than in the main loop. An
 * arrival is handled with blocking I/O (the device is opened to read its
 * serial, up to a second per request), and the main thread answers every
 * client's registry reads; and libusb's event handling, with its event
 * lock and its timers, stays on one thread that does nothing else. The
 * callback itself only queues: it runs inside libusb_handle_events, where
 * opening the device or a transfer would need the event handling it is
 * part of. The queue is drained on the same thread after handle_events
 * returns, so it needs no lock.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "daemon/daemon.h"
#include "usbtmc/backend-libusb.h"

typedef struct usb_event {
        bool arrived;
        libusb_device *dev; /* referenced */
        struct usb_event *next;
} usb_event;

static struct {
        libusb_context *ctx;
        libusb_hotplug_callback_handle cb;
        bool cb_registered, thread_started;
        pthread_t thread;
        atomic_bool stop;
        entry *bus;                 /* referenced */
        usb_event *head, **tail;    /* the hotplug thread's (before it starts: the main thread's) */
} hp = { .tail = &hp.head };

static void usb_loc(uint8_t bus, uint8_t address, char *buf, size_t cap)
{
        snprintf(buf, cap, "%u-%u", bus, address);
}

/* The device nub at loc under the bus, if any (reg_lock held; borrowed). */
static entry *find_nub_locked(entry *bus, const char *loc)
{
        for (size_t i = 0; i < bus->n_children; i++) {
                entry *c = bus->children[i];
                if (!strcmp(c->class_name, "TetherUSBDevice") && !strcmp(c->location, loc))
                        return c;
        }
        return NULL;
}

/* One instrument as a nub, unless it has one already: the start-up scan
 * and hotplug's enumeration both report the devices present at start. */
static tether_ret_t publish_device(entry *bus, const usbtmc_usb_device *d)
{
        char name[32], loc[16];
        snprintf(name, sizeof(name), "USBTMC-%04x-%04x", d->vendor, d->product);
        usb_loc(d->bus, d->address, loc, sizeof(loc));
        pthread_mutex_lock(&reg_lock);
        bool known = find_nub_locked(bus, loc) != NULL;
        pthread_mutex_unlock(&reg_lock);
        if (known)
                return TETHER_SUCCESS;
        tether_value *p = NULL;
        tether_ret_t r = usb_identity(d->vendor, d->product, d->protocol, d->interface, d->serial, &p);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_uint(p, "USB Bus", d->bus, 8);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_uint(p, "USB Address", d->address, 8);
        if (r == TETHER_SUCCESS)
                r = nub_publish_new(bus, "TetherUSBDevice", name, loc, p);
        tether_value_unref(p);
        if (r != TETHER_SUCCESS)
                log_err("tether: cannot publish USB device %s: %s", loc, tether_strerror(r));
        else
                log_info("USB: USBTMC instrument %04x:%04x at %s", d->vendor, d->product, loc);
        return r;
}

/* Gone from the bus: the nub and everything on it terminate. */
static void unpublish_device(entry *bus, uint8_t busnum, uint8_t address)
{
        char loc[16];
        usb_loc(busnum, address, loc, sizeof(loc));
        pthread_mutex_lock(&reg_lock);
        entry *nub = find_nub_locked(bus, loc);
        if (nub) {
                service_terminate_subtree_locked(nub);
                registry_detach_locked(nub);
        }
        pthread_mutex_unlock(&reg_lock);
        if (nub)
                log_info("USB: instrument at %s unplugged", loc);
}

static void scan(entry *bus)
{
        libusb_context *ctx = NULL;
        if (libusb_init(&ctx) != 0) {
                log_info("no USB access here; USB instruments will not be found");
                return;
        }
        usbtmc_usb_device d[16];
        size_t n = 0;
        if (usbtmc_usb_scan(ctx, d, sizeof(d) / sizeof(d[0]), &n) != TETHER_SUCCESS)
                n = 0;
        libusb_exit(ctx);
        for (size_t i = 0; i < n; i++)
                publish_device(bus, &d[i]);
}

/* Inside libusb's event handling: remember, act later. */
static int on_hotplug(libusb_context *ctx, libusb_device *dev, libusb_hotplug_event event, void *user)
{
        (void)ctx;
        (void)user;
        usb_event *e = calloc(1, sizeof(*e));
        if (!e) {
                log_err("USB: out of memory; a hotplug event is lost");
                return 0;
        }
        e->arrived = event == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED;
        e->dev = libusb_ref_device(dev);
        *hp.tail = e;
        hp.tail = &e->next;
        return 0; /* stay registered */
}

static void drain_events(bool act)
{
        while (hp.head) {
                usb_event *e = hp.head;
                hp.head = e->next;
                if (!hp.head)
                        hp.tail = &hp.head;
                if (act && e->arrived) {
                        usbtmc_usb_device d;
                        if (usbtmc_usb_describe(e->dev, &d) == TETHER_SUCCESS)
                                publish_device(hp.bus, &d);
                } else if (act)
                        unpublish_device(hp.bus, libusb_get_bus_number(e->dev), libusb_get_device_address(e->dev));
                libusb_unref_device(e->dev);
                free(e);
        }
}

static void *hotplug_thread(void *arg)
{
        (void)arg;
        while (!atomic_load(&hp.stop)) {
                drain_events(true);
                /* Woken early by libusb_interrupt_event_handler at stop. */
                struct timeval tv = { .tv_sec = 1 };
                if (libusb_handle_events_timeout_completed(hp.ctx, &tv, NULL) != 0 && !atomic_load(&hp.stop)) {
                        struct timespec ts = { .tv_nsec = 100 * 1000000L };
                        nanosleep(&ts, NULL); /* an error here would otherwise spin */
                }
        }
        return NULL;
}

void usb_bus_start(entry *bus)
{
        scan(bus);
        if (!libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG)) {
                log_info("USB: no hotplug support in libusb here; instruments plugged in later are not seen");
                return;
        }
        if (libusb_init(&hp.ctx) != 0)
                return;
        hp.bus = entry_ref(bus);
        atomic_store(&hp.stop, false);
        /* ENUMERATE: devices that arrived between the scan and now are
         * reported too (those the scan saw are skipped by location). */
        int e = libusb_hotplug_register_callback(hp.ctx,
                                                 LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT,
                                                 LIBUSB_HOTPLUG_ENUMERATE, LIBUSB_HOTPLUG_MATCH_ANY,
                                                 LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY, on_hotplug, NULL,
                                                 &hp.cb);
        if (e != LIBUSB_SUCCESS) {
                log_err("USB: cannot follow hotplug: %s", libusb_strerror(e));
                usb_bus_stop();
                return;
        }
        hp.cb_registered = true;
        e = pthread_create(&hp.thread, NULL, hotplug_thread, NULL);
        if (e) {
                log_err("USB: cannot start the hotplug thread: %s", strerror(e));
                usb_bus_stop();
                return;
        }
        hp.thread_started = true;
}

void usb_bus_stop(void)
{
        if (hp.thread_started) {
                atomic_store(&hp.stop, true);
                libusb_interrupt_event_handler(hp.ctx);
                pthread_join(hp.thread, NULL);
                hp.thread_started = false;
        }
        if (hp.cb_registered)
                libusb_hotplug_deregister_callback(hp.ctx, hp.cb);
        hp.cb_registered = false;
        drain_events(false);
        if (hp.ctx)
                libusb_exit(hp.ctx);
        hp.ctx = NULL;
        if (hp.bus)
                entry_unref(hp.bus);
        hp.bus = NULL;
}
