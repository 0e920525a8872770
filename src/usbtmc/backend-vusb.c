/* SPDX-License-Identifier: MIT */
#include "usbtmc/backend-vusb.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"

/* The most negative status a reply may carry: tether_ret_t codes are the
 * low bits of IOReturns, all well inside this. Anything past it, or
 * positive, is not a status at all. */
#define STATUS_MIN (-0xffff)

struct usbtmc_vusb {
        int fd;
        uint32_t last_id;
        tether_ret_t broken;          /* NO_DEVICE or IPC once the link is lost for good */
        vusb_info info;
        uint8_t buf[VUSB_MAX_MSG];    /* the last reply */
};

static tether_ret_t lose(usbtmc_vusb *v, tether_ret_t why)
{
        v->broken = why;
        return why;
}

/* Until fd is ready for events or the deadline passes. Readiness includes
 * HUP and ERR: the recv or send that follows says what they mean. */
static tether_ret_t wait_for(usbtmc_vusb *v, short events, uint64_t deadline)
{
        for (;;) {
                uint64_t now = clock_mono_ms();
                if (now >= deadline)
                        return TETHER_ERR_TIMEOUT;
                uint64_t left = deadline - now;
                struct pollfd p = { .fd = v->fd, .events = events };
                int n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 || (n == 1 && (p.revents & POLLNVAL)))
                        return lose(v, TETHER_ERR_IPC);
                if (n == 1)
                        return TETHER_SUCCESS;
        }
}

static tether_ret_t send_request(usbtmc_vusb *v, const uint8_t *head, size_t head_len, const uint8_t *data,
                                 size_t data_len, uint64_t deadline)
{
        struct iovec iov[2] = { { .iov_base = (void *)head, .iov_len = head_len },
                                { .iov_base = (void *)data, .iov_len = data_len } };
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = data_len ? 2 : 1 };
        for (;;) {
                ssize_t n = sendmsg(v->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n >= 0)
                        return (size_t)n == head_len + data_len ? TETHER_SUCCESS : lose(v, TETHER_ERR_IPC);
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                        /* The server is not reading: wait for room, as long as
                         * the whole request may take. */
                        tether_ret_t r = wait_for(v, POLLOUT, deadline);
                        if (r != TETHER_SUCCESS)
                                return r;
                        continue;
                }
                if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN)
                        return lose(v, TETHER_ERR_NO_DEVICE);
                if (errno == EMSGSIZE)
                        return TETHER_ERR_MESSAGE_TOO_LARGE;
                if (errno == ENOBUFS || errno == ENOMEM)
                        return TETHER_ERR_NO_MEMORY;
                return lose(v, TETHER_ERR_IPC);
        }
}

/* One request, its reply. On TETHER_SUCCESS *ret_status is the server's
 * answer and the reply's body is in v->buf past the header, *ret_body_len
 * bytes, good until the next request. Anything else is the link's own
 * failure (no answer in time, peer gone, protocol broken). */
static tether_ret_t transact(usbtmc_vusb *v, uint16_t op, const uint8_t *args, size_t args_len,
                             const uint8_t *data, size_t data_len, unsigned timeout_ms, tether_ret_t *ret_status,
                             size_t *ret_body_len)
{
        if (v->broken)
                return v->broken;
        uint64_t deadline = clock_mono_ms() + timeout_ms + VUSB_REPLY_MARGIN_MS;
        /* 0 is never used: a server answers a request too short to carry
         * an id with id 0, and that answer is nobody's. */
        v->last_id = v->last_id == UINT32_MAX ? 1 : v->last_id + 1;
        uint8_t head[VUSB_HEADER_SIZE + VUSB_MAX_ARGS];
        vusb_header h = { .op = op, .version = VUSB_VERSION, .id = v->last_id,
                          .size = (uint32_t)(VUSB_HEADER_SIZE + args_len + data_len) };
        vusb_header_encode(&h, head);
        if (args_len)
                memcpy(head + VUSB_HEADER_SIZE, args, args_len);
        tether_ret_t r = send_request(v, head, VUSB_HEADER_SIZE + args_len, data, data_len, deadline);
        while (r == TETHER_SUCCESS) {
                r = wait_for(v, POLLIN, deadline);
                if (r != TETHER_SUCCESS)
                        break;
                size_t n = 0;
                r = vusb_recv(v->fd, v->buf, sizeof(v->buf), &n);
                if (r == TETHER_ERR_NOT_READY) {
                        r = TETHER_SUCCESS;
                        continue;
                }
                if (r == TETHER_ERR_NO_DEVICE)
                        return lose(v, TETHER_ERR_NO_DEVICE);
                if (r != TETHER_SUCCESS)
                        return lose(v, TETHER_ERR_IPC); /* oversized, or the socket failed */
                vusb_header rh;
                if (vusb_header_decode(v->buf, n, &rh) != TETHER_SUCCESS || rh.size != n)
                        return lose(v, TETHER_ERR_IPC);
                /* The answer to a request given up on (timed out) comes
                 * late, ahead of ours: it is no longer anyone's. */
                if (rh.id != h.id)
                        continue;
                if (rh.op != (op | VUSB_REPLY) || rh.version != VUSB_VERSION || rh.status > 0 ||
                    rh.status < STATUS_MIN)
                        return lose(v, TETHER_ERR_IPC);
                *ret_status = rh.status;
                *ret_body_len = n - VUSB_HEADER_SIZE;
                return TETHER_SUCCESS;
        }
        return r;
}

static tether_ret_t v_bulk_out(void *ctx, const uint8_t *data, size_t len, unsigned timeout_ms)
{
        usbtmc_vusb *v = ctx;
        if (!data && len)
                return TETHER_ERR_BAD_ARGUMENT;
        /* Split, the device would see two transfers: the caller's
         * max_transfer (usbtmc_vusb_attach) keeps this from happening. */
        if (len > v->info.max_data)
                return TETHER_ERR_MESSAGE_TOO_LARGE;
        uint8_t args[VUSB_ARGS_BULK_OUT];
        vusb_put32(args, timeout_ms);
        tether_ret_t status;
        size_t body = 0;
        tether_ret_t r = transact(v, VUSB_BULK_OUT, args, sizeof(args), data, len, timeout_ms, &status, &body);
        if (r != TETHER_SUCCESS)
                return r;
        return body ? lose(v, TETHER_ERR_IPC) : status;
}

/* A request that brings data back: at most want bytes into data. A reply
 * with more than was asked for is the server's fault, and none of it is
 * copied. */
static tether_ret_t transact_in(usbtmc_vusb *v, uint16_t op, const uint8_t *args, size_t n_args, unsigned timeout_ms,
                                uint8_t *data, size_t want, size_t *ret_len)
{
        tether_ret_t status;
        size_t body = 0;
        tether_ret_t r = transact(v, op, args, n_args, NULL, 0, timeout_ms, &status, &body);
        if (r != TETHER_SUCCESS)
                return r;
        if (body > want)
                return lose(v, TETHER_ERR_IPC);
        if (body)
                memcpy(data, v->buf + VUSB_HEADER_SIZE, body);
        *ret_len = body;
        return status;
}

/* BULK_IN and INTERRUPT_IN: up to cap bytes back. */
static tether_ret_t read_in(usbtmc_vusb *v, uint16_t op, uint8_t *data, size_t cap, size_t *ret_len,
                            unsigned timeout_ms)
{
        *ret_len = 0;
        if (!data || !cap)
                return TETHER_ERR_BAD_ARGUMENT;
        /* Taking less than offered is what a short packet does: callers
         * read on until they have what the USBTMC header announced. */
        uint32_t want = cap < v->info.max_data ? (uint32_t)cap : v->info.max_data;
        uint8_t args[8];
        vusb_put32(args, timeout_ms);
        vusb_put32(args + 4, want);
        return transact_in(v, op, args, sizeof(args), timeout_ms, data, want, ret_len);
}

static tether_ret_t v_bulk_in(void *ctx, uint8_t *data, size_t cap, size_t *ret_len, unsigned timeout_ms)
{
        return read_in(ctx, VUSB_BULK_IN, data, cap, ret_len, timeout_ms);
}

static tether_ret_t v_interrupt_in(void *ctx, uint8_t *data, size_t cap, size_t *ret_len, unsigned timeout_ms)
{
        usbtmc_vusb *v = ctx;
        if (!v->info.ep_interrupt) {
                *ret_len = 0;
                return TETHER_ERR_UNSUPPORTED;
        }
        return read_in(v, VUSB_INTERRUPT_IN, data, cap, ret_len, timeout_ms);
}

static tether_ret_t v_control_in(void *ctx, uint8_t type, uint8_t request, uint16_t value, uint16_t index,
                                 uint8_t *data, uint16_t len, size_t *ret_len, unsigned timeout_ms)
{
        usbtmc_vusb *v = ctx;
        *ret_len = 0;
        if (!data && len)
                return TETHER_ERR_BAD_ARGUMENT;
        uint8_t args[VUSB_ARGS_CONTROL_IN];
        vusb_put32(args, timeout_ms);
        args[4] = type;
        args[5] = request;
        vusb_put16(args + 6, value);
        vusb_put16(args + 8, index);
        vusb_put16(args + 10, len);
        return transact_in(v, VUSB_CONTROL_IN, args, sizeof(args), timeout_ms, data, len, ret_len);
}

static tether_ret_t v_clear_halt(void *ctx, bool out)
{
        usbtmc_vusb *v = ctx;
        uint8_t args[VUSB_ARGS_CLEAR_HALT] = { out ? v->info.ep_out : v->info.ep_in, 0, 0, 0 };
        tether_ret_t status;
        size_t body = 0;
        tether_ret_t r = transact(v, VUSB_CLEAR_HALT, args, sizeof(args), NULL, 0, VUSB_DEFAULT_TIMEOUT_MS, &status,
                                  &body);
        if (r != TETHER_SUCCESS)
                return r;
        return body ? lose(v, TETHER_ERR_IPC) : status;
}

/* Static: a bundle's copy of this code and the host's (or tetherd's) would
 * otherwise both define it, one global in two modules (ASan's ODR check). */
static const usbtmc_backend_ops usbtmc_vusb_ops = {
        .bulk_out = v_bulk_out,
        .bulk_in = v_bulk_in,
        .control_in = v_control_in,
        .clear_halt = v_clear_halt,
        .interrupt_in = v_interrupt_in,
};

static tether_ret_t describe(usbtmc_vusb *v)
{
        tether_ret_t status;
        size_t body = 0;
        tether_ret_t r = transact(v, VUSB_DESCRIBE, NULL, 0, NULL, 0, VUSB_DEFAULT_TIMEOUT_MS, &status, &body);
        if (r != TETHER_SUCCESS)
                return r;
        if (status != TETHER_SUCCESS)
                return status;
        return vusb_info_decode(v->buf + VUSB_HEADER_SIZE, body, &v->info);
}

tether_ret_t usbtmc_vusb_open(int fd, usbtmc_vusb **ret)
{
        if (fd < 0)
                return TETHER_ERR_BAD_ARGUMENT;
        int type = 0;
        socklen_t tl = sizeof(type);
        /* A stream socket would run datagrams together: refused, not
         * misread later. */
        if (!ret || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_SEQPACKET) {
                close(fd);
                return TETHER_ERR_BAD_ARGUMENT;
        }
        /* Never block: every wait is a poll with a deadline. */
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
                close(fd);
                return TETHER_ERR_BAD_ARGUMENT;
        }
        usbtmc_vusb *v = calloc(1, sizeof(*v));
        if (!v) {
                close(fd);
                return TETHER_ERR_NO_MEMORY;
        }
        v->fd = fd;
        tether_ret_t r = describe(v);
        if (r != TETHER_SUCCESS) {
                usbtmc_vusb_close(v);
                return r;
        }
        *ret = v;
        return TETHER_SUCCESS;
}

void usbtmc_vusb_close(usbtmc_vusb *v)
{
        if (!v)
                return;
        close(v->fd);
        free(v);
}

void usbtmc_vusb_attach(usbtmc *t, usbtmc_vusb *v)
{
        usbtmc_init(t, &usbtmc_vusb_ops, v);
        t->ep_out = v->info.ep_out;
        t->ep_in = v->info.ep_in;
        t->ep_interrupt = v->info.ep_interrupt;
        t->interface = v->info.interface;
        t->max_packet = v->info.max_packet_in;
        /* A whole transfer (USBTMC header, data, padding) in one datagram:
         * usbtmc sends and asks for USBTMC_HEADER_SIZE + padded(n). */
        t->max_transfer = (v->info.max_data - USBTMC_HEADER_SIZE) & ~3u;
}

tether_ret_t usbtmc_vusb_get_info(const usbtmc_vusb *v, vusb_info *ret)
{
        if (!v || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret = v->info;
        return TETHER_SUCCESS;
}
