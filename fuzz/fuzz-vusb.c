/* SPDX-License-Identifier: MIT */
/* libFuzzer target: what a hostile driver host can send a simulator's
 * virtual USB server. The input is a session: datagrams, each prefixed
 * with its length (u16, little-endian), handed one after another to
 * sim_vusb_handle on one fresh simulated device, so sequences (a
 * program message, then bulk-IN requests, aborts, clears) are reached.
 * The device is the scope, or the 34461A DMM when the input starts with
 * "DMM:" (its SCPI parser, trigger system and TermChar path). Every reply
 * must be a well-formed reply within one datagram. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dmm-usb.h"
#include "usbtmc-device.h"
#include "vusb-server.h"

/* Sessions longer than this add little but time. */
#define MAX_REQUESTS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t req[VUSB_MAX_MSG + 1];
static uint8_t reply[VUSB_MAX_MSG];

/* The device waits for an acquisition as long as the request's timeout
 * allows (seconds, at slow timebases): keep runs fast by allowing 2 ms. */
static void clamp_timeout(uint8_t *m, size_t len)
{
        if (len < VUSB_HEADER_SIZE + 4)
                return;
        uint16_t op = vusb_get16(m);
        if (op != VUSB_BULK_OUT && op != VUSB_BULK_IN && op != VUSB_CONTROL_IN && op != VUSB_INTERRUPT_IN)
                return;
        if (vusb_get32(m + VUSB_HEADER_SIZE) > 2)
                vusb_put32(m + VUSB_HEADER_SIZE, 2);
}

static void check_reply(const uint8_t *m, size_t mlen, const uint8_t *r, size_t rlen)
{
        vusb_header h, q;
        if (rlen < VUSB_HEADER_SIZE || rlen > VUSB_MAX_MSG || vusb_header_decode(r, rlen, &h) != TETHER_SUCCESS)
                __builtin_trap();
        if (h.size != rlen || h.version != VUSB_VERSION || !(h.op & VUSB_REPLY) || h.status > 0)
                __builtin_trap();
        if (vusb_header_decode(m, mlen, &q) != TETHER_SUCCESS) {
                if (h.id != 0 || h.status == TETHER_SUCCESS || rlen != VUSB_HEADER_SIZE)
                        __builtin_trap();
                return;
        }
        if (h.id != q.id || h.op != (uint16_t)(q.op | VUSB_REPLY))
                __builtin_trap();
        size_t body = rlen - VUSB_HEADER_SIZE;
        if (!body)
                return;
        if (h.status != TETHER_SUCCESS && q.op != VUSB_BULK_IN && q.op != VUSB_INTERRUPT_IN &&
            q.op != VUSB_CONTROL_IN)
                __builtin_trap();
        /* Never more than was asked for. */
        if ((q.op == VUSB_BULK_IN || q.op == VUSB_INTERRUPT_IN) && body > vusb_get32(m + VUSB_HEADER_SIZE + 4))
                __builtin_trap();
        if (q.op == VUSB_CONTROL_IN && body > vusb_get16(m + VUSB_HEADER_SIZE + 10))
                __builtin_trap();
        if ((q.op == VUSB_BULK_OUT || q.op == VUSB_CLEAR_HALT) && body)
                __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        sim_scope *s = NULL;
        sim_dmm *m = NULL;
        sim_usbtmc *d = NULL;
        vusb_info info;
        if (size >= 4 && !memcmp(data, "DMM:", 4)) {
                data += 4;
                size -= 4;
                if (sim_dmm_new(NULL, &m) != TETHER_SUCCESS || sim_dmm_usbtmc_new(m, &d) != TETHER_SUCCESS ||
                    sim_vusb_profile_info(sim_usbtmc_profile_of(d), "MY59001234", &info) != TETHER_SUCCESS)
                        abort();
        } else if (sim_scope_new(NULL, &s) || sim_usbtmc_new(s, &d) || sim_vusb_info("MY57235663", &info)) {
                abort();
        }
        for (int i = 0; i < MAX_REQUESTS && size >= 2; i++) {
                size_t len = vusb_get16(data), take;
                data += 2;
                size -= 2;
                /* 0xffff stands for a datagram too big for the server's
                 * buffer: its start as given, the rest zeros. */
                if (len == 0xffff) {
                        len = VUSB_MAX_MSG + 1;
                        take = size < len ? size : len;
                        memset(req + take, 0, len - take);
                } else {
                        len = len < size ? len : size;
                        take = len;
                }
                memcpy(req, data, take);
                data += take;
                size -= take;
                clamp_timeout(req, len);
                size_t n = 0;
                if (sim_vusb_handle(d, &info, req, len, reply, &n) != TETHER_SUCCESS)
                        __builtin_trap();
                check_reply(req, len, reply, n);
        }
        sim_usbtmc_free(d);
        sim_scope_free(s);
        sim_dmm_free(m);
        return 0;
}
