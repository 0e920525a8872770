/* SPDX-License-Identifier: MIT */
/*
 * tetherd is shared by every user of the machine: no local client, however
 * hostile, may deny service to the others. Each test starts a real tetherd
 * with a small fd limit (256) and a short HELLO deadline (1 s), lets an
 * attacker (tests/hostile/attacker.c, or the fuzz client) loose on it as
 * nobody, and meanwhile runs two well-behaved libtether clients, one under
 * uid 1000 and one as root, that check every answer and time every call.
 * Afterwards tetherd's fds, threads, open counts and RSS must come back to
 * where they were.
 *
 * test-hostile          the attacks, one per test, then all at once
 * test-hostile --fuzz   the fuzz client ($TETHER_FUZZ_SEED, $TETHER_FUZZ_SECONDS)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attack.h"
#include "example/example.h"
#include "harness.h"
#include "raw.h"

#define NOBODY        65534
#define USER          1000
#define NOFILE        256
#define HELLO_MS      1000
#define SLOW_NS       1000000000LL /* no call of a polite client may take longer */
/* ... except beside the fuzz client, which keeps both CPUs of the test
 * machine busy on its own: a call once waited 2.5 s there for the CPU
 * (no tetherd lock or queue was full). Bounded all the same. */
#define FUZZ_SLOW_NS  5000000000LL
static bool fuzzing; /* this run is the fuzz client's (--fuzz) */

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#else
#define UNDER_ASAN 0
#endif
/* RSS is noisy; ASan adds shadow memory and a quarantine on top. */
#define RSS_MARGIN_KB (UNDER_ASAN ? 64L * 1024 : 16L * 1024)
/* A polite stream of 100 results 1 ms apart takes ~100 ms alone, ~1 s
 * beside 256 streams sending as fast as the driver can (its service's
 * loop is theirs too, taken in turns): bounded all the same. */
#define STREAM_SLOW_NS (UNDER_ASAN ? 10000000000LL : 5000000000LL)
/* How long tetherd may take to let go of a dead client's everything: the
 * HELLO deadline, and the main loop's 500 ms wake-ups that reap work loops. */
#define SETTLE_MS     (UNDER_ASAN ? 15000 : 8000)

static harness H;
static bool test_passed;

static int64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- tetherd from the outside: /proc ---- */

static long status_field_of(pid_t pid, const char *key)
{
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        FILE *f = fopen(path, "re");
        long v = -1;
        size_t k = strlen(key);
        while (f && fgets(line, sizeof(line), f))
                if (!strncmp(line, key, k) && line[k] == ':')
                        v = strtol(line + k + 1, NULL, 10);
        if (f)
                fclose(f);
        return v;
}

static long status_field(const char *key)
{
        return status_field_of(H.pid, key);
}

static int fd_count_of(pid_t pid)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
        DIR *d = opendir(path);
        if (!d)
                return -1;
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d)))
                n += e->d_name[0] != '.';
        closedir(d);
        return n;
}

/* utime + stime, in clock ticks. */
static long cpu_ticks(void)
{
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)H.pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return -1;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *p = strrchr(buf, ')'); /* the command name may hold spaces */
        if (!p)
                return -1;
        long utime = 0, stime = 0;
        /* Fields 3.. follow; utime and stime are fields 14 and 15. */
        if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &utime, &stime) != 2)
                return -1;
        return utime + stime;
}

/* Running, not a zombie: reaping it is harness_stop's, which reports how
 * it ended. */
static bool daemon_alive(void)
{
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)H.pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return false;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *p = strrchr(buf, ')');
        return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* ---- libtether in a child, so that a hung tetherd cannot hang the test ---- */

typedef struct shared_result {
        atomic_int done;
        tether_ret_t r;
        uint64_t v;
} shared_result;

static void *shared_alloc(size_t size)
{
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        assert_true(p != MAP_FAILED);
        memset(p, 0, size);
        return p;
}

static void drop_to(uid_t uid)
{
        if (uid == 0)
                return;
        if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
                _exit(3);
}

/* Children a failed test may leave running (an assertion jumps past their
 * stop): teardown kills them, or they would hold meson's output pipes
 * open for as long as they live. */
static pid_t children[64];

static void track(pid_t pid)
{
        for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++) {
                if (!children[i]) {
                        children[i] = pid;
                        return;
                }
        }
}

static void untrack(pid_t pid)
{
        for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++)
                if (children[i] == pid)
                        children[i] = 0;
}

static void kill_children(void)
{
        for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++) {
                if (children[i]) {
                        kill(children[i], SIGKILL);
                        waitpid(children[i], NULL, 0);
                        children[i] = 0;
                }
        }
}

/* Wait up to ms for pid; SIGKILL it after that. True if it exited. */
static bool reap(pid_t pid, int ms, int *ret_status)
{
        untrack(pid);
        int st = 0;
        for (int waited = 0; waited <= ms; waited += 10) {
                pid_t w = waitpid(pid, &st, WNOHANG);
                if (w == pid) {
                        if (ret_status)
                                *ret_status = st;
                        return true;
                }
                if (w < 0)
                        return false;
                usleep(10000);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return false;
}

enum example_query {
        Q_OPEN_COUNT,              /* the ExampleDriver entry's open count */
        Q_HOST_PID,                /* its driver host's pid, 0 under --in-process */
        Q_STREAMS_RUNNING,         /* streams its driver has not yet ended (EXAMPLE_STREAM_STATS) */
};

static void example_query_child(shared_result *res, enum example_query q)
{
        tether_session *s = NULL;
        tether_value *m = NULL, *v = NULL;
        tether_entry_info *info = NULL;
        tether_connect *c = NULL;
        uint64_t id = 0;
        res->r = tether_session_open(H.sock, &s);
        if (res->r == TETHER_SUCCESS)
                res->r = tether_service_matching("ExampleDriver", &m);
        if (res->r == TETHER_SUCCESS)
                res->r = tether_get_matching_service(s, m, &id);
        if (res->r == TETHER_SUCCESS && q == Q_OPEN_COUNT) {
                res->r = tether_registry_entry_get_info(s, id, &info);
                if (res->r == TETHER_SUCCESS)
                        res->v = info->open_count;
        } else if (res->r == TETHER_SUCCESS && q == Q_HOST_PID) {
                if (tether_registry_entry_get_property(s, id, "TetherHostPID", &v) == TETHER_SUCCESS)
                        res->r = tether_value_get_uint(v, &res->v);
        } else if (res->r == TETHER_SUCCESS) {
                uint64_t st[EXAMPLE_STATS_COUNT] = { 0 };
                uint32_t n = EXAMPLE_STATS_COUNT;
                res->r = tether_service_open(s, id, EXAMPLE_CLIENT, 0, &c);
                if (res->r == TETHER_SUCCESS)
                        res->r = tether_call_scalar_method(c, EXAMPLE_STREAM_STATS, NULL, 0, st, &n);
                res->v = st[EXAMPLE_STATS_RUNNING];
        }
        tether_service_close(c);
        tether_entry_info_free(info);
        tether_value_unref(v);
        tether_value_unref(m);
        tether_session_close(s);
}

/* What root sees of the example driver; -1 if tetherd did not answer
 * within 5 s. */
static long example_query(enum example_query q)
{
        shared_result *res = shared_alloc(sizeof(*res));
        pid_t pid = fork();
        if (pid == 0) {
                alarm(5);
                example_query_child(res, q);
                atomic_store(&res->done, 1);
                _exit(0);
        }
        reap(pid, 6000, NULL);
        long v = atomic_load(&res->done) && res->r == TETHER_SUCCESS ? (long)res->v : -1;
        munmap(res, sizeof(*res));
        return v;
}

static long open_count(void)
{
        return example_query(Q_OPEN_COUNT);
}

/* ---- where tetherd stands ---- */

typedef struct usage {
        int fds;
        long threads;
        long rss_kb;
        long opens;
} usage;

static usage snapshot(void)
{
        usage u = { harness_fd_count(&H), status_field("Threads"), status_field("VmRSS"), open_count() };
        return u;
}

static void print_usage(const char *what, const usage *u)
{
        print_message("%s: %d fds, %ld threads, %ld KiB RSS, ExampleDriver open count %ld\n", what, u->fds,
                      u->threads, u->rss_kb, u->opens);
}

static usage base;

/* What tetherd's fds are, for a failure's message. */
static void print_fds(void)
{
        char dir[64], path[320], target[256];
        snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)H.pid);
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d))) {
                if (e->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                ssize_t n = readlink(path, target, sizeof(target) - 1);
                target[n > 0 ? n : 0] = '\0';
                print_message("tetherd fd %s -> %s\n", e->d_name, target);
        }
        if (d)
                closedir(d);
}

/* Everything back where it began: fds, threads, open count, and RSS within
 * a margin, within SETTLE_MS. */
static void assert_settled(void)
{
        usage u = { 0 };
        bool ok = false;
        for (int waited = 0; waited <= SETTLE_MS && !ok; waited += 100) {
                u = snapshot();
                ok = u.fds >= 0 && u.fds <= base.fds && u.threads <= base.threads && u.opens == base.opens &&
                     u.rss_kb <= base.rss_kb + RSS_MARGIN_KB;
                if (!ok)
                        usleep(100000);
        }
        print_usage("before", &base);
        print_usage("after", &u);
        if (!ok)
                print_fds();
        assert_true(daemon_alive());
        assert_in_range(u.fds, 0, base.fds);
        assert_in_range(u.threads, 1, base.threads);
        assert_int_equal(u.opens, base.opens);
        assert_in_range(u.rss_kb, 0, base.rss_kb + RSS_MARGIN_KB);
}

/* ---- peaks while an attack runs ---- */

typedef struct monitor {
        pthread_t thread;
        atomic_int stop;
        int peak_fds;
        long peak_threads, peak_rss_kb;
} monitor;

static void *monitor_main(void *arg)
{
        monitor *m = arg;
        for (int i = 0; i < 60000 && !atomic_load(&m->stop); i++) {
                int fds = harness_fd_count(&H);
                long threads = status_field("Threads"), rss = status_field("VmRSS");
                m->peak_fds = fds > m->peak_fds ? fds : m->peak_fds;
                m->peak_threads = threads > m->peak_threads ? threads : m->peak_threads;
                m->peak_rss_kb = rss > m->peak_rss_kb ? rss : m->peak_rss_kb;
                usleep(5000);
        }
        return NULL;
}

/* Only after every fork that does not exec (the polite clients). */
static void monitor_start(monitor *m)
{
        memset(m, 0, sizeof(*m));
        assert_int_equal(pthread_create(&m->thread, NULL, monitor_main, m), 0);
}

static void monitor_stop(monitor *m)
{
        atomic_store(&m->stop, 1);
        pthread_join(m->thread, NULL);
        print_message("peaks: %d fds, %ld threads, %ld KiB RSS\n", m->peak_fds, m->peak_threads, m->peak_rss_kb);
}

/* ---- the polite clients ---- */

enum polite_op {
        OP_SESSION,
        OP_FIND,
        OP_OPEN,
        OP_ADD,
        OP_LONG_ADD,
        OP_MODEL,
        OP_SET_GREETING,
        OP_GET_GREETING,
        OP_CLOSE,
        OP_SESSION_CLOSE,
        OP_COUNT
};
static const char *const op_names[OP_COUNT] = {
        "tether_session_open", "tether_get_matching_service", "tether_service_open",
        "EXAMPLE_ADD (new connection)", "EXAMPLE_ADD (long-lived connection)", "read Model",
        "set Greeting", "read Greeting back", "tether_service_close", "tether_session_close",
};

typedef struct polite_state {
        atomic_int stop;
        atomic_int ready;
        atomic_int exited;
        atomic_long iterations, calls, failures;
        /* the first failure */
        int fail_op;
        tether_ret_t fail_code;
        long fail_iteration;
        char fail_detail[96];
        /* the slowest call */
        int64_t max_ns;
        int max_op;
        /* what it is doing now, for a hang */
        atomic_int cur_op;
        atomic_llong cur_start_ns;
} polite_state;

typedef struct polite {
        uid_t uid;
        pid_t pid;
        polite_state *st;
} polite;

static polite_state *PS; /* the child's own */

static void op_begin(int op)
{
        atomic_store(&PS->cur_start_ns, now_ns());
        atomic_store(&PS->cur_op, op);
}

static void op_end(int op)
{
        int64_t d = now_ns() - atomic_load(&PS->cur_start_ns);
        atomic_fetch_add(&PS->calls, 1);
        if (d > PS->max_ns) {
                PS->max_ns = d;
                PS->max_op = op;
        }
        atomic_store(&PS->cur_op, -1);
}

/* Record a wrong answer; false so that callers can bail out. */
static bool op_check(int op, tether_ret_t r, bool right, const char *detail)
{
        if (r == TETHER_SUCCESS && right)
                return true;
        if (atomic_fetch_add(&PS->failures, 1) == 0) {
                PS->fail_op = op;
                PS->fail_code = r;
                PS->fail_iteration = atomic_load(&PS->iterations);
                snprintf(PS->fail_detail, sizeof(PS->fail_detail), "%s", detail ? detail : "");
        }
        return false;
}

#define TIMED(op, expr)                 \
        ({                              \
                op_begin(op);           \
                tether_ret_t r_ = expr; \
                op_end(op);             \
                r_;                     \
        })

static bool polite_add(tether_connect *c, int op, uint64_t a, uint64_t b)
{
        uint64_t in[2] = { a, b }, out = 0;
        uint32_t n = 1;
        tether_ret_t r = TIMED(op, tether_call_scalar_method(c, EXAMPLE_ADD, in, 2, &out, &n));
        char detail[96];
        snprintf(detail, sizeof(detail), "%llu + %llu gave %llu", (unsigned long long)a, (unsigned long long)b,
                 (unsigned long long)out);
        return op_check(op, r, n == 1 && out == a + b, detail);
}

static bool polite_string(tether_session *s, uint64_t id, int op, const char *key, const char *want)
{
        tether_value *v = NULL;
        const char *got = NULL;
        tether_ret_t r = TIMED(op, tether_registry_entry_get_property(s, id, key, &v));
        if (r == TETHER_SUCCESS)
                tether_value_get_string(v, &got);
        bool right = got && !strcmp(got, want);
        char detail[96];
        snprintf(detail, sizeof(detail), "%s is \"%s\", not \"%s\"", key, got ? got : "(none)", want);
        tether_value_unref(v);
        return op_check(op, r, right, detail);
}

static uint64_t polite_find(tether_session *s)
{
        tether_value *m = NULL;
        uint64_t id = 0;
        tether_service_matching("ExampleDriver", &m);
        tether_ret_t r = TIMED(OP_FIND, tether_get_matching_service(s, m, &id));
        tether_value_unref(m);
        op_check(OP_FIND, r, id != 0, NULL);
        return id;
}

/* One round: a new session, a new connection, answers checked, all closed.
 * Root also writes a property and reads it back. */
static void polite_round(bool root, long it)
{
        tether_session *s = NULL;
        tether_connect *c = NULL;
        if (!op_check(OP_SESSION, TIMED(OP_SESSION, tether_session_open(H.sock, &s)), true, NULL))
                return;
        uint64_t id = polite_find(s);
        if (id && op_check(OP_OPEN, TIMED(OP_OPEN, tether_service_open(s, id, EXAMPLE_CLIENT, 0, &c)), true, NULL)) {
                polite_add(c, OP_ADD, (uint64_t)it << 20, 12345);
                TIMED(OP_CLOSE, tether_service_close(c));
        }
        if (id)
                polite_string(s, id, OP_MODEL, "Model", "tether example");
        if (id && root) {
                char greeting[32];
                snprintf(greeting, sizeof(greeting), "polite %ld", it);
                tether_value *d = NULL;
                tether_value_new_dict(&d);
                tether_value_dict_set_string(d, EXAMPLE_PROP_GREETING, greeting);
                tether_ret_t r = TIMED(OP_SET_GREETING, tether_registry_entry_set_properties(s, id, d));
                tether_value_unref(d);
                if (op_check(OP_SET_GREETING, r, true, NULL))
                        polite_string(s, id, OP_GET_GREETING, EXAMPLE_PROP_GREETING, greeting);
        }
        op_begin(OP_SESSION_CLOSE);
        tether_session_close(s);
        op_end(OP_SESSION_CLOSE);
}

static void polite_main(uid_t uid, polite_state *st)
{
        PS = st;
        drop_to(uid);
        alarm(120); /* whatever happens, never outlive the test by much */
        atomic_store(&st->cur_op, -1);
        /* A session and a connection made before the attack, used throughout. */
        tether_session *s = NULL;
        tether_connect *c = NULL;
        uint64_t id = 0;
        if (op_check(OP_SESSION, TIMED(OP_SESSION, tether_session_open(H.sock, &s)), true, "long-lived"))
                id = polite_find(s);
        if (id)
                op_check(OP_OPEN, TIMED(OP_OPEN, tether_service_open(s, id, EXAMPLE_CLIENT, 0, &c)), true,
                         "long-lived");
        atomic_store(&st->ready, 1);
        for (long it = 0; it < 100000 && !atomic_load(&st->stop); it++) {
                if (c)
                        polite_add(c, OP_LONG_ADD, (uint64_t)it, 7);
                polite_round(uid == 0, it);
                atomic_fetch_add(&st->iterations, 1);
                usleep(20000);
        }
        if (c)
                tether_service_close(c);
        tether_session_close(s);
        atomic_store(&st->exited, 1);
        _exit(0);
}

/* Before monitor_start: the child goes on using libtether without exec. */
static void polite_start(polite *p, uid_t uid)
{
        p->uid = uid;
        p->st = shared_alloc(sizeof(*p->st));
        p->pid = fork();
        assert_true(p->pid >= 0);
        if (p->pid == 0)
                polite_main(uid, p->st);
        track(p->pid);
        for (int i = 0; i < 500 && !atomic_load(&p->st->ready); i++)
                usleep(10000);
}

/* Stop the client and check what it saw: no wrong answer, no call over a
 * second, no hang, and some work done. */
static void polite_stop(polite *p)
{
        polite_state *st = p->st;
        atomic_store(&st->stop, 1);
        int status = 0;
        bool exited = reap(p->pid, 5000, &status);
        int cur = atomic_load(&st->cur_op);
        const char *who = p->uid ? "uid 1000" : "root";
        print_message("polite client (%s): %ld rounds, %ld calls, slowest %s %.1f ms\n", who,
                      atomic_load(&st->iterations), atomic_load(&st->calls),
                      st->max_ns ? op_names[st->max_op] : "-", st->max_ns / 1e6);
        if (!exited || !atomic_load(&st->exited)) {
                print_message("polite client (%s) hung in %s for %.1f s\n", who, cur >= 0 ? op_names[cur] : "?",
                              cur >= 0 ? (now_ns() - atomic_load(&st->cur_start_ns)) / 1e9 : 0.0);
                fail_msg("polite client (%s) did not finish", who);
        }
        if (atomic_load(&st->failures)) {
                print_message("polite client (%s): %ld failures; first in round %ld: %s returned %s %s\n", who,
                              atomic_load(&st->failures), st->fail_iteration, op_names[st->fail_op],
                              tether_ret_name(st->fail_code), st->fail_detail);
                fail_msg("polite client (%s) got a wrong answer", who);
        }
        assert_true(atomic_load(&st->iterations) >= 1);
        assert_in_range(st->max_ns, 0, fuzzing ? FUZZ_SLOW_NS : SLOW_NS);
        munmap(st, sizeof(*st));
}

typedef struct polites {
        polite user, root;
} polites;

static void polites_start(polites *p)
{
        polite_start(&p->user, USER);
        polite_start(&p->root, 0);
}

static void polites_stop(polites *p)
{
        polite_stop(&p->user);
        polite_stop(&p->root);
}

/* ---- attackers ---- */

/* Start prog SOCKET args... as uid (root or nobody), tracked. */
static void spawn(attack *a, const char *prog, uid_t uid, const char *const *args)
{
        attack_spawn(a, prog, H.sock, uid, args);
        track(a->pid);
}

static void attack_start(attack *a, uid_t uid, const char *mode, ...)
{
        const char *prog = getenv("TETHER_ATTACKER");
        assert_non_null(prog);
        const char *args[24] = { mode };
        va_list ap;
        va_start(ap, mode);
        for (int n = 1; n < 23 && (args[n] = va_arg(ap, const char *)); n++)
                ;
        va_end(ap);
        spawn(a, prog, uid, args);
}

/* Let it go (end of its stdin), read the rest, reap it (killed after ms). */
static void attack_finish(attack *a, int ms)
{
        if (a->in >= 0) {
                close(a->in);
                a->in = -1;
        }
        int64_t deadline = now_ns() + ms * 1000000LL;
        while (a->out >= 0 && now_ns() < deadline)
                attack_read(a, 50);
        if (a->out >= 0)
                close(a->out);
        a->out = -1;
        int64_t left = (deadline - now_ns()) / 1000000;
        bool exited = reap(a->pid, left > 0 ? (int)left : 0, &a->status);
        print_message("---- attacker %s ----\n%s", a->mode, a->buf);
        /* Its exit status is in its "done" line; what it saw is what the
         * tests assert on, with better messages than a status would give. */
        if (!exited)
                fail_msg("attacker %s did not finish in time (killed)", a->mode);
        assert_true(WIFEXITED(a->status));
}

#define assert_said(a, key, want) assert_said_((a), (key), (want), __FILE__, __LINE__)
static void assert_said_(const attack *a, const char *key, long want, const char *file, int line)
{
        long got = attack_get(a, key, LONG_MIN);
        if (got != want) {
                if (got == LONG_MIN)
                        print_message("%s:%d: attacker %s said nothing about %s\n", file, line, a->mode, key);
                else
                        print_message("%s:%d: attacker %s: %s is %ld (%s), expected %ld (%s)\n", file, line,
                                      a->mode, key, got, got <= 0 && got > INT32_MIN ? raw_code_name((int32_t)got) : "",
                                      want, want <= 0 ? raw_code_name((int32_t)want) : "");
                fail_msg("%s", key);
        }
}

static void assert_said_range(const attack *a, const char *key, long lo, long hi)
{
        long got = attack_get(a, key, LONG_MIN);
        if (got < lo || got > hi) {
                print_message("attacker %s: %s is %ld, expected %ld..%ld\n", a->mode, key, got, lo, hi);
                fail_msg("%s", key);
        }
}

/* ---- tetherd's log ---- */

/* Lines of tetherd's stderr that contain needle and, if pid > 0, name that
 * client ("pid N" not followed by a digit). */
static long log_lines(const char *needle, pid_t pid)
{
        FILE *f = fopen(H.log, "re");
        char line[1024], tag[32];
        long n = 0;
        snprintf(tag, sizeof(tag), "pid %d", (int)pid);
        for (long i = 0; f && i < 10000000 && fgets(line, sizeof(line), f); i++) {
                if (needle && !strstr(line, needle))
                        continue;
                if (pid > 0) {
                        char *p = strstr(line, tag);
                        if (!p || (p[strlen(tag)] >= '0' && p[strlen(tag)] <= '9'))
                                continue;
                }
                n++;
        }
        if (f)
                fclose(f);
        return n;
}

/* The last lines of tetherd's log, from f (NULL: open it now). */
static void log_tail_of(FILE *f, int lines)
{
        if (!f)
                return;
        static char ring[64][512];
        int n = 0;
        char line[512];
        rewind(f);
        for (long i = 0; i < 10000000 && fgets(line, sizeof(line), f); i++)
                snprintf(ring[n++ % 64], sizeof(ring[0]), "%s", line);
        int first = n > lines ? n - lines : 0;
        print_message("---- tetherd's log, last %d of %d lines ----\n", n - first, n);
        for (int i = first; i < n; i++)
                print_message("%s", ring[i % 64]);
}

static void log_tail(int lines)
{
        FILE *f = fopen(H.log, "re");
        log_tail_of(f, lines);
        if (f)
                fclose(f);
}

/* ---- one tetherd per test ---- */

/* One round of everything the polite clients do, and the example driver's
 * sample memory (64 MiB, made on first use by anyone) made now, so that
 * the baseline does not depend on which test touches it first. */
static void warm_up(void)
{
        polites p;
        polites_start(&p);
        for (int i = 0; i < 300 && (atomic_load(&p.user.st->iterations) < 2 || atomic_load(&p.root.st->iterations) < 2);
             i++)
                usleep(10000);
        polites_stop(&p);
        pid_t pid = fork();
        if (pid == 0) {
                alarm(10);
                tether_session *s = NULL;
                tether_value *m = NULL;
                tether_connect *c = NULL;
                uint64_t id = 0;
                uint8_t out[16];
                size_t size = sizeof(out);
                bool ok = tether_session_open(H.sock, &s) == TETHER_SUCCESS &&
                          tether_service_matching("ExampleDriver", &m) == TETHER_SUCCESS &&
                          tether_get_matching_service(s, m, &id) == TETHER_SUCCESS &&
                          tether_service_open(s, id, EXAMPLE_CLIENT, 0, &c) == TETHER_SUCCESS &&
                          tether_call_struct_method(c, EXAMPLE_PRODUCE, NULL, 0, out, &size) == TETHER_SUCCESS;
                tether_service_close(c);
                tether_session_close(s);
                _exit(ok ? 0 : 1);
        }
        int st = 0;
        assert_true(reap(pid, 11000, &st));
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* RLIMIT_NOFILE for the next test's tetherd: NOFILE unless a setup says. */
static int nofile = NOFILE;

static int setup(void **state)
{
        test_passed = false;
        int soft = H.nofile_soft;
        memset(&H, 0, sizeof(H));
        H.nofile = nofile;
        H.nofile_soft = soft;
        H.hello_timeout_ms = HELLO_MS;
        /* TETHER_HOSTILE_HELLO_TIMEOUT=0: run against a tetherd that lacks the
         * option (the tests of the deadline then fail, the others still say
         * something). */
        const char *hello = getenv("TETHER_HOSTILE_HELLO_TIMEOUT");
        if (hello && *hello)
                H.hello_timeout_ms = atoi(hello);
        H.log_to_file = true;
        if (harness_start(&H) != 0) {
                print_message("tetherd did not start (--hello-timeout %d, RLIMIT_NOFILE %d)\n", HELLO_MS, NOFILE);
                log_tail(20);
                if (H.log[0])
                        unlink(H.log);
                rmdir(H.dir);
                return -1;
        }
        warm_up();
        /* Let the warm-up's connections go; the baseline is what stays. */
        usleep(700000);
        base = snapshot();
        print_usage("baseline", &base);
        if (base.fds < 0 || base.opens < 0)
                return -1;
        return 0;
}

static int teardown(void **state)
{
        H.nofile_soft = 0;
        nofile = NOFILE;
        kill_children();
        if (!test_passed)
                log_tail(40);
        /* Kept open across the stop, which removes the file: what tetherd
         * says as it exits (a sanitizer's report) is the reason it failed. */
        FILE *log = fopen(H.log, "re");
        int r = harness_stop(&H);
        if (r != 0) {
                print_message("tetherd exited with %d (0 is a clean exit; under ASan, no leak)\n", r);
                log_tail_of(log, 60);
        }
        if (log)
                fclose(log);
        return r == 0 ? 0 : -1;
}

/* ---- the attacks, one by one ---- */

static void zero_byte_datagrams_are_malformed(void **state)
{
        polites p;
        polites_start(&p);
        attack a;
        attack_start(&a, NOBODY, "zero", NULL);
        attack_finish(&a, 15000);
        polites_stop(&p);
        /* Before HELLO, after it, and on a connection: an unsolicited
         * BadArgument, and the socket goes on working. */
        assert_said(&a, "pre_hello_zero", TETHER_ERR_BAD_ARGUMENT);
        assert_said(&a, "pre_hello_zero_unsolicited", 1);
        assert_said(&a, "hello", TETHER_SUCCESS);
        assert_said(&a, "session_zero", TETHER_ERR_BAD_ARGUMENT);
        assert_said(&a, "session_zero_unsolicited", 1);
        assert_said(&a, "get_entry", TETHER_SUCCESS);
        assert_said(&a, "session_interleaved", 1);
        assert_said(&a, "open", TETHER_SUCCESS);
        assert_said(&a, "conn_zero", TETHER_ERR_BAD_ARGUMENT);
        assert_said(&a, "conn_zero_unsolicited", 1);
        assert_said(&a, "conn_add", TETHER_SUCCESS);
        assert_said(&a, "conn_add_sum", 42);
        assert_said(&a, "conn_interleaved", 1);
        assert_settled();
        test_passed = true;
}

/* Root, in this process, for ms: a new session and a connection each
 * round (raw, bounded waits). The rounds that were refused; the first
 * refusal's code in *ret_first. */
static int root_rounds(int ms, int *ret_rounds, int32_t *ret_first)
{
        static raw_reply rep;
        int refused = 0, n = 0;
        uint64_t svc = 0;
        int64_t end = now_ns() + ms * 1000000LL;
        for (; n < 100000 && now_ns() < end; n++) {
                int s = raw_connect(H.sock, 2000), c = -1;
                int32_t r = s < 0 ? RAW_SEND : raw_hello(s, &rep, 3000);
                if (r == TETHER_SUCCESS && !svc)
                        r = raw_find(s, "ExampleDriver", &svc, &rep, 3000);
                if (r == TETHER_SUCCESS)
                        r = raw_open(s, svc, EXAMPLE_CLIENT, &c, &rep, 3000);
                if (r != TETHER_SUCCESS && !refused++)
                        *ret_first = r;
                if (c >= 0)
                        close(c);
                if (s >= 0)
                        close(s);
                usleep(2000);
        }
        *ret_rounds = n;
        return refused;
}

static void passed_fds_are_closed_and_refused(void **state)
{
        attack a;
        attack_start(&a, NOBODY, "pass-fds", "hold=20000", NULL);
        assert_true(attack_wait_for(&a, "holding", 15000));
        /* Every fd was closed at once: tetherd holds the session and the
         * connection, nothing more. */
        int fds = harness_fd_count(&H);
        print_message("while the attacker holds its session and connection: %d fds (baseline %d)\n", fds, base.fds);
        assert_in_range(fds, 0, base.fds + 2);
        static const char *const refused[] = { "pre_hello_fd",      "session_self",       "session_socket",
                                               "session_253",       "conn_call_fd",       "conn_setbuf_socket",
                                               "conn_setbuf_two",   "conn_setbuf_self",   "conn_setbuf_session",
                                               "conn_253" };
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
                char echo[64];
                snprintf(echo, sizeof(echo), "%s_echo", refused[i]);
                assert_said(&a, refused[i], TETHER_ERR_BAD_ARGUMENT);
                assert_said(&a, echo, 1);
        }
        assert_said(&a, "hello", TETHER_SUCCESS);
        assert_said(&a, "session_after", TETHER_SUCCESS);
        assert_said(&a, "conn_setbuf_ok", TETHER_SUCCESS);
        assert_said(&a, "conn_add", TETHER_SUCCESS);
        assert_said(&a, "conn_add_sum", 11);

        /* 253 fds, over and over, while others open sessions and
         * connections: tetherd's fd table must never be so full that they
         * are refused (root has no budget to be refused by). */
        polites p;
        polites_start(&p);
        attack storm;
        attack_start(&storm, NOBODY, "pass-fds", "storm=1000000", "storm_ms=2500", NULL);
        int rounds = 0;
        int32_t first = TETHER_SUCCESS;
        int turned_away = root_rounds(2500, &rounds, &first);
        attack_finish(&storm, 60000);
        print_message("during the storm root made %d sessions and connections, %d refused (first: %s)\n", rounds,
                      turned_away, raw_code_name(first));
        assert_true(attack_get(&storm, "storm", 0) >= 100);
        assert_said(&storm, "storm_not_bad_argument", 0);
        assert_true(rounds >= 10);
        assert_int_equal(turned_away, 0);
        polites_stop(&p);

        /* The first one leaves with its own sockets in flight to tetherd. */
        attack_finish(&a, 15000);
        assert_said(&a, "fired", 1);
        assert_settled();
        test_passed = true;
}

static void get_entry(wire_msg *m, uint64_t id)
{
        wire_msg_init(m, WIRE_GET_ENTRY, raw_serial(), 0);
        wire_put_u64(m, id);
}

/* A pipe's write end passed n times in one message on sock, with req;
 * then our own copy closed. True if the read end saw the hang-up within
 * 2 s, i.e. tetherd kept no copy. The answer's result in *ret_result. */
static bool passed_and_let_go(int sock, wire_msg *req, int n, int32_t *ret_result)
{
        static raw_reply rep;
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        int fds[8];
        for (int i = 0; i < n && i < 8; i++)
                fds[i] = p[1];
        *ret_result = raw_request(sock, req, fds, n < 8 ? n : 8, &rep, 3000);
        if (rep.fd >= 0)
                close(rep.fd);
        close(p[1]);
        struct pollfd pf = { .fd = p[0], .events = POLLIN };
        bool hung_up = poll(&pf, 1, 2000) == 1 && (pf.revents & POLLHUP);
        close(p[0]);
        return hung_up;
}

/* Root's sessions (one fd each, no budget) opened or closed until tetherd
 * has exactly one fd free; false if that could not be had in 5 s. */
static bool leave_one_free(int *fill, int *n_fill, int max)
{
        static raw_reply rep;
        for (int i = 0; i < 2000; i++) {
                int free_fds = NOFILE - harness_fd_count(&H);
                if (free_fds == 1)
                        return true;
                if (free_fds > 1 && *n_fill < max) {
                        int fd = raw_connect(H.sock, 2000);
                        if (fd < 0 || raw_hello(fd, &rep, 3000) != TETHER_SUCCESS) {
                                if (fd >= 0)
                                        close(fd);
                                return false;
                        }
                        fill[(*n_fill)++] = fd;
                } else if (free_fds < 1 && *n_fill > 0) {
                        close(fill[--*n_fill]);
                        /* tetherd lets go on its next turn */
                        for (int k = 0; k < 200 && NOFILE - harness_fd_count(&H) == free_fds; k++)
                                usleep(10000);
                } else {
                        return false;
                }
        }
        return false;
}

static void fds_are_closed_even_when_tetherd_is_short_of_them(void **state)
{
        static raw_reply rep;
        uint64_t svc = 0, root = 0;
        int s = raw_connect(H.sock, 2000), c = -1;
        assert_int_equal(raw_hello(s, &rep, 3000), TETHER_SUCCESS);
        memcpy(&root, rep.body + 8, 8);
        assert_int_equal(raw_find(s, "ExampleDriver", &svc, &rep, 3000), TETHER_SUCCESS);
        assert_int_equal(raw_open(s, svc, EXAMPLE_CLIENT, &c, &rep, 3000), TETHER_SUCCESS);
        /* With one fd free, a message with three gets one installed and the
         * rest dropped by the kernel (MSG_CTRUNC): that one must be closed
         * too. Each case starts from one free fd. */
        enum { MAX = NOFILE };
        int fill[MAX], n_fill = 0;
        wire_msg m;
        int32_t r_conn = 0, r_session = 0;
        assert_true(leave_one_free(fill, &n_fill, MAX));
        wire_msg_init(&m, WIRE_SET_BUFFER, raw_serial(), 0);
        wire_put_u32(&m, 0);
        wire_put_u32(&m, 0);
        bool conn_let_go = passed_and_let_go(c, &m, 3, &r_conn);
        assert_true(leave_one_free(fill, &n_fill, MAX));
        get_entry(&m, root);
        bool session_let_go = passed_and_let_go(s, &m, 3, &r_session);
        print_message("%d root sessions left tetherd one free fd; three fds passed on a connection: %s, %s; "
                      "on a session: %s, %s\n",
                      n_fill, raw_code_name(r_conn), conn_let_go ? "closed" : "KEPT", raw_code_name(r_session),
                      session_let_go ? "closed" : "KEPT");
        for (int i = 0; i < n_fill; i++)
                close(fill[i]);
        close(c);
        close(s);
        assert_int_equal(r_conn, TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(r_session, TETHER_ERR_BAD_ARGUMENT);
        assert_true(conn_let_go);
        assert_true(session_let_go);
        assert_settled();
        test_passed = true;
}

static void unidentified_sockets_are_limited_and_timed_out(void **state)
{
        polites p;
        polites_start(&p);
        attack a;
        attack_start(&a, NOBODY, "silent", "n=20", "hold=5000", NULL);
        attack_finish(&a, 15000);
        attack r;
        attack_start(&r, 0, "silent", "n=20", "hold=5000", NULL);
        attack_finish(&r, 15000);
        polites_stop(&p);

        /* Eight may wait for their HELLO until the deadline; the ninth and
         * later are refused at once. Every one is told, then closed. */
        assert_said(&a, "connected", 20);
        assert_said(&a, "no_resources", 12);
        assert_said(&a, "timeout", 8);
        assert_said(&a, "other", 0);
        assert_said(&a, "still_open", 0);
        assert_said(&a, "closed_without_error", 0);
        assert_said_range(&a, "max_no_resources_ms", 0, 500);
        assert_said_range(&a, "min_timeout_ms", HELLO_MS - 50, HELLO_MS + 1500);
        assert_said_range(&a, "max_timeout_ms", HELLO_MS - 50, HELLO_MS + 1500);
        assert_said_range(&a, "max_error_to_close_ms", 0, 500);
        /* Root is not limited in number, only in time. */
        assert_said(&r, "connected", 20);
        assert_said(&r, "no_resources", 0);
        assert_said(&r, "timeout", 20);
        assert_said(&r, "still_open", 0);
        assert_settled();
        test_passed = true;
}

/* In a child as uid: a session, k connections, a call on each. True if
 * all of it went right within 10 s; else says what did not. */
static bool other_uid_gets_service(uid_t uid, int k)
{
        shared_result *res = shared_alloc(sizeof(*res));
        pid_t pid = fork();
        if (pid == 0) {
                drop_to(uid);
                alarm(10);
                tether_session *s = NULL;
                tether_value *m = NULL;
                uint64_t id = 0;
                res->v = 1000; /* the step: 1000 session, 1001 find, i open i, 2000 + i call i */
                res->r = tether_session_open(H.sock, &s);
                if (res->r == TETHER_SUCCESS) {
                        res->v = 1001;
                        tether_service_matching("ExampleDriver", &m);
                        res->r = tether_get_matching_service(s, m, &id);
                }
                for (int i = 0; i < k && res->r == TETHER_SUCCESS; i++) {
                        tether_connect *c = NULL;
                        uint64_t in[2] = { (uint64_t)i, 1000 }, out = 0;
                        uint32_t n = 1;
                        res->v = (uint64_t)i;
                        res->r = tether_service_open(s, id, EXAMPLE_CLIENT, 0, &c);
                        if (res->r == TETHER_SUCCESS) {
                                res->v = 2000u + (uint64_t)i;
                                res->r = tether_call_scalar_method(c, EXAMPLE_ADD, in, 2, &out, &n);
                                if (res->r == TETHER_SUCCESS && out != (uint64_t)i + 1000)
                                        res->r = TETHER_ERR_INTERNAL;
                        }
                }
                tether_session_close(s);
                atomic_store(&res->done, 1);
                _exit(0);
        }
        reap(pid, 12000, NULL);
        bool ok = atomic_load(&res->done) && res->r == TETHER_SUCCESS;
        if (!ok) {
                uint64_t v = res->v;
                char step[48];
                if (v == 1000)
                        snprintf(step, sizeof(step), "tether_session_open");
                else if (v == 1001)
                        snprintf(step, sizeof(step), "finding ExampleDriver");
                else if (v >= 2000)
                        snprintf(step, sizeof(step), "EXAMPLE_ADD on connection %llu", (unsigned long long)(v - 2000));
                else
                        snprintf(step, sizeof(step), "tether_service_open %llu", (unsigned long long)v);
                print_message("uid %d, %d connections: %s %s\n", (int)uid, k, step,
                              atomic_load(&res->done) ? tether_ret_name(res->r) : "hung (killed after 10 s)");
        }
        munmap(res, sizeof(*res));
        return ok;
}

/* What tether_session_open returns to uid (1 if it hung). */
static tether_ret_t session_open_as(uid_t uid)
{
        shared_result *res = shared_alloc(sizeof(*res));
        pid_t pid = fork();
        if (pid == 0) {
                drop_to(uid);
                alarm(10);
                tether_session *s = NULL;
                res->r = tether_session_open(H.sock, &s);
                tether_session_close(s);
                atomic_store(&res->done, 1);
                _exit(0);
        }
        reap(pid, 12000, NULL);
        tether_ret_t r = atomic_load(&res->done) ? res->r : 1;
        munmap(res, sizeof(*res));
        return r;
}

static void a_uid_gets_only_a_part_of_the_fd_budget(void **state)
{
        polites p;
        polites_start(&p);
        attack a;
        attack_start(&a, NOBODY, "hog", "sessions=64", "opens=16", "hold=20000", NULL);
        assert_true(attack_wait_for(&a, "holding", 30000));
        /* While nobody holds all it could get, another user and root are
         * still served, connections included. */
        assert_true(other_uid_gets_service(USER, 16));
        assert_true(other_uid_gets_service(0, 16));
        tether_ret_t lib = session_open_as(NOBODY);
        print_message("tether_session_open as nobody past its budget: %s\n", tether_ret_name(lib));
        int lib_refusal = lib == TETHER_ERR_NO_RESOURCES || lib == TETHER_ERR_IPC;
        attack_finish(&a, 15000);
        polites_stop(&p);
        long got = attack_get(&a, "sessions_ok", 0) + attack_get(&a, "opens_ok", 0);
        print_message("nobody got %ld sessions and connections of tetherd's %d fds\n", got, NOFILE);
        assert_true(attack_get(&a, "sessions_refused", 0) + attack_get(&a, "opens_refused", 0) >= 1);
        assert_in_range(got, 1, NOFILE * 3 / 4);
        assert_said(&a, "sessions_other", 0);
        assert_said(&a, "opens_other", 0);
        assert_said(&a, "sessions_refused_closed", attack_get(&a, "sessions_refused", -1));
        /* Past its budget, a port and a new session are refused with an
         * error; libtether says the same. */
        assert_said(&a, "port_after", TETHER_ERR_NO_RESOURCES);
        assert_said_range(&a, "ports_ok", 0, 2); /* what its last refusals left */
        assert_said(&a, "extra_session", TETHER_ERR_NO_RESOURCES);
        assert_int_equal(lib_refusal, 1);
        assert_settled();
        test_passed = true;
}

/* In this process: connect now, HELLO later (raw, bounded). */
static void fd_exhaustion_never_spins_or_hangs(void **state)
{
        /* Root may take everything: tetherd ends up at its fd limit. */
        attack a;
        attack_start(&a, 0, "hog", "sessions=8", "opens=256", "hold=30000", NULL);
        assert_true(attack_wait_for(&a, "holding", 30000));
        print_message("root holds %ld sessions and %ld connections; tetherd has %d fds\n",
                      attack_get(&a, "sessions_ok", 0), attack_get(&a, "opens_ok", 0), harness_fd_count(&H));
        /* Clients knocking at a daemon that cannot accept: */
        enum { KNOCK = 4 };
        int fd[KNOCK];
        for (int i = 0; i < KNOCK; i++)
                fd[i] = raw_connect(H.sock, 2000);
        /* ... must not make it spin: a fraction of a core at most. */
        long t0 = cpu_ticks();
        int64_t w0 = now_ns();
        usleep(1500000);
        long ticks = cpu_ticks() - t0;
        double cpu = ticks / (double)sysconf(_SC_CLK_TCK) / ((now_ns() - w0) / 1e9);
        print_message("tetherd used %.0f%% of a core while clients waited\n", cpu * 100);
        /* ... and each gets an answer, a session or an error, never silence. */
        static raw_reply rep;
        int32_t knock[KNOCK];
        for (int i = 0; i < KNOCK; i++) {
                knock[i] = fd[i] < 0 ? RAW_SEND : raw_hello(fd[i], &rep, 3000);
                print_message("knocking client %d: %s\n", i, raw_code_name(knock[i]));
                if (fd[i] >= 0)
                        close(fd[i]);
        }
        attack n;
        attack_start(&n, NOBODY, "hog", "sessions=2", "opens=0", "hold=0", NULL);
        attack_finish(&n, 20000);
        assert_in_range((long)(cpu * 100), 0, 25);
        /* With drivers in hosts the connections' fds are the hosts', so
         * tetherd is not at its limit: the knockers are accepted, and the
         * HELLO deadline answers them while they wait. Either way: an answer. */
        const char *in_process = getenv("TETHER_IN_PROCESS");
        bool hosts = !(in_process && !strcmp(in_process, "1"));
        for (int i = 0; i < KNOCK; i++)
                if (knock[i] != TETHER_SUCCESS && knock[i] != TETHER_ERR_NO_RESOURCES &&
                    !(hosts && knock[i] == TETHER_ERR_TIMEOUT))
                        fail_msg("a client of a daemon at its fd limit got %s", raw_code_name(knock[i]));
        assert_said(&n, "sessions_other", 0);
        assert_said(&n, "sessions_connect_failed", 0);
        attack_finish(&a, 15000);
        assert_said(&a, "sessions_other", 0);
        /* Once root lets go (and tetherd has seen it go), everyone is
         * served again. */
        assert_settled();
        assert_true(other_uid_gets_service(USER, 4));
        test_passed = true;
}

static void clients_that_do_not_read_are_dropped(void **state)
{
        polites p;
        polites_start(&p);
        attack a, c;
        /* One uid, one budget: the call flood takes its connection first. */
        attack_start(&c, NOBODY, "call-flood", "n=20000", "hold=3000", NULL);
        assert_true(attack_wait_for(&c, "holding", 15000));
        attack_start(&a, NOBODY, "open-flood", "n=400", "hold=3000", NULL);
        assert_true(attack_wait_for(&a, "holding", 15000));
        /* Meanwhile others, the same service included, are served. */
        assert_true(other_uid_gets_service(USER, 8));
        attack_finish(&a, 20000);
        attack_finish(&c, 20000);
        polites_stop(&p);
        /* OPENs: it never got all it asked for, refused past its budget or
         * dropped for not reading. */
        assert_true(attack_get(&a, "sent", 0) >= 1);
        assert_in_range(attack_get(&a, "ok", -1), 0, NOFILE / 4);
        assert_true(attack_get(&a, "no_resources", 0) >= 1 || attack_get(&a, "eof", 0) == 1);
        /* Calls: the connection was shut down, not waited for; its session
         * still answers. */
        assert_said(&c, "eof", 1);
        assert_in_range(attack_get(&c, "replies", -1), 0, attack_get(&c, "sent", 0) - 1);
        assert_said(&c, "session_after", TETHER_SUCCESS);
        assert_settled();
        test_passed = true;
}

static void fds_in_flight_cannot_keep_a_session_alive(void **state)
{
        /* Each round leaves a session whose own socket, holding an unread
         * OPEN reply, is queued to tetherd behind an empty datagram and a
         * flood of unread requests; the client is gone. */
        attack a;
        attack_start(&a, NOBODY, "cycle", "rounds=4", NULL);
        attack_finish(&a, 30000);
        assert_said(&a, "opened", 4);
        assert_true(attack_get(&a, "sent", 0) >= 4);
        assert_settled();
        test_passed = true;
}

static void async_calls_are_bounded(void **state)
{
        polites p;
        polites_start(&p);
        attack a;
        attack_start(&a, NOBODY, "async-flood", "conns=5", "n=70", "delay=10000", NULL);
        attack_finish(&a, 30000);
        polites_stop(&p);
        assert_said(&a, "port", TETHER_SUCCESS);
        assert_said(&a, "delay_over", TETHER_ERR_BAD_ARGUMENT);
        /* 64 per connection, 256 per session. */
        for (int k = 0; k < 4; k++) {
                char key[32];
                snprintf(key, sizeof(key), "conn%d_ok", k);
                assert_said(&a, key, 64);
                snprintf(key, sizeof(key), "conn%d_no_resources", k);
                assert_said(&a, key, 6);
        }
        assert_said(&a, "conn4_ok", 0);
        assert_said(&a, "conn4_no_resources", 70);
        assert_said(&a, "other", 0);
        assert_settled();
        test_passed = true;
}

static void unread_port_does_not_stall_anyone(void **state)
{
        polites p;
        polites_start(&p);
        attack a;
        /* Every result is dropped at the full port, and each closes its
         * reference all the same: all 3000 are accepted. (Completions run
         * on the driver's work loop, calls on the connection's own thread:
         * a call refused while the loop catches up is tried again.) */
        attack_start(&a, NOBODY, "async-flood", "conns=1", "n=3000", "delay=0", "retry=2000", NULL);
        attack_finish(&a, 60000);
        polites_stop(&p);
        assert_said(&a, "port", TETHER_SUCCESS);
        assert_said(&a, "other", 0);
        assert_said(&a, "conn0_ok", 3000);
        /* A full port is said once, not per lost message. */
        long lines = log_lines(NULL, a.pid) + log_lines("notification port", 0);
        print_message("tetherd wrote %ld lines about the attacker\n", lines);
        assert_in_range(lines, 0, 12);
        assert_settled();
        test_passed = true;
}

static void ool_bomb_is_refused_before_any_copy(void **state)
{
        monitor m;
        monitor_start(&m);
        attack a;
        attack_start(&a, NOBODY, "ool-bomb", "hold=500", NULL);
        attack_finish(&a, 60000);
        monitor_stop(&m);
        assert_said(&a, "setbuf", TETHER_SUCCESS);
        assert_said(&a, "setbuf_legacy", TETHER_SUCCESS);
        assert_said(&a, "add_ool", TETHER_ERR_BAD_ARGUMENT);
        assert_said_range(&a, "add_ool_ms", 0, 99);
        assert_said(&a, "fixed_ool", TETHER_ERR_BAD_ARGUMENT);
        assert_said_range(&a, "fixed_ool_ms", 0, 99);
        assert_said(&a, "setbuf_small", TETHER_SUCCESS);
        assert_said(&a, "over_buffer", TETHER_ERR_BAD_ARGUMENT);
        assert_said(&a, "add_after", TETHER_SUCCESS);
        assert_said(&a, "add_after_sum", 5);
        /* Nothing was copied, so nothing grew. */
        assert_in_range(m.peak_rss_kb, 0, base.rss_kb + RSS_MARGIN_KB);
        assert_settled();
        test_passed = true;
}

static void publishing_is_for_root_and_bounded(void **state)
{
        attack a;
        attack_start(&a, NOBODY, "publish", "n=20", NULL);
        attack_finish(&a, 20000);
        assert_said(&a, "not_privileged", 20);
        assert_said(&a, "ok", 0);
        /* Root may, up to 64 nubs per service. */
        attack r;
        attack_start(&r, 0, "publish", "n=70", "remove=1", NULL);
        attack_finish(&r, 60000);
        assert_said(&r, "ok", 64);
        assert_said(&r, "no_resources", 6);
        assert_said(&r, "removed", 64);
        assert_settled();
        test_passed = true;
}

static void warnings_about_a_client_are_rate_limited(void **state)
{
        polites p;
        polites_start(&p);
        attack a;
        attack_start(&a, NOBODY, "log-spam", "seconds=3", "conns=3", NULL);
        attack_finish(&a, 20000);
        polites_stop(&p);
        /* The count of what was left out may come when the client goes or
         * when its window ends: give it one window. */
        long suppressed = 0;
        for (int i = 0; i < 60 && !(suppressed = log_lines("messages suppressed", 0)); i++)
                usleep(100000);
        long lines = log_lines(NULL, a.pid);
        print_message("%ld malformed messages earned %ld lines about the client, %ld 'suppressed' lines\n",
                      attack_get(&a, "sent", 0), lines, suppressed);
        /* It really flooded. */
        assert_true(attack_get(&a, "sent", 0) >= 1000);
        /* About 10 lines per 5 s per client (3 s may straddle two windows),
         * whatever the number of its sockets. */
        assert_in_range(lines, 1, 2 * 12);
        assert_true(suppressed >= 1);
        /* It read every answer, so it was not dropped as a client that
         * does not. */
        assert_said(&a, "closed_by_tetherd", 0);
        assert_settled();
        test_passed = true;
}

static void warnings_stay_limited_when_a_client_reconnects(void **state)
{
        /* Twelve malformed messages a session, then a new session: one
         * client all the same, so one limit. */
        attack a;
        attack_start(&a, NOBODY, "log-cycle", "seconds=3", NULL);
        attack_finish(&a, 20000);
        usleep(200000);
        long lines = log_lines(NULL, a.pid);
        print_message("%ld sessions, %ld malformed messages: %ld lines about the client\n",
                      attack_get(&a, "cycles", 0), attack_get(&a, "sent", 0), lines);
        assert_true(attack_get(&a, "cycles", 0) >= 20);
        assert_in_range(lines, 1, 2 * 12);
        assert_settled();
        test_passed = true;
}

static void a_full_port_is_reported_within_the_limit(void **state)
{
        /* A port kept full, with room made for one message at a time: each
         * time it fills again is one more "full" for tetherd to say. */
        attack a;
        attack_start(&a, NOBODY, "port-spam", "seconds=3", NULL);
        attack_finish(&a, 30000);
        usleep(200000);
        long lines = log_lines(NULL, a.pid) + log_lines("notification port", 0);
        print_message("%ld completions, %ld read: %ld lines about the client's port\n", attack_get(&a, "calls", 0),
                      attack_get(&a, "read_back", 0), lines);
        assert_said(&a, "port", TETHER_SUCCESS);
        assert_true(attack_get(&a, "read_back", 0) >= 20);
        assert_in_range(lines, 0, 2 * 12);
        assert_settled();
        test_passed = true;
}

/* ---- a polite client that streams ---- */

typedef struct streamer_state {
        atomic_int stop, ready, exited;
        atomic_long rounds, results, failures;
        char fail_detail[128];
        int64_t slowest_ns;            /* the longest a round took */
} streamer_state;

typedef struct streamer {
        pid_t pid;
        streamer_state *st;
} streamer;

typedef struct stream_round {
        uint64_t got, want;
        bool wrong;
} stream_round;

static void on_stream_result(void *refcon, tether_ret_t r, const uint64_t *args, uint32_t n)
{
        stream_round *k = refcon;
        k->got++;
        if (r != TETHER_SUCCESS || n != EXAMPLE_STREAM_ARGS || args[EXAMPLE_STREAM_SEQ] != k->got ||
            args[EXAMPLE_STREAM_COUNT] != k->want)
                k->wrong = true;
}

#define STREAM_RESULTS 100

static void streamer_fail(streamer_state *st, const char *fmt, ...)
{
        if (atomic_fetch_add(&st->failures, 1) == 0) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(st->fail_detail, sizeof(st->fail_detail), fmt, ap);
                va_end(ap);
        }
}

/* As uid 1000, over and over: a stream of STREAM_RESULTS results, 1 ms
 * apart, each of which must arrive, in order, on a port it reads. */
static void streamer_main(streamer_state *st)
{
        drop_to(USER);
        alarm(120);
        tether_session *s = NULL;
        tether_connect *c = NULL;
        tether_notification_port *p = NULL;
        tether_value *m = NULL;
        uint64_t id = 0;
        tether_ret_t r = tether_session_open(H.sock, &s);
        if (r == TETHER_SUCCESS)
                r = tether_service_matching("ExampleDriver", &m);
        if (r == TETHER_SUCCESS)
                r = tether_get_matching_service(s, m, &id);
        if (r == TETHER_SUCCESS)
                r = tether_service_open(s, id, EXAMPLE_CLIENT, 0, &c);
        if (r == TETHER_SUCCESS)
                r = tether_notification_port_create(s, &p);
        tether_value_unref(m);
        if (r != TETHER_SUCCESS)
                streamer_fail(st, "setup: %s", tether_ret_name(r));
        atomic_store(&st->ready, 1);
        for (long it = 0; r == TETHER_SUCCESS && it < 100000 && !atomic_load(&st->stop); it++) {
                stream_round k = { .want = STREAM_RESULTS };
                uint64_t in[2] = { STREAM_RESULTS, 1 };
                int64_t t0 = now_ns();
                r = tether_call_async_method(c, EXAMPLE_STREAM, p, on_stream_result, &k, in, 2, NULL, 0, NULL, NULL,
                                             NULL, NULL);
                if (r != TETHER_SUCCESS) {
                        streamer_fail(st, "round %ld: EXAMPLE_STREAM returned %s", it, tether_ret_name(r));
                        break;
                }
                struct pollfd pfd = { .fd = tether_notification_port_get_fd(p), .events = POLLIN };
                while (k.got < k.want && now_ns() - t0 < 2 * STREAM_SLOW_NS)
                        if (poll(&pfd, 1, 50) > 0)
                                tether_notification_port_dispatch(p);
                int64_t d = now_ns() - t0;
                st->slowest_ns = d > st->slowest_ns ? d : st->slowest_ns;
                atomic_fetch_add(&st->results, (long)k.got);
                if (k.got != k.want || k.wrong) {
                        streamer_fail(st, "round %ld: %llu of %u results%s in %.1f ms", it,
                                      (unsigned long long)k.got, STREAM_RESULTS, k.wrong ? ", some wrong" : "",
                                      d / 1e6);
                        break;
                }
                atomic_fetch_add(&st->rounds, 1);
        }
        tether_notification_port_destroy(p);
        tether_service_close(c);
        tether_session_close(s);
        atomic_store(&st->exited, 1);
        _exit(0);
}

static void streamer_start(streamer *sp)
{
        sp->st = shared_alloc(sizeof(*sp->st));
        sp->pid = fork();
        assert_true(sp->pid >= 0);
        if (sp->pid == 0)
                streamer_main(sp->st);
        track(sp->pid);
        for (int i = 0; i < 500 && !atomic_load(&sp->st->ready); i++)
                usleep(10000);
}

/* Every round whole and in order, and none slower than STREAM_SLOW_NS. */
static void streamer_stop(streamer *sp)
{
        streamer_state *st = sp->st;
        atomic_store(&st->stop, 1);
        bool exited = reap(sp->pid, 15000, NULL);
        print_message("polite streamer (uid 1000): %ld rounds, %ld results, slowest round %.1f ms\n",
                      atomic_load(&st->rounds), atomic_load(&st->results), st->slowest_ns / 1e6);
        if (atomic_load(&st->failures)) {
                print_message("polite streamer: %s\n", st->fail_detail);
                fail_msg("the polite streamer lost results");
        }
        if (!exited || !atomic_load(&st->exited))
                fail_msg("the polite streamer did not finish");
        assert_true(atomic_load(&st->rounds) >= 1);
        assert_in_range(st->slowest_ns, 0, STREAM_SLOW_NS);
        munmap(st, sizeof(*st));
}

/* The example driver's process: its host, or tetherd under --in-process. */
static pid_t driver_pid(void)
{
        long pid = example_query(Q_HOST_PID);
        assert_true(pid >= 0);
        return pid ? (pid_t)pid : H.pid;
}

/* ---- connections: a thread each in the driver's process ---- */

/* A budget of fds that lets one uid reach the driver's own bound. */
#define MANY_FDS 4096

static int setup_many_fds(void **state)
{
        nofile = MANY_FDS;
        return setup(state);
}

/* Threads of the example driver's process, sampled while an attack holds. */
typedef struct thread_watch {
        pthread_t thread;
        pid_t pid;
        atomic_int stop;
        long peak;
} thread_watch;

static void *thread_watch_main(void *arg)
{
        thread_watch *w = arg;
        while (!atomic_load(&w->stop)) {
                long n = status_field_of(w->pid, "Threads");
                if (n > w->peak)
                        w->peak = n;
                usleep(5000);
        }
        return NULL;
}

/* Each connection is a thread of the driver's (its user client's, in the
 * service's gate for each call): one uid may hold 256 of one service's,
 * past them NoResources from the driver's process, and another user and
 * root are still served meanwhile. The bound is the driver runtime's, per
 * service and uid, whatever tetherd's own (three sessions of 200: none
 * reaches tetherd's 256 per session, so the refusals are the runtime's). */
static void connections_per_uid_are_bounded_in_the_driver(void **state)
{
        pid_t drv = driver_pid();
        long drv_threads = status_field_of(drv, "Threads");
        polites p;
        polites_start(&p);
        thread_watch w = { .pid = drv, .peak = drv_threads };
        assert_int_equal(pthread_create(&w.thread, NULL, thread_watch_main, &w), 0);
        attack a;
        attack_start(&a, NOBODY, "hog", "sessions=3", "opens=200", "hold=30000", NULL);
        assert_true(attack_wait_for(&a, "holding", 60000));
        assert_true(other_uid_gets_service(USER, 16));
        assert_true(other_uid_gets_service(0, 16));
        attack_finish(&a, 20000);
        atomic_store(&w.stop, 1);
        pthread_join(w.thread, NULL);
        polites_stop(&p);
        print_message("the driver's process: %ld threads before, %ld at most while nobody held its connections\n",
                      drv_threads, w.peak);
        assert_said(&a, "sessions_ok", 3);
        assert_said(&a, "opens_ok", 256);
        assert_said(&a, "opens_refused", 2);
        assert_said(&a, "opens_other", 0);
        /* A thread per connection held, and no more: nobody's 256, the
         * polite clients' (a few at a time, 16 each for the other two), and
         * the few a loop keeps a moment for the next open (which "before"
         * may have counted, and nobody's may have taken). */
        assert_in_range(w.peak, 256, drv_threads + 256 + 40);
        /* Let go, they are joined (those kept for the next open, once none
         * comes): the process is back where it was. */
        long now = status_field_of(drv, "Threads");
        for (int waited = 0; waited <= SETTLE_MS && now > drv_threads; waited += 100) {
                usleep(100000);
                now = status_field_of(drv, "Threads");
        }
        assert_in_range(now, 1, drv_threads);
        assert_settled();
        test_passed = true;
}

static bool streams_ended(void)
{
        for (int waited = 0; waited <= SETTLE_MS; waited += 100) {
                if (example_query(Q_STREAMS_RUNNING) == 0)
                        return true;
                usleep(100000);
        }
        return false;
}

static void streams_to_an_unread_port_do_not_hurt_others(void **state)
{
        pid_t drv = driver_pid();
        int drv_fds = fd_count_of(drv);
        long drv_rss = status_field_of(drv, "VmRSS");
        polites p;
        polites_start(&p);
        streamer sp;
        streamer_start(&sp);
        /* 256 streams sending as fast as the driver can, to a port nobody
         * reads; and streams cancelled and opened again at once. */
        attack a, b;
        attack_start(&a, NOBODY, "stream-flood", "conns=5", "n=70", "interval=0", "hold=3000", NULL);
        attack_start(&b, NOBODY, "stream-flood", "conns=1", "n=64", "interval=0", "cancel=1", "hold=3000", NULL);
        assert_true(attack_wait_for(&a, "holding", 30000));
        long peak = 0;
        for (int i = 0; i < 25; i++) {
                long rss = status_field_of(drv, "VmRSS");
                peak = rss > peak ? rss : peak;
                usleep(100000);
        }
        attack_finish(&a, 30000);
        attack_finish(&b, 30000);
        streamer_stop(&sp);
        polites_stop(&p);
        assert_said(&a, "port", TETHER_SUCCESS);
        for (int k = 0; k < 4; k++) {
                char key[32];
                snprintf(key, sizeof(key), "conn%d_ok", k);
                assert_said(&a, key, 64);
                snprintf(key, sizeof(key), "conn%d_no_resources", k);
                assert_said(&a, key, 6);
        }
        assert_said(&a, "conn4_ok", 0);
        assert_said(&a, "conn4_no_resources", 70);
        assert_said(&a, "other", 0);
        assert_said(&b, "other", 0);
        assert_true(attack_get(&b, "cancelled", 0) >= 64);
        assert_in_range(attack_get(&b, "reopened", -1), 0, attack_get(&b, "cancelled", 0));
        /* Nothing was queued for the attacker while its streams ran. Not
         * under ASan: a driver host runs with a clean environment, so with
         * ASan's default quarantine (256 MiB), and each result's timer is a
         * small allocation it keeps aside once freed. */
        print_message("driver (pid %d): %ld KiB RSS before, %ld at the peak of the attack\n", (int)drv, drv_rss,
                      peak);
        if (!UNDER_ASAN)
                assert_in_range(peak, 0, drv_rss + RSS_MARGIN_KB);
        /* Its streams end at their next result, once it is gone. */
        assert_true(streams_ended());
        assert_in_range(fd_count_of(drv), 0, drv_fds);
        assert_settled();
        test_passed = true;
}

static void closed_ports_leave_no_fds_in_the_driver(void **state)
{
        pid_t drv = driver_pid();
        int drv_fds = fd_count_of(drv);
        attack a;
        attack_start(&a, NOBODY, "port-churn", "rounds=300", "hold=10000", NULL);
        assert_true(attack_wait_for(&a, "holding", 60000));
        /* Its session still open: the driver keeps no fd of a port whose
         * client closed it, past the next one it is told of. It holds the
         * attacker's connection and the last port it was told of, not 300
         * ports (before, 250: the host's fd limit, at which every client's
         * async call to it failed). */
        int now = fd_count_of(drv);
        /* The last ports' hang-ups may still wait to be read on a loaded
         * machine: give them a moment, not a pass (300 ports would stay). */
        for (int i = 0; i < 100 && now > drv_fds + 2; i++) {
                usleep(50 * 1000);
                now = fd_count_of(drv);
        }
        attack_finish(&a, 60000);
        assert_said(&a, "rounds", 300);
        assert_said(&a, "other", 0);
        print_message("driver (pid %d): %d fds before, %d after 300 ports came and went\n", (int)drv, drv_fds, now);
        assert_in_range(now, 0, drv_fds + 2);
        assert_settled();
        test_passed = true;
}

static void every_attacker_at_once(void **state)
{
        polites p;
        polites_start(&p);
        monitor m;
        monitor_start(&m);
        enum { N = 15 };
        static attack a[N];
        attack_start(&a[0], NOBODY, "silent", "n=20", "hold=3000", NULL);
        attack_start(&a[1], NOBODY, "open-flood", "n=300", "hold=2000", NULL);
        attack_start(&a[2], NOBODY, "zero", NULL);
        attack_start(&a[3], NOBODY, "pass-fds", "storm=100", NULL);
        attack_start(&a[4], NOBODY, "async-flood", "conns=5", "n=70", "delay=10000", NULL);
        attack_start(&a[5], NOBODY, "ool-bomb", NULL);
        attack_start(&a[6], NOBODY, "publish", "n=20", NULL);
        attack_start(&a[7], NOBODY, "log-spam", "seconds=3", NULL);
        attack_start(&a[8], NOBODY, "hog", "sessions=16", "opens=8", "hold=2000", NULL);
        attack_start(&a[9], NOBODY, "call-flood", "n=20000", "hold=1000", NULL);
        attack_start(&a[10], NOBODY, "cycle", "rounds=2", NULL);
        attack_start(&a[11], NOBODY, "log-cycle", "seconds=3", NULL);
        attack_start(&a[12], NOBODY, "port-spam", "seconds=3", NULL);
        attack_start(&a[13], NOBODY, "async-flood", "conns=1", "n=2000", "delay=0", NULL);
        attack_start(&a[14], NOBODY, "stream-flood", "conns=1", "n=64", "interval=0", "cancel=1", "hold=2000", NULL);
        for (int i = 0; i < N; i++)
                attack_finish(&a[i], 60000);
        monitor_stop(&m);
        polites_stop(&p);
        assert_true(daemon_alive());
        assert_settled();
        test_passed = true;
}

static int setup_soft_limit(void **state)
{
        H.nofile_soft = 64;
        return setup(state);
}

static void fd_limit_is_raised_to_the_hard_limit(void **state)
{
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/limits", (int)H.pid);
        FILE *f = fopen(path, "re");
        assert_non_null(f);
        long soft = -1, hard = -1;
        while (fgets(line, sizeof(line), f))
                if (!strncmp(line, "Max open files", 14))
                        sscanf(line + 14, "%ld %ld", &soft, &hard);
        fclose(f);
        print_message("tetherd started with RLIMIT_NOFILE {64, %d}; now {%ld, %ld}\n", NOFILE, soft, hard);
        assert_int_equal(hard, NOFILE);
        assert_int_equal(soft, NOFILE);
        test_passed = true;
}

/* ---- the fuzz client ---- */

static void fuzz_client_cannot_hurt_others(void **state)
{
        const char *seed = getenv("TETHER_FUZZ_SEED"), *secs = getenv("TETHER_FUZZ_SECONDS");
        char seed_arg[40], secs_arg[40];
        snprintf(seed_arg, sizeof(seed_arg), "seed=%s", seed && *seed ? seed : "1");
        snprintf(secs_arg, sizeof(secs_arg), "seconds=%s", secs && *secs ? secs : "20");
        long seconds = strtol(secs_arg + 8, NULL, 10);
        print_message("fuzz client: %s %s (set TETHER_FUZZ_SEED / TETHER_FUZZ_SECONDS to change)\n", seed_arg,
                      secs_arg);
        polites p;
        polites_start(&p);
        monitor m;
        monitor_start(&m);
        const char *prog = getenv("TETHER_FUZZ_CLIENT");
        assert_non_null(prog);
        attack f;
        const char *args[] = { seed_arg, secs_arg, NULL };
        spawn(&f, prog, NOBODY, args);
        attack_finish(&f, (int)(seconds * 1000) + 60000);
        monitor_stop(&m);
        polites_stop(&p);
        assert_true(attack_get(&f, "ops", 0) >= 1);
        assert_true(daemon_alive());
        assert_settled();
        test_passed = true;
}

int main(int argc, char **argv)
{
        signal(SIGPIPE, SIG_IGN);
        if (getuid() != 0) {
                /* Dropping to other uids is the point of the suite. */
                printf("test-hostile: needs root (to run clients as uid %d and %d); skipped\n", USER, NOBODY);
                return 77;
        }
        /* The attackers run as nobody: a build tree nobody cannot reach
         * would fail every test for a reason that has nothing to do with
         * tetherd. Say so once instead. */
        const char *progs[] = { getenv("TETHER_ATTACKER"), getenv("TETHER_FUZZ_CLIENT") };
        for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
                if (!progs[i]) {
                        printf("test-hostile: set TETHER_ATTACKER and TETHER_FUZZ_CLIENT (meson does)\n");
                        return 1;
                }
                pid_t pid = fork();
                if (pid == 0) {
                        drop_to(NOBODY);
                        _exit(access(progs[i], X_OK) == 0 ? 0 : 1);
                }
                int st = 0;
                waitpid(pid, &st, 0);
                if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                        printf("test-hostile: uid %d cannot run %s (is the build tree readable by others?)\n",
                               NOBODY, progs[i]);
                        return 1;
                }
        }
        if (UNDER_ASAN) {
                /* ASan keeps freed memory aside (256 MiB by default) to catch
                 * uses after free: that would be all the RSS growth there is
                 * to see. A small quarantine leaves RSS meaningful; leaks are
                 * LeakSanitizer's to find, at tetherd's exit. */
                const char *o = getenv("ASAN_OPTIONS");
                char opts[1024];
                snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=16", o && *o ? o : "", o && *o ? ":" : "");
                setenv("ASAN_OPTIONS", opts, 1);
        }
        /* TETHER_HOSTILE_ONLY=glob: just the tests whose names match. */
        const char *only = getenv("TETHER_HOSTILE_ONLY");
        if (only && *only)
                cmocka_set_test_filter(only);
        if (argc > 1 && !strcmp(argv[1], "--fuzz")) {
                fuzzing = true;
                const struct CMUnitTest fuzz[] = {
                        cmocka_unit_test_setup_teardown(fuzz_client_cannot_hurt_others, setup, teardown),
                };
                return cmocka_run_group_tests(fuzz, NULL, NULL);
        }
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(fd_limit_is_raised_to_the_hard_limit, setup_soft_limit, teardown),
                cmocka_unit_test_setup_teardown(zero_byte_datagrams_are_malformed, setup, teardown),
                cmocka_unit_test_setup_teardown(passed_fds_are_closed_and_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(fds_are_closed_even_when_tetherd_is_short_of_them, setup, teardown),
                cmocka_unit_test_setup_teardown(unidentified_sockets_are_limited_and_timed_out, setup, teardown),
                cmocka_unit_test_setup_teardown(a_uid_gets_only_a_part_of_the_fd_budget, setup, teardown),
                cmocka_unit_test_setup_teardown(fd_exhaustion_never_spins_or_hangs, setup, teardown),
                cmocka_unit_test_setup_teardown(connections_per_uid_are_bounded_in_the_driver, setup_many_fds, teardown),
                cmocka_unit_test_setup_teardown(clients_that_do_not_read_are_dropped, setup, teardown),
                cmocka_unit_test_setup_teardown(fds_in_flight_cannot_keep_a_session_alive, setup, teardown),
                cmocka_unit_test_setup_teardown(async_calls_are_bounded, setup, teardown),
                cmocka_unit_test_setup_teardown(unread_port_does_not_stall_anyone, setup, teardown),
                cmocka_unit_test_setup_teardown(ool_bomb_is_refused_before_any_copy, setup, teardown),
                cmocka_unit_test_setup_teardown(publishing_is_for_root_and_bounded, setup, teardown),
                cmocka_unit_test_setup_teardown(warnings_about_a_client_are_rate_limited, setup, teardown),
                cmocka_unit_test_setup_teardown(warnings_stay_limited_when_a_client_reconnects, setup, teardown),
                cmocka_unit_test_setup_teardown(a_full_port_is_reported_within_the_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(streams_to_an_unread_port_do_not_hurt_others, setup, teardown),
                cmocka_unit_test_setup_teardown(closed_ports_leave_no_fds_in_the_driver, setup, teardown),
                cmocka_unit_test_setup_teardown(every_attacker_at_once, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
