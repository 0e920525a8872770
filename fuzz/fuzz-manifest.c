/* SPDX-License-Identifier: MIT */
/* libFuzzer target: a bundle's manifest.json, which tetherd reads from any
 * folder it is given. Every input must come back as a manifest that holds
 * the rules, or as a reason; either way with nothing leaked. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/matching.h"
#include "daemon/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char why[MANIFEST_WHY_SIZE];
        manifest *m = NULL;
        tether_ret_t r = manifest_parse((const char *)data, size, "/fuzz/org.fuzz.tether", &m, why, sizeof(why));
        if (r != TETHER_SUCCESS) {
                /* A refusal always says why, on one line. */
                if (m || !why[0] || strchr(why, '\n'))
                        __builtin_trap();
                return 0;
        }
        if (!m->bundle_id || !m->version || !m->library || strchr(m->library + strlen("/fuzz/org.fuzz.tether/"), '/') ||
            m->n_personalities < 1 || m->n_personalities > MANIFEST_MAX_PERSONALITIES)
                __builtin_trap();
        for (size_t i = 0; i < m->n_personalities; i++) {
                const manifest_personality *p = &m->personalities[i];
                if (!p->name || !p->driver || matching_validate(p->matching) != TETHER_SUCCESS ||
                    p->score != matching_probe_score(p->matching))
                        __builtin_trap();
                /* Whatever a manifest says must survive the wire. */
                uint8_t *buf = NULL;
                size_t len = 0;
                tether_value *back = NULL;
                if (tether_value_encode(p->matching, &buf, &len) != TETHER_SUCCESS ||
                    tether_value_decode(buf, len, &back) != TETHER_SUCCESS || !tether_value_equal(back, p->matching))
                        __builtin_trap();
                tether_value_unref(back);
                free(buf);
        }
        for (size_t i = 1; i < m->n_access; i++)
                if (m->access[i - 1].type >= m->access[i].type)
                        __builtin_trap();
        (void)manifest_may_open(m, 1, 65534, 65534);
        manifest_free(m);
        return 0;
}
