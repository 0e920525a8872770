/* SPDX-License-Identifier: MIT */
#include "usbtmc/vusb.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

void vusb_header_encode(const vusb_header *h, uint8_t out[VUSB_HEADER_SIZE])
{
        vusb_put16(out, h->op);
        vusb_put16(out + 2, h->version);
        vusb_put32(out + 4, h->id);
        vusb_put32(out + 8, (uint32_t)h->status);
        vusb_put32(out + 12, h->size);
}

tether_ret_t vusb_header_decode(const uint8_t *in, size_t len, vusb_header *ret)
{
        if (!in || !ret || len < VUSB_HEADER_SIZE)
                return TETHER_ERR_BAD_ARGUMENT;
        ret->op = vusb_get16(in);
        ret->version = vusb_get16(in + 2);
        ret->id = vusb_get32(in + 4);
        ret->status = (int32_t)vusb_get32(in + 8);
        ret->size = vusb_get32(in + 12);
        return TETHER_SUCCESS;
}

/* An endpoint address of the given direction: number 1..15, bits 4..6 clear. */
static bool endpoint_ok(uint8_t ep, bool in)
{
        return (ep & 0x0fu) != 0 && (ep & 0x70u) == 0 && ((ep & 0x80u) != 0) == in;
}

tether_ret_t vusb_info_check(const vusb_info *info)
{
        if (!info)
                return TETHER_ERR_BAD_ARGUMENT;
        if (!endpoint_ok(info->ep_out, false) || !endpoint_ok(info->ep_in, true))
                return TETHER_ERR_IPC;
        if (info->ep_interrupt && (!endpoint_ok(info->ep_interrupt, true) || info->ep_interrupt == info->ep_in))
                return TETHER_ERR_IPC;
        /* 8 is full speed's smallest bulk packet, 1024 SuperSpeed's. */
        if (info->max_packet_in < 8 || info->max_packet_in > 1024)
                return TETHER_ERR_IPC;
        /* A drain reads a packet at a time: one must fit a transfer. */
        if (info->max_data < VUSB_MIN_DATA || info->max_data > VUSB_MAX_DATA || info->max_data < info->max_packet_in)
                return TETHER_ERR_IPC;
        size_t n = strnlen(info->serial, sizeof(info->serial));
        if (n == sizeof(info->serial))
                return TETHER_ERR_IPC;
        for (size_t i = 0; i < n; i++)
                if (info->serial[i] < 0x20 || info->serial[i] > 0x7e)
                        return TETHER_ERR_IPC;
        return TETHER_SUCCESS;
}

tether_ret_t vusb_info_encode(const vusb_info *info, uint8_t *out, size_t cap, size_t *ret_len)
{
        if (!info || !out || !ret_len)
                return TETHER_ERR_BAD_ARGUMENT;
        tether_ret_t r = vusb_info_check(info);
        if (r != TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT; /* ours to fix, not the peer's */
        size_t n = strlen(info->serial);
        if (cap < VUSB_DESCRIBE_FIXED + n)
                return TETHER_ERR_NO_SPACE;
        vusb_put16(out, info->vendor);
        vusb_put16(out + 2, info->product);
        out[4] = info->interface;
        out[5] = info->protocol;
        out[6] = info->ep_out;
        out[7] = info->ep_in;
        out[8] = info->ep_interrupt;
        out[9] = 0;
        vusb_put16(out + 10, info->max_packet_in);
        vusb_put32(out + 12, info->max_data);
        memcpy(out + VUSB_DESCRIBE_FIXED, info->serial, n);
        *ret_len = VUSB_DESCRIBE_FIXED + n;
        return TETHER_SUCCESS;
}

tether_ret_t vusb_info_decode(const uint8_t *in, size_t len, vusb_info *ret)
{
        if (!in || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        if (len < VUSB_DESCRIBE_FIXED || len > VUSB_DESCRIBE_FIXED + VUSB_MAX_SERIAL || in[9] != 0)
                return TETHER_ERR_IPC;
        vusb_info d = {
                .vendor = vusb_get16(in),
                .product = vusb_get16(in + 2),
                .interface = in[4],
                .protocol = in[5],
                .ep_out = in[6],
                .ep_in = in[7],
                .ep_interrupt = in[8],
                .max_packet_in = vusb_get16(in + 10),
                .max_data = vusb_get32(in + 12),
        };
        size_t n = len - VUSB_DESCRIBE_FIXED;
        /* A NUL inside would hide the rest: not a string, so refused below. */
        memcpy(d.serial, in + VUSB_DESCRIBE_FIXED, n);
        d.serial[n] = '\0';
        if (strlen(d.serial) != n)
                return TETHER_ERR_IPC;
        tether_ret_t r = vusb_info_check(&d);
        if (r != TETHER_SUCCESS)
                return r;
        *ret = d;
        return TETHER_SUCCESS;
}

/* SEQPACKET gives 0 both for a zero-length datagram and for the peer's
 * hang-up; only the hang-up leaves RDHUP/HUP on the socket. Mistaking a
 * datagram for a hang-up would let either side end the other's session
 * with an empty send, which is harmless here but wrong. */
static bool hung_up(int fd)
{
        struct pollfd p = { .fd = fd, .events = POLLRDHUP };
        int n = poll(&p, 1, 0);
        return n < 0 || (n == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)));
}

tether_ret_t vusb_recv(int fd, uint8_t *buf, size_t cap, size_t *ret_len)
{
        if (fd < 0 || !buf || !ret_len)
                return TETHER_ERR_BAD_ARGUMENT;
        struct iovec iov = { .iov_base = buf, .iov_len = cap };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n;
        /* A peer that closed with our datagrams unread leaves ECONNRESET
         * ahead of what it sent before closing; reading clears it, so read
         * on and get those last datagrams, then the hang-up. */
        do
                n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        while (n < 0 && (errno == EINTR || errno == ECONNRESET));
        if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                        return TETHER_ERR_NOT_READY;
                if (errno == ENOTCONN || errno == EPIPE)
                        return TETHER_ERR_NO_DEVICE;
                return TETHER_ERR_IPC;
        }
        if (n == 0 && !(mh.msg_flags & MSG_CTRUNC) && hung_up(fd))
                return TETHER_ERR_NO_DEVICE;
        *ret_len = (size_t)n;
        if (mh.msg_flags & MSG_TRUNC)
                return TETHER_ERR_MESSAGE_TOO_LARGE;
        return TETHER_SUCCESS;
}
