/* SPDX-License-Identifier: MIT */
/* The per-party rate limit on warnings: a burst gets through, the rest is
 * counted and said in one line. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

/* stderr into a temporary file for the length of one test. */
static FILE *capture;
static int saved_stderr = -1;

static int capture_start(void **state)
{
        fflush(stderr);
        capture = tmpfile();
        saved_stderr = dup(2);
        dup2(fileno(capture), 2);
        return capture && saved_stderr >= 0 ? 0 : -1;
}

static int capture_stop(void **state)
{
        fflush(stderr);
        dup2(saved_stderr, 2);
        close(saved_stderr);
        fclose(capture);
        return 0;
}

static unsigned lines_with(const char *needle, unsigned *ret_suppressed)
{
        fflush(stderr);
        rewind(capture);
        char line[512];
        unsigned n = 0;
        while (fgets(line, sizeof(line), capture)) {
                if (strstr(line, needle))
                        n++;
                const char *p = strstr(line, "messages suppressed");
                if (p && ret_suppressed) {
                        const char *colon = strrchr(line, ':');
                        *ret_suppressed += (unsigned)strtoul(colon ? colon + 1 : line, NULL, 10);
                }
        }
        return n;
}

static void a_burst_then_a_count(void **state)
{
        log_limit l;
        log_limit_init(&l);
        for (int i = 0; i < 1000; i++)
                log_limited(&l, LOG_LVL_WARN, "client pid 7", "client pid 7: bad message %d", i);
        unsigned suppressed = 0;
        assert_int_equal(lines_with("bad message", NULL), LOG_LIMIT_BURST);
        assert_int_equal(lines_with("messages suppressed", &suppressed), 0);
        /* The party goes away: what was held back is said once. */
        log_limit_flush(&l, "client pid 7");
        assert_int_equal(lines_with("messages suppressed", &suppressed), 1);
        assert_int_equal(suppressed, 1000 - LOG_LIMIT_BURST);
        log_limit_flush(&l, "client pid 7"); /* nothing more to say */
        assert_int_equal(lines_with("messages suppressed", NULL), 1);
        log_limit_destroy(&l);
}

static void parties_are_limited_apart(void **state)
{
        log_limit a, b;
        log_limit_init(&a);
        log_limit_init(&b);
        for (int i = 0; i < 100; i++)
                log_limited(&a, LOG_LVL_WARN, "client pid 1", "noisy client %d", i);
        /* The quiet client is still heard. */
        log_limited(&b, LOG_LVL_WARN, "client pid 2", "quiet client");
        assert_int_equal(lines_with("quiet client", NULL), 1);
        assert_int_equal(lines_with("noisy client", NULL), LOG_LIMIT_BURST);
        log_limit_flush(&a, "client pid 1");
        log_limit_destroy(&a);
        log_limit_destroy(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(a_burst_then_a_count, capture_start, capture_stop),
                cmocka_unit_test_setup_teardown(parties_are_limited_apart, capture_start, capture_stop),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
