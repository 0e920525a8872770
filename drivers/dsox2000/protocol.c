/* SPDX-License-Identifier: MIT */
#include "dsox2000/protocol.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tether_ret_t vsend(scpi_link *l, const char *fmt, va_list ap)
{
        char cmd[256];
        int n = vsnprintf(cmd, sizeof(cmd) - 1, fmt, ap);
        if (n < 0 || (size_t)n >= sizeof(cmd) - 1)
                return TETHER_ERR_BAD_ARGUMENT;
        cmd[n++] = '\n';
        return scpi_link_write(l, cmd, (size_t)n);
}

tether_ret_t dso_command(scpi_link *l, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        tether_ret_t r = vsend(l, fmt, ap);
        va_end(ap);
        return r;
}

static tether_ret_t read_text(scpi_link *l, char *answer, size_t cap)
{
        size_t n = 0;
        tether_ret_t r = scpi_link_read(l, answer, cap - 1, &n);
        if (r != TETHER_SUCCESS)
                return r;
        while (n && (answer[n - 1] == '\n' || answer[n - 1] == '\r'))
                n--;
        answer[n] = '\0';
        return TETHER_SUCCESS;
}

tether_ret_t dso_query(scpi_link *l, char *answer, size_t cap, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        tether_ret_t r = vsend(l, fmt, ap);
        va_end(ap);
        return r == TETHER_SUCCESS ? read_text(l, answer, cap) : r;
}

tether_ret_t dso_query_double(scpi_link *l, double *ret, const char *fmt, ...)
{
        char answer[64];
        va_list ap;
        va_start(ap, fmt);
        tether_ret_t r = vsend(l, fmt, ap);
        va_end(ap);
        if (r == TETHER_SUCCESS)
                r = read_text(l, answer, sizeof(answer));
        if (r != TETHER_SUCCESS)
                return r;
        char *end = NULL;
        *ret = strtod(answer, &end);
        return end == answer ? TETHER_ERR_DEVICE_ERROR : TETHER_SUCCESS;
}

static void field(char *dst, size_t cap, const char **p)
{
        const char *comma = strchr(*p, ',');
        size_t n = comma ? (size_t)(comma - *p) : strlen(*p);
        snprintf(dst, cap, "%.*s", (int)n, *p);
        *p += n + (comma ? 1 : 0);
}

tether_ret_t dso_identify(scpi_link *l, dso_identity *ret)
{
        char idn[256];
        tether_ret_t r = dso_query(l, idn, sizeof(idn), "*IDN?");
        if (r != TETHER_SUCCESS)
                return r;
        const char *p = idn;
        field(ret->manufacturer, sizeof(ret->manufacturer), &p);
        field(ret->model, sizeof(ret->model), &p);
        field(ret->serial, sizeof(ret->serial), &p);
        field(ret->firmware, sizeof(ret->firmware), &p);
        return ret->model[0] ? TETHER_SUCCESS : TETHER_ERR_DEVICE_ERROR;
}

tether_ret_t dso_next_error(scpi_link *l, int *ret_code, char *text, size_t cap)
{
        char answer[160];
        tether_ret_t r = dso_query(l, answer, sizeof(answer), ":SYSTem:ERRor?");
        if (r != TETHER_SUCCESS)
                return r;
        *ret_code = atoi(answer);
        const char *q = strchr(answer, '"');
        if (text && cap)
                snprintf(text, cap, "%s", q ? q + 1 : answer);
        if (text && cap && strlen(text) && text[strlen(text) - 1] == '"')
                text[strlen(text) - 1] = '\0';
        return TETHER_SUCCESS;
}

tether_ret_t dso_read_waveform(scpi_link *l, int channel, uint32_t points, scpi_preamble *ret_preamble,
                               uint8_t *codes, size_t cap, size_t *ret_n)
{
        tether_ret_t r = dso_command(l, ":WAVeform:SOURce CHANnel%d;FORMat BYTE;UNSigned 1;POINts:MODE NORMal;"
                                        ":WAVeform:POINts %u", channel, (unsigned)points);
        char pre[512];
        if (r == TETHER_SUCCESS)
                r = dso_query(l, pre, sizeof(pre), ":WAVeform:PREamble?");
        if (r == TETHER_SUCCESS && scpi_preamble_parse(pre, ret_preamble) != TETHER_SUCCESS)
                r = TETHER_ERR_DEVICE_ERROR;
        if (r != TETHER_SUCCESS)
                return r;
        size_t want = 16 + (size_t)ret_preamble->points + 2;
        uint8_t *block = malloc(want);
        if (!block)
                return TETHER_ERR_NO_MEMORY;
        size_t n = 0;
        r = dso_command(l, ":WAVeform:DATA?");
        if (r == TETHER_SUCCESS)
                r = scpi_link_read(l, block, want, &n);
        const uint8_t *data = NULL;
        size_t len = 0;
        if (r == TETHER_SUCCESS && scpi_block_parse(block, n, &data, &len) != TETHER_SUCCESS)
                r = TETHER_ERR_DEVICE_ERROR;
        if (r == TETHER_SUCCESS && len == 0)
                r = TETHER_ERR_NOT_READY; /* channel off, or nothing triggered */
        if (r == TETHER_SUCCESS && len > cap)
                r = TETHER_ERR_NO_SPACE;
        if (r == TETHER_SUCCESS) {
                memcpy(codes, data, len);
                *ret_n = len;
        }
        free(block);
        return r;
}

tether_ret_t dso_measure(scpi_link *l, const char *what, int channel, double *ret)
{
        tether_ret_t r = dso_query_double(l, ret, ":MEASure:%s? CHANnel%d", what, channel);
        if (r == TETHER_SUCCESS && *ret >= 9.8e37)
                return TETHER_ERR_NOT_READY;
        return r;
}
