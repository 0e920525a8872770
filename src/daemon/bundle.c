/* SPDX-License-Identifier: MIT */
/*
 * Bundles: what tetherd knows of a driver before any of its code runs, read
 * from the bundle's manifest (docs/bundles.md). Bundles own the
 * personalities matching works from; tetherd loads them at start-up from
 * the system folder and --drivers folders, and at run time through
 * `tether driver load/unload`.
 *
 * tetherd links no driver code and, by default, loads none: a personality
 * that wins a nub starts its driver in a driver host (host.c), which loads
 * the library. Only under --in-process does tetherd open each bundle's
 * library itself, when the bundle is loaded, and run its drivers on work
 * loops of its own; a library that cannot be opened then, or lacks a
 * personality's driver, refuses the bundle, since running it elsewhere
 * would defeat what that mode is asked for (a driver under a debugger in
 * one process, or a device fd only this process can use).
 */
#include "daemon/daemon.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/matching.h"
#include "daemon/manifest.h"
#include "host/bundle-lib.h"

#define BUNDLE_SUFFIX ".tether"
#define MAX_BUNDLES   256   /* loaded at once: each may start services */

struct bundle {
        atomic_uint refs;
        manifest *m;
        const tether_driver **drivers;   /* per personality, --in-process only: the code it starts */
        uint64_t order;                  /* load order: ties between equal scores */
        bool active;                     /* reg_lock: its personalities match */
        bool failed;                     /* reg_lock: crashed too often; matches no more */
        unsigned services;               /* reg_lock: services running its drivers */
        unsigned crashes;                /* reg_lock: every host of it that died */
        uint64_t recent[TETHERD_CRASHES_TO_FAIL]; /* reg_lock: when the last ones did (ms) */
        char last_crash[64];             /* reg_lock: how the last one died */
        /* Matching on the nubs its drivers publish logs why drivers were
         * not started there; a driver may republish a nub in a loop, so
         * those lines are rate-limited per bundle (the party at fault). */
        log_limit log;
        char log_who[MANIFEST_MAX_BUNDLE_ID + 32];
        bundle *next;                    /* reg_lock */
};

static bundle *bundles;                  /* reg_lock */
static unsigned n_bundles;               /* reg_lock */
static uint64_t next_order = 1;          /* reg_lock */
static uint64_t generation;              /* reg_lock: bundles loaded so far */

bundle *bundle_ref(bundle *b)
{
        if (b)
                atomic_fetch_add(&b->refs, 1);
        return b;
}

bundle *bundle_unref(bundle *b)
{
        if (!b || atomic_fetch_sub(&b->refs, 1) != 1)
                return NULL;
        log_limit_flush(&b->log, b->log_who);
        log_limit_destroy(&b->log);
        manifest_free(b->m);
        free(b->drivers);
        free(b);
        return NULL;
}

const char *bundle_id(const bundle *b)
{
        return b ? b->m->bundle_id : "";
}

log_limit *bundle_log(bundle *b)
{
        return &b->log;
}

const char *bundle_log_who(const bundle *b)
{
        return b->log_who;
}

const manifest_personality *bundle_service_personality(const bundle *b, const char *class_name)
{
        /* A service's class_name is its personality's "driver" string
         * itself (service_create takes the candidate's pointer), so its
         * address names the personality, even among several that start
         * the same driver in different categories. */
        for (size_t i = 0; b && i < b->m->n_personalities; i++)
                if (b->m->personalities[i].driver == class_name)
                        return &b->m->personalities[i];
        return NULL;
}

const char *bundle_service_category(const bundle *b, const char *class_name)
{
        const manifest_personality *p = bundle_service_personality(b, class_name);
        return p ? p->category : MATCHING_DEFAULT_CATEGORY;
}

void bundle_service_started_locked(bundle *b, int delta)
{
        if (b && (delta > 0 || b->services))
                b->services += (unsigned)delta;
}

/* --in-process: the library, and each personality's driver in it. */
static tether_ret_t open_library(const manifest *m, const tether_driver **drivers, char *why, size_t why_size)
{
        const tether_bundle_entry *lib = NULL;
        char reason[BUNDLE_LIB_WHY_SIZE] = "";
        tether_ret_t r = bundle_lib_open(m->library, &lib, reason, sizeof(reason));
        for (size_t i = 0; r == TETHER_SUCCESS && i < m->n_personalities; i++)
                r = bundle_lib_driver(lib, m->personalities[i].driver, &drivers[i], reason, sizeof(reason));
        if (r != TETHER_SUCCESS)
                snprintf(why, why_size, "%s cannot run in tetherd (--in-process): %s", m->bundle_id, reason);
        return r;
}

static bundle *find_locked(const char *id)
{
        for (bundle *b = bundles; b; b = b->next)
                if (!strcmp(b->m->bundle_id, id))
                        return b;
        return NULL;
}

static void unlink_locked(bundle *b)
{
        for (bundle **pp = &bundles; *pp; pp = &(*pp)->next) {
                if (*pp == b) {
                        *pp = b->next;
                        n_bundles--;
                        break;
                }
        }
        b->active = false;
}

const manifest *bundle_manifest(const bundle *b)
{
        return b->m;
}

int bundle_crashed(bundle *b, const char *how)
{
        pthread_mutex_lock(&reg_lock);
        uint64_t now = clock_mono_ms();
        b->crashes++;
        snprintf(b->last_crash, sizeof(b->last_crash), "%s", how);
        memmove(b->recent + 1, b->recent, sizeof(b->recent) - sizeof(b->recent[0]));
        b->recent[0] = now;
        /* The oldest of the last few crashes within the window: crashing
         * that often, it is failed until someone loads it again. */
        uint64_t oldest = b->recent[TETHERD_CRASHES_TO_FAIL - 1];
        if (oldest && now - oldest <= TETHERD_CRASH_WINDOW_MS)
                b->failed = true;
        unsigned recent = 0;
        for (unsigned i = 0; i < TETHERD_CRASHES_TO_FAIL; i++)
                recent += b->recent[i] && now - b->recent[i] <= TETHERD_CRASH_WINDOW_MS;
        bool failed = b->failed;
        pthread_mutex_unlock(&reg_lock);
        if (failed) {
                log_bundle(LOG_LVL_ERR, b->m->bundle_id, "bundle %s: %u crashes within %u s; failed until it is loaded again",
                           b->m->bundle_id, TETHERD_CRASHES_TO_FAIL, TETHERD_CRASH_WINDOW_MS / 1000);
                return -1;
        }
        /* 100 ms, doubling with each recent crash, at most 10 s. */
        unsigned delay = 100u << (recent ? recent - 1 : 0);
        return (int)(delay > 10000 ? 10000 : delay);
}

uint64_t bundles_generation_locked(void)
{
        return generation;
}

bool bundle_active_locked(const bundle *b)
{
        return b->active && !b->failed;
}

bool bundle_active(const bundle *b)
{
        pthread_mutex_lock(&reg_lock);
        bool active = bundle_active_locked(b);
        pthread_mutex_unlock(&reg_lock);
        return active;
}

tether_ret_t bundle_load(const char *path, char *why, size_t why_size)
{
        manifest *m = NULL;
        tether_ret_t r = manifest_load(path, &m, why, why_size);
        if (r != TETHER_SUCCESS)
                return r;
        bundle *b = calloc(1, sizeof(*b));
        const tether_driver **drivers = calloc(m->n_personalities, sizeof(*drivers));
        if (!b || !drivers) {
                free(b);
                free(drivers);
                manifest_free(m);
                snprintf(why, why_size, "out of memory");
                return TETHER_ERR_NO_MEMORY;
        }
        atomic_init(&b->refs, 1);
        b->m = m;
        log_limit_init(&b->log);
        log_limit_set_bundle(&b->log, m->bundle_id);
        snprintf(b->log_who, sizeof(b->log_who), "matching on nubs of %s", m->bundle_id);
        b->drivers = drivers;
        /* Opened before the bundle is listed, outside reg_lock: its
         * constructors run, and may take their time. */
        if (hosts_in_process && (r = open_library(m, drivers, why, why_size)) != TETHER_SUCCESS) {
                bundle_unref(b);
                return r;
        }
        pthread_mutex_lock(&reg_lock);
        bundle *other = find_locked(m->bundle_id);
        if (other && other->failed) {
                /* Loading a failed bundle again is how it is given another try. */
                unlink_locked(other);
                bundle_unref(other);
                other = NULL;
        }
        if (other) {
                snprintf(why, why_size, "bundle id %s is already loaded from %s", m->bundle_id, other->m->dir);
                r = TETHER_ERR_EXCLUSIVE_ACCESS;
        } else if (n_bundles >= MAX_BUNDLES) {
                snprintf(why, why_size, "%d bundles are loaded already", MAX_BUNDLES);
                r = TETHER_ERR_NO_RESOURCES;
        } else {
                b->order = next_order++;
                b->active = true;
                generation++;
                /* Appended: bundles are listed, and tie on score, in load order. */
                bundle **pp = &bundles;
                while (*pp)
                        pp = &(*pp)->next;
                *pp = b;
                n_bundles++;
        }
        pthread_mutex_unlock(&reg_lock);
        if (r != TETHER_SUCCESS) {
                bundle_unref(b);
                return r;
        }
        log_bundle(LOG_LVL_INFO, m->bundle_id, "bundle %s %s loaded from %s (%zu personalities%s)", m->bundle_id,
                   m->version, m->dir, m->n_personalities, hosts_in_process ? ", in-process" : "");
        return TETHER_SUCCESS;
}

static int by_name(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

void bundles_load_dir(const char *dir, bool must_exist)
{
        DIR *d = opendir(dir);
        if (!d) {
                if (must_exist || errno != ENOENT)
                        log_warn("driver folder %s: %s", dir, strerror(errno));
                return;
        }
        /* Sorted, so which of two equal personalities wins does not depend
         * on the order the file system lists them in. */
        char **names = NULL;
        size_t n = 0;
        for (struct dirent *e; (e = readdir(d));) {
                size_t len = strlen(e->d_name);
                if (len <= strlen(BUNDLE_SUFFIX) || strcmp(e->d_name + len - strlen(BUNDLE_SUFFIX), BUNDLE_SUFFIX))
                        continue;
                char **more = realloc(names, (n + 1) * sizeof(*names));
                if (!more)
                        break;
                names = more;
                if (!(names[n] = strdup(e->d_name)))
                        break;
                n++;
        }
        closedir(d);
        if (n)
                qsort(names, n, sizeof(*names), by_name);
        for (size_t i = 0; i < n; i++) {
                char path[PATH_MAX], why[256] = "";
                snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
                if (bundle_load(path, why, sizeof(why)) != TETHER_SUCCESS)
                        log_err("bundle %s refused: %s", path, why);
                free(names[i]);
        }
        free(names);
}

tether_ret_t bundle_unload(const char *id, bundle **ret_b)
{
        pthread_mutex_lock(&reg_lock);
        bundle *b = find_locked(id);
        if (b) {
                unlink_locked(b);
                service_terminate_bundle_locked(b);
        }
        pthread_mutex_unlock(&reg_lock);
        if (!b)
                return TETHER_ERR_NOT_FOUND;
        log_bundle(LOG_LVL_INFO, id, "bundle %s unloaded", id);
        *ret_b = b; /* the list's reference, now the caller's */
        return TETHER_SUCCESS;
}

static int by_score(const void *a, const void *b)
{
        const candidate *ca = a, *cb = b;
        if (ca->score != cb->score)
                return ca->score < cb->score ? 1 : -1;
        /* Equal scores: load order, then manifest order, as in I/O Kit. */
        if (ca->order != cb->order)
                return ca->order < cb->order ? -1 : 1;
        return (ca->index > cb->index) - (ca->index < cb->index);
}

tether_ret_t bundles_candidates_locked(entry *nub, candidate **ret, size_t *ret_count)
{
        size_t n = 0, cap = 0;
        candidate *c = NULL;
        for (bundle *b = bundles; b; b = b->next) {
                if (!b->active || b->failed)
                        continue;
                for (size_t i = 0; i < b->m->n_personalities; i++) {
                        if (!registry_match_locked(b->m->personalities[i].matching, nub))
                                continue;
                        if (n == cap) {
                                size_t more = cap ? cap * 2 : 4;
                                candidate *g = realloc(c, more * sizeof(*g));
                                if (!g) {
                                        candidates_free(c, n);
                                        return TETHER_ERR_NO_MEMORY;
                                }
                                c = g;
                                cap = more;
                        }
                        c[n++] = (candidate){ .driver = b->drivers[i],
                                              .driver_class = b->m->personalities[i].driver,
                                              .bundle = bundle_ref(b),
                                              .category = b->m->personalities[i].category,
                                              .score = b->m->personalities[i].score, .order = b->order,
                                              .index = i };
                }
        }
        if (n)
                qsort(c, n, sizeof(*c), by_score);
        *ret = c;
        *ret_count = n;
        return TETHER_SUCCESS;
}

void candidates_free(candidate *c, size_t n)
{
        for (size_t i = 0; i < n; i++)
                bundle_unref(c[i].bundle);
        free(c);
}

static tether_ret_t describe_locked(const bundle *b, tether_value **ret)
{
        tether_value *d = NULL, *names = NULL;
        tether_ret_t r = tether_value_new_dict(&d);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(d, "bundle", b->m->bundle_id);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(d, "version", b->m->version);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(d, "path", b->m->dir);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(d, "state", b->failed ? "failed" : b->services ? "running" : "loaded");
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_uint(d, "services", b->services, 32);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_uint(d, "crashes", b->crashes, 32);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(d, "lastCrash", b->last_crash);
        if (r == TETHER_SUCCESS)
                r = tether_value_new_array(&names);
        for (size_t i = 0; r == TETHER_SUCCESS && i < b->m->n_personalities; i++) {
                tether_value *s = NULL;
                r = tether_value_new_string(b->m->personalities[i].name, &s);
                if (r == TETHER_SUCCESS)
                        r = tether_value_array_append(names, s);
                tether_value_unref(s);
        }
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set(d, "personalities", names);
        tether_value_unref(names);
        if (r != TETHER_SUCCESS)
                d = tether_value_unref(d);
        *ret = d;
        return r;
}

tether_ret_t bundles_describe(tether_value **ret)
{
        tether_value *arr = NULL;
        tether_ret_t r = tether_value_new_array(&arr);
        pthread_mutex_lock(&reg_lock);
        for (bundle *b = bundles; r == TETHER_SUCCESS && b; b = b->next) {
                tether_value *d = NULL;
                r = describe_locked(b, &d);
                if (r == TETHER_SUCCESS)
                        r = tether_value_array_append(arr, d);
                tether_value_unref(d);
        }
        pthread_mutex_unlock(&reg_lock);
        if (r != TETHER_SUCCESS)
                arr = tether_value_unref(arr);
        *ret = arr;
        return r;
}

void bundles_tick(void)
{
        /* Said once its window is over, whether or not its drivers go on:
         * at most once a second, and outside reg_lock (it writes). */
        static uint64_t last;
        uint64_t now = clock_mono_ms();
        if (now - last < 1000)
                return;
        last = now;
        bundle *list[MAX_BUNDLES];
        size_t n = 0;
        pthread_mutex_lock(&reg_lock);
        for (bundle *b = bundles; b && n < MAX_BUNDLES; b = b->next)
                list[n++] = bundle_ref(b);
        pthread_mutex_unlock(&reg_lock);
        for (size_t i = 0; i < n; i++) {
                log_limit_flush_due(&list[i]->log, list[i]->log_who);
                bundle_unref(list[i]);
        }
}

void bundles_shutdown(void)
{
        pthread_mutex_lock(&reg_lock);
        bundle *b = bundles;
        bundles = NULL;
        n_bundles = 0;
        pthread_mutex_unlock(&reg_lock);
        while (b) {
                bundle *next = b->next;
                bundle_unref(b);
                b = next;
        }
}
