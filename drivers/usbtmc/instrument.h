/* SPDX-License-Identifier: MIT */
#ifndef TETHER_DRIVER_USBTMC_INSTRUMENT_H
#define TETHER_DRIVER_USBTMC_INSTRUMENT_H

/*
 * The generic USBTMC/USB488 driver's own state, shared by its modules:
 * service.c (the device, identity, capabilities, properties), client.c
 * (the user client: I/O methods, held answers, async reads), lock.c (the
 * exclusive lock and its waiters), srq.c (service requests: polling and
 * delivery). Everything runs on the service's work loop; nothing here is
 * touched from another thread.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tether/driver.h>
#include <tether/usbtmc-instrument.h>

#include "core/clock.h"
#include "usbtmc/backend-libusb.h"
#include "usbtmc/backend-vusb.h"
#include "usbtmc/usbtmc.h"

/* How long an async read waits on the device at a time: the longest other
 * calls of the instrument (an abort, a status byte) wait behind it. */
#define TMC_SLICE_MS 20u
/* How often SRQs are looked for while a connection listens: interrupt-IN,
 * or the status byte of an instrument without that endpoint. */
#define TMC_SRQ_POLL_MS 20u
#define TMC_STB_POLL_MS 100u
/* How soon SRQs a full port refused are offered again. */
#define TMC_SRQ_RETRY_MS 10u
/* *IDN? at start: an instrument that does not answer costs this much. */
#define TMC_IDN_TIMEOUT_MS 2000u
#define TMC_DEFAULT_TIMEOUT_MS 5000u
#define TMC_MAX_TIMEOUT_MS 600000u
/* A synchronous call waits at most this per transfer, whatever TimeoutMs
 * says: it holds the work loop while it waits, and a loop that does not
 * answer tetherd's heartbeat for its watchdog (10 s by default) gets the
 * driver host killed. An async read, which waits on timers, has all of
 * TimeoutMs. */
#define TMC_SYNC_MAX_WAIT_MS 8000u

typedef struct tmc_client tmc_client;

typedef struct tmc_instr {
        tether_service *svc;
        usbtmc usb;
        usbtmc_vusb *vusb;          /* a simulated device */
        libusb_context *usb_ctx;    /* a real one */
        usbtmc_usb *usb_dev;
        bool gone;                  /* the device went away: every device call NotAttached */
        unsigned timeout_ms;        /* TimeoutMs; usb.timeout_ms is it capped at TMC_SYNC_MAX_WAIT_MS */
        tmc_client *clients;        /* every open connection */

        tmc_client *lock_owner;
        tether_timer *lock_timer;   /* the earliest waiter's deadline */
        unsigned n_waiters;
        uint64_t wait_seq;

        tmc_client *reader;         /* whose async read is in flight */
        tether_timer *read_timer;

        tether_timer *srq_timer;    /* polls while someone listens */
        tether_timer *srq_retry_timer;
        unsigned srq_listeners;
        bool stb_rqs;               /* RQS in the last polled status byte */
        /* The *SRE mask as the instrument has it (read at start, then
         * followed in the messages written through this driver): without
         * interrupt-IN the control reply's bit 6 is RQS, always 0
         * (USB488 4.3.1.1), so MSS is the summary bits under this mask. */
        uint8_t sre;
} tmc_instr;

struct tmc_client {
        tether_user_client *uc;
        tmc_instr *in;              /* NULL once stopped */
        tmc_client *prev, *next;

        /* An answer read for this connection and not yet returned (a
         * TMC_QUERY that did not fit): returned by its next reads. */
        uint8_t *held;
        size_t held_len, held_off;
        unsigned held_end;

        bool waiting;               /* for the lock, async */
        tether_async_ref lock_ref;
        uint64_t lock_deadline, lock_seq;

        tether_memory *read_mem;    /* TMC_MEMORY_READ_BUFFER */
        tether_async_ref read_ref;  /* while in->reader == this */
        size_t read_n, read_max;
        uint64_t read_deadline;

        bool srq_on;
        tether_async_ref srq_ref;
        uint8_t srq_stb[TMC_SRQ_QUEUE];
        uint64_t srq_seq_of[TMC_SRQ_QUEUE];
        unsigned srq_head, srq_n;
        uint64_t srq_seq, srq_lost;
};


/* A link error as the caller hears it: a device gone (unplugged, its
 * simulator dead) marks the instrument gone and is NotAttached. */
tether_ret_t tmc_link_result(tmc_instr *in, tether_ret_t r);

/* client.c */
extern const tether_user_client_ops tmc_client_ops;
/* End the async read in flight with result (the device's transfer aborted
 * first when abort_device). */
void tmc_read_finish(tmc_instr *in, tether_ret_t result, bool abort_device);
void tmc_read_timer_fired(tether_service *svc, tether_timer *timer, void *refcon, tether_ret_t status);

/* lock.c */
tether_ret_t tmc_lock(tmc_client *c, uint64_t timeout_ms, const tether_async_ref *async_ref);
tether_ret_t tmc_unlock(tmc_client *c);
/* A connection going away: its lock released, its wait given up. */
void tmc_lock_forget(tmc_client *c);
void tmc_lock_timer_fired(tether_service *svc, tether_timer *timer, void *refcon, tether_ret_t status);

/* srq.c */
tether_ret_t tmc_srq_enable(tmc_client *c, const tether_async_ref *async_ref);
tether_ret_t tmc_srq_disable(tmc_client *c);
void tmc_srq_forget(tmc_client *c);
/* usbtmc's on_srq: one SRQ, to every listener. */
void tmc_srq_seen(void *ctx, uint8_t stb);
/* A status byte read from the control reply (no interrupt-IN): an SRQ if
 * MSS (RQS, or the summary bits under the *SRE mask) rose since the last
 * one read. */
void tmc_srq_status_byte(tmc_instr *in, uint8_t stb);
/* A program message on its way to the device: its *SRE n, if any, noted. */
void tmc_srq_note_message(tmc_instr *in, const void *msg, size_t n);
/* The device is gone: every stream ends NotAttached. */
void tmc_srq_end_all(tmc_instr *in, tether_ret_t why);
void tmc_srq_timer_fired(tether_service *svc, tether_timer *timer, void *refcon, tether_ret_t status);
void tmc_srq_retry_fired(tether_service *svc, tether_timer *timer, void *refcon, tether_ret_t status);

#endif
