/* SPDX-License-Identifier: MIT */
/*
 * The driver test harness's registry: bundles, nubs and services, each
 * service run by the driver runtime (src/host) on a work loop of its own,
 * exactly as in a driver host. What a host would ask tetherd is answered
 * here (env.c); the test's thread waits for what it started on a loop.
 */
#include "harness/harness.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/matching.h"
#include "host/bundle-lib.h"

tether_test *harness;
static pthread_mutex_t harness_lock = PTHREAD_MUTEX_INITIALIZER; /* harness itself */

#define MAX_NUBS_PER_SERVICE 64 /* tetherd's bound (driver.h) */
#define WAIT_SLICE_MS 10        /* tether_test_wait: a condition nobody signals is seen this late */

/* ---- waiting ---- */

void harness_changed_locked(tether_test *t)
{
        t->gen++;
        pthread_cond_broadcast(&t->changed);
}

static struct timespec deadline_in(uint32_t ms)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        return ts;
}

static bool passed(const struct timespec *deadline)
{
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return now.tv_sec > deadline->tv_sec || (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* Lock held: until *flag, however long (what the loop does always ends:
 * a driver callback that never returns hangs its tetherd service too). */
static void wait_flag_locked(tether_test *t, const bool *flag)
{
        while (!*flag)
                pthread_cond_wait(&t->changed, &t->lock);
}

/* ---- entries ---- */

static const char *view_class(const void *e)
{
        return ((const hentry *)e)->class_name;
}

static const char *view_name(const void *e)
{
        return ((const hentry *)e)->name;
}

static uint64_t view_id(const void *e)
{
        return ((const hentry *)e)->id;
}

static const tether_value *view_props(const void *e)
{
        return ((const hentry *)e)->props;
}

static const void *view_parent(const void *e)
{
        return ((const hentry *)e)->parent;
}

const matching_entry_view harness_entry_view = {
        .class_name = view_class, .name = view_name, .id = view_id, .properties = view_props, .parent = view_parent,
};

bool harness_service_live_locked(const tether_test_service *h)
{
        return h->rt && h->start_done && h->start_result == TETHER_SUCCESS && !h->stop_posted;
}

hentry *harness_lookup_locked(tether_test *t, uint64_t id, tether_test_service **ret_service)
{
        if (ret_service)
                *ret_service = NULL;
        for (tether_test_service *h = t->services; h; h = h->next) {
                if (h->e.id == id && harness_service_live_locked(h)) {
                        if (ret_service)
                                *ret_service = h;
                        return &h->e;
                }
        }
        for (tether_test_nub *n = t->nubs; n; n = n->next)
                if (n->e.id == id && !n->terminated)
                        return &n->e;
        return NULL;
}

static tether_ret_t entry_init(tether_test *t, hentry *e, const char *class_name, const char *name,
                               const tether_value *props)
{
        e->class_name = strdup(class_name);
        e->name = strdup(name);
        tether_ret_t r = e->class_name && e->name ? TETHER_SUCCESS : TETHER_ERR_NO_MEMORY;
        /* A copy: the caller may go on changing its dict. */
        if (r == TETHER_SUCCESS)
                r = props ? tether_value_copy(props, &e->props) : tether_value_new_dict(&e->props);
        if (r == TETHER_SUCCESS && tether_value_get_type(e->props) != TETHER_TYPE_DICT)
                r = TETHER_ERR_BAD_ARGUMENT;
        return r;
}

static void entry_destroy(hentry *e)
{
        free(e->class_name);
        free(e->name);
        tether_value_unref(e->props);
}

static tether_ret_t copy_property(tether_test *t, hentry *e, const char *key, tether_value **ret)
{
        pthread_mutex_lock(&t->lock);
        tether_value *v = NULL;
        tether_ret_t r = TETHER_SUCCESS;
        if (key)
                r = tether_value_dict_get(e->props, key, &v);
        else
                v = e->props;
        *ret = tether_value_ref(v);
        pthread_mutex_unlock(&t->lock);
        return r;
}

/* ---- the harness ---- */

tether_ret_t tether_test_new(tether_test **ret)
{
        if (!ret)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret = NULL;
        pthread_mutex_lock(&harness_lock);
        if (harness) {
                pthread_mutex_unlock(&harness_lock);
                return TETHER_ERR_BUSY;
        }
        tether_test *t = calloc(1, sizeof(*t));
        if (!t) {
                pthread_mutex_unlock(&harness_lock);
                return TETHER_ERR_NO_MEMORY;
        }
        log_init_from_env();
        pthread_mutex_init(&t->lock, NULL);
        pthread_mutex_init(&t->open_lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&t->changed, &ca);
        pthread_condattr_destroy(&ca);
        t->next_id = HARNESS_ROOT_ID + 1;
        t->next_session = 1;
        t->next_port = 1;
        t->listen_fd = -1;
        harness = t;
        tether_ret_t r = server_start(t);
        if (r != TETHER_SUCCESS) {
                harness = NULL;
                pthread_cond_destroy(&t->changed);
                pthread_mutex_destroy(&t->open_lock);
                pthread_mutex_destroy(&t->lock);
                free(t);
        } else {
                *ret = t;
        }
        pthread_mutex_unlock(&harness_lock);
        return r;
}

const char *tether_test_socket(tether_test *t)
{
        return t ? t->path : NULL;
}

/* Join every loop that has ended and drop the harness's reference to its
 * service: the runtime frees it then. The test's thread only (a loop
 * cannot join itself). */
static void reap(tether_test *t)
{
        for (;;) {
                tether_service *rt = NULL;
                pthread_mutex_lock(&t->lock);
                for (tether_test_service *h = t->services; h && !rt; h = h->next) {
                        if (h->rt && h->loop_ended) {
                                rt = h->rt;
                                h->rt = NULL;
                        }
                }
                pthread_mutex_unlock(&t->lock);
                if (!rt)
                        return;
                workloop_join(rt->loop);
                service_unref(rt);
        }
}

/* tetherd's exit, for one service: connections cut, the driver stopped,
 * the loop ended, whatever state it was in. */
static void shutdown_job(void *arg)
{
        tether_test_service *h = arg;
        tether_service *s = h->rt;
        service_timers_abort(s); /* told before any stop(), as at a termination */
        user_client_free_all(s);
        s->clients = NULL;
        service_run_stop(s);
        pthread_mutex_lock(&h->t->lock);
        h->stop_posted = h->stopped = true;
        harness_changed_locked(h->t);
        pthread_mutex_unlock(&h->t->lock);
        workloop_finish(s->loop, env_service_loop_exit, s);
}

void tether_test_free(tether_test *t)
{
        if (!t)
                return;
        pthread_mutex_lock(&t->lock);
        for (tether_test_service *h = t->services; h; h = h->next) {
                if (!h->rt || h->loop_ended)
                        continue;
                /* A loop already finishing refuses the job: it ends anyway. */
                (void)workloop_post(h->rt->loop, 0, shutdown_job, h);
        }
        for (tether_test_service *h = t->services; h; h = h->next)
                if (h->rt)
                        wait_flag_locked(t, &h->loop_ended);
        pthread_mutex_unlock(&t->lock);
        reap(t);
        /* Sessions last: the services' connections referenced them. */
        server_stop(t);
        while (t->services) {
                tether_test_service *h = t->services;
                t->services = h->next;
                entry_destroy(&h->e);
                free(h->published);
                free(h);
        }
        while (t->nubs) {
                tether_test_nub *n = t->nubs;
                t->nubs = n->next;
                entry_destroy(&n->e);
                free(n->location);
                free(n);
        }
        while (t->bundles) {
                tether_test_bundle *b = t->bundles;
                t->bundles = b->next;
                manifest_free(b->m);
                free(b->path);
                free(b);
        }
        pthread_cond_destroy(&t->changed);
        pthread_mutex_destroy(&t->open_lock);
        pthread_mutex_destroy(&t->lock);
        pthread_mutex_lock(&harness_lock);
        harness = NULL;
        pthread_mutex_unlock(&harness_lock);
        free(t);
}

/* ---- bundles ---- */

tether_ret_t tether_test_load(tether_test *t, const char *path, tether_test_bundle **ret)
{
        if (!t || !path || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret = NULL;
        struct stat st;
        if (stat(path, &st) < 0) {
                log_err("tether-test: bundle %s: %s", path, strerror(errno));
                return TETHER_ERR_NOT_FOUND;
        }
        tether_test_bundle *b = calloc(1, sizeof(*b));
        if (!b || !(b->path = strdup(path))) {
                free(b);
                return TETHER_ERR_NO_MEMORY;
        }
        b->t = t;
        char why[BUNDLE_LIB_WHY_SIZE > MANIFEST_WHY_SIZE ? BUNDLE_LIB_WHY_SIZE : MANIFEST_WHY_SIZE] = "";
        tether_ret_t r = TETHER_SUCCESS;
        const char *lib = path;
        if (S_ISDIR(st.st_mode)) {
                /* tetherd's own reader: what it would refuse, the test refuses. */
                r = manifest_load(path, &b->m, why, sizeof(why));
                if (r == TETHER_SUCCESS)
                        lib = b->m->library;
        }
        if (r == TETHER_SUCCESS)
                r = bundle_lib_open(lib, &b->entry, why, sizeof(why));
        /* As tetherd --in-process: a personality whose driver the library
         * lacks refuses the bundle. */
        for (size_t i = 0; r == TETHER_SUCCESS && b->m && i < b->m->n_personalities; i++) {
                const tether_driver *d = NULL;
                r = bundle_lib_driver(b->entry, b->m->personalities[i].driver, &d, why, sizeof(why));
        }
        if (r != TETHER_SUCCESS) {
                log_err("tether-test: bundle %s: %s", path, why);
                manifest_free(b->m);
                free(b->path);
                free(b);
                return r;
        }
        pthread_mutex_lock(&t->lock);
        b->next = t->bundles;
        t->bundles = b;
        pthread_mutex_unlock(&t->lock);
        *ret = b;
        return TETHER_SUCCESS;
}

tether_ret_t tether_test_match(tether_test_bundle *b, tether_test_nub *nub, const char **ret_driver)
{
        if (!b || !nub || !ret_driver)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret_driver = NULL;
        if (!b->m)
                return TETHER_ERR_UNSUPPORTED;
        const manifest_personality *best = NULL;
        pthread_mutex_lock(&b->t->lock);
        for (size_t i = 0; i < b->m->n_personalities; i++) {
                const manifest_personality *p = &b->m->personalities[i];
                if ((!best || p->score > best->score) && matching_match(p->matching, &nub->e, &harness_entry_view))
                        best = p;
        }
        pthread_mutex_unlock(&b->t->lock);
        if (!best)
                return TETHER_ERR_NOT_FOUND;
        *ret_driver = best->driver;
        return TETHER_SUCCESS;
}

/* ---- nubs ---- */

/* Lock held by the caller when publisher is set (a driver publishing). */
static tether_ret_t nub_create_locked(tether_test *t, const char *class_name, const char *name, const char *location,
                                      const tether_value *props, tether_test_service *publisher, tether_test_nub **ret)
{
        tether_test_nub *n = calloc(1, sizeof(*n));
        if (!n)
                return TETHER_ERR_NO_MEMORY;
        tether_ret_t r = entry_init(t, &n->e, class_name, name, props);
        if (r == TETHER_SUCCESS && location && !(n->location = strdup(location)))
                r = TETHER_ERR_NO_MEMORY;
        if (r != TETHER_SUCCESS) {
                entry_destroy(&n->e);
                free(n);
                return r;
        }
        n->t = t;
        n->publisher = publisher;
        n->e.parent = publisher ? &publisher->e : NULL;
        n->e.id = t->next_id++;
        n->next = t->nubs;
        t->nubs = n;
        harness_changed_locked(t);
        *ret = n;
        return TETHER_SUCCESS;
}

tether_ret_t tether_test_nub_new(tether_test *t, const char *class_name, const tether_value *props,
                                 tether_test_nub **ret)
{
        if (!t || !class_name || !*class_name || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret = NULL;
        pthread_mutex_lock(&t->lock);
        tether_ret_t r = nub_create_locked(t, class_name, class_name, NULL, props, NULL, ret);
        pthread_mutex_unlock(&t->lock);
        return r;
}

tether_ret_t tether_test_nub_get_info(tether_test_nub *nub, tether_test_nub_info *ret)
{
        if (!nub || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        pthread_mutex_lock(&nub->t->lock);
        *ret = (tether_test_nub_info){
                .id = nub->e.id,
                .class_name = nub->e.class_name,
                .name = nub->e.name,
                .location = nub->location,
                .publisher = nub->publisher,
                .terminated = nub->terminated,
        };
        pthread_mutex_unlock(&nub->t->lock);
        return TETHER_SUCCESS;
}

tether_ret_t tether_test_nub_property(tether_test_nub *nub, const char *key, tether_value **ret)
{
        if (!nub || !key || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        return copy_property(nub->t, &nub->e, key, ret);
}

tether_ret_t tether_test_nub_set_device(tether_test_nub *nub, tether_test_device_fn fn, void *ctx)
{
        if (!nub)
                return TETHER_ERR_BAD_ARGUMENT;
        pthread_mutex_lock(&nub->t->lock);
        nub->device = fn;
        nub->device_ctx = ctx;
        pthread_mutex_unlock(&nub->t->lock);
        return TETHER_SUCCESS;
}

/* Lock held: the nub is gone from the registry (its services may still
 * be stopping). */
static void nub_mark_terminated_locked(tether_test_nub *nub)
{
        if (nub->terminated)
                return;
        nub->terminated = true;
        if (nub->publisher)
                nub->publisher->live_published--;
        harness_changed_locked(nub->t);
}

void harness_terminate_nub_locked(tether_test_nub *nub)
{
        tether_test *t = nub->t;
        for (tether_test_service *h = t->services; h; h = h->next)
                if (h->nub == nub)
                        harness_post_stop_locked(h);
        nub_mark_terminated_locked(nub);
}

static tether_ret_t stop_and_wait(tether_test_service *h);

tether_ret_t tether_test_nub_terminate(tether_test_nub *nub)
{
        if (!nub)
                return TETHER_ERR_BAD_ARGUMENT;
        tether_test *t = nub->t;
        pthread_mutex_lock(&t->lock);
        if (nub->terminated) {
                pthread_mutex_unlock(&t->lock);
                return TETHER_ERR_NOT_ATTACHED;
        }
        pthread_mutex_unlock(&t->lock);
        /* One at a time, each looked up afresh: a stopped one is skipped
         * the next time round, and the list is only read under the lock. */
        for (;;) {
                tether_test_service *next = NULL;
                pthread_mutex_lock(&t->lock);
                for (tether_test_service *h = t->services; h && !next; h = h->next)
                        if (h->nub == nub && !h->stop_posted)
                                next = h;
                pthread_mutex_unlock(&t->lock);
                if (!next)
                        break;
                (void)stop_and_wait(next);
        }
        pthread_mutex_lock(&t->lock);
        nub_mark_terminated_locked(nub);
        pthread_mutex_unlock(&t->lock);
        reap(t);
        return TETHER_SUCCESS;
}

/* ---- services ---- */

static void start_job(void *arg)
{
        tether_test_service *h = arg;
        tether_service *s = h->rt;
        tether_ret_t r = service_run_start(s);
        s->started = r == TETHER_SUCCESS;
        if (r != TETHER_SUCCESS)
                s->terminated = true; /* as tetherd: detached, no stop() */
        pthread_mutex_lock(&h->t->lock);
        h->start_result = r;
        h->start_done = true;
        if (r != TETHER_SUCCESS) {
                h->stop_posted = h->stopped = true;
                for (size_t i = 0; i < h->n_published; i++)
                        if (!h->published[i]->terminated)
                                harness_terminate_nub_locked(h->published[i]);
        }
        harness_changed_locked(h->t);
        pthread_mutex_unlock(&h->t->lock);
        if (r != TETHER_SUCCESS)
                service_finish_if_idle(s);
}

tether_ret_t tether_test_start(tether_test_bundle *b, const char *class_name, tether_test_nub *nub,
                               tether_test_service **ret)
{
        if (!b || !class_name || !nub || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret = NULL;
        tether_test *t = b->t;
        const tether_driver *drv = NULL;
        char why[BUNDLE_LIB_WHY_SIZE];
        tether_ret_t r = bundle_lib_driver(b->entry, class_name, &drv, why, sizeof(why));
        if (r != TETHER_SUCCESS) {
                log_err("tether-test: bundle %s: %s", b->path, why);
                return r;
        }
        tether_test_service *h = calloc(1, sizeof(*h));
        rt_service *rs = calloc(1, sizeof(*rs));
        if (!h || !rs) {
                free(h);
                free(rs);
                return TETHER_ERR_NO_MEMORY;
        }
        h->t = t;
        h->bundle = b;
        h->nub = nub;
        /* As tetherd does, the service's table starts with the bundle it
         * came from; its entry is named after its class. */
        tether_value *props = NULL;
        r = tether_value_new_dict(&props);
        if (r == TETHER_SUCCESS && b->m)
                r = tether_value_dict_set_string(props, "CFBundleIdentifier", b->m->bundle_id);
        if (r == TETHER_SUCCESS)
                r = entry_init(t, &h->e, drv->class_name, drv->class_name, props);
        tether_value_unref(props);
        tether_service *s = &rs->s;
        rs->h = h;
        atomic_init(&s->refs, 1); /* the harness's, dropped by reap */
        s->class_name = drv->class_name;
        s->driver = drv;
        if (r == TETHER_SUCCESS && !(s->priv = calloc(1, drv->priv_size ? drv->priv_size : 1)))
                r = TETHER_ERR_NO_MEMORY;
        pthread_mutex_lock(&t->lock);
        if (r == TETHER_SUCCESS && nub->terminated)
                r = TETHER_ERR_NOT_ATTACHED;
        if (r == TETHER_SUCCESS)
                s->id = h->e.id = t->next_id++;
        pthread_mutex_unlock(&t->lock);
        if (r == TETHER_SUCCESS) {
                service_runtime_init(s, b->m ? b->m->bundle_id : NULL);
                r = workloop_new(drv->class_name, &s->loop);
                if (r != TETHER_SUCCESS)
                        log_limit_destroy(&s->log);
        }
        if (r != TETHER_SUCCESS) {
                entry_destroy(&h->e);
                free(s->priv);
                free(rs);
                free(h);
                return r;
        }
        h->e.parent = &nub->e;
        h->rt = s;
        pthread_mutex_lock(&t->lock);
        h->next = t->services;
        t->services = h;
        /* A fresh loop takes the job. */
        (void)workloop_post(s->loop, 0, start_job, h);
        wait_flag_locked(t, &h->start_done);
        r = h->start_result;
        if (r != TETHER_SUCCESS)
                wait_flag_locked(t, &h->loop_ended);
        pthread_mutex_unlock(&t->lock);
        if (r != TETHER_SUCCESS) {
                /* Its handle stays listed (nubs it published name it as
                 * theirs) and is freed with the harness. */
                reap(t);
                return r;
        }
        *ret = h;
        return TETHER_SUCCESS;
}

uint64_t tether_test_service_id(tether_test_service *svc)
{
        return svc ? svc->e.id : 0;
}

tether_ret_t tether_test_property(tether_test_service *svc, const char *key, tether_value **ret)
{
        if (!svc || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        return copy_property(svc->t, &svc->e, key, ret);
}

/* Run fn(arg) on the service's loop and wait for it. A loop that has
 * ended, or is ending, takes no more jobs: TETHER_ERR_NOT_ATTACHED. */
/* Run fn(arg) on the service's loop and wait for it. A loop that has
 * ended, or is ending, takes no more jobs: TETHER_ERR_NOT_ATTACHED. */
typedef struct loop_call {
        tether_test_service *h;
        void (*fn)(tether_service *, struct loop_call *);
        void (*user_fn)(tether_service *, void *);
        void *ctx;
        const tether_value *dict;
        const tether_task *writer;
        char reason[TETHER_MAX_REASON + 1];
        tether_ret_t result;
        bool done;
} loop_call;

static void loop_call_job(void *arg)
{
        loop_call *c = arg;
        c->fn(c->h->rt, c);
        pthread_mutex_lock(&c->h->t->lock);
        c->done = true;
        harness_changed_locked(c->h->t);
        pthread_mutex_unlock(&c->h->t->lock);
}

static tether_ret_t run_on_loop(tether_test_service *h, loop_call *c)
{
        tether_test *t = h->t;
        c->h = h;
        pthread_mutex_lock(&t->lock);
        tether_ret_t r = h->rt && !h->loop_ended ? workloop_post(h->rt->loop, 0, loop_call_job, c)
                                                 : TETHER_ERR_NOT_ATTACHED;
        if (r == TETHER_SUCCESS)
                wait_flag_locked(t, &c->done);
        pthread_mutex_unlock(&t->lock);
        return r == TETHER_SUCCESS ? TETHER_SUCCESS : TETHER_ERR_NOT_ATTACHED;
}

tether_task harness_process_task(void)
{
        tether_task me = { .pid = getpid(), .uid = geteuid(), .gid = getegid(), /* as SO_PEERCRED says */
                           .abi_word_bits = (uint32_t)(sizeof(void *) * 8) };
        if (me.uid == 0)
                me.privileges = TETHER_PRIVILEGE_ADMINISTRATOR;
        return me;
}

static void set_properties_fn(tether_service *s, loop_call *c)
{
        c->result = service_set_properties(s, c->writer, c->dict, c->reason);
}

tether_ret_t tether_test_set_properties(tether_test_service *svc, const tether_task *writer, const tether_value *dict,
                                       char *ret_why)
{
        if (ret_why)
                ret_why[0] = '\0';
        if (!svc || !dict || tether_value_get_type(dict) != TETHER_TYPE_DICT)
                return TETHER_ERR_BAD_ARGUMENT;
        tether_task me = harness_process_task();
        if (!writer)
                writer = &me;
        /* The bundle's access policy first, as tetherd: a caller it keeps
         * from the instrument is kept from its settings too. */
        const manifest *m = svc->bundle->m;
        if (m && manifest_write_refused(m, writer->uid, writer->gid, ret_why, TETHER_MAX_REASON + 1))
                return TETHER_ERR_NOT_PRIVILEGED;
        loop_call c = { .fn = set_properties_fn, .dict = dict, .writer = writer, .result = TETHER_ERR_NOT_ATTACHED };
        tether_ret_t r = run_on_loop(svc, &c);
        if (r != TETHER_SUCCESS)
                return r;
        if (ret_why)
                memcpy(ret_why, c.reason, sizeof(c.reason));
        return c.result;
}

static void user_fn(tether_service *s, loop_call *c)
{
        c->user_fn(s, c->ctx);
}

tether_ret_t tether_test_on_loop(tether_test_service *svc, void (*fn)(tether_service *service, void *ctx), void *ctx)
{
        if (!svc || !fn)
                return TETHER_ERR_BAD_ARGUMENT;
        loop_call c = { .fn = user_fn, .user_fn = fn, .ctx = ctx };
        return run_on_loop(svc, &c);
}

tether_ret_t tether_test_published(tether_test_service *svc, size_t index, tether_test_nub **ret)
{
        if (!svc || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        pthread_mutex_lock(&svc->t->lock);
        *ret = index < svc->n_published ? svc->published[index] : NULL;
        pthread_mutex_unlock(&svc->t->lock);
        return *ret ? TETHER_SUCCESS : TETHER_ERR_NOT_FOUND;
}

tether_ret_t harness_publish_locked(tether_test_service *h, const char *class_name, const char *name,
                                    const char *location, const tether_value *props, uint64_t *ret_id)
{
        if (h->stop_posted)
                return TETHER_ERR_NOT_ATTACHED;
        if (h->live_published >= MAX_NUBS_PER_SERVICE)
                return TETHER_ERR_NO_RESOURCES;
        if (h->n_published == h->cap_published) {
                size_t cap = h->cap_published ? 2 * h->cap_published : 8;
                tether_test_nub **p = realloc(h->published, cap * sizeof(*p));
                if (!p)
                        return TETHER_ERR_NO_MEMORY;
                h->published = p;
                h->cap_published = cap;
        }
        tether_test_nub *n = NULL;
        tether_ret_t r = nub_create_locked(h->t, class_name, name, location, props, h, &n);
        if (r != TETHER_SUCCESS)
                return r;
        h->published[h->n_published++] = n;
        h->live_published++;
        if (ret_id)
                *ret_id = n->e.id;
        return TETHER_SUCCESS;
}

/* ---- stopping ---- */

static void stop_job(void *arg)
{
        tether_test_service *h = arg;
        tether_service *s = h->rt;
        service_run_stop(s);
        bool idle = !s->clients;
        pthread_mutex_lock(&h->t->lock);
        h->stopped = true;
        h->idle_at_stop = idle;
        harness_changed_locked(h->t);
        pthread_mutex_unlock(&h->t->lock);
        service_finish_if_idle(s);
}

void harness_post_stop_locked(tether_test_service *h)
{
        if (h->stop_posted)
                return;
        h->stop_posted = true;
        /* Below it first, as the registry terminates a subtree. */
        for (size_t i = 0; i < h->n_published; i++)
                if (!h->published[i]->terminated)
                        harness_terminate_nub_locked(h->published[i]);
        if (!h->rt || workloop_post(h->rt->loop, 0, stop_job, h) != TETHER_SUCCESS)
                h->stopped = true; /* its loop is ending: nothing left to stop */
        harness_changed_locked(h->t);
}

/* The test's thread: stop h, what it published first, and wait for its
 * driver's stop(); if no connection holds its loop, for the loop too. */
static tether_ret_t stop_and_wait(tether_test_service *h)
{
        tether_test *t = h->t;
        pthread_mutex_lock(&t->lock);
        bool was = h->stop_posted;
        pthread_mutex_unlock(&t->lock);
        if (was)
                return TETHER_ERR_NOT_ATTACHED;
        /* Children first, each stopped and waited for, so a test sees
         * termination bottom-up, as I/O Kit stops a subtree. */
        for (size_t i = 0;; i++) {
                tether_test_nub *n = NULL;
                if (tether_test_published(h, i, &n) != TETHER_SUCCESS)
                        break;
                pthread_mutex_lock(&t->lock);
                bool gone = n->terminated;
                pthread_mutex_unlock(&t->lock);
                if (!gone)
                        (void)tether_test_nub_terminate(n);
        }
        pthread_mutex_lock(&t->lock);
        harness_post_stop_locked(h);
        wait_flag_locked(t, &h->stopped);
        if (h->idle_at_stop && h->rt)
                wait_flag_locked(t, &h->loop_ended);
        pthread_mutex_unlock(&t->lock);
        return TETHER_SUCCESS;
}

tether_ret_t tether_test_stop(tether_test_service *svc)
{
        if (!svc)
                return TETHER_ERR_BAD_ARGUMENT;
        tether_ret_t r = stop_and_wait(svc);
        reap(svc->t);
        return r;
}

bool tether_test_stopped(tether_test_service *svc)
{
        if (!svc)
                return false;
        pthread_mutex_lock(&svc->t->lock);
        bool stopped = svc->stop_posted;
        pthread_mutex_unlock(&svc->t->lock);
        return stopped;
}

/* ---- waiting for the client's side ---- */

tether_ret_t tether_test_port_wait(tether_notification_port *port, uint32_t timeout_ms)
{
        int fd = tether_notification_port_get_fd(port);
        if (fd < 0)
                return TETHER_ERR_BAD_ARGUMENT;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int n;
        struct timespec deadline = deadline_in(timeout_ms);
        uint32_t left = timeout_ms;
        while ((n = poll(&p, 1, (int)left)) < 0 && errno == EINTR) {
                if (passed(&deadline))
                        return TETHER_ERR_TIMEOUT;
                left = 1; /* interrupted: look again, the deadline decides */
        }
        if (n < 0)
                return TETHER_ERR_IO;
        if (n == 0)
                return TETHER_ERR_TIMEOUT;
        return tether_notification_port_dispatch(port);
}

tether_ret_t tether_test_wait(tether_test *t, bool (*cond)(void *ctx), void *ctx, uint32_t timeout_ms)
{
        if (!t || !cond)
                return TETHER_ERR_BAD_ARGUMENT;
        struct timespec deadline = deadline_in(timeout_ms);
        for (;;) {
                pthread_mutex_lock(&t->lock);
                uint64_t gen = t->gen;
                pthread_mutex_unlock(&t->lock);
                if (cond(ctx))
                        return TETHER_SUCCESS;
                if (passed(&deadline))
                        return TETHER_ERR_TIMEOUT;
                struct timespec slice = deadline_in(WAIT_SLICE_MS);
                if (slice.tv_sec > deadline.tv_sec ||
                    (slice.tv_sec == deadline.tv_sec && slice.tv_nsec > deadline.tv_nsec))
                        slice = deadline;
                pthread_mutex_lock(&t->lock);
                while (t->gen == gen && pthread_cond_timedwait(&t->changed, &t->lock, &slice) == 0)
                        ;
                pthread_mutex_unlock(&t->lock);
        }
}
