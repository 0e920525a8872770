/* SPDX-License-Identifier: MIT */
/* The whole stack on an emulated USB bus: this process is the emulated
 * kernel (mock-usb.c, the simulator behind it) and starts the real tetherd
 * as a child, which inherits the emulation (LD_PRELOAD, $UMOCKDEV_DIR) and
 * whose usbfs ioctls this process answers. tetherd finds the scope, the
 * DSOX2000 driver claims it through libusb, and libtether captures.
 * Hotplug: the scope is plugged in and pulled out while tetherd runs. The
 * generic USBTMC driver takes the scope over when DSOX2000 is unloaded.
 * tetherd runs with --in-process (the harness's with_usb): the emulated
 * device answers only the process that opened it, so the driver that uses
 * it must be in tetherd, not in a driver host.
 * Run as: umockdev-wrapper test-usb-stack (with $TETHERD set). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tether/usbtmc-instrument.h>

#include "dsox2000/dsox2000.h"
#include "harness.h"
#include "mock-usb.h"

typedef struct fixture {
        mock_usb *mock;
        harness h;
        bool driver_given_back; /* expect the kernel driver re-bound after tetherd exits */
} fixture;

static int start(void **state, bool plugged)
{
        fixture *f = calloc(1, sizeof(*f));
        if (!f || mock_usb_new(&f->mock))
                return -1;
        if (plugged && mock_usb_plug(f->mock, true))
                return -1;
        f->h.with_usb = true;
        if (harness_start(&f->h))
                return -1;
        *state = f;
        return 0;
}

static int start_plugged(void **state)
{
        return start(state, true);
}

static int start_empty(void **state)
{
        return start(state, false);
}

/* The daemon's exit status is part of every test: 0 means a clean
 * shutdown, and under ASan no leak. */
static int stop(void **state)
{
        fixture *f = *state;
        int status = harness_stop(&f->h);
        if (f->driver_given_back && !mock_usb_kernel_driver_bound(f->mock)) {
                fprintf(stderr, "tetherd exited without giving the interface back to the kernel driver\n");
                status = -1;
        }
        mock_usb_free(f->mock);
        free(f);
        if (status != 0)
                fprintf(stderr, "tetherd exited with %d\n", status);
        return status == 0 ? 0 : -1;
}

static size_t count_class(tether_session *s, const char *class_name)
{
        tether_value *m = NULL;
        uint64_t *ids = NULL;
        size_t n = 0;
        assert_int_equal(tether_service_matching(class_name, &m), TETHER_SUCCESS);
        assert_int_equal(tether_get_matching_services(s, m, &ids, &n), TETHER_SUCCESS);
        free(ids);
        tether_value_unref(m);
        return n;
}

static bool scope_count_is(tether_session *s, size_t want)
{
        for (int i = 0; i < 1000; i++) {
                if (count_class(s, DSO_CLASS) == want)
                        return true;
                usleep(10000);
        }
        return false;
}

static const char *prop_string(tether_session *s, uint64_t id, const char *key, char *buf, size_t cap)
{
        tether_value *v = NULL;
        const char *str = "";
        assert_int_equal(tether_registry_entry_get_property(s, id, key, &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_string(v, &str), TETHER_SUCCESS);
        snprintf(buf, cap, "%s", str);
        tether_value_unref(v);
        return buf;
}

/* The full record as volts through tetherd: the probe-compensation square
 * wave, 0 to 2.5 V, as the simulator makes it. */
static void capture(tether_connect *c)
{
        uint64_t mask = 1;
        assert_int_equal(tether_call_scalar_method(c, DSO_DIGITIZE, &mask, 1, NULL, NULL), TETHER_SUCCESS);
        uint64_t in[2] = { 1, DSO_MAX_POINTS };
        float *v = malloc(DSO_MAX_POINTS * sizeof(float));
        assert_non_null(v);
        size_t size = DSO_MAX_POINTS * sizeof(float);
        assert_int_equal(tether_call_method(c, DSO_GET_VOLTS, in, 2, NULL, 0, NULL, NULL, v, &size), TETHER_SUCCESS);
        assert_int_equal(size, DSO_MAX_POINTS * sizeof(float));
        float lo = 99, hi = -99;
        size_t high = 0;
        for (size_t i = 0; i < DSO_MAX_POINTS; i++) {
                lo = v[i] < lo ? v[i] : lo;
                hi = v[i] > hi ? v[i] : hi;
                high += v[i] > 1.25f;
        }
        assert_true(lo > -0.1f && lo < 0.1f);
        assert_true(hi > 2.4f && hi < 2.6f);
        assert_true(high > DSO_MAX_POINTS / 3 && high < DSO_MAX_POINTS * 2 / 3); /* 50 % duty */
        free(v);
}

/* Found at start-up, claimed from the kernel driver, captured from. */
static void capture_through_tetherd(void **state)
{
        fixture *f = *state;
        tether_session *s = harness_session(&f->h);
        assert_true(scope_count_is(s, 1));
        /* The start-up scan and hotplug's enumeration saw the same device:
         * one nub. */
        assert_int_equal(count_class(s, "TetherUSBDevice"), 1);
        uint64_t id = harness_find(s, DSO_CLASS);
        char buf[64];
        assert_string_equal(prop_string(s, id, DSO_PROP_MODEL, buf, sizeof(buf)), "DSO-X 2002A");
        assert_string_equal(prop_string(s, id, DSO_PROP_SERIAL, buf, sizeof(buf)), "MY57235663");
        assert_false(mock_usb_kernel_driver_bound(f->mock)); /* the driver has the interface */

        tether_connect *c = NULL;
        assert_int_equal(tether_service_open(s, id, 0, 0, &c), TETHER_SUCCESS);
        tether_probe_filter pf = { .kinds = TETHER_PROBE_USB, .snaplen = 64, .service_id = id,
                                   .selector = TETHER_PROBE_ANY_SELECTOR };
        tether_probe *probe = NULL;
        assert_int_equal(tether_probe_attach(s, &pf, &probe), TETHER_SUCCESS);
        mock_usb_stats before, after;
        mock_usb_stats_get(f->mock, &before);
        capture(c);
        mock_usb_stats_get(f->mock, &after);
        /* tether probe sees the libusb path's transfers where the device
         * is: bus 1, device 2 (the emulated scope's sysfs), and the bytes
         * as they crossed usbfs. */
        tether_probe_event ev;
        unsigned n_events = 0, bulk_in_block = 0;
        while (tether_probe_read(probe, &ev) == TETHER_SUCCESS) {
                n_events++;
                assert_int_equal(ev.bus, 1);
                assert_int_equal(ev.address, 2);
                assert_int_equal(ev.result, TETHER_SUCCESS);
                bulk_in_block += ev.endpoint == 0x81 && ev.actual >= DSO_MAX_POINTS;
        }
        assert_true(n_events >= after.bulk_out - before.bulk_out);
        assert_int_equal(bulk_in_block, 1);
        tether_probe_detach(probe);
        /* It went over the emulated bus: requests out, the block in. */
        assert_true(after.bulk_out > before.bulk_out);
        assert_true(after.bulk_in > before.bulk_in);
        assert_true(after.bulk_in_bytes_max >= DSO_MAX_POINTS);
        assert_int_equal(after.unknown, 0);
        tether_service_close(c);
        tether_session_close(s);

        /* And from the command line, as a user would. */
        const char *cli = getenv("TETHER_CLI");
        assert_non_null(cli);
        char cmd[512], csv[160];
        snprintf(csv, sizeof(csv), "%s/wave.csv", f->h.dir);
        snprintf(cmd, sizeof(cmd), "TETHER_SOCKET=%s %s scope capture --channel 1 --csv %s >/dev/null", f->h.sock, cli,
                 csv);
        assert_int_equal(system(cmd), 0);
        FILE *fp = fopen(csv, "r");
        assert_non_null(fp);
        size_t lines = 0;
        int ch;
        while ((ch = fgetc(fp)) != EOF)
                lines += ch == '\n';
        fclose(fp);
        unlink(csv);
        assert_int_equal(lines, 1 + DSO_MAX_POINTS); /* a header, then every point */
        f->driver_given_back = true;
}

/* The generic USBTMC driver on the same emulated scope, through libusb on
 * the fd tetherd opened: DSOX2000 unloaded, it takes the nub over, and its
 * query, status byte (interrupt-IN through usbfs) and clear work. */
static void generic_driver_through_usbfs(void **state)
{
        fixture *f = *state;
        tether_session *s = harness_session(&f->h);
        assert_true(scope_count_is(s, 1));
        assert_int_equal(count_class(s, TMC_CLASS), 0); /* DSOX2000 won it */
        assert_int_equal(tether_driver_unload(s, "org.tether.dsox2000"), TETHER_SUCCESS);
        for (int i = 0; i < 1000 && count_class(s, TMC_CLASS) != 1; i++)
                usleep(10000);
        assert_int_equal(count_class(s, TMC_CLASS), 1);
        tether_value *m = NULL;
        uint64_t id = 0;
        assert_int_equal(tether_service_matching(TMC_CLASS, &m), TETHER_SUCCESS);
        assert_int_equal(tether_get_matching_service(s, m, &id), TETHER_SUCCESS);
        tether_value_unref(m);
        char buf[256];
        assert_true(!strncmp(prop_string(s, id, TMC_PROP_VISA_RESOURCE, buf, sizeof(buf)), "USB0::0x0957::0x1799::", 22));
        tether_connect *c = NULL;
        assert_int_equal(tether_service_open(s, id, 0, 0, &c), TETHER_SUCCESS);
        uint64_t end = 0, stb = 0;
        uint32_t one = 1;
        size_t n = sizeof(buf);
        assert_int_equal(tether_call_method(c, TMC_QUERY, NULL, 0, "*IDN?", 5, &end, &one, buf, &n), TETHER_SUCCESS);
        assert_int_equal(end, TMC_END_EOM);
        assert_true(n > 32 && !memcmp(buf, "AGILENT TECHNOLOGIES,DSO-X 2002A,", 33));
        uint64_t flags = 0;
        assert_int_equal(tether_call_method(c, TMC_WRITE, &flags, 1, "*IDN?", 5, NULL, NULL, NULL, NULL), TETHER_SUCCESS);
        one = 1;
        assert_int_equal(tether_call_method(c, TMC_READ_STB, NULL, 0, NULL, 0, &stb, &one, NULL, NULL), TETHER_SUCCESS);
        assert_int_equal(stb & 0x10, 0x10); /* MAV: an answer waits */
        assert_int_equal(tether_call_method(c, TMC_CLEAR, NULL, 0, NULL, 0, NULL, NULL, NULL, NULL), TETHER_SUCCESS);
        one = 1;
        assert_int_equal(tether_call_method(c, TMC_READ_STB, NULL, 0, NULL, 0, &stb, &one, NULL, NULL), TETHER_SUCCESS);
        assert_int_equal(stb & 0x10, 0);
        tether_service_close(c);
        tether_session_close(s);
        f->driver_given_back = true;
}

static bool usb_nubs_are(tether_session *s, size_t want)
{
        for (int i = 0; i < 1000; i++) {
                if (count_class(s, "TetherUSBDevice") == want)
                        return true;
                usleep(10000);
        }
        return false;
}

typedef struct seen {
        unsigned published, terminated;
        uint64_t last;
} seen;

static void on_scope(void *refcon, uint32_t type, uint64_t id)
{
        seen *sn = refcon;
        if (type == TETHER_NOTIFY_TERMINATED)
                sn->terminated++;
        else
                sn->published++;
        sn->last = id;
}

/* Dispatch notifications until *count reaches want (10 s at most). */
static bool pump_until(tether_notification_port *port, const unsigned *count, unsigned want)
{
        struct pollfd pfd = { .fd = tether_notification_port_get_fd(port), .events = POLLIN };
        for (int i = 0; i < 100 && *count < want; i++)
                if (poll(&pfd, 1, 100) > 0)
                        assert_int_equal(tether_notification_port_dispatch(port), TETHER_SUCCESS);
        return *count == want;
}

/* Plugged in while tetherd runs: a nub, the driver on it, a capture.
 * Pulled out: the nub and the driver go, an open connection gets
 * NotAttached, and tetherd goes on. Plugged in again: all back, once. */
static void hotplug(void **state)
{
        fixture *f = *state;
        tether_session *s = harness_session(&f->h);
        assert_int_equal(count_class(s, "TetherUSBDevice"), 0);
        assert_int_equal(count_class(s, DSO_CLASS), 0);
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(s, &port), TETHER_SUCCESS);
        seen sn = { 0 };
        tether_value *m = NULL;
        tether_notification *n_pub = NULL, *n_term = NULL;
        assert_int_equal(tether_service_matching(DSO_CLASS, &m), TETHER_SUCCESS);
        assert_int_equal(tether_service_add_matching_notification(port, TETHER_NOTIFY_PUBLISHED, m, on_scope, &sn, &n_pub),
                         TETHER_SUCCESS);
        assert_int_equal(tether_service_add_matching_notification(port, TETHER_NOTIFY_TERMINATED, m, on_scope, &sn,
                                                                  &n_term),
                         TETHER_SUCCESS);
        tether_value_unref(m);

        /* Not an instrument: no nub. Its arrival comes before the scope's
         * and tetherd handles arrivals in order, so once the scope's nub
         * is there, a nub for the keyboard would be too (2, not 1). */
        assert_int_equal(mock_usb_plug_other(f->mock, MOCK_USB_KEYBOARD_FILE), 0);

        for (unsigned round = 0; round < 2; round++) {
                struct timespec t0, t1;
                clock_gettime(CLOCK_MONOTONIC, &t0);
                assert_int_equal(mock_usb_plug(f->mock, true), 0);
                assert_true(pump_until(port, &sn.published, round + 1));
                clock_gettime(CLOCK_MONOTONIC, &t1);
                printf("plug to DSOX2000 published: %.1f ms\n",
                       (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
                assert_true(usb_nubs_are(s, 1));
                assert_true(scope_count_is(s, 1));
                uint64_t id = harness_find(s, DSO_CLASS);
                assert_int_equal(sn.last, id);
                char buf[64];
                assert_string_equal(prop_string(s, id, DSO_PROP_SERIAL, buf, sizeof(buf)), "MY57235663");
                tether_connect *c = NULL;
                assert_int_equal(tether_service_open(s, id, 0, 0, &c), TETHER_SUCCESS);
                capture(c);

                clock_gettime(CLOCK_MONOTONIC, &t0);
                mock_usb_unplug(f->mock);
                assert_true(pump_until(port, &sn.terminated, round + 1));
                clock_gettime(CLOCK_MONOTONIC, &t1);
                printf("unplug to DSOX2000 terminated: %.1f ms\n",
                       (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
                assert_int_equal(sn.last, id);
                assert_true(usb_nubs_are(s, 0));
                assert_true(scope_count_is(s, 0));
                assert_int_equal(tether_call_scalar_method(c, DSO_STOP, NULL, 0, NULL, NULL), TETHER_ERR_NOT_ATTACHED);
                tether_service_close(c);
        }
        /* Still serving. */
        assert_int_equal(count_class(s, "TetherResources"), 1);
        assert_int_equal(sn.published, 2);
        assert_int_equal(sn.terminated, 2);
        tether_notification_remove(n_pub);
        tether_notification_remove(n_term);
        tether_notification_port_destroy(port);
        tether_session_close(s);
}

/* --no-usb: neither the scan nor hotplug; the device is never opened. */
static int start_no_usb(void **state)
{
        fixture *f = calloc(1, sizeof(*f));
        if (!f || mock_usb_new(&f->mock) || mock_usb_plug(f->mock, true) || harness_start(&f->h))
                return -1;
        *state = f;
        return 0;
}

static void no_usb_ignores_the_bus(void **state)
{
        fixture *f = *state;
        tether_session *s = harness_session(&f->h);
        mock_usb_unplug(f->mock);
        assert_int_equal(mock_usb_plug(f->mock, true), 0);
        usleep(300 * 1000); /* time enough for a hotplug event to be acted on */
        assert_int_equal(count_class(s, "TetherUSBDevice"), 0);
        mock_usb_stats st;
        mock_usb_stats_get(f->mock, &st);
        assert_int_equal(st.clients, 0);
        tether_session_close(s);
}

int main(void)
{
        if (!getenv("TETHERD")) {
                fprintf(stderr, "set TETHERD to the tetherd binary\n");
                return 1;
        }
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(capture_through_tetherd, start_plugged, stop),
                cmocka_unit_test_setup_teardown(hotplug, start_empty, stop),
                cmocka_unit_test_setup_teardown(no_usb_ignores_the_bus, start_no_usb, stop),
                cmocka_unit_test_setup_teardown(generic_driver_through_usbfs, start_plugged, stop),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
