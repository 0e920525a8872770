/* SPDX-License-Identifier: MIT */
#include "scpi/scpi.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

tether_ret_t scpi_block_parse(const uint8_t *buf, size_t len, const uint8_t **ret_data, size_t *ret_len)
{
        if (!buf || !ret_data || !ret_len || len < 2 || buf[0] != '#' || !isdigit(buf[1]))
                return TETHER_ERR_BAD_ARGUMENT;
        size_t digits = (size_t)(buf[1] - '0');
        if (digits == 0)
                return TETHER_ERR_BAD_ARGUMENT; /* indefinite: not from this series */
        if (len < 2 + digits)
                return TETHER_ERR_UNDERRUN;
        size_t n = 0;
        for (size_t i = 0; i < digits; i++) {
                if (!isdigit(buf[2 + i]))
                        return TETHER_ERR_BAD_ARGUMENT;
                n = n * 10 + (size_t)(buf[2 + i] - '0');
        }
        if (n > len - 2 - digits)
                return TETHER_ERR_UNDERRUN;
        *ret_data = buf + 2 + digits;
        *ret_len = n;
        return TETHER_SUCCESS;
}

tether_ret_t scpi_preamble_parse(const char *text, scpi_preamble *ret)
{
        if (!text || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        double f[10];
        const char *p = text;
        for (int i = 0; i < 10; i++) {
                char *end = NULL;
                errno = 0;
                f[i] = strtod(p, &end);
                if (end == p || errno)
                        return TETHER_ERR_BAD_ARGUMENT;
                p = end;
                if (i < 9) {
                        if (*p != ',')
                                return TETHER_ERR_BAD_ARGUMENT;
                        p++;
                }
        }
        while (*p == '\n' || *p == '\r' || *p == ' ')
                p++;
        if (*p)
                return TETHER_ERR_BAD_ARGUMENT;
        if (f[2] < 0 || f[2] > 1e9 || f[3] < 0 || f[3] > 1e9 || f[7] == 0)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret = (scpi_preamble){ .format = (int)f[0], .type = (int)f[1], .points = (uint32_t)f[2],
                                .count = (uint32_t)f[3], .x_increment = f[4], .x_origin = f[5],
                                .x_reference = f[6], .y_increment = f[7], .y_origin = f[8], .y_reference = f[9] };
        return TETHER_SUCCESS;
}

double scpi_code_to_volts(const scpi_preamble *p, double code)
{
        return (code - p->y_reference) * p->y_increment + p->y_origin;
}

double scpi_index_to_time(const scpi_preamble *p, size_t index)
{
        return ((double)index - p->x_reference) * p->x_increment + p->x_origin;
}

tether_ret_t scpi_samples_to_volts(const scpi_preamble *p, const uint8_t *data, size_t len, bool msb_first,
                                   bool is_unsigned, double *volts, size_t n)
{
        size_t width = p->format == SCPI_FORMAT_WORD ? 2 : p->format == SCPI_FORMAT_BYTE ? 1 : 0;
        if (!width || !data || !volts || n > len / width)
                return TETHER_ERR_BAD_ARGUMENT;
        for (size_t i = 0; i < n; i++) {
                double code;
                if (width == 1) {
                        code = is_unsigned ? data[i] : (int8_t)data[i];
                } else {
                        const uint8_t *w = data + 2 * i;
                        uint16_t u = msb_first ? (uint16_t)(w[0] << 8 | w[1]) : (uint16_t)(w[1] << 8 | w[0]);
                        code = is_unsigned ? u : (int16_t)u;
                }
                volts[i] = scpi_code_to_volts(p, code);
        }
        return TETHER_SUCCESS;
}
