/* SPDX-License-Identifier: MIT */
/* The simulated instruments' USB sides, driven by tether's USBTMC host
 * code (src/usbtmc): the 34461A's quirks against the scope's (capability
 * bits, READ_STATUS_BYTE in the control reply with no interrupt endpoint,
 * TermChar, TRIGGER refused, INDICATOR_PULSE and REN/GTL/LLO), the
 * scope's service requests on its interrupt endpoint, the shared device's
 * refusal of profiles USB488 forbids; in-process, over virtual USB with
 * the server on a thread, and as tether-sim-dmm, a process of its own. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dmm-usb.h"
#include "usbtmc-device.h"
#include "usbtmc/backend-vusb.h"
#include "vusb-rig.h"
#include "vusb-server.h"

#define DMM_IDN "Keysight Technologies,34461A,MY59001234,A.02.08-02.37-02.08-00.49-01-01\n"

/* ---- in-process: the host code straight on sim_usbtmc_ops ---- */

typedef struct local {
        sim_dmm *dmm;
        sim_scope *scope;
        sim_usbtmc *dev;
        usbtmc t;
} local;

static local *local_dmm(void)
{
        local *l = calloc(1, sizeof(*l));
        assert_int_equal(sim_dmm_new(NULL, &l->dmm), TETHER_SUCCESS);
        assert_int_equal(sim_dmm_usbtmc_new(l->dmm, &l->dev), TETHER_SUCCESS);
        usbtmc_init(&l->t, &sim_usbtmc_ops, l->dev);
        l->t.ep_out = SIM_DMM_EP_OUT;
        l->t.ep_in = SIM_DMM_EP_IN;
        l->t.ep_interrupt = 0; /* its descriptors have none */
        return l;
}

static local *local_scope(void)
{
        local *l = calloc(1, sizeof(*l));
        assert_int_equal(sim_scope_new(NULL, &l->scope), 0);
        assert_int_equal(sim_usbtmc_new(l->scope, &l->dev), 0);
        usbtmc_init(&l->t, &sim_usbtmc_ops, l->dev);
        l->t.ep_interrupt = SIM_USBTMC_EP_INTERRUPT;
        return l;
}

static void local_free(local *l)
{
        sim_usbtmc_free(l->dev);
        sim_dmm_free(l->dmm);
        sim_scope_free(l->scope);
        free(l);
}

static tether_ret_t write_str(usbtmc *t, const char *cmd)
{
        return usbtmc_write(t, cmd, strlen(cmd));
}

/* A class request as a host sends it, for the ones usbtmc.c has no call for. */
static tether_ret_t control(local *l, uint8_t request, uint16_t value, uint8_t *b, uint16_t len)
{
        size_t got = 0;
        memset(b, 0xee, len);
        tether_ret_t r = sim_usbtmc_ops.control_in(l->dev, USBTMC_REQ_INTERFACE, request, value, 0, b, len, &got, 100);
        if (r == TETHER_SUCCESS)
                assert_int_equal(got, len);
        return r;
}

static void capabilities_differ(void **state)
{
        local *d = local_dmm(), *s = local_scope();
        usbtmc_caps dc, sc;
        assert_int_equal(usbtmc_get_capabilities(&d->t, &dc), TETHER_SUCCESS);
        assert_int_equal(usbtmc_get_capabilities(&s->t, &sc), TETHER_SUCCESS);
        assert_int_equal(dc.bcd_usbtmc, 0x0100);
        assert_int_equal(dc.bcd_usb488, 0x0100);
        /* The DMM: indicator pulse, TermChar, REN/GTL/LLO and RL1; not a
         * 488.2 interface and no SR1 (no interrupt endpoint), so no SCPI
         * bit either (USB488 4.2.2's rules); no TRIGGER, DT0. */
        assert_int_equal(dc.interface_caps, 0x04);
        assert_int_equal(dc.device_caps, USBTMC_CAP_TERM_CHAR);
        assert_int_equal(dc.usb488_interface_caps, 0x02);
        assert_int_equal(dc.usb488_device_caps, 0x02);
        /* The scope: 488.2, REN/GTL/LLO, TRIGGER; SCPI, SR1, RL1, DT1. */
        assert_int_equal(sc.interface_caps, 0);
        assert_int_equal(sc.device_caps, 0);
        assert_int_equal(sc.usb488_interface_caps, 0x07);
        assert_int_equal(sc.usb488_device_caps, 0x0f);
        assert_int_equal(query(&d->t, "*IDN?"), TETHER_SUCCESS);
        assert_string_equal(answer, DMM_IDN);
        local_free(d);
        local_free(s);
}

/* What the shared device refuses to be. */
static void profiles_usb488_forbids(void **state)
{
        sim_dmm *m;
        sim_usbtmc *dev = NULL;
        assert_int_equal(sim_dmm_new(NULL, &m), TETHER_SUCCESS);
        sim_usbtmc_profile good, p;
        sim_dmm_usb_profile(&good);
        assert_int_equal(sim_usbtmc_create(&good, &sim_dmm_instrument, m, &dev), TETHER_SUCCESS);
        sim_usbtmc_free(dev);
        struct {
                uint8_t ic, dc;
        } bad[] = {
                { SIM_CAP_488_2 | SIM_CAP_REN_GTL_LLO, SIM_CAP_SR1 | SIM_CAP_RL1 }, /* no interrupt endpoint */
                { SIM_CAP_REN_GTL_LLO, SIM_CAP_SR1 | SIM_CAP_RL1 },
                { SIM_CAP_REN_GTL_LLO, SIM_CAP_RL1 | SIM_CAP_DT1 },                 /* DT1 without TRIGGER */
                { 0, SIM_CAP_RL1 },                                                 /* RL1 without REN/GTL/LLO */
                { SIM_CAP_REN_GTL_LLO, SIM_CAP_RL1 | SIM_CAP_SCPI },                /* SCPI without 488.2, SR1 */
                { SIM_CAP_REN_GTL_LLO | SIM_CAP_TRIGGER, SIM_CAP_RL1 },             /* TRIGGER with no hook */
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                p = good;
                p.usb488_interface_caps = bad[i].ic;
                p.usb488_device_caps = bad[i].dc;
                assert_int_equal(sim_usbtmc_create(&p, &sim_dmm_instrument, m, &dev), TETHER_ERR_BAD_ARGUMENT);
        }
        /* TermChar offered by an instrument that cannot peek (the scope). */
        sim_scope_usb_profile(NULL, &p);
        p.device_caps = SIM_CAP_TERM_CHAR;
        assert_int_equal(sim_usbtmc_create(&p, &sim_scope_instrument, NULL, &dev), TETHER_ERR_BAD_ARGUMENT);
        p = good;
        p.ep_interrupt = 0x03; /* an interrupt endpoint must be IN */
        assert_int_equal(sim_usbtmc_create(&p, &sim_dmm_instrument, m, &dev), TETHER_ERR_BAD_ARGUMENT);
        sim_dmm_free(m);
}

/* No interrupt endpoint: READ_STATUS_BYTE's answer is in the control
 * reply, and its bit 6 (RQS) is always 0 even while the DMM requests
 * service (MSS, which *STB? shows): an SR0 device never asks over USB. */
static void status_byte_in_the_control_reply(void **state)
{
        local *l = local_dmm();
        uint8_t stb = 0xff;
        assert_int_equal(usbtmc_read_status_byte(&l->t, &stb), TETHER_SUCCESS);
        assert_int_equal(stb, 0);
        assert_int_equal(write_str(&l->t, "*SRE 16;*IDN?"), TETHER_SUCCESS);
        assert_int_equal(usbtmc_read_status_byte(&l->t, &stb), TETHER_SUCCESS);
        assert_int_equal(stb, 0x10); /* MAV; MSS is true, RQS not */
        uint8_t b[3];
        assert_int_equal(control(l, USB488_READ_STATUS_BYTE, 9, b, 3), TETHER_SUCCESS);
        assert_int_equal(b[0], USBTMC_STATUS_SUCCESS);
        assert_int_equal(b[1], 9);
        assert_int_equal(b[2], 0x10);
        assert_int_equal(sim_dmm_status_byte(l->dmm), 0x50);
        size_t n = 0;
        assert_int_equal(usbtmc_read(&l->t, answer, sizeof(answer), &n), TETHER_SUCCESS);
        assert_int_equal(usbtmc_read_status_byte(&l->t, &stb), TETHER_SUCCESS);
        assert_int_equal(stb, 0);
        /* There is no interrupt pipe to read. */
        uint8_t note[2];
        assert_int_equal(sim_usbtmc_ops.interrupt_in(l->dev, note, 2, &n, 10), TETHER_ERR_IO);
        /* Measurement complete as its condition: *OPC after INIT, *ESE 1,
         * *SRE 32. The status byte shows ESB once the readings exist;
         * a host polls for it. */
        double t0 = ms_now();
        assert_int_equal(write_str(&l->t, "*CLS;*ESE 1;*SRE 32;:CONF:VOLT 10,MAX;:SAMP:COUN 500;:INIT;*OPC"),
                         TETHER_SUCCESS);
        assert_int_equal(usbtmc_read_status_byte(&l->t, &stb), TETHER_SUCCESS);
        assert_int_equal(stb & 0x20, 0); /* 500 x 0.4 ms not yet over */
        while (ms_now() - t0 < 5000 && usbtmc_read_status_byte(&l->t, &stb) == TETHER_SUCCESS && !(stb & 0x20))
                usleep(2000);
        assert_int_equal(stb, 0x20);
        assert_true(ms_now() - t0 >= 195);
        local_free(l);
}

/* One REQUEST_DEV_DEP_MSG_IN and its DEV_DEP_MSG_IN, raw: the header's
 * attributes and the payload. */
static size_t raw_read(local *l, uint8_t tag, uint32_t size, bool term, uint8_t term_char, uint8_t *attr,
                       char *payload)
{
        uint8_t req[USBTMC_HEADER_SIZE];
        usbtmc_header h = { .msg_id = USBTMC_REQUEST_DEV_DEP_MSG_IN, .btag = tag, .transfer_size = size,
                            .attributes = term ? USBTMC_ATTR_TERM_CHAR : 0, .term_char = term_char };
        usbtmc_header_encode(&h, req);
        assert_int_equal(sim_usbtmc_ops.bulk_out(l->dev, req, sizeof(req), 1000), TETHER_SUCCESS);
        uint8_t in[512];
        size_t got = 0;
        assert_int_equal(sim_usbtmc_ops.bulk_in(l->dev, in, sizeof(in), &got, 1000), TETHER_SUCCESS);
        usbtmc_header rh;
        assert_int_equal(usbtmc_header_decode(in, got, &rh), TETHER_SUCCESS);
        assert_int_equal(rh.msg_id, USBTMC_DEV_DEP_MSG_IN);
        assert_int_equal(rh.btag, tag);
        assert_int_equal(got, USBTMC_HEADER_SIZE + usbtmc_padded(rh.transfer_size));
        memcpy(payload, in + USBTMC_HEADER_SIZE, rh.transfer_size);
        payload[rh.transfer_size] = '\0';
        *attr = rh.attributes;
        return rh.transfer_size;
}

/* TermChar: a transfer ends after it, says so (bit 1), and EOM only
 * where the message ends; without TermChar the same answer comes whole.
 * The scope, without TermChar, ignores it. */
static void termchar_ends_a_transfer(void **state)
{
        local *l = local_dmm();
        char p[512];
        uint8_t attr;
        assert_int_equal(write_str(&l->t, "CONF:VOLT 10,MAX;:SAMP:COUN 3;:READ?"), TETHER_SUCCESS);
        assert_int_equal(raw_read(l, 10, 200, true, ',', &attr, p), 16);
        assert_string_equal(p, "+4.99900000E+00,");
        assert_int_equal(attr, USBTMC_ATTR_TERM_CHAR);
        assert_int_equal(raw_read(l, 11, 200, true, ',', &attr, p), 16);
        assert_int_equal(attr, USBTMC_ATTR_TERM_CHAR);
        assert_int_equal(raw_read(l, 12, 200, true, ',', &attr, p), 16);
        assert_int_equal(p[15], '\n');
        assert_int_equal(attr, USBTMC_ATTR_EOM); /* ended on EOM, not on ',' */
        /* The newline as TermChar: the whole answer, both bits. */
        assert_int_equal(write_str(&l->t, "READ?"), TETHER_SUCCESS);
        assert_int_equal(raw_read(l, 13, 200, true, '\n', &attr, p), 48);
        assert_int_equal(attr, USBTMC_ATTR_EOM | USBTMC_ATTR_TERM_CHAR);
        /* TermChar not asked for: up to the size asked. */
        assert_int_equal(write_str(&l->t, "READ?"), TETHER_SUCCESS);
        assert_int_equal(raw_read(l, 14, 20, false, ',', &attr, p), 20);
        assert_int_equal(attr, 0);
        assert_int_equal(raw_read(l, 15, 200, false, ',', &attr, p), 28);
        assert_int_equal(attr, USBTMC_ATTR_EOM);
        local_free(l);

        local *s = local_scope();
        assert_int_equal(write_str(&s->t, "*IDN?"), TETHER_SUCCESS);
        assert_int_equal(raw_read(s, 20, 200, true, ',', &attr, p), 61);
        assert_int_equal(attr, USBTMC_ATTR_EOM);
        local_free(s);
}

/* The DMM has no TRIGGER: the message halts bulk-OUT (USB488 Table 8),
 * every transfer fails until the halt is cleared, and a device clear
 * brings it back. *TRG over the message channel works. */
static void trigger_is_refused(void **state)
{
        local *l = local_dmm();
        assert_int_equal(usbtmc_trigger(&l->t), TETHER_ERR_IO);
        assert_true(sim_usbtmc_out_halted(l->dev));
        assert_int_equal(write_str(&l->t, "*IDN?"), TETHER_ERR_IO);
        assert_int_equal(usbtmc_clear(&l->t), TETHER_SUCCESS);
        assert_false(sim_usbtmc_out_halted(l->dev));
        assert_int_equal(write_str(&l->t, "TRIG:SOUR BUS;:CONF:VOLT 10,MAX;:TRIG:SOUR BUS;:INIT"),
                         TETHER_SUCCESS);
        assert_int_equal(write_str(&l->t, "*TRG"), TETHER_SUCCESS);
        assert_int_equal(query(&l->t, "FETC?;:SYST:ERR?"), TETHER_SUCCESS);
        assert_string_equal(answer, "+4.99900000E+00;+0,\"No error\"\n");
        /* The scope takes it (DT1). */
        local *s = local_scope();
        assert_int_equal(usbtmc_trigger(&s->t), TETHER_SUCCESS);
        assert_int_equal(query(&s->t, "*OPC?"), TETHER_SUCCESS);
        local_free(s);
        local_free(l);
}

/* INDICATOR_PULSE and REN/GTL/LLO: what the capabilities say. */
static void control_requests_follow_the_capabilities(void **state)
{
        local *l = local_dmm(), *s = local_scope();
        uint8_t b[1];
        assert_int_equal(control(l, USBTMC_INDICATOR_PULSE, 0, b, 1), TETHER_SUCCESS);
        assert_int_equal(b[0], USBTMC_STATUS_SUCCESS);
        assert_int_equal(sim_usbtmc_indicator_pulses(l->dev), 1);
        assert_int_equal(control(s, USBTMC_INDICATOR_PULSE, 0, b, 1), TETHER_ERR_IO); /* a STALL */
        /* USB488 Figure 2: REN, then a message: remote; LLO: remote with
         * lockout; GTL: local with lockout; REN off: local. */
        assert_int_equal(sim_usbtmc_remote_state(l->dev), SIM_LOCS);
        assert_int_equal(write_str(&l->t, "*CLS"), TETHER_SUCCESS);
        assert_int_equal(sim_usbtmc_remote_state(l->dev), SIM_LOCS); /* no REN */
        assert_int_equal(control(l, USB488_REN_CONTROL, 1, b, 1), TETHER_SUCCESS);
        assert_int_equal(b[0], USBTMC_STATUS_SUCCESS);
        assert_true(sim_usbtmc_ren(l->dev));
        assert_int_equal(write_str(&l->t, "*CLS"), TETHER_SUCCESS);
        assert_int_equal(sim_usbtmc_remote_state(l->dev), SIM_REMS);
        assert_int_equal(control(l, USB488_LOCAL_LOCKOUT, 0, b, 1), TETHER_SUCCESS);
        assert_int_equal(sim_usbtmc_remote_state(l->dev), SIM_RWLS);
        assert_int_equal(control(l, USB488_GO_TO_LOCAL, 0, b, 1), TETHER_SUCCESS);
        assert_int_equal(sim_usbtmc_remote_state(l->dev), SIM_LWLS);
        assert_int_equal(usbtmc_clear(&l->t), TETHER_SUCCESS);
        assert_int_equal(sim_usbtmc_remote_state(l->dev), SIM_RWLS);
        assert_int_equal(control(l, USB488_REN_CONTROL, 0, b, 1), TETHER_SUCCESS);
        assert_int_equal(sim_usbtmc_remote_state(l->dev), SIM_LOCS);
        assert_int_equal(control(l, USB488_REN_CONTROL, 7, b, 1), TETHER_SUCCESS);
        assert_int_equal(b[0], USBTMC_STATUS_FAILED);
        /* An unknown class request stalls. */
        assert_int_equal(control(l, 99, 0, b, 1), TETHER_ERR_IO);
        local_free(l);
        local_free(s);
}

/* The scope is SR1: MSS rising (here MAV enabled by *SRE 16, then an
 * error enabled through ESB) sends an SRQ notification, bNotify1 0x81
 * and the status byte with RQS, on interrupt-IN; RQS is then cleared, and
 * no second one comes until MSS has fallen and risen again. */
static void scope_requests_service_on_interrupt_in(void **state)
{
        local *s = local_scope();
        uint8_t n[2];
        size_t got = 0;
        assert_int_equal(write_str(&s->t, "*SRE 16"), TETHER_SUCCESS);
        assert_int_equal(sim_usbtmc_ops.interrupt_in(s->dev, n, 2, &got, 0), TETHER_ERR_TIMEOUT);
        assert_int_equal(write_str(&s->t, "*IDN?"), TETHER_SUCCESS);
        assert_int_equal(sim_usbtmc_ops.interrupt_in(s->dev, n, 2, &got, 0), TETHER_SUCCESS);
        assert_int_equal(got, 2);
        assert_int_equal(n[0], 0x81);
        assert_int_equal(n[1], 0x50); /* MAV, RQS */
        assert_int_equal(sim_usbtmc_ops.interrupt_in(s->dev, n, 2, &got, 0), TETHER_ERR_TIMEOUT);
        /* A serial poll now: RQS already went with the notification. */
        uint8_t stb = 0;
        assert_int_equal(usbtmc_read_status_byte(&s->t, &stb), TETHER_SUCCESS);
        assert_int_equal(stb, 0x10);
        size_t len = 0;
        assert_int_equal(usbtmc_read(&s->t, answer, sizeof(answer), &len), TETHER_SUCCESS);
        /* MSS fell with MAV; the next answer raises it again. */
        assert_int_equal(query(&s->t, "*OPC?"), TETHER_SUCCESS);
        assert_int_equal(sim_usbtmc_ops.interrupt_in(s->dev, n, 2, &got, 0), TETHER_SUCCESS);
        assert_int_equal(n[0], 0x81);
        assert_int_equal(n[1], 0x50);
        assert_int_equal(sim_usbtmc_ops.interrupt_in(s->dev, n, 2, &got, 0), TETHER_ERR_TIMEOUT);
        /* Another condition: a command error with ESB enabled. */
        assert_int_equal(write_str(&s->t, "*SRE 32;*ESE 32"), TETHER_SUCCESS);
        assert_int_equal(sim_usbtmc_ops.interrupt_in(s->dev, n, 2, &got, 0), TETHER_ERR_TIMEOUT);
        assert_int_equal(write_str(&s->t, ":BOGus"), TETHER_SUCCESS);
        /* The host library keeps the SRQ it meets on the way to a status byte. */
        s->t.srq_pending = false;
        assert_int_equal(usbtmc_read_status_byte(&s->t, &stb), TETHER_SUCCESS);
        assert_true(s->t.srq_pending);
        assert_int_equal(s->t.srq_stb, 0x64); /* EAV, ESB, RQS */
        assert_int_equal(stb, 0x24);
        local_free(s);
}

/* ---- over virtual USB, the server on a thread ---- */

typedef vusb_rig remote;

static remote *remote_start(local *l, const char *serial)
{
        remote *r = calloc(1, sizeof(*r));
        vusb_rig_serve(r, l->dev, serial);
        r->owner = l;
        vusb_rig_attach(r);
        return r;
}

static void remote_stop(remote *r)
{
        vusb_rig_stop(r);
        local_free(r->owner);
        free(r);
}

static void dmm_over_vusb(void **state)
{
        remote *r = remote_start(local_dmm(), "DMM0001");
        vusb_info info;
        assert_int_equal(usbtmc_vusb_get_info(r->v, &info), TETHER_SUCCESS);
        assert_int_equal(info.vendor, 0x2a8d);
        assert_int_equal(info.product, 0x1301);
        assert_int_equal(info.protocol, 1);
        assert_int_equal(info.ep_out, 0x01);
        assert_int_equal(info.ep_in, 0x82);
        assert_int_equal(info.ep_interrupt, 0);
        assert_string_equal(info.serial, "DMM0001");
        /* The host learned from DESCRIBE that there is no interrupt pipe. */
        assert_int_equal(r->t.ep_interrupt, 0);
        assert_int_equal(r->t.ep_out, 0x01);
        assert_int_equal(r->t.ep_in, 0x82);
        uint8_t n[2];
        size_t got = 0;
        assert_int_equal(r->t.ops->interrupt_in(r->v, n, 2, &got, 10), TETHER_ERR_UNSUPPORTED);
        usbtmc_caps c;
        assert_int_equal(usbtmc_get_capabilities(&r->t, &c), TETHER_SUCCESS);
        assert_int_equal(c.device_caps, USBTMC_CAP_TERM_CHAR);
        /* A measurement: the server holds bulk-IN for its 0.2 s. */
        double t0 = ms_now();
        assert_int_equal(query(&r->t, "MEAS:VOLT:DC?"), TETHER_SUCCESS);
        assert_string_equal(answer, "+4.99874000E+00\n");
        assert_true(ms_now() - t0 >= 195);
        /* The status byte in the control reply, through the server. */
        uint8_t stb = 0xff;
        assert_int_equal(write_str(&r->t, "*IDN?"), TETHER_SUCCESS);
        assert_int_equal(usbtmc_read_status_byte(&r->t, &stb), TETHER_SUCCESS);
        assert_int_equal(stb, 0x10);
        size_t len = 0;
        assert_int_equal(usbtmc_read(&r->t, answer, sizeof(answer), &len), TETHER_SUCCESS);
        /* Past the host's timeout: the measurement of 5 x 0.2 s outlasts
         * 300 ms; the recovery clears the device, and it answers again. */
        r->t.timeout_ms = 300;
        assert_int_equal(query(&r->t, "SAMP:COUN 5;:READ?"), TETHER_ERR_TIMEOUT);
        r->t.timeout_ms = 5000;
        assert_int_equal(query(&r->t, "SYST:ERR?"), TETHER_SUCCESS);
        assert_string_equal(answer, "+0,\"No error\"\n");
        remote_stop(r);
}

static void scope_srq_over_vusb(void **state)
{
        remote *r = remote_start(local_scope(), "MY57235663");
        assert_int_equal(r->t.ep_interrupt, SIM_USBTMC_EP_INTERRUPT);
        assert_int_equal(write_str(&r->t, "*SRE 16;*IDN?"), TETHER_SUCCESS);
        uint8_t n[2];
        size_t got = 0;
        assert_int_equal(r->t.ops->interrupt_in(r->v, n, 2, &got, 100), TETHER_SUCCESS);
        assert_int_equal(got, 2);
        assert_int_equal(n[0], 0x81);
        assert_int_equal(n[1], 0x50);
        remote_stop(r);
}

/* ---- tether-sim-dmm, a process of its own ---- */

static pid_t spawn_dmm(const char *const *args, int *ret_fd)
{
        return sim_spawn("TETHER_SIM_DMM", args, ret_fd);
}

static void simulator_process(void **state)
{
        int fd;
        const char *args[] = { "--serial", "DMM0042", "--seed", "5", "--model", "34461A", NULL };
        pid_t pid = spawn_dmm(args, &fd);
        usbtmc_vusb *v;
        assert_int_equal(usbtmc_vusb_open(fd, &v), TETHER_SUCCESS);
        vusb_info info;
        assert_int_equal(usbtmc_vusb_get_info(v, &info), TETHER_SUCCESS);
        assert_string_equal(info.serial, "DMM0042");
        assert_int_equal(info.product, 0x1301);
        usbtmc t;
        usbtmc_vusb_attach(&t, v);
        assert_int_equal(query(&t, "*IDN?"), TETHER_SUCCESS);
        assert_string_equal(answer, "Keysight Technologies,34461A,DMM0042,A.02.08-02.37-02.08-00.49-01-01\n");
        /* The seed's readings, as a DMM of the same seed gives them here. */
        assert_int_equal(query(&t, "CONF:VOLT 10,MAX;:SAMP:COUN 5;:READ?"), TETHER_SUCCESS);
        char got[sizeof(answer)];
        snprintf(got, sizeof(got), "%s", answer);
        sim_dmm_config cfg = { .seed = 5 };
        local *l = calloc(1, sizeof(*l));
        assert_int_equal(sim_dmm_new(&cfg, &l->dmm), TETHER_SUCCESS);
        assert_int_equal(sim_dmm_usbtmc_new(l->dmm, &l->dev), TETHER_SUCCESS);
        usbtmc_init(&l->t, &sim_usbtmc_ops, l->dev);
        assert_int_equal(query(&l->t, "CONF:VOLT 10,MAX;:SAMP:COUN 5;:READ?"), TETHER_SUCCESS);
        assert_string_equal(got, answer);
        local_free(l);
        usbtmc_vusb_close(v);
        assert_int_equal(sim_wait_exit(pid, 5000), 0);
}

static int run_to_exit(const char *const *args, char *err, size_t cap)
{
        int pipefd[2];
        assert_int_equal(pipe(pipefd), 0);
        int fd;
        pid_t pid;
        int saved = dup(2);
        dup2(pipefd[1], 2);
        pid = spawn_dmm(args, &fd);
        dup2(saved, 2);
        close(saved);
        close(pipefd[1]);
        /* Until the child's end closes: stderr is unbuffered, one write a piece. */
        size_t got = 0;
        ssize_t n;
        while (got < cap - 1 && (n = read(pipefd[0], err + got, cap - 1 - got)) > 0)
                got += (size_t)n;
        err[got] = '\0';
        close(pipefd[0]);
        close(fd);
        return sim_wait_exit(pid, 5000);
}

/* tether-sim-scope as a model of the family: its descriptors carry that
 * model's product id, as the nub tetherd publishes for it does. */
static void scope_process_presents_its_model(void **state)
{
        const char *args[] = { "--model", "msox2014a", "--serial", "SC0001", NULL };
        int fd;
        pid_t pid = sim_spawn("TETHER_SIM_SCOPE", args, &fd);
        usbtmc_vusb *v;
        assert_int_equal(usbtmc_vusb_open(fd, &v), TETHER_SUCCESS);
        vusb_info info;
        assert_int_equal(usbtmc_vusb_get_info(v, &info), TETHER_SUCCESS);
        assert_int_equal(info.vendor, 0x0957);
        assert_int_equal(info.product, 0x1798);
        assert_int_equal(info.ep_interrupt, SIM_USBTMC_EP_INTERRUPT);
        usbtmc t;
        usbtmc_vusb_attach(&t, v);
        assert_int_equal(query(&t, "*IDN?"), TETHER_SUCCESS);
        assert_non_null(strstr(answer, ",MSO-X 2014A,SC0001,"));
        usbtmc_vusb_close(v);
        assert_int_equal(sim_wait_exit(pid, 5000), 0);
}

static void simulator_refuses_bad_arguments(void **state)
{
        char err[256];
        const char *model[] = { "--model", "dsox2002a", NULL };
        assert_int_equal(run_to_exit(model, err, sizeof(err)), 2);
        assert_non_null(strstr(err, "unknown model 'dsox2002a' (known: 34461a)"));
        const char *serial[] = { "--serial", "A,B", NULL };
        assert_int_equal(run_to_exit(serial, err, sizeof(err)), 2);
        assert_non_null(strstr(err, "--serial"));
        const char *seed[] = { "--seed", "x", NULL };
        assert_int_equal(run_to_exit(seed, err, sizeof(err)), 2);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(capabilities_differ),
                cmocka_unit_test(profiles_usb488_forbids),
                cmocka_unit_test(status_byte_in_the_control_reply),
                cmocka_unit_test(termchar_ends_a_transfer),
                cmocka_unit_test(trigger_is_refused),
                cmocka_unit_test(control_requests_follow_the_capabilities),
                cmocka_unit_test(scope_requests_service_on_interrupt_in),
                cmocka_unit_test(dmm_over_vusb),
                cmocka_unit_test(scope_srq_over_vusb),
                cmocka_unit_test(simulator_process),
                cmocka_unit_test(scope_process_presents_its_model),
                cmocka_unit_test(simulator_refuses_bad_arguments),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
