/* SPDX-License-Identifier: MIT */
#include "scpi/link.h"

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- USBTMC ---- */

static tether_ret_t u_write(void *ctx, const void *msg, size_t len)
{
        return usbtmc_write(ctx, msg, len);
}

static tether_ret_t u_read(void *ctx, void *buf, size_t cap, size_t *ret_len)
{
        return usbtmc_read(ctx, buf, cap, ret_len);
}

static unsigned u_timeout(void *ctx, unsigned ms)
{
        usbtmc *t = ctx;
        unsigned old = t->timeout_ms;
        t->timeout_ms = ms;
        return old;
}

static tether_ret_t u_read_begin(void *ctx, size_t cap)
{
        usbtmc *t = ctx;
        return usbtmc_request_in(t, cap < t->max_transfer ? cap : t->max_transfer);
}

static tether_ret_t u_read_wait(void *ctx, unsigned wait_ms, void *buf, size_t cap, size_t *ret_len)
{
        usbtmc *t = ctx;
        if (!buf || cap < t->in_want)
                return TETHER_ERR_BAD_ARGUMENT; /* the first transfer lands whole in buf */
        size_t n = 0;
        uint8_t attributes = 0;
        tether_ret_t r = usbtmc_receive_in(t, buf, wait_ms, &n, &attributes);
        if (r == TETHER_ERR_TIMEOUT)
                return r; /* the request stands */
        if (r != TETHER_SUCCESS) {
                if (r == TETHER_ERR_IO || r == TETHER_ERR_UNDERRUN)
                        usbtmc_recover(t); /* out of step, as usbtmc_read recovers */
                return r;
        }
        size_t more = 0;
        /* Longer than one transfer: the rest is asked for as any read's. */
        if (!(attributes & USBTMC_ATTR_EOM))
                r = usbtmc_read(t, (uint8_t *)buf + n, cap - n, &more);
        *ret_len = n + more;
        return r;
}

static void u_read_abandon(void *ctx)
{
        usbtmc_recover(ctx);
}

static const scpi_link_ops usbtmc_link_ops = { u_write, u_read, NULL, u_timeout, u_read_begin, u_read_wait,
                                               u_read_abandon };

void scpi_link_usbtmc(scpi_link *l, usbtmc *t)
{
        l->ops = &usbtmc_link_ops;
        l->ctx = t;
}

/* ---- TCP ---- */

static int tcp_connect(const char *host, uint16_t port);

typedef struct tcp_link {
        int fd;
        char host[256];
        uint16_t port;
        unsigned timeout_ms;
        uint8_t buf[65536];      /* bytes received past the last response */
        size_t have;
} tcp_link;

static tether_ret_t t_write(void *ctx, const void *msg, size_t len)
{
        tcp_link *t = ctx;
        const uint8_t *p = msg;
        bool newline = len && p[len - 1] == '\n';
        while (len) {
                ssize_t n = send(t->fd, p, len, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return TETHER_ERR_NOT_ATTACHED;
                p += n;
                len -= (size_t)n;
        }
        /* On a socket the newline is the end of the message. */
        if (!newline && send(t->fd, "\n", 1, MSG_NOSIGNAL) != 1)
                return TETHER_ERR_NOT_ATTACHED;
        return TETHER_SUCCESS;
}

/* A new connection in place of one whose answer is late (a raw socket has
 * no device clear); the old one stays if none can be made. */
static void reconnect(tcp_link *t)
{
        int fd = tcp_connect(t->host, t->port);
        if (fd >= 0) {
                close(t->fd);
                t->fd = fd;
        }
}

/* More bytes into t->buf; TIMEOUT when none came in time. */
static tether_ret_t fill(tcp_link *t)
{
        if (t->have == sizeof(t->buf))
                return TETHER_ERR_OVERRUN;
        struct pollfd pfd = { .fd = t->fd, .events = POLLIN };
        int pr = poll(&pfd, 1, (int)t->timeout_ms);
        if (pr == 0)
                return TETHER_ERR_TIMEOUT;
        if (pr < 0)
                return errno == EINTR ? TETHER_SUCCESS : TETHER_ERR_IO;
        ssize_t n = recv(t->fd, t->buf + t->have, sizeof(t->buf) - t->have, 0);
        if (n == 0)
                return TETHER_ERR_NOT_ATTACHED;
        if (n < 0)
                return errno == EINTR ? TETHER_SUCCESS : TETHER_ERR_IO;
        t->have += (size_t)n;
        return TETHER_SUCCESS;
}

/* The length of the response starting at t->buf, once it can be known
 * (0 until then): a leading definite-length block is its header, its bytes
 * and the newline after them; anything else runs to its first newline.
 * (A block must be the only answer of its message, as the driver uses it.) */
static size_t response_length(const tcp_link *t)
{
        const uint8_t *b = t->buf;
        if (t->have >= 2 && b[0] == '#' && b[1] >= '1' && b[1] <= '9') {
                size_t digits = (size_t)(b[1] - '0');
                if (t->have < 2 + digits)
                        return 0;
                size_t len = 0;
                for (size_t i = 0; i < digits; i++) {
                        if (!isdigit(b[2 + i]))
                                return SIZE_MAX; /* malformed: caught by the block parser later */
                        len = len * 10 + (size_t)(b[2 + i] - '0');
                }
                return 2 + digits + len + 1;
        }
        if (t->have == 1 && b[0] == '#')
                return 0;
        const uint8_t *nl = memchr(b, '\n', t->have);
        return nl ? (size_t)(nl - b) + 1 : 0;
}

static tether_ret_t t_read(void *ctx, void *out, size_t cap, size_t *ret_len)
{
        tcp_link *t = ctx;
        uint8_t *dst = out;
        size_t need = 0, done = 0;
        bool overrun = false;
        while (!need || done < need) {
                if (!need && done == 0)
                        need = response_length(t);
                else if (!need) {
                        /* Text longer than the buffer: its end is the next newline. */
                        const uint8_t *nl = memchr(t->buf, '\n', t->have);
                        if (nl)
                                need = done + (size_t)(nl - t->buf) + 1;
                }
                /* Hand over what belongs to this response: up to its end
                 * when known, else a full buffer, so any length streams. */
                size_t take = need ? (t->have < need - done ? t->have : need - done)
                                   : (t->have == sizeof(t->buf) ? t->have : 0);
                if (take) {
                        size_t room = done < cap ? (cap - done < take ? cap - done : take) : 0;
                        if (room)
                                memcpy(dst + done, t->buf, room);
                        overrun |= room < take;
                        memmove(t->buf, t->buf + take, t->have - take);
                        t->have -= take;
                        done += take;
                        continue;
                }
                tether_ret_t r = fill(t);
                if (r != TETHER_SUCCESS) {
                        /* A raw socket has no device clear: the late answer
                         * would still come, and be read as the next one's.
                         * A new connection leaves it behind (the instrument
                         * drops a closed connection's output). */
                        t->have = 0;
                        if (r == TETHER_ERR_TIMEOUT)
                                reconnect(t);
                        return r;
                }
        }
        *ret_len = done < cap ? done : cap;
        return overrun ? TETHER_ERR_OVERRUN : TETHER_SUCCESS;
}

static void t_close(void *ctx)
{
        tcp_link *t = ctx;
        close(t->fd);
        free(t);
}

static unsigned t_timeout(void *ctx, unsigned ms)
{
        tcp_link *t = ctx;
        unsigned old = t->timeout_ms;
        t->timeout_ms = ms;
        return old;
}

static tether_ret_t t_read_begin(void *ctx, size_t cap)
{
        return TETHER_SUCCESS; /* on a socket the answer just comes */
}

static tether_ret_t t_read_wait(void *ctx, unsigned wait_ms, void *buf, size_t cap, size_t *ret_len)
{
        tcp_link *t = ctx;
        if (!t->have) {
                struct pollfd pfd = { .fd = t->fd, .events = POLLIN };
                int pr = poll(&pfd, 1, (int)wait_ms);
                if (pr == 0 || (pr < 0 && errno == EINTR))
                        return TETHER_ERR_TIMEOUT;
                if (pr < 0)
                        return TETHER_ERR_IO;
        }
        return t_read(ctx, buf, cap, ret_len);
}

static void t_read_abandon(void *ctx)
{
        /* As a read that timed out: the late answer stays with the old
         * connection. */
        tcp_link *t = ctx;
        t->have = 0;
        reconnect(t);
}

static const scpi_link_ops tcp_link_ops = { t_write, t_read, t_close, t_timeout, t_read_begin, t_read_wait,
                                            t_read_abandon };

/* A connected TCP socket to host:port; -1 if refused, -2 if the name
 * does not resolve. */
static int tcp_connect(const char *host, uint16_t port)
{
        char service[8];
        snprintf(service, sizeof(service), "%u", port);
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai = NULL;
        if (getaddrinfo(host, service, &hints, &ai) != 0)
                return -2;
        int fd = -1;
        for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
                fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
                if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
                        close(fd);
                        fd = -1;
                }
        }
        freeaddrinfo(ai);
        if (fd >= 0) {
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* commands are small */
        }
        return fd;
}

tether_ret_t scpi_link_tcp_open(const char *host, uint16_t port, unsigned timeout_ms, scpi_link *ret)
{
        if (!host || strlen(host) >= sizeof(((tcp_link *)0)->host))
                return TETHER_ERR_BAD_ARGUMENT;
        int fd = tcp_connect(host, port);
        if (fd == -2)
                return TETHER_ERR_NOT_FOUND;
        if (fd < 0)
                return TETHER_ERR_NOT_RESPONDING;
        tcp_link *t = calloc(1, sizeof(*t));
        if (!t) {
                close(fd);
                return TETHER_ERR_NO_MEMORY;
        }
        t->fd = fd;
        strcpy(t->host, host);
        t->port = port;
        t->timeout_ms = timeout_ms ? timeout_ms : 5000;
        ret->ops = &tcp_link_ops;
        ret->ctx = t;
        return TETHER_SUCCESS;
}
