/* SPDX-License-Identifier: MIT */
#ifndef TETHER_CORE_LOG_JOURNAL_H
#define TETHER_CORE_LOG_JOURNAL_H

/*
 * The journal as core/log.h's sink, for tetherd and its driver hosts
 * (linked only there: it needs libsystemd, which libtether does not).
 */

#include <stdbool.h>

/* Sends every line to the journal from now on, as a native entry:
 * MESSAGE, PRIORITY (the level), SYSLOG_IDENTIFIER (identifier) and
 * TETHER_BUNDLE when the line is about a bundle, if stderr is the journal
 * (log_stderr_is_journal) and the journal's socket is there. Returns
 * whether it does. A line the journal refuses goes to stderr. */
bool log_journal_use(const char *identifier);

#endif
