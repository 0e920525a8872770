/* SPDX-License-Identifier: MIT */
#ifndef TETHER_TEST_HARNESS_H
#define TETHER_TEST_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <tether/tether.h>

/* A real tetherd on a private socket, for one cmocka group. */
typedef struct harness {
        pid_t pid;
        char dir[64];
        char sock[128];
        const char *simulate;   /* if set: tetherd --simulate <this> */
        bool with_usb;          /* let tetherd look at the USB bus, an emulated one: with the
                                 * drivers in tetherd (--in-process), where the emulation is */
        const char *const *args; /* more tetherd arguments, NULL-terminated (at most 8) */
        /* if > 0: tetherd runs with RLIMIT_NOFILE {nofile, nofile}, so tests
         * can reach its fd limit with a few hundred sockets; nofile_soft, if
         * > 0, lowers the soft limit below that */
        int nofile;
        int nofile_soft;
        int hello_timeout_ms;   /* if > 0: tetherd --hello-timeout <this> */
        /* tetherd's stderr goes to `log` (in dir) instead of ours, for tests
         * that count what it says; harness_stop removes the file */
        bool log_to_file;
        char log[128];
} harness;

/* Start $TETHERD (set by meson) and wait for READY. */
int harness_start(harness *h);
/* SIGTERM and wait: returns the daemon's exit status (0 = clean, which under
 * ASan/LSan also means no leak and no error). */
int harness_stop(harness *h);
/* Open file descriptors of the daemon, from /proc. */
int harness_fd_count(const harness *h);

tether_session *harness_session(const harness *h);
/* The first service of a class; fails the test if there is none. */
uint64_t harness_find(tether_session *s, const char *class_name);
/* Set one property through the driver's hook; consumes v. */
tether_ret_t harness_set(tether_session *s, uint64_t id, const char *key, tether_value *v);
/* Poll cond(ctx) every 10 ms for up to ms; true once it holds. */
bool harness_wait(bool (*cond)(void *ctx), void *ctx, int ms);

#endif
