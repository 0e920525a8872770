/* SPDX-License-Identifier: MIT */
/*
 * tether scope: list scopes, show and set their settings, capture
 * waveforms to CSV and PNG, run measurements, talk SCPI.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tether/tether.h>

#include "dsox2000/dsox2000.h"
#include "plot/plot.h"
#include "scope.h"

/* The scope's service and its nub (its USB device or LAN address), once a
 * scope is chosen: which of them is still in the registry says whose end
 * a NotAttached was. */
static tether_session *chosen;
static uint64_t chosen_id, nub_id;

static bool in_registry(uint64_t id)
{
        uint64_t parent = 0;
        return chosen && id && tether_registry_entry_get_parent(chosen, id, &parent) == TETHER_SUCCESS;
}

static const char *gone_why(void)
{
        if (!in_registry(nub_id))
                return "the scope is gone (unplugged?)";
        if (!in_registry(chosen_id))
                return "the scope's driver stopped (it crashed, or was unloaded: tetherd's log says which; a crashed "
                       "one is restarted)";
        return "the scope stopped answering its link (unplugged, switched off, or its firmware hung)";
}

/* One clear line, naming what went wrong in the user's terms. */
static int fail(const char *what, tether_ret_t r)
{
        const char *why = tether_strerror(r);
        if (r == TETHER_ERR_BUSY)
                why = "the scope is busy: another application holds its lock";
        else if (r == TETHER_ERR_TIMEOUT)
                why = "the scope did not answer in time";
        else if (r == TETHER_ERR_NOT_RESPONDING || r == TETHER_ERR_IPC)
                why = "cannot reach tetherd (is it running? $TETHER_SOCKET names its socket)";
        else if (r == TETHER_ERR_NO_DEVICE || r == TETHER_ERR_NOT_ATTACHED)
                why = gone_why();
        fprintf(stderr, "tether scope: %s: %s\n", what, why);
        return 1;
}

/* Analog channels: the 4-channel models' (DSO-X 2004A ... 2024A). */
#define SCOPE_MAX_CHANNELS 4

typedef struct scope_opts {
        const char *serial;
        int channels;          /* bit mask; -1: every channel the model has */
        unsigned points;
        bool autoscale;
        const char *csv, *png;
} scope_opts;

/* The scope to use: the one with this serial, or the first. */
static tether_ret_t find_scope(tether_session *s, const char *serial, uint64_t *ret)
{
        tether_value *m = NULL, *props = NULL;
        tether_ret_t r = tether_service_matching(DSO_CLASS, &m);
        if (r == TETHER_SUCCESS && serial) {
                r = tether_value_new_dict(&props);
                if (r == TETHER_SUCCESS)
                        r = tether_value_dict_set_string(props, DSO_PROP_SERIAL, serial);
                if (r == TETHER_SUCCESS)
                        r = tether_value_dict_set(m, "IOPropertyMatch", props);
                tether_value_unref(props);
        }
        if (r == TETHER_SUCCESS)
                r = tether_get_matching_service(s, m, ret);
        tether_value_unref(m);
        return r;
}

static int no_scope(const char *serial)
{
        if (serial)
                fprintf(stderr, "tether scope: no DSO-X 2000 scope with serial %s\n", serial);
        else
                fprintf(stderr, "tether scope: no DSO-X 2000 scope found (plug one in, or start tetherd "
                                "with --simulate dsox2002a)\n");
        return 1;
}

static int cmd_list(tether_session *s)
{
        tether_value *m = NULL;
        uint64_t *ids = NULL;
        size_t n = 0;
        tether_service_matching(DSO_CLASS, &m);
        tether_ret_t r = tether_get_matching_services(s, m, &ids, &n);
        tether_value_unref(m);
        if (r != TETHER_SUCCESS)
                return fail("list", r);
        for (size_t i = 0; i < n; i++) {
                tether_value *model = NULL, *serial = NULL;
                const char *a = "?", *b = "?";
                if (tether_registry_entry_get_property(s, ids[i], DSO_PROP_MODEL, &model) == TETHER_SUCCESS)
                        tether_value_get_string(model, &a);
                if (tether_registry_entry_get_property(s, ids[i], DSO_PROP_SERIAL, &serial) == TETHER_SUCCESS)
                        tether_value_get_string(serial, &b);
                char *path = NULL;
                tether_registry_entry_get_path(s, ids[i], &path);
                printf("%-12s %-12s id 0x%" PRIx64 "  %s\n", a, b, ids[i], path ? path : "");
                free(path);
                tether_value_unref(model);
                tether_value_unref(serial);
        }
        if (!n)
                return no_scope(NULL);
        free(ids);
        return 0;
}

static int cmd_show(tether_session *s, uint64_t id)
{
        tether_value *props = NULL;
        tether_ret_t r = tether_registry_entry_get_properties(s, id, &props);
        if (r != TETHER_SUCCESS)
                return fail("show", r);
        for (size_t i = 0; i < tether_value_count(props); i++) {
                const char *key;
                tether_value *v;
                char *text = NULL;
                tether_value_dict_entry(props, i, &key, &v);
                tether_value_format(v, &text);
                printf("%-18s %s\n", key, text ? text : "?");
                free(text);
        }
        tether_value_unref(props);
        return 0;
}

static int cmd_set(tether_session *s, uint64_t id, const char *key, const char *text)
{
        tether_value *d = NULL, *v = NULL;
        char *end = NULL;
        errno = 0;
        double x = strtod(text, &end);
        /* A number if the whole argument is one, else a string ("AC", "CHAN2"). */
        tether_ret_t r = (end != text && !*end && !errno) ? tether_value_new_double(x, &v) : tether_value_new_string(text, &v);
        if (r == TETHER_SUCCESS)
                r = tether_value_new_dict(&d);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set(d, key, v);
        char *why = NULL;
        if (r == TETHER_SUCCESS)
                r = tether_registry_entry_set_properties_why(s, id, d, &why);
        tether_value_unref(v);
        tether_value_unref(d);
        if (r != TETHER_SUCCESS) {
                fprintf(stderr, "tether scope: set %s = %s: refused by the driver: %s%s%s\n", key, text,
                        tether_strerror(r), why && *why ? ": " : "", why ? why : "");
                free(why);
                return 1;
        }
        printf("%s = %s: accepted\n", key, text);
        return 0;
}

static tether_ret_t measure(tether_connect *c, int ch, int what, double *ret)
{
        uint64_t in[2] = { (uint64_t)ch, (uint64_t)what }, out = 0;
        uint32_t n = 1;
        tether_ret_t r = tether_call_scalar_method(c, DSO_MEASURE, in, 2, &out, &n);
        if (r == TETHER_SUCCESS)
                memcpy(ret, &out, sizeof(*ret));
        return r;
}

static void print_measurements(tether_connect *c, int ch)
{
        static const struct {
                int id;
                const char *name, *unit;
        } m[] = { { DSO_MEAS_FREQUENCY, "frequency", "Hz" }, { DSO_MEAS_PERIOD, "period", "s" },
                  { DSO_MEAS_VPP, "Vpp", "V" }, { DSO_MEAS_VMAX, "Vmax", "V" }, { DSO_MEAS_VMIN, "Vmin", "V" },
                  { DSO_MEAS_VAVERAGE, "Vavg", "V" }, { DSO_MEAS_VRMS, "Vrms", "V" } };
        printf("channel %d:", ch);
        for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
                double v;
                if (measure(c, ch, m[i].id, &v) == TETHER_SUCCESS)
                        printf("  %s %.6g %s", m[i].name, v, m[i].unit);
                else
                        printf("  %s --", m[i].name); /* no valid result */
        }
        printf("\n");
}

static void progress(const char *what)
{
        if (isatty(STDERR_FILENO))
                fprintf(stderr, "\r\033[K%s", what);
        else
                fprintf(stderr, "%s\n", what);
}

typedef struct acquired {
        bool done;
        tether_ret_t result;
} acquired;

static void on_acquired(void *refcon, tether_ret_t result, const uint64_t *args, uint32_t n)
{
        acquired *a = refcon;
        a->done = true;
        a->result = result;
}

/* An async DIGITIZE: a sweep may take longer than a synchronous call may
 * hold the driver (a slow timebase). The driver ends it by its own
 * deadline; a scope that goes meanwhile is seen when its entry leaves the
 * registry. */
static tether_ret_t digitize(tether_session *s, uint64_t id, tether_connect *c, uint64_t mask)
{
        tether_notification_port *port = NULL;
        tether_ret_t r = tether_notification_port_create(s, &port);
        acquired a = { 0 };
        if (r == TETHER_SUCCESS)
                r = tether_call_async_method(c, DSO_DIGITIZE, port, on_acquired, &a, &mask, 1, NULL, 0, NULL, NULL,
                                             NULL, NULL);
        struct pollfd pfd = { .fd = r == TETHER_SUCCESS ? tether_notification_port_get_fd(port) : -1,
                              .events = POLLIN };
        while (r == TETHER_SUCCESS && !a.done) {
                int n = poll(&pfd, 1, 1000);
                if (n > 0) {
                        r = tether_notification_port_dispatch(port);
                } else if (n == 0) {
                        tether_value *v = NULL;
                        if (tether_registry_entry_get_property(s, id, DSO_PROP_MODEL, &v) == TETHER_ERR_NOT_FOUND)
                                r = TETHER_ERR_NOT_ATTACHED;
                        tether_value_unref(v);
                } else if (errno != EINTR) {
                        r = TETHER_ERR_IPC;
                }
        }
        tether_notification_port_destroy(port);
        return r == TETHER_SUCCESS ? a.result : r;
}

static int cmd_capture(tether_session *s, uint64_t id, const scope_opts *o)
{
        tether_connect *c = NULL;
        tether_ret_t r = tether_service_open(s, id, 0, 0, &c);
        if (r != TETHER_SUCCESS)
                return fail("open", r);
        /* Locked for the whole capture: nobody changes the settings between
         * the acquisition and the read-out. */
        r = tether_call_scalar_method(c, DSO_LOCK, NULL, 0, NULL, NULL);
        if (r == TETHER_SUCCESS && o->autoscale) {
                progress("autoscaling...");
                r = tether_call_scalar_method(c, DSO_AUTOSCALE, NULL, 0, NULL, NULL);
        }
        if (r == TETHER_SUCCESS) {
                progress("digitizing...");
                r = digitize(s, id, c, (uint64_t)o->channels);
        }
        float *volts[SCOPE_MAX_CHANNELS] = { NULL };
        dso_preamble pre[SCOPE_MAX_CHANNELS];
        size_t n[SCOPE_MAX_CHANNELS] = { 0 };
        for (int ch = 1; ch <= SCOPE_MAX_CHANNELS && r == TETHER_SUCCESS; ch++) {
                if (!(o->channels & (1 << (ch - 1))))
                        continue;
                char msg[64];
                snprintf(msg, sizeof(msg), "reading channel %d (%u points)...", ch, o->points);
                progress(msg);
                uint64_t chn = (uint64_t)ch, in[2] = { chn, o->points };
                volts[ch - 1] = malloc(o->points * sizeof(float));
                size_t size = o->points * sizeof(float);
                if (!volts[ch - 1])
                        r = TETHER_ERR_NO_MEMORY;
                if (r == TETHER_SUCCESS)
                        r = tether_call_method(c, DSO_GET_VOLTS, in, 2, NULL, 0, NULL, NULL, volts[ch - 1], &size);
                n[ch - 1] = size / sizeof(float);
                /* After the read: the preamble describes the points just read. */
                size = sizeof(pre[0]);
                if (r == TETHER_SUCCESS)
                        r = tether_call_method(c, DSO_GET_PREAMBLE, &chn, 1, NULL, 0, NULL, NULL, &pre[ch - 1], &size);
        }
        if (isatty(STDERR_FILENO))
                fprintf(stderr, "\r\033[K");
        int status = 0;
        if (r != TETHER_SUCCESS) {
                status = fail("capture", r);
        } else {
                for (int ch = 1; ch <= SCOPE_MAX_CHANNELS; ch++)
                        if (volts[ch - 1])
                                print_measurements(c, ch);
        }
        tether_call_scalar_method(c, DSO_UNLOCK, NULL, 0, NULL, NULL);

        int first = 0;
        while (first < SCOPE_MAX_CHANNELS - 1 && !volts[first])
                first++;
        if (!status && o->csv) {
                FILE *f = fopen(o->csv, "w");
                if (!f) {
                        fprintf(stderr, "tether scope: %s: %s\n", o->csv, strerror(errno));
                        status = 1;
                } else {
                        fprintf(f, "time_s");
                        for (int ch = 0; ch < SCOPE_MAX_CHANNELS; ch++)
                                if (volts[ch])
                                        fprintf(f, ",ch%d_V", ch + 1);
                        fputc('\n', f);
                        for (size_t i = 0; i < n[first]; i++) {
                                const dso_preamble *p = &pre[first];
                                fprintf(f, "%.9e", ((double)i - p->x_reference) * p->x_increment + p->x_origin);
                                for (int ch = 0; ch < SCOPE_MAX_CHANNELS; ch++)
                                        if (volts[ch] && i < n[ch])
                                                fprintf(f, ",%.6g", volts[ch][i]);
                                fputc('\n', f);
                        }
                        fclose(f);
                        printf("wrote %s (%zu points)\n", o->csv, n[first]);
                }
        }
        if (!status && o->png) {
                tether_value *v = NULL;
                plot_trace tr[SCOPE_MAX_CHANNELS];
                int nt = 0;
                for (int ch = 1; ch <= SCOPE_MAX_CHANNELS; ch++) {
                        if (!volts[ch - 1])
                                continue;
                        char key[32];
                        double scale = 1, offset = 0;
                        snprintf(key, sizeof(key), DSO_PROP_CH_SCALE, ch);
                        if (tether_registry_entry_get_property(s, id, key, &v) == TETHER_SUCCESS)
                                tether_value_get_double(v, &scale);
                        v = tether_value_unref(v);
                        snprintf(key, sizeof(key), DSO_PROP_CH_OFFSET, ch);
                        if (tether_registry_entry_get_property(s, id, key, &v) == TETHER_SUCCESS)
                                tether_value_get_double(v, &offset);
                        v = tether_value_unref(v);
                        tr[nt++] = (plot_trace){ .channel = ch, .volts = volts[ch - 1], .n = n[ch - 1],
                                                 .volts_per_div = scale, .offset = offset };
                }
                const dso_preamble *p = &pre[first];
                double span = p->x_increment * (double)n[first];
                char model[64] = "";
                const char *name = NULL;
                if (tether_registry_entry_get_property(s, id, DSO_PROP_MODEL, &v) == TETHER_SUCCESS &&
                    tether_value_get_string(v, &name) == TETHER_SUCCESS)
                        snprintf(model, sizeof(model), "%s", name);
                v = tether_value_unref(v);
                if (plot_png(o->png, tr, nt, span / 10, p->x_origin, model) != TETHER_SUCCESS) {
                        fprintf(stderr, "tether scope: cannot write %s\n", o->png);
                        status = 1;
                } else {
                        printf("wrote %s\n", o->png);
                }
        }
        for (int ch = 0; ch < SCOPE_MAX_CHANNELS; ch++)
                free(volts[ch]);
        tether_service_close(c);
        return status;
}

static int cmd_measure(tether_session *s, uint64_t id, const scope_opts *o)
{
        tether_connect *c = NULL;
        tether_ret_t r = tether_service_open(s, id, 0, 0, &c);
        if (r != TETHER_SUCCESS)
                return fail("open", r);
        for (int ch = 1; ch <= SCOPE_MAX_CHANNELS; ch++)
                if (o->channels & (1 << (ch - 1)))
                        print_measurements(c, ch);
        tether_service_close(c);
        return 0;
}

static int cmd_screenshot(tether_session *s, uint64_t id, const char *path)
{
        if (!path) {
                fprintf(stderr, "tether scope: screenshot needs --png FILE\n");
                return 2;
        }
        tether_connect *c = NULL;
        tether_ret_t r = tether_service_open(s, id, 0, 0, &c);
        if (r != TETHER_SUCCESS)
                return fail("open", r);
        size_t size = 1u << 20;
        uint8_t *png = malloc(size);
        r = png ? tether_call_struct_method(c, DSO_SCREENSHOT, NULL, 0, png, &size) : TETHER_ERR_NO_MEMORY;
        tether_service_close(c);
        int status = 0;
        if (r != TETHER_SUCCESS) {
                status = fail("screenshot", r);
        } else {
                FILE *f = fopen(path, "wb");
                if (!f || fwrite(png, 1, size, f) != size) {
                        fprintf(stderr, "tether scope: %s: %s\n", path, strerror(errno));
                        status = 1;
                } else {
                        printf("wrote %s (%zu bytes, the scope's screen)\n", path, size);
                }
                if (f)
                        fclose(f);
        }
        free(png);
        return status;
}

static int cmd_scpi(tether_session *s, uint64_t id, const char *text)
{
        tether_connect *c = NULL;
        tether_ret_t r = tether_service_open(s, id, 0, 0, &c);
        if (r != TETHER_SUCCESS)
                return fail("open", r);
        char out[4096];
        size_t size = sizeof(out) - 1;
        r = tether_call_struct_method(c, DSO_SCPI, text, strlen(text), out, &size);
        tether_service_close(c);
        if (r != TETHER_SUCCESS)
                return fail(text, r);
        out[size] = '\0';
        fputs(out, stdout);
        return 0;
}

/* --channel's text: a list of channel numbers, "both" or "all" (-1, for
 * model_channels to resolve). */
static tether_ret_t parse_channels(const char *text, int *ret)
{
        if (!strcmp(text, "all")) {
                *ret = -1;
                return TETHER_SUCCESS;
        }
        if (!strcmp(text, "both")) {
                *ret = 3;
                return TETHER_SUCCESS;
        }
        int mask = 0;
        const char *p = text;
        do {
                if (*p < '1' || *p > '0' + SCOPE_MAX_CHANNELS || (p[1] && (p[1] != ',' || !p[2])))
                        return TETHER_ERR_BAD_ARGUMENT;
                mask |= 1 << (*p - '1');
                p += p[1] ? 2 : 1;
        } while (*p);
        *ret = mask;
        return TETHER_SUCCESS;
}

/* The channels asked for, checked against the model's: 0, or the exit
 * status after saying which channel it lacks. */
static int model_channels(tether_session *s, uint64_t id, int *mask)
{
        tether_value *v = NULL;
        uint64_t have = 2;
        if (tether_registry_entry_get_property(s, id, DSO_PROP_CHANNELS, &v) == TETHER_SUCCESS)
                tether_value_get_uint(v, &have);
        tether_value_unref(v);
        if (have < 1 || have > SCOPE_MAX_CHANNELS)
                have = 2;
        int all = (1 << have) - 1;
        if (*mask == -1)
                *mask = all;
        if (*mask & ~all) {
                int ch = 1;
                while (!(*mask & ~all & (1 << (ch - 1))))
                        ch++;
                fprintf(stderr, "tether scope: --channel %d: this scope has %u channels\n", ch, (unsigned)have);
                return 2;
        }
        return 0;
}

static void usage(FILE *f)
{
        fprintf(f, "usage: tether scope list\n"
                   "       tether scope show [--serial S]\n"
                   "       tether scope set KEY VALUE [--serial S]\n"
                   "       tether scope capture [--channel N[,N...]|both|all] [--points N] [--autoscale]\n"
                   "                            [--csv FILE] [--png FILE] [--serial S]\n"
                   "       tether scope measure [--channel N[,N...]|both|all] [--serial S]\n"
                   "       tether scope screenshot --png FILE [--serial S]\n"
                   "       tether scope scpi COMMAND [--serial S]\n");
}

/* SUB [ARG...] on the scope with service id. */
static int on_scope(tether_session *s, uint64_t id, scope_opts *o, int argc, char **argv)
{
        const char *sub = argv[0];
        chosen = s;
        chosen_id = id;
        if (tether_registry_entry_get_parent(s, id, &nub_id) != TETHER_SUCCESS)
                nub_id = 0;
        int status = 0;
        if ((!strcmp(sub, "capture") || !strcmp(sub, "measure")) && (status = model_channels(s, id, &o->channels)))
                return status; /* a channel the model lacks: said */
        if (!strcmp(sub, "show"))
                return cmd_show(s, id);
        if (!strcmp(sub, "set") && argc > 2)
                return cmd_set(s, id, argv[1], argv[2]);
        if (!strcmp(sub, "capture"))
                return cmd_capture(s, id, o);
        if (!strcmp(sub, "screenshot"))
                return cmd_screenshot(s, id, o->png);
        if (!strcmp(sub, "measure"))
                return cmd_measure(s, id, o);
        if (!strcmp(sub, "scpi") && argc > 1)
                return cmd_scpi(s, id, argv[1]);
        usage(stderr);
        return 2;
}

int cmd_scope(int argc, char **argv)
{
        static const struct option opts[] = {
                { "serial", required_argument, NULL, 's' }, { "channel", required_argument, NULL, 'c' },
                { "points", required_argument, NULL, 'n' }, { "autoscale", no_argument, NULL, 'a' },
                { "csv", required_argument, NULL, 'C' },    { "png", required_argument, NULL, 'P' },
                { "help", no_argument, NULL, 'h' },         { 0 },
        };
        scope_opts o = { .channels = 1, .points = 62500 };
        int c;
        while ((c = getopt_long(argc, argv, "s:c:n:aC:P:h", opts, NULL)) != -1) {
                switch (c) {
                case 's': o.serial = optarg; break;
                case 'c':
                        if (parse_channels(optarg, &o.channels) != TETHER_SUCCESS) {
                                fprintf(stderr, "tether scope: --channel takes channel numbers 1 to %d (1,3), "
                                                "both (1 and 2) or all\n",
                                        SCOPE_MAX_CHANNELS);
                                return 2;
                        }
                        break;
                case 'n':
                        o.points = (unsigned)strtoul(optarg, NULL, 10);
                        if (o.points < 100 || o.points > DSO_MAX_POINTS) {
                                fprintf(stderr, "tether scope: --points takes 100 to %u\n", DSO_MAX_POINTS);
                                return 2;
                        }
                        break;
                case 'a': o.autoscale = true; break;
                case 'C': o.csv = optarg; break;
                case 'P': o.png = optarg; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return 2;
        }
        const char *sub = argv[optind];
        tether_session *s = NULL;
        tether_ret_t r = tether_session_open(NULL, &s);
        if (r != TETHER_SUCCESS)
                return fail("connect", r);
        int status;
        uint64_t id = 0;
        if (!strcmp(sub, "list"))
                status = cmd_list(s);
        else if (find_scope(s, o.serial, &id) != TETHER_SUCCESS)
                status = no_scope(o.serial);
        else
                status = on_scope(s, id, &o, argc - optind, argv + optind);
        tether_session_close(s);
        return status;
}
