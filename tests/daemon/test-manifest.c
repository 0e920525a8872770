/* SPDX-License-Identifier: MIT */
/*
 * Bundle manifests: the example of docs/bundles.md read from the page
 * itself, each rule of schema 1 broken once (the reason must name the key),
 * bundle folders on disk, and the access policy.
 *
 * Users and groups used are Debian's fixed ones (base-passwd): root 0:0,
 * daemon 1:1, bin 2:2, sys 3:3, nobody 65534:65534, and groups root,
 * daemon, bin, sys with no members.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/manifest.h"

#define BUNDLE_DIR "/opt/bundles/org.t.x.tether"

/* ---- JSON written with ' for " ---- */

static char *dq(const char *s)
{
        char *d = strdup(s);
        assert_non_null(d);
        for (char *c = d; *c; c++)
                if (*c == '\'')
                        *c = '"';
        return d;
}

static manifest *parse_ok(const char *json)
{
        char *text = dq(json);
        char why[MANIFEST_WHY_SIZE];
        manifest *m = NULL;
        tether_ret_t r = manifest_parse(text, strlen(text), BUNDLE_DIR, &m, why, sizeof(why));
        if (r != TETHER_SUCCESS)
                fail_msg("refused: %s\n%s", why, text);
        free(text);
        assert_non_null(m);
        return m;
}

/* Refused, with want (also in ' quoting) somewhere in the reason. */
static void refuse(const char *json, const char *want)
{
        char *text = dq(json), *w = dq(want);
        char why[MANIFEST_WHY_SIZE];
        manifest *m = (manifest *)1;
        tether_ret_t r = manifest_parse(text, strlen(text), BUNDLE_DIR, &m, why, sizeof(why));
        if (r != TETHER_ERR_BAD_ARGUMENT || !strstr(why, w))
                fail_msg("got %s, \"%s\", wanted BadArgument with \"%s\" for\n%s", tether_ret_name(r), why, w, text);
        assert_null(m);
        free(text);
        free(w);
}

#define HEAD "'schema': 1, 'bundle': 'org.t.x', 'version': '1.0', 'library': 'x.so'"
#define PERS(extra) "'personalities': {'P': {'driver': 'D', 'IOProviderClass': 'C'" extra "}}"
/* A whole manifest with extra keys in its personality P. */
#define WITH_P(extra) "{" HEAD ", " PERS(extra) "}"
/* A whole manifest with extra top-level keys. */
#define WITH(extra) "{" HEAD ", " PERS("") extra "}"

static char *repeat(char c, size_t n)
{
        char *s = malloc(n + 1);
        assert_non_null(s);
        memset(s, c, n);
        s[n] = '\0';
        return s;
}

/* asprintf that cannot fail a test silently. */
__attribute__((format(printf, 1, 2)))
static char *fmt(const char *f, ...)
{
        va_list ap;
        va_start(ap, f);
        char *s = NULL;
        assert_true(vasprintf(&s, f, ap) >= 0);
        va_end(ap);
        return s;
}

/* ---- building expected values ---- */

static tether_value *dict(void)
{
        tether_value *d = NULL;
        assert_int_equal(tether_value_new_dict(&d), TETHER_SUCCESS);
        return d;
}

static void put(tether_value *d, const char *key, tether_value *item)
{
        assert_int_equal(tether_value_dict_set(d, key, item), TETHER_SUCCESS);
        tether_value_unref(item);
}

static void assert_value_equal(const tether_value *got, const tether_value *want)
{
        if (!tether_value_equal(got, want)) {
                char *g = NULL, *w = NULL;
                tether_value_format(got, &g);
                tether_value_format(want, &w);
                fail_msg("got\n%s\nwanted\n%s", g, w);
        }
}

static gid_t group_id(const char *name)
{
        struct group *g = getgrnam(name);
        return g ? g->gr_gid : (gid_t)-1;
}

/* ---- the example of docs/bundles.md ---- */

/* The first ```json block of the page, as the reader sees it. */
static char *docs_example(void)
{
        FILE *f = fopen(BUNDLES_MD, "r");
        assert_non_null(f);
        static char page[64 * 1024];
        size_t n = fread(page, 1, sizeof(page) - 1, f);
        fclose(f);
        page[n] = '\0';
        char *start = strstr(page, "```json\n");
        assert_non_null(start);
        start += strlen("```json\n");
        char *end = strstr(start, "```");
        assert_non_null(end);
        return strndup(start, (size_t)(end - start));
}

static void check_example(manifest *m, gid_t tether_gid)
{
        assert_string_equal(m->dir, BUNDLE_DIR);
        assert_string_equal(m->bundle_id, "org.tether.example");
        assert_string_equal(m->version, "1.0.0");
        assert_string_equal(m->library, BUNDLE_DIR "/example.so");
        assert_string_equal(m->user, "nobody");

        assert_int_equal(m->n_personalities, 2);
        manifest_personality *p = &m->personalities[0];
        assert_string_equal(p->name, "ExampleDriver");
        assert_string_equal(p->driver, "ExampleDriver");
        assert_int_equal(p->score, 0);
        tether_value *want = dict();
        assert_int_equal(tether_value_dict_set_string(want, "IOProviderClass", "TetherResources"), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_uint(want, "IOProbeScore", 0, 64), TETHER_SUCCESS);
        assert_value_equal(p->matching, want);
        tether_value_unref(want);

        p = &m->personalities[1];
        assert_string_equal(p->name, "ExampleDevice");
        assert_string_equal(p->driver, "ExampleDevice");
        assert_int_equal(p->score, 0);
        want = dict();
        assert_int_equal(tether_value_dict_set_string(want, "IOProviderClass", "ExampleDeviceNub"), TETHER_SUCCESS);
        tether_value *props = dict();
        assert_int_equal(tether_value_dict_set_uint(props, "Unit", 7, 64), TETHER_SUCCESS);
        put(want, "IOPropertyMatch", props);
        assert_value_equal(p->matching, want);
        tether_value_unref(want);

        assert_true(m->default_access.anyone);
        assert_int_equal(m->default_access.n_uids, 0);
        assert_int_equal(m->default_access.n_gids, 0);
        assert_int_equal(m->n_access, 1);
        const manifest_access *a = &m->access[0];
        assert_int_equal(a->type, 1);
        assert_false(a->anyone);
        assert_int_equal(a->n_uids, 1);
        assert_int_equal(a->uids[0], 0);
        assert_int_equal(a->n_gids, 1);
        assert_int_equal(a->gids[0], tether_gid);
}

static void docs_example_parses_to_what_it_says(void **state)
{
        char *text = docs_example();
        char why[MANIFEST_WHY_SIZE];
        manifest *m = NULL;
        tether_ret_t r = manifest_parse(text, strlen(text), BUNDLE_DIR, &m, why, sizeof(why));
        gid_t tether_gid = group_id("tether");
        if (tether_gid != (gid_t)-1) {
                assert_int_equal(r, TETHER_SUCCESS);
                check_example(m, tether_gid);
                manifest_free(m);
        } else {
                /* The page names the group a tether package would make. */
                assert_int_equal(r, TETHER_ERR_BAD_ARGUMENT);
                assert_string_equal(why, "access.1.groups[0]: no such group \"tether\"");
        }

        /* The same page with a group every Debian system has. */
        char *at = strstr(text, "\"groups\": [\"tether\"]");
        assert_non_null(at);
        char *other = fmt("%.*s\"groups\": [\"daemon\"]%s", (int)(at - text), text,
                          at + strlen("\"groups\": [\"tether\"]"));
        m = NULL;
        r = manifest_parse(other, strlen(other), BUNDLE_DIR, &m, why, sizeof(why));
        if (r != TETHER_SUCCESS)
                fail_msg("%s", why);
        check_example(m, 1);
        manifest_free(m);
        free(other);
        free(text);
}

/* ---- values ---- */

static void minimal_manifest_defaults(void **state)
{
        manifest *m = parse_ok(WITH(""));
        assert_null(m->user);
        assert_int_equal(m->n_personalities, 1);
        assert_string_equal(m->personalities[0].name, "P");
        assert_string_equal(m->personalities[0].driver, "D");
        assert_int_equal(m->personalities[0].score, 0);
        tether_value *want = dict();
        assert_int_equal(tether_value_dict_set_string(want, "IOProviderClass", "C"), TETHER_SUCCESS);
        assert_value_equal(m->personalities[0].matching, want);
        tether_value_unref(want);
        assert_true(m->default_access.anyone);
        assert_int_equal(m->n_access, 0);
        manifest_free(m);
}

static void json_numbers_and_values(void **state)
{
        manifest *m = parse_ok(WITH_P(", 'IOPropertyMatch': {'u': 7, 'big': 18446744073709551614, 'i': -3,"
                                      " 'min': -9223372036854775807, 'd': 1.5, 'e': 1e3, 'one': 1.0, 'z': -0,"
                                      " 't': true, 'f': false, 's': '\\u00e9t\\u00e9', 'empty': '',"
                                      " 'a': [1, 'x', [], {}], 'o': {'k': {'k': 'v'}}}, 'IOProbeScore': -5,"
                                      " 'IONameMatch': ['a', 'b'], 'IOMatchCategory': 'cat'"));
        manifest_personality *p = &m->personalities[0];
        assert_int_equal(p->score, -5);
        assert_string_equal(p->category, "cat");

        tether_value *props = dict(), *v = NULL;
        assert_int_equal(tether_value_dict_set_uint(props, "u", 7, 64), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_uint(props, "big", UINT64_MAX - 1, 64), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_int(props, "i", -3, 64), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_int(props, "min", -INT64_MAX, 64), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_double(props, "d", 1.5), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_double(props, "e", 1000.0), TETHER_SUCCESS);
        /* Written with a fraction: a double, whatever its value. */
        assert_int_equal(tether_value_dict_set_double(props, "one", 1.0), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_uint(props, "z", 0, 64), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_bool(props, "t", true), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_bool(props, "f", false), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_string(props, "s", "\xc3\xa9t\xc3\xa9"), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_string(props, "empty", ""), TETHER_SUCCESS);
        tether_value *a = NULL, *inner = NULL;
        assert_int_equal(tether_value_new_array(&a), TETHER_SUCCESS);
        assert_int_equal(tether_value_new_uint(1, 64, &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_array_append(a, v), TETHER_SUCCESS);
        v = tether_value_unref(v);
        assert_int_equal(tether_value_new_string("x", &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_array_append(a, v), TETHER_SUCCESS);
        v = tether_value_unref(v);
        assert_int_equal(tether_value_new_array(&inner), TETHER_SUCCESS);
        assert_int_equal(tether_value_array_append(a, inner), TETHER_SUCCESS);
        inner = tether_value_unref(inner);
        inner = dict();
        assert_int_equal(tether_value_array_append(a, inner), TETHER_SUCCESS);
        inner = tether_value_unref(inner);
        put(props, "a", a);
        tether_value *o = dict(), *k = dict();
        assert_int_equal(tether_value_dict_set_string(k, "k", "v"), TETHER_SUCCESS);
        put(o, "k", k);
        put(props, "o", o);

        tether_value *want = dict();
        assert_int_equal(tether_value_dict_set_string(want, "IOProviderClass", "C"), TETHER_SUCCESS);
        put(want, "IOPropertyMatch", props);
        assert_int_equal(tether_value_dict_set_int(want, "IOProbeScore", -5, 64), TETHER_SUCCESS);
        tether_value *names = NULL;
        assert_int_equal(tether_value_new_array(&names), TETHER_SUCCESS);
        for (const char *const *n = (const char *const[]){ "a", "b", NULL }; *n; n++) {
                assert_int_equal(tether_value_new_string(*n, &v), TETHER_SUCCESS);
                assert_int_equal(tether_value_array_append(names, v), TETHER_SUCCESS);
                v = tether_value_unref(v);
        }
        put(want, "IONameMatch", names);
        assert_int_equal(tether_value_dict_set_string(want, "IOMatchCategory", "cat"), TETHER_SUCCESS);
        assert_value_equal(p->matching, want);
        tether_value_unref(want);
        manifest_free(m);
}

static void parent_match_nests(void **state)
{
        manifest *m = parse_ok(WITH_P(", 'IONameMatch': 'n', 'IOParentMatch': {'IOProviderClass': 'Bus',"
                                      " 'IOParentMatch': {'IONameMatch': 'root', 'IOPropertyMatch': {'x': 1}}}"));
        tether_value *grand = dict(), *props = dict();
        assert_int_equal(tether_value_dict_set_string(grand, "IONameMatch", "root"), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_uint(props, "x", 1, 64), TETHER_SUCCESS);
        put(grand, "IOPropertyMatch", props);
        tether_value *parent = dict();
        assert_int_equal(tether_value_dict_set_string(parent, "IOProviderClass", "Bus"), TETHER_SUCCESS);
        put(parent, "IOParentMatch", grand);
        tether_value *want = dict();
        assert_int_equal(tether_value_dict_set_string(want, "IOProviderClass", "C"), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_string(want, "IONameMatch", "n"), TETHER_SUCCESS);
        put(want, "IOParentMatch", parent);
        assert_value_equal(m->personalities[0].matching, want);
        tether_value_unref(want);
        manifest_free(m);
}

/* A dictionary as deep as a tether_value may be is kept, and survives the
 * wire; one level more is refused by key path. */
static void nesting_is_bounded(void **state)
{
        /* The personality is depth 1, IOPropertyMatch 2, each array one more. */
        size_t arrays = TETHER_VALUE_MAX_DEPTH - 2;
        char *open = repeat('[', arrays), *close = repeat(']', arrays);
        char *json = fmt(WITH_P(", 'IOPropertyMatch': {'a': %s%s}"), open, close);
        manifest *m = parse_ok(json);
        uint8_t *buf = NULL;
        size_t len = 0;
        tether_value *back = NULL;
        assert_int_equal(tether_value_encode(m->personalities[0].matching, &buf, &len), TETHER_SUCCESS);
        assert_int_equal(tether_value_decode(buf, len, &back), TETHER_SUCCESS);
        assert_value_equal(back, m->personalities[0].matching);
        tether_value_unref(back);
        free(buf);
        manifest_free(m);
        free(json);
        free(open);
        free(close);

        open = repeat('[', arrays + 1);
        close = repeat(']', arrays + 1);
        json = fmt(WITH_P(", 'IOPropertyMatch': {'a': %s%s}"), open, close);
        refuse(json, "personalities.P.IOPropertyMatch.a[0][0]");
        refuse(json, "nested deeper than 32 levels");
        free(json);
        free(open);
        free(close);

        /* Far deeper: json-c's own bound. */
        open = repeat('[', 1000);
        close = repeat(']', 1000);
        json = fmt(WITH_P(", 'IOPropertyMatch': {'a': %s%s}"), open, close);
        refuse(json, "not JSON: nesting too deep");
        free(json);
        free(open);
        free(close);

        /* IOParentMatch counts too: the personality and 31 of them fit. */
        char *chain = strdup("{}");
        for (int i = 0; i < TETHER_VALUE_MAX_DEPTH - 2; i++) {
                char *next = fmt("{'IOParentMatch': %s}", chain);
                free(chain);
                chain = next;
        }
        json = fmt(WITH_P(", 'IOParentMatch': %s"), chain);
        m = parse_ok(json);
        manifest_free(m);
        free(json);
        json = fmt(WITH_P(", 'IOParentMatch': {'IOParentMatch': %s}"), chain);
        refuse(json, "IOParentMatch.IOParentMatch.IOParentMatch");
        refuse(json, "IOParentMatch: nested deeper than 32 levels");
        free(json);
        free(chain);
}

/* ---- the rules, each broken once ---- */

static void not_json(void **state)
{
        refuse("", "not JSON: the text ends before the object does");
        refuse("{", "not JSON: the text ends before the object does");
        refuse("{'schema': 1,}", "not JSON");
        refuse("{} x", "not JSON: unexpected character at byte 3");
        refuse("[1]", "not a JSON object but an array");
        refuse("null\n", "not a JSON object but null");
        refuse("1", "not JSON: the text ends before");
        refuse("'x'", "not a JSON object but a string");
        refuse("{'a': '\xff'}", "not JSON: invalid utf-8");
        /* json-c stops at a NUL: what follows must not be ignored. */
        char text[] = "{\"schema\": 1}\0{\"more\": 1}";
        char why[MANIFEST_WHY_SIZE];
        manifest *m = NULL;
        assert_int_equal(manifest_parse(text, sizeof(text) - 1, BUNDLE_DIR, &m, why, sizeof(why)), TETHER_ERR_BAD_ARGUMENT);
        assert_string_equal(why, "not JSON: a NUL byte at byte 13");
        assert_null(m);
}

static void schema_must_be_1(void **state)
{
        refuse("{'bundle': 'org.t.x'}", "schema is missing");
        refuse("{'schema': 2, 'anything': 'new'}", "schema: 2 is not a schema this tetherd reads (it reads 1)");
        refuse("{'schema': 0}", "schema: 0 is not a schema");
        refuse("{'schema': '1'}", "schema: must be an integer, not a string");
        refuse("{'schema': 1.0}", "schema: must be an integer, not a number with a fraction");
        refuse("{'schema': 4294967297}", "schema: 4294967297 is not a schema");
}

static void unknown_top_level_key(void **state)
{
        refuse(WITH(", 'personality': {}"), "unknown key 'personality'");
        refuse(WITH(", 'Schema': 1"), "unknown key 'Schema'");
        /* Control characters in a key are escaped: no forged log lines. */
        refuse(WITH(", 'a\\nb': 1"), "unknown key 'a\\x0ab'");
}

static void required_keys(void **state)
{
        refuse("{'schema': 1, 'version': '1', 'library': 'x.so', " PERS("") "}", "bundle is missing");
        refuse("{'schema': 1, 'bundle': 'a', 'library': 'x.so', " PERS("") "}", "version is missing");
        refuse("{'schema': 1, 'bundle': 'a', 'version': '1', " PERS("") "}", "library is missing");
        refuse("{" HEAD "}", "personalities is missing");
}

static void bundle_id_rule(void **state)
{
        refuse("{'schema': 1, 'bundle': 7}", "bundle: must be a string, not an integer");
        refuse("{'schema': 1, 'bundle': ''}", "bundle: must not be empty");
        refuse("{'schema': 1, 'bundle': 'org/evil'}", "bundle: only letters, digits,");
        refuse("{'schema': 1, 'bundle': 'org evil'}", "bundle: only letters");
        refuse("{'schema': 1, 'bundle': 'org_evil'}", "bundle: only letters");
        refuse("{'schema': 1, 'bundle': 'org.\\u00e9'}", "bundle: only letters");
        refuse("{'schema': 1, 'bundle': '.org.t'}", "bundle: an empty label");
        refuse("{'schema': 1, 'bundle': 'org.t.'}", "bundle: an empty label");
        refuse("{'schema': 1, 'bundle': 'org..t'}", "bundle: an empty label");
        refuse("{'schema': 1, 'bundle': 'a\\u0000b'}", "bundle: contains a NUL character");

        char *id = repeat('a', MANIFEST_MAX_BUNDLE_ID);
        char *json = fmt("{'schema': 1, 'bundle': '%s', 'version': '1', 'library': 'x.so', " PERS("") "}", id);
        manifest *m = parse_ok(json);
        assert_string_equal(m->bundle_id, id);
        manifest_free(m);
        free(json);
        free(id);
        id = repeat('a', MANIFEST_MAX_BUNDLE_ID + 1);
        json = fmt("{'schema': 1, 'bundle': '%s'}", id);
        refuse(json, "bundle: is longer than 128 bytes");
        free(json);
        free(id);

        m = parse_ok("{'schema': 1, 'bundle': 'Org-1.t-2.X', 'version': '1', 'library': 'x.so', " PERS("") "}");
        manifest_free(m);
}

static void version_rule(void **state)
{
        refuse("{'schema': 1, 'version': 1}", "version: must be a string, not an integer");
        refuse("{'schema': 1, 'version': ''}", "version: must not be empty");
        refuse("{'schema': 1, 'version': '1\\t0'}", "version: only printable ASCII");
        refuse("{'schema': 1, 'version': '1-\\u03b2'}", "version: only printable ASCII");
        char *v = repeat('9', MANIFEST_MAX_VERSION + 1);
        char *json = fmt("{'schema': 1, 'version': '%s'}", v);
        refuse(json, "version: is longer than 32 bytes");
        free(json);
        v[MANIFEST_MAX_VERSION] = '\0';
        json = fmt("{'schema': 1, 'bundle': 'a', 'version': '%s', 'library': 'x.so', " PERS("") "}", v);
        manifest *m = parse_ok(json);
        assert_string_equal(m->version, v);
        manifest_free(m);
        free(json);
        free(v);
        m = parse_ok("{'schema': 1, 'bundle': 'a', 'version': '1.0 (beta~2)', 'library': 'x.so', " PERS("") "}");
        manifest_free(m);
}

static void library_rule(void **state)
{
        refuse("{'schema': 1, 'library': ['x.so']}", "library: must be a string, not an array");
        refuse("{'schema': 1, 'library': ''}", "library: must not be empty");
        refuse("{'schema': 1, 'library': 'lib/x.so'}", "library: must be a file name in the bundle folder, without");
        refuse("{'schema': 1, 'library': '/usr/lib/x.so'}", "library: must be a file name");
        refuse("{'schema': 1, 'library': '.'}", "library: must be a file name");
        refuse("{'schema': 1, 'library': '..'}", "library: must be a file name");
        char *name = repeat('l', MANIFEST_MAX_LIBRARY + 1);
        char *json = fmt("{'schema': 1, 'library': '%s'}", name);
        refuse(json, "library: is longer than 255 bytes");
        free(json);
        name[MANIFEST_MAX_LIBRARY] = '\0';
        json = fmt("{'schema': 1, 'bundle': 'a', 'version': '1', 'library': '%s', " PERS("") "}", name);
        manifest *m = parse_ok(json);
        char *want = fmt(BUNDLE_DIR "/%s", name);
        assert_string_equal(m->library, want);
        manifest_free(m);
        free(want);
        free(json);
        free(name);
        m = parse_ok("{'schema': 1, 'bundle': 'a', 'version': '1', 'library': '..x.so', " PERS("") "}");
        assert_string_equal(m->library, BUNDLE_DIR "/..x.so");
        manifest_free(m);
}

static void user_rule(void **state)
{
        manifest *m = parse_ok(WITH(", 'user': 'daemon'"));
        assert_string_equal(m->user, "daemon");
        manifest_free(m);
        refuse(WITH(", 'user': 'root'"), "user: \"root\" is root (uid 0): a driver host never runs as root");
        refuse(WITH(", 'user': 'no-such-user-here'"), "user: no such user \"no-such-user-here\"");
        refuse(WITH(", 'user': ''"), "user: must not be empty");
        refuse(WITH(", 'user': 0"), "user: must be a string, not an integer");
        refuse(WITH(", 'user': null"), "user: must be a string, not null");
}

static void personalities_count(void **state)
{
        refuse("{" HEAD ", 'personalities': {}}", "personalities: must have 1 to 64 entries, not 0");
        refuse("{" HEAD ", 'personalities': []}", "personalities: must be an object, not an array");
        refuse("{" HEAD ", 'personalities': {'P': 'C'}}", "personalities.P: must be an object, not a string");

        char *many = strdup("");
        for (unsigned i = 0; i < MANIFEST_MAX_PERSONALITIES; i++) {
                char *next = fmt("%s%s'P%u': {'driver': 'D%u', 'IOProviderClass': 'C', 'IOProbeScore': %u}",
                                 many, i ? ", " : "", i, i, i);
                free(many);
                many = next;
        }
        char *json = fmt("{" HEAD ", 'personalities': {%s}}", many);
        manifest *m = parse_ok(json);
        assert_int_equal(m->n_personalities, MANIFEST_MAX_PERSONALITIES);
        /* In file order, each with its own score. */
        for (unsigned i = 0; i < MANIFEST_MAX_PERSONALITIES; i++) {
                char name[16];
                snprintf(name, sizeof(name), "P%u", i);
                assert_string_equal(m->personalities[i].name, name);
                assert_int_equal(m->personalities[i].score, i);
        }
        manifest_free(m);
        free(json);
        json = fmt("{" HEAD ", 'personalities': {%s, 'Q': {'driver': 'D', 'IOProviderClass': 'C'}}}", many);
        refuse(json, "personalities: must have 1 to 64 entries, not 65");
        free(json);
        free(many);
}

static void personality_names(void **state)
{
        refuse("{" HEAD ", 'personalities': {'': {'driver': 'D', 'IOProviderClass': 'C'}}}",
               "personalities.\"\": a personality");
        refuse("{" HEAD ", 'personalities': {'a\\u0001': {'driver': 'D', 'IOProviderClass': 'C'}}}",
               "name contains a control character");
        char *name = repeat('n', MANIFEST_MAX_NAME + 1);
        char *json = fmt("{" HEAD ", 'personalities': {'%s': {'driver': 'D', 'IOProviderClass': 'C'}}}", name);
        refuse(json, "name is longer than 128 bytes");
        free(json);
        free(name);
}

static void personality_driver(void **state)
{
        refuse("{" HEAD ", 'personalities': {'P': {'IOProviderClass': 'C'}}}", "personalities.P: driver is missing");
        refuse("{" HEAD ", 'personalities': {'P': {'driver': 'D'}}}", "personalities.P: IOProviderClass is missing");
        refuse("{" HEAD ", 'personalities': {'P': {'driver': '', 'IOProviderClass': 'C'}}}",
               "personalities.P.driver: must not be empty");
        refuse("{" HEAD ", 'personalities': {'P': {'driver': true, 'IOProviderClass': 'C'}}}",
               "personalities.P.driver: must be a string, not a boolean");
        refuse("{" HEAD ", 'personalities': {'P': {'driver': 'a\\nb', 'IOProviderClass': 'C'}}}",
               "personalities.P.driver: contains a control character");
        char *d = repeat('d', MANIFEST_MAX_NAME + 1);
        char *json = fmt("{" HEAD ", 'personalities': {'P': {'driver': '%s', 'IOProviderClass': 'C'}}}", d);
        refuse(json, "personalities.P.driver: is longer than 128 bytes");
        free(json);
        d[MANIFEST_MAX_NAME] = '\0';
        json = fmt("{" HEAD ", 'personalities': {'P': {'driver': '%s', 'IOProviderClass': 'C'}}}", d);
        manifest *m = parse_ok(json);
        assert_string_equal(m->personalities[0].driver, d);
        manifest_free(m);
        free(json);
        free(d);
}

static void personality_keys(void **state)
{
        /* Only driver and the IO* matching keys. */
        refuse(WITH_P(", 'IOClass': 'X'"), "personalities.P: unknown key \"IOClass\"");
        refuse(WITH_P(", 'IORegistryEntryID': 5"), "personalities.P: unknown key \"IORegistryEntryID\"");
        refuse(WITH_P(", 'ioProviderClass': 'C'"), "personalities.P: unknown key \"ioProviderClass\"");
        refuse(WITH_P(", 'CFBundleIdentifier': 'x'"), "unknown key \"CFBundleIdentifier\"");
}

static void matching_key_types(void **state)
{
        refuse("{" HEAD ", 'personalities': {'P': {'driver': 'D', 'IOProviderClass': 7}}}",
               "personalities.P.IOProviderClass: must be a string, not an integer");
        refuse(WITH_P(", 'IONameMatch': 7"), "personalities.P.IONameMatch: must be a string or an array of strings");
        refuse(WITH_P(", 'IONameMatch': ['a', 7]"), "personalities.P.IONameMatch: must be a string or an array of strings");
        refuse(WITH_P(", 'IOPropertyMatch': [1]"), "personalities.P.IOPropertyMatch: must be an object, not an array");
        refuse(WITH_P(", 'IOParentMatch': 'Bus'"), "personalities.P.IOParentMatch: must be an object, not a string");
        refuse(WITH_P(", 'IOProbeScore': '10'"), "personalities.P.IOProbeScore: must be an integer, not a string");
        refuse(WITH_P(", 'IOProbeScore': 1.5"), "personalities.P.IOProbeScore: must be an integer, not a number");
        refuse(WITH_P(", 'IOProbeScore': 9223372036854775808"), "personalities.P.IOProbeScore: is above 9223372036854775807");
        refuse(WITH_P(", 'IOMatchCategory': ['a']"), "personalities.P.IOMatchCategory: must be a string, not an array");
        /* A category is named in log lines and in its service's table. */
        refuse(WITH_P(", 'IOMatchCategory': ''"), "personalities.P.IOMatchCategory: must not be empty");
        refuse(WITH_P(", 'IOMatchCategory': 'a\\nb'"), "personalities.P.IOMatchCategory: contains a control character");
        refuse(WITH_P(", 'IOMatchCategory': 'a\\u0000b'"), "personalities.P.IOMatchCategory: contains a NUL character");
        refuse(WITH_P(", 'IOProviderClass': 'a\\u0000b'"), "personalities.P.IOProviderClass: contains a NUL character");

        /* Inside IOParentMatch, only the keys that match something. */
        refuse(WITH_P(", 'IOParentMatch': {'IOProviderClas': 'Bus'}"),
               "personalities.P.IOParentMatch: unknown key \"IOProviderClas\"");
        refuse(WITH_P(", 'IOParentMatch': {'IOProbeScore': 1}"), "personalities.P.IOParentMatch: unknown key \"IOProbeScore\"");
        refuse(WITH_P(", 'IOParentMatch': {'driver': 'D'}"), "personalities.P.IOParentMatch: unknown key \"driver\"");
        refuse(WITH_P(", 'IOParentMatch': {'IOParentMatch': {'IOProviderClass': 1}}"),
               "personalities.P.IOParentMatch.IOParentMatch.IOProviderClass: must be a string");

        manifest *m = parse_ok(WITH_P(", 'IOProbeScore': 9223372036854775807"));
        assert_int_equal(m->personalities[0].score, INT64_MAX);
        assert_string_equal(m->personalities[0].category, "IODefaultMatchCategory");
        manifest_free(m);
        m = parse_ok(WITH_P(", 'IOProbeScore': -9223372036854775807"));
        assert_int_equal(m->personalities[0].score, -INT64_MAX);
        manifest_free(m);
}

static void matching_values(void **state)
{
        refuse(WITH_P(", 'IOPropertyMatch': {'x': null}"), "personalities.P.IOPropertyMatch.x: null is not a value");
        refuse(WITH_P(", 'IOPropertyMatch': {'x': [1, null]}"), "personalities.P.IOPropertyMatch.x[1]: null is not a value");
        refuse(WITH_P(", 'IOPropertyMatch': {'x': NaN}"), "personalities.P.IOPropertyMatch.x: is not a finite number");
        refuse(WITH_P(", 'IOPropertyMatch': {'x': -Infinity}"), "is not a finite number");
        refuse(WITH_P(", 'IOPropertyMatch': {'x': 1e999}"), "is not a finite number");
        /* json-c saturates what does not fit: the extremes are refused. */
        refuse(WITH_P(", 'IOPropertyMatch': {'x': 18446744073709551616}"), "IOPropertyMatch.x: integer out of range");
        refuse(WITH_P(", 'IOPropertyMatch': {'x': 18446744073709551615}"), "integer out of range");
        refuse(WITH_P(", 'IOPropertyMatch': {'x': -9223372036854775809}"), "integer out of range");
        refuse(WITH_P(", 'IOPropertyMatch': {'x': -9223372036854775808}"), "integer out of range");
        refuse(WITH_P(", 'IOPropertyMatch': {'x': 'a\\u0000b'}"), "IOPropertyMatch.x: contains a NUL character");
        refuse(WITH_P(", 'IOPropertyMatch': {'o': {'k': [{'n': null}]}}"), "IOPropertyMatch.o.k[0].n: null is not a value");
}

static void duplicate_keys_keep_the_last(void **state)
{
        /* json-c cannot report them (manifest.c says why): this pins what
         * happens, so a json-c that can is noticed. */
        manifest *m = parse_ok(WITH(", 'access': {'1': {'users': ['*']}, '1': {'users': []}}"));
        assert_int_equal(m->n_access, 1);
        assert_false(m->access[0].anyone);
        manifest_free(m);
}

static void access_rules(void **state)
{
        refuse(WITH(", 'access': []"), "access: must be an object, not an array");
        refuse(WITH(", 'access': {'01': {}}"), "access: \"01\" is neither \"default\" nor a user-client type");
        refuse(WITH(", 'access': {'4294967296': {}}"), "access: \"4294967296\" is neither");
        refuse(WITH(", 'access': {'-1': {}}"), "access: \"-1\" is neither");
        refuse(WITH(", 'access': {'+1': {}}"), "access: \"+1\" is neither");
        refuse(WITH(", 'access': {' 1': {}}"), "access: \" 1\" is neither");
        refuse(WITH(", 'access': {'': {}}"), "access: \"\" is neither");
        refuse(WITH(", 'access': {'Default': {}}"), "access: \"Default\" is neither");
        refuse(WITH(", 'access': {'1': ['*']}"), "access.1: must be an object, not an array");
        refuse(WITH(", 'access': {'1': {'user': ['*']}}"), "access.1: unknown key \"user\"");
        refuse(WITH(", 'access': {'default': {'users': '*'}}"), "access.default.users: must be an array of strings, not a string");
        refuse(WITH(", 'access': {'1': {'groups': [0]}}"), "access.1.groups[0]: must be a string, not an integer");
        refuse(WITH(", 'access': {'1': {'users': ['daemon', '']}}"), "access.1.users[1]: must not be empty");
        refuse(WITH(", 'access': {'1': {'users': ['root', 'daemon', 'bob-is-not-here']}}"),
               "access.1.users[2]: no such user \"bob-is-not-here\"");
        refuse(WITH(", 'access': {'1': {'groups': ['no-such-group-here']}}"),
               "access.1.groups[0]: no such group \"no-such-group-here\"");
        /* "*" is for users only. */
        refuse(WITH(", 'access': {'1': {'groups': ['*']}}"), "access.1.groups[0]: no such group \"*\"");

        char *names = strdup("'daemon'");
        for (unsigned i = 1; i < MANIFEST_MAX_NAMES; i++) {
                char *next = fmt("%s, 'daemon'", names);
                free(names);
                names = next;
        }
        char *json = fmt(WITH(", 'access': {'1': {'users': [%s], 'groups': [%s]}}"), names, names);
        manifest *m = parse_ok(json);
        assert_int_equal(m->access[0].n_uids, MANIFEST_MAX_NAMES);
        assert_int_equal(m->access[0].n_gids, MANIFEST_MAX_NAMES);
        manifest_free(m);
        free(json);
        json = fmt(WITH(", 'access': {'1': {'users': [%s, 'daemon']}}"), names);
        refuse(json, "access.1.users: has more than 64 names");
        free(json);
        free(names);

        m = parse_ok(WITH(", 'access': {'0': {}, '4294967295': {'users': ['*']}, 'default': {'groups': ['sys']}}"));
        assert_int_equal(m->n_access, 2);
        assert_int_equal(m->access[0].type, 0);
        assert_false(m->access[0].anyone);
        assert_int_equal(m->access[1].type, UINT32_MAX);
        assert_true(m->access[1].anyone);
        assert_false(m->default_access.anyone);
        assert_int_equal(m->default_access.n_gids, 1);
        assert_int_equal(m->default_access.gids[0], 3);
        manifest_free(m);
}

static void reasons_are_bounded(void **state)
{
        /* A long key is cut in the reason; a small buffer is still a string. */
        char *key = repeat('k', 5000);
        char *json = fmt(WITH(", '%s': 1"), key);
        char *text = dq(json);
        char why[MANIFEST_WHY_SIZE];
        manifest *m = NULL;
        assert_int_equal(manifest_parse(text, strlen(text), BUNDLE_DIR, &m, why, sizeof(why)), TETHER_ERR_BAD_ARGUMENT);
        assert_true(strlen(why) < 100);
        assert_non_null(strstr(why, "unknown key \"kkkk"));
        assert_non_null(strstr(why, "...\""));
        char tiny[8];
        assert_int_equal(manifest_parse(text, strlen(text), BUNDLE_DIR, &m, tiny, sizeof(tiny)), TETHER_ERR_BAD_ARGUMENT);
        assert_string_equal(tiny, "unknown");
        assert_int_equal(manifest_parse(text, strlen(text), BUNDLE_DIR, &m, NULL, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_null(m);
        free(text);
        free(json);
        free(key);

        /* A deep path is cut too, and stays one line. */
        char *chain = strdup("null");
        for (int i = 0; i < 30; i++) {
                char *next = fmt("{'a-rather-long-key-name-%d': %s}", i, chain);
                free(chain);
                chain = next;
        }
        json = fmt(WITH_P(", 'IOPropertyMatch': %s"), chain);
        text = dq(json);
        assert_int_equal(manifest_parse(text, strlen(text), BUNDLE_DIR, &m, why, sizeof(why)), TETHER_ERR_BAD_ARGUMENT);
        assert_non_null(strstr(why, "...: null is not a value"));
        assert_null(strchr(why, '\n'));
        free(text);
        free(json);
        free(chain);
}

static void bad_arguments(void **state)
{
        char why[MANIFEST_WHY_SIZE];
        manifest *m = NULL;
        const char *text = "{}";
        assert_int_equal(manifest_parse(text, 2, "relative/org.t.x.tether", &m, why, sizeof(why)), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(manifest_parse(text, 2, NULL, &m, why, sizeof(why)), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(manifest_parse(NULL, 2, BUNDLE_DIR, &m, why, sizeof(why)), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(manifest_parse(text, 2, BUNDLE_DIR, NULL, why, sizeof(why)), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(manifest_load(NULL, &m, why, sizeof(why)), TETHER_ERR_BAD_ARGUMENT);
        /* Too big even before json-c sees it. */
        char *big = repeat(' ', MANIFEST_MAX_SIZE + 1);
        big[0] = '{';
        assert_int_equal(manifest_parse(big, MANIFEST_MAX_SIZE + 1, BUNDLE_DIR, &m, why, sizeof(why)), TETHER_ERR_BAD_ARGUMENT);
        assert_string_equal(why, "larger than 65536 bytes");
        free(big);
        manifest_free(NULL);
}

/* ---- bundle folders ---- */

static char tmp[PATH_MAX];

static int make_tmp(void **state)
{
        snprintf(tmp, sizeof(tmp), "%s/test-manifest-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        assert_non_null(mkdtemp(tmp));
        return 0;
}

static int remove_tmp(void **state)
{
        char *cmd = fmt("chmod -R u+rwx '%s' && rm -rf '%s'", tmp, tmp);
        assert_int_equal(system(cmd), 0);
        free(cmd);
        return 0;
}

static char *bundle_dir(const char *name)
{
        char *dir = fmt("%s/%s", tmp, name);
        assert_int_equal(mkdir(dir, 0755), 0);
        return dir;
}

static void write_file(const char *dir, const char *name, const char *text, size_t len)
{
        char *path = fmt("%s/%s", dir, name);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        assert_int_equal(fwrite(text, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
        free(path);
}

static void write_manifest(const char *dir, const char *json)
{
        char *text = dq(json);
        write_file(dir, MANIFEST_FILE, text, strlen(text));
        free(text);
}

static tether_ret_t load(const char *dir, manifest **m, char *why)
{
        *m = (manifest *)1;
        tether_ret_t r = manifest_load(dir, m, why, MANIFEST_WHY_SIZE);
        if (r != TETHER_SUCCESS)
                assert_null(*m);
        return r;
}

static void load_good_bundle(void **state)
{
        char *dir = bundle_dir("org.t.x.tether");
        write_manifest(dir, WITH(""));
        write_file(dir, "x.so", "\x7f" "ELF", 4);
        char why[MANIFEST_WHY_SIZE];
        manifest *m;
        /* Through a path that is not the real one: dir is made real. */
        char *odd = fmt("%s/./org.t.x.tether/", tmp);
        assert_int_equal(load(odd, &m, why), TETHER_SUCCESS);
        char *real = realpath(dir, NULL);
        assert_string_equal(m->dir, real);
        char *lib = fmt("%s/x.so", real);
        assert_string_equal(m->library, lib);
        assert_string_equal(m->bundle_id, "org.t.x");
        manifest_free(m);
        free(lib);
        free(real);
        free(odd);
        free(dir);
}

static void load_missing(void **state)
{
        char why[MANIFEST_WHY_SIZE];
        manifest *m;
        char *none = fmt("%s/nothing.tether", tmp);
        assert_int_equal(load(none, &m, why), TETHER_ERR_NOT_FOUND);
        assert_string_equal(why, "no such folder");
        free(none);

        char *dir = bundle_dir("org.t.x.tether");
        assert_int_equal(load(dir, &m, why), TETHER_ERR_NOT_FOUND);
        assert_string_equal(why, "manifest.json is missing");

        /* A file where the folder should be. */
        write_file(tmp, "file.tether", "", 0);
        char *file = fmt("%s/file.tether", tmp);
        assert_int_equal(load(file, &m, why), TETHER_ERR_BAD_ARGUMENT);
        assert_string_equal(why, "not a folder");
        free(file);
        free(dir);
}

static void load_unreadable(void **state)
{
        char why[MANIFEST_WHY_SIZE];
        manifest *m;
        char *dir = bundle_dir("org.t.x.tether");
        write_file(dir, "x.so", "", 0);
        write_manifest(dir, WITH(""));
        char *path = fmt("%s/" MANIFEST_FILE, dir);
        assert_int_equal(chmod(path, 0), 0);
        if (geteuid() != 0) {
                assert_int_equal(load(dir, &m, why), TETHER_ERR_IO);
                assert_string_equal(why, "manifest.json: Permission denied");
        } else {
                /* Root reads it anyway: what root may read is fine. */
                assert_int_equal(load(dir, &m, why), TETHER_SUCCESS);
                manifest_free(m);
        }
        assert_int_equal(unlink(path), 0);

        /* Not a regular file: a folder, a FIFO (must not block), a link. */
        assert_int_equal(mkdir(path, 0755), 0);
        assert_int_equal(load(dir, &m, why), TETHER_ERR_BAD_ARGUMENT);
        assert_string_equal(why, "manifest.json is not a regular file");
        assert_int_equal(rmdir(path), 0);
        assert_int_equal(mkfifo(path, 0644), 0);
        assert_int_equal(load(dir, &m, why), TETHER_ERR_BAD_ARGUMENT);
        assert_string_equal(why, "manifest.json is not a regular file");
        assert_int_equal(unlink(path), 0);
        write_manifest(tmp, WITH(""));
        char *elsewhere = fmt("%s/" MANIFEST_FILE, tmp);
        assert_int_equal(symlink(elsewhere, path), 0);
        assert_int_equal(load(dir, &m, why), TETHER_ERR_BAD_ARGUMENT);
        assert_string_equal(why, "manifest.json is a symbolic link");
        free(elsewhere);
        free(path);
        free(dir);
}

static void load_size_limit(void **state)
{
        char why[MANIFEST_WHY_SIZE];
        manifest *m;
        char *dir = bundle_dir("org.t.x.tether");
        write_file(dir, "x.so", "", 0);
        /* Exactly the limit, padded with spaces, is fine. */
        char *json = dq(WITH(""));
        size_t len = strlen(json);
        char *text = repeat(' ', MANIFEST_MAX_SIZE + 1);
        memcpy(text, json, len);
        write_file(dir, MANIFEST_FILE, text, MANIFEST_MAX_SIZE);
        assert_int_equal(load(dir, &m, why), TETHER_SUCCESS);
        manifest_free(m);
        write_file(dir, MANIFEST_FILE, text, MANIFEST_MAX_SIZE + 1);
        assert_int_equal(load(dir, &m, why), TETHER_ERR_BAD_ARGUMENT);
        assert_string_equal(why, "manifest.json is larger than 65536 bytes");
        free(text);
        free(json);
        free(dir);
}

static void load_library(void **state)
{
        char why[MANIFEST_WHY_SIZE];
        manifest *m;
        char *dir = bundle_dir("org.t.x.tether");
        write_manifest(dir, WITH(""));
        assert_int_equal(load(dir, &m, why), TETHER_ERR_BAD_ARGUMENT);
        assert_string_equal(why, "library: \"x.so\" is missing");

        char *lib = fmt("%s/x.so", dir);
        assert_int_equal(mkdir(lib, 0755), 0);
        assert_int_equal(load(dir, &m, why), TETHER_ERR_BAD_ARGUMENT);
        assert_string_equal(why, "library: \"x.so\" is not a regular file");
        assert_int_equal(rmdir(lib), 0);

        /* What runs is what is in the folder. */
        write_file(tmp, "real.so", "", 0);
        char *target = fmt("%s/real.so", tmp);
        assert_int_equal(symlink(target, lib), 0);
        assert_int_equal(load(dir, &m, why), TETHER_ERR_BAD_ARGUMENT);
        assert_string_equal(why, "library: \"x.so\" is not a regular file");
        free(target);
        free(lib);
        free(dir);
}

static void load_folder_name(void **state)
{
        char why[MANIFEST_WHY_SIZE];
        manifest *m;
        const char *wrong[] = { "org.t.y.tether", "org.t.x", "org.t.x.tether.old", "org.t.xtether", "org.t.tether" };
        for (size_t i = 0; i < sizeof(wrong) / sizeof(*wrong); i++) {
                char *dir = bundle_dir(wrong[i]);
                write_manifest(dir, WITH(""));
                write_file(dir, "x.so", "", 0);
                assert_int_equal(load(dir, &m, why), TETHER_ERR_BAD_ARGUMENT);
                assert_string_equal(why, "the folder must be named \"org.t.x.tether\" after the bundle id");
                free(dir);
        }
        /* A bad manifest on disk reports as manifest_parse does. */
        char *dir = bundle_dir("org.t.x.tether");
        write_manifest(dir, WITH(", 'access': {'1': {'users': ['nobody-by-that-name']}}"));
        write_file(dir, "x.so", "", 0);
        assert_int_equal(load(dir, &m, why), TETHER_ERR_BAD_ARGUMENT);
        assert_string_equal(why, "access.1.users[0]: no such user \"nobody-by-that-name\"");
        free(dir);
}

/* ---- the access policy ---- */

static void access_default_is_anyone(void **state)
{
        manifest *m = parse_ok(WITH(""));
        assert_true(manifest_may_open(m, 0, 1000, 1000));
        assert_true(manifest_may_open(m, 7, 65534, 65534));
        manifest_free(m);

        /* An entry for type 1 leaves the others to the default. */
        m = parse_ok(WITH(", 'access': {'1': {'users': ['daemon']}}"));
        assert_false(manifest_may_open(m, 1, 1000, 1000));
        assert_true(manifest_may_open(m, 1, 1, 1));
        assert_true(manifest_may_open(m, 2, 1000, 1000));
        manifest_free(m);

        m = parse_ok(WITH(", 'access': {}"));
        assert_true(manifest_may_open(m, 1, 1000, 1000));
        manifest_free(m);
}

static void access_anyone_and_nobody(void **state)
{
        manifest *m = parse_ok(WITH(", 'access': {'default': {'users': []}, '3': {'users': ['*']},"
                                    " '4': {'users': ['daemon', '*']}, '5': {}}"));
        assert_false(manifest_may_open(m, 0, 1, 1));
        assert_false(manifest_may_open(m, 5, 1, 1));
        assert_true(manifest_may_open(m, 3, 1000, 1000));
        assert_true(manifest_may_open(m, 4, 4242, 4242));
        manifest_free(m);
}

static void access_by_uid(void **state)
{
        manifest *m = parse_ok(WITH(", 'access': {'default': {'users': ['daemon', 'sys']}}"));
        assert_true(manifest_may_open(m, 9, 1, 1000));
        assert_true(manifest_may_open(m, 9, 3, 1000));
        assert_false(manifest_may_open(m, 9, 2, 1000));
        assert_false(manifest_may_open(m, 9, 65534, 1));
        manifest_free(m);
}

static void access_by_group(void **state)
{
        manifest *m = parse_ok(WITH(", 'access': {'1': {'groups': ['bin']}, '2': {'groups': ['daemon']},"
                                    " '3': {'groups': ['sys']}}"));
        /* The caller's own gid (daemon, running as group bin). */
        assert_true(manifest_may_open(m, 1, 1, 2));
        assert_false(manifest_may_open(m, 1, 1, 3));
        /* The groups of the uid's passwd entry: daemon's is daemon (1),
         * whatever gid the caller runs with. */
        assert_true(manifest_may_open(m, 2, 1, 3));
        assert_false(manifest_may_open(m, 3, 1, 2));
        /* No passwd entry: only the gid counts. */
        assert_true(manifest_may_open(m, 2, 4242424, 1));
        assert_false(manifest_may_open(m, 2, 4242424, 2));
        manifest_free(m);
}

/* A real supplementary group (one listing the user in /etc/group, not its
 * primary): Debian's own groups have no members, so one is looked for. */
static void access_by_supplementary_group(void **state)
{
        const char *user = NULL, *group = NULL;
        uid_t uid = 0;
        gid_t primary = 0;
        char name_u[256], name_g[256];
        setgrent();
        for (struct group *g; !user && (g = getgrent());) {
                for (char **mem = g->gr_mem; *mem && !user; mem++) {
                        struct passwd *pw = getpwnam(*mem);
                        if (pw && pw->pw_uid != 0 && pw->pw_gid != g->gr_gid && strlen(*mem) < 256 &&
                            strlen(g->gr_name) < 256) {
                                snprintf(name_u, sizeof(name_u), "%s", *mem);
                                snprintf(name_g, sizeof(name_g), "%s", g->gr_name);
                                user = name_u;
                                group = name_g;
                                uid = pw->pw_uid;
                                primary = pw->pw_gid;
                        }
                }
        }
        endgrent();
        if (!user)
                skip();
        char *json = fmt(WITH(", 'access': {'1': {'groups': ['%s']}}"), group);
        manifest *m = parse_ok(json);
        assert_true(manifest_may_open(m, 1, uid, primary));
        /* Someone else with that user's primary gid is not in the group. */
        assert_false(manifest_may_open(m, 1, 4242424, primary));
        manifest_free(m);
        free(json);
}

/* Property writes: the default entry decides, whatever the numbered types
 * say, and root always may. */
static void writes_follow_the_default_entry(void **state)
{
        manifest *m = parse_ok(WITH(""));
        assert_true(manifest_may_write(m, 65534, 65534));
        manifest_free(m);
        m = parse_ok(WITH(", 'access': {'1': {'users': ['daemon']}}"));
        assert_true(manifest_may_write(m, 65534, 65534));
        manifest_free(m);
        m = parse_ok(WITH(", 'access': {'default': {'users': ['daemon'], 'groups': ['bin']}, '7': {'users': ['*']}}"));
        assert_false(manifest_may_write(m, 65534, 65534));
        assert_true(manifest_may_write(m, 1, 1));        /* daemon */
        assert_true(manifest_may_write(m, 4242424, 2));  /* group bin */
        assert_true(manifest_may_write(m, 0, 0));
        assert_true(manifest_may_open(m, 7, 65534, 65534)); /* an open of type 7 is not a write */
        /* The refusal's reason, as tetherd and the test harness give it. */
        char why[128] = "untouched";
        assert_false(manifest_write_refused(m, 1, 1, why, sizeof(why)));
        assert_string_equal(why, "untouched");
        assert_true(manifest_write_refused(m, 65534, 65534, why, sizeof(why)));
        assert_string_equal(why, "the access policy of org.t.x does not admit uid 65534");
        assert_true(manifest_write_refused(m, 65534, 65534, why, 22));
        assert_string_equal(why, "the access policy of ");
        assert_true(manifest_write_refused(m, 65534, 65534, NULL, 0));
        manifest_free(m);
        assert_false(manifest_may_write(NULL, 65534, 65534));
        assert_true(manifest_may_write(NULL, 0, 0));
}

/* tetherd's admin group is counted as the access lists count groups. */
static void in_group_as_access_lists_count(void **state)
{
        assert_true(manifest_in_group(4242424, 2, "bin"));     /* the caller's gid */
        assert_false(manifest_in_group(4242424, 3, "bin"));
        assert_true(manifest_in_group(1, 3, "daemon"));        /* daemon's passwd entry */
        assert_false(manifest_in_group(1, 2, "sys"));       /* neither gid nor passwd entry */
        assert_false(manifest_in_group(0, 0, "no-such-group-here"));
        assert_false(manifest_in_group(1, 2, ""));
        assert_false(manifest_in_group(1, 2, NULL));
}

static void access_root_always(void **state)
{
        manifest *m = parse_ok(WITH(", 'access': {'default': {'users': []}, '1': {'groups': ['daemon']}}"));
        assert_true(manifest_may_open(m, 0, 0, 0));
        assert_true(manifest_may_open(m, 1, 0, 65534));
        assert_false(manifest_may_open(m, 0, 65534, 0));
        manifest_free(m);
        assert_true(manifest_may_open(NULL, 1, 0, 0));
        assert_false(manifest_may_open(NULL, 1, 1, 1));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(docs_example_parses_to_what_it_says),
                cmocka_unit_test(minimal_manifest_defaults),
                cmocka_unit_test(json_numbers_and_values),
                cmocka_unit_test(parent_match_nests),
                cmocka_unit_test(nesting_is_bounded),
                cmocka_unit_test(not_json),
                cmocka_unit_test(schema_must_be_1),
                cmocka_unit_test(unknown_top_level_key),
                cmocka_unit_test(required_keys),
                cmocka_unit_test(bundle_id_rule),
                cmocka_unit_test(version_rule),
                cmocka_unit_test(library_rule),
                cmocka_unit_test(user_rule),
                cmocka_unit_test(personalities_count),
                cmocka_unit_test(personality_names),
                cmocka_unit_test(personality_driver),
                cmocka_unit_test(personality_keys),
                cmocka_unit_test(matching_key_types),
                cmocka_unit_test(matching_values),
                cmocka_unit_test(duplicate_keys_keep_the_last),
                cmocka_unit_test(access_rules),
                cmocka_unit_test(reasons_are_bounded),
                cmocka_unit_test(bad_arguments),
                cmocka_unit_test_setup_teardown(load_good_bundle, make_tmp, remove_tmp),
                cmocka_unit_test_setup_teardown(load_missing, make_tmp, remove_tmp),
                cmocka_unit_test_setup_teardown(load_unreadable, make_tmp, remove_tmp),
                cmocka_unit_test_setup_teardown(load_size_limit, make_tmp, remove_tmp),
                cmocka_unit_test_setup_teardown(load_library, make_tmp, remove_tmp),
                cmocka_unit_test_setup_teardown(load_folder_name, make_tmp, remove_tmp),
                cmocka_unit_test(access_default_is_anyone),
                cmocka_unit_test(access_anyone_and_nobody),
                cmocka_unit_test(access_by_uid),
                cmocka_unit_test(access_by_group),
                cmocka_unit_test(access_by_supplementary_group),
                cmocka_unit_test(access_root_always),
                cmocka_unit_test(writes_follow_the_default_entry),
                cmocka_unit_test(in_group_as_access_lists_count),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
