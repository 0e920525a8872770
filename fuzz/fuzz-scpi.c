/* SPDX-License-Identifier: MIT */
/* libFuzzer target: program messages into the simulated scope (its parser
 * and every handler), and instrument answers into the host's parsers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scope.h"
#include "scpi/scpi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static sim_scope *s;
        if (!s)
                sim_scope_new(NULL, &s);
        sim_scope_execute(s, (const char *)data, size);
        static uint8_t out[1 << 20];
        sim_scope_output_take(s, out, sizeof(out));

        const uint8_t *block;
        size_t len;
        if (scpi_block_parse(data, size, &block, &len) == TETHER_SUCCESS && block + len > data + size)
                __builtin_trap();
        char *text = malloc(size + 1);
        memcpy(text, data, size);
        text[size] = '\0';
        scpi_preamble p;
        if (scpi_preamble_parse(text, &p) == TETHER_SUCCESS && p.format == SCPI_FORMAT_BYTE && p.points < 4096) {
                double v[4096];
                scpi_samples_to_volts(&p, data, size, true, true, v, p.points < size ? p.points : size);
        }
        free(text);
        return 0;
}
