/* SPDX-License-Identifier: MIT */
/*
 * tether reg --json: the schema is docs/reg-json.md; change it only with
 * REG_JSON_SCHEMA. Values are mapped here rather than with
 * tether_value_to_json because the tool promises more than the library:
 * integers that a double cannot hold exactly become strings, so jq (which
 * reads numbers as doubles) never rounds an id or a 64-bit count silently.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "reg-private.h"
#include "tool.h"

#define REG_JSON_SCHEMA 1
#define EXACT_IN_DOUBLE (UINT64_C(1) << 53)

static void json_string(FILE *f, const char *s)
{
        tool_json_string(f, s, strlen(s));
}

void reg_json_value(FILE *f, const tether_value *v)
{
        int64_t i;
        uint64_t u;
        const void *bytes;
        size_t len;
        bool b;
        const char *s;
        switch (tether_value_get_type(v)) {
        case TETHER_TYPE_INT:
                tether_value_get_int(v, &i);
                if (i < -(int64_t)EXACT_IN_DOUBLE || i > (int64_t)EXACT_IN_DOUBLE)
                        fprintf(f, "\"%" PRId64 "\"", i);
                else
                        fprintf(f, "%" PRId64, i);
                break;
        case TETHER_TYPE_UINT:
                tether_value_get_uint(v, &u);
                tool_json_uint(f, u);
                break;
        case TETHER_TYPE_DOUBLE: {
                /* The library's mapping: the shortest text that reads back
                 * as the same double, null for NaN and infinity. */
                char *text = NULL;
                if (tether_value_to_json(v, &text) == TETHER_SUCCESS)
                        fputs(text, f);
                else
                        fputs("null", f);
                free(text);
                break;
        }
        case TETHER_TYPE_BOOL:
                tether_value_get_bool(v, &b);
                fputs(b ? "true" : "false", f);
                break;
        case TETHER_TYPE_STRING:
                tether_value_get_string(v, &s);
                json_string(f, s);
                break;
        case TETHER_TYPE_DATA:
                tether_value_get_data(v, &bytes, &len);
                tool_json_hex(f, bytes, len);
                break;
        case TETHER_TYPE_ARRAY:
                fputc('[', f);
                for (size_t k = 0; k < tether_value_count(v); k++) {
                        tether_value *m = NULL;
                        tether_value_array_get(v, k, &m);
                        if (k)
                                fputc(',', f);
                        reg_json_value(f, m);
                }
                fputc(']', f);
                break;
        case TETHER_TYPE_DICT:
                fputc('{', f);
                for (size_t k = 0; k < tether_value_count(v); k++) {
                        const char *key;
                        tether_value *m = NULL;
                        tether_value_dict_entry(v, k, &key, &m);
                        if (k)
                                fputc(',', f);
                        json_string(f, key);
                        fputc(':', f);
                        reg_json_value(f, m);
                }
                fputc('}', f);
                break;
        }
}

/* "uint32", "int8", "double", ...: what the number or string in the JSON
 * was, which JSON alone cannot say (and what `reg set -t` takes). */
static void json_type(FILE *f, const tether_value *v)
{
        tether_value_type t = tether_value_get_type(v);
        if (t == TETHER_TYPE_INT || t == TETHER_TYPE_UINT)
                fprintf(f, "\"%s%u\"", t == TETHER_TYPE_INT ? "int" : "uint", tether_value_get_bits(v));
        else
                fprintf(f, "\"%s\"",
                        t == TETHER_TYPE_DOUBLE ? "double"
                        : t == TETHER_TYPE_BOOL ? "bool"
                        : t == TETHER_TYPE_STRING ? "string"
                        : t == TETHER_TYPE_DATA ? "data"
                        : t == TETHER_TYPE_ARRAY ? "array"
                                                 : "dict");
}

static void json_id(FILE *f, uint64_t id)
{
        fprintf(f, "\"0x%" PRIx64 "\"", id);
}

static void json_entry(FILE *f, const reg_node *n)
{
        const tether_entry_info *i = n->info;
        fprintf(f, "{\"id\":");
        json_id(f, i->id);
        fprintf(f, ",\"parent\":");
        if (i->parent_id)
                json_id(f, i->parent_id);
        else
                fputs("null", f);
        fputs(",\"class\":", f);
        json_string(f, i->class_name);
        fputs(",\"name\":", f);
        json_string(f, i->name);
        fputs(",\"location\":", f);
        json_string(f, i->location);
        fputs(",\"path\":", f);
        json_string(f, i->path);
        fprintf(f, ",\"state\":{\"registered\":%s,\"matched\":%s,\"active\":%s,\"inactive\":%s}",
                (i->state & TETHER_ENTRY_REGISTERED) ? "true" : "false",
                (i->state & TETHER_ENTRY_MATCHED) ? "true" : "false",
                (i->state & TETHER_ENTRY_ACTIVE) ? "true" : "false",
                (i->state & TETHER_ENTRY_INACTIVE) ? "true" : "false");
        fprintf(f, ",\"busy\":%u,\"openCount\":%u,\"driver\":", i->busy, i->open_count);
        if (i->driver[0])
                json_string(f, i->driver);
        else
                fputs("null", f);
        fputs(",\"properties\":", f);
        if (n->props)
                reg_json_value(f, n->props);
        else
                fputs("{}", f);
        fputs(",\"propertyTypes\":{", f);
        for (size_t k = 0; n->props && k < tether_value_count(n->props); k++) {
                const char *key;
                tether_value *m = NULL;
                tether_value_dict_entry(n->props, k, &key, &m);
                if (k)
                        fputc(',', f);
                json_string(f, key);
                fputc(':', f);
                json_type(f, m);
        }
        fprintf(f, "},\"childCount\":%zu,\"children\":[", n->child_count);
        for (size_t k = 0; k < n->n_kids; k++) {
                if (k)
                        fputc(',', f);
                json_entry(f, n->kids[k]);
        }
        fputs("]}", f);
}

tether_ret_t reg_json_write(FILE *f, reg_node *const *roots, size_t n)
{
        fprintf(f, "{\"schema\":%d,\"plane\":\"" REG_PLANE "\",\"entries\":[", REG_JSON_SCHEMA);
        for (size_t i = 0; i < n; i++) {
                if (i)
                        fputc(',', f);
                json_entry(f, roots[i]);
        }
        fputs("]}\n", f);
        return ferror(f) ? TETHER_ERR_IO : TETHER_SUCCESS;
}
