/* SPDX-License-Identifier: MIT */
/* Driver hosts are untrusted: a host that never starts, talks garbage,
 * passes fds, reaches for what is not its own, or floods tetherd is ended
 * (or refused) while tetherd and a polite client carry on. The hosts are
 * evil-host.c, standing in for tether-driverhost; each bundle's id names
 * its misbehaviour. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "example/example.h"
#include "core/log.h"
#include "harness.h"

static uint64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

typedef struct evil {
        harness h;
        char drivers[64];
        char log[96];
        const char *args[6];
        char simulate[32]; /* its scope's serial is this test's own: other runs' simulators are not its */
} evil;

/* tetherd with the in-tree bundles and one evil bundle, whose personality
 * takes the USB bus entry (no other driver wants it); its stderr (and the
 * evil host's) into a file. Every driver is in a host: the evil one in
 * evil-host, the others in the real host that evil-host execs for them. */
static void start(evil *e, const char *mode)
{
        memset(e, 0, sizeof(*e));
        strcpy(e->drivers, "/tmp/tether-evil-XXXXXX");
        assert_non_null(mkdtemp(e->drivers));
        chmod(e->drivers, 0755);
        char dir[160], path[200];
        snprintf(dir, sizeof(dir), "%s/org.tether.evil.%s.tether", e->drivers, mode);
        assert_int_equal(mkdir(dir, 0755), 0);
        snprintf(path, sizeof(path), "%s/manifest.json", dir);
        FILE *f = fopen(path, "w");
        /* "devices" takes the simulated scope from DSOX2000 too (score). */
        fprintf(f, "{\"schema\":1,\"bundle\":\"org.tether.evil.%s\",\"version\":\"1\",\"library\":\"evil.so\","
                   "\"personalities\":{\"P\":{\"driver\":\"Evil\",\"IOProviderClass\":\"TetherUSBBus\"}%s}}",
                mode,
                strcmp(mode, "devices") ? ""
                                        : ",\"S\":{\"driver\":\"Evil\",\"IOProviderClass\":\"TetherUSBDevice\","
                                          "\"IOPropertyMatch\":{\"idVendor\":2391},\"IOProbeScore\":100000}");
        fclose(f);
        snprintf(path, sizeof(path), "%s/evil.so", dir);
        f = fopen(path, "w"); /* never loaded: the evil host loads nothing */
        fclose(f);
        if (!strcmp(mode, "republish")) {
                /* Two drivers of one category for the nub it republishes:
                 * each time, one starts and the other loses. Real ones, the
                 * example's, in real hosts. */
                snprintf(dir, sizeof(dir), "%s/org.tether.cats.tether", e->drivers);
                assert_int_equal(mkdir(dir, 0755), 0);
                snprintf(path, sizeof(path), "%s/manifest.json", dir);
                f = fopen(path, "w");
                fprintf(f, "{\"schema\":1,\"bundle\":\"org.tether.cats\",\"version\":\"1\",\"library\":\"example.so\","
                           "\"personalities\":{\"W\":{\"driver\":\"ExampleDriver\",\"IOProviderClass\":\"EvilNub\","
                           "\"IOMatchCategory\":\"org_evil_C\",\"IOProbeScore\":10},"
                           "\"L\":{\"driver\":\"ExampleDriver\",\"IOProviderClass\":\"EvilNub\","
                           "\"IOMatchCategory\":\"org_evil_C\"}}}");
                fclose(f);
                char cmd[512];
                snprintf(cmd, sizeof(cmd), "cp %s/org.tether.example.tether/example.so %s/", getenv("TETHER_DRIVERS"), dir);
                assert_int_equal(system(cmd), 0);
        }
        snprintf(e->log, sizeof(e->log), "%s/log", e->drivers);
        setenv("TETHER_DRIVERHOST", getenv("EVIL_HOST"), 1);
        e->args[0] = "--drivers";
        e->args[1] = e->drivers;
        e->args[2] = "--watchdog";
        e->args[3] = "1000";
        e->h.args = e->args;
        snprintf(e->simulate, sizeof(e->simulate), "dsox2002a:EVL%05d", (int)(getpid() % 100000));
        e->h.simulate = e->simulate;
        int saved = dup(2), log = open(e->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(log, 2);
        close(log);
        int r = harness_start(&e->h);
        dup2(saved, 2);
        close(saved);
        assert_int_equal(r, 0);
}

static void stop(evil *e)
{
        assert_int_equal(harness_stop(&e->h), 0);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", e->drivers);
        assert_int_equal(system(cmd), 0);
}

static bool log_has(const evil *e, const char *text)
{
        FILE *f = fopen(e->log, "r");
        char line[512];
        bool has = false;
        while (f && !has && fgets(line, sizeof(line), f))
                has = strstr(line, text) != NULL;
        if (f)
                fclose(f);
        return has;
}

/* A polite client of the example driver, in a host of its own beside the
 * evil one: every call right and quick, for as long as ms. */
static void polite_for(const evil *e, int ms)
{
        tether_session *s = harness_session(&e->h);
        tether_connect *c = NULL;
        assert_int_equal(tether_service_open(s, harness_find(s, "ExampleDriver"), EXAMPLE_CLIENT, 0, &c), TETHER_SUCCESS);
        uint64_t end = now_ms() + (uint64_t)ms;
        do {
                uint64_t in[2] = { 40, 2 }, sum = 0, t0 = now_ms();
                uint32_t n = 1;
                assert_int_equal(tether_call_scalar_method(c, EXAMPLE_ADD, in, 2, &sum, &n), TETHER_SUCCESS);
                assert_int_equal(sum, 42);
                assert_true(now_ms() - t0 < 1000);
                usleep(5000);
        } while (now_ms() < end);
        tether_service_close(c);
        tether_session_close(s);
}

typedef struct log_wait {
        const evil *e;
        const char *text;
} log_wait;

static bool logged(void *arg)
{
        log_wait *w = arg;
        return log_has(w->e, w->text);
}

static void silent_host_cannot_hold_tetherd_back(void **state)
{
        evil e;
        uint64_t t0 = now_ms();
        start(&e, "silent"); /* returns once tetherd is READY */
        assert_true(now_ms() - t0 < 5000);
        assert_true(log_has(&e, "host of Evil did not start its driver within 1000 ms"));
        polite_for(&e, 300);
        stop(&e);
}

static void garbage_ends_the_host_until_failed(void **state)
{
        evil e;
        start(&e, "garbage");
        log_wait w = { &e, "host of Evil sent a malformed message; killed" };
        assert_true(harness_wait(logged, &w, 5000));
        polite_for(&e, 500);
        /* Restarted with backoff, killed each time, failed at five. */
        log_wait failed = { &e, "bundle org.tether.evil.garbage: 5 crashes within 60 s; failed" };
        assert_true(harness_wait(logged, &failed, 15000));
        polite_for(&e, 200);
        stop(&e);
}

static void a_passed_fd_ends_the_host(void **state)
{
        evil e;
        start(&e, "fds");
        log_wait w = { &e, "host of Evil passed an fd; killed" };
        assert_true(harness_wait(logged, &w, 5000));
        polite_for(&e, 300);
        stop(&e);
}

static void nothing_of_others_is_a_hosts_to_take(void **state)
{
        evil e;
        start(&e, "thief");
        /* Sessions with ports, none of which opened the evil host (one
         * opened the example's): it asks for every port of the first
         * sessions once the flag is there. */
        tether_session *victim[3];
        tether_notification_port *vport[3][2];
        for (int i = 0; i < 3; i++) {
                victim[i] = harness_session(&e.h);
                for (int k = 0; k < 2; k++)
                        assert_int_equal(tether_notification_port_create(victim[i], &vport[i][k]), TETHER_SUCCESS);
        }
        tether_connect *vc = NULL;
        assert_int_equal(tether_service_open(victim[0], harness_find(victim[0], "ExampleDriver"), EXAMPLE_CLIENT, 0, &vc),
                         TETHER_SUCCESS);
        char flag[64];
        snprintf(flag, sizeof(flag), "/tmp/tether-evil-ports.%d", (int)e.h.pid);
        int ff = open(flag, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        assert_true(ff >= 0);
        close(ff);
        log_wait done = { &e, "evil: done" };
        assert_true(harness_wait(logged, &done, 8000));
        unlink(flag);
        /* Every nub it named: not its own (NotPermitted) or no such entry. */
        char line[64];
        for (uint64_t id = 0x100000100; id < 0x100000110; id++) {
                snprintf(line, sizeof(line), "evil: terminate nub 0x%llx: 0\n", (unsigned long long)id);
                assert_false(log_has(&e, line));
        }
        for (int session = 1; session < 8; session++) {
                for (int port = 1; port < 8; port++) {
                        snprintf(line, sizeof(line), "evil: session %d port %d: %d\n", session, port,
                                 TETHER_ERR_BAD_ARGUMENT);
                        assert_true(log_has(&e, line));
                }
        }
        tether_service_close(vc);
        for (int i = 0; i < 3; i++)
                tether_session_close(victim[i]);
        /* Asking is no crime: it runs on, and the registry is whole. */
        assert_false(log_has(&e, "killed"));
        tether_session *s = harness_session(&e.h);
        harness_find(s, "TetherResources");
        harness_find(s, "DSOX2000");
        tether_session_close(s);
        polite_for(&e, 200);
        stop(&e);
}

/* "evil: device N: R none" for an answer that brought no fd. */
static bool log_has_refusal(const evil *e, const char *which, int result)
{
        char line[96];
        snprintf(line, sizeof(line), "evil: device %s: %d none", which, result);
        return log_has(e, line);
}

static int log_count(const evil *e, const char *text)
{
        FILE *f = fopen(e->log, "r");
        char line[512];
        int n = 0;
        while (f && fgets(line, sizeof(line), f))
                n += strstr(line, text) != NULL;
        if (f)
                fclose(f);
        return n;
}

/* A host gets the device behind its own nub and nothing else: none for
 * the USB bus entry (no device of tetherd's), none for a nub a host
 * published saying it is a simulated USB device (a driver's word is not
 * tetherd's), a simulator for the simulated scope, but no more than two
 * alive at once: each is a process tetherd started on the host's say-so.
 * Let go, they are waited for and the room is back; none outlives
 * tetherd. */
static void a_host_gets_its_own_device_and_no_more(void **state)
{
        evil e;
        start(&e, "devices");
        log_wait done = { &e, "evil: device again: 0 seqpacket" };
        assert_true(harness_wait(logged, &done, 8000));
        char refused_again[64];
        snprintf(refused_again, sizeof(refused_again), "evil: device again: %d none", TETHER_ERR_UNSUPPORTED);
        for (int i = 0; i < 50 && log_count(&e, refused_again) < 2; i++)
                usleep(100 * 1000);
        assert_true(log_has(&e, "evil: published: 0"));
        assert_int_equal(log_count(&e, refused_again), 2); /* the bus's host, the fake nub's */
        assert_true(log_has_refusal(&e, "1", TETHER_ERR_UNSUPPORTED));
        assert_true(log_has(&e, "evil: device 1: 0 seqpacket"));
        assert_true(log_has(&e, "evil: device 2: 0 seqpacket"));
        assert_true(log_has_refusal(&e, "3", TETHER_ERR_NO_RESOURCES));
        assert_false(log_has(&e, "killed"));
        polite_for(&e, 300);
        stop(&e);
        char pgrep[128];
        /* [E]: pgrep's own shell's command line must not match. */
        snprintf(pgrep, sizeof(pgrep), "pgrep -f 'tether-sim-scope --usb-fd 3 --serial [E]%s' >/dev/null",
                 strchr(e.simulate, ':') + 2);
        assert_int_equal(system(pgrep), 256);
        char flag[64];
        snprintf(flag, sizeof(flag), "/tmp/tether-evil-published.%d", (int)e.h.pid);
        unlink(flag);
}

/* A host that publishes a nub and ends it, over and over, decides each
 * time what tetherd logs about matching it (a driver started, another
 * lost on score, the first terminated): the lines about its nubs are
 * rate-limited per bundle, then what was held back is counted once. */
static void a_republishing_host_cannot_flood_the_log(void **state)
{
        evil e;
        start(&e, "republish");
        log_wait done = { &e, "evil: republished" };
        bool finished = harness_wait(logged, &done, 15000);
        log_wait held_back = { &e, "matching on nubs of org.tether.evil.republish: " };
        bool told = finished && harness_wait(logged, &held_back, 8000);
        /* What tetherd would say each round, had it no limit. */
        int lines = log_count(&e, "started on evil-nub") + log_count(&e, "matched evil-nub but is not started") +
                    log_count(&e, "org.tether.cats ExampleDriver terminated");
        bool lost = log_has(&e, "lost on probe score to org.tether.cats ExampleDriver in category org_evil_C");
        bool all = log_has(&e, "evil: republished 40 times"), killed = log_has(&e, "killed");
        polite_for(&e, 300);
        stop(&e); /* before judging: a tetherd left behind would fail the next test */
        print_message("republished: %d lines about its nubs logged\n", lines);
        assert_true(finished);
        assert_true(all);
        assert_true(lost);
        /* 40 rounds within 10 s: at most two windows' bursts, and then
         * what was held back, counted. */
        assert_true(lines > 0);
        assert_true(lines <= 2 * (int)LOG_LIMIT_BURST);
        assert_true(told);
        assert_false(killed);
}

static void write_bundle(const char *dir, const char *id, const char *library, const char *personalities)
{
        char path[256];
        snprintf(path, sizeof(path), "%s/%s.tether", dir, id);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/%s.tether/manifest.json", dir, id);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fprintf(f, "{\"schema\":1,\"bundle\":\"%s\",\"version\":\"1\",\"library\":\"lib.so\",\"personalities\":%s}",
                id, personalities);
        fclose(f);
        char cmd[512];
        if (library)
                snprintf(cmd, sizeof(cmd), "cp %s %s/%s.tether/lib.so", library, dir, id);
        else
                snprintf(cmd, sizeof(cmd), "touch %s/%s.tether/lib.so", dir, id);
        assert_int_equal(system(cmd), 0);
}

/* A category's candidates are listed when its matching begins. A bundle
 * loaded while the best of them is still starting finds the category held
 * and is skipped; when that one refuses and no other of the old list
 * starts, the category is matched again with the bundle in it (as I/O Kit
 * matches again when its catalogue changed meanwhile), not left empty. */
static void a_bundle_loaded_while_its_category_is_tried_gets_its_turn(void **state)
{
        evil e;
        setenv("TETHER_LOG", "debug", 1);
        start(&e, "slowrefuse");
        unsetenv("TETHER_LOG");
        char later[96], lib[256], slow[160], cats[160];
        snprintf(later, sizeof(later), "%s/later", e.drivers); /* not a bundle folder: loaded below */
        assert_int_equal(mkdir(later, 0755), 0);
        write_bundle(later, "org.tether.evil.x.slowrefuse", NULL,
                     "{\"P\":{\"driver\":\"Evil\",\"IOProviderClass\":\"TetherResources\","
                     "\"IOMatchCategory\":\"org_evil_X\",\"IOProbeScore\":100}}");
        snprintf(lib, sizeof(lib), "%s/org.tether.example.tether/example.so", getenv("TETHER_DRIVERS"));
        write_bundle(later, "org.tether.cats", lib,
                     "{\"X\":{\"driver\":\"ExampleDriver\",\"IOProviderClass\":\"TetherResources\","
                     "\"IOMatchCategory\":\"org_evil_X\"}}");
        snprintf(slow, sizeof(slow), "%s/org.tether.evil.x.slowrefuse.tether", later);
        snprintf(cats, sizeof(cats), "%s/org.tether.cats.tether", later);
        tether_session *s = harness_session(&e.h);
        char *why = NULL;
        tether_ret_t r1 = tether_driver_load(s, slow, &why);
        free(why);
        why = NULL;
        tether_ret_t r2 = tether_driver_load(s, cats, &why); /* while the first one starts (600 ms) */
        free(why);
        tether_session_close(s);
        log_wait held = { &e, "bundle org.tether.cats: ExampleDriver matched TetherResources but is not started: its "
                              "category org_evil_X is held by org.tether.evil.x.slowrefuse Evil" };
        log_wait started = { &e, "org.tether.cats ExampleDriver started on TetherResources in its own process "
                                 "(category org_evil_X)" };
        bool was_held = harness_wait(logged, &held, 5000), got_it = harness_wait(logged, &started, 8000);
        bool refused = log_has(&e, "bundle org.tether.evil.x.slowrefuse: Evil: start refused the nub");
        stop(&e);
        assert_int_equal(r1, TETHER_SUCCESS);
        assert_int_equal(r2, TETHER_SUCCESS);
        assert_true(was_held); /* the race this is about did happen */
        assert_true(refused);
        assert_true(got_it);
}

typedef struct evil_service {
        tether_session *s;
        uint64_t id, not;   /* the service found; one it must not be (the one killed) */
} evil_service;

static bool evil_service_up(void *arg)
{
        evil_service *es = arg;
        tether_value *m = NULL;
        tether_service_matching("Evil", &m);
        bool up = tether_get_matching_service(es->s, m, &es->id) == TETHER_SUCCESS && es->id != es->not;
        tether_value_unref(m);
        return up;
}

typedef struct kills {
        const evil *e;
        int n;
} kills;

static bool killed_n(void *arg)
{
        kills *k = arg;
        return log_count(k->e, "host of Evil sent a malformed message; killed") == k->n;
}

/* A write to the evil service; its result, and the reason the client got. */
static tether_ret_t write_evil(evil_service *es, const char *key, char **ret_why)
{
        assert_true(harness_wait(evil_service_up, es, 10000));
        tether_value *d = NULL;
        tether_value_new_dict(&d);
        tether_value_dict_set_bool(d, key, true);
        tether_ret_t r = tether_registry_entry_set_properties_why(es->s, es->id, d, ret_why);
        tether_value_unref(d);
        return r;
}

/* A host's reason reaches the client when it is one the wire admits;
 * anything else (too long, an escape sequence, not UTF-8, a reason with
 * a success) ends the host, and the client gets NotAttached with none of
 * the host's text. */
static void a_hosts_reason_is_checked(void **state)
{
        evil e;
        start(&e, "reasons");
        evil_service es = { .s = harness_session(&e.h) };
        char *why = NULL;
        assert_int_equal(write_evil(&es, "good", &why), TETHER_ERR_BAD_ARGUMENT);
        assert_string_equal(why, "the evil driver says no to uid 0");
        free(why);
        static const char *const hostile[] = { "long", "escape", "utf8", "success" };
        for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
                assert_int_equal(write_evil(&es, hostile[i], &why), TETHER_ERR_NOT_ATTACHED);
                assert_string_equal(why, "");
                free(why);
                kills k = { &e, (int)i + 1 };
                assert_true(harness_wait(killed_n, &k, 5000));
                es.not = es.id; /* the next write goes to its successor */
                assert_true(harness_wait(evil_service_up, &es, 10000));
        }
        polite_for(&e, 200);
        tether_session_close(es.s);
        stop(&e);
}

/* A host hears of a session only if the session opened it: sessions that
 * come and go elsewhere (a client making and closing a session as fast as
 * it can) cost it no message to read, and no chance to fall behind. */
static void a_host_is_told_only_of_its_own_sessions(void **state)
{
        evil e;
        start(&e, "quiet");
        for (int i = 0; i < 200; i++) {
                tether_session *s = harness_session(&e.h);
                tether_notification_port *p = NULL;
                assert_int_equal(tether_notification_port_create(s, &p), TETHER_SUCCESS);
                if (i % 20 == 0) {
                        tether_connect *c = NULL;
                        assert_int_equal(tether_service_open(s, harness_find(s, "ExampleDriver"), EXAMPLE_CLIENT, 0, &c),
                                         TETHER_SUCCESS);
                        tether_service_close(c);
                }
                tether_session_close(s);
        }
        polite_for(&e, 300); /* its pings answered meanwhile: it has read all it was sent */
        assert_false(log_has(&e, "evil: told session"));
        assert_false(log_has(&e, "killed"));
        stop(&e);
}

static void on_terminated(void *refcon, uint32_t type, uint64_t id)
{
        uint64_t *when = refcon;
        if (type == TETHER_NOTIFY_TERMINATED && !*when)
                *when = now_ms();
}

/* A host that never answers TERMINATE (an unload): its service leaves the
 * registry, TERMINATED told, only when it has stopped its clients, so a
 * host that never does is ended after twice the watchdog period (1 s
 * here), not waited on. */
static void a_host_that_ignores_terminate_is_ended(void **state)
{
        evil e;
        start(&e, "quiet");
        tether_session *s = harness_session(&e.h);
        uint64_t evil_id = harness_find(s, "Evil");
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(s, &port), TETHER_SUCCESS);
        tether_value *m = NULL;
        tether_service_matching("Evil", &m);
        uint64_t told_ms = 0;
        tether_notification *n = NULL;
        assert_int_equal(tether_service_add_matching_notification(port, TETHER_NOTIFY_TERMINATED, m, on_terminated,
                                                                  &told_ms, &n),
                         TETHER_SUCCESS);
        tether_value_unref(m);
        uint64_t t0 = now_ms();
        assert_int_equal(tether_driver_unload(s, "org.tether.evil.quiet"), TETHER_SUCCESS);
        struct pollfd pfd = { .fd = tether_notification_port_get_fd(port), .events = POLLIN };
        while (!told_ms && now_ms() - t0 < 8000) {
                if (poll(&pfd, 1, 100) > 0)
                        tether_notification_port_dispatch(port);
        }
        print_message("TERMINATED %llu ms after the unload\n", (unsigned long long)(told_ms - t0));
        assert_true(told_ms != 0);
        assert_true(told_ms - t0 >= 1900); /* not before the host was ended */
        log_wait ended = { &e, "did not terminate within 2000 ms" };
        assert_true(harness_wait(logged, &ended, 2000));
        assert_false(log_has(&e, "crashed"));
        tether_entry_info *info = NULL;
        assert_int_equal(tether_registry_entry_get_info(s, evil_id, &info), TETHER_ERR_NOT_FOUND);
        tether_notification_port_destroy(port);
        tether_session_close(s);
        polite_for(&e, 200);
        stop(&e);
}

static void a_flooding_host_does_not_slow_others(void **state)
{
        evil e;
        start(&e, "flood");
        polite_for(&e, 2000); /* while it floods */
        stop(&e);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(silent_host_cannot_hold_tetherd_back),
                cmocka_unit_test(garbage_ends_the_host_until_failed),
                cmocka_unit_test(a_passed_fd_ends_the_host),
                cmocka_unit_test(nothing_of_others_is_a_hosts_to_take),
                cmocka_unit_test(a_host_is_told_only_of_its_own_sessions),
                cmocka_unit_test(a_flooding_host_does_not_slow_others),
                cmocka_unit_test(a_host_that_ignores_terminate_is_ended),
                cmocka_unit_test(a_republishing_host_cannot_flood_the_log),
                cmocka_unit_test(a_bundle_loaded_while_its_category_is_tried_gets_its_turn),
                cmocka_unit_test(a_hosts_reason_is_checked),
                cmocka_unit_test(a_host_gets_its_own_device_and_no_more),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
