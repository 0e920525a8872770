/* SPDX-License-Identifier: MIT */
#ifndef TETHER_TOOLS_TOOL_H
#define TETHER_TOOLS_TOOL_H

/* What the tether subcommands share. prog ("tether reg") starts every
 * message, so each says which command is speaking. */

#include <stdint.h>
#include <tether/tether.h>

/* Connects to $TETHER_SOCKET (or the default), or says on stderr why not,
 * naming the socket, and fails. */
tether_ret_t tool_open(const char *prog, tether_session **ret);

/* An entry named on the command line: a path ("TetherService:/a/b@loc" or
 * "/a/b"), an id (0x hex or decimal), or a name (or name@location) that
 * exactly one entry has; a name two entries share is refused, listing
 * their ids. Says what is wrong on stderr itself. (reg-entry.c) */
tether_ret_t tool_resolve_entry(tether_session *s, const char *prog, const char *spec, uint64_t *ret_id);

/* One clear line on stderr ("prog: what: why"); returns 1, the exit status. */
int tool_fail(const char *prog, const char *what, tether_ret_t r);

#endif
