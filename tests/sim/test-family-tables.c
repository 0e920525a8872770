/* SPDX-License-Identifier: MIT */
/*
 * The two tables of the 2000 X series, the simulator's (what each model
 * is) and the driver's (what it knows of each), against each other and
 * against the data sheet as written here; and the driver's lookups: by
 * *IDN?'s model however it is spelt, by USB id, and what is not a model
 * of the series.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "dsox2000/models.h"
#include "models.h"

static void every_simulated_model_is_known_to_the_driver(void **state)
{
        size_t n = 0;
        for (const sim_model *m; (m = sim_model_at(n)); n++) {
                bool mso = false;
                const dso_model *by_idn = dso_model_by_idn(m->idn_model, &mso);
                assert_non_null(by_idn);
                assert_true(mso == (m->digital != 0));
                assert_int_equal(by_idn->channels, m->channels);
                assert_true(by_idn->bandwidth == m->bandwidth);
                assert_true(by_idn->min_tscale == m->min_tscale);
                /* The USB id names the same row. */
                assert_ptr_equal(dso_model_by_usb(DSO_VENDOR_AGILENT, m->usb_product), by_idn);
                assert_true(dso_model_in_series(m->idn_model));
        }
        assert_int_equal(n, 12); /* DSO-X and MSO-X 2002A, 2004A, 2012A, 2014A, 2022A, 2024A */
        /* Six rows for the driver: one per channel count and bandwidth. */
        size_t rows = 0;
        while (dso_model_at(rows))
                rows++;
        assert_int_equal(rows, 6);
}

static void data_sheet(void **state)
{
        static const struct {
                const char *idn;
                uint16_t product;
                unsigned channels;
                double bandwidth;
        } want[] = {
                { "DSO-X 2002A", 0x179b, 2, 70e6 },  { "DSO-X 2004A", 0x179a, 4, 70e6 },
                { "DSO-X 2012A", 0x1799, 2, 100e6 }, { "DSO-X 2014A", 0x1798, 4, 100e6 },
                { "DSO-X 2022A", 0x1797, 2, 200e6 }, { "DSO-X 2024A", 0x1796, 4, 200e6 },
        };
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                const dso_model *m = dso_model_by_idn(want[i].idn, NULL);
                assert_non_null(m);
                assert_int_equal(m->usb_product, want[i].product);
                assert_int_equal(m->channels, want[i].channels);
                assert_true(m->bandwidth == want[i].bandwidth);
                assert_true(m->max_rate == 2e9);
                assert_int_equal(m->memory, 100000);
        }
}

static void idn_spellings(void **state)
{
        bool mso = true;
        const dso_model *m = dso_model_by_idn("DSO-X 2024A", &mso);
        assert_non_null(m);
        assert_false(mso);
        assert_ptr_equal(dso_model_by_idn("DSOX2024A", NULL), m);
        assert_ptr_equal(dso_model_by_idn("dso-x 2024a", NULL), m);
        assert_ptr_equal(dso_model_by_idn("MSO-X 2024A", &mso), m);
        assert_true(mso);
        /* Of the series by its look, but a model we do not have. */
        assert_null(dso_model_by_idn("DSO-X 2099A", NULL));
        assert_true(dso_model_in_series("DSO-X 2099A"));
        /* Not of the series. */
        const char *others[] = { "DSO-X 3024A", "DSOX1204G", "DSO-X 2024", "DSO-X 20245A", "", "DSO-X 2024A,",
                                 "TDS 2024B", "MSO-X 2024A\n" };
        for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
                assert_null(dso_model_by_idn(others[i], NULL));
                assert_false(dso_model_in_series(others[i]));
        }
        assert_null(dso_model_by_idn(NULL, NULL));
}

static void usb_ids(void **state)
{
        assert_non_null(dso_model_by_usb(0x0957, 0x1796));
        assert_int_equal(dso_model_by_usb(0x0957, 0x1796)->channels, 4);
        assert_null(dso_model_by_usb(0x0957, 0x17a8)); /* an MSO-X 3014A */
        assert_null(dso_model_by_usb(0x0957, 0x1795));
        assert_null(dso_model_by_usb(0x0957, 0x179c));
        /* Keysight's vendor id reuses the numbers (0x2A8D:0x1797 is a
         * 1000 X): there the USB id says nothing. */
        assert_null(dso_model_by_usb(0x2a8d, 0x1797));
        assert_null(dso_model_by_usb(0x1234, 0x1796));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(every_simulated_model_is_known_to_the_driver),
                cmocka_unit_test(data_sheet),
                cmocka_unit_test(idn_spellings),
                cmocka_unit_test(usb_ids),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
