/* SPDX-License-Identifier: MIT */
#ifndef TETHER_TOOLS_TOOL_H
#define TETHER_TOOLS_TOOL_H

/* What the tether subcommands share. */

#include <stdint.h>
#include <tether/tether.h>

/* An entry named on the command line: a registry path
 * ("TetherService:/..."), an id (decimal or 0x hex), or a name or class
 * (the first match). TETHER_ERR_NOT_FOUND if none. */
tether_ret_t tool_resolve_entry(tether_session *s, const char *arg, uint64_t *ret_id);

/* One clear line on stderr ("prog: what: why"); returns 1, the exit status. */
int tool_fail(const char *prog, const char *what, tether_ret_t r);

#endif
