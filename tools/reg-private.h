/* SPDX-License-Identifier: MIT */
#ifndef TETHER_TOOLS_REG_PRIVATE_H
#define TETHER_TOOLS_REG_PRIVATE_H

/*
 * What the parts of `tether reg` share: the session and its errors, entry
 * arguments, a snapshot of (part of) the registry, and values as text.
 *
 *   reg.c        options, the tree in ioreg's style, dispatch
 *   reg-entry.c  connecting, entry arguments, snapshots, value text
 *   reg-json.c   --json (docs/reg-json.md)
 *   reg-set.c    reg set
 *   reg-watch.c  reg watch
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <tether/tether.h>

#define REG_PLANE "TetherService"

/* One entry of a snapshot, with the children that were fetched. */
typedef struct reg_node {
        tether_entry_info *info;
        tether_value *props;           /* NULL when not fetched */
        struct reg_node **kids;
        size_t n_kids;
        size_t child_count;            /* in the registry, fetched or not */
        bool hit;                      /* matches -c / -n */
        bool leads_to_hit;             /* it or a descendant matches */
} reg_node;

/* A snapshot of the subtree at id: max_depth levels (0: all), properties if
 * with_props. Entries that vanish while it is taken are left out. */
tether_ret_t reg_snapshot(tether_session *s, uint64_t id, unsigned max_depth, bool with_props, reg_node **ret);
void reg_node_free(reg_node *n);
/* name, or name@location, malloc()ed. */
char *reg_display_name(const tether_entry_info *info);
/* ioreg's text for a value; hex prints integers in hexadecimal. */
tether_ret_t reg_value_text(const tether_value *v, bool hex, char **ret);

/* A value in --json's mapping (docs/reg-json.md). */
void reg_json_value(FILE *f, const tether_value *v);
/* --json: the snapshot roots as one document on f. */
tether_ret_t reg_json_write(FILE *f, reg_node *const *roots, size_t n);

int reg_cmd_set(int argc, char **argv);
int reg_cmd_watch(int argc, char **argv);

#endif
