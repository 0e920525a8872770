/* SPDX-License-Identifier: MIT */
#include "core/matching.h"

#include <stdlib.h>
#include <string.h>

#define KEY_CLASS    "IOProviderClass"
#define KEY_NAME     "IONameMatch"
#define KEY_PROPS    "IOPropertyMatch"
#define KEY_PARENT   "IOParentMatch"
#define KEY_ID       "IORegistryEntryID"
#define KEY_SCORE    "IOProbeScore"
#define KEY_CATEGORY "IOMatchCategory"

/* Borrowed member of dict, or NULL when absent (or dict is not a dict). */
static const tether_value *member(const tether_value *dict, const char *key)
{
        tether_value *v = NULL;
        if (tether_value_dict_get(dict, key, &v) != TETHER_SUCCESS)
                return NULL;
        return v;
}

static bool is_type(const tether_value *v, tether_value_type t)
{
        return v && tether_value_get_type(v) == t;
}

static bool is_integer(const tether_value *v)
{
        return is_type(v, TETHER_TYPE_INT) || is_type(v, TETHER_TYPE_UINT);
}

static bool is_string_array(const tether_value *v)
{
        for (size_t i = 0; i < tether_value_count(v); i++) {
                tether_value *item = NULL;
                if (tether_value_array_get(v, i, &item) != TETHER_SUCCESS || !is_type(item, TETHER_TYPE_STRING))
                        return false;
        }
        return true;
}

/* depth counts IOParentMatch levels; the bound keeps a hostile dictionary
 * (one built by hand rather than decoded) from exhausting the stack. */
static tether_ret_t validate(const tether_value *dict, unsigned depth)
{
        if (depth > TETHER_VALUE_MAX_DEPTH || !is_type(dict, TETHER_TYPE_DICT))
                return TETHER_ERR_BAD_ARGUMENT;

        const tether_value *v;
        if ((v = member(dict, KEY_CLASS)) && !is_type(v, TETHER_TYPE_STRING))
                return TETHER_ERR_BAD_ARGUMENT;
        if ((v = member(dict, KEY_NAME)) && !is_type(v, TETHER_TYPE_STRING) &&
            !(is_type(v, TETHER_TYPE_ARRAY) && is_string_array(v)))
                return TETHER_ERR_BAD_ARGUMENT;
        if ((v = member(dict, KEY_PROPS)) && !is_type(v, TETHER_TYPE_DICT))
                return TETHER_ERR_BAD_ARGUMENT;
        if ((v = member(dict, KEY_ID)) && !is_integer(v))
                return TETHER_ERR_BAD_ARGUMENT;
        /* A score that does not fit int64 could not be read back. */
        int64_t score;
        if ((v = member(dict, KEY_SCORE)) && tether_value_get_int(v, &score) != TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT;
        if ((v = member(dict, KEY_CATEGORY)) && !is_type(v, TETHER_TYPE_STRING))
                return TETHER_ERR_BAD_ARGUMENT;
        if ((v = member(dict, KEY_PARENT)))
                return validate(v, depth + 1);
        return TETHER_SUCCESS;
}

tether_ret_t matching_validate(const tether_value *dict)
{
        return validate(dict, 0);
}

static bool string_equals(const tether_value *v, const char *s)
{
        const char *str = NULL;
        return s && tether_value_get_string(v, &str) == TETHER_SUCCESS && !strcmp(str, s);
}

static bool name_matches(const tether_value *want, const char *name)
{
        if (!is_type(want, TETHER_TYPE_ARRAY))
                return string_equals(want, name);
        for (size_t i = 0; i < tether_value_count(want); i++) {
                tether_value *item = NULL;
                if (tether_value_array_get(want, i, &item) == TETHER_SUCCESS && string_equals(item, name))
                        return true;
        }
        return false;
}

/* An integer's value as sign and magnitude, whatever its width. */
static void integer_value(const tether_value *v, bool *negative, uint64_t *magnitude)
{
        int64_t i = 0;
        if (is_type(v, TETHER_TYPE_UINT) && tether_value_get_uint(v, magnitude) == TETHER_SUCCESS) {
                *negative = false;
                return;
        }
        tether_value_get_int(v, &i);
        *negative = i < 0;
        *magnitude = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
}

/*
 * Property matching compares numbers by value, as OSNumber::isEqualTo does:
 * a personality written in a manifest (JSON has no widths) must match a
 * nub's 16-bit idVendor. Everything else compares as tether_value_equal,
 * containers element by element under the same rule.
 */
static bool property_equal(const tether_value *w, const tether_value *h, unsigned depth)
{
        if (depth > TETHER_VALUE_MAX_DEPTH)
                return false;
        if (is_integer(w) && is_integer(h)) {
                bool wn, hn;
                uint64_t wm, hm;
                integer_value(w, &wn, &wm);
                integer_value(h, &hn, &hm);
                return wn == hn && wm == hm;
        }
        size_t n = tether_value_count(w);
        if (is_type(w, TETHER_TYPE_ARRAY) && is_type(h, TETHER_TYPE_ARRAY) && n == tether_value_count(h)) {
                for (size_t i = 0; i < n; i++) {
                        tether_value *a = NULL, *b = NULL;
                        if (tether_value_array_get(w, i, &a) != TETHER_SUCCESS ||
                            tether_value_array_get(h, i, &b) != TETHER_SUCCESS || !property_equal(a, b, depth + 1))
                                return false;
                }
                return true;
        }
        if (is_type(w, TETHER_TYPE_DICT) && is_type(h, TETHER_TYPE_DICT) && n == tether_value_count(h)) {
                for (size_t i = 0; i < n; i++) {
                        const char *key = NULL;
                        tether_value *a = NULL, *b = NULL;
                        if (tether_value_dict_entry(w, i, &key, &a) != TETHER_SUCCESS ||
                            tether_value_dict_get(h, key, &b) != TETHER_SUCCESS || !property_equal(a, b, depth + 1))
                                return false;
                }
                return true;
        }
        return tether_value_equal(w, h);
}

static bool properties_match(const tether_value *want, const tether_value *have)
{
        if (!is_type(want, TETHER_TYPE_DICT))
                return false;
        for (size_t i = 0; i < tether_value_count(want); i++) {
                const char *key = NULL;
                tether_value *w = NULL, *h = NULL;
                if (tether_value_dict_entry(want, i, &key, &w) != TETHER_SUCCESS)
                        return false;
                /* A NULL or non-dict `have` fails the get: no such property. */
                if (tether_value_dict_get(have, key, &h) != TETHER_SUCCESS || !property_equal(w, h, 0))
                        return false;
        }
        return true;
}

static bool id_matches(const tether_value *want, uint64_t id)
{
        uint64_t v;
        /* A negative id is well typed but names no entry. */
        return tether_value_get_uint(want, &v) == TETHER_SUCCESS && v == id;
}

static bool match(const tether_value *dict, const void *entry, const matching_entry_view *view, unsigned depth)
{
        /* Validation should have caught a non-dict, but one that is not a
         * dict has no keys, and "no keys" would match everything. */
        if (depth > TETHER_VALUE_MAX_DEPTH || !is_type(dict, TETHER_TYPE_DICT) || !entry)
                return false;

        const tether_value *v;
        if ((v = member(dict, KEY_CLASS)) && !string_equals(v, view->class_name(entry)))
                return false;
        if ((v = member(dict, KEY_NAME)) && !name_matches(v, view->name(entry)))
                return false;
        if ((v = member(dict, KEY_ID)) && !id_matches(v, view->id(entry)))
                return false;
        if ((v = member(dict, KEY_PROPS)) && !properties_match(v, view->properties(entry)))
                return false;
        if ((v = member(dict, KEY_PARENT)) && !match(v, view->parent(entry), view, depth + 1))
                return false;
        return true;
}

bool matching_match(const tether_value *dict, const void *entry, const matching_entry_view *view)
{
        if (!view || !view->class_name || !view->name || !view->id || !view->properties || !view->parent)
                return false;
        return match(dict, entry, view, 0);
}

int64_t matching_probe_score(const tether_value *dict)
{
        const tether_value *v = member(dict, KEY_SCORE);
        int64_t score = 0;
        if (v && tether_value_get_int(v, &score) != TETHER_SUCCESS)
                score = 0;
        return score;
}

const char *matching_category(const tether_value *dict)
{
        const char *category = NULL;
        if (tether_value_get_string(member(dict, KEY_CATEGORY), &category) != TETHER_SUCCESS)
                category = MATCHING_DEFAULT_CATEGORY;
        return category;
}

typedef struct ranked {
        const char *category;
        size_t index;             /* the candidate's rank: lower is better */
} ranked;

static int by_category_then_rank(const void *a, const void *b)
{
        const ranked *x = a, *y = b;
        int c = strcmp(x->category, y->category);
        if (c)
                return c;
        return (x->index > y->index) - (x->index < y->index);
}

typedef struct run {
        size_t best;              /* the rank of its best candidate */
        size_t at, len;           /* where it lies in the sorted list */
} run;

static int by_best(const void *a, const void *b)
{
        const run *x = a, *y = b;
        return (x->best > y->best) - (x->best < y->best);
}

tether_ret_t matching_group_by_category(const char *const *categories, size_t n, size_t *order, size_t *first,
                                        size_t *ret_groups)
{
        if (!ret_groups || (n && (!categories || !order || !first)))
                return TETHER_ERR_BAD_ARGUMENT;
        *ret_groups = 0;
        if (!n)
                return TETHER_SUCCESS;
        for (size_t i = 0; i < n; i++)
                if (!categories[i])
                        return TETHER_ERR_BAD_ARGUMENT;
        ranked *sorted = calloc(n, sizeof(*sorted));
        run *runs = calloc(n, sizeof(*runs));
        if (!sorted || !runs) {
                free(sorted);
                free(runs);
                return TETHER_ERR_NO_MEMORY;
        }
        for (size_t i = 0; i < n; i++)
                sorted[i] = (ranked){ categories[i], i };
        /* Equal categories side by side, each run best first; then the
         * runs themselves in the order of their best. */
        qsort(sorted, n, sizeof(*sorted), by_category_then_rank);
        size_t groups = 0;
        for (size_t i = 0; i < n; i++) {
                if (i && !strcmp(sorted[i].category, sorted[i - 1].category)) {
                        runs[groups - 1].len++;
                        continue;
                }
                runs[groups++] = (run){ sorted[i].index, i, 1 };
        }
        qsort(runs, groups, sizeof(*runs), by_best);
        size_t at = 0;
        for (size_t g = 0; g < groups; g++) {
                first[g] = at;
                for (size_t k = 0; k < runs[g].len; k++)
                        order[at++] = sorted[runs[g].at + k].index;
        }
        free(sorted);
        free(runs);
        *ret_groups = groups;
        return TETHER_SUCCESS;
}
