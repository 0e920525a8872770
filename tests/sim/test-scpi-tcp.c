/* SPDX-License-Identifier: MIT */
/* SCPI over TCP: tether's link against the simulator's LAN front, in one
 * process (the server on a thread): text answers, binary blocks that hold
 * newline bytes, overrun, timeout and a vanished peer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scpi/link.h"
#include "scpi/scpi.h"
#include "tcp-front.h"

typedef struct server {
        sim_scope *scope;
        int fd;
        uint16_t port;
        volatile sig_atomic_t stop;
        pthread_t thread;
} server;

static void *serve(void *arg)
{
        server *sv = arg;
        sim_tcp_serve(sv->scope, sv->fd, &sv->stop);
        return NULL;
}

static int setup(void **state)
{
        server *sv = calloc(1, sizeof(*sv));
        sim_scope_new(NULL, &sv->scope);
        sv->fd = sim_tcp_listen("127.0.0.1", 0, &sv->port);
        if (sv->fd < 0)
                return -1;
        pthread_create(&sv->thread, NULL, serve, sv);
        *state = sv;
        return 0;
}

static int teardown(void **state)
{
        server *sv = *state;
        sv->stop = 1;
        pthread_join(sv->thread, NULL);
        close(sv->fd);
        sim_scope_free(sv->scope);
        free(sv);
        return 0;
}

static scpi_link open_link(server *sv, unsigned timeout_ms)
{
        scpi_link l;
        assert_int_equal(scpi_link_tcp_open("127.0.0.1", sv->port, timeout_ms, &l), TETHER_SUCCESS);
        return l;
}

static void text_answers(void **state)
{
        scpi_link l = open_link(*state, 2000);
        char buf[128];
        size_t n = 0;
        assert_int_equal(scpi_link_write(&l, "*IDN?", 5), TETHER_SUCCESS); /* the link adds the newline */
        assert_int_equal(scpi_link_read(&l, buf, sizeof(buf), &n), TETHER_SUCCESS);
        const char *idn = "AGILENT TECHNOLOGIES,DSO-X 2002A,MY57235663,02.42.2017032900\n";
        assert_int_equal(n, strlen(idn));
        assert_memory_equal(buf, idn, n);
        /* Two answers in flight, read one at a time. */
        assert_int_equal(scpi_link_write(&l, "*OPC?\n", 6), TETHER_SUCCESS);
        assert_int_equal(scpi_link_write(&l, ":TIM:SCAL?\n", 11), TETHER_SUCCESS);
        assert_int_equal(scpi_link_read(&l, buf, sizeof(buf), &n), TETHER_SUCCESS);
        assert_memory_equal(buf, "1\n", 2);
        assert_int_equal(scpi_link_read(&l, buf, sizeof(buf), &n), TETHER_SUCCESS);
        assert_memory_equal(buf, "+1.00000000E-04\n", n);
        scpi_link_close(&l);
}

static void blocks_with_newline_bytes(void **state)
{
        scpi_link l = open_link(*state, 2000);
        /* The offset moves the sine's trough down to the bottom codes, through
         * 10 (a newline byte). */
        const char *cmd = ":AUT;:CHAN2:OFFS 0.9;:WAV:SOUR CHAN2;FORM BYTE;:WAV:POIN 62500;:WAV:DATA?";
        assert_int_equal(scpi_link_write(&l, cmd, strlen(cmd)), TETHER_SUCCESS);
        uint8_t *buf = malloc(70000);
        size_t n = 0;
        assert_int_equal(scpi_link_read(&l, buf, 70000, &n), TETHER_SUCCESS);
        const uint8_t *data;
        size_t len;
        assert_int_equal(scpi_block_parse(buf, n, &data, &len), TETHER_SUCCESS);
        assert_int_equal(len, 62500);
        assert_int_equal(n, 2 + 5 + 62500 + 1);
        /* The block really holds newline bytes. */
        assert_non_null(memchr(data, '\n', len));
        /* And the link is in step afterwards. */
        char t[16];
        assert_int_equal(scpi_link_write(&l, "*OPC?", 5), TETHER_SUCCESS);
        assert_int_equal(scpi_link_read(&l, t, sizeof(t), &n), TETHER_SUCCESS);
        assert_memory_equal(t, "1\n", 2);
        free(buf);
        scpi_link_close(&l);
}

static void overrun_then_in_step(void **state)
{
        scpi_link l = open_link(*state, 2000);
        char small[10], t[16];
        size_t n = 0;
        assert_int_equal(scpi_link_write(&l, "*IDN?", 5), TETHER_SUCCESS);
        assert_int_equal(scpi_link_read(&l, small, sizeof(small), &n), TETHER_ERR_OVERRUN);
        assert_int_equal(n, sizeof(small));
        assert_int_equal(scpi_link_write(&l, "*OPC?", 5), TETHER_SUCCESS);
        assert_int_equal(scpi_link_read(&l, t, sizeof(t), &n), TETHER_SUCCESS);
        assert_memory_equal(t, "1\n", 2);
        scpi_link_close(&l);
}

static void timeout_and_gone(void **state)
{
        server *sv = *state;
        scpi_link l = open_link(sv, 100);
        char t[16];
        size_t n = 0;
        /* Nothing asked: nothing comes, the read times out. */
        assert_int_equal(scpi_link_read(&l, t, sizeof(t), &n), TETHER_ERR_TIMEOUT);
        scpi_link_close(&l);
        /* Nothing listening: refused at once. */
        scpi_link dead;
        int fd = sim_tcp_listen("127.0.0.1", 0, NULL);
        uint16_t port = 0;
        close(fd);
        fd = sim_tcp_listen("127.0.0.1", 0, &port);
        close(fd);
        assert_int_equal(scpi_link_tcp_open("127.0.0.1", port, 100, &dead), TETHER_ERR_NOT_RESPONDING);
}

static void late_answer_is_not_taken_for_the_next(void **state)
{
        scpi_link l = open_link(*state, 100);
        char t[64];
        size_t n = 0;
        /* 20 ms/div: the answer comes after a 200 ms sweep, past the 100 ms
         * timeout. It must not be read as the next command's answer. */
        assert_int_equal(scpi_link_write(&l, ":TIM:SCAL 20ms", 14), TETHER_SUCCESS);
        assert_int_equal(scpi_link_write(&l, ":DIG CHAN1;*OPC?", 16), TETHER_SUCCESS);
        assert_int_equal(scpi_link_read(&l, t, sizeof(t), &n), TETHER_ERR_TIMEOUT);
        scpi_link_set_timeout(&l, 2000);
        assert_int_equal(scpi_link_write(&l, ":TIM:SCAL?", 10), TETHER_SUCCESS);
        assert_int_equal(scpi_link_read(&l, t, sizeof(t), &n), TETHER_SUCCESS);
        assert_int_equal(n, 16);
        assert_memory_equal(t, "+2.00000000E-02\n", n);
        scpi_link_close(&l);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        const struct CMUnitTest tests[] = {
                T(text_answers),
                T(blocks_with_newline_bytes),
                T(overrun_then_in_step),
                T(timeout_and_gone),
                T(late_answer_is_not_taken_for_the_next),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
