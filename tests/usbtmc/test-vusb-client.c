/* SPDX-License-Identifier: MIT */
/* The vusb backend against a hostile server: a thread on the other end of
 * the socket pair that answers with lies (descriptors no device has, more
 * data than asked for, wrong ids, garbage, silence). The client must fail
 * each with an error, bounded in time, copying nothing it was not asked
 * for (run under ASan to see that). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "usbtmc/backend-vusb.h"


/* The backend's ops, as usbtmc_vusb_attach sets them (ctx is v). */
static const usbtmc_backend_ops *vusb_ops(usbtmc_vusb *v)
{
        usbtmc t;
        usbtmc_vusb_attach(&t, v);
        return t.ops;
}

static double ms_now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- the fake server ---- */

typedef struct fake fake;
typedef void (*script_fn)(fake *f);

struct fake {
        int fd;                       /* the server's end */
        int client_fd;                /* the client's, until open takes it */
        pthread_t thread;
        script_fn script;
        vusb_info info;               /* what DESCRIBE answers, unless describe_raw is set */
        const uint8_t *describe_raw;
        size_t describe_raw_len;
        int32_t describe_status;
        const uint8_t *lie;           /* the script's bad reply, when it sends one given */
        size_t lie_len;
        uint8_t req[VUSB_MAX_MSG];    /* the last request */
        size_t req_len;
        vusb_header h;
        /* What the script saw, for the test to check after joining (cmocka
         * asserts only on the test's own thread). */
        unsigned requests;
        size_t biggest_out;
        int problems;
};

static void *fake_thread(void *arg)
{
        fake *f = arg;
        f->script(f);
        return NULL;
}

static vusb_info good_info(void)
{
        vusb_info i = { .vendor = 0x1234, .product = 0x5678, .interface = 0, .protocol = 1, .ep_out = 0x02,
                        .ep_in = 0x81, .ep_interrupt = 0x83, .max_packet_in = 512, .max_data = VUSB_MAX_DATA,
                        .serial = "EVIL1" };
        return i;
}

static fake *fake_start(script_fn script)
{
        fake *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        f->client_fd = sv[0];
        f->fd = sv[1];
        f->script = script;
        f->info = good_info();
        return f;
}

static void fake_run(fake *f)
{
        assert_int_equal(pthread_create(&f->thread, NULL, fake_thread, f), 0);
}

static void fake_end(fake *f)
{
        pthread_join(f->thread, NULL);
        close(f->fd);
        free(f);
}

/* The next request, waiting up to 5 s. 0, or -1 on hang-up or silence. */
static int next(fake *f)
{
        struct pollfd p = { .fd = f->fd, .events = POLLIN };
        if (poll(&p, 1, 5000) != 1)
                return -1;
        ssize_t n = recv(f->fd, f->req, sizeof(f->req), 0);
        if (n <= 0 || vusb_header_decode(f->req, (size_t)n, &f->h) != TETHER_SUCCESS) {
                if (n > 0)
                        f->problems++;
                return -1;
        }
        f->req_len = (size_t)n;
        f->requests++;
        return 0;
}

static void send_raw(fake *f, const void *p, size_t len)
{
        if (send(f->fd, p, len, MSG_NOSIGNAL) != (ssize_t)len)
                f->problems++;
}

static void reply_to(fake *f, uint32_t id, uint16_t op, int32_t status, const void *body, size_t len)
{
        static uint8_t buf[VUSB_HEADER_SIZE + VUSB_MAX_DATA + 64];
        vusb_header h = { .op = (uint16_t)(op | VUSB_REPLY), .version = VUSB_VERSION, .id = id, .status = status,
                          .size = (uint32_t)(VUSB_HEADER_SIZE + len) };
        vusb_header_encode(&h, buf);
        if (len)
                memcpy(buf + VUSB_HEADER_SIZE, body, len);
        send_raw(f, buf, VUSB_HEADER_SIZE + len);
}

static void reply(fake *f, int32_t status, const void *body, size_t len)
{
        reply_to(f, f->h.id, f->h.op, status, body, len);
}

static int answer_describe(fake *f)
{
        if (next(f) < 0 || f->h.op != VUSB_DESCRIBE) {
                f->problems++;
                return -1;
        }
        if (f->describe_raw) {
                reply(f, f->describe_status, f->describe_raw, f->describe_raw_len);
                return 0;
        }
        uint8_t body[VUSB_DESCRIBE_FIXED + VUSB_MAX_SERIAL];
        size_t n = 0;
        if (vusb_info_encode(&f->info, body, sizeof(body), &n) != TETHER_SUCCESS)
                f->problems++;
        reply(f, f->describe_status, body, f->describe_status ? 0 : n);
        return 0;
}

static void s_describe_only(fake *f)
{
        answer_describe(f);
}

/* ---- opening ---- */

static void open_refuses_what_is_not_a_seqpacket_socket(void **state)
{
        usbtmc_vusb *v = NULL;
        assert_int_equal(usbtmc_vusb_open(-1, &v), TETHER_ERR_BAD_ARGUMENT);
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(usbtmc_vusb_open(sv[0], &v), TETHER_ERR_BAD_ARGUMENT);
        /* Taken, so closed, even when refused. */
        assert_int_equal(fcntl(sv[0], F_GETFD), -1);
        assert_int_equal(errno, EBADF);
        close(sv[1]);
        assert_null(v);
}

static void open_with_a_good_describe(void **state)
{
        fake *f = fake_start(s_describe_only);
        f->info.max_data = 4096;
        fake_run(f);
        usbtmc_vusb *v;
        assert_int_equal(usbtmc_vusb_open(f->client_fd, &v), TETHER_SUCCESS);
        vusb_info i;
        assert_int_equal(usbtmc_vusb_get_info(v, &i), TETHER_SUCCESS);
        assert_int_equal(i.vendor, 0x1234);
        assert_int_equal(i.product, 0x5678);
        assert_string_equal(i.serial, "EVIL1");
        usbtmc t;
        usbtmc_vusb_attach(&t, v);
        assert_int_equal(t.max_transfer, 4096 - 12);
        assert_int_equal(t.ep_interrupt, 0x83);
        usbtmc_vusb_close(v);
        fake_end(f);
        assert_int_equal(usbtmc_vusb_get_info(NULL, &i), TETHER_ERR_BAD_ARGUMENT);
}

/* DESCRIBE bodies no USBTMC interface could have, each refused. */
static void describe_lies_are_refused(void **state)
{
        uint8_t good[VUSB_DESCRIBE_FIXED + VUSB_MAX_SERIAL];
        size_t good_len = 0;
        vusb_info gi = good_info();
        assert_int_equal(vusb_info_encode(&gi, good, sizeof(good), &good_len), TETHER_SUCCESS);
        struct {
                size_t at;       /* byte to change, or SIZE_MAX for none */
                uint8_t value;
                size_t len;      /* body length sent (0: good_len) */
        } lies[] = {
                { SIZE_MAX, 0, 10 },       /* shorter than the fixed part */
                { 6, 0x82, 0 },            /* bulk-OUT with the IN bit */
                { 7, 0x01, 0 },            /* bulk-IN without it */
                { 7, 0x80, 0 },            /* endpoint 0 */
                { 7, 0x91, 0 },            /* reserved address bits */
                { 8, 0x81, 0 },            /* interrupt-IN the same as bulk-IN */
                { 8, 0x03, 0 },            /* interrupt endpoint OUT */
                { 9, 1, 0 },               /* reserved byte */
                { 10, 0, 0 },              /* wMaxPacketSize 0 (with byte 11 0) */
                { 14, 0x02, 0 },           /* max_data 128 KiB: past VUSB_MAX_DATA */
                { 16, '\n', 0 },           /* unprintable serial */
                { 17, '\0', 0 },           /* a NUL inside the serial */
        };
        for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
                uint8_t body[VUSB_DESCRIBE_FIXED + VUSB_MAX_SERIAL];
                memcpy(body, good, good_len);
                if (lies[i].at == 10) {
                        body[10] = 0;
                        body[11] = 0;
                } else if (lies[i].at != SIZE_MAX) {
                        body[lies[i].at] = lies[i].value;
                }
                fake *f = fake_start(s_describe_only);
                f->describe_raw = body;
                f->describe_raw_len = lies[i].len ? lies[i].len : good_len;
                fake_run(f);
                usbtmc_vusb *v = NULL;
                print_message("lie %zu\n", i);
                assert_int_equal(usbtmc_vusb_open(f->client_fd, &v), TETHER_ERR_IPC);
                assert_null(v);
                fake_end(f);
        }
        /* max_data too small for a packet, and below the protocol's floor;
         * a serial one byte too long. */
        vusb_info bad[3] = { good_info(), good_info(), good_info() };
        bad[0].max_data = 256; /* < max_packet_in 512 */
        bad[1].max_data = 32;
        bad[1].max_packet_in = 8;
        for (size_t i = 0; i < 2; i++) {
                uint8_t body[VUSB_DESCRIBE_FIXED];
                memcpy(body, good, VUSB_DESCRIBE_FIXED);
                vusb_put16(body + 10, bad[i].max_packet_in);
                vusb_put32(body + 12, bad[i].max_data);
                fake *f = fake_start(s_describe_only);
                f->describe_raw = body;
                f->describe_raw_len = VUSB_DESCRIBE_FIXED;
                fake_run(f);
                usbtmc_vusb *v = NULL;
                assert_int_equal(usbtmc_vusb_open(f->client_fd, &v), TETHER_ERR_IPC);
                fake_end(f);
        }
        uint8_t long_serial[VUSB_DESCRIBE_FIXED + VUSB_MAX_SERIAL + 1];
        memcpy(long_serial, good, VUSB_DESCRIBE_FIXED);
        memset(long_serial + VUSB_DESCRIBE_FIXED, 'S', VUSB_MAX_SERIAL + 1);
        fake *f = fake_start(s_describe_only);
        f->describe_raw = long_serial;
        f->describe_raw_len = sizeof(long_serial);
        fake_run(f);
        usbtmc_vusb *v = NULL;
        assert_int_equal(usbtmc_vusb_open(f->client_fd, &v), TETHER_ERR_IPC);
        fake_end(f);
}

/* A server that cannot describe its device says so; the open fails with
 * its reason. */
static void describe_error_is_passed_on(void **state)
{
        fake *f = fake_start(s_describe_only);
        f->describe_status = TETHER_ERR_NOT_READY;
        fake_run(f);
        usbtmc_vusb *v = NULL;
        assert_int_equal(usbtmc_vusb_open(f->client_fd, &v), TETHER_ERR_NOT_READY);
        fake_end(f);
}

/* ---- replies that lie ---- */

/* Answers DESCRIBE, then the next request with f->lie as its reply, the
 * request's id patched in at bytes 4..7 when the lie is long enough. */
static void s_lie_once(fake *f)
{
        if (answer_describe(f) < 0 || next(f) < 0)
                return;
        static uint8_t buf[VUSB_MAX_MSG + 64];
        memcpy(buf, f->lie, f->lie_len);
        if (f->lie_len >= 8)
                vusb_put32(buf + 4, f->h.id);
        send_raw(f, buf, f->lie_len);
}

static usbtmc_vusb *open_on(fake *f)
{
        fake_run(f);
        usbtmc_vusb *v = NULL;
        assert_int_equal(usbtmc_vusb_open(f->client_fd, &v), TETHER_SUCCESS);
        return v;
}

static size_t lie(uint8_t *out, uint16_t op, uint16_t version, int32_t status, uint32_t size_field, size_t body)
{
        vusb_header h = { .op = op, .version = version, .status = status, .size = size_field };
        vusb_header_encode(&h, out);
        memset(out + VUSB_HEADER_SIZE, 0x55, body);
        return VUSB_HEADER_SIZE + body;
}

/* Each malformed reply to a BULK_OUT: IPC, and the link is dead after it
 * (the next calls fail at once, without asking). */
static void malformed_replies_break_the_link(void **state)
{
        const uint16_t R = VUSB_BULK_OUT | VUSB_REPLY;
        uint8_t *m = malloc(VUSB_MAX_MSG + 64);
        for (int i = 0; i < 11; i++) {
                size_t len = 0;
                switch (i) {
                case 0: memset(m, 0, 8); len = 8; break;                                      /* short */
                case 1: len = 0; break;                                                       /* empty */
                case 2: len = lie(m, R, VUSB_VERSION, 0, VUSB_HEADER_SIZE + 4, 0); break;     /* size says more */
                case 3: len = lie(m, R, VUSB_VERSION, 0, VUSB_HEADER_SIZE, 4); break;         /* size says less */
                case 4: len = lie(m, VUSB_BULK_IN | VUSB_REPLY, VUSB_VERSION, 0, VUSB_HEADER_SIZE, 0); break;
                case 5: len = lie(m, VUSB_BULK_OUT, VUSB_VERSION, 0, VUSB_HEADER_SIZE, 0); break; /* no reply bit */
                case 6: len = lie(m, R, 2, 0, VUSB_HEADER_SIZE, 0); break;                    /* another version */
                case 7: len = lie(m, R, VUSB_VERSION, 5, VUSB_HEADER_SIZE, 0); break;         /* positive status */
                case 8: len = lie(m, R, VUSB_VERSION, -0x10000, VUSB_HEADER_SIZE, 0); break;  /* no such code */
                case 9: len = lie(m, R, VUSB_VERSION, 0, VUSB_HEADER_SIZE + 3, 3); break;     /* a body where none goes */
                case 10: len = lie(m, R, VUSB_VERSION, 0, VUSB_MAX_MSG + 64, VUSB_MAX_MSG + 64 - VUSB_HEADER_SIZE);
                        break;                                                                /* bigger than any reply */
                }
                print_message("malformed reply %d\n", i);
                fake *f = fake_start(s_lie_once);
                f->lie = m;
                f->lie_len = len;
                usbtmc_vusb *v = open_on(f);
                uint8_t data[16] = { 1 };
                assert_int_equal(vusb_ops(v)->bulk_out(v, data, sizeof(data), 100), TETHER_ERR_IPC);
                double t0 = ms_now();
                assert_int_equal(vusb_ops(v)->bulk_out(v, data, sizeof(data), 100), TETHER_ERR_IPC);
                size_t got = 7;
                assert_int_equal(vusb_ops(v)->bulk_in(v, data, sizeof(data), &got, 100), TETHER_ERR_IPC);
                assert_int_equal(got, 0);
                assert_true(ms_now() - t0 < 50);
                usbtmc_vusb_close(v);
                fake_end(f);
        }
        free(m);
}

/* Replies carrying more than the request asked for: refused, and not a
 * byte of them copied (the buffers are exactly the size asked). */
static void s_too_much(fake *f)
{
        if (answer_describe(f) < 0 || next(f) < 0)
                return;
        static uint8_t junk[VUSB_MAX_DATA];
        memset(junk, 0x55, sizeof(junk));
        size_t asked = f->h.op == VUSB_CONTROL_IN ? vusb_get16(f->req + VUSB_HEADER_SIZE + 10)
                                                  : vusb_get32(f->req + VUSB_HEADER_SIZE + 4);
        reply(f, TETHER_SUCCESS, junk, asked + 1);
}

static void replies_longer_than_asked(void **state)
{
        for (int op = 0; op < 3; op++) {
                fake *f = fake_start(s_too_much);
                usbtmc_vusb *v = open_on(f);
                size_t cap = op == 2 ? 24 : 100;
                uint8_t *buf = malloc(cap);
                memset(buf, 0xaa, cap);
                size_t got = 9;
                tether_ret_t r;
                if (op == 0)
                        r = vusb_ops(v)->bulk_in(v, buf, cap, &got, 100);
                else if (op == 1)
                        r = vusb_ops(v)->interrupt_in(v, buf, cap, &got, 100);
                else
                        r = vusb_ops(v)->control_in(v, USBTMC_REQ_INTERFACE, USBTMC_GET_CAPABILITIES, 0, 0, buf,
                                                      (uint16_t)cap, &got, 100);
                assert_int_equal(r, TETHER_ERR_IPC);
                assert_int_equal(got, 0);
                for (size_t i = 0; i < cap; i++)
                        assert_int_equal(buf[i], 0xaa);
                free(buf);
                usbtmc_vusb_close(v);
                fake_end(f);
        }
}

/* The same through usbtmc: capabilities from a lying device fail, they
 * are not half-read. */
static void usbtmc_sees_ipc(void **state)
{
        fake *f = fake_start(s_too_much);
        usbtmc_vusb *v = open_on(f);
        usbtmc t;
        usbtmc_vusb_attach(&t, v);
        usbtmc_caps c;
        memset(&c, 0, sizeof(c));
        assert_int_equal(usbtmc_get_capabilities(&t, &c), TETHER_ERR_IPC);
        assert_int_equal(c.bcd_usbtmc, 0);
        usbtmc_vusb_close(v);
        fake_end(f);
}

/* The first request gets no answer until the second comes; then both
 * answers come, the first's late, after a flood of answers to ids never
 * asked. Only the second's reaches the client. */
static void s_late(fake *f)
{
        if (answer_describe(f) < 0 || next(f) < 0)
                return;
        uint32_t first = f->h.id;
        if (next(f) < 0)
                return;
        reply_to(f, first, VUSB_BULK_IN, TETHER_SUCCESS, "STALE", 5);
        for (uint32_t i = 0; i < 50; i++)
                reply_to(f, f->h.id + 1000 + i, VUSB_BULK_IN, TETHER_SUCCESS, "NOISE", 5);
        reply(f, TETHER_SUCCESS, "FRESH", 5);
}

static void late_reply_is_dropped(void **state)
{
        fake *f = fake_start(s_late);
        usbtmc_vusb *v = open_on(f);
        char buf[16] = { 0 };
        size_t got = 9;
        double t0 = ms_now();
        assert_int_equal(vusb_ops(v)->bulk_in(v, (uint8_t *)buf, sizeof(buf), &got, 50), TETHER_ERR_TIMEOUT);
        double took = ms_now() - t0;
        assert_int_equal(got, 0);
        /* The transfer's timeout plus the margin, not much more. */
        assert_true(took >= 50 + VUSB_REPLY_MARGIN_MS - 5);
        assert_true(took < 50 + VUSB_REPLY_MARGIN_MS + 1500);
        /* A timeout is not the link's end. */
        assert_int_equal(vusb_ops(v)->bulk_in(v, (uint8_t *)buf, sizeof(buf), &got, 1000), TETHER_SUCCESS);
        assert_int_equal(got, 5);
        assert_memory_equal(buf, "FRESH", 5);
        usbtmc_vusb_close(v);
        fake_end(f);
}

/* A server that stops reading: the client's socket fills, and the request
 * that finds no room still ends at its deadline. */
static void s_deaf(fake *f)
{
        answer_describe(f);
        /* Reads nothing more; waits for the client to hang up. */
        struct pollfd p = { .fd = f->fd, .events = POLLRDHUP };
        poll(&p, 1, 10000);
}

static void server_not_reading(void **state)
{
        fake *f = fake_start(s_deaf);
        int spare = dup(f->client_fd);
        assert_true(spare >= 0);
        usbtmc_vusb *v = open_on(f);
        /* Fill the queue toward the server from outside the backend. */
        static uint8_t junk[32768];
        unsigned sent = 0;
        while (send(spare, junk, sizeof(junk), MSG_DONTWAIT | MSG_NOSIGNAL) > 0)
                sent++;
        assert_int_equal(errno, EAGAIN);
        assert_true(sent > 0);
        uint8_t data[64] = { 0 };
        double t0 = ms_now();
        assert_int_equal(vusb_ops(v)->bulk_out(v, data, sizeof(data), 20), TETHER_ERR_TIMEOUT);
        double took = ms_now() - t0;
        assert_true(took >= 20 + VUSB_REPLY_MARGIN_MS - 5);
        assert_true(took < 20 + VUSB_REPLY_MARGIN_MS + 1500);
        close(spare);
        usbtmc_vusb_close(v);
        fake_end(f);
}

/* A server that takes 64 bytes a transfer: usbtmc splits a message so
 * that no datagram carries more. */
static void s_small_transfers(fake *f)
{
        if (answer_describe(f) < 0)
                return;
        while (next(f) == 0) {
                if (f->h.op != VUSB_BULK_OUT) {
                        f->problems++;
                        reply(f, TETHER_ERR_UNSUPPORTED, NULL, 0);
                        continue;
                }
                size_t data = f->req_len - VUSB_HEADER_SIZE - VUSB_ARGS_BULK_OUT;
                if (data > f->biggest_out)
                        f->biggest_out = data;
                reply(f, TETHER_SUCCESS, NULL, 0);
        }
}

static void max_transfer_follows_the_server(void **state)
{
        fake *f = fake_start(s_small_transfers);
        f->info.max_data = 64;
        f->info.max_packet_in = 64;
        usbtmc_vusb *v = open_on(f);
        usbtmc t;
        usbtmc_vusb_attach(&t, v);
        assert_int_equal(t.max_transfer, 52);
        char msg[1000];
        memset(msg, 'x', sizeof(msg));
        assert_int_equal(usbtmc_write(&t, msg, sizeof(msg)), TETHER_SUCCESS);
        /* More than the server takes is refused before anything is sent. */
        uint8_t big[65];
        assert_int_equal(vusb_ops(v)->bulk_out(v, big, sizeof(big), 100), TETHER_ERR_MESSAGE_TOO_LARGE);
        usbtmc_vusb_close(v);
        unsigned requests = f->requests;
        size_t biggest = f->biggest_out;
        int problems = f->problems;
        fake_end(f);
        assert_int_equal(problems, 0);
        assert_int_equal(biggest, 64);
        assert_int_equal(requests, 1 + (1000 + 51) / 52); /* DESCRIBE, then one per transfer */
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(open_refuses_what_is_not_a_seqpacket_socket),
                cmocka_unit_test(open_with_a_good_describe),
                cmocka_unit_test(describe_lies_are_refused),
                cmocka_unit_test(describe_error_is_passed_on),
                cmocka_unit_test(malformed_replies_break_the_link),
                cmocka_unit_test(replies_longer_than_asked),
                cmocka_unit_test(usbtmc_sees_ipc),
                cmocka_unit_test(late_reply_is_dropped),
                cmocka_unit_test(server_not_reading),
                cmocka_unit_test(max_transfer_follows_the_server),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
