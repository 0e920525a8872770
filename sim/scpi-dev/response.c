/* SPDX-License-Identifier: MIT */
#include "response.h"

#include <stdio.h>

void scpi_response_init(scpi_response *r, bytes *out, size_t max)
{
        *r = (scpi_response){ .out = out, .max = max };
}

void scpi_response_begin(scpi_response *r)
{
        r->units = 0;
}

void scpi_response_append(scpi_response *r, const void *p, size_t n)
{
        if (n <= r->max && r->out->len <= r->max - n)
                bytes_append(r->out, p, n);
}

void scpi_response_unit(scpi_response *r)
{
        if (r->units++)
                scpi_response_append(r, ";", 1);
}

void scpi_response_vprintf(scpi_response *r, const char *fmt, va_list ap)
{
        char buf[SCPI_RESPONSE_UNIT_MAX + 1];
        int n = vsnprintf(buf, sizeof(buf), fmt, ap);
        scpi_response_unit(r);
        scpi_response_append(r, buf, n < 0 ? 0 : (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

void scpi_response_printf(scpi_response *r, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        scpi_response_vprintf(r, fmt, ap);
        va_end(ap);
}

bool scpi_response_end(scpi_response *r)
{
        if (!r->units)
                return false;
        scpi_response_append(r, "\n", 1);
        return true;
}
