/* SPDX-License-Identifier: MIT */
#include "status.h"

#include <stdio.h>
#include <string.h>

void scpi_status_init(scpi_status *st, size_t queue_len)
{
        memset(st, 0, sizeof(*st));
        st->queue_len = queue_len < 1 ? 1 : queue_len > SCPI_STATUS_QUEUE_MAX ? SCPI_STATUS_QUEUE_MAX : queue_len;
}

const char *scpi_error_text(int code)
{
        switch (code) {
        case -100: return "Command error";
        case -102: return "Syntax error";
        case -108: return "Parameter not allowed";
        case -109: return "Missing parameter";
        case -113: return "Undefined header";
        case -200: return "Execution error";
        case -211: return "Trigger ignored";
        case -213: return "Init ignored";
        case -221: return "Settings conflict";
        case -222: return "Data out of range";
        case -223: return "Too much data";
        case -224: return "Illegal parameter value";
        case -230: return "Data corrupt or stale";
        case -350: return "Queue overflow";
        case -410: return "Query INTERRUPTED";
        case -420: return "Query UNTERMINATED";
        default: return "Error";
        }
}

void scpi_status_push_error(scpi_status *st, int code)
{
        st->last_error = code;
        if (code <= -100 && code > -200)
                st->esr |= SCPI_ESR_CME;
        else if (code <= -200 && code > -300)
                st->esr |= SCPI_ESR_EXE;
        else if (code <= -300 && code > -400)
                st->esr |= SCPI_ESR_DDE;
        else if (code <= -400 && code > -500)
                st->esr |= SCPI_ESR_QYE;
        if (st->n_errors < st->queue_len)
                st->errors[st->n_errors++] = code;
        else
                st->errors[st->queue_len - 1] = -350; /* the last slot reports the overflow */
}

void scpi_status_next_error(scpi_status *st, char answer[SCPI_ERROR_ANSWER_MAX])
{
        if (!st->n_errors) {
                snprintf(answer, SCPI_ERROR_ANSWER_MAX, "+0,\"No error\"");
                return;
        }
        int code = st->errors[0];
        memmove(st->errors, st->errors + 1, (st->n_errors - 1) * sizeof(int));
        st->n_errors--;
        snprintf(answer, SCPI_ERROR_ANSWER_MAX, "%+d,\"%s\"", code, scpi_error_text(code));
}

void scpi_status_clear(scpi_status *st)
{
        st->n_errors = 0;
        st->esr = 0;
}

uint8_t scpi_status_take_esr(scpi_status *st)
{
        uint8_t esr = st->esr;
        st->esr = 0;
        return esr;
}

uint8_t scpi_status_byte(const scpi_status *st, uint8_t summary)
{
        uint8_t stb = summary & (uint8_t)~SCPI_STB_MSS;
        if (st->n_errors)
                stb |= SCPI_STB_EAV;
        if (st->esr & st->ese)
                stb |= SCPI_STB_ESB;
        if (stb & st->sre)
                stb |= SCPI_STB_MSS;
        return stb;
}

void scpi_register_set(scpi_register *r, uint16_t bits, bool on)
{
        uint16_t was = r->cond;
        r->cond = on ? (uint16_t)(was | bits) : (uint16_t)(was & ~bits);
        r->event |= (uint16_t)(r->cond & ~was); /* positive transitions */
}

uint16_t scpi_register_take_event(scpi_register *r)
{
        uint16_t event = r->event;
        r->event = 0;
        return event;
}

bool scpi_register_summary(const scpi_register *r)
{
        return (r->event & r->enable) != 0;
}
