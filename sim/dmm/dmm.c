/* SPDX-License-Identifier: MIT */
#include "dmm.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bytes.h"
#include "scpi.h"
#include "response.h"
#include "status.h"

/* The trigger system (Truevolt guide, "Triggering"): idle; INITiate (or
 * READ?) waits for the trigger source; then sample-count readings, one
 * integration time each, into reading memory. */
typedef enum run_state { RUN_IDLE, RUN_WAIT_TRIGGER, RUN_MEASURING } run_state;
typedef enum trigger_source { TRIG_IMMEDIATE, TRIG_BUS, TRIG_EXTERNAL } trigger_source;
/* SCPI's status registers it keeps, beside 488.2's (scpi_status). */
enum { DMM_QUES, DMM_OPER, DMM_REGISTERS };

/* Settings of one measurement function. */
typedef struct fn_settings {
        double range;
        bool autorange;
        double nplc;
} fn_settings;

/* A run: what INITiate started, with the settings it captured. */
typedef struct run {
        run_state state;
        dmm_function fn;
        double range, nplc, input, dt;
        uint32_t count;     /* readings in it */
        uint32_t done;      /* readings taken and accounted for (limits, status) */
        uint64_t base;      /* number of its first reading, for the noise */
        double t0;          /* when the trigger came */
        double finished_at; /* when the last reading was taken (idle) */
} run;

struct sim_dmm {
        char idn[256];
        uint64_t seed, readings; /* readings taken since power-on: each one's noise is its own */
        double (*clock)(void *);
        void *clock_ctx;
        dmm_function fn;
        fn_settings set[DMM_FUNCTIONS];
        double input[DMM_FUNCTIONS];
        uint32_t samples;
        trigger_source source;
        struct {
                bool on;
                double lower, upper;
        } limit;
        run run;
        /* Error queue and status registers. */
        scpi_status status;
        scpi_register reg[DMM_REGISTERS];
        bool opc_armed; /* *OPC: set OPC in the ESR when the run is done */
        /* Output queue: [pos, len) of out is unread. It may go once
         * out_ready_at has passed and, if out_waits_run, the run is done. */
        bytes out;
        size_t out_pos;
        double out_ready_at;
        bool out_waits_run;
        scpi_response resp; /* the answers of the message being executed, into out */
        bool wai;           /* a *WAI earlier in this message */
};

/* ---- time and the run ---- */

#define QUES(m) (&(m)->reg[DMM_QUES])
#define OPER(m) (&(m)->reg[DMM_OPER])

static double mono_s(void *ctx)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now(const sim_dmm *m)
{
        return m->clock(m->clock_ctx);
}

/* When the run's last reading is (or was) taken; +inf while a trigger is
 * awaited. */
static double run_done_at(const sim_dmm *m)
{
        switch (m->run.state) {
        case RUN_WAIT_TRIGGER: return INFINITY;
        case RUN_MEASURING: return m->run.t0 + m->run.count * m->run.dt;
        case RUN_IDLE: break;
        }
        return m->run.finished_at;
}

static double reading_of(const sim_dmm *m, uint32_t k)
{
        const run *r = &m->run;
        return dmm_reading(r->fn, r->input, r->range, r->nplc, m->seed, r->base + k);
}

/* What reading k does to the status: an overload is an event, a limit
 * failure a condition (the latest reading's) whose rise is an event. */
static void account(sim_dmm *m, uint32_t k)
{
        double v = reading_of(m, k);
        if (v >= DMM_OVERLOAD)
                QUES(m)->event |= (uint16_t)dmm_function_get(m->run.fn)->ques_overload;
        if (m->limit.on) {
                scpi_register_set(QUES(m), SIM_DMM_QUES_LIMIT_LOW, v < m->limit.lower);
                scpi_register_set(QUES(m), SIM_DMM_QUES_LIMIT_HIGH, v > m->limit.upper);
        }
}

static void run_finish(sim_dmm *m, double when)
{
        m->run.state = RUN_IDLE;
        m->run.finished_at = when;
        scpi_register_set(OPER(m), SIM_DMM_OPER_MEASURING, false);
        scpi_register_set(OPER(m), SIM_DMM_OPER_WAIT_TRIG, false);
        if (m->opc_armed) {
                m->status.esr |= SCPI_ESR_OPC;
                m->opc_armed = false;
        }
}

/* Bring the run up to now: readings taken since, and the end. */
static void advance(sim_dmm *m)
{
        if (m->run.state != RUN_MEASURING) {
                if (m->run.state == RUN_IDLE && m->opc_armed)
                        run_finish(m, m->run.finished_at);
                return;
        }
        double t = now(m);
        double elapsed = t - m->run.t0;
        uint32_t taken = m->run.count;
        if (elapsed < m->run.count * m->run.dt)
                taken = elapsed <= 0 ? 0 : (uint32_t)(elapsed / m->run.dt);
        for (; m->run.done < taken; m->run.done++)
                account(m, m->run.done);
        if (taken == m->run.count)
                run_finish(m, m->run.t0 + m->run.count * m->run.dt);
}

static void start_measuring(sim_dmm *m)
{
        m->run.state = RUN_MEASURING;
        m->run.t0 = now(m);
        scpi_register_set(OPER(m), SIM_DMM_OPER_WAIT_TRIG, false);
        scpi_register_set(OPER(m), SIM_DMM_OPER_MEASURING, true);
}

static void run_abort(sim_dmm *m)
{
        if (m->run.state == RUN_IDLE)
                return;
        advance(m);
        if (m->run.state == RUN_IDLE)
                return;
        /* What was taken stays in memory. */
        m->run.count = m->run.done;
        run_finish(m, now(m));
}

/* ---- output ---- */

static size_t out_unread(const sim_dmm *m)
{
        return m->out.len - m->out_pos;
}

static void out_clear(sim_dmm *m)
{
        m->out.len = m->out_pos = 0;
        m->out_ready_at = 0;
        m->out_waits_run = false;
}

/* A response unit starts. After a *WAI it waits for the run. */
static void begin_response(sim_dmm *m)
{
        scpi_response_unit(&m->resp);
        if (m->wai)
                m->out_waits_run = true;
}

static void respond(sim_dmm *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void respond(sim_dmm *m, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        scpi_response_vprintf(&m->resp, fmt, ap);
        va_end(ap);
        if (m->wai)
                m->out_waits_run = true;
}

/* NR3 as the Truevolt writes it: +1.00520000E+01 */
static void respond_nr3(sim_dmm *m, double v)
{
        respond(m, "%+.8E", v);
}

/* ---- errors and status ---- */

static void push_error(void *dev, int code)
{
        scpi_status_push_error(&((sim_dmm *)dev)->status, code);
}

static bool out_ready(const sim_dmm *m, double t)
{
        return t >= m->out_ready_at && (!m->out_waits_run || t >= run_done_at(m));
}

uint8_t sim_dmm_status_byte(sim_dmm *m)
{
        advance(m);
        uint8_t summary = 0;
        if (scpi_register_summary(QUES(m)))
                summary |= SCPI_STB_QUES;
        if (out_unread(m) && out_ready(m, now(m)))
                summary |= SCPI_STB_MAV;
        if (scpi_register_summary(OPER(m)))
                summary |= SCPI_STB_OPER;
        return scpi_status_byte(&m->status, summary);
}

int sim_dmm_last_error(const sim_dmm *m)
{
        return m->status.last_error;
}

/* ---- settings ---- */

static void configure_defaults(sim_dmm *m)
{
        for (int f = 0; f < DMM_FUNCTIONS; f++)
                m->set[f] = (fn_settings){ .range = dmm_function_get(f)->ranges[2], .autorange = true, .nplc = 10 };
}

static void reset(sim_dmm *m)
{
        run_abort(m);
        m->fn = DMM_VOLT_DC;
        configure_defaults(m);
        m->samples = 1;
        m->source = TRIG_IMMEDIATE;
        m->limit.on = false;
        m->limit.lower = m->limit.upper = 0;
        m->run.count = m->run.done = 0;
        QUES(m)->cond = 0;
        OPER(m)->cond = 0;
}

/* The range a run on f uses now: the fixed one, or autoranged. */
static double effective_range(const sim_dmm *m, dmm_function f)
{
        return m->set[f].autorange ? dmm_autorange(f, m->input[f]) : m->set[f].range;
}

/* ---- parameters ---- */

#define ONE_ARG(c)                                            \
        do {                                                  \
                if ((c)->n_args != 1)                         \
                        return (c)->n_args ? -108 : -109;     \
        } while (0)
#define NO_ARGS(c)                                            \
        do {                                                  \
                if ((c)->n_args)                              \
                        return -108;                          \
        } while (0)

typedef enum { P_VALUE, P_MIN, P_MAX, P_DEF, P_AUTO } param_kind;

/* A numeric parameter or one of MIN, MAX, DEF (and AUTO where allowed). */
static int numeric_param(const char *arg, bool auto_ok, param_kind *kind, double *v)
{
        if (scpi_keyword(arg, "MINimum"))
                *kind = P_MIN;
        else if (scpi_keyword(arg, "MAXimum"))
                *kind = P_MAX;
        else if (scpi_keyword(arg, "DEFault"))
                *kind = P_DEF;
        else if (auto_ok && scpi_keyword(arg, "AUTO"))
                *kind = P_AUTO;
        else if (scpi_number(arg, v))
                *kind = P_VALUE;
        else
                return -224;
        return 0;
}

/* The function a row acts on (MEASure?, CONFigure, [SENSe:]<function>:...). */
static dmm_function row_function(const scpi_call *c)
{
        return (dmm_function)c->arg;
}

/* CONFigure's and MEASure?'s [{<range>|AUTO|MIN|MAX|DEF} [, {<resolution>|MIN|MAX|DEF}]]
 * into the row's function's settings. */
static int s_configure(void *d, const scpi_call *c)
{
        sim_dmm *m = d;
        dmm_function f = row_function(c);
        if (c->n_args > 2)
                return -108;
        fn_settings s = { .range = dmm_function_get(f)->ranges[2], .autorange = true, .nplc = 10 };
        const dmm_function_info *fi = dmm_function_get(f);
        param_kind k = P_DEF;
        double v = 0;
        int err;
        if (c->n_args >= 1) {
                if ((err = numeric_param(c->args[0], true, &k, &v)))
                        return err;
                if (k == P_MIN || k == P_MAX) {
                        s.autorange = false;
                        s.range = k == P_MIN ? fi->ranges[0] : fi->ranges[fi->n_ranges - 1];
                } else if (k == P_VALUE) {
                        s.autorange = false;
                        if (!dmm_range_for(f, v, &s.range))
                                return -222;
                }
        }
        if (c->n_args == 2) {
                param_kind rk;
                if ((err = numeric_param(c->args[1], false, &rk, &v)))
                        return err;
                double range = s.autorange ? dmm_autorange(f, m->input[f]) : s.range;
                /* AC functions have a fixed resolution: the parameter is
                 * accepted and changes nothing. */
                if (fi->has_nplc) {
                        if (rk == P_MIN)
                                s.nplc = 100;
                        else if (rk == P_MAX)
                                s.nplc = 0.02;
                        else if (rk == P_VALUE && !dmm_nplc_for_resolution(range, v, &s.nplc))
                                return -222;
                }
        }
        run_abort(m);
        m->fn = f;
        m->set[f] = s;
        m->samples = 1;
        m->source = TRIG_IMMEDIATE;
        /* CONFigure resets both limits to 0 (Truevolt guide); it also
         * ends limit testing here, which the guide does not say. */
        m->limit.on = false;
        m->limit.lower = m->limit.upper = 0;
        scpi_register_set(OPER(m), SIM_DMM_OPER_CONFIG, true);
        return 0;
}

/* ---- the trigger system and readings ---- */

static int initiate(sim_dmm *m)
{
        advance(m);
        if (m->run.state != RUN_IDLE)
                return -213;
        dmm_function f = m->fn;
        m->run = (run){
                .state = RUN_WAIT_TRIGGER,
                .fn = f,
                .range = effective_range(m, f),
                .nplc = m->set[f].nplc,
                .input = m->input[f],
                .dt = dmm_reading_seconds(f, m->set[f].nplc),
                .count = m->samples,
                .base = m->readings,
        };
        m->readings += m->samples;
        scpi_register_set(QUES(m), SIM_DMM_QUES_MEM_OVFL, m->samples > SIM_DMM_MEMORY);
        scpi_register_set(OPER(m), SIM_DMM_OPER_CONFIG, false);
        scpi_register_set(OPER(m), SIM_DMM_OPER_WAIT_TRIG, true);
        if (m->source == TRIG_IMMEDIATE)
                start_measuring(m);
        return 0;
}

/* The readings in memory: the last SIM_DMM_MEMORY of the run. They are a
 * pure function of their number, so memory holds none of them. */
static int respond_readings(sim_dmm *m, uint32_t from, uint32_t to)
{
        /* 16 bytes a reading: "+4.99873000E+00," */
        if (to - from > SIM_DMM_MAX_ANSWER || m->out.len + (size_t)(to - from) * 16 + 1 > SIM_DMM_MAX_OUTPUT)
                return -223;
        begin_response(m);
        char buf[32];
        for (uint32_t k = from; k < to; k++) {
                int n = snprintf(buf, sizeof(buf), "%s%+.8E", k == from ? "" : ",", reading_of(m, k));
                scpi_response_append(&m->resp, buf, (size_t)n);
        }
        /* The answer exists once the readings do. */
        m->out_waits_run = true;
        return 0;
}

/* FETCh?: the readings in memory, once taken. */
static int fetch(sim_dmm *m)
{
        advance(m);
        if (m->run.state == RUN_IDLE && m->run.count == 0)
                return -230; /* nothing measured: "Data corrupt or stale" */
        uint32_t to = m->run.count;
        uint32_t from = to > SIM_DMM_MEMORY ? to - SIM_DMM_MEMORY : 0;
        return respond_readings(m, from, to);
}

/* READ?: INITiate, and every reading as it comes (the instrument sends
 * them to the output, not to memory, so none is lost to its size). */
static int read_readings(sim_dmm *m)
{
        int err = initiate(m);
        return err ? err : respond_readings(m, 0, m->run.count);
}

void sim_dmm_trigger(sim_dmm *m)
{
        advance(m);
        if (m->run.state != RUN_WAIT_TRIGGER || m->source != TRIG_BUS) {
                push_error(m, -211);
                return;
        }
        start_measuring(m);
}

/* ---- common commands ---- */

static int q_idn(void *d, const scpi_call *c)
{
        NO_ARGS(c);
        respond(d, "%s", ((sim_dmm *)d)->idn);
        return 0;
}

static int s_rst(void *d, const scpi_call *c)
{
        NO_ARGS(c);
        reset(d);
        return 0;
}

static int s_cls(void *d, const scpi_call *c)
{
        sim_dmm *m = d;
        NO_ARGS(c);
        advance(m);
        scpi_status_clear(&m->status);
        QUES(m)->event = 0;
        OPER(m)->event = 0;
        m->opc_armed = false; /* IEEE 488.2: *CLS leaves *OPC's state idle */
        return 0;
}

static int s_opc(void *d, const scpi_call *c)
{
        sim_dmm *m = d;
        NO_ARGS(c);
        advance(m);
        m->opc_armed = true;
        advance(m); /* nothing running: complete at once */
        return 0;
}

static int q_opc(void *d, const scpi_call *c)
{
        sim_dmm *m = d;
        NO_ARGS(c);
        respond(m, "1");
        m->out_waits_run = true; /* "1" once everything pending is done */
        return 0;
}

static int s_wai(void *d, const scpi_call *c)
{
        NO_ARGS(c);
        ((sim_dmm *)d)->wai = true;
        return 0;
}

static int q_esr(void *d, const scpi_call *c)
{
        sim_dmm *m = d;
        NO_ARGS(c);
        advance(m);
        respond(m, "%+d", scpi_status_take_esr(&m->status));
        return 0;
}

static int mask_param(const scpi_call *c, unsigned max, unsigned *ret)
{
        double v;
        ONE_ARG(c);
        if (!scpi_number(c->args[0], &v))
                return -224;
        if (v < 0 || v > max)
                return -222;
        *ret = (unsigned)lround(v);
        return 0;
}

static int s_ese(void *d, const scpi_call *c)
{
        unsigned v;
        int err = mask_param(c, 255, &v);
        if (!err)
                ((sim_dmm *)d)->status.ese = (uint8_t)v;
        return err;
}

static int q_ese(void *d, const scpi_call *c)
{
        NO_ARGS(c);
        respond(d, "%+d", ((sim_dmm *)d)->status.ese);
        return 0;
}

static int s_sre(void *d, const scpi_call *c)
{
        unsigned v;
        int err = mask_param(c, 255, &v);
        if (!err)
                ((sim_dmm *)d)->status.sre = (uint8_t)(v & ~SCPI_STB_MSS); /* bit 6 cannot be enabled */
        return err;
}

static int q_sre(void *d, const scpi_call *c)
{
        NO_ARGS(c);
        respond(d, "%+d", ((sim_dmm *)d)->status.sre);
        return 0;
}

static int q_stb(void *d, const scpi_call *c)
{
        NO_ARGS(c);
        /* MAV reflects the queue before this answer is added. */
        respond(d, "%+d", sim_dmm_status_byte(d));
        return 0;
}

static int q_tst(void *d, const scpi_call *c)
{
        NO_ARGS(c);
        respond(d, "%+d", 0); /* passed */
        return 0;
}

static int s_trg(void *d, const scpi_call *c)
{
        NO_ARGS(c);
        sim_dmm_trigger(d);
        return 0;
}

static int q_syst_err(void *d, const scpi_call *c)
{
        char answer[SCPI_ERROR_ANSWER_MAX];
        NO_ARGS(c);
        scpi_status_next_error(&((sim_dmm *)d)->status, answer);
        respond(d, "%s", answer);
        return 0;
}

static int q_syst_vers(void *d, const scpi_call *c)
{
        NO_ARGS(c);
        respond(d, "1994.0");
        return 0;
}

/* ---- MEASure?, CONFigure, READ?, INITiate, FETCh?, ABORt ---- */

static int q_measure(void *d, const scpi_call *c)
{
        int err = s_configure(d, c);
        return err ? err : read_readings(d);
}

static int q_conf(void *d, const scpi_call *c)
{
        sim_dmm *m = d;
        NO_ARGS(c);
        dmm_function f = m->fn;
        double range = effective_range(m, f);
        respond(m, "\"%s %+.8E,%+.8E\"", dmm_function_get(f)->name, range,
                dmm_resolution(f, range, m->set[f].nplc));
        return 0;
}

static int q_read(void *d, const scpi_call *c)
{
        sim_dmm *m = d;
        NO_ARGS(c);
        return read_readings(m);
}

static int s_init(void *d, const scpi_call *c)
{
        NO_ARGS(c);
        return initiate(d);
}

static int q_fetch(void *d, const scpi_call *c)
{
        NO_ARGS(c);
        return fetch(d);
}

static int s_abort(void *d, const scpi_call *c)
{
        NO_ARGS(c);
        run_abort(d);
        return 0;
}

static int q_data_points(void *d, const scpi_call *c)
{
        sim_dmm *m = d;
        NO_ARGS(c);
        advance(m);
        uint32_t n = m->run.state == RUN_MEASURING || m->run.state == RUN_IDLE ? m->run.done : 0;
        respond(m, "+%u", n < SIM_DMM_MEMORY ? n : SIM_DMM_MEMORY);
        return 0;
}

/* ---- [SENSe:] settings ---- */

/* "VOLT", "VOLT:DC", "VOLTage:AC", ... as FUNCtion takes it (quoted). */
static bool parse_function(const char *arg, dmm_function *ret)
{
        char word[40];
        size_t n = strlen(arg);
        if (n >= 2 && (arg[0] == '"' || arg[0] == '\'') && arg[n - 1] == arg[0]) {
                arg++;
                n -= 2;
        }
        if (n == 0 || n >= sizeof(word))
                return false;
        memcpy(word, arg, n);
        word[n] = '\0';
        /* Split into at most two nodes and match them against each name. */
        char *colon = strchr(word, ':');
        const char *n1 = word, *n2 = colon ? colon + 1 : NULL;
        size_t l1 = colon ? (size_t)(colon - word) : strlen(word), l2 = n2 ? strlen(n2) : 0;
        static const struct {
                const char *node, *sub;
                bool sub_optional;
                dmm_function f;
        } names[] = {
                { "VOLTage", "DC", true, DMM_VOLT_DC }, { "VOLTage", "AC", false, DMM_VOLT_AC },
                { "CURRent", "DC", true, DMM_CURR_DC }, { "CURRent", "AC", false, DMM_CURR_AC },
                { "RESistance", NULL, false, DMM_RES },
        };
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                if (!scpi_mnemonic(n1, l1, names[i].node, strlen(names[i].node), NULL))
                        continue;
                if (!n2 && (!names[i].sub || names[i].sub_optional)) {
                        *ret = names[i].f;
                        return true;
                }
                if (n2 && names[i].sub && scpi_mnemonic(n2, l2, names[i].sub, strlen(names[i].sub), NULL)) {
                        *ret = names[i].f;
                        return true;
                }
        }
        return false;
}

static int s_function(void *d, const scpi_call *c)
{
        sim_dmm *m = d;
        dmm_function f;
        ONE_ARG(c);
        if (!parse_function(c->args[0], &f))
                return -224;
        run_abort(m);
        m->fn = f;
        scpi_register_set(OPER(m), SIM_DMM_OPER_CONFIG, true);
        return 0;
}

static int q_function(void *d, const scpi_call *c)
{
        NO_ARGS(c);
        respond(d, "\"%s\"", dmm_function_get(((sim_dmm *)d)->fn)->name);
        return 0;
}

/* A setting's MINimum, MAXimum and DEFault. */
typedef struct bounds {
        double min, max, def;
} bounds;

static double bound(const bounds *b, param_kind k)
{
        return k == P_MIN ? b->min : k == P_MAX ? b->max : b->def;
}

static bounds range_bounds(dmm_function f)
{
        const dmm_function_info *fi = dmm_function_get(f);
        return (bounds){ fi->ranges[0], fi->ranges[fi->n_ranges - 1], fi->ranges[2] };
}

static bounds nplc_bounds(void)
{
        return (bounds){ dmm_nplc_values[0], dmm_nplc_values[DMM_NPLCS - 1], 10 };
}

/* A setting's one parameter: a number, or MIN, MAX, DEF as b has them.
 * A number outside b is -222; slack widens a positive b by that fraction
 * (an NPLC written as 2E-2 is 0.02). */
static int bounded_param(const scpi_call *c, const bounds *b, double slack, double *ret)
{
        param_kind k;
        double v = 0;
        ONE_ARG(c);
        int err = numeric_param(c->args[0], false, &k, &v);
        if (err)
                return err;
        if (k != P_VALUE)
                v = bound(b, k);
        else if (v < b->min * (1 - slack) || v > b->max * (1 + slack))
                return -222;
        *ret = v;
        return 0;
}

/* A setting's query: now, or what MIN, MAX or DEF would set. */
static int query_setting(sim_dmm *m, const scpi_call *c, double now, const bounds *b)
{
        if (c->n_args > 1)
                return -108;
        if (c->n_args) {
                param_kind k;
                double ignored;
                int err = numeric_param(c->args[0], false, &k, &ignored);
                if (err || k == P_VALUE)
                        return err ? err : -224;
                now = bound(b, k);
        }
        respond_nr3(m, now);
        return 0;
}

static int s_range(void *d, const scpi_call *c)
{
        sim_dmm *m = d;
        dmm_function f = row_function(c);
        bounds b = range_bounds(f);
        param_kind k;
        double v = 0, range;
        ONE_ARG(c);
        int err = numeric_param(c->args[0], false, &k, &v);
        if (err)
                return err;
        range = bound(&b, k);
        if (k == P_VALUE && !dmm_range_for(f, v, &range))
                return -222;
        m->set[f].range = range;
        m->set[f].autorange = false;
        scpi_register_set(OPER(m), SIM_DMM_OPER_CONFIG, true);
        return 0;
}

static int q_range(void *d, const scpi_call *c)
{
        bounds b = range_bounds(row_function(c));
        return query_setting(d, c, effective_range(d, row_function(c)), &b);
}

static int s_autorange(void *d, const scpi_call *c)
{
        sim_dmm *m = d;
        dmm_function f = row_function(c);
        ONE_ARG(c);
        bool on;
        if (scpi_keyword(c->args[0], "ONCE")) {
                /* Autorange once, then keep that range. */
                m->set[f].range = dmm_autorange(f, m->input[f]);
                m->set[f].autorange = false;
        } else if (scpi_bool(c->args[0], &on)) {
                if (!on)
                        m->set[f].range = effective_range(m, f); /* the range it is on stays */
                m->set[f].autorange = on;
        } else {
                return -224;
        }
        scpi_register_set(OPER(m), SIM_DMM_OPER_CONFIG, true);
        return 0;
}

static int q_autorange(void *d, const scpi_call *c)
{
        NO_ARGS(c);
        respond(d, "%d", ((sim_dmm *)d)->set[row_function(c)].autorange ? 1 : 0);
        return 0;
}

static int s_nplc(void *d, const scpi_call *c)
{
        sim_dmm *m = d;
        bounds b = nplc_bounds();
        double v;
        int err = bounded_param(c, &b, 1e-9, &v);
        if (err)
                return err;
        /* A value between the offered ones takes the next larger. */
        for (size_t i = 0; i < DMM_NPLCS; i++) {
                if (v <= dmm_nplc_values[i] * (1 + 1e-9)) {
                        v = dmm_nplc_values[i];
                        break;
                }
        }
        m->set[row_function(c)].nplc = v;
        scpi_register_set(OPER(m), SIM_DMM_OPER_CONFIG, true);
        return 0;
}

static int q_nplc(void *d, const scpi_call *c)
{
        bounds b = nplc_bounds();
        return query_setting(d, c, ((sim_dmm *)d)->set[row_function(c)].nplc, &b);
}

/* ---- SAMPle, TRIGger ---- */

static int s_samples(void *d, const scpi_call *c)
{
        static const bounds samples = { 1, SIM_DMM_MAX_SAMPLES, 1 };
        double v;
        int err = bounded_param(c, &samples, 0, &v);
        if (err)
                return err;
        if (v != floor(v))
                return -222;
        ((sim_dmm *)d)->samples = (uint32_t)v;
        return 0;
}

static int q_samples(void *d, const scpi_call *c)
{
        NO_ARGS(c);
        respond(d, "+%u", ((sim_dmm *)d)->samples);
        return 0;
}

static int s_trig_source(void *d, const scpi_call *c)
{
        sim_dmm *m = d;
        ONE_ARG(c);
        if (scpi_keyword(c->args[0], "IMMediate"))
                m->source = TRIG_IMMEDIATE;
        else if (scpi_keyword(c->args[0], "BUS"))
                m->source = TRIG_BUS;
        else if (scpi_keyword(c->args[0], "EXTernal"))
                m->source = TRIG_EXTERNAL;
        else
                return -224;
        return 0;
}

static int q_trig_source(void *d, const scpi_call *c)
{
        static const char *const names[] = { "IMM", "BUS", "EXT" };
        NO_ARGS(c);
        respond(d, "%s", names[((sim_dmm *)d)->source]);
        return 0;
}

/* ---- CALCulate:LIMit ---- */

static int set_limit(sim_dmm *m, const scpi_call *c, double *which)
{
        static const bounds limits = { -1e15, 1e15, 0 };
        return bounded_param(c, &limits, 0, which);
}

static int s_lim_lower(void *d, const scpi_call *c) { return set_limit(d, c, &((sim_dmm *)d)->limit.lower); }
static int s_lim_upper(void *d, const scpi_call *c) { return set_limit(d, c, &((sim_dmm *)d)->limit.upper); }

static int q_lim_lower(void *d, const scpi_call *c)
{
        NO_ARGS(c);
        respond_nr3(d, ((sim_dmm *)d)->limit.lower);
        return 0;
}

static int q_lim_upper(void *d, const scpi_call *c)
{
        NO_ARGS(c);
        respond_nr3(d, ((sim_dmm *)d)->limit.upper);
        return 0;
}

static int s_lim_state(void *d, const scpi_call *c)
{
        sim_dmm *m = d;
        bool on;
        ONE_ARG(c);
        if (!scpi_bool(c->args[0], &on))
                return -224;
        advance(m);
        m->limit.on = on;
        if (!on) {
                scpi_register_set(QUES(m), SIM_DMM_QUES_LIMIT_LOW, false);
                scpi_register_set(QUES(m), SIM_DMM_QUES_LIMIT_HIGH, false);
        }
        return 0;
}

static int q_lim_state(void *d, const scpi_call *c)
{
        NO_ARGS(c);
        respond(d, "%d", ((sim_dmm *)d)->limit.on ? 1 : 0);
        return 0;
}

static int s_lim_clear(void *d, const scpi_call *c)
{
        sim_dmm *m = d;
        NO_ARGS(c);
        advance(m);
        scpi_register_set(QUES(m), SIM_DMM_QUES_LIMIT_LOW, false);
        scpi_register_set(QUES(m), SIM_DMM_QUES_LIMIT_HIGH, false);
        QUES(m)->event &= (uint16_t)~(SIM_DMM_QUES_LIMIT_LOW | SIM_DMM_QUES_LIMIT_HIGH);
        return 0;
}

/* ---- STATus ---- */

/* STATus:QUEStionable and STATus:OPERation alike: the row's arg says which. */
static int q_reg_event(void *d, const scpi_call *c)
{
        sim_dmm *m = d;
        NO_ARGS(c);
        advance(m);
        respond(m, "%+d", scpi_register_take_event(&m->reg[c->arg]));
        return 0;
}

static int q_reg_cond(void *d, const scpi_call *c)
{
        sim_dmm *m = d;
        NO_ARGS(c);
        advance(m);
        respond(m, "%+d", m->reg[c->arg].cond);
        return 0;
}

static int s_reg_enable(void *d, const scpi_call *c)
{
        unsigned v;
        int err = mask_param(c, 65535, &v);
        if (!err)
                ((sim_dmm *)d)->reg[c->arg].enable = (uint16_t)v;
        return err;
}

static int q_reg_enable(void *d, const scpi_call *c)
{
        NO_ARGS(c);
        respond(d, "%+d", ((sim_dmm *)d)->reg[c->arg].enable);
        return 0;
}

static int s_stat_preset(void *d, const scpi_call *c)
{
        sim_dmm *m = d;
        NO_ARGS(c);
        QUES(m)->enable = 0;
        OPER(m)->enable = 0;
        return 0;
}

#define SENSE_ROWS(f, node)                                                 \
        { "[SENSe:]" node ":RANGe", s_range, q_range, f },                  \
        { "[SENSe:]" node ":RANGe:AUTO", s_autorange, q_autorange, f }
#define NPLC_ROW(f, node) { "[SENSe:]" node ":NPLCycles", s_nplc, q_nplc, f }

static const scpi_command commands[] = {
        { "*IDN", NULL, q_idn, 0 },
        { "*RST", s_rst, NULL, 0 },
        { "*CLS", s_cls, NULL, 0 },
        { "*OPC", s_opc, q_opc, 0 },
        { "*WAI", s_wai, NULL, 0 },
        { "*ESR", NULL, q_esr, 0 },
        { "*ESE", s_ese, q_ese, 0 },
        { "*SRE", s_sre, q_sre, 0 },
        { "*STB", NULL, q_stb, 0 },
        { "*TST", NULL, q_tst, 0 },
        { "*TRG", s_trg, NULL, 0 },
        { "SYSTem:ERRor[:NEXT]", NULL, q_syst_err, 0 },
        { "SYSTem:VERSion", NULL, q_syst_vers, 0 },
        /* MEASure? and CONFigure per function, as the guide writes them. */
        { "MEASure[:VOLTage][:DC]", NULL, q_measure, DMM_VOLT_DC },
        { "MEASure[:VOLTage]:AC", NULL, q_measure, DMM_VOLT_AC },
        { "MEASure:CURRent[:DC]", NULL, q_measure, DMM_CURR_DC },
        { "MEASure:CURRent:AC", NULL, q_measure, DMM_CURR_AC },
        { "MEASure:RESistance", NULL, q_measure, DMM_RES },
        { "CONFigure", NULL, q_conf, 0 },
        { "CONFigure[:VOLTage][:DC]", s_configure, NULL, DMM_VOLT_DC },
        { "CONFigure[:VOLTage]:AC", s_configure, NULL, DMM_VOLT_AC },
        { "CONFigure:CURRent[:DC]", s_configure, NULL, DMM_CURR_DC },
        { "CONFigure:CURRent:AC", s_configure, NULL, DMM_CURR_AC },
        { "CONFigure:RESistance", s_configure, NULL, DMM_RES },
        { "READ", NULL, q_read, 0 },
        { "INITiate[:IMMediate]", s_init, NULL, 0 },
        { "FETCh", NULL, q_fetch, 0 },
        { "ABORt", s_abort, NULL, 0 },
        { "DATA:POINts", NULL, q_data_points, 0 },
        { "[SENSe:]FUNCtion[:ON]", s_function, q_function, 0 },
        SENSE_ROWS(DMM_VOLT_DC, "VOLTage[:DC]"),
        NPLC_ROW(DMM_VOLT_DC, "VOLTage[:DC]"),
        SENSE_ROWS(DMM_VOLT_AC, "VOLTage:AC"),
        SENSE_ROWS(DMM_CURR_DC, "CURRent[:DC]"),
        NPLC_ROW(DMM_CURR_DC, "CURRent[:DC]"),
        SENSE_ROWS(DMM_CURR_AC, "CURRent:AC"),
        SENSE_ROWS(DMM_RES, "RESistance"),
        NPLC_ROW(DMM_RES, "RESistance"),
        { "SAMPle:COUNt", s_samples, q_samples, 0 },
        { "TRIGger:SOURce", s_trig_source, q_trig_source, 0 },
        { "CALCulate:LIMit:LOWer[:DATA]", s_lim_lower, q_lim_lower, 0 },
        { "CALCulate:LIMit:UPPer[:DATA]", s_lim_upper, q_lim_upper, 0 },
        { "CALCulate:LIMit[:STATe]", s_lim_state, q_lim_state, 0 },
        { "CALCulate:LIMit:CLEar[:IMMediate]", s_lim_clear, NULL, 0 },
        { "STATus:QUEStionable[:EVENt]", NULL, q_reg_event, DMM_QUES },
        { "STATus:QUEStionable:CONDition", NULL, q_reg_cond, DMM_QUES },
        { "STATus:QUEStionable:ENABle", s_reg_enable, q_reg_enable, DMM_QUES },
        { "STATus:OPERation[:EVENt]", NULL, q_reg_event, DMM_OPER },
        { "STATus:OPERation:CONDition", NULL, q_reg_cond, DMM_OPER },
        { "STATus:OPERation:ENABle", s_reg_enable, q_reg_enable, DMM_OPER },
        { "STATus:PRESet", s_stat_preset, NULL, 0 },
        { NULL, NULL, NULL, 0 },
};

/* ---- the instrument ---- */

static bool identity_ok(const char *s)
{
        return strlen(s) <= 63 && !strchr(s, ',') && !strchr(s, '\n') && !strchr(s, ';');
}

tether_ret_t sim_dmm_new(const sim_dmm_config *cfg, sim_dmm **ret)
{
        static const sim_dmm_config defaults = { 0 };
        if (!ret)
                return TETHER_ERR_BAD_ARGUMENT;
        if (!cfg)
                cfg = &defaults;
        const char *manufacturer = cfg->manufacturer ? cfg->manufacturer : "Keysight Technologies";
        const char *model = cfg->model ? cfg->model : "34461A";
        const char *serial = cfg->serial ? cfg->serial : SIM_DMM_DEFAULT_SERIAL;
        const char *firmware = cfg->firmware ? cfg->firmware : "A.02.08-02.37-02.08-00.49-01-01";
        if (!identity_ok(manufacturer) || !identity_ok(model) || !identity_ok(serial) || !identity_ok(firmware))
                return TETHER_ERR_BAD_ARGUMENT;
        sim_dmm *m = calloc(1, sizeof(*m));
        if (!m)
                return TETHER_ERR_NO_MEMORY;
        scpi_status_init(&m->status, SIM_DMM_ERROR_QUEUE);
        scpi_response_init(&m->resp, &m->out, SIM_DMM_MAX_OUTPUT);
        snprintf(m->idn, sizeof(m->idn), "%s,%s,%s,%s", manufacturer, model, serial, firmware);
        m->seed = cfg->seed;
        m->clock = cfg->clock ? cfg->clock : mono_s;
        m->clock_ctx = cfg->clock_ctx;
        for (int f = 0; f < DMM_FUNCTIONS; f++)
                m->input[f] = dmm_function_get(f)->input;
        reset(m);
        /* The Standard Event register's Power On bit: power has been
         * cycled since it was last read. */
        m->status.esr = SCPI_ESR_PON;
        *ret = m;
        return TETHER_SUCCESS;
}

void sim_dmm_free(sim_dmm *m)
{
        if (!m)
                return;
        free(m->out.p);
        free(m);
}

void sim_dmm_execute(sim_dmm *m, const char *msg, size_t len)
{
        advance(m);
        /* A new command while an answer is still unread: the answer is
         * lost, as 488.2 says (-410). */
        if (out_unread(m)) {
                out_clear(m);
                push_error(m, -410);
        }
        scpi_response_begin(&m->resp);
        m->wai = false;
        scpi_execute(commands, m, push_error, msg, len);
        if (!scpi_response_end(&m->resp))
                out_clear(m);
}

size_t sim_dmm_output_pending(const sim_dmm *m)
{
        return out_unread(m);
}

size_t sim_dmm_output_peek(const sim_dmm *m, uint8_t *buf, size_t cap)
{
        size_t n = out_unread(m) < cap ? out_unread(m) : cap;
        if (n)
                memcpy(buf, m->out.p + m->out_pos, n);
        return n;
}

size_t sim_dmm_output_take(sim_dmm *m, uint8_t *buf, size_t cap)
{
        size_t n = sim_dmm_output_peek(m, buf, cap);
        m->out_pos += n;
        if (!out_unread(m))
                out_clear(m);
        return n;
}

unsigned sim_dmm_output_ready_in_ms(const sim_dmm *m)
{
        if (!out_unread(m))
                return 0;
        double t = now(m);
        double at = m->out_ready_at;
        if (m->out_waits_run) {
                double done = run_done_at(m);
                at = done > at ? done : at;
        }
        if (t >= at)
                return 0;
        double left_ms = (at - t) * 1000.0 + 1;
        return left_ms > 86400000.0 ? 86400000u : (unsigned)left_ms;
}

void sim_dmm_query_unterminated(sim_dmm *m)
{
        push_error(m, -420);
}

void sim_dmm_device_clear(sim_dmm *m)
{
        out_clear(m);
        m->opc_armed = false; /* 488.2: device clear leaves *OPC idle, not done */
        run_abort(m);
}

void sim_dmm_set_input(sim_dmm *m, dmm_function f, double value)
{
        if ((unsigned)f < DMM_FUNCTIONS)
                m->input[f] = value;
}
