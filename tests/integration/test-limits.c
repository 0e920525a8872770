/* SPDX-License-Identifier: MIT */
/* Bad input and bounded resources at the level of single requests, each
 * against the real tetherd: what one misbehaving client (often as uid
 * 65534, speaking raw wire) gets back, and that it leaves nothing behind.
 * The hostile suite (tests/hostile) runs such clients at scale. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "example/example.h"
#include "harness.h"
#include "raw.h"

static harness H;

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

static long rss_kib(pid_t pid)
{
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        FILE *f = fopen(path, "r");
        long kib = -1;
        while (f && fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
                        break;
        if (f)
                fclose(f);
        return kib;
}

static uint64_t example_id(void)
{
        tether_session *s = harness_session(&H);
        uint64_t id = harness_find(s, "ExampleDriver");
        tether_session_close(s);
        return id;
}

static uint32_t example_open_count(void)
{
        tether_session *s = harness_session(&H);
        tether_entry_info *info = NULL;
        assert_int_equal(tether_registry_entry_get_info(s, harness_find(s, "ExampleDriver"), &info), TETHER_SUCCESS);
        uint32_t n = info->open_count;
        tether_entry_info_free(info);
        tether_session_close(s);
        return n;
}

/* Run fn in a child as uid/gid 65534; its exit status (0: all held). */
static int as_nobody(int (*fn)(void *), void *arg)
{
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
                    setresuid(65534, 65534, 65534) < 0)
                        _exit(100);
                _exit(fn(arg));
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

static void add_call(wire_msg *m, uint32_t serial, uint64_t a, uint64_t b)
{
        wire_call c = { .selector = EXAMPLE_ADD, .scalar_in_count = 2, .scalar_out_count = 1, .scalars = { a, b } };
        wire_msg_init(m, WIRE_CALL, serial, 0);
        wire_call_encode(m, &c);
        wire_msg_finish(m);
}

typedef struct settle {
        int fds;
        uint32_t opens;
} settle;

static bool settled(void *arg)
{
        settle *want = arg;
        return harness_fd_count(&H) <= want->fds && example_open_count() == want->opens;
}

/* tetherd's fd count once earlier tests' hang-ups have been noticed (the
 * main loop sees them asynchronously): the same over 100 ms. */
static int quiet_fds(void)
{
        int prev = harness_fd_count(&H);
        for (int i = 0; i < 50; i++) {
                usleep(100000);
                int now = harness_fd_count(&H);
                if (now == prev)
                        return now;
                prev = now;
        }
        return prev;
}

/* ---- 0-byte datagrams: malformed, not a hang-up ---- */

static void zero_byte_datagrams_are_malformed(void **state)
{
        int fd = raw_session(H.sock);
        int conn = raw_open(fd, example_id(), EXAMPLE_CLIENT);
        wire_msg m;
        for (int i = 0; i < 3; i++) {
                int socks[2] = { fd, conn };
                for (int k = 0; k < 2; k++) {
                        wire_header h;
                        assert_int_equal(raw_exchange_header(socks[k], "", 0, &h), TETHER_ERR_BAD_ARGUMENT);
                        assert_int_equal(h.type, WIRE_REPLY_FLAG);
                        assert_int_equal(h.serial, 0);
                }
                /* Both still served. */
                wire_msg_init(&m, WIRE_GET_ENTRY, 10 + i, 0);
                wire_put_u64(&m, example_id());
                wire_msg_finish(&m);
                assert_int_equal(raw_exchange(fd, m.buf, m.len), TETHER_SUCCESS);
                add_call(&m, 20 + i, 2, 3);
                assert_int_equal(raw_exchange(conn, m.buf, m.len), TETHER_SUCCESS);
        }
        close(conn);
        close(fd);
}

/* ---- fds a request must not carry ---- */

static void passed_fds_are_refused(void **state)
{
        int before = quiet_fds();
        int fd = raw_session(H.sock);
        int conn = raw_open(fd, example_id(), EXAMPLE_CLIENT);
        int fds[WIRE_MAX_PASSED_FDS];
        for (int i = 0; i < WIRE_MAX_PASSED_FDS; i++)
                fds[i] = i % 2 ? dup(fd) : dup(conn); /* its own sockets */
        wire_msg m;
        static uint8_t buf[WIRE_MAX_MESSAGE];
        size_t len;
        wire_header h;
        int counts[] = { 1, 2, 9, WIRE_MAX_PASSED_FDS };
        for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
                /* On the session socket, any fd at all. */
                wire_msg_init(&m, WIRE_GET_ENTRY, 40 + (uint32_t)i, 0);
                wire_put_u64(&m, example_id());
                wire_msg_finish(&m);
                raw_send_fds(fd, &m, fds, counts[i]);
                assert_int_equal(wire_recv(fd, buf, sizeof(buf), &len, NULL), TETHER_SUCCESS);
                memcpy(&h, buf, sizeof(h));
                assert_int_equal(h.result, TETHER_ERR_BAD_ARGUMENT);
                assert_int_equal(h.serial, 40 + i); /* an answer to that request */
                /* On the connection: a call carries none, SET_BUFFER one
                 * sealed memfd and never a socket. */
                add_call(&m, 50 + (uint32_t)i, 1, 1);
                raw_send_fds(conn, &m, fds, counts[i]);
                assert_int_equal(wire_recv(conn, buf, sizeof(buf), &len, NULL), TETHER_SUCCESS);
                memcpy(&h, buf, sizeof(h));
                assert_int_equal(h.result, TETHER_ERR_BAD_ARGUMENT);
                assert_int_equal(h.serial, 50 + i);
                wire_msg_init(&m, WIRE_SET_BUFFER, 60 + (uint32_t)i, 0);
                wire_put_u32(&m, 0);
                wire_put_u32(&m, 0);
                wire_msg_finish(&m);
                raw_send_fds(conn, &m, fds, counts[i]);
                assert_int_equal(wire_recv(conn, buf, sizeof(buf), &len, NULL), TETHER_SUCCESS);
                memcpy(&h, buf, sizeof(h));
                assert_int_equal(h.result, TETHER_ERR_BAD_ARGUMENT);
        }
        for (int i = 0; i < WIRE_MAX_PASSED_FDS; i++)
                close(fds[i]);
        /* Still served, and every fd passed was closed at once. */
        add_call(&m, 70, 4, 5);
        assert_int_equal(raw_exchange(conn, m.buf, m.len), TETHER_SUCCESS);
        /* The session, and the connection when tetherd runs the driver
         * itself (--in-process); by default a driver host holds it. */
        const char *in_process = getenv("TETHER_IN_PROCESS");
        assert_int_equal(harness_fd_count(&H), before + (in_process && !strcmp(in_process, "1") ? 2 : 1));
        close(conn);
        close(fd);
        settle want = { before, 0 };
        assert_true(harness_wait(settled, &want, 3000));
}

/* The attack that once kept sessions forever: OPEN with the reply (and the
 * connection's fd in it) left unread, then a 0-byte datagram and, right
 * behind it, a message passing the session's own socket back to tetherd.
 * A reader that took the 0-byte datagram for a hang-up stopped reading
 * with that socket in flight in its queue: a cycle the kernel cannot
 * collect because tetherd holds its end open. Nothing may outlive the
 * client. */
static int unread_replies_child(void *arg)
{
        uint64_t id = *(const uint64_t *)arg;
        for (int round = 0; round < 100; round++) {
                int fd = raw_session(H.sock);
                raw_open_request(fd, id, EXAMPLE_CLIENT);
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (poll(&p, 1, 5000) != 1) /* the reply is queued, unread */
                        return 2;
                send(fd, "", 0, MSG_NOSIGNAL);
                wire_msg m;
                wire_msg_init(&m, WIRE_GET_ENTRY, 3, 0);
                wire_put_u64(&m, id);
                wire_msg_finish(&m);
                raw_send_fds(fd, &m, &fd, 1);
                close(fd);
        }
        return 0;
}

static void unread_replies_and_passed_sockets_leave_nothing(void **state)
{
        settle want = { quiet_fds(), example_open_count() };
        uint64_t id = example_id();
        assert_int_equal(as_nobody(unread_replies_child, &id), 0);
        assert_true(harness_wait(settled, &want, 5000));
}

/* ---- out-of-line input: the table first, the copy after ---- */

static void out_of_line_input_is_checked_before_copy(void **state)
{
        int fd = raw_session(H.sock);
        int conn = raw_open(fd, example_id(), EXAMPLE_CLIENT);
        /* 1 GiB that costs its sender nothing: sparse, never written. */
        int mfd = memfd_create("bomb", MFD_ALLOW_SEALING);
        assert_int_equal(ftruncate(mfd, (off_t)TETHER_MAX_OOL_STRUCT), 0);
        assert_int_equal(fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
        assert_int_equal(raw_set_buffer(conn, 0, mfd), TETHER_SUCCESS);
        close(mfd);

        long rss = rss_kib(H.pid);
        wire_msg m;
        /* ADD takes no struct; MY_METHOD takes none either (2 scalars). */
        uint32_t selectors[] = { EXAMPLE_ADD, EXAMPLE_MY_METHOD, EXAMPLE_COUNT };
        for (size_t i = 0; i < sizeof(selectors) / sizeof(selectors[0]); i++) {
                wire_call c = { .selector = selectors[i], .flags = WIRE_CALL_OOL_IN,
                                .struct_in_size = TETHER_MAX_OOL_STRUCT };
                wire_msg_init(&m, WIRE_CALL, 10 + (uint32_t)i, 0);
                wire_call_encode(&m, &c);
                wire_msg_finish(&m);
                uint64_t t0 = now_ms();
                assert_int_equal(raw_exchange(conn, m.buf, m.len), TETHER_ERR_BAD_ARGUMENT);
                assert_true(now_ms() - t0 < 100);
        }
        /* Nothing was copied: tetherd did not grow by the input. */
        assert_true(rss_kib(H.pid) - rss < 16 * 1024);
        add_call(&m, 20, 2, 2);
        assert_int_equal(raw_exchange(conn, m.buf, m.len), TETHER_SUCCESS);
        close(conn);
        close(fd);
}

/* An empty struct "out of line" with no buffer registered: no memcpy of 0
 * bytes through NULL anywhere (UBSan flags one in the ASan build). */
static void empty_out_of_line_structs(void **state)
{
        int fd = raw_session(H.sock);
        int conn = raw_open(fd, example_id(), EXAMPLE_CLIENT);
        wire_call c = { .selector = EXAMPLE_ECHO, .flags = WIRE_CALL_OOL_IN | WIRE_CALL_OOL_OUT };
        assert_int_equal(raw_call(conn, 1, &c), TETHER_SUCCESS);
        c = (wire_call){ .selector = EXAMPLE_PRODUCE, .flags = WIRE_CALL_OOL_OUT };
        assert_int_equal(raw_call(conn, 2, &c), TETHER_SUCCESS);
        close(conn);
        close(fd);
}

/* ---- async calls: bounded per connection and per session ---- */

static int completions;

static void on_done(void *refcon, tether_ret_t result, const uint64_t *args, uint32_t n)
{
        if (result == TETHER_SUCCESS && n == 2 && args[0] == 5)
                completions++;
}

static tether_ret_t delayed_add(tether_connect *c, tether_notification_port *p, uint64_t ms)
{
        uint64_t in[3] = { 2, 3, ms };
        return tether_call_async_method(c, EXAMPLE_DELAYED_ADD, p, on_done, NULL, in, 3, NULL, 0, NULL, NULL, NULL,
                                        NULL);
}

static void async_calls_are_bounded(void **state)
{
        enum { PER_CONN = 64, PER_SESSION = 256 };
        tether_session *s = harness_session(&H);
        tether_notification_port *p = NULL;
        assert_int_equal(tether_notification_port_create(s, &p), TETHER_SUCCESS);
        tether_connect *c[PER_SESSION / PER_CONN + 1];
        for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
                assert_int_equal(tether_service_open(s, harness_find(s, "ExampleDriver"), EXAMPLE_CLIENT, 0, &c[i]),
                                 TETHER_SUCCESS);
        completions = 0;
        /* Per connection: the 65th outstanding call is refused. */
        for (int i = 0; i < PER_CONN; i++)
                assert_int_equal(delayed_add(c[0], p, 400), TETHER_SUCCESS);
        assert_int_equal(delayed_add(c[0], p, 400), TETHER_ERR_NO_RESOURCES);
        /* Other connections of the session, up to its own bound. */
        for (int k = 1; k < PER_SESSION / PER_CONN; k++)
                for (int i = 0; i < PER_CONN; i++)
                        assert_int_equal(delayed_add(c[k], p, 400), TETHER_SUCCESS);
        assert_int_equal(delayed_add(c[PER_SESSION / PER_CONN], p, 400), TETHER_ERR_NO_RESOURCES);
        /* A sync call on a full connection still works. */
        uint64_t in[2] = { 1, 2 }, out = 0;
        uint32_t n = 1;
        assert_int_equal(tether_call_scalar_method(c[0], EXAMPLE_ADD, in, 2, &out, &n), TETHER_SUCCESS);
        /* Completions give the room back. */
        for (int i = 0; i < 300 && completions < PER_SESSION; i++) {
                usleep(10000);
                tether_notification_port_dispatch(p);
        }
        assert_int_equal(completions, PER_SESSION);
        assert_int_equal(delayed_add(c[0], p, 0), TETHER_SUCCESS);
        assert_int_equal(delayed_add(c[PER_SESSION / PER_CONN], p, 0), TETHER_SUCCESS);
        /* A closed connection's calls stop counting against its session. */
        for (int i = 0; i < PER_CONN - 1; i++)
                assert_int_equal(delayed_add(c[1], p, 5000), TETHER_SUCCESS);
        tether_service_close(c[1]);
        for (int i = 0; i < PER_CONN - 1; i++)
                assert_int_equal(delayed_add(c[2], p, 0), TETHER_SUCCESS);
        /* Longer than the driver allows: its own refusal. */
        assert_int_equal(delayed_add(c[0], p, EXAMPLE_MAX_DELAY_MS + 1), TETHER_ERR_BAD_ARGUMENT);
        for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
                if (i != 1)
                        tether_service_close(c[i]);
        tether_notification_port_destroy(p);
        tether_session_close(s);
}

/* ---- publishing nubs: admin only, bounded per service ---- */

static int publish_child(void *arg)
{
        tether_session *s = NULL;
        if (tether_session_open(H.sock, &s) != TETHER_SUCCESS)
                return 1;
        tether_connect *c = NULL;
        if (tether_service_open(s, *(uint64_t *)arg, EXAMPLE_CLIENT, 0, &c) != TETHER_SUCCESS)
                return 2;
        uint64_t unit = 7, nub = 0;
        uint32_t n = 1;
        int ret = tether_call_scalar_method(c, EXAMPLE_PUBLISH_DEVICE, &unit, 1, &nub, &n) ==
                                  TETHER_ERR_NOT_PRIVILEGED
                          ? 0
                          : 3;
        tether_session_close(s);
        return ret;
}

static void publishing_needs_admin_and_is_bounded(void **state)
{
        uint64_t id = example_id();
        assert_int_equal(as_nobody(publish_child, &id), 0);

        tether_session *s = harness_session(&H);
        tether_connect *c = NULL;
        assert_int_equal(tether_service_open(s, id, EXAMPLE_CLIENT, 0, &c), TETHER_SUCCESS);
        uint64_t *kids = NULL;
        size_t existing = 0;
        assert_int_equal(tether_registry_entry_get_children(s, id, &kids, &existing), TETHER_SUCCESS);
        free(kids);
        uint64_t nubs[70];
        size_t made = 0;
        tether_ret_t r = TETHER_SUCCESS;
        while (made < 70) {
                uint64_t unit = 1000 + made;
                uint32_t n = 1;
                r = tether_call_scalar_method(c, EXAMPLE_PUBLISH_DEVICE, &unit, 1, &nubs[made], &n);
                if (r != TETHER_SUCCESS)
                        break;
                made++;
        }
        assert_int_equal(r, TETHER_ERR_NO_RESOURCES);
        assert_int_equal(existing + made, 64);
        for (size_t i = 0; i < made; i++) {
                uint32_t n = 0;
                assert_int_equal(tether_call_scalar_method(c, EXAMPLE_REMOVE_DEVICE, &nubs[i], 1, NULL, &n),
                                 TETHER_SUCCESS);
        }
        tether_service_close(c);
        tether_session_close(s);
}

/* ---- what root starts does not come out of root's reserve ---- */

/* A session as uid, by hand; its socket, or -1 once tetherd says no. */
static int session_as_child(const char *path)
{
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
        struct timeval tv = { .tv_sec = 3 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        wire_msg m;
        wire_msg_init(&m, WIRE_HELLO, 1, 0);
        wire_put_u32(&m, 64);
        wire_put_u32(&m, 0);
        wire_msg_finish(&m);
        static uint8_t buf[WIRE_MAX_MESSAGE];
        size_t len = 0;
        wire_header h = { 0 };
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || send(fd, m.buf, m.len, MSG_NOSIGNAL) < 0 ||
            wire_recv(fd, buf, sizeof(buf), &len, NULL) != TETHER_SUCCESS || len < sizeof(h) ||
            (memcpy(&h, buf, sizeof(h)), h.result != TETHER_SUCCESS)) {
                close(fd);
                return -1;
        }
        return fd;
}

/* A child as uid that takes sessions until refused, says how many on
 * `out`, and holds them until `hold` closes. */
static pid_t hog_as(uid_t uid, const char *path, int out, int hold, int hold_w)
{
        pid_t pid = fork();
        if (pid)
                return pid;
        close(hold_w); /* the parent's closing it is the signal */
        if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
                _exit(100);
        int n = 0;
        while (n < 64 && session_as_child(path) >= 0)
                n++;
        if (write(out, &n, sizeof(n)) != sizeof(n))
                _exit(101);
        char c;
        while (read(hold, &c, 1) > 0)
                ;
        _exit(0);
}

static void roots_own_services_do_not_eat_roots_reserve(void **state)
{
        /* A small fd limit, and root's own doing first: 60 devices published,
         * each a service with a work loop (two fds of tetherd's own). */
        harness L = { .nofile = 256 };
        assert_int_equal(harness_start(&L), 0);
        tether_session *s = harness_session(&L);
        tether_connect *c = NULL;
        assert_int_equal(tether_service_open(s, harness_find(s, "ExampleDriver"), EXAMPLE_CLIENT, 0, &c),
                         TETHER_SUCCESS);
        uint64_t nubs[60];
        for (int i = 0; i < 60; i++) {
                uint64_t unit = 500 + (uint64_t)i;
                uint32_t n = 1;
                assert_int_equal(tether_call_scalar_method(c, EXAMPLE_PUBLISH_DEVICE, &unit, 1, &nubs[i], &n),
                                 TETHER_SUCCESS);
        }
        usleep(300000); /* the devices start */
        /* Then three users, each taking all the sessions it may. */
        int counts[2], holds[2];
        assert_int_equal(pipe(counts), 0);
        assert_int_equal(pipe(holds), 0);
        uid_t uids[] = { 65534, 1000, 1001 };
        pid_t kids[3];
        int total = 0;
        for (int i = 0; i < 3; i++) {
                kids[i] = hog_as(uids[i], L.sock, counts[1], holds[0], holds[1]);
                int n = 0;
                assert_int_equal(read(counts[0], &n, sizeof(n)), (ssize_t)sizeof(n));
                total += n;
        }
        close(holds[0]);
        /* Root still gets in: the users' pool shrank by what root's devices took. */
        tether_session *t[8];
        for (int i = 0; i < 8; i++)
                assert_int_equal(tether_session_open(L.sock, &t[i]), TETHER_SUCCESS);
        for (int i = 0; i < 8; i++)
                tether_session_close(t[i]);
        print_message("three users held %d sessions beside root's 60 devices\n", total);
        close(holds[1]);
        for (int i = 0; i < 3; i++)
                waitpid(kids[i], NULL, 0);
        close(counts[0]);
        close(counts[1]);
        for (int i = 0; i < 60; i++) {
                uint32_t n = 0;
                tether_call_scalar_method(c, EXAMPLE_REMOVE_DEVICE, &nubs[i], 1, NULL, &n);
        }
        tether_service_close(c);
        tether_session_close(s);
        assert_int_equal(harness_stop(&L), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(zero_byte_datagrams_are_malformed),
                cmocka_unit_test(passed_fds_are_refused),
                cmocka_unit_test(unread_replies_and_passed_sockets_leave_nothing),
                cmocka_unit_test(out_of_line_input_is_checked_before_copy),
                cmocka_unit_test(empty_out_of_line_structs),
                cmocka_unit_test(async_calls_are_bounded),
                cmocka_unit_test(publishing_needs_admin_and_is_bounded),
                cmocka_unit_test(roots_own_services_do_not_eat_roots_reserve),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
