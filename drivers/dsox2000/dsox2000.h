/* SPDX-License-Identifier: MIT */
#ifndef TETHER_DSOX2000_H
#define TETHER_DSOX2000_H

/*
 * The DSO-X 2000 driver's interface, shared with applications (the macOS
 * "UserClientShared.h"): registry class, properties, selectors, structs.
 */

#include <stdint.h>

#define DSO_CLASS "DSOX2000"

/* Read-only identity properties */
#define DSO_PROP_VENDOR        "Vendor"
#define DSO_PROP_MODEL         "Model"
#define DSO_PROP_SERIAL        "SerialNumber"
#define DSO_PROP_FIRMWARE      "Firmware"
#define DSO_PROP_CHANNELS      "Channels"
#define DSO_PROP_BANDWIDTH     "Bandwidth"        /* Hz */
#define DSO_PROP_MAX_RATE      "MaxSampleRate"    /* Sa/s */
#define DSO_PROP_MEMORY        "MemoryDepth"      /* points */
/* Settable (validated against the instrument's ranges, then sent) */
#define DSO_PROP_TIMEBASE      "TimebaseScale"    /* double, s/div, 5e-9 ... 50 */
#define DSO_PROP_CH_SCALE      "Channel%dScale"   /* double, V/div, 1e-3 ... 5 */
#define DSO_PROP_CH_OFFSET     "Channel%dOffset"  /* double, V: +-2 up to 200 mV/div, else +-50 */
#define DSO_PROP_CH_COUPLING   "Channel%dCoupling"/* "DC" or "AC" */
#define DSO_PROP_TRIG_LEVEL    "TriggerLevel"     /* double, V */
#define DSO_PROP_TRIG_SOURCE   "TriggerSource"    /* "CHAN1" or "CHAN2" */
#define DSO_PROP_TIMEOUT       "TimeoutMs"        /* uint, 100 ... 600000: how long an answer may take;
                                                   * acquisitions add their sweep time to it */

enum dso_selector {
        DSO_RUN = 0,
        DSO_STOP,
        DSO_SINGLE,
        DSO_AUTOSCALE,
        DSO_DIGITIZE,        /* channel mask (bit 0: CH1); may be async: completes with (mask) */
        DSO_GET_PREAMBLE,    /* channel -> struct dso_preamble */
        DSO_GET_WAVEFORM,    /* channel, points -> the raw byte codes (variable) */
        DSO_GET_VOLTS,       /* channel, points -> float volts (variable) */
        DSO_MEASURE,         /* channel, enum dso_measurement -> the value's IEEE bits */
        DSO_SCPI,            /* command text -> the answer text (empty for a command) */
        DSO_LOCK,            /* this connection only, until UNLOCK, close or death */
        DSO_UNLOCK,
        DSO_SCREENSHOT,      /* -> the screen as a PNG (variable; 800 x 480) */
        DSO_SELECTOR_COUNT
};

enum dso_measurement {
        DSO_MEAS_FREQUENCY = 0, DSO_MEAS_PERIOD, DSO_MEAS_VPP, DSO_MEAS_VMAX, DSO_MEAS_VMIN,
        DSO_MEAS_VAVERAGE, DSO_MEAS_VRMS, DSO_MEAS_COUNT
};

/* :WAVeform:PREamble? as a struct (fixed size: the method's output check). */
typedef struct dso_preamble {
        int32_t format, type;
        uint32_t points, count;
        double x_increment, x_origin, x_reference;
        double y_increment, y_origin, y_reference;
} dso_preamble;

#define DSO_MAX_POINTS 62500u

#endif
