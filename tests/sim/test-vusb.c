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
        sim_usbtmc_inject(r->dev, SIM_FAULT_DELAY);
        assert_int_equal(query(&r->t, "*IDN?"), TETHER_ERR_TIMEOUT);
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

/* sim_vusb_handle on its own, as the fuzzer drives it: a reply always
 * fits, and a request claiming more than it has is refused. */
static void handler_bounds(void **state)
{
        sim_scope *s;
        sim_usbtmc *d;
        vusb_info info;
        assert_int_equal(sim_scope_new(NULL, &s), 0);
        assert_int_equal(sim_usbtmc_new(s, &d), 0);
        assert_int_equal(sim_vusb_info("SN1", &info), TETHER_SUCCESS);
        uint8_t *reply = malloc(VUSB_MAX_MSG);
        uint8_t req[VUSB_HEADER_SIZE + 8];
        size_t n = 0;
        uint8_t a[8];
        vusb_put32(a, 10);
        vusb_put32(a + 4, VUSB_MAX_DATA);
        request(req, VUSB_BULK_IN, 5, a, 8);
        assert_int_equal(sim_vusb_handle(d, &info, req, sizeof(req), reply, &n), TETHER_SUCCESS);
        vusb_header h;
        assert_int_equal(vusb_header_decode(reply, n, &h), TETHER_SUCCESS);
        assert_int_equal(h.status, TETHER_ERR_TIMEOUT); /* nothing was asked of the scope */
        assert_int_equal(n, VUSB_HEADER_SIZE);
        /* Serials the descriptors could not carry. */
        char long_serial[VUSB_MAX_SERIAL + 2];
        memset(long_serial, 'A', sizeof(long_serial) - 1);
        long_serial[sizeof(long_serial) - 1] = '\0';
        assert_int_equal(sim_vusb_info(long_serial, &info), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(sim_vusb_info("bad\nserial", &info), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(sim_vusb_serve(-1, d, NULL), -1);
        free(reply);
        sim_usbtmc_free(d);
        sim_scope_free(s);
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
                cmocka_unit_test(hostile_client_is_answered),
                cmocka_unit_test(handler_bounds),
                cmocka_unit_test(simulator_process),
                cmocka_unit_test(simulator_refuses_a_bad_fd),
                cmocka_unit_test(peer_killed_mid_call),
                cmocka_unit_test(peer_gone_between_calls),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
