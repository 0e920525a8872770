/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <tether/value.h>

/* ---- helpers ---- */

static tether_value *new_int(int64_t x, unsigned bits)
{
        tether_value *v = NULL;
        assert_int_equal(tether_value_new_int(x, bits, &v), TETHER_SUCCESS);
        return v;
}

static tether_value *new_uint(uint64_t x, unsigned bits)
{
        tether_value *v = NULL;
        assert_int_equal(tether_value_new_uint(x, bits, &v), TETHER_SUCCESS);
        return v;
}

static tether_value *new_string(const char *s)
{
        tether_value *v = NULL;
        assert_int_equal(tether_value_new_string(s, &v), TETHER_SUCCESS);
        return v;
}

static tether_value *new_double(double x)
{
        tether_value *v = NULL;
        assert_int_equal(tether_value_new_double(x, &v), TETHER_SUCCESS);
        return v;
}

static tether_value *new_array(void)
{
        tether_value *v = NULL;
        assert_int_equal(tether_value_new_array(&v), TETHER_SUCCESS);
        return v;
}

static tether_value *new_dict(void)
{
        tether_value *v = NULL;
        assert_int_equal(tether_value_new_dict(&v), TETHER_SUCCESS);
        return v;
}

static tether_ret_t int_fits(int64_t x, unsigned bits)
{
        tether_value *v = NULL;
        tether_ret_t r = tether_value_new_int(x, bits, &v);
        tether_value_unref(v);
        return r;
}

static tether_ret_t uint_fits(uint64_t x, unsigned bits)
{
        tether_value *v = NULL;
        tether_ret_t r = tether_value_new_uint(x, bits, &v);
        tether_value_unref(v);
        return r;
}

static tether_ret_t string_ok(const char *s)
{
        tether_value *v = NULL;
        tether_ret_t r = tether_value_new_string(s, &v);
        tether_value_unref(v);
        return r;
}

/* Expect v's text (format or JSON) to be exactly want. */
static void assert_text(tether_ret_t (*fn)(const tether_value *, char **), const tether_value *v, const char *want)
{
        char *s = NULL;
        assert_int_equal(fn(v, &s), TETHER_SUCCESS);
        assert_string_equal(s, want);
        free(s);
}

/* ---- integer widths ---- */

static void int8_range(void **state)
{
        assert_int_equal(int_fits(127, 8), TETHER_SUCCESS);
        assert_int_equal(int_fits(128, 8), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(int_fits(-128, 8), TETHER_SUCCESS);
        assert_int_equal(int_fits(-129, 8), TETHER_ERR_BAD_ARGUMENT);
}

static void int16_and_int32_range(void **state)
{
        assert_int_equal(int_fits(INT16_MAX, 16), TETHER_SUCCESS);
        assert_int_equal(int_fits(INT16_MAX + 1, 16), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(int_fits(INT16_MIN, 16), TETHER_SUCCESS);
        assert_int_equal(int_fits(INT16_MIN - 1, 16), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(int_fits(INT32_MAX, 32), TETHER_SUCCESS);
        assert_int_equal(int_fits((int64_t)INT32_MAX + 1, 32), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(int_fits(INT32_MIN, 32), TETHER_SUCCESS);
        assert_int_equal(int_fits((int64_t)INT32_MIN - 1, 32), TETHER_ERR_BAD_ARGUMENT);
}

static void int64_takes_everything(void **state)
{
        assert_int_equal(int_fits(INT64_MIN, 64), TETHER_SUCCESS);
        assert_int_equal(int_fits(INT64_MAX, 64), TETHER_SUCCESS);
}

static void uint_range(void **state)
{
        assert_int_equal(uint_fits(255, 8), TETHER_SUCCESS);
        assert_int_equal(uint_fits(256, 8), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(uint_fits(65535, 16), TETHER_SUCCESS);
        assert_int_equal(uint_fits(65536, 16), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(uint_fits(UINT32_MAX, 32), TETHER_SUCCESS);
        assert_int_equal(uint_fits((uint64_t)UINT32_MAX + 1, 32), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(uint_fits(UINT64_MAX, 64), TETHER_SUCCESS);
}

static void only_four_widths(void **state)
{
        unsigned bad[] = { 0, 1, 7, 12, 24, 63, 65, 128 };
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
                assert_int_equal(int_fits(0, bad[k]), TETHER_ERR_BAD_ARGUMENT);
                assert_int_equal(uint_fits(0, bad[k]), TETHER_ERR_BAD_ARGUMENT);
        }
}

static void width_is_kept(void **state)
{
        tether_value *i = new_int(-5, 16), *u = new_uint(5, 32), *s = new_string("5");
        assert_int_equal(tether_value_get_type(i), TETHER_TYPE_INT);
        assert_int_equal(tether_value_get_bits(i), 16);
        assert_int_equal(tether_value_get_type(u), TETHER_TYPE_UINT);
        assert_int_equal(tether_value_get_bits(u), 32);
        assert_int_equal(tether_value_get_bits(s), 0);
        assert_int_equal(tether_value_get_bits(NULL), 0);
        tether_value_unref(i);
        tether_value_unref(u);
        tether_value_unref(s);
}

/* ---- accessors ---- */

static void get_int_takes_a_uint_that_fits(void **state)
{
        tether_value *small = new_uint(7, 8), *edge = new_uint(INT64_MAX, 64), *big = new_uint((uint64_t)INT64_MAX + 1, 64);
        int64_t x = 0;
        assert_int_equal(tether_value_get_int(small, &x), TETHER_SUCCESS);
        assert_int_equal(x, 7);
        assert_int_equal(tether_value_get_int(edge, &x), TETHER_SUCCESS);
        assert_true(x == INT64_MAX);
        x = 42;
        assert_int_equal(tether_value_get_int(big, &x), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(x, 42); /* untouched on failure */
        tether_value_unref(small);
        tether_value_unref(edge);
        tether_value_unref(big);
}

static void get_uint_takes_a_non_negative_int(void **state)
{
        tether_value *five = new_int(5, 32), *zero = new_int(0, 8), *neg = new_int(-1, 64);
        uint64_t x = 0;
        assert_int_equal(tether_value_get_uint(five, &x), TETHER_SUCCESS);
        assert_int_equal(x, 5);
        assert_int_equal(tether_value_get_uint(zero, &x), TETHER_SUCCESS);
        assert_int_equal(x, 0);
        assert_int_equal(tether_value_get_uint(neg, &x), TETHER_ERR_BAD_ARGUMENT);
        tether_value_unref(five);
        tether_value_unref(zero);
        tether_value_unref(neg);
}

static void accessors_refuse_other_types(void **state)
{
        tether_value *i = new_int(1, 32), *s = new_string("1"), *d = new_double(1.0), *b = NULL, *data = NULL;
        assert_int_equal(tether_value_new_bool(true, &b), TETHER_SUCCESS);
        assert_int_equal(tether_value_new_data("1", 1, &data), TETHER_SUCCESS);
        int64_t iv;
        uint64_t uv;
        double dv;
        bool bv;
        const char *sv;
        const void *p;
        size_t n;
        assert_int_equal(tether_value_get_int(s, &iv), TETHER_ERR_BAD_ARGUMENT); /* no "1" -> 1 */
        assert_int_equal(tether_value_get_int(d, &iv), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_get_uint(b, &uv), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_get_double(i, &dv), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_get_bool(i, &bv), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_get_string(data, &sv), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_get_data(s, &p, &n), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_count(s), 0);
        tether_value_unref(i);
        tether_value_unref(s);
        tether_value_unref(d);
        tether_value_unref(b);
        tether_value_unref(data);
}

static void scalars_hold_their_values(void **state)
{
        tether_value *d = new_double(-2.5), *b = NULL, *s = new_string("h\xc3\xa9"), *data = NULL;
        assert_int_equal(tether_value_new_bool(false, &b), TETHER_SUCCESS);
        assert_int_equal(tether_value_new_data("\x00\x01\x00", 3, &data), TETHER_SUCCESS);
        double dv = 0;
        bool bv = true;
        const char *sv = NULL;
        const void *p = NULL;
        size_t n = 0;
        assert_int_equal(tether_value_get_double(d, &dv), TETHER_SUCCESS);
        assert_true(dv == -2.5);
        assert_int_equal(tether_value_get_bool(b, &bv), TETHER_SUCCESS);
        assert_false(bv);
        assert_int_equal(tether_value_get_string(s, &sv), TETHER_SUCCESS);
        assert_string_equal(sv, "h\xc3\xa9");
        assert_int_equal(tether_value_get_data(data, &p, &n), TETHER_SUCCESS);
        assert_int_equal(n, 3);
        assert_memory_equal(p, "\x00\x01\x00", 3);
        tether_value_unref(d);
        tether_value_unref(b);
        tether_value_unref(s);
        tether_value_unref(data);
}

static void constructors_copy_their_input(void **state)
{
        char buf[] = "abc";
        tether_value *s = new_string(buf), *data = NULL;
        assert_int_equal(tether_value_new_data(buf, 3, &data), TETHER_SUCCESS);
        buf[0] = 'X';
        const char *sv;
        const void *p;
        size_t n;
        tether_value_get_string(s, &sv);
        assert_string_equal(sv, "abc");
        tether_value_get_data(data, &p, &n);
        assert_memory_equal(p, "abc", 3);
        tether_value_unref(s);
        tether_value_unref(data);
}

static void empty_data(void **state)
{
        tether_value *v = NULL;
        const void *p;
        size_t n = 99;
        assert_int_equal(tether_value_new_data(NULL, 0, &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_data(v, &p, &n), TETHER_SUCCESS);
        assert_int_equal(n, 0);
        tether_value_unref(v);
        assert_int_equal(tether_value_new_data(NULL, 1, &v), TETHER_ERR_BAD_ARGUMENT);
}

static void null_arguments_are_refused(void **state)
{
        tether_value *v = new_dict(), *out = NULL;
        int64_t iv;
        const char *k;
        uint8_t *buf;
        size_t n;
        char *text;
        assert_int_equal(tether_value_new_int(1, 32, NULL), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_new_uint(1, 32, NULL), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_new_double(1, NULL), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_new_bool(true, NULL), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_new_string(NULL, &out), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_new_string("x", NULL), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_new_data("x", 1, NULL), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_new_array(NULL), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_new_dict(NULL), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_get_int(NULL, &iv), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_get_int(v, NULL), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_array_append(NULL, v), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_dict_set(v, NULL, v), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_dict_set(v, "k", NULL), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_dict_get(v, NULL, &out), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_dict_get(v, "k", NULL), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_dict_remove(NULL, "k"), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_dict_entry(v, 0, &k, NULL), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_dict_set_int(NULL, "k", 1, 8), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_dict_set_string(v, "k", NULL), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_copy(NULL, &out), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_dict_merge(v, NULL), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_encode(NULL, &buf, &n), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_format(NULL, &text), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_to_json(v, NULL), TETHER_ERR_BAD_ARGUMENT);
        assert_null(tether_value_ref(NULL));
        assert_null(tether_value_unref(NULL));
        assert_int_equal(tether_value_count(NULL), 0);
        assert_false(tether_value_equal(NULL, v));
        assert_int_equal(tether_value_count(v), 0); /* nothing slipped in */
        tether_value_unref(v);
}

static void type_names(void **state)
{
        assert_string_equal(tether_value_type_name(TETHER_TYPE_INT), "int");
        assert_string_equal(tether_value_type_name(TETHER_TYPE_UINT), "uint");
        assert_string_equal(tether_value_type_name(TETHER_TYPE_DOUBLE), "double");
        assert_string_equal(tether_value_type_name(TETHER_TYPE_BOOL), "bool");
        assert_string_equal(tether_value_type_name(TETHER_TYPE_STRING), "string");
        assert_string_equal(tether_value_type_name(TETHER_TYPE_DATA), "data");
        assert_string_equal(tether_value_type_name(TETHER_TYPE_ARRAY), "array");
        assert_string_equal(tether_value_type_name(TETHER_TYPE_DICT), "dict");
        assert_string_equal(tether_value_type_name((tether_value_type)0), "invalid");
}

/* ---- UTF-8 ---- */

static void utf8_valid_sequences(void **state)
{
        assert_int_equal(string_ok(""), TETHER_SUCCESS);
        assert_int_equal(string_ok("\x7f"), TETHER_SUCCESS);
        assert_int_equal(string_ok("\xc2\x80"), TETHER_SUCCESS);          /* U+0080 */
        assert_int_equal(string_ok("\xe2\x82\xac"), TETHER_SUCCESS);      /* U+20AC */
        assert_int_equal(string_ok("\xed\x9f\xbf"), TETHER_SUCCESS);      /* U+D7FF */
        assert_int_equal(string_ok("\xee\x80\x80"), TETHER_SUCCESS);      /* U+E000 */
        assert_int_equal(string_ok("\xef\xbf\xbf"), TETHER_SUCCESS);      /* U+FFFF */
        assert_int_equal(string_ok("\xf0\x9f\x98\x80"), TETHER_SUCCESS);  /* U+1F600 */
        assert_int_equal(string_ok("\xf4\x8f\xbf\xbf"), TETHER_SUCCESS);  /* U+10FFFF */
}

static void utf8_rejects_overlongs(void **state)
{
        assert_int_equal(string_ok("\xc0\xaf"), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(string_ok("\xc1\xbf"), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(string_ok("\xe0\x80\xaf"), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(string_ok("\xe0\x9f\xbf"), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(string_ok("\xf0\x80\x80\xaf"), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(string_ok("\xf0\x8f\xbf\xbf"), TETHER_ERR_BAD_ARGUMENT);
}

static void utf8_rejects_surrogates(void **state)
{
        assert_int_equal(string_ok("\xed\xa0\x80"), TETHER_ERR_BAD_ARGUMENT); /* U+D800 */
        assert_int_equal(string_ok("\xed\xbf\xbf"), TETHER_ERR_BAD_ARGUMENT); /* U+DFFF */
}

static void utf8_rejects_past_u10ffff(void **state)
{
        assert_int_equal(string_ok("\xf4\x90\x80\x80"), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(string_ok("\xf5\x80\x80\x80"), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(string_ok("\xf8\x88\x80\x80\x80"), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(string_ok("\xff"), TETHER_ERR_BAD_ARGUMENT);
}

static void utf8_rejects_truncated_and_stray_bytes(void **state)
{
        assert_int_equal(string_ok("\xc3"), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(string_ok("\xe2\x82"), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(string_ok("\xf0\x9f\x98"), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(string_ok("\xc3" "a"), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(string_ok("\x80"), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(string_ok("a\xbf"), TETHER_ERR_BAD_ARGUMENT);
}

static void string_length_limit(void **state)
{
        char *s = malloc(TETHER_VALUE_MAX_STRING + 2);
        assert_non_null(s);
        memset(s, 'x', TETHER_VALUE_MAX_STRING + 1);
        s[TETHER_VALUE_MAX_STRING + 1] = '\0';
        assert_int_equal(string_ok(s), TETHER_ERR_BAD_ARGUMENT);
        s[TETHER_VALUE_MAX_STRING] = '\0';
        assert_int_equal(string_ok(s), TETHER_SUCCESS);
        free(s);
}

static void dict_keys_must_be_utf8(void **state)
{
        tether_value *d = new_dict();
        assert_int_equal(tether_value_dict_set_bool(d, "\xff", true), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_dict_set_bool(d, "\xed\xa0\x80", true), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_count(d), 0);
        tether_value_unref(d);
}

/* ---- references and containers ---- */

static void ref_and_unref(void **state)
{
        tether_value *v = new_string("shared");
        assert_ptr_equal(tether_value_ref(v), v);
        assert_null(tether_value_unref(v)); /* one reference left */
        const char *s;
        assert_int_equal(tether_value_get_string(v, &s), TETHER_SUCCESS);
        assert_string_equal(s, "shared");
        v = tether_value_unref(v);
        assert_null(v);
}

static void item_outlives_its_container(void **state)
{
        tether_value *a = new_array(), *d = new_dict(), *item = new_string("kept");
        assert_int_equal(tether_value_array_append(a, item), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set(d, "k", item), TETHER_SUCCESS);
        tether_value_unref(a);
        tether_value_unref(d);
        const char *s;
        assert_int_equal(tether_value_get_string(item, &s), TETHER_SUCCESS);
        assert_string_equal(s, "kept");
        tether_value_unref(item);
}

static void container_keeps_its_items_alive(void **state)
{
        tether_value *a = new_array(), *item = new_string("kept"), *got = NULL;
        tether_value_array_append(a, item);
        tether_value_unref(item);
        assert_int_equal(tether_value_array_get(a, 0, &got), TETHER_SUCCESS);
        assert_ptr_equal(got, item);
        const char *s;
        assert_int_equal(tether_value_get_string(got, &s), TETHER_SUCCESS);
        assert_string_equal(s, "kept");
        tether_value_unref(a);
}

static void array_keeps_order(void **state)
{
        tether_value *a = new_array(), *got = NULL;
        for (int64_t i = 0; i < 100; i++) {
                tether_value *v = new_int(i, 32);
                assert_int_equal(tether_value_array_append(a, v), TETHER_SUCCESS);
                tether_value_unref(v);
        }
        assert_int_equal(tether_value_count(a), 100);
        for (size_t i = 0; i < 100; i++) {
                int64_t x;
                assert_int_equal(tether_value_array_get(a, i, &got), TETHER_SUCCESS);
                tether_value_get_int(got, &x);
                assert_int_equal(x, i);
        }
        assert_int_equal(tether_value_array_get(a, 100, &got), TETHER_ERR_BAD_ARGUMENT);
        tether_value_unref(a);
}

static void container_refuses_itself(void **state)
{
        tether_value *a = new_array(), *d = new_dict();
        assert_int_equal(tether_value_array_append(a, a), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_dict_set(d, "me", d), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_count(a), 0);
        assert_int_equal(tether_value_count(d), 0);
        tether_value_unref(a);
        tether_value_unref(d);
}

static void containers_refuse_the_wrong_kind(void **state)
{
        tether_value *a = new_array(), *d = new_dict(), *s = new_string("x"), *got = NULL;
        const char *k;
        assert_int_equal(tether_value_array_append(d, s), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_array_append(s, s), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_dict_set(a, "k", s), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_array_get(d, 0, &got), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_dict_get(a, "k", &got), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_dict_entry(a, 0, &k, &got), TETHER_ERR_BAD_ARGUMENT);
        tether_value_unref(a);
        tether_value_unref(d);
        tether_value_unref(s);
}

/* A chain of n nested containers, built innermost first (arrays or dicts). */
static tether_ret_t nest(unsigned n, bool dicts, tether_value **ret)
{
        tether_value *v = dicts ? new_dict() : new_array();
        for (unsigned level = 1; level < n; level++) {
                tether_value *outer = dicts ? new_dict() : new_array();
                tether_ret_t r = dicts ? tether_value_dict_set(outer, "k", v) : tether_value_array_append(outer, v);
                tether_value_unref(v);
                v = outer;
                if (r != TETHER_SUCCESS) {
                        tether_value_unref(v);
                        return r;
                }
        }
        *ret = v;
        return TETHER_SUCCESS;
}

static void nesting_is_limited_on_insert(void **state)
{
        tether_value *v = NULL;
        assert_int_equal(nest(TETHER_VALUE_MAX_DEPTH, false, &v), TETHER_SUCCESS);
        v = tether_value_unref(v);
        assert_int_equal(nest(TETHER_VALUE_MAX_DEPTH + 1, false, &v), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(nest(TETHER_VALUE_MAX_DEPTH, true, &v), TETHER_SUCCESS);
        v = tether_value_unref(v);
        assert_int_equal(nest(TETHER_VALUE_MAX_DEPTH + 1, true, &v), TETHER_ERR_BAD_ARGUMENT);
}

static void dict_gets_shallower_when_a_deep_member_goes(void **state)
{
        tether_value *deep = NULL, *outer = new_array();
        assert_int_equal(nest(TETHER_VALUE_MAX_DEPTH - 1, false, &deep), TETHER_SUCCESS);
        tether_value *d = new_dict();
        tether_value_dict_set(d, "deep", deep);
        tether_value_dict_set(d, "gone", deep);
        /* d is now at the limit and cannot go into anything... */
        assert_int_equal(tether_value_array_append(outer, d), TETHER_ERR_BAD_ARGUMENT);
        /* ...until the deep members are replaced and removed. */
        assert_int_equal(tether_value_dict_set_bool(d, "deep", true), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_remove(d, "gone"), TETHER_SUCCESS);
        assert_int_equal(tether_value_array_append(outer, d), TETHER_SUCCESS);
        tether_value_unref(deep);
        tether_value_unref(d);
        tether_value_unref(outer);
}

/* ---- dictionaries ---- */

static void dict_keys_are_sorted_bytewise(void **state)
{
        tether_value *d = new_dict(), *v = NULL;
        const char *in[] = { "b", "\xc3\xa9", "aa", "a", "B", "", "z" };
        const char *sorted[] = { "", "B", "a", "aa", "b", "z", "\xc3\xa9" };
        for (size_t i = 0; i < 7; i++)
                assert_int_equal(tether_value_dict_set_int(d, in[i], (int64_t)i, 8), TETHER_SUCCESS);
        assert_int_equal(tether_value_count(d), 7);
        for (size_t i = 0; i < 7; i++) {
                const char *k;
                assert_int_equal(tether_value_dict_entry(d, i, &k, &v), TETHER_SUCCESS);
                assert_string_equal(k, sorted[i]);
        }
        for (size_t i = 0; i < 7; i++) {
                int64_t x;
                assert_int_equal(tether_value_dict_get(d, in[i], &v), TETHER_SUCCESS);
                tether_value_get_int(v, &x);
                assert_int_equal(x, i);
        }
        tether_value_unref(d);
}

static void dict_set_replaces(void **state)
{
        tether_value *d = new_dict(), *old = new_int(1, 32), *v = NULL;
        tether_value_dict_set(d, "a", old);
        tether_value_dict_set_int(d, "b", 2, 32);
        assert_int_equal(tether_value_dict_set_string(d, "a", "one"), TETHER_SUCCESS);
        assert_int_equal(tether_value_count(d), 2);
        assert_int_equal(tether_value_dict_get(d, "a", &v), TETHER_SUCCESS);
        const char *s;
        assert_int_equal(tether_value_get_string(v, &s), TETHER_SUCCESS);
        assert_string_equal(s, "one");
        /* The dict dropped its reference to the old value, not ours. */
        assert_int_equal(tether_value_get_bits(old), 32);
        tether_value_unref(old);
        tether_value_unref(d);
}

static void dict_remove(void **state)
{
        tether_value *d = new_dict(), *v = NULL;
        const char *k;
        tether_value_dict_set_int(d, "a", 1, 8);
        tether_value_dict_set_int(d, "b", 2, 8);
        tether_value_dict_set_int(d, "c", 3, 8);
        assert_int_equal(tether_value_dict_remove(d, "b"), TETHER_SUCCESS);
        assert_int_equal(tether_value_count(d), 2);
        assert_int_equal(tether_value_dict_get(d, "b", &v), TETHER_ERR_NOT_FOUND);
        assert_int_equal(tether_value_dict_remove(d, "b"), TETHER_ERR_NOT_FOUND);
        assert_int_equal(tether_value_dict_entry(d, 0, &k, &v), TETHER_SUCCESS);
        assert_string_equal(k, "a");
        assert_int_equal(tether_value_dict_entry(d, 1, &k, &v), TETHER_SUCCESS);
        assert_string_equal(k, "c");
        assert_int_equal(tether_value_dict_entry(d, 2, &k, &v), TETHER_ERR_BAD_ARGUMENT);
        tether_value_unref(d);
}

static void dict_get_missing(void **state)
{
        tether_value *d = new_dict(), *v = NULL;
        assert_int_equal(tether_value_dict_get(d, "nothing", &v), TETHER_ERR_NOT_FOUND);
        tether_value_dict_set_bool(d, "a", true);
        assert_int_equal(tether_value_dict_get(d, "A", &v), TETHER_ERR_NOT_FOUND); /* case matters */
        tether_value_unref(d);
}

static void shorthands_build_the_right_values(void **state)
{
        tether_value *d = new_dict(), *v = NULL;
        assert_int_equal(tether_value_dict_set_int(d, "i", -7, 16), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_uint(d, "u", 7, 64), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_double(d, "d", 0.25), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_bool(d, "b", true), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_string(d, "s", "str"), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_data(d, "x", "\x01\x02", 2), TETHER_SUCCESS);
        tether_value_dict_get(d, "i", &v);
        assert_int_equal(tether_value_get_type(v), TETHER_TYPE_INT);
        assert_int_equal(tether_value_get_bits(v), 16);
        tether_value_dict_get(d, "u", &v);
        assert_int_equal(tether_value_get_type(v), TETHER_TYPE_UINT);
        assert_int_equal(tether_value_get_bits(v), 64);
        tether_value_dict_get(d, "d", &v);
        assert_int_equal(tether_value_get_type(v), TETHER_TYPE_DOUBLE);
        tether_value_dict_get(d, "b", &v);
        assert_int_equal(tether_value_get_type(v), TETHER_TYPE_BOOL);
        tether_value_dict_get(d, "s", &v);
        assert_int_equal(tether_value_get_type(v), TETHER_TYPE_STRING);
        tether_value_dict_get(d, "x", &v);
        assert_int_equal(tether_value_get_type(v), TETHER_TYPE_DATA);
        tether_value_unref(d);
}

static void shorthands_refuse_what_constructors_refuse(void **state)
{
        tether_value *d = new_dict();
        assert_int_equal(tether_value_dict_set_int(d, "i", 128, 8), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_dict_set_uint(d, "u", 1, 3), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_dict_set_string(d, "s", "\xc0\xaf"), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_count(d), 0);
        tether_value_unref(d);
}

/* ---- equal, copy, merge ---- */

static void equal_needs_same_type_and_width(void **state)
{
        tether_value *i8 = new_int(5, 8), *i32 = new_int(5, 32), *u8 = new_uint(5, 8), *again = new_int(5, 8);
        tether_value *s = new_string("ab"), *data = NULL;
        tether_value_new_data("ab", 2, &data);
        assert_true(tether_value_equal(i8, again));
        assert_false(tether_value_equal(i8, i32));
        assert_false(tether_value_equal(i8, u8));
        assert_false(tether_value_equal(s, data));
        tether_value_unref(i8);
        tether_value_unref(i32);
        tether_value_unref(u8);
        tether_value_unref(again);
        tether_value_unref(s);
        tether_value_unref(data);
}

static void equal_compares_doubles_bitwise(void **state)
{
        tether_value *n1 = new_double(NAN), *n2 = new_double(NAN), *z = new_double(0.0), *mz = new_double(-0.0);
        assert_true(tether_value_equal(n1, n2));
        assert_false(tether_value_equal(z, mz));
        tether_value_unref(n1);
        tether_value_unref(n2);
        tether_value_unref(z);
        tether_value_unref(mz);
}

static tether_value *sample(void)
{
        tether_value *d = new_dict(), *arr = new_array(), *inner = new_dict();
        tether_value_dict_set_string(d, "Name", "DSO-X \"2002A\" \\ 2");
        tether_value_dict_set_uint(d, "Channels", 2, 8);
        tether_value_dict_set_int(d, "Offset", -3, 32);
        tether_value_dict_set_bool(d, "Running", false);
        tether_value_dict_set_bool(d, "Armed", true);
        tether_value_dict_set_data(d, "Blob", "\xde\xad\x0b", 3);
        tether_value_dict_set_double(d, "Scale", 0.1);
        tether_value_dict_set_string(inner, "Tab", "a\tb\x01");
        tether_value_array_append(arr, inner);
        tether_value *one = new_int(1, 8);
        tether_value_array_append(arr, one);
        tether_value_unref(one);
        tether_value_dict_set(d, "List", arr);
        tether_value_unref(inner);
        tether_value_unref(arr);
        return d;
}

static void equal_is_deep(void **state)
{
        tether_value *a = sample(), *b = sample(), *list = NULL;
        assert_true(tether_value_equal(a, b));
        tether_value *extra = new_int(2, 8);
        tether_value_dict_get(b, "List", &list);
        assert_int_equal(tether_value_array_append(list, extra), TETHER_SUCCESS);
        assert_false(tether_value_equal(a, b));
        tether_value_unref(extra);
        tether_value_unref(a);
        tether_value_unref(b);
}

static void equal_sees_key_differences(void **state)
{
        tether_value *a = new_dict(), *b = new_dict();
        tether_value_dict_set_int(a, "x", 1, 8);
        tether_value_dict_set_int(b, "y", 1, 8);
        assert_false(tether_value_equal(a, b));
        tether_value_unref(a);
        tether_value_unref(b);
}

static void copy_is_deep_and_unshared(void **state)
{
        tether_value *a = sample(), *b = NULL, *la = NULL, *lb = NULL;
        assert_int_equal(tether_value_copy(a, &b), TETHER_SUCCESS);
        assert_ptr_not_equal(a, b);
        assert_true(tether_value_equal(a, b));
        tether_value_dict_get(a, "List", &la);
        tether_value_dict_get(b, "List", &lb);
        assert_ptr_not_equal(la, lb);
        /* Changing the copy leaves the original alone. */
        tether_value_dict_set_bool(b, "Running", true);
        tether_value_array_append(lb, la);
        assert_int_equal(tether_value_count(la), 2);
        assert_int_equal(tether_value_count(lb), 3);
        tether_value *running = NULL;
        bool x = true;
        tether_value_dict_get(a, "Running", &running);
        tether_value_get_bool(running, &x);
        assert_false(x);
        tether_value_unref(a);
        tether_value_unref(b);
}

static void copy_of_a_scalar(void **state)
{
        tether_value *v = new_uint(65535, 16), *c = NULL;
        assert_int_equal(tether_value_copy(v, &c), TETHER_SUCCESS);
        assert_ptr_not_equal(v, c);
        assert_true(tether_value_equal(v, c));
        assert_int_equal(tether_value_get_bits(c), 16);
        tether_value_unref(v);
        tether_value_unref(c);
}

static void merge_adds_and_replaces(void **state)
{
        tether_value *dst = new_dict(), *src = new_dict(), *v = NULL;
        tether_value_dict_set_int(dst, "keep", 1, 8);
        tether_value_dict_set_int(dst, "both", 2, 8);
        tether_value_dict_set_string(src, "both", "theirs");
        tether_value_dict_set_bool(src, "new", true);
        assert_int_equal(tether_value_dict_merge(dst, src), TETHER_SUCCESS);
        assert_int_equal(tether_value_count(dst), 3);
        assert_int_equal(tether_value_count(src), 2);
        tether_value_dict_get(dst, "both", &v);
        assert_int_equal(tether_value_get_type(v), TETHER_TYPE_STRING);
        assert_int_equal(tether_value_dict_get(dst, "keep", &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_get(dst, "new", &v), TETHER_SUCCESS);
        tether_value_unref(src); /* dst holds its own references */
        assert_int_equal(tether_value_get_type(v), TETHER_TYPE_BOOL);
        tether_value_unref(dst);
}

static void merge_into_itself_changes_nothing(void **state)
{
        tether_value *d = sample(), *before = sample();
        assert_int_equal(tether_value_dict_merge(d, d), TETHER_SUCCESS);
        assert_true(tether_value_equal(d, before));
        tether_value_unref(d);
        tether_value_unref(before);
}

static void merge_needs_two_dicts(void **state)
{
        tether_value *d = new_dict(), *a = new_array();
        assert_int_equal(tether_value_dict_merge(d, a), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_dict_merge(a, d), TETHER_ERR_BAD_ARGUMENT);
        tether_value_unref(d);
        tether_value_unref(a);
}

/* ---- text ---- */

static void format_nested_example(void **state)
{
        tether_value *d = sample();
        assert_text(tether_value_format, d,
                    "{\"Armed\"=Yes,\"Blob\"=<dead0b>,\"Channels\"=2,\"List\"=({\"Tab\"=\"a\tb\x01\"},1),"
                    "\"Name\"=\"DSO-X \\\"2002A\\\" \\\\ 2\",\"Offset\"=-3,\"Running\"=No,\"Scale\"=0.1}");
        tether_value_unref(d);
}

static void format_scalars_and_empties(void **state)
{
        tether_value *v = new_int(INT64_MIN, 64);
        assert_text(tether_value_format, v, "-9223372036854775808");
        tether_value_unref(v);
        v = new_uint(UINT64_MAX, 64);
        assert_text(tether_value_format, v, "18446744073709551615");
        tether_value_unref(v);
        v = new_string("");
        assert_text(tether_value_format, v, "\"\"");
        tether_value_unref(v);
        tether_value_new_data(NULL, 0, &v);
        assert_text(tether_value_format, v, "<>");
        tether_value_unref(v);
        v = new_array();
        assert_text(tether_value_format, v, "()");
        tether_value_unref(v);
        v = new_dict();
        assert_text(tether_value_format, v, "{}");
        tether_value_unref(v);
}

static void doubles_print_short_and_exact(void **state)
{
        const double xs[] = { 0.1, 1.0 / 3, 1e300, -2.5, DBL_MIN, DBL_MAX, 5e-324, 123456789.125 };
        for (size_t k = 0; k < sizeof(xs) / sizeof(xs[0]); k++) {
                tether_value *v = new_double(xs[k]);
                char *s = NULL;
                assert_int_equal(tether_value_format(v, &s), TETHER_SUCCESS);
                assert_true(strtod(s, NULL) == xs[k]);
                free(s);
                tether_value_unref(v);
        }
        tether_value *v = new_double(0.1);
        assert_text(tether_value_format, v, "0.1");
        assert_text(tether_value_to_json, v, "0.1");
        tether_value_unref(v);
        v = new_double(1e300);
        assert_text(tether_value_to_json, v, "1e+300");
        tether_value_unref(v);
}

static void json_nested_example(void **state)
{
        tether_value *d = sample();
        assert_text(tether_value_to_json, d,
                    "{\"Armed\":true,\"Blob\":\"dead0b\",\"Channels\":2,\"List\":[{\"Tab\":\"a\\tb\\u0001\"},1],"
                    "\"Name\":\"DSO-X \\\"2002A\\\" \\\\ 2\",\"Offset\":-3,\"Running\":false,\"Scale\":0.1}");
        tether_value_unref(d);
}

static void json_escapes_control_characters(void **state)
{
        tether_value *v = new_string("\b\f\n\r\t\x1f\x7f/\xc3\xa9");
        assert_text(tether_value_to_json, v, "\"\\u0008\\u000c\\n\\r\\t\\u001f\x7f/\xc3\xa9\"");
        tether_value_unref(v);
        tether_value *d = new_dict();
        tether_value_dict_set_bool(d, "q\"\n", true);
        assert_text(tether_value_to_json, d, "{\"q\\\"\\n\":true}");
        tether_value_unref(d);
}

static void json_non_finite_is_null(void **state)
{
        const double xs[] = { NAN, INFINITY, -INFINITY };
        for (size_t k = 0; k < 3; k++) {
                tether_value *v = new_double(xs[k]);
                assert_text(tether_value_to_json, v, "null");
                tether_value_unref(v);
        }
}

static void json_integers_are_exact(void **state)
{
        tether_value *a = new_array(), *u = new_uint(UINT64_MAX, 64), *i = new_int(INT64_MIN, 64);
        tether_value_array_append(a, u);
        tether_value_array_append(a, i);
        assert_text(tether_value_to_json, a, "[18446744073709551615,-9223372036854775808]");
        tether_value_unref(a);
        tether_value_unref(u);
        tether_value_unref(i);
}

static void json_empties(void **state)
{
        tether_value *a = new_array(), *d = new_dict(), *data = NULL;
        tether_value_new_data(NULL, 0, &data);
        assert_text(tether_value_to_json, a, "[]");
        assert_text(tether_value_to_json, d, "{}");
        assert_text(tether_value_to_json, data, "\"\"");
        tether_value_unref(a);
        tether_value_unref(d);
        tether_value_unref(data);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(int8_range),
                cmocka_unit_test(int16_and_int32_range),
                cmocka_unit_test(int64_takes_everything),
                cmocka_unit_test(uint_range),
                cmocka_unit_test(only_four_widths),
                cmocka_unit_test(width_is_kept),
                cmocka_unit_test(get_int_takes_a_uint_that_fits),
                cmocka_unit_test(get_uint_takes_a_non_negative_int),
                cmocka_unit_test(accessors_refuse_other_types),
                cmocka_unit_test(scalars_hold_their_values),
                cmocka_unit_test(constructors_copy_their_input),
                cmocka_unit_test(empty_data),
                cmocka_unit_test(null_arguments_are_refused),
                cmocka_unit_test(type_names),
                cmocka_unit_test(utf8_valid_sequences),
                cmocka_unit_test(utf8_rejects_overlongs),
                cmocka_unit_test(utf8_rejects_surrogates),
                cmocka_unit_test(utf8_rejects_past_u10ffff),
                cmocka_unit_test(utf8_rejects_truncated_and_stray_bytes),
                cmocka_unit_test(string_length_limit),
                cmocka_unit_test(dict_keys_must_be_utf8),
                cmocka_unit_test(ref_and_unref),
                cmocka_unit_test(item_outlives_its_container),
                cmocka_unit_test(container_keeps_its_items_alive),
                cmocka_unit_test(array_keeps_order),
                cmocka_unit_test(container_refuses_itself),
                cmocka_unit_test(containers_refuse_the_wrong_kind),
                cmocka_unit_test(nesting_is_limited_on_insert),
                cmocka_unit_test(dict_gets_shallower_when_a_deep_member_goes),
                cmocka_unit_test(dict_keys_are_sorted_bytewise),
                cmocka_unit_test(dict_set_replaces),
                cmocka_unit_test(dict_remove),
                cmocka_unit_test(dict_get_missing),
                cmocka_unit_test(shorthands_build_the_right_values),
                cmocka_unit_test(shorthands_refuse_what_constructors_refuse),
                cmocka_unit_test(equal_needs_same_type_and_width),
                cmocka_unit_test(equal_compares_doubles_bitwise),
                cmocka_unit_test(equal_is_deep),
                cmocka_unit_test(equal_sees_key_differences),
                cmocka_unit_test(copy_is_deep_and_unshared),
                cmocka_unit_test(copy_of_a_scalar),
                cmocka_unit_test(merge_adds_and_replaces),
                cmocka_unit_test(merge_into_itself_changes_nothing),
                cmocka_unit_test(merge_needs_two_dicts),
                cmocka_unit_test(format_nested_example),
                cmocka_unit_test(format_scalars_and_empties),
                cmocka_unit_test(doubles_print_short_and_exact),
                cmocka_unit_test(json_nested_example),
                cmocka_unit_test(json_escapes_control_characters),
                cmocka_unit_test(json_non_finite_is_null),
                cmocka_unit_test(json_integers_are_exact),
                cmocka_unit_test(json_empties),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
