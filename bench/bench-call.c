/* SPDX-License-Identifier: MIT */
/*
 * tether's speed, measured against baselines taken in the same run:
 *   - a scalar method call through tetherd vs a raw AF_UNIX SOCK_SEQPACKET
 *     round trip between two processes (target: <= 1.5x), unpinned and
 *     with every process pinned to one CPU;
 *   - struct output through shared memory (1 MiB, 64 MiB) vs memcpy of the
 *     same size (target: >= 0.5x), and reading driver memory in place.
 * Not a test: it prints figures and ratios. TETHERD names the daemon.
 */
#define _GNU_SOURCE
#include <sched.h>
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
#include "harness.h"

static double now_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

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

/* Raw round trip: 64 bytes to an echo process and back. */
static double raw_roundtrip_us(int iters, int cpu)
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
        pin(pid, cpu);
        pin(0, cpu);
        char b[64] = { 0 };
        for (int i = 0; i < 1000; i++) {
                send(sv[0], b, sizeof(b), 0);
                recv(sv[0], b, sizeof(b), 0);
        }
        double t0 = now_us();
        for (int i = 0; i < iters; i++) {
                send(sv[0], b, sizeof(b), 0);
                recv(sv[0], b, sizeof(b), 0);
        }
        double dt = (now_us() - t0) / iters;
        close(sv[0]);
        waitpid(pid, NULL, 0);
        pin(0, -1);
        return dt;
}

static double call_us(tether_connect *c, int iters)
{
        uint64_t in[2] = { 1, 2 }, out = 0;
        for (int i = 0; i < 1000; i++) {
                uint32_t n = 1;
                tether_call_scalar_method(c, EXAMPLE_ADD, in, 2, &out, &n);
        }
        double t0 = now_us();
        for (int i = 0; i < iters; i++) {
                uint32_t n = 1;
                if (tether_call_scalar_method(c, EXAMPLE_ADD, in, 2, &out, &n) != TETHER_SUCCESS || out != 3) {
                        fprintf(stderr, "bench: call failed\n");
                        exit(1);
                }
        }
        return (now_us() - t0) / iters;
}

static double memcpy_gbs(size_t size, int reps)
{
        uint8_t *a = malloc(size), *b = malloc(size);
        memset(a, 1, size);
        memset(b, 2, size);
        memcpy(b, a, size);
        double t0 = now_us();
        for (int i = 0; i < reps; i++) {
                a[i % size] = (uint8_t)i;
                memcpy(b, a, size);
        }
        double dt = now_us() - t0;
        volatile uint8_t sink = b[size / 2];
        (void)sink;
        free(a);
        free(b);
        return (double)size * reps / dt / 1e3;
}

/* Struct output of `size` bytes: the driver writes straight into the shared
 * buffer, libtether copies it to the caller's buffer. */
static double struct_out_gbs(tether_connect *c, size_t size, int reps)
{
        uint8_t *out = malloc(size);
        uint64_t byte = 0x5a;
        size_t got = size;
        tether_call_method(c, EXAMPLE_PRODUCE, &byte, 1, NULL, 0, NULL, NULL, out, &got); /* maps once */
        double t0 = now_us();
        for (int i = 0; i < reps; i++) {
                got = size;
                byte = (uint64_t)i;
                if (tether_call_method(c, EXAMPLE_PRODUCE, &byte, 1, NULL, 0, NULL, NULL, out, &got) != TETHER_SUCCESS ||
                    got != size || out[size - 1] != (uint8_t)i) {
                        fprintf(stderr, "bench: struct output failed\n");
                        exit(1);
                }
        }
        double dt = now_us() - t0;
        free(out);
        return (double)size * reps / dt / 1e3;
}

/* Driver memory mapped once: the driver fills it, the client reads it in
 * place (here: copies it out, which is what a consumer pays at least). */
static double mapped_gbs(tether_connect *c, int reps)
{
        void *mem = NULL;
        size_t size = 0;
        if (tether_map_memory(c, EXAMPLE_MEMORY_BUFFER, 0, &mem, &size) != TETHER_SUCCESS)
                return 0;
        uint8_t *dst = malloc(size);
        double t0 = now_us();
        for (int i = 0; i < reps; i++) {
                uint64_t fill[2] = { EXAMPLE_MEMORY_BUFFER, (uint64_t)i };
                tether_call_scalar_method(c, EXAMPLE_FILL_MEMORY, fill, 2, NULL, NULL);
                memcpy(dst, mem, size);
        }
        double dt = now_us() - t0;
        free(dst);
        tether_unmap_memory(c, EXAMPLE_MEMORY_BUFFER, mem);
        return (double)size * reps / dt / 1e3;
}

int main(int argc, char **argv)
{
        int iters = argc > 1 ? atoi(argv[1]) : 20000;
        harness h;
        if (harness_start(&h) != 0) {
                fprintf(stderr, "bench: cannot start tetherd (set TETHERD)\n");
                return 1;
        }
        tether_session *s = NULL;
        tether_value *m = NULL;
        uint64_t id = 0;
        tether_connect *c = NULL;
        tether_service_matching("ExampleDriver", &m);
        if (tether_session_open(h.sock, &s) != TETHER_SUCCESS || tether_get_matching_service(s, m, &id) != TETHER_SUCCESS ||
            tether_service_open(s, id, EXAMPLE_CLIENT, 0, &c) != TETHER_SUCCESS) {
                fprintf(stderr, "bench: cannot open ExampleDriver\n");
                harness_stop(&h);
                return 1;
        }
        tether_value_unref(m);

        printf("tether benchmark (%d iterations per figure, %ld CPUs)\n\n", iters, sysconf(_SC_NPROCESSORS_ONLN));
        printf("%-34s %12s %12s %8s\n", "scalar call round trip", "raw (us)", "tether (us)", "ratio");
        for (int pinned = 0; pinned < 2; pinned++) {
                int cpu = pinned ? 0 : -1;
                double raw = raw_roundtrip_us(iters, cpu);
                pin_all_threads(h.pid, cpu);
                pin(0, cpu);
                double t = call_us(c, iters);
                pin(0, -1);
                pin_all_threads(h.pid, -1);
                printf("%-34s %12.2f %12.2f %7.2fx\n", pinned ? "  all on one CPU" : "  unpinned", raw, t, t / raw);
        }

        printf("\n%-34s %12s %12s %8s\n", "bulk data", "memcpy GB/s", "tether GB/s", "ratio");
        size_t sizes[] = { 1u << 20, 64u << 20 };
        for (int i = 0; i < 2; i++) {
                int reps = sizes[i] > (1u << 20) ? 20 : 500;
                double base = memcpy_gbs(sizes[i], reps);
                double t = struct_out_gbs(c, sizes[i], reps);
                printf("  struct output %2zu MiB              %12.2f %12.2f %7.2fx\n", sizes[i] >> 20, base, t, t / base);
        }
        double base64 = memcpy_gbs(EXAMPLE_BUFFER_SIZE, 20);
        double mapped = mapped_gbs(c, 20);
        printf("  mapped memory 64 MiB (fill+read)   %12.2f %12.2f %7.2fx\n", base64, mapped, mapped / base64);

        tether_service_close(c);
        tether_session_close(s);
        return harness_stop(&h) == 0 ? 0 : 1;
}
