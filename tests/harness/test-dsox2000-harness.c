/* SPDX-License-Identifier: MIT */
/*
 * The DSOX2000 bundle under the driver test harness, on a simulated
 * DSO-X 2002A: the nub's device is a socket pair whose other end is fd 3
 * of a `tether-sim-scope --usb-fd 3` process started here, as tetherd
 * does for --simulate. The driver's whole USBTMC path runs, with no
 * tetherd: start (*IDN?, settings), properties through its checks, calls,
 * an async digitize, and stop, after which the simulator sees the hang-up
 * and exits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tether/driver-test.h>

#include "dsox2000/dsox2000.h"

#ifndef DSOX2000_BUNDLE
#error "DSOX2000_BUNDLE: the built org.tether.dsox2000.tether folder"
#endif

/* The simulators started, to reap (and kill, should one outlive its test). */
static pid_t sims[8];
static unsigned n_sims;

/* The simulator to start: its binary and arguments after --usb-fd 3. */
typedef struct sim_args {
        const char *bin;
        const char *args[6]; /* NULL-terminated */
} sim_args;

/* The device function: what tetherd's device.c does for a simulated scope,
 * minus the privilege drop. Runs on the driver's loop. */
static tether_ret_t sim_scope(void *ctx, tether_test_nub *nub, tether_device_kind *kind, int *fd)
{
        const sim_args *a = ctx;
        int sv[2];
        if (n_sims == sizeof(sims) / sizeof(sims[0]) || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return TETHER_ERR_NO_RESOURCES;
        pid_t pid = fork();
        if (pid == 0) {
                /* dup2 clears close-on-exec on the copy: fd 3 alone goes through. */
                const char *argv[10] = { "tether-sim-scope", "--usb-fd", "3" };
                for (int i = 0; a->args[i] && i < 6; i++)
                        argv[3 + i] = a->args[i];
                if (dup2(sv[1], 3) == 3)
                        execv(a->bin, (char *const *)argv);
                _exit(127);
        }
        close(sv[1]);
        if (pid < 0) {
                close(sv[0]);
                return TETHER_ERR_NO_RESOURCES;
        }
        sims[n_sims++] = pid;
        *kind = TETHER_DEVICE_VUSB;
        *fd = sv[0];
        return TETHER_SUCCESS;
}

/* Each simulator exits 0 once its socket's other end is closed. */
static void reap_sims(void)
{
        for (unsigned i = 0; i < n_sims; i++) {
                int status = -1;
                for (int tries = 0; tries < 500 && waitpid(sims[i], &status, WNOHANG) == 0; tries++) {
                        struct timespec ts = { 0, 10 * 1000000L };
                        nanosleep(&ts, NULL);
                        status = -1;
                }
                if (status == -1) {
                        kill(sims[i], SIGKILL);
                        waitpid(sims[i], NULL, 0);
                        fail_msg("tether-sim-scope %d did not exit after the driver let go of it", (int)sims[i]);
                }
                assert_true(WIFEXITED(status));
                assert_int_equal(WEXITSTATUS(status), 0);
        }
        n_sims = 0;
}

typedef struct fx {
        tether_test *t;
        tether_test_bundle *b;
        tether_test_nub *nub;
} fx;

static int setup(void **state)
{
        fx *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        assert_int_equal(tether_test_new(&f->t), TETHER_SUCCESS);
        assert_int_equal(tether_test_load(f->t, DSOX2000_BUNDLE, &f->b), TETHER_SUCCESS);
        /* What tetherd publishes for the simulated DSO-X 2002A. */
        tether_value *p = NULL;
        assert_int_equal(tether_value_new_dict(&p), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_uint(p, "idVendor", 0x0957, 16), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_uint(p, "idProduct", 0x1796, 16), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_uint(p, "bInterfaceClass", 0xfe, 8), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_uint(p, "bInterfaceSubClass", 3, 8), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_uint(p, "bInterfaceProtocol", 1, 8), TETHER_SUCCESS);
        assert_int_equal(tether_test_nub_new(f->t, "TetherUSBDevice", p, &f->nub), TETHER_SUCCESS);
        tether_value_unref(p);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        fx *f = *state;
        tether_test_free(f->t);
        reap_sims();
        free(f);
        return 0;
}

static void test_no_device(void **state)
{
        fx *f = *state;
        const char *drv = NULL;
        assert_int_equal(tether_test_match(f->b, f->nub, &drv), TETHER_SUCCESS);
        assert_string_equal(drv, DSO_CLASS);
        /* A nub with no device behind it: start refuses it. */
        tether_test_service *svc = NULL;
        assert_int_equal(tether_test_start(f->b, DSO_CLASS, f->nub, &svc), TETHER_ERR_UNSUPPORTED);
        assert_null(svc);
}

typedef struct completion {
        int calls;
        tether_ret_t result;
        uint64_t arg0;
} completion;

static void completed(void *refcon, tether_ret_t result, const uint64_t *args, uint32_t count)
{
        completion *c = refcon;
        c->calls++;
        c->result = result;
        c->arg0 = count ? args[0] : 0;
}

static void test_simulated_scope(void **state)
{
        fx *f = *state;
        static sim_args sim;
        sim.bin = getenv("TETHER_SIM_SCOPE");
        assert_non_null(sim.bin);
        assert_int_equal(tether_test_nub_set_device(f->nub, sim_scope, &sim), TETHER_SUCCESS);
        tether_test_service *svc = NULL;
        assert_int_equal(tether_test_start(f->b, DSO_CLASS, f->nub, &svc), TETHER_SUCCESS);
        assert_int_equal(n_sims, 1);

        /* Identity from *IDN?, through the simulator's USBTMC side. */
        tether_value *v = NULL;
        const char *s = NULL;
        assert_int_equal(tether_test_property(svc, DSO_PROP_MODEL, &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_string(v, &s), TETHER_SUCCESS);
        assert_string_equal(s, "DSO-X 2002A");
        v = tether_value_unref(v);
        /* The nub says 0957:1796, a 2024A's id: *IDN? is believed. */
        assert_int_equal(tether_test_property(svc, DSO_PROP_IDENTIFIED, &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_string(v, &s), TETHER_SUCCESS);
        assert_string_equal(s, "*IDN? (the USB id says 2024A)");
        v = tether_value_unref(v);

        /* A setting through the driver's checks, sent and read back. */
        const tether_task user = { .uid = 1000, .gid = 1000 };
        tether_value *d = NULL;
        assert_int_equal(tether_value_new_dict(&d), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_double(d, DSO_PROP_TIMEBASE, 1e-3), TETHER_SUCCESS);
        assert_int_equal(tether_test_set_properties(svc, &user, d, NULL), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set_double(d, DSO_PROP_TIMEBASE, 500.0), TETHER_SUCCESS);
        assert_int_equal(tether_test_set_properties(svc, &user, d, NULL), TETHER_ERR_BAD_ARGUMENT);
        tether_value_unref(d);
        double tb = 0;
        assert_int_equal(tether_test_property(svc, DSO_PROP_TIMEBASE, &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_double(v, &tb), TETHER_SUCCESS);
        assert_true(fabs(tb - 1e-3) < 1e-9);
        v = tether_value_unref(v);

        /* Calls: SCPI pass-through, a measurement, an async digitize. */
        tether_session *ses = NULL;
        tether_connect *c = NULL;
        assert_int_equal(tether_test_session_open(f->t, &user, &ses), TETHER_SUCCESS);
        assert_int_equal(tether_service_open(ses, tether_test_service_id(svc), 0, 0, &c), TETHER_SUCCESS);
        char idn[256];
        size_t size = sizeof(idn) - 1;
        assert_int_equal(tether_call_struct_method(c, DSO_SCPI, "*IDN?", 5, idn, &size), TETHER_SUCCESS);
        idn[size] = '\0';
        assert_non_null(strstr(idn, "DSO-X 2002A"));
        uint64_t in[2] = { 1, DSO_MEAS_FREQUENCY }, out[1];
        uint32_t n = 1;
        assert_int_equal(tether_call_scalar_method(c, DSO_MEASURE, in, 2, out, &n), TETHER_SUCCESS);
        double hz;
        memcpy(&hz, &out[0], sizeof(hz));
        assert_true(fabs(hz - 1000.0) < 10.0); /* the probe-compensation square wave */
        in[0] = 3;
        n = 1;
        assert_int_equal(tether_call_scalar_method(c, DSO_MEASURE, in, 2, out, &n), TETHER_ERR_BAD_ARGUMENT);
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(ses, &port), TETHER_SUCCESS);
        completion done = { 0 };
        uint64_t mask = 1;
        assert_int_equal(tether_call_async_method(c, DSO_DIGITIZE, port, completed, &done, &mask, 1, NULL, 0, NULL,
                                                  NULL, NULL, NULL),
                         TETHER_SUCCESS);
        assert_int_equal(tether_test_port_wait(port, 10000), TETHER_SUCCESS);
        assert_int_equal(done.calls, 1);
        assert_int_equal(done.result, TETHER_SUCCESS);
        assert_int_equal(done.arg0, 1);

        /* Stopped: the driver closes its device, and the simulator exits. */
        assert_int_equal(tether_test_stop(svc), TETHER_SUCCESS);
        n = 1;
        assert_int_equal(tether_call_scalar_method(c, DSO_MEASURE, in, 2, out, &n), TETHER_ERR_NOT_ATTACHED);
        tether_notification_port_destroy(port);
        tether_service_close(c);
        tether_session_close(ses);
        reap_sims();
}

/* One identification: a nub with these USB ids, the simulator started
 * with these arguments; what start() says, and if it started, the model
 * it took and how. */
typedef struct ident_case {
        uint16_t vendor, product;
        const char *sim[5];
        tether_ret_t started;
        const char *identified_by;
        uint64_t channels, digital;
        double bandwidth;
} ident_case;

static const ident_case ident_cases[] = {
        /* Both agree. */
        { 0x0957, 0x1796, { "--model", "dsox2024a" }, TETHER_SUCCESS, "*IDN? and USB id", 4, 0, 200e6 },
        { 0x0957, 0x179b, { "--model", "msox2002a" }, TETHER_SUCCESS, "*IDN? and USB id", 2, 8, 70e6 },
        /* *IDN? names a model of the series this driver lacks: the USB id
         * says which (the simulator is a 2024A calling itself otherwise). */
        { 0x0957, 0x1796, { "--model", "dsox2024a", "--idn-model", "DSO-X 2099A" }, TETHER_SUCCESS, "USB id", 4, 0,
          200e6 },
        { 0x0957, 0x1798, { "--model", "msox2014a", "--idn-model", "MSOX2099A" }, TETHER_SUCCESS, "USB id", 4, 8,
          100e6 },
        /* A spelling without dash and space is still the model. */
        { 0x0957, 0x1797, { "--model", "dsox2022a", "--idn-model", "DSOX2022A" }, TETHER_SUCCESS,
          "*IDN? and USB id", 2, 0, 200e6 },
        /* They disagree (a licence upgrade, say): *IDN? wins. */
        { 0x0957, 0x1799, { "--model", "dsox2002a" }, TETHER_SUCCESS, "*IDN? (the USB id says 2012A)", 2, 0, 70e6 },
        /* Keysight's vendor id: its product ids mean other instruments. */
        { 0x2a8d, 0x1797, { "--model", "dsox2014a" }, TETHER_SUCCESS, "*IDN?", 4, 0, 100e6 },
        /* Neither knows it: not driven. */
        { 0x0957, 0x1234, { "--idn-model", "DSO-X 2099A" }, TETHER_ERR_UNSUPPORTED, NULL, 0, 0, 0 },
        /* Not of the series, whatever its USB id. */
        { 0x0957, 0x1796, { "--idn-model", "DSO-X 3024A" }, TETHER_ERR_UNSUPPORTED, NULL, 0, 0, 0 },
};

static void test_model_identification(void **state)
{
        fx *f = *state;
        const char *bin = getenv("TETHER_SIM_SCOPE");
        assert_non_null(bin);
        for (size_t i = 0; i < sizeof(ident_cases) / sizeof(ident_cases[0]); i++) {
                const ident_case *k = &ident_cases[i];
                tether_value *p = NULL;
                assert_int_equal(tether_value_new_dict(&p), TETHER_SUCCESS);
                assert_int_equal(tether_value_dict_set_uint(p, "idVendor", k->vendor, 16), TETHER_SUCCESS);
                assert_int_equal(tether_value_dict_set_uint(p, "idProduct", k->product, 16), TETHER_SUCCESS);
                assert_int_equal(tether_value_dict_set_uint(p, "bInterfaceClass", 0xfe, 8), TETHER_SUCCESS);
                assert_int_equal(tether_value_dict_set_uint(p, "bInterfaceSubClass", 3, 8), TETHER_SUCCESS);
                assert_int_equal(tether_value_dict_set_uint(p, "bInterfaceProtocol", 1, 8), TETHER_SUCCESS);
                tether_test_nub *nub = NULL;
                assert_int_equal(tether_test_nub_new(f->t, "TetherUSBDevice", p, &nub), TETHER_SUCCESS);
                tether_value_unref(p);
                sim_args sim = { .bin = bin };
                memcpy(sim.args, k->sim, sizeof(k->sim));
                assert_int_equal(tether_test_nub_set_device(nub, sim_scope, &sim), TETHER_SUCCESS);
                tether_test_service *svc = NULL;
                tether_ret_t r = tether_test_start(f->b, DSO_CLASS, nub, &svc);
                if (r != k->started)
                        fail_msg("case %zu: start says %s, not %s", i, tether_strerror(r), tether_strerror(k->started));
                if (r == TETHER_SUCCESS) {
                        tether_value *v = NULL;
                        const char *by = NULL;
                        uint64_t u = 0;
                        double bw = 0;
                        assert_int_equal(tether_test_property(svc, DSO_PROP_IDENTIFIED, &v), TETHER_SUCCESS);
                        assert_int_equal(tether_value_get_string(v, &by), TETHER_SUCCESS);
                        if (strcmp(by, k->identified_by))
                                fail_msg("case %zu: identified by \"%s\", not \"%s\"", i, by, k->identified_by);
                        v = tether_value_unref(v);
                        assert_int_equal(tether_test_property(svc, DSO_PROP_CHANNELS, &v), TETHER_SUCCESS);
                        assert_int_equal(tether_value_get_uint(v, &u), TETHER_SUCCESS);
                        assert_int_equal(u, k->channels);
                        v = tether_value_unref(v);
                        assert_int_equal(tether_test_property(svc, DSO_PROP_DIGITAL, &v), TETHER_SUCCESS);
                        assert_int_equal(tether_value_get_uint(v, &u), TETHER_SUCCESS);
                        assert_int_equal(u, k->digital);
                        v = tether_value_unref(v);
                        assert_int_equal(tether_test_property(svc, DSO_PROP_BANDWIDTH, &v), TETHER_SUCCESS);
                        assert_int_equal(tether_value_get_double(v, &bw), TETHER_SUCCESS);
                        assert_true(bw == k->bandwidth);
                        v = tether_value_unref(v);
                        assert_int_equal(tether_test_stop(svc), TETHER_SUCCESS);
                }
                reap_sims();
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_no_device, setup, teardown),
                cmocka_unit_test_setup_teardown(test_simulated_scope, setup, teardown),
                cmocka_unit_test_setup_teardown(test_model_identification, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
