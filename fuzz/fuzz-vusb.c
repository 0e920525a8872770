/* SPDX-License-Identifier: MIT */
/* libFuzzer target: what a hostile driver host can send a simulator's
 * virtual USB server. The input is a session: datagrams, each prefixed
 * with its length (u16, little-endian), handed one after another to
 * sim_vusb_request on one fresh simulated device, so sequences (a
 * program message, then bulk-IN requests, aborts, clears) are reached.
 * The server's clock is the fuzzer's: a millisecond passes after each
 * request (held transfers with short timeouts expire on the way), and at
 * the end time jumps past every deadline. The device is the scope, or the
 * 34461A DMM when the input starts with "DMM:" (its SCPI parser, trigger
 * system and TermChar path). Every reply must be a well-formed reply
 * within one datagram, to a request not yet answered, and by the end every
 * request must have had exactly one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dmm-usb.h"
#include "usbtmc-device.h"
#include "vusb-server.h"

/* Sessions longer than this add little but time. */
#define MAX_REQUESTS 32
/* A request's start: header and arguments, what a reply is checked against. */
#define KEEP (VUSB_HEADER_SIZE + VUSB_MAX_ARGS)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t req[VUSB_MAX_MSG + 1];

/* The requests not answered yet. */
static struct asked {
        uint8_t m[KEEP];
        size_t len;
        bool answered;
} asked[MAX_REQUESTS];
static int n_asked;

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

/* Which request a reply answers: the oldest unanswered one with its op
 * and id (a session may use an id twice), or, for id 0 and op 0x8000, the
 * oldest too short to have a header. None: the server made a reply up. */
static void on_reply(void *ctx, const uint8_t *r, size_t rlen)
{
        vusb_header h;
        if (rlen < VUSB_HEADER_SIZE || vusb_header_decode(r, rlen, &h) != TETHER_SUCCESS)
                __builtin_trap();
        for (int i = 0; i < n_asked; i++) {
                struct asked *a = &asked[i];
                vusb_header q;
                if (a->answered)
                        continue;
                bool headerless = vusb_header_decode(a->m, a->len, &q) != TETHER_SUCCESS;
                if (headerless ? h.op == VUSB_REPLY && h.id == 0 : h.op == (uint16_t)(q.op | VUSB_REPLY) && h.id == q.id) {
                        check_reply(a->m, a->len, r, rlen);
                        a->answered = true;
                        return;
                }
        }
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        sim_scope *s = NULL;
        sim_dmm *m = NULL;
        sim_usbtmc *d = NULL;
        sim_vusb *v = NULL;
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
        if (sim_vusb_new(d, &info, on_reply, NULL, &v) != TETHER_SUCCESS)
                abort();
        n_asked = 0;
        uint64_t now = 1000;
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
                struct asked *a = &asked[n_asked++];
                memset(a->m, 0, sizeof(a->m));
                memcpy(a->m, req, len < KEEP ? len : KEEP);
                a->len = len < KEEP ? len : KEEP;
                a->answered = false;
                sim_vusb_request(v, req, len, now);
                now++;
                int64_t next = sim_vusb_tick(v, now);
                if (next < -1 || (next < 0 && sim_vusb_held(v)) || (next >= 0 && !sim_vusb_held(v)))
                        __builtin_trap();
        }
        /* Past every deadline: nothing may stay held, nothing unanswered. */
        if (sim_vusb_tick(v, now + (UINT64_C(1) << 40)) != -1 || sim_vusb_held(v))
                __builtin_trap();
        for (int i = 0; i < n_asked; i++)
                if (!asked[i].answered)
                        __builtin_trap();
        sim_vusb_free(v);
        sim_usbtmc_free(d);
        sim_scope_free(s);
        sim_dmm_free(m);
        return 0;
}
