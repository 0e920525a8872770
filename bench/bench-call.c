/* SPDX-License-Identifier: MIT */
/*
 * tether's speed, measured against baselines taken in the same run:
 *   - a scalar method call through tetherd vs a raw AF_UNIX SOCK_SEQPACKET
 *     round trip between two processes (target: <= 1.5x), unpinned and
 *     with every process pinned to one CPU;
 *   - struct output through shared memory (1 MiB, 64 MiB) vs memcpy of the
 *     same size (target: >= 0.5x), and reading driver memory in place.
 * The driver side copies from its own sample memory (as a scope driver
 * copies a waveform), so both sides of each ratio read and write every byte.
 * Those tables, and the probe costs, are of the example driver inside
 * tetherd (tetherd --in-process); the last table runs the same calls against
 * it in a driver host of its own, tetherd's default.
 * Not a test: it prints figures and ratios. TETHERD names the daemon.
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tether/tether.h>

#include "example/example.h"
#include "bench-util.h"
#include "harness.h"

static void pin(pid_t pid, int cpu)
{
        cpu_set_t set;
        CPU_ZERO(&set);
        if (cpu < 0) {
                for (int i = 0; i < CPU_SETSIZE; i++)
                        CPU_SET(i, &set);
        } else {
                CPU_SET(cpu, &set);
        }
        sched_setaffinity(pid, sizeof(set), &set);
}

/* All threads of a process, so tetherd's work loops follow. */
static void pin_all_threads(pid_t pid, int cpu)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
        FILE *f = NULL;
        char cmd[96];
        snprintf(cmd, sizeof(cmd), "ls %s", path);
        f = popen(cmd, "r");
        int tid;
        while (f && fscanf(f, "%d", &tid) == 1)
                pin(tid, cpu);
        if (f)
                pclose(f);
}

/* The baseline: 64 bytes to an echo process and back, over a
 * SOCK_SEQPACKET socketpair. One echo process serves a whole series of
 * rounds, so each round costs no fork. */
typedef struct echo {
        int fd;
        pid_t pid;
} echo;

static echo echo_start(void)
{
        int sv[2];
        socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv);
        pid_t pid = fork();
        if (pid == 0) {
                close(sv[0]);
                char b[64];
                ssize_t n;
                while ((n = recv(sv[1], b, sizeof(b), 0)) > 0)
                        send(sv[1], b, (size_t)n, 0);
                _exit(0);
        }
        close(sv[1]);
        return (echo){ .fd = sv[0], .pid = pid };
}

static void echo_stop(echo *e)
{
        close(e->fd);
        waitpid(e->pid, NULL, 0);
}

static double echo_us(echo *e, int iters)
{
        char b[64] = { 0 };
        double t0 = bench_now_us();
        for (int i = 0; i < iters; i++) {
                send(e->fd, b, sizeof(b), 0);
                recv(e->fd, b, sizeof(b), 0);
        }
        return (bench_now_us() - t0) / iters;
}

/* iters calls, after warmup untimed ones. */
static double call_us(tether_connect *c, int iters, int warmup)
{
        uint64_t in[2] = { 1, 2 }, out = 0;
        for (int i = 0; i < warmup; i++) {
                uint32_t n = 1;
                tether_call_scalar_method(c, EXAMPLE_ADD, in, 2, &out, &n);
        }
        double t0 = bench_now_us();
        for (int i = 0; i < iters; i++) {
                uint32_t n = 1;
                if (tether_call_scalar_method(c, EXAMPLE_ADD, in, 2, &out, &n) != TETHER_SUCCESS || out != 3) {
                        fprintf(stderr, "bench: call failed\n");
                        exit(1);
                }
        }
        return (bench_now_us() - t0) / iters;
}

static int cmp_double(const void *a, const void *b);

/* A scalar call against the raw round trip, in alternating rounds of one
 * series (ROUNDS of them, iters calls and iters round trips in all), so
 * that what else the machine does (other builds and tests, on a 2-CPU VM)
 * weighs on both sides alike. pinned: the echo process, this one, and
 * every thread of the pids (tetherd, a driver host) on CPU 0. Prints the
 * medians and the median of the rounds' ratios, with their range. */
#define ROUNDS 9
static void call_vs_raw(const char *label, tether_connect *c, int iters, bool pinned, const pid_t *pids, int n_pids)
{
        int cpu = pinned ? 0 : -1, per = iters / ROUNDS > 100 ? iters / ROUNDS : 100;
        echo e = echo_start();
        pin(e.pid, cpu);
        for (int i = 0; i < n_pids; i++)
                pin_all_threads(pids[i], cpu);
        pin(0, cpu);
        echo_us(&e, 1000);
        call_us(c, 0, 1000); /* warms up */
        double raw[ROUNDS], t[ROUNDS], ratio[ROUNDS];
        for (int r = 0; r < ROUNDS; r++) {
                raw[r] = echo_us(&e, per);
                t[r] = call_us(c, per, 0);
                ratio[r] = t[r] / raw[r];
        }
        pin(0, -1);
        for (int i = 0; i < n_pids; i++)
                pin_all_threads(pids[i], -1);
        echo_stop(&e);
        qsort(raw, ROUNDS, sizeof(double), cmp_double);
        qsort(t, ROUNDS, sizeof(double), cmp_double);
        qsort(ratio, ROUNDS, sizeof(double), cmp_double);
        printf("%-34s %12.2f %12.2f %7.2fx  (rounds %.2f-%.2fx)\n", label, raw[ROUNDS / 2], t[ROUNDS / 2],
               ratio[ROUNDS / 2], ratio[0], ratio[ROUNDS - 1]);
}

/* GB/s, for the bulk tables. */
static double memcpy_gbs(size_t size, int reps)
{
        return bench_memcpy_mbs(size, reps) / 1e3;
}

static void check_samples(const uint8_t *p, size_t size)
{
        if (p[0] != example_sample(0) || p[size - 1] != example_sample(size - 1)) {
                fprintf(stderr, "bench: wrong data\n");
                exit(1);
        }
}

/* Struct output of `size` bytes: the driver copies its samples straight into
 * the shared output buffer, libtether copies them to the caller's buffer.
 * Like memcpy, one source read and one destination write per byte, plus a
 * second write. */
static double struct_out_gbs(tether_connect *c, size_t size, int reps)
{
        uint8_t *out = malloc(size);
        size_t got = size;
        for (int i = 0; i < 2; i++) /* maps the buffers and touches every page once */
                tether_call_method(c, EXAMPLE_PRODUCE, NULL, 0, NULL, 0, NULL, NULL, out, &got);
        double t0 = bench_now_us();
        for (int i = 0; i < reps; i++) {
                got = size;
                if (tether_call_method(c, EXAMPLE_PRODUCE, NULL, 0, NULL, 0, NULL, NULL, out, &got) != TETHER_SUCCESS ||
                    got != size) {
                        fprintf(stderr, "bench: struct output failed\n");
                        exit(1);
                }
        }
        double dt = bench_now_us() - t0;
        check_samples(out, size);
        free(out);
        return (double)size * reps / dt / 1e3;
}

/* Driver memory mapped once (clientMemoryForType): one call makes the driver
 * copy `size` bytes of samples into memory the client already sees. The
 * same work as the memcpy baseline: one read and one write per byte. */
static double mapped_gbs(tether_connect *c, size_t size, int reps)
{
        void *mem = NULL;
        if (tether_map_memory(c, EXAMPLE_MEMORY_BUFFER, 0, &mem, NULL) != TETHER_SUCCESS)
                return 0;
        uint64_t n = size;
        for (int i = 0; i < 2; i++)
                tether_call_scalar_method(c, EXAMPLE_ACQUIRE, &n, 1, NULL, NULL);
        double t0 = bench_now_us();
        for (int i = 0; i < reps; i++) {
                if (tether_call_scalar_method(c, EXAMPLE_ACQUIRE, &n, 1, NULL, NULL) != TETHER_SUCCESS) {
                        fprintf(stderr, "bench: acquire failed\n");
                        exit(1);
                }
        }
        double dt = bench_now_us() - t0;
        check_samples(mem, size);
        return (double)size * reps / dt / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

/* The median of 5 runs: the machine's background reclaim makes single
 * runs of bulk copies noisy. */
static double median5(double (*fn)(tether_connect *, size_t, int), tether_connect *c, size_t size, int reps)
{
        double v[5];
        for (int i = 0; i < 5; i++)
                v[i] = fn(c, size, reps);
        qsort(v, 5, sizeof(v[0]), cmp_double);
        return v[2];
}

static double memcpy_run(tether_connect *c, size_t size, int reps)
{
        return memcpy_gbs(size, reps);
}

/* A prober that keeps up: reads and drops every event. */
static atomic_bool drain_stop;
static void *drain(void *arg)
{
        tether_probe *p = arg;
        tether_probe_event e;
        while (!atomic_load(&drain_stop)) {
                struct pollfd pfd = { .fd = tether_probe_get_fd(p), .events = POLLIN };
                if (poll(&pfd, 1, 50) > 0)
                        while (tether_probe_read(p, &e) == TETHER_SUCCESS)
                                ;
        }
        return NULL;
}

/* What a call costs with probes attached, against none, in one run:
 * median of 5 alternating rounds so drift hits each alike. All on one CPU:
 * unpinned, a round trip here is ~10 us when the scheduler keeps both ends
 * on one CPU and ~50 us when it wakes the other, and attaching a probe
 * (a wake-up of tetherd's main thread) is enough to move them, which once
 * passed for a 5x probe cost. */
static void probe_costs(pid_t tetherd, tether_session *s, tether_connect *c, int iters)
{
        tether_probe_filter other = { .kinds = TETHER_PROBE_CALLS, .service_id = 1, /* the root: no calls */
                                      .selector = TETHER_PROBE_ANY_SELECTOR };
        tether_probe_filter all = { .kinds = TETHER_PROBE_CALLS | TETHER_PROBE_USB, .snaplen = 256,
                                    .selector = TETHER_PROBE_ANY_SELECTOR };
        double none[5], filtered[5], watched[5];
        pin_all_threads(tetherd, 0);
        pin(0, 0); /* the drain thread is created here: pinned too */
        for (int round = 0; round < 5; round++) {
                none[round] = call_us(c, iters, 1000);
                tether_probe *p = NULL;
                if (tether_probe_attach(s, &other, &p) != TETHER_SUCCESS) {
                        fprintf(stderr, "bench: cannot attach a probe\n");
                        exit(1);
                }
                filtered[round] = call_us(c, iters, 1000);
                tether_probe_detach(p);
                if (tether_probe_attach(s, &all, &p) != TETHER_SUCCESS)
                        exit(1);
                pthread_t th;
                atomic_store(&drain_stop, false);
                pthread_create(&th, NULL, drain, p);
                watched[round] = call_us(c, iters, 1000);
                atomic_store(&drain_stop, true);
                pthread_join(th, NULL);
                tether_probe_detach(p);
        }
        pin(0, -1);
        pin_all_threads(tetherd, -1);
        qsort(none, 5, sizeof(double), cmp_double);
        qsort(filtered, 5, sizeof(double), cmp_double);
        qsort(watched, 5, sizeof(double), cmp_double);
        printf("%-34s %12s %12s %8s\n", "probing (median of 5, one CPU)", "none (us)", "probed (us)", "ratio");
        printf("%-34s %12.2f %12.2f %7.2fx\n", "  a prober of another service", none[2], filtered[2], filtered[2] / none[2]);
        printf("%-34s %12.2f %12.2f %7.2fx\n", "  a prober reading every call", none[2], watched[2], watched[2] / none[2]);
}

/* tetherd's driver host (its only child in these runs), or 0. */
static pid_t host_pid(pid_t tetherd)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)tetherd, (int)tetherd);
        FILE *f = fopen(path, "r");
        int pid = 0;
        if (f && fscanf(f, "%d", &pid) != 1)
                pid = 0;
        if (f)
                fclose(f);
        return (pid_t)pid;
}

/* IOServiceOpen and IOServiceClose, each pair timed. */
static double open_us(tether_session *s, uint64_t id, int iters)
{
        double t0 = bench_now_us();
        for (int i = 0; i < iters; i++) {
                tether_connect *c = NULL;
                if (tether_service_open(s, id, EXAMPLE_CLIENT, 0, &c) != TETHER_SUCCESS) {
                        fprintf(stderr, "bench: open failed\n");
                        exit(1);
                }
                tether_service_close(c);
        }
        return (bench_now_us() - t0) / iters;
}

static bool device_seen;
static void on_device(void *refcon, uint32_t type, uint64_t id)
{
        device_seen = true;
}

/* From a nub's publication to its driver's service being registered: the
 * example driver publishes an ExampleDeviceNub, ExampleDevice matches it. */
static double start_ms(tether_session *s, tether_connect *c, int reps)
{
        tether_notification_port *port = NULL;
        tether_notification *n = NULL;
        tether_value *m = NULL;
        tether_service_matching("ExampleDevice", &m);
        tether_notification_port_create(s, &port);
        tether_service_add_matching_notification(port, TETHER_NOTIFY_PUBLISHED, m, on_device, NULL, &n);
        tether_value_unref(m);
        double total = 0;
        for (int i = 0; i < reps; i++) {
                uint64_t unit = 100 + (uint64_t)i, nub = 0;
                uint32_t one = 1, none = 0;
                device_seen = false;
                double t0 = bench_now_us();
                if (tether_call_scalar_method(c, EXAMPLE_PUBLISH_DEVICE, &unit, 1, &nub, &one) != TETHER_SUCCESS)
                        exit(1);
                while (!device_seen) {
                        struct pollfd pfd = { .fd = tether_notification_port_get_fd(port), .events = POLLIN };
                        poll(&pfd, 1, 1000);
                        tether_notification_port_dispatch(port);
                }
                total += bench_now_us() - t0;
                tether_call_scalar_method(c, EXAMPLE_REMOVE_DEVICE, &nub, 1, NULL, &none);
        }
        tether_notification_remove(n);
        tether_notification_port_destroy(port);
        return total / reps / 1000.0;
}

/* The same calls with the example driver in its own process, as tetherd
 * runs every driver by default: the call must not gain a hop (client ->
 * host -> client, tetherd not involved). */
static void hosted(tether_session *s_in, tether_connect *c_in, int iters)
{
        harness h = { 0 };
        tether_session *s = NULL;
        tether_connect *c = NULL;
        if (bench_open(&h, "ExampleDriver", EXAMPLE_CLIENT, &s, &c) != 0)
                exit(1);
        pid_t host = host_pid(h.pid);
        printf("%-34s %12s %12s %8s\n", "in a driver host (the default)", "raw (us)", "tether (us)", "ratio");
        pid_t pids[2] = { h.pid, host };
        call_vs_raw("  scalar call, unpinned", c, iters, false, pids, 2);
        call_vs_raw("  scalar call, all on one CPU", c, iters, true, pids, 2);
        double base = median5(memcpy_run, c, 64u << 20, 10);
        double t = median5(mapped_gbs, c, 64u << 20, 10);
        printf("  mapped memory 64 MiB (GB/s)       %12.2f %12.2f %7.2fx\n", base, t, t / base);
        printf("\n%-34s %12s %12s\n", "open and start", "in tetherd", "own process");
        uint64_t id_in = 0, id_iso = 0;
        tether_value *m = NULL;
        tether_service_matching("ExampleDriver", &m);
        tether_get_matching_service(s_in, m, &id_in);
        tether_get_matching_service(s, m, &id_iso);
        tether_value_unref(m);
        printf("%-34s %12.1f %12.1f\n", "  open + close (us)", open_us(s_in, id_in, 500), open_us(s, id_iso, 500));
        printf("%-34s %12.2f %12.2f\n", "  nub published -> service (ms)", start_ms(s_in, c_in, 20), start_ms(s, c, 20));
        bench_close(&h, s, c);
}

int main(int argc, char **argv)
{
        int iters = argc > 1 ? atoi(argv[1]) : 20000;
        /* No simulated scope: the example driver alone, inside tetherd, so
         * these figures are tether's call path with no driver host in it. */
        static const char *const in_process[] = { "--in-process", NULL };
        harness h = { .args = in_process };
        tether_session *s = NULL;
        tether_connect *c = NULL;
        if (bench_open(&h, "ExampleDriver", EXAMPLE_CLIENT, &s, &c) != 0)
                return 1;

        printf("tether benchmark (%d calls per latency figure, %ld CPUs)\n", iters, sysconf(_SC_NPROCESSORS_ONLN));
        printf("the example driver inside tetherd (tetherd --in-process), then in a driver host (the default)\n\n");
        printf("%-34s %12s %12s %8s\n", "bulk data (median of 5)", "memcpy GB/s", "tether GB/s", "ratio");
        size_t sizes[] = { 1u << 20, 64u << 20 };
        for (int i = 0; i < 2; i++) {
                int reps = sizes[i] > (1u << 20) ? 10 : 300;
                double base = median5(memcpy_run, c, sizes[i], reps);
                double t = median5(mapped_gbs, c, sizes[i], reps);
                printf("  mapped memory %2zu MiB              %12.2f %12.2f %7.2fx\n", sizes[i] >> 20, base, t, t / base);
        }
        for (int i = 0; i < 2; i++) {
                int reps = sizes[i] > (1u << 20) ? 10 : 300;
                double base = median5(memcpy_run, c, sizes[i], reps);
                double t = median5(struct_out_gbs, c, sizes[i], reps);
                printf("  struct output %2zu MiB              %12.2f %12.2f %7.2fx\n", sizes[i] >> 20, base, t, t / base);
        }
        printf("\n");
        printf("%-34s %12s %12s %8s\n", "scalar call round trip", "raw (us)", "tether (us)", "ratio");
        call_vs_raw("  unpinned", c, iters, false, &h.pid, 1);
        call_vs_raw("  all on one CPU", c, iters, true, &h.pid, 1);

        printf("\n");
        probe_costs(h.pid, s, c, iters / 4);

        printf("\n");
        hosted(s, c, iters);

        return bench_close(&h, s, c);
}
