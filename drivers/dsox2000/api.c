/* SPDX-License-Identifier: MIT */
/*
 * DSOX2000: the driver for Keysight (Agilent) InfiniiVision 2000 X scopes
 * (DSO-X and MSO-X 2002A ... 2024A), over USBTMC. It matches a USB device
 * nub with a USBTMC/USB488 interface of vendor 0x0957 or 0x2A8D, tells the
 * model from its USB id and *IDN? (models.h), publishes identity, the
 * model's channels and ranges, and settings as properties, and offers
 * acquisition methods through a static table. Its USB device, real or simulated, is
 * opened by tetherd and handed over as an fd (tether_service_open_provider_device);
 * a LAN nub (Address, Port) is reached with raw SCPI over TCP. The protocol
 * code is the same for all, and knows nothing of the simulator.
 *
 * Everything runs in the service's gate: the USBTMC link is used by one
 * callback at a time, as the instrument needs. A callback holds the gate
 * for at most DSO_SYNC_MAX_WAIT_MS per answer: the host must answer
 * tetherd's heartbeat (10 s by default) or be killed. An acquisition that
 * takes longer (a slow timebase, a trigger that has not come) is an async
 * DIGITIZE, whose answer is waited for in slices on a timer.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tether/driver.h>

#include "core/clock.h"
#include "dsox2000/dsox2000.h"
#include "dsox2000/models.h"
#include "dsox2000/protocol.h"
#include "usbtmc/backend-libusb.h"
#include "usbtmc/backend-vusb.h"

typedef struct dso {
        scpi_link link;             /* what the protocol code talks through */
        usbtmc usb;                 /* when the link is USBTMC */
        usbtmc_vusb *vusb;          /* when the device is simulated */
        libusb_context *usb_ctx;    /* when it is real */
        usbtmc_usb *usb_dev;
        tether_user_client *lock_owner;
        unsigned timeout_ms;        /* TimeoutMs; the link's is it capped at DSO_SYNC_MAX_WAIT_MS */
        /* Async digitizes: the one acquiring (its *OPC? asked, the answer
         * awaited on acq_timer) and those waiting for it, in order. */
        struct digitize_job *acquiring, *queue;
        tether_timer *acq_timer;
        uint64_t acq_deadline_ms;
        const dso_model *model;     /* from start() on */
} dso;

/* The longest a callback waits for one answer, whatever TimeoutMs says:
 * well inside tetherd's default 10 s watchdog. */
#define DSO_SYNC_MAX_WAIT_MS 8000u
/* How long one wait for an async acquisition's answer holds the gate. */
#define DSO_SLICE_MS 20u

static void set_timeout(dso *d, unsigned ms)
{
        d->timeout_ms = ms;
        scpi_link_set_timeout(&d->link, ms < DSO_SYNC_MAX_WAIT_MS ? ms : DSO_SYNC_MAX_WAIT_MS);
}

static const char *const meas_names[DSO_MEAS_COUNT] = { "FREQuency", "PERiod", "VPP", "VMAX", "VMIN",
                                                        "VAVerage", "VRMS" };

/* ---- properties ---- */

/* Read the settings back from the instrument into the property table, so
 * readers see what the scope really has (it may round a value). */
static tether_ret_t refresh_settings(tether_service *svc)
{
        dso *d = tether_service_priv(svc);
        double v;
        char text[32], key[32];
        tether_ret_t r = dso_query_double(&d->link, &v, ":TIMebase:SCALe?");
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_double(svc, DSO_PROP_TIMEBASE, v);
        for (int ch = 1; ch <= d->model->channels && r == TETHER_SUCCESS; ch++) {
                r = dso_query_double(&d->link, &v, ":CHANnel%d:SCALe?", ch);
                snprintf(key, sizeof(key), DSO_PROP_CH_SCALE, ch);
                if (r == TETHER_SUCCESS)
                        r = tether_service_set_property_double(svc, key, v);
                if (r == TETHER_SUCCESS)
                        r = dso_query_double(&d->link, &v, ":CHANnel%d:OFFSet?", ch);
                snprintf(key, sizeof(key), DSO_PROP_CH_OFFSET, ch);
                if (r == TETHER_SUCCESS)
                        r = tether_service_set_property_double(svc, key, v);
                if (r == TETHER_SUCCESS)
                        r = dso_query(&d->link, text, sizeof(text), ":CHANnel%d:COUPling?", ch);
                snprintf(key, sizeof(key), DSO_PROP_CH_COUPLING, ch);
                if (r == TETHER_SUCCESS)
                        r = tether_service_set_property_string(svc, key, text);
        }
        if (r == TETHER_SUCCESS)
                r = dso_query_double(&d->link, &v, ":TRIGger:EDGE:LEVel?");
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_double(svc, DSO_PROP_TRIG_LEVEL, v);
        if (r == TETHER_SUCCESS)
                r = dso_query(&d->link, text, sizeof(text), ":TRIGger:EDGE:SOURce?");
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_string(svc, DSO_PROP_TRIG_SOURCE, text);
        return r;
}

static bool is_number(const tether_value *v, double *ret)
{
        int64_t i;
        if (tether_value_get_double(v, ret) == TETHER_SUCCESS)
                return true;
        if (tether_value_get_int(v, &i) == TETHER_SUCCESS) {
                *ret = (double)i;
                return true;
        }
        return false;
}

/* "Channel<n><what>" for a channel the model has: n, or 0 if key is not
 * that (Channel3Scale on a 2-channel model is no setting of the scope). */
static int channel_key(const dso *d, const char *key, const char *what)
{
        for (int ch = 1; ch <= d->model->channels; ch++) {
                char k[32];
                snprintf(k, sizeof(k), "Channel%d%s", ch, what);
                if (!strcmp(k, key))
                        return ch;
        }
        return 0;
}

/* TimeoutMs is the link's, not a knob of the scope: it bounds how long
 * every client's call may wait on the instrument, so 600 s lets one user
 * hold the service's work loop (everyone's calls) for ten minutes on a
 * hung scope. It is an administrator's (root, or tetherd's admin group).
 * The measurement settings are anyone's whom the bundle's access policy
 * admits, as the front panel's knobs are. */
static bool admin_only(const char *key)
{
        return !strcmp(key, DSO_PROP_TIMEOUT);
}

/* "CHAN<n>" for a channel the model has: n, else 0. */
static int trigger_channel(const dso *d, const char *s)
{
        for (int ch = 1; ch <= d->model->channels; ch++) {
                char k[8];
                snprintf(k, sizeof(k), "CHAN%d", ch);
                if (!strcmp(k, s))
                        return ch;
        }
        return 0;
}

/* Check one key against the model's ranges; on success write the SCPI
 * that applies it into cmd. A refusal says which rule, for the writer to
 * read. */
static tether_ret_t validate(tether_service *svc, const char *key, const tether_value *v, char *cmd, size_t cap)
{
        const dso *d = tether_service_priv(svc);
        double x = 0;
        const char *s = NULL;
        int ch;
        if (!strcmp(key, DSO_PROP_TIMEBASE)) {
                if (!is_number(v, &x) || !(x >= d->model->min_tscale && x <= 50))
                        return tether_service_refuse(svc, TETHER_ERR_BAD_ARGUMENT,
                                                     "%s must be a number from %ge-9 to 50 (s/div)", key,
                                                     d->model->min_tscale * 1e9);
                snprintf(cmd, cap, ":TIMebase:SCALe %.9E", x);
        } else if ((ch = channel_key(d, key, "Scale"))) {
                if (!is_number(v, &x) || !(x >= 1e-3 && x <= 5))
                        return tether_service_refuse(svc, TETHER_ERR_BAD_ARGUMENT,
                                                     "%s must be a number from 0.001 to 5 (V/div)", key);
                snprintf(cmd, cap, ":CHANnel%d:SCALe %.9E", ch, x);
        } else if ((ch = channel_key(d, key, "Offset"))) {
                if (!is_number(v, &x) || !isfinite(x) || fabs(x) > 50)
                        return tether_service_refuse(svc, TETHER_ERR_BAD_ARGUMENT,
                                                     "%s must be a number from -50 to 50 (V)", key);
                /* the tighter +-2 V rule is the scope's to apply */
                snprintf(cmd, cap, ":CHANnel%d:OFFSet %.9E", ch, x);
        } else if ((ch = channel_key(d, key, "Coupling"))) {
                if (tether_value_get_string(v, &s) != TETHER_SUCCESS || (strcmp(s, "DC") && strcmp(s, "AC")))
                        return tether_service_refuse(svc, TETHER_ERR_BAD_ARGUMENT, "%s must be \"DC\" or \"AC\"", key);
                snprintf(cmd, cap, ":CHANnel%d:COUPling %s", ch, s);
        } else if (!strcmp(key, DSO_PROP_TRIG_LEVEL)) {
                if (!is_number(v, &x) || !isfinite(x) || fabs(x) > 100)
                        return tether_service_refuse(svc, TETHER_ERR_BAD_ARGUMENT,
                                                     "%s must be a number from -100 to 100 (V)", key);
                snprintf(cmd, cap, ":TRIGger:EDGE:LEVel %.9E", x);
        } else if (!strcmp(key, DSO_PROP_TIMEOUT)) {
                uint64_t ms;
                if (tether_value_get_uint(v, &ms) != TETHER_SUCCESS || ms < 100 || ms > 600000)
                        return tether_service_refuse(svc, TETHER_ERR_BAD_ARGUMENT,
                                                     "%s must be an unsigned integer from 100 to 600000 (ms)", key);
                cmd[0] = '\0'; /* the link's, not the instrument's */
        } else if (!strcmp(key, DSO_PROP_TRIG_SOURCE)) {
                if (tether_value_get_string(v, &s) != TETHER_SUCCESS || !trigger_channel(d, s))
                        return tether_service_refuse(svc, TETHER_ERR_BAD_ARGUMENT,
                                                     "%s must be \"CHAN1\" to \"CHAN%u\" (this model has %u channels)",
                                                     key, d->model->channels, d->model->channels);
                snprintf(cmd, cap, ":TRIGger:EDGE:SOURce %s", s);
        } else {
                return tether_service_refuse(svc, TETHER_ERR_NOT_WRITABLE, "\"%s\" is not a setting of the scope", key);
        }
        return TETHER_SUCCESS;
}

/* Drain the scope's error queue; the first error, if any (its text in
 * first_text). */
static int scope_errors(dso *d, char *first_text, size_t cap)
{
        int first = 0, code = 0;
        char text[128];
        for (int i = 0; i < 32 && dso_next_error(&d->link, &code, text, sizeof(text)) == TETHER_SUCCESS && code; i++)
                if (!first) {
                        first = code;
                        if (first_text)
                                snprintf(first_text, cap, "%s", text);
                }
        return first;
}

static tether_ret_t dso_set_properties(tether_service *svc, const tether_task *caller, const tether_value *dict)
{
        dso *d = tether_service_priv(svc);
        if (d->lock_owner)
                return tether_service_refuse(svc, TETHER_ERR_BUSY, "an acquisition holds the scope (client pid %d)",
                                             (int)tether_user_client_task(d->lock_owner)->pid);
        if (d->acquiring)
                return tether_service_refuse(svc, TETHER_ERR_BUSY, "the scope is digitizing");
        bool admin = tether_task_has_privilege(caller, TETHER_PRIVILEGE_ADMINISTRATOR) == TETHER_SUCCESS;
        size_t n = tether_value_count(dict);
        char (*cmds)[96] = calloc(n ? n : 1, sizeof(*cmds));
        if (!cmds)
                return TETHER_ERR_NO_MEMORY;
        tether_ret_t r = TETHER_SUCCESS;
        for (size_t i = 0; i < n && r == TETHER_SUCCESS; i++) {
                const char *key;
                tether_value *v;
                tether_value_dict_entry(dict, i, &key, &v);
                if (admin_only(key) && !admin)
                        r = tether_service_refuse(svc, TETHER_ERR_NOT_PRIVILEGED,
                                                  "%s may be set by an administrator only (root, or tetherd's admin "
                                                  "group); uid %u is not one",
                                                  key, (unsigned)caller->uid);
                else
                        r = validate(svc, key, v, cmds[i], sizeof(cmds[i]));
        }
        if (r != TETHER_SUCCESS) {
                free(cmds); /* nothing was sent: the scope is as it was */
                return r;
        }
        scope_errors(d, NULL, 0); /* start from an empty queue, to blame only ours */
        for (size_t i = 0; i < n && r == TETHER_SUCCESS; i++)
                if (cmds[i][0])
                        r = dso_command(&d->link, "%s", cmds[i]);
        free(cmds);
        tether_value *t = NULL;
        uint64_t ms;
        if (r == TETHER_SUCCESS && tether_value_dict_get(dict, DSO_PROP_TIMEOUT, &t) == TETHER_SUCCESS &&
            tether_value_get_uint(t, &ms) == TETHER_SUCCESS) {
                set_timeout(d, (unsigned)ms);
                r = tether_service_set_property_uint(svc, DSO_PROP_TIMEOUT, ms, 32);
        }
        char refused[128] = "";
        if (r == TETHER_SUCCESS && scope_errors(d, refused, sizeof(refused)))
                /* e.g. an offset past what this scale allows */
                r = tether_service_refuse(svc, TETHER_ERR_BAD_ARGUMENT, "the scope refused: %s", refused);
        tether_ret_t rr = refresh_settings(svc);
        return r != TETHER_SUCCESS ? r : rr;
}

/* ---- the service ---- */

/* A LAN nub: raw SCPI on its address and port. */
static tether_ret_t open_lan(tether_service *svc, dso *d)
{
        tether_value *addr = NULL, *port = NULL;
        const char *host = NULL;
        uint64_t p = 0;
        tether_ret_t r = tether_service_get_provider_property(svc, "Address", &addr);
        if (r == TETHER_SUCCESS)
                r = tether_value_get_string(addr, &host);
        if (r == TETHER_SUCCESS)
                r = tether_service_get_provider_property(svc, "Port", &port);
        if (r == TETHER_SUCCESS)
                r = tether_value_get_uint(port, &p);
        if (r == TETHER_SUCCESS)
                r = p && p < 65536 ? scpi_link_tcp_open(host, (uint16_t)p, 5000, &d->link) : TETHER_ERR_BAD_ARGUMENT;
        tether_value_unref(addr);
        tether_value_unref(port);
        return r;
}

static uint64_t provider_uint(tether_service *svc, const char *key)
{
        tether_value *v = NULL;
        uint64_t u = 0;
        if (tether_service_get_provider_property(svc, key, &v) == TETHER_SUCCESS)
                tether_value_get_uint(v, &u);
        tether_value_unref(v);
        return u;
}

/* The device tetherd opened for this service: a real one through libusb on
 * its fd, a simulated one over vusb from the simulator's process. What is
 * above the usbtmc layer cannot tell them apart. */
static tether_ret_t open_device(tether_service *svc, dso *d)
{
        tether_device_kind kind = 0;
        int fd = -1;
        tether_ret_t r = tether_service_open_provider_device(svc, &kind, &fd);
        if (r != TETHER_SUCCESS)
                return r;
        if (kind == TETHER_DEVICE_VUSB) {
                r = usbtmc_vusb_open(fd, &d->vusb); /* the fd is its, whatever the result */
                if (r == TETHER_SUCCESS)
                        usbtmc_vusb_attach(&d->usb, d->vusb);
        } else if (kind == TETHER_DEVICE_USBFS) {
                r = libusb_init(&d->usb_ctx) == 0 ? usbtmc_usb_wrap(d->usb_ctx, fd, &d->usb_dev) : TETHER_ERR_NO_DEVICE;
                if (r == TETHER_SUCCESS) {
                        usbtmc_usb_attach(&d->usb, d->usb_dev);
                        d->usb.bus = (uint16_t)provider_uint(svc, "USB Bus"); /* for tether probe */
                        d->usb.address = (uint8_t)provider_uint(svc, "USB Address");
                } else {
                        close(fd); /* still ours when the wrap failed */
                }
        } else {
                close(fd);
                r = TETHER_ERR_UNSUPPORTED;
        }
        if (r == TETHER_SUCCESS) {
                scpi_link_usbtmc(&d->link, &d->usb);
                r = usbtmc_get_capabilities(&d->usb, NULL);
        }
        return r;
}

static tether_ret_t open_link(tether_service *svc, dso *d)
{
        tether_value *lan = NULL;
        if (tether_service_get_provider_property(svc, "Address", &lan) == TETHER_SUCCESS) {
                tether_value_unref(lan);
                return open_lan(svc, d);
        }
        return open_device(svc, d);
}

static void close_link(dso *d)
{
        scpi_link_close(&d->link);
        usbtmc_usb_close(d->usb_dev);
        d->usb_dev = NULL;
        if (d->usb_ctx)
                libusb_exit(d->usb_ctx);
        d->usb_ctx = NULL;
        usbtmc_vusb_close(d->vusb);
        d->vusb = NULL;
}

/*
 * Which model this is. *IDN? names it, and is the authority: it follows
 * the licences (a bandwidth or MSO upgrade changes the model it reports;
 * whether the USB product id follows too is not known). The USB id names
 * it too on a USB connection, and stands in when *IDN? names a model of
 * the series this table lacks. A LAN connection has no USB id. What was
 * used goes into IdentifiedBy (why, for the reader: into why, cap bytes).
 */
static const dso_model *identify_model(tether_service *svc, const dso_identity *id, bool *ret_mso, char *why,
                                       size_t cap)
{
        uint64_t vid = provider_uint(svc, "idVendor"), pid = provider_uint(svc, "idProduct");
        const dso_model *by_usb = vid <= 0xffff && pid <= 0xffff ? dso_model_by_usb((uint16_t)vid, (uint16_t)pid) : NULL;
        bool mso = false;
        const dso_model *by_idn = dso_model_by_idn(id->model, &mso);
        if (by_idn) {
                if (!by_usb)
                        snprintf(why, cap, "*IDN?");
                else if (by_usb == by_idn)
                        snprintf(why, cap, "*IDN? and USB id");
                else
                        snprintf(why, cap, "*IDN? (the USB id says %s)", by_usb->number);
                if (by_usb && by_usb != by_idn)
                        tether_service_log(svc, TETHER_LOG_WARNING,
                                           "USB id %04x:%04x is the %s's, *IDN? says %s: going by *IDN?",
                                           (unsigned)vid, (unsigned)pid, by_usb->number, id->model);
                *ret_mso = mso;
                return by_idn;
        }
        /* Not a model we know by name: a 2000 X still, by the look of the
         * name, with a USB id we know. Anything else is not ours. */
        if (by_usb && dso_model_in_series(id->model)) {
                snprintf(why, cap, "USB id");
                *ret_mso = !strncmp(id->model, "MSO", 3);
                return by_usb;
        }
        return NULL;
}

static tether_ret_t dso_start(tether_service *svc)
{
        dso *d = tether_service_priv(svc);
        tether_ret_t r = open_link(svc, d);
        dso_identity id;
        if (r == TETHER_SUCCESS)
                r = dso_identify(&d->link, &id);
        if (r != TETHER_SUCCESS)
                tether_service_log(svc, TETHER_LOG_ERROR, "no answer to *IDN? from the instrument: %s",
                                   tether_strerror(r));
        /* The USB ids say "Keysight USBTMC"; *IDN? says which instrument. */
        bool mso = false;
        char why[64] = "";
        if (r == TETHER_SUCCESS && !(d->model = identify_model(svc, &id, &mso, why, sizeof(why)))) {
                if (dso_model_in_series(id.model))
                        tether_service_log(svc, TETHER_LOG_WARNING,
                                           "%s %s: a 2000 X model this driver does not know, and no USB id says "
                                           "which it is like: not driving it", id.manufacturer, id.model);
                else
                        tether_service_log(svc, TETHER_LOG_WARNING,
                                           "%s %s is not an InfiniiVision 2000 X: not driving it", id.manufacturer,
                                           id.model);
                r = TETHER_ERR_UNSUPPORTED;
        }
        if (r == TETHER_SUCCESS)
                r = dso_command(&d->link, "*CLS");
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_string(svc, DSO_PROP_VENDOR, id.manufacturer);
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_string(svc, DSO_PROP_MODEL, id.model);
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_string(svc, DSO_PROP_SERIAL, id.serial);
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_string(svc, DSO_PROP_FIRMWARE, id.firmware);
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_string(svc, DSO_PROP_IDENTIFIED, why);
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_uint(svc, DSO_PROP_CHANNELS, d->model->channels, 8);
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_uint(svc, DSO_PROP_DIGITAL, mso ? DSO_MSO_DIGITAL : 0, 8);
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_double(svc, DSO_PROP_BANDWIDTH, d->model->bandwidth);
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_double(svc, DSO_PROP_MAX_RATE, d->model->max_rate);
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_uint(svc, DSO_PROP_MEMORY, d->model->memory, 32);
        if (r == TETHER_SUCCESS) {
                set_timeout(d, 5000);
                r = tether_service_set_property_uint(svc, DSO_PROP_TIMEOUT, 5000, 32);
        }
        /* The licences, for the reader; a scope that does not answer is
         * still driven (the link is cleared after the timeout). */
        char opt[128] = "";
        if (r == TETHER_SUCCESS && dso_query(&d->link, opt, sizeof(opt), "*OPT?") != TETHER_SUCCESS) {
                tether_service_log(svc, TETHER_LOG_INFO, "no answer to *OPT?");
                opt[0] = '\0';
        }
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_string(svc, DSO_PROP_OPTIONS, opt);
        if (r == TETHER_SUCCESS)
                r = refresh_settings(svc);
        if (r == TETHER_SUCCESS)
                tether_service_log(svc, TETHER_LOG_INFO, "%s %s (%u channels, %.0f MHz; identified by %s), serial %s, "
                                   "firmware %s", id.manufacturer, id.model, d->model->channels,
                                   d->model->bandwidth / 1e6, why, id.serial, id.firmware);
        if (r != TETHER_SUCCESS)
                close_link(d);
        return r;
}

static void digitize_abort_all(dso *d);

static void dso_stop(tether_service *svc)
{
        dso *d = tether_service_priv(svc);
        /* Scheduled work that has not run by now never will: its callers
         * are told, and its memory freed, here. */
        digitize_abort_all(d);
        close_link(d);
}

/* ---- the user client ---- */

static dso *scope_of(void *target)
{
        tether_service *svc = tether_user_client_provider(target);
        return svc ? tether_service_priv(svc) : NULL;
}

/* Every method but UNLOCK goes through here: the scope must be attached
 * and not locked by another connection. */
static tether_ret_t usable(void *target, dso **ret)
{
        dso *d = scope_of(target);
        if (!d)
                return TETHER_ERR_NOT_ATTACHED;
        if (d->lock_owner && d->lock_owner != target)
                return TETHER_ERR_BUSY;
        if (d->acquiring)
                return TETHER_ERR_BUSY; /* its answer is on its way over the link */
        *ret = d;
        return TETHER_SUCCESS;
}

static tether_ret_t simple(void *target, const char *cmd, bool refresh)
{
        dso *d;
        tether_ret_t r = usable(target, &d);
        if (r == TETHER_SUCCESS)
                r = dso_command(&d->link, "%s", cmd);
        if (r == TETHER_SUCCESS && refresh)
                r = refresh_settings(tether_user_client_provider(target));
        return r;
}

static tether_ret_t m_run(void *t, void *ref, tether_method_args *a) { return simple(t, ":RUN", false); }
static tether_ret_t m_stop(void *t, void *ref, tether_method_args *a) { return simple(t, ":STOP", false); }
static tether_ret_t m_single(void *t, void *ref, tether_method_args *a) { return simple(t, ":SINGle", false); }
static tether_ret_t m_autoscale(void *t, void *ref, tether_method_args *a) { return simple(t, ":AUToscale", true); }

/* How long an acquisition may take: 10 divisions of the timebase, plus
 * TimeoutMs for the rest (a trigger, the link). */
static tether_ret_t acquisition_ms(dso *d, uint64_t *ret)
{
        double scale = 0;
        tether_ret_t r = dso_query_double(&d->link, &scale, ":TIMebase:SCALe?");
        if (r != TETHER_SUCCESS)
                return r;
        double ms = d->timeout_ms + 10 * scale * 1000 * 1.2;
        *ret = ms > 3600e3 ? 3600000u : (uint64_t)ms;
        return TETHER_SUCCESS;
}

/* :DIGitize the channels of mask, then *OPC?, which the scope answers when
 * the acquisition is complete. The channels are switched on first: a
 * channel that is off has no waveform to read afterwards (channels 3 and
 * 4 of a 4-channel model start off). */
static tether_ret_t send_digitize(dso *d, uint64_t mask)
{
        char cmd[160] = "";
        size_t len = 0;
        for (int ch = 1; ch <= d->model->channels; ch++)
                if (mask & (1u << (ch - 1)))
                        len += (size_t)snprintf(cmd + len, sizeof(cmd) - len, ":CHANnel%d:DISPlay 1;", ch);
        size_t head = len + strlen(":DIGitize");
        len += (size_t)snprintf(cmd + len, sizeof(cmd) - len, ":DIGitize");
        for (int ch = 1; ch <= d->model->channels; ch++)
                if (mask & (1u << (ch - 1)))
                        len += (size_t)snprintf(cmd + len, sizeof(cmd) - len, "%sCHANnel%d", len == head ? " " : ",", ch);
        tether_ret_t r = dso_command(&d->link, "%s", cmd);
        return r == TETHER_SUCCESS ? dso_command(&d->link, "*OPC?") : r;
}

/* Synchronous: the whole acquisition in the caller's call, so at most
 * DSO_SYNC_MAX_WAIT_MS of it. A longer sweep is refused before anything is
 * sent (async DIGITIZE takes it); a trigger that does not come in time
 * ends in Timeout, the link cleared. */
static tether_ret_t digitize(tether_service *svc, dso *d, uint64_t mask)
{
        uint64_t ms = 0;
        tether_ret_t r = acquisition_ms(d, &ms);
        if (r != TETHER_SUCCESS)
                return r;
        if (ms - d->timeout_ms > DSO_SYNC_MAX_WAIT_MS)
                return tether_service_refuse(svc, TETHER_ERR_UNSUPPORTED,
                                             "a sweep of %llu ms is longer than a synchronous DIGITIZE may wait "
                                             "(%u ms): call it async",
                                             (unsigned long long)(ms - d->timeout_ms), DSO_SYNC_MAX_WAIT_MS);
        unsigned base = scpi_link_set_timeout(&d->link, ms < DSO_SYNC_MAX_WAIT_MS ? (unsigned)ms : DSO_SYNC_MAX_WAIT_MS);
        r = send_digitize(d, mask);
        char done[8];
        size_t n = 0;
        if (r == TETHER_SUCCESS)
                r = scpi_link_read(&d->link, done, sizeof(done), &n);
        scpi_link_set_timeout(&d->link, base);
        return r;
}

typedef struct digitize_job {
        tether_async_ref ref;
        uint64_t mask;
        tether_user_client *owner;
        struct digitize_job *next;
} digitize_job;

static void job_complete(digitize_job *j, tether_ret_t r)
{
        uint64_t arg = j->mask;
        tether_async_complete(&j->ref, r, &arg, 1);
        free(j);
}

/* The next waiting acquisition, if none is under way: asked for, and its
 * answer then awaited on the timer. One that cannot start ends at once. */
static void acquire_next(dso *d)
{
        while (!d->acquiring && d->queue) {
                digitize_job *j = d->queue;
                d->queue = j->next;
                uint64_t ms = 0;
                tether_ret_t r = acquisition_ms(d, &ms);
                if (r == TETHER_SUCCESS)
                        r = send_digitize(d, j->mask);
                if (r == TETHER_SUCCESS)
                        r = scpi_link_read_begin(&d->link, 64);
                if (r == TETHER_SUCCESS)
                        r = tether_timer_arm(d->acq_timer, 0);
                if (r != TETHER_SUCCESS) {
                        job_complete(j, r);
                        continue;
                }
                d->acquiring = j;
                d->acq_deadline_ms = clock_mono_ms() + ms;
        }
}

static void acquisition_slice(tether_service *svc, tether_timer *timer, void *refcon, tether_ret_t status)
{
        dso *d = refcon;
        digitize_job *j = d->acquiring;
        if (status != TETHER_SUCCESS)
                return; /* stopping: stop() tells the callers */
        if (!j) {
                acquire_next(d); /* armed by m_digitize: a call is waiting */
                return;
        }
        uint64_t start = clock_mono_ms();
        uint64_t left = d->acq_deadline_ms > start ? d->acq_deadline_ms - start : 0;
        char done[64];
        size_t n = 0;
        tether_ret_t r = scpi_link_read_wait(&d->link, (unsigned)(left < DSO_SLICE_MS ? left : DSO_SLICE_MS), done,
                                             sizeof(done), &n);
        if (r == TETHER_ERR_TIMEOUT) {
                uint64_t now = clock_mono_ms();
                if (now < d->acq_deadline_ms) {
                        /* A link that says "nothing yet" at once is asked
                         * again a slice later, not in a busy loop. */
                        uint64_t spent = now - start;
                        r = tether_timer_arm(timer, spent >= DSO_SLICE_MS ? 0 : (uint32_t)(DSO_SLICE_MS - spent));
                        if (r == TETHER_SUCCESS)
                                return;
                }
                scpi_link_read_abandon(&d->link); /* a device clear: the sweep ends too */
        }
        d->acquiring = NULL;
        job_complete(j, r);
        acquire_next(d);
}

static void digitize_abort_all(dso *d)
{
        if (d->acquiring) {
                job_complete(d->acquiring, TETHER_ERR_ABORTED);
                d->acquiring = NULL;
        }
        while (d->queue) {
                digitize_job *j = d->queue;
                d->queue = j->next;
                job_complete(j, TETHER_ERR_ABORTED);
        }
}

static tether_ret_t m_digitize(void *t, void *ref, tether_method_args *a)
{
        dso *d = scope_of(t);
        uint64_t mask = a->scalar_input[0];
        tether_service *svc = tether_user_client_provider(t);
        /* Async: queued behind the acquisition under way, if any (the one
         * method usable while one is: it waits its turn). */
        tether_ret_t r;
        if (a->async_ref && d && d->acquiring)
                r = d->lock_owner && d->lock_owner != t ? TETHER_ERR_BUSY : TETHER_SUCCESS;
        else
                r = usable(t, &d);
        if (r != TETHER_SUCCESS)
                return r;
        if (mask == 0 || mask >= (1u << d->model->channels))
                return TETHER_ERR_BAD_ARGUMENT; /* a channel past the model's */
        if (!a->async_ref)
                return digitize(svc, d, mask);
        /* Accepted now; the acquisition starts on the loop's next turn (or
         * after the one under way), its completion on the caller's port. */
        digitize_job *j = malloc(sizeof(*j));
        if (!j)
                return TETHER_ERR_NO_MEMORY;
        *j = (digitize_job){ .ref = *a->async_ref, .mask = mask, .owner = t };
        if (!d->acq_timer && (r = tether_timer_create(svc, acquisition_slice, d, &d->acq_timer)) != TETHER_SUCCESS) {
                free(j);
                return r;
        }
        digitize_job **last = &d->queue; /* at most the outstanding async calls' bound per client */
        while (*last)
                last = &(*last)->next;
        *last = j;
        if (!d->acquiring && !tether_timer_is_armed(d->acq_timer))
                tether_timer_arm(d->acq_timer, 0); /* acquire_next, after this call's reply */
        return TETHER_SUCCESS;
}

/* A channel the model has: 1 to Channels. */
static tether_ret_t channel_arg(const dso *d, uint64_t ch)
{
        return ch >= 1 && ch <= d->model->channels ? TETHER_SUCCESS : TETHER_ERR_BAD_ARGUMENT;
}

static tether_ret_t m_preamble(void *t, void *ref, tether_method_args *a)
{
        dso *d;
        tether_ret_t r = usable(t, &d);
        if (r == TETHER_SUCCESS)
                r = channel_arg(d, a->scalar_input[0]);
        char text[512];
        scpi_preamble p;
        if (r == TETHER_SUCCESS)
                r = dso_command(&d->link, ":WAVeform:SOURce CHANnel%d", (int)a->scalar_input[0]);
        if (r == TETHER_SUCCESS)
                r = dso_query(&d->link, text, sizeof(text), ":WAVeform:PREamble?");
        if (r == TETHER_SUCCESS && scpi_preamble_parse(text, &p) != TETHER_SUCCESS)
                r = TETHER_ERR_DEVICE_ERROR;
        if (r != TETHER_SUCCESS)
                return r;
        dso_preamble out = { .format = p.format, .type = p.type, .points = p.points, .count = p.count,
                             .x_increment = p.x_increment, .x_origin = p.x_origin, .x_reference = p.x_reference,
                             .y_increment = p.y_increment, .y_origin = p.y_origin, .y_reference = p.y_reference };
        memcpy(a->struct_output, &out, sizeof(out));
        return TETHER_SUCCESS;
}

/* Shared by the raw and the volts forms. */
static tether_ret_t read_codes(void *t, tether_method_args *a, scpi_preamble *p, uint8_t **ret_codes, size_t *ret_n)
{
        dso *d;
        tether_ret_t r = usable(t, &d);
        if (r == TETHER_SUCCESS)
                r = channel_arg(d, a->scalar_input[0]);
        uint64_t points = a->scalar_input[1];
        if (r == TETHER_SUCCESS && (points < 100 || points > DSO_MAX_POINTS))
                r = TETHER_ERR_BAD_ARGUMENT;
        if (r != TETHER_SUCCESS)
                return r;
        uint8_t *codes = malloc(DSO_MAX_POINTS);
        if (!codes)
                return TETHER_ERR_NO_MEMORY;
        r = dso_read_waveform(&d->link, (int)a->scalar_input[0], (uint32_t)points, p, codes, DSO_MAX_POINTS, ret_n);
        if (r != TETHER_SUCCESS) {
                free(codes);
                return r;
        }
        *ret_codes = codes;
        return TETHER_SUCCESS;
}

/* The raw codes, or volts as floats: the same read either way. */
static tether_ret_t waveform(void *t, tether_method_args *a, bool volts)
{
        scpi_preamble p;
        uint8_t *codes = NULL;
        size_t n = 0;
        tether_ret_t r = read_codes(t, a, &p, &codes, &n);
        if (r != TETHER_SUCCESS)
                return r;
        size_t bytes = volts ? n * sizeof(float) : n;
        if (bytes > a->struct_output_size) {
                r = TETHER_ERR_NO_SPACE;
        } else if (volts) {
                float *out = a->struct_output;
                for (size_t i = 0; i < n; i++)
                        out[i] = (float)scpi_code_to_volts(&p, codes[i]);
        } else {
                memcpy(a->struct_output, codes, n);
        }
        if (r == TETHER_SUCCESS)
                a->struct_output_size = (uint32_t)bytes;
        free(codes);
        return r;
}

static tether_ret_t m_waveform(void *t, void *ref, tether_method_args *a)
{
        return waveform(t, a, false);
}

static tether_ret_t m_volts(void *t, void *ref, tether_method_args *a)
{
        return waveform(t, a, true);
}

static tether_ret_t m_measure(void *t, void *ref, tether_method_args *a)
{
        dso *d;
        tether_ret_t r = usable(t, &d);
        if (r == TETHER_SUCCESS)
                r = channel_arg(d, a->scalar_input[0]);
        if (r == TETHER_SUCCESS && a->scalar_input[1] >= DSO_MEAS_COUNT)
                r = TETHER_ERR_BAD_ARGUMENT;
        double v = 0;
        if (r == TETHER_SUCCESS)
                r = dso_measure(&d->link, meas_names[a->scalar_input[1]], (int)a->scalar_input[0], &v);
        if (r == TETHER_SUCCESS)
                memcpy(&a->scalar_output[0], &v, sizeof(v));
        return r;
}

/* SCPI pass-through for experts: a query ('?' in it) returns the answer. */
static tether_ret_t m_scpi(void *t, void *ref, tether_method_args *a)
{
        dso *d;
        tether_ret_t r = usable(t, &d);
        if (r != TETHER_SUCCESS)
                return r;
        if (a->struct_input_size == 0 || a->struct_input_size > 255 || memchr(a->struct_input, 0, a->struct_input_size))
                return TETHER_ERR_BAD_ARGUMENT;
        char cmd[256];
        memcpy(cmd, a->struct_input, a->struct_input_size);
        cmd[a->struct_input_size] = '\0';
        if (!strchr(cmd, '?')) {
                a->struct_output_size = 0;
                r = dso_command(&d->link, "%s", cmd);
                /* Settings may have changed behind the properties' back. */
                return r == TETHER_SUCCESS ? refresh_settings(tether_user_client_provider(t)) : r;
        }
        r = dso_command(&d->link, "%s", cmd);
        size_t n = 0;
        if (r == TETHER_SUCCESS)
                r = scpi_link_read(&d->link, a->struct_output, a->struct_output_size, &n);
        if (r == TETHER_SUCCESS)
                a->struct_output_size = (uint32_t)n;
        return r == TETHER_ERR_OVERRUN ? TETHER_ERR_NO_SPACE : r;
}

static tether_ret_t m_lock(void *t, void *ref, tether_method_args *a)
{
        dso *d;
        tether_ret_t r = usable(t, &d);
        if (r == TETHER_SUCCESS)
                d->lock_owner = t;
        return r;
}

static tether_ret_t m_unlock(void *t, void *ref, tether_method_args *a)
{
        dso *d = scope_of(t);
        if (!d)
                return TETHER_ERR_NOT_ATTACHED;
        if (d->lock_owner != t)
                return TETHER_ERR_NOT_OPEN; /* not ours to release */
        d->lock_owner = NULL;
        return TETHER_SUCCESS;
}

/* :DISPlay:DATA? PNG, COLor: the block's bytes are the PNG file. */
static tether_ret_t m_screenshot(void *t, void *ref, tether_method_args *a)
{
        enum { MAX_PNG = 1u << 20 };
        dso *d;
        tether_ret_t r = usable(t, &d);
        if (r != TETHER_SUCCESS)
                return r;
        uint8_t *block = malloc(MAX_PNG + 16);
        if (!block)
                return TETHER_ERR_NO_MEMORY;
        size_t n = 0, len = 0;
        const uint8_t *png = NULL;
        r = dso_command(&d->link, ":DISPlay:DATA? PNG, COLor");
        if (r == TETHER_SUCCESS)
                r = scpi_link_read(&d->link, block, MAX_PNG + 16, &n);
        if (r == TETHER_SUCCESS && scpi_block_parse(block, n, &png, &len) != TETHER_SUCCESS)
                r = TETHER_ERR_DEVICE_ERROR;
        if (r == TETHER_SUCCESS && len > a->struct_output_size)
                r = TETHER_ERR_NO_SPACE;
        if (r == TETHER_SUCCESS) {
                memcpy(a->struct_output, png, len);
                a->struct_output_size = (uint32_t)len;
        }
        free(block);
        return r;
}

/* Closing or dying releases the lock, and ends the acquisitions asked for
 * (nobody is left to answer): no crashed client can wedge the scope. */
static void dso_client_close(tether_user_client *uc)
{
        dso *d = scope_of(uc);
        if (!d)
                return;
        if (d->lock_owner == uc)
                d->lock_owner = NULL;
        for (digitize_job **pp = &d->queue; *pp;) {
                digitize_job *j = *pp;
                if (j->owner == uc) {
                        *pp = j->next;
                        free(j);
                } else {
                        pp = &j->next;
                }
        }
        if (d->acquiring && d->acquiring->owner == uc) {
                tether_timer_cancel(d->acq_timer);
                scpi_link_read_abandon(&d->link); /* a device clear ends the sweep */
                free(d->acquiring);
                d->acquiring = NULL;
                acquire_next(d);
        }
}

#define V TETHER_VARIABLE_SIZE
static const tether_method_dispatch dso_methods[DSO_SELECTOR_COUNT] = {
        [DSO_RUN] = { m_run, 0, 0, 0, 0, 0 },
        [DSO_STOP] = { m_stop, 0, 0, 0, 0, 0 },
        [DSO_SINGLE] = { m_single, 0, 0, 0, 0, 0 },
        [DSO_AUTOSCALE] = { m_autoscale, 0, 0, 0, 0, 0 },
        [DSO_DIGITIZE] = { m_digitize, 1, 0, 0, 0, TETHER_METHOD_ALLOW_ASYNC },
        [DSO_GET_PREAMBLE] = { m_preamble, 1, 0, 0, sizeof(dso_preamble), 0 },
        [DSO_GET_WAVEFORM] = { m_waveform, 2, 0, 0, V, 0 },
        [DSO_GET_VOLTS] = { m_volts, 2, 0, 0, V, 0 },
        [DSO_MEASURE] = { m_measure, 2, 0, 1, 0, 0 },
        [DSO_SCPI] = { m_scpi, 0, V, 0, V, 0 },
        [DSO_LOCK] = { m_lock, 0, 0, 0, 0, 0 },
        [DSO_UNLOCK] = { m_unlock, 0, 0, 0, 0, 0 },
        [DSO_SCREENSHOT] = { m_screenshot, 0, 0, 0, V, 0 },
};
#undef V

static tether_ret_t dso_uc_start(tether_user_client *uc, tether_service *provider)
{
        return strcmp(tether_service_class(provider), DSO_CLASS) ? TETHER_ERR_BAD_ARGUMENT : TETHER_SUCCESS;
}

static const char *const dso_method_names[DSO_SELECTOR_COUNT] = {
        [DSO_RUN] = "run", [DSO_STOP] = "stop", [DSO_SINGLE] = "single", [DSO_AUTOSCALE] = "autoscale",
        [DSO_DIGITIZE] = "digitize", [DSO_GET_PREAMBLE] = "getPreamble", [DSO_GET_WAVEFORM] = "getWaveform",
        [DSO_GET_VOLTS] = "getVolts", [DSO_MEASURE] = "measure", [DSO_SCPI] = "scpi", [DSO_LOCK] = "lock",
        [DSO_UNLOCK] = "unlock", [DSO_SCREENSHOT] = "screenshot",
};

static const tether_user_client_ops dso_client_ops = {
        .class_name = "DSOX2000UserClient",
        .start = dso_uc_start,
        .client_close = dso_client_close,
        .methods = dso_methods,
        .method_count = DSO_SELECTOR_COUNT,
        .method_names = dso_method_names,
};

static tether_ret_t dso_new_user_client(tether_service *svc, uint32_t type, const tether_user_client_ops **ret)
{
        if (type != 0)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret = &dso_client_ops;
        return TETHER_SUCCESS;
}

/* Agilent (0x0957) and Keysight (0x2A8D), USBTMC/USB488 interface: the
 * product id is not matched (which 2000 X models share 0x1799 is not
 * known); start() confirms the model from *IDN?. */

const tether_driver dsox2000_driver = {
        .name = "org.tether.dsox2000",
        .class_name = DSO_CLASS,
        .priv_size = sizeof(dso),
        .start = dso_start,
        .stop = dso_stop,
        .set_properties = dso_set_properties,
        .new_user_client = dso_new_user_client,
};
