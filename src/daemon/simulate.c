/* SPDX-License-Identifier: MIT */
/*
 * Simulated instruments (tetherd --simulate NAME[:SERIAL]): one table says,
 * for each NAME, which simulator program serves it and what its USB
 * device looks like. --simulate publishes a TetherUSBDevice nub with the
 * USB ids and interface a real one would have, so drivers match it as
 * they would the instrument, plus what it is for people and drivers to
 * read (TetherSimulated, TetherSimulator, TetherSimulatedModel). The nub
 * also records its table entry (entry.simulator): that, never a
 * property, is what device.c starts when the driver opens the device, so
 * a driver that publishes a nub with the same properties starts nothing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/daemon.h"

#ifndef TETHER_SIM_SCOPE
#define TETHER_SIM_SCOPE "/usr/local/bin/tether-sim-scope"
#endif
#ifndef TETHER_SIM_DMM
#define TETHER_SIM_DMM "/usr/local/bin/tether-sim-dmm"
#endif

/* A 2000 X scope: tether-sim-scope --model NAME, with the USB product id a
 * real one of that model enumerates with (MSO and DSO of a bandwidth and
 * channel count share one; sources in docs/dsox2000-family.md). */
#define SCOPE(n, p, id)                                                                                        \
        {                                                                                                      \
                .name = n, .program = "tether-sim-scope", .env = "TETHER_SIM_SCOPE", .installed = TETHER_SIM_SCOPE, \
                .vendor = 0x0957 /* Agilent */, .product = id, .protocol = 1, .interface = 0, .product_name = p,    \
                .default_serial = "MY57235663",                                                                \
        }

static const simulator simulators[] = {
        SCOPE("dsox2002a", "DSO-X 2002A", 0x179b), SCOPE("dsox2004a", "DSO-X 2004A", 0x179a),
        SCOPE("dsox2012a", "DSO-X 2012A", 0x1799), SCOPE("dsox2014a", "DSO-X 2014A", 0x1798),
        SCOPE("dsox2022a", "DSO-X 2022A", 0x1797), SCOPE("dsox2024a", "DSO-X 2024A", 0x1796),
        SCOPE("msox2002a", "MSO-X 2002A", 0x179b), SCOPE("msox2004a", "MSO-X 2004A", 0x179a),
        SCOPE("msox2012a", "MSO-X 2012A", 0x1799), SCOPE("msox2014a", "MSO-X 2014A", 0x1798),
        SCOPE("msox2022a", "MSO-X 2022A", 0x1797), SCOPE("msox2024a", "MSO-X 2024A", 0x1796),
        {
                .name = "34461a",
                .program = "tether-sim-dmm",
                .env = "TETHER_SIM_DMM",
                .installed = TETHER_SIM_DMM,
                .vendor = 0x2a8d, /* Keysight */
                .product = 0x1301,
                .protocol = 1,
                .interface = 0,
                .product_name = "34461A",
                .default_serial = "MY59001234",
        },
};

#define N_SIMULATORS (sizeof(simulators) / sizeof(simulators[0]))

const simulator *simulator_find(const char *name)
{
        for (size_t i = 0; name && i < N_SIMULATORS; i++)
                if (!strcasecmp(name, simulators[i].name))
                        return &simulators[i];
        return NULL;
}

const char *simulator_names(const char *indent, size_t width)
{
        static char names[512];
        size_t n = 0, line = 0;
        for (size_t i = 0; i < N_SIMULATORS; i++) {
                size_t len = strlen(simulators[i].name);
                const char *lead = i == 0 ? indent : ", ";
                if (i && line + 2 + len > width) {
                        n += (size_t)snprintf(names + n, sizeof(names) - n, ",\n%s", indent);
                        line = strlen(indent);
                        lead = "";
                }
                n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s", lead, simulators[i].name);
                line += strlen(lead) + len;
                if (n >= sizeof(names))
                        break;
        }
        return names;
}

const char *simulator_binary(const simulator *sim, char *buf, size_t size)
{
        const char *own = getenv(sim->env);
        if (own && *own)
                return own;
        const char *dir = getenv(TETHERD_SIM_DIR_ENV);
        if (dir && *dir) {
                int n = snprintf(buf, size, "%s/%s", dir, sim->program);
                if (n > 0 && (size_t)n < size)
                        return buf;
        }
        return sim->installed;
}

/* A serial a simulator can give in *IDN? and its descriptors: printable
 * ASCII with no space, comma or semicolon (they would split *IDN?'s
 * answer), 1 to TETHERD_SIM_SERIAL_MAX characters. */
static bool serial_ok(const char *s)
{
        size_t n = strlen(s);
        if (n == 0 || n > TETHERD_SIM_SERIAL_MAX)
                return false;
        for (; *s; s++)
                if (*s <= ' ' || *s > '~' || *s == ',' || *s == ';')
                        return false;
        return true;
}

tether_ret_t simulate_publish(entry *usb, const char *spec, unsigned index)
{
        char name[32];
        const char *colon = strchr(spec, ':');
        size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
        bool too_long = len >= sizeof(name);
        if (too_long)
                len = sizeof(name) - 1;
        memcpy(name, spec, len);
        name[len] = '\0';
        const simulator *sim = too_long ? NULL : simulator_find(name);
        if (!sim) {
                log_err("--simulate: unknown instrument '%s' (known: %s)", name, simulator_names("", SIZE_MAX));
                return TETHER_ERR_BAD_ARGUMENT;
        }
        const char *serial = colon ? colon + 1 : sim->default_serial;
        if (!serial_ok(serial)) {
                log_err("--simulate %s: the serial must be 1 to %d printable characters, with no space, comma or "
                        "semicolon",
                        sim->name, TETHERD_SIM_SERIAL_MAX);
                return TETHER_ERR_BAD_ARGUMENT;
        }
        tether_value *p = NULL;
        tether_ret_t r = usb_identity(sim->vendor, sim->product, sim->protocol, sim->interface, serial, &p);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(p, "USB Product Name", sim->product_name);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_bool(p, "TetherSimulated", true);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(p, "TetherSimulator", sim->program);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(p, "TetherSimulatedModel", sim->name);
        char loc[16];
        snprintf(loc, sizeof(loc), "sim%u", index);
        if (r == TETHER_SUCCESS)
                r = nub_publish_simulated(usb, sim->product_name, loc, p, sim);
        tether_value_unref(p);
        return r;
}
