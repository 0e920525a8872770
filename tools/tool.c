/* SPDX-License-Identifier: MIT */
#include "tool.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

tether_ret_t tool_open(const char *prog, tether_session **ret)
{
        const char *path = getenv(TETHER_SOCKET_ENV);
        if (!path || !*path)
                path = TETHER_DEFAULT_SOCKET;
        tether_ret_t r = tether_session_open(path, ret);
        if (r == TETHER_SUCCESS)
                return r;
        /* libtether folds every connect() failure into two codes; the
         * socket file itself tells "not running" from "not answering". */
        struct stat st;
        const char *why;
        if (r == TETHER_ERR_NOT_PERMITTED)
                why = "permission denied";
        else if (stat(path, &st) < 0 && errno == ENOENT)
                why = "no such socket (is tetherd running? $TETHER_SOCKET names its socket)";
        else if (tool_daemon_gone(r))
                why = "it does not answer (is tetherd running?)";
        else
                why = tether_strerror(r);
        fprintf(stderr, "%s: cannot reach tetherd at %s: %s\n", prog, path, why);
        return r;
}

bool tool_daemon_gone(tether_ret_t r)
{
        return r == TETHER_ERR_NOT_RESPONDING || r == TETHER_ERR_IPC;
}

int tool_fail(const char *prog, const char *what, tether_ret_t r)
{
        if (tool_daemon_gone(r))
                fprintf(stderr, "%s: %s: tetherd went away\n", prog, what);
        else
                fprintf(stderr, "%s: %s: %s (%s)\n", prog, what, tether_strerror(r), tether_ret_name(r));
        return 1;
}

void tool_json_string(FILE *f, const char *s, size_t n)
{
        fputc('"', f);
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c == '"' || c == '\\')
                        fprintf(f, "\\%c", c);
                else if (c < 0x20 || c == 0x7f)
                        fprintf(f, "\\u%04x", c);
                else
                        fputc(c, f);
        }
        fputc('"', f);
}

void tool_json_hex(FILE *f, const void *p, size_t n)
{
        fputc('"', f);
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%02x", ((const uint8_t *)p)[i]);
        fputc('"', f);
}

void tool_json_uint(FILE *f, uint64_t u)
{
        fprintf(f, u > (UINT64_C(1) << 53) ? "\"%" PRIu64 "\"" : "%" PRIu64, u);
}
