/* SPDX-License-Identifier: MIT */
#ifndef TETHER_SIM_DMM_H
#define TETHER_SIM_DMM_H

/*
 * A simulated Keysight 34461A (Truevolt) digital multimeter: a SCPI subset
 * of its command set (MEASure?, CONFigure, READ?, INITiate, FETCh?, the
 * trigger and sample counts, ranges and integration times, limit testing,
 * the STATus registers, IEEE 488.2 common commands, the error queue), and
 * a measurement that takes the time its integration time says, readings
 * that are deterministic given a seed, and a status system (Standard
 * Event, Questionable Data, Standard Operation, the status byte with MSS)
 * that changes as a measurement runs and completes. Transport-free: a
 * USBTMC device side (dmm-usb.h) feeds it program messages and drains its
 * output queue. docs/sim-dmm.md has what was checked against Keysight's
 * documentation and what is assumed.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <tether/return.h>

#include "measure.h"

#define SIM_DMM_ERROR_QUEUE 20u
#define SIM_DMM_MEMORY      10000u   /* readings the 34461A's memory holds */
#define SIM_DMM_MAX_SAMPLES 1000000u /* SAMPle:COUNt's largest */
/* Readings one answer may carry: the instrument streams READ?'s readings,
 * the simulator renders an answer whole and bounds it (-223 past this). */
#define SIM_DMM_MAX_ANSWER  65536u
/* Bytes the output queue holds at most, whatever a message asks for (a
 * host cannot make the simulator grow without bound). */
#define SIM_DMM_MAX_OUTPUT  (4u << 20)

/* The Standard Event register and the status byte: sim/scpi-dev/status.h */
/* Questionable Data register */
#define SIM_DMM_QUES_VOLT_OVLD  0x0001u
#define SIM_DMM_QUES_CURR_OVLD  0x0002u
#define SIM_DMM_QUES_RES_OVLD   0x0200u
#define SIM_DMM_QUES_LIMIT_LOW  0x0800u
#define SIM_DMM_QUES_LIMIT_HIGH 0x1000u
#define SIM_DMM_QUES_MEM_OVFL   0x4000u
/* Standard Operation register */
#define SIM_DMM_OPER_MEASURING 0x0010u
#define SIM_DMM_OPER_WAIT_TRIG 0x0020u
#define SIM_DMM_OPER_CONFIG    0x0100u

typedef struct sim_dmm_config {
        const char *manufacturer; /* default "Keysight Technologies" */
        const char *model;        /* default "34461A" */
        const char *serial;       /* default SIM_DMM_DEFAULT_SERIAL */
        const char *firmware;     /* default "A.02.08-02.37-02.08-00.49-01-01" */
        uint64_t seed;            /* noise; the same seed gives the same readings */
        /* Seconds on a monotonic clock; NULL: CLOCK_MONOTONIC. Tests step
         * their own. */
        double (*clock)(void *ctx);
        void *clock_ctx;
} sim_dmm_config;

#define SIM_DMM_DEFAULT_SERIAL "MY59001234"

typedef struct sim_dmm sim_dmm;

/* TETHER_ERR_NO_MEMORY, or TETHER_ERR_BAD_ARGUMENT for an identity string
 * that would not fit *IDN?'s answer (over 63 bytes, or a comma). */
tether_ret_t sim_dmm_new(const sim_dmm_config *cfg, sim_dmm **ret);
void sim_dmm_free(sim_dmm *m);

/* Execute one complete program message. */
void sim_dmm_execute(sim_dmm *m, const char *msg, size_t len);
/* Bytes in the output queue (ready or not), peeking at and taking them. */
size_t sim_dmm_output_pending(const sim_dmm *m);
size_t sim_dmm_output_peek(const sim_dmm *m, uint8_t *buf, size_t cap);
size_t sim_dmm_output_take(sim_dmm *m, uint8_t *buf, size_t cap);
/* Milliseconds until the queued answer may go: readings still being
 * taken, or a trigger still awaited (then a long time). 0: ready. */
unsigned sim_dmm_output_ready_in_ms(const sim_dmm *m);
/* A query found nothing to read: -420 Query UNTERMINATED. */
void sim_dmm_query_unterminated(sim_dmm *m);
/* Device clear: the output queue emptied, a measurement aborted;
 * settings, errors and status registers kept. */
void sim_dmm_device_clear(sim_dmm *m);
/* The IEEE 488.2 status byte, bit 6 MSS, as of now. */
uint8_t sim_dmm_status_byte(sim_dmm *m);
/* A bus trigger (*TRG, or a Group Execute Trigger). */
void sim_dmm_trigger(sim_dmm *m);

/* For tests: the last error pushed (0 if none); the input a function
 * sees (the default: measure.c's). */
int sim_dmm_last_error(const sim_dmm *m);
void sim_dmm_set_input(sim_dmm *m, dmm_function f, double value);

#endif
