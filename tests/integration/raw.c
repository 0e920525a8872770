/* SPDX-License-Identifier: MIT */
#include "raw.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void recv_timeout(int fd)
{
        struct timeval tv = { .tv_sec = 5 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

int raw_connect(const char *path)
{
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        strcpy(a.sun_path, path);
        assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        recv_timeout(fd);
        return fd;
}

int32_t raw_exchange_header(int fd, const void *buf, size_t len, wire_header *ret)
{
        assert_int_equal(send(fd, buf, len, 0), (ssize_t)len);
        static uint8_t rep[WIRE_MAX_MESSAGE];
        size_t n = 0;
        int got = -1;
        assert_int_equal(wire_recv(fd, rep, sizeof(rep), &n, &got), TETHER_SUCCESS);
        if (got >= 0)
                close(got);
        assert_true(n >= WIRE_HEADER_SIZE);
        memcpy(ret, rep, sizeof(*ret));
        return ret->result;
}

int32_t raw_exchange(int fd, const void *buf, size_t len)
{
        wire_header h;
        return raw_exchange_header(fd, buf, len, &h);
}

int raw_session(const char *path)
{
        int fd = raw_connect(path);
        wire_msg m;
        wire_msg_init(&m, WIRE_HELLO, 1, 0);
        wire_put_u32(&m, 64);
        wire_put_u32(&m, 0);
        wire_msg_finish(&m);
        assert_int_equal(raw_exchange(fd, m.buf, m.len), TETHER_SUCCESS);
        return fd;
}

void raw_open_request(int session_fd, uint64_t service_id, uint32_t type)
{
        wire_msg m;
        wire_msg_init(&m, WIRE_OPEN, 2, 0);
        wire_put_u64(&m, service_id);
        wire_put_u32(&m, type);
        wire_put_u32(&m, 0);
        wire_msg_finish(&m);
        assert_int_equal(send(session_fd, m.buf, m.len, MSG_NOSIGNAL), (ssize_t)m.len);
}

int raw_open(int session_fd, uint64_t service_id, uint32_t type)
{
        raw_open_request(session_fd, service_id, type);
        static uint8_t buf[WIRE_MAX_MESSAGE];
        int conn = -1;
        size_t len = 0;
        assert_int_equal(wire_recv(session_fd, buf, sizeof(buf), &len, &conn), TETHER_SUCCESS);
        assert_true(conn >= 0);
        recv_timeout(conn);
        return conn;
}

int32_t raw_set_buffer(int conn, uint32_t slot, int memfd)
{
        wire_msg m;
        wire_msg_init(&m, WIRE_SET_BUFFER, 3, 0);
        wire_put_u32(&m, slot);
        wire_put_u32(&m, 0);
        wire_msg_finish(&m);
        raw_send_fds(conn, &m, &memfd, 1);
        static uint8_t buf[WIRE_MAX_MESSAGE];
        size_t len = 0;
        assert_int_equal(wire_recv(conn, buf, sizeof(buf), &len, NULL), TETHER_SUCCESS);
        wire_header h;
        assert_true(len >= sizeof(h));
        memcpy(&h, buf, sizeof(h));
        return h.result;
}

int32_t raw_call(int conn, uint32_t serial, const wire_call *c)
{
        wire_msg m;
        wire_msg_init(&m, WIRE_CALL, serial, 0);
        wire_call_encode(&m, c);
        wire_msg_finish(&m);
        return raw_exchange(conn, m.buf, m.len);
}

void raw_send_fds(int sock, const wire_msg *m, const int *fds, int n)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * WIRE_MAX_PASSED_FDS)];
        } ctl;
        memset(&ctl, 0, sizeof(ctl));
        struct iovec iov = { .iov_base = (void *)m->buf, .iov_len = m->len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        if (n > 0) {
                mh.msg_control = ctl.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);
        }
        assert_int_equal(sendmsg(sock, &mh, MSG_NOSIGNAL), (ssize_t)m->len);
}

int raw_port(int session_fd, uint64_t *ret_id)
{
        wire_msg m;
        wire_msg_init(&m, WIRE_PORT_CREATE, 4, 0);
        wire_msg_finish(&m);
        assert_int_equal(send(session_fd, m.buf, m.len, MSG_NOSIGNAL), (ssize_t)m.len);
        static uint8_t buf[WIRE_MAX_MESSAGE];
        int port = -1;
        size_t len = 0;
        assert_int_equal(wire_recv(session_fd, buf, sizeof(buf), &len, &port), TETHER_SUCCESS);
        wire_header h;
        assert_int_equal(len, WIRE_HEADER_SIZE + 8);
        memcpy(&h, buf, sizeof(h));
        assert_int_equal(h.result, TETHER_SUCCESS);
        assert_true(port >= 0);
        memcpy(ret_id, buf + WIRE_HEADER_SIZE, 8);
        recv_timeout(port);
        return port;
}

int32_t raw_async_cancel(int conn, uint32_t serial, uint64_t port, uint64_t token)
{
        wire_msg m;
        wire_msg_init(&m, WIRE_ASYNC_CANCEL, serial, 0);
        wire_put_u64(&m, port);
        wire_put_u64(&m, token);
        wire_msg_finish(&m);
        return raw_exchange(conn, m.buf, m.len);
}
