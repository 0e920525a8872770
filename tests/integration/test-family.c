/* SPDX-License-Identifier: MIT */
/*
 * The DSOX2000 driver against every model of the InfiniiVision 2000 X
 * series, through a real tetherd: each simulated model identified from its
 * USB ids (tetherd --simulate) and from *IDN? alone over TCP (tetherd
 * --lan, tether-sim-scope --listen --model), with the channels, bandwidth
 * and digital channels the data sheet gives; a 4-channel model's channels
 * 3 and 4 in use; a 2-channel model refusing channel 3 everywhere; what
 * the scope says of a clipped trace; *OPT? and an unknown query through
 * the pass-through.
 *
 * The expected values are written here from the data sheet, not taken
 * from the driver's table or the simulator's: a wrong entry in either
 * fails a test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dsox2000/dsox2000.h"
#include "harness.h"

typedef struct expect {
        const char *name;      /* --simulate / --model */
        const char *model;     /* *IDN? */
        uint16_t product;      /* vendor 0x0957 */
        unsigned channels, digital;
        double bandwidth;
} expect;

static const expect dso[] = {
        { "dsox2002a", "DSO-X 2002A", 0x179b, 2, 0, 70e6 },  { "dsox2004a", "DSO-X 2004A", 0x179a, 4, 0, 70e6 },
        { "dsox2012a", "DSO-X 2012A", 0x1799, 2, 0, 100e6 }, { "dsox2014a", "DSO-X 2014A", 0x1798, 4, 0, 100e6 },
        { "dsox2022a", "DSO-X 2022A", 0x1797, 2, 0, 200e6 }, { "dsox2024a", "DSO-X 2024A", 0x1796, 4, 0, 200e6 },
};
static const expect mso[] = {
        { "msox2002a", "MSO-X 2002A", 0x179b, 2, 8, 70e6 },  { "msox2004a", "MSO-X 2004A", 0x179a, 4, 8, 70e6 },
        { "msox2012a", "MSO-X 2012A", 0x1799, 2, 8, 100e6 }, { "msox2014a", "MSO-X 2014A", 0x1798, 4, 8, 100e6 },
        { "msox2022a", "MSO-X 2022A", 0x1797, 2, 8, 200e6 }, { "msox2024a", "MSO-X 2024A", 0x1796, 4, 8, 200e6 },
};
#define N_MODELS 6

/* ---- helpers ---- */

static char *prop_string(tether_session *s, uint64_t id, const char *key)
{
        tether_value *v = NULL;
        const char *str = NULL;
        if (tether_registry_entry_get_property(s, id, key, &v) != TETHER_SUCCESS)
                return NULL;
        assert_int_equal(tether_value_get_string(v, &str), TETHER_SUCCESS);
        char *copy = strdup(str);
        tether_value_unref(v);
        return copy;
}

static uint64_t prop_uint(tether_session *s, uint64_t id, const char *key)
{
        tether_value *v = NULL;
        uint64_t u = 0;
        assert_int_equal(tether_registry_entry_get_property(s, id, key, &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_uint(v, &u), TETHER_SUCCESS);
        tether_value_unref(v);
        return u;
}

static double prop_double(tether_session *s, uint64_t id, const char *key)
{
        tether_value *v = NULL;
        double d = NAN;
        assert_int_equal(tether_registry_entry_get_property(s, id, key, &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_double(v, &d), TETHER_SUCCESS);
        tether_value_unref(v);
        return d;
}

typedef struct want_started {
        tether_session *s;
        size_t n;
} want_started;

/* n DSOX2000 services, each through its start() (IdentifiedBy is set there). */
static bool all_started(void *ctx)
{
        want_started *w = ctx;
        tether_value *m = NULL;
        uint64_t *ids = NULL;
        size_t n = 0, started = 0;
        tether_service_matching(DSO_CLASS, &m);
        if (tether_get_matching_services(w->s, m, &ids, &n) == TETHER_SUCCESS)
                for (size_t i = 0; i < n; i++) {
                        char *by = prop_string(w->s, ids[i], DSO_PROP_IDENTIFIED);
                        started += by != NULL;
                        free(by);
                }
        free(ids);
        tether_value_unref(m);
        return started == w->n;
}

/* The DSOX2000 service whose Model is model. */
static uint64_t find_model(tether_session *s, const char *model)
{
        tether_value *m = NULL;
        uint64_t *ids = NULL, found = 0;
        size_t n = 0;
        assert_int_equal(tether_service_matching(DSO_CLASS, &m), TETHER_SUCCESS);
        assert_int_equal(tether_get_matching_services(s, m, &ids, &n), TETHER_SUCCESS);
        for (size_t i = 0; i < n && !found; i++) {
                char *got = prop_string(s, ids[i], DSO_PROP_MODEL);
                if (got && !strcmp(got, model))
                        found = ids[i];
                free(got);
        }
        free(ids);
        tether_value_unref(m);
        if (!found)
                fail_msg("no DSOX2000 service for %s", model);
        return found;
}

static void check_identity(tether_session *s, const expect *e, const char *identified_by, bool usb)
{
        uint64_t id = find_model(s, e->model);
        assert_int_equal(prop_uint(s, id, DSO_PROP_CHANNELS), e->channels);
        assert_int_equal(prop_uint(s, id, DSO_PROP_DIGITAL), e->digital);
        assert_true(prop_double(s, id, DSO_PROP_BANDWIDTH) == e->bandwidth);
        assert_true(prop_double(s, id, DSO_PROP_MAX_RATE) == 2e9);
        assert_int_equal(prop_uint(s, id, DSO_PROP_MEMORY), 100000);
        char *by = prop_string(s, id, DSO_PROP_IDENTIFIED);
        assert_non_null(by);
        assert_string_equal(by, identified_by);
        free(by);
        char *opt = prop_string(s, id, DSO_PROP_OPTIONS);
        assert_string_equal(opt, e->digital ? "0,0,MSO" : "0,0,0");
        free(opt);
        /* Channel properties for the channels it has, and no more. */
        char key[32];
        tether_value *v = NULL;
        for (unsigned ch = 1; ch <= 4; ch++) {
                snprintf(key, sizeof(key), "Channel%uScale", ch);
                tether_ret_t r = tether_registry_entry_get_property(s, id, key, &v);
                assert_int_equal(r, ch <= e->channels ? TETHER_SUCCESS : TETHER_ERR_NOT_FOUND);
                tether_value_unref(v);
                v = NULL;
        }
        if (!usb)
                return;
        uint64_t nub = 0;
        assert_int_equal(tether_registry_entry_get_parent(s, id, &nub), TETHER_SUCCESS);
        assert_int_equal(prop_uint(s, nub, "idVendor"), 0x0957);
        assert_int_equal(prop_uint(s, nub, "idProduct"), e->product);
}

static tether_connect *open_scope(tether_session *s, uint64_t id)
{
        tether_connect *c = NULL;
        assert_int_equal(tether_service_open(s, id, 0, 0, &c), TETHER_SUCCESS);
        return c;
}

static tether_ret_t measure(tether_connect *c, uint64_t ch, uint64_t what, double *ret)
{
        uint64_t in[2] = { ch, what }, out = 0;
        uint32_t n = 1;
        tether_ret_t r = tether_call_scalar_method(c, DSO_MEASURE, in, 2, &out, &n);
        memcpy(ret, &out, sizeof(*ret));
        return r;
}

static tether_ret_t set_value(tether_session *s, uint64_t id, const char *key, tether_value *v)
{
        return harness_set(s, id, key, v);
}

static tether_ret_t set_double(tether_session *s, uint64_t id, const char *key, double x)
{
        tether_value *v = NULL;
        tether_value_new_double(x, &v);
        return set_value(s, id, key, v);
}

static tether_ret_t set_string(tether_session *s, uint64_t id, const char *key, const char *x)
{
        tether_value *v = NULL;
        tether_value_new_string(x, &v);
        return set_value(s, id, key, v);
}

static tether_ret_t scpi(tether_connect *c, const char *cmd, char *out, size_t cap)
{
        size_t size = cap - 1;
        tether_ret_t r = tether_call_struct_method(c, DSO_SCPI, cmd, strlen(cmd), out, &size);
        out[r == TETHER_SUCCESS ? size : 0] = '\0';
        return r;
}

/* ---- the DSO models over simulated USB ---- */

static harness USB_DSO;

static int usb_dso_setup(void **state)
{
        static char specs[N_MODELS][48];
        static const char *args[N_MODELS + 1];
        for (int i = 0; i < N_MODELS; i++) {
                snprintf(specs[i], sizeof(specs[i]), "--simulate=%s:FAMD%d", dso[i].name, i);
                args[i] = specs[i];
        }
        USB_DSO.args = args;
        if (harness_start(&USB_DSO))
                return -1;
        tether_session *s = harness_session(&USB_DSO);
        want_started w = { s, N_MODELS };
        bool ok = harness_wait(all_started, &w, 30000);
        tether_session_close(s);
        return ok ? 0 : -1;
}

static int usb_dso_teardown(void **state)
{
        return harness_stop(&USB_DSO) == 0 ? 0 : -1;
}

static void usb_dso_models_identified(void **state)
{
        tether_session *s = harness_session(&USB_DSO);
        for (int i = 0; i < N_MODELS; i++)
                check_identity(s, &dso[i], "*IDN? and USB id", true);
        tether_session_close(s);
}

/* A 4-channel model: channels 3 and 4 are settings, trigger sources and
 * acquisition channels like 1 and 2, and carry their own signals. */
static void four_channels_usable(void **state)
{
        tether_session *s = harness_session(&USB_DSO);
        uint64_t id = find_model(s, "DSO-X 2024A");
        assert_int_equal(set_double(s, id, "Channel3Scale", 0.5), TETHER_SUCCESS);
        assert_true(prop_double(s, id, "Channel3Scale") == 0.5);
        assert_int_equal(set_string(s, id, "Channel4Coupling", "AC"), TETHER_SUCCESS);
        assert_int_equal(set_string(s, id, DSO_PROP_TRIG_SOURCE, "CHAN4"), TETHER_SUCCESS);
        char *src = prop_string(s, id, DSO_PROP_TRIG_SOURCE);
        assert_string_equal(src, "CHAN4");
        free(src);
        assert_int_equal(set_string(s, id, DSO_PROP_TRIG_SOURCE, "CHAN5"), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(set_double(s, id, "Channel5Scale", 0.5), TETHER_ERR_NOT_WRITABLE);

        tether_connect *c = open_scope(s, id);
        assert_int_equal(tether_call_scalar_method(c, DSO_AUTOSCALE, NULL, 0, NULL, NULL), TETHER_SUCCESS);
        uint64_t mask = 0xf;
        assert_int_equal(tether_call_scalar_method(c, DSO_DIGITIZE, &mask, 1, NULL, NULL), TETHER_SUCCESS);
        double f = 0;
        assert_int_equal(measure(c, 3, DSO_MEAS_FREQUENCY, &f), TETHER_SUCCESS);
        assert_true(fabs(f - 5000) < 5);  /* channel 3's triangle */
        assert_int_equal(measure(c, 4, DSO_MEAS_FREQUENCY, &f), TETHER_SUCCESS);
        assert_true(fabs(f - 25000) < 25); /* channel 4's pulses */
        uint64_t ch = 4;
        dso_preamble p;
        size_t size = sizeof(p);
        assert_int_equal(tether_call_method(c, DSO_GET_PREAMBLE, &ch, 1, NULL, 0, NULL, NULL, &p, &size), TETHER_SUCCESS);
        assert_true(p.y_origin == 1.65); /* autoscale centred 0 to 3.3 V */
        uint64_t in[2] = { 3, 1000 };
        float v[1000];
        size = sizeof(v);
        assert_int_equal(tether_call_method(c, DSO_GET_VOLTS, in, 2, NULL, 0, NULL, NULL, v, &size), TETHER_SUCCESS);
        float lo = 99, hi = -99;
        for (size_t i = 0; i < 1000; i++) {
                lo = v[i] < lo ? v[i] : lo;
                hi = v[i] > hi ? v[i] : hi;
        }
        assert_true(lo < -1.4f && hi > 1.4f); /* the triangle's +-1.5 V */
        /* Past the fourth: refused, whichever selector. */
        mask = 0x10;
        assert_int_equal(tether_call_scalar_method(c, DSO_DIGITIZE, &mask, 1, NULL, NULL), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(measure(c, 5, DSO_MEAS_VPP, &f), TETHER_ERR_BAD_ARGUMENT);
        tether_service_close(c);
        tether_session_close(s);
}

/* A 2-channel model: channel 3 is no setting, no trigger source and no
 * argument of any selector. */
static void two_channels_refuse_channel_3(void **state)
{
        tether_session *s = harness_session(&USB_DSO);
        uint64_t id = find_model(s, "DSO-X 2002A");
        tether_value *v = NULL;
        assert_int_equal(tether_registry_entry_get_property(s, id, "Channel3Scale", &v), TETHER_ERR_NOT_FOUND);
        assert_int_equal(set_double(s, id, "Channel3Scale", 0.5), TETHER_ERR_NOT_WRITABLE);
        assert_int_equal(set_string(s, id, DSO_PROP_TRIG_SOURCE, "CHAN3"), TETHER_ERR_BAD_ARGUMENT);

        tether_connect *c = open_scope(s, id);
        double f;
        assert_int_equal(measure(c, 3, DSO_MEAS_FREQUENCY, &f), TETHER_ERR_BAD_ARGUMENT);
        uint64_t mask = 4;
        assert_int_equal(tether_call_scalar_method(c, DSO_DIGITIZE, &mask, 1, NULL, NULL), TETHER_ERR_BAD_ARGUMENT);
        uint64_t ch = 3;
        dso_preamble p;
        size_t size = sizeof(p);
        assert_int_equal(tether_call_method(c, DSO_GET_PREAMBLE, &ch, 1, NULL, 0, NULL, NULL, &p, &size),
                         TETHER_ERR_BAD_ARGUMENT);
        uint64_t in[2] = { 3, 1000 };
        uint8_t raw[1000];
        size = sizeof(raw);
        assert_int_equal(tether_call_method(c, DSO_GET_WAVEFORM, in, 2, NULL, 0, NULL, NULL, raw, &size),
                         TETHER_ERR_BAD_ARGUMENT);
        /* Channels 1 and 2 are as they were. */
        assert_int_equal(tether_call_scalar_method(c, DSO_AUTOSCALE, NULL, 0, NULL, NULL), TETHER_SUCCESS);
        assert_int_equal(measure(c, 2, DSO_MEAS_FREQUENCY, &f), TETHER_SUCCESS);
        assert_true(fabs(f - 10000) < 10);
        tether_service_close(c);
        tether_session_close(s);
}

/* The probe-compensation square (0 to 2.5 V) at 0.5 V/div about 0 V: the
 * screen ends at 2 V, the data clips there, and the scope has no valid
 * peak-to-peak or maximum for it; the minimum and the frequency are on
 * screen and measured. */
static void clipped_trace(void **state)
{
        tether_session *s = harness_session(&USB_DSO);
        uint64_t id = find_model(s, "DSO-X 2012A");
        assert_int_equal(set_double(s, id, DSO_PROP_TIMEBASE, 5e-4), TETHER_SUCCESS); /* 5 periods */
        assert_int_equal(set_double(s, id, "Channel1Scale", 0.5), TETHER_SUCCESS);
        assert_int_equal(set_double(s, id, "Channel1Offset", 0.0), TETHER_SUCCESS);
        tether_connect *c = open_scope(s, id);
        double x = 0;
        assert_int_equal(measure(c, 1, DSO_MEAS_VPP, &x), TETHER_ERR_NOT_READY);
        assert_int_equal(measure(c, 1, DSO_MEAS_VMAX, &x), TETHER_ERR_NOT_READY);
        assert_int_equal(measure(c, 1, DSO_MEAS_VMIN, &x), TETHER_SUCCESS);
        assert_true(fabs(x) < 0.05);
        assert_int_equal(measure(c, 1, DSO_MEAS_FREQUENCY, &x), TETHER_SUCCESS);
        assert_true(fabs(x - 1000) < 1);
        /* The data says the same: nothing above the screen's top. */
        uint64_t in[2] = { 1, 1000 };
        float v[1000];
        size_t size = sizeof(v);
        assert_int_equal(tether_call_method(c, DSO_GET_VOLTS, in, 2, NULL, 0, NULL, NULL, v, &size), TETHER_SUCCESS);
        float hi = -99;
        for (size_t i = 0; i < 1000; i++)
                hi = v[i] > hi ? v[i] : hi;
        assert_true(hi <= 2.0f && hi > 1.95f);
        /* Scaled to fit again: a valid peak-to-peak. */
        assert_int_equal(set_double(s, id, "Channel1Scale", 1.0), TETHER_SUCCESS);
        assert_int_equal(measure(c, 1, DSO_MEAS_VPP, &x), TETHER_SUCCESS);
        assert_true(fabs(x - 2.5) < 0.1);
        tether_service_close(c);
        tether_session_close(s);
}

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* *OPT? answers; a query the scope does not know gets no answer (it
 * queues -113), and its USB side NAKs bulk-IN as the instrument does, so
 * the pass-through fails with a Timeout after TimeoutMs (300 ms here),
 * the link is cleared, and the next call works and finds the error. */
static void pass_through_opt_and_unknown_query(void **state)
{
        tether_session *s = harness_session(&USB_DSO);
        uint64_t id = find_model(s, "DSO-X 2004A");
        tether_value *v = NULL;
        tether_value_new_uint(300, 32, &v);
        assert_int_equal(set_value(s, id, DSO_PROP_TIMEOUT, v), TETHER_SUCCESS);
        tether_connect *c = open_scope(s, id);
        char out[128];
        assert_int_equal(scpi(c, "*OPT?", out, sizeof(out)), TETHER_SUCCESS);
        assert_string_equal(out, "0,0,0\n");
        assert_int_equal(scpi(c, "*CLS", out, sizeof(out)), TETHER_SUCCESS);
        double t0 = now_s();
        assert_int_equal(scpi(c, ":NOSUCH:THING?", out, sizeof(out)), TETHER_ERR_TIMEOUT);
        double took = now_s() - t0;
        assert_true(took >= 0.29 && took < 3.0);
        assert_int_equal(scpi(c, "*IDN?", out, sizeof(out)), TETHER_SUCCESS);
        assert_memory_equal(out, "AGILENT TECHNOLOGIES,DSO-X 2004A,FAMD1,", 39);
        assert_int_equal(scpi(c, ":SYSTem:ERRor?", out, sizeof(out)), TETHER_SUCCESS);
        assert_string_equal(out, "-113,\"Undefined header\"\n");
        /* A command the scope does not know: no answer expected, none
         * waited for, and the error queued. (The simulator also queued
         * -420 for the read that found nothing: cleared first.) */
        assert_int_equal(scpi(c, "*CLS", out, sizeof(out)), TETHER_SUCCESS);
        assert_int_equal(scpi(c, ":NOSUCH:THING 1", out, sizeof(out)), TETHER_SUCCESS);
        assert_int_equal(scpi(c, ":SYSTem:ERRor?", out, sizeof(out)), TETHER_SUCCESS);
        assert_string_equal(out, "-113,\"Undefined header\"\n");
        tether_value_new_uint(5000, 32, &v);
        assert_int_equal(set_value(s, id, DSO_PROP_TIMEOUT, v), TETHER_SUCCESS);
        tether_service_close(c);
        tether_session_close(s);
}

/* ---- the MSO models over simulated USB ---- */

static harness USB_MSO;

static int usb_mso_setup(void **state)
{
        static char specs[N_MODELS][48];
        static const char *args[N_MODELS + 1];
        for (int i = 0; i < N_MODELS; i++) {
                snprintf(specs[i], sizeof(specs[i]), "--simulate=%s:FAMM%d", mso[i].name, i);
                args[i] = specs[i];
        }
        USB_MSO.args = args;
        if (harness_start(&USB_MSO))
                return -1;
        tether_session *s = harness_session(&USB_MSO);
        want_started w = { s, N_MODELS };
        bool ok = harness_wait(all_started, &w, 30000);
        tether_session_close(s);
        return ok ? 0 : -1;
}

static int usb_mso_teardown(void **state)
{
        return harness_stop(&USB_MSO) == 0 ? 0 : -1;
}

static void usb_mso_models_identified(void **state)
{
        tether_session *s = harness_session(&USB_MSO);
        for (int i = 0; i < N_MODELS; i++)
                check_identity(s, &mso[i], "*IDN? and USB id", true);
        tether_session_close(s);
}

/* ---- every model over TCP: *IDN? alone ---- */

typedef struct lan_group {
        const expect *models;
        pid_t sims[N_MODELS];
        char specs[N_MODELS][48];
        const char *args[N_MODELS + 1];
        harness h;
} lan_group;

static lan_group LAN_DSO = { .models = dso }, LAN_MSO = { .models = mso };

/* tether-sim-scope --model M --listen 127.0.0.1:0; its port, from the
 * LISTENING line. */
static pid_t start_lan_sim(const char *model, unsigned *ret_port)
{
        const char *bin = getenv("TETHER_SIM_SCOPE");
        int p[2];
        if (!bin || pipe(p) < 0)
                return -1;
        pid_t pid = fork();
        if (pid == 0) {
                dup2(p[1], 1);
                close(p[0]);
                execl(bin, "tether-sim-scope", "--model", model, "--listen", "127.0.0.1:0", (char *)NULL);
                _exit(127);
        }
        close(p[1]);
        char line[64] = "";
        size_t n = 0;
        struct pollfd pfd = { .fd = p[0], .events = POLLIN };
        while (n < sizeof(line) - 1 && !strchr(line, '\n') && poll(&pfd, 1, 5000) == 1) {
                ssize_t k = read(p[0], line + n, sizeof(line) - 1 - n);
                if (k <= 0)
                        break;
                n += (size_t)k;
                line[n] = '\0';
        }
        close(p[0]);
        if (pid < 0 || sscanf(line, "LISTENING %u", ret_port) != 1) {
                if (pid > 0) {
                        kill(pid, SIGKILL);
                        waitpid(pid, NULL, 0);
                }
                return -1;
        }
        return pid;
}

static int lan_setup(lan_group *g)
{
        for (int i = 0; i < N_MODELS; i++) {
                unsigned port = 0;
                g->sims[i] = start_lan_sim(g->models[i].name, &port);
                if (g->sims[i] < 0)
                        return -1;
                snprintf(g->specs[i], sizeof(g->specs[i]), "--lan=127.0.0.1:%u", port);
                g->args[i] = g->specs[i];
        }
        g->h.args = g->args;
        if (harness_start(&g->h))
                return -1;
        tether_session *s = harness_session(&g->h);
        want_started w = { s, N_MODELS };
        bool ok = harness_wait(all_started, &w, 30000);
        tether_session_close(s);
        return ok ? 0 : -1;
}

static int lan_teardown(lan_group *g)
{
        int rc = harness_stop(&g->h) == 0 ? 0 : -1;
        for (int i = 0; i < N_MODELS; i++) {
                if (g->sims[i] > 0) {
                        kill(g->sims[i], SIGTERM);
                        waitpid(g->sims[i], NULL, 0);
                }
        }
        return rc;
}

static int lan_dso_setup(void **state) { return lan_setup(&LAN_DSO); }
static int lan_dso_teardown(void **state) { return lan_teardown(&LAN_DSO); }
static int lan_mso_setup(void **state) { return lan_setup(&LAN_MSO); }
static int lan_mso_teardown(void **state) { return lan_teardown(&LAN_MSO); }

static void lan_models_identified(void **state)
{
        lan_group *g = *state;
        tether_session *s = harness_session(&g->h);
        for (int i = 0; i < N_MODELS; i++)
                check_identity(s, &g->models[i], "*IDN?", false);
        tether_session_close(s);
}

/* Over TCP the scope's silence lasts until TimeoutMs; then the driver has
 * a new connection (a raw socket has no device clear), and the next call
 * works on it. The error queue is the instrument's, kept across. */
static void lan_unknown_query_times_out(void **state)
{
        lan_group *g = *state;
        tether_session *s = harness_session(&g->h);
        uint64_t id = find_model(s, "DSO-X 2022A");
        tether_value *v = NULL;
        tether_value_new_uint(300, 32, &v);
        assert_int_equal(set_value(s, id, DSO_PROP_TIMEOUT, v), TETHER_SUCCESS);
        tether_connect *c = open_scope(s, id);
        char out[128];
        assert_int_equal(scpi(c, "*CLS", out, sizeof(out)), TETHER_SUCCESS);
        double t0 = now_s();
        assert_int_equal(scpi(c, "*NOSUCH?", out, sizeof(out)), TETHER_ERR_TIMEOUT);
        double took = now_s() - t0;
        assert_true(took >= 0.29 && took < 3.0);
        assert_int_equal(scpi(c, "*OPT?", out, sizeof(out)), TETHER_SUCCESS);
        assert_string_equal(out, "0,0,0\n");
        assert_int_equal(scpi(c, ":SYST:ERR?", out, sizeof(out)), TETHER_SUCCESS);
        assert_string_equal(out, "-113,\"Undefined header\"\n");
        tether_value_new_uint(5000, 32, &v);
        assert_int_equal(set_value(s, id, DSO_PROP_TIMEOUT, v), TETHER_SUCCESS);
        tether_service_close(c);
        tether_session_close(s);
}

int main(void)
{
        const struct CMUnitTest usb_dso_tests[] = {
                cmocka_unit_test(usb_dso_models_identified),
                cmocka_unit_test(four_channels_usable),
                cmocka_unit_test(two_channels_refuse_channel_3),
                cmocka_unit_test(clipped_trace),
                cmocka_unit_test(pass_through_opt_and_unknown_query),
        };
        const struct CMUnitTest usb_mso_tests[] = {
                cmocka_unit_test(usb_mso_models_identified),
        };
        const struct CMUnitTest lan_dso_tests[] = {
                cmocka_unit_test_prestate(lan_models_identified, &LAN_DSO),
                cmocka_unit_test_prestate(lan_unknown_query_times_out, &LAN_DSO),
        };
        const struct CMUnitTest lan_mso_tests[] = {
                cmocka_unit_test_prestate(lan_models_identified, &LAN_MSO),
        };
        int failed = cmocka_run_group_tests_name("usb-dso", usb_dso_tests, usb_dso_setup, usb_dso_teardown);
        failed += cmocka_run_group_tests_name("usb-mso", usb_mso_tests, usb_mso_setup, usb_mso_teardown);
        failed += cmocka_run_group_tests_name("lan-dso", lan_dso_tests, lan_dso_setup, lan_dso_teardown);
        failed += cmocka_run_group_tests_name("lan-mso", lan_mso_tests, lan_mso_setup, lan_mso_teardown);
        return failed;
}
