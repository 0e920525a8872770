/* SPDX-License-Identifier: MIT */
#ifndef TETHER_SIM_MODELS_H
#define TETHER_SIM_MODELS_H

/*
 * The InfiniiVision 2000 X series as the simulator plays it: each model's
 * name on the command line (--model dsox2024a), what its *IDN? says, its
 * USB product id (vendor 0x0957), its channels and its bandwidth. The
 * facts and where each one comes from are in docs/dsox2000-family.md;
 * the driver keeps a table of its own (drivers/dsox2000/models.h), so a
 * mistake in one is caught by the tests rather than copied into both.
 */

#include <stddef.h>
#include <stdint.h>

#define SIM_MAX_CHANNELS 4u

typedef struct sim_model {
        const char *name;       /* "dsox2024a": tether-sim-scope --model, tetherd --simulate */
        const char *idn_model;  /* "DSO-X 2024A": the second field of *IDN? */
        uint16_t usb_product;   /* with vendor 0x0957 */
        unsigned channels;      /* analog: 2 or 4 */
        unsigned digital;       /* 8 on an MSO, 0 on a DSO */
        double bandwidth;       /* Hz */
        double min_tscale;      /* s/div, the fastest timebase */
} sim_model;

/* The model called name ("dsox2024a", any case), or NULL. */
const sim_model *sim_model_find(const char *name);
/* The DSO-X 2002A, the simulator's model unless told otherwise. */
const sim_model *sim_model_default(void);
/* The i-th model of the series (NULL past the last), for listings and tests. */
const sim_model *sim_model_at(size_t i);

#endif
