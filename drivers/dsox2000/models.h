/* SPDX-License-Identifier: MIT */
#ifndef TETHER_DSOX2000_MODELS_H
#define TETHER_DSOX2000_MODELS_H

/*
 * What the driver knows of each InfiniiVision 2000 X model: the facts the
 * data sheet gives per model (channels, bandwidth) and the ones the series
 * shares (sample rate, memory), and the USB product id each enumerates
 * with. A DSO and the MSO of the same bandwidth and channel count are one
 * row: the same hardware and the same product id, MSO being a licence.
 * Sources: docs/dsox2000-family.md.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DSO_VENDOR_AGILENT  0x0957u
#define DSO_VENDOR_KEYSIGHT 0x2a8du
#define DSO_MSO_DIGITAL     8u       /* D0 to D7 on every MSO-X 2000 */

typedef struct dso_model {
        const char *number;     /* "2024A": the model without its DSO-X / MSO-X prefix */
        uint16_t usb_product;   /* with vendor 0x0957 */
        uint8_t channels;       /* analog */
        double bandwidth;       /* Hz */
        double max_rate;        /* Sa/s, one channel of a pair on */
        uint32_t memory;        /* points, standard memory */
        double min_tscale;      /* s/div */
} dso_model;

/* The model *IDN? names ("DSO-X 2024A"; also "DSOX2024A" or "MSO-X 2024A",
 * any case, spaces and dashes ignored); *ret_mso says whether it is an MSO.
 * NULL if it is not a model of the series. */
const dso_model *dso_model_by_idn(const char *idn_model, bool *ret_mso);
/* The model a USB id stands for, or NULL. Only vendor 0x0957 is known:
 * Keysight's 0x2A8D reuses these product ids for other instruments (a
 * 1000 X enumerates as 0x2A8D:0x1797), so there *IDN? alone decides. */
const dso_model *dso_model_by_usb(uint16_t vendor, uint16_t product);
/* Does *IDN?'s model look like one of the 2000 X series at all ("DSO-X
 * 2..."/"MSO-X 2...", four digits and a letter), known to us or not? */
bool dso_model_in_series(const char *idn_model);
/* The i-th row (NULL past the last). */
const dso_model *dso_model_at(size_t i);

#endif
