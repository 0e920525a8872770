/* SPDX-License-Identifier: MIT */
#include "wire/message.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

tether_ret_t wire_channel_pair(bool outbound_only, int fds[2])
{
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
                return errno == EMFILE || errno == ENFILE ? TETHER_ERR_NO_RESOURCES : TETHER_ERR_IPC;
        fcntl(fds[0], F_SETFL, O_NONBLOCK);
        if (outbound_only)
                shutdown(fds[0], SHUT_RD);
        return TETHER_SUCCESS;
}

static tether_ret_t send_msg(int sock, const wire_msg *m, int fd, int flags)
{
        struct iovec iov = { .iov_base = (void *)m->buf, .iov_len = m->len };
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int))];
        } ctl;
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        if (fd >= 0) {
                memset(&ctl, 0, sizeof(ctl));
                mh.msg_control = ctl.buf;
                mh.msg_controllen = sizeof(ctl.buf);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &fd, sizeof(int));
        }
        for (;;) {
                /* Without an fd, send(): sendmsg's header costs a call
                 * round trip several percent (bench-call, both ends). */
                ssize_t n = fd >= 0 ? sendmsg(sock, &mh, MSG_NOSIGNAL | flags)
                                    : send(sock, m->buf, m->len, MSG_NOSIGNAL | flags);
                if (n == (ssize_t)m->len)
                        return TETHER_SUCCESS;
                if (n >= 0)
                        return TETHER_ERR_IPC; /* SEQPACKET never sends part of a datagram */
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                        return TETHER_ERR_NOT_RESPONDING;
                if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN)
                        return TETHER_ERR_NOT_ATTACHED;
                if (errno == EMSGSIZE)
                        return TETHER_ERR_MESSAGE_TOO_LARGE;
                return TETHER_ERR_IPC;
        }
}

tether_ret_t wire_send(int sock, const wire_msg *m, int fd)
{
        return send_msg(sock, m, fd, 0);
}

tether_ret_t wire_send_nowait(int sock, const wire_msg *m, int fd)
{
        return send_msg(sock, m, fd, MSG_DONTWAIT);
}

/* Every fd that came with the datagram: the first goes to *keep (if keep
 * and it is the only one), the rest are closed. Returns how many came. */
static size_t take_received_fds(struct msghdr *mh, int *keep)
{
        size_t total = 0;
        int first = -1;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < n; i++, total++) {
                        int fd;
                        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                        if (total == 0)
                                first = fd;
                        else
                                close(fd);
                }
        }
        if (total == 1 && keep)
                *keep = first;
        else if (first >= 0)
                close(first);
        return total;
}

/* A zero-length read is either the peer's hang-up or a zero-length
 * datagram: SEQPACKET delivers both as 0. Only the hang-up leaves the
 * socket reporting RDHUP/HUP; taking a datagram for a hang-up would let any
 * client make its reader stop reading (and so keep whatever is queued
 * behind it, fds included, forever). */
static bool peer_hung_up(int sock)
{
        struct pollfd p = { .fd = sock, .events = POLLRDHUP };
        int n = poll(&p, 1, 0);
        return n < 0 || (n == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)));
}

/* One datagram, with room for at most max_fds (0 or 1) fds: the kernel
 * drops any more (MSG_CTRUNC) before they enter this process's fd table, so
 * a peer passing hundreds of fds per message cannot fill it. *ret_fd: the
 * fd, -1, or WIRE_FD_REFUSED when more came than may (all closed). */
static tether_ret_t recv_datagram(int sock, void *buf, size_t cap, size_t *ret_len, int *ret_fd, unsigned max_fds)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int))];
        } ctl;
        struct iovec iov = { .iov_base = buf, .iov_len = cap };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = max_fds ? ctl.buf : NULL,
                             .msg_controllen = max_fds ? sizeof(ctl.buf) : 0 };
        *ret_fd = -1;
        ssize_t n;
        /* A peer that closes with our datagrams unread leaves ECONNRESET
         * pending, and the kernel reports it before what the peer sent
         * first (its last answers). The error is cleared by being read:
         * read on, so those answers are not lost; the hang-up follows them. */
        do
                n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && (errno == EINTR || errno == ECONNRESET));
        if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                        return TETHER_ERR_NOT_READY;
                return TETHER_ERR_NOT_ATTACHED;
        }
        int got = -1;
        size_t fds = take_received_fds(&mh, &got);
        bool refused = fds > max_fds || (mh.msg_flags & MSG_CTRUNC);
        if (refused && got >= 0)
                close(got);
        if (n == 0 && !fds && !refused && peer_hung_up(sock))
                return TETHER_ERR_NOT_ATTACHED;
        if (mh.msg_flags & MSG_TRUNC) {
                if (!refused && got >= 0)
                        close(got);
                return TETHER_ERR_MESSAGE_TOO_LARGE;
        }
        *ret_fd = refused ? WIRE_FD_REFUSED : got;
        *ret_len = (size_t)n;
        return TETHER_SUCCESS;
}

tether_ret_t wire_recv(int sock, void *buf, size_t cap, size_t *ret_len, int *ret_fd)
{
        int fd = -1;
        tether_ret_t r = recv_datagram(sock, buf, cap, ret_len, &fd, 1);
        if (ret_fd)
                *ret_fd = fd;
        else if (fd >= 0)
                close(fd);
        return r;
}

tether_ret_t wire_recv_plain(int sock, void *buf, size_t cap, size_t *ret_len)
{
        ssize_t n;
        /* MSG_TRUNC: the datagram's whole length, so a cut one is seen. */
        do
                n = recv(sock, buf, cap, MSG_TRUNC);
        while (n < 0 && (errno == EINTR || errno == ECONNRESET));
        if (n < 0)
                return errno == EAGAIN || errno == EWOULDBLOCK ? TETHER_ERR_NOT_READY : TETHER_ERR_NOT_ATTACHED;
        if (n == 0 && peer_hung_up(sock))
                return TETHER_ERR_NOT_ATTACHED;
        if ((size_t)n > cap)
                return TETHER_ERR_MESSAGE_TOO_LARGE;
        *ret_len = (size_t)n;
        return TETHER_SUCCESS;
}

tether_ret_t wire_recv_nofds(int sock, void *buf, size_t cap, size_t *ret_len, bool *ret_refused)
{
        int fd = -1;
        tether_ret_t r = recv_datagram(sock, buf, cap, ret_len, &fd, 0);
        *ret_refused = fd == WIRE_FD_REFUSED;
        return r;
}
