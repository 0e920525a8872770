/* SPDX-License-Identifier: MIT */
#include "usbpcap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LINKTYPE_USB_LINUX_MMAPPED 220u
#define USBMON_HEADER_SIZE         64u

struct usbpcap {
        FILE *f;
        uint64_t next_urb;
        bool failed;
};

static void put(usbpcap *p, const void *b, size_t n)
{
        if (n && fwrite(b, 1, n, p->f) != n)
                p->failed = true;
}

static void le16(uint8_t *b, uint16_t v)
{
        b[0] = (uint8_t)v;
        b[1] = (uint8_t)(v >> 8);
}

static void le32(uint8_t *b, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                b[i] = (uint8_t)(v >> (8 * i));
}

static void le64(uint8_t *b, uint64_t v)
{
        for (int i = 0; i < 8; i++)
                b[i] = (uint8_t)(v >> (8 * i));
}

tether_ret_t usbpcap_open(const char *path, usbpcap **ret)
{
        usbpcap *p = calloc(1, sizeof(*p));
        if (!p)
                return TETHER_ERR_NO_MEMORY;
        p->f = fopen(path, "wb");
        if (!p->f) {
                free(p);
                return errno == EACCES ? TETHER_ERR_NOT_PERMITTED : TETHER_ERR_IO;
        }
        p->next_urb = 0xffff880000000000ull; /* looks like the kernel addresses usbmon reports */
        /* pcap file header: magic (microseconds), 2.4, zone 0, sigfigs 0,
         * snaplen, link type. Written little-endian: readers go by the magic. */
        uint8_t h[24] = { 0 };
        le32(h, 0xa1b2c3d4u);
        le16(h + 4, 2);
        le16(h + 6, 4);
        le32(h + 16, USBMON_HEADER_SIZE + TETHER_PROBE_MAX_SNAPLEN);
        le32(h + 20, LINKTYPE_USB_LINUX_MMAPPED);
        put(p, h, sizeof(h));
        *ret = p;
        return p->failed ? TETHER_ERR_IO : TETHER_SUCCESS;
}

/* usbmon reports errors as negative errnos. */
static int32_t urb_status(tether_ret_t r)
{
        switch (r) {
        case TETHER_SUCCESS:
                return 0;
        case TETHER_ERR_TIMEOUT:
                return -ENOENT; /* a timed-out URB is killed */
        case TETHER_ERR_NO_DEVICE:
        case TETHER_ERR_NOT_ATTACHED:
                return -ENODEV;
        case TETHER_ERR_OVERRUN:
                return -EOVERFLOW;
        default:
                return -EPIPE; /* a stall: what a device refusing a transfer looks like */
        }
}

/* One record: submission ('S') or completion ('C'). */
static void record(usbpcap *p, const tether_probe_event *e, uint64_t urb, char kind, uint64_t t_ns,
                   const uint8_t *data, uint32_t data_len, uint32_t orig_len)
{
        bool control = e->transfer_type == 2;
        uint8_t h[USBMON_HEADER_SIZE] = { 0 };
        le64(h, urb);
        h[8] = (uint8_t)kind;
        h[9] = e->transfer_type;
        h[10] = e->endpoint;
        h[11] = e->address;
        le16(h + 12, e->bus);
        h[14] = control && kind == 'S' ? 0 : '-';          /* setup packet present */
        h[15] = data_len ? 0 : (e->endpoint & 0x80 ? '<' : '>'); /* data present */
        le64(h + 16, t_ns / 1000000000u);
        le32(h + 24, (uint32_t)(t_ns % 1000000000u / 1000u));
        le32(h + 28, (uint32_t)(kind == 'S' ? -EINPROGRESS : urb_status(e->result)));
        le32(h + 32, kind == 'S' ? e->requested : e->actual); /* urb length */
        le32(h + 36, data_len);
        if (control && kind == 'S')
                memcpy(h + 40, e->setup, 8);
        /* interval, start frame, transfer flags, iso descriptors: 0 */
        uint8_t rec[16];
        le32(rec, (uint32_t)(t_ns / 1000000000u));
        le32(rec + 4, (uint32_t)(t_ns % 1000000000u / 1000u));
        le32(rec + 8, USBMON_HEADER_SIZE + data_len);
        le32(rec + 12, USBMON_HEADER_SIZE + orig_len);
        put(p, rec, sizeof(rec));
        put(p, h, sizeof(h));
        put(p, data, data_len);
}

tether_ret_t usbpcap_write(usbpcap *p, const tether_probe_event *e)
{
        if (!p || !e)
                return TETHER_ERR_BAD_ARGUMENT;
        if (e->kind != TETHER_PROBE_EVENT_USB)
                return TETHER_SUCCESS;
        uint64_t urb = p->next_urb;
        p->next_urb += 0x100;
        bool in = e->endpoint & 0x80;
        uint64_t done = e->time_ns + e->duration_ns;
        /* OUT data travels with the submission, IN data with the completion. */
        if (in) {
                record(p, e, urb, 'S', e->time_ns, NULL, 0, 0);
                record(p, e, urb, 'C', done, e->data, e->captured, e->actual);
        } else {
                record(p, e, urb, 'S', e->time_ns, e->data, e->captured, e->requested);
                record(p, e, urb, 'C', done, NULL, 0, 0);
        }
        return p->failed ? TETHER_ERR_IO : TETHER_SUCCESS;
}

tether_ret_t usbpcap_close(usbpcap *p)
{
        if (!p)
                return TETHER_ERR_BAD_ARGUMENT;
        if (fclose(p->f) != 0)
                p->failed = true;
        tether_ret_t r = p->failed ? TETHER_ERR_IO : TETHER_SUCCESS;
        free(p);
        return r;
}
