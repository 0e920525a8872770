/* SPDX-License-Identifier: MIT */
/*
 * tether: the command-line tool. `tether reg` shows the registry as a tree,
 * the way ioreg does.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tether/tether.h>

#include "probe.h"
#include "scope.h"

static int die(const char *what, tether_ret_t r)
{
        fprintf(stderr, "tether: %s: %s\n", what, tether_strerror(r));
        return 1;
}

static void state_text(uint32_t st, char *buf, size_t n)
{
        snprintf(buf, n, "%s%s%s%s", (st & TETHER_ENTRY_REGISTERED) ? "registered, " : "!registered, ",
                 (st & TETHER_ENTRY_MATCHED) ? "matched, " : "!matched, ",
                 (st & TETHER_ENTRY_ACTIVE) ? "active" : "inactive", "");
}

typedef struct reg_opts {
        bool props;
        int max_depth;
} reg_opts;

/* prefix: the connectors of the ancestors ("| " where a sibling follows). */
static void print_props(tether_session *s, uint64_t id, const char *prefix)
{
        tether_value *props = NULL;
        if (tether_registry_entry_get_properties(s, id, &props) != TETHER_SUCCESS)
                return;
        printf("%s{\n", prefix);
        for (size_t i = 0; i < tether_value_count(props); i++) {
                const char *key;
                tether_value *v;
                char *text = NULL;
                tether_value_dict_entry(props, i, &key, &v);
                if (tether_value_format(v, &text) == TETHER_SUCCESS)
                        printf("%s  \"%s\" = %s\n", prefix, key, text);
                free(text);
        }
        printf("%s}\n%s\n", prefix, prefix);
        tether_value_unref(props);
}

static tether_ret_t print_tree(tether_session *s, uint64_t id, const reg_opts *o, int depth, const char *prefix,
                               bool last)
{
        tether_entry_info *info = NULL;
        tether_ret_t r = tether_registry_entry_get_info(s, id, &info);
        if (r != TETHER_SUCCESS)
                return r;
        char st[96];
        state_text(info->state, st, sizeof(st));
        printf("%s+-o %s%s%s  <class %s, id 0x%" PRIx64 ", %s, open %u>\n", prefix, info->name,
               info->location[0] ? "@" : "", info->location, info->class_name, info->id, st, info->open_count);
        tether_entry_info_free(info);
        uint64_t *kids = NULL;
        size_t n = 0;
        r = tether_registry_entry_get_children(s, id, &kids, &n);
        if (o->max_depth >= 0 && depth >= o->max_depth)
                n = 0;
        char *child_prefix = NULL, *props_prefix = NULL;
        if (asprintf(&child_prefix, "%s%s", prefix, last ? "  " : "| ") < 0 ||
            asprintf(&props_prefix, "%s%s", child_prefix, n ? "| " : "  ") < 0) {
                free(child_prefix);
                free(kids);
                return TETHER_ERR_NO_MEMORY;
        }
        if (o->props)
                print_props(s, id, props_prefix);
        for (size_t i = 0; r == TETHER_SUCCESS && i < n; i++)
                r = print_tree(s, kids[i], o, depth + 1, child_prefix, i + 1 == n);
        free(child_prefix);
        free(props_prefix);
        free(kids);
        return r;
}

static int cmd_reg(int argc, char **argv)
{
        reg_opts o = { .max_depth = -1 };
        static const struct option opts[] = {
                { "properties", no_argument, NULL, 'l' },
                { "depth", required_argument, NULL, 'd' },
                { 0 },
        };
        int c;
        while ((c = getopt_long(argc, argv, "ld:", opts, NULL)) != -1) {
                if (c == 'l')
                        o.props = true;
                else if (c == 'd')
                        o.max_depth = atoi(optarg);
                else
                        return 2;
        }
        tether_session *s = NULL;
        tether_ret_t r = tether_session_open(NULL, &s);
        if (r != TETHER_SUCCESS)
                return die("cannot reach tetherd", r);
        uint64_t root = 0;
        tether_registry_get_root(s, &root);
        r = print_tree(s, root, &o, 0, "", true);
        tether_session_close(s);
        return r == TETHER_SUCCESS ? 0 : die("registry", r);
}

static void usage(FILE *f)
{
        fprintf(f, "usage: tether reg [-l] [-d DEPTH]   show the registry (ioreg style)\n"
                   "       tether probe [...]            follow calls and USB transfers (tether probe --help)\n"
                   "       tether scope ...              oscilloscopes (tether scope --help)\n"
                   "The daemon's socket is $TETHER_SOCKET or " TETHER_DEFAULT_SOCKET ".\n");
}

int main(int argc, char **argv)
{
        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        if (!strcmp(argv[1], "reg"))
                return cmd_reg(argc - 1, argv + 1);
        if (!strcmp(argv[1], "probe"))
                return cmd_probe(argc - 1, argv + 1);
        if (!strcmp(argv[1], "scope"))
                return cmd_scope(argc - 1, argv + 1);
        if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
                usage(stdout);
                return 0;
        }
        usage(stderr);
        return 2;
}
