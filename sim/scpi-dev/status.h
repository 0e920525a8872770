/* SPDX-License-Identifier: MIT */
#ifndef TETHER_SIM_SCPI_STATUS_H
#define TETHER_SIM_SCPI_STATUS_H

/*
 * IEEE 488.2 status reporting, device side, for every simulated
 * instrument: the error queue SYSTem:ERRor? drains, the Standard Event
 * Status Register with its enable (*ESR?, *ESE), the Service Request
 * Enable (*SRE), the status byte's common summary bits (EAV, ESB, MSS) and
 * SCPI's condition/event/enable registers (STATus:QUEStionable,
 * STATus:OPERation). What stays with each instrument is what differs
 * between them: its queue's length, its own summary bits (MAV, QUES,
 * OPER), how it writes a number back and what its *OPC waits for.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Standard Event Status Register (IEEE 488.2 11.5.1) */
#define SCPI_ESR_OPC 0x01u
#define SCPI_ESR_QYE 0x04u
#define SCPI_ESR_DDE 0x08u
#define SCPI_ESR_EXE 0x10u
#define SCPI_ESR_CME 0x20u
#define SCPI_ESR_PON 0x80u
/* Status byte (IEEE 488.2 11.2; EAV, QUES, OPER as SCPI places them) */
#define SCPI_STB_EAV  0x04u /* the error queue is not empty */
#define SCPI_STB_QUES 0x08u
#define SCPI_STB_MAV  0x10u
#define SCPI_STB_ESB  0x20u
#define SCPI_STB_MSS  0x40u
#define SCPI_STB_OPER 0x80u

#define SCPI_STATUS_QUEUE_MAX 32u
/* Room for SYSTem:ERRor?'s answer: +NNN,"text" */
#define SCPI_ERROR_ANSWER_MAX 64u

typedef struct scpi_status {
        int errors[SCPI_STATUS_QUEUE_MAX];
        size_t queue_len; /* the instrument's, at most SCPI_STATUS_QUEUE_MAX */
        size_t n_errors;
        int last_error;   /* for tests: the last pushed, 0 if none */
        uint8_t esr, ese, sre;
} scpi_status;

/* Everything zero, with a queue of queue_len entries (1 to
 * SCPI_STATUS_QUEUE_MAX; outside that, clamped). */
void scpi_status_init(scpi_status *st, size_t queue_len);
/* An error: its class's ESR bit (-1xx CME, -2xx EXE, -3xx DDE, -4xx QYE)
 * and a queue entry; a full queue's last entry becomes -350 Queue
 * overflow. */
void scpi_status_push_error(scpi_status *st, int code);
/* SYSTem:ERRor?: the oldest error taken from the queue and written as
 * the answer (+0,"No error" when empty). */
void scpi_status_next_error(scpi_status *st, char answer[SCPI_ERROR_ANSWER_MAX]);
/* SCPI's text for an error number ("Error" for one it does not know). */
const char *scpi_error_text(int code);
/* *CLS's common part: the queue and the ESR emptied. */
void scpi_status_clear(scpi_status *st);
/* *ESR?: the register, read and cleared. */
uint8_t scpi_status_take_esr(scpi_status *st);
/* The status byte from the instrument's own summary bits: EAV, ESB and
 * MSS added (MSS when a bit *SRE enables is set). */
uint8_t scpi_status_byte(const scpi_status *st, uint8_t summary);

/* A SCPI status register: a condition, the event register that latches
 * its rises, and the enable that summarises them into the status byte. */
typedef struct scpi_register {
        uint16_t cond, event, enable;
} scpi_register;

/* Set or clear condition bits; those that rise latch in the event. */
void scpi_register_set(scpi_register *r, uint16_t bits, bool on);
/* :EVENt?: the event register, read and cleared. */
uint16_t scpi_register_take_event(scpi_register *r);
/* Its summary bit in the status byte: an enabled event is latched. */
bool scpi_register_summary(const scpi_register *r);

#endif
