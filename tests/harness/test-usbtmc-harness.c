/* SPDX-License-Identifier: MIT */
/*
 * The generic USBTMC driver (org.tether.usbtmc) under the driver test
 * harness, on a scripted instrument (tests/usbtmc/fake-instrument.c)
 * served over virtual USB from a thread of this test: every method, the
 * properties and their checks, and the bad cases a simulated scope never
 * gives it (an instrument that never answers, answers longer than the
 * buffer, TermChar, no interrupt endpoint, an SRQ storm, an unplug in the
 * middle of a read, no *IDN?).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tether/driver-test.h>
#include <tether/usbtmc-instrument.h>

#include "../usbtmc/fake-instrument.h"
#include "usbtmc/instrument.h"

#ifndef USBTMC_BUNDLE
#error "USBTMC_BUNDLE: the built org.tether.usbtmc.tether folder"
#endif

typedef struct fx {
        tether_test *t;
        tether_test_bundle *b;
        tether_test_nub *nub;
        tether_test_service *svc;
        fake_instrument *dev;
        int dev_fd;             /* the driver's end, until it asks for it */
        tether_session *s;
        tether_connect *a, *b2; /* two connections of one client */
} fx;

static const tether_task user = { .pid = 4242, .uid = 1000, .gid = 1000 };

static tether_ret_t give_device(void *ctx, tether_test_nub *nub, tether_device_kind *kind, int *fd)
{
        fx *f = ctx;
        if (f->dev_fd < 0)
                return TETHER_ERR_NO_RESOURCES; /* one file at a time, as tetherd */
        *kind = TETHER_DEVICE_VUSB;
        *fd = f->dev_fd;
        f->dev_fd = -1;
        return TETHER_SUCCESS;
}

static uint64_t ms_now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

/* The harness, the nub (as tetherd publishes a USB instrument), the fake
 * behind it, the driver started, a session as `user` with two connections. */
static fx *bring_up(const fake_config *cfg, bool with_serial)
{
        fx *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        assert_int_equal(tether_test_new(&f->t), TETHER_SUCCESS);
        assert_int_equal(tether_test_load(f->t, USBTMC_BUNDLE, &f->b), TETHER_SUCCESS);
        tether_value *p = NULL;
        assert_int_equal(tether_value_new_dict(&p), TETHER_SUCCESS);
        tether_value_dict_set_uint(p, "idVendor", cfg->vendor, 16);
        tether_value_dict_set_uint(p, "idProduct", cfg->product, 16);
        tether_value_dict_set_uint(p, "bInterfaceClass", 0xfe, 8);
        tether_value_dict_set_uint(p, "bInterfaceSubClass", 3, 8);
        tether_value_dict_set_uint(p, "bInterfaceProtocol", cfg->bcd_usb488 ? 1 : 0, 8);
        tether_value_dict_set_uint(p, "bInterfaceNumber", cfg->interface, 8);
        if (with_serial && cfg->serial && *cfg->serial)
                tether_value_dict_set_string(p, "USB Serial Number", cfg->serial);
        assert_int_equal(tether_test_nub_new(f->t, "TetherUSBDevice", p, &f->nub), TETHER_SUCCESS);
        tether_value_unref(p);
        assert_int_equal(fake_start(cfg, &f->dev, &f->dev_fd), 0);
        assert_int_equal(tether_test_nub_set_device(f->nub, give_device, f), TETHER_SUCCESS);
        assert_int_equal(tether_test_start(f->b, TMC_CLASS, f->nub, &f->svc), TETHER_SUCCESS);
        assert_int_equal(tether_test_session_open(f->t, &user, &f->s), TETHER_SUCCESS);
        assert_int_equal(tether_service_open(f->s, tether_test_service_id(f->svc), 0, 0, &f->a), TETHER_SUCCESS);
        assert_int_equal(tether_service_open(f->s, tether_test_service_id(f->svc), 0, 0, &f->b2), TETHER_SUCCESS);
        return f;
}

static void tear_down(fx *f)
{
        tether_service_close(f->a);
        tether_service_close(f->b2);
        tether_session_close(f->s);
        tether_test_free(f->t);
        fake_free(f->dev);
        if (f->dev_fd >= 0)
                close(f->dev_fd);
        free(f);
}

static fx *default_fx(void)
{
        fake_config cfg = fake_config_default();
        return bring_up(&cfg, true);
}

/* ---- little clients ---- */

static const char *prop_string(fx *f, const char *key)
{
        static char buf[256];
        tether_value *v = NULL;
        const char *s = NULL;
        assert_int_equal(tether_test_property(f->svc, key, &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_string(v, &s), TETHER_SUCCESS);
        snprintf(buf, sizeof(buf), "%s", s);
        tether_value_unref(v);
        return buf;
}

static uint64_t prop_uint(fx *f, const char *key)
{
        tether_value *v = NULL;
        uint64_t u = 0;
        assert_int_equal(tether_test_property(f->svc, key, &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_uint(v, &u), TETHER_SUCCESS);
        tether_value_unref(v);
        return u;
}

static bool prop_bool(fx *f, const char *key)
{
        tether_value *v = NULL;
        bool b = false;
        assert_int_equal(tether_test_property(f->svc, key, &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_bool(v, &b), TETHER_SUCCESS);
        tether_value_unref(v);
        return b;
}

static tether_ret_t set_prop(fx *f, const tether_task *who, const char *key, tether_value *v, char *why)
{
        tether_value *d = NULL;
        tether_value_new_dict(&d);
        tether_value_dict_set(d, key, v);
        tether_value_unref(v);
        tether_ret_t r = tether_test_set_properties(f->svc, who, d, why);
        tether_value_unref(d);
        return r;
}

static tether_ret_t set_uint(fx *f, const char *key, uint64_t u)
{
        tether_value *v = NULL;
        tether_value_new_uint(u, 32, &v);
        return set_prop(f, &user, key, v, NULL);
}

static tether_ret_t tmc_write(tether_connect *c, const char *text, uint64_t flags)
{
        return tether_call_method(c, TMC_WRITE, &flags, 1, text, strlen(text), NULL, NULL, NULL, NULL);
}

/* TMC_READ into buf (cap bytes): the result; *n and *end what came. */
static tether_ret_t tmc_read(tether_connect *c, void *buf, size_t cap, size_t *n, uint64_t *end)
{
        uint32_t n_end = 1;
        *n = cap;
        *end = 0;
        return tether_call_method(c, TMC_READ, NULL, 0, NULL, 0, end, &n_end, buf, n);
}

static tether_ret_t tmc_query(tether_connect *c, const char *cmd, void *buf, size_t cap, size_t *n, uint64_t *end)
{
        uint32_t n_end = 1;
        *n = cap;
        *end = 0;
        return tether_call_method(c, TMC_QUERY, NULL, 0, cmd, strlen(cmd), end, &n_end, buf, n);
}

/* A query that must answer text (NUL-terminated into a static buffer). */
static const char *ask(tether_connect *c, const char *cmd)
{
        static char buf[4096];
        size_t n = 0;
        uint64_t end = 0;
        assert_int_equal(tmc_query(c, cmd, buf, sizeof(buf) - 1, &n, &end), TETHER_SUCCESS);
        assert_int_equal(end & TMC_END_EOM, TMC_END_EOM);
        buf[n] = '\0';
        return buf;
}

static tether_ret_t call0(tether_connect *c, uint32_t sel)
{
        return tether_call_method(c, sel, NULL, 0, NULL, 0, NULL, NULL, NULL, NULL);
}

static tether_ret_t call1(tether_connect *c, uint32_t sel, uint64_t in)
{
        return tether_call_method(c, sel, &in, 1, NULL, 0, NULL, NULL, NULL, NULL);
}

typedef struct result {
        int calls;
        tether_ret_t r;
        uint64_t args[4];
        uint32_t n;
} result;

static void on_result(void *refcon, tether_ret_t r, const uint64_t *args, uint32_t n)
{
        result *res = refcon;
        res->calls++;
        res->r = r;
        res->n = n;
        memcpy(res->args, args, (n < 4 ? n : 4) * sizeof(uint64_t));
}

/* Dispatch port until res has a result, at most ms. */
static void await(tether_notification_port *port, result *res, unsigned ms)
{
        uint64_t until = ms_now() + ms;
        while (!res->calls && ms_now() < until)
                tether_test_port_wait(port, 50);
        assert_int_equal(res->calls, 1);
}

/* ---- tests ---- */

static void identity_and_capabilities(void **state)
{
        fx *f = default_fx();
        const char *drv = NULL;
        assert_int_equal(tether_test_match(f->b, f->nub, &drv), TETHER_SUCCESS);
        assert_string_equal(drv, TMC_CLASS);
        assert_string_equal(prop_string(f, TMC_PROP_VENDOR), "ACME");
        assert_string_equal(prop_string(f, TMC_PROP_MODEL), "Model 1");
        assert_string_equal(prop_string(f, TMC_PROP_SERIAL), "FAKE0001");
        assert_string_equal(prop_string(f, TMC_PROP_FIRMWARE), "1.0");
        assert_string_equal(prop_string(f, TMC_PROP_VISA_RESOURCE), "USB0::0x1234::0x5678::FAKE0001::INSTR");
        assert_int_equal(prop_uint(f, TMC_PROP_USBTMC_VERSION), 0x0100);
        assert_int_equal(prop_uint(f, TMC_PROP_USB488_VERSION), 0x0100);
        assert_true(prop_bool(f, TMC_PROP_IS_488_2));
        assert_true(prop_bool(f, TMC_PROP_CAN_REMOTE_LOCAL));
        assert_true(prop_bool(f, TMC_PROP_CAN_TRIGGER));
        assert_true(prop_bool(f, TMC_PROP_SCPI));
        assert_true(prop_bool(f, TMC_PROP_SR1));
        assert_true(prop_bool(f, TMC_PROP_RL1));
        assert_true(prop_bool(f, TMC_PROP_DT1));
        assert_true(prop_bool(f, TMC_PROP_INTERRUPT_IN));
        assert_false(prop_bool(f, TMC_PROP_CAN_TERM_CHAR));
        assert_false(prop_bool(f, TMC_PROP_CAN_PULSE));
        assert_false(prop_bool(f, TMC_PROP_TALK_ONLY));
        assert_false(prop_bool(f, TMC_PROP_LISTEN_ONLY));
        assert_int_equal(prop_uint(f, TMC_PROP_TIMEOUT), TMC_DEFAULT_TIMEOUT_MS);
        assert_int_equal(prop_uint(f, TMC_PROP_TERM_CHAR), '\n');
        assert_false(prop_bool(f, TMC_PROP_TERM_CHAR_ON));
        tear_down(f);
}

/* No *IDN? answer: a service all the same, with an empty identity, after
 * the start's bounded wait; interface 2 and no USB serial in the VISA string. */
static void silent_instrument_gets_a_service(void **state)
{
        fake_config cfg = fake_config_default();
        cfg.idn = NULL;
        cfg.interface = 2;
        cfg.serial = NULL;
        uint64_t t0 = ms_now();
        fx *f = bring_up(&cfg, false);
        assert_true(ms_now() - t0 < TMC_IDN_TIMEOUT_MS + 3000);
        assert_string_equal(prop_string(f, TMC_PROP_VENDOR), "");
        assert_string_equal(prop_string(f, TMC_PROP_MODEL), "");
        assert_string_equal(prop_string(f, TMC_PROP_SERIAL), "");
        assert_string_equal(prop_string(f, TMC_PROP_VISA_RESOURCE), "USB0::0x1234::0x5678::0::2::INSTR");
        /* It was cleared after the timeout: the next query works. */
        assert_true(fake_get_counts(f->dev).clears >= 1);
        assert_string_equal(ask(f->a, "ECHO? still here"), "still here\n");
        tear_down(f);
}

/* The USB serial wins; without it, *IDN?'s. */
static void visa_serial_from_idn(void **state)
{
        fake_config cfg = fake_config_default();
        cfg.serial = NULL;
        cfg.idn = "ACME,Model 2,SN:42,2.0";
        fx *f = bring_up(&cfg, false);
        assert_string_equal(prop_string(f, TMC_PROP_VISA_RESOURCE), "USB0::0x1234::0x5678::SN_42::INSTR");
        assert_string_equal(prop_string(f, TMC_PROP_SERIAL), "SN:42");
        tear_down(f);
}

static void write_read_query(void **state)
{
        fx *f = default_fx();
        assert_string_equal(ask(f->a, "ECHO? hello"), "hello\n");
        char buf[64];
        size_t n = 0;
        uint64_t end = 0;
        assert_int_equal(tmc_write(f->a, "ECHO? abc", 0), TETHER_SUCCESS);
        assert_int_equal(tmc_read(f->a, buf, sizeof(buf), &n, &end), TETHER_SUCCESS);
        assert_int_equal(n, 4);
        assert_memory_equal(buf, "abc\n", 4);
        assert_int_equal(end, TMC_END_EOM);
        /* A message in two writes: EOM on the second only. */
        assert_int_equal(tmc_write(f->a, "ECHO? two ", TMC_WRITE_MORE), TETHER_SUCCESS);
        assert_int_equal(tmc_write(f->a, "parts", 0), TETHER_SUCCESS);
        assert_int_equal(tmc_read(f->a, buf, sizeof(buf), &n, &end), TETHER_SUCCESS);
        assert_int_equal(n, 10);
        assert_memory_equal(buf, "two parts\n", 10);
        /* Unknown flags, empty writes, a zero-size read: refused. */
        assert_int_equal(tmc_write(f->a, "x", 2), TETHER_ERR_BAD_ARGUMENT);
        uint64_t flags = 0;
        assert_int_equal(tether_call_method(f->a, TMC_WRITE, &flags, 1, NULL, 0, NULL, NULL, NULL, NULL),
                         TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(tmc_read(f->a, buf, 0, &n, &end), TETHER_ERR_BAD_ARGUMENT);
        /* The table's checks: counts and sizes, before the method runs. */
        assert_int_equal(tether_call_method(f->a, TMC_WRITE, NULL, 0, "x", 1, NULL, NULL, NULL, NULL),
                         TETHER_ERR_BAD_ARGUMENT);
        uint64_t out[2];
        uint32_t n_out = 2;
        assert_int_equal(tether_call_method(f->a, TMC_READ_STB, NULL, 0, NULL, 0, out, &n_out, NULL, NULL),
                         TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(call0(f->a, TMC_SELECTOR_COUNT), TETHER_ERR_BAD_ARGUMENT);
        /* A read with nothing asked: a timeout, then it works again. */
        assert_int_equal(set_uint(f, TMC_PROP_TIMEOUT, 200), TETHER_SUCCESS);
        assert_int_equal(tmc_read(f->a, buf, sizeof(buf), &n, &end), TETHER_ERR_TIMEOUT);
        assert_string_equal(ask(f->a, "ECHO? again"), "again\n");
        tear_down(f);
}

/* A message longer than the buffer: the rest stays in the device, read by
 * the next calls, nothing lost or dropped. */
static void read_in_pieces(void **state)
{
        fx *f = default_fx();
        assert_int_equal(tmc_write(f->a, "DATA? 100", 0), TETHER_SUCCESS);
        char all[128], buf[30];
        size_t got = 0, n = 0;
        uint64_t end = 0;
        for (int i = 0; i < 3; i++) {
                assert_int_equal(tmc_read(f->a, buf, sizeof(buf), &n, &end), TETHER_SUCCESS);
                assert_int_equal(n, 30);
                assert_int_equal(end, 0); /* more follows */
                memcpy(all + got, buf, n);
                got += n;
        }
        assert_int_equal(tmc_read(f->a, buf, sizeof(buf), &n, &end), TETHER_SUCCESS);
        assert_int_equal(n, 11);
        assert_int_equal(end, TMC_END_EOM);
        memcpy(all + got, buf, n);
        got += n;
        assert_int_equal(got, 101);
        for (int i = 0; i < 100; i++)
                assert_int_equal(all[i], 'A' + i % 26);
        assert_int_equal(all[100], '\n');
        tear_down(f);
}

/* A query whose answer does not fit: NoSpace, the answer kept, its size
 * said by TMC_HELD, and returned whole by the next reads. */
static void query_no_space_keeps_the_answer(void **state)
{
        fx *f = default_fx();
        char small[1000];
        size_t n = 0;
        uint64_t end = 0;
        assert_int_equal(tmc_query(f->a, "DATA? 5000", small, sizeof(small), &n, &end), TETHER_ERR_NO_SPACE);
        uint64_t held[2] = { 0 };
        uint32_t n_held = 2;
        assert_int_equal(tether_call_method(f->a, TMC_HELD, NULL, 0, NULL, 0, held, &n_held, NULL, NULL),
                         TETHER_SUCCESS);
        assert_int_equal(held[0], 5001);
        assert_int_equal(held[1], TMC_END_EOM);
        /* The other connection's reads are its own. */
        n_held = 2;
        assert_int_equal(tether_call_method(f->b2, TMC_HELD, NULL, 0, NULL, 0, held, &n_held, NULL, NULL),
                         TETHER_SUCCESS);
        assert_int_equal(held[0], 0);
        char *big = malloc(8000);
        assert_int_equal(tmc_read(f->a, big, 3000, &n, &end), TETHER_SUCCESS);
        assert_int_equal(n, 3000);
        assert_int_equal(end, 0);
        assert_int_equal(tmc_read(f->a, big + 3000, 5000, &n, &end), TETHER_SUCCESS);
        assert_int_equal(n, 2001);
        assert_int_equal(end, TMC_END_EOM);
        for (int i = 0; i < 5000; i++)
                assert_int_equal(big[i], 'A' + i % 26);
        n_held = 2;
        assert_int_equal(tether_call_method(f->a, TMC_HELD, NULL, 0, NULL, 0, held, &n_held, NULL, NULL),
                         TETHER_SUCCESS);
        assert_int_equal(held[0], 0);
        /* Held and then superseded: a new write drops it, as the device would. */
        assert_int_equal(tmc_query(f->a, "DATA? 300", small, 100, &n, &end), TETHER_ERR_NO_SPACE);
        assert_string_equal(ask(f->a, "ECHO? next"), "next\n");
        /* Past the read-ahead: what did not fit waits in the device. */
        size_t huge = 100 + TMC_MAX_HELD + 5000;
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "DATA? %zu", huge);
        assert_int_equal(tmc_query(f->a, cmd, small, 100, &n, &end), TETHER_ERR_NO_SPACE);
        n_held = 2;
        assert_int_equal(tether_call_method(f->a, TMC_HELD, NULL, 0, NULL, 0, held, &n_held, NULL, NULL),
                         TETHER_SUCCESS);
        assert_int_equal(held[0], 100 + TMC_MAX_HELD);
        assert_int_equal(held[1], 0); /* at least that much */
        char *rest = malloc(huge + 1);
        size_t total = 0;
        for (end = 0; !end;) {
                assert_int_equal(tmc_read(f->a, rest + total, 256 * 1024, &n, &end), TETHER_SUCCESS);
                total += n;
                assert_true(total <= huge + 1);
        }
        assert_int_equal(total, huge + 1);
        for (size_t i = 0; i < huge; i++)
                if (rest[i] != 'A' + (char)(i % 26))
                        fail_msg("byte %zu is %d", i, rest[i]);
        free(rest);
        free(big);
        tear_down(f);
}

static void term_char(void **state)
{
        /* Without the capability: refused, and why. */
        fx *f = default_fx();
        char why[TETHER_MAX_REASON + 1] = "";
        tether_value *v = NULL;
        tether_value_new_bool(true, &v);
        assert_int_equal(set_prop(f, &user, TMC_PROP_TERM_CHAR_ON, v, why), TETHER_ERR_UNSUPPORTED);
        assert_non_null(strstr(why, "TermChar"));
        assert_false(prop_bool(f, TMC_PROP_TERM_CHAR_ON));
        tear_down(f);

        fake_config cfg = fake_config_default();
        cfg.device_caps = USBTMC_CAP_TERM_CHAR;
        f = bring_up(&cfg, true);
        assert_true(prop_bool(f, TMC_PROP_CAN_TERM_CHAR));
        assert_int_equal(set_uint(f, TMC_PROP_TERM_CHAR, 300), TETHER_ERR_BAD_ARGUMENT);
        tether_value_new_bool(true, &v);
        assert_int_equal(set_prop(f, &user, TMC_PROP_TERM_CHAR_ON, v, NULL), TETHER_SUCCESS);
        assert_true(prop_bool(f, TMC_PROP_TERM_CHAR_ON));
        char buf[64];
        size_t n = 0;
        uint64_t end = 0;
        assert_int_equal(tmc_write(f->a, "LINES?", 0), TETHER_SUCCESS);
        assert_int_equal(tmc_read(f->a, buf, sizeof(buf), &n, &end), TETHER_SUCCESS);
        assert_int_equal(n, 4);
        assert_memory_equal(buf, "one\n", 4);
        assert_int_equal(end, TMC_END_TERM_CHAR);
        assert_int_equal(tmc_read(f->a, buf, sizeof(buf), &n, &end), TETHER_SUCCESS);
        assert_memory_equal(buf, "two\n", 4);
        assert_int_equal(end, TMC_END_TERM_CHAR);
        assert_int_equal(tmc_read(f->a, buf, sizeof(buf), &n, &end), TETHER_SUCCESS);
        assert_int_equal(n, 6);
        assert_memory_equal(buf, "three\n", 6);
        assert_int_equal(end, TMC_END_TERM_CHAR | TMC_END_EOM);
        fake_counts k = fake_get_counts(f->dev);
        assert_true(k.term_char_seen);
        assert_int_equal(k.term_char, '\n');
        /* Another TermChar: the device stops there. */
        assert_int_equal(set_uint(f, TMC_PROP_TERM_CHAR, 'w'), TETHER_SUCCESS);
        assert_int_equal(tmc_write(f->a, "LINES?", 0), TETHER_SUCCESS);
        assert_int_equal(tmc_read(f->a, buf, sizeof(buf), &n, &end), TETHER_SUCCESS);
        assert_int_equal(n, 6);
        assert_memory_equal(buf, "one\ntw", 6);
        assert_int_equal(end, TMC_END_TERM_CHAR);
        tear_down(f);
}

typedef struct waits {
        unsigned timeout_ms, sync_ms;
} waits;

static void peek_waits(tether_service *svc, void *ctx)
{
        waits *w = ctx;
        tmc_instr *in = tether_service_priv(svc);
        w->timeout_ms = in->timeout_ms;
        w->sync_ms = in->usb.timeout_ms;
}

static void timeout_property(void **state)
{
        fx *f = default_fx();
        char why[TETHER_MAX_REASON + 1] = "";
        tether_value *v = NULL;
        /* Anyone's, whole for async reads; what holds the work loop is
         * capped below tetherd's heartbeat watchdog. */
        tether_value_new_uint(20000, 32, &v);
        assert_int_equal(set_prop(f, &user, TMC_PROP_TIMEOUT, v, why), TETHER_SUCCESS);
        assert_int_equal(prop_uint(f, TMC_PROP_TIMEOUT), 20000);
        waits w = { 0 };
        assert_int_equal(tether_test_on_loop(f->svc, peek_waits, &w), TETHER_SUCCESS);
        assert_int_equal(w.timeout_ms, 20000);
        assert_int_equal(w.sync_ms, TMC_SYNC_MAX_WAIT_MS);
        assert_int_equal(set_uint(f, TMC_PROP_TIMEOUT, 700), TETHER_SUCCESS);
        assert_int_equal(tether_test_on_loop(f->svc, peek_waits, &w), TETHER_SUCCESS);
        assert_int_equal(w.sync_ms, 700);
        tether_value_new_uint(TMC_MAX_TIMEOUT_MS + 1, 32, &v);
        assert_int_equal(set_prop(f, &user, TMC_PROP_TIMEOUT, v, why), TETHER_ERR_BAD_ARGUMENT);
        assert_non_null(strstr(why, "600000"));
        assert_int_equal(set_uint(f, TMC_PROP_TIMEOUT, 50), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(set_uint(f, TMC_PROP_TIMEOUT, 9000), TETHER_SUCCESS);
        tether_value_new_string("x", &v);
        assert_int_equal(set_prop(f, &user, TMC_PROP_MODEL, v, NULL), TETHER_ERR_NOT_WRITABLE);
        /* All or nothing: a good key beside a bad one is not applied. */
        tether_value *d = NULL;
        tether_value_new_dict(&d);
        tether_value_dict_set_uint(d, TMC_PROP_TIMEOUT, 700, 32);
        tether_value_dict_set_uint(d, TMC_PROP_TERM_CHAR, 999, 32);
        assert_int_equal(tether_test_set_properties(f->svc, &user, d, NULL), TETHER_ERR_BAD_ARGUMENT);
        tether_value_unref(d);
        assert_int_equal(prop_uint(f, TMC_PROP_TIMEOUT), 9000);
        tear_down(f);
}

/* An instrument that never answers: the read ends at TimeoutMs, the link
 * is cleared, and the next command works. */
static void never_answers(void **state)
{
        fx *f = default_fx();
        assert_int_equal(set_uint(f, TMC_PROP_TIMEOUT, 300), TETHER_SUCCESS);
        char buf[64];
        size_t n = 0;
        uint64_t end = 0;
        uint64_t t0 = ms_now();
        assert_int_equal(tmc_query(f->a, "SILENT?", buf, sizeof(buf), &n, &end), TETHER_ERR_TIMEOUT);
        uint64_t took = ms_now() - t0;
        assert_true(took >= 300 && took < 3000);
        fake_counts k = fake_get_counts(f->dev);
        assert_true(k.clears >= 1);
        assert_int_equal(k.in_flight, 0);
        assert_string_equal(ask(f->a, "ECHO? next"), "next\n");
        /* A late answer that comes within the timeout is just slow. */
        assert_string_equal(ask(f->a, "SLOW? 100"), "done\n");
        tear_down(f);
}

static void status_byte_and_requests(void **state)
{
        fx *f = default_fx();
        uint64_t stb = 0;
        uint32_t one = 1;
        fake_set_stb(f->dev, 0x10);
        assert_int_equal(tether_call_method(f->a, TMC_READ_STB, NULL, 0, NULL, 0, &stb, &one, NULL, NULL),
                         TETHER_SUCCESS);
        assert_int_equal(stb, 0x10); /* from interrupt-IN */
        assert_int_equal(call0(f->a, TMC_CLEAR), TETHER_SUCCESS);
        assert_int_equal(call0(f->a, TMC_TRIGGER), TETHER_SUCCESS);
        assert_int_equal(call1(f->a, TMC_REN_CONTROL, 1), TETHER_SUCCESS);
        assert_int_equal(fake_get_counts(f->dev).ren, 1);
        assert_int_equal(call1(f->a, TMC_REN_CONTROL, 0), TETHER_SUCCESS);
        assert_int_equal(fake_get_counts(f->dev).ren, 0);
        assert_int_equal(call1(f->a, TMC_REN_CONTROL, 2), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(call0(f->a, TMC_GO_TO_LOCAL), TETHER_SUCCESS);
        assert_int_equal(call0(f->a, TMC_LOCAL_LOCKOUT), TETHER_SUCCESS);
        assert_int_equal(call0(f->a, TMC_INDICATOR_PULSE), TETHER_ERR_UNSUPPORTED);
        fake_counts k = fake_get_counts(f->dev);
        assert_int_equal(k.clears, 1);
        assert_int_equal(k.triggers, 1);
        assert_int_equal(k.gtl, 1);
        assert_int_equal(k.llo, 1);
        assert_int_equal(k.pulses, 0); /* refused before the device */
        tear_down(f);

        /* A plain USBTMC device: no interrupt endpoint (the status byte in
         * the control reply), an indicator, nothing of USB488's. */
        fake_config cfg = fake_config_default();
        cfg.interrupt_ep = false;
        cfg.interface_caps = USBTMC_CAP_INDICATOR_PULSE;
        cfg.usb488_interface_caps = 0;
        cfg.usb488_device_caps = 0;
        f = bring_up(&cfg, true);
        assert_false(prop_bool(f, TMC_PROP_INTERRUPT_IN));
        assert_true(prop_bool(f, TMC_PROP_CAN_PULSE));
        fake_set_stb(f->dev, 0x24);
        assert_int_equal(tether_call_method(f->a, TMC_READ_STB, NULL, 0, NULL, 0, &stb, &one, NULL, NULL),
                         TETHER_SUCCESS);
        assert_int_equal(stb, 0x24);
        assert_int_equal(call0(f->a, TMC_INDICATOR_PULSE), TETHER_SUCCESS);
        assert_int_equal(fake_get_counts(f->dev).pulses, 1);
        assert_int_equal(call0(f->a, TMC_TRIGGER), TETHER_ERR_UNSUPPORTED);
        assert_int_equal(call1(f->a, TMC_REN_CONTROL, 1), TETHER_ERR_UNSUPPORTED);
        assert_int_equal(call0(f->a, TMC_GO_TO_LOCAL), TETHER_ERR_UNSUPPORTED);
        assert_int_equal(call0(f->a, TMC_LOCAL_LOCKOUT), TETHER_ERR_UNSUPPORTED);
        assert_int_equal(fake_get_counts(f->dev).triggers, 0);
        assert_int_equal(fake_get_counts(f->dev).ren, -1);
        tear_down(f);
}

typedef struct mapped {
        const uint8_t *p;
        size_t size;
} mapped;

static mapped map_read_buffer(tether_connect *c)
{
        mapped m = { 0 };
        void *p = NULL;
        assert_int_equal(tether_map_memory(c, TMC_MEMORY_READ_BUFFER, 0, &p, &m.size), TETHER_SUCCESS);
        assert_true(m.size >= TMC_READ_BUFFER_SIZE);
        m.p = p;
        return m;
}

static tether_ret_t read_async(tether_connect *c, tether_notification_port *port, result *res, uint64_t max)
{
        return tether_call_async_method(c, TMC_READ_ASYNC, port, on_result, res, &max, 1, NULL, 0, NULL, NULL, NULL,
                                        NULL);
}

/* An async read keeps the instrument free for others; another connection
 * may abort it; it ends with the bytes and how. */
static void async_read_and_abort(void **state)
{
        fx *f = default_fx();
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(f->s, &port), TETHER_SUCCESS);
        mapped m = map_read_buffer(f->a);
        /* Sync is refused: its bytes come only with a result. */
        assert_int_equal(call1(f->a, TMC_READ_ASYNC, 10), TETHER_ERR_BAD_ARGUMENT);
        result res = { 0 };
        assert_int_equal(tmc_write(f->a, "SLOW? 150", 0), TETHER_SUCCESS);
        assert_int_equal(read_async(f->a, port, &res, 100), TETHER_SUCCESS);
        /* Meanwhile: bulk calls Busy, the status byte served. */
        char buf[16];
        size_t n = 0;
        uint64_t end = 0;
        assert_int_equal(tmc_query(f->b2, "ECHO? x", buf, sizeof(buf), &n, &end), TETHER_ERR_BUSY);
        uint64_t stb = 0;
        uint32_t one = 1;
        assert_int_equal(tether_call_method(f->b2, TMC_READ_STB, NULL, 0, NULL, 0, &stb, &one, NULL, NULL),
                         TETHER_SUCCESS);
        await(port, &res, 3000);
        assert_int_equal(res.r, TETHER_SUCCESS);
        assert_int_equal(res.args[TMC_READ_ARG_BYTES], 5);
        assert_int_equal(res.args[TMC_READ_ARG_END], TMC_END_EOM);
        assert_memory_equal(m.p, "done\n", 5);

        /* A read that would wait for ever, ended by the other connection. */
        assert_int_equal(call0(f->b2, TMC_ABORT), TETHER_ERR_NOT_FOUND);
        memset(&res, 0, sizeof(res));
        assert_int_equal(tmc_write(f->a, "SILENT?", 0), TETHER_SUCCESS);
        assert_int_equal(read_async(f->a, port, &res, 100), TETHER_SUCCESS);
        sleep_ms(100);
        assert_int_equal(tether_notification_port_dispatch(port), TETHER_SUCCESS);
        assert_int_equal(res.calls, 0);
        uint64_t t0 = ms_now();
        assert_int_equal(call0(f->b2, TMC_ABORT), TETHER_SUCCESS);
        assert_true(ms_now() - t0 < 1000);
        await(port, &res, 2000);
        assert_int_equal(res.r, TETHER_ERR_ABORTED);
        assert_int_equal(res.args[TMC_READ_ARG_BYTES], 0);
        fake_counts k = fake_get_counts(f->dev);
        assert_int_equal(k.aborts_in, 1);
        assert_int_equal(k.in_flight, 0);
        assert_string_equal(ask(f->b2, "ECHO? free"), "free\n");

        /* An async read that times out: recovered, as a sync one. */
        assert_int_equal(set_uint(f, TMC_PROP_TIMEOUT, 200), TETHER_SUCCESS);
        memset(&res, 0, sizeof(res));
        assert_int_equal(tmc_write(f->a, "SILENT?", 0), TETHER_SUCCESS);
        assert_int_equal(read_async(f->a, port, &res, 100), TETHER_SUCCESS);
        await(port, &res, 3000);
        assert_int_equal(res.r, TETHER_ERR_TIMEOUT);
        assert_string_equal(ask(f->a, "ECHO? ok"), "ok\n");

        /* An answer longer than asked for: the rest for the next read. */
        memset(&res, 0, sizeof(res));
        assert_int_equal(tmc_write(f->a, "DATA? 50", 0), TETHER_SUCCESS);
        assert_int_equal(read_async(f->a, port, &res, 20), TETHER_SUCCESS);
        await(port, &res, 3000);
        assert_int_equal(res.r, TETHER_SUCCESS);
        assert_int_equal(res.args[TMC_READ_ARG_BYTES], 20);
        assert_int_equal(res.args[TMC_READ_ARG_END], 0);
        assert_int_equal(tmc_read(f->a, buf, sizeof(buf), &n, &end), TETHER_SUCCESS);
        assert_int_equal(n, sizeof(buf));
        assert_int_equal(buf[0], 'A' + 20);
        assert_int_equal(read_async(f->a, port, &res, TMC_READ_BUFFER_SIZE + 1), TETHER_ERR_BAD_ARGUMENT);
        tether_notification_port_destroy(port);
        tear_down(f);
}

typedef struct unplugger {
        fake_instrument *dev;
        unsigned after_ms;
} unplugger;

static void *unplug_later(void *arg)
{
        unplugger *u = arg;
        sleep_ms(u->after_ms);
        fake_unplug(u->dev);
        return NULL;
}

/* Unplugged while a call waits on it: NotAttached, then and after. */
static void unplug_mid_read(void **state)
{
        fx *f = default_fx();
        pthread_t th;
        unplugger u = { f->dev, 200 };
        assert_int_equal(tmc_write(f->a, "SILENT?", 0), TETHER_SUCCESS);
        assert_int_equal(pthread_create(&th, NULL, unplug_later, &u), 0);
        char buf[16];
        size_t n = 0;
        uint64_t end = 0;
        uint64_t t0 = ms_now();
        assert_int_equal(tmc_read(f->a, buf, sizeof(buf), &n, &end), TETHER_ERR_NOT_ATTACHED);
        assert_true(ms_now() - t0 < 3000);
        pthread_join(th, NULL);
        assert_int_equal(tmc_query(f->b2, "ECHO? x", buf, sizeof(buf), &n, &end), TETHER_ERR_NOT_ATTACHED);
        assert_int_equal(call0(f->b2, TMC_CLEAR), TETHER_ERR_NOT_ATTACHED);
        tear_down(f);

        /* The same with an async read in flight, and a listener for SRQs. */
        f = default_fx();
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(f->s, &port), TETHER_SUCCESS);
        result res = { 0 }, srq = { 0 };
        assert_int_equal(tether_call_async_method(f->b2, TMC_SRQ_ENABLE, port, on_result, &srq, NULL, 0, NULL, 0,
                                                  NULL, NULL, NULL, NULL),
                         TETHER_SUCCESS);
        assert_int_equal(tmc_write(f->a, "SILENT?", 0), TETHER_SUCCESS);
        assert_int_equal(read_async(f->a, port, &res, 10), TETHER_SUCCESS);
        sleep_ms(100);
        fake_unplug(f->dev);
        await(port, &res, 3000);
        assert_int_equal(res.r, TETHER_ERR_NOT_ATTACHED);
        await(port, &srq, 3000);
        assert_int_equal(srq.r, TETHER_ERR_NOT_ATTACHED); /* the stream's last result */
        assert_int_equal(tmc_write(f->a, "x", 0), TETHER_ERR_NOT_ATTACHED);
        tether_notification_port_destroy(port);
        tear_down(f);
}

/* ---- service requests ---- */

typedef struct srq_log {
        unsigned delivered;
        uint64_t last_seq, lost;
        uint8_t stb;
        bool out_of_order, ended;
        tether_ret_t end_result;
} srq_log;

static void on_srq(void *refcon, tether_ret_t r, const uint64_t *args, uint32_t n)
{
        srq_log *l = refcon;
        assert_int_equal(n, TMC_SRQ_ARGS);
        if (r != TETHER_SUCCESS) {
                l->ended = true;
                l->end_result = r;
                return;
        }
        if (args[TMC_SRQ_ARG_SEQ] <= l->last_seq)
                l->out_of_order = true;
        /* Every SRQ before this one was delivered or counted lost. */
        if (args[TMC_SRQ_ARG_SEQ] != l->delivered + 1 + args[TMC_SRQ_ARG_LOST])
                l->out_of_order = true;
        l->delivered++;
        l->last_seq = args[TMC_SRQ_ARG_SEQ];
        l->lost = args[TMC_SRQ_ARG_LOST];
        l->stb = (uint8_t)args[TMC_SRQ_ARG_STB];
}

static tether_ret_t srq_enable(tether_connect *c, tether_notification_port *port, srq_log *l)
{
        return tether_call_async_method(c, TMC_SRQ_ENABLE, port, on_srq, l, NULL, 0, NULL, 0, NULL, NULL, NULL, NULL);
}

static void srq_delivered(void **state)
{
        fx *f = default_fx();
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(f->s, &port), TETHER_SUCCESS);
        srq_log l = { 0 };
        assert_int_equal(call0(f->a, TMC_SRQ_ENABLE), TETHER_ERR_BAD_ARGUMENT); /* only as a stream */
        assert_int_equal(srq_enable(f->a, port, &l), TETHER_SUCCESS);
        assert_int_equal(srq_enable(f->a, port, &l), TETHER_ERR_BUSY);
        fake_srq(f->dev, 1, 0x50);
        for (uint64_t until = ms_now() + 3000; !l.delivered && ms_now() < until;)
                tether_test_port_wait(port, 50);
        assert_int_equal(l.delivered, 1);
        assert_int_equal(l.stb, 0x50);
        assert_int_equal(l.last_seq, 1);
        assert_int_equal(l.lost, 0);
        /* Disabled: its last result, then nothing. */
        assert_int_equal(call0(f->a, TMC_SRQ_DISABLE), TETHER_SUCCESS);
        for (uint64_t until = ms_now() + 2000; !l.ended && ms_now() < until;)
                tether_test_port_wait(port, 50);
        assert_true(l.ended);
        assert_int_equal(l.end_result, TETHER_ERR_ABORTED);
        fake_srq(f->dev, 1, 0x50);
        sleep_ms(100);
        tether_notification_port_dispatch(port);
        assert_int_equal(l.delivered, 1);
        tether_notification_port_destroy(port);
        tear_down(f);

        /* Without an interrupt endpoint: RQS in the polled status byte. */
        fake_config cfg = fake_config_default();
        cfg.interrupt_ep = false;
        f = bring_up(&cfg, true);
        assert_int_equal(tether_notification_port_create(f->s, &port), TETHER_SUCCESS);
        memset(&l, 0, sizeof(l));
        assert_int_equal(srq_enable(f->a, port, &l), TETHER_SUCCESS);
        fake_srq(f->dev, 1, 0x10);
        for (uint64_t until = ms_now() + 3000; !l.delivered && ms_now() < until;)
                tether_test_port_wait(port, 50);
        assert_int_equal(l.delivered, 1);
        assert_int_equal(l.stb, 0x50); /* RQS and the rest */
        sleep_ms(300);                 /* RQS fell with the poll: no second one */
        tether_notification_port_dispatch(port);
        assert_int_equal(l.delivered, 1);
        /* A client's own status-byte read clears RQS before the poll sees
         * it: the SRQ is told all the same. */
        uint64_t stb = 0;
        uint32_t one = 1;
        for (int i = 0; i < 10 && l.delivered == 1; i++) {
                fake_srq(f->dev, 1, 0x11);
                assert_int_equal(tether_call_method(f->b2, TMC_READ_STB, NULL, 0, NULL, 0, &stb, &one, NULL, NULL),
                                 TETHER_SUCCESS);
                for (uint64_t until = ms_now() + 300; l.delivered == 1 && ms_now() < until;)
                        tether_test_port_wait(port, 50);
        }
        assert_int_equal(l.delivered, 2);
        assert_int_equal(l.stb, 0x51);
        tether_notification_port_destroy(port);
        tear_down(f);
}

typedef struct peek {
        unsigned max_queued, listeners;
} peek;

static void peek_queues(tether_service *svc, void *ctx)
{
        peek *p = ctx;
        tmc_instr *in = tether_service_priv(svc);
        p->listeners = in->srq_listeners;
        for (tmc_client *c = in->clients; c; c = c->next)
                if (c->srq_n > p->max_queued)
                        p->max_queued = c->srq_n;
}

/* A storm: the driver drains the device, keeps at most its queue per
 * listener while the port is full, counts what it drops, and a polite
 * connection is served meanwhile. Every SRQ is delivered or counted. */
static void srq_storm(void **state)
{
        fx *f = default_fx();
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(f->s, &port), TETHER_SUCCESS);
        srq_log l = { 0 };
        assert_int_equal(srq_enable(f->a, port, &l), TETHER_SUCCESS);
        const unsigned storm = 20000;
        fake_srq(f->dev, storm, 0x41);
        /* Not reading the port while the device storms. */
        uint64_t worst = 0;
        for (uint64_t until = ms_now() + 20000; fake_get_counts(f->dev).srq_sent < storm && ms_now() < until;) {
                uint64_t t0 = ms_now();
                assert_string_equal(ask(f->b2, "ECHO? polite"), "polite\n");
                if (ms_now() - t0 > worst)
                        worst = ms_now() - t0;
                peek p = { 0 };
                assert_int_equal(tether_test_on_loop(f->svc, peek_queues, &p), TETHER_SUCCESS);
                assert_true(p.max_queued <= TMC_SRQ_QUEUE);
                sleep_ms(20);
        }
        assert_int_equal(fake_get_counts(f->dev).srq_sent, storm);
        assert_true(worst < 1000);
        /* Now read: what was queued comes, then the count adds up. */
        for (uint64_t until = ms_now() + 10000; l.last_seq < storm && ms_now() < until;)
                tether_test_port_wait(port, 50);
        assert_false(l.out_of_order);
        assert_int_equal(l.last_seq, storm);
        assert_int_equal(l.delivered + l.lost, storm);
        assert_true(l.lost > 0); /* the port filled: some were lost, and said so */
        assert_int_equal(l.stb, 0x41);
        tether_notification_port_destroy(port);
        /* The port gone: the driver stops listening at its next SRQ. */
        fake_srq(f->dev, 1, 0x41);
        peek p = { 0 };
        for (uint64_t until = ms_now() + 3000; ms_now() < until; sleep_ms(20)) {
                p.listeners = 1;
                assert_int_equal(tether_test_on_loop(f->svc, peek_queues, &p), TETHER_SUCCESS);
                if (!p.listeners)
                        break;
        }
        assert_int_equal(p.listeners, 0);
        tear_down(f);
}

/* ---- the lock ---- */

static void lock(void **state)
{
        fx *f = default_fx();
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(f->s, &port), TETHER_SUCCESS);
        assert_int_equal(call1(f->a, TMC_LOCK, 0), TETHER_SUCCESS);
        assert_int_equal(call1(f->a, TMC_LOCK, 0), TETHER_SUCCESS); /* ours already */
        char buf[16];
        size_t n = 0;
        uint64_t end = 0;
        assert_int_equal(tmc_query(f->b2, "ECHO? x", buf, sizeof(buf), &n, &end), TETHER_ERR_BUSY);
        assert_int_equal(call0(f->b2, TMC_CLEAR), TETHER_ERR_BUSY);
        assert_int_equal(call0(f->b2, TMC_UNLOCK), TETHER_ERR_NOT_OPEN);
        assert_int_equal(call1(f->b2, TMC_LOCK, 0), TETHER_ERR_BUSY);
        assert_int_equal(call1(f->b2, TMC_LOCK, 1000), TETHER_ERR_BUSY); /* a sync call cannot wait */
        assert_int_equal(call1(f->b2, TMC_LOCK, TMC_MAX_LOCK_WAIT_MS + 1), TETHER_ERR_BAD_ARGUMENT);
        assert_string_equal(ask(f->a, "ECHO? mine"), "mine\n");
        /* Property writes from another process: Busy, and why. */
        tether_task other = { .pid = 777, .uid = 1001, .gid = 1001 };
        char why[TETHER_MAX_REASON + 1] = "";
        tether_value *v = NULL;
        tether_value_new_uint(1000, 32, &v);
        assert_int_equal(set_prop(f, &other, TMC_PROP_TIMEOUT, v, why), TETHER_ERR_BUSY);
        assert_non_null(strstr(why, "locked"));
        /* Waiting for it, async: granted when released. */
        result res = { 0 };
        uint64_t wait = 3000;
        assert_int_equal(tether_call_async_method(f->b2, TMC_LOCK, port, on_result, &res, &wait, 1, NULL, 0, NULL,
                                                  NULL, NULL, NULL),
                         TETHER_SUCCESS);
        sleep_ms(50);
        tether_notification_port_dispatch(port);
        assert_int_equal(res.calls, 0);
        assert_int_equal(call0(f->a, TMC_UNLOCK), TETHER_SUCCESS);
        await(port, &res, 2000);
        assert_int_equal(res.r, TETHER_SUCCESS);
        assert_string_equal(ask(f->b2, "ECHO? b"), "b\n");
        assert_int_equal(tmc_query(f->a, "ECHO? x", buf, sizeof(buf), &n, &end), TETHER_ERR_BUSY);
        /* A wait that times out. */
        memset(&res, 0, sizeof(res));
        wait = 200;
        uint64_t t0 = ms_now();
        assert_int_equal(tether_call_async_method(f->a, TMC_LOCK, port, on_result, &res, &wait, 1, NULL, 0, NULL,
                                                  NULL, NULL, NULL),
                         TETHER_SUCCESS);
        await(port, &res, 3000);
        assert_int_equal(res.r, TETHER_ERR_TIMEOUT);
        assert_true(ms_now() - t0 >= 200);
        /* Closing the holder's connection releases it. */
        tether_service_close(f->b2);
        f->b2 = NULL;
        assert_int_equal(call1(f->a, TMC_LOCK, 0), TETHER_SUCCESS);
        assert_int_equal(call0(f->a, TMC_UNLOCK), TETHER_SUCCESS);
        tether_notification_port_destroy(port);
        tear_down(f);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(identity_and_capabilities),
                cmocka_unit_test(silent_instrument_gets_a_service),
                cmocka_unit_test(visa_serial_from_idn),
                cmocka_unit_test(write_read_query),
                cmocka_unit_test(read_in_pieces),
                cmocka_unit_test(query_no_space_keeps_the_answer),
                cmocka_unit_test(term_char),
                cmocka_unit_test(timeout_property),
                cmocka_unit_test(never_answers),
                cmocka_unit_test(status_byte_and_requests),
                cmocka_unit_test(async_read_and_abort),
                cmocka_unit_test(unplug_mid_read),
                cmocka_unit_test(srq_delivered),
                cmocka_unit_test(srq_storm),
                cmocka_unit_test(lock),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
