/* SPDX-License-Identifier: MIT */
/* The libusb backend's scan, against devices emulated by umockdev: a
 * DSO-X 2002A (USBTMC/USB488) is found with its endpoints; a keyboard is
 * not. Run as: umockdev-run --device dsox2002a.umockdev --device
 * keyboard.umockdev -- test-usb-scan */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "usbtmc/backend-libusb.h"

static void finds_the_scope_and_only_it(void **state)
{
        libusb_context *ctx = NULL;
        assert_int_equal(libusb_init(&ctx), 0);
        usbtmc_usb_device d[4];
        size_t n = 0;
        assert_int_equal(usbtmc_usb_scan(ctx, d, 4, &n), TETHER_SUCCESS);
        assert_int_equal(n, 1); /* the keyboard is not an instrument */
        assert_int_equal(d[0].vendor, 0x0957);
        assert_int_equal(d[0].product, 0x1799);
        assert_int_equal(d[0].bus, 1);
        assert_int_equal(d[0].address, 2);
        assert_int_equal(d[0].interface, 0);
        assert_int_equal(d[0].protocol, 1); /* USB488 */
        assert_int_equal(d[0].ep_out, 0x02);
        assert_int_equal(d[0].ep_in, 0x81);
        assert_int_equal(d[0].ep_interrupt, 0x83);
        assert_int_equal(d[0].max_packet_in, 512);
        libusb_exit(ctx);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(finds_the_scope_and_only_it),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
