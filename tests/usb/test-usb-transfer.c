/* SPDX-License-Identifier: MIT */
/* tether's USBTMC host code over the real libusb backend, against an
 * emulated DSO-X 2002A: umockdev plays usbfs in this process (mock-usb.c)
 * and the simulator answers the transfers. Every byte goes through
 * libusb's Linux backend: URBs submitted, reaped, discarded on timeouts,
 * control transfers, CLEAR_HALT, and the kernel driver taken and given
 * back. Run as: umockdev-wrapper test-usb-transfer */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock-usb.h"
#include "scope-check.h"
#include "scope.h"
#include "usbtmc/backend-libusb.h"

typedef struct fixture {
        mock_usb *mock;
        libusb_context *ctx;
        usbtmc_usb *dev;
        usbtmc t;
} fixture;

static int setup(void **state)
{
        fixture *f = calloc(1, sizeof(*f));
        if (!f || mock_usb_new(&f->mock) || mock_usb_plug(f->mock, true))
                return -1;
        /* After the testbed exists: libusb must see its sysfs, not the host's. */
        if (libusb_init(&f->ctx))
                return -1;
        usbtmc_usb_device d[4];
        size_t n = 0;
        if (usbtmc_usb_scan(f->ctx, d, 4, &n) != TETHER_SUCCESS || n != 1)
                return -1;
        if (usbtmc_usb_open(f->ctx, &d[0], &f->dev) != TETHER_SUCCESS)
                return -1;
        usbtmc_usb_attach(&f->t, f->dev);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        fixture *f = *state;
        usbtmc_usb_close(f->dev);
        libusb_exit(f->ctx);
        mock_usb_free(f->mock);
        free(f);
        return 0;
}

/* The scan reads the serial through a real string-descriptor request, and
 * the claim takes the interface from the kernel's usbtmc driver. */
static void scan_open_and_identify(void **state)
{
        fixture *f = *state;
        mock_usb_stats st;
        mock_usb_stats_get(f->mock, &st);
        assert_int_equal(st.driver_detached, 1);
        assert_false(mock_usb_kernel_driver_bound(f->mock));
        assert_true(st.claims >= 1);

        usbtmc_usb_device d[2];
        size_t n = 0;
        assert_int_equal(usbtmc_usb_scan(f->ctx, d, 2, &n), TETHER_SUCCESS);
        assert_int_equal(n, 1);
        assert_string_equal(d[0].serial, "MY57235663");

        usbtmc_caps caps;
        assert_int_equal(usbtmc_get_capabilities(&f->t, &caps), TETHER_SUCCESS);
        assert_int_equal(caps.bcd_usbtmc, 0x0100);
        assert_true(caps.usb488_interface_caps & USB488_CAP_IS_488_2);
        scope_check_idn(&f->t);

        mock_usb_stats_get(f->mock, &st);
        assert_true(st.bulk_out >= 2 && st.bulk_in >= 1 && st.reaped >= 3);
        assert_int_equal(st.unknown, 0);
}

/* Closing gives the interface back to the kernel driver. */
static void release_reattaches_kernel_driver(void **state)
{
        fixture *f = *state;
        usbtmc_usb_close(f->dev);
        f->dev = NULL;
        mock_usb_stats st;
        mock_usb_stats_get(f->mock, &st);
        assert_int_equal(st.releases, 1);
        assert_int_equal(st.driver_attached, 1);
        assert_true(mock_usb_kernel_driver_bound(f->mock));
        /* And libusb sees it bound again (GETDRIVER). */
        libusb_device_handle *h = libusb_open_device_with_vid_pid(f->ctx, 0x0957, 0x1799);
        assert_non_null(h);
        assert_int_equal(libusb_kernel_driver_active(h, 0), 1);
        libusb_close(h);
}

static void read_waveform(fixture *f, uint8_t *buf, size_t cap, size_t *n)
{
        scope_check_idn(&f->t);
        assert_int_equal(usbtmc_write(&f->t, scope_wave_cmds, strlen(scope_wave_cmds)), TETHER_SUCCESS);
        assert_int_equal(usbtmc_read(&f->t, buf, cap, n), TETHER_SUCCESS);
}

/* 62,500 points in rounds of 4 KiB (the Linux usbtmc driver's buffer),
 * each a bulk-OUT request and a bulk-IN transfer. */
static void waveform_in_many_transfers(void **state)
{
        fixture *f = *state;
        enum { CAP = 70000 };
        uint8_t *got = malloc(CAP), *want = malloc(CAP);
        assert_non_null(got);
        assert_non_null(want);
        f->t.max_transfer = 4096;
        mock_usb_stats before, after;
        mock_usb_stats_get(f->mock, &before);
        size_t n = 0;
        read_waveform(f, got, CAP, &n);
        mock_usb_stats_get(f->mock, &after);
        /* An IEEE 488.2 block: #, digit count, length, the bytes, newline. */
        assert_int_equal(n, 7 + 62500 + 1);
        assert_memory_equal(got, "#562500", 7);
        assert_int_equal(got[n - 1], '\n');
        assert_true(after.bulk_in - before.bulk_in >= 62508 / 4096 + 1);
        assert_true(after.bulk_in_bytes_max <= 12 + 4096);
        assert_int_equal(scope_reference_waveform(scope_wave_cmds, want, CAP), n);
        assert_memory_equal(got, want, n);
        free(got);
        free(want);
}

/* A device quirk: 64-byte pieces. The host keeps reading until the
 * transfer's announced size is in, across about a thousand bulk-INs. */
static void waveform_in_short_packets(void **state)
{
        fixture *f = *state;
        enum { CAP = 70000 };
        uint8_t *got = malloc(CAP), *want = malloc(CAP);
        assert_non_null(got);
        assert_non_null(want);
        mock_usb_inject(f->mock, SIM_FAULT_SHORT_PACKETS);
        mock_usb_stats before, after;
        mock_usb_stats_get(f->mock, &before);
        size_t n = 0;
        read_waveform(f, got, CAP, &n);
        mock_usb_stats_get(f->mock, &after);
        assert_int_equal(n, 62508);
        assert_true(after.bulk_in - before.bulk_in >= 62508 / 64);
        assert_int_equal(scope_reference_waveform(scope_wave_cmds, want, CAP), n);
        assert_memory_equal(got, want, n);
        free(got);
        free(want);
}

/* READ_STATUS_BYTE over the control pipe: MAV while an answer waits. */
static void status_byte(void **state)
{
        fixture *f = *state;
        uint8_t stb = 0xff;
        assert_int_equal(usbtmc_read_status_byte(&f->t, &stb), TETHER_SUCCESS);
        assert_int_equal(stb & 0x10, 0);
        assert_int_equal(usbtmc_write(&f->t, "*IDN?\n", 6), TETHER_SUCCESS);
        assert_int_equal(usbtmc_read_status_byte(&f->t, &stb), TETHER_SUCCESS);
        assert_int_equal(stb & 0x10, 0x10); /* message available */
        char buf[128];
        size_t n = 0;
        assert_int_equal(usbtmc_read(&f->t, buf, sizeof(buf), &n), TETHER_SUCCESS);
        assert_int_equal(usbtmc_read_status_byte(&f->t, &stb), TETHER_SUCCESS);
        assert_int_equal(stb & 0x10, 0);
        /* The DSO-X 2002A has an interrupt endpoint: each status byte came
         * as a notification there, not in the control reply. */
        mock_usb_stats st;
        mock_usb_stats_get(f->mock, &st);
        assert_int_equal(f->t.ep_interrupt, 0x83);
        assert_true(st.interrupt >= 3);
}

/* A stalled bulk-IN: the read fails, the host clears the halt (a real
 * CLEAR_HALT ioctl), aborts and clears the device, and the next query works. */
static void stall_recovered(void **state)
{
        fixture *f = *state;
        mock_usb_inject(f->mock, SIM_FAULT_STALL);
        assert_int_equal(usbtmc_write(&f->t, "*IDN?\n", 6), TETHER_SUCCESS);
        char buf[128];
        size_t n = 0;
        assert_int_equal(usbtmc_read(&f->t, buf, sizeof(buf), &n), TETHER_ERR_IO);
        mock_usb_stats st;
        mock_usb_stats_get(f->mock, &st);
        assert_true(st.clear_halts >= 1);
        scope_check_idn(&f->t);
}

/* A late answer: libusb's timeout fires, the URB is discarded, and the
 * abort/clear sequence flushes the answer, so the next query does not get
 * the stale one. */
static void late_answer_recovered(void **state)
{
        fixture *f = *state;
        f->t.timeout_ms = 300;
        mock_usb_inject(f->mock, SIM_FAULT_DELAY);
        assert_int_equal(usbtmc_write(&f->t, ":TIM:SCAL?\n", 11), TETHER_SUCCESS);
        char buf[128];
        size_t n = 0;
        assert_int_equal(usbtmc_read(&f->t, buf, sizeof(buf), &n), TETHER_ERR_TIMEOUT);
        mock_usb_stats st;
        mock_usb_stats_get(f->mock, &st);
        assert_true(st.discarded >= 1);
        scope_check_idn(&f->t);
}

static void wrong_btag_recovered(void **state)
{
        fixture *f = *state;
        mock_usb_inject(f->mock, SIM_FAULT_WRONG_BTAG);
        assert_int_equal(usbtmc_write(&f->t, ":TIM:SCAL?\n", 11), TETHER_SUCCESS);
        char buf[128];
        size_t n = 0;
        assert_int_equal(usbtmc_read(&f->t, buf, sizeof(buf), &n), TETHER_ERR_IO);
        scope_check_idn(&f->t);
}

/* Unplugged: transfers fail NO_DEVICE, not a hang or a crash. */
static void unplugged(void **state)
{
        fixture *f = *state;
        scope_check_idn(&f->t);
        mock_usb_unplug(f->mock);
        assert_int_equal(usbtmc_write(&f->t, "*IDN?\n", 6), TETHER_ERR_NO_DEVICE);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(scan_open_and_identify, setup, teardown),
                cmocka_unit_test_setup_teardown(release_reattaches_kernel_driver, setup, teardown),
                cmocka_unit_test_setup_teardown(waveform_in_many_transfers, setup, teardown),
                cmocka_unit_test_setup_teardown(waveform_in_short_packets, setup, teardown),
                cmocka_unit_test_setup_teardown(status_byte, setup, teardown),
                cmocka_unit_test_setup_teardown(stall_recovered, setup, teardown),
                cmocka_unit_test_setup_teardown(late_answer_recovered, setup, teardown),
                cmocka_unit_test_setup_teardown(wrong_btag_recovered, setup, teardown),
                cmocka_unit_test_setup_teardown(unplugged, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
