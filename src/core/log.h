/* SPDX-License-Identifier: MIT */
#ifndef TETHER_CORE_LOG_H
#define TETHER_CORE_LOG_H

/*
 * One small logger. Messages go to stderr with a level prefix, or to a sink
 * a program installs: tetherd and its driver hosts send them to the journal
 * when stderr is the journal (core/log-journal.c), with the level as its
 * priority and the bundle a line is about as a field of its own. If the
 * sink fails, or none is set while JOURNAL_STREAM is, stderr gets the line
 * with a "<N>" syslog prefix, so journald still keeps the level. Every
 * message about a failure names the party at fault: client, driver, device
 * or tether.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

void log_set_level(enum log_level max);
/* TETHER_LOG=debug|info|warn|err sets the level; JOURNAL_STREAM says
 * whether stderr is the journal (log_stderr_is_journal). */
void log_init_from_env(void);
/* Whether a line of that level is written now: saves formatting one that is not. */
bool log_enabled(enum log_level level);
/* The level in force as TETHER_LOG spells it, for a child process
 * (a driver host) to log as this one does, --verbose included. */
const char *log_level_env(void);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* What a line is about, beyond its text: structured fields for a sink that
 * keeps them (the journal's TETHER_BUNDLE=). The text names it too, so a
 * line on stderr reads the same. */
#define LOG_MAX_BUNDLE 128u
typedef struct log_fields {
        const char *bundle; /* a bundle id, or NULL */
} log_fields;

/* A line about a bundle (its driver, its host, its manifest). */
void log_bundle(enum log_level level, const char *bundle, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* The bundle every line of this process is about, unless a line names
 * another: a driver host's own. The string is copied. */
void log_set_process_bundle(const char *bundle);

/* Where lines go instead of stderr. The sink returns false when it could
 * not take a line, which then goes to stderr. Set it before any thread
 * logs; NULL restores stderr. */
/* Whether stderr is a journal stream, as log_init_from_env found it:
 * JOURNAL_STREAM ("DEV:INODE", set by systemd for a service whose output
 * goes to the journal) names the file fd 2 is. Only then: a tetherd started
 * by hand from a shell that a service runs inherits the variable with
 * another stderr, which is where its lines must go, without a "<N>"
 * prefix. */
bool log_stderr_is_journal(void);

typedef bool (*log_sink_fn)(enum log_level level, const log_fields *fields, const char *msg);
void log_set_sink(log_sink_fn sink);

/*
 * Warnings caused by one party (a client), rate-limited per party as the
 * kernel and journald do: a burst of LOG_LIMIT_BURST lines per
 * LOG_LIMIT_WINDOW_MS, then silence, then one "N messages suppressed" line
 * before the next one that gets through (or at log_limit_flush). A client
 * sending garbage as fast as it can must not be able to fill the disk.
 */
#define LOG_LIMIT_BURST     10u
#define LOG_LIMIT_WINDOW_MS 5000u

typedef struct log_limit {
        pthread_mutex_t lock;
        uint64_t window_start_ns;
        unsigned printed;
        unsigned suppressed;
        char bundle[LOG_MAX_BUNDLE + 1]; /* the party's bundle, for its lines' fields; "" if none */
} log_limit;

void log_limit_init(log_limit *l);
/* The party is (a service of) this bundle: its lines, the "suppressed"
 * one included, carry it as a field. Copied, cut at LOG_MAX_BUNDLE. */
void log_limit_set_bundle(log_limit *l, const char *bundle);
/* Prints any pending "suppressed" count; call when the party goes away. */
void log_limit_flush(log_limit *l, const char *who);
/* The same, only once the window the count belongs to is over: called
 * now and then, it says what was held back at most once a window, even
 * for a party that comes and goes. */
void log_limit_flush_due(log_limit *l, const char *who);
void log_limit_destroy(log_limit *l);
/* who names the party in the "suppressed" line, e.g. "client pid 42". */
void log_limited(log_limit *l, enum log_level level, const char *who, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* The same, for a line about another bundle than the party's (a driver
 * matched on a nub the party published): bundle is its field. */
void log_limited_bundle(log_limit *l, enum log_level level, const char *who, const char *bundle, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

#define log_err(...)   log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
