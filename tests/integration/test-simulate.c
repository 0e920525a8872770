/* SPDX-License-Identifier: MIT */
/* tetherd --simulate NAME[:SERIAL] for each simulator in its table: the
 * nub a simulated 34461A gets (its USB ids, what it is), the simulator
 * tetherd starts for the driver that opens it (the DSOX2000 driver, which
 * matches any Keysight USBTMC interface, asks it *IDN? and lets it go),
 * several of each kind at once, how tetherd finds the simulator programs,
 * and the refusal of an unknown name or an unfit serial. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dsox2000/dsox2000.h"
#include "harness.h"

static char serial_a[16], serial_b[16], scope_a[16], scope_b[16];

static int group_setup(void **state)
{
        /* This run's own serials: other runs' simulators are not its. */
        int id = (int)(getpid() % 100000);
        snprintf(serial_a, sizeof(serial_a), "DMA%05d", id);
        snprintf(serial_b, sizeof(serial_b), "DMB%05d", id);
        snprintf(scope_a, sizeof(scope_a), "SCA%05d", id);
        snprintf(scope_b, sizeof(scope_b), "SCB%05d", id);
        return 0;
}

static bool log_has(const harness *h, const char *text, int times)
{
        FILE *f = fopen(h->log, "r");
        char line[1024];
        int n = 0;
        while (f && fgets(line, sizeof(line), f))
                n += strstr(line, text) != NULL;
        if (f)
                fclose(f);
        return n >= times;
}

typedef struct log_wait {
        const harness *h;
        const char *text;
        int times;
} log_wait;

static bool logged(void *ctx)
{
        log_wait *w = ctx;
        return log_has(w->h, w->text, w->times);
}

static const char *prop_string(tether_session *s, uint64_t id, const char *key, char *buf, size_t size)
{
        tether_value *v = NULL;
        const char *str = NULL;
        assert_int_equal(tether_registry_entry_get_property(s, id, key, &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_string(v, &str), TETHER_SUCCESS);
        snprintf(buf, size, "%s", str);
        tether_value_unref(v);
        return buf;
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

/* The USB device nub with this serial, or 0. */
static uint64_t nub_with_serial(tether_session *s, const char *serial)
{
        tether_value *m = NULL;
        uint64_t *ids = NULL, found = 0;
        size_t n = 0;
        assert_int_equal(tether_service_matching("TetherUSBDevice", &m), TETHER_SUCCESS);
        assert_int_equal(tether_get_matching_services(s, m, &ids, &n), TETHER_SUCCESS);
        for (size_t i = 0; i < n && !found; i++) {
                char buf[64];
                if (!strcmp(prop_string(s, ids[i], "USB Serial Number", buf, sizeof(buf)), serial))
                        found = ids[i];
        }
        free(ids);
        tether_value_unref(m);
        return found;
}

static size_t count_class(tether_session *s, const char *class_name)
{
        tether_value *m = NULL;
        uint64_t *ids = NULL;
        size_t n = 0;
        assert_int_equal(tether_service_matching(class_name, &m), TETHER_SUCCESS);
        assert_int_equal(tether_get_matching_services(s, m, &ids, &n), TETHER_SUCCESS);
        free(ids);
        tether_value_unref(m);
        return n;
}

/* Whether a simulator with this serial is running (any run's tetherd). */
static bool simulator_running(const char *program, const char *serial)
{
        char cmd[160];
        /* [x]: pgrep's own shell's command line must not match. */
        snprintf(cmd, sizeof(cmd), "pgrep -f '%s --usb-fd 3 --serial [%c]%s' >/dev/null", program, serial[0],
                 serial + 1);
        return system(cmd) == 0;
}

#define NOT_A_SCOPE "34461A is not an InfiniiVision 2000 X: not driving it"

static void a_simulated_dmm(void **state)
{
        char spec[32];
        snprintf(spec, sizeof(spec), "34461a:%s", serial_a);
        harness h = { .simulate = spec, .log_to_file = true };
        assert_int_equal(harness_start(&h), 0);
        tether_session *s = harness_session(&h);
        uint64_t nub = nub_with_serial(s, serial_a);
        assert_true(nub != 0);
        char buf[64];
        assert_int_equal(prop_uint(s, nub, "idVendor"), 0x2a8d);
        assert_int_equal(prop_uint(s, nub, "idProduct"), 0x1301);
        assert_int_equal(prop_uint(s, nub, "bInterfaceClass"), 0xfe);
        assert_int_equal(prop_uint(s, nub, "bInterfaceSubClass"), 0x03);
        assert_int_equal(prop_uint(s, nub, "bInterfaceProtocol"), 1);
        assert_string_equal(prop_string(s, nub, "USB Product Name", buf, sizeof(buf)), "34461A");
        assert_string_equal(prop_string(s, nub, "TetherSimulator", buf, sizeof(buf)), "tether-sim-dmm");
        assert_string_equal(prop_string(s, nub, "TetherSimulatedModel", buf, sizeof(buf)), "34461a");
        tether_entry_info *info = NULL;
        assert_int_equal(tether_registry_entry_get_info(s, nub, &info), TETHER_SUCCESS);
        assert_string_equal(info->name, "34461A");
        assert_string_equal(info->location, "sim0");
        tether_entry_info_free(info);
        /* The DSOX2000 driver matched it (vendor 0x2A8D), opened it,
         * tetherd started tether-sim-dmm for it, and the answer to *IDN?
         * told the driver it is no scope. */
        log_wait w = { &h, NOT_A_SCOPE, 1 };
        assert_true(harness_wait(logged, &w, 10000));
        assert_true(log_has(&h, "Keysight Technologies " NOT_A_SCOPE, 1));
        assert_int_equal(count_class(s, DSO_CLASS), 0);
        tether_session_close(s);
        assert_int_equal(harness_stop(&h), 0);
        assert_false(simulator_running("tether-sim-dmm", serial_a));
}

/* Two of each kind: four nubs with their own ids and serials, a DSOX2000
 * on each scope, each DMM let go. */
static void two_of_each_kind(void **state)
{
        char a[32], b[32], c[32], d[32];
        snprintf(a, sizeof(a), "dsox2002a:%s", scope_a);
        snprintf(b, sizeof(b), "34461a:%s", serial_a);
        snprintf(c, sizeof(c), "DSOX2002A:%s", scope_b); /* names are case-insensitive */
        snprintf(d, sizeof(d), "34461A:%s", serial_b);
        const char *args[] = { "--simulate", b, "--simulate", c, "--simulate", d, NULL };
        harness h = { .simulate = a, .args = args, .log_to_file = true };
        assert_int_equal(harness_start(&h), 0);
        tether_session *s = harness_session(&h);
        assert_int_equal(count_class(s, "TetherUSBDevice"), 4);
        const char *scopes[] = { scope_a, scope_b }, *dmms[] = { serial_a, serial_b };
        char buf[64];
        for (int i = 0; i < 2; i++) {
                uint64_t nub = nub_with_serial(s, scopes[i]);
                assert_true(nub != 0);
                assert_int_equal(prop_uint(s, nub, "idVendor"), 0x0957);
                assert_int_equal(prop_uint(s, nub, "idProduct"), 0x179b); /* the DSO-X 2002A's */
                assert_string_equal(prop_string(s, nub, "TetherSimulator", buf, sizeof(buf)), "tether-sim-scope");
                assert_string_equal(prop_string(s, nub, "TetherSimulatedModel", buf, sizeof(buf)), "dsox2002a");
                nub = nub_with_serial(s, dmms[i]);
                assert_true(nub != 0);
                assert_int_equal(prop_uint(s, nub, "idVendor"), 0x2a8d);
                assert_string_equal(prop_string(s, nub, "TetherSimulator", buf, sizeof(buf)), "tether-sim-dmm");
        }
        log_wait w = { &h, NOT_A_SCOPE, 2 };
        assert_true(harness_wait(logged, &w, 15000));
        /* Each scope's driver talks to its own simulator. */
        tether_value *m = NULL;
        uint64_t *ids = NULL;
        size_t n = 0;
        for (int tries = 0; tries < 100 && n < 2; tries++) {
                free(ids);
                ids = NULL;
                tether_service_matching(DSO_CLASS, &m);
                assert_int_equal(tether_get_matching_services(s, m, &ids, &n), TETHER_SUCCESS);
                tether_value_unref(m);
                if (n < 2)
                        usleep(100 * 1000);
        }
        assert_int_equal(n, 2);
        bool seen[2] = { false, false };
        for (size_t i = 0; i < n; i++) {
                tether_value *v = NULL;
                for (int tries = 0; tries < 100; tries++) {
                        if (tether_registry_entry_get_property(s, ids[i], DSO_PROP_SERIAL, &v) == TETHER_SUCCESS)
                                break;
                        usleep(100 * 1000);
                }
                const char *str = NULL;
                assert_int_equal(tether_value_get_string(v, &str), TETHER_SUCCESS);
                for (int k = 0; k < 2; k++)
                        seen[k] |= !strcmp(str, scopes[k]);
                tether_value_unref(v);
        }
        free(ids);
        assert_true(seen[0] && seen[1]);
        tether_session_close(s);
        assert_int_equal(harness_stop(&h), 0);
        assert_false(simulator_running("tether-sim-dmm", serial_b));
        assert_false(simulator_running("tether-sim-scope", scope_b));
}

/* tetherd run to its exit: status, and what it said. */
static int tetherd_exit(const char *simulate, char *err, size_t cap)
{
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                dup2(p[1], 2);
                close(p[0]);
                char sock[64];
                snprintf(sock, sizeof(sock), "/tmp/tether-simulate-%d.sock", (int)getpid());
                execl(getenv("TETHERD"), "tetherd", "--socket", sock, "--no-usb", "--simulate", simulate,
                      (char *)NULL);
                _exit(127);
        }
        close(p[1]);
        size_t got = 0;
        ssize_t n;
        while (got < cap - 1 && (n = read(p[0], err + got, cap - 1 - got)) > 0)
                got += (size_t)n;
        err[got] = '\0';
        close(p[0]);
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void unknown_names_and_bad_serials(void **state)
{
        char err[4096];
        assert_int_equal(tetherd_exit("keithley2000", err, sizeof(err)), 2);
        assert_non_null(strstr(err, "--simulate: unknown instrument 'keithley2000' (known: dsox2002a, dsox2004a, "));
        assert_non_null(strstr(err, ", msox2024a, 34461a)"));
        assert_int_equal(tetherd_exit("34461a-and-more-than-thirty-two-characters", err, sizeof(err)), 2);
        assert_non_null(strstr(err, "unknown instrument"));
        assert_int_equal(tetherd_exit("", err, sizeof(err)), 2);
        assert_non_null(strstr(err, "unknown instrument '' (known: dsox2002a, "));
        const char *bad[] = { "34461a:", "34461a:A,B", "34461a:A B", "dsox2002a:A;B",
                              "34461a:SERIAL-THAT-IS-LONGER-THAN-31-CHARS" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_equal(tetherd_exit(bad[i], err, sizeof(err)), 2);
                assert_non_null(strstr(err, "the serial must be 1 to 31 printable characters"));
        }
}

/* $TETHER_SIM_DMM names the binary; without it, $TETHER_SIM_DIR holds the
 * programs; a binary that cannot be started fails the driver's open,
 * and says so. */
static void finding_the_simulator(void **state)
{
        char *own = strdup(getenv("TETHER_SIM_DMM"));
        char *dir = strdup(own);
        unsetenv("TETHER_SIM_DMM");
        setenv("TETHER_SIM_DIR", dirname(dir), 1);
        char spec[32];
        snprintf(spec, sizeof(spec), "34461a:%s", serial_a);
        harness h = { .simulate = spec, .log_to_file = true };
        assert_int_equal(harness_start(&h), 0);
        log_wait w = { &h, NOT_A_SCOPE, 1 };
        assert_true(harness_wait(logged, &w, 10000));
        assert_int_equal(harness_stop(&h), 0);

        setenv("TETHER_SIM_DMM", "/nonexistent/tether-sim-dmm", 1);
        harness g = { .simulate = spec, .log_to_file = true };
        assert_int_equal(harness_start(&g), 0);
        log_wait fail = { &g, "cannot start a simulator (/nonexistent/tether-sim-dmm)", 1 };
        assert_true(harness_wait(logged, &fail, 10000));
        assert_false(log_has(&g, NOT_A_SCOPE, 1));
        assert_int_equal(harness_stop(&g), 0);
        setenv("TETHER_SIM_DMM", own, 1);
        unsetenv("TETHER_SIM_DIR");
        free(own);
        free(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(a_simulated_dmm),
                cmocka_unit_test(two_of_each_kind),
                cmocka_unit_test(unknown_names_and_bad_serials),
                cmocka_unit_test(finding_the_simulator),
        };
        return cmocka_run_group_tests(tests, group_setup, NULL);
}
