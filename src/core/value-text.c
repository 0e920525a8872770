/* SPDX-License-Identifier: MIT */
/* Values as text: ioreg's style for people, JSON for tools such as jq. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/value-private.h"

static void quoted_ioreg(FILE *f, const char *s, size_t n)
{
        fputc('"', f);
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '"' || s[i] == '\\')
                        fputc('\\', f);
                fputc(s[i], f);
        }
        fputc('"', f);
}

/* The shortest %g that reads back as the same double: 0.1 stays "0.1"
 * rather than %.17g's "0.10000000000000001", and nothing is lost. */
static void number(FILE *f, double x)
{
        char buf[32];
        for (int prec = 15; prec <= 17; prec++) {
                snprintf(buf, sizeof(buf), "%.*g", prec, x);
                if (prec == 17 || strtod(buf, NULL) == x)
                        break;
        }
        fputs(buf, f);
}

static void hex(FILE *f, const uint8_t *p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%02x", p[i]);
}

/* How a printer spells containers; the walk itself is shared. */
typedef struct style {
        void (*value)(FILE *f, const tether_value *v);
        void (*key)(FILE *f, const char *s, size_t n);
        char array_open, array_close, pair;
} style;

static void container(FILE *f, const tether_value *v, const style *st)
{
        bool dict = v->type == TETHER_TYPE_DICT;
        size_t n = dict ? v->u.dict.n : v->u.array.n;
        fputc(dict ? '{' : st->array_open, f);
        for (size_t i = 0; i < n; i++) {
                if (i)
                        fputc(',', f);
                if (dict) {
                        st->key(f, v->u.dict.entries[i].key, strlen(v->u.dict.entries[i].key));
                        fputc(st->pair, f);
                        st->value(f, v->u.dict.entries[i].value);
                } else {
                        st->value(f, v->u.array.items[i]);
                }
        }
        fputc(dict ? '}' : st->array_close, f);
}

static void format(FILE *f, const tether_value *v);
static const style ioreg_style = { format, quoted_ioreg, '(', ')', '=' };

static void format(FILE *f, const tether_value *v)
{
        switch (v->type) {
        case TETHER_TYPE_INT:
                fprintf(f, "%" PRId64, v->u.i);
                break;
        case TETHER_TYPE_UINT:
                fprintf(f, "%" PRIu64, v->u.u);
                break;
        case TETHER_TYPE_DOUBLE:
                number(f, v->u.d);
                break;
        case TETHER_TYPE_BOOL:
                fputs(v->u.b ? "Yes" : "No", f);
                break;
        case TETHER_TYPE_STRING:
                quoted_ioreg(f, v->u.bytes.p, v->u.bytes.len);
                break;
        case TETHER_TYPE_DATA:
                fputc('<', f);
                hex(f, (const uint8_t *)v->u.bytes.p, v->u.bytes.len);
                fputc('>', f);
                break;
        case TETHER_TYPE_ARRAY:
        case TETHER_TYPE_DICT:
                container(f, v, &ioreg_style);
                break;
        }
}

static void quoted_json(FILE *f, const char *s, size_t n)
{
        fputc('"', f);
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                switch (c) {
                case '"': fputs("\\\"", f); break;
                case '\\': fputs("\\\\", f); break;
                case '\n': fputs("\\n", f); break;
                case '\r': fputs("\\r", f); break;
                case '\t': fputs("\\t", f); break;
                default:
                        if (c < 0x20)
                                fprintf(f, "\\u%04x", c);
                        else
                                fputc(c, f);
                }
        }
        fputc('"', f);
}

static void json(FILE *f, const tether_value *v);
static const style json_style = { json, quoted_json, '[', ']', ':' };

static void json(FILE *f, const tether_value *v)
{
        switch (v->type) {
        case TETHER_TYPE_DOUBLE:
                if (isfinite(v->u.d))
                        number(f, v->u.d);
                else
                        fputs("null", f); /* JSON has no NaN or infinity */
                break;
        case TETHER_TYPE_BOOL:
                fputs(v->u.b ? "true" : "false", f);
                break;
        case TETHER_TYPE_STRING:
                quoted_json(f, v->u.bytes.p, v->u.bytes.len);
                break;
        case TETHER_TYPE_DATA:
                fputc('"', f);
                hex(f, (const uint8_t *)v->u.bytes.p, v->u.bytes.len);
                fputc('"', f);
                break;
        case TETHER_TYPE_ARRAY:
        case TETHER_TYPE_DICT:
                container(f, v, &json_style);
                break;
        default:
                format(f, v); /* integers: the same digits */
                break;
        }
}

static tether_ret_t to_text(const tether_value *v, void (*fn)(FILE *, const tether_value *), char **ret)
{
        if (!v || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        char *s = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);
        if (!f)
                return TETHER_ERR_NO_MEMORY;
        fn(f, v);
        /* A write that ran out of memory leaves the stream in error. */
        bool failed = ferror(f);
        if (fclose(f) != 0 || failed) {
                free(s);
                return TETHER_ERR_NO_MEMORY;
        }
        *ret = s;
        return TETHER_SUCCESS;
}

tether_ret_t tether_value_format(const tether_value *v, char **ret)
{
        return to_text(v, format, ret);
}

tether_ret_t tether_value_to_json(const tether_value *v, char **ret)
{
        return to_text(v, json, ret);
}
