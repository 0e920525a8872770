/* SPDX-License-Identifier: MIT */
/*
 * The driver runtime's timers and log (src/host/timer.c, driver-log.c),
 * on a real work loop, with a service as the runtime sees it and the
 * registry's half (host/env.h) stubbed out. What a driver does is done from
 * the loop's thread, as a driver callback would.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "host/probes.h"
#include "host/runtime.h"

/* ---- the process around the runtime: nothing of it is used here ---- */

atomic_uint probe_count;
__thread probe_context probe_current;
void probe_async(const tether_async_ref *ref, tether_ret_t result, const uint64_t *args, uint32_t count,
                 uint32_t flags, tether_ret_t delivery) {}
void env_service_release(tether_service *s) {}
void env_service_loop_exit(void *service) {}
void env_service_open_count(tether_service *s, int delta) {}
tether_ret_t env_service_apply(tether_service *s, const tether_value *changes) { return TETHER_SUCCESS; }
tether_ret_t env_service_remove(tether_service *s, const char *key) { return TETHER_SUCCESS; }
tether_ret_t env_service_copy(tether_service *s, const char *key, tether_value **ret) { return TETHER_ERR_NOT_FOUND; }
tether_ret_t env_service_provider_property(tether_service *s, const char *key, tether_value **ret)
{
        return TETHER_ERR_NOT_FOUND;
}
tether_ret_t env_service_open_device(tether_service *s, tether_device_kind *ret_kind, int *ret_fd)
{
        return TETHER_ERR_UNSUPPORTED;
}
tether_ret_t env_service_publish_nub(tether_service *s, const char *class_name, const char *name,
                                     const char *location, tether_value *props, uint64_t *ret_id)
{
        return TETHER_ERR_UNSUPPORTED;
}
tether_ret_t env_service_terminate_nub(tether_service *s, uint64_t nub_id) { return TETHER_ERR_UNSUPPORTED; }
tether_ret_t env_port_send(uint64_t port_id, const struct wire_msg *m) { return TETHER_ERR_NOT_ATTACHED; }
void user_client_stop_all(tether_service *s) {}
tether_ret_t user_client_async_send(const tether_async_ref *ref, const struct wire_msg *m, bool last,
                                    bool *ret_connection_closed)
{
        *ret_connection_closed = true;
        return TETHER_ERR_NOT_ATTACHED;
}

/* ---- checks on the loop's thread ---- */

/* cmocka's asserts may only fail on the test's own thread: on the loop a
 * failed check is counted, and the test's thread fails on it. */
static atomic_uint loop_failures;
#define LOOP_CHECK(c)                                                                                  \
        do {                                                                                           \
                if (!(c)) {                                                                            \
                        fprintf(stderr, "%s:%d: on the loop: failed: %s\n", __FILE__, __LINE__, #c);     \
                        atomic_fetch_add(&loop_failures, 1);                                           \
                }                                                                                      \
        } while (0)

/* ---- what happened, in order ---- */

enum { TAG_STOP = 1000, TAG_START = 1001 };

typedef struct event {
        int tag;
        tether_ret_t status;
        uint64_t at_ns;
} event;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static event events[4096];
static unsigned n_events;

static void record(int tag, tether_ret_t status)
{
        pthread_mutex_lock(&mu);
        if (n_events < sizeof(events) / sizeof(events[0]))
                events[n_events++] = (event){ tag, status, workloop_now_ns() };
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
}

static unsigned count(void)
{
        pthread_mutex_lock(&mu);
        unsigned n = n_events;
        pthread_mutex_unlock(&mu);
        return n;
}

/* Wait until at least n events, for at most ms. */
static bool wait_events(unsigned n, int ms)
{
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += ms / 1000;
        until.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&mu);
        while (n_events < n && pthread_cond_timedwait(&cv, &mu, &until) == 0)
                ;
        bool ok = n_events >= n;
        pthread_mutex_unlock(&mu);
        return ok;
}

static void sleep_ms(int ms)
{
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) != 0)
                ;
}

/* ---- a service and its loop ---- */

static tether_ret_t start_result;
static bool start_arms; /* start() arms a timer (left armed) before answering */
static tether_timer *start_timer;

static void plain_cb(tether_service *svc, tether_timer *t, void *refcon, tether_ret_t status)
{
        record((int)(intptr_t)refcon, status);
}

static tether_ret_t test_start(tether_service *svc)
{
        record(TAG_START, TETHER_SUCCESS);
        if (start_arms) {
                LOOP_CHECK((tether_timer_create(svc, plain_cb, (void *)(intptr_t)7, &start_timer)) == TETHER_SUCCESS);
                LOOP_CHECK((tether_timer_arm(start_timer, 10000)) == TETHER_SUCCESS);
        }
        return start_result;
}

static void test_stop(tether_service *svc)
{
        record(TAG_STOP, TETHER_SUCCESS);
}

static const tether_driver test_driver = {
        .name = "org.test.driver",
        .class_name = "TestDriver",
        .start = test_start,
        .stop = test_stop,
};

static tether_service *svc;
static void capture_stop(void);
static FILE *capture;

static int setup(void **state)
{
        pthread_mutex_lock(&mu);
        n_events = 0;
        pthread_mutex_unlock(&mu);
        start_result = TETHER_SUCCESS;
        start_arms = false;
        svc = calloc(1, sizeof(*svc));
        atomic_init(&svc->refs, 1);
        svc->id = 0x2a;
        svc->class_name = test_driver.class_name;
        svc->driver = &test_driver;
        svc->priv = calloc(1, 1);
        service_runtime_init(svc, "org.test");
        return workloop_new("test", &svc->loop) == TETHER_SUCCESS ? 0 : -1;
}

static int teardown(void **state)
{
        if (capture) /* a test that failed while it captured */
                capture_stop();
        workloop_finish(svc->loop, NULL, NULL);
        workloop_join(svc->loop);
        service_unref(svc); /* frees the timers left: LSan says if not */
        svc = NULL;
        return atomic_exchange(&loop_failures, 0) ? -1 : 0;
}

/* Run fn(arg) on the service's loop, as a driver callback, and wait. */
typedef struct on_loop {
        void (*fn)(void *);
        void *arg;
        bool done;
} on_loop;

static void on_loop_job(void *a)
{
        on_loop *o = a;
        o->fn(o->arg);
        pthread_mutex_lock(&mu);
        o->done = true;
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
}

static void run_on_loop(void (*fn)(void *), void *arg)
{
        on_loop o = { fn, arg, false };
        assert_int_equal(workloop_post(svc->loop, 0, on_loop_job, &o), TETHER_SUCCESS);
        pthread_mutex_lock(&mu);
        while (!o.done)
                pthread_cond_wait(&cv, &mu);
        pthread_mutex_unlock(&mu);
        assert_int_equal(atomic_load(&loop_failures), 0);
}

/* ---- a driver's timer owner ---- */

enum action { NOTHING, FREE_SELF, CANCEL_AT, REARM_ZERO_UNTIL, FREE_OTHER, FREE_ON_ABORT };

typedef struct owner {
        int tag;
        enum action action;
        unsigned at;              /* CANCEL_AT, REARM_ZERO_UNTIL: after this many fires */
        unsigned fires;
        tether_timer *timer;
        tether_timer **other;     /* FREE_OTHER */
} owner;

static void owner_cb(tether_service *s, tether_timer *t, void *refcon, tether_ret_t status)
{
        owner *o = refcon;
        LOOP_CHECK(s == svc);
        LOOP_CHECK(t == o->timer);
        LOOP_CHECK(workloop_on_thread(s->loop));
        o->fires++;
        if (o->action != REARM_ZERO_UNTIL) /* it fires thousands of times */
                record(o->tag, status);
        switch (o->action) {
        case FREE_SELF:
                tether_timer_free(t);
                o->timer = NULL;
                break;
        case CANCEL_AT:
                if (o->fires == o->at)
                        LOOP_CHECK((tether_timer_cancel(t)) == TETHER_SUCCESS);
                break;
        case REARM_ZERO_UNTIL:
                /* Not asserted: it refuses once the teardown stops the loop. */
                if (o->fires < o->at)
                        tether_timer_arm(t, 0);
                break;
        case FREE_OTHER:
                tether_timer_free(*o->other);
                *o->other = NULL;
                break;
        case FREE_ON_ABORT:
                /* What a driver does with a context only its timer knows. */
                if (status == TETHER_ERR_ABORTED) {
                        tether_timer_free(t);
                        free(o);
                }
                break;
        case NOTHING:
                break;
        }
}

static void make(owner *o)
{
        LOOP_CHECK((tether_timer_create(svc, owner_cb, o, &o->timer)) == TETHER_SUCCESS);
        LOOP_CHECK(!(tether_timer_is_armed(o->timer)));
}

typedef struct arm_args {
        owner *o;
        uint32_t ms;
        bool periodic;
        tether_ret_t result;
} arm_args;

static void do_arm(void *a)
{
        arm_args *x = a;
        if (!x->o->timer)
                make(x->o);
        x->result = x->periodic ? tether_timer_arm_periodic(x->o->timer, x->ms) : tether_timer_arm(x->o->timer, x->ms);
}

static tether_ret_t arm_on_loop(owner *o, uint32_t ms, bool periodic)
{
        arm_args x = { o, ms, periodic, TETHER_ERR_ERROR };
        run_on_loop(do_arm, &x);
        return x.result;
}

static void do_make(void *a)
{
        make(a);
}

static void do_cancel(void *a)
{
        LOOP_CHECK((tether_timer_cancel(((owner *)a)->timer)) == TETHER_SUCCESS);
}

static void do_free(void *a)
{
        owner *o = a;
        tether_timer_free(o->timer);
        o->timer = NULL;
}

typedef struct stop_run {
        bool stopped;
        unsigned before; /* events recorded before the stop began */
} stop_run;

/* On the loop, so that no timer of the service fires between the count and
 * the stop (a periodic one may fire any time off the loop). */
static void do_stop(void *a)
{
        stop_run *r = a;
        r->before = count();
        r->stopped = service_run_stop(svc);
}

/* ---- the tests ---- */

static void arm_fires_once_not_early(void **state)
{
        owner o = { .tag = 1 };
        uint64_t t0 = workloop_now_ns();
        assert_int_equal(arm_on_loop(&o, 30, false), TETHER_SUCCESS);
        assert_true(tether_timer_is_armed(o.timer));
        assert_true(wait_events(1, 2000));
        assert_int_equal(events[0].tag, 1);
        assert_int_equal(events[0].status, TETHER_SUCCESS);
        assert_true(events[0].at_ns - t0 >= 30000000u);
        sleep_ms(80);
        assert_int_equal(count(), 1);          /* one-shot */
        assert_false(tether_timer_is_armed(o.timer));
        /* A fired timer can be armed again. */
        assert_int_equal(arm_on_loop(&o, 5, false), TETHER_SUCCESS);
        assert_true(wait_events(2, 2000));
        run_on_loop(do_free, &o);
}

static void rearm_replaces(void **state)
{
        owner o = { .tag = 2 };
        uint64_t t0 = workloop_now_ns();
        assert_int_equal(arm_on_loop(&o, 20, false), TETHER_SUCCESS);
        assert_int_equal(arm_on_loop(&o, 150, false), TETHER_SUCCESS); /* later: the 20 ms one is gone */
        assert_true(wait_events(1, 2000));
        assert_true(events[0].at_ns - t0 >= 150000000u);
        /* Sooner replaces later too, and a periodic one a one-shot. */
        assert_int_equal(arm_on_loop(&o, 5000, false), TETHER_SUCCESS);
        assert_int_equal(arm_on_loop(&o, 10, true), TETHER_SUCCESS);
        assert_true(wait_events(4, 2000));
        assert_int_equal(arm_on_loop(&o, 20, false), TETHER_SUCCESS); /* and a one-shot a periodic one */
        unsigned before = count();
        sleep_ms(150);
        assert_int_equal(count(), before + 1);
        run_on_loop(do_free, &o);
}

static void cancel_before_fire(void **state)
{
        owner o = { .tag = 3 };
        assert_int_equal(arm_on_loop(&o, 40, false), TETHER_SUCCESS);
        run_on_loop(do_cancel, &o);
        assert_false(tether_timer_is_armed(o.timer));
        run_on_loop(do_cancel, &o); /* disarmed already: fine */
        sleep_ms(120);
        assert_int_equal(count(), 0);
        assert_int_equal(arm_on_loop(&o, 5, false), TETHER_SUCCESS);
        assert_true(wait_events(1, 2000));
        run_on_loop(do_free, &o);
        /* Freed while armed: never called either. */
        owner p = { .tag = 4 };
        assert_int_equal(arm_on_loop(&p, 30, false), TETHER_SUCCESS);
        run_on_loop(do_free, &p);
        sleep_ms(100);
        assert_int_equal(count(), 1);
        assert_int_equal(svc->n_timers, 0);
}

static void periodic_until_cancelled(void **state)
{
        owner o = { .tag = 5 };
        uint64_t t0 = workloop_now_ns();
        assert_int_equal(arm_on_loop(&o, 15, true), TETHER_SUCCESS);
        assert_true(wait_events(5, 3000));
        run_on_loop(do_cancel, &o);
        unsigned n = count();
        assert_true(n >= 5);
        /* Never early: the k-th comes at least k periods after arming. */
        for (unsigned k = 0; k < n; k++) {
                assert_int_equal(events[k].status, TETHER_SUCCESS);
                assert_true(events[k].at_ns - t0 >= (k + 1) * 15000000ull);
        }
        sleep_ms(80);
        assert_int_equal(count(), n);
        /* Cancelled from its own callback, at the third. */
        owner p = { .tag = 6, .action = CANCEL_AT, .at = 3 };
        assert_int_equal(arm_on_loop(&p, 5, true), TETHER_SUCCESS);
        assert_true(wait_events(n + 3, 2000));
        sleep_ms(60);
        assert_int_equal(count(), n + 3);
        assert_false(tether_timer_is_armed(p.timer));
        /* A zero period would spin the loop: refused. */
        assert_int_equal(arm_on_loop(&p, 0, true), TETHER_ERR_BAD_ARGUMENT);
        run_on_loop(do_free, &o);
        run_on_loop(do_free, &p);
}

static void free_from_callbacks(void **state)
{
        /* Its own, one-shot and periodic: ASan says if anything touches it after. */
        owner a = { .tag = 10, .action = FREE_SELF };
        owner b = { .tag = 11, .action = FREE_SELF };
        assert_int_equal(arm_on_loop(&a, 5, false), TETHER_SUCCESS);
        assert_int_equal(arm_on_loop(&b, 5, true), TETHER_SUCCESS);
        assert_true(wait_events(2, 2000));
        sleep_ms(50);
        assert_int_equal(count(), 2);
        assert_int_equal(svc->n_timers, 0);
        /* Another's, armed to fire after it: it never does. */
        owner victim = { .tag = 12 };
        owner killer = { .tag = 13, .action = FREE_OTHER, .other = &victim.timer };
        assert_int_equal(arm_on_loop(&victim, 60, false), TETHER_SUCCESS);
        assert_int_equal(arm_on_loop(&killer, 5, false), TETHER_SUCCESS);
        assert_true(wait_events(3, 2000));
        sleep_ms(120);
        assert_int_equal(count(), 3);
        assert_int_equal(events[2].tag, 13);
        assert_null(victim.timer);
        run_on_loop(do_free, &killer);
        assert_int_equal(svc->n_timers, 0);
}

static void stop_aborts_armed_timers_first(void **state)
{
        owner *one = calloc(1, sizeof(*one)), *per = calloc(1, sizeof(*per));
        *one = (owner){ .tag = 20, .action = FREE_ON_ABORT };
        *per = (owner){ .tag = 21, .action = FREE_ON_ABORT };
        owner idle = { .tag = 22 }; /* made, never armed: not told, freed with the service */
        owner fired = { .tag = 23 }; /* fired before the stop: not told again */
        owner kept = { .tag = 24 };  /* told, and left for the service to free */
        svc->started = true;
        assert_int_equal(arm_on_loop(one, 10000, false), TETHER_SUCCESS);
        assert_int_equal(arm_on_loop(per, 20, true), TETHER_SUCCESS);
        assert_int_equal(arm_on_loop(&kept, 10, true), TETHER_SUCCESS);
        run_on_loop(do_make, &idle);
        assert_int_equal(arm_on_loop(&fired, 1, false), TETHER_SUCCESS);
        assert_true(wait_events(3, 2000)); /* fired, and some periods */
        stop_run run = { 0 };
        run_on_loop(do_stop, &run);
        assert_true(run.stopped);
        unsigned before = run.before, after = count();
        /* The armed ones told, once each, then the driver's stop(), last. */
        assert_int_equal(after, before + 4);
        int told = 0;
        for (unsigned i = before; i < after - 1; i++) {
                assert_int_equal(events[i].status, TETHER_ERR_ABORTED);
                told |= events[i].tag == 20 ? 1 : events[i].tag == 21 ? 2 : events[i].tag == 24 ? 4 : 8;
        }
        assert_int_equal(told, 7);
        assert_false(tether_timer_is_armed(kept.timer));
        assert_int_equal(events[after - 1].tag, TAG_STOP);
        sleep_ms(100);
        assert_int_equal(count(), after); /* nothing fires after */
        /* Nothing can be armed or made now. */
        assert_int_equal(arm_on_loop(&fired, 1, false), TETHER_ERR_NOT_ATTACHED);
        assert_int_equal(arm_on_loop(&fired, 1, true), TETHER_ERR_NOT_ATTACHED);
        sleep_ms(50);
        assert_int_equal(count(), after);
        /* idle and fired are left for the service to free (teardown). */
}

/* What a stopped service's driver is told when it tries, on its loop. */
typedef struct late {
        tether_timer *made_before;
        tether_ret_t create, arm, periodic, schedule;
} late;

static void never(tether_service *s, void *ctx)
{
        record(99, TETHER_SUCCESS);
}

static void late_calls(void *a)
{
        late *l = a;
        tether_timer *t = NULL;
        l->create = tether_timer_create(svc, plain_cb, NULL, &t);
        LOOP_CHECK((t) == NULL);
        l->arm = tether_timer_arm(l->made_before, 1);
        l->periodic = tether_timer_arm_periodic(l->made_before, 1);
        l->schedule = tether_service_schedule(svc, 0, never, NULL);
}

static void make_before(void *a)
{
        late *l = a;
        LOOP_CHECK((tether_timer_create(svc, plain_cb, NULL, &l->made_before)) == TETHER_SUCCESS);
}

static int saved_stderr = -1;

static void capture_start(void)
{
        fflush(stderr);
        capture = tmpfile();
        saved_stderr = dup(2);
        dup2(fileno(capture), 2);
}

static unsigned captured(const char *needle, unsigned *ret_suppressed)
{
        fflush(stderr);
        rewind(capture);
        char line[1200];
        unsigned n = 0;
        while (fgets(line, sizeof(line), capture)) {
                if (strstr(line, needle))
                        n++;
                const char *p = strstr(line, " messages suppressed");
                if (p && ret_suppressed) {
                        while (p > line && p[-1] >= '0' && p[-1] <= '9')
                                p--;
                        *ret_suppressed += (unsigned)strtoul(p, NULL, 10);
                }
        }
        return n;
}

static void capture_stop(void)
{
        fflush(stderr);
        dup2(saved_stderr, 2);
        close(saved_stderr);
        fclose(capture);
        capture = NULL;
}

static void stopped_service_refuses_and_says_who(void **state)
{
        late l = { 0 };
        run_on_loop(make_before, &l);
        stop_run run = { 0 };
        run_on_loop(do_stop, &run);
        assert_true(run.stopped);
        capture_start();
        run_on_loop(late_calls, &l);
        assert_int_equal(l.create, TETHER_ERR_NOT_ATTACHED);
        assert_int_equal(l.arm, TETHER_ERR_NOT_ATTACHED);
        assert_int_equal(l.periodic, TETHER_ERR_NOT_ATTACHED);
        assert_int_equal(l.schedule, TETHER_ERR_NOT_ATTACHED);
        assert_false(tether_timer_is_armed(l.made_before));
        /* One line each, naming bundle, class and id. */
        const char *who = "warning: bundle org.test: TestDriver (0x2a): ";
        char want[256];
        const char *what[] = { "tether_timer_create on a stopped service", "tether_timer_arm on a stopped service",
                               "tether_timer_arm_periodic on a stopped service",
                               "tether_service_schedule on a stopped service" };
        for (size_t i = 0; i < sizeof(what) / sizeof(what[0]); i++) {
                snprintf(want, sizeof(want), "%s%s", who, what[i]);
                assert_int_equal(captured(want, NULL), 1);
        }
        capture_stop();
        sleep_ms(30);
        assert_int_equal(count(), 0);
}

static void do_start(void *a)
{
        *(tether_ret_t *)a = service_run_start(svc);
}

static void failed_start_tells_its_timers(void **state)
{
        start_result = TETHER_ERR_NO_DEVICE;
        start_arms = true;
        tether_ret_t r = TETHER_SUCCESS;
        run_on_loop(do_start, &r);
        assert_int_equal(r, TETHER_ERR_NO_DEVICE);
        assert_int_equal(count(), 2);
        assert_int_equal(events[0].tag, TAG_START);
        assert_int_equal(events[1].tag, 7);
        assert_int_equal(events[1].status, TETHER_ERR_ABORTED);
        assert_false(tether_timer_is_armed(start_timer));
}

typedef struct many {
        owner *o;
        unsigned n;
        tether_ret_t last;
} many;

static void make_many(void *a)
{
        many *m = a;
        for (unsigned i = 0; i < m->n; i++)
                LOOP_CHECK((tether_timer_create(svc, owner_cb, &m->o[i], &m->o[i].timer)) == TETHER_SUCCESS);
        tether_timer *extra = NULL;
        m->last = tether_timer_create(svc, owner_cb, NULL, &extra);
        LOOP_CHECK((extra) == NULL);
}

static void free_one_make_one(void *a)
{
        many *m = a;
        tether_timer_free(m->o[0].timer);
        m->last = tether_timer_create(svc, owner_cb, &m->o[0], &m->o[0].timer);
}

static void timers_are_bounded(void **state)
{
        many m = { calloc(TETHER_MAX_TIMERS_PER_SERVICE, sizeof(owner)), TETHER_MAX_TIMERS_PER_SERVICE, 0 };
        capture_start();
        run_on_loop(make_many, &m);
        assert_int_equal(m.last, TETHER_ERR_NO_RESOURCES);
        assert_int_equal(captured("TestDriver (0x2a): tether_timer_create: at the limit of 256 timers", NULL), 1);
        capture_stop();
        assert_int_equal(svc->n_timers, TETHER_MAX_TIMERS_PER_SERVICE);
        /* Freeing one makes room for one. */
        run_on_loop(free_one_make_one, &m);
        assert_int_equal(m.last, TETHER_SUCCESS);
        /* Left for the service to free. */
        teardown(state);
        setup(state);
        free(m.o);
}

/* Many armed at once, some cancelled and some moved: every removal from
 * the middle of the heap must keep it a heap, or the order breaks. */
typedef struct shuffle {
        owner o[200];
        unsigned due[200];
        bool live[200];
} shuffle;

static void shuffle_arm(void *a)
{
        shuffle *sh = a;
        srand(42);
        for (int i = 0; i < 200; i++) {
                sh->o[i] = (owner){ .tag = 100 + i };
                make(&sh->o[i]);
                sh->due[i] = 100 + (unsigned)(rand() % 400);
                sh->live[i] = true;
                LOOP_CHECK((tether_timer_arm(sh->o[i].timer, sh->due[i])) == TETHER_SUCCESS);
        }
        for (int k = 0; k < 150; k++) {
                int i = rand() % 200;
                if (rand() % 2) {
                        tether_timer_cancel(sh->o[i].timer);
                        sh->live[i] = false;
                } else {
                        sh->due[i] = 100 + (unsigned)(rand() % 400);
                        sh->live[i] = true;
                        tether_timer_arm(sh->o[i].timer, sh->due[i]);
                }
        }
}

static void shuffle_free(void *a)
{
        shuffle *sh = a;
        for (int i = 0; i < 200; i++)
                tether_timer_free(sh->o[i].timer);
}

static void many_timers_fire_in_order(void **state)
{
        shuffle *sh = calloc(1, sizeof(*sh));
        run_on_loop(shuffle_arm, sh);
        unsigned live = 0;
        for (int i = 0; i < 200; i++)
                live += sh->live[i];
        assert_true(wait_events(live, 5000));
        sleep_ms(100);
        assert_int_equal(count(), live);
        bool seen[200] = { 0 };
        for (unsigned k = 0; k < live; k++) {
                int i = events[k].tag - 100;
                assert_true(i >= 0 && i < 200 && sh->live[i] && !seen[i]);
                seen[i] = true;
                /* Due times were set within a few ms of each other: a timer
                 * due 10 ms or more before another fires before it. */
                if (k)
                        assert_true(sh->due[events[k - 1].tag - 100] <= sh->due[i] + 10);
        }
        run_on_loop(shuffle_free, sh);
        free(sh);
}

/* A timer re-armed at 0 from its own callback must not keep the loop from
 * its sockets. */
typedef struct sock_src {
        loop_source src;
        int peer;
} sock_src;

static void sock_ready(loop_source *src, uint32_t events_)
{
        char c;
        while (read(src->fd, &c, 1) > 0)
                ;
        record(50, TETHER_SUCCESS);
}

static void add_src(void *a)
{
        LOOP_CHECK((workloop_add_source(svc->loop, a)) == TETHER_SUCCESS);
}

static void remove_src(void *a)
{
        workloop_remove_source(svc->loop, a);
}

static void zero_rearm_does_not_starve_sources(void **state)
{
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        sock_src s = { .src = { .fd = sv[0], .fn = sock_ready }, .peer = sv[1] };
        run_on_loop(add_src, &s.src);
        owner spin = { .tag = 51, .action = REARM_ZERO_UNTIL, .at = 1u << 30 };
        assert_int_equal(arm_on_loop(&spin, 0, false), TETHER_SUCCESS);
        sleep_ms(20);
        assert_int_equal(write(sv[1], "x", 1), 1);
        /* The socket is served while the timer keeps re-arming itself. */
        bool served = false;
        for (int i = 0; i < 200 && !served; i++) {
                pthread_mutex_lock(&mu);
                for (unsigned k = 0; k < n_events && !served; k++)
                        served = events[k].tag == 50;
                pthread_mutex_unlock(&mu);
                if (!served)
                        sleep_ms(10);
        }
        assert_true(served);
        run_on_loop(do_free, &spin);
        assert_true(spin.fires > 10); /* it did spin meanwhile */
        run_on_loop(remove_src, &s.src);
        close(sv[0]);
        close(sv[1]);
}

static void off_the_loop_is_refused(void **state)
{
        owner o = { .tag = 60 };
        assert_int_equal(arm_on_loop(&o, 10000, false), TETHER_SUCCESS);
        capture_start();
        /* This thread is not the loop's. */
        assert_int_equal(tether_timer_arm(o.timer, 1), TETHER_ERR_NOT_PERMITTED);
        assert_int_equal(tether_timer_cancel(o.timer), TETHER_ERR_NOT_PERMITTED);
        tether_timer *t = NULL;
        assert_int_equal(tether_timer_create(svc, plain_cb, NULL, &t), TETHER_ERR_NOT_PERMITTED);
        tether_timer_free(o.timer); /* does nothing */
        assert_int_equal(captured("called off the service's work loop", NULL), 4);
        capture_stop();
        assert_true(tether_timer_is_armed(o.timer));
        assert_int_equal(tether_timer_arm(NULL, 1), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_timer_create(NULL, plain_cb, NULL, &t), TETHER_ERR_BAD_ARGUMENT);
        run_on_loop(do_free, &o);
}

/* ---- the driver's log ---- */

static void log_names_the_service_and_is_limited(void **state)
{
        capture_start();
        assert_int_equal(tether_service_log(svc, TETHER_LOG_WARNING, "probe %d failed", 3), TETHER_SUCCESS);
        assert_int_equal(captured("warning: bundle org.test: TestDriver (0x2a): probe 3 failed", NULL), 1);
        /* A newline cannot start a line of the driver's own making. */
        tether_service_log(svc, TETHER_LOG_ERROR, "evil\ntetherd: error: forged");
        assert_int_equal(captured("TestDriver (0x2a): evil?tetherd: error: forged", NULL), 1);
        assert_int_equal(captured("forged", NULL), 1);
        /* Debug only when asked for. */
        log_set_level(LOG_LVL_INFO);
        tether_service_log(svc, TETHER_LOG_DEBUG, "quiet detail");
        assert_int_equal(captured("quiet detail", NULL), 0);
        log_set_level(LOG_LVL_DEBUG);
        tether_service_log(svc, TETHER_LOG_DEBUG, "loud detail");
        assert_int_equal(captured("debug: bundle org.test: TestDriver (0x2a): loud detail", NULL), 1);
        log_set_level(LOG_LVL_INFO);
        assert_int_equal(tether_service_log(svc, (tether_log_level)5, "no such level"), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tether_service_log(NULL, TETHER_LOG_INFO, "x"), TETHER_ERR_BAD_ARGUMENT);
        /* A flood: the burst (4 lines above count), the rest counted, and
         * the count said when the service stops. */
        for (int i = 0; i < 100; i++)
                tether_service_log(svc, TETHER_LOG_INFO, "flood %d", i);
        assert_int_equal(captured("TestDriver (0x2a): flood", NULL), LOG_LIMIT_BURST - 3);
        stop_run run = { 0 };
        run_on_loop(do_stop, &run);
        unsigned suppressed = 0;
        assert_int_equal(captured("bundle org.test: TestDriver (0x2a):", NULL), LOG_LIMIT_BURST + 1);
        assert_int_equal(captured("messages suppressed", &suppressed), 1);
        assert_int_equal(suppressed, 100 - (LOG_LIMIT_BURST - 3));
        capture_stop();
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(arm_fires_once_not_early, setup, teardown),
                cmocka_unit_test_setup_teardown(rearm_replaces, setup, teardown),
                cmocka_unit_test_setup_teardown(cancel_before_fire, setup, teardown),
                cmocka_unit_test_setup_teardown(periodic_until_cancelled, setup, teardown),
                cmocka_unit_test_setup_teardown(free_from_callbacks, setup, teardown),
                cmocka_unit_test_setup_teardown(stop_aborts_armed_timers_first, setup, teardown),
                cmocka_unit_test_setup_teardown(stopped_service_refuses_and_says_who, setup, teardown),
                cmocka_unit_test_setup_teardown(failed_start_tells_its_timers, setup, teardown),
                cmocka_unit_test_setup_teardown(timers_are_bounded, setup, teardown),
                cmocka_unit_test_setup_teardown(many_timers_fire_in_order, setup, teardown),
                cmocka_unit_test_setup_teardown(zero_rearm_does_not_starve_sources, setup, teardown),
                cmocka_unit_test_setup_teardown(off_the_loop_is_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(log_names_the_service_and_is_limited, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
