/* SPDX-License-Identifier: MIT */
#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_int max_level = LOG_LVL_INFO;

void log_set_level(enum log_level max)
{
        atomic_store(&max_level, (int)max);
}

void log_init_from_env(void)
{
        const char *e = getenv("TETHER_LOG");
        if (!e)
                return;
        if (!strcmp(e, "debug"))
                log_set_level(LOG_LVL_DEBUG);
        else if (!strcmp(e, "info"))
                log_set_level(LOG_LVL_INFO);
        else if (!strcmp(e, "warn"))
                log_set_level(LOG_LVL_WARN);
        else if (!strcmp(e, "err"))
                log_set_level(LOG_LVL_ERR);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
        static const char *const names[] = { [LOG_LVL_ERR] = "error", [LOG_LVL_WARN] = "warning",
                                             [LOG_LVL_INFO] = "info", [LOG_LVL_DEBUG] = "debug" };
        if ((int)level > atomic_load(&max_level))
                return;
        char buf[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        /* One fprintf per line keeps lines whole when work loops log at once. */
        if (getenv("JOURNAL_STREAM"))
                fprintf(stderr, "<%d>%s\n", (int)level, buf);
        else
                fprintf(stderr, "tetherd: %s: %s\n", names[level], buf);
}
