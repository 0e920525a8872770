/* SPDX-License-Identifier: MIT */
#ifndef TETHER_TEST_TMC_CLIENT_H
#define TETHER_TEST_TMC_CLIENT_H

/*
 * The little clients of the tests that drive the generic USBTMC driver
 * (include/tether/usbtmc-instrument.h) through a real tetherd: its calls,
 * the properties they read, finding a service by class, async results.
 * Those that return a value assert success and fail the test otherwise.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <tether/tether.h>

/* For harness_wait: is a service of class cls up in session s? Its id in
 * id once it is. */
typedef struct find_ctx {
        tether_session *s;
        const char *cls;
        uint64_t id;
} find_ctx;
bool service_up(void *ctx);

tether_ret_t tmc_write(tether_connect *c, const char *text);
/* cap bytes at most into buf, their count in *n, TMC_END_* in *end. */
tether_ret_t tmc_query(tether_connect *c, const char *cmd, char *buf, size_t cap, size_t *n, uint64_t *end);
tether_ret_t tmc_read(tether_connect *c, char *buf, size_t cap, size_t *n, uint64_t *end);
/* cmd's whole answer (one message: EOM), NUL-terminated, until the next
 * call. */
const char *ask(tether_connect *c, const char *cmd);
uint64_t read_stb(tether_connect *c);
/* A method with no arguments, and with one scalar. */
tether_ret_t call0(tether_connect *c, uint32_t sel);
tether_ret_t call1(tether_connect *c, uint32_t sel, uint64_t in);

/* A string property's value, until the next call; a bool property's. */
const char *prop_string(tether_session *s, uint64_t id, const char *key);
bool prop_bool(tether_session *s, uint64_t id, const char *key);

/* An async call's result, as on_result (its refcon) records it. */
typedef struct result {
        int calls;
        tether_ret_t r;
        uint64_t args[4];
} result;
void on_result(void *refcon, tether_ret_t r, const uint64_t *args, uint32_t n);
/* Dispatch port for up to ms until res has its result: exactly one. */
void await(tether_notification_port *port, result *res, unsigned ms);

#endif
