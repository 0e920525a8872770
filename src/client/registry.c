/* SPDX-License-Identifier: MIT */
#include "client/client.h"
#include "wire/reason.h"

#include <stdlib.h>
#include <string.h>

#define CHECK(cond) do { if (!(cond)) return TETHER_ERR_BAD_ARGUMENT; } while (0)

tether_ret_t tether_registry_get_root(tether_session *h, uint64_t *ret_id)
{
        CHECK(ret_id);
        client_session *s = NULL;
        tether_ret_t r = session_get(h, &s);
        if (r == TETHER_SUCCESS) {
                *ret_id = s->root_id; /* set once at open: no lock */
                session_put(s);
        }
        return r;
}

/* A CBOR reply body as a value. */
static tether_ret_t reply_value(client_reply *rep, tether_value **ret)
{
        return wire_get_value(&rep->body, ret) == TETHER_SUCCESS ? TETHER_SUCCESS : TETHER_ERR_IPC;
}

/* A request naming an entry (and maybe a key) whose reply is one CBOR value. */
static tether_ret_t query_value(tether_session *h, uint16_t type, uint64_t id, const char *key, tether_value **ret)
{
        client_session *s = NULL;
        tether_ret_t r = session_acquire(h, &s);
        if (r != TETHER_SUCCESS)
                return r;
        session_begin_locked(s, type);
        wire_put_u64(&s->tx, id);
        if (key)
                wire_put_bytes(&s->tx, key, strlen(key));
        client_reply rep;
        r = session_call_locked(s, &rep);
        if (r == TETHER_SUCCESS)
                r = reply_value(&rep, ret);
        session_release(s);
        return r;
}

static tether_ret_t get_entry(tether_session *s, uint64_t id, tether_value **ret)
{
        return query_value(s, WIRE_GET_ENTRY, id, NULL, ret);
}

static char *dict_strdup(const tether_value *d, const char *key)
{
        const char *str = tether_value_dict_string(d, key);
        return strdup(str ? str : "");
}

void tether_entry_info_free(tether_entry_info *info)
{
        if (!info)
                return;
        free(info->class_name);
        free(info->name);
        free(info->location);
        free(info->path);
        free(info->driver);
        free(info);
}

tether_ret_t tether_registry_entry_get_info(tether_session *s, uint64_t id, tether_entry_info **ret)
{
        CHECK(ret);
        tether_value *d = NULL;
        tether_ret_t r = get_entry(s, id, &d);
        if (r != TETHER_SUCCESS)
                return r;
        tether_entry_info *info = calloc(1, sizeof(*info));
        if (info) {
                info->id = tether_value_dict_uint(d, "id", 0);
                info->parent_id = tether_value_dict_uint(d, "parent", 0);
                info->class_name = dict_strdup(d, "class");
                info->name = dict_strdup(d, "name");
                info->location = dict_strdup(d, "location");
                info->path = dict_strdup(d, "path");
                info->driver = dict_strdup(d, "driver");
                info->state = (uint32_t)tether_value_dict_uint(d, "state", 0);
                info->busy = (uint32_t)tether_value_dict_uint(d, "busy", 0);
                info->open_count = (uint32_t)tether_value_dict_uint(d, "openCount", 0);
        }
        tether_value_unref(d);
        if (!info || !info->class_name || !info->name || !info->location || !info->path || !info->driver) {
                tether_entry_info_free(info);
                return TETHER_ERR_NO_MEMORY;
        }
        *ret = info;
        return TETHER_SUCCESS;
}

tether_ret_t tether_registry_entry_get_children(tether_session *s, uint64_t id, uint64_t **ret_ids,
                                                size_t *ret_count)
{
        CHECK(ret_ids && ret_count);
        tether_value *d = NULL, *kids = NULL;
        tether_ret_t r = get_entry(s, id, &d);
        if (r == TETHER_SUCCESS && tether_value_dict_get(d, "children", &kids) != TETHER_SUCCESS)
                r = TETHER_ERR_IPC;
        size_t n = r == TETHER_SUCCESS ? tether_value_count(kids) : 0;
        uint64_t *ids = r == TETHER_SUCCESS ? calloc(n ? n : 1, sizeof(*ids)) : NULL;
        if (r == TETHER_SUCCESS && !ids)
                r = TETHER_ERR_NO_MEMORY;
        for (size_t i = 0; r == TETHER_SUCCESS && i < n; i++) {
                tether_value *v = NULL;
                if (tether_value_array_get(kids, i, &v) != TETHER_SUCCESS ||
                    tether_value_get_uint(v, &ids[i]) != TETHER_SUCCESS)
                        r = TETHER_ERR_IPC;
        }
        tether_value_unref(d);
        if (r != TETHER_SUCCESS) {
                free(ids);
                return r;
        }
        *ret_ids = ids;
        *ret_count = n;
        return TETHER_SUCCESS;
}

tether_ret_t tether_registry_entry_get_parent(tether_session *s, uint64_t id, uint64_t *ret_id)
{
        CHECK(ret_id);
        tether_value *d = NULL;
        tether_ret_t r = get_entry(s, id, &d);
        if (r == TETHER_SUCCESS) {
                uint64_t p = tether_value_dict_uint(d, "parent", 0);
                if (p)
                        *ret_id = p;
                else
                        r = TETHER_ERR_NOT_FOUND; /* the root has none */
        }
        tether_value_unref(d);
        return r;
}

tether_ret_t tether_registry_entry_get_path(tether_session *s, uint64_t id, char **ret_path)
{
        CHECK(ret_path);
        tether_value *d = NULL;
        tether_ret_t r = get_entry(s, id, &d);
        if (r == TETHER_SUCCESS) {
                *ret_path = dict_strdup(d, "path");
                if (!*ret_path)
                        r = TETHER_ERR_NO_MEMORY;
        }
        tether_value_unref(d);
        return r;
}

tether_ret_t tether_registry_entry_from_path(tether_session *h, const char *path, uint64_t *ret_id)
{
        CHECK(path && ret_id && *path && strlen(path) <= 4096);
        client_session *s = NULL;
        tether_ret_t r = session_acquire(h, &s);
        if (r != TETHER_SUCCESS)
                return r;
        session_begin_locked(s, WIRE_LOOKUP_PATH);
        wire_put_bytes(&s->tx, path, strlen(path));
        client_reply rep;
        r = session_call_locked(s, &rep);
        if (r == TETHER_SUCCESS) {
                *ret_id = wire_get_u64(&rep.body);
                if (wire_reader_done(&rep.body) != TETHER_SUCCESS)
                        r = TETHER_ERR_IPC;
        }
        session_release(s);
        return r;
}

static tether_ret_t get_property(tether_session *s, uint64_t id, const char *key, tether_value **ret)
{
        return query_value(s, WIRE_GET_PROPERTY, id, key, ret);
}

tether_ret_t tether_registry_entry_get_properties(tether_session *s, uint64_t id, tether_value **ret_dict)
{
        CHECK(ret_dict);
        return get_property(s, id, "", ret_dict);
}

tether_ret_t tether_registry_entry_get_property(tether_session *s, uint64_t id, const char *key,
                                                tether_value **ret)
{
        CHECK(key && *key && ret && strlen(key) <= 1024);
        return get_property(s, id, key, ret);
}

tether_ret_t tether_registry_entry_set_properties_why(tether_session *h, uint64_t id, const tether_value *dict,
                                                     char **ret_why)
{
        if (ret_why)
                *ret_why = NULL;
        CHECK(dict && tether_value_get_type(dict) == TETHER_TYPE_DICT);
        client_session *s = NULL;
        tether_ret_t r = session_acquire(h, &s);
        if (r != TETHER_SUCCESS)
                return r;
        session_begin_locked(s, WIRE_SET_PROPERTIES);
        wire_put_u64(&s->tx, id);
        wire_put_value(&s->tx, dict);
        client_reply rep = { .fd = -1 };
        r = session_call_locked(s, &rep);
        char *why = NULL;
        /* The reason is the driver's text: kept only if it is one the wire
         * admits, so what the caller prints cannot drive its terminal. */
        if (r != TETHER_SUCCESS && ret_why && rep.h.type == (WIRE_SET_PROPERTIES | WIRE_REPLY_FLAG)) {
                size_t n = rep.body.left;
                const uint8_t *text = wire_get_bytes(&rep.body, n);
                if (n && wire_reason_valid(text, n))
                        why = strndup((const char *)text, n);
        }
        session_release(s);
        if (r != TETHER_SUCCESS && ret_why)
                *ret_why = why ? why : strdup("");
        return r;
}

tether_ret_t tether_registry_entry_set_properties(tether_session *h, uint64_t id, const tether_value *dict)
{
        return tether_registry_entry_set_properties_why(h, id, dict, NULL);
}

static tether_ret_t one_key_dict(const char *key, const char *value, tether_value **ret)
{
        CHECK(value && *value && ret);
        tether_value *d = NULL;
        tether_ret_t r = tether_value_new_dict(&d);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(d, key, value);
        if (r != TETHER_SUCCESS)
                d = tether_value_unref(d);
        *ret = d;
        return r;
}

tether_ret_t tether_service_matching(const char *class_name, tether_value **ret_dict)
{
        return one_key_dict("IOProviderClass", class_name, ret_dict);
}

tether_ret_t tether_service_name_matching(const char *name, tether_value **ret_dict)
{
        return one_key_dict("IONameMatch", name, ret_dict);
}

tether_ret_t tether_get_matching_services(tether_session *h, const tether_value *matching, uint64_t **ret_ids,
                                          size_t *ret_count)
{
        CHECK(matching && ret_ids && ret_count);
        client_session *s = NULL;
        tether_ret_t r = session_acquire(h, &s);
        if (r != TETHER_SUCCESS)
                return r;
        session_begin_locked(s, WIRE_GET_MATCHING);
        wire_put_value(&s->tx, matching);
        client_reply rep;
        r = session_call_locked(s, &rep);
        uint64_t *ids = NULL;
        size_t n = 0;
        if (r == TETHER_SUCCESS) {
                if (rep.body.left % sizeof(uint64_t))
                        r = TETHER_ERR_IPC;
                n = rep.body.left / sizeof(uint64_t);
                ids = r == TETHER_SUCCESS ? calloc(n ? n : 1, sizeof(*ids)) : NULL;
                if (r == TETHER_SUCCESS && !ids)
                        r = TETHER_ERR_NO_MEMORY;
                for (size_t i = 0; r == TETHER_SUCCESS && i < n; i++)
                        ids[i] = wire_get_u64(&rep.body);
        }
        session_release(s);
        if (r != TETHER_SUCCESS) {
                free(ids);
                return r;
        }
        *ret_ids = ids;
        *ret_count = n;
        return TETHER_SUCCESS;
}

tether_ret_t tether_get_matching_service(tether_session *s, const tether_value *matching, uint64_t *ret_id)
{
        CHECK(ret_id);
        uint64_t *ids = NULL;
        size_t n = 0;
        tether_ret_t r = tether_get_matching_services(s, matching, &ids, &n);
        if (r == TETHER_SUCCESS && n == 0)
                r = TETHER_ERR_NOT_FOUND;
        if (r == TETHER_SUCCESS)
                *ret_id = ids[0];
        free(ids);
        return r;
}
