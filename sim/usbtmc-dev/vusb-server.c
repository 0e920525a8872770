/* SPDX-License-Identifier: MIT */
#include "vusb-server.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"

tether_ret_t sim_vusb_profile_info(const sim_usbtmc_profile *p, const char *serial, vusb_info *ret)
{
        if (!p || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        vusb_info d = {
                .vendor = p->vendor,
                .product = p->product,
                .interface = p->interface,
                .protocol = p->protocol,
                .ep_out = p->ep_out,
                .ep_in = p->ep_in,
                .ep_interrupt = p->ep_interrupt,
                .max_packet_in = p->max_packet,
                .max_data = VUSB_MAX_DATA,
        };
        if (serial) {
                if (strlen(serial) > VUSB_MAX_SERIAL)
                        return TETHER_ERR_BAD_ARGUMENT;
                strcpy(d.serial, serial);
        }
        if (vusb_info_check(&d) != TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret = d;
        return TETHER_SUCCESS;
}

static size_t finish(uint8_t *reply, uint16_t op, uint32_t id, tether_ret_t status, size_t body)
{
        vusb_header h = { .op = (uint16_t)(op | VUSB_REPLY), .version = VUSB_VERSION, .id = id,
                          .status = status, .size = (uint32_t)(VUSB_HEADER_SIZE + body) };
        vusb_header_encode(&h, reply);
        return VUSB_HEADER_SIZE + body;
}

/* A transfer's length as the client asked for it: 1..max_data bytes (the
 * reply must hold it). */
static tether_ret_t in_length(const vusb_info *info, const uint8_t *args, uint32_t *ret)
{
        uint32_t want = vusb_get32(args + 4);
        if (want == 0 || want > info->max_data)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret = want;
        return TETHER_SUCCESS;
}

/* An IN transfer the device NAKs, kept until it is answered. */
typedef struct held_in {
        bool active;
        uint16_t op;
        uint32_t id;
        uint32_t want;
        uint64_t deadline; /* the request's time plus its timeout */
        uint64_t wake;     /* when the device may have something */
} held_in;

struct sim_vusb {
        sim_usbtmc *dev;
        vusb_info info;
        sim_vusb_send_fn send;
        void *send_ctx;
        held_in bulk, interrupt;
        uint8_t reply[VUSB_MAX_MSG];
};

tether_ret_t sim_vusb_new(sim_usbtmc *dev, const vusb_info *info, sim_vusb_send_fn send, void *send_ctx,
                          sim_vusb **ret)
{
        if (!dev || !info || !send || !ret || vusb_info_check(info) != TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT;
        sim_vusb *s = calloc(1, sizeof(*s));
        if (!s)
                return TETHER_ERR_NO_MEMORY;
        s->dev = dev;
        s->info = *info;
        s->send = send;
        s->send_ctx = send_ctx;
        *ret = s;
        return TETHER_SUCCESS;
}

void sim_vusb_free(sim_vusb *s)
{
        free(s);
}

unsigned sim_vusb_held(const sim_vusb *s)
{
        return (unsigned)s->bulk.active + (unsigned)s->interrupt.active;
}

/* The reply in s->reply, its body (body bytes) already in place. */
static void reply(sim_vusb *s, uint16_t op, uint32_t id, tether_ret_t status, size_t body)
{
        s->send(s->send_ctx, s->reply, finish(s->reply, op, id, status, body));
}

/* Ask the device for what h waits for; answer h when that ends it (data,
 * a stall, the device gone, or its time up). */
static void serve_held(sim_vusb *s, held_in *h, uint64_t now)
{
        if (!h->active)
                return;
        uint8_t *out = s->reply + VUSB_HEADER_SIZE;
        size_t n = 0;
        uint32_t wake = SIM_WAKE_NEVER;
        tether_ret_t r = h->op == VUSB_BULK_IN ? sim_usbtmc_bulk_in_try(s->dev, out, h->want, &n, &wake)
                                               : sim_usbtmc_interrupt_in_try(s->dev, out, h->want, &n, &wake);
        if (r == TETHER_ERR_NOT_READY) {
                if (now < h->deadline) {
                        h->wake = wake == SIM_WAKE_NEVER || now + wake > h->deadline ? h->deadline : now + wake;
                        return;
                }
                if (h->op == VUSB_BULK_IN)
                        sim_usbtmc_bulk_in_expired(s->dev);
                r = TETHER_ERR_TIMEOUT;
                n = 0;
        }
        /* The device wrote into out, bounded by want; a count past it
         * would be a simulator bug, and is not sent. */
        if (n > h->want) {
                n = 0;
                r = TETHER_ERR_INTERNAL;
        }
        h->active = false;
        reply(s, h->op, h->id, r, n);
}

/* h given up on by its client (it asked again on the same endpoint, or
 * did what a host does only once it has stopped reading): answered, as a
 * cancelled URB is, with nothing. */
static void supersede(sim_vusb *s, held_in *h)
{
        if (!h->active)
                return;
        if (h->op == VUSB_BULK_IN)
                sim_usbtmc_bulk_in_expired(s->dev);
        h->active = false;
        reply(s, h->op, h->id, TETHER_ERR_TIMEOUT, 0);
}

/* A request other than an IN transfer's body (args, alen bytes) carried
 * out on the device; the answer's data goes to out (room for
 * VUSB_MAX_DATA), *ret_n bytes. */
static tether_ret_t carry_out(sim_vusb *s, uint16_t op, const uint8_t *args, size_t alen, uint8_t *out,
                              size_t *ret_n)
{
        const usbtmc_backend_ops *ops = &sim_usbtmc_ops;
        const vusb_info *info = &s->info;
        *ret_n = 0;
        switch (op) {
        case VUSB_DESCRIBE:
                if (alen != VUSB_ARGS_DESCRIBE)
                        return TETHER_ERR_BAD_ARGUMENT;
                return vusb_info_encode(info, out, VUSB_MAX_DATA, ret_n) == TETHER_SUCCESS ? TETHER_SUCCESS
                                                                                           : TETHER_ERR_INTERNAL;
        case VUSB_BULK_OUT:
                if (alen < VUSB_ARGS_BULK_OUT)
                        return TETHER_ERR_BAD_ARGUMENT;
                if (alen - VUSB_ARGS_BULK_OUT > info->max_data)
                        return TETHER_ERR_MESSAGE_TOO_LARGE;
                /* A USBTMC host sends nothing on bulk-OUT while it reads a
                 * response (it aborts the read first), so one that does
                 * has given its bulk-IN transfer up: that transfer must
                 * not take the answer this message may make. */
                supersede(s, &s->bulk);
                return ops->bulk_out(s->dev, args + VUSB_ARGS_BULK_OUT, alen - VUSB_ARGS_BULK_OUT, vusb_get32(args));
        case VUSB_CONTROL_IN: {
                if (alen != VUSB_ARGS_CONTROL_IN)
                        return TETHER_ERR_BAD_ARGUMENT;
                if (!(args[4] & 0x80u))
                        return TETHER_ERR_BAD_ARGUMENT; /* an OUT request: not one of ours */
                uint16_t want = vusb_get16(args + 10);
                tether_ret_t r = ops->control_in(s->dev, args[4], args[5], vusb_get16(args + 6), vusb_get16(args + 8),
                                                 out, want, ret_n, vusb_get32(args));
                if (*ret_n > want) {
                        *ret_n = 0;
                        return TETHER_ERR_INTERNAL;
                }
                return r;
        }
        case VUSB_CLEAR_HALT:
                if (alen != VUSB_ARGS_CLEAR_HALT || args[1] || args[2] || args[3])
                        return TETHER_ERR_BAD_ARGUMENT;
                if (args[0] != info->ep_out && args[0] != info->ep_in)
                        return TETHER_ERR_BAD_ARGUMENT; /* no such endpoint */
                /* A halt is cleared on an endpoint with no transfer queued
                 * (the host cancels them first). */
                if (args[0] == info->ep_in)
                        supersede(s, &s->bulk);
                return ops->clear_halt(s->dev, args[0] == info->ep_out);
        default:
                return TETHER_ERR_BAD_MESSAGE_ID;
        }
}

/* An IN transfer's request: refused at once, or taken as the endpoint's
 * held transfer (asked of the device right after). */
static tether_ret_t take_in(sim_vusb *s, const vusb_header *h, const uint8_t *args, size_t alen, uint64_t now)
{
        if (alen != VUSB_ARGS_BULK_IN)
                return TETHER_ERR_BAD_ARGUMENT;
        if (h->op == VUSB_INTERRUPT_IN && !s->info.ep_interrupt)
                return TETHER_ERR_UNSUPPORTED;
        uint32_t want = 0;
        tether_ret_t r = in_length(&s->info, args, &want);
        if (r != TETHER_SUCCESS)
                return r;
        held_in *in = h->op == VUSB_BULK_IN ? &s->bulk : &s->interrupt;
        supersede(s, in);
        /* A timeout of 0 is a poll, answered at once: unlike libusb's 0
         * (for ever), a server never holds a transfer without a bound. */
        *in = (held_in){ .active = true, .op = h->op, .id = h->id, .want = want,
                         .deadline = now + vusb_get32(args), .wake = now };
        return TETHER_SUCCESS;
}

void sim_vusb_request(sim_vusb *s, const uint8_t *req, size_t len, uint64_t now_ms)
{
        if (!s || (!req && len))
                return;
        vusb_header h;
        if (vusb_header_decode(req, len, &h) != TETHER_SUCCESS) {
                /* Not even an id to answer to. */
                reply(s, 0, 0, TETHER_ERR_BAD_ARGUMENT, 0);
                return;
        }
        tether_ret_t r = TETHER_SUCCESS;
        if (len > VUSB_MAX_MSG)
                r = TETHER_ERR_MESSAGE_TOO_LARGE;
        else if (h.size != len || h.status != 0)
                r = TETHER_ERR_BAD_ARGUMENT;
        else if (h.version != VUSB_VERSION)
                r = TETHER_ERR_UNSUPPORTED;
        const uint8_t *args = req + VUSB_HEADER_SIZE;
        size_t alen = len - VUSB_HEADER_SIZE;
        if (r == TETHER_SUCCESS && (h.op == VUSB_BULK_IN || h.op == VUSB_INTERRUPT_IN)) {
                r = take_in(s, &h, args, alen, now_ms);
                if (r != TETHER_SUCCESS)
                        reply(s, h.op, h.id, r, 0);
        } else {
                size_t n = 0;
                if (r == TETHER_SUCCESS)
                        r = carry_out(s, h.op, args, alen, s->reply + VUSB_HEADER_SIZE, &n);
                reply(s, h.op, h.id, r, n);
        }
        /* What the request did to the device (an abort's short packet, a
         * status byte's notification, an answer queued, an unplug) may be
         * what a held transfer waits for. */
        sim_vusb_tick(s, now_ms);
}

int64_t sim_vusb_tick(sim_vusb *s, uint64_t now_ms)
{
        if (!s)
                return -1;
        serve_held(s, &s->bulk, now_ms);
        serve_held(s, &s->interrupt, now_ms);
        int64_t next = -1;
        const held_in *held[2] = { &s->bulk, &s->interrupt };
        for (int i = 0; i < 2; i++) {
                if (!held[i]->active)
                        continue;
                int64_t in = held[i]->wake > now_ms ? (int64_t)(held[i]->wake - now_ms) : 0;
                if (next < 0 || in < next)
                        next = in;
        }
        return next;
}

/* Replies go out on the socket as they are made; the first failure ends
 * the session. */
typedef struct sender {
        int fd;
        int failed; /* 0 none, 1 the peer is gone, -1 the socket failed */
} sender;

static int send_reply(int fd, const uint8_t *reply, size_t len)
{
        for (;;) {
                ssize_t n = send(fd, reply, len, MSG_NOSIGNAL);
                if (n >= 0)
                        return (size_t)n == len ? 0 : -1;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                        /* A non-blocking socket and a client not reading:
                         * only its own device waits. */
                        struct pollfd p = { .fd = fd, .events = POLLOUT };
                        if (poll(&p, 1, -1) < 0 && errno != EINTR)
                                return -1;
                        continue;
                }
                return errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN ? 1 : -1;
        }
}

static void send_to_socket(void *ctx, const uint8_t *reply, size_t len)
{
        sender *to = ctx;
        if (!to->failed)
                to->failed = send_reply(to->fd, reply, len);
}

/* The session's clock in ms. A request's time is rounded up and a tick's
 * down, so a transfer is held at least its whole timeout, never a
 * fraction of a millisecond less. */
static uint64_t mono_ms(bool round_up)
{
        return (clock_mono_ns() + (round_up ? 999999u : 0u)) / 1000000u;
}

int sim_vusb_serve(int fd, sim_usbtmc *dev, const char *serial)
{
        vusb_info info;
        if (fd < 0 || !dev || sim_vusb_profile_info(sim_usbtmc_profile_of(dev), serial, &info) != TETHER_SUCCESS)
                return -1;
        sender to = { .fd = fd };
        sim_vusb *s = NULL;
        /* One byte more than the largest request: a datagram that fills it
         * was too big, and is answered so. */
        uint8_t *req = malloc(VUSB_MAX_MSG + 1);
        int rc = req && sim_vusb_new(dev, &info, send_to_socket, &to, &s) == TETHER_SUCCESS ? 1 : -1;
        while (rc == 1) {
                int64_t wait = sim_vusb_tick(s, mono_ms(false));
                if (to.failed)
                        break;
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int k = poll(&p, 1, wait < 0 ? -1 : wait > INT_MAX ? INT_MAX : (int)wait);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 || (k == 1 && (p.revents & POLLNVAL))) {
                        rc = -1;
                        break;
                }
                if (k == 0)
                        continue; /* a held transfer is due */
                size_t n = 0;
                tether_ret_t r = vusb_recv(fd, req, VUSB_MAX_MSG + 1, &n);
                if (r == TETHER_ERR_NOT_READY)
                        continue;
                if (r == TETHER_ERR_NO_DEVICE) {
                        rc = 0;
                        break;
                }
                if (r != TETHER_SUCCESS && r != TETHER_ERR_MESSAGE_TOO_LARGE) {
                        rc = -1;
                        break;
                }
                sim_vusb_request(s, req, n, mono_ms(true));
                if (to.failed)
                        break;
        }
        if (to.failed)
                rc = to.failed > 0 ? 0 : -1;
        sim_vusb_free(s);
        free(req);
        return rc;
}

int sim_vusb_fd_arg(const char *arg)
{
        char *end = NULL;
        errno = 0;
        long v = strtol(arg, &end, 10);
        if (errno || end == arg || *end || v < 0 || v > INT_MAX || fcntl((int)v, F_GETFD) < 0)
                return -1;
        return (int)v;
}

/*
 * The socket is the simulator's only link to anyone: when whoever holds
 * the other end goes away, by closing it or by dying (the kernel closes a
 * dead process's fds), the hang-up ends the loop and the process. So there
 * is no need for PR_SET_PDEATHSIG, which would watch the wrong party
 * anyway: the peer is a driver host, not necessarily our parent, and the
 * signal fires when the parent *thread* that forked us exits, not the
 * parent process. The server's one wait is poll on the socket (a held
 * transfer's time is poll's timeout), so a hang-up is seen at once, even
 * while a transfer is held.
 */
int sim_vusb_run(const char *prog, int fd, sim_usbtmc *dev, const char *serial)
{
        int type = 0;
        socklen_t tl = sizeof(type);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_SEQPACKET) {
                fprintf(stderr, "%s: --usb-fd %d is not a SOCK_SEQPACKET socket\n", prog, fd);
                return 2;
        }
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        int rc = sim_vusb_serve(fd, dev, serial);
        close(fd);
        if (rc < 0)
                fprintf(stderr, "%s: the USB socket failed\n", prog);
        return rc < 0 ? 1 : 0;
}
