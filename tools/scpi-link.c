/* SPDX-License-Identifier: MIT */
/* tether scpi's instrument interface: its two implementations. */
#include "scpi-link.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <tether/usbtmc-instrument.h>

#include "dsox2000/dsox2000.h"

/* An answer bigger than this is refused rather than held in memory. */
#define MAX_ANSWER (64u << 20)
/* The first read's capacity: most answers fit, and a bigger one costs one
 * more round (the generic driver keeps what did not fit). */
#define FIRST_READ (64u << 10)
#define NEXT_READ (1u << 20)
/* The DSOX2000 pass-through answers in one call, whole or not at all: a
 * screenshot or a full waveform fits. */
#define DSO_ANSWER (4u << 20)
#define DSO_MAX_COMMAND 255u

/* ---- the generic USBTMC driver ---- */

static tether_ret_t grow(uint8_t **buf, size_t *cap, size_t need)
{
        if (need <= *cap)
                return TETHER_SUCCESS;
        if (need > MAX_ANSWER)
                return TETHER_ERR_NO_SPACE;
        uint8_t *p = realloc(*buf, need);
        if (!p)
                return TETHER_ERR_NO_MEMORY;
        *buf = p;
        *cap = need;
        return TETHER_SUCCESS;
}

static tether_ret_t tmc_send(scpi_link *l, const char *msg, bool query, uint8_t **ret, size_t *ret_len)
{
        size_t n = strlen(msg);
        /* The instrument's parser wants the program message terminator. */
        char *line = malloc(n + 2);
        if (!line)
                return TETHER_ERR_NO_MEMORY;
        memcpy(line, msg, n);
        line[n++] = '\n';
        tether_ret_t r;
        if (!query) {
                uint64_t flags = 0;
                r = tether_call_method(l->c, TMC_WRITE, &flags, 1, line, n, NULL, NULL, NULL, NULL);
                free(line);
                return r;
        }
        uint8_t *buf = NULL;
        size_t cap = 0, len = 0;
        r = grow(&buf, &cap, FIRST_READ);
        uint64_t end = 0;
        uint32_t n_end = 1;
        size_t got = cap;
        if (r == TETHER_SUCCESS)
                r = tether_call_method(l->c, TMC_QUERY, NULL, 0, line, n, &end, &n_end, buf, &got);
        free(line);
        if (r == TETHER_SUCCESS) {
                len = got;
        } else if (r == TETHER_ERR_NO_SPACE) {
                /* Longer than the first read: the driver holds it all for
                 * this connection; read on until the end of the message. */
                r = TETHER_SUCCESS;
                end = 0;
                while (r == TETHER_SUCCESS && !(end & (TMC_END_EOM | TMC_END_TERM_CHAR))) {
                        r = grow(&buf, &cap, len + NEXT_READ);
                        got = NEXT_READ;
                        n_end = 1;
                        if (r == TETHER_SUCCESS)
                                r = tether_call_method(l->c, TMC_READ, NULL, 0, NULL, 0, &end, &n_end, buf + len, &got);
                        if (r == TETHER_SUCCESS)
                                len += got;
                }
        }
        if (r != TETHER_SUCCESS) {
                free(buf);
                return r;
        }
        *ret = buf;
        *ret_len = len;
        return TETHER_SUCCESS;
}

static tether_ret_t tmc_status_byte(scpi_link *l, uint8_t *ret)
{
        uint64_t stb = 0;
        uint32_t n = 1;
        tether_ret_t r = tether_call_scalar_method(l->c, TMC_READ_STB, NULL, 0, &stb, &n);
        if (r == TETHER_SUCCESS)
                *ret = (uint8_t)stb;
        return r;
}

static tether_ret_t tmc_clear(scpi_link *l)
{
        return tether_call_scalar_method(l->c, TMC_CLEAR, NULL, 0, NULL, NULL);
}

static tether_ret_t tmc_lock(scpi_link *l)
{
        uint64_t wait_ms = 0; /* a synchronous lock cannot wait: Busy at once */
        return tether_call_scalar_method(l->c, TMC_LOCK, &wait_ms, 1, NULL, NULL);
}

static tether_ret_t tmc_unlock(scpi_link *l)
{
        return tether_call_scalar_method(l->c, TMC_UNLOCK, NULL, 0, NULL, NULL);
}

static const scpi_link_ops tmc_ops = {
        .class_name = TMC_CLASS,
        .send = tmc_send,
        .status_byte = tmc_status_byte,
        .clear = tmc_clear,
        .lock = tmc_lock,
        .unlock = tmc_unlock,
};

/* ---- the DSOX2000 driver's pass-through ---- */

static tether_ret_t dso_send(scpi_link *l, const char *msg, bool query, uint8_t **ret, size_t *ret_len)
{
        size_t n = strlen(msg);
        if (n == 0 || n > DSO_MAX_COMMAND)
                return TETHER_ERR_BAD_ARGUMENT;
        /* The driver tells a query by a '?' anywhere; the answer is empty
         * for a command. */
        size_t cap = query ? DSO_ANSWER : 0;
        uint8_t *buf = query ? malloc(cap) : NULL;
        if (query && !buf)
                return TETHER_ERR_NO_MEMORY;
        size_t got = cap;
        tether_ret_t r = tether_call_struct_method(l->c, DSO_SCPI, msg, n, buf, &got);
        if (r != TETHER_SUCCESS || !query) {
                free(buf);
                return r;
        }
        *ret = buf;
        *ret_len = got;
        return TETHER_SUCCESS;
}

static tether_ret_t dso_unsupported_stb(scpi_link *l, uint8_t *ret)
{
        return TETHER_ERR_UNSUPPORTED;
}

static tether_ret_t dso_unsupported(scpi_link *l)
{
        return TETHER_ERR_UNSUPPORTED;
}

static tether_ret_t dso_lock(scpi_link *l)
{
        return tether_call_scalar_method(l->c, DSO_LOCK, NULL, 0, NULL, NULL);
}

static tether_ret_t dso_unlock(scpi_link *l)
{
        return tether_call_scalar_method(l->c, DSO_UNLOCK, NULL, 0, NULL, NULL);
}

static const scpi_link_ops dso_ops = {
        .class_name = DSO_CLASS,
        .send = dso_send,
        .status_byte = dso_unsupported_stb,
        .clear = dso_unsupported,
        .lock = dso_lock,
        .unlock = dso_unlock,
};

/* ---- common ---- */

const char *const scpi_link_classes[] = { DSO_CLASS, TMC_CLASS, NULL };

const scpi_link_ops *scpi_link_ops_for(const char *class_name)
{
        if (!class_name)
                return NULL;
        if (!strcmp(class_name, TMC_CLASS))
                return &tmc_ops;
        if (!strcmp(class_name, DSO_CLASS))
                return &dso_ops;
        return NULL;
}

tether_ret_t scpi_link_open(tether_session *s, uint64_t id, const scpi_link_ops *ops, scpi_link *ret)
{
        *ret = (scpi_link){ .ops = ops, .s = s, .id = id };
        return tether_service_open(s, id, 0, 0, &ret->c);
}

void scpi_link_close(scpi_link *l)
{
        if (l->c)
                tether_service_close(l->c);
        l->c = NULL;
}

tether_ret_t scpi_link_get_timeout(scpi_link *l, unsigned *ret_ms)
{
        tether_value *v = NULL;
        uint64_t ms = 0;
        tether_ret_t r = tether_registry_entry_get_property(l->s, l->id, "TimeoutMs", &v);
        if (r == TETHER_SUCCESS)
                r = tether_value_get_uint(v, &ms);
        tether_value_unref(v);
        if (r == TETHER_SUCCESS)
                *ret_ms = (unsigned)ms;
        return r;
}

tether_ret_t scpi_link_set_timeout(scpi_link *l, unsigned ms, char **ret_why)
{
        tether_value *d = NULL;
        tether_ret_t r = tether_value_new_dict(&d);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_uint(d, "TimeoutMs", ms, 32);
        if (r == TETHER_SUCCESS)
                r = tether_registry_entry_set_properties_why(l->s, l->id, d, ret_why);
        tether_value_unref(d);
        return r;
}

bool scpi_is_query(const char *msg)
{
        /* The last message unit: after the last ';' outside a string. */
        const char *unit = msg;
        char quote = 0;
        for (const char *p = msg; *p; p++) {
                if (quote) {
                        if (*p == quote)
                                quote = 0;
                } else if (*p == '"' || *p == '\'') {
                        quote = *p;
                } else if (*p == ';') {
                        unit = p + 1;
                }
        }
        while (isspace((unsigned char)*unit))
                unit++;
        size_t h = strcspn(unit, " \t\r\n");
        return h > 0 && unit[h - 1] == '?';
}

bool scpi_block(const uint8_t *p, size_t n, const uint8_t **ret_data, size_t *ret_len)
{
        if (n < 2 || p[0] != '#' || !isdigit(p[1]))
                return false;
        unsigned digits = (unsigned)(p[1] - '0');
        if (digits == 0) {
                size_t len = n - 2;
                if (len && p[n - 1] == '\n')
                        len--; /* the message terminator the block form leaves open */
                *ret_data = p + 2;
                *ret_len = len;
                return true;
        }
        if (n < 2 + (size_t)digits)
                return false;
        size_t len = 0;
        for (unsigned i = 0; i < digits; i++) {
                if (!isdigit(p[2 + i]))
                        return false;
                len = len * 10 + (size_t)(p[2 + i] - '0');
        }
        if (len > n - 2 - digits)
                return false; /* shorter than it says: not a block we can trust */
        *ret_data = p + 2 + digits;
        *ret_len = len;
        return true;
}
