/* SPDX-License-Identifier: MIT */
#ifndef TETHER_TOOLS_TOOL_H
#define TETHER_TOOLS_TOOL_H

/* What the tether subcommands share. prog ("tether reg") starts every
 * message, so each says which command is speaking. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <tether/tether.h>

/* Connects to $TETHER_SOCKET (or the default), or says on stderr why not,
 * naming the socket, and fails. */
tether_ret_t tool_open(const char *prog, tether_session **ret);

/* An entry named on the command line: a path ("TetherService:/a/b@loc" or
 * "/a/b"), an id (0x hex or decimal), or a name (or name@location) that
 * exactly one entry has; a name two entries share is refused, listing
 * their ids. Says what is wrong on stderr itself. (reg-entry.c) */
tether_ret_t tool_resolve_entry(tether_session *s, const char *prog, const char *spec, uint64_t *ret_id);

/* JSON text pieces, as docs/reg-json.md and docs/probe-json.md map them:
 * a string of n bytes (quotes and control characters escaped), bytes as
 * a string of lowercase hex digits, an unsigned integer as a number up to
 * 2^53 and as a string of digits beyond (jq reads numbers as doubles). */
void tool_json_string(FILE *f, const char *s, size_t n);
void tool_json_hex(FILE *f, const void *p, size_t n);
void tool_json_uint(FILE *f, uint64_t u);

/* Everything tetherd-unreachable looks like this. */
bool tool_daemon_gone(tether_ret_t r);
/* One clear line on stderr, "prog: what: why (Name)" or "prog: what:
 * tetherd went away"; returns 1, the exit status. */
int tool_fail(const char *prog, const char *what, tether_ret_t r);

#endif
