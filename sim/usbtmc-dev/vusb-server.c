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

/* The request's body (args, alen bytes) carried out on the device; the
 * answer's data goes to out (room for VUSB_MAX_DATA), *ret_n bytes. */
static tether_ret_t carry_out(sim_usbtmc *dev, const vusb_info *info, uint16_t op, const uint8_t *args, size_t alen,
                              uint8_t *out, size_t *ret_n)
{
        const usbtmc_backend_ops *ops = &sim_usbtmc_ops;
        uint32_t want = 0;
        tether_ret_t r;
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
                return ops->bulk_out(dev, args + VUSB_ARGS_BULK_OUT, alen - VUSB_ARGS_BULK_OUT, vusb_get32(args));
        case VUSB_BULK_IN:
                if (alen != VUSB_ARGS_BULK_IN)
                        return TETHER_ERR_BAD_ARGUMENT;
                if ((r = in_length(info, args, &want)) != TETHER_SUCCESS)
                        return r;
                r = ops->bulk_in(dev, out, want, ret_n, vusb_get32(args));
                break;
        case VUSB_INTERRUPT_IN:
                if (alen != VUSB_ARGS_INTERRUPT_IN)
                        return TETHER_ERR_BAD_ARGUMENT;
                if (!info->ep_interrupt)
                        return TETHER_ERR_UNSUPPORTED;
                if ((r = in_length(info, args, &want)) != TETHER_SUCCESS)
                        return r;
                r = ops->interrupt_in(dev, out, want, ret_n, vusb_get32(args));
                break;
        case VUSB_CONTROL_IN:
                if (alen != VUSB_ARGS_CONTROL_IN)
                        return TETHER_ERR_BAD_ARGUMENT;
                if (!(args[4] & 0x80u))
                        return TETHER_ERR_BAD_ARGUMENT; /* an OUT request: not one of ours */
                want = vusb_get16(args + 10);
                r = ops->control_in(dev, args[4], args[5], vusb_get16(args + 6), vusb_get16(args + 8), out,
                                    (uint16_t)want, ret_n, vusb_get32(args));
                break;
        case VUSB_CLEAR_HALT:
                if (alen != VUSB_ARGS_CLEAR_HALT || args[1] || args[2] || args[3])
                        return TETHER_ERR_BAD_ARGUMENT;
                if (args[0] != info->ep_out && args[0] != info->ep_in)
                        return TETHER_ERR_BAD_ARGUMENT; /* no such endpoint */
                return ops->clear_halt(dev, args[0] == info->ep_out);
        default:
                return TETHER_ERR_BAD_MESSAGE_ID;
        }
        /* The device wrote into out, bounded by want; a count past it
         * would be a simulator bug, and is not sent. */
        if (*ret_n > want) {
                *ret_n = 0;
                return TETHER_ERR_INTERNAL;
        }
        return r;
}

tether_ret_t sim_vusb_handle(sim_usbtmc *dev, const vusb_info *info, const uint8_t *req, size_t len,
                             uint8_t *reply, size_t *ret_len)
{
        if (!dev || !info || (!req && len) || !reply || !ret_len)
                return TETHER_ERR_BAD_ARGUMENT;
        vusb_header h;
        if (vusb_header_decode(req, len, &h) != TETHER_SUCCESS) {
                /* Not even an id to answer to. */
                *ret_len = finish(reply, 0, 0, TETHER_ERR_BAD_ARGUMENT, 0);
                return TETHER_SUCCESS;
        }
        tether_ret_t r = TETHER_SUCCESS;
        if (len > VUSB_MAX_MSG)
                r = TETHER_ERR_MESSAGE_TOO_LARGE;
        else if (h.size != len || h.status != 0)
                r = TETHER_ERR_BAD_ARGUMENT;
        else if (h.version != VUSB_VERSION)
                r = TETHER_ERR_UNSUPPORTED;
        size_t n = 0;
        if (r == TETHER_SUCCESS)
                r = carry_out(dev, info, h.op, req + VUSB_HEADER_SIZE, len - VUSB_HEADER_SIZE,
                              reply + VUSB_HEADER_SIZE, &n);
        *ret_len = finish(reply, h.op, h.id, r, n);
        return TETHER_SUCCESS;
}

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

int sim_vusb_serve(int fd, sim_usbtmc *dev, const char *serial)
{
        vusb_info info;
        if (fd < 0 || !dev || sim_vusb_profile_info(sim_usbtmc_profile_of(dev), serial, &info) != TETHER_SUCCESS)
                return -1;
        /* One byte more than the largest request: a datagram that fills it
         * was too big, and is answered so. */
        uint8_t *req = malloc(VUSB_MAX_MSG + 1);
        uint8_t *reply = malloc(VUSB_MAX_MSG);
        int rc = req && reply ? 1 : -1;
        while (rc == 1) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int k = poll(&p, 1, -1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 || (p.revents & POLLNVAL)) {
                        rc = -1;
                        break;
                }
                size_t n = 0, m = 0;
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
                sim_vusb_handle(dev, &info, req, n, reply, &m);
                int s = send_reply(fd, reply, m);
                if (s != 0)
                        rc = s > 0 ? 0 : -1;
        }
        free(req);
        free(reply);
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
 * parent process. The only waits that do not watch the socket are an
 * instrument's own (a sweep, a measurement), bounded by the client's
 * timeout; the hang-up is seen right after.
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
