/* SPDX-License-Identifier: MIT */
/* The simulators' shared IEEE 488.2 response messages
 * (sim/scpi-dev/response.h): units joined with ';', the newline after the
 * last, nothing for a message without queries, a unit's text cut at its
 * bound, a queue that is full cutting what does not fit. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "response.h"

static void units_joined_and_ended(void **state)
{
        bytes out = { 0 };
        scpi_response r;
        scpi_response_init(&r, &out, 1000);
        scpi_response_begin(&r);
        assert_false(scpi_response_end(&r));
        assert_int_equal(out.len, 0);
        scpi_response_begin(&r);
        scpi_response_printf(&r, "%+d", 5);
        scpi_response_unit(&r);
        scpi_response_append(&r, "#13abc", 6);
        scpi_response_printf(&r, "%s", "NORM");
        assert_true(scpi_response_end(&r));
        assert_int_equal(out.len, 15);
        assert_memory_equal(out.p, "+5;#13abc;NORM\n", 15);
        /* The next message starts its own units: no ';' before its first. */
        scpi_response_begin(&r);
        scpi_response_printf(&r, "1");
        assert_true(scpi_response_end(&r));
        assert_memory_equal(out.p + 15, "1\n", 2);
        free(out.p);
}

static void a_unit_is_cut_at_its_bound(void **state)
{
        bytes out = { 0 };
        scpi_response r;
        char *big = malloc(2000);
        memset(big, 'x', 1999);
        big[1999] = '\0';
        scpi_response_init(&r, &out, 1u << 20);
        scpi_response_begin(&r);
        scpi_response_printf(&r, "%s", big);
        assert_int_equal(out.len, SCPI_RESPONSE_UNIT_MAX);
        free(big);
        free(out.p);
}

static void a_full_queue_cuts(void **state)
{
        bytes out = { 0 };
        scpi_response r;
        scpi_response_init(&r, &out, 8);
        scpi_response_begin(&r);
        scpi_response_printf(&r, "1234567");
        scpi_response_printf(&r, "89"); /* ';' fits, "89" does not */
        assert_true(scpi_response_end(&r));
        assert_int_equal(out.len, 8);
        assert_memory_equal(out.p, "1234567;", 8);
        /* Bounds near SIZE_MAX do not wrap. */
        scpi_response_init(&r, &out, SIZE_MAX);
        scpi_response_append(&r, "x", 1);
        assert_int_equal(out.len, 9);
        free(out.p);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(units_joined_and_ended),
                cmocka_unit_test(a_unit_is_cut_at_its_bound),
                cmocka_unit_test(a_full_queue_cuts),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
