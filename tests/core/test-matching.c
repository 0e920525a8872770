/* SPDX-License-Identifier: MIT */
/* Matching dictionaries against a tiny in-test registry. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/matching.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the registry: root <- bus <- dev ---- */

typedef struct node {
        const char *class_name;
        const char *name;
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

static node root = { "IORoot", "Root", 1, NULL, NULL };
static node bus = { "UsbBus", "bus0", 2, NULL, &root };
static node dev = { "ScopeNub", "DSO-X 2002A", 0x100000003ull, NULL, &bus };

static int setup(void **state)
{
        assert_int_equal(tether_value_new_dict(&dev.props), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_uint(dev.props, "idVendor", 0x0957, 16), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_uint(dev.props, "idProduct", 0x1799, 16), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_uint(dev.props, "Channels", 5, 8), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_string(dev.props, "Serial", "MY57235663"), TETHER_SUCCESS);
        assert_int_equal(tether_value_new_dict(&bus.props), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_int(bus.props, "Speed", 480, 32), TETHER_SUCCESS);
        return 0;
}

static int teardown(void **state)
{
        dev.props = tether_value_unref(dev.props);
        bus.props = tether_value_unref(bus.props);
        return 0;
}

/* ---- building dictionaries ---- */

static tether_value *new_dict(void)
{
        tether_value *d = NULL;
        assert_int_equal(tether_value_new_dict(&d), TETHER_SUCCESS);
        return d;
}

static tether_value *new_string(const char *s)
{
        tether_value *v = NULL;
        assert_int_equal(tether_value_new_string(s, &v), TETHER_SUCCESS);
        return v;
}

/* Takes over the caller's reference to item. */
static void put(tether_value *d, const char *key, tether_value *item)
{
        assert_int_equal(tether_value_dict_set(d, key, item), TETHER_SUCCESS);
        tether_value_unref(item);
}

static void append(tether_value *array, tether_value *item)
{
        assert_int_equal(tether_value_array_append(array, item), TETHER_SUCCESS);
        tether_value_unref(item);
}

static tether_value *dict_with_string(const char *key, const char *s)
{
        tether_value *d = new_dict();
        assert_int_equal(tether_value_dict_set_string(d, key, s), TETHER_SUCCESS);
        return d;
}

/* Validates, matches, and drops d. */
static bool match(tether_value *d, const node *n)
{
        assert_int_equal(matching_validate(d), TETHER_SUCCESS);
        bool m = matching_match(d, n, &view);
        tether_value_unref(d);
        return m;
}

static tether_ret_t validate(tether_value *d)
{
        tether_ret_t r = matching_validate(d);
        tether_value_unref(d);
        return r;
}

/* ---- IOProviderClass ---- */

static void provider_class_matches(void **state)
{
        assert_true(match(dict_with_string("IOProviderClass", "ScopeNub"), &dev));
        assert_true(match(dict_with_string("IOProviderClass", "UsbBus"), &bus));
}

static void provider_class_mismatch(void **state)
{
        assert_false(match(dict_with_string("IOProviderClass", "ScopeNub"), &bus));
        assert_false(match(dict_with_string("IOProviderClass", "Scope"), &dev));      /* no prefixes */
        assert_false(match(dict_with_string("IOProviderClass", "scopenub"), &dev));   /* case matters */
        assert_false(match(dict_with_string("IOProviderClass", "ScopeNubX"), &dev));
}

static void empty_dict_matches_everything(void **state)
{
        assert_true(match(new_dict(), &root));
        assert_true(match(new_dict(), &dev));
}

/* ---- IONameMatch ---- */

static void name_match_string(void **state)
{
        assert_true(match(dict_with_string("IONameMatch", "bus0"), &bus));
        assert_false(match(dict_with_string("IONameMatch", "bus0"), &dev));
        /* The name, not the class. */
        assert_false(match(dict_with_string("IONameMatch", "UsbBus"), &bus));
}

static tether_value *names(const char *const *list, size_t n)
{
        tether_value *a = NULL;
        assert_int_equal(tether_value_new_array(&a), TETHER_SUCCESS);
        for (size_t i = 0; i < n; i++)
                append(a, new_string(list[i]));
        tether_value *d = new_dict();
        put(d, "IONameMatch", a);
        return d;
}

static void name_match_array(void **state)
{
        static const char *const list[] = { "nope", "DSO-X 2002A", "bus0" };
        assert_true(match(names(list, 3), &dev));
        assert_true(match(names(list, 3), &bus));
        assert_false(match(names(list, 3), &root));
        assert_false(match(names(list, 1), &dev));
        /* An empty list names nothing. */
        assert_false(match(names(list, 0), &dev));
}

/* ---- IOPropertyMatch ---- */

static tether_value *prop_match(tether_value *props)
{
        tether_value *d = new_dict();
        put(d, "IOPropertyMatch", props);
        return d;
}

static void property_match_all_keys(void **state)
{
        tether_value *p = new_dict();
        tether_value_dict_set_uint(p, "idVendor", 0x0957, 16);
        tether_value_dict_set_uint(p, "idProduct", 0x1799, 16);
        tether_value_dict_set_string(p, "Serial", "MY57235663");
        assert_true(match(prop_match(p), &dev));

        p = new_dict();
        tether_value_dict_set_uint(p, "idVendor", 0x0957, 16);
        tether_value_dict_set_uint(p, "idProduct", 0x179a, 16); /* one value differs */
        assert_false(match(prop_match(p), &dev));

        p = new_dict();
        tether_value_dict_set_uint(p, "idVendor", 0x0957, 16);
        tether_value_dict_set_string(p, "Missing", "x"); /* one key is absent */
        assert_false(match(prop_match(p), &dev));
}

static void property_match_type_and_width(void **state)
{
        /* The entry has Channels = 5 as an 8-bit uint. Numbers compare by
         * value, as OSNumber::isEqualTo does: a manifest's JSON number has
         * no width and must still match. */
        tether_value *p = new_dict();
        tether_value_dict_set_uint(p, "Channels", 5, 8);
        assert_true(match(prop_match(p), &dev));

        p = new_dict();
        tether_value_dict_set_uint(p, "Channels", 5, 64); /* same number, other width */
        assert_true(match(prop_match(p), &dev));

        p = new_dict();
        tether_value_dict_set_int(p, "Channels", 5, 8); /* same number, signed */
        assert_true(match(prop_match(p), &dev));

        p = new_dict();
        tether_value_dict_set_int(p, "Channels", -5, 64); /* another number */
        assert_false(match(prop_match(p), &dev));

        p = new_dict();
        tether_value_dict_set_uint(p, "Channels", 5 + 256, 64); /* not cut to the entry's width */
        assert_false(match(prop_match(p), &dev));

        p = new_dict();
        tether_value_dict_set_double(p, "Channels", 5.0); /* a double is not an integer */
        assert_false(match(prop_match(p), &dev));

        p = new_dict();
        tether_value_dict_set_string(p, "Channels", "5");
        assert_false(match(prop_match(p), &dev));
}

static void property_match_entry_without_properties(void **state)
{
        tether_value *p = new_dict();
        tether_value_dict_set_string(p, "Serial", "x");
        assert_false(match(prop_match(p), &root));
        /* Asking for no properties asks for nothing. */
        assert_true(match(prop_match(new_dict()), &root));
}

/* ---- IOParentMatch ---- */

static void parent_match(void **state)
{
        tether_value *d = new_dict();
        put(d, "IOParentMatch", dict_with_string("IOProviderClass", "UsbBus"));
        tether_value *d2 = NULL;
        assert_int_equal(tether_value_copy(d, &d2), TETHER_SUCCESS);
        assert_true(match(d, &dev));
        assert_false(match(d2, &bus)); /* bus's parent is the root */
}

static void parent_match_recursive(void **state)
{
        /* dev whose parent is a UsbBus whose parent is the IORoot */
        tether_value *pd = dict_with_string("IOProviderClass", "UsbBus");
        put(pd, "IOParentMatch", dict_with_string("IOProviderClass", "IORoot"));
        tether_value *d = new_dict();
        put(d, "IOParentMatch", pd);
        assert_true(match(d, &dev));

        /* ... and one whose grandparent is wrong */
        pd = dict_with_string("IOProviderClass", "UsbBus");
        put(pd, "IOParentMatch", dict_with_string("IOProviderClass", "UsbBus"));
        d = new_dict();
        put(d, "IOParentMatch", pd);
        assert_false(match(d, &dev));

        /* The parent's own keys are all checked, properties too. */
        pd = dict_with_string("IOProviderClass", "UsbBus");
        tether_value *p = new_dict();
        tether_value_dict_set_int(p, "Speed", 12, 32);
        put(pd, "IOPropertyMatch", p);
        d = new_dict();
        put(d, "IOParentMatch", pd);
        assert_false(match(d, &dev));
}

static void parent_match_root_has_none(void **state)
{
        tether_value *d = new_dict();
        put(d, "IOParentMatch", new_dict()); /* even an empty one needs a parent */
        assert_false(match(d, &root));
        d = new_dict();
        put(d, "IOParentMatch", new_dict());
        assert_true(match(d, &bus));
}

/* A chain of `levels` IOParentMatch dicts, built top-down: a builder only
 * checks an inserted item's own depth, so this can grow past what the
 * decoder would accept, as a hostile in-process dictionary could. */
static tether_value *parent_chain(unsigned levels)
{
        tether_value *top = new_dict(), *cur = top;
        for (unsigned i = 0; i < levels; i++) {
                tether_value *next = new_dict();
                assert_int_equal(tether_value_dict_set(cur, "IOParentMatch", next), TETHER_SUCCESS);
                tether_value_unref(next); /* cur holds it */
                cur = next;
        }
        return top;
}

static void parent_match_depth_bound(void **state)
{
        enum { DEEP = 100 };
        static node chain[DEEP];
        for (unsigned i = 0; i < DEEP; i++)
                chain[i] = (node){ "Deep", "deep", 1000 + i, NULL, i ? &chain[i - 1] : NULL };
        const node *leaf = &chain[DEEP - 1];

        tether_value *d = parent_chain(TETHER_VALUE_MAX_DEPTH);
        assert_int_equal(matching_validate(d), TETHER_SUCCESS);
        assert_true(matching_match(d, leaf, &view));
        tether_value_unref(d);

        /* One level more is refused, and does not match even unvalidated. */
        d = parent_chain(TETHER_VALUE_MAX_DEPTH + 1);
        assert_int_equal(matching_validate(d), TETHER_ERR_BAD_ARGUMENT);
        assert_false(matching_match(d, leaf, &view));
        tether_value_unref(d);

        d = parent_chain(DEEP - 1);
        assert_int_equal(matching_validate(d), TETHER_ERR_BAD_ARGUMENT);
        assert_false(matching_match(d, leaf, &view));
        tether_value_unref(d);
}

/* ---- IORegistryEntryID ---- */

static void registry_entry_id(void **state)
{
        tether_value *d = new_dict();
        tether_value_dict_set_uint(d, "IORegistryEntryID", 0x100000003ull, 64);
        assert_true(match(d, &dev));
        d = new_dict();
        tether_value_dict_set_uint(d, "IORegistryEntryID", 3, 64); /* the low half is not the id */
        assert_false(match(d, &dev));
        d = new_dict();
        tether_value_dict_set_int(d, "IORegistryEntryID", 2, 32);
        assert_true(match(d, &bus));
        d = new_dict();
        tether_value_dict_set_uint(d, "IORegistryEntryID", 2, 8);
        assert_true(match(d, &bus)); /* an id is a number: width does not matter */
        d = new_dict();
        tether_value_dict_set_int(d, "IORegistryEntryID", -2, 64);
        assert_false(match(d, &bus));
}

/* ---- several keys, unknown keys ---- */

static void several_keys_all_must_match(void **state)
{
        tether_value *p = new_dict();
        tether_value_dict_set_uint(p, "idVendor", 0x0957, 16);
        tether_value *d = dict_with_string("IOProviderClass", "ScopeNub");
        tether_value_dict_set_string(d, "IONameMatch", "DSO-X 2002A");
        tether_value_dict_set_uint(d, "IORegistryEntryID", 0x100000003ull, 64);
        put(d, "IOPropertyMatch", p);
        put(d, "IOParentMatch", dict_with_string("IONameMatch", "bus0"));

        /* Each key, made wrong alone, fails the whole match. */
        static const char *const keys[] = { "IOProviderClass", "IONameMatch", "IORegistryEntryID",
                                            "IOPropertyMatch", "IOParentMatch" };
        for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
                tether_value *bad = NULL;
                assert_int_equal(tether_value_copy(d, &bad), TETHER_SUCCESS);
                if (i == 2) {
                        tether_value_dict_set_uint(bad, keys[i], 999, 64);
                } else if (i == 3) {
                        tether_value *bp = new_dict();
                        tether_value_dict_set_uint(bp, "idVendor", 0x0958, 16);
                        put(bad, keys[i], bp);
                } else if (i == 4) {
                        put(bad, keys[i], dict_with_string("IONameMatch", "bus1"));
                } else {
                        tether_value_dict_set_string(bad, keys[i], "wrong");
                }
                assert_false(match(bad, &dev));
        }
        assert_true(match(d, &dev));
}

static void unknown_keys_ignored(void **state)
{
        tether_value *d = dict_with_string("IOProviderClass", "ScopeNub");
        tether_value_dict_set_string(d, "IOClass", "SomeDriver");
        tether_value_dict_set_string(d, "CFBundleIdentifier", "com.example.driver");
        tether_value_dict_set_uint(d, "idVendor", 0x1234, 16); /* not IOPropertyMatch: ignored */
        tether_value_dict_set_string(d, "IOMatchCategory", "Other");
        tether_value_dict_set_int(d, "IOProbeScore", 1000, 32);
        tether_value *arr = NULL;
        tether_value_new_array(&arr);
        put(d, "IOSomethingNew", arr);
        assert_true(match(d, &dev));
}

static void match_refuses_non_dict(void **state)
{
        /* A non-dict has no keys, so would "match everything" if trusted. */
        tether_value *s = new_string("ScopeNub");
        assert_false(matching_match(s, &dev, &view));
        tether_value_unref(s);
        assert_false(matching_match(NULL, &dev, &view));
        tether_value *d = new_dict();
        assert_false(matching_match(d, NULL, &view));
        assert_false(matching_match(d, &dev, NULL));
        tether_value_unref(d);
}

/* ---- IOProbeScore ---- */

static void probe_score(void **state)
{
        tether_value *d = new_dict();
        assert_int_equal(matching_probe_score(d), 0);
        tether_value_dict_set_int(d, "IOProbeScore", 5000, 32);
        assert_int_equal(matching_probe_score(d), 5000);
        tether_value_dict_set_int(d, "IOProbeScore", -20, 8);
        assert_int_equal(matching_probe_score(d), -20);
        tether_value_dict_set_uint(d, "IOProbeScore", 70000, 32);
        assert_int_equal(matching_probe_score(d), 70000);
        tether_value_unref(d);
        assert_int_equal(matching_probe_score(NULL), 0);
}

/* ---- IOMatchCategory ---- */

static void category_of_a_personality(void **state)
{
        tether_value *d = new_dict();
        assert_string_equal(matching_category(d), "IODefaultMatchCategory");
        assert_string_equal(matching_category(NULL), MATCHING_DEFAULT_CATEGORY);
        /* Mistyped (a dict that never passed validation): no category of its own. */
        tether_value_dict_set_int(d, "IOMatchCategory", 5, 32);
        assert_string_equal(matching_category(d), MATCHING_DEFAULT_CATEGORY);
        tether_value_dict_set_string(d, "IOMatchCategory", "org_tether_Logger");
        assert_string_equal(matching_category(d), "org_tether_Logger");
        /* A category plays no part in whether an entry matches. */
        tether_value_dict_set_string(d, "IOProviderClass", "ScopeNub");
        assert_true(matching_match(d, &dev, &view));
        tether_value_unref(d);
}

/* Groups of order[] as strings "i i i|i i|..." for short assertions. */
static void grouped(const char *const *cats, size_t n, const char *want)
{
        size_t order[16], first[16], groups = 99;
        assert_true(n <= 16);
        assert_int_equal(matching_group_by_category(cats, n, order, first, &groups), TETHER_SUCCESS);
        char got[128] = "";
        size_t len = 0;
        for (size_t g = 0; g < groups; g++) {
                size_t end = g + 1 < groups ? first[g + 1] : n;
                for (size_t k = first[g]; k < end; k++)
                        len += (size_t)snprintf(got + len, sizeof(got) - len, "%s%zu", k == first[g] ? (g ? "|" : "") : " ",
                                                order[k]);
        }
        assert_string_equal(got, want);
}

static void categories_group_candidates(void **state)
{
        const char *D = MATCHING_DEFAULT_CATEGORY;
        /* One category: the list as it was. */
        grouped((const char *const[]){ D, D, D }, 3, "0 1 2");
        /* Each category where its best candidate was, best first within it. */
        grouped((const char *const[]){ "b", D, "a", "b", D, "a", "c" }, 7, "0 3|1 4|2 5|6");
        grouped((const char *const[]){ D, "x", "y", "z" }, 4, "0|1|2|3");
        /* Names are compared whole: a prefix is another category. */
        grouped((const char *const[]){ "ab", "a", "abc", "a" }, 4, "0|1 3|2");
        size_t order[1], first[1], groups = 99;
        assert_int_equal(matching_group_by_category(NULL, 0, NULL, NULL, &groups), TETHER_SUCCESS);
        assert_int_equal(groups, 0);
        assert_int_equal(matching_group_by_category((const char *const[]){ NULL }, 1, order, first, &groups),
                         TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(matching_group_by_category((const char *const[]){ "a" }, 1, NULL, first, &groups),
                         TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(matching_group_by_category((const char *const[]){ "a" }, 1, order, first, NULL),
                         TETHER_ERR_BAD_ARGUMENT);
}

/* Every personality loaded may match one nub: grouping many is quick and
 * keeps each category's order. */
static void categories_group_many(void **state)
{
        enum { N = 20000, CATS = 97 };
        const char **cats = calloc(N, sizeof(*cats));
        size_t *order = calloc(N, sizeof(*order)), *first = calloc(N, sizeof(*first)), groups = 0;
        static char names[CATS][8];
        assert_non_null(cats);
        assert_non_null(order);
        assert_non_null(first);
        for (int c = 0; c < CATS; c++)
                snprintf(names[c], sizeof(names[c]), "c%d", c);
        for (size_t i = 0; i < N; i++)
                cats[i] = names[(i * 31) % CATS];
        assert_int_equal(matching_group_by_category(cats, N, order, first, &groups), TETHER_SUCCESS);
        assert_int_equal(groups, CATS);
        for (size_t g = 0; g < groups; g++) {
                size_t end = g + 1 < groups ? first[g + 1] : N;
                assert_true(g == 0 || order[first[g]] > order[first[g - 1]]);
                for (size_t k = first[g]; k < end; k++) {
                        assert_string_equal(cats[order[k]], cats[order[first[g]]]);
                        assert_true(k == first[g] || order[k] > order[k - 1]);
                }
        }
        free(cats);
        free(order);
        free(first);
}

/* ---- matching_validate ---- */

static void validate_accepts_well_formed(void **state)
{
        static const char *const list[] = { "a", "b" };
        tether_value *d = names(list, 2);
        tether_value_dict_set_string(d, "IOProviderClass", "ScopeNub");
        tether_value_dict_set_uint(d, "IORegistryEntryID", 7, 64);
        tether_value_dict_set_int(d, "IOProbeScore", -5, 32);
        tether_value_dict_set_string(d, "IOMatchCategory", "Cat");
        tether_value_dict_set_bool(d, "IOClass", true); /* unknown keys: any type */
        put(d, "IOPropertyMatch", new_dict());
        put(d, "IOParentMatch", dict_with_string("IOProviderClass", "UsbBus"));
        assert_int_equal(validate(d), TETHER_SUCCESS);
        assert_int_equal(validate(new_dict()), TETHER_SUCCESS);
}

static void validate_refuses_non_dict(void **state)
{
        assert_int_equal(matching_validate(NULL), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(validate(new_string("IOProviderClass")), TETHER_ERR_BAD_ARGUMENT);
        tether_value *v = NULL;
        assert_int_equal(tether_value_new_array(&v), TETHER_SUCCESS);
        assert_int_equal(validate(v), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_value_new_uint(1, 32, &v), TETHER_SUCCESS);
        assert_int_equal(validate(v), TETHER_ERR_BAD_ARGUMENT);
}

static void validate_refuses_mistyped_keys(void **state)
{
        tether_value *d = new_dict();
        tether_value_dict_set_int(d, "IOProviderClass", 5, 32);
        assert_int_equal(validate(d), TETHER_ERR_BAD_ARGUMENT);

        d = new_dict();
        tether_value_dict_set_int(d, "IONameMatch", 5, 32);
        assert_int_equal(validate(d), TETHER_ERR_BAD_ARGUMENT);

        d = new_dict();
        tether_value *arr = NULL, *n = NULL;
        tether_value_new_array(&arr);
        append(arr, new_string("ok"));
        tether_value_new_int(1, 32, &n);
        append(arr, n);
        put(d, "IONameMatch", arr);
        assert_int_equal(validate(d), TETHER_ERR_BAD_ARGUMENT);

        assert_int_equal(validate(dict_with_string("IOPropertyMatch", "not a dict")), TETHER_ERR_BAD_ARGUMENT);
        d = new_dict();
        tether_value_new_array(&arr);
        put(d, "IOPropertyMatch", arr);
        assert_int_equal(validate(d), TETHER_ERR_BAD_ARGUMENT);

        assert_int_equal(validate(dict_with_string("IOParentMatch", "UsbBus")), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(validate(dict_with_string("IORegistryEntryID", "3")), TETHER_ERR_BAD_ARGUMENT);
        d = new_dict();
        tether_value_dict_set_double(d, "IORegistryEntryID", 3.0);
        assert_int_equal(validate(d), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(validate(dict_with_string("IOProbeScore", "100")), TETHER_ERR_BAD_ARGUMENT);
        d = new_dict();
        tether_value_dict_set_uint(d, "IOProbeScore", UINT64_MAX, 64); /* does not fit an int64 */
        assert_int_equal(validate(d), TETHER_ERR_BAD_ARGUMENT);
        d = new_dict();
        tether_value_dict_set_int(d, "IOMatchCategory", 1, 32);
        assert_int_equal(validate(d), TETHER_ERR_BAD_ARGUMENT);
}

static void validate_checks_nested_parent(void **state)
{
        tether_value *pd = new_dict();
        tether_value_dict_set_bool(pd, "IOProviderClass", true);
        tether_value *d = new_dict();
        put(d, "IOParentMatch", pd);
        assert_int_equal(validate(d), TETHER_ERR_BAD_ARGUMENT);

        /* two levels down */
        tether_value *gpd = new_dict();
        tether_value_dict_set_int(gpd, "IONameMatch", 1, 32);
        pd = new_dict();
        put(pd, "IOParentMatch", gpd);
        d = new_dict();
        put(d, "IOParentMatch", pd);
        assert_int_equal(validate(d), TETHER_ERR_BAD_ARGUMENT);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(provider_class_matches),
                cmocka_unit_test(provider_class_mismatch),
                cmocka_unit_test(empty_dict_matches_everything),
                cmocka_unit_test(name_match_string),
                cmocka_unit_test(name_match_array),
                cmocka_unit_test(property_match_all_keys),
                cmocka_unit_test(property_match_type_and_width),
                cmocka_unit_test(property_match_entry_without_properties),
                cmocka_unit_test(parent_match),
                cmocka_unit_test(parent_match_recursive),
                cmocka_unit_test(parent_match_root_has_none),
                cmocka_unit_test(parent_match_depth_bound),
                cmocka_unit_test(registry_entry_id),
                cmocka_unit_test(several_keys_all_must_match),
                cmocka_unit_test(unknown_keys_ignored),
                cmocka_unit_test(match_refuses_non_dict),
                cmocka_unit_test(probe_score),
                cmocka_unit_test(category_of_a_personality),
                cmocka_unit_test(categories_group_candidates),
                cmocka_unit_test(categories_group_many),
                cmocka_unit_test(validate_accepts_well_formed),
                cmocka_unit_test(validate_refuses_non_dict),
                cmocka_unit_test(validate_refuses_mistyped_keys),
                cmocka_unit_test(validate_checks_nested_parent),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
