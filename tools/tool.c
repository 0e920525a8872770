/* SPDX-License-Identifier: MIT */
#include "tool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tether_ret_t first_match(tether_session *s, tether_ret_t (*make)(const char *, tether_value **),
                                const char *arg, uint64_t *ret_id)
{
        tether_value *m = NULL;
        tether_ret_t r = make(arg, &m);
        if (r == TETHER_SUCCESS)
                r = tether_get_matching_service(s, m, ret_id);
        tether_value_unref(m);
        return r;
}

tether_ret_t tool_resolve_entry(tether_session *s, const char *arg, uint64_t *ret_id)
{
        if (strchr(arg, ':'))
                return tether_registry_entry_from_path(s, arg, ret_id);
        char *end = NULL;
        errno = 0;
        unsigned long long id = strtoull(arg, &end, 0);
        if (*arg && !*end && !errno) {
                tether_entry_info *info = NULL;
                tether_ret_t r = tether_registry_entry_get_info(s, id, &info);
                tether_entry_info_free(info);
                if (r == TETHER_SUCCESS)
                        *ret_id = id;
                return r;
        }
        tether_ret_t r = first_match(s, tether_service_name_matching, arg, ret_id);
        if (r == TETHER_ERR_NOT_FOUND)
                r = first_match(s, tether_service_matching, arg, ret_id);
        return r;
}

int tool_fail(const char *prog, const char *what, tether_ret_t r)
{
        const char *why = tether_strerror(r);
        if (r == TETHER_ERR_NOT_RESPONDING || r == TETHER_ERR_IPC)
                why = "cannot reach tetherd (is it running? $TETHER_SOCKET names its socket)";
        else if (r == TETHER_ERR_NOT_PRIVILEGED || r == TETHER_ERR_NOT_PERMITTED)
                why = "permission denied (needs root or tetherd's user)";
        else if (r == TETHER_ERR_NOT_FOUND)
                why = "no such entry";
        fprintf(stderr, "%s: %s: %s\n", prog, what, why);
        return 1;
}
