/* SPDX-License-Identifier: MIT */
/*
 * A stateful fuzz client for tetherd: it keeps a pool of session,
 * connection and port sockets and does random things with them, valid
 * requests among mutated, truncated and random ones, with random fds
 * attached, sockets opened and dropped abruptly, replies read or left
 * unread. Raw sockets, no libtether.
 *
 *   fuzz-client SOCKET [seed=N] [seconds=S] [ops=N]
 *
 * The PRNG is our own xorshift, seeded from seed=: the seed is printed
 * first and last, so a failing run can be repeated. (The run also depends
 * on what tetherd answers and when, so a repeat is close, not identical.)
 *
 * What it leaves alone, because it would hurt the other clients through
 * the example driver's design rather than through tetherd: valid writes of
 * ExampleDriver's properties (Locked, HoldDeviceStart, BaudRate, Greeting)
 * and long EXAMPLE_SLEEPs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <tether/value.h>

#include "example/example.h"
#include "raw.h"

/* ---- the PRNG ---- */

static uint64_t rng_state;

static uint64_t rnd64(void)
{
        /* xorshift64*: small, fast, and the same on every machine. */
        uint64_t x = rng_state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        rng_state = x;
        return x * 0x2545F4914F6CDD1Dull;
}

static uint32_t rnd(uint32_t n) /* [0, n) */
{
        return n ? (uint32_t)(rnd64() % n) : 0;
}

static bool chance(uint32_t percent)
{
        return rnd(100) < percent;
}

static void seed_rng(uint64_t seed)
{
        /* splitmix64 once, so that seeds 1, 2, 3 start far apart; never 0. */
        uint64_t z = seed + 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        rng_state = (z ^ (z >> 31)) | 1;
}

/* ---- the pool ---- */

enum kind { K_SESSION, K_CONN, K_PORT };

typedef struct slot {
        int fd;
        enum kind kind;
        bool legacy; /* a connection of EXAMPLE_CLIENT_LEGACY */
} slot;

#define POOL_MAX 40
static slot pool[POOL_MAX];
static int n_pool;
static const char *sock_path;
static uint64_t root_id, svc_id;
static uint64_t ports[16];
static int n_ports;
/* async references of its recent calls, for ASYNC_CANCEL to name */
static uint64_t recent_refs[16][2];
static unsigned n_refs;
static raw_reply R;

static struct {
        long ops, sent, send_errors, received, unsolicited, errors, eof, fds_in, fds_out;
        long connects, closes, mutated, random, with_fds, calls, session_reqs, conn_reqs;
} st;

/* Room for each kind, so that sessions (the cheapest to make) do not
 * crowd out the connections and ports that only they can ask for. */
static const int kind_max[] = { [K_SESSION] = 10, [K_CONN] = 24, [K_PORT] = 6 };

static int pool_count(enum kind k)
{
        int n = 0;
        for (int i = 0; i < n_pool; i++)
                n += pool[i].kind == k;
        return n;
}

static void pool_add(int fd, enum kind k, bool legacy)
{
        if (fd < 0)
                return;
        if (n_pool == POOL_MAX || pool_count(k) >= kind_max[k]) {
                close(fd);
                return;
        }
        pool[n_pool++] = (slot){ .fd = fd, .kind = k, .legacy = legacy };
}

static void pool_drop(int i)
{
        close(pool[i].fd);
        pool[i] = pool[--n_pool];
}

/* A random slot of kind k (any kind if k < 0), or -1. */
static int pick(int k)
{
        int idx[POOL_MAX], n = 0;
        for (int i = 0; i < n_pool; i++)
                if (k < 0 || (int)pool[i].kind == k)
                        idx[n++] = i;
        return n ? idx[rnd((uint32_t)n)] : -1;
}

/* ---- reading ---- */

/* Read what is waiting on slot i (up to max datagrams); keep the sockets
 * tetherd hands out, while there is room. False if i went away. */
static bool drain(int i, int max)
{
        for (int n = 0; n < max; n++) {
                int k = raw_recv(pool[i].fd, &R, 0);
                if (k == RAW_EOF) {
                        st.eof++;
                        pool_drop(i);
                        return false;
                }
                if (k != RAW_GOT)
                        return true;
                st.received++;
                st.unsolicited += R.unsolicited;
                st.errors += R.h.result != TETHER_SUCCESS;
                st.fds_in += R.nfds;
                if (R.fd < 0)
                        continue;
                if (R.h.result == TETHER_SUCCESS && R.h.type == (WIRE_OPEN | WIRE_REPLY_FLAG) && chance(80)) {
                        pool_add(R.fd, K_CONN, false);
                } else if (R.h.result == TETHER_SUCCESS && R.h.type == (WIRE_PORT_CREATE | WIRE_REPLY_FLAG)) {
                        if (R.body_len >= 8 && n_ports < 16)
                                memcpy(&ports[n_ports++], R.body, 8);
                        pool_add(R.fd, K_PORT, false);
                } else {
                        close(R.fd);
                }
        }
        return true;
}

/* ---- fds to pass ---- */

typedef struct fdset {
        int fd[RAW_MAX_FDS];
        bool owned[RAW_MAX_FDS]; /* made for this message: closed after it */
        int n;
} fdset;

static void fdset_add_new(fdset *f)
{
        int fd = -1;
        /* A fresh session of tetherd's own (case 5) costs our uid's budget:
         * rarer than the rest. */
        switch (chance(4) ? 5 : rnd(5)) {
        case 0:
                fd = raw_memfd(rnd(4) ? 4096u * (1 + rnd(256)) : rnd(100000), chance(70));
                break;
        case 1: {
                int sp[2];
                if (socketpair(AF_UNIX, rnd(2) ? SOCK_SEQPACKET : SOCK_STREAM, 0, sp) == 0) {
                        close(sp[1]);
                        fd = sp[0];
                }
                break;
        }
        case 2:
                fd = open("/dev/null", O_RDWR);
                break;
        case 3: {
                int p[2];
                if (pipe(p) == 0) {
                        int keep = (int)rnd(2);
                        close(p[1 - keep]);
                        fd = p[keep];
                }
                break;
        }
        case 4:
                fd = eventfd(0, 0);
                break;
        default:
                fd = raw_connect(sock_path, 200); /* a session tetherd has not seen a word on */
                break;
        }
        if (fd >= 0) {
                f->fd[f->n] = fd;
                f->owned[f->n++] = true;
        }
}

static void fdset_fill(fdset *f, int want)
{
        f->n = 0;
        for (int i = 0; i < want && f->n < RAW_MAX_FDS; i++) {
                if (n_pool && chance(40)) {
                        f->fd[f->n] = pool[rnd((uint32_t)n_pool)].fd; /* our own sockets, even this one */
                        f->owned[f->n++] = false;
                } else if (f->n && chance(50)) {
                        f->fd[f->n] = f->fd[rnd((uint32_t)f->n)]; /* the same one again */
                        f->owned[f->n++] = false;
                } else {
                        fdset_add_new(f);
                }
        }
}

static void fdset_close(fdset *f)
{
        for (int i = 0; i < f->n; i++)
                if (f->owned[i])
                        close(f->fd[i]);
        f->n = 0;
}

/* ---- requests ---- */

static uint64_t some_id(void)
{
        switch (rnd(5)) {
        case 0:
                return root_id;
        case 1:
        case 2:
                return svc_id;
        case 3:
                return rnd(64);
        default:
                return rnd64();
        }
}

static void put_random_bytes(wire_msg *m, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                uint8_t b = (uint8_t)rnd64();
                wire_put_bytes(m, &b, 1);
        }
}

/* A matching dictionary or some other value, as CBOR. */
static void put_value(wire_msg *m)
{
        tether_value *d = NULL;
        if (tether_value_new_dict(&d) != TETHER_SUCCESS)
                return;
        static const char *const keys[] = { "IOProviderClass", "IONameMatch", "IOPropertyMatch", "Model", "x", "" };
        static const char *const strs[] = { "ExampleDriver", "TetherResources", "ExampleDevice", "", "\xff\xfe" };
        int n = (int)rnd(3) + (chance(90) ? 1 : 0);
        for (int i = 0; i < n; i++) {
                const char *k = keys[rnd(6)];
                if (chance(70))
                        tether_value_dict_set_string(d, k, strs[rnd(5)]);
                else if (chance(50))
                        tether_value_dict_set_uint(d, k, rnd64(), 64);
                else
                        tether_value_dict_set_bool(d, k, rnd(2));
        }
        wire_put_value(m, d);
        tether_value_unref(d);
}

/* Property writes the driver must refuse (see the top of the file). */
static void put_bad_properties(wire_msg *m)
{
        tether_value *d = NULL;
        if (tether_value_new_dict(&d) != TETHER_SUCCESS)
                return;
        switch (rnd(6)) {
        case 0:
                tether_value_dict_set_string(d, EXAMPLE_PROP_LOCKED, "yes"); /* not a bool */
                break;
        case 1:
                tether_value_dict_set_uint(d, EXAMPLE_PROP_BAUD_RATE, 1 + rnd(299), 32); /* not a standard rate */
                break;
        case 2:
                tether_value_dict_set_string(d, EXAMPLE_PROP_GREETING, ""); /* empty */
                break;
        case 3:
                tether_value_dict_set_string(d, "Model", "mine"); /* not writable */
                break;
        case 4:
                /* A good key then a bad one: the whole write is refused. */
                tether_value_dict_set_string(d, EXAMPLE_PROP_GREETING, "fuzz");
                tether_value_dict_set_uint(d, "NoSuchKey", rnd64(), 64);
                break;
        default:
                tether_value_dict_set_bool(d, EXAMPLE_PROP_HOLD_DEVICE_START, rnd(2));
                tether_value_dict_set_string(d, EXAMPLE_PROP_BAUD_RATE, "fast");
                break;
        }
        wire_put_value(m, d);
        tether_value_unref(d);
}

static void build_session_request(wire_msg *m)
{
        uint16_t type = (uint16_t)(chance(95) ? 1 + rnd(11) : rnd(0x10000));
        wire_msg_init(m, type, raw_serial(), 0);
        switch (type) {
        case WIRE_HELLO:
                wire_put_u32(m, chance(80) ? 64 : chance(50) ? 32 : rnd(100));
                wire_put_u32(m, chance(90) ? 0 : 1);
                break;
        case WIRE_GET_ENTRY:
                wire_put_u64(m, some_id());
                break;
        case WIRE_GET_PROPERTY: {
                static const char *const keys[] = { "", "Model", EXAMPLE_PROP_BAUD_RATE, "nope", "IOClass" };
                wire_put_u64(m, some_id());
                const char *k = keys[rnd(5)];
                wire_put_bytes(m, k, strlen(k));
                break;
        }
        case WIRE_SET_PROPERTIES:
                wire_put_u64(m, chance(80) ? svc_id : some_id());
                if (chance(80))
                        put_bad_properties(m);
                else
                        put_random_bytes(m, rnd(32));
                break;
        case WIRE_GET_MATCHING:
                if (chance(85))
                        put_value(m);
                else
                        put_random_bytes(m, rnd(64));
                break;
        case WIRE_LOOKUP_PATH: {
                static const char *const paths[] = { "/", "TetherResources", "/TetherResources/ExampleDriver",
                                                     "IOService:/", "" };
                const char *p = paths[rnd(5)];
                wire_put_bytes(m, p, strlen(p));
                break;
        }
        case WIRE_OPEN:
                wire_put_u64(m, chance(85) ? svc_id : some_id());
                wire_put_u32(m, chance(80) ? rnd(2) : rnd(100));
                wire_put_u32(m, chance(90) ? 0 : rnd(4));
                break;
        case WIRE_PORT_CREATE:
                break;
        case WIRE_ADD_NOTIFICATION:
                wire_put_u64(m, n_ports && chance(80) ? ports[rnd((uint32_t)n_ports)] : rnd64());
                wire_put_u32(m, chance(90) ? 1 + rnd(4) : rnd(100));
                wire_put_u32(m, 0);
                wire_put_u64(m, rnd64());
                put_value(m);
                break;
        case WIRE_REMOVE_NOTIFICATION:
                wire_put_u64(m, rnd(100));
                break;
        case WIRE_PROBE_ATTACH:
                wire_put_u32(m, rnd(4));
                wire_put_u32(m, rnd(70000));
                wire_put_u64(m, some_id());
                wire_put_u32(m, 0);
                wire_put_u32(m, 0xffffffffu);
                break;
        default:
                put_random_bytes(m, rnd(40));
                break;
        }
}

/* A CALL the example driver might take, or nearly. */
static void build_call(wire_msg *m, bool legacy)
{
        wire_call c = { 0 };
        uint8_t inline_in[256];
        for (size_t i = 0; i < sizeof(inline_in); i++)
                inline_in[i] = (uint8_t)rnd64();
        c.selector = legacy ? rnd(EXAMPLE_LEGACY_SELECTOR_COUNT + 1) : rnd(EXAMPLE_SELECTOR_COUNT + 1);
        c.scalar_in_count = rnd(4);
        c.scalar_out_count = rnd(5);
        for (int i = 0; i < 16; i++)
                c.scalars[i] = rnd(3) ? rnd(4096) : rnd64();
        if (!legacy) {
                switch (c.selector) {
                case EXAMPLE_SLEEP:
                        c.scalars[0] = rnd(5); /* a long sleep stalls the loop for everyone, by design */
                        c.scalar_in_count = 1;
                        break;
                case EXAMPLE_DELAYED_ADD:
                        c.scalar_in_count = 3;
                        c.scalars[2] = rnd(300);
                        c.flags |= chance(90) ? WIRE_CALL_ASYNC : 0;
                        break;
                case EXAMPLE_STREAM:
                        /* Short or long, slow or as fast as the driver can. */
                        c.scalar_in_count = 2;
                        c.scalars[0] = chance(80) ? 1 + rnd(300) : rnd64() % (EXAMPLE_MAX_STREAM_COUNT + 2);
                        c.scalars[1] = chance(50) ? 0 : rnd(50);
                        c.flags |= chance(95) ? WIRE_CALL_ASYNC : 0;
                        break;
                case EXAMPLE_FILL_MEMORY:
                case EXAMPLE_ACQUIRE:
                        c.scalars[0] = rnd(3);
                        c.scalars[1] = rnd(256);
                        break;
                case EXAMPLE_MY_METHOD:
                        c.scalars[1] = rnd(5000);
                        break;
                default:
                        break;
                }
        }
        if (chance(30)) {
                c.struct_in_size = rnd(sizeof(inline_in) + 1);
                c.struct_in = inline_in;
        }
        if (chance(30))
                c.struct_out_size = rnd(TETHER_MAX_INLINE_STRUCT + 1);
        if (chance(10)) {
                c.flags |= WIRE_CALL_OOL_IN;
                c.struct_in_size = chance(50) ? rnd(1u << 20) : rnd64() & 0x7fffffff;
        }
        if (chance(10)) {
                c.flags |= WIRE_CALL_OOL_OUT;
                c.struct_out_size = chance(50) ? rnd(1u << 20) : rnd64() & 0x7fffffff;
        }
        if (chance(5))
                c.flags |= WIRE_CALL_ASYNC;
        if (c.flags & WIRE_CALL_ASYNC) {
                c.async_ref[0] = n_ports && chance(80) ? ports[rnd((uint32_t)n_ports)] : rnd64();
                /* Now and then a token still open: the same name twice. */
                c.async_ref[1] = n_refs && chance(10) ? recent_refs[rnd(n_refs < 16 ? n_refs : 16)][1] : rnd64();
                recent_refs[n_refs % 16][0] = c.async_ref[0];
                recent_refs[n_refs % 16][1] = c.async_ref[1];
                n_refs++;
        }
        raw_call_msg(m, &c);
        st.calls++;
}

static void build_conn_request(wire_msg *m, bool legacy, fdset *f)
{
        switch (rnd(10)) {
        case 0:
                wire_msg_init(m, WIRE_SET_BUFFER, raw_serial(), 0);
                wire_put_u32(m, chance(90) ? rnd(2) : rnd64());
                wire_put_u32(m, chance(90) ? 0 : 1);
                if (chance(90)) {
                        f->n = 0;
                        fdset_add_new(f);
                }
                break;
        case 1:
                wire_msg_init(m, WIRE_MAP_MEMORY, raw_serial(), 0);
                wire_put_u32(m, chance(90) ? rnd(2) : rnd64());
                wire_put_u32(m, chance(90) ? rnd(2) : rnd64());
                break;
        case 2:
                if (chance(30)) {
                        wire_msg_init(m, WIRE_CLOSE, raw_serial(), 0);
                        break;
                }
                if (chance(50)) {
                        /* A cancel of a reference it opened (maybe on
                         * another connection, maybe ended), or of none. */
                        wire_msg_init(m, WIRE_ASYNC_CANCEL, raw_serial(), 0);
                        unsigned k = n_refs ? rnd(n_refs < 16 ? n_refs : 16) : 0;
                        wire_put_u64(m, n_refs && chance(90) ? recent_refs[k][0] : rnd64());
                        if (chance(95))
                                wire_put_u64(m, n_refs && chance(90) ? recent_refs[k][1] : rnd64());
                        break;
                }
                /* fall through */
        case 3:
                if (chance(50)) { /* data queues: a map naming any port, a serviced nobody asked for */
                        wire_msg_init(m, WIRE_DATA_QUEUE_MAP, raw_serial(), 0);
                        wire_put_u32(m, chance(80) ? rnd(9) : (uint32_t)rnd64());
                        wire_put_u32(m, chance(90) ? 0 : 1);
                        wire_put_u64(m, n_ports && chance(70) ? ports[rnd((uint32_t)n_ports)] : rnd64());
                        wire_put_u64(m, rnd64());
                        break;
                }
                if (chance(50)) {
                        wire_msg_init(m, WIRE_DATA_QUEUE_SERVICED, raw_serial(), 0);
                        wire_put_u32(m, chance(80) ? rnd(9) : (uint32_t)rnd64());
                        wire_put_u32(m, chance(90) ? 0 : 1);
                        break;
                }
                /* fall through */
        default:
                build_call(m, legacy);
                break;
        }
}

/* ---- mutations ---- */

static void mutate(wire_msg *m)
{
        wire_msg_finish(m);
        st.mutated++;
        switch (rnd(7)) {
        case 0: /* truncated; the size field still says the whole */
                m->len = rnd((uint32_t)m->len);
                return;
        case 1: /* bytes flipped anywhere, the header included */
                for (int i = 1 + (int)rnd(8); i > 0; i--)
                        m->buf[rnd((uint32_t)m->len)] ^= (uint8_t)(1u << rnd(8));
                return;
        case 2: {
                uint32_t size = chance(50) ? (uint32_t)m->len + rnd(9) - 4 : (uint32_t)rnd64();
                memcpy(m->buf + offsetof(wire_header, size), &size, 4);
                return;
        }
        case 3: {
                uint16_t v = (uint16_t)rnd64();
                memcpy(m->buf + offsetof(wire_header, version), &v, 2);
                return;
        }
        case 4: {
                uint16_t t = chance(50) ? (uint16_t)(rnd64() | WIRE_REPLY_FLAG) : (uint16_t)rnd(100);
                memcpy(m->buf + offsetof(wire_header, type), &t, 2);
                return;
        }
        case 5: { /* extra bytes after a body tetherd should read exactly */
                size_t extra = 1 + rnd(64);
                if (m->len + extra <= sizeof(m->buf)) {
                        for (size_t i = 0; i < extra; i++)
                                m->buf[m->len + i] = (uint8_t)rnd64();
                        m->len += extra;
                        uint32_t size = (uint32_t)m->len;
                        memcpy(m->buf + offsetof(wire_header, size), &size, 4);
                }
                return;
        }
        default: { /* a lying result field, as if we were tetherd */
                int32_t res = (int32_t)rnd64();
                memcpy(m->buf + offsetof(wire_header, result), &res, 4);
                return;
        }
        }
}

static void send_on(int i, const void *buf, size_t len, fdset *f)
{
        int e = raw_send(pool[i].fd, buf, len, f ? f->fd : NULL, f ? f->n : 0, true);
        if (e == 0) {
                st.sent++;
                st.fds_out += f ? f->n : 0;
        } else {
                st.send_errors++;
        }
        if (f)
                fdset_close(f);
        if (e == -EPIPE || e == -ECONNRESET || e == -ENOTCONN)
                pool_drop(i);
}

/* ---- actions ---- */

static void new_session(void)
{
        if (pool_count(K_SESSION) >= kind_max[K_SESSION])
                pool_drop(pick(K_SESSION)); /* the oldest way out: hang up on one */
        int fd = raw_connect(sock_path, 500);
        st.connects++;
        if (fd < 0)
                return;
        if (chance(85)) {
                wire_msg m;
                wire_msg_init(&m, WIRE_HELLO, raw_serial(), 0);
                wire_put_u32(&m, 64);
                wire_put_u32(&m, 0);
                raw_send_msg(fd, &m, NULL, 0, true);
        }
        pool_add(fd, K_SESSION, false);
}

static void act(void)
{
        static uint8_t junk[WIRE_MAX_MESSAGE + 256];
        wire_msg m;
        fdset f = { .n = 0 };
        uint32_t r = rnd(100);
        if (n_pool == 0 || r < 2) {
                new_session();
                return;
        }
        /* Connections have the most to get wrong: pick them half the time. */
        int i = chance(50) && pool_count(K_CONN) ? pick(K_CONN) : pick(-1);
        if (r < 12) { /* a connection or a port, from whichever session */
                int s = pick(K_SESSION);
                if (s < 0)
                        return;
                if (chance(70))
                        raw_open_msg(&m, svc_id, rnd(2), 0);
                else
                        wire_msg_init(&m, WIRE_PORT_CREATE, raw_serial(), 0);
                wire_msg_finish(&m);
                send_on(s, m.buf, m.len, NULL);
                return;
        }
        if (r < 40) { /* a request that might be valid */
                if (pool[i].kind == K_CONN) {
                        build_conn_request(&m, pool[i].legacy, &f);
                        st.conn_reqs++;
                } else {
                        build_session_request(&m);
                        st.session_reqs++;
                }
                wire_msg_finish(&m);
                send_on(i, m.buf, m.len, &f);
                return;
        }
        if (r < 55) { /* the same, damaged */
                if (chance(50))
                        build_conn_request(&m, chance(30), &f);
                else
                        build_session_request(&m);
                mutate(&m);
                send_on(i, m.buf, m.len, &f);
                return;
        }
        if (r < 60) { /* noise: nothing, a bare header, random bytes, too many bytes */
                size_t len;
                switch (rnd(4)) {
                case 0:
                        len = 0;
                        break;
                case 1:
                        len = WIRE_HEADER_SIZE;
                        break;
                case 2:
                        len = rnd(300);
                        break;
                default:
                        len = chance(50) ? WIRE_MAX_MESSAGE + 1 + rnd(200) : WIRE_MAX_MESSAGE - rnd(16);
                        break;
                }
                for (size_t k = 0; k < len && k < 512; k++)
                        junk[k] = (uint8_t)rnd64();
                if (len >= WIRE_HEADER_SIZE && chance(50)) {
                        wire_header h = { .type = (uint16_t)rnd(70), .version = WIRE_VERSION, .serial = raw_serial(),
                                          .size = (uint32_t)len };
                        memcpy(junk, &h, sizeof(h));
                }
                st.random++;
                send_on(i, junk, len, NULL);
                return;
        }
        if (r < 66) { /* fds nobody asked for, on anything */
                if (pool[i].kind == K_CONN && chance(50))
                        build_conn_request(&m, pool[i].legacy, &f);
                else
                        build_session_request(&m);
                fdset_close(&f);
                fdset_fill(&f, chance(85) ? 1 + (int)rnd(3) : 1 + (int)rnd(RAW_MAX_FDS));
                wire_msg_finish(&m);
                st.with_fds++;
                send_on(i, m.buf, m.len, &f);
                return;
        }
        if (r < 88) { /* read some replies; sometimes leave them be */
                drain(i, 1 + (int)rnd(40));
                return;
        }
        if (r < 94) { /* hang up abruptly */
                st.closes++;
                if (chance(15))
                        shutdown(pool[i].fd, chance(50) ? SHUT_WR : SHUT_RD);
                else
                        pool_drop(i);
                return;
        }
        if (r < 97) { /* a burst of valid calls on one connection, unread */
                int c = pick(K_CONN);
                for (int k = 0; c >= 0 && k < 1 + (int)rnd(100); k++) {
                        build_call(&m, pool[c].legacy);
                        wire_msg_finish(&m);
                        if (raw_send(pool[c].fd, m.buf, m.len, NULL, 0, true) < 0)
                                break;
                        st.sent++;
                }
                return;
        }
        if (r < 99) { /* every reply waiting everywhere */
                for (int k = n_pool - 1; k >= 0; k--)
                        drain(k, 256);
                return;
        }
        /* start over */
        while (n_pool)
                pool_drop(n_pool - 1);
}

static long arg(int argc, char **argv, const char *key, long def, long lo, long hi)
{
        size_t k = strlen(key);
        for (int i = 2; i < argc; i++) {
                if (!strncmp(argv[i], key, k) && argv[i][k] == '=') {
                        long v = strtol(argv[i] + k + 1, NULL, 0);
                        return v < lo ? lo : v > hi ? hi : v;
                }
        }
        return def;
}

int main(int argc, char **argv)
{
        if (argc < 2) {
                fprintf(stderr, "usage: fuzz-client SOCKET [seed=N] [seconds=S] [ops=N]\n");
                return 2;
        }
        sock_path = argv[1];
        uint64_t seed = (uint64_t)arg(argc, argv, "seed", 1, 0, 0x7fffffffffffffffL);
        long seconds = arg(argc, argv, "seconds", 20, 1, 3600);
        long max_ops = arg(argc, argv, "ops", 50000000, 1, 1000000000);
        /* Each action's waits are bounded; this bounds the whole, whatever
         * tetherd does (SIGALRM ends us). */
        alarm((unsigned)seconds + 60);
        printf("seed %llu\npid %d\nuid %d\n", (unsigned long long)seed, (int)getpid(), (int)getuid());
        fflush(stdout);
        seed_rng(seed);

        /* Learn the ids a valid request needs, as any client would. */
        int s = raw_connect(sock_path, 2000);
        if (s < 0 || raw_hello(s, &R, 3000) != TETHER_SUCCESS) {
                printf("no session\n");
                return 1;
        }
        memcpy(&root_id, R.body + 8, 8);
        if (raw_find(s, "ExampleDriver", &svc_id, &R, 3000) != TETHER_SUCCESS) {
                printf("no ExampleDriver\n");
                return 1;
        }
        pool_add(s, K_SESSION, false);

        uint64_t deadline = raw_now_ms() + (uint64_t)seconds * 1000u;
        for (st.ops = 0; st.ops < max_ops; st.ops++) {
                if (!(st.ops & 63) && raw_now_ms() >= deadline)
                        break;
                act();
                /* Keep reading now and then, so that the pool is not only
                 * sockets tetherd has given up on. */
                if (n_pool && chance(40))
                        drain(pick(-1), 4);
        }
        printf("ops %ld\nsent %ld\nsend_errors %ld\nreceived %ld\nunsolicited %ld\nerrors %ld\neof %ld\n"
               "fds_in %ld\nfds_out %ld\nconnects %ld\ncloses %ld\nmutated %ld\nrandom %ld\nwith_fds %ld\n"
               "calls %ld\nsession_requests %ld\nconnection_requests %ld\nseed %llu\n",
               st.ops, st.sent, st.send_errors, st.received, st.unsolicited, st.errors, st.eof, st.fds_in,
               st.fds_out, st.connects, st.closes, st.mutated, st.random, st.with_fds, st.calls, st.session_reqs,
               st.conn_reqs, (unsigned long long)seed);
        fflush(stdout);
        _exit(0);
}
