/* SPDX-License-Identifier: MIT */
/* The per-party rate limit on warnings: a burst gets through, the rest is
 * counted and said in one line. A sink (the journal's) gets each line with
 * the bundle it is about; stderr gets what the sink does not take, with a
 * "<N>" prefix only when stderr is the journal stream. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* ---- sinks and fields ---- */

typedef struct seen_line {
        int level;
        char bundle[LOG_MAX_BUNDLE + 1];
        char msg[256];
} seen_line;

static seen_line seen[64];
static unsigned n_seen;
static bool sink_takes = true;

static bool test_sink(enum log_level level, const log_fields *f, const char *msg)
{
        if (!sink_takes)
                return false;
        if (n_seen < sizeof(seen) / sizeof(seen[0])) {
                seen_line *l = &seen[n_seen++];
                l->level = (int)level;
                snprintf(l->bundle, sizeof(l->bundle), "%s", f->bundle ? f->bundle : "(none)");
                snprintf(l->msg, sizeof(l->msg), "%s", msg);
        }
        return true;
}

static int sink_start(void **state)
{
        n_seen = 0;
        sink_takes = true;
        log_set_sink(test_sink);
        return capture_start(state);
}

static int sink_stop(void **state)
{
        log_set_sink(NULL);
        log_set_process_bundle(NULL);
        unsetenv("JOURNAL_STREAM");
        log_init_from_env();
        return capture_stop(state);
}

static void lines_carry_their_bundle(void **state)
{
        log_msg(LOG_LVL_INFO, "about no bundle");
        log_bundle(LOG_LVL_ERR, "org.x.a", "bundle org.x.a: about a");
        log_set_process_bundle("org.x.host");
        log_msg(LOG_LVL_WARN, "a host's own line");
        log_bundle(LOG_LVL_INFO, "org.x.b", "a host's line about another bundle");
        assert_int_equal(n_seen, 4);
        assert_string_equal(seen[0].bundle, "(none)");
        assert_int_equal(seen[0].level, 6);
        assert_string_equal(seen[0].msg, "about no bundle");
        assert_string_equal(seen[1].bundle, "org.x.a");
        assert_int_equal(seen[1].level, 3);
        assert_string_equal(seen[2].bundle, "org.x.host");
        assert_int_equal(seen[2].level, 4);
        assert_string_equal(seen[3].bundle, "org.x.b");
        /* The sink took them all: nothing on stderr. */
        assert_int_equal(lines_with("about", NULL) + lines_with("host's", NULL), 0);
}

static void a_limits_lines_carry_its_bundle(void **state)
{
        log_limit l;
        log_limit_init(&l);
        log_limit_set_bundle(&l, "org.x.publisher");
        for (unsigned i = 0; i < LOG_LIMIT_BURST + 3; i++)
                log_limited(&l, LOG_LVL_WARN, "nubs of org.x.publisher", "line %u", i);
        log_limited_bundle(&l, LOG_LVL_WARN, "nubs of org.x.publisher", "org.x.matched", "about the matched one");
        log_limit_flush(&l, "nubs of org.x.publisher");
        assert_int_equal(n_seen, LOG_LIMIT_BURST + 1);
        for (unsigned i = 0; i < LOG_LIMIT_BURST; i++)
                assert_string_equal(seen[i].bundle, "org.x.publisher");
        /* Suppressed too (the burst is spent), and counted with the rest. */
        assert_string_equal(seen[LOG_LIMIT_BURST].msg, "nubs of org.x.publisher: 4 messages suppressed");
        assert_string_equal(seen[LOG_LIMIT_BURST].bundle, "org.x.publisher");
        /* A bundle id past LOG_MAX_BUNDLE is cut, not overrun. */
        char longer[LOG_MAX_BUNDLE + 40];
        memset(longer, 'b', sizeof(longer) - 1);
        longer[sizeof(longer) - 1] = '\0';
        log_limit_set_bundle(&l, longer);
        assert_int_equal(strlen(l.bundle), LOG_MAX_BUNDLE);
        log_limit_destroy(&l);
}

static void what_the_sink_refuses_goes_to_stderr(void **state)
{
        sink_takes = false;
        unsetenv("JOURNAL_STREAM");
        log_init_from_env();
        log_bundle(LOG_LVL_WARN, "org.x.a", "refused by the sink");
        assert_int_equal(lines_with("tetherd: warning: refused by the sink", NULL), 1);
        /* stderr is the journal stream: the level as the "<N>" prefix. */
        struct stat st;
        assert_int_equal(fstat(STDERR_FILENO, &st), 0);
        char stream[64];
        snprintf(stream, sizeof(stream), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
        setenv("JOURNAL_STREAM", stream, 1);
        log_init_from_env();
        assert_true(log_stderr_is_journal());
        log_msg(LOG_LVL_ERR, "while the journal is away");
        assert_int_equal(lines_with("<3>while the journal is away", NULL), 1);
        /* Another file's stream (a terminal, inherited): plain lines. */
        snprintf(stream, sizeof(stream), "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino + 1);
        setenv("JOURNAL_STREAM", stream, 1);
        log_init_from_env();
        assert_false(log_stderr_is_journal());
        log_msg(LOG_LVL_INFO, "on a terminal");
        assert_int_equal(lines_with("tetherd: info: on a terminal", NULL), 1);
        setenv("JOURNAL_STREAM", "garbage", 1);
        log_init_from_env();
        assert_false(log_stderr_is_journal());
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(a_burst_then_a_count, capture_start, capture_stop),
                cmocka_unit_test_setup_teardown(parties_are_limited_apart, capture_start, capture_stop),
                cmocka_unit_test_setup_teardown(lines_carry_their_bundle, sink_start, sink_stop),
                cmocka_unit_test_setup_teardown(a_limits_lines_carry_its_bundle, sink_start, sink_stop),
                cmocka_unit_test_setup_teardown(what_the_sink_refuses_goes_to_stderr, sink_start, sink_stop),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
