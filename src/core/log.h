/* SPDX-License-Identifier: MIT */
#ifndef TETHER_CORE_LOG_H
#define TETHER_CORE_LOG_H

/*
 * One small logger. Messages go to stderr with a level prefix; when stderr
 * is the journal (JOURNAL_STREAM set) the "<N>" syslog prefix is used so
 * journald keeps the level. Every message about a failure names the party
 * at fault: client, driver, device or tether.
 */

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

void log_set_level(enum log_level max);
/* TETHER_LOG=debug|info|warn|err sets the level. */
void log_init_from_env(void);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
