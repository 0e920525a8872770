/* SPDX-License-Identifier: MIT */
/*
 * tether-abi-client: one client program, built for x86_64 and for i386, run
 * against the same 64-bit tetherd and ExampleDriver (tests/client32). It
 * checks every answer itself, and prints each on a line of its own in a
 * form that does not depend on the word size, so the test also compares the
 * two builds' output line for line: a 32-bit client must get what a 64-bit
 * one gets. Only the "task:" line differs (the word size init_with_task
 * saw), and the test expects that.
 *
 *   tether-abi-client SOCKET
 *
 * Exit status 0 if every check passed, 1 if one failed (each failure is a
 * "FAIL:" line on stderr), 2 if tetherd or its ExampleDriver is not there.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tether/tether.h>

#include "example/example.h"

static int failures;

#define CHECK(cond, ...)                                                                  \
        do {                                                                              \
                if (!(cond)) {                                                            \
                        fprintf(stderr, "FAIL: %s:%d: %s: ", __FILE__, __LINE__, #cond); \
                        fprintf(stderr, __VA_ARGS__);                                     \
                        fputc('\n', stderr);                                              \
                        failures++;                                                       \
                }                                                                         \
        } while (0)

/* CHECK for a call's result, naming it when it is not the one expected. */
#define CHECK_RET(r, want, what)                                                                 \
        CHECK((r) == (want), "%s: %s, not %s", what, tether_ret_name(r), tether_ret_name(want))

/* A hash of bytes (FNV-1a, 64-bit), so a megabyte prints as one number. */
static uint64_t fnv1a(const void *p, size_t n)
{
        const uint8_t *b = p;
        uint64_t h = 0xcbf29ce484222325u;
        for (size_t i = 0; i < n; i++)
                h = (h ^ b[i]) * 0x100000001b3u;
        return h;
}

/* ---- the new KPI (tether_method_dispatch): 64-bit scalars ---- */

static void new_kpi_scalars(tether_connect *c)
{
        /* Each addend has bits in both halves, and so has the sum: a client
         * that passed a scalar through a long, a size_t or a pointer on
         * i386 would lose the top half. */
        const uint64_t pairs[][2] = {
                { 0x8000000000000001u, 0x7fffffff00000000u },
                { 0xffffffffffffffffu, 2u },                 /* wraps, as uint64_t */
                { 0x00000001ffffffffu, 0x00000000ffffffffu }, /* a carry into the top half */
                { 0xdeadbeef00000000u, 0x00000000cafef00du },
        };
        for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
                uint64_t out[2] = { 0x5555555555555555u, 0x5555555555555555u };
                uint32_t n = 1;
                tether_ret_t r = tether_call_scalar_method(c, EXAMPLE_ADD, pairs[i], 2, out, &n);
                CHECK_RET(r, TETHER_SUCCESS, "add");
                CHECK(n == 1 && out[0] == pairs[i][0] + pairs[i][1] && out[1] == 0x5555555555555555u,
                      "add %#" PRIx64 " + %#" PRIx64 " = %#" PRIx64 " (%u out)", pairs[i][0], pairs[i][1], out[0], n);
                printf("new add: %#018" PRIx64 " + %#018" PRIx64 " = %#018" PRIx64 "\n", pairs[i][0], pairs[i][1],
                       out[0]);
        }

        /* Sixteen scalars in, each with its top bit set. */
        uint64_t in[16], want = 0, sum = 0;
        for (unsigned i = 0; i < 16; i++) {
                in[i] = (0x8000000000000000u | ((uint64_t)i << 32)) + i;
                want += in[i];
        }
        uint32_t n = 1;
        tether_ret_t r = tether_call_scalar_method(c, EXAMPLE_SUM, in, 16, &sum, &n);
        CHECK_RET(r, TETHER_SUCCESS, "sum");
        CHECK(n == 1 && sum == want, "sum of 16 = %#" PRIx64 ", want %#" PRIx64, sum, want);
        printf("new sum16: %#018" PRIx64 "\n", sum);

        /* MyMethod's second scalar is a byte count: with a top half it is a
         * count no buffer has, not 8 (the legacy KPI below cuts it to 8). */
        uint64_t my[2] = { 0x00000001000000f0u, 0x0000000100000008u };
        uint8_t buf[64];
        size_t size = sizeof(buf);
        r = tether_call_method(c, EXAMPLE_MY_METHOD, my, 2, NULL, 0, NULL, NULL, buf, &size);
        CHECK_RET(r, TETHER_ERR_NO_SPACE, "myMethod with a 33-bit count");
        printf("new myMethod(%#" PRIx64 ", %#" PRIx64 "): %s\n", my[0], my[1], tether_ret_name(r));
        my[1] = 8;
        size = sizeof(buf);
        r = tether_call_method(c, EXAMPLE_MY_METHOD, my, 2, NULL, 0, NULL, NULL, buf, &size);
        CHECK_RET(r, TETHER_SUCCESS, "myMethod");
        CHECK(size == 8 && buf[0] == 0xf0 && buf[7] == 0xf7, "myMethod: %zu bytes, %02x..%02x", size, buf[0], buf[7]);
        printf("new myMethod(%#" PRIx64 ", 8): %zu bytes", my[0], size);
        for (size_t i = 0; i < size; i++)
                printf(" %02x", buf[i]);
        printf("\n");
}

/* ---- struct input and output: inline, and out of line (shared memory) ---- */

static void new_kpi_structs(tether_connect *c)
{
        /* 4096 bytes travel in the message; 4097 and more through the
         * connection's shared buffers (memfds the client maps). */
        const size_t sizes[] = { 0, 1, 4096, 4097, 256u << 10 };
        size_t big = sizes[sizeof(sizes) / sizeof(sizes[0]) - 1];
        uint8_t *in = malloc(big), *out = malloc(big);
        if (!in || !out) {
                CHECK(0, "out of memory");
                free(in);
                free(out);
                return;
        }
        for (size_t i = 0; i < big; i++)
                in[i] = (uint8_t)(i * 131u + (i >> 9));
        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
                size_t n = sizes[k], got = big;
                memset(out, 0, big);
                tether_ret_t r = tether_call_struct_method(c, EXAMPLE_ECHO, in, n, out, &got);
                CHECK_RET(r, TETHER_SUCCESS, "echo");
                CHECK(got == n && !memcmp(in, out, n), "echo of %zu bytes came back as %zu", n, got);
                printf("new echo %zu: %zu bytes, fnv %016" PRIx64 "\n", n, got, fnv1a(out, got));
        }
        free(in);
        free(out);

        /* A struct output of 1 MiB, written by the driver straight into the
         * connection's shared output buffer. */
        size_t n = 1u << 20, got = n;
        uint8_t *buf = malloc(n);
        tether_ret_t r = buf ? tether_call_struct_method(c, EXAMPLE_PRODUCE, NULL, 0, buf, &got) : TETHER_ERR_NO_MEMORY;
        CHECK_RET(r, TETHER_SUCCESS, "produce");
        size_t bad = 0;
        for (size_t i = 0; r == TETHER_SUCCESS && i < got; i++)
                bad += buf[i] != example_sample(i);
        CHECK(got == n && bad == 0, "produce: %zu bytes, %zu wrong", got, bad);
        printf("new produce 1 MiB out of line: %zu bytes, fnv %016" PRIx64 "\n", got, buf ? fnv1a(buf, got) : 0);
        free(buf);
}

/* ---- memory the driver shares (clientMemoryForType / tether_map_memory) ---- */

static void new_kpi_memory(tether_connect *c)
{
        void *addr = NULL;
        size_t size = 0;
        tether_ret_t r = tether_map_memory(c, EXAMPLE_MEMORY_BUFFER, 0, &addr, &size);
        CHECK_RET(r, TETHER_SUCCESS, "map the buffer");
        if (r != TETHER_SUCCESS)
                return;
        CHECK(size == EXAMPLE_BUFFER_SIZE, "buffer of %zu bytes", size);
        printf("map buffer: %zu MiB\n", size >> 20);

        /* The driver copies its samples into the buffer: the struct output
         * of a call, read in place. */
        const size_t want = 3u << 20;
        uint64_t n = want;
        r = tether_call_scalar_method(c, EXAMPLE_ACQUIRE, &n, 1, NULL, NULL);
        CHECK_RET(r, TETHER_SUCCESS, "acquire");
        const uint8_t *mem = addr;
        size_t bad = 0;
        for (size_t i = 0; i < want; i++)
                bad += mem[i] != example_sample(i);
        CHECK(bad == 0, "acquire: %zu of %zu bytes wrong", bad, want);
        printf("acquire 3 MiB into the buffer: fnv %016" PRIx64 "\n", fnv1a(mem, want));

        uint64_t fill[2] = { EXAMPLE_MEMORY_BUFFER, 0x1ffffffffffffa5u }; /* the byte is the low 8 bits */
        r = tether_call_scalar_method(c, EXAMPLE_FILL_MEMORY, fill, 2, NULL, NULL);
        CHECK_RET(r, TETHER_SUCCESS, "fillMemory");
        CHECK(mem[0] == 0xa5 && mem[size / 2] == 0xa5 && mem[size - 1] == 0xa5, "fill: %02x %02x %02x", mem[0],
              mem[size / 2], mem[size - 1]);
        printf("fill the buffer with %#" PRIx64 ": first %02x, last %02x\n", fill[1], mem[0], mem[size - 1]);

        /* The status page, read-only: the driver writes the connection's
         * call counter there, a uint64_t. */
        void *status = NULL;
        size_t status_size = 0;
        r = tether_map_memory(c, EXAMPLE_MEMORY_STATUS, 0, &status, &status_size);
        CHECK_RET(r, TETHER_SUCCESS, "map the status page");
        uint64_t count = 0, seen = 0;
        uint32_t one = 1;
        if (r == TETHER_SUCCESS)
                r = tether_call_scalar_method(c, EXAMPLE_COUNT, NULL, 0, &count, &one);
        CHECK_RET(r, TETHER_SUCCESS, "count");
        if (status)
                memcpy(&seen, status, sizeof(seen));
        CHECK(status_size == 4096 && count && seen == count, "status page %zu bytes: %" PRIu64 ", count %" PRIu64,
              status_size, seen, count);
        printf("status page: %zu bytes, counter %" PRIu64 " = count %" PRIu64 "\n", status_size, seen, count);

        CHECK_RET(tether_unmap_memory(c, EXAMPLE_MEMORY_BUFFER, addr), TETHER_SUCCESS, "unmap");
        CHECK_RET(tether_unmap_memory(c, EXAMPLE_MEMORY_BUFFER, addr), TETHER_ERR_NOT_FOUND, "unmap again");
}

/* ---- async results ---- */

typedef struct results {
        unsigned n;
        tether_ret_t result[8];
        uint32_t count[8];
        uint64_t args[8][4];
} results;

static void on_result(void *refcon, tether_ret_t result, const uint64_t *args, uint32_t count)
{
        results *res = refcon; /* a 32-bit pointer on i386, carried as a token */
        if (res->n < 8) {
                res->result[res->n] = result;
                res->count[res->n] = count;
                for (uint32_t i = 0; i < count && i < 4; i++)
                        res->args[res->n][i] = args[i];
        }
        res->n++;
}

/* Dispatches port until res has `want` results, or 5 s pass. */
static void wait_results(tether_notification_port *port, results *res, unsigned want)
{
        struct pollfd pfd = { .fd = tether_notification_port_get_fd(port), .events = POLLIN };
        for (int i = 0; i < 100 && res->n < want; i++) {
                if (poll(&pfd, 1, 50) > 0)
                        tether_notification_port_dispatch(port);
        }
}

static void new_kpi_async(tether_session *s, tether_connect *c)
{
        tether_notification_port *port = NULL;
        tether_ret_t r = tether_notification_port_create(s, &port);
        CHECK_RET(r, TETHER_SUCCESS, "port");
        if (r != TETHER_SUCCESS)
                return;

        results once = { 0 };
        uint64_t in[3] = { 0x7fffffff00000001u, 0x00000001ffffffffu, 20 };
        r = tether_call_async_method(c, EXAMPLE_DELAYED_ADD, port, on_result, &once, in, 3, NULL, 0, NULL, NULL,
                                     NULL, NULL);
        CHECK_RET(r, TETHER_SUCCESS, "delayedAdd");
        wait_results(port, &once, 1);
        CHECK(once.n == 1 && once.result[0] == TETHER_SUCCESS && once.count[0] == 2 &&
                      once.args[0][0] == in[0] + in[1],
              "delayedAdd: %u results, %s, %u args, %#" PRIx64, once.n, tether_ret_name(once.result[0]),
              once.count[0], once.args[0][0]);
        printf("async delayedAdd(%#" PRIx64 ", %#" PRIx64 "): %u result, %s, sum %#018" PRIx64 "\n", in[0], in[1],
               once.n, tether_ret_name(once.result[0]), once.args[0][0]);

        /* A stream: five results on one reference, in order, the last one
         * closing it. */
        results stream = { 0 };
        uint64_t sin[2] = { 5, 2 };
        r = tether_call_async_method(c, EXAMPLE_STREAM, port, on_result, &stream, sin, 2, NULL, 0, NULL, NULL, NULL,
                                     NULL);
        CHECK_RET(r, TETHER_SUCCESS, "stream");
        wait_results(port, &stream, 5);
        int ordered = stream.n == 5;
        for (unsigned i = 0; ordered && i < 5; i++)
                ordered = stream.result[i] == TETHER_SUCCESS && stream.count[i] == EXAMPLE_STREAM_ARGS &&
                          stream.args[i][EXAMPLE_STREAM_SEQ] == i + 1 && stream.args[i][EXAMPLE_STREAM_COUNT] == 5;
        CHECK(ordered, "stream: %u results, not 5 in order", stream.n);
        printf("async stream of 5: %u results, seq", stream.n);
        for (unsigned i = 0; i < stream.n && i < 8; i++)
                printf(" %" PRIu64, stream.args[i][EXAMPLE_STREAM_SEQ]);
        printf("\n");

        /* Async on a method that does not allow it: refused before it runs. */
        results none = { 0 };
        uint64_t add[2] = { 1, 2 }, sum = 0;
        uint32_t one = 1;
        r = tether_call_async_method(c, EXAMPLE_ADD, port, on_result, &none, add, 2, NULL, 0, &sum, &one, NULL,
                                     NULL);
        CHECK_RET(r, TETHER_ERR_UNSUPPORTED, "async add");
        printf("async add: %s\n", tether_ret_name(r));
        tether_notification_port_destroy(port);
}

/* ---- a data queue: a ring in memory both sides map ---- */

typedef struct drained {
        uint64_t items, first, next;
        int in_order;
} drained;

static void new_kpi_data_queue(tether_session *s, tether_connect *c)
{
        const uint64_t type = 7, items = 3000, item_size = 40;
        uint64_t qin[2] = { type, 16384 }, cap = 0;
        uint32_t one = 1;
        tether_ret_t r = tether_call_scalar_method(c, EXAMPLE_QUEUE_CREATE, qin, 2, &cap, &one);
        CHECK_RET(r, TETHER_SUCCESS, "queueCreate");
        tether_notification_port *port = NULL;
        tether_mapped_queue *q = NULL;
        if (r == TETHER_SUCCESS)
                r = tether_notification_port_create(s, &port);
        if (r == TETHER_SUCCESS)
                r = tether_data_queue_map(c, (uint32_t)type, port, NULL, NULL, &q);
        CHECK_RET(r, TETHER_SUCCESS, "map the queue");
        /* Three times what the ring holds: the driver is refused, waits to
         * be told the client drained it, and goes on. */
        uint64_t pin[4] = { type, items, item_size, 0 }, pout[2] = { 0 };
        uint32_t two = 2;
        if (r == TETHER_SUCCESS)
                r = tether_call_scalar_method(c, EXAMPLE_QUEUE_PRODUCE, pin, 4, pout, &two);
        CHECK_RET(r, TETHER_SUCCESS, "queueProduce");
        drained d = { .in_order = 1 };
        uint8_t item[256];
        while (r == TETHER_SUCCESS && d.items < items) {
                size_t len = 0;
                tether_ret_t e = tether_data_queue_dequeue(q, item, sizeof(item), &len);
                if (e == TETHER_ERR_UNDERRUN) {
                        e = tether_data_queue_wait(q, 5000);
                        if (e != TETHER_SUCCESS) {
                                CHECK_RET(e, TETHER_SUCCESS, "queue wait");
                                break;
                        }
                        continue;
                }
                if (e != TETHER_SUCCESS) {
                        CHECK_RET(e, TETHER_SUCCESS, "dequeue");
                        break;
                }
                uint64_t seq = 0;
                for (int i = 0; i < 8; i++)
                        seq |= (uint64_t)item[i] << (8 * i);
                if (!d.items)
                        d.first = d.next = seq;
                d.in_order &= len == item_size && seq == d.next && example_item_check(item, seq, len);
                d.next = seq + 1;
                d.items++;
        }
        CHECK(d.items == items && d.in_order, "queue: %" PRIu64 " items, in order %d", d.items, d.in_order);
        printf("data queue of %" PRIu64 " bytes: %" PRIu64 " items of %" PRIu64 " bytes, in order: %s\n", cap, d.items,
               item_size, d.in_order ? "yes" : "no");
        if (q)
                tether_data_queue_unmap(q);
        tether_notification_port_destroy(port);
}

/* ---- the legacy KPI (tether_external_method): 32-bit scalars ---- */

static void legacy_kpi(tether_connect *l)
{
        /* The top halves are dropped going in, as I/O Kit does; the 32-bit
         * result comes out zero-extended, never sign-extended, even with
         * its bit 31 set. */
        const uint64_t pairs[][2] = {
                { 0xffffffff80000000u, 0x000000017fffffffu }, /* 0x80000000 + 0x7fffffff */
                { 0x1234567800000005u, 0x8765432100000003u }, /* 5 + 3 */
                { 0x00000000ffffffffu, 0xffffffff00000002u }, /* wraps at 32 bits: 1 */
        };
        for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
                uint64_t out = 0x5555555555555555u;
                uint32_t n = 1;
                tether_ret_t r = tether_call_scalar_method(l, EXAMPLE_LEGACY_ADD, pairs[i], 2, &out, &n);
                uint64_t want = (uint32_t)((uint32_t)pairs[i][0] + (uint32_t)pairs[i][1]);
                CHECK_RET(r, TETHER_SUCCESS, "legacy add");
                CHECK(n == 1 && out == want, "legacy add = %#" PRIx64 ", want %#" PRIx64, out, want);
                printf("legacy add: %#018" PRIx64 " + %#018" PRIx64 " = %#018" PRIx64 "\n", pairs[i][0], pairs[i][1],
                       out);
        }

        uint64_t my[2] = { 0xabcdef0000000010u, 0x0000000100000008u };
        uint8_t buf[64];
        size_t size = sizeof(buf);
        tether_ret_t r = tether_call_method(l, EXAMPLE_LEGACY_MY_METHOD, my, 2, NULL, 0, NULL, NULL, buf, &size);
        CHECK_RET(r, TETHER_SUCCESS, "legacy myMethod");
        CHECK(size == 8 && buf[0] == 0x10 && buf[7] == 0x17, "legacy myMethod: %zu bytes", size);
        printf("legacy myMethod(%#" PRIx64 ", %#" PRIx64 "): %zu bytes", my[0], my[1], size);
        for (size_t i = 0; i < size && i < sizeof(buf); i++)
                printf(" %02x", buf[i]);
        printf("\n");

        /* Structs inline up to 4096 bytes, and past that through the
         * connection's shared buffers, as with the new KPI (where I/O Kit's
         * legacy shims take no memory descriptor: docs/concepts/method-tables.md). */
        const size_t sizes[] = { 4096, 4097, 64u << 10 };
        static uint8_t in[64u << 10], out[64u << 10];
        for (size_t i = 0; i < sizeof(in); i++)
                in[i] = (uint8_t)(i ^ 0x5a ^ (i >> 8));
        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
                memset(out, 0, sizeof(out));
                size = sizeof(out);
                r = tether_call_struct_method(l, EXAMPLE_LEGACY_ECHO, in, sizes[k], out, &size);
                CHECK_RET(r, TETHER_SUCCESS, "legacy echo");
                CHECK(size == sizes[k] && !memcmp(in, out, size), "legacy echo of %zu bytes came back as %zu",
                      sizes[k], size);
                printf("legacy echo %zu: %zu bytes, fnv %016" PRIx64 "\n", sizes[k], size, fnv1a(out, size));
        }

        /* Scalar in (with a top half), struct in; then struct out. */
        const char name[] = "abi-client";
        uint64_t flags = 0xffffffff00000000u;
        r = tether_call_method(l, EXAMPLE_LEGACY_SET_NAME, &flags, 1, name, strlen(name), NULL, NULL, NULL, NULL);
        CHECK_RET(r, TETHER_SUCCESS, "legacy setName");
        char got[64] = { 0 };
        size = sizeof(got) - 1;
        r = tether_call_struct_method(l, EXAMPLE_LEGACY_GET_NAME, NULL, 0, got, &size);
        CHECK_RET(r, TETHER_SUCCESS, "legacy getName");
        CHECK(size == strlen(name) && !memcmp(got, name, size), "legacy getName: \"%s\"", got);
        printf("legacy name: \"%s\"\n", got);

        uint64_t rate = 0;
        uint32_t n = 1;
        r = tether_call_scalar_method(l, EXAMPLE_LEGACY_GET_BAUD_RATE, NULL, 0, &rate, &n);
        CHECK_RET(r, TETHER_SUCCESS, "legacy getBaudRate");
        printf("legacy getBaudRate (on the provider): %" PRIu64 "\n", rate);

        /* Too many scalars for the table: refused before the method runs. */
        uint64_t three[3] = { 1, 2, 3 }, sum = 0;
        n = 1;
        r = tether_call_scalar_method(l, EXAMPLE_LEGACY_ADD, three, 3, &sum, &n);
        CHECK_RET(r, TETHER_ERR_BAD_ARGUMENT, "legacy add with 3 scalars");
        printf("legacy add with 3 scalars: %s\n", tether_ret_name(r));
}

/* ---- properties: CBOR both ways ---- */

static void properties(tether_session *s, uint64_t svc)
{
        tether_value *change = NULL;
        tether_ret_t r = tether_value_new_dict(&change);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_uint(change, EXAMPLE_PROP_BAUD_RATE, 57600, 32);
        if (r == TETHER_SUCCESS)
                r = tether_registry_entry_set_properties(s, svc, change);
        CHECK_RET(r, TETHER_SUCCESS, "set BaudRate");
        char *why = NULL;
        tether_value_dict_set_uint(change, EXAMPLE_PROP_BAUD_RATE, 0xffffffffu, 32);
        r = tether_registry_entry_set_properties_why(s, svc, change, &why);
        CHECK_RET(r, TETHER_ERR_BAD_ARGUMENT, "set BaudRate 0xffffffff");
        printf("set BaudRate 0xffffffff: %s (%s)\n", tether_ret_name(r), why ? why : "");
        free(why);
        tether_value_unref(change);

        tether_value *v = NULL;
        uint64_t rate = 0;
        r = tether_registry_entry_get_property(s, svc, EXAMPLE_PROP_BAUD_RATE, &v);
        if (r == TETHER_SUCCESS)
                r = tether_value_get_uint(v, &rate);
        CHECK(r == TETHER_SUCCESS && rate == 57600 && tether_value_get_bits(v) == 32, "BaudRate %" PRIu64, rate);
        printf("BaudRate: %" PRIu64 " (uint%u)\n", rate, v ? tether_value_get_bits(v) : 0);
        tether_value_unref(v);

        /* The whole table, but for the host's pid (not the same run to run). */
        tether_value *props = NULL;
        char *text = NULL;
        r = tether_registry_entry_get_properties(s, svc, &props);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_remove(props, "TetherHostPID");
        if (r == TETHER_SUCCESS)
                r = tether_value_format(props, &text);
        CHECK_RET(r, TETHER_SUCCESS, "properties");
        printf("properties: %s\n", text ? text : "");
        free(text);
        tether_value_unref(props);
}

/* ---- the registry and notifications: 64-bit ids ---- */

typedef struct seen {
        unsigned n;
        uint32_t type;
        uint64_t id;
} seen;

static void on_service(void *refcon, uint32_t type, uint64_t service_id)
{
        seen *w = refcon;
        w->n++;
        w->type = type;
        w->id = service_id;
}

static void wait_seen(tether_notification_port *port, seen *w)
{
        struct pollfd pfd = { .fd = tether_notification_port_get_fd(port), .events = POLLIN };
        for (int i = 0; i < 100 && !w->n; i++) {
                if (poll(&pfd, 1, 50) > 0)
                        tether_notification_port_dispatch(port);
        }
}

static void registry(tether_session *s, uint64_t svc)
{
        tether_entry_info *info = NULL;
        tether_ret_t r = tether_registry_entry_get_info(s, svc, &info);
        CHECK_RET(r, TETHER_SUCCESS, "entry info");
        if (r == TETHER_SUCCESS) {
                CHECK(info->id == svc && !strcmp(info->class_name, "ExampleDriver") && info->parent_id,
                      "entry %#" PRIx64 " %s", info->id, info->class_name);
                printf("entry %#" PRIx64 ": class %s, path %s, parent %#" PRIx64 ", state %#x\n", info->id,
                       info->class_name, info->path, info->parent_id, info->state);
                uint64_t *kids = NULL;
                size_t n = 0;
                r = tether_registry_entry_get_children(s, info->parent_id, &kids, &n);
                CHECK_RET(r, TETHER_SUCCESS, "children");
                int found = 0;
                for (size_t i = 0; i < n; i++)
                        found |= kids[i] == svc;
                CHECK(found, "%#" PRIx64 " is not among its parent's %zu children", svc, n);
                free(kids);
                uint64_t back = 0;
                r = tether_registry_entry_from_path(s, info->path, &back);
                CHECK(r == TETHER_SUCCESS && back == svc, "from path: %s %#" PRIx64, tether_ret_name(r), back);
        }
        tether_entry_info_free(info);

        /* Matched: the service there already, at once; properties changed:
         * after a write the driver accepts. */
        tether_notification_port *port = NULL;
        tether_value *match = NULL;
        tether_notification *nm = NULL, *np = NULL;
        seen matched = { 0 }, changed = { 0 };
        r = tether_notification_port_create(s, &port);
        if (r == TETHER_SUCCESS)
                r = tether_service_matching("ExampleDriver", &match);
        if (r == TETHER_SUCCESS)
                r = tether_service_add_matching_notification(port, TETHER_NOTIFY_MATCHED, match, on_service, &matched,
                                                             &nm);
        if (r == TETHER_SUCCESS)
                r = tether_service_add_matching_notification(port, TETHER_NOTIFY_PROPERTIES_CHANGED, match, on_service,
                                                             &changed, &np);
        CHECK_RET(r, TETHER_SUCCESS, "notifications");
        if (r == TETHER_SUCCESS)
                wait_seen(port, &matched);
        /* A value of this run's own (a write of what is there already
         * notifies nothing), then one the same for every run, which the
         * properties line shows. */
        tether_value *change = NULL;
        char greeting[32];
        snprintf(greeting, sizeof(greeting), "abi-client %d", (int)getpid());
        if (r == TETHER_SUCCESS)
                r = tether_value_new_dict(&change);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(change, EXAMPLE_PROP_GREETING, greeting);
        if (r == TETHER_SUCCESS)
                r = tether_registry_entry_set_properties(s, svc, change);
        CHECK_RET(r, TETHER_SUCCESS, "set Greeting");
        if (r == TETHER_SUCCESS)
                wait_seen(port, &changed);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(change, EXAMPLE_PROP_GREETING, "hello from abi-client");
        if (r == TETHER_SUCCESS)
                r = tether_registry_entry_set_properties(s, svc, change);
        CHECK_RET(r, TETHER_SUCCESS, "set Greeting again");
        CHECK(matched.n == 1 && matched.type == TETHER_NOTIFY_MATCHED && matched.id == svc, "matched: %u, %#" PRIx64,
              matched.n, matched.id);
        CHECK(changed.n >= 1 && changed.type == TETHER_NOTIFY_PROPERTIES_CHANGED && changed.id == svc,
              "properties changed: %u, %#" PRIx64, changed.n, changed.id);
        printf("notified: matched %#" PRIx64 ", properties changed %#" PRIx64 "\n", matched.id, changed.id);
        tether_value_unref(change);
        tether_value_unref(match);
        tether_notification_remove(nm);
        tether_notification_remove(np);
        tether_notification_port_destroy(port);
}

/* ---- a probe (root only): call, property and async events, decoded ---- */

static tether_ret_t next_event(tether_probe *p, tether_probe_event *e)
{
        struct pollfd pfd = { .fd = tether_probe_get_fd(p), .events = POLLIN };
        tether_ret_t r = TETHER_ERR_NOT_READY;
        for (int i = 0; i < 100 && r == TETHER_ERR_NOT_READY; i++) {
                r = tether_probe_read(p, e);
                if (r == TETHER_ERR_NOT_READY)
                        poll(&pfd, 1, 50);
        }
        return r;
}

static void probe(tether_session *s, tether_connect *c, uint64_t svc)
{
        /* Every process's: an async result sent after its call returned
         * has no caller's pid. This test's tetherd serves this client only. */
        tether_probe_filter f = { .kinds = TETHER_PROBE_CALLS, .service_id = svc, .pid = 0,
                                  .selector = TETHER_PROBE_ANY_SELECTOR };
        tether_probe *p = NULL;
        tether_ret_t r = tether_probe_attach(s, &f, &p);
        if (getuid() != 0) {
                /* Both runs are one user's: both print this. */
                CHECK_RET(r, TETHER_ERR_NOT_PRIVILEGED, "probe as another user");
                printf("probe: %s\n", tether_ret_name(r));
                return;
        }
        CHECK_RET(r, TETHER_SUCCESS, "probe");
        if (r != TETHER_SUCCESS)
                return;

        /* A call. */
        uint64_t in[2] = { 0x8000000000000000u, 1 }, out = 0;
        uint32_t one = 1;
        r = tether_call_scalar_method(c, EXAMPLE_ADD, in, 2, &out, &one);
        CHECK_RET(r, TETHER_SUCCESS, "add under a probe");
        tether_probe_event e;
        r = next_event(p, &e);
        CHECK_RET(r, TETHER_SUCCESS, "probe read");
        CHECK(e.kind == TETHER_PROBE_EVENT_CALL && e.service_id == svc && e.pid == (int32_t)getpid() &&
                      e.selector == EXAMPLE_ADD && e.connection_id == tether_connect_id(c) && e.time_ns &&
                      e.scalar_in == 2 && e.scalar_out == 1 && e.result == TETHER_SUCCESS && !strcmp(e.method, "add"),
              "probe call event: kind %u, service %#" PRIx64 ", pid %d, selector %u, %u in, %u out, %s", e.kind,
              e.service_id, e.pid, e.selector, e.scalar_in, e.scalar_out, e.method);
        printf("probe: call %s(%#018" PRIx64 ", 1), %u scalars in, %u out, %s\n", e.method, in[0], e.scalar_in,
               e.scalar_out, tether_ret_name(e.result));

        /* A property write the driver refuses, with its reason. */
        tether_value *d = NULL;
        r = tether_value_new_dict(&d);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_uint(d, EXAMPLE_PROP_BAUD_RATE, 12345, 32);
        if (r == TETHER_SUCCESS)
                r = tether_registry_entry_set_properties(s, svc, d);
        tether_value_unref(d);
        CHECK_RET(r, TETHER_ERR_BAD_ARGUMENT, "BaudRate 12345 under a probe");
        r = next_event(p, &e);
        CHECK_RET(r, TETHER_SUCCESS, "probe read");
        CHECK(e.kind == TETHER_PROBE_EVENT_PROPERTY && e.service_id == svc && e.pid == (int32_t)getpid() &&
                      e.result == TETHER_ERR_BAD_ARGUMENT && !strcmp(e.keys, EXAMPLE_PROP_BAUD_RATE) && e.reason[0],
              "probe property event: kind %u, %s, keys \"%s\"", e.kind, tether_ret_name(e.result), e.keys);
        printf("probe: property write of %s, %s (%s)\n", e.keys, tether_ret_name(e.result), e.reason);

        /* An async result, delivered, the reference's last. */
        tether_notification_port *port = NULL;
        results once = { 0 };
        uint64_t add[3] = { 0xfffffffe00000000u, 0x00000001ffffffffu, 0 };
        r = tether_notification_port_create(s, &port);
        if (r == TETHER_SUCCESS)
                r = tether_call_async_method(c, EXAMPLE_DELAYED_ADD, port, on_result, &once, add, 3, NULL, 0, NULL,
                                             NULL, NULL, NULL);
        CHECK_RET(r, TETHER_SUCCESS, "delayedAdd under a probe");
        if (r == TETHER_SUCCESS)
                wait_results(port, &once, 1);
        /* The call's own event comes first. */
        r = next_event(p, &e);
        CHECK(r == TETHER_SUCCESS && e.kind == TETHER_PROBE_EVENT_CALL && e.selector == EXAMPLE_DELAYED_ADD &&
                      (e.call_flags & TETHER_PROBE_CALL_ASYNC),
              "probe async call event: %s, kind %u, selector %u", tether_ret_name(r), e.kind, e.selector);
        r = next_event(p, &e);
        CHECK_RET(r, TETHER_SUCCESS, "probe read");
        CHECK(e.kind == TETHER_PROBE_EVENT_ASYNC && e.connection_id == tether_connect_id(c) && e.arg_count == 2 &&
                      e.args[0] == add[0] + add[1] &&
                      e.delivery == TETHER_SUCCESS && (e.async_flags & TETHER_PROBE_ASYNC_LAST),
              "probe async event: kind %u, %u args, %#" PRIx64 ", delivery %s, flags %#x", e.kind, e.arg_count,
              e.args[0], tether_ret_name(e.delivery), e.async_flags);
        printf("probe: async result %#018" PRIx64 ", %u args, delivered %s, last %s\n", e.args[0], e.arg_count,
               tether_ret_name(e.delivery), (e.async_flags & TETHER_PROBE_ASYNC_LAST) ? "yes" : "no");
        tether_notification_port_destroy(port);
        tether_probe_detach(p);
}

/* ---- CBOR: the same bytes decode the same whatever the word size ---- */

static void cbor_lengths(void)
{
        /* 8-byte heads: lengths past 32 bits (more than the input holds:
         * refused), and a length that fits written long (read as meant).
         * libcbor passes lengths on as size_t: on i386, cut to 32 bits. */
        static const struct {
                const char *name, *bytes;
                size_t len;
                tether_ret_t want;
        } cases[] = {
                { "bytes of 2^32+3", "\x5b\x00\x00\x00\x01\x00\x00\x00\x03" "abc", 12, TETHER_ERR_BAD_ARGUMENT },
                { "text of 2^32+3", "\x7b\x00\x00\x00\x01\x00\x00\x00\x03" "abc", 12, TETHER_ERR_BAD_ARGUMENT },
                { "array of 2^32+1", "\x9b\x00\x00\x00\x01\x00\x00\x00\x01\xf5", 10, TETHER_ERR_BAD_ARGUMENT },
                { "map of 2^32+1", "\xbb\x00\x00\x00\x01\x00\x00\x00\x01\x61" "k\xf5", 12, TETHER_ERR_BAD_ARGUMENT },
                { "bytes of 3, long head", "\x5b\x00\x00\x00\x00\x00\x00\x00\x03" "abc", 12, TETHER_SUCCESS },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                tether_value *v = NULL;
                char *text = NULL;
                tether_ret_t r = tether_value_decode(cases[i].bytes, cases[i].len, &v);
                if (r == TETHER_SUCCESS)
                        tether_value_format(v, &text);
                CHECK_RET(r, cases[i].want, cases[i].name);
                printf("cbor %s: %s %s\n", cases[i].name, tether_ret_name(r), text ? text : "");
                free(text);
                tether_value_unref(v);
        }
}

int main(int argc, char **argv)
{
        if (argc != 2) {
                fprintf(stderr, "usage: tether-abi-client SOCKET\n");
                return 2;
        }
        tether_session *s = NULL;
        tether_ret_t r = tether_session_open(argv[1], &s);
        if (r != TETHER_SUCCESS) {
                fprintf(stderr, "tether-abi-client: cannot reach tetherd at %s: %s\n", argv[1], tether_ret_name(r));
                return 2;
        }
        tether_value *match = NULL;
        uint64_t svc = 0;
        r = tether_service_matching("ExampleDriver", &match);
        if (r == TETHER_SUCCESS)
                r = tether_get_matching_service(s, match, &svc);
        tether_value_unref(match);
        if (r != TETHER_SUCCESS) {
                fprintf(stderr, "tether-abi-client: no ExampleDriver: %s\n", tether_ret_name(r));
                return 2;
        }

        tether_connect *c = NULL, *l = NULL;
        r = tether_service_open(s, svc, EXAMPLE_CLIENT, 0, &c);
        CHECK_RET(r, TETHER_SUCCESS, "open");
        tether_ret_t rl = tether_service_open(s, svc, EXAMPLE_CLIENT_LEGACY, 0, &l);
        CHECK_RET(rl, TETHER_SUCCESS, "open legacy");
        if (r != TETHER_SUCCESS || rl != TETHER_SUCCESS)
                return 1;

        /* What init_with_task was told of this process: its word size from
         * the session's HELLO, its ids from the socket. */
        uint64_t who[4] = { 0 };
        uint32_t n = 4;
        r = tether_call_scalar_method(c, EXAMPLE_WHO_AM_I, NULL, 0, who, &n);
        CHECK_RET(r, TETHER_SUCCESS, "whoAmI");
        CHECK(n == 4 && who[0] == (uint64_t)getpid() && who[1] == getuid() && who[2] == getgid() &&
                      who[3] == sizeof(void *) * 8,
              "whoAmI: pid %" PRIu64 " uid %" PRIu64 " gid %" PRIu64 " bits %" PRIu64, who[0], who[1], who[2],
              who[3]);
        printf("task: %" PRIu64 "-bit client\n", who[3]);

        new_kpi_scalars(c);
        new_kpi_structs(c);
        new_kpi_memory(c);
        new_kpi_async(s, c);
        new_kpi_data_queue(s, c);
        cbor_lengths();
        registry(s, svc);
        probe(s, c, svc);
        properties(s, svc); /* first: it sets the BaudRate the legacy KPI reads */
        legacy_kpi(l);

        /* No legacy connection maps memory: the example's legacy user
         * client has no clientMemoryForType. */
        void *addr = NULL;
        r = tether_map_memory(l, EXAMPLE_MEMORY_BUFFER, 0, &addr, NULL);
        CHECK(r != TETHER_SUCCESS, "legacy map succeeded");
        printf("legacy map: %s\n", tether_ret_name(r));

        CHECK_RET(tether_service_close(l), TETHER_SUCCESS, "close legacy");
        CHECK_RET(tether_service_close(c), TETHER_SUCCESS, "close");
        tether_session_close(s);
        if (failures)
                fprintf(stderr, "tether-abi-client: %d checks failed\n", failures);
        return failures ? 1 : 0;
}
