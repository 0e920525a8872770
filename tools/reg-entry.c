/* SPDX-License-Identifier: MIT */
/* tether reg: connecting, entry arguments, registry snapshots, value text. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "reg-private.h"
#include "tool.h"

char *reg_display_name(const tether_entry_info *info)
{
        char *s = NULL;
        if (asprintf(&s, "%s%s%s", info->name, info->location[0] ? "@" : "", info->location) < 0)
                return NULL;
        return s;
}

void reg_node_free(reg_node *n)
{
        if (!n)
                return;
        for (size_t i = 0; i < n->n_kids; i++)
                reg_node_free(n->kids[i]);
        free(n->kids);
        tether_entry_info_free(n->info);
        tether_value_unref(n->props);
        free(n);
}

tether_ret_t reg_snapshot(tether_session *s, uint64_t id, unsigned max_depth, bool with_props, reg_node **ret)
{
        reg_node *n = calloc(1, sizeof(*n));
        if (!n)
                return TETHER_ERR_NO_MEMORY;
        uint64_t *kids = NULL;
        size_t nk = 0;
        tether_ret_t r = tether_registry_entry_get_info(s, id, &n->info);
        if (r == TETHER_SUCCESS && with_props)
                r = tether_registry_entry_get_properties(s, id, &n->props);
        if (r == TETHER_SUCCESS)
                r = tether_registry_entry_get_children(s, id, &kids, &nk);
        n->child_count = nk;
        if (r == TETHER_SUCCESS && max_depth != 1 && nk) {
                n->kids = calloc(nk, sizeof(*n->kids));
                if (!n->kids)
                        r = TETHER_ERR_NO_MEMORY;
        }
        for (size_t i = 0; r == TETHER_SUCCESS && n->kids && i < nk; i++) {
                reg_node *k = NULL;
                tether_ret_t kr = reg_snapshot(s, kids[i], max_depth ? max_depth - 1 : 0, with_props, &k);
                if (kr == TETHER_SUCCESS)
                        n->kids[n->n_kids++] = k;
                else if (kr != TETHER_ERR_NOT_FOUND) /* gone since the parent was read: not an error */
                        r = kr;
        }
        free(kids);
        if (r != TETHER_SUCCESS) {
                reg_node_free(n);
                return r;
        }
        *ret = n;
        return TETHER_SUCCESS;
}

/* ---- entry arguments ---- */

static bool parse_id(const char *spec, uint64_t *ret)
{
        const char *digits = spec;
        int base = 10;
        if (!strncmp(spec, "0x", 2) || !strncmp(spec, "0X", 2)) {
                digits = spec + 2;
                base = 16;
        }
        if (!*digits || strspn(digits, base == 16 ? "0123456789abcdefABCDEF" : "0123456789") != strlen(digits))
                return false;
        errno = 0;
        unsigned long long v = strtoull(digits, NULL, base);
        if (errno)
                return false;
        *ret = v;
        return true;
}

typedef struct name_search {
        const char *spec;
        uint64_t ids[8];
        size_t n;                 /* may exceed the ids kept */
} name_search;

static void find_name(const reg_node *n, name_search *ns)
{
        char *full = reg_display_name(n->info);
        if (!strcmp(n->info->name, ns->spec) || (full && !strcmp(full, ns->spec))) {
                if (ns->n < sizeof(ns->ids) / sizeof(ns->ids[0]))
                        ns->ids[ns->n] = n->info->id;
                ns->n++;
        }
        free(full);
        for (size_t i = 0; i < n->n_kids; i++)
                find_name(n->kids[i], ns);
}

tether_ret_t tool_resolve_entry(tether_session *s, const char *prog, const char *spec, uint64_t *ret_id)
{
        const char *plane_end = strstr(spec, ":/");
        if (spec[0] == '/' || plane_end) {
                if (plane_end && ((size_t)(plane_end - spec) != strlen(REG_PLANE) ||
                                  strncmp(spec, REG_PLANE, strlen(REG_PLANE)))) {
                        fprintf(stderr, "%s: %s: unknown plane \"%.*s\" (the only plane is " REG_PLANE ")\n",
                                prog, spec, (int)(plane_end - spec), spec);
                        return TETHER_ERR_NOT_FOUND;
                }
                tether_ret_t r = tether_registry_entry_from_path(s, spec, ret_id);
                if (r == TETHER_ERR_NOT_FOUND)
                        fprintf(stderr, "%s: %s: no such entry\n", prog, spec);
                else if (r != TETHER_SUCCESS)
                        tool_fail(prog, spec, r);
                return r;
        }
        uint64_t id;
        if (parse_id(spec, &id)) {
                tether_entry_info *info = NULL;
                tether_ret_t r = tether_registry_entry_get_info(s, id, &info);
                tether_entry_info_free(info);
                if (r == TETHER_ERR_NOT_FOUND)
                        fprintf(stderr, "%s: %s: no entry with id 0x%" PRIx64 "\n", prog, spec, id);
                else if (r != TETHER_SUCCESS)
                        tool_fail(prog, spec, r);
                if (r == TETHER_SUCCESS)
                        *ret_id = id;
                return r;
        }
        uint64_t root = 0;
        reg_node *tree = NULL;
        tether_ret_t r = tether_registry_get_root(s, &root);
        if (r == TETHER_SUCCESS)
                r = reg_snapshot(s, root, 0, false, &tree);
        if (r != TETHER_SUCCESS) {
                tool_fail(prog, spec, r);
                return r;
        }
        name_search ns = { .spec = spec };
        find_name(tree, &ns);
        reg_node_free(tree);
        if (ns.n == 1) {
                *ret_id = ns.ids[0];
                return TETHER_SUCCESS;
        }
        if (!ns.n) {
                fprintf(stderr, "%s: %s: no such entry (give a name, name@location, path or id)\n", prog, spec);
                return TETHER_ERR_NOT_FOUND;
        }
        /* Picking one would write to a device the user did not mean. */
        fprintf(stderr, "%s: %s: %zu entries have that name (", prog, spec, ns.n);
        for (size_t i = 0; i < ns.n && i < sizeof(ns.ids) / sizeof(ns.ids[0]); i++)
                fprintf(stderr, "%s0x%" PRIx64, i ? ", " : "", ns.ids[i]);
        fprintf(stderr, "); give name@location, a path or an id\n");
        return TETHER_ERR_BAD_ARGUMENT;
}

/* ---- values as text ---- */

static void hex_value(FILE *f, const tether_value *v)
{
        int64_t i;
        uint64_t u;
        switch (tether_value_get_type(v)) {
        case TETHER_TYPE_INT:
                tether_value_get_int(v, &i);
                /* -0x80...: negate in unsigned arithmetic, where it cannot overflow. */
                fprintf(f, "%s0x%" PRIx64, i < 0 ? "-" : "", i < 0 ? 0 - (uint64_t)i : (uint64_t)i);
                return;
        case TETHER_TYPE_UINT:
                tether_value_get_uint(v, &u);
                fprintf(f, "0x%" PRIx64, u);
                return;
        case TETHER_TYPE_ARRAY:
        case TETHER_TYPE_DICT: {
                bool dict = tether_value_get_type(v) == TETHER_TYPE_DICT;
                fputc(dict ? '{' : '(', f);
                for (size_t k = 0; k < tether_value_count(v); k++) {
                        const char *key = NULL;
                        tether_value *m = NULL;
                        if (dict)
                                tether_value_dict_entry(v, k, &key, &m);
                        else
                                tether_value_array_get(v, k, &m);
                        if (k)
                                fputc(',', f);
                        if (dict) {
                                tether_value *kv = NULL;
                                char *kt = NULL;
                                if (tether_value_new_string(key, &kv) == TETHER_SUCCESS &&
                                    tether_value_format(kv, &kt) == TETHER_SUCCESS)
                                        fprintf(f, "%s=", kt);
                                free(kt);
                                tether_value_unref(kv);
                        }
                        hex_value(f, m);
                }
                fputc(dict ? '}' : ')', f);
                return;
        }
        default: {
                char *t = NULL;
                if (tether_value_format(v, &t) == TETHER_SUCCESS)
                        fputs(t, f);
                free(t);
                return;
        }
        }
}

tether_ret_t reg_value_text(const tether_value *v, bool hex, char **ret)
{
        if (!hex)
                return tether_value_format(v, ret);
        char *s = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);
        if (!f)
                return TETHER_ERR_NO_MEMORY;
        hex_value(f, v);
        bool failed = ferror(f);
        if (fclose(f) != 0 || failed) {
                free(s);
                return TETHER_ERR_NO_MEMORY;
        }
        *ret = s;
        return TETHER_SUCCESS;
}
