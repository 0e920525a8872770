/* SPDX-License-Identifier: MIT */
/*
 * A driver host that misbehaves on purpose, for test-evil-hosts: tetherd
 * starts it (TETHER_DRIVERHOST) in place of tether-driverhost, and its
 * bundle id says what it does ("org.tether.evil.MODE"):
 *   silent    never answers START
 *   garbage   answers START, then sends bytes that are no message
 *   fds       answers START, then passes an fd with a property change
 *   thief     answers START, then tries to end nubs it never published and,
 *             once /tmp/tether-evil-ports.<tetherd's pid> exists, to get
 *             ports of the first sessions; prints what tetherd answered
 *   flood     answers START, then sends property changes as fast as it can
 *   slowrefuse answers START after 600 ms, refusing it, and exits (as a
 *             real host whose driver refused does)
 *   republish answers START, then publishes a nub ("EvilNub", "evil-nub")
 *             and ends it, again and again: each time drivers match it,
 *             and tetherd says why each is or is not started
 *   (any)     once done, answers pings and says which sessions it is told
 *             have ended
 *   devices   answers START; the first host of a tetherd publishes a nub
 *             that says it is a simulated USB device, and which simulator
 *             and model (it is not tetherd's);
 *             then each asks for its provider's device three times,
 *             keeping what it gets, lets them go and asks once more
 *   reasons   answers START; refuses each property write with a reason the
 *             written key names: "good" a well-formed one, "long" one of
 *             300 bytes, "escape" a terminal escape sequence, "utf8"
 *             bytes that are not UTF-8, "success" a reason with a success
 * Bounded: it exits after a few seconds whatever happens. Any other bundle
 * (the example driver the polite client calls) gets the real
 * tether-driverhost, as tetherd would have started it: TETHER_DRIVERHOST is
 * one binary for every bundle, and the test needs a driver that behaves.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>
#include <tether/value.h>

#include "wire/message.h"

#define CHANNEL 3

static void answer_start_with(tether_ret_t result)
{
        static uint8_t rx[WIRE_MAX_MESSAGE];
        size_t len = 0;
        int fd = -1;
        if (wire_recv(CHANNEL, rx, sizeof(rx), &len, &fd) != TETHER_SUCCESS)
                _exit(1);
        wire_header h;
        memcpy(&h, rx, sizeof(h));
        wire_msg m;
        wire_msg_init(&m, WIRE_HOST_START | WIRE_REPLY_FLAG, h.serial, result);
        wire_msg_finish(&m);
        wire_send(CHANNEL, &m, -1);
}

static void answer_start(void)
{
        answer_start_with(TETHER_SUCCESS);
}

static uint64_t answer_u64; /* the last answer's first u64 (a nub's id), or 0 */

/* Ask tetherd something and print its answer's result (skipping the
 * other messages it sends meanwhile: pings, probe states); the fd that
 * came with the answer into *ret_fd, if asked for. */
static int32_t ask_fd(wire_msg *m, uint32_t serial, int *ret_fd)
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
                wire_header h;
                memcpy(&h, rx, sizeof(h));
                if (h.serial == serial && (h.type & WIRE_REPLY_FLAG)) {
                        wire_reader rd;
                        wire_reader_init(&rd, rx + WIRE_HEADER_SIZE, len - WIRE_HEADER_SIZE);
                        answer_u64 = len >= WIRE_HEADER_SIZE + 8 ? wire_get_u64(&rd) : 0;
                        if (ret_fd)
                                *ret_fd = fd;
                        else if (fd >= 0)
                                close(fd);
                        return h.result;
                }
                if (fd >= 0)
                        close(fd);
                /* Alive meanwhile: a host that asks for long is not one
                 * that misses its heartbeat. */
                if (h.type == WIRE_HOST_PING || h.type == WIRE_HOST_PROBES) {
                        wire_msg a;
                        wire_msg_init(&a, h.type | WIRE_REPLY_FLAG, h.serial, TETHER_SUCCESS);
                        wire_msg_finish(&a);
                        wire_send(CHANNEL, &a, -1);
                }
        }
        return 0;
}

static int32_t ask(wire_msg *m, uint32_t serial)
{
        return ask_fd(m, serial, NULL);
}

/* What tetherd handed over: a socket of the kind vusb runs on, or not. */
static const char *kind_of(int fd)
{
        int type = 0;
        socklen_t len = sizeof(type);
        if (fd < 0)
                return "none";
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
                return "no socket";
        return type == SOCK_SEQPACKET ? "seqpacket" : "other socket";
}

/* "reasons": the reply to a property write, as its key asks. */
static void answer_with_reason(const uint8_t *rx, size_t len)
{
        wire_header h;
        memcpy(&h, rx, sizeof(h));
        wire_reader rd;
        wire_reader_init(&rd, rx + WIRE_HEADER_SIZE, len - WIRE_HEADER_SIZE);
        tether_task writer;
        wire_get_task(&rd, &writer);
        tether_value *dict = NULL, *v = NULL;
        const char *key = "";
        if (wire_get_value(&rd, &dict) == TETHER_SUCCESS && tether_value_count(dict))
                tether_value_dict_entry(dict, 0, &key, &v);
        char text[400];
        tether_ret_t result = TETHER_ERR_BAD_ARGUMENT;
        if (!strcmp(key, "long")) {
                memset(text, 'x', 300);
                text[300] = '\0';
        } else if (!strcmp(key, "escape")) {
                strcpy(text, "\x1b]0;owned\a\x1b[2J");
        } else if (!strcmp(key, "utf8")) {
                strcpy(text, "\xff\xfe no");
        } else if (!strcmp(key, "success")) {
                result = TETHER_SUCCESS;
                strcpy(text, "fine, but why say so");
        } else {
                snprintf(text, sizeof(text), "the evil driver says no to uid %u", (unsigned)writer.uid);
        }
        tether_value_unref(dict);
        wire_msg m;
        wire_msg_init(&m, WIRE_HOST_SET_PROPERTIES | WIRE_REPLY_FLAG, h.serial, result);
        wire_put_bytes(&m, text, strlen(text));
        wire_msg_finish(&m);
        wire_send(CHANNEL, &m, -1);
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
        if (!strcmp(mode, "slowrefuse")) {
                usleep(600 * 1000);
                answer_start_with(TETHER_ERR_UNSUPPORTED);
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
                /* Once the test has a session with ports open (it makes
                 * the flag), every port of the first sessions: none of
                 * them opened this host. */
                char flag[64];
                snprintf(flag, sizeof(flag), "/tmp/tether-evil-ports.%d", (int)getppid());
                for (int i = 0; i < 300 && access(flag, F_OK) != 0; i++)
                        usleep(10000);
                for (uint64_t session = 1; session < 8; session++) {
                        for (uint64_t port = 1; port < 8; port++) {
                                wire_msg_init(&m, WIRE_HOST_PORT, ++serial, 0);
                                wire_put_u64(&m, session);
                                wire_put_u64(&m, port);
                                int fd = -1;
                                int32_t r = ask_fd(&m, serial, &fd);
                                fprintf(stderr, "evil: session %llu port %llu: %d\n", (unsigned long long)session,
                                        (unsigned long long)port, (int)r);
                                if (fd >= 0)
                                        close(fd);
                        }
                }
                fprintf(stderr, "evil: done\n");
        } else if (!strcmp(mode, "devices")) {
                uint32_t serial = 100;
                char flag[64];
                snprintf(flag, sizeof(flag), "/tmp/tether-evil-published.%d", (int)getppid());
                int once = open(flag, O_CREAT | O_EXCL | O_WRONLY, 0600);
                if (once >= 0) {
                        close(once);
                        /* Every key a device nub of tetherd's has, and the
                         * evil personality's match: another evil host
                         * gets it, and asks tetherd to open "it". */
                        tether_value *d = NULL, *p = NULL;
                        tether_value_new_dict(&d);
                        tether_value_new_dict(&p);
                        tether_value_dict_set_bool(p, "TetherSimulated", true);
                        tether_value_dict_set_string(p, "TetherSimulator", "tether-sim-dmm");
                        tether_value_dict_set_string(p, "TetherSimulatedModel", "34461a");
                        tether_value_dict_set_uint(p, "idVendor", 2391, 16);
                        tether_value_dict_set_uint(p, "USB Bus", 1, 8);
                        tether_value_dict_set_uint(p, "USB Address", 1, 8);
                        tether_value_dict_set_uint(p, "bInterfaceNumber", 0, 8);
                        tether_value_dict_set_string(d, "class", "TetherUSBDevice");
                        tether_value_dict_set_string(d, "name", "not-a-scope");
                        tether_value_dict_set(d, "props", p);
                        wire_msg_init(&m, WIRE_HOST_PUBLISH_NUB, ++serial, 0);
                        wire_put_value(&m, d);
                        tether_value_unref(p);
                        tether_value_unref(d);
                        fprintf(stderr, "evil: published: %d\n", (int)ask(&m, serial));
                }
                int fds[3] = { -1, -1, -1 };
                for (int i = 0; i < 3; i++) {
                        wire_msg_init(&m, WIRE_HOST_DEVICE, ++serial, 0);
                        int32_t r = ask_fd(&m, serial, &fds[i]);
                        fprintf(stderr, "evil: device %d: %d %s\n", i + 1, (int)r, kind_of(fds[i]));
                }
                for (int i = 0; i < 3; i++)
                        if (fds[i] >= 0)
                                close(fds[i]);
                /* The simulators see the hang-up and exit; tetherd waits
                 * for them from its main loop (every 500 ms at most). */
                usleep(1500 * 1000);
                int fd = -1;
                wire_msg_init(&m, WIRE_HOST_DEVICE, ++serial, 0);
                int32_t r = ask_fd(&m, serial, &fd);
                fprintf(stderr, "evil: device again: %d %s\n", (int)r, kind_of(fd));
                if (fd >= 0)
                        close(fd);
                fprintf(stderr, "evil: done\n");
        } else if (!strcmp(mode, "republish")) {
                uint32_t serial = 100;
                int published = 0;
                tether_value *d = NULL;
                tether_value_new_dict(&d);
                tether_value_dict_set_string(d, "class", "EvilNub");
                tether_value_dict_set_string(d, "name", "evil-nub");
                /* Long enough alive for a driver to start on it. */
                for (int i = 0; i < 40; i++) {
                        wire_msg_init(&m, WIRE_HOST_PUBLISH_NUB, ++serial, 0);
                        wire_put_value(&m, d);
                        if (ask(&m, serial) != TETHER_SUCCESS)
                                continue;
                        published++;
                        uint64_t id = answer_u64;
                        usleep(80 * 1000);
                        wire_msg_init(&m, WIRE_HOST_TERMINATE_NUB, ++serial, 0);
                        wire_put_u64(&m, id);
                        ask(&m, serial);
                }
                tether_value_unref(d);
                fprintf(stderr, "evil: republished %d times\n", published);
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
        /* Stay, answering nothing more (but property writes, in "reasons"),
         * until tetherd ends it or the alarm. */
        bool reasons = !strcmp(mode, "reasons");
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
                } else if (h.type == WIRE_HOST_SESSION_GONE && len >= WIRE_HEADER_SIZE + 8) {
                        uint64_t id;
                        memcpy(&id, rx + WIRE_HEADER_SIZE, sizeof(id));
                        fprintf(stderr, "evil: told session %llu is gone\n", (unsigned long long)id);
                } else if (reasons && h.type == WIRE_HOST_SET_PROPERTIES) {
                        answer_with_reason(rx, len);
                }
        }
}
