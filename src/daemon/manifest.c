/* SPDX-License-Identifier: MIT */
#include "daemon/manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/matching.h"

/*
 * JSON is json-c's. What it does that schema 1 must account for:
 * - A key repeated in one object keeps its last value and json-c says
 *   nothing (0.16 has no flag or hook for it, and its tokener's state is
 *   private), so duplicate keys cannot be refused without parsing the text
 *   a second time by hand. The last one wins, as in most JSON readers.
 * - Integers beyond int64/uint64 are saturated, not refused, so the two
 *   extremes (-2^63 and 2^64-1) are refused instead: they may stand for
 *   any larger number.
 * - "NaN" and "Infinity" are accepted even in strict mode: refused here.
 * - A key with an escaped NUL ("a\u0000b") is cut at the NUL.
 */

/* The manifest object, "personalities", a personality: the levels above a
 * matching dictionary. One more than a tether_value can hold lets the
 * walk below refuse a too-deep dictionary with its key path rather than
 * json-c with a byte offset; deeper than that json-c refuses alone. */
#define JSON_DEPTH (2 + TETHER_VALUE_MAX_DEPTH + 1)

/* Room for a key path; a longer one ends with "...". */
#define PATH_SIZE 200
/* Bytes of one key or name shown in a reason. */
#define SHOW_MAX 64

typedef struct parser {
        char *why;
        size_t why_size;
        char path[PATH_SIZE];
        size_t path_len;
} parser;

/* ---- reasons ---- */

/* A name from the manifest, quoted and cut for a log line: control
 * characters escaped, so a hostile key cannot forge log lines. */
typedef struct shown {
        char s[SHOW_MAX * 4 + 8];
} shown;

static size_t escape(char *out, size_t cap, const char *s, size_t len)
{
        size_t o = 0;
        bool cut = len > SHOW_MAX;
        if (cut) {
                len = SHOW_MAX;
                /* Not in the middle of a UTF-8 sequence. */
                while (len && ((unsigned char)s[len] & 0xc0) == 0x80)
                        len--;
        }
        for (size_t i = 0; i < len && o + 5 < cap; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
                        o += (size_t)snprintf(out + o, cap - o, c == '"' || c == '\\' ? "\\%c" : "\\x%02x", c);
                else
                        out[o++] = (char)c;
        }
        if (cut && o + 4 < cap)
                o += (size_t)snprintf(out + o, cap - o, "...");
        out[o] = '\0';
        return o;
}

static const char *show(shown *b, const char *s)
{
        b->s[0] = '"';
        size_t n = 1 + escape(b->s + 1, sizeof(b->s) - 2, s, strlen(s));
        b->s[n] = '"';
        b->s[n + 1] = '\0';
        return b->s;
}

__attribute__((format(printf, 2, 3)))
static tether_ret_t fail(parser *p, const char *fmt, ...)
{
        if (!p->why || !p->why_size)
                return TETHER_ERR_BAD_ARGUMENT;
        int n = p->path_len ? snprintf(p->why, p->why_size, "%s: ", p->path) : 0;
        if (n >= 0 && (size_t)n < p->why_size) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(p->why + n, p->why_size - (size_t)n, fmt, ap);
                va_end(ap);
        }
        return TETHER_ERR_BAD_ARGUMENT;
}

/* Same, for a failure that is not the manifest's fault. */
__attribute__((format(printf, 3, 4)))
static tether_ret_t fail_with(parser *p, tether_ret_t ret, const char *fmt, ...)
{
        if (p->why && p->why_size) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(p->why, p->why_size, fmt, ap);
                va_end(ap);
        }
        return ret;
}

/* Push returns the length to pop back to. */
static size_t path_push(parser *p, const char *key)
{
        size_t old = p->path_len;
        if (old + 4 >= PATH_SIZE)
                return old;
        size_t o = old;
        if (o)
                p->path[o++] = '.';
        size_t room = PATH_SIZE - o;
        char tmp[SHOW_MAX * 4 + 8];
        /* An empty key would vanish from the path. */
        size_t n = *key ? escape(tmp, sizeof(tmp), key, strlen(key)) : (size_t)snprintf(tmp, sizeof(tmp), "\"\"");
        if (n >= room) {
                n = room - 4;
                memcpy(p->path + o, tmp, n);
                memcpy(p->path + o + n, "...", 4);
                p->path_len = PATH_SIZE - 1;
                return old;
        }
        memcpy(p->path + o, tmp, n + 1);
        p->path_len = o + n;
        return old;
}

static size_t path_push_index(parser *p, size_t i)
{
        size_t old = p->path_len;
        int n = snprintf(p->path + old, PATH_SIZE - old, "[%zu]", i);
        if (n < 0 || (size_t)n >= PATH_SIZE - old)
                p->path[old] = '\0';
        else
                p->path_len = old + (size_t)n;
        return old;
}

static void path_pop(parser *p, size_t old)
{
        p->path_len = old;
        p->path[old] = '\0';
}

/* ---- JSON scalars ---- */

static const char *json_kind(const json_object *j)
{
        switch (json_object_get_type(j)) {
        case json_type_null: return "null";
        case json_type_boolean: return "a boolean";
        case json_type_double: return "a number with a fraction or an exponent";
        case json_type_int: return "an integer";
        case json_type_object: return "an object";
        case json_type_array: return "an array";
        case json_type_string: return "a string";
        }
        return "unknown";
}

/* j as a string of min..max bytes; a NUL inside one (from "\u0000") would
 * make it a different, shorter string to every C reader. */
static tether_ret_t get_string(parser *p, const json_object *j, size_t min, size_t max, const char **ret)
{
        if (!json_object_is_type(j, json_type_string))
                return fail(p, "must be a string, not %s", json_kind(j));
        const char *s = json_object_get_string((json_object *)j);
        size_t len = (size_t)json_object_get_string_len(j);
        if (strlen(s) != len)
                return fail(p, "contains a NUL character");
        if (len < min)
                return fail(p, "must not be empty");
        if (len > max)
                return fail(p, "is longer than %zu bytes", max);
        *ret = s;
        return TETHER_SUCCESS;
}

static tether_ret_t dup_string(parser *p, const json_object *j, size_t min, size_t max, char **ret)
{
        const char *s;
        tether_ret_t r = get_string(p, j, min, max, &s);
        if (r != TETHER_SUCCESS)
                return r;
        if (!(*ret = strdup(s)))
                return TETHER_ERR_NO_MEMORY;
        return TETHER_SUCCESS;
}

/* Names go into log lines and `tether driver list`. */
static bool no_control(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return false;
        return true;
}

/* ---- JSON to tether_value ---- */

static tether_ret_t to_value(parser *p, const json_object *j, unsigned depth, tether_value **ret);

static tether_ret_t number_to_value(parser *p, const json_object *j, tether_value **ret)
{
        if (json_object_is_type(j, json_type_double)) {
                double d = json_object_get_double(j);
                if (!isfinite(d))
                        return fail(p, "is not a finite number");
                return tether_value_new_double(d, ret);
        }
        /* json-c reads every integer as int64 or, above INT64_MAX, uint64,
         * saturating beyond: the extremes are ambiguous (see the top). */
        int64_t i = json_object_get_int64(j);
        if (i == INT64_MIN)
                return fail(p, "integer out of range (below -9223372036854775807)");
        if (i < 0)
                return tether_value_new_int(i, 64, ret);
        uint64_t u = json_object_get_uint64(j);
        if (u == UINT64_MAX)
                return fail(p, "integer out of range (above 18446744073709551614)");
        return tether_value_new_uint(u, 64, ret);
}

static tether_ret_t array_to_value(parser *p, const json_object *j, unsigned depth, tether_value **ret)
{
        tether_value *a = NULL;
        tether_ret_t r = tether_value_new_array(&a);
        for (size_t i = 0; r == TETHER_SUCCESS && i < json_object_array_length(j); i++) {
                size_t old = path_push_index(p, i);
                tether_value *item = NULL;
                r = to_value(p, json_object_array_get_idx(j, i), depth + 1, &item);
                if (r == TETHER_SUCCESS)
                        r = tether_value_array_append(a, item);
                tether_value_unref(item);
                if (r == TETHER_SUCCESS)
                        path_pop(p, old);
        }
        if (r != TETHER_SUCCESS)
                a = tether_value_unref(a);
        *ret = a;
        return r;
}

static tether_ret_t object_to_value(parser *p, json_object *j, unsigned depth, tether_value **ret)
{
        tether_value *d = NULL;
        tether_ret_t r = tether_value_new_dict(&d);
        json_object_object_foreach(j, key, val) {
                if (r != TETHER_SUCCESS)
                        break;
                size_t old = path_push(p, key);
                tether_value *item = NULL;
                r = to_value(p, val, depth + 1, &item);
                if (r == TETHER_SUCCESS)
                        r = tether_value_dict_set(d, key, item);
                tether_value_unref(item);
                if (r == TETHER_SUCCESS)
                        path_pop(p, old);
        }
        if (r != TETHER_SUCCESS)
                d = tether_value_unref(d);
        *ret = d;
        return r;
}

/* depth: of the container j would be, as tether_value counts it (a dict of
 * scalars is 1), so a converted dictionary can always be sent and decoded. */
static tether_ret_t to_value(parser *p, const json_object *j, unsigned depth, tether_value **ret)
{
        *ret = NULL;
        switch (json_object_get_type(j)) {
        case json_type_null:
                return fail(p, "null is not a value");
        case json_type_boolean:
                return tether_value_new_bool(json_object_get_boolean(j), ret);
        case json_type_int:
        case json_type_double:
                return number_to_value(p, j, ret);
        case json_type_string: {
                const char *s;
                tether_ret_t r = get_string(p, j, 0, TETHER_VALUE_MAX_STRING, &s);
                return r == TETHER_SUCCESS ? tether_value_new_string(s, ret) : r;
        }
        case json_type_array:
        case json_type_object:
                if (depth > TETHER_VALUE_MAX_DEPTH)
                        return fail(p, "nested deeper than %d levels", TETHER_VALUE_MAX_DEPTH);
                if (json_object_is_type(j, json_type_array))
                        return array_to_value(p, j, depth, ret);
                return object_to_value(p, (json_object *)j, depth, ret);
        }
        return fail(p, "is not a JSON value");
}

/* ---- matching dictionaries ---- */

#define KEY_CLASS    "IOProviderClass"
#define KEY_NAME     "IONameMatch"
#define KEY_PROPS    "IOPropertyMatch"
#define KEY_PARENT   "IOParentMatch"
#define KEY_SCORE    "IOProbeScore"
#define KEY_CATEGORY "IOMatchCategory"

static tether_ret_t matching_to_value(parser *p, json_object *j, unsigned depth, bool personality,
                                      tether_value **ret, char **driver);

/* One IO* key (is_matching_key): checked here, key by key, so a reason can
 * name the key (matching_validate only says yes or no). */
static tether_ret_t matching_key(parser *p, const char *key, json_object *val, unsigned depth,
                                 tether_value **ret)
{
        *ret = NULL;
        if (!strcmp(key, KEY_CLASS)) {
                if (!json_object_is_type(val, json_type_string))
                        return fail(p, "must be a string, not %s", json_kind(val));
        } else if (!strcmp(key, KEY_CATEGORY)) {
                /* Named in log lines and in the service's table, as a
                 * personality's name is, and by the same rules. */
                const char *category;
                tether_ret_t r = get_string(p, val, 1, MANIFEST_MAX_NAME, &category);
                if (r != TETHER_SUCCESS)
                        return r;
                if (!no_control(category))
                        return fail(p, "contains a control character");
        } else if (!strcmp(key, KEY_NAME)) {
                bool ok = json_object_is_type(val, json_type_string);
                if (json_object_is_type(val, json_type_array)) {
                        ok = true;
                        for (size_t i = 0; ok && i < json_object_array_length(val); i++)
                                ok = json_object_is_type(json_object_array_get_idx(val, i), json_type_string);
                }
                if (!ok)
                        return fail(p, "must be a string or an array of strings");
        } else if (!strcmp(key, KEY_PROPS)) {
                if (!json_object_is_type(val, json_type_object))
                        return fail(p, "must be an object, not %s", json_kind(val));
        } else if (!strcmp(key, KEY_PARENT)) {
                if (!json_object_is_type(val, json_type_object))
                        return fail(p, "must be an object, not %s", json_kind(val));
                return matching_to_value(p, val, depth + 1, false, ret, NULL);
        } else if (!strcmp(key, KEY_SCORE)) {
                if (!json_object_is_type(val, json_type_int))
                        return fail(p, "must be an integer, not %s", json_kind(val));
                tether_ret_t r = number_to_value(p, val, ret);
                int64_t score;
                if (r == TETHER_SUCCESS && tether_value_get_int(*ret, &score) != TETHER_SUCCESS) {
                        *ret = tether_value_unref(*ret);
                        return fail(p, "is above 9223372036854775807");
                }
                return r;
        }
        return to_value(p, val, depth + 1, ret);
}

/* In IOParentMatch, IOProbeScore and IOMatchCategory would be ignored, and
 * an ignored key is one whose typo nobody notices. */
static bool is_matching_key(const char *key, bool personality)
{
        if (!strcmp(key, KEY_CLASS) || !strcmp(key, KEY_NAME) || !strcmp(key, KEY_PROPS) || !strcmp(key, KEY_PARENT))
                return true;
        return personality && (!strcmp(key, KEY_SCORE) || !strcmp(key, KEY_CATEGORY));
}

/*
 * A personality (personality: "driver" goes to *driver, IOProviderClass is
 * required) or an IOParentMatch dictionary, of the given depth, to a
 * matching dictionary of its IO* keys.
 */
static tether_ret_t matching_to_value(parser *p, json_object *j, unsigned depth, bool personality,
                                      tether_value **ret, char **driver)
{
        *ret = NULL;
        if (depth > TETHER_VALUE_MAX_DEPTH)
                return fail(p, "nested deeper than %d levels", TETHER_VALUE_MAX_DEPTH);
        tether_value *d = NULL;
        tether_ret_t r = tether_value_new_dict(&d);
        json_object_object_foreach(j, key, val) {
                if (r != TETHER_SUCCESS)
                        break;
                if (!(personality && !strcmp(key, "driver")) && !is_matching_key(key, personality)) {
                        shown b;
                        r = fail(p, "unknown key %s", show(&b, key));
                        break;
                }
                size_t old = path_push(p, key);
                if (personality && !strcmp(key, "driver")) {
                        r = dup_string(p, val, 1, MANIFEST_MAX_NAME, driver);
                        if (r == TETHER_SUCCESS && !no_control(*driver))
                                r = fail(p, "contains a control character");
                } else {
                        tether_value *item = NULL;
                        r = matching_key(p, key, val, depth, &item);
                        if (r == TETHER_SUCCESS)
                                r = tether_value_dict_set(d, key, item);
                        tether_value_unref(item);
                }
                if (r == TETHER_SUCCESS)
                        path_pop(p, old);
        }
        tether_value *unused;
        if (r == TETHER_SUCCESS && personality && !*driver)
                r = fail(p, "driver is missing");
        else if (r == TETHER_SUCCESS && personality && tether_value_dict_get(d, KEY_CLASS, &unused) != TETHER_SUCCESS)
                r = fail(p, KEY_CLASS " is missing");
        if (r != TETHER_SUCCESS)
                d = tether_value_unref(d);
        *ret = d;
        return r;
}

static tether_ret_t read_personality(parser *p, const char *name, json_object *j, manifest_personality *mp)
{
        if (!json_object_is_type(j, json_type_object))
                return fail(p, "must be an object, not %s", json_kind(j));
        if (!*name)
                return fail(p, "a personality's name must not be empty");
        if (strlen(name) > MANIFEST_MAX_NAME)
                return fail(p, "a personality's name is longer than %u bytes", MANIFEST_MAX_NAME);
        if (!no_control(name))
                return fail(p, "a personality's name contains a control character");
        if (!(mp->name = strdup(name)))
                return TETHER_ERR_NO_MEMORY;
        tether_ret_t r = matching_to_value(p, j, 1, true, &mp->matching, &mp->driver);
        if (r != TETHER_SUCCESS)
                return r;
        /* The checks above are matching_validate's rules with reasons; this
         * is the authority, should they ever drift apart. */
        if (matching_validate(mp->matching) != TETHER_SUCCESS)
                return fail(p, "not a valid matching dictionary");
        mp->score = matching_probe_score(mp->matching);
        mp->category = matching_category(mp->matching);
        return TETHER_SUCCESS;
}

static tether_ret_t read_personalities(parser *p, json_object *j, manifest *m)
{
        if (!json_object_is_type(j, json_type_object))
                return fail(p, "must be an object, not %s", json_kind(j));
        size_t n = (size_t)json_object_object_length(j);
        if (n < 1 || n > MANIFEST_MAX_PERSONALITIES)
                return fail(p, "must have 1 to %u entries, not %zu", MANIFEST_MAX_PERSONALITIES, n);
        if (!(m->personalities = calloc(n, sizeof(*m->personalities))))
                return TETHER_ERR_NO_MEMORY;
        json_object_object_foreach(j, name, val) {
                size_t old = path_push(p, name);
                /* Counted first, so manifest_free frees a half-made one. */
                tether_ret_t r = read_personality(p, name, val, &m->personalities[m->n_personalities++]);
                if (r != TETHER_SUCCESS)
                        return r;
                path_pop(p, old);
        }
        return TETHER_SUCCESS;
}

/* ---- users and groups ---- */

/* getpwnam_r/getgrnam_r and friends want a buffer of unknown size. */
#define NSS_BUF_MAX (1u << 20)

/* 0 found, ENOENT not found, another errno if the database failed. */
/* A user's uid (users) or a group's gid, by name: the buffer grown until
 * it fits, "no such name" told apart from a failed lookup. */
static int lookup_id(const char *name, bool users, uint32_t *ret)
{
        size_t size = 1024;
        for (;;) {
                char *buf = malloc(size);
                if (!buf)
                        return ENOMEM;
                struct passwd pw, *pres = NULL;
                struct group gr, *gres = NULL;
                int e = users ? getpwnam_r(name, &pw, buf, size, &pres) : getgrnam_r(name, &gr, buf, size, &gres);
                bool found = users ? pres != NULL : gres != NULL;
                if (!e && found)
                        *ret = users ? pw.pw_uid : gr.gr_gid;
                free(buf);
                if (e == ERANGE && size < NSS_BUF_MAX) {
                        size *= 2;
                        continue;
                }
                /* Several NSS modules report "no such name" as an error. */
                if (!e || e == ENOENT || e == ESRCH || e == EBADF || e == EPERM)
                        return found ? 0 : ENOENT;
                return e;
        }
}

static tether_ret_t lookup_failed(parser *p, int e, const char *what, const char *name)
{
        shown b;
        if (e == ENOMEM)
                return TETHER_ERR_NO_MEMORY;
        if (e == ENOENT)
                return fail(p, "no such %s %s", what, show(&b, name));
        return fail_with(p, TETHER_ERR_IO, "%s%scannot look up %s %s: %s", p->path, p->path_len ? ": " : "",
                         what, show(&b, name), strerror(e));
}

static tether_ret_t read_user(parser *p, json_object *j, manifest *m)
{
        tether_ret_t r = dup_string(p, j, 1, MANIFEST_MAX_ACCOUNT, &m->user);
        if (r != TETHER_SUCCESS)
                return r;
        shown b;
        uint32_t uid = 0;
        int e = lookup_id(m->user, true, &uid);
        if (e)
                return lookup_failed(p, e, "user", m->user);
        if (uid == 0)
                return fail(p, "%s is root (uid 0): a driver host never runs as root", show(&b, m->user));
        return TETHER_SUCCESS;
}

static tether_ret_t read_names(parser *p, json_object *j, bool users, manifest_access *a)
{
        if (!json_object_is_type(j, json_type_array))
                return fail(p, "must be an array of strings, not %s", json_kind(j));
        size_t n = json_object_array_length(j);
        if (n > MANIFEST_MAX_NAMES)
                return fail(p, "has more than %u names", MANIFEST_MAX_NAMES);
        if (!n)
                return TETHER_SUCCESS;
        void *ids = calloc(n, users ? sizeof(uid_t) : sizeof(gid_t));
        if (!ids)
                return TETHER_ERR_NO_MEMORY;
        if (users)
                a->uids = ids;
        else
                a->gids = ids;
        for (size_t i = 0; i < n; i++) {
                size_t old = path_push_index(p, i);
                const char *name;
                tether_ret_t r = get_string(p, json_object_array_get_idx(j, i), 1, MANIFEST_MAX_ACCOUNT, &name);
                if (r != TETHER_SUCCESS)
                        return r;
                if (users && !strcmp(name, "*")) {
                        a->anyone = true;
                } else {
                        int e = lookup_id(name, users, users ? &a->uids[a->n_uids] : &a->gids[a->n_gids]);
                        if (e)
                                return lookup_failed(p, e, users ? "user" : "group", name);
                        if (users)
                                a->n_uids++;
                        else
                                a->n_gids++;
                }
                path_pop(p, old);
        }
        return TETHER_SUCCESS;
}

static tether_ret_t read_access_entry(parser *p, json_object *j, manifest_access *a)
{
        if (!json_object_is_type(j, json_type_object))
                return fail(p, "must be an object, not %s", json_kind(j));
        /* An entry says exactly who: an empty one is root only. */
        a->anyone = false;
        json_object_object_foreach(j, key, val) {
                size_t old = path_push(p, key);
                tether_ret_t r;
                if (!strcmp(key, "users") || !strcmp(key, "groups")) {
                        r = read_names(p, val, key[0] == 'u', a);
                } else {
                        path_pop(p, old);
                        shown b;
                        r = fail(p, "unknown key %s", show(&b, key));
                }
                if (r != TETHER_SUCCESS)
                        return r;
                path_pop(p, old);
        }
        return TETHER_SUCCESS;
}

/* The decimal spelling of a uint32, one spelling per number ("01" is not
 * "1"), so two keys can never name the same type. */
static bool parse_type(const char *s, uint32_t *ret)
{
        size_t len = strlen(s);
        if (!len || len > 10 || (len > 1 && s[0] == '0'))
                return false;
        uint64_t v = 0;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                v = v * 10 + (uint64_t)(s[i] - '0');
        }
        if (v > UINT32_MAX)
                return false;
        *ret = (uint32_t)v;
        return true;
}

static int access_cmp(const void *a, const void *b)
{
        uint32_t x = ((const manifest_access *)a)->type, y = ((const manifest_access *)b)->type;
        return (x > y) - (x < y);
}

static tether_ret_t read_access(parser *p, json_object *j, manifest *m)
{
        if (!json_object_is_type(j, json_type_object))
                return fail(p, "must be an object, not %s", json_kind(j));
        size_t n = (size_t)json_object_object_length(j);
        if (n && !(m->access = calloc(n, sizeof(*m->access))))
                return TETHER_ERR_NO_MEMORY;
        json_object_object_foreach(j, key, val) {
                size_t old = path_push(p, key);
                manifest_access *a = &m->default_access;
                if (strcmp(key, "default")) {
                        uint32_t type;
                        if (!parse_type(key, &type)) {
                                path_pop(p, old);
                                shown b;
                                return fail(p, "%s is neither \"default\" nor a user-client type "
                                            "(a decimal number from 0 to 4294967295, no leading zeros)",
                                            show(&b, key));
                        }
                        a = &m->access[m->n_access++];
                        a->type = type;
                }
                tether_ret_t r = read_access_entry(p, val, a);
                if (r != TETHER_SUCCESS)
                        return r;
                path_pop(p, old);
        }
        if (m->n_access)
                qsort(m->access, m->n_access, sizeof(*m->access), access_cmp);
        return TETHER_SUCCESS;
}

/* ---- the manifest object ---- */

static tether_ret_t check_bundle_id(parser *p, const char *id)
{
        size_t len = strlen(id);
        if (id[0] == '.' || id[len - 1] == '.' || strstr(id, ".."))
                return fail(p, "an empty label (a dot at either end, or two in a row)");
        for (const char *c = id; *c; c++)
                if (!(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z') && !(*c >= '0' && *c <= '9') &&
                    *c != '.' && *c != '-')
                        return fail(p, "only letters, digits, '.' and '-' may appear in a bundle id");
        return TETHER_SUCCESS;
}

static tether_ret_t check_version(parser *p, const char *v)
{
        for (const char *c = v; *c; c++)
                if (*c < 0x20 || *c > 0x7e)
                        return fail(p, "only printable ASCII may appear in a version");
        return TETHER_SUCCESS;
}

static tether_ret_t read_library(parser *p, json_object *j, const char *dir, manifest *m)
{
        const char *name;
        tether_ret_t r = get_string(p, j, 1, MANIFEST_MAX_LIBRARY, &name);
        if (r != TETHER_SUCCESS)
                return r;
        if (strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
                return fail(p, "must be a file name in the bundle folder, without '/'");
        size_t dlen = strlen(dir);
        bool slash = dlen && dir[dlen - 1] == '/';
        if (asprintf(&m->library, "%s%s%s", dir, slash ? "" : "/", name) < 0) {
                m->library = NULL;
                return TETHER_ERR_NO_MEMORY;
        }
        return TETHER_SUCCESS;
}

static tether_ret_t read_schema(parser *p, json_object *root)
{
        json_object *j;
        if (!json_object_object_get_ex(root, "schema", &j))
                return fail(p, "schema is missing");
        size_t old = path_push(p, "schema");
        if (!json_object_is_type(j, json_type_int))
                return fail(p, "must be an integer, not %s", json_kind(j));
        if (json_object_get_int64(j) != MANIFEST_SCHEMA)
                return fail(p, "%s is not a schema this tetherd reads (it reads %d)",
                            json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN), MANIFEST_SCHEMA);
        path_pop(p, old);
        return TETHER_SUCCESS;
}

static tether_ret_t read_manifest(parser *p, json_object *root, const char *dir, manifest *m)
{
        /* First, so a newer manifest is refused as such rather than for
         * the keys this schema does not know. */
        tether_ret_t r = read_schema(p, root);
        if (r != TETHER_SUCCESS)
                return r;
        json_object_object_foreach(root, key, val) {
                size_t old = path_push(p, key);
                if (!strcmp(key, "schema")) {
                        r = TETHER_SUCCESS;
                } else if (!strcmp(key, "bundle")) {
                        r = dup_string(p, val, 1, MANIFEST_MAX_BUNDLE_ID, &m->bundle_id);
                        if (r == TETHER_SUCCESS)
                                r = check_bundle_id(p, m->bundle_id);
                } else if (!strcmp(key, "version")) {
                        r = dup_string(p, val, 1, MANIFEST_MAX_VERSION, &m->version);
                        if (r == TETHER_SUCCESS)
                                r = check_version(p, m->version);
                } else if (!strcmp(key, "library")) {
                        r = read_library(p, val, dir, m);
                } else if (!strcmp(key, "user")) {
                        r = read_user(p, val, m);
                } else if (!strcmp(key, "personalities")) {
                        r = read_personalities(p, val, m);
                } else if (!strcmp(key, "access")) {
                        r = read_access(p, val, m);
                } else {
                        path_pop(p, old);
                        shown b;
                        r = fail(p, "unknown key %s", show(&b, key));
                }
                if (r != TETHER_SUCCESS)
                        return r;
                path_pop(p, old);
        }
        if (!m->bundle_id)
                return fail(p, "bundle is missing");
        if (!m->version)
                return fail(p, "version is missing");
        if (!m->library)
                return fail(p, "library is missing");
        if (!m->personalities)
                return fail(p, "personalities is missing");
        return TETHER_SUCCESS;
}

static tether_ret_t parse_json(parser *p, const char *text, size_t len, json_object **ret)
{
        *ret = NULL;
        if (len > MANIFEST_MAX_SIZE)
                return fail(p, "larger than %u bytes", MANIFEST_MAX_SIZE);
        struct json_tokener *tok = json_tokener_new_ex(JSON_DEPTH);
        if (!tok)
                return TETHER_ERR_NO_MEMORY;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        json_object *root = json_tokener_parse_ex(tok, text, (int)len);
        enum json_tokener_error e = json_tokener_get_error(tok);
        size_t end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        tether_ret_t r = TETHER_SUCCESS;
        if (e == json_tokener_continue)
                r = fail(p, "not JSON: the text ends before the object does");
        else if (e != json_tokener_success)
                r = fail(p, "not JSON: %s at byte %zu", json_tokener_error_desc(e), end);
        /* json-c stops at a NUL byte as if the text ended there. */
        else if (end != len)
                r = fail(p, "not JSON: a NUL byte at byte %zu", end);
        else if (!json_object_is_type(root, json_type_object))
                r = fail(p, "not a JSON object but %s", json_kind(root));
        if (r != TETHER_SUCCESS) {
                json_object_put(root);
                return r;
        }
        *ret = root;
        return TETHER_SUCCESS;
}

tether_ret_t manifest_parse(const char *text, size_t len, const char *dir, manifest **ret,
                            char *why, size_t why_size)
{
        parser p = { .why = why, .why_size = why_size };
        if (why && why_size)
                why[0] = '\0';
        if (ret)
                *ret = NULL;
        if ((!text && len) || !dir || dir[0] != '/' || !ret)
                return fail(&p, "bad arguments (the bundle folder must be an absolute path)");

        json_object *root;
        tether_ret_t r = parse_json(&p, text ? text : "", len, &root);
        if (r != TETHER_SUCCESS)
                return r;
        manifest *m = calloc(1, sizeof(*m));
        if (!m || !(m->dir = strdup(dir))) {
                r = TETHER_ERR_NO_MEMORY;
        } else {
                /* No policy at all: the socket's permissions are the only gate. */
                m->default_access.anyone = true;
                r = read_manifest(&p, root, dir, m);
        }
        json_object_put(root);
        if (r == TETHER_ERR_NO_MEMORY)
                fail_with(&p, r, "out of memory");
        /* A tether_value refusal has no reason of its own; the path has
         * stayed where it happened. */
        else if (r != TETHER_SUCCESS && why && why_size && !why[0])
                fail(&p, "not a value tether can hold");
        if (r != TETHER_SUCCESS) {
                manifest_free(m);
                return r;
        }
        *ret = m;
        return TETHER_SUCCESS;
}

/* ---- reading a bundle folder ---- */

static tether_ret_t read_file(parser *p, int dirfd, char **ret_text, size_t *ret_len)
{
        /* O_NONBLOCK: a FIFO in a bundle must not hang tetherd's start-up. */
        int fd = openat(dirfd, MANIFEST_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0) {
                int e = errno;
                if (e == ENOENT)
                        return fail_with(p, TETHER_ERR_NOT_FOUND, MANIFEST_FILE " is missing");
                if (e == ELOOP)
                        return fail(p, MANIFEST_FILE " is a symbolic link");
                return fail_with(p, TETHER_ERR_IO, MANIFEST_FILE ": %s", strerror(e));
        }
        struct stat st;
        tether_ret_t r = TETHER_SUCCESS;
        char *buf = NULL;
        size_t len = 0;
        if (fstat(fd, &st) < 0) {
                r = fail_with(p, TETHER_ERR_IO, MANIFEST_FILE ": %s", strerror(errno));
        } else if (!S_ISREG(st.st_mode)) {
                r = fail(p, MANIFEST_FILE " is not a regular file");
        } else if (st.st_size > (off_t)MANIFEST_MAX_SIZE) {
                r = fail(p, MANIFEST_FILE " is larger than %u bytes", MANIFEST_MAX_SIZE);
        } else if (!(buf = malloc(MANIFEST_MAX_SIZE + 1))) {
                r = TETHER_ERR_NO_MEMORY;
        } else {
                /* One byte more than allowed: a file that grew since fstat. */
                while (len <= MANIFEST_MAX_SIZE) {
                        ssize_t n = read(fd, buf + len, MANIFEST_MAX_SIZE + 1 - len);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0) {
                                r = fail_with(p, TETHER_ERR_IO, MANIFEST_FILE ": %s", strerror(errno));
                                break;
                        }
                        if (n == 0)
                                break;
                        len += (size_t)n;
                }
                if (r == TETHER_SUCCESS && len > MANIFEST_MAX_SIZE)
                        r = fail(p, MANIFEST_FILE " is larger than %u bytes", MANIFEST_MAX_SIZE);
        }
        close(fd);
        if (r != TETHER_SUCCESS) {
                free(buf);
                return r;
        }
        *ret_text = buf;
        *ret_len = len;
        return TETHER_SUCCESS;
}

static tether_ret_t check_folder(parser *p, int dirfd, const manifest *m)
{
        const char *base = strrchr(m->dir, '/') + 1;
        size_t id_len = strlen(m->bundle_id);
        if (strncmp(base, m->bundle_id, id_len) || strcmp(base + id_len, MANIFEST_FOLDER_SUFFIX)) {
                /* Quoted whole: "org.example.first.tether", not "org.example.first".tether. */
                char want[MANIFEST_MAX_BUNDLE_ID + sizeof(MANIFEST_FOLDER_SUFFIX)];
                snprintf(want, sizeof(want), "%s" MANIFEST_FOLDER_SUFFIX, m->bundle_id);
                shown b;
                return fail(p, "the folder must be named %s after the bundle id", show(&b, want));
        }
        const char *lib = strrchr(m->library, '/') + 1;
        struct stat st;
        shown b;
        if (fstatat(dirfd, lib, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return fail(p, "library: %s is missing", show(&b, lib));
                return fail_with(p, TETHER_ERR_IO, "library: %s: %s", show(&b, lib), strerror(errno));
        }
        if (!S_ISREG(st.st_mode))
                return fail(p, "library: %s is not a regular file", show(&b, lib));
        return TETHER_SUCCESS;
}

tether_ret_t manifest_load(const char *dir, manifest **ret, char *why, size_t why_size)
{
        parser p = { .why = why, .why_size = why_size };
        if (why && why_size)
                why[0] = '\0';
        if (ret)
                *ret = NULL;
        if (!dir || !ret)
                return fail(&p, "bad arguments");
        char *real = realpath(dir, NULL);
        if (!real) {
                int e = errno;
                if (e == ENOENT || e == ENOTDIR)
                        return fail_with(&p, TETHER_ERR_NOT_FOUND, "no such folder");
                return fail_with(&p, e == ENOMEM ? TETHER_ERR_NO_MEMORY : TETHER_ERR_IO, "%s", strerror(e));
        }
        int dirfd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0) {
                int e = errno;
                free(real);
                if (e == ENOTDIR)
                        return fail(&p, "not a folder");
                return fail_with(&p, TETHER_ERR_IO, "%s", strerror(e));
        }
        char *text = NULL;
        size_t len = 0;
        manifest *m = NULL;
        tether_ret_t r = read_file(&p, dirfd, &text, &len);
        if (r == TETHER_SUCCESS)
                r = manifest_parse(text, len, real, &m, why, why_size);
        if (r == TETHER_SUCCESS)
                r = check_folder(&p, dirfd, m);
        free(text);
        close(dirfd);
        free(real);
        if (r != TETHER_SUCCESS) {
                manifest_free(m);
                return r;
        }
        *ret = m;
        return TETHER_SUCCESS;
}

static void access_free(manifest_access *a)
{
        free(a->uids);
        free(a->gids);
}

void manifest_free(manifest *m)
{
        if (!m)
                return;
        for (size_t i = 0; i < m->n_personalities; i++) {
                free(m->personalities[i].name);
                free(m->personalities[i].driver);
                tether_value_unref(m->personalities[i].matching);
        }
        free(m->personalities);
        for (size_t i = 0; i < m->n_access; i++)
                access_free(&m->access[i]);
        free(m->access);
        access_free(&m->default_access);
        free(m->dir);
        free(m->bundle_id);
        free(m->version);
        free(m->library);
        free(m->user);
        free(m);
}

/* ---- the access policy ---- */

static const manifest_access *access_for(const manifest *m, uint32_t type)
{
        if (!m->n_access)
                return &m->default_access;
        manifest_access key = { .type = type };
        const manifest_access *a = bsearch(&key, m->access, m->n_access, sizeof(*m->access), access_cmp);
        return a ? a : &m->default_access;
}

static bool has_gid(const manifest_access *a, gid_t gid)
{
        for (size_t i = 0; i < a->n_gids; i++)
                if (a->gids[i] == gid)
                        return true;
        return false;
}

/* Whether any group of uid's passwd entry (getgrouplist: its primary group
 * and the groups listing it) is in a. False when it cannot be told. */
static bool user_groups_allowed(const manifest_access *a, uid_t uid)
{
        size_t size = 1024;
        char *buf = NULL;
        struct passwd pw, *res = NULL;
        for (;;) {
                free(buf);
                if (!(buf = malloc(size)))
                        return false;
                int e = getpwuid_r(uid, &pw, buf, size, &res);
                if (e != ERANGE || size >= NSS_BUF_MAX)
                        break;
                size *= 2;
        }
        bool allowed = false;
        int n = 32;
        gid_t *groups = NULL;
        while (res) {
                gid_t *g = realloc(groups, (size_t)n * sizeof(*groups));
                if (!g)
                        break;
                groups = g;
                int want = n;
                if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &want) >= 0) {
                        for (int i = 0; i < want && !allowed; i++)
                                allowed = has_gid(a, groups[i]);
                        break;
                }
                /* Too small: want is now the size needed. */
                if (want <= n || want > 65536)
                        break;
                n = want;
        }
        free(groups);
        free(buf);
        return allowed;
}

static bool admits(const manifest_access *a, uid_t uid, gid_t gid)
{
        if (uid == 0)
                return true;
        if (a->anyone)
                return true;
        for (size_t i = 0; i < a->n_uids; i++)
                if (a->uids[i] == uid)
                        return true;
        if (!a->n_gids)
                return false;
        return has_gid(a, gid) || user_groups_allowed(a, uid);
}

bool manifest_may_open(const manifest *m, uint32_t type, uid_t uid, gid_t gid)
{
        if (!m)
                return uid == 0;
        return admits(access_for(m, type), uid, gid);
}

bool manifest_may_write(const manifest *m, uid_t uid, gid_t gid)
{
        if (!m)
                return uid == 0;
        return admits(&m->default_access, uid, gid);
}

bool manifest_write_refused(const manifest *m, uid_t uid, gid_t gid, char *why, size_t cap)
{
        if (manifest_may_write(m, uid, gid))
                return false;
        if (why && cap)
                snprintf(why, cap, "the access policy of %s does not admit uid %u", m ? m->bundle_id : "",
                         (unsigned)uid);
        return true;
}

bool manifest_in_group(uid_t uid, gid_t gid, const char *group)
{
        uint32_t g = 0;
        if (!group || !*group || lookup_id(group, false, &g))
                return false;
        gid_t one = (gid_t)g;
        manifest_access a = { .gids = &one, .n_gids = 1 };
        return has_gid(&a, gid) || user_groups_allowed(&a, uid);
}
