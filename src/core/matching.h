/* SPDX-License-Identifier: MIT */
#ifndef TETHER_CORE_MATCHING_H
#define TETHER_CORE_MATCHING_H

/*
 * Matching dictionaries, as I/O Kit's: a pure function of a dictionary and
 * an entry, seen through a small view so it can be tested without a
 * registry. Keys (all present keys must match):
 *   "IOProviderClass"   string: the entry's class name equals it
 *   "IONameMatch"       string or array of strings: the entry's name is one of them
 *   "IOPropertyMatch"   dict: each key exists in the entry's properties with an
 *                       equal value; integers are equal by value whatever their
 *                       width or signedness (OSNumber's rule, and what lets a
 *                       JSON manifest match a 16-bit idVendor), all else as
 *                       tether_value_equal
 *   "IOParentMatch"     dict: the entry's parent matches this dict (recursively)
 *   "IORegistryEntryID" uint or int: the entry's id
 *   "IOProbeScore"      int: ignored for matching; the score of a personality
 *   "IOMatchCategory"   string: ignored for matching; the category a
 *                       personality competes in (matching_category)
 * Any other key is ignored, as passive matching in I/O Kit ignores keys it
 * does not know (personalities carry "IOClass", bundle ids and the like);
 * to match on a property, say so with IOPropertyMatch.
 */

#include <stdbool.h>
#include <stdint.h>
#include <tether/value.h>

typedef struct matching_entry_view {
        const char *(*class_name)(const void *entry);
        const char *(*name)(const void *entry);
        uint64_t (*id)(const void *entry);
        /* Borrowed dict (may be NULL: no properties). */
        const tether_value *(*properties)(const void *entry);
        /* NULL for the root. */
        const void *(*parent)(const void *entry);
} matching_entry_view;

/* TETHER_SUCCESS if dict is a well-formed matching dictionary: a dict whose
 * known keys have the types above (nested IOParentMatch checked too, depth
 * bounded by TETHER_VALUE_MAX_DEPTH); TETHER_ERR_BAD_ARGUMENT otherwise. */
tether_ret_t matching_validate(const tether_value *dict);

/* Whether entry matches dict. dict must have passed matching_validate. */
bool matching_match(const tether_value *dict, const void *entry, const matching_entry_view *view);

/* IOProbeScore of a personality; 0 when absent. */
int64_t matching_probe_score(const tether_value *dict);

/* I/O Kit's name for the category of every personality that names none. */
#define MATCHING_DEFAULT_CATEGORY "IODefaultMatchCategory"

/* IOMatchCategory of a personality, or MATCHING_DEFAULT_CATEGORY when it
 * has none (or dict is not a valid one). Borrowed from dict, or static. */
const char *matching_category(const tether_value *dict);

/*
 * Match categories, as I/O Kit's probeCandidates splits its start list: the
 * drivers that match a nub compete only with those of their own category,
 * and each category gets one driver. Given the categories of n candidates,
 * best first, order[] gets the candidates' indices grouped by category,
 * still best first within each, the categories in the order of their best
 * candidates; first[g] is where category g starts in order[] (it ends where
 * the next starts, or at n); *ret_groups is how many there are. order and
 * first hold n entries each (either may be NULL when n is 0). O(n log n):
 * every loaded personality may be a candidate for one nub.
 * TETHER_ERR_BAD_ARGUMENT for a NULL category, TETHER_ERR_NO_MEMORY.
 */
tether_ret_t matching_group_by_category(const char *const *categories, size_t n, size_t *order, size_t *first,
                                        size_t *ret_groups);

#endif
