/* SPDX-License-Identifier: MIT */
#include "raw.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <tether/value.h>

uint64_t raw_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint32_t raw_serial(void)
{
        static uint32_t next;
        if (++next == 0)
                next = 1;
        return next;
}

const char *raw_code_name(int32_t code)
{
        switch (code) {
        case RAW_EOF:
                return "eof";
        case RAW_TIMEOUT:
                return "timeout";
        case RAW_SEND:
                return "send-failed";
        default:
                return tether_ret_name(code);
        }
}

int raw_connect(const char *path, int timeout_ms)
{
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(a.sun_path)) {
                errno = ENAMETOOLONG;
                return -1;
        }
        strcpy(a.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -1;
        /* An AF_UNIX connect waits for room in the backlog for up to the
         * send timeout: a daemon that stopped accepting must not hang us. */
        struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
                int e = errno;
                close(fd);
                errno = e;
                return -1;
        }
        return fd;
}

int raw_send(int sock, const void *buf, size_t len, const int *fds, int nfds, bool dontwait)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * RAW_MAX_FDS)];
        } ctl;
        struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        if (nfds > RAW_MAX_FDS)
                return -EINVAL;
        if (nfds > 0) {
                memset(&ctl, 0, sizeof(ctl));
                mh.msg_control = ctl.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
        }
        ssize_t n;
        do
                n = sendmsg(sock, &mh, MSG_NOSIGNAL | (dontwait ? MSG_DONTWAIT : 0));
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        return n == (ssize_t)len ? 0 : -EIO;
}

int raw_send_msg(int sock, wire_msg *m, const int *fds, int nfds, bool dontwait)
{
        if (wire_msg_finish(m) != TETHER_SUCCESS)
                return -EMSGSIZE;
        return raw_send(sock, m->buf, m->len, fds, nfds, dontwait);
}

int raw_recv(int sock, raw_reply *r, int timeout_ms)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * RAW_MAX_FDS)];
        } ctl;
        r->fd = -1;
        r->nfds = 0;
        r->len = 0;
        r->unsolicited = false;
        memset(&r->h, 0, sizeof(r->h));
        struct pollfd p = { .fd = sock, .events = POLLIN };
        int k;
        do
                k = poll(&p, 1, timeout_ms);
        while (k < 0 && errno == EINTR);
        if (k == 0)
                return RAW_TIMEOUT;
        struct iovec iov = { .iov_base = r->buf, .iov_len = sizeof(r->buf) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                             .msg_controllen = sizeof(ctl.buf) };
        ssize_t n;
        do
                n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return RAW_TIMEOUT; /* readable for someone else's benefit: nothing for us */
        /* tetherd never sends an empty datagram, so 0 bytes is the hang-up. */
        if (n <= 0)
                return RAW_EOF;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t nf = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < nf; i++) {
                        int fd;
                        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                        if (r->fd < 0)
                                r->fd = fd;
                        else
                                close(fd);
                        r->nfds++;
                }
        }
        r->len = (size_t)n;
        if ((size_t)n >= WIRE_HEADER_SIZE)
                memcpy(&r->h, r->buf, sizeof(r->h));
        r->body = r->buf + WIRE_HEADER_SIZE;
        r->body_len = (size_t)n >= WIRE_HEADER_SIZE ? (size_t)n - WIRE_HEADER_SIZE : 0;
        r->unsolicited = r->h.type == WIRE_REPLY_FLAG && r->h.serial == 0;
        return RAW_GOT;
}

int32_t raw_request(int sock, wire_msg *m, const int *fds, int nfds, raw_reply *r, int timeout_ms)
{
        if (raw_send_msg(sock, m, fds, nfds, false) < 0) {
                /* A hang-up may have been explained first: read that. */
                int k = raw_recv(sock, r, 0);
                if (k == RAW_GOT && r->unsolicited)
                        return r->h.result;
                if (k == RAW_GOT && r->fd >= 0)
                        close(r->fd);
                return RAW_SEND;
        }
        wire_header sent;
        memcpy(&sent, m->buf, sizeof(sent));
        uint64_t deadline = raw_now_ms() + (uint64_t)timeout_ms;
        /* Bounded by the deadline and by a count, whatever tetherd sends. */
        for (int i = 0; i < 100000; i++) {
                uint64_t now = raw_now_ms();
                int k = raw_recv(sock, r, now >= deadline ? 0 : (int)(deadline - now));
                if (k != RAW_GOT)
                        return k;
                if (r->unsolicited)
                        return r->h.result;
                if (r->h.serial == sent.serial && r->h.type == (sent.type | WIRE_REPLY_FLAG))
                        return r->h.result;
                if (r->fd >= 0)
                        close(r->fd);
                r->fd = -1;
        }
        return RAW_TIMEOUT;
}

int32_t raw_hello(int sock, raw_reply *r, int timeout_ms)
{
        wire_msg m;
        wire_msg_init(&m, WIRE_HELLO, raw_serial(), 0);
        wire_put_u32(&m, 64);
        wire_put_u32(&m, 0);
        return raw_request(sock, &m, NULL, 0, r, timeout_ms);
}

int32_t raw_find(int sock, const char *class_name, uint64_t *ret_id, raw_reply *r, int timeout_ms)
{
        tether_value *d = NULL;
        *ret_id = 0;
        if (tether_value_new_dict(&d) != TETHER_SUCCESS ||
            tether_value_dict_set_string(d, "IOProviderClass", class_name) != TETHER_SUCCESS) {
                tether_value_unref(d);
                return TETHER_ERR_NO_MEMORY;
        }
        wire_msg m;
        wire_msg_init(&m, WIRE_GET_MATCHING, raw_serial(), 0);
        wire_put_value(&m, d);
        tether_value_unref(d);
        int32_t res = raw_request(sock, &m, NULL, 0, r, timeout_ms);
        if (res == TETHER_SUCCESS && r->body_len >= 8)
                memcpy(ret_id, r->body, 8);
        else if (res == TETHER_SUCCESS)
                res = TETHER_ERR_NOT_FOUND;
        return res;
}

void raw_open_msg(wire_msg *m, uint64_t service, uint32_t type, uint32_t options)
{
        wire_msg_init(m, WIRE_OPEN, raw_serial(), 0);
        wire_put_u64(m, service);
        wire_put_u32(m, type);
        wire_put_u32(m, options);
}

int32_t raw_open(int sock, uint64_t service, uint32_t type, int *ret_conn, raw_reply *r, int timeout_ms)
{
        wire_msg m;
        raw_open_msg(&m, service, type, 0);
        *ret_conn = -1;
        int32_t res = raw_request(sock, &m, NULL, 0, r, timeout_ms);
        if (res == TETHER_SUCCESS && r->fd >= 0)
                *ret_conn = r->fd;
        else if (r->fd >= 0 && res <= 0)
                close(r->fd);
        if (res == TETHER_SUCCESS && *ret_conn < 0)
                res = TETHER_ERR_IPC; /* a success without its socket */
        return res;
}

int32_t raw_port_create(int sock, uint64_t *ret_id, int *ret_port, raw_reply *r, int timeout_ms)
{
        wire_msg m;
        wire_msg_init(&m, WIRE_PORT_CREATE, raw_serial(), 0);
        *ret_port = -1;
        *ret_id = 0;
        int32_t res = raw_request(sock, &m, NULL, 0, r, timeout_ms);
        if (res == TETHER_SUCCESS && r->fd >= 0 && r->body_len >= 8) {
                *ret_port = r->fd;
                memcpy(ret_id, r->body, 8);
        } else {
                if (r->fd >= 0 && res <= 0)
                        close(r->fd);
                if (res == TETHER_SUCCESS)
                        res = TETHER_ERR_IPC;
        }
        return res;
}

void raw_call_msg(wire_msg *m, const wire_call *c)
{
        wire_msg_init(m, WIRE_CALL, raw_serial(), 0);
        wire_call_encode(m, c);
}

int32_t raw_call(int conn, const wire_call *c, uint64_t *ret_out0, raw_reply *r, int timeout_ms)
{
        wire_msg m;
        raw_call_msg(&m, c);
        int32_t res = raw_request(conn, &m, NULL, 0, r, timeout_ms);
        if (r->fd >= 0 && res <= 0)
                close(r->fd);
        if (res == TETHER_SUCCESS && ret_out0) {
                wire_call_reply rep;
                if (wire_call_reply_decode(r->body, r->body_len, (c->flags & WIRE_CALL_OOL_OUT) != 0, &rep) !=
                            TETHER_SUCCESS ||
                    rep.scalar_out_count < 1)
                        return TETHER_ERR_IPC;
                *ret_out0 = rep.scalars[0];
        }
        return res;
}

int raw_memfd(uint64_t size, bool sealed)
{
        int fd = memfd_create("hostile", MFD_CLOEXEC | (sealed ? MFD_ALLOW_SEALING : 0));
        if (fd < 0)
                return -1;
        if (ftruncate(fd, (off_t)size) < 0 || (sealed && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0)) {
                close(fd);
                return -1;
        }
        return fd;
}
