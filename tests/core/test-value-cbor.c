/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tether/value.h>

static tether_value *round_trip(const tether_value *v)
{
        uint8_t *buf = NULL;
        size_t len = 0;
        tether_value *back = NULL;
        assert_int_equal(tether_value_encode(v, &buf, &len), TETHER_SUCCESS);
        assert_int_equal(tether_value_decode(buf, len, &back), TETHER_SUCCESS);
        free(buf);
        assert_true(tether_value_equal(v, back));
        return back;
}

static void every_type_and_width_round_trips(void **state)
{
        tether_value *d = NULL, *a = NULL, *v = NULL;
        tether_value_new_dict(&d);
        unsigned widths[] = { 8, 16, 32, 64 };
        for (int i = 0; i < 4; i++) {
                char key[16];
                snprintf(key, sizeof(key), "i%u", widths[i]);
                tether_value_dict_set_int(d, key, widths[i] == 64 ? INT64_MIN : -(1ll << (widths[i] - 1)), widths[i]);
                snprintf(key, sizeof(key), "u%u", widths[i]);
                tether_value_dict_set_uint(d, key, widths[i] == 64 ? UINT64_MAX : (1ull << widths[i]) - 1, widths[i]);
        }
        tether_value_dict_set_int(d, "small-positive-int", 5, 64);
        tether_value_dict_set_double(d, "pi", 3.14159);
        tether_value_dict_set_double(d, "nan", NAN);
        tether_value_dict_set_bool(d, "yes", true);
        tether_value_dict_set_string(d, "s", "h\xc3\xa9");
        tether_value_dict_set_string(d, "empty", "");
        tether_value_dict_set_data(d, "data", "\x00\xff\x00", 3);
        tether_value_new_array(&a);
        tether_value_new_dict(&v);
        tether_value_array_append(a, v);
        tether_value_unref(v);
        tether_value_dict_set(d, "arr", a);
        tether_value_unref(a);
        tether_value *back = round_trip(d);
        tether_value *x = NULL;
        assert_int_equal(tether_value_dict_get(back, "small-positive-int", &x), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_type(x), TETHER_TYPE_INT); /* not turned into a uint */
        assert_int_equal(tether_value_dict_get(back, "u16", &x), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_bits(x), 16);
        tether_value_unref(back);
        tether_value_unref(d);
}

static void known_answers(void **state)
{
        struct {
                tether_value *v;
                const char *bytes;
                size_t len;
        } cases[4];
        tether_value_new_uint(5, 8, &cases[0].v);
        cases[0].bytes = "\xd9\xd9\xfc\x05"; /* tag 55804, uint 5 */
        cases[0].len = 4;
        tether_value_new_int(-2, 32, &cases[1].v);
        cases[1].bytes = "\xd9\xd9\xfa\x21"; /* tag 55802, negint 1 */
        cases[1].len = 4;
        tether_value_new_bool(true, &cases[2].v);
        cases[2].bytes = "\xf5";
        cases[2].len = 1;
        tether_value_new_dict(&cases[3].v);
        tether_value_dict_set_string(cases[3].v, "b", "x");
        tether_value_dict_set_bool(cases[3].v, "a", false);
        cases[3].bytes = "\xa2\x61" "a" "\xf4\x61" "b" "\x61" "x"; /* keys sorted */
        cases[3].len = 8;
        for (int i = 0; i < 4; i++) {
                uint8_t *buf = NULL;
                size_t len = 0;
                assert_int_equal(tether_value_encode(cases[i].v, &buf, &len), TETHER_SUCCESS);
                assert_int_equal(len, cases[i].len);
                assert_memory_equal(buf, cases[i].bytes, len);
                free(buf);
                tether_value_unref(cases[i].v);
        }
}

static tether_ret_t decode(const char *bytes, size_t len, tether_value **ret)
{
        *ret = NULL;
        return tether_value_decode(bytes, len, ret);
}

static void plain_cbor_from_other_languages(void **state)
{
        tether_value *v = NULL;
        uint64_t u;
        int64_t i;
        double d;
        assert_int_equal(decode("\x18\x64", 2, &v), TETHER_SUCCESS); /* 100 */
        assert_int_equal(tether_value_get_type(v), TETHER_TYPE_UINT);
        assert_int_equal(tether_value_get_bits(v), 64);
        tether_value_get_uint(v, &u);
        assert_int_equal(u, 100);
        tether_value_unref(v);
        assert_int_equal(decode("\x38\x63", 2, &v), TETHER_SUCCESS); /* -100 */
        assert_int_equal(tether_value_get_type(v), TETHER_TYPE_INT);
        tether_value_get_int(v, &i);
        assert_int_equal(i, -100);
        tether_value_unref(v);
        assert_int_equal(decode("\xf9\x3e\x00", 3, &v), TETHER_SUCCESS); /* half float 1.5 */
        tether_value_get_double(v, &d);
        assert_true(d == 1.5);
        tether_value_unref(v);
        assert_int_equal(decode("\xfa\x3f\xc0\x00\x00", 5, &v), TETHER_SUCCESS); /* single 1.5 */
        tether_value_unref(v);
}

static void rejects_malformed(void **state)
{
        tether_value *v = NULL;
        struct {
                const char *b;
                size_t n;
        } bad[] = {
                { "\x1a\x00\x00", 3 },                 /* truncated uint32 */
                { "\x63" "ab", 3 },                     /* text shorter than declared */
                { "\x01\x02", 2 },                      /* trailing byte */
                { "\xa1\x01\x02", 3 },                  /* non-text key */
                { "\xa2\x61" "a" "\x01\x61" "a" "\x02", 8 }, /* duplicate key */
                { "\x62\xc3\x28", 3 },                  /* invalid UTF-8 */
                { "\x62" "a\0", 3 },                    /* NUL in a string */
                { "\xf6", 1 },                          /* null */
                { "\xf7", 1 },                          /* undefined */
                { "\xc1\x01", 2 },                      /* unknown tag */
                { "\xd9\xd9\xfc\x19\x01\x00", 6 },      /* uint8 tag, 256 */
                { "\xd9\xd9\xf8\x38\x80", 5 },          /* int8 tag, -129 */
                { "\xd9\xd9\xfc\x20", 4 },              /* uint tag on a negative */
                { "\xd9\xd9\xfc\x61" "a", 5 },          /* width tag on a string */
                { "\xd9\xd9\xfc", 3 },                  /* dangling tag */
                { "\x9f\x01\xff", 3 },                  /* indefinite array */
                { "\x7f\x61" "a" "\xff", 4 },           /* indefinite string */
                { "\x3b\x80\x00\x00\x00\x00\x00\x00\x00", 9 }, /* below INT64_MIN */
                { "\x1c", 1 },                          /* reserved additional info */
                { "", 0 },
        };
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
                assert_int_equal(decode(bad[k].b, bad[k].n, &v), TETHER_ERR_BAD_ARGUMENT);
                assert_null(v);
        }
        assert_int_equal(tether_value_decode(NULL, 4, &v), TETHER_ERR_BAD_ARGUMENT);
}

static void huge_declared_count_fails_fast(void **state)
{
        tether_value *v = NULL;
        /* An array header declaring 2^32 items, and a map of 2^63 pairs:
         * nothing may be allocated from these counts. */
        assert_int_equal(decode("\x9a\xff\xff\xff\xff\x01", 6, &v), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(decode("\xbb\x80\x00\x00\x00\x00\x00\x00\x00", 9, &v), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(decode("\x5a\xff\xff\xff\xff", 5, &v), TETHER_ERR_BAD_ARGUMENT);
}

static void depth_limit(void **state)
{
        char buf[64];
        tether_value *v = NULL;
        /* 32 nested one-element arrays around a 0: accepted. */
        memset(buf, 0x81, 32);
        buf[32] = 0x00;
        assert_int_equal(decode(buf, 33, &v), TETHER_SUCCESS);
        tether_value_unref(v);
        /* 33: refused. */
        memset(buf, 0x81, 33);
        buf[33] = 0x00;
        assert_int_equal(decode(buf, 34, &v), TETHER_ERR_BAD_ARGUMENT);
}

static void truncation_anywhere_fails(void **state)
{
        tether_value *d = NULL, *v = NULL;
        tether_value_new_dict(&d);
        tether_value_dict_set_string(d, "Model", "DSO-X 2002A");
        tether_value_dict_set_uint(d, "Rate", 2000000000, 32);
        tether_value_dict_set_double(d, "Scale", 1e-3);
        uint8_t *buf = NULL;
        size_t len = 0;
        tether_value_encode(d, &buf, &len);
        for (size_t cut = 0; cut < len; cut++)
                assert_int_equal(tether_value_decode(buf, cut, &v), TETHER_ERR_BAD_ARGUMENT);
        free(buf);
        tether_value_unref(d);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(every_type_and_width_round_trips),
                cmocka_unit_test(known_answers),
                cmocka_unit_test(plain_cbor_from_other_languages),
                cmocka_unit_test(rejects_malformed),
                cmocka_unit_test(huge_declared_count_fails_fast),
                cmocka_unit_test(depth_limit),
                cmocka_unit_test(truncation_anywhere_fails),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
