/* SPDX-License-Identifier: MIT */
/*
 * tether driver: the bundles tetherd has loaded (kextstat), and loading and
 * unloading one (kextload, kextunload). docs/bundles.md says what a bundle is.
 */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "tool.h"

#define PROG "tether driver"

static void usage(FILE *f)
{
        fprintf(f, "usage: tether driver list [--json]   the loaded bundles: id, version, state, services, path\n"
                   "       tether driver load PATH       load a bundle folder (root only)\n"
                   "       tether driver unload ID       unload a bundle, ending its services (root only)\n");
}

/* A field of a bundle's dict, "" when tetherd sent none. */
static const char *field(const tether_value *b, const char *key)
{
        const char *s = tether_value_dict_string(b, key);
        return s ? s : "";
}

static void list_text(const tether_value *list)
{
        printf("%-28s %-10s %-8s %8s %7s  %s\n", "BUNDLE", "VERSION", "STATE", "SERVICES", "CRASHES", "PATH");
        for (size_t i = 0; i < tether_value_count(list); i++) {
                tether_value *b = NULL;
                tether_value_array_get(list, i, &b);
                printf("%-28s %-10s %-8s %8llu %7llu  %s\n", field(b, "bundle"), field(b, "version"), field(b, "state"),
                       (unsigned long long)tether_value_dict_uint(b, "services", 0),
                       (unsigned long long)tether_value_dict_uint(b, "crashes", 0), field(b, "path"));
                if (*field(b, "lastCrash"))
                        printf("%-28s last crash: %s\n", "", field(b, "lastCrash"));
        }
}

/* JSON Lines: one object per bundle, as the other tools' --json. */
static void list_json(const tether_value *list)
{
        static const char *const keys[] = { "bundle", "version", "state", "path", "lastCrash" };
        for (size_t i = 0; i < tether_value_count(list); i++) {
                tether_value *b = NULL, *names = NULL;
                tether_value_array_get(list, i, &b);
                putchar('{');
                for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
                        const char *v = field(b, keys[k]);
                        printf("\"%s\":", keys[k]);
                        tool_json_string(stdout, v, strlen(v));
                        putchar(',');
                }
                printf("\"services\":");
                tool_json_uint(stdout, tether_value_dict_uint(b, "services", 0));
                printf(",\"crashes\":");
                tool_json_uint(stdout, tether_value_dict_uint(b, "crashes", 0));
                printf(",\"personalities\":[");
                tether_value_dict_get(b, "personalities", &names);
                for (size_t n = 0; n < tether_value_count(names); n++) {
                        tether_value *name = NULL;
                        const char *str = "";
                        tether_value_array_get(names, n, &name);
                        tether_value_get_string(name, &str);
                        printf(n ? "," : "");
                        tool_json_string(stdout, str, strlen(str));
                }
                printf("]}\n");
        }
}

static int list(tether_session *s, bool json)
{
        tether_value *bundles = NULL;
        tether_ret_t r = tether_driver_list(s, &bundles);
        if (r != TETHER_SUCCESS)
                return tool_fail(PROG, "list", r);
        if (json)
                list_json(bundles);
        else
                list_text(bundles);
        tether_value_unref(bundles);
        return 0;
}

static int load(tether_session *s, const char *path)
{
        /* tetherd resolves the path in its own file system: give it a whole one. */
        char abs[PATH_MAX];
        if (!realpath(path, abs)) {
                fprintf(stderr, PROG ": %s: no such bundle folder\n", path);
                return 1;
        }
        char *why = NULL;
        tether_ret_t r = tether_driver_load(s, abs, &why);
        if (r == TETHER_SUCCESS) {
                printf("loaded %s\n", abs);
        } else if (why && *why) {
                fprintf(stderr, PROG ": %s: %s (%s)\n", abs, why, tether_ret_name(r));
        } else {
                free(why);
                return tool_fail(PROG, abs, r);
        }
        free(why);
        return r == TETHER_SUCCESS ? 0 : 1;
}

int cmd_driver(int argc, char **argv)
{
        static const struct option opts[] = {
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        bool json = false;
        int c;
        while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
                if (c == 'j') {
                        json = true;
                } else if (c == 'h') {
                        usage(stdout);
                        return 0;
                } else {
                        usage(stderr);
                        return 2;
                }
        }
        const char *verb = optind < argc ? argv[optind] : "list";
        int rest = argc - optind - 1;
        bool ok = (!strcmp(verb, "list") && rest <= 0) || ((!strcmp(verb, "load") || !strcmp(verb, "unload")) && rest == 1);
        if (!ok) {
                usage(stderr);
                return 2;
        }
        tether_session *s = NULL;
        if (tool_open(PROG, &s) != TETHER_SUCCESS)
                return 1;
        int status;
        if (!strcmp(verb, "list")) {
                status = list(s, json);
        } else if (!strcmp(verb, "load")) {
                status = load(s, argv[optind + 1]);
        } else {
                tether_ret_t r = tether_driver_unload(s, argv[optind + 1]);
                status = r == TETHER_SUCCESS ? (printf("unloaded %s\n", argv[optind + 1]), 0)
                                             : tool_fail(PROG, argv[optind + 1], r);
        }
        tether_session_close(s);
        return status;
}
