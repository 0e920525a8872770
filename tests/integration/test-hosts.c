/* SPDX-License-Identifier: MIT */
/* Drivers in their own processes (docs/bundles.md), through the real
 * tetherd as it runs by default: who a host runs as, what a crash mid-call
 * costs (NotAttached at once, the service back, nothing else disturbed),
 * the watchdog, the backoff to failed and a load to recover, and a bundle
 * killed fifty times beside another that never notices. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "example/example.h"
#include "harness.h"

static const char *const host_args[] = { "--watchdog", "1000", NULL };
static harness H = { .simulate = "dsox2002a:HST0001", .args = host_args };

static int group_setup(void **state)
{
        return harness_start(&H);
}

static int group_teardown(void **state)
{
        return harness_stop(&H) == 0 ? 0 : -1;
}

static uint64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The pid of tetherd's host for a bundle, or 0. */
static pid_t host_of(const char *bundle)
{
        DIR *d = opendir("/proc");
        pid_t found = 0;
        for (struct dirent *e; d && !found && (e = readdir(d));) {
                pid_t pid = (pid_t)atoi(e->d_name);
                char path[64], buf[256] = "";
                if (pid <= 0)
                        continue;
                snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
                FILE *f = fopen(path, "r");
                int ppid = 0;
                if (f && fscanf(f, "%*d %*s %*c %d", &ppid) != 1)
                        ppid = 0;
                if (f)
                        fclose(f);
                if (ppid != H.pid)
                        continue;
                snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
                f = fopen(path, "r");
                size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
                if (f)
                        fclose(f);
                /* argv: "tether-driverhost" NUL bundle NUL */
                if (n > 18 && !strcmp(buf, "tether-driverhost") && !strcmp(buf + 18, bundle))
                        found = pid;
        }
        if (d)
                closedir(d);
        return found;
}

static long status_field(pid_t pid, const char *field)
{
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        FILE *f = fopen(path, "r");
        long v = -1;
        size_t n = strlen(field);
        while (f && fgets(line, sizeof(line), f))
                if (!strncmp(line, field, n) && line[n] == ':') {
                        v = strtol(line + n + 1, NULL, 10);
                        break;
                }
        if (f)
                fclose(f);
        return v;
}

static int fd_count(pid_t pid)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
        DIR *d = opendir(path);
        int n = 0;
        for (struct dirent *e; d && (e = readdir(d));)
                n += e->d_name[0] != '.';
        if (d)
                closedir(d);
        return n;
}

typedef struct service_wait {
        const char *bundle;
        pid_t not;                     /* a new host: not this one */
} service_wait;

static bool host_back(void *arg)
{
        service_wait *w = arg;
        pid_t p = host_of(w->bundle);
        return p && p != w->not;
}

/* The service of that class is in the registry and answers. */
static uint64_t wait_service(tether_session *s, const char *class_name)
{
        tether_value *m = NULL;
        uint64_t id = 0;
        assert_int_equal(tether_service_matching(class_name, &m), TETHER_SUCCESS);
        for (int i = 0; i < 500 && tether_get_matching_service(s, m, &id) != TETHER_SUCCESS; i++)
                usleep(10000);
        tether_value_unref(m);
        assert_int_not_equal(id, 0);
        return id;
}

static tether_ret_t add(tether_connect *c, uint64_t *sum)
{
        uint64_t in[2] = { 2, 3 };
        uint32_t n = 1;
        return tether_call_scalar_method(c, EXAMPLE_ADD, in, 2, sum, &n);
}

/* ---- least privilege ---- */

static void a_host_runs_unprivileged_with_nothing_of_tetherds(void **state)
{
        tether_session *s = harness_session(&H);
        wait_service(s, "ExampleDriver");
        pid_t pid = host_of("org.tether.example");
        assert_true(pid > 0);
        assert_int_not_equal(status_field(pid, "Uid"), 0); /* the bundle's user, never root */
        assert_int_equal(status_field(pid, "NoNewPrivs"), 1);
        /* Its std fds, its channel, its work loop's epoll and eventfd: no
         * socket, file or device of tetherd's came with it. */
        assert_true(fd_count(pid) <= 6);
        /* The registry says which process serves the service. */
        tether_value *v = NULL;
        uint64_t shown = 0;
        assert_int_equal(tether_registry_entry_get_property(s, wait_service(s, "ExampleDriver"), "TetherHostPID", &v),
                         TETHER_SUCCESS);
        assert_int_equal(tether_value_get_uint(v, &shown), TETHER_SUCCESS);
        assert_int_equal(shown, (uint64_t)pid);
        tether_value_unref(v);
        tether_session_close(s);
}

/* ---- a crash mid-call ---- */

typedef struct sleeper {
        tether_connect *c;
        tether_ret_t result;
        uint64_t returned_ms;
} sleeper;

static void *sleep_call(void *arg)
{
        sleeper *z = arg;
        uint64_t ms = 5000;
        uint32_t n = 0;
        z->result = tether_call_scalar_method(z->c, EXAMPLE_SLEEP, &ms, 1, NULL, &n);
        z->returned_ms = now_ms();
        return NULL;
}

static int terminated;

static void on_service(void *refcon, uint32_t type, uint64_t id)
{
        if (type == TETHER_NOTIFY_TERMINATED)
                terminated++;
}

/* Kill the example's host with sig while a call sleeps in it: the call
 * returns NotAttached within a second, watchers hear TERMINATED, and the
 * service comes back in a new host that answers. Returns after that. */
static void crash_mid_call(int sig, int watchdog_ms)
{
        tether_session *s = harness_session(&H);
        uint64_t id = wait_service(s, "ExampleDriver");
        tether_notification_port *port = NULL;
        tether_notification *n = NULL;
        tether_value *m = NULL;
        assert_int_equal(tether_notification_port_create(s, &port), TETHER_SUCCESS);
        assert_int_equal(tether_service_matching("ExampleDriver", &m), TETHER_SUCCESS);
        assert_int_equal(tether_service_add_matching_notification(port, TETHER_NOTIFY_TERMINATED, m, on_service, NULL, &n),
                         TETHER_SUCCESS);
        tether_value_unref(m);
        terminated = 0;
        sleeper z = { 0 };
        assert_int_equal(tether_service_open(s, id, EXAMPLE_CLIENT, 0, &z.c), TETHER_SUCCESS);
        pid_t pid = host_of("org.tether.example");
        assert_true(pid > 0);
        pthread_t t;
        pthread_create(&t, NULL, sleep_call, &z);
        usleep(200000); /* the call is in the driver now */
        uint64_t killed = now_ms();
        if (sig)
                kill(pid, sig);
        pthread_join(t, NULL);
        assert_int_equal(z.result, TETHER_ERR_NOT_ATTACHED);
        assert_true(z.returned_ms - killed < (uint64_t)(sig ? 1000 : watchdog_ms + 1500));
        /* The next call on the dead connection says so too, at once. */
        uint64_t sum = 0;
        assert_int_equal(add(z.c, &sum), TETHER_ERR_NOT_ATTACHED);
        for (int i = 0; i < 200 && !terminated; i++) {
                usleep(10000);
                tether_notification_port_dispatch(port);
        }
        assert_int_equal(terminated, 1);
        /* Back, in a new process, and answering a new connection. */
        service_wait w = { "org.tether.example", pid };
        assert_true(harness_wait(host_back, &w, 5000));
        uint64_t again = wait_service(s, "ExampleDriver");
        assert_int_not_equal(again, id);
        tether_connect *c = NULL;
        assert_int_equal(tether_service_open(s, again, EXAMPLE_CLIENT, 0, &c), TETHER_SUCCESS);
        assert_int_equal(add(c, &sum), TETHER_SUCCESS);
        assert_int_equal(sum, 5);
        tether_service_close(c);
        tether_service_close(z.c);
        tether_notification_remove(n);
        tether_notification_port_destroy(port);
        tether_session_close(s);
}

static void sigkill_mid_call(void **state)
{
        crash_mid_call(SIGKILL, 0);
}

static void sigsegv_mid_call(void **state)
{
        crash_mid_call(SIGSEGV, 0);
}

static void abort_mid_call(void **state)
{
        crash_mid_call(SIGABRT, 0);
}

/* A driver method that does not return holds its loop: the heartbeat goes
 * unanswered, and the watchdog (1 s here) ends the host as crashed. */
static void watchdog_ends_a_stuck_host(void **state)
{
        crash_mid_call(0, 1000);
}

/* ---- crashing too often: failed, until loaded again ---- */

static bool bundle_state_is(tether_session *s, const char *bundle, const char *want)
{
        tether_value *list = NULL;
        bool is = false;
        if (tether_driver_list(s, &list) != TETHER_SUCCESS)
                return false;
        for (size_t i = 0; i < tether_value_count(list); i++) {
                tether_value *b = NULL, *v = NULL;
                const char *id = "", *st = "";
                tether_value_array_get(list, i, &b);
                if (tether_value_dict_get(b, "bundle", &v) == TETHER_SUCCESS)
                        tether_value_get_string(v, &id);
                if (tether_value_dict_get(b, "state", &v) == TETHER_SUCCESS)
                        tether_value_get_string(v, &st);
                if (!strcmp(id, bundle))
                        is = !strcmp(st, want);
        }
        tether_value_unref(list);
        return is;
}

typedef struct state_wait {
        tether_session *s;
        const char *bundle, *state;
} state_wait;

static bool state_reached(void *arg)
{
        state_wait *w = arg;
        return bundle_state_is(w->s, w->bundle, w->state);
}

/* Kill a bundle's host until the bundle is failed; the kills it took. */
static int kill_until_failed(tether_session *s, const char *bundle)
{
        int kills = 0;
        state_wait failed = { s, bundle, "failed" };
        while (!bundle_state_is(s, bundle, "failed") && kills < 20) {
                service_wait w = { bundle, 0 };
                assert_true(harness_wait(host_back, &w, 15000));
                pid_t pid = host_of(bundle);
                kill(pid, SIGKILL);
                kills++;
                service_wait gone = { bundle, pid };
                /* Until a new host runs, or the bundle has failed. */
                for (int i = 0; i < 1500 && !host_back(&gone) && !state_reached(&failed); i++)
                        usleep(10000);
        }
        return kills;
}

static char *bundle_path(tether_session *s, const char *bundle)
{
        tether_value *list = NULL;
        char *path = NULL;
        assert_int_equal(tether_driver_list(s, &list), TETHER_SUCCESS);
        for (size_t i = 0; i < tether_value_count(list); i++) {
                tether_value *b = NULL, *v = NULL;
                const char *id = "", *p = "";
                tether_value_array_get(list, i, &b);
                tether_value_dict_get(b, "bundle", &v);
                tether_value_get_string(v, &id);
                tether_value_dict_get(b, "path", &v);
                tether_value_get_string(v, &p);
                if (!strcmp(id, bundle))
                        path = strdup(p);
        }
        tether_value_unref(list);
        return path;
}

static void backoff_to_failed_and_load_to_recover(void **state)
{
        tether_session *s = harness_session(&H);
        /* The crashes above count too: at most five more reach failed. */
        int kills = kill_until_failed(s, "org.tether.example");
        assert_true(kills >= 1 && kills <= 5); /* tetherd fails a bundle at 5 crashes in 60 s */
        /* Failed: its personalities match no more. */
        usleep(300000);
        assert_int_equal(host_of("org.tether.example"), 0);
        tether_value *m = NULL;
        uint64_t id = 0;
        assert_int_equal(tether_service_matching("ExampleDriver", &m), TETHER_SUCCESS);
        assert_int_equal(tether_get_matching_service(s, m, &id), TETHER_ERR_NOT_FOUND);
        tether_value_unref(m);
        /* Loading it again is how it gets another try. */
        char *path = bundle_path(s, "org.tether.example");
        assert_non_null(path);
        assert_int_equal(tether_driver_load(s, path, NULL), TETHER_SUCCESS);
        free(path);
        id = wait_service(s, "ExampleDriver");
        tether_connect *c = NULL;
        uint64_t sum = 0;
        assert_int_equal(tether_service_open(s, id, EXAMPLE_CLIENT, 0, &c), TETHER_SUCCESS);
        assert_int_equal(add(c, &sum), TETHER_SUCCESS);
        tether_service_close(c);
        tether_session_close(s);
}

/* ---- one bundle killed fifty times, another never notices ---- */

typedef struct looper {
        tether_connect *c;
        atomic_bool stop;
        long calls, errors;
} looper;

static void *call_loop(void *arg)
{
        looper *l = arg;
        while (!atomic_load(&l->stop)) {
                uint64_t sum = 0;
                if (add(l->c, &sum) != TETHER_SUCCESS || sum != 5)
                        l->errors++;
                l->calls++;
        }
        return NULL;
}

static void fifty_kills_beside_a_busy_client(void **state)
{
        tether_session *s = harness_session(&H);
        /* DSOX2000 is to come back after every kill. The generic USBTMC
         * driver would take the scope when a kill lands in DSOX2000's start
         * (tetherd then tries the next driver) or marks it failed, and keep
         * it, as a family driver should (docs/usbtmc-driver.md): not this
         * test's subject. */
        assert_int_equal(tether_driver_unload(s, "org.tether.usbtmc"), TETHER_SUCCESS);
        uint64_t id = wait_service(s, "ExampleDriver");
        wait_service(s, "DSOX2000");
        int fds = harness_fd_count(&H);
        long rss = status_field(H.pid, "VmRSS");
        looper l = { 0 };
        assert_int_equal(tether_service_open(s, id, EXAMPLE_CLIENT, 0, &l.c), TETHER_SUCCESS);
        pthread_t t;
        pthread_create(&t, NULL, call_loop, &l);
        char *path = bundle_path(s, "org.tether.dsox2000");
        assert_non_null(path);
        for (int kills = 0; kills < 50;) {
                service_wait w = { "org.tether.dsox2000", 0 };
                assert_true(harness_wait(host_back, &w, 15000));
                pid_t pid = host_of("org.tether.dsox2000");
                kill(pid, SIGKILL);
                kills++;
                service_wait gone = { "org.tether.dsox2000", pid };
                state_wait failed = { s, "org.tether.dsox2000", "failed" };
                for (int i = 0; i < 1500 && !host_back(&gone) && !state_reached(&failed); i++)
                        usleep(10000);
                if (bundle_state_is(s, "org.tether.dsox2000", "failed"))
                        assert_int_equal(tether_driver_load(s, path, NULL), TETHER_SUCCESS);
        }
        free(path);
        wait_service(s, "DSOX2000");
        atomic_store(&l.stop, true);
        pthread_join(t, NULL);
        assert_true(l.calls > 0);
        assert_int_equal(l.errors, 0);
        tether_service_close(l.c);
        /* What the kills cost tetherd came back. */
        for (int i = 0; i < 300 && harness_fd_count(&H) > fds; i++)
                usleep(10000);
        assert_true(harness_fd_count(&H) <= fds);
        assert_true(status_field(H.pid, "VmRSS") - rss < 16 * 1024);
        tether_session_close(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(a_host_runs_unprivileged_with_nothing_of_tetherds),
                cmocka_unit_test(sigkill_mid_call),
                cmocka_unit_test(sigsegv_mid_call),
                cmocka_unit_test(abort_mid_call),
                cmocka_unit_test(watchdog_ends_a_stuck_host),
                cmocka_unit_test(backoff_to_failed_and_load_to_recover),
                cmocka_unit_test(fifty_kills_beside_a_busy_client),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
