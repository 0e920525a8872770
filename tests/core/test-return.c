/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include <tether/return.h>

static void ioreturn_values_match_iokit(void **state)
{
        assert_int_equal(tether_ret_to_ioreturn(TETHER_SUCCESS), 0);
        assert_int_equal(tether_ret_to_ioreturn(TETHER_ERR_BAD_ARGUMENT), 0xE00002C2u);
        assert_int_equal(tether_ret_to_ioreturn(TETHER_ERR_UNSUPPORTED), 0xE00002C7u);
        assert_int_equal(tether_ret_to_ioreturn(TETHER_ERR_EXCLUSIVE_ACCESS), 0xE00002C5u);
        assert_int_equal(tether_ret_to_ioreturn(TETHER_ERR_NOT_FOUND), 0xE00002F0u);
        assert_int_equal(tether_ret_to_ioreturn(TETHER_ERR_INVALID), 0xE0000001u);
}

static void names_and_texts(void **state)
{
        assert_string_equal(tether_ret_name(TETHER_ERR_NOT_PRIVILEGED), "NotPrivileged");
        assert_string_equal(tether_ret_name(TETHER_SUCCESS), "Success");
        assert_string_equal(tether_strerror(TETHER_ERR_BUSY), "device busy");
        /* Unknown codes still give text, never NULL. */
        assert_string_equal(tether_ret_name(-0x3fff), "Unknown");
        assert_string_equal(tether_strerror(12345), "unknown error");
}

static void every_error_is_negative_and_distinct(void **state)
{
        const tether_ret_t all[] = {
                TETHER_ERR_INVALID, TETHER_ERR_ERROR, TETHER_ERR_NO_MEMORY, TETHER_ERR_BAD_ARGUMENT,
                TETHER_ERR_UNSUPPORTED, TETHER_ERR_NOT_ATTACHED, TETHER_ERR_TIMEOUT, TETHER_ERR_NOT_FOUND,
        };
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
                assert_true(all[i] < 0);
                assert_string_not_equal(tether_ret_name(all[i]), "Unknown");
                for (size_t j = i + 1; j < sizeof(all) / sizeof(all[0]); j++)
                        assert_int_not_equal(all[i], all[j]);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(ioreturn_values_match_iokit),
                cmocka_unit_test(names_and_texts),
                cmocka_unit_test(every_error_is_negative_and_distinct),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
