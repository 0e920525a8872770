/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <tether/value.h>

static void widths(void **state)
{
        tether_value *v = NULL;
        assert_int_equal(tether_value_new_int(127, 8, &v), TETHER_SUCCESS);
        v = tether_value_unref(v);
        assert_int_equal(tether_value_new_int(128, 8, &v), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_new_int(-128, 8, &v), TETHER_SUCCESS);
        v = tether_value_unref(v);
        assert_int_equal(tether_value_new_int(-129, 8, &v), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_new_uint(65535, 16, &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_bits(v), 16);
        v = tether_value_unref(v);
        assert_int_equal(tether_value_new_uint(65536, 16, &v), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_new_uint(UINT64_MAX, 64, &v), TETHER_SUCCESS);
        v = tether_value_unref(v);
        assert_int_equal(tether_value_new_int(INT64_MIN, 64, &v), TETHER_SUCCESS);
        v = tether_value_unref(v);
        assert_int_equal(tether_value_new_uint(1, 12, &v), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_new_int(1, 0, &v), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_new_int(1, 32, NULL), TETHER_ERR_BAD_ARGUMENT);
}

static void accessors_are_strict(void **state)
{
        tether_value *i = NULL, *u = NULL, *big = NULL, *neg = NULL, *s = NULL;
        int64_t iv;
        uint64_t uv;
        double d;
        bool b;
        const char *str;
        tether_value_new_int(5, 32, &i);
        tether_value_new_uint(7, 8, &u);
        tether_value_new_uint(UINT64_MAX, 64, &big);
        tether_value_new_int(-1, 64, &neg);
        tether_value_new_string("5", &s);
        assert_int_equal(tether_value_get_uint(i, &uv), TETHER_SUCCESS); /* INT >= 0 */
        assert_int_equal(uv, 5);
        assert_int_equal(tether_value_get_int(u, &iv), TETHER_SUCCESS); /* UINT that fits */
        assert_int_equal(iv, 7);
        assert_int_equal(tether_value_get_int(big, &iv), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_get_uint(neg, &uv), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_get_int(s, &iv), TETHER_ERR_BAD_ARGUMENT); /* no "5" -> 5 */
        assert_int_equal(tether_value_get_double(i, &d), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_get_bool(i, &b), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_get_string(i, &str), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_get_bits(s), 0);
        assert_string_equal(tether_value_type_name(tether_value_get_type(u)), "uint");
        tether_value_unref(i);
        tether_value_unref(u);
        tether_value_unref(big);
        tether_value_unref(neg);
        tether_value_unref(s);
}

static void utf8_rules(void **state)
{
        tether_value *v = NULL;
        assert_int_equal(tether_value_new_string("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", &v), TETHER_SUCCESS);
        v = tether_value_unref(v);
        const char *bad[] = {
                "\xc0\xaf",         /* overlong '/' */
                "\xe0\x80\xaf",     /* overlong */
                "\xed\xa0\x80",     /* surrogate */
                "\xf4\x90\x80\x80", /* past U+10FFFF */
                "\xc3",             /* truncated */
                "\x80",             /* stray continuation */
                "\xff",
        };
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
                assert_int_equal(tether_value_new_string(bad[k], &v), TETHER_ERR_BAD_ARGUMENT);
        tether_value *d = NULL;
        tether_value_new_dict(&d);
        assert_int_equal(tether_value_dict_set_bool(d, "\xff", true), TETHER_ERR_BAD_ARGUMENT);
        tether_value_unref(d);
}

static void dict_order_replace_remove(void **state)
{
        tether_value *d = NULL, *v = NULL;
        const char *k;
        tether_value_new_dict(&d);
        tether_value_dict_set_int(d, "b", 2, 32);
        tether_value_dict_set_int(d, "a", 1, 32);
        tether_value_dict_set_int(d, "c", 3, 32);
        tether_value_dict_set_int(d, "B", 0, 32); /* byte-wise: uppercase first */
        assert_int_equal(tether_value_count(d), 4);
        const char *order[] = { "B", "a", "b", "c" };
        for (size_t i = 0; i < 4; i++) {
                assert_int_equal(tether_value_dict_entry(d, i, &k, &v), TETHER_SUCCESS);
                assert_string_equal(k, order[i]);
        }
        assert_int_equal(tether_value_dict_set_string(d, "b", "two"), TETHER_SUCCESS);
        assert_int_equal(tether_value_count(d), 4);
        assert_int_equal(tether_value_dict_get(d, "b", &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_type(v), TETHER_TYPE_STRING);
        assert_int_equal(tether_value_dict_remove(d, "a"), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_remove(d, "a"), TETHER_ERR_NOT_FOUND);
        assert_int_equal(tether_value_dict_get(d, "a", &v), TETHER_ERR_NOT_FOUND);
        assert_int_equal(tether_value_count(d), 3);
        assert_int_equal(tether_value_dict_entry(d, 3, &k, &v), TETHER_ERR_BAD_ARGUMENT);
        tether_value_unref(d);
}

static void containers_hold_their_own_references(void **state)
{
        tether_value *a = NULL, *item = NULL, *got = NULL;
        tether_value_new_array(&a);
        tether_value_new_string("kept", &item);
        assert_int_equal(tether_value_array_append(a, item), TETHER_SUCCESS);
        tether_value_unref(a); /* the caller's reference keeps item alive */
        const char *s;
        assert_int_equal(tether_value_get_string(item, &s), TETHER_SUCCESS);
        assert_string_equal(s, "kept");
        tether_value_new_array(&a);
        tether_value_array_append(a, item);
        tether_value_unref(item); /* now the array's reference keeps it */
        assert_int_equal(tether_value_array_get(a, 0, &got), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_string(got, &s), TETHER_SUCCESS);
        assert_int_equal(tether_value_array_get(a, 1, &got), TETHER_ERR_BAD_ARGUMENT);
        /* No container inside itself. */
        assert_int_equal(tether_value_array_append(a, a), TETHER_ERR_BAD_ARGUMENT);
        tether_value_unref(a);
}

static void nesting_is_bounded(void **state)
{
        tether_value *v = NULL;
        tether_value_new_array(&v);
        int ok = 1;
        for (; ok < 40; ok++) {
                tether_value *outer = NULL;
                tether_value_new_array(&outer);
                tether_ret_t r = tether_value_array_append(outer, v);
                tether_value_unref(v);
                v = outer;
                if (r != TETHER_SUCCESS)
                        break;
        }
        assert_int_equal(ok, TETHER_VALUE_MAX_DEPTH); /* the 33rd level is refused */
        tether_value_unref(v);
}

static void equal_copy_merge(void **state)
{
        tether_value *a = NULL, *b = NULL, *c = NULL, *x = NULL, *y = NULL;
        tether_value_new_dict(&a);
        tether_value_dict_set_uint(a, "n", 5, 8);
        tether_value_dict_set_double(a, "nan", NAN);
        tether_value_dict_set_data(a, "raw", "\x00\x01", 2);
        assert_int_equal(tether_value_copy(a, &b), TETHER_SUCCESS);
        assert_true(tether_value_equal(a, b));
        assert_ptr_not_equal(a, b);
        tether_value_dict_set_uint(b, "n", 5, 32); /* same number, other width */
        assert_false(tether_value_equal(a, b));
        tether_value_new_double(0.0, &x);
        tether_value_new_double(-0.0, &y);
        assert_false(tether_value_equal(x, y));
        tether_value_new_dict(&c);
        tether_value_dict_set_string(c, "n", "replaced");
        tether_value_dict_set_bool(c, "new", true);
        assert_int_equal(tether_value_dict_merge(a, c), TETHER_SUCCESS);
        assert_int_equal(tether_value_count(a), 4);
        tether_value *n = NULL;
        tether_value_dict_get(a, "n", &n);
        assert_int_equal(tether_value_get_type(n), TETHER_TYPE_STRING);
        assert_int_equal(tether_value_dict_merge(a, a), TETHER_ERR_BAD_ARGUMENT);
        tether_value_unref(a);
        tether_value_unref(b);
        tether_value_unref(c);
        tether_value_unref(x);
        tether_value_unref(y);
}

static tether_value *sample(void)
{
        tether_value *d = NULL, *arr = NULL, *inner = NULL;
        tether_value_new_dict(&d);
        tether_value_dict_set_string(d, "Name", "DSO-X \"2002A\"");
        tether_value_dict_set_uint(d, "Channels", 2, 8);
        tether_value_dict_set_int(d, "Offset", -3, 32);
        tether_value_dict_set_bool(d, "Running", false);
        tether_value_dict_set_data(d, "Blob", "\xde\xad", 2);
        tether_value_dict_set_double(d, "Scale", 0.5);
        tether_value_new_array(&arr);
        tether_value_new_dict(&inner);
        tether_value_dict_set_string(inner, "Tab", "a\tb\x01");
        tether_value_array_append(arr, inner);
        tether_value_dict_set(d, "List", arr);
        tether_value_unref(inner);
        tether_value_unref(arr);
        return d;
}

static void ioreg_format(void **state)
{
        tether_value *d = sample();
        char *s = NULL;
        assert_int_equal(tether_value_format(d, &s), TETHER_SUCCESS);
        assert_string_equal(s, "{\"Blob\"=<dead>,\"Channels\"=2,\"List\"=({\"Tab\"=\"a\tb\x01\"}),"
                               "\"Name\"=\"DSO-X \\\"2002A\\\"\",\"Offset\"=-3,\"Running\"=No,\"Scale\"=0.5}");
        free(s);
        tether_value_unref(d);
}

static void json_format(void **state)
{
        tether_value *d = sample(), *n = NULL;
        char *s = NULL;
        assert_int_equal(tether_value_to_json(d, &s), TETHER_SUCCESS);
        assert_string_equal(s, "{\"Blob\":\"dead\",\"Channels\":2,\"List\":[{\"Tab\":\"a\\tb\\u0001\"}],"
                               "\"Name\":\"DSO-X \\\"2002A\\\"\",\"Offset\":-3,\"Running\":false,\"Scale\":0.5}");
        free(s);
        tether_value_unref(d);
        tether_value_new_double(INFINITY, &n);
        assert_int_equal(tether_value_to_json(n, &s), TETHER_SUCCESS);
        assert_string_equal(s, "null");
        free(s);
        tether_value_unref(n);
        tether_value_new_uint(UINT64_MAX, 64, &n);
        assert_int_equal(tether_value_to_json(n, &s), TETHER_SUCCESS);
        assert_string_equal(s, "18446744073709551615");
        free(s);
        tether_value_unref(n);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(widths),
                cmocka_unit_test(accessors_are_strict),
                cmocka_unit_test(utf8_rules),
                cmocka_unit_test(dict_order_replace_remove),
                cmocka_unit_test(containers_hold_their_own_references),
                cmocka_unit_test(nesting_is_bounded),
                cmocka_unit_test(equal_copy_merge),
                cmocka_unit_test(ioreg_format),
                cmocka_unit_test(json_format),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
