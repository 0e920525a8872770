/* SPDX-License-Identifier: MIT */
/*
 * tether reg: the registry explorer, after ioreg. The tree is read into a
 * snapshot first and printed from it, so filters, depth limits and JSON
 * all work on one consistent-enough picture and no line waits on tetherd.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "reg-private.h"
#include "tool.h"
#include "reg.h"

typedef struct reg_opts {
        bool props, subtrees, hex, json;
        const char *class_name, *name, *entry;
        unsigned depth;        /* levels to show; 0: all */
        size_t width;          /* 0: unlimited */
} reg_opts;

static bool filtering(const reg_opts *o)
{
        return o->class_name || o->name;
}

/* ---- output ---- */

/* One line, clipped to width characters (UTF-8 aware, so a name is never
 * cut inside a character), without trailing blanks. */
static void out_line(const reg_opts *o, const char *fmt, ...)
{
        char *s = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        size_t len = (size_t)n;
        if (o->width) {
                size_t chars = 0;
                for (size_t i = 0; i < len; i++) {
                        if (((unsigned char)s[i] & 0xc0) != 0x80 && ++chars > o->width) {
                                len = i;
                                break;
                        }
                }
        }
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
                len--;
        fwrite(s, 1, len, stdout);
        fputc('\n', stdout);
        free(s);
}

static void print_props(const reg_opts *o, const reg_node *n, const char *prefix)
{
        out_line(o, "%s{", prefix);
        for (size_t i = 0; n->props && i < tether_value_count(n->props); i++) {
                const char *key;
                tether_value *v, *kv = NULL;
                char *text = NULL, *ktext = NULL;
                tether_value_dict_entry(n->props, i, &key, &v);
                if (tether_value_new_string(key, &kv) == TETHER_SUCCESS &&
                    tether_value_format(kv, &ktext) == TETHER_SUCCESS &&
                    reg_value_text(v, o->hex, &text) == TETHER_SUCCESS)
                        out_line(o, "%s  %s = %s", prefix, ktext, text);
                free(text);
                free(ktext);
                tether_value_unref(kv);
        }
        out_line(o, "%s}", prefix);
        out_line(o, "%s", prefix);
}

static bool shown(const reg_opts *o, const reg_node *k)
{
        /* Subtrees (-r, ENTRY) show everything below their root; a filtered
         * tree shows only the paths that lead to matches. */
        return o->subtrees || !filtering(o) || k->leads_to_hit;
}

static tether_ret_t print_node(const reg_opts *o, const reg_node *n, const char *prefix, bool last, unsigned levels)
{
        const tether_entry_info *i = n->info;
        char *name = reg_display_name(i);
        if (!name)
                return TETHER_ERR_NO_MEMORY;
        out_line(o, "%s+-o %s  <class %s, id 0x%" PRIx64 ", %s, %s, %s, busy %u, open %u>", prefix, name,
                 i->class_name, i->id, (i->state & TETHER_ENTRY_REGISTERED) ? "registered" : "!registered",
                 (i->state & TETHER_ENTRY_MATCHED) ? "matched" : "!matched",
                 /* inactive: terminated; !active: not started yet (or a nub not yet live) */
                 (i->state & TETHER_ENTRY_ACTIVE)     ? "active"
                 : (i->state & TETHER_ENTRY_INACTIVE) ? "inactive"
                                                      : "!active",
                 i->busy, i->open_count);
        free(name);
        size_t visible = 0, last_visible = 0;
        for (size_t k = 0; levels != 1 && k < n->n_kids; k++) {
                if (shown(o, n->kids[k])) {
                        visible++;
                        last_visible = k;
                }
        }
        char *child_prefix = NULL, *props_prefix = NULL;
        if (asprintf(&child_prefix, "%s%s", prefix, last ? "  " : "| ") < 0)
                return TETHER_ERR_NO_MEMORY;
        if (asprintf(&props_prefix, "%s%s", child_prefix, visible ? "| " : "  ") < 0) {
                free(child_prefix);
                return TETHER_ERR_NO_MEMORY;
        }
        /* As ioreg: -c/-n show the properties of what they match. */
        if (o->props || (filtering(o) && n->hit))
                print_props(o, n, props_prefix);
        tether_ret_t r = TETHER_SUCCESS;
        for (size_t k = 0; r == TETHER_SUCCESS && visible && k < n->n_kids; k++)
                if (shown(o, n->kids[k]))
                        r = print_node(o, n->kids[k], child_prefix, k == last_visible, levels ? levels - 1 : 0);
        free(child_prefix);
        free(props_prefix);
        return r;
}

/* ---- filters ---- */

static bool mark_hits(const reg_opts *o, reg_node *n)
{
        n->hit = (!o->class_name || !strcmp(n->info->class_name, o->class_name));
        if (n->hit && o->name) {
                char *full = reg_display_name(n->info);
                n->hit = !strcmp(n->info->name, o->name) || (full && !strcmp(full, o->name));
                free(full);
        }
        n->leads_to_hit = n->hit;
        for (size_t i = 0; i < n->n_kids; i++)
                n->leads_to_hit |= mark_hits(o, n->kids[i]);
        return n->leads_to_hit;
}

typedef struct node_list {
        reg_node **v;
        size_t n, cap;
} node_list;

static tether_ret_t list_add(node_list *l, reg_node *n)
{
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 8;
                reg_node **v = realloc(l->v, cap * sizeof(*v));
                if (!v)
                        return TETHER_ERR_NO_MEMORY;
                l->v = v;
                l->cap = cap;
        }
        l->v[l->n++] = n;
        return TETHER_SUCCESS;
}

/* Matches in tree order. With subtrees_only, not below another match: its
 * subtree already holds them, and roots stay disjoint. */
static tether_ret_t collect_hits(reg_node *n, bool subtrees_only, node_list *l)
{
        tether_ret_t r = TETHER_SUCCESS;
        if (n->hit) {
                r = list_add(l, n);
                if (subtrees_only || r != TETHER_SUCCESS)
                        return r;
        }
        for (size_t i = 0; r == TETHER_SUCCESS && i < n->n_kids; i++)
                if (n->kids[i]->leads_to_hit)
                        r = collect_hits(n->kids[i], subtrees_only, l);
        return r;
}

static void prune_depth(reg_node *n, unsigned levels)
{
        if (levels == 1) {
                for (size_t i = 0; i < n->n_kids; i++)
                        reg_node_free(n->kids[i]);
                n->n_kids = 0;
                return;
        }
        for (size_t i = 0; i < n->n_kids; i++)
                prune_depth(n->kids[i], levels ? levels - 1 : 0);
}

static int show(const reg_opts *o)
{
        tether_session *s = NULL;
        if (tool_open("tether reg", &s) != TETHER_SUCCESS)
                return 1;
        uint64_t top = 0;
        tether_ret_t r = o->entry ? tool_resolve_entry(s, "tether reg", o->entry, &top) : tether_registry_get_root(s, &top);
        if (r != TETHER_SUCCESS) {
                tether_session_close(s);
                return o->entry ? 1 : tool_fail("tether reg", "registry", r);
        }
        /* Filters need the whole tree (a match may sit at any depth);
         * otherwise only the levels shown are read. */
        bool want_props = o->props || o->json || filtering(o);
        reg_node *tree = NULL;
        r = reg_snapshot(s, top, filtering(o) ? 0 : o->depth, want_props, &tree);
        tether_session_close(s);
        if (r != TETHER_SUCCESS)
                return tool_fail("tether reg", "registry", r);

        node_list roots = { 0 };
        int status = 0;
        if (filtering(o)) {
                mark_hits(o, tree);
                r = collect_hits(tree, o->subtrees, &roots);
                if (r == TETHER_SUCCESS && !roots.n) {
                        fprintf(stderr, "tether reg: no entry%s%s%s%s%s\n", o->class_name ? " of class " : "",
                                o->class_name ? o->class_name : "", o->name ? " named " : "", o->name ? o->name : "",
                                o->entry ? " in that subtree" : "");
                        status = 1;
                }
        } else {
                r = list_add(&roots, tree);
        }
        if (r == TETHER_SUCCESS && !status) {
                if (o->json) {
                        /* A filtered list without -r is the matches alone. */
                        bool nested = o->subtrees || !filtering(o);
                        for (size_t i = 0; nested && i < roots.n; i++)
                                prune_depth(roots.v[i], o->depth);
                        for (size_t i = 0; !nested && i < roots.n; i++)
                                prune_depth(roots.v[i], 1);
                        r = reg_json_write(stdout, roots.v, roots.n);
                } else if (o->subtrees || !filtering(o)) {
                        for (size_t i = 0; r == TETHER_SUCCESS && i < roots.n; i++)
                                r = print_node(o, roots.v[i], "", true, o->depth);
                } else {
                        r = print_node(o, tree, "", true, o->depth);
                }
        }
        free(roots.v);
        reg_node_free(tree);
        if (fflush(stdout) != 0 && r == TETHER_SUCCESS)
                r = TETHER_ERR_IO;
        return r != TETHER_SUCCESS ? tool_fail("tether reg", "output", r) : status;
}

static void usage(FILE *f)
{
        fprintf(f,
                "usage: tether reg [-lrx] [-c CLASS] [-n NAME] [-d DEPTH] [-p PLANE] [-w WIDTH] [--json] [ENTRY]\n"
                "       tether reg set [-t TYPE] ENTRY KEY VALUE\n"
                "       tether reg watch [-c CLASS] [-n NAME]\n"
                "  -l, --properties   show every entry's properties\n"
                "  -c, --class CLASS  only entries of this class, with the path to them (and their properties)\n"
                "  -n, --name NAME    only entries of this name (or name@location), likewise\n"
                "  -r, --subtrees     show the subtrees rooted at the -c/-n matches instead\n"
                "  -d, --depth DEPTH  show DEPTH levels (1: the first entry only)\n"
                "  -p, --plane PLANE  the registry plane; only " REG_PLANE " exists\n"
                "  -w, --width WIDTH  clip lines to WIDTH characters; 0: never (default: the terminal's)\n"
                "  -x, --hex          integers in hexadecimal\n"
                "      --json         JSON, with properties (docs/reg-json.md)\n"
                "  ENTRY              show the subtree of one entry: a path (" REG_PLANE ":/a/b@loc), an id\n"
                "                     (0x... or decimal) or a name (name@location) that one entry has\n"
                "  TYPE               int8..int64, uint8..uint64, double, bool, string, data (hex);\n"
                "                     default: the type the property has now\n");
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *ret)
{
        char *end = NULL;
        if (!*s || strspn(s, "0123456789") != strlen(s))
                return false;
        unsigned long v = strtoul(s, &end, 10);
        if (v > max)
                return false;
        *ret = v;
        return true;
}

int cmd_reg(int argc, char **argv)
{
        if (argc > 1 && !strcmp(argv[1], "set"))
                return reg_cmd_set(argc - 1, argv + 1);
        if (argc > 1 && !strcmp(argv[1], "watch"))
                return reg_cmd_watch(argc - 1, argv + 1);
        reg_opts o = { 0 };
        bool width_given = false;
        enum { OPT_JSON = 256 };
        static const struct option opts[] = {
                { "properties", no_argument, NULL, 'l' }, { "class", required_argument, NULL, 'c' },
                { "name", required_argument, NULL, 'n' },  { "subtrees", no_argument, NULL, 'r' },
                { "depth", required_argument, NULL, 'd' }, { "plane", required_argument, NULL, 'p' },
                { "width", required_argument, NULL, 'w' }, { "hex", no_argument, NULL, 'x' },
                { "json", no_argument, NULL, OPT_JSON },   { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        int c;
        unsigned long v;
        while ((c = getopt_long(argc, argv, "lc:n:rd:p:w:xh", opts, NULL)) != -1) {
                switch (c) {
                case 'l': o.props = true; break;
                case 'c': o.class_name = optarg; break;
                case 'n': o.name = optarg; break;
                case 'r': o.subtrees = true; break;
                case 'x': o.hex = true; break;
                case OPT_JSON: o.json = true; break;
                case 'd':
                        if (!parse_uint(optarg, 1000, &v) || !v) {
                                fprintf(stderr, "tether reg: -d %s: the depth is a number of levels, 1 or more\n",
                                        optarg);
                                return 2;
                        }
                        o.depth = (unsigned)v;
                        break;
                case 'w':
                        if (!parse_uint(optarg, 1000000, &v)) {
                                fprintf(stderr,
                                        "tether reg: -w %s: the width is a number of characters (0: unlimited)\n",
                                        optarg);
                                return 2;
                        }
                        o.width = v;
                        width_given = true;
                        break;
                case 'p':
                        if (strcmp(optarg, REG_PLANE)) {
                                fprintf(stderr, "tether reg: unknown plane \"%s\" (the only plane is " REG_PLANE ")\n",
                                        optarg);
                                return 1;
                        }
                        break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind + 1 < argc) {
                fprintf(stderr, "tether reg: one ENTRY at most (got \"%s\" and \"%s\")\n", argv[optind],
                        argv[optind + 1]);
                return 2;
        }
        if (optind < argc)
                o.entry = argv[optind];
        if (o.subtrees && !filtering(&o)) {
                fprintf(stderr, "tether reg: -r shows the subtrees of what -c or -n match; give one of them\n");
                return 2;
        }
        struct winsize ws;
        if (!width_given && !o.json && isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0)
                o.width = ws.ws_col;
        return show(&o);
}
