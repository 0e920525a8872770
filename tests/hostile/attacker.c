/* SPDX-License-Identifier: MIT */
/*
 * A hostile local client of tetherd, for the hostile test suite: raw
 * sockets, no libtether. Each mode does one kind of abuse, bounded in count
 * and time, prints what it saw as "key value [name]" lines, and exits by
 * itself. Modes that hold their sockets print "holding" and keep them until
 * stdin reaches end of file or hold= ms pass, so a test can look at tetherd
 * meanwhile.
 *
 *   attacker SOCKET MODE [key=value ...] [limit=SECONDS (120): the most any mode runs]
 *     silent      n= hold=       connect n sockets, never say HELLO
 *     hog         sessions= opens= hold=
 *                                take sessions, connections, then ports until refused
 *     open-flood  n= hold=       n OPENs without reading a reply
 *     call-flood  n= hold=       n calls on a connection without reading a reply
 *     cycle       rounds= flood= burst=
 *                                a session's own socket in flight to tetherd,
 *                                carrying an unread OPEN reply, behind empty
 *                                datagrams and unread requests, then gone
 *     zero                       0-byte datagrams between valid requests
 *     pass-fds    storm= storm_ms= hold=
 *                                fds tetherd must refuse (then storm= more
 *                                messages of 253 fds each, for at most
 *                                storm_ms=), then our own sockets left in
 *                                flight at exit
 *     async-flood conns= n= delay= hold= retry=
 *                                async calls on a port nobody reads (retry=:
 *                                a call refused NoResources is tried again
 *                                for up to that many ms, as its references
 *                                close)
 *     ool-bomb    hold= echo=    1 GiB out-of-line input to fixed methods
 *                                (echo=1: and to EXAMPLE_ECHO, which takes it)
 *     mem-hog     conns= hold=   the example driver's 64 MiB buffer, mapped
 *                                and filled, on each of conns= connections
 *     publish     n= remove=     EXAMPLE_PUBLISH_DEVICE, n times
 *     log-spam    seconds= conns=
 *                                malformed datagrams as fast as possible
 *     log-cycle   seconds= per=  the same, from a new session every per= of them
 *     port-spam   seconds= fill= a port kept full, read one message at a time
 *     queue-scribble seconds=    data queues of its own, mapped, their shared
 *                                header set to garbage while the driver streams
 *                                into them; serviced messages flooded and
 *                                malformed; a port of no one's named
 *     stream-flood conns= n= count= interval= cancel= hold=
 *                                n streams (EXAMPLE_STREAM) on each of conns=
 *                                connections, all to one port nobody reads;
 *                                cancel=1: then cancel each and open it again
 *     port-churn  rounds= hold=  a port made, named in an async call (one the
 *                                driver refuses), and closed, rounds= times
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/dataqueue.h"
#include "example/example.h"
#include "raw.h"

#define T_REQ 3000 /* ms to wait for any one reply */

static const char *sock_path;
static int n_args;
static char **args;
static raw_reply R; /* 64 KiB: not on the stack */

/* key=value from the command line, clamped to [lo, hi]. */
static long arg(const char *key, long def, long lo, long hi)
{
        size_t k = strlen(key);
        for (int i = 0; i < n_args; i++) {
                if (!strncmp(args[i], key, k) && args[i][k] == '=') {
                        long v = strtol(args[i] + k + 1, NULL, 0);
                        return v < lo ? lo : v > hi ? hi : v;
                }
        }
        return def;
}

static void say(const char *key, long v)
{
        printf("%s %ld\n", key, v);
}

static void say_code(const char *key, int32_t code)
{
        printf("%s %d %s\n", key, (int)code, raw_code_name(code));
}

static void sayf(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        fflush(stdout);
}

/* Keep everything open until the test closes our stdin, or hold_ms pass. */
static void hold(long hold_ms)
{
        sayf("holding\n");
        uint64_t deadline = raw_now_ms() + (uint64_t)hold_ms;
        char buf[64];
        for (int i = 0; i < 100000; i++) {
                uint64_t now = raw_now_ms();
                if (now >= deadline)
                        return;
                struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
                int k = poll(&p, 1, (int)(deadline - now));
                if (k < 0 && errno != EINTR)
                        return;
                if (k > 0 && read(STDIN_FILENO, buf, sizeof(buf)) <= 0)
                        return;
        }
}

static int session(uint64_t *ret_svc)
{
        int fd = raw_connect(sock_path, 2000);
        if (fd < 0) {
                sayf("connect_failed %d %s\n", errno, strerror(errno));
                return -1;
        }
        int32_t r = raw_hello(fd, &R, T_REQ);
        if (r != TETHER_SUCCESS) {
                say_code("hello_failed", r);
                close(fd);
                return -1;
        }
        if (ret_svc && (r = raw_find(fd, "ExampleDriver", ret_svc, &R, T_REQ)) != TETHER_SUCCESS) {
                say_code("find_failed", r);
                close(fd);
                return -1;
        }
        return fd;
}

static int connection(int s, uint64_t svc, uint32_t type)
{
        int c = -1;
        int32_t r = raw_open(s, svc, type, &c, &R, T_REQ);
        if (r != TETHER_SUCCESS)
                say_code("open_failed", r);
        return c;
}

/* A session, and on it a connection to ExampleDriver's user client: the
 * connection, the session in *ret_s; -1 when either fails (said why). */
static int example_connection(int *ret_s)
{
        uint64_t svc = 0;
        *ret_s = session(&svc);
        return *ret_s < 0 ? -1 : connection(*ret_s, svc, EXAMPLE_CLIENT);
}

/* n requests make(i) builds, sent on fd without reading a reply: a full
 * socket is waited on once (half a second), then the flood stops there.
 * Says sent, send_blocked and send_error. */
static void flood_unread(int fd, int n, void (*make)(wire_msg *m, int i, void *ctx), void *ctx)
{
        int sent = 0, blocked = 0, send_error = 0;
        for (int i = 0; i < n; i++) {
                wire_msg m;
                make(&m, i, ctx);
                int e = raw_send_msg(fd, &m, NULL, 0, true);
                if (e == -EAGAIN) {
                        struct pollfd p = { .fd = fd, .events = POLLOUT };
                        poll(&p, 1, 500);
                        e = raw_send(fd, m.buf, m.len, NULL, 0, true);
                }
                if (e == -EAGAIN) {
                        blocked = 1;
                        break;
                }
                if (e < 0) {
                        send_error = -e;
                        break;
                }
                sent++;
        }
        say("sent", sent);
        say("send_blocked", blocked);
        say("send_error", send_error);
}

/* What a run of calls or requests came back with. */
typedef struct tally {
        int ok, no_res, other;
        int32_t last_other;
} tally;

static void tally_add(tally *t, int32_t r)
{
        if (r == TETHER_SUCCESS)
                t->ok++;
        else if (r == TETHER_ERR_NO_RESOURCES)
                t->no_res++;
        else
                t->other++, t->last_other = r;
}

/* Connection k's tally, said; added to all's (its others are all's own). */
static void say_conn(int k, const tally *t, tally *all)
{
        printf("conn%d_ok %d\nconn%d_no_resources %d\n", k, t->ok, k, t->no_res);
        all->ok += t->ok;
        all->no_res += t->no_res;
        all->other += t->other;
        if (t->other)
                all->last_other = t->last_other;
}

/* ---- silent: sockets that never identify themselves ---- */

static int mode_silent(void)
{
        enum { MAX = 1000 };
        int n = (int)arg("n", 20, 1, MAX);
        long hold_ms = arg("hold", 5000, 0, 60000);
        static int fd[MAX];
        static uint64_t t_conn[MAX], t_err[MAX], t_close[MAX];
        static int32_t code[MAX];
        int connected = 0, failed = 0, open = 0;
        uint64_t start = raw_now_ms();
        for (int i = 0; i < n; i++) {
                fd[i] = raw_connect(sock_path, 2000);
                t_conn[i] = raw_now_ms();
                code[i] = 0;
                t_err[i] = t_close[i] = 0;
                if (fd[i] < 0)
                        failed++;
                else
                        connected++, open++;
        }
        say("connected", connected);
        say("connect_failed", failed);
        sayf("connect_ms %llu\n", (unsigned long long)(raw_now_ms() - start));
        uint64_t deadline = start + (uint64_t)hold_ms;
        static struct pollfd p[MAX];
        static int idx[MAX];
        int other_msgs = 0;
        for (int round = 0; round < 100000 && open > 0 && raw_now_ms() < deadline; round++) {
                int np = 0;
                for (int i = 0; i < n; i++) {
                        if (fd[i] >= 0) {
                                p[np] = (struct pollfd){ .fd = fd[i], .events = POLLIN };
                                idx[np++] = i;
                        }
                }
                if (poll(p, (nfds_t)np, 50) <= 0)
                        continue;
                for (int k = 0; k < np; k++) {
                        if (!p[k].revents)
                                continue;
                        int i = idx[k];
                        int got = raw_recv(fd[i], &R, 0);
                        if (got == RAW_GOT) {
                                if (R.fd >= 0)
                                        close(R.fd);
                                if (R.unsolicited && !code[i]) {
                                        code[i] = R.h.result;
                                        t_err[i] = raw_now_ms();
                                } else {
                                        other_msgs++;
                                }
                        } else if (got == RAW_EOF) {
                                close(fd[i]);
                                fd[i] = -1;
                                t_close[i] = raw_now_ms();
                                open--;
                        }
                }
        }
        int no_res = 0, timeout = 0, other = 0, silent_close = 0;
        uint64_t max_nores_ms = 0, min_timeout_ms = UINT64_MAX, max_timeout_ms = 0, max_err_to_close_ms = 0;
        for (int i = 0; i < n; i++) {
                if (code[i] == TETHER_ERR_NO_RESOURCES) {
                        no_res++;
                        if (t_err[i] - t_conn[i] > max_nores_ms)
                                max_nores_ms = t_err[i] - t_conn[i];
                } else if (code[i] == TETHER_ERR_TIMEOUT) {
                        timeout++;
                        uint64_t d = t_err[i] - t_conn[i];
                        min_timeout_ms = d < min_timeout_ms ? d : min_timeout_ms;
                        max_timeout_ms = d > max_timeout_ms ? d : max_timeout_ms;
                } else if (code[i]) {
                        other++;
                        say_code("other_error", code[i]);
                }
                if (t_close[i] && !code[i])
                        silent_close++;
                if (t_close[i] && code[i] && t_close[i] - t_err[i] > max_err_to_close_ms)
                        max_err_to_close_ms = t_close[i] - t_err[i];
        }
        say("no_resources", no_res);
        say("timeout", timeout);
        say("other", other);
        say("other_msgs", other_msgs);
        say("closed_without_error", silent_close);
        say("still_open", open);
        say("max_no_resources_ms", (long)max_nores_ms);
        say("min_timeout_ms", timeout ? (long)min_timeout_ms : -1);
        say("max_timeout_ms", (long)max_timeout_ms);
        say("max_error_to_close_ms", (long)max_err_to_close_ms);
        return 0;
}

/* ---- hog: every session and connection tetherd will give ---- */

static int mode_hog(void)
{
        enum { MAX_KEPT = 8192 };
        int sessions = (int)arg("sessions", 64, 0, 1024);
        int opens = (int)arg("opens", 8, 0, 1024);
        long hold_ms = arg("hold", 10000, 0, 60000);
        static int kept[MAX_KEPT];
        int n_kept = 0;
        int s_ok = 0, s_refused = 0, s_refused_closed = 0, s_other = 0, s_failed = 0;
        int o_ok = 0, o_refused = 0, o_other = 0;
        int32_t s_last = 0, o_last = 0;
        uint64_t svc = 0;
        /* Three refusals or failures end it: past those, only waiting is left. */
        for (int i = 0; i < sessions && s_refused + s_failed + s_other < 3 && n_kept < MAX_KEPT; i++) {
                int fd = raw_connect(sock_path, 2000);
                if (fd < 0) {
                        s_failed++;
                        continue;
                }
                int32_t r = raw_hello(fd, &R, T_REQ);
                if (r == TETHER_ERR_NO_RESOURCES) {
                        s_refused++;
                        if (raw_recv(fd, &R, 1000) == RAW_EOF)
                                s_refused_closed++;
                        close(fd);
                        continue;
                }
                if (r != TETHER_SUCCESS) {
                        s_other++;
                        s_last = r;
                        close(fd);
                        continue;
                }
                s_ok++;
                kept[n_kept++] = fd;
                if (!svc && raw_find(fd, "ExampleDriver", &svc, &R, T_REQ) != TETHER_SUCCESS)
                        svc = 0;
                for (int k = 0; svc && k < opens && n_kept < MAX_KEPT; k++) {
                        int c = -1;
                        r = raw_open(fd, svc, EXAMPLE_CLIENT, &c, &R, T_REQ);
                        if (r == TETHER_SUCCESS) {
                                o_ok++;
                                kept[n_kept++] = c;
                                continue;
                        }
                        if (r == TETHER_ERR_NO_RESOURCES)
                                o_refused++;
                        else
                                o_other++, o_last = r;
                        break;
                }
        }
        say("sessions_ok", s_ok);
        say("sessions_refused", s_refused);
        say("sessions_refused_closed", s_refused_closed);
        say("sessions_other", s_other);
        say_code("sessions_last_other", s_last);
        say("sessions_connect_failed", s_failed);
        say("opens_ok", o_ok);
        say("opens_refused", o_refused);
        say("opens_other", o_other);
        say_code("opens_last_other", o_last);
        /* Ports, once it has all it could get: a port costs an fd too.
         * An open is refused while two fds are not left (its own end and
         * the client's, until the reply) and a session while its last
         * open's second fd is on its way back, so one or two may still be
         * free here: a port takes each, and the next is refused. */
        if (n_kept) {
                int ports_ok = 0;
                int32_t pr = TETHER_SUCCESS;
                for (int i = 0; i < 8 && pr == TETHER_SUCCESS; i++) {
                        uint64_t port_id = 0;
                        int port = -1;
                        pr = raw_port_create(kept[0], &port_id, &port, &R, T_REQ);
                        if (pr == TETHER_SUCCESS)
                                ports_ok++;
                        if (port >= 0 && n_kept < MAX_KEPT)
                                kept[n_kept++] = port;
                }
                say("ports_ok", ports_ok);
                say_code("port_after", pr);
        }
        /* And one more session. */
        int fd = raw_connect(sock_path, 2000);
        int32_t extra = fd < 0 ? RAW_SEND : raw_hello(fd, &R, T_REQ);
        say_code("extra_session", extra);
        if (fd >= 0)
                close(fd);
        hold(hold_ms);
        for (int i = 0; i < n_kept; i++)
                close(kept[i]);
        return 0;
}

/* ---- open-flood: OPENs whose replies (each with an fd) are never read ---- */

static void open_msg(wire_msg *m, int i, void *svc)
{
        raw_open_msg(m, *(uint64_t *)svc, EXAMPLE_CLIENT, 0);
}

static int mode_open_flood(void)
{
        int n = (int)arg("n", 300, 1, 100000);
        long hold_ms = arg("hold", 5000, 0, 60000);
        uint64_t svc = 0;
        int s = session(&svc);
        if (s < 0)
                return 1;
        flood_unread(s, n, open_msg, &svc);
        hold(hold_ms);
        /* Only now look at what came back. */
        int unsolicited = 0, fds = 0, eof = 0;
        tally t = { 0 };
        for (int i = 0; i < 200000; i++) {
                int k = raw_recv(s, &R, 300);
                if (k == RAW_EOF)
                        eof = 1;
                if (k != RAW_GOT)
                        break;
                fds += R.nfds;
                if (R.fd >= 0)
                        close(R.fd);
                if (R.unsolicited)
                        unsolicited++;
                tally_add(&t, R.h.result);
        }
        say("ok", t.ok);
        say("no_resources", t.no_res);
        say("other", t.other);
        say_code("last_other", t.last_other);
        say("unsolicited", unsolicited);
        say("fds", fds);
        say("eof", eof);
        return 0;
}

/* ---- zero: empty datagrams, between valid requests ---- */

static int send_zero(int fd)
{
        return raw_send(fd, "", 0, NULL, 0, false);
}

/* The unsolicited error an empty datagram earns; RAW_* if none came. */
static int32_t zero_answer(int fd, const char *key)
{
        if (send_zero(fd) < 0) {
                say_code(key, RAW_SEND);
                return RAW_SEND;
        }
        int k = raw_recv(fd, &R, T_REQ);
        int32_t code = k == RAW_GOT ? R.h.result : k;
        say_code(key, code);
        printf("%s_unsolicited %d\n", key, k == RAW_GOT && R.unsolicited);
        return code;
}

/* zero, req, zero, req sent back to back: the four answers in order. */
static int interleaved(int fd, wire_msg *a, wire_msg *b, uint64_t want_a, uint64_t want_b, bool calls)
{
        wire_header ha, hb;
        if (send_zero(fd) < 0 || raw_send_msg(fd, a, NULL, 0, false) < 0 || send_zero(fd) < 0 ||
            raw_send_msg(fd, b, NULL, 0, false) < 0)
                return 0;
        memcpy(&ha, a->buf, sizeof(ha));
        memcpy(&hb, b->buf, sizeof(hb));
        const wire_header *want[4] = { NULL, &ha, NULL, &hb };
        uint64_t sums[4] = { 0, want_a, 0, want_b };
        for (int i = 0; i < 4; i++) {
                if (raw_recv(fd, &R, T_REQ) != RAW_GOT)
                        return 0;
                if (R.fd >= 0)
                        close(R.fd);
                if (!want[i]) {
                        if (!R.unsolicited || R.h.result != TETHER_ERR_BAD_ARGUMENT)
                                return 0;
                        continue;
                }
                if (R.h.serial != want[i]->serial || R.h.result != TETHER_SUCCESS)
                        return 0;
                wire_call_reply rep;
                if (calls && (wire_call_reply_decode(R.body, R.body_len, false, &rep) != TETHER_SUCCESS ||
                              rep.scalars[0] != sums[i]))
                        return 0;
        }
        return 1;
}

static int mode_zero(void)
{
        int s = raw_connect(sock_path, 2000);
        if (s < 0)
                return 1;
        zero_answer(s, "pre_hello_zero");
        int32_t r = raw_hello(s, &R, T_REQ);
        say_code("hello", r);
        uint64_t root = 0;
        if (r == TETHER_SUCCESS && R.body_len >= 16)
                memcpy(&root, R.body + 8, 8);
        zero_answer(s, "session_zero");
        wire_msg m, m2;
        wire_msg_init(&m, WIRE_GET_ENTRY, raw_serial(), 0);
        wire_put_u64(&m, root);
        say_code("get_entry", raw_request(s, &m, NULL, 0, &R, T_REQ));
        wire_msg_init(&m, WIRE_GET_ENTRY, raw_serial(), 0);
        wire_put_u64(&m, root);
        wire_msg_init(&m2, WIRE_GET_ENTRY, raw_serial(), 0);
        wire_put_u64(&m2, root);
        say("session_interleaved", interleaved(s, &m, &m2, 0, 0, false));

        uint64_t svc = 0;
        say_code("find", raw_find(s, "ExampleDriver", &svc, &R, T_REQ));
        int c = -1;
        say_code("open", raw_open(s, svc, EXAMPLE_CLIENT, &c, &R, T_REQ));
        if (c < 0)
                return 1;
        zero_answer(c, "conn_zero");
        wire_call add = { .selector = EXAMPLE_ADD, .scalar_in_count = 2, .scalar_out_count = 1,
                          .scalars = { 20, 22 } };
        uint64_t sum = 0;
        say_code("conn_add", raw_call(c, &add, &sum, &R, T_REQ));
        say("conn_add_sum", (long)sum);
        add.scalars[0] = 1, add.scalars[1] = 2;
        raw_call_msg(&m, &add);
        add.scalars[0] = 3, add.scalars[1] = 4;
        raw_call_msg(&m2, &add);
        say("conn_interleaved", interleaved(c, &m, &m2, 3, 7, true));
        return 0;
}

/* ---- pass-fds: fds tetherd never asked for ---- */

/* The request's answer, and whether it named the request (serial, type). */
static void fd_case(int sock, const char *key, wire_msg *m, const int *fds, int nfds)
{
        wire_header sent;
        int32_t r = raw_send_msg(sock, m, fds, nfds, false) < 0 ? RAW_SEND : RAW_TIMEOUT;
        memcpy(&sent, m->buf, sizeof(sent));
        if (r != RAW_SEND) {
                int k = raw_recv(sock, &R, T_REQ);
                r = k == RAW_GOT ? R.h.result : k;
                if (k == RAW_GOT && R.fd >= 0)
                        close(R.fd);
        }
        say_code(key, r);
        printf("%s_echo %d\n", key,
               r <= 0 && R.h.serial == sent.serial && R.h.type == (sent.type | WIRE_REPLY_FLAG));
}

static void get_entry_msg(wire_msg *m, uint64_t id)
{
        wire_msg_init(m, WIRE_GET_ENTRY, raw_serial(), 0);
        wire_put_u64(m, id);
}

static void set_buffer_msg(wire_msg *m)
{
        wire_msg_init(m, WIRE_SET_BUFFER, raw_serial(), 0);
        wire_put_u32(m, 0);
        wire_put_u32(m, 0);
}

static void add_msg(wire_msg *m, uint64_t a, uint64_t b)
{
        wire_call c = { .selector = EXAMPLE_ADD, .scalar_in_count = 2, .scalar_out_count = 1, .scalars = { a, b } };
        raw_call_msg(m, &c);
}

static int mode_pass_fds(void)
{
        int storm = (int)arg("storm", 0, 0, 1000000);
        long storm_ms = arg("storm_ms", 60000, 0, 60000);
        long hold_ms = arg("hold", 0, 0, 60000);
        int s = raw_connect(sock_path, 2000);
        int sp[2], devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        int mem = raw_memfd(4096, true), mem2 = raw_memfd(4096, true);
        if (s < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0 || devnull < 0 || mem < 0 ||
            mem2 < 0)
                return 1;
        wire_msg m;
        /* Even before HELLO, an fd is refused and answered. */
        wire_msg_init(&m, WIRE_HELLO, raw_serial(), 0);
        wire_put_u32(&m, 64);
        wire_put_u32(&m, 0);
        fd_case(s, "pre_hello_fd", &m, &s, 1);
        int32_t r = raw_hello(s, &R, T_REQ);
        say_code("hello", r);
        uint64_t root = 0, svc = 0;
        if (r == TETHER_SUCCESS && R.body_len >= 16)
                memcpy(&root, R.body + 8, 8);

        int many[RAW_MAX_FDS];
        const int pool[4] = { s, sp[0], mem, devnull };
        for (int i = 0; i < RAW_MAX_FDS; i++)
                many[i] = pool[i % 4];
        get_entry_msg(&m, root);
        fd_case(s, "session_self", &m, &s, 1);
        get_entry_msg(&m, root);
        fd_case(s, "session_socket", &m, &sp[0], 1);
        get_entry_msg(&m, root);
        fd_case(s, "session_253", &m, many, RAW_MAX_FDS);
        get_entry_msg(&m, root);
        fd_case(s, "session_after", &m, NULL, 0);

        say_code("find", raw_find(s, "ExampleDriver", &svc, &R, T_REQ));
        int c = connection(s, svc, EXAMPLE_CLIENT);
        if (c < 0)
                return 1;
        add_msg(&m, 1, 1);
        fd_case(c, "conn_call_fd", &m, &mem, 1);
        set_buffer_msg(&m);
        fd_case(c, "conn_setbuf_socket", &m, &sp[0], 1);
        int two[2] = { mem, mem2 };
        set_buffer_msg(&m);
        fd_case(c, "conn_setbuf_two", &m, two, 2);
        set_buffer_msg(&m);
        fd_case(c, "conn_setbuf_self", &m, &c, 1);
        set_buffer_msg(&m);
        fd_case(c, "conn_setbuf_session", &m, &s, 1);
        many[0] = c;
        add_msg(&m, 1, 1);
        fd_case(c, "conn_253", &m, many, RAW_MAX_FDS);
        set_buffer_msg(&m);
        fd_case(c, "conn_setbuf_ok", &m, &mem, 1);
        wire_call add = { .selector = EXAMPLE_ADD, .scalar_in_count = 2, .scalar_out_count = 1, .scalars = { 5, 6 } };
        uint64_t sum = 0;
        say_code("conn_add", raw_call(c, &add, &sum, &R, T_REQ));
        say("conn_add_sum", (long)sum);

        /* Over and over: tetherd must never hold all those at once. */
        int storm_bad = 0, stormed = 0;
        uint64_t storm_end = raw_now_ms() + (uint64_t)storm_ms;
        for (int i = 0; i < storm && raw_now_ms() < storm_end; i++, stormed++) {
                int sock = i % 2 ? c : s;
                if (i % 2)
                        add_msg(&m, 1, 1);
                else
                        get_entry_msg(&m, root);
                r = raw_request(sock, &m, many, RAW_MAX_FDS, &R, T_REQ);
                if (R.fd >= 0)
                        close(R.fd);
                if (r != TETHER_ERR_BAD_ARGUMENT)
                        storm_bad++;
        }
        say("storm", stormed);
        say("storm_not_bad_argument", storm_bad);
        fflush(stdout);
        hold(hold_ms);

        /* A cycle: our own sockets in flight to tetherd, on a connection whose
         * loop is busy sleeping, and nobody left to read the answers. None of
         * it may keep the session or the connections alive once we are gone. */
        int c2 = connection(s, svc, EXAMPLE_CLIENT);
        wire_call nap = { .selector = EXAMPLE_SLEEP, .scalar_in_count = 1, .scalars = { 300 } };
        if (c2 >= 0) {
                raw_call_msg(&m, &nap);
                raw_send_msg(c2, &m, NULL, 0, true);
        }
        int mine[3] = { c, s, c2 >= 0 ? c2 : c };
        add_msg(&m, 1, 1);
        raw_send_msg(c, &m, mine, 3, true);
        get_entry_msg(&m, root);
        raw_send_msg(s, &m, mine, 3, true);
        if (c2 >= 0) {
                add_msg(&m, 1, 1);
                raw_send_msg(c2, &m, mine, 3, true);
        }
        sayf("fired 1\n");
        return 0;
}

/* ---- async-flood: async calls whose completions nobody reads ---- */

static int32_t delayed_add(int c, uint64_t port, uint64_t token, uint64_t delay)
{
        wire_call call = { .selector = EXAMPLE_DELAYED_ADD, .flags = WIRE_CALL_ASYNC, .scalar_in_count = 3,
                           .scalars = { token, 1, delay } };
        call.async_ref[0] = port;
        call.async_ref[1] = token;
        return raw_call(c, &call, NULL, &R, T_REQ);
}

static int mode_async_flood(void)
{
        enum { MAX_CONNS = 16 };
        int conns = (int)arg("conns", 5, 1, MAX_CONNS);
        int n = (int)arg("n", 70, 0, 100000);
        uint64_t delay = (uint64_t)arg("delay", 10000, 0, 100000);
        long hold_ms = arg("hold", 0, 0, 60000);
        long retry_ms = arg("retry", 0, 0, 60000);
        uint64_t svc = 0, port_id = 0;
        int s = session(&svc);
        if (s < 0)
                return 1;
        int port = -1;
        int32_t r = raw_port_create(s, &port_id, &port, &R, T_REQ);
        long retried = 0;
        say_code("port", r);
        if (r != TETHER_SUCCESS)
                return 1;
        /* The driver's own bound, on a connection of its own. */
        int x = connection(s, svc, EXAMPLE_CLIENT);
        if (x >= 0)
                say_code("delay_over", delayed_add(x, port_id, 1, 10001));
        tally all = { 0 };
        for (int k = 0; k < conns; k++) {
                int c = connection(s, svc, EXAMPLE_CLIENT);
                if (c < 0)
                        break;
                tally t = { 0 };
                for (int i = 0; i < n; i++) {
                        r = delayed_add(c, port_id, (uint64_t)i + 2, delay);
                        /* A driver's completions run on its work loop, and
                         * calls on their own threads: a client may be a few
                         * calls ahead of them, and at the bound for a moment. */
                        for (uint64_t t0 = raw_now_ms(); r == TETHER_ERR_NO_RESOURCES &&
                                                         raw_now_ms() - t0 < (uint64_t)retry_ms;
                             retried++) {
                                usleep(1000);
                                r = delayed_add(c, port_id, (uint64_t)i + 2, delay);
                        }
                        tally_add(&t, r);
                        if (r > 0)
                                break; /* the connection is gone */
                }
                say_conn(k, &t, &all);
        }
        say("ok", all.ok);
        say("no_resources", all.no_res);
        say("retried", retried);
        say("other", all.other);
        say_code("last_other", all.last_other);
        hold(hold_ms);
        return 0;
}

/* ---- ool-bomb: 1 GiB of out-of-line input where none is taken ---- */

static int32_t timed_call(int c, const wire_call *call, const char *key)
{
        uint64_t t0 = raw_now_ms();
        int32_t r = raw_call(c, call, NULL, &R, 20000);
        uint64_t ms = raw_now_ms() - t0;
        say_code(key, r);
        printf("%s_ms %llu\n", key, (unsigned long long)ms);
        return r;
}

static int32_t set_buffer(int c, int fd)
{
        wire_msg m;
        set_buffer_msg(&m);
        int32_t r = raw_request(c, &m, &fd, 1, &R, T_REQ);
        if (R.fd >= 0)
                close(R.fd);
        return r;
}

static int mode_ool_bomb(void)
{
        long hold_ms = arg("hold", 0, 0, 60000);
        const uint32_t gib = 1u << 30;
        uint64_t svc = 0;
        int s = session(&svc);
        if (s < 0)
                return 1;
        int c = connection(s, svc, EXAMPLE_CLIENT), l = connection(s, svc, EXAMPLE_CLIENT_LEGACY);
        int big = raw_memfd(gib, true);
        if (c < 0 || l < 0 || big < 0)
                return 1;
        say_code("setbuf", set_buffer(c, big));
        say_code("setbuf_legacy", set_buffer(l, big));
        /* No struct in the table: refused before anything is copied. */
        wire_call call = { .selector = EXAMPLE_ADD, .flags = WIRE_CALL_OOL_IN, .scalar_in_count = 2,
                           .scalar_out_count = 1, .struct_in_size = gib, .scalars = { 1, 2 } };
        timed_call(c, &call, "add_ool");
        /* A fixed size (0) in the table: the same. */
        call = (wire_call){ .selector = EXAMPLE_LEGACY_GET_NAME, .flags = WIRE_CALL_OOL_IN,
                            .struct_in_size = gib, .struct_out_size = 64 };
        timed_call(l, &call, "fixed_ool");
        /* More than the buffer holds. */
        call = (wire_call){ .selector = EXAMPLE_ECHO, .flags = WIRE_CALL_OOL_IN, .struct_in_size = gib,
                            .struct_out_size = 64 };
        close(big);
        big = raw_memfd(1u << 20, true);
        say_code("setbuf_small", set_buffer(c, big));
        timed_call(c, &call, "over_buffer");
        call = (wire_call){ .selector = EXAMPLE_ADD, .scalar_in_count = 2, .scalar_out_count = 1, .scalars = { 2, 3 } };
        uint64_t sum = 0;
        say_code("add_after", raw_call(c, &call, &sum, &R, T_REQ));
        say("add_after_sum", (long)sum);
        if (arg("echo", 0, 0, 1)) {
                /* A method that takes any size is given the most there is:
                 * every check passes, so tetherd copies 1 GiB that cost us
                 * nothing (sparse), and the driver writes 1 GiB back. */
                int in = raw_memfd(gib, true), out = raw_memfd(gib + 4096ull, true);
                wire_msg m;
                wire_msg_init(&m, WIRE_SET_BUFFER, raw_serial(), 0);
                wire_put_u32(&m, 1);
                wire_put_u32(&m, 0);
                int32_t r = raw_request(c, &m, &out, 1, &R, T_REQ);
                say_code("setbuf_out", r);
                say_code("setbuf_in", set_buffer(c, in));
                call = (wire_call){ .selector = EXAMPLE_ECHO, .flags = WIRE_CALL_OOL_IN | WIRE_CALL_OOL_OUT,
                                    .struct_in_size = gib, .struct_out_size = gib };
                timed_call(c, &call, "echo_ool");
        }
        hold(hold_ms);
        return 0;
}

/* ---- mem-hog: the driver's per-connection memory, touched ---- */

static int mode_mem_hog(void)
{
        int conns = (int)arg("conns", 8, 1, 1000);
        long hold_ms = arg("hold", 5000, 0, 60000);
        uint64_t svc = 0;
        int s = session(&svc);
        if (s < 0)
                return 1;
        int filled = 0;
        for (int i = 0; i < conns; i++) {
                int c = connection(s, svc, EXAMPLE_CLIENT);
                if (c < 0)
                        break;
                wire_msg m;
                wire_msg_init(&m, WIRE_MAP_MEMORY, raw_serial(), 0);
                wire_put_u32(&m, EXAMPLE_MEMORY_BUFFER);
                wire_put_u32(&m, 0);
                int32_t r = raw_request(c, &m, NULL, 0, &R, T_REQ);
                if (R.fd >= 0)
                        close(R.fd); /* tetherd keeps its mapping: ours is not needed */
                wire_call fill = { .selector = EXAMPLE_FILL_MEMORY, .scalar_in_count = 2,
                                   .scalars = { EXAMPLE_MEMORY_BUFFER, 0x5a } };
                if (r == TETHER_SUCCESS && raw_call(c, &fill, NULL, &R, 10000) == TETHER_SUCCESS)
                        filled++;
        }
        say("filled", filled);
        say("mib", (long)filled * (EXAMPLE_BUFFER_SIZE >> 20));
        hold(hold_ms);
        return 0;
}

/* ---- publish: the admin method, as anyone ---- */

static int mode_publish(void)
{
        enum { MAX = 1000 };
        int n = (int)arg("n", 20, 1, MAX);
        int remove_them = (int)arg("remove", 0, 0, 1);
        int s;
        int c = example_connection(&s);
        if (c < 0)
                return 1;
        static uint64_t ids[MAX];
        int ok = 0, not_priv = 0, no_res = 0, other = 0;
        int32_t last_other = 0;
        for (int i = 0; i < n; i++) {
                wire_call call = { .selector = EXAMPLE_PUBLISH_DEVICE, .scalar_in_count = 1, .scalar_out_count = 1,
                                   .scalars = { 1000u + (unsigned)i } };
                uint64_t id = 0;
                int32_t r = raw_call(c, &call, &id, &R, T_REQ);
                if (r > 0)
                        break; /* no answer: the connection is gone */
                if (r == TETHER_SUCCESS)
                        ids[ok++] = id;
                else if (r == TETHER_ERR_NOT_PRIVILEGED)
                        not_priv++;
                else if (r == TETHER_ERR_NO_RESOURCES)
                        no_res++;
                else
                        other++, last_other = r;
        }
        int removed = 0;
        for (int i = 0; remove_them && i < ok; i++) {
                wire_call call = { .selector = EXAMPLE_REMOVE_DEVICE, .scalar_in_count = 1, .scalars = { ids[i] } };
                removed += raw_call(c, &call, NULL, &R, T_REQ) == TETHER_SUCCESS;
        }
        say("ok", ok);
        say("not_privileged", not_priv);
        say("no_resources", no_res);
        say("other", other);
        say_code("last_other", last_other);
        say("removed", removed);
        return 0;
}

/* ---- log-spam: malformed datagrams, as fast as they go ---- */

static int mode_log_spam(void)
{
        enum { MAX_SOCKS = 17 };
        long seconds = arg("seconds", 3, 1, 30);
        int conns = (int)arg("conns", 3, 0, MAX_SOCKS - 1);
        uint64_t svc = 0;
        int socks[MAX_SOCKS], n = 0;
        socks[n] = session(&svc);
        if (socks[n++] < 0)
                return 1;
        for (int i = 0; i < conns; i++) {
                int c = connection(socks[0], svc, EXAMPLE_CLIENT);
                if (c >= 0)
                        socks[n++] = c;
        }
        /* A short header, and a header whose size field lies. */
        uint8_t junk[40];
        memset(junk, 0xa5, sizeof(junk));
        /* A client that reads its answers: at most a few requests in
         * flight per socket, so tetherd is never right to drop it. */
        enum { IN_FLIGHT = 16 };
        int waiting[MAX_SOCKS] = { 0 };
        long sent = 0, replies = 0, gone = 0;
        uint64_t deadline = raw_now_ms() + (uint64_t)seconds * 1000u;
        for (long i = 0; i < 5000000 && raw_now_ms() < deadline && gone < n; i++) {
                int k = (int)(i % n);
                if (socks[k] < 0)
                        continue;
                if (waiting[k] < IN_FLIGHT &&
                    raw_send(socks[k], junk, i % 3 ? sizeof(junk) : 3, NULL, 0, true) == 0) {
                        sent++;
                        waiting[k]++;
                }
                for (int j = 0; j < 64; j++) {
                        int got = raw_recv(socks[k], &R, waiting[k] < IN_FLIGHT ? 0 : 100);
                        if (got == RAW_EOF) {
                                close(socks[k]);
                                socks[k] = -1;
                                gone++;
                        }
                        if (got != RAW_GOT)
                                break;
                        replies++;
                        if (waiting[k])
                                waiting[k]--;
                }
        }
        say("sockets", n);
        say("sent", sent);
        say("replies", replies);
        say("closed_by_tetherd", gone);
        return 0;
}

/* ---- call-flood: calls on a connection whose replies are never read ---- */

static void add_i_msg(wire_msg *m, int i, void *unused)
{
        add_msg(m, (uint64_t)i, 1);
}

static int mode_call_flood(void)
{
        int n = (int)arg("n", 20000, 1, 1000000);
        long hold_ms = arg("hold", 3000, 0, 60000);
        int s;
        int c = example_connection(&s);
        if (c < 0)
                return 1;
        flood_unread(c, n, add_i_msg, NULL);
        hold(hold_ms);
        int replies = 0, eof = 0;
        for (int i = 0; i < 2000000; i++) {
                int k = raw_recv(c, &R, 300);
                if (k == RAW_EOF)
                        eof = 1;
                if (k != RAW_GOT)
                        break;
                replies++;
        }
        say("replies", replies);
        say("eof", eof);
        /* The session is not the connection: it still answers. */
        wire_msg m;
        get_entry_msg(&m, 1);
        int32_t r = raw_request(s, &m, NULL, 0, &R, T_REQ);
        say_code("session_after", r == TETHER_ERR_NOT_FOUND ? TETHER_SUCCESS : r);
        return 0;
}

/* ---- cycle: our session's own socket in flight to tetherd, behind ---- */
/* ---- whatever might make tetherd stop reading it                 ---- */

static int mode_cycle(void)
{
        int rounds = (int)arg("rounds", 3, 1, 50);
        int flood = (int)arg("flood", 5000, 0, 100000);
        int burst = (int)arg("burst", 60, 0, 10000);
        long sent = 0, opened = 0;
        for (int round = 0; round < rounds; round++) {
                uint64_t svc = 0;
                int s = session(&svc);
                if (s < 0)
                        return 1;
                wire_msg m;
                /* An OPEN whose reply (and the connection's socket in it)
                 * stays unread in our queue, so the session's socket
                 * carries the connection with it. */
                raw_open_msg(&m, svc, EXAMPLE_CLIENT, 0);
                if (raw_send_msg(s, &m, NULL, 0, false) == 0)
                        opened++;
                struct pollfd p = { .fd = s, .events = POLLIN };
                poll(&p, 1, 1000);
                /* Then, in turn: an empty datagram, our own socket, and a
                 * flood of unread requests, each third one empty and each
                 * third one with our socket: tetherd drops us for not
                 * reading while some are still queued, and what it does
                 * with those decides whether anything outlives us. */
                raw_send(s, "", 0, NULL, 0, true);
                get_entry_msg(&m, 1);
                if (raw_send_msg(s, &m, &s, 1, true) == 0)
                        sent++;
                uint64_t flood_end = raw_now_ms() + 3000;
                for (int i = 0; i < flood && raw_now_ms() < flood_end; i++) {
                        get_entry_msg(&m, 1);
                        int e = i % 3 == 0 ? raw_send(s, "", 0, NULL, 0, true)
                                           : raw_send_msg(s, &m, i % 3 == 2 ? &s : NULL, i % 3 == 2, true);
                        if (e == -EAGAIN) {
                                poll(&(struct pollfd){ .fd = s, .events = POLLOUT }, 1, 200);
                                continue;
                        }
                        if (e < 0)
                                break;
                        sent++;
                }
                /* Empty datagrams with our socket behind them, then a
                 * hang-up of our writing side: a reader that takes an empty
                 * datagram for the hang-up it now sees stops short of the
                 * socket in flight. */
                for (int i = 0; i < burst; i++) {
                        get_entry_msg(&m, 1);
                        if (raw_send(s, "", 0, NULL, 0, true) < 0 || raw_send(s, "", 0, NULL, 0, true) < 0 ||
                            raw_send_msg(s, &m, &s, 1, true) < 0)
                                break;
                        sent++;
                }
                shutdown(s, SHUT_WR);
                /* Leave it all: our copy goes, the one in flight stays. */
                close(s);
        }
        say("opened", opened);
        say("sent", sent);
        return 0;
}

/* ---- log-cycle: the same garbage, from a new session each time ---- */

static int mode_log_cycle(void)
{
        long seconds = arg("seconds", 3, 1, 30);
        int per = (int)arg("per", 12, 1, 1000);
        uint8_t junk[3] = { 0xa5, 0xa5, 0xa5 };
        long cycles = 0, sent = 0, refused = 0;
        uint64_t deadline = raw_now_ms() + (uint64_t)seconds * 1000u;
        for (long i = 0; i < 100000 && raw_now_ms() < deadline; i++) {
                int s = raw_connect(sock_path, 1000);
                if (s < 0)
                        break;
                if (raw_hello(s, &R, T_REQ) != TETHER_SUCCESS) {
                        refused++;
                        close(s);
                        usleep(10000);
                        continue;
                }
                for (int k = 0; k < per; k++) {
                        if (raw_send(s, junk, sizeof(junk), NULL, 0, false) < 0 || raw_recv(s, &R, T_REQ) != RAW_GOT)
                                break;
                        sent++;
                }
                close(s);
                cycles++;
        }
        say("cycles", cycles);
        say("sent", sent);
        say("refused", refused);
        return 0;
}

/* ---- port-spam: a port kept at the brim, one message read at a time ---- */

static int mode_port_spam(void)
{
        long seconds = arg("seconds", 3, 1, 30);
        int fill = (int)arg("fill", 400, 0, 100000);
        uint64_t svc = 0, port_id = 0;
        int s = session(&svc), port = -1;
        if (s < 0)
                return 1;
        int32_t r = raw_port_create(s, &port_id, &port, &R, T_REQ);
        say_code("port", r);
        int c = connection(s, svc, EXAMPLE_CLIENT);
        if (r != TETHER_SUCCESS || c < 0)
                return 1;
        long calls = 0, failed = 0, read_back = 0;
        /* Completions come at once (delay 0): the port overflows. */
        for (int i = 0; i < fill; i++) {
                r = delayed_add(c, port_id, (uint64_t)i, 0);
                if (r == TETHER_SUCCESS)
                        calls++;
                else
                        failed++;
                if (r > 0)
                        break;
        }
        /* Then room for one, and two more completions: one fits, the next
         * finds the port full again. */
        uint64_t deadline = raw_now_ms() + (uint64_t)seconds * 1000u;
        for (long i = 0; i < 1000000 && raw_now_ms() < deadline; i++) {
                if (raw_recv(port, &R, 10) == RAW_GOT)
                        read_back++;
                for (int k = 0; k < 2; k++) {
                        if (delayed_add(c, port_id, (uint64_t)i, 0) == TETHER_SUCCESS)
                                calls++;
                        else
                                failed++;
                }
        }
        say("calls", calls);
        say("failed", failed);
        say("read_back", read_back);
        return 0;
}

/* ---- queue-scribble: a data queue's header, as a hostile consumer writes it ---- */

static long q_slowest, q_calls, q_failed;

static int32_t q_call(int c, uint32_t selector, uint32_t n_in, const uint64_t *in, uint32_t n_out, uint64_t *out)
{
        wire_call call = { .selector = selector, .scalar_in_count = n_in, .scalar_out_count = n_out };
        memcpy(call.scalars, in, n_in * sizeof(uint64_t));
        uint64_t t0 = raw_now_ms();
        int32_t r = raw_call(c, &call, NULL, &R, T_REQ);
        long ms = (long)(raw_now_ms() - t0);
        if (ms > q_slowest)
                q_slowest = ms;
        if (r > 0)
                q_failed++; /* no answer at all */
        else
                q_calls++;
        wire_call_reply rep;
        if (r == TETHER_SUCCESS && n_out &&
            (wire_call_reply_decode(R.body, R.body_len, false, &rep) != TETHER_SUCCESS ||
             rep.scalar_out_count != n_out))
                return TETHER_ERR_IPC;
        if (r == TETHER_SUCCESS && n_out)
                memcpy(out, rep.scalars, n_out * sizeof(uint64_t));
        return r;
}

static int32_t q_map(int c, uint32_t type, uint64_t port, dq_shared **ret_hdr, size_t *ret_size, int *ret_fd)
{
        wire_msg m;
        wire_msg_init(&m, WIRE_DATA_QUEUE_MAP, raw_serial(), 0);
        wire_put_u32(&m, type);
        wire_put_u32(&m, 0);
        wire_put_u64(&m, port);
        wire_put_u64(&m, 1);
        int32_t r = raw_request(c, &m, NULL, 0, &R, T_REQ);
        *ret_hdr = NULL;
        if (r == TETHER_SUCCESS && R.fd >= 0 && R.body_len == 16) {
                uint64_t size;
                memcpy(&size, R.body, 8);
                void *map = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, R.fd, 0);
                if (map != MAP_FAILED) {
                        *ret_hdr = map;
                        *ret_size = (size_t)size;
                }
                if (ret_fd) {
                        *ret_fd = R.fd;
                        return r;
                }
        }
        if (R.fd >= 0 && r <= 0)
                close(R.fd);
        return r;
}

/* A serviced message: well formed, or body bytes of any length. */
static void q_serviced(int c, uint32_t type, uint32_t zero, size_t body_len)
{
        uint8_t m[WIRE_HEADER_SIZE + 16] = { 0 };
        if (body_len > 16)
                body_len = 16;
        wire_header h = { .type = WIRE_DATA_QUEUE_SERVICED, .version = WIRE_VERSION,
                          .size = (uint32_t)(WIRE_HEADER_SIZE + body_len) };
        memcpy(m, &h, sizeof(h));
        memcpy(m + WIRE_HEADER_SIZE, &type, 4);
        memcpy(m + WIRE_HEADER_SIZE + 4, &zero, 4);
        (void)raw_send(c, m, WIRE_HEADER_SIZE + body_len, NULL, 0, true);
}

typedef struct racer {
        dq_shared *hdr;
        volatile int stop;
} racer;

/* Head rewritten as fast as a thread can, while the driver reads it. */
static void *race_head(void *arg)
{
        racer *rc = arg;
        uint64_t x = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
        while (!rc->stop) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                uint32_t tail = atomic_load(&rc->hdr->tail);
                atomic_store(&rc->hdr->head, (x & 3) ? tail - (uint32_t)(x >> 40) % 4096 * 8 : (uint32_t)(x >> 32));
                atomic_store(&rc->hdr->producer_waiting, (uint32_t)(x >> 20) & 1);
        }
        return NULL;
}

static int mode_queue_scribble(void)
{
        long seconds = arg("seconds", 3, 1, 600);
        int s;
        int c = example_connection(&s);
        uint64_t port = 0;
        int port_fd = -1;
        if (c < 0 || raw_port_create(s, &port, &port_fd, &R, T_REQ) != TETHER_SUCCESS)
                return 1;
        enum { CAP = 16384, TYPE = 7 };
        uint64_t in[4] = { TYPE, CAP }, out[5];
        say_code("create", q_call(c, EXAMPLE_QUEUE_CREATE, 2, in, 1, out));
        dq_shared *hdr = NULL;
        size_t size = 0;
        int fd = -1;
        say_code("map_unknown_type", q_map(c, TYPE + 1, port, &hdr, &size, NULL));
        say_code("map_foreign_port", q_map(c, TYPE, port + 1000, &hdr, &size, NULL));
        say_code("map", q_map(c, TYPE, port, &hdr, &size, &fd));
        if (!hdr)
                return 1;
        /* The memfd is sealed: a driver writing into it can never be made
         * to fault by shrinking it. */
        say("truncate_errno", ftruncate(fd, 0) == 0 ? 0 : errno);
        close(fd);
        munmap(hdr, size);

        static const char *const patterns[] = { "ahead", "far", "unaligned", "stale_full", "drain_flood",
                                                "racing", "malformed" };
        enum { N_PATTERNS = sizeof(patterns) / sizeof(patterns[0]) };
        uint64_t deadline = raw_now_ms() + (uint64_t)seconds * 1000;
        long rounds = 0;
        for (unsigned k = 0; raw_now_ms() < deadline || k < N_PATTERNS; k++) {
                unsigned p = k % N_PATTERNS;
                in[0] = TYPE;
                (void)q_call(c, EXAMPLE_QUEUE_DESTROY, 1, in, 0, NULL);
                in[1] = CAP;
                if (q_call(c, EXAMPLE_QUEUE_CREATE, 2, in, 1, out) != TETHER_SUCCESS ||
                    q_map(c, TYPE, port, &hdr, &size, NULL) != TETHER_SUCCESS || !hdr)
                        return 1;
                /* A stream that never ends: the driver fills the queue,
                 * is refused, and waits to be told. */
                uint64_t prod[4] = { TYPE, UINT64_MAX >> 1, 64, 0 };
                (void)q_call(c, EXAMPLE_QUEUE_PRODUCE, 4, prod, 2, out);
                uint32_t tail = atomic_load(&hdr->tail);
                switch (p) {
                case 0: /* ahead of what the driver wrote */
                        atomic_store(&hdr->head, tail + 8);
                        q_serviced(c, TYPE, 0, 8);
                        break;
                case 1:
                        atomic_store(&hdr->head, tail ^ 0x5a5a5a58u);
                        q_serviced(c, TYPE, 0, 8);
                        break;
                case 2:
                        atomic_store(&hdr->head, tail - 4);
                        q_serviced(c, TYPE, 0, 8);
                        break;
                case 3: /* plausible but stale: full for ever; told over and over */
                        atomic_store(&hdr->head, tail - CAP);
                        for (int i = 0; i < 2000; i++)
                                q_serviced(c, TYPE, 0, 8);
                        break;
                case 4: /* everything taken at once, every time: a driver kept busy */
                        for (int i = 0; i < 2000; i++) {
                                atomic_store(&hdr->head, atomic_load(&hdr->tail));
                                q_serviced(c, TYPE, 0, 8);
                        }
                        break;
                case 5: {
                        racer rc = { .hdr = hdr };
                        pthread_t t;
                        if (pthread_create(&t, NULL, race_head, &rc) == 0) {
                                for (int i = 0; i < 200; i++)
                                        q_serviced(c, TYPE, 0, 8);
                                usleep(100 * 1000);
                                rc.stop = 1;
                                pthread_join(t, NULL);
                        }
                        break;
                }
                case 6: /* serviced that says nothing sensible */
                        atomic_store(&hdr->head, tail - CAP);
                        q_serviced(c, TYPE, 1, 8);
                        q_serviced(c, TYPE + 1, 0, 8);
                        q_serviced(c, TYPE, 0, 0);
                        q_serviced(c, TYPE, 0, 16);
                        q_serviced(c, UINT32_MAX, 0, 4);
                        break;
                }
                /* Garbage where the driver never reads: ignored. */
                hdr->magic = 0xdeadbeef;
                hdr->capacity = 0xffffffff;
                atomic_store(&hdr->tail, 0x12345678);
                in[0] = TYPE;
                int32_t r = q_call(c, EXAMPLE_QUEUE_STATS, 1, in, 5, out);
                if (r == TETHER_SUCCESS)
                        sayf("pattern %s last_error %d refused %llu serviced %llu\n", patterns[p], (int)(int64_t)out[3],
                             (unsigned long long)out[1], (unsigned long long)out[2]);
                else
                        say_code("stats_failed", r);
                munmap(hdr, size);
                rounds++;
        }
        say("rounds", rounds);
        say("calls", q_calls);
        say("unanswered", q_failed);
        say("slowest_ms", q_slowest);
        close(port_fd);
        return 0;
}

/* ---- stream-flood: streams whose results nobody reads ---- */

static int32_t stream(int c, uint64_t port, uint64_t token, uint64_t count, uint64_t interval)
{
        wire_call call = { .selector = EXAMPLE_STREAM, .flags = WIRE_CALL_ASYNC, .scalar_in_count = 2,
                           .scalars = { count, interval } };
        call.async_ref[0] = port;
        call.async_ref[1] = token;
        return raw_call(c, &call, NULL, &R, T_REQ);
}

static int32_t async_cancel(int c, uint64_t port, uint64_t token)
{
        wire_msg m;
        wire_msg_init(&m, WIRE_ASYNC_CANCEL, raw_serial(), 0);
        wire_put_u64(&m, port);
        wire_put_u64(&m, token);
        return raw_request(c, &m, NULL, 0, &R, T_REQ);
}

static int mode_stream_flood(void)
{
        enum { MAX_CONNS = 16 };
        int conns = (int)arg("conns", 5, 1, MAX_CONNS);
        int n = (int)arg("n", 70, 0, 1000);
        uint64_t count = (uint64_t)arg("count", EXAMPLE_MAX_STREAM_COUNT, 0, 1000000);
        uint64_t interval = (uint64_t)arg("interval", 0, 0, 100000);
        bool cancel = arg("cancel", 0, 0, 1);
        long hold_ms = arg("hold", 0, 0, 60000);
        uint64_t svc = 0, port_id = 0;
        int s = session(&svc);
        if (s < 0)
                return 1;
        int port = -1;
        int32_t r = raw_port_create(s, &port_id, &port, &R, T_REQ);
        say_code("port", r);
        if (r != TETHER_SUCCESS)
                return 1;
        int c[MAX_CONNS];
        int cancelled = 0, reopened = 0;
        tally all = { 0 };
        uint64_t token = 1;
        for (int k = 0; k < conns; k++) {
                c[k] = connection(s, svc, EXAMPLE_CLIENT);
                if (c[k] < 0)
                        break;
                tally t = { 0 };
                uint64_t first = token;
                for (int i = 0; i < n; i++) {
                        r = stream(c[k], port_id, token++, count, interval);
                        tally_add(&t, r);
                        if (r > 0)
                                break; /* the connection is gone */
                }
                say_conn(k, &t, &all);
                int c_ok = t.ok;
                /* A cancel is not a way around the bound: a stream
                 * cancelled counts until its driver has been told, and a
                 * new one opens only then. */
                if (cancel && c_ok) {
                        for (int i = 0; i < c_ok; i++) {
                                if (async_cancel(c[k], port_id, first + (uint64_t)i) == TETHER_SUCCESS)
                                        cancelled++;
                                if (stream(c[k], port_id, token++, count, interval) == TETHER_SUCCESS)
                                        reopened++;
                        }
                }
        }
        say("ok", all.ok);
        say("no_resources", all.no_res);
        say("other", all.other);
        say_code("last_other", all.last_other);
        say("cancelled", cancelled);
        say("reopened", reopened);
        hold(hold_ms);
        return 0;
}

/* ---- port-churn: ports a driver host is told of, then closed ---- */

static int mode_port_churn(void)
{
        long rounds = arg("rounds", 300, 1, 100000);
        long hold_ms = arg("hold", 0, 0, 60000);
        int s;
        int c = example_connection(&s);
        if (c < 0)
                return 1;
        long done = 0, busy = 0, other = 0;
        int32_t last_other = 0;
        /* A refused PORT_CREATE is tried again, a bounded number of times:
         * each round is a port made, named and closed. */
        for (long i = 0; done + other < rounds && i < rounds * 20; i++) {
                uint64_t port_id = 0;
                int port = -1;
                int32_t r = raw_port_create(s, &port_id, &port, &R, T_REQ);
                if (r == TETHER_ERR_NO_RESOURCES) {
                        /* tetherd has not yet seen the last ones close:
                         * it does so from its main loop, a moment later. */
                        busy++;
                        usleep(2000);
                        continue;
                }
                if (r != TETHER_SUCCESS) {
                        other++, last_other = r;
                        break;
                }
                /* A count of 0 is the driver's BadArgument, after the port
                 * was checked: the host holds the port, nothing runs. */
                r = stream(c, port_id, (uint64_t)i + 1, 0, 0);
                if (r == TETHER_ERR_BAD_ARGUMENT)
                        done++;
                else
                        other++, last_other = r;
                close(port);
        }
        say("rounds", done);
        say("busy", busy);
        say("other", other);
        say_code("last_other", last_other);
        hold(hold_ms);
        return 0;
}

int main(int argc, char **argv)
{
        if (argc < 3) {
                fprintf(stderr, "usage: attacker SOCKET MODE [key=value ...]\n");
                return 2;
        }
        sock_path = argv[1];
        const char *mode = argv[2];
        n_args = argc - 3;
        args = argv + 3;
        /* Whatever tetherd does, no mode outlives this (SIGALRM ends us). */
        alarm((unsigned)arg("limit", 120, 1, 3600));
        printf("mode %s\npid %d\nuid %d\n", mode, (int)getpid(), (int)getuid());
        fflush(stdout);
        static const struct {
                const char *name;
                int (*fn)(void);
        } modes[] = {
                { "silent", mode_silent },         { "hog", mode_hog },
                { "open-flood", mode_open_flood }, { "zero", mode_zero },
                { "pass-fds", mode_pass_fds },     { "async-flood", mode_async_flood },
                { "ool-bomb", mode_ool_bomb },     { "publish", mode_publish },
                { "log-spam", mode_log_spam },     { "log-cycle", mode_log_cycle },
                { "port-spam", mode_port_spam },   { "call-flood", mode_call_flood },
                { "cycle", mode_cycle },           { "mem-hog", mode_mem_hog },
                { "queue-scribble", mode_queue_scribble },
                { "stream-flood", mode_stream_flood }, { "port-churn", mode_port_churn },
        };
        for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
                if (!strcmp(mode, modes[i].name)) {
                        int r = modes[i].fn();
                        printf("done %d\n", r);
                        fflush(stdout);
                        /* Straight out: the sockets close with the process,
                         * whatever is still in flight. */
                        _exit(r);
                }
        }
        fprintf(stderr, "attacker: unknown mode %s\n", mode);
        return 2;
}
