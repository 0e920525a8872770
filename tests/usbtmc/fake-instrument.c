/* SPDX-License-Identifier: MIT */
#include "fake-instrument.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "usbtmc/usbtmc.h"
#include "usbtmc/vusb.h"

#define MAX_OUT 8        /* answers queued at once */
#define MAX_STB_NOTES 16 /* READ_STATUS_BYTE answers waiting on interrupt-IN */

typedef struct answer {
        uint8_t *p;
        size_t len, pos;
        uint64_t ready_ms;  /* not sendable before */
} answer;

struct fake_instrument {
        fake_config cfg;
        vusb_info info;
        int fd;                 /* the server's end */
        int wake[2];            /* the test wakes the thread: unplug, SRQ, free */
        pthread_t thread;
        pthread_mutex_t mu;
        bool unplug, quit;
        /* device state: the thread's, except what the mutex guards */
        uint8_t *in;            /* a message arriving, until EOM */
        size_t in_len;
        answer out[MAX_OUT];
        unsigned n_out;
        bool pending;           /* a REQUEST_DEV_DEP_MSG_IN waits */
        uint8_t pending_btag, pending_attr, pending_term;
        uint32_t pending_size;
        uint8_t *flight;        /* a DEV_DEP_MSG_IN transfer partly sent */
        size_t flight_len, flight_pos;
        /* guarded by mu */
        uint8_t stb;
        bool rqs;
        unsigned srq_queued;
        uint8_t srq_stb;
        uint8_t notes[MAX_STB_NOTES][2];
        unsigned n_notes;
        fake_counts counts;
};

fake_config fake_config_default(void)
{
        return (fake_config){
                .vendor = 0x1234, .product = 0x5678, .serial = "FAKE0001", .idn = "ACME,Model 1,FAKE0001,1.0",
                .interrupt_ep = true, .usb488_interface_caps = 0x07, .usb488_device_caps = 0x0f, .bcd_usb488 = 0x0100,
        };
}

static uint64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static bool unplugged(fake_instrument *f)
{
        pthread_mutex_lock(&f->mu);
        bool u = f->unplug || f->quit;
        pthread_mutex_unlock(&f->mu);
        return u;
}

/* Sleep up to ms, woken early by the test (an SRQ, an unplug). */
static void nap(fake_instrument *f, unsigned ms)
{
        struct pollfd p = { .fd = f->wake[0], .events = POLLIN };
        if (poll(&p, 1, (int)ms) == 1) {
                char b[64];
                while (read(f->wake[0], b, sizeof(b)) > 0)
                        ;
        }
}

static void poke(fake_instrument *f)
{
        char c = 1;
        if (write(f->wake[1], &c, 1) < 0) {
                /* full: the thread has wake-ups enough */
        }
}

static void queue_answer(fake_instrument *f, const void *p, size_t len, unsigned delay_ms)
{
        if (f->n_out == MAX_OUT)
                return;
        answer *a = &f->out[f->n_out++];
        a->p = malloc(len);
        memcpy(a->p, p, len);
        a->len = len;
        a->pos = 0;
        a->ready_ms = now_ms() + delay_ms;
}

static void drop_answers(fake_instrument *f)
{
        for (unsigned i = 0; i < f->n_out; i++)
                free(f->out[i].p);
        f->n_out = 0;
}

static void drop_flight(fake_instrument *f)
{
        free(f->flight);
        f->flight = NULL;
        f->flight_len = f->flight_pos = 0;
}

/* A whole message arrived: what it asks for is queued. */
static void execute(fake_instrument *f, const char *msg, size_t len)
{
        char text[256];
        size_t n = len < sizeof(text) - 1 ? len : sizeof(text) - 1;
        memcpy(text, msg, n);
        text[n] = '\0';
        while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
                text[--n] = '\0';
        /* A new message drops an answer not read, as IEEE 488.2 has it. */
        drop_answers(f);
        char buf[512];
        if (!strcmp(text, "*IDN?")) {
                if (f->cfg.idn) {
                        int k = snprintf(buf, sizeof(buf), "%s\n", f->cfg.idn);
                        queue_answer(f, buf, (size_t)k, 0);
                }
        } else if (!strncmp(text, "ECHO? ", 6)) {
                int k = snprintf(buf, sizeof(buf), "%s\n", text + 6);
                queue_answer(f, buf, (size_t)k, 0);
        } else if (!strncmp(text, "DATA? ", 6)) {
                size_t count = strtoul(text + 6, NULL, 10);
                uint8_t *d = malloc(count + 1);
                for (size_t i = 0; i < count; i++)
                        d[i] = (uint8_t)('A' + i % 26);
                d[count] = '\n';
                queue_answer(f, d, count + 1, 0);
                free(d);
        } else if (!strcmp(text, "LINES?")) {
                queue_answer(f, "one\ntwo\nthree\n", 14, 0);
        } else if (!strncmp(text, "SLOW? ", 6)) {
                queue_answer(f, "done\n", 5, (unsigned)strtoul(text + 6, NULL, 10));
        } else if (!strcmp(text, "*STB?")) {
                pthread_mutex_lock(&f->mu);
                int k = snprintf(buf, sizeof(buf), "%u\n", f->stb | (f->rqs ? 0x40u : 0u));
                pthread_mutex_unlock(&f->mu);
                queue_answer(f, buf, (size_t)k, 0);
        }
        /* SILENT? and commands: nothing */
}

static tether_ret_t bulk_out(fake_instrument *f, const uint8_t *data, size_t len)
{
        usbtmc_header h;
        if (usbtmc_header_decode(data, len, &h) != TETHER_SUCCESS)
                return TETHER_ERR_IO;
        switch (h.msg_id) {
        case USBTMC_DEV_DEP_MSG_OUT:
                if (h.transfer_size == 0 || USBTMC_HEADER_SIZE + (size_t)h.transfer_size > len)
                        return TETHER_ERR_IO;
                f->in = realloc(f->in, f->in_len + h.transfer_size);
                memcpy(f->in + f->in_len, data + USBTMC_HEADER_SIZE, h.transfer_size);
                f->in_len += h.transfer_size;
                if (h.attributes & USBTMC_ATTR_EOM) {
                        execute(f, (const char *)f->in, f->in_len);
                        f->in_len = 0;
                }
                return TETHER_SUCCESS;
        case USBTMC_REQUEST_DEV_DEP_MSG_IN:
                if (h.transfer_size == 0)
                        return TETHER_ERR_IO;
                drop_flight(f);
                f->pending = true;
                f->pending_btag = h.btag;
                f->pending_size = h.transfer_size;
                f->pending_attr = h.attributes;
                f->pending_term = h.term_char;
                if (h.attributes & USBTMC_ATTR_TERM_CHAR) {
                        pthread_mutex_lock(&f->mu);
                        f->counts.term_char_seen = true;
                        f->counts.term_char = h.term_char;
                        pthread_mutex_unlock(&f->mu);
                }
                return TETHER_SUCCESS;
        case USB488_TRIGGER:
                pthread_mutex_lock(&f->mu);
                f->counts.triggers++;
                pthread_mutex_unlock(&f->mu);
                return TETHER_SUCCESS;
        default:
                return TETHER_ERR_IO;
        }
}

/* The DEV_DEP_MSG_IN transfer answering the pending request: never past
 * the end of a message, nor past TermChar when asked for and supported. */
static void build_flight(fake_instrument *f)
{
        answer *a = &f->out[0];
        size_t left = a->len - a->pos;
        size_t n = left < f->pending_size ? left : f->pending_size;
        bool term = false;
        if ((f->pending_attr & USBTMC_ATTR_TERM_CHAR) && (f->cfg.device_caps & USBTMC_CAP_TERM_CHAR)) {
                const uint8_t *hit = memchr(a->p + a->pos, f->pending_term, n);
                if (hit) {
                        n = (size_t)(hit - (a->p + a->pos)) + 1;
                        term = true;
                }
        }
        bool eom = a->pos + n == a->len;
        size_t total = USBTMC_HEADER_SIZE + usbtmc_padded(n);
        f->flight = calloc(1, total);
        memcpy(f->flight + USBTMC_HEADER_SIZE, a->p + a->pos, n);
        usbtmc_header h = { .msg_id = USBTMC_DEV_DEP_MSG_IN, .btag = f->pending_btag, .transfer_size = (uint32_t)n,
                            .attributes = (uint8_t)((eom ? USBTMC_ATTR_EOM : 0) | (term ? USBTMC_ATTR_TERM_CHAR : 0)) };
        usbtmc_header_encode(&h, f->flight);
        f->flight_len = total;
        f->flight_pos = 0;
        a->pos += n;
        if (eom) {
                free(a->p);
                memmove(&f->out[0], &f->out[1], (f->n_out - 1) * sizeof(answer));
                f->n_out--;
        }
        f->pending = false;
}

static tether_ret_t bulk_in(fake_instrument *f, uint8_t *data, size_t cap, size_t *ret_n, unsigned timeout_ms)
{
        uint64_t deadline = now_ms() + timeout_ms;
        while (!f->flight) {
                if (unplugged(f))
                        return TETHER_ERR_NO_DEVICE;
                uint64_t now = now_ms();
                if (f->pending && f->n_out && f->out[0].ready_ms <= now) {
                        build_flight(f);
                        break;
                }
                if (now >= deadline)
                        return TETHER_ERR_TIMEOUT; /* NAKed until the host gave up */
                uint64_t until = deadline;
                if (f->pending && f->n_out && f->out[0].ready_ms < until)
                        until = f->out[0].ready_ms;
                nap(f, (unsigned)(until - now));
        }
        size_t n = f->flight_len - f->flight_pos;
        if (n > cap)
                n = cap;
        memcpy(data, f->flight + f->flight_pos, n);
        f->flight_pos += n;
        *ret_n = n;
        if (f->flight_pos == f->flight_len)
                drop_flight(f);
        return TETHER_SUCCESS;
}

static tether_ret_t interrupt_in(fake_instrument *f, uint8_t *data, size_t cap, size_t *ret_n, unsigned timeout_ms)
{
        uint64_t deadline = now_ms() + timeout_ms;
        for (;;) {
                if (unplugged(f))
                        return TETHER_ERR_NO_DEVICE;
                pthread_mutex_lock(&f->mu);
                uint8_t note[2];
                bool have = false;
                if (f->n_notes) {
                        memcpy(note, f->notes[0], 2);
                        memmove(f->notes[0], f->notes[1], (f->n_notes - 1) * 2);
                        f->n_notes--;
                        have = true;
                } else if (f->srq_queued) {
                        note[0] = USB488_NOTIFY_SRQ;
                        note[1] = f->srq_stb;
                        f->srq_queued--;
                        f->counts.srq_sent++;
                        have = true;
                }
                pthread_mutex_unlock(&f->mu);
                if (have) {
                        size_t n = cap < 2 ? cap : 2;
                        memcpy(data, note, n);
                        *ret_n = n;
                        return TETHER_SUCCESS;
                }
                uint64_t now = now_ms();
                if (now >= deadline)
                        return TETHER_ERR_TIMEOUT;
                nap(f, (unsigned)(deadline - now));
        }
}

static tether_ret_t control_in(fake_instrument *f, uint8_t request, uint16_t value, uint8_t *data, uint16_t len,
                               size_t *ret_n)
{
        uint8_t b[0x18] = { 0 };
        size_t n = 1;
        const fake_config *c = &f->cfg;
        pthread_mutex_lock(&f->mu);
        switch (request) {
        case USBTMC_INITIATE_ABORT_BULK_IN:
                b[0] = f->pending || f->flight ? USBTMC_STATUS_SUCCESS : USBTMC_STATUS_TRANSFER_NOT_IN_PROGRESS;
                b[1] = f->pending_btag;
                if (f->pending || f->flight)
                        f->counts.aborts_in++;
                f->pending = false;
                drop_flight(f);
                n = 2;
                break;
        case USBTMC_CHECK_ABORT_BULK_IN_STATUS:
        case USBTMC_CHECK_ABORT_BULK_OUT_STATUS:
                b[0] = USBTMC_STATUS_SUCCESS;
                n = 8;
                break;
        case USBTMC_INITIATE_ABORT_BULK_OUT:
                b[0] = f->in_len ? USBTMC_STATUS_SUCCESS : USBTMC_STATUS_TRANSFER_NOT_IN_PROGRESS;
                b[1] = (uint8_t)value;
                f->in_len = 0;
                n = 2;
                break;
        case USBTMC_INITIATE_CLEAR:
                f->in_len = 0;
                f->pending = false;
                drop_flight(f);
                drop_answers(f);
                f->counts.clears++;
                b[0] = USBTMC_STATUS_SUCCESS;
                break;
        case USBTMC_CHECK_CLEAR_STATUS:
                b[0] = USBTMC_STATUS_SUCCESS;
                n = 2;
                break;
        case USBTMC_GET_CAPABILITIES:
                b[0] = USBTMC_STATUS_SUCCESS;
                b[2] = 0x00;
                b[3] = 0x01;
                b[4] = c->interface_caps;
                b[5] = c->device_caps;
                b[12] = (uint8_t)c->bcd_usb488;
                b[13] = (uint8_t)(c->bcd_usb488 >> 8);
                b[14] = c->usb488_interface_caps;
                b[15] = c->usb488_device_caps;
                n = 0x18;
                break;
        case USB488_READ_STATUS_BYTE: {
                uint8_t stb = (uint8_t)(f->stb | (f->rqs ? 0x40u : 0u));
                f->rqs = false; /* a serial poll clears RQS */
                f->counts.stb_reads++;
                b[0] = USBTMC_STATUS_SUCCESS;
                b[1] = (uint8_t)value;
                if (c->interrupt_ep) {
                        if (f->n_notes == MAX_STB_NOTES) {
                                b[0] = USB488_STATUS_INTERRUPT_IN_BUSY;
                        } else {
                                f->notes[f->n_notes][0] = (uint8_t)(0x80u | (value & 0x7fu));
                                f->notes[f->n_notes][1] = stb;
                                f->n_notes++;
                        }
                } else {
                        b[2] = stb;
                }
                n = 3;
                break;
        }
        case USBTMC_INDICATOR_PULSE:
                if (!(c->interface_caps & USBTMC_CAP_INDICATOR_PULSE))
                        goto stall;
                f->counts.pulses++;
                b[0] = USBTMC_STATUS_SUCCESS;
                break;
        case USB488_REN_CONTROL:
        case USB488_GO_TO_LOCAL:
        case USB488_LOCAL_LOCKOUT:
                if (!(c->usb488_interface_caps & USB488_CAP_REMOTE_LOCAL))
                        goto stall;
                if (request == USB488_REN_CONTROL)
                        f->counts.ren = value & 1;
                else if (request == USB488_GO_TO_LOCAL)
                        f->counts.gtl++;
                else
                        f->counts.llo++;
                b[0] = USBTMC_STATUS_SUCCESS;
                break;
        default:
                goto stall;
        }
        pthread_mutex_unlock(&f->mu);
        n = n < len ? n : len;
        memcpy(data, b, n);
        *ret_n = n;
        return TETHER_SUCCESS;
stall:
        pthread_mutex_unlock(&f->mu);
        return TETHER_ERR_IO;
}

/* One request, its reply (into reply, VUSB_MAX_MSG bytes). */
static size_t handle(fake_instrument *f, const uint8_t *req, size_t len, uint8_t *reply)
{
        vusb_header h = { 0 };
        tether_ret_t r = vusb_header_decode(req, len, &h);
        const uint8_t *args = req + VUSB_HEADER_SIZE;
        size_t alen = len >= VUSB_HEADER_SIZE ? len - VUSB_HEADER_SIZE : 0;
        uint8_t *out = reply + VUSB_HEADER_SIZE;
        size_t n = 0;
        if (r == TETHER_SUCCESS) {
                switch (h.op) {
                case VUSB_DESCRIBE:
                        r = vusb_info_encode(&f->info, out, VUSB_MAX_DATA, &n);
                        break;
                case VUSB_BULK_OUT:
                        r = alen >= VUSB_ARGS_BULK_OUT ? bulk_out(f, args + 4, alen - 4) : TETHER_ERR_BAD_ARGUMENT;
                        break;
                case VUSB_BULK_IN:
                        r = alen == VUSB_ARGS_BULK_IN ? bulk_in(f, out, vusb_get32(args + 4), &n, vusb_get32(args))
                                                      : TETHER_ERR_BAD_ARGUMENT;
                        break;
                case VUSB_INTERRUPT_IN:
                        if (alen != VUSB_ARGS_INTERRUPT_IN)
                                r = TETHER_ERR_BAD_ARGUMENT;
                        else if (!f->cfg.interrupt_ep)
                                r = TETHER_ERR_UNSUPPORTED;
                        else
                                r = interrupt_in(f, out, vusb_get32(args + 4), &n, vusb_get32(args));
                        break;
                case VUSB_CONTROL_IN:
                        r = alen == VUSB_ARGS_CONTROL_IN
                                    ? control_in(f, args[5], vusb_get16(args + 6), out, vusb_get16(args + 10), &n)
                                    : TETHER_ERR_BAD_ARGUMENT;
                        break;
                case VUSB_CLEAR_HALT:
                        r = TETHER_SUCCESS;
                        break;
                default:
                        r = TETHER_ERR_BAD_MESSAGE_ID;
                }
        }
        if (r != TETHER_SUCCESS && h.op != VUSB_BULK_IN && h.op != VUSB_INTERRUPT_IN)
                n = 0;
        vusb_header rh = { .op = (uint16_t)(h.op | VUSB_REPLY), .version = VUSB_VERSION, .id = h.id, .status = r,
                           .size = (uint32_t)(VUSB_HEADER_SIZE + n) };
        vusb_header_encode(&rh, reply);
        pthread_mutex_lock(&f->mu);
        f->counts.requests++;
        f->counts.in_flight = f->pending || f->flight;
        pthread_mutex_unlock(&f->mu);
        return VUSB_HEADER_SIZE + n;
}

static void *serve(void *arg)
{
        fake_instrument *f = arg;
        uint8_t *req = malloc(VUSB_MAX_MSG + 1), *reply = malloc(VUSB_MAX_MSG);
        while (!unplugged(f)) {
                struct pollfd p[2] = { { .fd = f->fd, .events = POLLIN }, { .fd = f->wake[0], .events = POLLIN } };
                if (poll(p, 2, -1) < 0 && errno != EINTR)
                        break;
                if (p[1].revents)
                        nap(f, 0);
                if (!(p[0].revents & (POLLIN | POLLHUP)))
                        continue;
                size_t n = 0;
                tether_ret_t r = vusb_recv(f->fd, req, VUSB_MAX_MSG + 1, &n);
                if (r == TETHER_ERR_NOT_READY)
                        continue;
                if (r != TETHER_SUCCESS)
                        break; /* the client hung up */
                size_t m = handle(f, req, n, reply);
                if (unplugged(f))
                        break; /* gone in the middle: no answer */
                if (send(f->fd, reply, m, MSG_NOSIGNAL) < 0)
                        break;
        }
        /* An unplug: the client's next wait ends on the hang-up. */
        close(f->fd);
        f->fd = -1;
        free(req);
        free(reply);
        return NULL;
}

int fake_start(const fake_config *cfg, fake_instrument **ret, int *ret_fd)
{
        fake_instrument *f = calloc(1, sizeof(*f));
        int sv[2];
        if (!f || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -1;
        if (pipe2(f->wake, O_CLOEXEC | O_NONBLOCK) < 0)
                return -1;
        f->cfg = *cfg;
        f->counts.ren = -1;
        f->info = (vusb_info){ .vendor = cfg->vendor, .product = cfg->product, .interface = cfg->interface,
                               .protocol = cfg->bcd_usb488 ? 1 : 0, .ep_out = 0x02, .ep_in = 0x81,
                               .ep_interrupt = cfg->interrupt_ep ? 0x83 : 0, .max_packet_in = 512,
                               .max_data = VUSB_MAX_DATA };
        if (cfg->serial)
                snprintf(f->info.serial, sizeof(f->info.serial), "%s", cfg->serial);
        f->fd = sv[0];
        pthread_mutex_init(&f->mu, NULL);
        if (pthread_create(&f->thread, NULL, serve, f) != 0)
                return -1;
        *ret = f;
        *ret_fd = sv[1];
        return 0;
}

void fake_unplug(fake_instrument *f)
{
        pthread_mutex_lock(&f->mu);
        f->unplug = true;
        pthread_mutex_unlock(&f->mu);
        poke(f);
}

void fake_free(fake_instrument *f)
{
        if (!f)
                return;
        pthread_mutex_lock(&f->mu);
        f->quit = true;
        pthread_mutex_unlock(&f->mu);
        poke(f);
        pthread_join(f->thread, NULL);
        drop_answers(f);
        drop_flight(f);
        free(f->in);
        close(f->wake[0]);
        close(f->wake[1]);
        pthread_mutex_destroy(&f->mu);
        free(f);
}

void fake_srq(fake_instrument *f, unsigned n, uint8_t stb)
{
        pthread_mutex_lock(&f->mu);
        f->counts.srq_raised += n;
        if (f->cfg.interrupt_ep) {
                f->srq_queued += n;
                f->srq_stb = stb;
        } else {
                f->stb = stb & (uint8_t)~0x40u;
                f->rqs = n > 0;
        }
        pthread_mutex_unlock(&f->mu);
        poke(f);
}

void fake_set_stb(fake_instrument *f, uint8_t stb)
{
        pthread_mutex_lock(&f->mu);
        f->stb = stb;
        pthread_mutex_unlock(&f->mu);
}

fake_counts fake_get_counts(fake_instrument *f)
{
        pthread_mutex_lock(&f->mu);
        fake_counts c = f->counts;
        pthread_mutex_unlock(&f->mu);
        return c;
}
