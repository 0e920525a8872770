/* SPDX-License-Identifier: MIT */
/*
 * The generic USBTMC driver against a hostile client: tests/hostile/
 * usbtmc-attacker.c run as nobody (uid 65534) takes the lock and dies
 * with it, floods every call it may make, opens connections until
 * refused, and keeps an async read in flight; meanwhile a polite client
 * (this process) on the same simulated DSO-X 2002A checks that its answers
 * are its own and right, that Busy and timeouts come when they should and
 * only then, and that the instrument comes back whole afterwards.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tether/usbtmc-instrument.h>

#include "attack.h"
#include "core/clock.h"
#include "harness.h"
#include "tmc-client.h"

static const char *const args[] = { "--no-system-drivers", NULL };
static harness H = { .simulate = "dsox2002a:MY00006666", .args = args };
static tether_session *S;   /* the polite client's */
static uint64_t svc;

/* Every bundle loaded, then DSOX2000 unloaded: the scope goes to the
 * generic driver, the one under test. */
static int group_setup(void **state)
{
        if (harness_start(&H) != 0)
                return -1;
        S = harness_session(&H);
        if (tether_driver_unload(S, "org.tether.dsox2000") != TETHER_SUCCESS)
                return -1;
        find_ctx fc = { S, TMC_CLASS, 0 };
        if (!harness_wait(service_up, &fc, 10000))
                return -1;
        svc = fc.id;
        return 0;
}

static int group_teardown(void **state)
{
        tether_session_close(S);
        return harness_stop(&H) == 0 ? 0 : -1;
}

/* ---- the attacker ---- */

/* The attacker as nobody: usbtmc-attacker SOCKET mode args... */
static void start(attack *a, const char *mode, const char *arg1, const char *arg2)
{
        const char *prog = getenv("TETHER_USBTMC_ATTACKER");
        assert_non_null(prog);
        const char *argv[] = { mode, arg1, arg2, NULL };
        attack_spawn(a, prog, H.sock, ATTACK_NOBODY, argv);
}

static long attacker_value(attack *a, const char *key)
{
        long v = attack_get(a, key, LONG_MIN);
        if (v == LONG_MIN)
                fail_msg("the attacker did not say %s:\n%s", key, a->buf);
        return v;
}

/* Let go (stdin closed), read all it says to its end and reap; its exit
 * status. */
static int attacker_end(attack *a, bool kill_it)
{
        if (kill_it)
                kill(a->pid, SIGKILL);
        close(a->in);
        while (attack_read(a, 1000))
                ;
        if (a->out >= 0)
                close(a->out);
        int status = 0;
        waitpid(a->pid, &status, 0);
        return status;
}

/* ---- the polite client ---- */

static tether_connect *polite_open(void)
{
        tether_connect *c = NULL;
        assert_int_equal(tether_service_open(S, svc, 0, 0, &c), TETHER_SUCCESS);
        return c;
}

/* Its query, the answer its own. */
static tether_ret_t polite_idn(tether_connect *c, uint64_t *ret_ms)
{
        char buf[256];
        size_t n = sizeof(buf);
        uint64_t end = 0;
        uint32_t one = 1;
        uint64_t t0 = clock_mono_ms();
        tether_ret_t r = tether_call_method(c, TMC_QUERY, NULL, 0, "*IDN?", 5, &end, &one, buf, &n);
        if (ret_ms)
                *ret_ms = clock_mono_ms() - t0;
        if (r == TETHER_SUCCESS) {
                assert_int_equal(end, TMC_END_EOM);
                assert_true(n > 32 && !memcmp(buf, "AGILENT TECHNOLOGIES,DSO-X 2002A,MY00006666,", 44));
        }
        return r;
}

static uint32_t open_count(void)
{
        tether_entry_info *info = NULL;
        assert_int_equal(tether_registry_entry_get_info(S, svc, &info), TETHER_SUCCESS);
        uint32_t n = info->open_count;
        tether_entry_info_free(info);
        return n;
}

static bool only_polite(void *ctx)
{
        return open_count() == *(uint32_t *)ctx;
}

static tether_ret_t set_timeout(uint64_t ms)
{
        tether_value *v = NULL;
        tether_value_new_uint(ms, 32, &v);
        return harness_set(S, svc, TMC_PROP_TIMEOUT, v);
}

/* ---- tests ---- */

/* Nobody holds the lock: Busy for the polite client at once (not after a
 * wait), a timed wait that ends Timeout, its settings Busy; nobody dies
 * with it: a waiting polite client gets it at once. */
static void lock_held_by_nobody(void **state)
{
        attack a;
        start(&a, "lock", NULL, NULL);
        assert_true(attack_wait_for(&a, "holding", 10000));
        assert_int_equal(attacker_value(&a, "lock"), TETHER_SUCCESS);
        tether_connect *c = polite_open();
        uint64_t ms = 0;
        for (int i = 0; i < 20; i++) {
                assert_int_equal(polite_idn(c, &ms), TETHER_ERR_BUSY);
                assert_true(ms < 200);
        }
        uint64_t zero = 0;
        assert_int_equal(tether_call_method(c, TMC_LOCK, &zero, 1, NULL, 0, NULL, NULL, NULL, NULL), TETHER_ERR_BUSY);
        tether_value *d = NULL;
        tether_value_new_dict(&d);
        tether_value_dict_set_uint(d, TMC_PROP_TIMEOUT, 4000, 32);
        char *why = NULL;
        assert_int_equal(tether_registry_entry_set_properties_why(S, svc, d, &why), TETHER_ERR_BUSY);
        assert_non_null(strstr(why, "locked by client pid"));
        free(why);
        tether_value_unref(d);
        tether_notification_port *port = NULL;
        assert_int_equal(tether_notification_port_create(S, &port), TETHER_SUCCESS);
        result res = { 0 };
        uint64_t wait = 300;
        uint64_t t0 = clock_mono_ms();
        assert_int_equal(tether_call_async_method(c, TMC_LOCK, port, on_result, &res, &wait, 1, NULL, 0, NULL, NULL,
                                                  NULL, NULL),
                         TETHER_SUCCESS);
        await(port, &res, 3000);
        assert_int_equal(res.r, TETHER_ERR_TIMEOUT);
        assert_true(clock_mono_ms() - t0 >= 300);
        /* Waiting again; the holder dies. */
        memset(&res, 0, sizeof(res));
        wait = 10000;
        assert_int_equal(tether_call_async_method(c, TMC_LOCK, port, on_result, &res, &wait, 1, NULL, 0, NULL, NULL,
                                                  NULL, NULL),
                         TETHER_SUCCESS);
        attacker_end(&a, true);
        t0 = clock_mono_ms();
        await(port, &res, 5000);
        assert_int_equal(res.r, TETHER_SUCCESS);
        assert_true(clock_mono_ms() - t0 < 2000);
        assert_int_equal(polite_idn(c, NULL), TETHER_SUCCESS);
        assert_int_equal(tether_call_method(c, TMC_UNLOCK, NULL, 0, NULL, 0, NULL, NULL, NULL, NULL), TETHER_SUCCESS);
        tether_notification_port_destroy(port);
        tether_service_close(c);
        uint32_t none = 0;
        assert_true(harness_wait(only_polite, &none, 3000));
}

/* Nobody floods: the polite client's answers are right and come within a
 * bound while it does; the attacker's own answers were its own too. */
static void call_flood_by_nobody(void **state)
{
        tether_connect *c = polite_open();
        uint64_t quiet = 0, ms = 0;
        for (int i = 0; i < 10; i++) {
                assert_int_equal(polite_idn(c, &ms), TETHER_SUCCESS);
                quiet = ms > quiet ? ms : quiet;
        }
        /* The attacker's reads with nothing asked each hold the
         * instrument for TimeoutMs, as a real one NAKs for that long (and
         * 5 s of it would leave the polite client waiting behind one): a
         * short one, so this measures the flood. */
        assert_int_equal(set_timeout(300), TETHER_SUCCESS);
        attack a;
        start(&a, "flood", "seconds=3", "conns=4");
        uint64_t worst = 0, until = clock_mono_ms() + 2500;
        int answered = 0;
        while (clock_mono_ms() < until) {
                tether_ret_t r = polite_idn(c, &ms);
                /* Timeout is the one other honest answer: the attacker's
                 * READ with nothing asked clears the device under nobody,
                 * but a clear between our write and read cannot happen
                 * (a query is one call on the work loop). */
                assert_int_equal(r, TETHER_SUCCESS);
                answered++;
                worst = ms > worst ? ms : worst;
        }
        assert_int_equal(attacker_end(&a, false), 0);
        assert_true(attacker_value(&a, "calls") > 100);
        assert_true(attacker_value(&a, "answered") > 10);
        assert_int_equal(attacker_value(&a, "wrong"), 0);
        print_message("polite *IDN? during the flood: %d answers, worst %llu ms (quiet: worst %llu ms)\n", answered,
                      (unsigned long long)worst, (unsigned long long)quiet);
        assert_true(answered >= 20);
        assert_true(worst < 2000);
        assert_int_equal(polite_idn(c, NULL), TETHER_SUCCESS);
        assert_int_equal(set_timeout(5000), TETHER_SUCCESS);
        tether_service_close(c);
        uint32_t none = 0;
        assert_true(harness_wait(only_polite, &none, 3000));
}

/* Nobody opens connections until tetherd refuses: the polite client still
 * gets one and its answers; they all go when nobody does. */
static void connection_flood_by_nobody(void **state)
{
        attack a;
        start(&a, "conns", NULL, NULL);
        assert_true(attack_wait_for(&a, "holding", 30000));
        long opened = attacker_value(&a, "opened");
        assert_true(opened > 0);
        assert_int_not_equal(attacker_value(&a, "refused"), TETHER_SUCCESS);
        tether_connect *c = polite_open();
        assert_int_equal(polite_idn(c, NULL), TETHER_SUCCESS);
        assert_int_equal(open_count(), (uint32_t)opened + 1);
        assert_int_equal(attacker_end(&a, false), 0);
        uint32_t one = 1;
        assert_true(harness_wait(only_polite, &one, 5000));
        assert_int_equal(polite_idn(c, NULL), TETHER_SUCCESS);
        tether_service_close(c);
}

/* Nobody keeps an async read in flight: the polite client is told Busy,
 * may end that read (TMC_ABORT), and then gets its answer. */
static void async_read_hog(void **state)
{
        attack a;
        start(&a, "async-hog", "seconds=3", NULL);
        tether_connect *c = polite_open();
        int busy = 0, served = 0;
        for (uint64_t until = clock_mono_ms() + 2000; clock_mono_ms() < until;) {
                tether_ret_t r = polite_idn(c, NULL);
                if (r == TETHER_ERR_BUSY) {
                        busy++;
                        r = tether_call_method(c, TMC_ABORT, NULL, 0, NULL, 0, NULL, NULL, NULL, NULL);
                        assert_true(r == TETHER_SUCCESS || r == TETHER_ERR_NOT_FOUND);
                        continue;
                }
                assert_int_equal(r, TETHER_SUCCESS);
                served++;
        }
        assert_int_equal(attacker_end(&a, false), 0);
        print_message("against the async-read hog: %d answers, %d Busy then aborted\n", served, busy);
        assert_true(served >= 5);
        assert_int_equal(polite_idn(c, NULL), TETHER_SUCCESS);
        tether_service_close(c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(lock_held_by_nobody),
                cmocka_unit_test(call_flood_by_nobody),
                cmocka_unit_test(connection_flood_by_nobody),
                cmocka_unit_test(async_read_hog),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
