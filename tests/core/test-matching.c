/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/matching.h"

/* A tiny registry: root <- bus <- dev. */
typedef struct node {
        const char *class_name, *name;
        uint64_t id;
        tether_value *props;
        const struct node *parent;
} node;

static const char *v_class(const void *e) { return ((const node *)e)->class_name; }
static const char *v_name(const void *e) { return ((const node *)e)->name; }
static uint64_t v_id(const void *e) { return ((const node *)e)->id; }
static const tether_value *v_props(const void *e) { return ((const node *)e)->props; }
static const void *v_parent(const void *e) { return ((const node *)e)->parent; }
static const matching_entry_view view = { v_class, v_name, v_id, v_props, v_parent };

static node root = { "Root", "Root", 1, NULL, NULL };
static node bus = { "UsbBus", "bus0", 2, NULL, &root };
static node dev = { "ScopeNub", "DSO-X 2002A", 3, NULL, &bus };

static int setup(void **state)
{
        tether_value_new_dict(&dev.props);
        tether_value_dict_set_uint(dev.props, "idVendor", 0x0957, 16);
        tether_value_dict_set_uint(dev.props, "idProduct", 0x1799, 16);
        tether_value_dict_set_string(dev.props, "Serial", "MY57235663");
        return 0;
}

static int teardown(void **state)
{
        dev.props = tether_value_unref(dev.props);
        return 0;
}

static tether_value *dict(void)
{
        tether_value *d = NULL;
        assert_int_equal(tether_value_new_dict(&d), TETHER_SUCCESS);
        return d;
}

static bool match(tether_value *d, const node *n)
{
        assert_int_equal(matching_validate(d), TETHER_SUCCESS);
        bool m = matching_match(d, n, &view);
        tether_value_unref(d);
        return m;
}

static void provider_class(void **state)
{
        tether_value *d = dict();
        tether_value_dict_set_string(d, "IOProviderClass", "ScopeNub");
        assert_true(match(d, &dev));
        d = dict();
        tether_value_dict_set_string(d, "IOProviderClass", "ScopeNub");
        assert_false(match(d, &bus));
        /* An empty dictionary matches everything. */
        assert_true(match(dict(), &root));
}

static void name_match_string_and_array(void **state)
{
        tether_value *d = dict();
        tether_value_dict_set_string(d, "IONameMatch", "bus0");
        assert_true(match(d, &bus));
        tether_value *names = NULL, *s = NULL;
        d = dict();
        tether_value_new_array(&names);
        tether_value_new_string("nope", &s);
        tether_value_array_append(names, s);
        tether_value_unref(s);
        tether_value_new_string("DSO-X 2002A", &s);
        tether_value_array_append(names, s);
        tether_value_unref(s);
        tether_value_dict_set(d, "IONameMatch", names);
        tether_value_unref(names);
        tether_value *d2 = NULL;
        tether_value_copy(d, &d2);
        assert_true(match(d, &dev));
        assert_false(match(d2, &bus));
}

static void property_match_type_and_width_matter(void **state)
{
        tether_value *d = dict(), *p = dict();
        tether_value_dict_set_uint(p, "idVendor", 0x0957, 16);
        tether_value_dict_set_uint(p, "idProduct", 0x1799, 16);
        tether_value_dict_set(d, "IOPropertyMatch", p);
        tether_value_unref(p);
        assert_true(match(d, &dev));

        d = dict();
        p = dict();
        tether_value_dict_set_uint(p, "idVendor", 0x0957, 32); /* other width */
        tether_value_dict_set(d, "IOPropertyMatch", p);
        tether_value_unref(p);
        assert_false(match(d, &dev));

        d = dict();
        p = dict();
        tether_value_dict_set_string(p, "Serial", "MY57235663");
        tether_value_dict_set_string(p, "Missing", "x"); /* all keys must match */
        tether_value_dict_set(d, "IOPropertyMatch", p);
        tether_value_unref(p);
        assert_false(match(d, &dev));

        /* An entry with no properties matches no property. */
        d = dict();
        p = dict();
        tether_value_dict_set_string(p, "Serial", "x");
        tether_value_dict_set(d, "IOPropertyMatch", p);
        tether_value_unref(p);
        assert_false(match(d, &bus));
}

static void parent_match_recursive(void **state)
{
        tether_value *d = dict(), *pd = dict(), *gpd = dict();
        tether_value_dict_set_string(gpd, "IOProviderClass", "Root");
        tether_value_dict_set_string(pd, "IOProviderClass", "UsbBus");
        tether_value_dict_set(pd, "IOParentMatch", gpd);
        tether_value_dict_set(d, "IOParentMatch", pd);
        tether_value_unref(pd);
        tether_value_unref(gpd);
        assert_true(match(d, &dev));

        d = dict();
        pd = dict();
        tether_value_dict_set_string(pd, "IOProviderClass", "UsbBus");
        tether_value_dict_set(d, "IOParentMatch", pd);
        tether_value_unref(pd);
        assert_false(match(d, &root)); /* the root has no parent */
}

static void entry_id_and_combined_keys(void **state)
{
        tether_value *d = dict();
        tether_value_dict_set_uint(d, "IORegistryEntryID", 3, 64);
        tether_value_dict_set_string(d, "IOProviderClass", "ScopeNub");
        assert_true(match(d, &dev));
        d = dict();
        tether_value_dict_set_uint(d, "IORegistryEntryID", 3, 64);
        tether_value_dict_set_string(d, "IOProviderClass", "UsbBus"); /* one key fails: no match */
        assert_false(match(d, &dev));
        d = dict();
        tether_value_dict_set_int(d, "IORegistryEntryID", 2, 64);
        assert_true(match(d, &bus));
}

static void unknown_keys_ignored_and_probe_score(void **state)
{
        tether_value *d = dict();
        tether_value_dict_set_string(d, "IOClass", "SomeDriver");
        tether_value_dict_set_string(d, "IOProviderClass", "ScopeNub");
        tether_value_dict_set_int(d, "IOProbeScore", 5000, 32);
        assert_int_equal(matching_probe_score(d), 5000);
        assert_true(match(d, &dev));
        d = dict();
        assert_int_equal(matching_probe_score(d), 0);
        tether_value_unref(d);
}

static void validate_refuses_malformed(void **state)
{
        tether_value *v = NULL, *d;
        tether_value_new_string("x", &v);
        assert_int_equal(matching_validate(v), TETHER_ERR_BAD_ARGUMENT);
        tether_value_unref(v);
        assert_int_equal(matching_validate(NULL), TETHER_ERR_BAD_ARGUMENT);

        d = dict();
        tether_value_dict_set_int(d, "IOProviderClass", 5, 32);
        assert_int_equal(matching_validate(d), TETHER_ERR_BAD_ARGUMENT);
        tether_value_unref(d);

        d = dict();
        tether_value *arr = NULL, *n = NULL;
        tether_value_new_array(&arr);
        tether_value_new_int(1, 32, &n);
        tether_value_array_append(arr, n);
        tether_value_dict_set(d, "IONameMatch", arr);
        assert_int_equal(matching_validate(d), TETHER_ERR_BAD_ARGUMENT);
        tether_value_unref(n);
        tether_value_unref(arr);
        tether_value_unref(d);

        d = dict();
        tether_value_dict_set_string(d, "IOPropertyMatch", "not a dict");
        assert_int_equal(matching_validate(d), TETHER_ERR_BAD_ARGUMENT);
        tether_value_unref(d);

        d = dict();
        tether_value_dict_set_string(d, "IORegistryEntryID", "3");
        assert_int_equal(matching_validate(d), TETHER_ERR_BAD_ARGUMENT);
        tether_value_unref(d);

        /* A bad nested parent dictionary is caught too. */
        d = dict();
        tether_value *pd = dict();
        tether_value_dict_set_bool(pd, "IOProviderClass", true);
        tether_value_dict_set(d, "IOParentMatch", pd);
        assert_int_equal(matching_validate(d), TETHER_ERR_BAD_ARGUMENT);
        tether_value_unref(pd);
        tether_value_unref(d);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(provider_class),
                cmocka_unit_test(name_match_string_and_array),
                cmocka_unit_test(property_match_type_and_width_matter),
                cmocka_unit_test(parent_match_recursive),
                cmocka_unit_test(entry_id_and_combined_keys),
                cmocka_unit_test(unknown_keys_ignored_and_probe_score),
                cmocka_unit_test(validate_refuses_malformed),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
