/* SPDX-License-Identifier: MIT */
#ifndef TETHER_TOOLS_SCPI_LINK_H
#define TETHER_TOOLS_SCPI_LINK_H

/*
 * tether scpi's one view of an instrument, whichever driver serves it:
 * the generic USBTMC driver's methods (scpi-link.c, tmc_ops) or the
 * DSOX2000 driver's pass-through (dso_ops). The tool calls these and
 * nothing driver-specific; an operation a driver has no method for is
 * TETHER_ERR_UNSUPPORTED, and the tool says so naming the driver.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tether/tether.h>

typedef struct scpi_link scpi_link;

typedef struct scpi_link_ops {
        const char *class_name; /* the serving driver's registry class */
        /* One program message. query: read the whole answer into *ret
         * (malloc()ed, *ret_len bytes, the terminating newline kept). */
        tether_ret_t (*send)(scpi_link *l, const char *msg, bool query, uint8_t **ret, size_t *ret_len);
        tether_ret_t (*status_byte)(scpi_link *l, uint8_t *ret);
        tether_ret_t (*clear)(scpi_link *l);
        tether_ret_t (*lock)(scpi_link *l);
        tether_ret_t (*unlock)(scpi_link *l);
} scpi_link_ops;

struct scpi_link {
        const scpi_link_ops *ops;
        tether_session *s;
        tether_connect *c;
        uint64_t id;
};

/* The driver behind a registry class, or NULL: not one tether scpi talks to. */
const scpi_link_ops *scpi_link_ops_for(const char *class_name);
/* Every class scpi_link_ops_for knows, NULL-terminated. */
extern const char *const scpi_link_classes[];

tether_ret_t scpi_link_open(tether_session *s, uint64_t id, const scpi_link_ops *ops, scpi_link *ret);
void scpi_link_close(scpi_link *l);

/* TimeoutMs: a property both drivers have (the instrument's, shared by
 * its connections). */
tether_ret_t scpi_link_get_timeout(scpi_link *l, unsigned *ret_ms);
tether_ret_t scpi_link_set_timeout(scpi_link *l, unsigned ms, char **ret_why);

/* A query is a message whose last header ends in '?' (as VISA shells
 * decide): "*IDN?", "MEAS:VOLT? 10", ":DISP:DATA? PNG", "*CLS;*OPC?". */
bool scpi_is_query(const char *msg);

/* An IEEE 488.2 block, "#<n><len><data>" or "#0<data>" (the indefinite
 * form: to the end, the final newline not the data's). true and the data
 * when the answer is one. */
bool scpi_block(const uint8_t *p, size_t n, const uint8_t **ret_data, size_t *ret_len);

#endif
