/* SPDX-License-Identifier: MIT */
/* Every dispatch rule, both KPIs: the code returned, and that the driver's
 * function did (or did not) run. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "core/dispatch.h"

#define V TETHER_VARIABLE_SIZE

static int runs;             /* how many times any test function ran */
static void *seen_target;
static void *slots[6];       /* what a legacy function received */

static int uc_obj, provider_obj;
static const dispatch_target as_user = { .user_client = &uc_obj, .provider = &provider_obj };
static const dispatch_target as_admin = { .user_client = &uc_obj, .provider = &provider_obj, .caller_is_admin = true };
static const dispatch_target provider_gone = { .user_client = &uc_obj, .provider = NULL };

static tether_ret_t fn_ok(void *target, void *ref, tether_method_args *a)
{
        runs++;
        seen_target = target;
        for (uint32_t i = 0; i < a->scalar_output_count; i++)
                a->scalar_output[i] = 100 + i;
        return TETHER_SUCCESS;
}

static tether_ret_t fn_overclaims(void *target, void *ref, tether_method_args *a)
{
        runs++;
        a->struct_output_size += 1; /* a driver bug: more than the room */
        return TETHER_SUCCESS;
}

/* new KPI table */
enum { N_ADD, N_VAR_STRUCT, N_ADMIN, N_ASYNC, N_NULL, N_PROVIDER, N_OVERCLAIM, N_COUNT };
static const tether_method_dispatch new_table[N_COUNT] = {
        [N_ADD] = { fn_ok, 2, 0, 1, 0, 0 },
        [N_VAR_STRUCT] = { fn_ok, 0, V, 0, 16, 0 },
        [N_ADMIN] = { fn_ok, 0, 0, 0, 0, TETHER_METHOD_ADMIN },
        [N_ASYNC] = { fn_ok, 0, 0, 0, 0, TETHER_METHOD_ALLOW_ASYNC },
        [N_NULL] = { NULL, 0, 0, 0, 0, 0 },
        [N_PROVIDER] = { fn_ok, 0, 0, 1, 0, TETHER_METHOD_TARGET_PROVIDER },
        [N_OVERCLAIM] = { fn_overclaims, 0, 0, 0, V, 0 },
};
static const tether_user_client_ops new_ops = { .methods = new_table, .method_count = N_COUNT };

static uint64_t scin[TETHER_MAX_SCALARS], sout[TETHER_MAX_SCALARS];
static uint8_t bin[64], bout[64];
static const tether_async_ref aref;

static tether_method_args args(uint32_t sel, uint32_t nin, uint32_t struct_in, uint32_t nout, uint32_t struct_out)
{
        return (tether_method_args){ .selector = sel, .scalar_input = scin, .scalar_input_count = nin,
                                     .struct_input = bin, .struct_input_size = struct_in,
                                     .scalar_output = sout, .scalar_output_count = nout,
                                     .struct_output = bout, .struct_output_size = struct_out };
}

static void setup_each(void)
{
        runs = 0;
        seen_target = NULL;
        memset(slots, 0, sizeof(slots));
}

static void new_kpi_good_call(void **state)
{
        setup_each();
        tether_method_args a = args(N_ADD, 2, 0, 1, 0);
        assert_int_equal(dispatch_call(&new_ops, &as_user, &a), TETHER_SUCCESS);
        assert_int_equal(runs, 1);
        assert_ptr_equal(seen_target, &uc_obj);
        assert_int_equal(a.scalar_output_count, 1);
        assert_int_equal(sout[0], 100);
}

static void selector_out_of_range(void **state)
{
        setup_each();
        tether_method_args a = args(N_COUNT, 2, 0, 1, 0);
        assert_int_equal(dispatch_call(&new_ops, &as_user, &a), TETHER_ERR_BAD_ARGUMENT);
        a = args(0xffffffffu, 2, 0, 1, 0);
        assert_int_equal(dispatch_call(&new_ops, &as_user, &a), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(runs, 0);
        assert_int_equal(a.scalar_output_count, 0);
}

static void admin_only(void **state)
{
        setup_each();
        tether_method_args a = args(N_ADMIN, 0, 0, 0, 0);
        assert_int_equal(dispatch_call(&new_ops, &as_user, &a), TETHER_ERR_NOT_PRIVILEGED);
        assert_int_equal(runs, 0);
        a = args(N_ADMIN, 0, 0, 0, 0);
        assert_int_equal(dispatch_call(&new_ops, &as_admin, &a), TETHER_SUCCESS);
        assert_int_equal(runs, 1);
}

static void async_needs_allow_async(void **state)
{
        setup_each();
        tether_method_args a = args(N_ADD, 2, 0, 1, 0);
        a.async_ref = &aref;
        assert_int_equal(dispatch_call(&new_ops, &as_user, &a), TETHER_ERR_UNSUPPORTED);
        assert_int_equal(runs, 0);
        a = args(N_ASYNC, 0, 0, 0, 0);
        a.async_ref = &aref;
        assert_int_equal(dispatch_call(&new_ops, &as_user, &a), TETHER_SUCCESS);
        assert_int_equal(runs, 1);
}

static void each_count_check(void **state)
{
        setup_each();
        struct {
                uint32_t nin, sin_, nout, sout_;
        } bad[] = {
                { 1, 0, 1, 0 }, { 3, 0, 1, 0 },   /* scalar inputs */
                { 2, 1, 1, 0 },                   /* struct input where none */
                { 2, 0, 0, 0 }, { 2, 0, 2, 0 },   /* scalar outputs */
                { 2, 0, 1, 8 },                   /* struct output where none */
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                tether_method_args a = args(N_ADD, bad[i].nin, bad[i].sin_, bad[i].nout, bad[i].sout_);
                assert_int_equal(dispatch_call(&new_ops, &as_user, &a), TETHER_ERR_BAD_ARGUMENT);
                assert_int_equal(a.scalar_output_count, 0);
                assert_int_equal(a.struct_output_size, 0);
        }
        assert_int_equal(runs, 0);
}

static void variable_size_is_per_check(void **state)
{
        setup_each();
        /* struct in is VARIABLE: any size; struct out is exactly 16. */
        for (uint32_t n = 0; n <= 64; n += 21) {
                tether_method_args a = args(N_VAR_STRUCT, 0, n, 0, 16);
                assert_int_equal(dispatch_call(&new_ops, &as_user, &a), TETHER_SUCCESS);
        }
        assert_int_equal(runs, 4);
        tether_method_args a = args(N_VAR_STRUCT, 0, 10, 0, 15);
        assert_int_equal(dispatch_call(&new_ops, &as_user, &a), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(runs, 4);
}

static void null_function_is_unsupported(void **state)
{
        setup_each();
        tether_method_args a = args(N_NULL, 0, 0, 0, 0);
        assert_int_equal(dispatch_call(&new_ops, &as_user, &a), TETHER_ERR_UNSUPPORTED);
        assert_int_equal(runs, 0);
}

static void provider_target(void **state)
{
        setup_each();
        tether_method_args a = args(N_PROVIDER, 0, 0, 1, 0);
        assert_int_equal(dispatch_call(&new_ops, &as_user, &a), TETHER_SUCCESS);
        assert_ptr_equal(seen_target, &provider_obj);
        a = args(N_PROVIDER, 0, 0, 1, 0);
        assert_int_equal(dispatch_call(&new_ops, &provider_gone, &a), TETHER_ERR_NOT_ATTACHED);
        assert_int_equal(runs, 1);
}

static void output_over_capacity_is_refused(void **state)
{
        setup_each();
        tether_method_args a = args(N_OVERCLAIM, 0, 0, 0, 8);
        assert_int_equal(dispatch_call(&new_ops, &as_user, &a), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(runs, 1);
        assert_int_equal(a.struct_output_size, 0);
}

static void scalar_counts_over_sixteen(void **state)
{
        static const tether_method_dispatch var[] = { { fn_ok, V, 0, V, 0, 0 } };
        static const tether_user_client_ops ops = { .methods = var, .method_count = 1 };
        setup_each();
        tether_method_args a = args(0, 17, 0, 0, 0);
        assert_int_equal(dispatch_call(&ops, &as_user, &a), TETHER_ERR_BAD_ARGUMENT);
        a = args(0, 16, 0, 17, 0);
        assert_int_equal(dispatch_call(&ops, &as_user, &a), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(runs, 0);
        a = args(0, 16, 0, 16, 0);
        assert_int_equal(dispatch_call(&ops, &as_user, &a), TETHER_SUCCESS);
}

/* ---- legacy KPI ---- */

static tether_ret_t l_record(void *target, void *p1, void *p2, void *p3, void *p4, void *p5, void *p6)
{
        runs++;
        seen_target = target;
        void *p[6] = { p1, p2, p3, p4, p5, p6 };
        memcpy(slots, p, sizeof(slots));
        return TETHER_SUCCESS;
}

static tether_ret_t l_add(void *target, void *p1, void *p2, void *p3, void *p4, void *p5, void *p6)
{
        runs++;
        *(uint32_t *)p3 = (uint32_t)(uintptr_t)p1 + (uint32_t)(uintptr_t)p2;
        *(uint32_t *)p4 = 0xffffffffu;
        return TETHER_SUCCESS;
}

/* The article's MyMethod: two 32-bit scalars in, variable struct out. */
static tether_ret_t l_my_method(void *target, void *p1, void *p2, void *p3, void *p4, void *p5, void *p6)
{
        runs++;
        uint32_t seed = (uint32_t)(uintptr_t)p1, want = (uint32_t)(uintptr_t)p2;
        uint8_t *out = p3;
        uint32_t *size = p4;
        if (want > *size)
                return TETHER_ERR_NO_SPACE;
        for (uint32_t i = 0; i < want; i++)
                out[i] = (uint8_t)(seed + i);
        *size = want;
        return TETHER_SUCCESS;
}

static tether_ret_t l_overclaim(void *target, void *p1, void *p2, void *p3, void *p4, void *p5, void *p6)
{
        runs++;
        *(uint32_t *)p2 += 1;
        return TETHER_SUCCESS;
}

enum { L_ADD, L_MY_METHOD, L_SS, L_IO, L_OUT_ONLY, L_IN_ONLY, L_SCALAR_STRUCT_IN, L_PROVIDER, L_NULL, L_OVERCLAIM, L_COUNT };
static const tether_external_method legacy_table[L_COUNT] = {
        [L_ADD] = { TETHER_TARGET_USER_CLIENT, l_add, TETHER_UC_SCALAR_I_SCALAR_O, 2, 2 },
        [L_MY_METHOD] = { TETHER_TARGET_USER_CLIENT, l_my_method, TETHER_UC_SCALAR_I_STRUCT_O, 2, V },
        [L_SS] = { TETHER_TARGET_USER_CLIENT, l_record, TETHER_UC_SCALAR_I_SCALAR_O, 3, 3 },
        [L_IO] = { TETHER_TARGET_USER_CLIENT, l_record, TETHER_UC_STRUCT_I_STRUCT_O, V, V },
        [L_OUT_ONLY] = { TETHER_TARGET_USER_CLIENT, l_record, TETHER_UC_STRUCT_I_STRUCT_O, 0, 8 },
        [L_IN_ONLY] = { TETHER_TARGET_USER_CLIENT, l_record, TETHER_UC_STRUCT_I_STRUCT_O, 8, 0 },
        [L_SCALAR_STRUCT_IN] = { TETHER_TARGET_USER_CLIENT, l_record, TETHER_UC_SCALAR_I_STRUCT_I, 2, V },
        [L_PROVIDER] = { TETHER_TARGET_PROVIDER, l_record, TETHER_UC_SCALAR_I_SCALAR_O, 0, 0 },
        [L_NULL] = { TETHER_TARGET_USER_CLIENT, NULL, TETHER_UC_SCALAR_I_SCALAR_O, 0, 0 },
        [L_OVERCLAIM] = { TETHER_TARGET_USER_CLIENT, l_overclaim, TETHER_UC_STRUCT_I_STRUCT_O, 0, V },
};
static const tether_user_client_ops legacy_ops = { .legacy_methods = legacy_table, .legacy_method_count = L_COUNT };

static void legacy_scalars_are_32_bits(void **state)
{
        setup_each();
        scin[0] = 0x100000005ull;
        scin[1] = 2;
        tether_method_args a = args(L_ADD, 2, 0, 2, 0);
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_SUCCESS);
        assert_int_equal(sout[0], 7);           /* the top half was dropped */
        assert_int_equal(sout[1], 0xffffffffu); /* widened back, not sign-extended */
        assert_int_equal(a.scalar_output_count, 2);
}

static void legacy_article_method(void **state)
{
        setup_each();
        scin[0] = 0x40;
        scin[1] = 5;
        tether_method_args a = args(L_MY_METHOD, 2, 0, 0, 64);
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_SUCCESS);
        assert_int_equal(a.struct_output_size, 5);
        assert_int_equal(bout[0], 0x40);
        assert_int_equal(bout[4], 0x44);
        /* Variable output: any capacity passes the check. */
        a = args(L_MY_METHOD, 2, 0, 0, 3);
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_ERR_NO_SPACE);
        /* count0 is exact. */
        a = args(L_MY_METHOD, 3, 0, 0, 64);
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(runs, 2);
}

static void legacy_marshalling_order(void **state)
{
        setup_each();
        scin[0] = 11;
        scin[1] = 22;
        scin[2] = 33;
        /* scalar-in/scalar-out: each input, then a pointer per output. */
        tether_method_args a = args(L_SS, 3, 0, 3, 0);
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_SUCCESS);
        assert_ptr_equal(slots[0], (void *)(uintptr_t)11);
        assert_ptr_equal(slots[2], (void *)(uintptr_t)33);
        assert_non_null(slots[3]);
        assert_non_null(slots[5]);

        /* struct-in/struct-out, both: input, output, input size, &output size. */
        a = args(L_IO, 0, 10, 0, 20);
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_SUCCESS);
        assert_ptr_equal(slots[0], bin);
        assert_ptr_equal(slots[1], bout);
        assert_ptr_equal(slots[2], (void *)(uintptr_t)10);
        assert_int_equal(*(uint32_t *)slots[3], 20);
        assert_null(slots[4]);

        /* output only: output, &size. */
        a = args(L_OUT_ONLY, 0, 0, 0, 8);
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_SUCCESS);
        assert_ptr_equal(slots[0], bout);
        assert_int_equal(*(uint32_t *)slots[1], 8);
        assert_null(slots[2]);

        /* input only: input, size. */
        a = args(L_IN_ONLY, 0, 8, 0, 0);
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_SUCCESS);
        assert_ptr_equal(slots[0], bin);
        assert_ptr_equal(slots[1], (void *)(uintptr_t)8);

        /* scalar-in/struct-in: each input, the struct, its size. */
        a = args(L_SCALAR_STRUCT_IN, 2, 30, 0, 0);
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_SUCCESS);
        assert_ptr_equal(slots[0], (void *)(uintptr_t)11);
        assert_ptr_equal(slots[1], (void *)(uintptr_t)22);
        assert_ptr_equal(slots[2], bin);
        assert_ptr_equal(slots[3], (void *)(uintptr_t)30);
        assert_int_equal(runs, 5);
}

static void legacy_checks_and_targets(void **state)
{
        setup_each();
        tether_method_args a = args(L_COUNT, 0, 0, 0, 0);
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_ERR_BAD_ARGUMENT);
        a = args(L_IN_ONLY, 0, 7, 0, 0); /* exact struct size */
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_ERR_BAD_ARGUMENT);
        a = args(L_SS, 3, 4, 3, 0); /* a struct to a scalar method */
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_ERR_BAD_ARGUMENT);
        a = args(L_NULL, 0, 0, 0, 0);
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_ERR_UNSUPPORTED);
        a = args(L_PROVIDER, 0, 0, 0, 0);
        a.async_ref = &aref; /* legacy methods are never async */
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_ERR_UNSUPPORTED);
        a = args(L_PROVIDER, 0, 0, 0, 0);
        assert_int_equal(dispatch_call(&legacy_ops, &provider_gone, &a), TETHER_ERR_NOT_ATTACHED);
        assert_int_equal(runs, 0);
        a = args(L_PROVIDER, 0, 0, 0, 0);
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_SUCCESS);
        assert_ptr_equal(seen_target, &provider_obj);
        a = args(L_OVERCLAIM, 0, 0, 0, 8);
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(a.struct_output_size, 0);
}

/* The same method in the new KPI gets the same answer. */
static tether_ret_t n_my_method(void *target, void *ref, tether_method_args *a)
{
        runs++;
        if (a->scalar_input[1] > a->struct_output_size)
                return TETHER_ERR_NO_SPACE;
        for (uint64_t i = 0; i < a->scalar_input[1]; i++)
                ((uint8_t *)a->struct_output)[i] = (uint8_t)(a->scalar_input[0] + i);
        a->struct_output_size = (uint32_t)a->scalar_input[1];
        return TETHER_SUCCESS;
}

static void article_method_new_kpi(void **state)
{
        static const tether_method_dispatch t[] = { { n_my_method, 2, 0, 0, V, 0 } };
        static const tether_user_client_ops ops = { .methods = t, .method_count = 1 };
        setup_each();
        scin[0] = 0x40;
        scin[1] = 5;
        tether_method_args a = args(0, 2, 0, 0, 64);
        assert_int_equal(dispatch_call(&ops, &as_user, &a), TETHER_SUCCESS);
        assert_int_equal(a.struct_output_size, 5);
        assert_int_equal(bout[4], 0x44);
}

static void validate_tables(void **state)
{
        assert_int_equal(dispatch_validate_ops(&new_ops), TETHER_SUCCESS);
        assert_int_equal(dispatch_validate_ops(&legacy_ops), TETHER_SUCCESS);
        tether_user_client_ops none = { 0 };
        assert_int_equal(dispatch_validate_ops(&none), TETHER_SUCCESS);
        assert_int_equal(dispatch_validate_ops(NULL), TETHER_ERR_BAD_ARGUMENT);

        tether_user_client_ops both = { .methods = new_table, .method_count = N_COUNT, .legacy_methods = legacy_table,
                                        .legacy_method_count = L_COUNT };
        assert_int_equal(dispatch_validate_ops(&both), TETHER_ERR_BAD_ARGUMENT);

        tether_external_method bad[1];
        tether_user_client_ops one = { .legacy_methods = bad, .legacy_method_count = 1 };
        bad[0] = (tether_external_method){ TETHER_TARGET_USER_CLIENT, l_record, 1 /* unknown type */, 0, 0 };
        assert_int_equal(dispatch_validate_ops(&one), TETHER_ERR_BAD_ARGUMENT);
        bad[0] = (tether_external_method){ 7 /* unknown target */, l_record, TETHER_UC_SCALAR_I_SCALAR_O, 0, 0 };
        assert_int_equal(dispatch_validate_ops(&one), TETHER_ERR_BAD_ARGUMENT);
        bad[0] = (tether_external_method){ TETHER_TARGET_USER_CLIENT, l_record, TETHER_UC_SCALAR_I_SCALAR_O, 4, 3 };
        assert_int_equal(dispatch_validate_ops(&one), TETHER_ERR_BAD_ARGUMENT); /* 7 slots */
        bad[0] = (tether_external_method){ TETHER_TARGET_USER_CLIENT, l_record, TETHER_UC_SCALAR_I_SCALAR_O, 3, 3 };
        assert_int_equal(dispatch_validate_ops(&one), TETHER_SUCCESS);
        bad[0] = (tether_external_method){ TETHER_TARGET_USER_CLIENT, l_record, TETHER_UC_SCALAR_I_STRUCT_O, 5, V };
        assert_int_equal(dispatch_validate_ops(&one), TETHER_ERR_BAD_ARGUMENT);
        bad[0] = (tether_external_method){ TETHER_TARGET_USER_CLIENT, l_record, TETHER_UC_SCALAR_I_STRUCT_I, V, 4 };
        assert_int_equal(dispatch_validate_ops(&one), TETHER_ERR_BAD_ARGUMENT);

        tether_method_dispatch nbad[1] = { { fn_ok, 17, 0, 0, 0, 0 } };
        tether_user_client_ops n1 = { .methods = nbad, .method_count = 1 };
        assert_int_equal(dispatch_validate_ops(&n1), TETHER_ERR_BAD_ARGUMENT);
        nbad[0] = (tether_method_dispatch){ fn_ok, 0, 0, 17, 0, 0 };
        assert_int_equal(dispatch_validate_ops(&n1), TETHER_ERR_BAD_ARGUMENT);
        nbad[0] = (tether_method_dispatch){ fn_ok, V, V, 16, V, 0 };
        assert_int_equal(dispatch_validate_ops(&n1), TETHER_SUCCESS);
        tether_user_client_ops dangling = { .method_count = 3 };
        assert_int_equal(dispatch_validate_ops(&dangling), TETHER_ERR_BAD_ARGUMENT);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(new_kpi_good_call),
                cmocka_unit_test(selector_out_of_range),
                cmocka_unit_test(admin_only),
                cmocka_unit_test(async_needs_allow_async),
                cmocka_unit_test(each_count_check),
                cmocka_unit_test(variable_size_is_per_check),
                cmocka_unit_test(null_function_is_unsupported),
                cmocka_unit_test(provider_target),
                cmocka_unit_test(output_over_capacity_is_refused),
                cmocka_unit_test(scalar_counts_over_sixteen),
                cmocka_unit_test(legacy_scalars_are_32_bits),
                cmocka_unit_test(legacy_article_method),
                cmocka_unit_test(legacy_marshalling_order),
                cmocka_unit_test(legacy_checks_and_targets),
                cmocka_unit_test(article_method_new_kpi),
                cmocka_unit_test(validate_tables),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
