/* SPDX-License-Identifier: MIT */
/*
 * The oscilloscope path, measured against baselines from the same run:
 *   - a 62,500-point capture end to end (libtether -> tetherd -> DSOX2000
 *     driver -> USBTMC -> simulated DSO-X 2002A, and back), in points/s and
 *     MB/s, beside memcpy of the same bytes;
 *   - the USBTMC framing alone (host side, a device that answers from a
 *     prepared buffer), in MB/s of CPU.
 * The driver runs inside tetherd (tetherd --in-process), as when these
 * figures were first taken: the path measured is tether's, with no driver
 * host in it (a host adds no hop to a call: bench-call measures that).
 * Not a test: it prints figures. TETHERD names the daemon.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tether/tether.h>

#include "dsox2000/dsox2000.h"
#include "bench-util.h"
#include "harness.h"
#include "usbtmc/usbtmc.h"

/* ---- a device that answers every request from a prepared buffer ---- */

typedef struct canned {
        uint8_t btag;
        uint32_t want;
        size_t left;      /* bytes of the response still to deliver */
        uint8_t *xfer;
        size_t xfer_len, xfer_pos;
} canned;

static tether_ret_t c_out(void *ctx, const uint8_t *d, size_t len, unsigned t)
{
        canned *c = ctx;
        usbtmc_header h;
        if (usbtmc_header_decode(d, len, &h) != TETHER_SUCCESS)
                return TETHER_ERR_IO;
        if (h.msg_id == USBTMC_REQUEST_DEV_DEP_MSG_IN) {
                c->btag = h.btag;
                c->want = h.transfer_size;
        }
        return TETHER_SUCCESS;
}

static tether_ret_t c_in(void *ctx, uint8_t *data, size_t cap, size_t *ret_len, unsigned t)
{
        canned *c = ctx;
        if (c->xfer_pos == c->xfer_len) {
                size_t n = c->left < c->want ? c->left : c->want;
                usbtmc_header h = { .msg_id = USBTMC_DEV_DEP_MSG_IN, .btag = c->btag, .transfer_size = (uint32_t)n,
                                    .attributes = n == c->left ? USBTMC_ATTR_EOM : 0 };
                usbtmc_header_encode(&h, c->xfer);
                c->xfer_len = USBTMC_HEADER_SIZE + usbtmc_padded(n);
                c->xfer_pos = 0;
                c->left -= n;
        }
        size_t n = c->xfer_len - c->xfer_pos < cap ? c->xfer_len - c->xfer_pos : cap;
        memcpy(data, c->xfer + c->xfer_pos, n);
        c->xfer_pos += n;
        *ret_len = n;
        return TETHER_SUCCESS;
}

static tether_ret_t c_ctl(void *ctx, uint8_t ty, uint8_t rq, uint16_t v, uint16_t i, uint8_t *d, uint16_t l, size_t *rl,
                          unsigned t)
{
        return TETHER_ERR_UNSUPPORTED;
}

static tether_ret_t c_halt(void *ctx, bool out)
{
        return TETHER_SUCCESS;
}

static const usbtmc_backend_ops canned_ops = { .bulk_out = c_out, .bulk_in = c_in, .control_in = c_ctl, .clear_halt = c_halt };

static double framing_mbs(size_t response, uint32_t max_transfer, int reps)
{
        canned c = { .xfer = calloc(1, USBTMC_HEADER_SIZE + max_transfer + 4) };
        usbtmc t;
        usbtmc_init(&t, &canned_ops, &c);
        t.max_transfer = max_transfer;
        uint8_t *buf = malloc(response);
        size_t n = 0;
        double t0 = bench_now_us();
        for (int i = 0; i < reps; i++) {
                c.left = response;
                usbtmc_write(&t, ":WAV:DATA?", 10);
                if (usbtmc_read(&t, buf, response, &n) != TETHER_SUCCESS || n != response) {
                        fprintf(stderr, "bench: framing read failed\n");
                        exit(1);
                }
        }
        double dt = bench_now_us() - t0;
        free(buf);
        free(c.xfer);
        return (double)response * reps / dt;
}


int main(int argc, char **argv)
{
        int reps = argc > 1 ? atoi(argv[1]) : 50;
        static const char *const in_process[] = { "--in-process", NULL };
        harness h = { .simulate = "dsox2002a", .args = in_process };
        tether_session *s = NULL;
        tether_connect *c = NULL;
        if (bench_open(&h, DSO_CLASS, 0, &s, &c) != 0)
                return 1;
        tether_call_scalar_method(c, DSO_AUTOSCALE, NULL, 0, NULL, NULL);

        uint8_t *codes = malloc(DSO_MAX_POINTS);
        double base = bench_memcpy_mbs(DSO_MAX_POINTS, 10000);
        printf("tether scope benchmark (%d captures per figure; the DSOX2000 driver inside tetherd, --in-process)\n\n", reps);
        printf("62,500-point capture, end to end (BYTE codes; memcpy of the same bytes: %.0f MB/s)\n", base);
        /* Running: the simulator synthesises a fresh record for every read.
         * Stopped: the same record is read again, so what remains is the
         * path itself (SCPI, USBTMC, driver, tetherd, libtether). */
        for (int stopped = 0; stopped < 2; stopped++) {
                if (stopped)
                        tether_call_scalar_method(c, DSO_STOP, NULL, 0, NULL, NULL);
                uint64_t in[2] = { 1, DSO_MAX_POINTS };
                size_t size = DSO_MAX_POINTS;
                tether_call_method(c, DSO_GET_WAVEFORM, in, 2, NULL, 0, NULL, NULL, codes, &size); /* warm-up */
                double t0 = bench_now_us();
                for (int i = 0; i < reps; i++) {
                        size = DSO_MAX_POINTS;
                        if (tether_call_method(c, DSO_GET_WAVEFORM, in, 2, NULL, 0, NULL, NULL, codes, &size) != TETHER_SUCCESS ||
                            size != DSO_MAX_POINTS) {
                                fprintf(stderr, "bench: capture failed\n");
                                return 1;
                        }
                }
                double per = (bench_now_us() - t0) / reps;
                printf("  %-34s %6.2f ms: %6.2f Mpoints/s, %6.1f MB/s (ratio %.4fx)\n",
                       stopped ? "stopped (the path alone)" : "running (fresh acquisition each)", per / 1e3,
                       DSO_MAX_POINTS / per, DSO_MAX_POINTS / per, (DSO_MAX_POINTS / per) / base);
        }
        printf("\n");

        printf("USBTMC framing on the host (canned device, no acquisition)\n");
        uint32_t transfers[] = { 4096, 65536, 1u << 20 };
        for (int i = 0; i < 3; i++) {
                double f = framing_mbs(DSO_MAX_POINTS + 8, transfers[i], 2000);
                printf("  %7u-byte transfers: %8.0f MB/s of CPU   (memcpy: %.0f MB/s, ratio %.2fx)\n", transfers[i], f,
                       base, f / base);
        }
        free(codes);
        return bench_close(&h, s, c);
}
