/* SPDX-License-Identifier: MIT */
/* Driver bundles from an application's side: list, load, unload. */
#include "client/client.h"

#include <stdlib.h>
#include <string.h>

tether_ret_t tether_driver_list(tether_session *h, tether_value **ret)
{
        if (!ret)
                return TETHER_ERR_BAD_ARGUMENT;
        client_session *s = NULL;
        tether_ret_t r = session_acquire(h, &s);
        if (r != TETHER_SUCCESS)
                return r;
        session_begin_locked(s, WIRE_DRIVER_LIST);
        client_reply rep;
        r = session_call_locked(s, &rep);
        if (r == TETHER_SUCCESS && (wire_get_value(&rep.body, ret) != TETHER_SUCCESS ||
                                    tether_value_get_type(*ret) != TETHER_TYPE_ARRAY)) {
                *ret = tether_value_unref(*ret);
                r = TETHER_ERR_IPC;
        }
        session_release(s);
        return r;
}

/* A request whose body is one string. */
static tether_ret_t string_request(tether_session *h, uint16_t type, const char *str, char **ret_why)
{
        if (ret_why)
                *ret_why = NULL;
        if (!str || !*str || strlen(str) > 4096)
                return TETHER_ERR_BAD_ARGUMENT;
        client_session *s = NULL;
        tether_ret_t r = session_acquire(h, &s);
        if (r != TETHER_SUCCESS)
                return r;
        session_begin_locked(s, type);
        wire_put_bytes(&s->tx, str, strlen(str));
        client_reply rep = { .fd = -1 };
        r = session_call_locked(s, &rep);
        if (r != TETHER_SUCCESS && ret_why && rep.h.type == (type | WIRE_REPLY_FLAG)) {
                size_t n = rep.body.left;
                *ret_why = strndup((const char *)wire_get_bytes(&rep.body, n), n);
        }
        session_release(s);
        if (r != TETHER_SUCCESS && ret_why && !*ret_why)
                *ret_why = strdup("");
        return r;
}

tether_ret_t tether_driver_load(tether_session *h, const char *path, char **ret_why)
{
        return string_request(h, WIRE_DRIVER_LOAD, path, ret_why);
}

tether_ret_t tether_driver_unload(tether_session *h, const char *bundle_id)
{
        return string_request(h, WIRE_DRIVER_UNLOAD, bundle_id, NULL);
}
