/* SPDX-License-Identifier: MIT */
#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

bool log_enabled(enum log_level level)
{
        return (int)level <= atomic_load(&max_level);
}

const char *log_level_env(void)
{
        int l = atomic_load(&max_level);
        return l >= LOG_LVL_DEBUG ? "debug" : l >= LOG_LVL_INFO ? "info" : l >= LOG_LVL_WARN ? "warn" : "err";
}

static void log_line(enum log_level level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

void log_msg(enum log_level level, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        log_line(level, fmt, ap);
        va_end(ap);
}

static uint64_t mono_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void log_limit_init(log_limit *l)
{
        pthread_mutex_init(&l->lock, NULL);
        l->window_start_ns = 0;
        l->printed = l->suppressed = 0;
}

void log_limit_destroy(log_limit *l)
{
        pthread_mutex_destroy(&l->lock);
}

void log_limit_flush(log_limit *l, const char *who)
{
        pthread_mutex_lock(&l->lock);
        unsigned n = l->suppressed;
        l->suppressed = 0;
        pthread_mutex_unlock(&l->lock);
        if (n)
                log_msg(LOG_LVL_WARN, "%s: %u messages suppressed", who, n);
}

void log_limit_flush_due(log_limit *l, const char *who)
{
        uint64_t now = mono_ns();
        unsigned n = 0;
        pthread_mutex_lock(&l->lock);
        if (l->suppressed && now - l->window_start_ns >= (uint64_t)LOG_LIMIT_WINDOW_MS * 1000000u) {
                n = l->suppressed;
                l->suppressed = 0;
                l->window_start_ns = 0; /* the next message opens a new window */
        }
        pthread_mutex_unlock(&l->lock);
        if (n)
                log_msg(LOG_LVL_WARN, "%s: %u messages suppressed", who, n);
}

void log_limited(log_limit *l, enum log_level level, const char *who, const char *fmt, ...)
{
        if ((int)level > atomic_load(&max_level))
                return;
        uint64_t now = mono_ns();
        unsigned suppressed = 0;
        bool print;
        pthread_mutex_lock(&l->lock);
        if (!l->window_start_ns || now - l->window_start_ns >= (uint64_t)LOG_LIMIT_WINDOW_MS * 1000000u) {
                l->window_start_ns = now;
                l->printed = 0;
                suppressed = l->suppressed;
                l->suppressed = 0;
        }
        print = l->printed < LOG_LIMIT_BURST;
        if (print)
                l->printed++;
        else
                l->suppressed++;
        pthread_mutex_unlock(&l->lock);
        if (suppressed)
                log_msg(LOG_LVL_WARN, "%s: %u messages suppressed", who, suppressed);
        if (print) {
                va_list ap;
                va_start(ap, fmt);
                log_line(level, fmt, ap);
                va_end(ap);
        }
}

static void log_line(enum log_level level, const char *fmt, va_list ap)
{
        static const char *const names[] = { [LOG_LVL_ERR] = "error", [LOG_LVL_WARN] = "warning",
                                             [LOG_LVL_INFO] = "info", [LOG_LVL_DEBUG] = "debug" };
        if ((int)level > atomic_load(&max_level))
                return;
        char buf[1024];
        vsnprintf(buf, sizeof(buf), fmt, ap);
        /* One fprintf per line keeps lines whole when work loops log at once. */
        if (getenv("JOURNAL_STREAM"))
                fprintf(stderr, "<%d>%s\n", (int)level, buf);
        else
                fprintf(stderr, "tetherd: %s: %s\n", names[level], buf);
}
