/* SPDX-License-Identifier: MIT */
#ifndef TETHER_SIM_SCOPE_H
#define TETHER_SIM_SCOPE_H

/*
 * A simulated Keysight (Agilent) InfiniiVision 2000 X oscilloscope, any
 * model of the series (models.h; the DSO-X 2002A unless told otherwise):
 * its SCPI command set, settings, acquisition and measurements, error
 * queue and IEEE 488.2 status. Transport-free: a USBTMC device side
 * (sim_usbtmc_ops) or a TCP server feeds it program messages and drains
 * its output queue.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "models.h"

#define SIM_RECORD_POINTS 62500u  /* the NORMal-mode record of this series */
#define SIM_ERROR_QUEUE   30u

typedef struct sim_scope_config {
        const sim_model *spec;     /* which model of the series; default sim_model_default() */
        const char *manufacturer;  /* default "AGILENT TECHNOLOGIES" */
        const char *model;         /* what *IDN? calls it; default spec->idn_model */
        const char *serial;        /* default "MY57235663" */
        const char *firmware;      /* default "02.42.2017032900" */
        uint64_t seed;             /* noise; the same seed gives the same samples */
} sim_scope_config;

typedef struct sim_scope sim_scope;

int sim_scope_new(const sim_scope_config *cfg, sim_scope **ret);
void sim_scope_free(sim_scope *s);

/* Execute one complete program message. */
void sim_scope_execute(sim_scope *s, const char *msg, size_t len);
/* Bytes waiting in the output queue, and taking them. */
size_t sim_scope_output_pending(const sim_scope *s);
size_t sim_scope_output_take(sim_scope *s, uint8_t *buf, size_t cap);
/* A query found nothing to read (the host asked with an empty queue):
 * -420 Query UNTERMINATED goes on the error queue. */
void sim_scope_query_unterminated(sim_scope *s);
/* Device clear (USBTMC INITIATE_CLEAR, 488.2 DCL): input and output
 * queues emptied, a pending acquisition aborted; settings, errors and
 * status kept. */
void sim_scope_device_clear(sim_scope *s);
/* Milliseconds until queued answers may go out: a :DIGitize or :SINGle
 * takes a sweep (10 divisions of the timebase), and answers queued behind
 * it wait for it, as on the instrument. 0 when nothing is pending. */
unsigned sim_scope_output_ready_in_ms(const sim_scope *s);
/* IEEE 488.2 status byte (MAV, ESB, error queue, MSS). */
uint8_t sim_scope_status_byte(const sim_scope *s);
/* The last error pushed, for tests (0 if none). */
int sim_scope_last_error(const sim_scope *s);
/* The model it plays (its USB side presents that model's product id). */
const sim_model *sim_scope_model(const sim_scope *s);

#endif
