/* SPDX-License-Identifier: MIT */
#include "plot.h"

#include <cairo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W 800
#define H 480
#define MARGIN_L 60
#define MARGIN_R 20
#define MARGIN_T 40
#define MARGIN_B 50

/* InfiniiVision's trace colours: channel 1 yellow, 2 green, 3 blue, 4 red. */
static void trace_colour(cairo_t *cr, int channel)
{
        if (channel == 1)
                cairo_set_source_rgb(cr, 0.95, 0.85, 0.1);
        else if (channel == 3)
                cairo_set_source_rgb(cr, 0.3, 0.55, 1.0);
        else if (channel == 4)
                cairo_set_source_rgb(cr, 0.95, 0.3, 0.35);
        else
                cairo_set_source_rgb(cr, 0.2, 0.85, 0.3);
}

static void si(char *buf, size_t n, double v, const char *unit)
{
        const char *prefix[] = { "n", "u", "m", "", "k", "M" };
        double a = v < 0 ? -v : v;
        int i = 3;
        while (a != 0 && a < 1 && i > 0) {
                a *= 1000;
                v *= 1000;
                i--;
        }
        snprintf(buf, n, "%g %s%s", v, prefix[i], unit);
}

static cairo_surface_t *render(const plot_trace *traces, int n_traces, double seconds_per_div, double x_origin,
                               const char *title)
{
        cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
        cairo_t *cr = cairo_create(surf);
        double gw = W - MARGIN_L - MARGIN_R, gh = H - MARGIN_T - MARGIN_B;

        cairo_set_source_rgb(cr, 0.05, 0.05, 0.08);
        cairo_paint(cr);
        /* The graticule: 10 x 8 divisions, the centre lines brighter. */
        cairo_set_line_width(cr, 1);
        for (int i = 0; i <= 10; i++) {
                double x = MARGIN_L + gw * i / 10 + 0.5;
                cairo_set_source_rgb(cr, i == 5 ? 0.45 : 0.25, i == 5 ? 0.45 : 0.25, i == 5 ? 0.45 : 0.25);
                cairo_move_to(cr, x, MARGIN_T);
                cairo_line_to(cr, x, MARGIN_T + gh);
                cairo_stroke(cr);
        }
        for (int i = 0; i <= 8; i++) {
                double y = MARGIN_T + gh * i / 8 + 0.5;
                cairo_set_source_rgb(cr, i == 4 ? 0.45 : 0.25, i == 4 ? 0.45 : 0.25, i == 4 ? 0.45 : 0.25);
                cairo_move_to(cr, MARGIN_L, y);
                cairo_line_to(cr, MARGIN_L + gw, y);
                cairo_stroke(cr);
        }

        cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
        cairo_set_font_size(cr, 13);
        char label[128], a[32], b[32];
        for (int t = 0; t < n_traces; t++) {
                const plot_trace *tr = &traces[t];
                trace_colour(cr, tr->channel);
                cairo_set_line_width(cr, 1.5);
                for (size_t i = 0; i < tr->n; i++) {
                        double x = MARGIN_L + gw * (double)i / (double)(tr->n > 1 ? tr->n - 1 : 1);
                        double div = (tr->volts[i] - tr->offset) / tr->volts_per_div; /* -4 .. 4 on screen */
                        div = div < -4.2 ? -4.2 : div > 4.2 ? 4.2 : div;
                        double y = MARGIN_T + gh / 2 - div * gh / 8;
                        if (i == 0)
                                cairo_move_to(cr, x, y);
                        else
                                cairo_line_to(cr, x, y);
                }
                cairo_stroke(cr);
                si(a, sizeof(a), tr->volts_per_div, "V/div");
                si(b, sizeof(b), tr->offset, "V");
                snprintf(label, sizeof(label), "CH%d  %s  offset %s", tr->channel, a, b);
                /* Two legends a row: channels 3 and 4 above 1 and 2. */
                cairo_move_to(cr, MARGIN_L + 10 + 250 * (t % 2), t < 2 ? H - 15 : H - 32);
                cairo_show_text(cr, label);
        }
        cairo_set_source_rgb(cr, 0.85, 0.85, 0.85);
        si(a, sizeof(a), seconds_per_div, "s/div");
        si(b, sizeof(b), x_origin, "s");
        snprintf(label, sizeof(label), "%s   start %s", a, b);
        cairo_move_to(cr, W - MARGIN_R - 260, H - 15);
        cairo_show_text(cr, label);
        cairo_set_font_size(cr, 15);
        cairo_move_to(cr, MARGIN_L, 25);
        cairo_show_text(cr, title);

        cairo_destroy(cr);
        return surf;
}

tether_ret_t plot_png(const char *path, const plot_trace *traces, int n_traces, double seconds_per_div,
                      double x_origin, const char *title)
{
        cairo_surface_t *surf = render(traces, n_traces, seconds_per_div, x_origin, title);
        cairo_status_t st = cairo_surface_write_to_png(surf, path);
        cairo_surface_destroy(surf);
        return st == CAIRO_STATUS_SUCCESS ? TETHER_SUCCESS : TETHER_ERR_IO;
}

typedef struct membuf {
        uint8_t *p;
        size_t len, cap;
} membuf;

static cairo_status_t to_memory(void *closure, const unsigned char *data, unsigned int n)
{
        membuf *m = closure;
        if (m->cap - m->len < n) {
                size_t cap = m->cap ? m->cap : 16384;
                while (cap - m->len < n)
                        cap *= 2;
                uint8_t *p = realloc(m->p, cap);
                if (!p)
                        return CAIRO_STATUS_NO_MEMORY;
                m->p = p;
                m->cap = cap;
        }
        memcpy(m->p + m->len, data, n);
        m->len += n;
        return CAIRO_STATUS_SUCCESS;
}

tether_ret_t plot_png_buffer(const plot_trace *traces, int n_traces, double seconds_per_div, double x_origin,
                             const char *title, uint8_t **ret_png, size_t *ret_len)
{
        cairo_surface_t *surf = render(traces, n_traces, seconds_per_div, x_origin, title);
        membuf m = { 0 };
        cairo_status_t st = cairo_surface_write_to_png_stream(surf, to_memory, &m);
        cairo_surface_destroy(surf);
        if (st != CAIRO_STATUS_SUCCESS) {
                free(m.p);
                return st == CAIRO_STATUS_NO_MEMORY ? TETHER_ERR_NO_MEMORY : TETHER_ERR_IO;
        }
        *ret_png = m.p;
        *ret_len = m.len;
        return TETHER_SUCCESS;
}
