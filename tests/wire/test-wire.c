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

#include "wire/host-msg.h"
#include "wire/message.h"
#include "wire/reason.h"

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

/* ---- a caller, as tetherd tells a host ---- */

static void task_round_trip(void **state)
{
        tether_task t = { .pid = 4242, .uid = 65534, .gid = 100, .abi_word_bits = 32,
                          .privileges = TETHER_PRIVILEGE_ADMINISTRATOR }, back;
        wire_msg_init(&m, WIRE_HOST_SET_PROPERTIES, 1, 0);
        wire_put_task(&m, &t);
        assert_int_equal(wire_msg_finish(&m), TETHER_SUCCESS);
        assert_int_equal(m.len, WIRE_HEADER_SIZE + 20);
        size_t len;
        const uint8_t *body = body_of(&m, &len);
        wire_reader r;
        wire_reader_init(&r, body, len);
        wire_get_task(&r, &back);
        assert_int_equal(wire_reader_done(&r), TETHER_SUCCESS);
        assert_memory_equal(&back, &t, sizeof(t));
        /* One byte short: the reader says so. */
        wire_reader_init(&r, body, len - 1);
        wire_get_task(&r, &back);
        assert_true(r.bad);
}

/* ---- refusal reasons ---- */

static bool valid(const char *s)
{
        return wire_reason_valid(s, strlen(s));
}

static void reason_admits_printable_utf8_only(void **state)
{
        assert_true(valid("Units must be C or F"));
        assert_true(valid("\xc2\xb0" "C or \xc2\xb5" "s")); /* two-byte characters */
        assert_true(valid("\xe2\x82\xac, \xf0\x9f\x94\xac"));    /* three and four bytes */
        char max[WIRE_MAX_REASON + 2];
        memset(max, 'x', sizeof(max));
        assert_true(wire_reason_valid(max, WIRE_MAX_REASON));
        assert_false(wire_reason_valid(max, WIRE_MAX_REASON + 1));
        assert_false(wire_reason_valid(max, 0));
        assert_false(wire_reason_valid(NULL, 3));
        /* What a terminal would act on. */
        assert_false(valid("red \x1b[31m"));
        assert_false(valid("two\nlines"));
        assert_false(valid("bell\a"));
        assert_false(valid("del\x7f"));
        assert_false(valid("csi \xc2\x9b" "31m"));             /* U+009B, a C1 control */
        assert_false(wire_reason_valid("nul\0inside", 11));
        /* Not UTF-8: overlong, surrogate, past U+10FFFF, cut short, stray. */
        assert_false(valid("\xc0\xaf"));
        assert_false(valid("\xe0\x80\xaf"));
        assert_false(valid("\xed\xa0\x80"));
        assert_false(valid("\xf4\x90\x80\x80"));
        assert_false(valid("\xf8\x88\x80\x80\x80"));
        assert_false(valid("cut \xe2\x82"));
        assert_false(valid("stray \x80"));
}

static void reason_clean_makes_one(void **state)
{
        char out[WIRE_MAX_REASON + 1];
        bool cut = true;
        assert_int_equal(wire_reason_clean("Units must be C or F", out, &cut), 20);
        assert_string_equal(out, "Units must be C or F");
        assert_false(cut);
        assert_int_equal(wire_reason_clean("", out, &cut), 0);
        assert_string_equal(out, "");
        assert_false(cut);
        /* Each control character or stray byte becomes one '?'. */
        wire_reason_clean("a\x1b[1m\nb\xff\xc2\x9b\xe2\x82", out, &cut);
        assert_string_equal(out, "a?[1m?b?????");
        assert_true(valid(out));
        assert_false(cut);
        /* Cut to the bound, never inside a character: 199 bytes and a
         * three-byte one leave 199. */
        char long_text[400];
        memset(long_text, 'x', 199);
        strcpy(long_text + 199, "\xe2\x82\xac and more");
        assert_int_equal(wire_reason_clean(long_text, out, &cut), 199);
        assert_true(cut);
        assert_true(valid(out));
        memset(long_text, 'y', WIRE_MAX_REASON);
        long_text[WIRE_MAX_REASON] = '\0';
        assert_int_equal(wire_reason_clean(long_text, out, &cut), WIRE_MAX_REASON);
        assert_false(cut);
        long_text[WIRE_MAX_REASON] = 'z';
        long_text[WIRE_MAX_REASON + 1] = '\0';
        assert_int_equal(wire_reason_clean(long_text, out, &cut), WIRE_MAX_REASON);
        assert_true(cut);
}

/* A host's answer to SET_PROPERTIES may carry the driver's reason; tetherd
 * takes it only with an error and only if the wire admits it. */
static tether_ret_t decode_set_props_reply(tether_ret_t result, const void *body, size_t n, host_msg *hm)
{
        wire_msg_init(&m, WIRE_HOST_SET_PROPERTIES | WIRE_REPLY_FLAG, 5, result);
        wire_put_bytes(&m, body, n);
        wire_msg_finish(&m);
        tether_ret_t r = host_msg_decode(m.buf, m.len, hm);
        host_msg_clear(hm);
        return r;
}

static void host_reply_reason(void **state)
{
        host_msg hm;
        assert_int_equal(decode_set_props_reply(TETHER_ERR_BAD_ARGUMENT, "Units must be C or F", 20, &hm),
                         TETHER_SUCCESS);
        assert_string_equal(hm.reason, "Units must be C or F");
        /* Eight bytes are a reason here, not some other reply's u64. */
        assert_int_equal(decode_set_props_reply(TETHER_ERR_BAD_ARGUMENT, "12345678", 8, &hm), TETHER_SUCCESS);
        assert_string_equal(hm.reason, "12345678");
        assert_false(hm.has_u64);
        assert_int_equal(decode_set_props_reply(TETHER_ERR_NOT_WRITABLE, "", 0, &hm), TETHER_SUCCESS);
        assert_string_equal(hm.reason, "");
        assert_int_equal(decode_set_props_reply(TETHER_SUCCESS, "", 0, &hm), TETHER_SUCCESS);
        /* A reason with a success, one too long, one with an escape
         * sequence, one not UTF-8: a host that sends them is ended. */
        assert_int_equal(decode_set_props_reply(TETHER_SUCCESS, "fine", 4, &hm), TETHER_ERR_BAD_ARGUMENT);
        char big[WIRE_MAX_REASON + 1];
        memset(big, 'x', sizeof(big));
        assert_int_equal(decode_set_props_reply(TETHER_ERR_BAD_ARGUMENT, big, sizeof(big), &hm), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(decode_set_props_reply(TETHER_ERR_BAD_ARGUMENT, big, WIRE_MAX_REASON, &hm), TETHER_SUCCESS);
        assert_int_equal(decode_set_props_reply(TETHER_ERR_BAD_ARGUMENT, "\x1b]0;owned\a", 10, &hm),
                         TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(decode_set_props_reply(TETHER_ERR_BAD_ARGUMENT, "\xff\xfe", 2, &hm), TETHER_ERR_BAD_ARGUMENT);
        /* Other replies keep their rule: at most a u64. */
        wire_msg_init(&m, WIRE_HOST_START | WIRE_REPLY_FLAG, 5, TETHER_ERR_BAD_ARGUMENT);
        wire_put_bytes(&m, "why", 3);
        wire_msg_finish(&m);
        assert_int_equal(host_msg_decode(m.buf, m.len, &hm), TETHER_ERR_BAD_ARGUMENT);
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
                cmocka_unit_test(task_round_trip),
                cmocka_unit_test(reason_admits_printable_utf8_only),
                cmocka_unit_test(reason_clean_makes_one),
                cmocka_unit_test(host_reply_reason),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
