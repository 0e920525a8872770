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
#define DSO_PROP_CHANNELS      "Channels"         /* analog: 2 or 4, from the model */
#define DSO_PROP_DIGITAL       "DigitalChannels"  /* 8 on an MSO, 0 on a DSO */
#define DSO_PROP_OPTIONS       "Options"          /* *OPT?'s answer, as the scope gives it */
#define DSO_PROP_IDENTIFIED    "IdentifiedBy"     /* how the model was told: "*IDN? and USB id", "*IDN?",
                                                   * "USB id", or "*IDN? (the USB id says <model>)" */
#define DSO_PROP_BANDWIDTH     "Bandwidth"        /* Hz */
#define DSO_PROP_MAX_RATE      "MaxSampleRate"    /* Sa/s */
#define DSO_PROP_MEMORY        "MemoryDepth"      /* points */
/* Settable (validated against the instrument's ranges, then sent) */
#define DSO_PROP_TIMEBASE      "TimebaseScale"    /* double, s/div, 5e-9 (2e-9 at 200 MHz) ... 50 */
/* Channel<n>...: n from 1 to Channels; Channel3... and Channel4... exist on
 * 4-channel models only */
#define DSO_PROP_CH_SCALE      "Channel%dScale"   /* double, V/div, 1e-3 ... 5 */
#define DSO_PROP_CH_OFFSET     "Channel%dOffset"  /* double, V: +-2 up to 200 mV/div, else +-50 */
#define DSO_PROP_CH_COUPLING   "Channel%dCoupling"/* "DC" or "AC" */
#define DSO_PROP_TRIG_LEVEL    "TriggerLevel"     /* double, V */
#define DSO_PROP_TRIG_SOURCE   "TriggerSource"    /* "CHAN1" ... "CHAN<Channels>" */
#define DSO_PROP_TIMEOUT       "TimeoutMs"        /* uint, 100 ... 600000: how long an answer may take
                                                   * (a synchronous call: 8000 at most); acquisitions
                                                   * add their sweep time to it */

enum dso_selector {
        DSO_RUN = 0,
        DSO_STOP,
        DSO_SINGLE,
        DSO_AUTOSCALE,
        DSO_DIGITIZE,        /* channel mask (bit 0: CH1), switched on first; may be async:
                              * completes with (mask).
                              * Sync: a sweep past 8 s (x1.2) is Unsupported; async: any length,
                              * other calls Busy meanwhile, more async digitizes queued */
        /* A channel argument (here and below) past Channels: BadArgument. */
        DSO_GET_PREAMBLE,    /* channel -> struct dso_preamble */
        DSO_GET_WAVEFORM,    /* channel, points -> the raw byte codes (variable) */
        DSO_GET_VOLTS,       /* channel, points -> float volts (variable) */
        DSO_MEASURE,         /* channel, enum dso_measurement -> the value's IEEE bits; NotReady when
                              * the scope has no valid result (9.9E+37: e.g. the trace is clipped) */
        DSO_SCPI,            /* command text -> the answer text (empty for a command); a query the scope
                              * does not answer (an unknown header: it only queues -113) fails with
                              * Timeout after TimeoutMs, the link cleared, and the next call works */
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
