/* SPDX-License-Identifier: MIT */
#include "daemon/daemon.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/matching.h"

/* ---- life of a service ---- */

#define SERVICE_LOOP_FDS 2 /* a work loop's epoll and eventfd */

static tether_service *all_services;   /* reg_lock */
static workloop **graveyard;           /* reg_lock: finished loops to join */
static tether_service **graveyard_svc;
static size_t n_graveyard;
static pthread_cond_t all_gone = PTHREAD_COND_INITIALIZER;
static bool shutting_down;             /* reg_lock */

/* The candidates for one nub, best score first; tried in turn until a
 * driver's start() accepts the nub. */
typedef struct match_state {
        entry *nub;               /* referenced */
        size_t n, next;
        candidate *cands;
} match_state;

static void match_state_free(match_state *m)
{
        entry_unref(m->nub);
        candidates_free(m->cands, m->n);
        free(m);
}

static void try_next_candidate(match_state *m);

/* Last act of a loop, on its own thread. */
void env_service_loop_exit(void *arg)
{
        tether_service *s = arg;
        pthread_mutex_lock(&reg_lock);
        for (tether_service **pp = &all_services; *pp; pp = &(*pp)->next_all) {
                if (*pp == s) {
                        *pp = s->next_all;
                        break;
                }
        }
        if (s->entry->service == s)
                s->entry->service = NULL;
        bundle_service_started_locked(s->bundle, -1);
        workloop **g = realloc(graveyard, (n_graveyard + 1) * sizeof(*g));
        tether_service **gs = realloc(graveyard_svc, (n_graveyard + 1) * sizeof(*gs));
        if (g)
                graveyard = g;
        if (gs)
                graveyard_svc = gs;
        if (g && gs) {
                graveyard[n_graveyard] = s->loop;
                graveyard_svc[n_graveyard++] = s; /* the loop's reference moves here */
        } else {
                log_err("tether: out of memory reaping service %s; it is leaked", s->entry->name);
        }
        pthread_cond_broadcast(&all_gone);
        pthread_mutex_unlock(&reg_lock);
}

void service_reap(void)
{
        pthread_mutex_lock(&reg_lock);
        size_t n = n_graveyard;
        workloop **g = graveyard;
        tether_service **gs = graveyard_svc;
        graveyard = NULL;
        graveyard_svc = NULL;
        n_graveyard = 0;
        pthread_mutex_unlock(&reg_lock);
        for (size_t i = 0; i < n; i++) {
                if (g[i]) /* a hosted service has no loop here */
                        workloop_join(g[i]);
                service_unref(gs[i]);
        }
        free(g);
        free(gs);
}

static tether_ret_t service_create(const candidate *c, entry *nub, tether_service **ret)
{
        const tether_driver *drv = c->driver; /* NULL: its code runs in a driver host */
        tether_service *s = calloc(1, sizeof(*s));
        if (!s)
                return TETHER_ERR_NO_MEMORY;
        atomic_init(&s->refs, 1); /* the loop's (or host's) reference, dropped via the graveyard */
        s->driver = drv;
        s->class_name = c->driver_class;
        s->bundle = bundle_ref(c->bundle);
        s->priv = calloc(1, drv && drv->priv_size ? drv->priv_size : 1);
        /* As I/O Kit copies a personality into its driver's table: which
         * bundle a service came from is one `tether reg -l` away. */
        tether_value *props = NULL;
        tether_ret_t r = s->priv ? tether_value_new_dict(&props) : TETHER_ERR_NO_MEMORY;
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(props, "CFBundleIdentifier", bundle_id(c->bundle));
        if (r == TETHER_SUCCESS)
                r = entry_new(s->class_name, s->class_name, nub->location, props, &s->entry);
        tether_value_unref(props);
        if (r == TETHER_SUCCESS) {
                s->id = s->entry->id;
                service_runtime_init(s, bundle_id(c->bundle));
                if (drv)
                        if ((r = workloop_new(drv->class_name, &s->loop)) == TETHER_SUCCESS)
                                budget_own_fds(SERVICE_LOOP_FDS);
        }
        if (r != TETHER_SUCCESS) {
                entry_unref(s->entry);
                free(s->priv);
                free(s);
                return r;
        }
        *ret = s;
        return TETHER_SUCCESS;
}

typedef struct start_ctx {
        tether_service *svc;      /* referenced */
        match_state *match;
} start_ctx;

/* A service's start() has answered: published, or detached and the next
 * candidate tried. Any thread. */
static void start_done(tether_service *s, tether_ret_t r, match_state *match)
{
        pthread_mutex_lock(&reg_lock);
        registry_adjust_busy_locked(s->entry, -1);
        if (r == TETHER_SUCCESS && s->entry->parent) {
                s->started = true;
                s->entry->state |= TETHER_ENTRY_MATCHED | TETHER_ENTRY_ACTIVE;
                s->entry->parent->state |= TETHER_ENTRY_MATCHED;
                notify_service_locked(s->entry, TETHER_NOTIFY_PUBLISHED);
                pthread_mutex_unlock(&reg_lock);
                log_info("%s %s started on %s%s", bundle_id(s->bundle), s->class_name, s->entry->parent->name,
                         s->host ? " in its own process" : "");
                match_state_free(match);
        } else {
                s->terminated = true;
                registry_detach_locked(s->entry);
                pthread_mutex_unlock(&reg_lock);
                if (r != TETHER_SUCCESS)
                        log_warn("bundle %s: %s: start refused the nub: %s", bundle_id(s->bundle), s->class_name,
                                 tether_strerror(r));
                if (s->host)
                        host_stop(s);
                else if (s->loop)
                        workloop_finish(s->loop, env_service_loop_exit, s);
                else
                        env_service_loop_exit(s); /* a host that could not even be made */
                try_next_candidate(match);
        }
        registry_busy_dec();
}

void service_host_started(tether_service *s, tether_ret_t r, void *match)
{
        start_done(s, r, match);
}

static void run_start(void *arg)
{
        start_ctx *c = arg;
        tether_service *s = c->svc;
        start_done(s, service_run_start(s), c->match);
        service_unref(s);
        free(c);
}

/* Every service a driver runs costs a thread and fds: bounded per driver,
 * whoever asked for them. */
static unsigned services_of_locked(const candidate *c)
{
        unsigned n = 0;
        for (tether_service *s = all_services; s; s = s->next_all)
                n += s->bundle == c->bundle && !strcmp(s->class_name, c->driver_class);
        return n;
}

static void try_next_candidate(match_state *m)
{
        while (m->next < m->n) {
                const candidate *p = &m->cands[m->next++];
                tether_service *s = NULL;
                if (service_create(p, m->nub, &s) != TETHER_SUCCESS) {
                        log_err("tether: cannot create a service for %s %s", bundle_id(p->bundle), p->driver_class);
                        continue;
                }
                start_ctx *c = malloc(sizeof(*c));
                pthread_mutex_lock(&reg_lock);
                tether_ret_t r = (shutting_down || !m->nub->parent || !c)
                                         ? TETHER_ERR_ABORTED
                                         : services_of_locked(p) >= TETHERD_MAX_SERVICES_PER_DRIVER
                                                   ? TETHER_ERR_NO_RESOURCES
                                                   : registry_attach_locked(s->entry, m->nub);
                if (r == TETHER_ERR_NO_RESOURCES)
                        log_warn("bundle %s: %s is at its limit of %u services; %s not matched", bundle_id(p->bundle),
                                 p->driver_class, TETHERD_MAX_SERVICES_PER_DRIVER, m->nub->name);
                if (r == TETHER_SUCCESS) {
                        registry_adjust_busy_locked(s->entry, 1);
                        bundle_service_started_locked(s->bundle, 1);
                        s->entry->service = s;
                        s->next_all = all_services;
                        all_services = s;
                }
                pthread_mutex_unlock(&reg_lock);
                if (r != TETHER_SUCCESS) {
                        free(c);
                        if (s->loop) {
                                workloop_finish(s->loop, NULL, NULL);
                                workloop_join(s->loop);
                        }
                        service_unref(s);
                        break;
                }
                registry_busy_inc();
                if (!s->loop) {
                        /* Its own process: host.c calls service_host_started. */
                        free(c);
                        host_start(s, p, m);
                        return;
                }
                c->svc = service_ref(s);
                c->match = m;
                /* A fresh loop cannot be finishing yet: the post succeeds. */
                workloop_post(s->loop, 0, run_start, c);
                return;
        }
        match_state_free(m);
}

void service_match_nub(entry *nub)
{
        match_state *m = calloc(1, sizeof(*m));
        if (!m)
                return;
        m->nub = entry_ref(nub);
        pthread_mutex_lock(&reg_lock);
        tether_ret_t r = bundles_candidates_locked(nub, &m->cands, &m->n);
        pthread_mutex_unlock(&reg_lock);
        if (r != TETHER_SUCCESS)
                log_err("tether: out of memory matching %s", nub->name);
        try_next_candidate(m);
}

typedef struct unclaimed {
        entry **nubs;
        size_t n, cap;
} unclaimed;

static bool is_service_entry(const entry *e)
{
        return e->service && e->service->entry == e;
}

/* A nub no driver has taken: active, not a service, no service below it. */
static bool collect_unclaimed(entry *e, void *arg)
{
        unclaimed *u = arg;
        if (!e->parent || is_service_entry(e) || !(e->state & TETHER_ENTRY_ACTIVE))
                return true;
        for (size_t i = 0; i < e->n_children; i++)
                if (is_service_entry(e->children[i]))
                        return true;
        if (u->n == u->cap) {
                size_t cap = u->cap ? u->cap * 2 : 16;
                entry **g = realloc(u->nubs, cap * sizeof(*g));
                if (!g)
                        return false;
                u->nubs = g;
                u->cap = cap;
        }
        u->nubs[u->n++] = entry_ref(e);
        return true;
}

void service_match_if_unclaimed(entry *nub)
{
        pthread_mutex_lock(&reg_lock);
        bool claimed = !nub->parent;
        for (size_t i = 0; !claimed && i < nub->n_children; i++)
                claimed = is_service_entry(nub->children[i]);
        pthread_mutex_unlock(&reg_lock);
        if (!claimed)
                service_match_nub(nub);
}

void service_match_unclaimed(void)
{
        unclaimed u = { 0 };
        pthread_mutex_lock(&reg_lock);
        registry_walk_locked(registry_root(), collect_unclaimed, &u);
        pthread_mutex_unlock(&reg_lock);
        for (size_t i = 0; i < u.n; i++) {
                service_match_nub(u.nubs[i]);
                entry_unref(u.nubs[i]);
        }
        free(u.nubs);
}

/* ---- termination ---- */

static void terminate_job(void *arg)
{
        tether_service *s = arg;
        if (service_run_stop(s)) {
                pthread_mutex_lock(&reg_lock);
                if (s->started)
                        notify_service_locked(s->entry, TETHER_NOTIFY_TERMINATED);
                registry_detach_locked(s->entry);
                pthread_mutex_unlock(&reg_lock);
                log_info("%s terminated", s->driver->name);
                service_finish_if_idle(s);
        }
        service_unref(s);
}


/* With reg_lock held. A hosted service leaves the registry now; its host is
 * told and ends once its clients have. */
static void post_terminate_locked(tether_service *s)
{
        if (s->host) {
                if (!s->terminated) {
                        s->terminated = true;
                        if (s->started)
                                notify_service_locked(s->entry, TETHER_NOTIFY_TERMINATED);
                        registry_detach_locked(s->entry);
                        log_info("%s %s terminated", bundle_id(s->bundle), s->class_name);
                        host_terminate(s);
                }
                return;
        }
        if (workloop_post(s->loop, 0, terminate_job, service_ref(s)) != TETHER_SUCCESS)
                service_unref(s); /* already finishing: nothing to do */
}

static bool post_terminate(entry *e, void *ctx)
{
        if (e->service)
                post_terminate_locked(e->service);
        return true;
}

void service_terminate_bundle_locked(bundle *b)
{
        for (tether_service *s = all_services; s; s = s->next_all)
                if (s->bundle == b)
                        post_terminate_locked(s);
}

void service_host_gone_locked(tether_service *s)
{
        if (!s->terminated) {
                s->terminated = true;
                if (s->started)
                        notify_service_locked(s->entry, TETHER_NOTIFY_TERMINATED);
                registry_detach_locked(s->entry);
        }
}

void service_terminate_subtree_locked(entry *e)
{
        /* Mark the whole subtree inactive now, so new opens and lookups miss
         * it at once, even before each loop has run its termination. */
        registry_walk_locked(e, post_terminate, NULL);
}

static void shutdown_job(void *arg)
{
        tether_service *s = arg;
        service_timers_abort(s); /* told before any stop(), as at a termination */
        user_client_free_all(s);
        s->clients = NULL;
        terminate_job(service_ref(s));
        workloop_finish(s->loop, env_service_loop_exit, s);
        service_unref(s);
}

void service_shutdown_all(void)
{
        pthread_mutex_lock(&reg_lock);
        shutting_down = true;
        for (tether_service *s = all_services; s; s = s->next_all)
                if (!s->host && workloop_post(s->loop, 0, shutdown_job, service_ref(s)) != TETHER_SUCCESS)
                        service_unref(s);
        pthread_mutex_unlock(&reg_lock);
        /* Hosts end when their channel closes; each is waited for. */
        hosts_shutdown();
        pthread_mutex_lock(&reg_lock);
        while (all_services)
                pthread_cond_wait(&all_gone, &reg_lock);
        pthread_mutex_unlock(&reg_lock);
        service_reap();
        devices_shutdown();
}

/* ---- a service's place in the registry, as the runtime asks (host/env.h) ---- */

void env_service_release(tether_service *s)
{
        budget_own_fds(-(s->loop ? SERVICE_LOOP_FDS : 0));
        host_free(s->host);
        device_release(s); /* its driver is gone: its host reaped, or its loop done */
        bundle_unref(s->bundle);
        entry_unref(s->entry);
}

void env_service_open_count(tether_service *s, int delta)
{
        pthread_mutex_lock(&reg_lock);
        if (delta > 0)
                s->entry->open_count++;
        else if (s->entry->open_count)
                s->entry->open_count--;
        pthread_mutex_unlock(&reg_lock);
}

/* A new table for s's entry: merged, or one key removed; swapped in at
 * once, so readers see all of a change or none of it. Watchers hear of
 * real changes only: writing the values already there (a driver
 * refreshing its settings) is none. */
static tether_ret_t change_props(tether_service *s, const tether_value *merge, const char *remove)
{
        tether_value *next = NULL;
        pthread_mutex_lock(&reg_lock);
        tether_ret_t r = tether_value_copy(s->entry->props, &next);
        if (r == TETHER_SUCCESS)
                r = merge ? tether_value_dict_merge(next, merge) : tether_value_dict_remove(next, remove);
        if (r == TETHER_SUCCESS) {
                bool changed = !tether_value_equal(s->entry->props, next);
                tether_value_unref(s->entry->props);
                s->entry->props = next;
                next = NULL;
                if (changed)
                        notify_properties_changed_locked(s->entry);
        }
        pthread_mutex_unlock(&reg_lock);
        tether_value_unref(next);
        return r;
}

tether_ret_t env_service_apply(tether_service *s, const tether_value *changes)
{
        return change_props(s, changes, NULL);
}

tether_ret_t env_service_remove(tether_service *s, const char *key)
{
        return change_props(s, NULL, key);
}

tether_ret_t env_service_copy(tether_service *s, const char *key, tether_value **ret)
{
        pthread_mutex_lock(&reg_lock);
        tether_value *v = NULL;
        tether_ret_t r = tether_value_dict_get(s->entry->props, key, &v);
        *ret = tether_value_ref(v);
        pthread_mutex_unlock(&reg_lock);
        return r;
}

tether_ret_t env_service_provider_property(tether_service *s, const char *key, tether_value **ret)
{
        tether_ret_t r = TETHER_ERR_NOT_ATTACHED;
        pthread_mutex_lock(&reg_lock);
        if (s->entry->parent) {
                tether_value *v = NULL;
                r = tether_value_dict_get(s->entry->parent->props, key, &v);
                *ret = tether_value_ref(v);
        }
        pthread_mutex_unlock(&reg_lock);
        return r;
}

tether_ret_t env_service_open_device(tether_service *s, tether_device_kind *ret_kind, int *ret_fd)
{
        return device_open(s, ret_kind, ret_fd);
}

tether_ret_t env_service_publish_nub(tether_service *svc, const char *class_name, const char *name,
                                     const char *location, tether_value *props, uint64_t *ret_id)
{
        entry *nub = NULL;
        tether_ret_t r = entry_new(class_name, name, location, props, &nub);
        if (r != TETHER_SUCCESS)
                return r;
        nub->publisher_id = svc->entry->id;
        pthread_mutex_lock(&reg_lock);
        if (svc->terminated || shutting_down)
                r = TETHER_ERR_NOT_ATTACHED;
        else if (svc->entry->n_children >= TETHERD_MAX_NUBS_PER_SERVICE)
                r = TETHER_ERR_NO_RESOURCES; /* each may start a service: a thread and fds */
        else
                r = registry_attach_locked(nub, svc->entry);
        if (r == TETHER_SUCCESS)
                nub->state |= TETHER_ENTRY_ACTIVE;
        pthread_mutex_unlock(&reg_lock);
        if (r == TETHER_SUCCESS) {
                if (ret_id)
                        *ret_id = nub->id;
                service_match_nub(nub);
        }
        entry_unref(nub);
        return r;
}

tether_ret_t env_service_terminate_nub(tether_service *svc, uint64_t nub_id)
{
        pthread_mutex_lock(&reg_lock);
        entry *nub = registry_lookup_locked(nub_id);
        tether_ret_t r = TETHER_ERR_NOT_FOUND;
        if (nub && nub->publisher_id != svc->entry->id)
                r = TETHER_ERR_NOT_PERMITTED;
        else if (nub) {
                service_terminate_subtree_locked(nub);
                registry_detach_locked(nub);
                r = TETHER_SUCCESS;
        }
        pthread_mutex_unlock(&reg_lock);
        return r;
}
