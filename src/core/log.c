/* SPDX-License-Identifier: MIT */
#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static atomic_int max_level = LOG_LVL_INFO;
static log_sink_fn sink;
static char process_bundle[LOG_MAX_BUNDLE + 1];

static atomic_bool stderr_journal;

/* JOURNAL_STREAM ("DEV:INODE") names the file fd 2 is. */
static bool journal_stream_is_stderr(void)
{
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev = 0, ino = 0;
        int end = 0;
        struct stat st;
        return e && sscanf(e, "%llu:%llu%n", &dev, &ino, &end) == 2 && !e[end] && fstat(STDERR_FILENO, &st) == 0 &&
               (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

bool log_stderr_is_journal(void)
{
        return atomic_load(&stderr_journal);
}

void log_set_sink(log_sink_fn fn)
{
        sink = fn;
}

void log_set_process_bundle(const char *bundle)
{
        snprintf(process_bundle, sizeof(process_bundle), "%s", bundle ? bundle : "");
}

void log_set_level(enum log_level max)
{
        atomic_store(&max_level, (int)max);
}

void log_init_from_env(void)
{
        atomic_store(&stderr_journal, journal_stream_is_stderr());
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

static void log_line(enum log_level level, const char *bundle, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));

void log_msg(enum log_level level, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        log_line(level, NULL, fmt, ap);
        va_end(ap);
}

void log_bundle(enum log_level level, const char *bundle, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        log_line(level, bundle, fmt, ap);
        va_end(ap);
}

/* The "N messages suppressed" line, about the party's bundle. */
static void say_suppressed(const log_limit *l, const char *who, unsigned n)
{
        log_bundle(LOG_LVL_WARN, l->bundle[0] ? l->bundle : NULL, "%s: %u messages suppressed", who, n);
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
        l->bundle[0] = '\0';
}

void log_limit_set_bundle(log_limit *l, const char *bundle)
{
        snprintf(l->bundle, sizeof(l->bundle), "%s", bundle ? bundle : "");
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
                say_suppressed(l, who, n);
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
                say_suppressed(l, who, n);
}

static void limited(log_limit *l, enum log_level level, const char *who, const char *bundle, const char *fmt,
                    va_list ap) __attribute__((format(printf, 5, 0)));

void log_limited(log_limit *l, enum log_level level, const char *who, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        limited(l, level, who, l->bundle[0] ? l->bundle : NULL, fmt, ap);
        va_end(ap);
}

void log_limited_bundle(log_limit *l, enum log_level level, const char *who, const char *bundle, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        limited(l, level, who, bundle, fmt, ap);
        va_end(ap);
}

static void limited(log_limit *l, enum log_level level, const char *who, const char *bundle, const char *fmt,
                    va_list ap)
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
                say_suppressed(l, who, suppressed);
        if (print)
                log_line(level, bundle, fmt, ap);
}

static void log_line(enum log_level level, const char *bundle, const char *fmt, va_list ap)
{
        static const char *const names[] = { [LOG_LVL_ERR] = "error", [LOG_LVL_WARN] = "warning",
                                             [LOG_LVL_INFO] = "info", [LOG_LVL_DEBUG] = "debug" };
        if ((int)level > atomic_load(&max_level))
                return;
        char buf[1024];
        vsnprintf(buf, sizeof(buf), fmt, ap);
        log_fields f = { .bundle = bundle ? bundle : process_bundle[0] ? process_bundle : NULL };
        if (sink && sink(level, &f, buf))
                return;
        /* One fprintf per line keeps lines whole when work loops log at once. */
        if (log_stderr_is_journal())
                fprintf(stderr, "<%d>%s\n", (int)level, buf);
        else
                fprintf(stderr, "tetherd: %s: %s\n", names[level], buf);
}
