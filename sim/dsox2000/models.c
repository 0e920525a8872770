/* SPDX-License-Identifier: MIT */
#include "models.h"

#include <strings.h>

/*
 * Product ids as real units enumerate (docs/dsox2000-family.md has the
 * evidence for each): one id per bandwidth and channel count, shared by
 * the DSO and the MSO of that pair, since MSO is a licence on the same
 * hardware. The fastest timebase per bandwidth is not verified.
 */
static const sim_model models[] = {
        { "dsox2002a", "DSO-X 2002A", 0x179b, 2, 0, 70e6, 5e-9 },
        { "dsox2004a", "DSO-X 2004A", 0x179a, 4, 0, 70e6, 5e-9 },
        { "dsox2012a", "DSO-X 2012A", 0x1799, 2, 0, 100e6, 5e-9 },
        { "dsox2014a", "DSO-X 2014A", 0x1798, 4, 0, 100e6, 5e-9 },
        { "dsox2022a", "DSO-X 2022A", 0x1797, 2, 0, 200e6, 2e-9 },
        { "dsox2024a", "DSO-X 2024A", 0x1796, 4, 0, 200e6, 2e-9 },
        { "msox2002a", "MSO-X 2002A", 0x179b, 2, 8, 70e6, 5e-9 },
        { "msox2004a", "MSO-X 2004A", 0x179a, 4, 8, 70e6, 5e-9 },
        { "msox2012a", "MSO-X 2012A", 0x1799, 2, 8, 100e6, 5e-9 },
        { "msox2014a", "MSO-X 2014A", 0x1798, 4, 8, 100e6, 5e-9 },
        { "msox2022a", "MSO-X 2022A", 0x1797, 2, 8, 200e6, 2e-9 },
        { "msox2024a", "MSO-X 2024A", 0x1796, 4, 8, 200e6, 2e-9 },
};

const sim_model *sim_model_find(const char *name)
{
        for (size_t i = 0; name && i < sizeof(models) / sizeof(models[0]); i++)
                if (!strcasecmp(models[i].name, name))
                        return &models[i];
        return NULL;
}

const sim_model *sim_model_default(void)
{
        return &models[0];
}

const sim_model *sim_model_at(size_t i)
{
        return i < sizeof(models) / sizeof(models[0]) ? &models[i] : NULL;
}
