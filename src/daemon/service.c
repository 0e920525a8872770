/* SPDX-License-Identifier: MIT */
#include "daemon/daemon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/matching.h"
#include "daemon/manifest.h"

/* ---- life of a service ---- */

#define SERVICE_LOOP_FDS 2 /* a work loop's epoll and eventfd */

static tether_service *all_services;   /* reg_lock */
static workloop **graveyard;           /* reg_lock: finished loops to join */
static tether_service **graveyard_svc;
static size_t n_graveyard;
static pthread_cond_t all_gone = PTHREAD_COND_INITIALIZER;
static bool shutting_down;             /* reg_lock */

/*
 * Match categories, as I/O Kit's: the drivers that match a nub compete only
 * within their IOMatchCategory, and each category the nub has free gets the
 * best of its candidates whose start() accepts the nub. So drivers of
 * different categories share a nub (TetherResources above all), and a
 * category matched again (a crashed host's, an unloaded bundle's) leaves
 * the others' drivers alone.
 *
 * One match_state per category being matched: its candidates, best first,
 * tried in turn until one starts; the rest then lose.
 */
typedef struct match_state {
        entry *nub;               /* referenced */
        const char *category;     /* its candidates' (their bundles keep it) */
        size_t n, next;
        candidate *cands;
        bundle *source;           /* referenced: whose driver published nub; NULL: tetherd */
        uint64_t generation;      /* the bundles' when the candidates were listed */
} match_state;

static void match_state_free(match_state *m)
{
        entry_unref(m->nub);
        candidates_free(m->cands, m->n);
        bundle_unref(m->source);
        free(m);
}

/* What happens to the drivers of a nub: started, lost, refused,
 * terminated. A driver that publishes a nub can republish it in a loop,
 * and each time decides what is logged here: those lines are rate-limited
 * per publishing bundle (source). tetherd's own nubs (source NULL) come and
 * go only with tetherd, devices and root's bundle loads. */
/* about: the bundle the line is about (the journal's TETHER_BUNDLE), which
 * may be another than the publisher's. */
#define source_log(source, about, level, ...)                                                                         \
        do {                                                                                                          \
                if (source)                                                                                           \
                        log_limited_bundle(bundle_log(source), level, bundle_log_who(source), about, __VA_ARGS__);    \
                else                                                                                                  \
                        log_bundle(level, about, __VA_ARGS__);                                                        \
        } while (0)
#define match_log(m, about, level, ...) source_log((m)->source, about, level, __VA_ARGS__)

static bool is_service_entry(const entry *e)
{
        return e->service && e->service->entry == e;
}

/* With reg_lock held: the bundle whose driver published nub (referenced),
 * or NULL for tetherd's own. */
static bundle *publisher_locked(const entry *nub)
{
        const entry *p = nub && nub->publisher_id ? registry_lookup_locked(nub->publisher_id) : NULL;
        return p && is_service_entry(p) ? bundle_ref(p->service->bundle) : NULL;
}

static void try_next_candidate(match_state *m);
static void run_rematches(void);

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
        run_rematches();
        bundles_tick();
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
        /* And its category, as I/O Kit gives each driver it starts (what
         * the driver may write there later decides nothing: matching goes
         * by its personality's). */
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(props, "IOMatchCategory", c->category);
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

/* The winner of m's category has started: every candidate after it loses,
 * and is told why (a driver that never starts is otherwise a mystery). */
static void log_losers(const match_state *m, const tether_service *winner)
{
        const candidate *w = &m->cands[m->next - 1];
        for (size_t i = m->next; i < m->n; i++) {
                const candidate *c = &m->cands[i];
                match_log(m, bundle_id(c->bundle), LOG_LVL_INFO,
                          "bundle %s: %s matched %s but is not started: lost on probe score to %s %s in category %s "
                          "(%lld to %lld%s)",
                          bundle_id(c->bundle), c->driver_class, m->nub->name, bundle_id(winner->bundle),
                          winner->class_name, m->category, (long long)c->score, (long long)w->score,
                          c->score == w->score ? ", later in load order" : "");
        }
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
                match_log(match, bundle_id(s->bundle), LOG_LVL_INFO, "%s %s started on %s%s (category %s)", bundle_id(s->bundle),
                          s->class_name, match->nub->name, s->host ? " in its own process" : "", match->category);
                log_losers(match, s);
                match_state_free(match);
        } else {
                s->terminated = true;
                registry_detach_locked(s->entry);
                pthread_mutex_unlock(&reg_lock);
                if (r != TETHER_SUCCESS)
                        match_log(match, bundle_id(s->bundle), LOG_LVL_WARN, "bundle %s: %s: start refused the nub: %s (%s, category %s)",
                                  bundle_id(s->bundle), s->class_name, tether_strerror(r), match->nub->name,
                                  match->category);
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

/* With reg_lock held: the service on nub in category, if any. One starting
 * holds it too, so two matches of one nub at once cannot both take it. */
static const tether_service *holder_locked(const entry *nub, const char *category)
{
        for (size_t i = 0; i < nub->n_children; i++) {
                const tether_service *s = nub->children[i]->service;
                if (is_service_entry(nub->children[i]) &&
                    !strcmp(bundle_service_category(s->bundle, s->class_name), category))
                        return s;
        }
        return NULL;
}

static unsigned drivers_on_locked(const entry *nub)
{
        unsigned n = 0;
        for (size_t i = 0; i < nub->n_children; i++)
                n += is_service_entry(nub->children[i]);
        return n;
}

typedef enum admission {
        ADMIT,
        ADMIT_SKIP,          /* its bundle was unloaded or failed since: the next one */
        ADMIT_HELD,          /* the category has its driver: none of the rest either */
        ADMIT_FULL,          /* the nub has all the drivers it may have */
        ADMIT_DRIVER_LIMIT,  /* the driver runs all the services it may */
        ADMIT_GONE,          /* the nub left, or tetherd is ending */
} admission;

typedef struct holder_info {
        char name[MANIFEST_MAX_BUNDLE_ID + MANIFEST_MAX_NAME + 2];
        const bundle *bundle;     /* compared, never followed */
        const char *driver_class;
        int64_t score;
} holder_info;

/* With reg_lock held: may p take m's category of m's nub now? Asked before
 * a service is made for it (which costs a loop), and again as it attaches,
 * which is what decides. */
static admission admit_locked(const match_state *m, const candidate *p, holder_info *held)
{
        if (shutting_down || !m->nub->parent)
                return ADMIT_GONE;
        if (!bundle_active_locked(p->bundle))
                return ADMIT_SKIP;
        const tether_service *h = holder_locked(m->nub, m->category);
        if (h) {
                snprintf(held->name, sizeof(held->name), "%s %s", bundle_id(h->bundle), h->class_name);
                const manifest_personality *mp = bundle_service_personality(h->bundle, h->class_name);
                held->bundle = h->bundle;
                held->driver_class = h->class_name;
                held->score = mp ? mp->score : 0;
                return ADMIT_HELD;
        }
        if (drivers_on_locked(m->nub) >= TETHERD_MAX_DRIVERS_PER_NUB)
                return ADMIT_FULL;
        if (services_of_locked(p) >= TETHERD_MAX_SERVICES_PER_DRIVER)
                return ADMIT_DRIVER_LIMIT;
        return ADMIT;
}

/* m's category ends here, unmatched from cands[from] on: say why. */
static void log_refused(const match_state *m, size_t from, admission a, const holder_info *held)
{
        const candidate *p = &m->cands[from];
        switch (a) {
        case ADMIT_HELD:
                for (size_t i = from; i < m->n; i++) {
                        const candidate *c = &m->cands[i];
                        /* The holder itself, met again by a later match. */
                        if (c->bundle == held->bundle && c->driver_class == held->driver_class)
                                continue;
                        /* Worth a user's notice when it would have won:
                         * otherwise every bundle load (which matches every
                         * nub again) would repeat each old loser. */
                        match_log(m, bundle_id(c->bundle), c->score > held->score ? LOG_LVL_INFO : LOG_LVL_DEBUG,
                                  "bundle %s: %s matched %s but is not started: its category %s is held by %s "
                                  "(probe score %lld to %lld)",
                                  bundle_id(c->bundle), c->driver_class, m->nub->name, m->category, held->name,
                                  (long long)c->score, (long long)held->score);
                }
                break;
        case ADMIT_FULL: {
                char more[48] = "";
                if (m->n - from > 1)
                        snprintf(more, sizeof(more), " and %zu more of it", m->n - from - 1);
                match_log(m, bundle_id(p->bundle), LOG_LVL_WARN,
                          "%s has %u drivers, the most a nub may have (one per match category): category %s is not "
                          "matched (bundle %s: %s%s not started)",
                          m->nub->name, TETHERD_MAX_DRIVERS_PER_NUB, m->category, bundle_id(p->bundle),
                          p->driver_class, more);
                break;
        }
        case ADMIT_DRIVER_LIMIT:
                match_log(m, bundle_id(p->bundle), LOG_LVL_WARN, "bundle %s: %s is at its limit of %u services; %s not matched (category %s)",
                          bundle_id(p->bundle), p->driver_class, TETHERD_MAX_SERVICES_PER_DRIVER, m->nub->name,
                          m->category);
                break;
        default:
                break;
        }
}

static void try_next_candidate(match_state *m)
{
        while (m->next < m->n) {
                const candidate *p = &m->cands[m->next];
                holder_info held = { .name = "" };
                pthread_mutex_lock(&reg_lock);
                admission a = admit_locked(m, p, &held);
                pthread_mutex_unlock(&reg_lock);
                if (a == ADMIT_SKIP) {
                        m->next++;
                        continue;
                }
                if (a != ADMIT) {
                        log_refused(m, m->next, a, &held);
                        break;
                }
                tether_service *s = NULL;
                if (service_create(p, m->nub, &s) != TETHER_SUCCESS) {
                        log_bundle(LOG_LVL_ERR, bundle_id(p->bundle), "tether: cannot create a service for %s %s",
                                   bundle_id(p->bundle), p->driver_class);
                        m->next++;
                        continue;
                }
                start_ctx *c = malloc(sizeof(*c));
                tether_ret_t r = TETHER_ERR_ABORTED;
                pthread_mutex_lock(&reg_lock);
                /* Decided again: another match may have taken the category
                 * while the service was made. */
                a = c ? admit_locked(m, p, &held) : ADMIT_GONE;
                if (a == ADMIT)
                        r = registry_attach_locked(s->entry, m->nub);
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
                        if (a == ADMIT_SKIP) {
                                m->next++;
                                continue;
                        }
                        log_refused(m, m->next, a, &held);
                        break;
                }
                m->next++;
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
        /* Every candidate tried and none started, while bundles were
         * loaded: a load that found this category held by one of these
         * (starting, then refusing) skipped it, so its drivers are still
         * to be tried. I/O Kit matches again when its catalogue changed
         * during matching, for the same reason. */
        pthread_mutex_lock(&reg_lock);
        bool stale = m->next >= m->n && m->generation != bundles_generation_locked();
        pthread_mutex_unlock(&reg_lock);
        entry *nub = stale ? entry_ref(m->nub) : NULL;
        char *category = stale ? strdup(m->category) : NULL;
        match_state_free(m);
        if (nub && category)
                service_match_category(nub, category);
        entry_unref(nub);
        free(category);
}

/* Match nub in every category, or in only that one. */
static void match_nub(entry *nub, const char *only)
{
        candidate *all = NULL;
        size_t n = 0;
        bundle *source = NULL;
        pthread_mutex_lock(&reg_lock);
        tether_ret_t r = bundles_candidates_locked(nub, &all, &n);
        uint64_t generation = bundles_generation_locked();
        source = publisher_locked(nub);
        pthread_mutex_unlock(&reg_lock);
        if (r != TETHER_SUCCESS) {
                log_err("tether: out of memory matching %s", nub->name);
                bundle_unref(source);
                return;
        }
        if (only) {
                size_t kept = 0;
                for (size_t i = 0; i < n; i++) {
                        if (!strcmp(all[i].category, only))
                                all[kept++] = all[i];
                        else
                                bundle_unref(all[i].bundle);
                }
                n = kept;
        }
        const char **categories = calloc(n ? n : 1, sizeof(*categories));
        size_t *order = calloc(n ? n : 1, sizeof(*order)), *first = calloc(n ? n : 1, sizeof(*first)), groups = 0;
        for (size_t i = 0; categories && i < n; i++)
                categories[i] = all[i].category;
        r = categories && order && first ? matching_group_by_category(categories, n, order, first, &groups)
                                         : TETHER_ERR_NO_MEMORY;
        if (r != TETHER_SUCCESS) {
                log_err("tether: out of memory matching %s", nub->name);
                candidates_free(all, n);
                all = NULL;
                n = groups = 0;
        }
        /* Each category on its own, in the order of its best candidate:
         * with room for only so many drivers on a nub, the best go first. */
        for (size_t g = 0; g < groups; g++) {
                size_t end = g + 1 < groups ? first[g + 1] : n, k = end - first[g];
                match_state *m = calloc(1, sizeof(*m));
                candidate *cands = m ? calloc(k, sizeof(*cands)) : NULL;
                for (size_t i = 0; i < k; i++) {
                        candidate *c = &all[order[first[g] + i]];
                        if (cands)
                                cands[i] = *c; /* its bundle reference moves along */
                        else
                                bundle_unref(c->bundle);
                }
                if (!cands) {
                        free(m);
                        log_err("tether: out of memory matching %s", nub->name);
                        continue;
                }
                m->nub = entry_ref(nub);
                m->category = cands[0].category;
                m->n = k;
                m->cands = cands;
                m->source = bundle_ref(source);
                m->generation = generation;
                try_next_candidate(m);
        }
        free(all); /* every reference has moved to a category, or gone */
        free(categories);
        free(order);
        free(first);
        bundle_unref(source);
}

void service_match_nub(entry *nub)
{
        match_nub(nub, NULL);
}

void service_match_category(entry *nub, const char *category)
{
        match_nub(nub, category);
}

typedef struct nub_list {
        entry **nubs;
        size_t n, cap;
} nub_list;

/* Every nub: an active entry below the root that is not a service. Which
 * of its categories are free is for matching to see. */
static bool collect_nubs(entry *e, void *arg)
{
        nub_list *u = arg;
        if (!e->parent || is_service_entry(e) || !(e->state & TETHER_ENTRY_ACTIVE))
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

void service_match_unclaimed(void)
{
        nub_list u = { 0 };
        pthread_mutex_lock(&reg_lock);
        registry_walk_locked(registry_root(), collect_nubs, &u);
        pthread_mutex_unlock(&reg_lock);
        for (size_t i = 0; i < u.n; i++) {
                service_match_nub(u.nubs[i]);
                entry_unref(u.nubs[i]);
        }
        free(u.nubs);
}

/* ---- matching a category again once its driver has gone for good ---- */

/* A category whose driver's bundle was unloaded: matched again, as I/O
 * Kit's removeDrivers matches the nubs it took drivers from, so the next
 * best driver of that category (and only that category) takes over. Made
 * under reg_lock, matched from the main loop (service_reap). */
typedef struct rematch {
        entry *nub;               /* referenced */
        bundle *bundle;           /* referenced: keeps category */
        const char *category;
        struct rematch *next;
} rematch;

static rematch *rematches;             /* reg_lock */

/* With reg_lock held, nub being what s was attached to. */
static void rematch_if_unloaded_locked(tether_service *s, entry *nub)
{
        if (!nub || shutting_down || bundle_active_locked(s->bundle))
                return;
        rematch *r = calloc(1, sizeof(*r));
        if (!r) {
                log_err("tether: out of memory; %s is not matched again", nub->name);
                return;
        }
        r->nub = entry_ref(nub);
        r->bundle = bundle_ref(s->bundle);
        r->category = bundle_service_category(s->bundle, s->class_name);
        r->next = rematches;
        rematches = r;
}

static void run_rematches(void)
{
        pthread_mutex_lock(&reg_lock);
        rematch *r = rematches;
        rematches = NULL;
        pthread_mutex_unlock(&reg_lock);
        while (r) {
                rematch *next = r->next;
                service_match_category(r->nub, r->category);
                entry_unref(r->nub);
                bundle_unref(r->bundle);
                free(r);
                r = next;
        }
}

/* ---- termination ---- */

static void terminate_job(void *arg)
{
        tether_service *s = arg;
        if (service_run_stop(s)) {
                pthread_mutex_lock(&reg_lock);
                if (s->started)
                        notify_service_locked(s->entry, TETHER_NOTIFY_TERMINATED);
                bundle *source = publisher_locked(s->entry->parent);
                rematch_if_unloaded_locked(s, s->entry->parent);
                registry_detach_locked(s->entry);
                pthread_mutex_unlock(&reg_lock);
                source_log(source, bundle_id(s->bundle), LOG_LVL_INFO, "%s terminated", s->driver->name);
                bundle_unref(source);
                service_finish_if_idle(s);
        }
        service_unref(s);
}


/* With reg_lock held: a hosted service leaves the registry, once. Watchers
 * hear TERMINATED only now, when its host has stopped the service's user
 * clients (or is gone), so that no call made after the notification can
 * still reach the driver, as with a driver inside tetherd. */
static void hosted_leave_locked(tether_service *s, bool asked)
{
        if (s->left_registry)
                return;
        s->left_registry = true;
        if (s->started)
                notify_service_locked(s->entry, TETHER_NOTIFY_TERMINATED);
        /* The nub it was attached to when it was told to terminate: the nub
         * may have left the registry since (its publisher ended it). */
        entry *nub = s->leave_nub ? s->leave_nub : s->entry->parent;
        bundle *source = publisher_locked(nub);
        rematch_if_unloaded_locked(s, nub);
        registry_detach_locked(s->entry);
        if (asked)
                source_log(source, bundle_id(s->bundle), LOG_LVL_INFO, "%s %s terminated", bundle_id(s->bundle),
                           s->class_name);
        bundle_unref(source);
}

/* With reg_lock held. A hosted service is refused to new opens now; its
 * host is told, and it leaves the registry when the host answers. */
static void post_terminate_locked(tether_service *s)
{
        if (s->host) {
                if (!s->terminated) {
                        s->terminated = true;
                        if (s->entry->parent)
                                s->leave_nub = entry_ref(s->entry->parent);
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
        bool asked = s->terminated;
        s->terminated = true;
        hosted_leave_locked(s, asked);
}

bool service_bundle_in_registry(const bundle *b)
{
        bool in = false;
        pthread_mutex_lock(&reg_lock);
        for (tether_service *s = all_services; s && !in; s = s->next_all)
                in = s->bundle == b && s->entry && s->entry->parent;
        pthread_mutex_unlock(&reg_lock);
        return in;
}

void service_host_terminated_locked(tether_service *s)
{
        hosted_leave_locked(s, true);
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
        entry_unref(s->leave_nub);
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
