/* SPDX-License-Identifier: MIT */
#include "daemon/daemon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/matching.h"

#define PLANE_PREFIX "TetherService:"

pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

/* Ids look like I/O Kit's (0x100000xxx) and are never reused, so a stale id
 * held by a client can only ever miss, not hit another entry. */
static uint64_t next_id = 0x100000100ull;
static entry *root;

static pthread_mutex_t busy_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned busy;

static char *dup_or_empty(const char *s)
{
        return strdup(s ? s : "");
}

tether_ret_t entry_new(const char *class_name, const char *name, const char *location,
                       tether_value *props, entry **ret)
{
        if (!class_name || !*class_name || !name || !*name || strchr(name, '/') || strchr(name, '@'))
                return TETHER_ERR_BAD_ARGUMENT;
        if (props && tether_value_get_type(props) != TETHER_TYPE_DICT)
                return TETHER_ERR_BAD_ARGUMENT;
        if (location && strchr(location, '/'))
                return TETHER_ERR_BAD_ARGUMENT;
        entry *e = calloc(1, sizeof(*e));
        if (!e)
                return TETHER_ERR_NO_MEMORY;
        atomic_init(&e->refs, 1);
        e->class_name = strdup(class_name);
        e->name = strdup(name);
        e->location = dup_or_empty(location);
        tether_ret_t r = TETHER_SUCCESS;
        if (props)
                e->props = tether_value_ref(props);
        else
                r = tether_value_new_dict(&e->props);
        if (r != TETHER_SUCCESS || !e->class_name || !e->name || !e->location) {
                entry_unref(e);
                return r ? r : TETHER_ERR_NO_MEMORY;
        }
        pthread_mutex_lock(&reg_lock);
        e->id = next_id++;
        pthread_mutex_unlock(&reg_lock);
        *ret = e;
        return TETHER_SUCCESS;
}

entry *entry_ref(entry *e)
{
        if (e)
                atomic_fetch_add(&e->refs, 1);
        return e;
}

entry *entry_unref(entry *e)
{
        if (!e || atomic_fetch_sub(&e->refs, 1) != 1)
                return NULL;
        /* Children hold a reference to their parent, so by now none are left. */
        free(e->children);
        entry_unref(e->parent);
        tether_value_unref(e->props);
        free(e->class_name);
        free(e->name);
        free(e->location);
        free(e);
        return NULL;
}

tether_ret_t registry_init(void)
{
        tether_value *props = NULL;
        tether_ret_t r = tether_value_new_dict(&props);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(props, "TetherVersion", "0.1.0");
        if (r == TETHER_SUCCESS)
                r = entry_new("TetherRegistryRoot", "Root", NULL, props, &root);
        tether_value_unref(props);
        if (r == TETHER_SUCCESS)
                root->state = TETHER_ENTRY_REGISTERED | TETHER_ENTRY_ACTIVE;
        return r;
}

void registry_shutdown(void)
{
        pthread_mutex_lock(&reg_lock);
        /* Services have detached themselves by now; what is left are nubs. */
        while (root && root->n_children)
                registry_detach_locked(root->children[root->n_children - 1]);
        pthread_mutex_unlock(&reg_lock);
        root = entry_unref(root);
}

entry *registry_root(void)
{
        return root;
}

tether_ret_t registry_attach_locked(entry *child, entry *parent)
{
        if (!child || !parent || child->parent || child == root)
                return TETHER_ERR_BAD_ARGUMENT;
        size_t depth = 1;
        for (const entry *p = parent; p->parent; p = p->parent)
                depth++;
        if (depth >= REGISTRY_MAX_DEPTH)
                return TETHER_ERR_NO_RESOURCES;
        if (parent->n_children == parent->cap_children) {
                size_t cap = parent->cap_children ? parent->cap_children * 2 : 4;
                entry **c = realloc(parent->children, cap * sizeof(*c));
                if (!c)
                        return TETHER_ERR_NO_MEMORY;
                parent->children = c;
                parent->cap_children = cap;
        }
        parent->children[parent->n_children++] = entry_ref(child);
        child->parent = entry_ref(parent);
        child->state |= TETHER_ENTRY_REGISTERED;
        return TETHER_SUCCESS;
}

void registry_adjust_busy_locked(entry *e, int delta)
{
        for (; e; e = e->parent) {
                if (delta < 0 && !e->busy)
                        continue; /* never wraps, whatever the order of events */
                e->busy += (uint32_t)delta;
        }
}

void registry_detach_locked(entry *e)
{
        entry *p = e->parent;
        if (!p)
                return;
        /* Detach the subtree bottom-up so every child drops its parent ref. */
        while (e->n_children)
                registry_detach_locked(e->children[e->n_children - 1]);
        /* A subtree that leaves takes its starting services' counts with it:
         * the ancestors it leaves behind must not stay busy for them. */
        for (entry *a = p; a && e->busy; a = a->parent)
                a->busy = a->busy >= e->busy ? a->busy - e->busy : 0;
        for (size_t i = 0; i < p->n_children; i++) {
                if (p->children[i] == e) {
                        memmove(&p->children[i], &p->children[i + 1],
                                (p->n_children - i - 1) * sizeof(*p->children));
                        p->n_children--;
                        break;
                }
        }
        e->state = (e->state & ~(TETHER_ENTRY_REGISTERED | TETHER_ENTRY_ACTIVE)) | TETHER_ENTRY_INACTIVE;
        e->parent = NULL;
        entry_unref(p);
        entry_unref(e); /* the tree's reference */
}

struct lookup_ctx {
        uint64_t id;
        entry *found;
};

static bool lookup_fn(entry *e, void *ctx)
{
        struct lookup_ctx *l = ctx;
        if (e->id != l->id)
                return true;
        l->found = e;
        return false;
}

entry *registry_lookup_locked(uint64_t id)
{
        /* A walk is fine at the sizes a driver host has (tens of entries);
         * an id map is the change to make if registries grow to thousands. */
        struct lookup_ctx l = { .id = id };
        registry_walk_locked(root, lookup_fn, &l);
        return l.found;
}

static bool walk(entry *e, bool (*fn)(entry *, void *), void *ctx)
{
        if (!fn(e, ctx))
                return false;
        for (size_t i = 0; i < e->n_children; i++)
                if (!walk(e->children[i], fn, ctx))
                        return false;
        return true;
}

void registry_walk_locked(entry *from, bool (*fn)(entry *e, void *ctx), void *ctx)
{
        if (from)
                walk(from, fn, ctx);
}

tether_ret_t registry_path_locked(const entry *e, char **ret)
{
        const entry *chain[REGISTRY_MAX_DEPTH];
        size_t n = 0;
        for (const entry *p = e; p && p->parent && n < REGISTRY_MAX_DEPTH; p = p->parent)
                chain[n++] = p;
        char *s = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&s, &len);
        if (!f)
                return TETHER_ERR_NO_MEMORY;
        fputs(PLANE_PREFIX, f);
        if (n == 0)
                fputc('/', f);
        while (n--) {
                fprintf(f, "/%s", chain[n]->name);
                if (chain[n]->location[0])
                        fprintf(f, "@%s", chain[n]->location);
        }
        if (fclose(f) != 0) {
                free(s);
                return TETHER_ERR_NO_MEMORY;
        }
        *ret = s;
        return TETHER_SUCCESS;
}

static bool component_matches(const entry *e, const char *comp, size_t n)
{
        const char *at = memchr(comp, '@', n);
        size_t name_len = at ? (size_t)(at - comp) : n;
        if (strlen(e->name) != name_len || memcmp(e->name, comp, name_len))
                return false;
        if (!at)
                return true;
        size_t loc_len = n - name_len - 1;
        return strlen(e->location) == loc_len && !memcmp(e->location, at + 1, loc_len);
}

entry *registry_lookup_path_locked(const char *path)
{
        size_t plen = strlen(PLANE_PREFIX);
        if (!strncmp(path, PLANE_PREFIX, plen))
                path += plen;
        if (*path != '/')
                return NULL;
        entry *e = root;
        const char *p = path + 1;
        while (*p && e) {
                const char *slash = strchr(p, '/');
                size_t n = slash ? (size_t)(slash - p) : strlen(p);
                entry *next = NULL;
                for (size_t i = 0; n && i < e->n_children && !next; i++)
                        if (component_matches(e->children[i], p, n))
                                next = e->children[i];
                e = next;
                p += n;
                if (*p == '/')
                        p++;
        }
        return e;
}

static const char *view_class(const void *e)
{
        return ((const entry *)e)->class_name;
}

static const char *view_name(const void *e)
{
        return ((const entry *)e)->name;
}

static uint64_t view_id(const void *e)
{
        return ((const entry *)e)->id;
}

static const tether_value *view_props(const void *e)
{
        return ((const entry *)e)->props;
}

static const void *view_parent(const void *e)
{
        return ((const entry *)e)->parent;
}

static const matching_entry_view entry_view = {
        .class_name = view_class,
        .name = view_name,
        .id = view_id,
        .properties = view_props,
        .parent = view_parent,
};

bool registry_match_locked(const tether_value *matching, const entry *e)
{
        return matching_match(matching, e, &entry_view);
}

tether_ret_t registry_copy_props(entry *e, tether_value **ret)
{
        pthread_mutex_lock(&reg_lock);
        *ret = tether_value_ref(e->props);
        pthread_mutex_unlock(&reg_lock);
        return *ret ? TETHER_SUCCESS : TETHER_ERR_NOT_FOUND;
}

void registry_busy_inc(void)
{
        pthread_mutex_lock(&busy_lock);
        busy++;
        pthread_mutex_unlock(&busy_lock);
}

void registry_busy_dec(void)
{
        pthread_mutex_lock(&busy_lock);
        if (busy)
                busy--;
        pthread_mutex_unlock(&busy_lock);
}

bool registry_quiet(void)
{
        pthread_mutex_lock(&busy_lock);
        bool quiet = !busy;
        pthread_mutex_unlock(&busy_lock);
        return quiet;
}
