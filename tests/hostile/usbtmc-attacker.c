/* SPDX-License-Identifier: MIT */
/*
 * A hostile client of the generic USBTMC driver, for test-usbtmc-hostile:
 * it speaks libtether (what it abuses is the driver, not the wire) and is
 * run as nobody. Each mode prints "key value" lines and exits by itself;
 * the holding ones print "holding" and keep what they took until stdin
 * reaches end of file.
 *
 *   usbtmc-attacker SOCKET MODE [key=value ...]
 *     lock                   take the instrument's lock and hold it
 *     flood seconds= conns=  every call it may make, as fast as it can, on
 *                            conns connections: queries, writes whose
 *                            answers it never reads, clears, status bytes,
 *                            malformed calls, 64 KiB of garbage
 *     conns                  open connections until refused, hold them
 *     async-hog seconds=     an async read that waits on nothing, again
 *                            and again: the instrument Busy for others
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tether/tether.h>
#include <tether/usbtmc-instrument.h>

static int n_args;
static char **args;

static long arg(const char *key, long def)
{
        size_t k = strlen(key);
        for (int i = 0; i < n_args; i++)
                if (!strncmp(args[i], key, k) && args[i][k] == '=')
                        return strtol(args[i] + k + 1, NULL, 0);
        return def;
}

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Until the test closes our stdin. */
static void hold(void)
{
        printf("holding\n");
        fflush(stdout);
        char c;
        while (read(STDIN_FILENO, &c, 1) > 0)
                ;
}

static uint64_t instrument(tether_session *s)
{
        tether_value *m = NULL;
        uint64_t id = 0;
        tether_service_matching(TMC_CLASS, &m);
        tether_ret_t r = tether_get_matching_service(s, m, &id);
        tether_value_unref(m);
        if (r != TETHER_SUCCESS) {
                printf("error no instrument: %s\n", tether_strerror(r));
                exit(1);
        }
        return id;
}

static int mode_lock(tether_session *s)
{
        tether_connect *c = NULL;
        uint64_t wait = 0;
        tether_ret_t r = tether_service_open(s, instrument(s), 0, 0, &c);
        if (r == TETHER_SUCCESS)
                r = tether_call_method(c, TMC_LOCK, &wait, 1, NULL, 0, NULL, NULL, NULL, NULL);
        printf("lock %d\n", (int)r);
        hold();
        return 0;
}

static int mode_flood(tether_session *s)
{
        int conns = (int)arg("conns", 4);
        double until = now_s() + (double)arg("seconds", 3);
        tether_connect *c[16] = { 0 };
        if (conns < 1 || conns > 16)
                conns = 4;
        uint64_t id = instrument(s);
        for (int i = 0; i < conns; i++)
                if (tether_service_open(s, id, 0, 0, &c[i]) != TETHER_SUCCESS)
                        return 1;
        static char garbage[65536];
        memset(garbage, '#', sizeof(garbage));
        long calls = 0, answered = 0, wrong = 0;
        for (unsigned k = 0; now_s() < until; k++) {
                tether_connect *cc = c[k % (unsigned)conns];
                char buf[256];
                size_t n = sizeof(buf);
                uint64_t end = 0, flags = 0, stb = 0;
                uint32_t one = 1;
                switch (k % 7) {
                case 0: /* its own query: the answer must be its own */
                        if (tether_call_method(cc, TMC_QUERY, NULL, 0, ":TIMebase:SCALe?", 16, &end, &one, buf, &n) ==
                            TETHER_SUCCESS) {
                                answered++;
                                if (n < 2 || buf[0] != '+')
                                        wrong++;
                        }
                        break;
                case 1: /* a question whose answer it never reads */
                        tether_call_method(cc, TMC_WRITE, &flags, 1, "*IDN?", 5, NULL, NULL, NULL, NULL);
                        break;
                case 2:
                        tether_call_method(cc, TMC_READ_STB, NULL, 0, NULL, 0, &stb, &one, NULL, NULL);
                        break;
                case 3:
                        tether_call_method(cc, TMC_CLEAR, NULL, 0, NULL, 0, NULL, NULL, NULL, NULL);
                        break;
                case 4: /* counts the table refuses */
                        tether_call_method(cc, TMC_QUERY, &flags, 1, "x", 1, NULL, NULL, NULL, NULL);
                        tether_call_method(cc, TMC_SELECTOR_COUNT + 3, NULL, 0, NULL, 0, NULL, NULL, NULL, NULL);
                        break;
                case 5:
                        if (k % 35 == 5)
                                tether_call_method(cc, TMC_WRITE, &flags, 1, garbage, sizeof(garbage), NULL, NULL,
                                                   NULL, NULL);
                        break;
                case 6: /* a read with nothing asked: waits its timeout */
                        if (k % 70 == 6) {
                                n = sizeof(buf);
                                tether_call_method(cc, TMC_READ, NULL, 0, NULL, 0, &end, &one, buf, &n);
                        }
                        break;
                }
                calls++;
        }
        printf("calls %ld\nanswered %ld\nwrong %ld\n", calls, answered, wrong);
        return 0;
}

static int mode_conns(tether_session *s)
{
        uint64_t id = instrument(s);
        long opened = 0;
        tether_ret_t r = TETHER_SUCCESS;
        for (; opened < 100000; opened++) {
                tether_connect *c = NULL;
                if ((r = tether_service_open(s, id, 0, 0, &c)) != TETHER_SUCCESS)
                        break;
        }
        printf("opened %ld\nrefused %d\n", opened, (int)r);
        hold();
        return 0;
}

static void on_read(void *refcon, tether_ret_t r, const uint64_t *a, uint32_t n)
{
        (*(long *)refcon)++;
}

static int mode_async_hog(tether_session *s)
{
        double until = now_s() + (double)arg("seconds", 3);
        tether_connect *c = NULL;
        tether_notification_port *port = NULL;
        if (tether_service_open(s, instrument(s), 0, 0, &c) != TETHER_SUCCESS ||
            tether_notification_port_create(s, &port) != TETHER_SUCCESS)
                return 1;
        long started = 0, ended = 0;
        uint64_t max = 64;
        while (now_s() < until) {
                if (started == ended && tether_call_async_method(c, TMC_READ_ASYNC, port, on_read, &ended, &max, 1,
                                                                 NULL, 0, NULL, NULL, NULL, NULL) == TETHER_SUCCESS)
                        started++;
                struct pollfd p = { .fd = tether_notification_port_get_fd(port), .events = POLLIN };
                poll(&p, 1, 5);
                tether_notification_port_dispatch(port);
        }
        printf("reads %ld\nended %ld\n", started, ended);
        return 0;
}

int main(int argc, char **argv)
{
        if (argc < 3) {
                fprintf(stderr, "usage: usbtmc-attacker SOCKET MODE [key=value ...]\n");
                return 2;
        }
        n_args = argc - 3;
        args = argv + 3;
        alarm(120); /* whatever happens, no mode outlives this */
        signal(SIGPIPE, SIG_IGN);
        tether_session *s = NULL;
        tether_ret_t r = tether_session_open(argv[1], &s);
        printf("uid %d\nsession %d\n", (int)getuid(), (int)r);
        if (r != TETHER_SUCCESS)
                return 1;
        const char *mode = argv[2];
        int rc = !strcmp(mode, "lock")        ? mode_lock(s)
                 : !strcmp(mode, "flood")     ? mode_flood(s)
                 : !strcmp(mode, "conns")     ? mode_conns(s)
                 : !strcmp(mode, "async-hog") ? mode_async_hog(s)
                                              : 2;
        fflush(stdout);
        tether_session_close(s);
        return rc;
}
