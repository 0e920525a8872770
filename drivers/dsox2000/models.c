/* SPDX-License-Identifier: MIT */
#include "dsox2000/models.h"

#include <ctype.h>
#include <string.h>

/* 2 GSa/s half-channel interleaved, 1 GSa/s per channel; 100 kpts standard
 * (1 Mpts is the DSOX2MEMUP licence): the data sheet, for every model. The
 * fastest timebase per bandwidth is not verified. */
static const dso_model models[] = {
        { "2002A", 0x179b, 2, 70e6, 2e9, 100000, 5e-9 },
        { "2004A", 0x179a, 4, 70e6, 2e9, 100000, 5e-9 },
        { "2012A", 0x1799, 2, 100e6, 2e9, 100000, 5e-9 },
        { "2014A", 0x1798, 4, 100e6, 2e9, 100000, 5e-9 },
        { "2022A", 0x1797, 2, 200e6, 2e9, 100000, 2e-9 },
        { "2024A", 0x1796, 4, 200e6, 2e9, 100000, 2e-9 },
};

#define N_MODELS (sizeof(models) / sizeof(models[0]))

/* "DSO-X 2024A" -> "DSOX2024A": letters and digits, upper case. False if
 * it does not fit. */
static bool normalize(const char *in, char *out, size_t cap)
{
        size_t n = 0;
        for (; in && *in; in++) {
                if (*in == ' ' || *in == '-')
                        continue;
                if (!isalnum((unsigned char)*in) || n + 1 >= cap)
                        return false;
                out[n++] = (char)toupper((unsigned char)*in);
        }
        out[n] = '\0';
        return n > 0;
}

/* "DSOX" or "MSOX", then "2" and three more: the number part, or NULL. */
static const char *series_number(const char *norm, bool *ret_mso)
{
        if (strncmp(norm, "DSOX", 4) && strncmp(norm, "MSOX", 4))
                return NULL;
        const char *num = norm + 4;
        if (strlen(num) != 5 || num[0] != '2' || !isdigit((unsigned char)num[1]) || !isdigit((unsigned char)num[2]) ||
            !isdigit((unsigned char)num[3]) || !isalpha((unsigned char)num[4]))
                return NULL;
        if (ret_mso)
                *ret_mso = norm[0] == 'M';
        return num;
}

bool dso_model_in_series(const char *idn_model)
{
        char norm[32];
        return normalize(idn_model, norm, sizeof(norm)) && series_number(norm, NULL);
}

const dso_model *dso_model_by_idn(const char *idn_model, bool *ret_mso)
{
        char norm[32];
        bool mso = false;
        const char *num = normalize(idn_model, norm, sizeof(norm)) ? series_number(norm, &mso) : NULL;
        for (size_t i = 0; num && i < N_MODELS; i++) {
                if (!strcmp(models[i].number, num)) {
                        if (ret_mso)
                                *ret_mso = mso;
                        return &models[i];
                }
        }
        return NULL;
}

const dso_model *dso_model_by_usb(uint16_t vendor, uint16_t product)
{
        for (size_t i = 0; vendor == DSO_VENDOR_AGILENT && i < N_MODELS; i++)
                if (models[i].usb_product == product)
                        return &models[i];
        return NULL;
}

const dso_model *dso_model_at(size_t i)
{
        return i < N_MODELS ? &models[i] : NULL;
}
