/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <unistd.h>

#include "harness.h"

tether_session *harness_session(const harness *h)
{
        tether_session *s = NULL;
        assert_int_equal(tether_session_open(h->sock, &s), TETHER_SUCCESS);
        return s;
}

uint64_t harness_find(tether_session *s, const char *class_name)
{
        tether_value *m = NULL;
        uint64_t id = 0;
        assert_int_equal(tether_service_matching(class_name, &m), TETHER_SUCCESS);
        assert_int_equal(tether_get_matching_service(s, m, &id), TETHER_SUCCESS);
        tether_value_unref(m);
        return id;
}

bool harness_wait(bool (*cond)(void *ctx), void *ctx, int ms)
{
        for (int waited = 0; waited <= ms; waited += 10) {
                if (cond(ctx))
                        return true;
                usleep(10000);
        }
        return false;
}

tether_ret_t harness_set(tether_session *s, uint64_t id, const char *key, tether_value *v)
{
        tether_value *d = NULL;
        assert_int_equal(tether_value_new_dict(&d), TETHER_SUCCESS);
        assert_int_equal(tether_value_dict_set(d, key, v), TETHER_SUCCESS);
        tether_value_unref(v);
        tether_ret_t r = tether_registry_entry_set_properties(s, id, d);
        tether_value_unref(d);
        return r;
}
