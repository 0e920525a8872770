/* SPDX-License-Identifier: MIT */
/* tether reg's value mappings, on values no driver publishes today: the
 * JSON of docs/reg-json.md (2^53, 64-bit extremes, NaN, data, escapes,
 * nesting) and -x's hexadecimal text. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "reg-private.h"

static tether_entry_info *info(uint64_t id, uint64_t parent, const char *cls, const char *name, const char *loc,
                               const char *path, const char *driver, uint32_t state)
{
        tether_entry_info *i = calloc(1, sizeof(*i));
        assert_non_null(i);
        *i = (tether_entry_info){ .id = id, .parent_id = parent, .class_name = strdup(cls), .name = strdup(name),
                                  .location = strdup(loc), .path = strdup(path), .state = state, .busy = 0,
                                  .open_count = 2, .driver = strdup(driver) };
        return i;
}

static char *json_of(reg_node *const *roots, size_t n)
{
        char *s = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&s, &len);
        assert_non_null(f);
        assert_int_equal(reg_json_write(f, roots, n), TETHER_SUCCESS);
        assert_int_equal(fclose(f), 0);
        return s;
}

static void json_values_and_entries(void **state)
{
        tether_value *p = NULL, *arr = NULL, *inner = NULL;
        assert_int_equal(tether_value_new_dict(&p), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_uint(p, "a53", UINT64_C(1) << 53, 64), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_uint(p, "b53+1", (UINT64_C(1) << 53) + 1, 64), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_uint(p, "cmax", UINT64_MAX, 64), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_int(p, "dmin", INT64_MIN, 64), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_int(p, "eneg", -(INT64_C(1) << 53), 64), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_int(p, "fsmall", -5, 8), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_double(p, "gnan", NAN), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_double(p, "hfrac", 0.1), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_data(p, "idata", "\x00\xff\x10", 3), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_string(p, "jstr", "q\"\\\n\x01é"), TETHER_SUCCESS);
        assert_int_equal(tether_value_new_array(&arr), TETHER_SUCCESS);
        assert_int_equal(tether_value_new_dict(&inner), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_bool(inner, "x", true), TETHER_SUCCESS);
        assert_int_equal(tether_value_array_append(arr, inner), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set(p, "knest", arr), TETHER_SUCCESS);
        tether_value_unref(inner);
        tether_value_unref(arr);

        reg_node *root = calloc(1, sizeof(*root)), *kid = calloc(1, sizeof(*kid));
        assert_non_null(root);
        assert_non_null(kid);
        root->info = info(0x100000100, 0, "TetherRegistryRoot", "Root", "", "TetherService:/", "",
                          TETHER_ENTRY_REGISTERED | TETHER_ENTRY_ACTIVE);
        kid->info = info(UINT64_MAX, 0x100000100, "K", "Kid", "loc", "TetherService:/Kid@loc", "org.k",
                         TETHER_ENTRY_INACTIVE | TETHER_ENTRY_MATCHED);
        kid->props = p;
        kid->child_count = 3; /* none fetched */
        root->kids = calloc(1, sizeof(*root->kids));
        assert_non_null(root->kids);
        root->kids[0] = kid;
        root->n_kids = 1;
        root->child_count = 1;

        char *s = json_of(&root, 1);
        assert_string_equal(
                s, "{\"schema\":1,\"plane\":\"TetherService\",\"entries\":["
                   "{\"id\":\"0x100000100\",\"parent\":null,\"class\":\"TetherRegistryRoot\",\"name\":\"Root\","
                   "\"location\":\"\",\"path\":\"TetherService:/\",\"state\":{\"registered\":true,\"matched\":false,"
                   "\"active\":true,\"inactive\":false},\"busy\":0,\"openCount\":2,\"driver\":null,"
                   "\"properties\":{},\"propertyTypes\":{},\"childCount\":1,\"children\":["
                   "{\"id\":\"0xffffffffffffffff\",\"parent\":\"0x100000100\",\"class\":\"K\",\"name\":\"Kid\","
                   "\"location\":\"loc\",\"path\":\"TetherService:/Kid@loc\",\"state\":{\"registered\":false,"
                   "\"matched\":true,\"active\":false,\"inactive\":true},\"busy\":0,\"openCount\":2,"
                   "\"driver\":\"org.k\",\"properties\":{\"a53\":9007199254740992,\"b53+1\":\"9007199254740993\","
                   "\"cmax\":\"18446744073709551615\",\"dmin\":\"-9223372036854775808\",\"eneg\":-9007199254740992,"
                   "\"fsmall\":-5,\"gnan\":null,\"hfrac\":0.1,\"idata\":\"00ff10\","
                   "\"jstr\":\"q\\\"\\\\\\u000a\\u0001é\",\"knest\":[{\"x\":true}]},"
                   "\"propertyTypes\":{\"a53\":\"uint64\",\"b53+1\":\"uint64\",\"cmax\":\"uint64\","
                   "\"dmin\":\"int64\",\"eneg\":\"int64\",\"fsmall\":\"int8\",\"gnan\":\"double\","
                   "\"hfrac\":\"double\",\"idata\":\"data\",\"jstr\":\"string\",\"knest\":\"array\"},"
                   "\"childCount\":3,\"children\":[]}]}]}\n");
        free(s);

        /* No roots: an empty list, still a document. */
        s = json_of(NULL, 0);
        assert_string_equal(s, "{\"schema\":1,\"plane\":\"TetherService\",\"entries\":[]}\n");
        free(s);
        reg_node_free(root);
}

static void hex_text(void **state)
{
        tether_value *d = NULL;
        char *s = NULL;
        assert_int_equal(tether_value_new_dict(&d), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_int(d, "min", INT64_MIN, 64), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_int(d, "neg", -128, 8), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_uint(d, "u", 9600, 32), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_string(d, "s", "12"), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_double(d, "x", 1.5), TETHER_SUCCESS);
        assert_int_equal(reg_value_text(d, true, &s), TETHER_SUCCESS);
        assert_string_equal(s, "{\"min\"=-0x8000000000000000,\"neg\"=-0x80,\"s\"=\"12\",\"u\"=0x2580,\"x\"=1.5}");
        free(s);
        /* Without hex it is the library's ioreg text. */
        assert_int_equal(reg_value_text(d, false, &s), TETHER_SUCCESS);
        assert_string_equal(s, "{\"min\"=-9223372036854775808,\"neg\"=-128,\"s\"=\"12\",\"u\"=9600,\"x\"=1.5}");
        free(s);
        tether_value_unref(d);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(json_values_and_entries),
                cmocka_unit_test(hex_text),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
