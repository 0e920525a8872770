/* SPDX-License-Identifier: MIT */
/*
 * A driver's log (tether_service_log): its lines in tetherd's log, named
 * after the service, limited as one party. In a driver host they go to the
 * host's stderr, which is tetherd's (docs/bundles.md), so a line reads the
 * same whichever process the driver runs in.
 */
#include "host/runtime.h"

#include <stdarg.h>
#include <stdio.h>

/* A driver is untrusted: a newline in its message would let it write a
 * line of its own, one that looks like tetherd's. */
static void sanitize(char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        *s = '?';
}

static void say(tether_service *s, enum log_level level, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));

static void say(tether_service *s, enum log_level level, const char *fmt, va_list ap)
{
        if (!log_enabled(level))
                return; /* a debug line costs nothing unless someone listens */
        char msg[768];
        vsnprintf(msg, sizeof(msg), fmt, ap);
        sanitize(msg);
        log_limited(&s->log, level, s->log_who, "%s: %s", s->log_who, msg);
}

tether_ret_t tether_service_logv(tether_service *svc, tether_log_level level, const char *fmt, va_list ap)
{
        if (!svc || !fmt)
                return TETHER_ERR_BAD_ARGUMENT;
        enum log_level l;
        switch (level) {
        case TETHER_LOG_ERROR:
                l = LOG_LVL_ERR;
                break;
        case TETHER_LOG_WARNING:
                l = LOG_LVL_WARN;
                break;
        case TETHER_LOG_INFO:
                l = LOG_LVL_INFO;
                break;
        case TETHER_LOG_DEBUG:
                l = LOG_LVL_DEBUG;
                break;
        default:
                return TETHER_ERR_BAD_ARGUMENT;
        }
        say(svc, l, fmt, ap);
        return TETHER_SUCCESS;
}

tether_ret_t tether_service_log(tether_service *svc, tether_log_level level, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        tether_ret_t r = tether_service_logv(svc, level, fmt, ap);
        va_end(ap);
        return r;
}

void service_log_bug(tether_service *s, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        say(s, LOG_LVL_WARN, fmt, ap);
        va_end(ap);
}
