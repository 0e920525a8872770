/* SPDX-License-Identifier: MIT */
#ifndef TETHER_CORE_LOG_H
#define TETHER_CORE_LOG_H

/*
 * One small logger. Messages go to stderr with a level prefix; when stderr
 * is the journal (JOURNAL_STREAM set) the "<N>" syslog prefix is used so
 * journald keeps the level. Every message about a failure names the party
 * at fault: client, driver, device or tether.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

void log_set_level(enum log_level max);
/* TETHER_LOG=debug|info|warn|err sets the level. */
void log_init_from_env(void);
/* Whether a line of that level is written now: saves formatting one that is not. */
bool log_enabled(enum log_level level);
/* The level in force as TETHER_LOG spells it, for a child process
 * (a driver host) to log as this one does, --verbose included. */
const char *log_level_env(void);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

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
} log_limit;

void log_limit_init(log_limit *l);
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

#define log_err(...)   log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
