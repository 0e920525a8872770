/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wire/message.h"

static wire_msg m;

static const uint8_t *body_of(const wire_msg *msg, size_t *len)
{
        *len = msg->len - WIRE_HEADER_SIZE;
        return msg->buf + WIRE_HEADER_SIZE;
}

static void call_round_trip(void **state)
{
        uint8_t payload[100];
        for (size_t i = 0; i < sizeof(payload); i++)
                payload[i] = (uint8_t)i;
        wire_call c = { .selector = 7, .scalar_in_count = 3, .scalar_out_count = 2,
                        .struct_in_size = sizeof(payload), .struct_out_size = 4096, .struct_in = payload,
                        .scalars = { 1, 0xffffffffffffffffull, 42 } };
        wire_msg_init(&m, WIRE_CALL, 9, 0);
        wire_call_encode(&m, &c);
        assert_int_equal(wire_msg_finish(&m), TETHER_SUCCESS);

        wire_header h;
        assert_int_equal(wire_header_check(m.buf, m.len, &h), TETHER_SUCCESS);
        assert_int_equal(h.type, WIRE_CALL);
        assert_int_equal(h.serial, 9);
        assert_int_equal(h.size, m.len);

        size_t len;
        const uint8_t *b = body_of(&m, &len);
        wire_call d;
        assert_int_equal(wire_call_decode(b, len, &d), TETHER_SUCCESS);
        assert_int_equal(d.selector, 7);
        assert_int_equal(d.scalar_in_count, 3);
        assert_int_equal(d.scalars[1], 0xffffffffffffffffull);
        assert_int_equal(d.scalar_out_count, 2);
        assert_int_equal(d.struct_out_size, 4096);
        assert_memory_equal(d.struct_in, payload, sizeof(payload));
}

/* Encode a call, then let the test corrupt one field of the body. */
static size_t encoded_call(uint8_t *out, uint32_t scalars, uint32_t struct_in)
{
        static uint8_t payload[TETHER_MAX_INLINE_STRUCT];
        wire_call c = { .scalar_in_count = scalars, .struct_in_size = struct_in, .struct_in = payload };
        wire_msg_init(&m, WIRE_CALL, 1, 0);
        wire_call_encode(&m, &c);
        assert_int_equal(wire_msg_finish(&m), TETHER_SUCCESS);
        size_t len;
        const uint8_t *b = body_of(&m, &len);
        memcpy(out, b, len);
        return len;
}

enum { OFF_FLAGS = 4, OFF_SCALARS_IN = 8, OFF_SCALARS_OUT = 12, OFF_STRUCT_IN = 16, OFF_STRUCT_OUT = 20 };

static void put32(uint8_t *p, uint32_t v)
{
        memcpy(p, &v, 4);
}

static void call_rejects_too_many_scalars(void **state)
{
        uint8_t b[WIRE_MAX_MESSAGE];
        wire_call d;
        size_t len = encoded_call(b, 16, 0);
        assert_int_equal(wire_call_decode(b, len, &d), TETHER_SUCCESS);
        put32(b + OFF_SCALARS_IN, 17);
        assert_int_equal(wire_call_decode(b, len, &d), TETHER_ERR_BAD_ARGUMENT);
        len = encoded_call(b, 0, 0);
        put32(b + OFF_SCALARS_OUT, 17);
        assert_int_equal(wire_call_decode(b, len, &d), TETHER_ERR_BAD_ARGUMENT);
}

static void call_rejects_oversized_inline_struct(void **state)
{
        uint8_t b[WIRE_MAX_MESSAGE];
        wire_call d;
        size_t len = encoded_call(b, 0, 0);
        put32(b + OFF_STRUCT_OUT, TETHER_MAX_INLINE_STRUCT + 1);
        assert_int_equal(wire_call_decode(b, len, &d), TETHER_ERR_BAD_ARGUMENT);
        /* The same size is fine out of line. */
        put32(b + OFF_FLAGS, WIRE_CALL_OOL_OUT);
        assert_int_equal(wire_call_decode(b, len, &d), TETHER_SUCCESS);
        put32(b + OFF_STRUCT_OUT, TETHER_MAX_OOL_STRUCT + 1);
        assert_int_equal(wire_call_decode(b, len, &d), TETHER_ERR_BAD_ARGUMENT);
}

static void call_rejects_size_mismatch(void **state)
{
        uint8_t b[WIRE_MAX_MESSAGE];
        wire_call d;
        size_t len = encoded_call(b, 2, 10);
        assert_int_equal(wire_call_decode(b, len, &d), TETHER_SUCCESS);
        /* Declares more struct bytes than are there. */
        put32(b + OFF_STRUCT_IN, 11);
        assert_int_equal(wire_call_decode(b, len, &d), TETHER_ERR_BAD_ARGUMENT);
        /* Declares fewer: trailing bytes. */
        put32(b + OFF_STRUCT_IN, 9);
        assert_int_equal(wire_call_decode(b, len, &d), TETHER_ERR_BAD_ARGUMENT);
        /* Declares a scalar that is not there. */
        put32(b + OFF_STRUCT_IN, 10);
        put32(b + OFF_SCALARS_IN, 3);
        assert_int_equal(wire_call_decode(b, len, &d), TETHER_ERR_BAD_ARGUMENT);
}

static void call_rejects_unknown_flags_and_truncation(void **state)
{
        uint8_t b[WIRE_MAX_MESSAGE];
        wire_call d;
        size_t len = encoded_call(b, 1, 0);
        put32(b + OFF_FLAGS, 0x100);
        assert_int_equal(wire_call_decode(b, len, &d), TETHER_ERR_BAD_ARGUMENT);
        len = encoded_call(b, 1, 0);
        for (size_t cut = 0; cut < len; cut++)
                assert_int_equal(wire_call_decode(b, cut, &d), TETHER_ERR_BAD_ARGUMENT);
}

static void reply_round_trip_and_checks(void **state)
{
        uint8_t out[5] = { 1, 2, 3, 4, 5 };
        wire_call_reply r = { .scalar_out_count = 2, .struct_out_size = 5, .scalars = { 10, 20 }, .struct_out = out };
        wire_msg_init(&m, WIRE_CALL | WIRE_REPLY_FLAG, 3, 0);
        wire_call_reply_encode(&m, &r, false);
        assert_int_equal(wire_msg_finish(&m), TETHER_SUCCESS);
        size_t len;
        const uint8_t *b = body_of(&m, &len);
        wire_call_reply d;
        assert_int_equal(wire_call_reply_decode(b, len, false, &d), TETHER_SUCCESS);
        assert_int_equal(d.scalars[1], 20);
        assert_memory_equal(d.struct_out, out, 5);
        /* Out of line, the bytes are not in the datagram: they are extra here. */
        assert_int_equal(wire_call_reply_decode(b, len, true, &d), TETHER_ERR_BAD_ARGUMENT);
}

static void header_checks(void **state)
{
        wire_header h;
        wire_msg_init(&m, WIRE_HELLO, 1, 0);
        wire_put_u32(&m, 64);
        assert_int_equal(wire_msg_finish(&m), TETHER_SUCCESS);
        assert_int_equal(wire_header_check(m.buf, m.len, &h), TETHER_SUCCESS);
        /* The size field must equal the datagram's length. */
        assert_int_equal(wire_header_check(m.buf, m.len - 1, &h), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(wire_header_check(m.buf, 3, &h), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(wire_header_check(NULL, 16, &h), TETHER_ERR_BAD_ARGUMENT);
        m.buf[2] = 99; /* version */
        assert_int_equal(wire_header_check(m.buf, m.len, &h), TETHER_ERR_BAD_MESSAGE_ID);
}

static void builder_poisons_on_overflow(void **state)
{
        static uint8_t big[WIRE_MAX_MESSAGE];
        wire_msg_init(&m, WIRE_GET_PROPERTY, 1, 0);
        wire_put_bytes(&m, big, sizeof(big)); /* header + this > the limit */
        wire_put_u32(&m, 1);                  /* later puts stay refused */
        assert_true(m.poisoned);
        assert_int_equal(wire_msg_finish(&m), TETHER_ERR_MESSAGE_TOO_LARGE);
}

static void reader_stops_at_end(void **state)
{
        uint8_t b[6] = { 1, 0, 0, 0, 2, 0 };
        wire_reader r;
        wire_reader_init(&r, b, sizeof(b));
        assert_int_equal(wire_get_u32(&r), 1);
        assert_int_equal(wire_get_u32(&r), 0); /* only 2 bytes left */
        assert_true(r.bad);
        assert_int_equal(wire_reader_done(&r), TETHER_ERR_BAD_ARGUMENT);
        wire_reader_init(&r, b, sizeof(b));
        wire_get_u32(&r);
        assert_int_equal(wire_reader_done(&r), TETHER_ERR_BAD_ARGUMENT); /* trailing */
}

static int count_open_fds(void)
{
        int n = 0;
        for (int fd = 0; fd < 1024; fd++)
                if (fcntl(fd, F_GETFD) >= 0)
                        n++;
        return n;
}

/* Send one SET_BUFFER datagram carrying n copies of stdin. */
static void send_with_fds(int sock, int n)
{
        int fds[WIRE_MAX_PASSED_FDS];
        union {
                struct cmsghdr a;
                char b[CMSG_SPACE(sizeof(fds))];
        } ctl;
        memset(&ctl, 0, sizeof(ctl));
        for (int i = 0; i < n; i++)
                fds[i] = dup(0);
        wire_msg_init(&m, WIRE_SET_BUFFER, 1, 0);
        wire_msg_finish(&m);
        struct iovec iov = { m.buf, m.len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
                             .msg_controllen = CMSG_SPACE(n * sizeof(int)) };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(n * sizeof(int));
        memcpy(CMSG_DATA(c), fds, n * sizeof(int));
        assert_int_equal(sendmsg(sock, &mh, 0), (ssize_t)m.len);
        for (int i = 0; i < n; i++)
                close(fds[i]);
}

static void fd_passing_keeps_one_refuses_more(void **state)
{
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
        int before = count_open_fds();
        uint8_t buf[WIRE_MAX_MESSAGE];
        size_t len;
        int got = -1;

        /* One fd: kept for the caller. */
        send_with_fds(sv[0], 1);
        assert_int_equal(wire_recv(sv[1], buf, sizeof(buf), &len, &got), TETHER_SUCCESS);
        assert_true(got >= 0);
        assert_int_equal(count_open_fds(), before + 1);
        close(got);

        /* Several, up to the most the kernel passes: every one closed, and
         * the message still arrives (no truncation error), marked refused. */
        int counts[] = { 2, 3, 9, WIRE_MAX_PASSED_FDS };
        for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
                send_with_fds(sv[0], counts[i]);
                got = -1;
                assert_int_equal(wire_recv(sv[1], buf, sizeof(buf), &len, &got), TETHER_SUCCESS);
                assert_int_equal(len, WIRE_HEADER_SIZE);
                assert_int_equal(got, WIRE_FD_REFUSED);
                assert_int_equal(count_open_fds(), before);
        }

        /* EOF is "not attached". */
        close(sv[0]);
        assert_int_equal(wire_recv(sv[1], buf, sizeof(buf), &len, &got), TETHER_ERR_NOT_ATTACHED);
        close(sv[1]);
}

/* SEQPACKET reads a zero-length datagram and a hang-up both as 0 bytes;
 * only the hang-up is "not attached". */
static void zero_length_datagram_is_not_a_hangup(void **state)
{
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
        uint8_t buf[WIRE_MAX_MESSAGE];
        size_t len = 99;
        int got = -1;
        assert_int_equal(send(sv[0], "", 0, 0), 0);
        assert_int_equal(wire_recv(sv[1], buf, sizeof(buf), &len, &got), TETHER_SUCCESS);
        assert_int_equal(len, 0);
        assert_int_equal(got, -1);
        /* Still open: the next datagram arrives. */
        assert_int_equal(send(sv[0], "abc", 3, 0), 3);
        assert_int_equal(wire_recv(sv[1], buf, sizeof(buf), &len, &got), TETHER_SUCCESS);
        assert_int_equal(len, 3);
        /* A zero-length datagram then a hang-up: the hang-up wins. */
        assert_int_equal(send(sv[0], "", 0, 0), 0);
        close(sv[0]);
        assert_int_equal(wire_recv(sv[1], buf, sizeof(buf), &len, &got), TETHER_ERR_NOT_ATTACHED);
        close(sv[1]);
}

/* A peer that answers and then closes with our message unread: its answer
 * still arrives (the kernel reports ECONNRESET first), then the hang-up.
 * A driver host refusing its start does exactly this. */
static void answer_before_reset_is_kept(void **state)
{
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
        assert_int_equal(send(sv[0], "never read", 10, 0), 10);
        assert_int_equal(send(sv[1], "answer", 6, 0), 6);
        close(sv[1]);
        uint8_t buf[WIRE_MAX_MESSAGE];
        size_t len = 0;
        int got = -1;
        assert_int_equal(wire_recv(sv[0], buf, sizeof(buf), &len, &got), TETHER_SUCCESS);
        assert_int_equal(len, 6);
        assert_memory_equal(buf, "answer", 6);
        assert_int_equal(wire_recv(sv[0], buf, sizeof(buf), &len, &got), TETHER_ERR_NOT_ATTACHED);
        close(sv[0]);
}

static void send_to_closed_peer(void **state)
{
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
        close(sv[1]);
        wire_msg_init(&m, WIRE_HELLO, 1, 0);
        wire_msg_finish(&m);
        /* No SIGPIPE (the test would die), a defined error instead. */
        assert_int_equal(wire_send(sv[0], &m, -1), TETHER_ERR_NOT_ATTACHED);
        close(sv[0]);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(call_round_trip),
                cmocka_unit_test(call_rejects_too_many_scalars),
                cmocka_unit_test(call_rejects_oversized_inline_struct),
                cmocka_unit_test(call_rejects_size_mismatch),
                cmocka_unit_test(call_rejects_unknown_flags_and_truncation),
                cmocka_unit_test(reply_round_trip_and_checks),
                cmocka_unit_test(header_checks),
                cmocka_unit_test(builder_poisons_on_overflow),
                cmocka_unit_test(reader_stops_at_end),
                cmocka_unit_test(fd_passing_keeps_one_refuses_more),
                cmocka_unit_test(zero_length_datagram_is_not_a_hangup),
                cmocka_unit_test(answer_before_reset_is_kept),
                cmocka_unit_test(send_to_closed_peer),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
