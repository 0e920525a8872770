/* SPDX-License-Identifier: MIT */
/*
 * USBTMCInstrument: the generic USBTMC/USB488 driver's service. It matches
 * any USBTMC interface with a probe score below the model drivers' (a model
 * driver that wants the nub gets it; this one serves what nobody else
 * does), opens the device tetherd hands it (real, through libusb on the
 * fd; simulated, over vusb), and publishes what GET_CAPABILITIES and
 * *IDN? say. The user client is in client.c.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "instrument.h"

tether_ret_t tmc_link_result(tmc_instr *in, tether_ret_t r)
{
        /* vusb says IPC when the simulator broke the protocol or its
         * socket failed: the link is as dead as an unplugged device's. */
        if (r == TETHER_ERR_NO_DEVICE || r == TETHER_ERR_IPC) {
                if (!in->gone) {
                        in->gone = true;
                        tether_service_log(in->svc, TETHER_LOG_WARNING, "the instrument went away (%s)",
                                           tether_strerror(r));
                        tmc_srq_end_all(in, TETHER_ERR_NOT_ATTACHED);
                }
                return TETHER_ERR_NOT_ATTACHED;
        }
        return r;
}

/* ---- the device ---- */

static uint64_t provider_uint(tether_service *svc, const char *key, bool *ret_found)
{
        tether_value *v = NULL;
        uint64_t u = 0;
        bool found = tether_service_get_provider_property(svc, key, &v) == TETHER_SUCCESS &&
                     tether_value_get_uint(v, &u) == TETHER_SUCCESS;
        tether_value_unref(v);
        if (ret_found)
                *ret_found = found;
        return u;
}

static void provider_string(tether_service *svc, const char *key, char *buf, size_t cap)
{
        tether_value *v = NULL;
        const char *s = NULL;
        buf[0] = '\0';
        if (tether_service_get_provider_property(svc, key, &v) == TETHER_SUCCESS &&
            tether_value_get_string(v, &s) == TETHER_SUCCESS)
                snprintf(buf, cap, "%s", s);
        tether_value_unref(v);
}

/* The device tetherd opened for this service, as DSOX2000 opens its own:
 * the code above usbtmc cannot tell a simulated device from a real one. */
static tether_ret_t open_device(tmc_instr *in)
{
        tether_device_kind kind = 0;
        int fd = -1;
        tether_ret_t r = tether_service_open_provider_device(in->svc, &kind, &fd);
        if (r != TETHER_SUCCESS)
                return r;
        if (kind == TETHER_DEVICE_VUSB) {
                r = usbtmc_vusb_open(fd, &in->vusb); /* the fd is its, whatever the result */
                if (r == TETHER_SUCCESS)
                        usbtmc_vusb_attach(&in->usb, in->vusb);
        } else if (kind == TETHER_DEVICE_USBFS) {
                r = libusb_init(&in->usb_ctx) == 0 ? usbtmc_usb_wrap(in->usb_ctx, fd, &in->usb_dev)
                                                   : TETHER_ERR_NO_DEVICE;
                if (r == TETHER_SUCCESS) {
                        usbtmc_usb_attach(&in->usb, in->usb_dev);
                        in->usb.bus = (uint16_t)provider_uint(in->svc, "USB Bus", NULL); /* for tether probe */
                        in->usb.address = (uint8_t)provider_uint(in->svc, "USB Address", NULL);
                } else {
                        close(fd); /* still ours when the wrap failed */
                }
        } else {
                close(fd);
                r = TETHER_ERR_UNSUPPORTED;
        }
        return r;
}

static void close_device(tmc_instr *in)
{
        usbtmc_usb_close(in->usb_dev);
        in->usb_dev = NULL;
        if (in->usb_ctx)
                libusb_exit(in->usb_ctx);
        in->usb_ctx = NULL;
        usbtmc_vusb_close(in->vusb);
        in->vusb = NULL;
}

/* ---- identity ---- */

typedef struct identity {
        char vendor[128], model[128], serial[128], firmware[128];
} identity;

/* One comma-separated field of *IDN?, spaces around it dropped. */
static const char *idn_field(const char *p, char *out, size_t cap)
{
        while (*p == ' ')
                p++;
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\r' || p[n - 1] == '\n'))
                n--;
        if (n >= cap)
                n = cap - 1;
        memcpy(out, p, n);
        out[n] = '\0';
        /* What becomes a property is text a reader prints. */
        for (size_t i = 0; i < n; i++)
                if (!isprint((unsigned char)out[i]))
                        out[i] = '?';
        return end ? end + 1 : p + strlen(p);
}

/* The *SRE mask the instrument starts with, for MSS on an instrument
 * without interrupt-IN (srq.c). One that does not answer: 0, the power-on
 * value. */
static void read_sre(tmc_instr *in)
{
        char answer[32];
        size_t n = 0;
        unsigned end = 0;
        in->sre = 0;
        unsigned keep = in->usb.timeout_ms;
        in->usb.timeout_ms = TMC_IDN_TIMEOUT_MS;
        tether_ret_t r = usbtmc_write(&in->usb, "*SRE?\n", 6);
        if (r == TETHER_SUCCESS)
                r = usbtmc_read_some(&in->usb, answer, sizeof(answer) - 1, &n, &end);
        in->usb.timeout_ms = keep;
        if (r == TETHER_SUCCESS && !end)
                usbtmc_recover(&in->usb);
        if (r != TETHER_SUCCESS)
                return;
        answer[n] = '\0';
        long v = strtol(answer, NULL, 10);
        if (v > 0 && v <= 255)
                in->sre = (uint8_t)(v & ~0x40);
}

/* *IDN? within TMC_IDN_TIMEOUT_MS; an instrument that does not answer
 * (or cannot: talk-only, listen-only) keeps an empty identity. */
static void identify(tmc_instr *in, identity *id)
{
        memset(id, 0, sizeof(*id));
        if (in->usb.caps.interface_caps & (USBTMC_CAP_TALK_ONLY | USBTMC_CAP_LISTEN_ONLY))
                return;
        char answer[512];
        size_t n = 0;
        unsigned end = 0;
        unsigned keep = in->usb.timeout_ms;
        in->usb.timeout_ms = TMC_IDN_TIMEOUT_MS;
        tether_ret_t r = usbtmc_write(&in->usb, "*IDN?\n", 6);
        if (r == TETHER_SUCCESS)
                r = usbtmc_read_some(&in->usb, answer, sizeof(answer) - 1, &n, &end);
        in->usb.timeout_ms = keep;
        if (r == TETHER_SUCCESS && !end)
                usbtmc_recover(&in->usb); /* longer than any identity: drop the rest */
        if (r != TETHER_SUCCESS) {
                tether_service_log(in->svc, TETHER_LOG_INFO, "no answer to *IDN? (%s): identity left empty",
                                   tether_strerror(r));
                return;
        }
        answer[n] = '\0';
        if (!(in->usb.ep_interrupt && in->usb.ops->interrupt_in))
                read_sre(in);
        const char *p = idn_field(answer, id->vendor, sizeof(id->vendor));
        p = idn_field(p, id->model, sizeof(id->model));
        p = idn_field(p, id->serial, sizeof(id->serial));
        idn_field(p, id->firmware, sizeof(id->firmware));
}

static tether_ret_t set_bool(tether_service *svc, const char *key, unsigned bits, unsigned bit)
{
        return tether_service_set_property_bool(svc, key, (bits & bit) != 0);
}

static tether_ret_t publish_capabilities(tmc_instr *in)
{
        const usbtmc_caps *c = &in->usb.caps;
        tether_service *svc = in->svc;
        tether_ret_t r = tether_service_set_property_uint(svc, TMC_PROP_USBTMC_VERSION, c->bcd_usbtmc, 16);
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_uint(svc, TMC_PROP_USB488_VERSION, c->bcd_usb488, 16);
        if (r == TETHER_SUCCESS)
                r = set_bool(svc, TMC_PROP_CAN_TERM_CHAR, c->device_caps, USBTMC_CAP_TERM_CHAR);
        if (r == TETHER_SUCCESS)
                r = set_bool(svc, TMC_PROP_CAN_PULSE, c->interface_caps, USBTMC_CAP_INDICATOR_PULSE);
        if (r == TETHER_SUCCESS)
                r = set_bool(svc, TMC_PROP_TALK_ONLY, c->interface_caps, USBTMC_CAP_TALK_ONLY);
        if (r == TETHER_SUCCESS)
                r = set_bool(svc, TMC_PROP_LISTEN_ONLY, c->interface_caps, USBTMC_CAP_LISTEN_ONLY);
        if (r == TETHER_SUCCESS)
                r = set_bool(svc, TMC_PROP_IS_488_2, c->usb488_interface_caps, USB488_CAP_IS_488_2);
        if (r == TETHER_SUCCESS)
                r = set_bool(svc, TMC_PROP_CAN_REMOTE_LOCAL, c->usb488_interface_caps, USB488_CAP_REMOTE_LOCAL);
        if (r == TETHER_SUCCESS)
                r = set_bool(svc, TMC_PROP_CAN_TRIGGER, c->usb488_interface_caps, USB488_CAP_TRIGGER);
        if (r == TETHER_SUCCESS)
                r = set_bool(svc, TMC_PROP_SCPI, c->usb488_device_caps, USB488_CAP_SCPI);
        if (r == TETHER_SUCCESS)
                r = set_bool(svc, TMC_PROP_SR1, c->usb488_device_caps, USB488_CAP_SR1);
        if (r == TETHER_SUCCESS)
                r = set_bool(svc, TMC_PROP_RL1, c->usb488_device_caps, USB488_CAP_RL1);
        if (r == TETHER_SUCCESS)
                r = set_bool(svc, TMC_PROP_DT1, c->usb488_device_caps, USB488_CAP_DT1);
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_bool(svc, TMC_PROP_INTERRUPT_IN,
                                                     in->usb.ep_interrupt && in->usb.ops->interrupt_in);
        return r;
}

/* VISA's resource string: what `tether scpi --list` prints, what a VISA
 * library is asked to open. */
static tether_ret_t publish_visa_resource(tmc_instr *in, const identity *id)
{
        char serial[128], visa[256], ifnum[16] = "";
        provider_string(in->svc, "USB Serial Number", serial, sizeof(serial));
        if (!serial[0])
                snprintf(serial, sizeof(serial), "%s", id->serial[0] ? id->serial : "0");
        /* '::' separates the fields: a serial cannot hold one. */
        for (char *p = serial; *p; p++)
                if (*p == ':' || !isprint((unsigned char)*p))
                        *p = '_';
        uint64_t vendor = provider_uint(in->svc, "idVendor", NULL);
        uint64_t product = provider_uint(in->svc, "idProduct", NULL);
        uint64_t interface = in->usb.interface;
        if (interface)
                snprintf(ifnum, sizeof(ifnum), "::%u", (unsigned)interface);
        snprintf(visa, sizeof(visa), "USB0::0x%04X::0x%04X::%s%s::INSTR", (unsigned)(vendor & 0xffff),
                 (unsigned)(product & 0xffff), serial, ifnum);
        return tether_service_set_property_string(in->svc, TMC_PROP_VISA_RESOURCE, visa);
}

static tether_ret_t make_timers(tmc_instr *in)
{
        tether_ret_t r = tether_timer_create(in->svc, tmc_read_timer_fired, in, &in->read_timer);
        if (r == TETHER_SUCCESS)
                r = tether_timer_create(in->svc, tmc_lock_timer_fired, in, &in->lock_timer);
        if (r == TETHER_SUCCESS)
                r = tether_timer_create(in->svc, tmc_srq_timer_fired, in, &in->srq_timer);
        if (r == TETHER_SUCCESS)
                r = tether_timer_create(in->svc, tmc_srq_retry_fired, in, &in->srq_retry_timer);
        return r;
}

/* TimeoutMs whole for async reads, capped for what holds the work loop. */
static void set_timeout(tmc_instr *in, unsigned ms)
{
        in->timeout_ms = ms;
        in->usb.timeout_ms = ms < TMC_SYNC_MAX_WAIT_MS ? ms : TMC_SYNC_MAX_WAIT_MS;
}

static tether_ret_t tmc_start(tether_service *svc)
{
        tmc_instr *in = tether_service_priv(svc);
        in->svc = svc;
        tether_ret_t r = open_device(in);
        if (r != TETHER_SUCCESS) {
                tether_service_log(svc, TETHER_LOG_ERROR, "cannot open the instrument: %s", tether_strerror(r));
                return r;
        }
        set_timeout(in, TMC_DEFAULT_TIMEOUT_MS);
        in->usb.term_char = '\n';
        in->usb.on_srq = tmc_srq_seen;
        in->usb.srq_ctx = in;
        /* Every USBTMC interface answers GET_CAPABILITIES; one that does
         * not is no instrument to serve. */
        r = usbtmc_get_capabilities(&in->usb, NULL);
        if (r != TETHER_SUCCESS)
                tether_service_log(svc, TETHER_LOG_ERROR, "GET_CAPABILITIES failed: %s", tether_strerror(r));
        identity id;
        if (r == TETHER_SUCCESS) {
                identify(in, &id);
                r = publish_capabilities(in);
        }
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_string(svc, TMC_PROP_VENDOR, id.vendor);
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_string(svc, TMC_PROP_MODEL, id.model);
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_string(svc, TMC_PROP_SERIAL, id.serial);
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_string(svc, TMC_PROP_FIRMWARE, id.firmware);
        if (r == TETHER_SUCCESS)
                r = publish_visa_resource(in, &id);
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_uint(svc, TMC_PROP_TIMEOUT, in->timeout_ms, 32);
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_uint(svc, TMC_PROP_TERM_CHAR, in->usb.term_char, 8);
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_bool(svc, TMC_PROP_TERM_CHAR_ON, false);
        if (r == TETHER_SUCCESS)
                r = make_timers(in);
        if (r != TETHER_SUCCESS) {
                close_device(in);
                return r;
        }
        tether_value *v = NULL;
        const char *visa = "";
        if (tether_service_copy_property(svc, TMC_PROP_VISA_RESOURCE, &v) == TETHER_SUCCESS)
                tether_value_get_string(v, &visa);
        if (id.vendor[0] || id.model[0])
                tether_service_log(svc, TETHER_LOG_INFO, "%s %s, serial %s, firmware %s: %s", id.vendor, id.model,
                                   id.serial, id.firmware, visa);
        else
                tether_service_log(svc, TETHER_LOG_INFO, "an instrument with no identity: %s", visa);
        tether_value_unref(v);
        return TETHER_SUCCESS;
}

static void tmc_stop(tether_service *svc)
{
        tmc_instr *in = tether_service_priv(svc);
        /* The user clients stopped first (their reads, waits and streams
         * ended there); the timers were told. */
        close_device(in);
}

/* ---- property writes ---- */

static tether_ret_t validate(tmc_instr *in, const tether_task *caller, const char *key, const tether_value *v)
{
        tether_service *svc = in->svc;
        if (!strcmp(key, TMC_PROP_TIMEOUT)) {
                uint64_t ms;
                if (tether_value_get_uint(v, &ms) != TETHER_SUCCESS || ms < 100 || ms > TMC_MAX_TIMEOUT_MS)
                        return tether_service_refuse(svc, TETHER_ERR_BAD_ARGUMENT,
                                                     "%s must be an unsigned integer from 100 to %u (ms)", key,
                                                     TMC_MAX_TIMEOUT_MS);
        } else if (!strcmp(key, TMC_PROP_TERM_CHAR)) {
                uint64_t c;
                if (tether_value_get_uint(v, &c) != TETHER_SUCCESS || c > 255)
                        return tether_service_refuse(svc, TETHER_ERR_BAD_ARGUMENT,
                                                     "%s must be an unsigned integer from 0 to 255", key);
        } else if (!strcmp(key, TMC_PROP_TERM_CHAR_ON)) {
                bool on;
                if (tether_value_get_bool(v, &on) != TETHER_SUCCESS)
                        return tether_service_refuse(svc, TETHER_ERR_BAD_ARGUMENT, "%s must be a boolean", key);
                if (on && !(in->usb.caps.device_caps & USBTMC_CAP_TERM_CHAR))
                        return tether_service_refuse(svc, TETHER_ERR_UNSUPPORTED,
                                                     "the instrument cannot end a read on TermChar (its "
                                                     "GET_CAPABILITIES leaves out the TermChar capability)");
        } else {
                return tether_service_refuse(svc, TETHER_ERR_NOT_WRITABLE, "\"%s\" is not a setting of the instrument",
                                             key);
        }
        return TETHER_SUCCESS;
}

static tether_ret_t tmc_set_properties(tether_service *svc, const tether_task *caller, const tether_value *dict)
{
        tmc_instr *in = tether_service_priv(svc);
        /* The settings are the lock holder's while it holds it: they
         * change what its calls do. */
        if (in->lock_owner && tether_user_client_task(in->lock_owner->uc)->pid != caller->pid)
                return tether_service_refuse(svc, TETHER_ERR_BUSY, "the instrument is locked by client pid %d",
                                             (int)tether_user_client_task(in->lock_owner->uc)->pid);
        size_t n = tether_value_count(dict);
        tether_ret_t r = TETHER_SUCCESS;
        for (size_t i = 0; i < n && r == TETHER_SUCCESS; i++) {
                const char *key;
                tether_value *v;
                tether_value_dict_entry(dict, i, &key, &v);
                r = validate(in, caller, key, v);
        }
        if (r != TETHER_SUCCESS)
                return r; /* nothing applied */
        for (size_t i = 0; i < n && r == TETHER_SUCCESS; i++) {
                const char *key;
                tether_value *v;
                tether_value_dict_entry(dict, i, &key, &v);
                uint64_t u = 0;
                bool on = false;
                if (!strcmp(key, TMC_PROP_TIMEOUT)) {
                        tether_value_get_uint(v, &u);
                        set_timeout(in, (unsigned)u);
                        r = tether_service_set_property_uint(svc, key, u, 32);
                } else if (!strcmp(key, TMC_PROP_TERM_CHAR)) {
                        tether_value_get_uint(v, &u);
                        in->usb.term_char = (uint8_t)u;
                        r = tether_service_set_property_uint(svc, key, u, 8);
                } else {
                        tether_value_get_bool(v, &on);
                        in->usb.term_char_enabled = on;
                        r = tether_service_set_property_bool(svc, key, on);
                }
        }
        return r;
}

static tether_ret_t tmc_new_user_client(tether_service *svc, uint32_t type, const tether_user_client_ops **ret)
{
        if (type != 0)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret = &tmc_client_ops;
        return TETHER_SUCCESS;
}

const tether_driver usbtmc_instrument_driver = {
        .name = TMC_BUNDLE,
        .class_name = TMC_CLASS,
        .priv_size = sizeof(tmc_instr),
        .start = tmc_start,
        .stop = tmc_stop,
        .set_properties = tmc_set_properties,
        .new_user_client = tmc_new_user_client,
};
