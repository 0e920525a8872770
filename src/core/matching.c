/* SPDX-License-Identifier: MIT */
#include "core/matching.h"

#include <string.h>

#define KEY_CLASS    "IOProviderClass"
#define KEY_NAME     "IONameMatch"
#define KEY_PROPS    "IOPropertyMatch"
#define KEY_PARENT   "IOParentMatch"
#define KEY_ID       "IORegistryEntryID"
#define KEY_SCORE    "IOProbeScore"
#define KEY_CATEGORY "IOMatchCategory"

static bool is_type(const tether_value *v, tether_value_type t)
{
        return tether_value_get_type(v) == t;
}

static bool is_integer(const tether_value *v)
{
        return is_type(v, TETHER_TYPE_INT) || is_type(v, TETHER_TYPE_UINT);
}

static tether_ret_t validate(const tether_value *dict, unsigned depth)
{
        if (!dict || !is_type(dict, TETHER_TYPE_DICT) || depth > TETHER_VALUE_MAX_DEPTH)
                return TETHER_ERR_BAD_ARGUMENT;
        tether_value *v = NULL;
        if (tether_value_dict_get(dict, KEY_CLASS, &v) == TETHER_SUCCESS && !is_type(v, TETHER_TYPE_STRING))
                return TETHER_ERR_BAD_ARGUMENT;
        if (tether_value_dict_get(dict, KEY_CATEGORY, &v) == TETHER_SUCCESS && !is_type(v, TETHER_TYPE_STRING))
                return TETHER_ERR_BAD_ARGUMENT;
        if (tether_value_dict_get(dict, KEY_NAME, &v) == TETHER_SUCCESS) {
                if (is_type(v, TETHER_TYPE_ARRAY)) {
                        for (size_t i = 0; i < tether_value_count(v); i++) {
                                tether_value *n = NULL;
                                tether_value_array_get(v, i, &n);
                                if (!is_type(n, TETHER_TYPE_STRING))
                                        return TETHER_ERR_BAD_ARGUMENT;
                        }
                } else if (!is_type(v, TETHER_TYPE_STRING)) {
                        return TETHER_ERR_BAD_ARGUMENT;
                }
        }
        if (tether_value_dict_get(dict, KEY_PROPS, &v) == TETHER_SUCCESS && !is_type(v, TETHER_TYPE_DICT))
                return TETHER_ERR_BAD_ARGUMENT;
        if (tether_value_dict_get(dict, KEY_ID, &v) == TETHER_SUCCESS && !is_integer(v))
                return TETHER_ERR_BAD_ARGUMENT;
        if (tether_value_dict_get(dict, KEY_SCORE, &v) == TETHER_SUCCESS && !is_integer(v))
                return TETHER_ERR_BAD_ARGUMENT;
        if (tether_value_dict_get(dict, KEY_PARENT, &v) == TETHER_SUCCESS)
                return validate(v, depth + 1);
        return TETHER_SUCCESS;
}

tether_ret_t matching_validate(const tether_value *dict)
{
        return validate(dict, 0);
}

static bool string_is(const tether_value *v, const char *s)
{
        const char *str = NULL;
        return s && tether_value_get_string(v, &str) == TETHER_SUCCESS && !strcmp(str, s);
}

static bool name_matches(const tether_value *v, const char *name)
{
        if (!is_type(v, TETHER_TYPE_ARRAY))
                return string_is(v, name);
        for (size_t i = 0; i < tether_value_count(v); i++) {
                tether_value *n = NULL;
                if (tether_value_array_get(v, i, &n) == TETHER_SUCCESS && string_is(n, name))
                        return true;
        }
        return false;
}

static bool props_match(const tether_value *want, const tether_value *have)
{
        for (size_t i = 0; i < tether_value_count(want); i++) {
                const char *key = NULL;
                tether_value *w = NULL, *h = NULL;
                tether_value_dict_entry(want, i, &key, &w);
                if (!have || tether_value_dict_get(have, key, &h) != TETHER_SUCCESS || !tether_value_equal(w, h))
                        return false;
        }
        return true;
}

bool matching_match(const tether_value *dict, const void *entry, const matching_entry_view *view)
{
        if (!dict || !entry || !view)
                return false;
        tether_value *v = NULL;
        if (tether_value_dict_get(dict, KEY_CLASS, &v) == TETHER_SUCCESS && !string_is(v, view->class_name(entry)))
                return false;
        if (tether_value_dict_get(dict, KEY_NAME, &v) == TETHER_SUCCESS && !name_matches(v, view->name(entry)))
                return false;
        if (tether_value_dict_get(dict, KEY_ID, &v) == TETHER_SUCCESS) {
                uint64_t id = 0;
                if (tether_value_get_uint(v, &id) != TETHER_SUCCESS || id != view->id(entry))
                        return false;
        }
        if (tether_value_dict_get(dict, KEY_PROPS, &v) == TETHER_SUCCESS && !props_match(v, view->properties(entry)))
                return false;
        if (tether_value_dict_get(dict, KEY_PARENT, &v) == TETHER_SUCCESS) {
                const void *parent = view->parent(entry);
                if (!parent || !matching_match(v, parent, view))
                        return false;
        }
        return true;
}

int64_t matching_probe_score(const tether_value *dict)
{
        tether_value *v = NULL;
        int64_t score = 0;
        if (tether_value_dict_get(dict, KEY_SCORE, &v) == TETHER_SUCCESS)
                tether_value_get_int(v, &score);
        return score;
}
