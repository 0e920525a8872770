/* SPDX-License-Identifier: MIT */
#include "scope.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bytes.h"
#include "plot/plot.h"
#include "scpi.h"
#include "response.h"
#include "status.h"
#include "waveform.h"

/* Preamble codes */
enum { FMT_BYTE = 0, FMT_WORD = 1, FMT_ASCII = 4 };
enum { ACQ_NORMAL = 0, ACQ_PEAK = 1, ACQ_AVERAGE = 2, ACQ_HRES = 3 };
enum { PTS_NORMAL, PTS_MAXIMUM, PTS_RAW };

typedef struct channel {
        double scale, offset, probe;
        bool display, ac;
} channel;

struct sim_scope {
        const sim_model *spec;
        char idn[192];
        uint64_t seed, acquisitions;
        bool running;
        double tscale, tpos;
        channel ch[SIM_MAX_CHANNELS];   /* spec->channels of them exist */
        bool digital[8];                /* spec->digital of them exist */
        wave_trigger trig;
        int acq_type, acq_count;
        struct {
                int source, format, points_mode;
                bool msb_first, is_unsigned;
                unsigned points;
        } wav;
        double *record[SIM_MAX_CHANNELS];
        bool have_record[SIM_MAX_CHANNELS];
        scpi_status status;  /* error queue, ESR, *ESE, *SRE */
        bytes out;
        scpi_response resp;  /* the answers of the message being executed, into out */
        double busy_until;   /* CLOCK_MONOTONIC seconds: an acquisition in progress */
};

static double mono_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A single acquisition takes one sweep of the screen. */
static void start_sweep(sim_scope *s)
{
        s->busy_until = mono_s() + 10 * s->tscale;
}

/* ---- output ---- */

static void respond(sim_scope *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void respond(sim_scope *s, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        scpi_response_vprintf(&s->resp, fmt, ap);
        va_end(ap);
}

/* NR3 as InfiniiVision writes it: +1.00000000E-03 */
static void respond_nr3(sim_scope *s, double v)
{
        respond(s, "%+.8E", v);
}

/* Out a definite-length block: #<digits><length><bytes>. */
static void respond_block(sim_scope *s, const void *data, size_t len)
{
        char head[24], digits[16];
        int nd = snprintf(digits, sizeof(digits), "%zu", len);
        int hn = snprintf(head, sizeof(head), "#%d%s", nd, digits);
        scpi_response_unit(&s->resp);
        scpi_response_append(&s->resp, head, (size_t)hn);
        scpi_response_append(&s->resp, data, len);
}

/* ---- errors and status ---- */

static void push_error(void *dev, int code)
{
        scpi_status_push_error(&((sim_scope *)dev)->status, code);
}

uint8_t sim_scope_status_byte(const sim_scope *s)
{
        return scpi_status_byte(&s->status, s->out.len ? SCPI_STB_MAV : 0);
}

const sim_model *sim_scope_model(const sim_scope *s)
{
        return s->spec;
}

int sim_scope_last_error(const sim_scope *s)
{
        return s->status.last_error;
}

/* ---- settings ---- */

static void reset(sim_scope *s)
{
        s->running = true;
        s->tscale = 100e-6;
        s->tpos = 0;
        for (unsigned i = 0; i < SIM_MAX_CHANNELS; i++) {
                s->ch[i] = (channel){ .scale = 1.0, .offset = 0.0, .probe = 1.0, .display = i == 0, .ac = false };
                s->have_record[i] = false;
        }
        memset(s->digital, 0, sizeof(s->digital));
        s->trig = (wave_trigger){ .source = 1, .level = 0.0, .slope = WAVE_RISING, .auto_sweep = true };
        s->acq_type = ACQ_NORMAL;
        s->acq_count = 8;
        s->wav.source = 1;
        s->wav.format = FMT_BYTE;
        s->wav.points_mode = PTS_NORMAL;
        s->wav.msb_first = true;
        s->wav.is_unsigned = true;
        s->wav.points = 1000;
}

/* The series samples at 2 GSa/s "half-channel interleaved" and 1 GSa/s
 * per channel (data sheet): channels 1 and 2 share a pair of converters,
 * as do 3 and 4, so the full rate needs at most one channel of each pair
 * on. Which channels pair up is our reading of "half-channel", not
 * verified. */
static double max_sample_rate(const sim_scope *s)
{
        for (unsigned i = 0; i + 1 < s->spec->channels; i += 2)
                if (s->ch[i].display && s->ch[i + 1].display)
                        return 1e9;
        return 2e9;
}

/* Points in an acquisition: the series' 62,500, or fewer when the maximum
 * sample rate cannot fill the window (fast timebases). */
static unsigned record_points(const sim_scope *s)
{
        double max_rate = max_sample_rate(s);
        double fit = 10 * s->tscale * max_rate;
        return fit < SIM_RECORD_POINTS ? (unsigned)(fit < 100 ? 100 : fit) : SIM_RECORD_POINTS;
}

static double sample_interval(const sim_scope *s)
{
        return 10 * s->tscale / record_points(s);
}

static double x_origin(const sim_scope *s)
{
        return -5 * s->tscale + s->tpos;
}

static void acquire(sim_scope *s, int chn)
{
        unsigned n = record_points(s);
        if (!s->record[chn - 1])
                s->record[chn - 1] = malloc(SIM_RECORD_POINTS * sizeof(double));
        if (!s->record[chn - 1])
                return;
        s->acquisitions++;
        s->have_record[chn - 1] = wave_acquire(chn, &s->trig, x_origin(s), sample_interval(s), n, s->seed,
                                               s->acquisitions, s->record[chn - 1]);
}

/* The record to answer from: a fresh one while running, else the last. */
static const double *current_record(sim_scope *s, int chn)
{
        if (s->running || !s->have_record[chn - 1])
                acquire(s, chn);
        return s->have_record[chn - 1] ? s->record[chn - 1] : NULL;
}

/* ---- handlers ---- */

#define ONE_NUMBER(c, var)                                       \
        do {                                                     \
                if ((c)->n_args != 1)                            \
                        return (c)->n_args ? -108 : -109;        \
                if (!scpi_number((c)->args[0], &(var)))          \
                        return -224;                             \
        } while (0)

static int one_arg(const scpi_call *c)
{
        return c->n_args == 1 ? 0 : c->n_args ? -108 : -109;
}

static int q_idn(void *d, const scpi_call *c)
{
        respond(d, "%s", ((sim_scope *)d)->idn);
        return 0;
}

static int s_rst(void *d, const scpi_call *c)
{
        reset(d);
        return 0;
}

static int s_cls(void *d, const scpi_call *c)
{
        scpi_status_clear(&((sim_scope *)d)->status);
        return 0;
}

static int s_opc(void *d, const scpi_call *c)
{
        ((sim_scope *)d)->status.esr |= SCPI_ESR_OPC; /* everything here completes at once */
        return 0;
}

static int q_opc(void *d, const scpi_call *c)
{
        respond(d, "1");
        return 0;
}

static int q_esr(void *d, const scpi_call *c)
{
        respond(d, "%u", scpi_status_take_esr(&((sim_scope *)d)->status));
        return 0;
}

static int set_mask(const scpi_call *c, uint8_t *mask)
{
        double v;
        ONE_NUMBER(c, v);
        if (v < 0 || v > 255)
                return -222;
        *mask = (uint8_t)v;
        return 0;
}

static int s_ese(void *d, const scpi_call *c) { return set_mask(c, &((sim_scope *)d)->status.ese); }
static int q_ese(void *d, const scpi_call *c) { respond(d, "%u", ((sim_scope *)d)->status.ese); return 0; }
static int s_sre(void *d, const scpi_call *c) { return set_mask(c, &((sim_scope *)d)->status.sre); }
static int q_sre(void *d, const scpi_call *c) { respond(d, "%u", ((sim_scope *)d)->status.sre); return 0; }

static int q_stb(void *d, const scpi_call *c)
{
        sim_scope *s = d;
        /* MAV reflects the queue before this answer is added. */
        respond(s, "%u", sim_scope_status_byte(s));
        return 0;
}

/* *OPT?: the licences installed. The guide's exact layout could not be
 * checked (docs/dsox2000-family.md); what is simulated is the common
 * InfiniiVision shape, two reserved fields then the licences, each field 0
 * when absent. The only licence a stock model carries is MSO, on an MSO. */
static int q_opt(void *d, const scpi_call *c)
{
        sim_scope *s = d;
        respond(s, "0,0,%s", s->spec->digital ? "MSO" : "0");
        return 0;
}

static int s_wai(void *d, const scpi_call *c) { return 0; }
static int q_tst(void *d, const scpi_call *c) { respond(d, "0"); return 0; }

static int q_syst_err(void *d, const scpi_call *c)
{
        char answer[SCPI_ERROR_ANSWER_MAX];
        scpi_status_next_error(&((sim_scope *)d)->status, answer);
        respond(d, "%s", answer);
        return 0;
}

static int s_run(void *d, const scpi_call *c) { ((sim_scope *)d)->running = true; return 0; }

static int s_stop(void *d, const scpi_call *c)
{
        sim_scope *s = d;
        /* What is on screen when it stops is what later queries return. */
        for (int ch = 1; ch <= (int)s->spec->channels; ch++)
                if (s->ch[ch - 1].display)
                        acquire(s, ch);
        s->running = false;
        return 0;
}

/* A CHANnel<n> parameter: n up to the model's channels, else -224 (an
 * illegal value for this instrument). */
static int parse_channel(const sim_scope *s, const char *arg, int *ret)
{
        int n = 0;
        if (!arg || !scpi_mnemonic(arg, strlen(arg), "CHANnel#", 8, &n) || n < 1 || n > (int)s->spec->channels)
                return -224;
        *ret = n;
        return 0;
}

static int s_single(void *d, const scpi_call *c)
{
        start_sweep(d);
        return s_stop(d, c);
}

static int s_digitize(void *d, const scpi_call *c)
{
        sim_scope *s = d;
        bool which[SIM_MAX_CHANNELS] = { false };
        for (int i = 0; i < c->n_args; i++) {
                int n;
                int err = parse_channel(s, c->args[i], &n);
                if (err)
                        return err;
                which[n - 1] = true;
        }
        for (int ch = 1; ch <= (int)s->spec->channels; ch++)
                if (c->n_args ? which[ch - 1] : s->ch[ch - 1].display)
                        acquire(s, ch);
        s->running = false;
        start_sweep(s);
        return 0;
}

/* :DIGital<d>:DISPlay: an MSO's digital channels D0 to D7. A DSO has
 * none: the header is undefined there (-113). */
static bool *digital(void *d, const scpi_call *c)
{
        sim_scope *s = d;
        int n = c->suffix[0];
        return n >= 0 && n < (int)s->spec->digital ? &s->digital[n] : NULL;
}

static int s_dig_display(void *d, const scpi_call *c)
{
        bool *on = digital(d, c);
        int err = on ? one_arg(c) : -113;
        if (err)
                return err;
        return scpi_bool(c->args[0], on) ? 0 : -224;
}

static int q_dig_display(void *d, const scpi_call *c)
{
        bool *on = digital(d, c);
        if (!on)
                return -113;
        respond(d, "%d", *on);
        return 0;
}

/* 1-2-5 steps, the scale a person would pick for a value. */
static double nice_125(double v)
{
        double p = pow(10, floor(log10(v)));
        double m = v / p;
        return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

static int s_autoscale(void *d, const scpi_call *c)
{
        sim_scope *s = d;
        /* What the real instrument does for these signals: each channel
         * with a signal on, 4 divisions of it, centred; 2.5 periods of the
         * slowest (rounded up) across the screen; edge trigger on channel 1
         * at mid-level. */
        double slowest = 0;
        for (int ch = 1; ch <= (int)s->spec->channels; ch++) {
                double lo, hi, f = wave_frequency(ch);
                wave_range(ch, &lo, &hi);
                s->ch[ch - 1] = (channel){ .scale = nice_125((hi - lo) / 4), .offset = (hi + lo) / 2,
                                           .probe = s->ch[ch - 1].probe, .display = true };
                slowest = slowest == 0 || f < slowest ? f : slowest;
        }
        s->tscale = nice_125(2.5 / slowest / 10);
        s->tpos = 0;
        s->trig = (wave_trigger){ .source = 1, .level = WAVE_PROBE_COMP_VPP / 2, .slope = WAVE_RISING, .auto_sweep = true };
        s->running = true;
        return 0;
}

static int s_tim_scale(void *d, const scpi_call *c)
{
        double v;
        ONE_NUMBER(c, v);
        if (v < ((sim_scope *)d)->spec->min_tscale || v > 50)
                return -222;
        ((sim_scope *)d)->tscale = v;
        return 0;
}

static int q_tim_scale(void *d, const scpi_call *c) { respond_nr3(d, ((sim_scope *)d)->tscale); return 0; }

static int s_tim_range(void *d, const scpi_call *c)
{
        double v;
        ONE_NUMBER(c, v);
        if (v < 10 * ((sim_scope *)d)->spec->min_tscale || v > 500)
                return -222;
        ((sim_scope *)d)->tscale = v / 10;
        return 0;
}

static int q_tim_range(void *d, const scpi_call *c) { respond_nr3(d, 10 * ((sim_scope *)d)->tscale); return 0; }

static int s_tim_pos(void *d, const scpi_call *c)
{
        double v;
        ONE_NUMBER(c, v);
        if (fabs(v) > 500)
                return -222;
        ((sim_scope *)d)->tpos = v;
        return 0;
}

static int q_tim_pos(void *d, const scpi_call *c) { respond_nr3(d, ((sim_scope *)d)->tpos); return 0; }

static int s_tim_mode(void *d, const scpi_call *c)
{
        int err = one_arg(c);
        return err ? err : scpi_keyword(c->args[0], "MAIN") ? 0 : -224; /* only MAIN is simulated */
}

static int q_tim_mode(void *d, const scpi_call *c) { respond(d, "MAIN"); return 0; }

/* CHANnel<n> in a header: a channel the model has, else NULL (the header
 * is then undefined, -113, as CHANnel3 is on a 2-channel model). */
static channel *chan(void *d, const scpi_call *c)
{
        sim_scope *s = d;
        int n = c->suffix[0];
        return n >= 1 && n <= (int)s->spec->channels ? &s->ch[n - 1] : NULL;
}

/* Offset range of the series: +-2 V up to 200 mV/div, +-50 V above. */
static double offset_limit(double scale)
{
        return scale <= 0.2 ? 2.0 : 50.0;
}

static int s_ch_scale(void *d, const scpi_call *c)
{
        channel *ch = chan(d, c);
        double v;
        if (!ch)
                return -113;
        ONE_NUMBER(c, v);
        if (v < 1e-3 * ch->probe || v > 5.0 * ch->probe)
                return -222;
        ch->scale = v;
        return 0;
}

static int q_ch_scale(void *d, const scpi_call *c)
{
        channel *ch = chan(d, c);
        if (!ch)
                return -113;
        respond_nr3(d, ch->scale);
        return 0;
}

static int s_ch_range(void *d, const scpi_call *c)
{
        channel *ch = chan(d, c);
        double v;
        if (!ch)
                return -113;
        ONE_NUMBER(c, v);
        if (v < 8e-3 * ch->probe || v > 40.0 * ch->probe)
                return -222;
        ch->scale = v / 8;
        return 0;
}

static int q_ch_range(void *d, const scpi_call *c)
{
        channel *ch = chan(d, c);
        if (!ch)
                return -113;
        respond_nr3(d, 8 * ch->scale);
        return 0;
}

static int s_ch_offset(void *d, const scpi_call *c)
{
        channel *ch = chan(d, c);
        double v;
        if (!ch)
                return -113;
        ONE_NUMBER(c, v);
        if (fabs(v) > offset_limit(ch->scale / ch->probe) * ch->probe)
                return -222;
        ch->offset = v;
        return 0;
}

static int q_ch_offset(void *d, const scpi_call *c)
{
        channel *ch = chan(d, c);
        if (!ch)
                return -113;
        respond_nr3(d, ch->offset);
        return 0;
}

static int s_ch_coupling(void *d, const scpi_call *c)
{
        channel *ch = chan(d, c);
        int err = ch ? one_arg(c) : -113;
        if (err)
                return err;
        if (scpi_keyword(c->args[0], "DC"))
                ch->ac = false;
        else if (scpi_keyword(c->args[0], "AC"))
                ch->ac = true;
        else
                return -224;
        return 0;
}

static int q_ch_coupling(void *d, const scpi_call *c)
{
        channel *ch = chan(d, c);
        if (!ch)
                return -113;
        respond(d, "%s", ch->ac ? "AC" : "DC");
        return 0;
}

static int s_ch_display(void *d, const scpi_call *c)
{
        channel *ch = chan(d, c);
        int err = ch ? one_arg(c) : -113;
        if (err)
                return err;
        return scpi_bool(c->args[0], &ch->display) ? 0 : -224;
}

static int q_ch_display(void *d, const scpi_call *c)
{
        channel *ch = chan(d, c);
        if (!ch)
                return -113;
        respond(d, "%d", ch->display);
        return 0;
}

static int s_ch_probe(void *d, const scpi_call *c)
{
        channel *ch = chan(d, c);
        double v;
        if (!ch)
                return -113;
        ONE_NUMBER(c, v);
        if (v < 0.1 || v > 10000)
                return -222;
        /* The probe factor rescales what the screen shows. */
        ch->scale *= v / ch->probe;
        ch->offset *= v / ch->probe;
        ch->probe = v;
        return 0;
}

static int q_ch_probe(void *d, const scpi_call *c)
{
        channel *ch = chan(d, c);
        if (!ch)
                return -113;
        respond_nr3(d, ch->probe);
        return 0;
}

static int s_trig_mode(void *d, const scpi_call *c)
{
        int err = one_arg(c);
        return err ? err : scpi_keyword(c->args[0], "EDGE") ? 0 : -224; /* only EDGE is simulated */
}

static int q_trig_mode(void *d, const scpi_call *c) { respond(d, "EDGE"); return 0; }

static int s_trig_source(void *d, const scpi_call *c)
{
        int err = one_arg(c), n = 0;
        if (!err)
                err = parse_channel(d, c->args[0], &n);
        if (err)
                return err;
        ((sim_scope *)d)->trig.source = n;
        return 0;
}

static int q_trig_source(void *d, const scpi_call *c) { respond(d, "CHAN%d", ((sim_scope *)d)->trig.source); return 0; }

static int s_trig_level(void *d, const scpi_call *c)
{
        sim_scope *s = d;
        double v;
        ONE_NUMBER(c, v);
        const channel *ch = &s->ch[s->trig.source - 1];
        if (fabs(v - ch->offset) > 6 * ch->scale)
                return -222; /* the trigger level stays within the source's screen */
        s->trig.level = v;
        return 0;
}

static int q_trig_level(void *d, const scpi_call *c) { respond_nr3(d, ((sim_scope *)d)->trig.level); return 0; }

static int s_trig_slope(void *d, const scpi_call *c)
{
        sim_scope *s = d;
        int err = one_arg(c);
        if (err)
                return err;
        if (scpi_keyword(c->args[0], "POSitive"))
                s->trig.slope = WAVE_RISING;
        else if (scpi_keyword(c->args[0], "NEGative"))
                s->trig.slope = WAVE_FALLING;
        else
                return -224;
        return 0;
}

static int q_trig_slope(void *d, const scpi_call *c)
{
        respond(d, "%s", ((sim_scope *)d)->trig.slope == WAVE_RISING ? "POS" : "NEG");
        return 0;
}

static int s_trig_sweep(void *d, const scpi_call *c)
{
        sim_scope *s = d;
        int err = one_arg(c);
        if (err)
                return err;
        if (scpi_keyword(c->args[0], "AUTO"))
                s->trig.auto_sweep = true;
        else if (scpi_keyword(c->args[0], "NORMal"))
                s->trig.auto_sweep = false;
        else
                return -224;
        return 0;
}

static int q_trig_sweep(void *d, const scpi_call *c) { respond(d, "%s", ((sim_scope *)d)->trig.auto_sweep ? "AUTO" : "NORM"); return 0; }

static const char *const acq_names[] = { "NORMal", "PEAK", "AVERage", "HRESolution" };
static const char *const acq_short[] = { "NORM", "PEAK", "AVER", "HRES" };

static int s_acq_type(void *d, const scpi_call *c)
{
        int err = one_arg(c);
        if (err)
                return err;
        for (int i = 0; i < 4; i++) {
                if (scpi_keyword(c->args[0], acq_names[i])) {
                        ((sim_scope *)d)->acq_type = i;
                        return 0;
                }
        }
        return -224;
}

static int q_acq_type(void *d, const scpi_call *c) { respond(d, "%s", acq_short[((sim_scope *)d)->acq_type]); return 0; }

static int s_acq_count(void *d, const scpi_call *c)
{
        double v;
        ONE_NUMBER(c, v);
        if (v < 2 || v > 65536)
                return -222;
        ((sim_scope *)d)->acq_count = (int)v;
        return 0;
}

static int q_acq_count(void *d, const scpi_call *c) { respond(d, "%d", ((sim_scope *)d)->acq_count); return 0; }
static int q_acq_srate(void *d, const scpi_call *c) { respond_nr3(d, 1.0 / sample_interval(d)); return 0; }
static int q_acq_points(void *d, const scpi_call *c) { respond(d, "%u", record_points(d)); return 0; }

static int s_wav_source(void *d, const scpi_call *c)
{
        int err = one_arg(c), n = 0;
        if (!err)
                err = parse_channel(d, c->args[0], &n);
        if (err)
                return err;
        ((sim_scope *)d)->wav.source = n;
        return 0;
}

static int q_wav_source(void *d, const scpi_call *c) { respond(d, "CHAN%d", ((sim_scope *)d)->wav.source); return 0; }

static int s_wav_format(void *d, const scpi_call *c)
{
        sim_scope *s = d;
        int err = one_arg(c);
        if (err)
                return err;
        if (scpi_keyword(c->args[0], "BYTE"))
                s->wav.format = FMT_BYTE;
        else if (scpi_keyword(c->args[0], "WORD"))
                s->wav.format = FMT_WORD;
        else if (scpi_keyword(c->args[0], "ASCii"))
                s->wav.format = FMT_ASCII;
        else
                return -224;
        return 0;
}

static int q_wav_format(void *d, const scpi_call *c)
{
        int f = ((sim_scope *)d)->wav.format;
        respond(d, "%s", f == FMT_BYTE ? "BYTE" : f == FMT_WORD ? "WORD" : "ASC");
        return 0;
}

static int s_wav_byteorder(void *d, const scpi_call *c)
{
        sim_scope *s = d;
        int err = one_arg(c);
        if (err)
                return err;
        if (scpi_keyword(c->args[0], "MSBFirst"))
                s->wav.msb_first = true;
        else if (scpi_keyword(c->args[0], "LSBFirst"))
                s->wav.msb_first = false;
        else
                return -224;
        return 0;
}

static int q_wav_byteorder(void *d, const scpi_call *c) { respond(d, "%s", ((sim_scope *)d)->wav.msb_first ? "MSBF" : "LSBF"); return 0; }

static int s_wav_unsigned(void *d, const scpi_call *c)
{
        int err = one_arg(c);
        return err ? err : scpi_bool(c->args[0], &((sim_scope *)d)->wav.is_unsigned) ? 0 : -224;
}

static int q_wav_unsigned(void *d, const scpi_call *c) { respond(d, "%d", ((sim_scope *)d)->wav.is_unsigned); return 0; }

static int s_wav_points_mode(void *d, const scpi_call *c)
{
        sim_scope *s = d;
        int err = one_arg(c);
        if (err)
                return err;
        if (scpi_keyword(c->args[0], "NORMal"))
                s->wav.points_mode = PTS_NORMAL;
        else if (scpi_keyword(c->args[0], "MAXimum"))
                s->wav.points_mode = PTS_MAXIMUM;
        else if (scpi_keyword(c->args[0], "RAW"))
                s->wav.points_mode = PTS_RAW;
        else
                return -224;
        return 0;
}

static int q_wav_points_mode(void *d, const scpi_call *c)
{
        int m = ((sim_scope *)d)->wav.points_mode;
        respond(d, "%s", m == PTS_NORMAL ? "NORM" : m == PTS_MAXIMUM ? "MAX" : "RAW");
        return 0;
}

/* Points :WAVeform:DATA? returns: the request, capped by the record. */
static unsigned wav_points(const sim_scope *s)
{
        unsigned rec = record_points(s);
        return s->wav.points < rec ? s->wav.points : rec;
}

static int s_wav_points(void *d, const scpi_call *c)
{
        double v;
        ONE_NUMBER(c, v);
        if (v < 100 || v > 8000000)
                return -222;
        ((sim_scope *)d)->wav.points = (unsigned)v;
        return 0;
}

static int q_wav_points(void *d, const scpi_call *c) { respond(d, "%u", wav_points(d)); return 0; }

typedef struct preamble {
        int format, type;
        unsigned points, count;
        double xinc, xorig, xref, yinc, yorig, yref;
} preamble;

static preamble make_preamble(const sim_scope *s)
{
        const channel *ch = &s->ch[s->wav.source - 1];
        unsigned rec = record_points(s), pts = wav_points(s);
        preamble p = {
                .format = s->wav.format,
                .type = s->acq_type,
                .points = pts,
                .count = s->acq_type == ACQ_AVERAGE ? (unsigned)s->acq_count : 1,
                .xinc = sample_interval(s) * ((double)rec / pts),
                .xorig = x_origin(s),
                .xref = 0,
                /* 8 divisions across the 256 codes of a byte, centred on
                 * the channel's offset. */
                .yinc = 8 * ch->scale / 256,
                .yorig = ch->offset,
                .yref = 128,
        };
        if (s->wav.format == FMT_WORD) {
                p.yinc /= 256;
                p.yref = 32768;
        }
        if (!s->wav.is_unsigned)
                p.yref = 0;
        return p;
}

static int q_wav_preamble(void *d, const scpi_call *c)
{
        preamble p = make_preamble(d);
        respond(d, "%d,%d,%u,%u,%+.8E,%+.8E,%+.8E,%+.8E,%+.8E,%+.8E", p.format, p.type, p.points, p.count, p.xinc,
                p.xorig, p.xref, p.yinc, p.yorig, p.yref);
        return 0;
}

static int q_wav_data(void *d, const scpi_call *c)
{
        sim_scope *s = d;
        if (!s->ch[s->wav.source - 1].display) {
                respond_block(s, "", 0); /* an empty block, and why */
                return -221;
        }
        const double *rec = current_record(s, s->wav.source);
        if (!rec) {
                respond_block(s, "", 0);
                return -200; /* nothing triggered in NORMal sweep */
        }
        preamble p = make_preamble(s);
        /* Decimation keeps the preamble's x increment exact: sample i is
         * record point i * rec / points, not i times a rounded step. */
        double step = (double)record_points(s) / p.points;
        size_t width = p.format == FMT_WORD ? 2 : 1;
        size_t cap = p.format == FMT_ASCII ? (size_t)p.points * 17 : (size_t)p.points * width;
        uint8_t *data = malloc(cap + 1);
        if (!data)
                return -200;
        size_t len = 0;
        double full = p.format == FMT_WORD ? 65535 : 255;
        double ref_unsigned = p.format == FMT_WORD ? 32768 : 128;
        for (unsigned i = 0; i < p.points; i++) {
                double v = rec[(size_t)((double)i * step)];
                if (p.format == FMT_ASCII) {
                        len += (size_t)snprintf((char *)data + len, cap + 1 - len, "%s%+.6E", i ? "," : "", v);
                        continue;
                }
                double code = round((v - p.yorig) / p.yinc + ref_unsigned);
                code = code < 0 ? 0 : code > full ? full : code;
                long out = s->wav.is_unsigned ? (long)code : (long)code - (long)ref_unsigned;
                if (width == 1) {
                        data[len++] = (uint8_t)out;
                } else {
                        uint16_t w = (uint16_t)out;
                        data[len++] = s->wav.msb_first ? (uint8_t)(w >> 8) : (uint8_t)w;
                        data[len++] = s->wav.msb_first ? (uint8_t)w : (uint8_t)(w >> 8);
                }
        }
        respond_block(s, data, len);
        free(data);
        return 0;
}

/* :MEASure:<m>? [CHANnel<n>]. The guide: "If a measurement cannot be
 * made (typically because the proper portion of the waveform is not
 * displayed), the value +9.9E+37 is returned". So it is measured on what
 * the screen shows (the data clips at its edges, 4 divisions either side
 * of the offset), and what needs a part the screen cut off is not valid. */
static int q_measure(void *d, const scpi_call *c)
{
        sim_scope *s = d;
        wave_measurement m = (wave_measurement)c->arg;
        int chn = 1;
        if (c->n_args > 1)
                return -108;
        if (c->n_args == 1 && parse_channel(s, c->args[0], &chn))
                return -224;
        const channel *ch = &s->ch[chn - 1];
        const double *rec = ch->display ? current_record(s, chn) : NULL;
        double v;
        if (rec && wave_measure_screen(rec, record_points(s), sample_interval(s), ch->offset - 4 * ch->scale,
                                       ch->offset + 4 * ch->scale, m, &v))
                respond_nr3(s, v);
        else
                respond(s, "+9.9E+37"); /* the series' "no valid result" */
        return 0;
}

/* :DISPlay:DATA? [PNG[,COLor|GRAYscale]]: the screen as the series draws it
 * (800 x 480). BMP is not simulated. */
static int q_disp_data(void *d, const scpi_call *c)
{
        sim_scope *s = d;
        if (c->n_args > 2)
                return -108;
        if (c->n_args >= 1 && !scpi_keyword(c->args[0], "PNG"))
                return -224;
        if (c->n_args == 2 && !scpi_keyword(c->args[1], "COLor") && !scpi_keyword(c->args[1], "GRAYscale"))
                return -224;
        enum { SCREEN_POINTS = 1600 }; /* two per pixel column is plenty to draw */
        plot_trace tr[SIM_MAX_CHANNELS];
        float *pts[SIM_MAX_CHANNELS] = { NULL };
        int n = 0;
        unsigned rec_n = record_points(s);
        for (int ch = 1; ch <= (int)s->spec->channels; ch++) {
                const double *rec = s->ch[ch - 1].display ? current_record(s, ch) : NULL;
                if (!rec || !(pts[n] = malloc(SCREEN_POINTS * sizeof(float))))
                        continue;
                for (unsigned i = 0; i < SCREEN_POINTS; i++)
                        pts[n][i] = (float)rec[(size_t)((double)i * rec_n / SCREEN_POINTS)];
                tr[n] = (plot_trace){ .channel = ch, .volts = pts[n], .n = SCREEN_POINTS,
                                      .volts_per_div = s->ch[ch - 1].scale, .offset = s->ch[ch - 1].offset };
                n++;
        }
        uint8_t *png = NULL;
        size_t len = 0;
        char model[64];
        const char *c1 = strchr(s->idn, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
        snprintf(model, sizeof(model), "%.*s", c1 && c2 ? (int)(c2 - c1 - 1) : 0, c1 ? c1 + 1 : "");
        int err = plot_png_buffer(tr, n, s->tscale, x_origin(s), model, &png, &len) == TETHER_SUCCESS ? 0 : -200;
        if (!err)
                respond_block(s, png, len);
        free(png);
        for (int i = 0; i < n; i++)
                free(pts[i]);
        return err;
}

static const scpi_command commands[] = {
        { "*IDN", NULL, q_idn, 0 },
        { "*RST", s_rst, NULL, 0 },
        { "*CLS", s_cls, NULL, 0 },
        { "*OPC", s_opc, q_opc, 0 },
        { "*ESR", NULL, q_esr, 0 },
        { "*ESE", s_ese, q_ese, 0 },
        { "*SRE", s_sre, q_sre, 0 },
        { "*STB", NULL, q_stb, 0 },
        { "*WAI", s_wai, NULL, 0 },
        { "*TST", NULL, q_tst, 0 },
        { "*OPT", NULL, q_opt, 0 },
        { "SYSTem:ERRor", NULL, q_syst_err, 0 },
        { "RUN", s_run, NULL, 0 },
        { "STOP", s_stop, NULL, 0 },
        { "SINGle", s_single, NULL, 0 },
        { "DIGitize", s_digitize, NULL, 0 },
        { "AUToscale", s_autoscale, NULL, 0 },
        { "TIMebase:SCALe", s_tim_scale, q_tim_scale, 0 },
        { "TIMebase:RANGe", s_tim_range, q_tim_range, 0 },
        { "TIMebase:POSition", s_tim_pos, q_tim_pos, 0 },
        { "TIMebase:MODE", s_tim_mode, q_tim_mode, 0 },
        { "CHANnel#:SCALe", s_ch_scale, q_ch_scale, 0 },
        { "CHANnel#:RANGe", s_ch_range, q_ch_range, 0 },
        { "CHANnel#:OFFSet", s_ch_offset, q_ch_offset, 0 },
        { "CHANnel#:COUPling", s_ch_coupling, q_ch_coupling, 0 },
        { "CHANnel#:DISPlay", s_ch_display, q_ch_display, 0 },
        { "CHANnel#:PROBe", s_ch_probe, q_ch_probe, 0 },
        { "DIGital#:DISPlay", s_dig_display, q_dig_display, 0 },
        { "TRIGger:MODE", s_trig_mode, q_trig_mode, 0 },
        { "TRIGger:EDGE:SOURce", s_trig_source, q_trig_source, 0 },
        { "TRIGger:EDGE:LEVel", s_trig_level, q_trig_level, 0 },
        { "TRIGger:EDGE:SLOPe", s_trig_slope, q_trig_slope, 0 },
        { "TRIGger:SWEep", s_trig_sweep, q_trig_sweep, 0 },
        { "ACQuire:TYPE", s_acq_type, q_acq_type, 0 },
        { "ACQuire:COUNt", s_acq_count, q_acq_count, 0 },
        { "ACQuire:SRATe", NULL, q_acq_srate, 0 },
        { "ACQuire:POINts", NULL, q_acq_points, 0 },
        { "WAVeform:SOURce", s_wav_source, q_wav_source, 0 },
        { "WAVeform:FORMat", s_wav_format, q_wav_format, 0 },
        { "WAVeform:BYTeorder", s_wav_byteorder, q_wav_byteorder, 0 },
        { "WAVeform:UNSigned", s_wav_unsigned, q_wav_unsigned, 0 },
        { "WAVeform:POINts:MODE", s_wav_points_mode, q_wav_points_mode, 0 },
        { "WAVeform:POINts", s_wav_points, q_wav_points, 0 },
        { "WAVeform:PREamble", NULL, q_wav_preamble, 0 },
        { "WAVeform:DATA", NULL, q_wav_data, 0 },
        { "MEASure:FREQuency", NULL, q_measure, WAVE_FREQUENCY },
        { "MEASure:PERiod", NULL, q_measure, WAVE_PERIOD },
        { "MEASure:VPP", NULL, q_measure, WAVE_VPP },
        { "MEASure:VMAX", NULL, q_measure, WAVE_VMAX },
        { "MEASure:VMIN", NULL, q_measure, WAVE_VMIN },
        { "MEASure:VAVerage", NULL, q_measure, WAVE_VAVERAGE },
        { "MEASure:VRMS", NULL, q_measure, WAVE_VRMS },
        { "DISPlay:DATA", NULL, q_disp_data, 0 },
        { NULL, NULL, NULL, 0 },
};

/* ---- the public side ---- */

int sim_scope_new(const sim_scope_config *cfg, sim_scope **ret)
{
        sim_scope *s = calloc(1, sizeof(*s));
        if (!s)
                return -1;
        sim_scope_config d = cfg ? *cfg : (sim_scope_config){ 0 };
        s->spec = d.spec ? d.spec : sim_model_default();
        snprintf(s->idn, sizeof(s->idn), "%s,%s,%s,%s", d.manufacturer ? d.manufacturer : "AGILENT TECHNOLOGIES",
                 d.model ? d.model : s->spec->idn_model, d.serial ? d.serial : "MY57235663",
                 d.firmware ? d.firmware : "02.42.2017032900");
        s->seed = d.seed ? d.seed : 2002;
        scpi_status_init(&s->status, SIM_ERROR_QUEUE);
        /* Out of memory, an answer is cut, as a full queue would cut it. */
        scpi_response_init(&s->resp, &s->out, SIZE_MAX);
        reset(s);
        *ret = s;
        return 0;
}

void sim_scope_free(sim_scope *s)
{
        if (!s)
                return;
        for (unsigned i = 0; i < SIM_MAX_CHANNELS; i++)
                free(s->record[i]);
        free(s->out.p);
        free(s);
}

void sim_scope_execute(sim_scope *s, const char *msg, size_t len)
{
        /* A new command while an answer is still unread: the answer is
         * lost, as 488.2 says (-410). */
        if (s->out.len) {
                s->out.len = 0;
                push_error(s, -410);
        }
        scpi_response_begin(&s->resp);
        scpi_execute(commands, s, push_error, msg, len);
        scpi_response_end(&s->resp);
}

unsigned sim_scope_output_ready_in_ms(const sim_scope *s)
{
        double left = s->busy_until - mono_s();
        return left > 0 ? (unsigned)(left * 1000 + 1) : 0;
}

size_t sim_scope_output_pending(const sim_scope *s)
{
        return s->out.len;
}

size_t sim_scope_output_take(sim_scope *s, uint8_t *buf, size_t cap)
{
        size_t n = s->out.len < cap ? s->out.len : cap;
        if (n == 0)
                return 0; /* nothing was ever queued: s->out.p may be NULL */
        memcpy(buf, s->out.p, n);
        memmove(s->out.p, s->out.p + n, s->out.len - n);
        s->out.len -= n;
        return n;
}

void sim_scope_query_unterminated(sim_scope *s)
{
        push_error(s, -420);
}

void sim_scope_device_clear(sim_scope *s)
{
        s->out.len = 0;
        s->busy_until = 0; /* a device clear aborts the acquisition in progress */
}
