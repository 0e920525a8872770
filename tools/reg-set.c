/* SPDX-License-Identifier: MIT */
/*
 * tether reg set ENTRY KEY VALUE: one property written through the
 * driver's set_properties hook, and its verdict, with the driver's reason
 * when it refuses. VALUE takes the type the
 * property has now, so `set DSOX2000 Channel1Scale 2` sends a double and
 * `set ExampleDriver BaudRate 19200` a uint32 without the user knowing
 * the widths; -t overrides, and a new key's type is guessed from the text.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "reg-private.h"
#include "tool.h"

typedef struct value_type {
        tether_value_type type;
        unsigned bits;           /* integers only */
} value_type;

static bool type_from_name(const char *s, value_type *ret)
{
        static const struct {
                const char *name;
                value_type t;
        } names[] = {
                { "int8", { TETHER_TYPE_INT, 8 } },     { "int16", { TETHER_TYPE_INT, 16 } },
                { "int32", { TETHER_TYPE_INT, 32 } },   { "int64", { TETHER_TYPE_INT, 64 } },
                { "uint8", { TETHER_TYPE_UINT, 8 } },   { "uint16", { TETHER_TYPE_UINT, 16 } },
                { "uint32", { TETHER_TYPE_UINT, 32 } }, { "uint64", { TETHER_TYPE_UINT, 64 } },
                { "double", { TETHER_TYPE_DOUBLE, 0 } }, { "bool", { TETHER_TYPE_BOOL, 0 } },
                { "string", { TETHER_TYPE_STRING, 0 } }, { "data", { TETHER_TYPE_DATA, 0 } },
        };
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                if (!strcmp(s, names[i].name)) {
                        *ret = names[i].t;
                        return true;
                }
        }
        return false;
}

static void type_name(value_type t, char *buf, size_t n)
{
        if (t.type == TETHER_TYPE_INT || t.type == TETHER_TYPE_UINT)
                snprintf(buf, n, "%s%u", t.type == TETHER_TYPE_INT ? "int" : "uint", t.bits);
        else
                snprintf(buf, n, "%s",
                         t.type == TETHER_TYPE_DOUBLE ? "double"
                         : t.type == TETHER_TYPE_BOOL ? "bool"
                         : t.type == TETHER_TYPE_STRING ? "string"
                         : t.type == TETHER_TYPE_DATA ? "data"
                         : t.type == TETHER_TYPE_ARRAY ? "array"
                                                       : "dict");
}

static bool parse_bool(const char *s, bool *ret)
{
        if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcmp(s, "1"))
                *ret = true;
        else if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcmp(s, "0"))
                *ret = false;
        else
                return false;
        return true;
}

static int hex_digit(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* TETHER_ERR_BAD_ARGUMENT when text is not a t (or does not fit it). */
static tether_ret_t parse_as(const char *text, value_type t, tether_value **ret)
{
        char *end = NULL;
        errno = 0;
        switch (t.type) {
        case TETHER_TYPE_INT: {
                long long x = strtoll(text, &end, 0);
                if (!*text || *end || errno)
                        return TETHER_ERR_BAD_ARGUMENT;
                return tether_value_new_int(x, t.bits, ret);
        }
        case TETHER_TYPE_UINT: {
                const char *p = text + strspn(text, " \t");
                if (*p == '-') /* strtoull would wrap it around */
                        return TETHER_ERR_BAD_ARGUMENT;
                unsigned long long x = strtoull(text, &end, 0);
                if (!*text || *end || errno)
                        return TETHER_ERR_BAD_ARGUMENT;
                return tether_value_new_uint(x, t.bits, ret);
        }
        case TETHER_TYPE_DOUBLE: {
                double x = strtod(text, &end);
                if (!*text || *end || errno == ERANGE)
                        return TETHER_ERR_BAD_ARGUMENT;
                return tether_value_new_double(x, ret);
        }
        case TETHER_TYPE_BOOL: {
                bool b;
                return parse_bool(text, &b) ? tether_value_new_bool(b, ret) : TETHER_ERR_BAD_ARGUMENT;
        }
        case TETHER_TYPE_STRING:
                return tether_value_new_string(text, ret);
        case TETHER_TYPE_DATA: {
                /* Hex, as ioreg and --json print data: "0a1b", "<0a1b>" or "0x0a1b". */
                size_t len = strlen(text);
                if (len >= 2 && text[0] == '<' && text[len - 1] == '>') {
                        text++;
                        len -= 2;
                } else if (!strncmp(text, "0x", 2)) {
                        text += 2;
                        len -= 2;
                }
                if (len % 2)
                        return TETHER_ERR_BAD_ARGUMENT;
                uint8_t *b = malloc(len / 2 + 1);
                if (!b)
                        return TETHER_ERR_NO_MEMORY;
                for (size_t i = 0; i < len / 2; i++) {
                        int hi = hex_digit(text[2 * i]), lo = hex_digit(text[2 * i + 1]);
                        if (hi < 0 || lo < 0) {
                                free(b);
                                return TETHER_ERR_BAD_ARGUMENT;
                        }
                        b[i] = (uint8_t)(hi << 4 | lo);
                }
                tether_ret_t r = tether_value_new_data(b, len / 2, ret);
                free(b);
                return r;
        }
        default:
                return TETHER_ERR_UNSUPPORTED; /* containers are not typed on a command line */
        }
}

static bool parses(const char *text, value_type t)
{
        tether_value *v = NULL;
        bool ok = parse_as(text, t, &v) == TETHER_SUCCESS;
        tether_value_unref(v);
        return ok;
}

/* A new key: booleans, then integers (32 bits when they fit), then
 * doubles; anything else is a string. */
static value_type guess(const char *text)
{
        static const value_type order[] = {
                { TETHER_TYPE_UINT, 32 }, { TETHER_TYPE_UINT, 64 }, { TETHER_TYPE_INT, 32 },
                { TETHER_TYPE_INT, 64 },  { TETHER_TYPE_DOUBLE, 0 },
        };
        if (!strcasecmp(text, "true") || !strcasecmp(text, "false") || !strcasecmp(text, "yes") ||
            !strcasecmp(text, "no"))
                return (value_type){ TETHER_TYPE_BOOL, 0 };
        for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
                if (parses(text, order[i]))
                        return order[i];
        return (value_type){ TETHER_TYPE_STRING, 0 };
}

/* Why a driver said no, in the terms of this command. */
static const char *hint(tether_ret_t r, const tether_entry_info *info)
{
        if (r == TETHER_ERR_UNSUPPORTED && !info->driver[0])
                return ": not a service, so no driver takes writes for it";
        if (r == TETHER_ERR_UNSUPPORTED)
                return ": its driver has no set_properties hook";
        if (r == TETHER_ERR_NOT_WRITABLE)
                return ": the driver does not let this key be set";
        if (r == TETHER_ERR_NOT_PRIVILEGED || r == TETHER_ERR_NOT_PERMITTED)
                return ": permission denied";
        if (r == TETHER_ERR_BUSY)
                return ": the device is busy (another client holds it)";
        return "";
}

int reg_cmd_set(int argc, char **argv)
{
        static const struct option opts[] = {
                { "type", required_argument, NULL, 't' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        value_type forced = { 0 };
        bool have_type = false;
        int c;
        while ((c = getopt_long(argc, argv, "+t:h", opts, NULL)) != -1) {
                if (c == 't') {
                        if (!type_from_name(optarg, &forced)) {
                                fprintf(stderr, "tether reg set: -t %s: not a type (int8..int64, uint8..uint64, "
                                                "double, bool, string, data)\n", optarg);
                                return 2;
                        }
                        have_type = true;
                } else if (c == 'h') {
                        printf("usage: tether reg set [-t TYPE] ENTRY KEY VALUE\n");
                        return 0;
                } else {
                        fprintf(stderr, "usage: tether reg set [-t TYPE] ENTRY KEY VALUE\n");
                        return 2;
                }
        }
        if (argc - optind != 3) {
                fprintf(stderr, "usage: tether reg set [-t TYPE] ENTRY KEY VALUE\n");
                return 2;
        }
        const char *spec = argv[optind], *key = argv[optind + 1], *text = argv[optind + 2];
        tether_session *s = NULL;
        if (tool_open("tether reg", &s) != TETHER_SUCCESS)
                return 1;
        uint64_t id = 0;
        tether_entry_info *info = NULL;
        tether_value *now = NULL, *v = NULL, *dict = NULL, *after = NULL;
        char *name = NULL, *vtext = NULL, *why = NULL;
        char tname[16];
        int status = 1;
        if (tool_resolve_entry(s, "tether reg", spec, &id) != TETHER_SUCCESS)
                goto out;
        tether_ret_t r = tether_registry_entry_get_info(s, id, &info);
        if (r == TETHER_SUCCESS && !(name = reg_display_name(info)))
                r = TETHER_ERR_NO_MEMORY;
        if (r != TETHER_SUCCESS) {
                tool_fail("tether reg", spec, r);
                goto out;
        }
        value_type t = forced;
        r = tether_registry_entry_get_property(s, id, key, &now);
        if (!have_type && r == TETHER_SUCCESS)
                t = (value_type){ tether_value_get_type(now), tether_value_get_bits(now) };
        else if (!have_type)
                t = guess(text);
        type_name(t, tname, sizeof(tname));
        r = parse_as(text, t, &v);
        if (r == TETHER_ERR_UNSUPPORTED) {
                fprintf(stderr,
                        "tether reg set: %s holds a container (%s); reg set writes single values "
                        "(-t TYPE replaces it)\n",
                        key, tname);
                status = 2;
                goto out;
        }
        if (r != TETHER_SUCCESS) {
                fprintf(stderr, "tether reg set: \"%s\" is not a %s%s\n", text, tname,
                        have_type ? "" : now ? " (the type it has now; -t sets another)" : "");
                status = 2;
                goto out;
        }
        r = tether_value_new_dict(&dict);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set(dict, key, v);
        if (r == TETHER_SUCCESS)
                r = reg_value_text(v, false, &vtext);
        if (r != TETHER_SUCCESS) {
                tool_fail("tether reg", "set", r);
                goto out;
        }
        r = tether_registry_entry_set_properties_why(s, id, dict, &why);
        if (r != TETHER_SUCCESS) {
                /* The driver's own words when it gave some (libtether
                 * admits only printable text); else what the error means
                 * for this command. */
                if (tool_daemon_gone(r))
                        tool_fail("tether reg", "set", r);
                else
                        fprintf(stderr, "tether reg set: %s (id 0x%" PRIx64 ") refused %s = %s (%s): %s (%s)%s%s\n", name,
                                id, key, vtext, tname, tether_ret_name(r), tether_strerror(r), why && *why ? ": " : "",
                                why && *why ? why : hint(r, info));
                goto out;
        }
        /* What the table holds now: the driver may have stored its own
         * width, or the instrument's rounding of the value sent. */
        free(vtext);
        vtext = NULL;
        if (tether_registry_entry_get_property(s, id, key, &after) == TETHER_SUCCESS) {
                type_name((value_type){ tether_value_get_type(after), tether_value_get_bits(after) }, tname,
                          sizeof(tname));
                reg_value_text(after, false, &vtext);
        }
        printf("%s (id 0x%" PRIx64 ") accepted %s = %s (%s)\n", name, id, key, vtext ? vtext : "?", tname);
        status = 0;
out:
        free(why);
        free(vtext);
        free(name);
        tether_value_unref(after);
        tether_value_unref(dict);
        tether_value_unref(v);
        tether_value_unref(now);
        tether_entry_info_free(info);
        tether_session_close(s);
        return status;
}
