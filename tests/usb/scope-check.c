/* SPDX-License-Identifier: MIT */
#include "scope-check.h"

#include <stdarg.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "scope.h"
#include "usbtmc-device.h"

const char scope_wave_cmds[] = ":WAV:SOUR CHAN1;:WAV:FORM BYTE;:WAV:POIN:MODE NORM;:WAV:POIN 62500;:WAV:DATA?\n";

void scope_query(usbtmc *t, const char *q, char *out, size_t cap, size_t *ret_len)
{
        assert_int_equal(usbtmc_write(t, q, strlen(q)), TETHER_SUCCESS);
        assert_int_equal(usbtmc_read(t, out, cap, ret_len), TETHER_SUCCESS);
}

void scope_check_idn(usbtmc *t)
{
        char buf[128] = "";
        size_t n = 0;
        scope_query(t, "*IDN?\n", buf, sizeof(buf) - 1, &n);
        buf[n] = '\0';
        assert_string_equal(buf, "AGILENT TECHNOLOGIES,DSO-X 2002A,MY57235663,02.42.2017032900\n");
}

size_t scope_reference_waveform(const char *cmds, uint8_t *out, size_t cap)
{
        sim_scope *s = NULL;
        sim_usbtmc *d = NULL;
        assert_int_equal(sim_scope_new(&(sim_scope_config){ 0 }, &s), 0);
        assert_int_equal(sim_usbtmc_new(s, &d), 0);
        usbtmc t;
        usbtmc_init(&t, &sim_usbtmc_ops, d);
        size_t n = 0;
        char junk[128];
        /* The device under test answered *IDN? first; so does this one. */
        scope_query(&t, "*IDN?\n", junk, sizeof(junk), &n);
        assert_int_equal(usbtmc_write(&t, cmds, strlen(cmds)), TETHER_SUCCESS);
        assert_int_equal(usbtmc_read(&t, out, cap, &n), TETHER_SUCCESS);
        sim_usbtmc_free(d);
        sim_scope_free(s);
        return n;
}
