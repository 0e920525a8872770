/* SPDX-License-Identifier: MIT */
/*
 * A driver host that misbehaves on purpose, for test-evil-hosts: tetherd
 * starts it (TETHER_DRIVERHOST) in place of tether-driverhost, and its
 * bundle id says what it does ("org.tether.evil.MODE"):
 *   silent    never answers START
 *   garbage   answers START, then sends bytes that are no message
 *   fds       answers START, then passes an fd with a property change
 *   thief     answers START, then tries to end nubs it never published and
 *             to get ports of sessions; prints what tetherd answered
 *   flood     answers START, then sends property changes as fast as it can
 * Bounded: it exits after a few seconds whatever happens. Any other bundle
 * (the example driver the polite client calls) gets the real
 * tether-driverhost, as tetherd would have started it: TETHER_DRIVERHOST is
 * one binary for every bundle, and the test needs a driver that behaves.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wire/message.h"

#define CHANNEL 3

static void answer_start(void)
{
        static uint8_t rx[WIRE_MAX_MESSAGE];
        size_t len = 0;
        int fd = -1;
        if (wire_recv(CHANNEL, rx, sizeof(rx), &len, &fd) != TETHER_SUCCESS)
                _exit(1);
        wire_header h;
        memcpy(&h, rx, sizeof(h));
        wire_msg m;
        wire_msg_init(&m, WIRE_HOST_START | WIRE_REPLY_FLAG, h.serial, TETHER_SUCCESS);
        wire_msg_finish(&m);
        wire_send(CHANNEL, &m, -1);
}

/* Ask tetherd something and print its answer's result (skipping the
 * other messages it sends meanwhile: pings, probe states). */
static int32_t ask(wire_msg *m, uint32_t serial)
{
        wire_msg_finish(m);
        if (wire_send(CHANNEL, m, -1) != TETHER_SUCCESS)
                _exit(1);
        static uint8_t rx[WIRE_MAX_MESSAGE];
        for (int i = 0; i < 100; i++) {
                size_t len = 0;
                int fd = -1;
                if (wire_recv(CHANNEL, rx, sizeof(rx), &len, &fd) != TETHER_SUCCESS)
                        _exit(1);
                if (fd >= 0)
                        close(fd);
                wire_header h;
                memcpy(&h, rx, sizeof(h));
                if (h.serial == serial && (h.type & WIRE_REPLY_FLAG))
                        return h.result;
        }
        return 0;
}

int main(int argc, char **argv)
{
        if (argc < 2 || strncmp(argv[1], "org.tether.evil.", strlen("org.tether.evil."))) {
                /* Before alarm(): a pending alarm would outlive the exec. */
                execv(TETHER_REAL_DRIVERHOST, argv);
                _exit(127);
        }
        const char *mode = strrchr(argv[1], '.') + 1;
        signal(SIGPIPE, SIG_IGN);
        alarm(10);
        if (!strcmp(mode, "silent")) {
                pause();
                return 0;
        }
        answer_start();
        wire_msg m;
        if (!strcmp(mode, "garbage")) {
                static const char junk[] = "\x01\x02 this is no message";
                send(CHANNEL, junk, sizeof(junk), 0);
        } else if (!strcmp(mode, "fds")) {
                wire_msg_init(&m, WIRE_HOST_APPLY, 0, 0);
                wire_put_bytes(&m, "\xa0", 1); /* an empty CBOR map */
                wire_msg_finish(&m);
                wire_send(CHANNEL, &m, 0);
        } else if (!strcmp(mode, "thief")) {
                uint32_t serial = 100;
                for (uint64_t id = 0x100000100; id < 0x100000110; id++) {
                        wire_msg_init(&m, WIRE_HOST_TERMINATE_NUB, ++serial, 0);
                        wire_put_u64(&m, id);
                        fprintf(stderr, "evil: terminate nub 0x%llx: %d\n", (unsigned long long)id, (int)ask(&m, serial));
                }
                for (uint64_t port = 1; port < 8; port++) {
                        wire_msg_init(&m, WIRE_HOST_PORT, ++serial, 0);
                        wire_put_u64(&m, 1);
                        wire_put_u64(&m, port);
                        fprintf(stderr, "evil: port %llu: %d\n", (unsigned long long)port, (int)ask(&m, serial));
                }
                fprintf(stderr, "evil: done\n");
        } else if (!strcmp(mode, "flood")) {
                struct timespec t0, t;
                clock_gettime(CLOCK_MONOTONIC, &t0);
                for (long n = 0; n < 200000; n++) {
                        wire_msg_init(&m, WIRE_HOST_APPLY, 0, 0);
                        /* {"k": n}: a real change each time */
                        uint8_t cbor[] = { 0xa1, 0x61, 'k', 0x1a, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
                                           (uint8_t)n };
                        wire_put_bytes(&m, cbor, sizeof(cbor));
                        wire_msg_finish(&m);
                        if (wire_send(CHANNEL, &m, -1) != TETHER_SUCCESS)
                                break;
                        clock_gettime(CLOCK_MONOTONIC, &t);
                        if (t.tv_sec - t0.tv_sec >= 3)
                                break;
                }
        }
        /* Stay, answering nothing more, until tetherd ends it or the alarm. */
        static uint8_t rx[WIRE_MAX_MESSAGE];
        for (;;) {
                size_t len = 0;
                int fd = -1;
                if (wire_recv(CHANNEL, rx, sizeof(rx), &len, &fd) != TETHER_SUCCESS)
                        return 0;
                if (fd >= 0)
                        close(fd);
                wire_header h;
                memcpy(&h, rx, sizeof(h));
                if (h.type == WIRE_HOST_PING || h.type == WIRE_HOST_PROBES) {
                        wire_msg_init(&m, h.type | WIRE_REPLY_FLAG, h.serial, TETHER_SUCCESS);
                        wire_msg_finish(&m);
                        wire_send(CHANNEL, &m, -1);
                }
        }
}
