/* SPDX-License-Identifier: MIT */
#include "tmc-client.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include <tether/usbtmc-instrument.h>

#include "core/clock.h"

bool service_up(void *ctx)
{
        find_ctx *fc = ctx;
        tether_value *m = NULL;
        tether_service_matching(fc->cls, &m);
        tether_ret_t r = tether_get_matching_service(fc->s, m, &fc->id);
        tether_value_unref(m);
        return r == TETHER_SUCCESS;
}

tether_ret_t tmc_write(tether_connect *c, const char *text)
{
        uint64_t flags = 0;
        return tether_call_method(c, TMC_WRITE, &flags, 1, text, strlen(text), NULL, NULL, NULL, NULL);
}

tether_ret_t tmc_query(tether_connect *c, const char *cmd, char *buf, size_t cap, size_t *n, uint64_t *end)
{
        uint32_t n_end = 1;
        *n = cap;
        return tether_call_method(c, TMC_QUERY, NULL, 0, cmd, strlen(cmd), end, &n_end, buf, n);
}

tether_ret_t tmc_read(tether_connect *c, char *buf, size_t cap, size_t *n, uint64_t *end)
{
        uint32_t n_end = 1;
        *n = cap;
        return tether_call_method(c, TMC_READ, NULL, 0, NULL, 0, end, &n_end, buf, n);
}

const char *ask(tether_connect *c, const char *cmd)
{
        static char buf[1024];
        size_t n = 0;
        uint64_t end = 0;
        assert_int_equal(tmc_query(c, cmd, buf, sizeof(buf) - 1, &n, &end), TETHER_SUCCESS);
        assert_int_equal(end, TMC_END_EOM);
        buf[n] = '\0';
        return buf;
}

uint64_t read_stb(tether_connect *c)
{
        uint64_t stb = 0;
        uint32_t one = 1;
        assert_int_equal(tether_call_method(c, TMC_READ_STB, NULL, 0, NULL, 0, &stb, &one, NULL, NULL),
                         TETHER_SUCCESS);
        return stb;
}

tether_ret_t call0(tether_connect *c, uint32_t sel)
{
        return tether_call_method(c, sel, NULL, 0, NULL, 0, NULL, NULL, NULL, NULL);
}

tether_ret_t call1(tether_connect *c, uint32_t sel, uint64_t in)
{
        return tether_call_method(c, sel, &in, 1, NULL, 0, NULL, NULL, NULL, NULL);
}

const char *prop_string(tether_session *s, uint64_t id, const char *key)
{
        static char buf[256];
        tether_value *v = NULL;
        const char *str = NULL;
        assert_int_equal(tether_registry_entry_get_property(s, id, key, &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_string(v, &str), TETHER_SUCCESS);
        snprintf(buf, sizeof(buf), "%s", str);
        tether_value_unref(v);
        return buf;
}

bool prop_bool(tether_session *s, uint64_t id, const char *key)
{
        tether_value *v = NULL;
        bool b = false;
        assert_int_equal(tether_registry_entry_get_property(s, id, key, &v), TETHER_SUCCESS);
        assert_int_equal(tether_value_get_bool(v, &b), TETHER_SUCCESS);
        tether_value_unref(v);
        return b;
}

void on_result(void *refcon, tether_ret_t r, const uint64_t *args, uint32_t n)
{
        result *res = refcon;
        res->calls++;
        res->r = r;
        if (args && n)
                memcpy(res->args, args, (n < 4 ? n : 4) * sizeof(uint64_t));
}

void await(tether_notification_port *port, result *res, unsigned ms)
{
        int fd = tether_notification_port_get_fd(port);
        for (uint64_t until = clock_mono_ms() + ms; !res->calls && clock_mono_ms() < until;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                poll(&p, 1, 20);
                tether_notification_port_dispatch(port);
        }
        assert_int_equal(res->calls, 1);
}
