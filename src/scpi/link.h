/* SPDX-License-Identifier: MIT */
#ifndef TETHER_SCPI_LINK_H
#define TETHER_SCPI_LINK_H

/*
 * SCPI transports behind one interface: a link carries whole program
 * messages out and whole responses back. USBTMC marks message ends with
 * EOM; a raw TCP socket (the LAN option's port 5025) with a newline, except
 * inside an IEEE 488.2 definite-length block, whose bytes may be anything.
 */

#include <stddef.h>
#include <stdint.h>
#include <tether/return.h>

#include "usbtmc/usbtmc.h"

typedef struct scpi_link_ops {
        tether_ret_t (*write)(void *ctx, const void *msg, size_t len);
        /* One whole response. Longer than cap: the rest is read and dropped,
         * TETHER_ERR_OVERRUN, so the next response starts clean. */
        tether_ret_t (*read)(void *ctx, void *buf, size_t cap, size_t *ret_len);
        void (*close)(void *ctx);
        /* How long a read may wait; returns the previous value. */
        unsigned (*set_timeout)(void *ctx, unsigned ms);
        /* A response waited for in slices, by a work loop that must not
         * hold its gate for as long as the instrument takes (a sweep):
         * read_begin asks for up to cap bytes; read_wait waits at most
         * wait_ms for the response to begin (TETHER_ERR_TIMEOUT: nothing
         * yet, nothing consumed, call it again), then takes it whole as
         * read does, with the link's timeout; read_abandon gives up on a
         * response begun and leaves the link in step. */
        tether_ret_t (*read_begin)(void *ctx, size_t cap);
        tether_ret_t (*read_wait)(void *ctx, unsigned wait_ms, void *buf, size_t cap, size_t *ret_len);
        void (*read_abandon)(void *ctx);
} scpi_link_ops;

typedef struct scpi_link {
        const scpi_link_ops *ops;
        void *ctx;
} scpi_link;

/* Over USBTMC: t stays the caller's. */
void scpi_link_usbtmc(scpi_link *l, usbtmc *t);

/* Raw SCPI over TCP. timeout_ms bounds connecting and each read. */
tether_ret_t scpi_link_tcp_open(const char *host, uint16_t port, unsigned timeout_ms, scpi_link *ret);

static inline tether_ret_t scpi_link_write(scpi_link *l, const void *msg, size_t len)
{
        return l->ops->write(l->ctx, msg, len);
}

static inline tether_ret_t scpi_link_read(scpi_link *l, void *buf, size_t cap, size_t *ret_len)
{
        return l->ops->read(l->ctx, buf, cap, ret_len);
}

/* Per command: an acquisition may take as long as a sweep. */
static inline unsigned scpi_link_set_timeout(scpi_link *l, unsigned ms)
{
        return l->ops->set_timeout(l->ctx, ms);
}

static inline tether_ret_t scpi_link_read_begin(scpi_link *l, size_t cap)
{
        return l->ops->read_begin(l->ctx, cap);
}

static inline tether_ret_t scpi_link_read_wait(scpi_link *l, unsigned wait_ms, void *buf, size_t cap,
                                               size_t *ret_len)
{
        return l->ops->read_wait(l->ctx, wait_ms, buf, cap, ret_len);
}

static inline void scpi_link_read_abandon(scpi_link *l)
{
        l->ops->read_abandon(l->ctx);
}

static inline void scpi_link_close(scpi_link *l)
{
        if (l->ops && l->ops->close)
                l->ops->close(l->ctx);
        l->ops = NULL;
}

#endif
