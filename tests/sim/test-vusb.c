/* SPDX-License-Identifier: MIT */
/* tether's USBTMC host code through the vusb backend, against the
 * simulated scope served over a socket pair: by sim_vusb_serve on a
 * thread, and by tether-sim-scope --usb-fd as a process of its own (which
 * is then killed mid-transfer). And the server against a hostile client:
 * raw datagrams of every wrong shape, each answered, the session going on. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "scpi/scpi.h"
#include "usbtmc-device.h"
#include "usbtmc/backend-vusb.h"
#include "vusb-rig.h"
#include "vusb-server.h"

/* ---- the server on a thread ---- */

typedef vusb_rig rig;

/* The server runs; the client end stays raw (client_fd). */
static rig *rig_start(void)
{
        rig *r = calloc(1, sizeof(*r));
        sim_scope *scope;
        sim_usbtmc *dev;
        assert_non_null(r);
        assert_int_equal(sim_scope_new(NULL, &scope), 0);
        assert_int_equal(sim_usbtmc_new(scope, &dev), 0);
        vusb_rig_serve(r, dev, "MY57235663");
        r->owner = scope;
        return r;
}

static void rig_stop(rig *r)
{
        vusb_rig_stop(r);
        sim_usbtmc_free(r->dev);
        sim_scope_free(r->owner);
        free(r);
}

static int setup(void **state)
{
        rig *r = rig_start();
        vusb_rig_attach(r);
        *state = r;
        return 0;
}

static int teardown(void **state)
{
        rig_stop(*state);
        return 0;
}

#define IDN "AGILENT TECHNOLOGIES,DSO-X 2002A,MY57235663,02.42.2017032900\n"

static void describe_sets_up_the_link(void **state)
{
        rig *r = *state;
        vusb_info info;
        assert_int_equal(usbtmc_vusb_get_info(r->v, &info), TETHER_SUCCESS);
        assert_int_equal(info.vendor, 0x0957);
        assert_int_equal(info.product, 0x179b); /* the DSO-X 2002A's (docs/dsox2000-family.md) */
        assert_int_equal(info.protocol, 1);
        assert_string_equal(info.serial, "MY57235663");
        assert_int_equal(r->t.ep_out, 0x02);
        assert_int_equal(r->t.ep_in, 0x81);
        assert_int_equal(r->t.ep_interrupt, SIM_USBTMC_EP_INTERRUPT);
        assert_int_equal(r->t.interface, 0);
        assert_int_equal(r->t.max_packet, 512);
        /* A whole transfer, header and padding included, fits one datagram. */
        assert_int_equal(r->t.max_transfer % 4, 0);
        assert_true(USBTMC_HEADER_SIZE + r->t.max_transfer <= VUSB_MAX_DATA);
        assert_true(r->t.max_transfer > VUSB_MAX_DATA - 16);
}

static void idn(void **state)
{
        rig *r = *state;
        assert_int_equal(query(&r->t, "*IDN?"), TETHER_SUCCESS);
        assert_string_equal(answer, IDN);
}

/* READ_STATUS_BYTE answers on interrupt-IN, so this goes through
 * INTERRUPT_IN requests; an SRQ queued on the way is kept. */
static void status_byte_and_srq_on_interrupt_in(void **state)
{
        rig *r = *state;
        usbtmc_caps c;
        assert_int_equal(usbtmc_get_capabilities(&r->t, &c), TETHER_SUCCESS);
        assert_true(c.usb488_interface_caps & USB488_CAP_IS_488_2);
        uint8_t stb = 0xff;
        assert_int_equal(usbtmc_read_status_byte(&r->t, &stb), TETHER_SUCCESS);
        assert_int_equal(stb & 0x10, 0);
        assert_int_equal(usbtmc_write(&r->t, "*IDN?", 5), TETHER_SUCCESS);
        /* The server thread waits in poll between requests: the device is
         * ours to touch until the next call. */
        sim_usbtmc_notify_srq(r->dev);
        assert_false(r->t.srq_pending);
        assert_int_equal(usbtmc_read_status_byte(&r->t, &stb), TETHER_SUCCESS);
        assert_int_equal(stb & 0x10, 0x10); /* MAV */
        assert_true(r->t.srq_pending);
        /* Nothing left: the interrupt pipe times out. */
        uint8_t n[2];
        size_t got = 9;
        assert_int_equal(r->t.ops->interrupt_in(r->v, n, sizeof(n), &got, 10), TETHER_ERR_TIMEOUT);
        assert_int_equal(got, 0);
}

static size_t bulk_in_count, bulk_in_biggest;

static void count_transfers(const usbtmc *t, const usbtmc_xfer *x)
{
        if (x->type == USBTMC_XFER_BULK && (x->endpoint & 0x80)) {
                bulk_in_count++;
                if (x->requested > bulk_in_biggest)
                        bulk_in_biggest = x->requested;
        }
}

/* A second simulator driven in-process, given the same commands: what
 * comes over the socket must be byte for byte what a device gives. */
typedef struct reference {
        sim_scope *s;
        sim_usbtmc *d;
        usbtmc t;
} reference;

static void waveform(rig *r, reference *ref, const char *cmd, size_t cap, size_t min_transfers)
{
        uint8_t *buf = malloc(cap), *want = malloc(cap);
        size_t n = 0, want_n = 0;
        assert_int_equal(usbtmc_write(&r->t, cmd, strlen(cmd)), TETHER_SUCCESS);
        assert_int_equal(usbtmc_write(&r->t, ":WAV:DATA?", 10), TETHER_SUCCESS);
        bulk_in_count = bulk_in_biggest = 0;
        usbtmc_set_observer(count_transfers);
        tether_ret_t e = usbtmc_read(&r->t, buf, cap, &n);
        usbtmc_set_observer(NULL);
        assert_int_equal(e, TETHER_SUCCESS);
        assert_true(bulk_in_count >= min_transfers);
        assert_true(bulk_in_biggest <= VUSB_MAX_DATA);
        assert_int_equal(usbtmc_write(&ref->t, cmd, strlen(cmd)), TETHER_SUCCESS);
        assert_int_equal(usbtmc_write(&ref->t, ":WAV:DATA?", 10), TETHER_SUCCESS);
        assert_int_equal(usbtmc_read(&ref->t, want, cap, &want_n), TETHER_SUCCESS);
        assert_int_equal(n, want_n);
        assert_memory_equal(buf, want, n);
        free(buf);
        free(want);
}

static void full_record_in_many_transfers(void **state)
{
        rig *r = *state;
        reference ref;
        assert_int_equal(sim_scope_new(NULL, &ref.s), 0);
        assert_int_equal(sim_usbtmc_new(ref.s, &ref.d), 0);
        usbtmc_init(&ref.t, &sim_usbtmc_ops, ref.d);
        /* 62,500 points as ASCII, about 870 KB: many full-size datagrams. */
        waveform(r, &ref, ":AUT;:WAV:SOUR CHAN1;FORM ASC;POIN:MODE NORM;:WAV:POIN 62500", 1u << 20, 10);
        /* As bytes in 4 KiB transfers: 16 rounds. */
        r->t.max_transfer = 4096;
        waveform(r, &ref, ":WAV:FORM BYTE", 70000, 16);
        assert_int_equal(query(&r->t, ":WAV:PRE?"), TETHER_SUCCESS);
        scpi_preamble p;
        assert_int_equal(scpi_preamble_parse(answer, &p), TETHER_SUCCESS);
        assert_int_equal(p.points, 62500);
        sim_usbtmc_free(ref.d);
        sim_scope_free(ref.s);
}

static void delay_past_timeout_then_recovers(void **state)
{
        rig *r = *state;
        /* The late answer is held back for the whole timeout: a short one. */
        r->t.timeout_ms = 200;
        sim_usbtmc_inject(r->dev, SIM_FAULT_DELAY);
        double t0 = ms_now();
        assert_int_equal(query(&r->t, "*IDN?"), TETHER_ERR_TIMEOUT);
        assert_true(ms_now() - t0 >= 200);
        /* The late answer was flushed by the abort and clear. */
        assert_int_equal(query(&r->t, ":TIM:SCAL?"), TETHER_SUCCESS);
        assert_string_equal(answer, "+1.00000000E-04\n");
}

/* The query after a fault's is answered. */
static void answers_again(rig *r)
{
        assert_int_equal(query(&r->t, "*OPC?"), TETHER_SUCCESS);
        assert_string_equal(answer, "1\n");
}

static void stall_and_wrong_btag_recover(void **state)
{
        rig *r = *state;
        sim_usbtmc_inject(r->dev, SIM_FAULT_STALL);
        assert_int_equal(query(&r->t, "*IDN?"), TETHER_ERR_IO);
        answers_again(r);
        sim_usbtmc_inject(r->dev, SIM_FAULT_WRONG_BTAG);
        assert_int_equal(query(&r->t, "*IDN?"), TETHER_ERR_IO);
        answers_again(r);
}

/* The device's NoDevice is the server's answer over a live link: it
 * passes through, and is not taken for the link's loss. */
static void unplug_fault_is_the_devices_not_the_links(void **state)
{
        rig *r = *state;
        sim_usbtmc_inject(r->dev, SIM_FAULT_UNPLUG);
        assert_int_equal(query(&r->t, "*IDN?"), TETHER_ERR_NO_DEVICE);
        sim_usbtmc_reset_faults(r->dev);
        answers_again(r);
}

/* The sweep holds bulk-IN, on the server's side; the server still keeps
 * to the client's timeout. */
static void acquisition_waits_in_the_server(void **state)
{
        rig *r = *state;
        assert_int_equal(usbtmc_write(&r->t, ":TIM:SCAL 20ms", 14), TETHER_SUCCESS);
        r->t.timeout_ms = 100;
        assert_int_equal(query(&r->t, ":DIG CHAN1;*OPC?"), TETHER_ERR_TIMEOUT);
        r->t.timeout_ms = 1000;
        double t0 = ms_now();
        assert_int_equal(query(&r->t, ":DIG CHAN1;*OPC?"), TETHER_SUCCESS);
        assert_string_equal(answer, "1\n");
        assert_true(ms_now() - t0 >= 190);
}

/* ---- a hostile client: raw datagrams to the server ---- */

static void send_raw(int fd, const void *p, size_t len)
{
        assert_int_equal(send(fd, p, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* The reply to the last datagram: its header, its body length. */
static size_t recv_reply(int fd, vusb_header *h, uint8_t *body, size_t cap)
{
        static uint8_t buf[VUSB_MAX_MSG];
        struct pollfd p = { .fd = fd, .events = POLLIN };
        assert_int_equal(poll(&p, 1, 5000), 1);
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        assert_true(n >= (ssize_t)VUSB_HEADER_SIZE);
        assert_int_equal(vusb_header_decode(buf, (size_t)n, h), TETHER_SUCCESS);
        assert_int_equal(h->size, (uint32_t)n);
        assert_int_equal(h->version, VUSB_VERSION);
        size_t body_len = (size_t)n - VUSB_HEADER_SIZE;
        assert_true(body_len <= cap || !body);
        if (body)
                memcpy(body, buf + VUSB_HEADER_SIZE, body_len);
        return body_len;
}

static size_t request(uint8_t *out, uint16_t op, uint32_t id, const uint8_t *args, size_t args_len)
{
        vusb_header h = { .op = op, .version = VUSB_VERSION, .id = id,
                          .size = (uint32_t)(VUSB_HEADER_SIZE + args_len) };
        vusb_header_encode(&h, out);
        if (args_len)
                memcpy(out + VUSB_HEADER_SIZE, args, args_len);
        return VUSB_HEADER_SIZE + args_len;
}

/* Sends, and expects an empty error reply naming op and id. */
static void expect_refused(int fd, const void *msg, size_t len, uint16_t op, uint32_t id, tether_ret_t why)
{
        vusb_header h;
        send_raw(fd, msg, len);
        assert_int_equal(recv_reply(fd, &h, NULL, 0), 0);
        assert_int_equal(h.op, op | VUSB_REPLY);
        assert_int_equal(h.id, id);
        assert_int_equal(h.status, why);
}

static int lowest_free_fd(void)
{
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        close(fd);
        return fd;
}

static void hostile_client_is_answered(void **state)
{
        rig *r = rig_start();
        int fd = r->client_fd;
        uint8_t m[VUSB_HEADER_SIZE + 64];
        uint8_t a[16] = { 0 };

        /* Too short for a header, down to nothing: no id to answer to. The
         * empty datagram is not a hang-up. */
        expect_refused(fd, "", 0, 0, 0, TETHER_ERR_BAD_ARGUMENT);
        expect_refused(fd, "\x03\x00\x01\x00\x07", 5, 0, 0, TETHER_ERR_BAD_ARGUMENT);

        /* A size that is not what came. */
        size_t n = request(m, VUSB_DESCRIBE, 7, NULL, 0);
        vusb_put32(m + 12, 17);
        expect_refused(fd, m, n, VUSB_DESCRIBE, 7, TETHER_ERR_BAD_ARGUMENT);
        /* Another version; a status in a request. */
        n = request(m, VUSB_DESCRIBE, 8, NULL, 0);
        vusb_put16(m + 2, 2);
        expect_refused(fd, m, n, VUSB_DESCRIBE, 8, TETHER_ERR_UNSUPPORTED);
        n = request(m, VUSB_DESCRIBE, 9, NULL, 0);
        vusb_put32(m + 8, (uint32_t)TETHER_ERR_IO);
        expect_refused(fd, m, n, VUSB_DESCRIBE, 9, TETHER_ERR_BAD_ARGUMENT);
        /* Unknown ops, and a reply sent as a request. */
        n = request(m, 99, 10, NULL, 0);
        expect_refused(fd, m, n, 99, 10, TETHER_ERR_BAD_MESSAGE_ID);
        n = request(m, VUSB_BULK_IN | VUSB_REPLY, 11, NULL, 0);
        expect_refused(fd, m, n, VUSB_BULK_IN, 11, TETHER_ERR_BAD_MESSAGE_ID);

        /* Arguments of the wrong length for their op. */
        n = request(m, VUSB_DESCRIBE, 12, a, 1);
        expect_refused(fd, m, n, VUSB_DESCRIBE, 12, TETHER_ERR_BAD_ARGUMENT);
        n = request(m, VUSB_BULK_IN, 13, a, 4);
        expect_refused(fd, m, n, VUSB_BULK_IN, 13, TETHER_ERR_BAD_ARGUMENT);
        n = request(m, VUSB_BULK_OUT, 14, a, 3);
        expect_refused(fd, m, n, VUSB_BULK_OUT, 14, TETHER_ERR_BAD_ARGUMENT);
        n = request(m, VUSB_CONTROL_IN, 15, a, 13);
        expect_refused(fd, m, n, VUSB_CONTROL_IN, 15, TETHER_ERR_BAD_ARGUMENT);

        /* Lengths past any transfer, or none at all: refused before the
         * server allocates or touches anything. */
        vusb_put32(a, 10);
        vusb_put32(a + 4, UINT32_MAX);
        n = request(m, VUSB_BULK_IN, 16, a, 8);
        expect_refused(fd, m, n, VUSB_BULK_IN, 16, TETHER_ERR_BAD_ARGUMENT);
        vusb_put32(a + 4, VUSB_MAX_DATA + 1);
        n = request(m, VUSB_INTERRUPT_IN, 17, a, 8);
        expect_refused(fd, m, n, VUSB_INTERRUPT_IN, 17, TETHER_ERR_BAD_ARGUMENT);
        vusb_put32(a + 4, 0);
        n = request(m, VUSB_BULK_IN, 18, a, 8);
        expect_refused(fd, m, n, VUSB_BULK_IN, 18, TETHER_ERR_BAD_ARGUMENT);

        /* An OUT control request; an endpoint the device does not have. */
        memset(a, 0, sizeof(a));
        a[4] = 0x21;
        a[5] = USBTMC_INITIATE_CLEAR;
        n = request(m, VUSB_CONTROL_IN, 19, a, 12);
        expect_refused(fd, m, n, VUSB_CONTROL_IN, 19, TETHER_ERR_BAD_ARGUMENT);
        memset(a, 0, sizeof(a));
        a[0] = 0x85;
        n = request(m, VUSB_CLEAR_HALT, 20, a, 4);
        expect_refused(fd, m, n, VUSB_CLEAR_HALT, 20, TETHER_ERR_BAD_ARGUMENT);

        /* Bigger than any request may be: its start is read, the rest
         * dropped by the kernel, and the id still answered. */
        size_t big_len = VUSB_MAX_MSG + 4096;
        uint8_t *big = calloc(1, big_len);
        vusb_header bh = { .op = VUSB_BULK_OUT, .version = VUSB_VERSION, .id = 21, .size = (uint32_t)big_len };
        vusb_header_encode(&bh, big);
        expect_refused(fd, big, big_len, VUSB_BULK_OUT, 21, TETHER_ERR_MESSAGE_TOO_LARGE);
        /* Just in bounds, but more data than a transfer takes. */
        big_len = VUSB_MAX_MSG;
        bh = (vusb_header){ .op = VUSB_BULK_OUT, .version = VUSB_VERSION, .id = 22, .size = (uint32_t)big_len };
        vusb_header_encode(&bh, big);
        expect_refused(fd, big, big_len, VUSB_BULK_OUT, 22, TETHER_ERR_MESSAGE_TOO_LARGE);
        free(big);

        /* An fd passed along with a request is refused by the kernel: none
         * lands in the server's process (this one). */
        int before = lowest_free_fd();
        n = request(m, VUSB_DESCRIBE, 23, NULL, 0);
        int passed = open("/dev/null", O_RDONLY | O_CLOEXEC);
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int))];
        } ctl;
        memset(&ctl, 0, sizeof(ctl));
        struct iovec iov = { .iov_base = m, .iov_len = n };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                             .msg_controllen = sizeof(ctl.buf) };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &passed, sizeof(int));
        assert_int_equal(sendmsg(fd, &mh, MSG_NOSIGNAL), (ssize_t)n);
        close(passed);
        vusb_header h;
        uint8_t body[VUSB_DESCRIBE_FIXED + VUSB_MAX_SERIAL];
        size_t bl = recv_reply(fd, &h, body, sizeof(body));
        assert_int_equal(h.id, 23);
        assert_int_equal(h.status, TETHER_SUCCESS);
        assert_int_equal(lowest_free_fd(), before);
        vusb_info info;
        assert_int_equal(vusb_info_decode(body, bl, &info), TETHER_SUCCESS);
        assert_string_equal(info.serial, "MY57235663");

        /* After all that the session is whole: the backend takes it over
         * and the device answers. */
        vusb_rig_attach(r);
        assert_int_equal(query(&r->t, "*IDN?"), TETHER_SUCCESS);
        assert_string_equal(answer, IDN);
        rig_stop(r);
}

/* The session on its own, as the fuzzer drives it, on a clock of the
 * test's: a bulk-IN with nothing asked is held to its timeout and no
 * longer; a reply always fits. */
typedef struct captured {
        int n;
        vusb_header h[4];
        size_t body[4];
} captured;

static void capture(void *ctx, const uint8_t *reply, size_t len)
{
        captured *c = ctx;
        assert_true(c->n < 4);
        assert_true(len >= VUSB_HEADER_SIZE && len <= VUSB_MAX_MSG);
        assert_int_equal(vusb_header_decode(reply, len, &c->h[c->n]), TETHER_SUCCESS);
        assert_int_equal(c->h[c->n].size, len);
        c->body[c->n] = len - VUSB_HEADER_SIZE;
        c->n++;
}

static void handler_bounds(void **state)
{
        sim_scope *s;
        sim_usbtmc *d;
        vusb_info info;
        assert_int_equal(sim_scope_new(NULL, &s), 0);
        assert_int_equal(sim_usbtmc_new(s, &d), 0);
        assert_int_equal(sim_vusb_info("SN1", &info), TETHER_SUCCESS);
        captured c = { 0 };
        sim_vusb *v = NULL;
        assert_int_equal(sim_vusb_new(d, &info, capture, &c, &v), TETHER_SUCCESS);
        uint8_t req[VUSB_HEADER_SIZE + 8];
        uint8_t a[8];
        vusb_put32(a, 10);
        vusb_put32(a + 4, VUSB_MAX_DATA);
        request(req, VUSB_BULK_IN, 5, a, 8);
        /* Nothing was asked of the scope: it NAKs, and the transfer is
         * held until its 10 ms are up. */
        sim_vusb_request(v, req, sizeof(req), 1000);
        assert_int_equal(c.n, 0);
        assert_int_equal(sim_vusb_held(v), 1);
        assert_int_equal(sim_vusb_tick(v, 1004), 6);
        assert_int_equal(c.n, 0);
        assert_int_equal(sim_vusb_tick(v, 1010), -1);
        assert_int_equal(c.n, 1);
        assert_int_equal(c.h[0].id, 5);
        assert_int_equal(c.h[0].op, VUSB_BULK_IN | VUSB_REPLY);
        assert_int_equal(c.h[0].status, TETHER_ERR_TIMEOUT);
        assert_int_equal(c.body[0], 0);
        assert_int_equal(sim_vusb_held(v), 0);
        /* A timeout of 0 is a poll: answered at once. */
        vusb_put32(a, 0);
        request(req, VUSB_BULK_IN, 6, a, 8);
        sim_vusb_request(v, req, sizeof(req), 2000);
        assert_int_equal(c.n, 2);
        assert_int_equal(c.h[1].id, 6);
        assert_int_equal(c.h[1].status, TETHER_ERR_TIMEOUT);
        /* A second bulk-IN ends the one held: its client gave up on it. */
        vusb_put32(a, 5000);
        request(req, VUSB_BULK_IN, 7, a, 8);
        sim_vusb_request(v, req, sizeof(req), 3000);
        request(req, VUSB_BULK_IN, 8, a, 8);
        sim_vusb_request(v, req, sizeof(req), 3001);
        assert_int_equal(c.n, 3);
        assert_int_equal(c.h[2].id, 7);
        assert_int_equal(c.h[2].status, TETHER_ERR_TIMEOUT);
        assert_int_equal(sim_vusb_held(v), 1);
        assert_int_equal(sim_vusb_tick(v, 8001), -1);
        assert_int_equal(c.n, 4);
        assert_int_equal(c.h[3].id, 8);
        sim_vusb_free(v);
        /* Serials the descriptors could not carry. */
        char long_serial[VUSB_MAX_SERIAL + 2];
        memset(long_serial, 'A', sizeof(long_serial) - 1);
        long_serial[sizeof(long_serial) - 1] = '\0';
        assert_int_equal(sim_vusb_info(long_serial, &info), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(sim_vusb_info("bad\nserial", &info), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(sim_vusb_serve(-1, d, NULL), -1);
        sim_usbtmc_free(d);
        sim_scope_free(s);
}

/* ---- transfers held while the device NAKs, over the socket ---- */

/* A USBTMC bulk-OUT transfer as a raw BULK_OUT request: header, payload,
 * padding. */
static size_t bulk_out_msg(uint8_t *out, uint32_t id, uint8_t msg_id, uint8_t btag, const char *text,
                           uint32_t in_size)
{
        uint8_t args[4];
        vusb_put32(args, 1000);
        size_t n = request(out, VUSB_BULK_OUT, id, args, 4);
        size_t len = text ? strlen(text) : 0;
        usbtmc_header h = { .msg_id = msg_id, .btag = btag, .transfer_size = text ? (uint32_t)len : in_size,
                            .attributes = text ? USBTMC_ATTR_EOM : 0 };
        usbtmc_header_encode(&h, out + n);
        n += USBTMC_HEADER_SIZE;
        if (len) {
                memcpy(out + n, text, len);
                memset(out + n + len, 0, usbtmc_padded(len) - len);
                n += usbtmc_padded(len);
        }
        vusb_put32(out + 12, (uint32_t)n);
        return n;
}

static size_t in_msg(uint8_t *out, uint16_t op, uint32_t id, uint32_t timeout_ms, uint32_t len)
{
        uint8_t a[8];
        vusb_put32(a, timeout_ms);
        vusb_put32(a + 4, len);
        return request(out, op, id, a, 8);
}

static size_t control_msg(uint8_t *out, uint32_t id, uint8_t type, uint8_t req, uint16_t value, uint16_t index,
                          uint16_t len)
{
        uint8_t a[12];
        vusb_put32(a, 1000);
        a[4] = type;
        a[5] = req;
        vusb_put16(a + 6, value);
        vusb_put16(a + 8, index);
        vusb_put16(a + 10, len);
        return request(out, VUSB_CONTROL_IN, id, a, 12);
}

/* Sends and expects a success reply to id (the next datagram), body in b. */
static size_t expect_ok(int fd, const uint8_t *m, size_t n, uint16_t op, uint32_t id, uint8_t *b, size_t cap)
{
        vusb_header h;
        send_raw(fd, m, n);
        size_t bl = recv_reply(fd, &h, b, cap);
        assert_int_equal(h.op, op | VUSB_REPLY);
        assert_int_equal(h.id, id);
        assert_int_equal(h.status, TETHER_SUCCESS);
        return bl;
}

/* Nothing comes for ms (the reply is not there yet). */
static void expect_quiet(int fd, int ms)
{
        struct pollfd p = { .fd = fd, .events = POLLIN };
        assert_int_equal(poll(&p, 1, ms), 0);
}

/* A query the scope does not answer (an unknown header): the request
 * stands, the bulk-IN is held. */
static void hold_unanswered(int fd, uint8_t btag, uint32_t in_id, uint32_t timeout_ms)
{
        uint8_t m[VUSB_HEADER_SIZE + 64];
        size_t n = bulk_out_msg(m, in_id - 2, USBTMC_DEV_DEP_MSG_OUT, btag, ":FOO?", 0);
        expect_ok(fd, m, n, VUSB_BULK_OUT, in_id - 2, NULL, 0);
        n = bulk_out_msg(m, in_id - 1, USBTMC_REQUEST_DEV_DEP_MSG_IN, (uint8_t)(btag + 1), NULL, 256);
        expect_ok(fd, m, n, VUSB_BULK_OUT, in_id - 1, NULL, 0);
        n = in_msg(m, VUSB_BULK_IN, in_id, timeout_ms, 512);
        send_raw(fd, m, n);
}

/* Held to its timeout, no longer; the control pipe answers meanwhile, at
 * once, ahead of it: the status byte, REN/GTL/LLO, the capabilities. */
static void held_in_waits_its_timeout_and_control_answers(void **state)
{
        rig *r = rig_start();
        int fd = r->client_fd;
        uint8_t m[VUSB_HEADER_SIZE + 64], b[64];
        double t0 = ms_now();
        hold_unanswered(fd, 1, 12, 400);
        expect_quiet(fd, 100);
        double t1 = ms_now();
        size_t n = control_msg(m, 13, USBTMC_REQ_INTERFACE, USB488_READ_STATUS_BYTE, 5, 0, 3);
        assert_int_equal(expect_ok(fd, m, n, VUSB_CONTROL_IN, 13, b, sizeof(b)), 3);
        assert_int_equal(b[0], USBTMC_STATUS_SUCCESS);
        assert_int_equal(b[1], 5);
        /* Its answer on interrupt-IN: EAV (the unknown header's -113, the
         * -420 of a read with nothing to say). */
        n = in_msg(m, VUSB_INTERRUPT_IN, 14, 1000, 2);
        assert_int_equal(expect_ok(fd, m, n, VUSB_INTERRUPT_IN, 14, b, sizeof(b)), 2);
        assert_int_equal(b[0], 0x85);
        assert_int_equal(b[1] & 0x04, 0x04);
        n = control_msg(m, 15, USBTMC_REQ_INTERFACE, USB488_REN_CONTROL, 1, 0, 1);
        assert_int_equal(expect_ok(fd, m, n, VUSB_CONTROL_IN, 15, b, sizeof(b)), 1);
        assert_int_equal(b[0], USBTMC_STATUS_SUCCESS);
        n = control_msg(m, 16, USBTMC_REQ_INTERFACE, USB488_LOCAL_LOCKOUT, 0, 0, 1);
        assert_int_equal(expect_ok(fd, m, n, VUSB_CONTROL_IN, 16, b, sizeof(b)), 1);
        n = control_msg(m, 17, USBTMC_REQ_INTERFACE, USB488_GO_TO_LOCAL, 0, 0, 1);
        assert_int_equal(expect_ok(fd, m, n, VUSB_CONTROL_IN, 17, b, sizeof(b)), 1);
        n = control_msg(m, 18, USBTMC_REQ_INTERFACE, USBTMC_GET_CAPABILITIES, 0, 0, 0x18);
        assert_int_equal(expect_ok(fd, m, n, VUSB_CONTROL_IN, 18, b, sizeof(b)), 0x18);
        assert_true(ms_now() - t1 < 200); /* all at once, not behind the held IN */
        vusb_header h;
        assert_int_equal(recv_reply(fd, &h, NULL, 0), 0);
        double took = ms_now() - t0;
        assert_int_equal(h.id, 12);
        assert_int_equal(h.op, VUSB_BULK_IN | VUSB_REPLY);
        assert_int_equal(h.status, TETHER_ERR_TIMEOUT);
        assert_true(took >= 400);
        assert_true(took < 1400);
        vusb_rig_attach(r);
        rig_stop(r);
}

/* INITIATE (an abort of bTag, or a clear) with the transfer held as id:
 * the transfer ends at once with a zero-length packet, and CHECK then
 * says done. */
static void end_held(int fd, uint32_t held, uint32_t id, uint8_t initiate, uint16_t btag)
{
        bool abort = initiate == USBTMC_INITIATE_ABORT_BULK_IN;
        uint8_t type = abort ? USBTMC_REQ_ENDPOINT : USBTMC_REQ_INTERFACE;
        uint8_t check = abort ? USBTMC_CHECK_ABORT_BULK_IN_STATUS : USBTMC_CHECK_CLEAR_STATUS;
        uint16_t check_len = abort ? 8 : 2, index = abort ? 0x81 : 0;
        uint8_t m[VUSB_HEADER_SIZE + 64], b[64];
        vusb_header h;
        double t0 = ms_now();
        size_t n = control_msg(m, id, type, initiate, btag, index, abort ? 2 : 1);
        assert_int_equal(expect_ok(fd, m, n, VUSB_CONTROL_IN, id, b, sizeof(b)), abort ? 2 : 1);
        assert_int_equal(b[0], USBTMC_STATUS_SUCCESS);
        assert_int_equal(recv_reply(fd, &h, NULL, 0), 0);
        assert_int_equal(h.id, held);
        assert_int_equal(h.status, TETHER_SUCCESS); /* a zero-length packet */
        assert_true(ms_now() - t0 < 1000);
        n = control_msg(m, id + 1, type, check, 0, index, check_len);
        assert_int_equal(expect_ok(fd, m, n, VUSB_CONTROL_IN, id + 1, b, sizeof(b)), check_len);
        assert_int_equal(b[0], USBTMC_STATUS_SUCCESS);
}

/* An abort, or a clear, ends the held transfer at once with the short
 * packet USBTMC has it send; CHECK then says done. */
static void abort_or_clear_ends_a_held_in(void **state)
{
        rig *r = rig_start();
        int fd = r->client_fd;
        uint8_t m[VUSB_HEADER_SIZE + 64], b[64];
        hold_unanswered(fd, 1, 12, 10000);
        expect_quiet(fd, 100);
        /* Another bTag: not the transfer in progress. */
        size_t n = control_msg(m, 13, USBTMC_REQ_ENDPOINT, USBTMC_INITIATE_ABORT_BULK_IN, 7, 0x81, 2);
        assert_int_equal(expect_ok(fd, m, n, VUSB_CONTROL_IN, 13, b, sizeof(b)), 2);
        assert_int_equal(b[0], USBTMC_STATUS_FAILED);
        assert_int_equal(b[1], 2);
        expect_quiet(fd, 50);
        end_held(fd, 12, 14, USBTMC_INITIATE_ABORT_BULK_IN, 2);
        /* The same with a clear. */
        hold_unanswered(fd, 3, 22, 10000);
        expect_quiet(fd, 100);
        end_held(fd, 22, 23, USBTMC_INITIATE_CLEAR, 0);

        /* With no transfer there to take the short packet, CHECK says it
         * waits (PENDING, bit 0) until a bulk-IN reads it. */
        static const uint8_t ends[2] = { USBTMC_INITIATE_ABORT_BULK_IN, USBTMC_INITIATE_CLEAR };
        for (int i = 0; i < 2; i++) {
                uint32_t id = 40 + 10 * (uint32_t)i;
                n = bulk_out_msg(m, id, USBTMC_REQUEST_DEV_DEP_MSG_IN, (uint8_t)(6 + i), NULL, 256);
                expect_ok(fd, m, n, VUSB_BULK_OUT, id, NULL, 0);
                bool abort = ends[i] == USBTMC_INITIATE_ABORT_BULK_IN;
                uint8_t type = abort ? USBTMC_REQ_ENDPOINT : USBTMC_REQ_INTERFACE;
                uint8_t check = abort ? USBTMC_CHECK_ABORT_BULK_IN_STATUS : USBTMC_CHECK_CLEAR_STATUS;
                uint16_t check_len = abort ? 8 : 2, index = abort ? 0x81 : 0;
                n = control_msg(m, id + 1, type, ends[i], (uint16_t)(6 + i), index, abort ? 2 : 1);
                expect_ok(fd, m, n, VUSB_CONTROL_IN, id + 1, b, sizeof(b));
                assert_int_equal(b[0], USBTMC_STATUS_SUCCESS);
                n = control_msg(m, id + 2, type, check, 0, index, check_len);
                assert_int_equal(expect_ok(fd, m, n, VUSB_CONTROL_IN, id + 2, b, sizeof(b)), check_len);
                assert_int_equal(b[0], USBTMC_STATUS_PENDING);
                assert_int_equal(b[1], 1);
                n = in_msg(m, VUSB_BULK_IN, id + 3, 1000, 512);
                assert_int_equal(expect_ok(fd, m, n, VUSB_BULK_IN, id + 3, b, sizeof(b)), 0);
                n = control_msg(m, id + 4, type, check, 0, index, check_len);
                assert_int_equal(expect_ok(fd, m, n, VUSB_CONTROL_IN, id + 4, b, sizeof(b)), check_len);
                assert_int_equal(b[0], USBTMC_STATUS_SUCCESS);
        }
        vusb_rig_attach(r);
        assert_int_equal(query(&r->t, "*IDN?"), TETHER_SUCCESS);
        assert_string_equal(answer, IDN);
        rig_stop(r);
}

/* A bulk-OUT while a bulk-IN is held: the host stopped reading (USBTMC
 * sends nothing on bulk-OUT mid-read), so the held transfer ends at once
 * and the answer the new message makes waits for the next one. */
static void bulk_out_ends_a_held_bulk_in(void **state)
{
        rig *r = rig_start();
        int fd = r->client_fd;
        uint8_t m[VUSB_HEADER_SIZE + 64], b[128];
        vusb_header h;
        hold_unanswered(fd, 1, 12, 10000);
        expect_quiet(fd, 50);
        size_t n = bulk_out_msg(m, 13, USBTMC_DEV_DEP_MSG_OUT, 3, "*IDN?", 0);
        send_raw(fd, m, n);
        assert_int_equal(recv_reply(fd, &h, NULL, 0), 0);
        assert_int_equal(h.id, 12);
        assert_int_equal(h.status, TETHER_ERR_TIMEOUT);
        assert_int_equal(recv_reply(fd, &h, NULL, 0), 0);
        assert_int_equal(h.id, 13);
        assert_int_equal(h.status, TETHER_SUCCESS);
        /* The request of before still stands: the next bulk-IN gets the
         * identity (its bTag, 2). */
        n = in_msg(m, VUSB_BULK_IN, 14, 1000, 128);
        assert_true(expect_ok(fd, m, n, VUSB_BULK_IN, 14, b, sizeof(b)) > USBTMC_HEADER_SIZE);
        assert_int_equal(b[1], 2);
        assert_memory_equal(b + USBTMC_HEADER_SIZE, "AGILENT", 7);
        vusb_rig_attach(r);
        rig_stop(r);
}

/* An answer that is made while the transfer is held goes at once: the
 * acquisition's end, well inside the timeout. */
static void held_in_gets_the_answer_when_it_is_made(void **state)
{
        rig *r = rig_start();
        int fd = r->client_fd;
        uint8_t m[VUSB_HEADER_SIZE + 64], b[64];
        size_t n = bulk_out_msg(m, 1, USBTMC_DEV_DEP_MSG_OUT, 1, ":TIM:SCAL 20ms;:DIG CHAN1;*OPC?", 0);
        double t0 = ms_now();
        expect_ok(fd, m, n, VUSB_BULK_OUT, 1, NULL, 0);
        n = bulk_out_msg(m, 2, USBTMC_REQUEST_DEV_DEP_MSG_IN, 2, NULL, 64);
        expect_ok(fd, m, n, VUSB_BULK_OUT, 2, NULL, 0);
        n = in_msg(m, VUSB_BULK_IN, 3, 5000, 512);
        assert_int_equal(expect_ok(fd, m, n, VUSB_BULK_IN, 3, b, sizeof(b)), USBTMC_HEADER_SIZE + 4);
        double took = ms_now() - t0;
        assert_memory_equal(b + USBTMC_HEADER_SIZE, "1\n", 2);
        assert_true(took >= 190); /* 10 divisions of 20 ms */
        assert_true(took < 1500);
        vusb_rig_attach(r);
        rig_stop(r);
}

/* A held interrupt-IN is answered by the service request it waits for:
 * *OPC with *ESE 1 and *SRE 32 raises MSS. */
static void held_interrupt_in_gets_the_srq(void **state)
{
        rig *r = rig_start();
        int fd = r->client_fd;
        uint8_t m[VUSB_HEADER_SIZE + 64], b[64];
        size_t n = in_msg(m, VUSB_INTERRUPT_IN, 1, 5000, 2);
        send_raw(fd, m, n);
        expect_quiet(fd, 100);
        double t0 = ms_now();
        n = bulk_out_msg(m, 2, USBTMC_DEV_DEP_MSG_OUT, 1, "*CLS;*ESE 1;*SRE 32;*OPC", 0);
        expect_ok(fd, m, n, VUSB_BULK_OUT, 2, NULL, 0);
        vusb_header h;
        assert_int_equal(recv_reply(fd, &h, b, sizeof(b)), 2);
        assert_int_equal(h.id, 1);
        assert_int_equal(h.status, TETHER_SUCCESS);
        assert_int_equal(b[0], USB488_NOTIFY_SRQ);
        assert_int_equal(b[1] & 0x60, 0x60);
        assert_true(ms_now() - t0 < 1000);
        vusb_rig_attach(r);
        rig_stop(r);
}

/* The client hangs up while a transfer is held: the server sees it at
 * once (not at the transfer's timeout) and ends with 0. */
static void hang_up_while_held(void **state)
{
        rig *r = rig_start();
        hold_unanswered(r->client_fd, 1, 12, 20000);
        expect_quiet(r->client_fd, 50);
        double t0 = ms_now();
        close(r->client_fd);
        r->client_fd = -1;
        pthread_join(r->thread, NULL);
        assert_true(ms_now() - t0 < 1000);
        assert_int_equal(r->served, 0);
        close(r->server_fd);
        sim_usbtmc_free(r->dev);
        sim_scope_free(r->owner);
        free(r);
}

/* A client that floods IN requests with long timeouts: the server holds
 * one per endpoint, each earlier one answered Timeout at once, and the
 * session stays whole. */
static void in_flood_holds_one_per_endpoint(void **state)
{
        rig *r = rig_start();
        int fd = r->client_fd;
        uint8_t m[VUSB_HEADER_SIZE + 64];
        vusb_header h;
        double t0 = ms_now();
        for (uint32_t i = 0; i < 2000; i++) {
                uint16_t op = i % 2 ? VUSB_INTERRUPT_IN : VUSB_BULK_IN;
                send_raw(fd, m, in_msg(m, op, 100 + i, 600000, 512));
                if (i < 2)
                        continue;
                assert_int_equal(recv_reply(fd, &h, NULL, 0), 0);
                assert_int_equal(h.id, 100 + i - 2);
                assert_int_equal(h.op, op | VUSB_REPLY);
                assert_int_equal(h.status, TETHER_ERR_TIMEOUT);
        }
        expect_quiet(fd, 50);
        assert_true(ms_now() - t0 < 5000);
        /* The client lets the two held go: a poll on each endpoint ends
         * them, and is answered at once itself. */
        send_raw(fd, m, in_msg(m, VUSB_BULK_IN, 5000, 0, 512));
        send_raw(fd, m, in_msg(m, VUSB_INTERRUPT_IN, 5001, 0, 2));
        uint32_t want[4] = { 2098, 5000, 2099, 5001 };
        for (int i = 0; i < 4; i++) {
                assert_int_equal(recv_reply(fd, &h, NULL, 0), 0);
                assert_int_equal(h.id, want[i]);
                assert_int_equal(h.status, TETHER_ERR_TIMEOUT);
        }
        vusb_rig_attach(r);
        assert_int_equal(query(&r->t, "*IDN?"), TETHER_SUCCESS);
        assert_string_equal(answer, IDN);
        uint8_t stb = 0;
        assert_int_equal(usbtmc_read_status_byte(&r->t, &stb), TETHER_SUCCESS);
        rig_stop(r);
}

/* Through tether's host code: an unanswered query takes the link's whole
 * timeout, and the recovery leaves the next query answered at once. */
static void unanswered_query_takes_the_timeout(void **state)
{
        rig *r = *state;
        r->t.timeout_ms = 300;
        double t0 = ms_now();
        assert_int_equal(query(&r->t, ":FOO?"), TETHER_ERR_TIMEOUT);
        double took = ms_now() - t0;
        assert_true(took >= 300);
        assert_true(took < 1300);
        t0 = ms_now();
        assert_int_equal(query(&r->t, ":SYST:ERR?"), TETHER_SUCCESS);
        assert_string_equal(answer, "-113,\"Undefined header\"\n");
        assert_int_equal(query(&r->t, ":SYST:ERR?"), TETHER_SUCCESS);
        assert_string_equal(answer, "-420,\"Query UNTERMINATED\"\n");
        assert_true(ms_now() - t0 < 250);
}

/* ---- tether-sim-scope --usb-fd, a process of its own ---- */

static pid_t spawn_sim(const char *serial, int *ret_fd)
{
        const char *args[] = { "--serial", serial, NULL };
        return sim_spawn("TETHER_SIM_SCOPE", args, ret_fd);
}

static void simulator_process(void **state)
{
        int fd;
        pid_t pid = spawn_sim("TEST0042", &fd);
        usbtmc_vusb *v;
        assert_int_equal(usbtmc_vusb_open(fd, &v), TETHER_SUCCESS);
        vusb_info info;
        assert_int_equal(usbtmc_vusb_get_info(v, &info), TETHER_SUCCESS);
        assert_string_equal(info.serial, "TEST0042");
        usbtmc t;
        usbtmc_vusb_attach(&t, v);
        assert_int_equal(usbtmc_get_capabilities(&t, NULL), TETHER_SUCCESS);
        assert_int_equal(query(&t, "*IDN?"), TETHER_SUCCESS);
        assert_string_equal(answer, "AGILENT TECHNOLOGIES,DSO-X 2002A,TEST0042,02.42.2017032900\n");
        /* A full record, in 64 KiB datagrams. */
        const char *cmd = ":WAV:SOUR CHAN1;FORM WORD;POIN:MODE NORM;:WAV:POIN 62500;:WAV:DATA?";
        assert_int_equal(usbtmc_write(&t, cmd, strlen(cmd)), TETHER_SUCCESS);
        uint8_t *buf = malloc(200000);
        size_t n = 0;
        assert_int_equal(usbtmc_read(&t, buf, 200000, &n), TETHER_SUCCESS);
        const uint8_t *data;
        size_t len;
        assert_int_equal(scpi_block_parse(buf, n, &data, &len), TETHER_SUCCESS);
        assert_int_equal(len, 2 * 62500);
        free(buf);
        /* Hanging up ends the process, with 0. */
        usbtmc_vusb_close(v);
        assert_int_equal(sim_wait_exit(pid, 5000), 0);
}

static void simulator_refuses_a_bad_fd(void **state)
{
        const char *path = getenv("TETHER_SIM_SCOPE");
        assert_non_null(path);
        pid_t pid = fork();
        if (pid == 0) {
                /* fd 3 a pipe, not a SEQPACKET socket */
                int p[2];
                if (pipe(p) < 0 || dup2(p[0], 3) != 3)
                        _exit(127);
                char *argv[] = { (char *)path, "--usb-fd", "3", NULL };
                execv(path, argv);
                _exit(127);
        }
        assert_int_equal(sim_wait_exit(pid, 5000), 2);
}

typedef struct killer {
        pid_t pid;
        unsigned after_ms;
} killer;

static void *kill_later(void *arg)
{
        killer *k = arg;
        struct timespec ts = { k->after_ms / 1000, (long)(k->after_ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
        kill(k->pid, SIGKILL);
        return NULL;
}

/* The simulator dies while the client waits on a long transfer: the wait
 * ends at once with NoDevice, not at the timeout, and every later call
 * fails the same way without waiting. */
static void peer_killed_mid_call(void **state)
{
        int fd;
        pid_t pid = spawn_sim("MY57235663", &fd);
        usbtmc_vusb *v;
        assert_int_equal(usbtmc_vusb_open(fd, &v), TETHER_SUCCESS);
        usbtmc t;
        usbtmc_vusb_attach(&t, v);
        /* 1 s/div: the acquisition sweeps 10 s, and the answer waits for it. */
        assert_int_equal(usbtmc_write(&t, ":TIM:SCAL 1", 11), TETHER_SUCCESS);
        t.timeout_ms = 20000;
        killer k = { .pid = pid, .after_ms = 300 };
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, kill_later, &k), 0);
        double t0 = ms_now();
        assert_int_equal(query(&t, ":DIG CHAN1;*OPC?"), TETHER_ERR_NO_DEVICE);
        double took = ms_now() - t0;
        pthread_join(th, NULL);
        assert_true(took >= 250);
        assert_true(took < 3000);
        t0 = ms_now();
        assert_int_equal(query(&t, "*IDN?"), TETHER_ERR_NO_DEVICE);
        uint8_t stb;
        assert_int_equal(usbtmc_read_status_byte(&t, &stb), TETHER_ERR_NO_DEVICE);
        assert_true(ms_now() - t0 < 100);
        usbtmc_vusb_close(v);
        assert_int_equal(sim_wait_exit(pid, 5000), 128 + SIGKILL);
}

/* Killed while a bulk-IN of an unanswered query is held: NoDevice at
 * once, not at the 20 s timeout. */
static void peer_killed_while_in_held(void **state)
{
        int fd;
        pid_t pid = spawn_sim("MY57235663", &fd);
        usbtmc_vusb *v;
        assert_int_equal(usbtmc_vusb_open(fd, &v), TETHER_SUCCESS);
        usbtmc t;
        usbtmc_vusb_attach(&t, v);
        t.timeout_ms = 20000;
        killer k = { .pid = pid, .after_ms = 300 };
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, kill_later, &k), 0);
        double t0 = ms_now();
        assert_int_equal(query(&t, ":FOO?"), TETHER_ERR_NO_DEVICE);
        double took = ms_now() - t0;
        pthread_join(th, NULL);
        assert_true(took >= 250);
        assert_true(took < 3000);
        usbtmc_vusb_close(v);
        assert_int_equal(sim_wait_exit(pid, 5000), 128 + SIGKILL);
}

/* Killed between calls: the next call says so at once. */
static void peer_gone_between_calls(void **state)
{
        int fd;
        pid_t pid = spawn_sim("MY57235663", &fd);
        usbtmc_vusb *v;
        assert_int_equal(usbtmc_vusb_open(fd, &v), TETHER_SUCCESS);
        usbtmc t;
        usbtmc_vusb_attach(&t, v);
        assert_int_equal(query(&t, "*OPC?"), TETHER_SUCCESS);
        kill(pid, SIGKILL);
        assert_int_equal(sim_wait_exit(pid, 5000), 128 + SIGKILL);
        double t0 = ms_now();
        assert_int_equal(query(&t, "*IDN?"), TETHER_ERR_NO_DEVICE);
        assert_true(ms_now() - t0 < 1000);
        usbtmc_vusb_close(v);
}

int main(void)
{
        /* SIGPIPE stays fatal: a send without MSG_NOSIGNAL to a dead
         * peer would end this test, as it would a driver host. */
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        const struct CMUnitTest tests[] = {
                T(describe_sets_up_the_link),
                T(idn),
                T(status_byte_and_srq_on_interrupt_in),
                T(full_record_in_many_transfers),
                T(delay_past_timeout_then_recovers),
                T(stall_and_wrong_btag_recover),
                T(unplug_fault_is_the_devices_not_the_links),
                T(acquisition_waits_in_the_server),
                T(unanswered_query_takes_the_timeout),
                cmocka_unit_test(hostile_client_is_answered),
                cmocka_unit_test(handler_bounds),
                cmocka_unit_test(held_in_waits_its_timeout_and_control_answers),
                cmocka_unit_test(abort_or_clear_ends_a_held_in),
                cmocka_unit_test(held_in_gets_the_answer_when_it_is_made),
                cmocka_unit_test(held_interrupt_in_gets_the_srq),
                cmocka_unit_test(hang_up_while_held),
                cmocka_unit_test(bulk_out_ends_a_held_bulk_in),
                cmocka_unit_test(in_flood_holds_one_per_endpoint),
                cmocka_unit_test(simulator_process),
                cmocka_unit_test(simulator_refuses_a_bad_fd),
                cmocka_unit_test(peer_killed_mid_call),
                cmocka_unit_test(peer_killed_while_in_held),
                cmocka_unit_test(peer_gone_between_calls),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
