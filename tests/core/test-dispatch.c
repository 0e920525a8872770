/* SPDX-License-Identifier: MIT */
/*
 * Every dispatch rule, for both KPIs: the code returned, whether the
 * driver's function ran (a call counter), and that a refused call sends no
 * output counts back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "core/dispatch.h"

#define V TETHER_VARIABLE_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- what the driver functions saw ---- */

static int runs;
static void *seen_target;
static void *seen_reference;
static void *slots[6];
static uint32_t seen_capacity; /* *size as a legacy function found it */

static int uc_obj, provider_obj, reference_obj;
static const dispatch_target as_user = { .user_client = &uc_obj, .provider = &provider_obj,
                                         .reference = &reference_obj };
static const dispatch_target as_admin = { .user_client = &uc_obj, .provider = &provider_obj,
                                          .reference = &reference_obj, .caller_is_admin = true };
static const dispatch_target provider_gone = { .user_client = &uc_obj, .provider = NULL,
                                               .reference = &reference_obj };

static int reset(void **state)
{
        runs = 0;
        seen_target = NULL;
        seen_reference = NULL;
        memset(slots, 0, sizeof(slots));
        seen_capacity = 0;
        return 0;
}

/* ---- call arguments ---- */

static uint64_t scin[TETHER_MAX_SCALARS], sout[TETHER_MAX_SCALARS];
static uint8_t bin[TETHER_MAX_INLINE_STRUCT], bout[TETHER_MAX_INLINE_STRUCT];
static const tether_async_ref aref = { .words = { 1, 2, 3 } };

static tether_method_args call(uint32_t sel, uint32_t n_in, uint32_t struct_in, uint32_t n_out, uint32_t struct_out)
{
        return (tether_method_args){ .selector = sel,
                                     .scalar_input = scin, .scalar_input_count = n_in,
                                     .struct_input = bin, .struct_input_size = struct_in,
                                     .scalar_output = sout, .scalar_output_count = n_out,
                                     .struct_output = bout, .struct_output_size = struct_out };
}

/* A refused call: the code, nothing ran, nothing goes back. */
static void assert_refused(const tether_user_client_ops *ops, const dispatch_target *t, tether_method_args a,
                           tether_ret_t want)
{
        int before = runs;
        assert_int_equal(dispatch_call(ops, t, &a), want);
        assert_int_equal(runs, before);
        assert_int_equal(a.scalar_output_count, 0);
        assert_int_equal(a.struct_output_size, 0);
}

static void assert_runs(const tether_user_client_ops *ops, const dispatch_target *t, tether_method_args a)
{
        int before = runs;
        assert_int_equal(dispatch_call(ops, t, &a), TETHER_SUCCESS);
        assert_int_equal(runs, before + 1);
}

/* ==== new KPI ==== */

static tether_ret_t n_record(void *target, void *reference, tether_method_args *a)
{
        runs++;
        seen_target = target;
        seen_reference = reference;
        for (uint32_t i = 0; i < a->scalar_output_count; i++)
                a->scalar_output[i] = 100 + i;
        return TETHER_SUCCESS;
}

static tether_ret_t n_overclaim_scalars(void *target, void *reference, tether_method_args *a)
{
        runs++;
        a->scalar_output_count += 1; /* a driver bug */
        return TETHER_SUCCESS;
}

static tether_ret_t n_overclaim_struct(void *target, void *reference, tether_method_args *a)
{
        runs++;
        a->struct_output_size += 1; /* a driver bug */
        return TETHER_SUCCESS;
}

/* The article's method in the new KPI: seed and length in, bytes out. */
static tether_ret_t n_my_method(void *target, void *reference, tether_method_args *a)
{
        runs++;
        uint64_t seed = a->scalar_input[0], want = a->scalar_input[1];
        if (want > a->struct_output_size)
                return TETHER_ERR_NO_SPACE;
        for (uint64_t i = 0; i < want; i++)
                ((uint8_t *)a->struct_output)[i] = (uint8_t)(seed + i);
        a->struct_output_size = (uint32_t)want;
        return TETHER_SUCCESS;
}

enum {
        N_EXACT,            /* 2 scalars in, 8 bytes in, 3 scalars out, 16 bytes out */
        N_VAR_SCALAR_IN,
        N_VAR_STRUCT_IN,
        N_VAR_SCALAR_OUT,
        N_VAR_STRUCT_OUT,
        N_ADMIN,
        N_ASYNC,
        N_NULL,
        N_PROVIDER,
        N_OVER_SCALARS,
        N_OVER_STRUCT,
        N_MY_METHOD,
        N_COUNT
};
static const tether_method_dispatch new_table[N_COUNT] = {
        [N_EXACT] = { n_record, 2, 8, 3, 16, 0 },
        [N_VAR_SCALAR_IN] = { n_record, V, 0, 0, 0, 0 },
        [N_VAR_STRUCT_IN] = { n_record, 0, V, 0, 0, 0 },
        [N_VAR_SCALAR_OUT] = { n_record, 0, 0, V, 0, 0 },
        [N_VAR_STRUCT_OUT] = { n_record, 0, 0, 0, V, 0 },
        [N_ADMIN] = { n_record, 0, 0, 0, 0, TETHER_METHOD_ADMIN },
        [N_ASYNC] = { n_record, 0, 0, 0, 0, TETHER_METHOD_ALLOW_ASYNC },
        [N_NULL] = { NULL, 0, 0, 0, 0, 0 },
        [N_PROVIDER] = { n_record, 0, 0, 1, 0, TETHER_METHOD_TARGET_PROVIDER },
        [N_OVER_SCALARS] = { n_overclaim_scalars, 0, 0, V, 0, 0 },
        [N_OVER_STRUCT] = { n_overclaim_struct, 0, 0, 0, V, 0 },
        [N_MY_METHOD] = { n_my_method, 2, 0, 0, V, 0 },
};
static const tether_user_client_ops new_ops = { .methods = new_table, .method_count = N_COUNT };

static void new_good_call(void **state)
{
        tether_method_args a = call(N_EXACT, 2, 8, 3, 16);
        assert_int_equal(dispatch_call(&new_ops, &as_user, &a), TETHER_SUCCESS);
        assert_int_equal(runs, 1);
        assert_ptr_equal(seen_target, &uc_obj);
        assert_ptr_equal(seen_reference, &reference_obj);
        assert_int_equal(a.scalar_output_count, 3);
        assert_int_equal(sout[0], 100);
        assert_int_equal(sout[2], 102);
        assert_int_equal(a.struct_output_size, 16);
}

static void new_selector_out_of_range(void **state)
{
        assert_refused(&new_ops, &as_user, call(N_COUNT, 0, 0, 1, 4), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&new_ops, &as_user, call(0xffffffffu, 0, 0, 1, 4), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&new_ops, &as_admin, call(N_COUNT + 1000, 0, 0, 1, 4), TETHER_ERR_BAD_ARGUMENT);
        scin[0] = 0;
        scin[1] = 0;
        assert_runs(&new_ops, &as_user, call(N_COUNT - 1, 2, 0, 0, 64)); /* the last one is in range */
}

static void new_not_privileged(void **state)
{
        assert_refused(&new_ops, &as_user, call(N_ADMIN, 0, 0, 0, 0), TETHER_ERR_NOT_PRIVILEGED);
        assert_runs(&new_ops, &as_admin, call(N_ADMIN, 0, 0, 0, 0));
        /* Methods without the flag do not care. */
        assert_runs(&new_ops, &as_user, call(N_ASYNC, 0, 0, 0, 0));
}

static void new_async_needs_allow_async(void **state)
{
        tether_method_args a = call(N_EXACT, 2, 8, 3, 16);
        a.async_ref = &aref;
        assert_refused(&new_ops, &as_user, a, TETHER_ERR_UNSUPPORTED);
        a = call(N_ASYNC, 0, 0, 0, 0);
        a.async_ref = &aref;
        assert_runs(&new_ops, &as_user, a);
        /* ALLOW_ASYNC allows; it does not require. */
        assert_runs(&new_ops, &as_user, call(N_ASYNC, 0, 0, 0, 0));
}

static void new_scalar_input_count(void **state)
{
        assert_refused(&new_ops, &as_user, call(N_EXACT, 1, 8, 3, 16), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&new_ops, &as_user, call(N_EXACT, 3, 8, 3, 16), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&new_ops, &as_user, call(N_EXACT, 0, 8, 3, 16), TETHER_ERR_BAD_ARGUMENT);
}

static void new_struct_input_size(void **state)
{
        assert_refused(&new_ops, &as_user, call(N_EXACT, 2, 7, 3, 16), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&new_ops, &as_user, call(N_EXACT, 2, 9, 3, 16), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&new_ops, &as_user, call(N_EXACT, 2, 0, 3, 16), TETHER_ERR_BAD_ARGUMENT);
}

static void new_scalar_output_count(void **state)
{
        assert_refused(&new_ops, &as_user, call(N_EXACT, 2, 8, 2, 16), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&new_ops, &as_user, call(N_EXACT, 2, 8, 4, 16), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&new_ops, &as_user, call(N_EXACT, 2, 8, 0, 16), TETHER_ERR_BAD_ARGUMENT);
}

static void new_struct_output_size(void **state)
{
        assert_refused(&new_ops, &as_user, call(N_EXACT, 2, 8, 3, 15), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&new_ops, &as_user, call(N_EXACT, 2, 8, 3, 17), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&new_ops, &as_user, call(N_EXACT, 2, 8, 3, 0), TETHER_ERR_BAD_ARGUMENT);
}

static void new_variable_size_is_per_check(void **state)
{
        static const uint32_t scalar_counts[] = { 0, 1, 7, TETHER_MAX_SCALARS };
        static const uint32_t sizes[] = { 0, 1, 100, TETHER_MAX_INLINE_STRUCT };
        for (size_t i = 0; i < ARRAY_SIZE(scalar_counts); i++) {
                assert_runs(&new_ops, &as_user, call(N_VAR_SCALAR_IN, scalar_counts[i], 0, 0, 0));
                assert_runs(&new_ops, &as_user, call(N_VAR_SCALAR_OUT, 0, 0, scalar_counts[i], 0));
        }
        for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
                assert_runs(&new_ops, &as_user, call(N_VAR_STRUCT_IN, 0, sizes[i], 0, 0));
                assert_runs(&new_ops, &as_user, call(N_VAR_STRUCT_OUT, 0, 0, 0, sizes[i]));
        }
        /* The other three checks of each method still hold. */
        assert_refused(&new_ops, &as_user, call(N_VAR_SCALAR_IN, 1, 1, 0, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&new_ops, &as_user, call(N_VAR_SCALAR_IN, 1, 0, 1, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&new_ops, &as_user, call(N_VAR_SCALAR_IN, 1, 0, 0, 1), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&new_ops, &as_user, call(N_VAR_STRUCT_IN, 1, 5, 0, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&new_ops, &as_user, call(N_VAR_STRUCT_IN, 0, 5, 0, 1), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&new_ops, &as_user, call(N_VAR_SCALAR_OUT, 1, 0, 2, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&new_ops, &as_user, call(N_VAR_SCALAR_OUT, 0, 0, 2, 1), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&new_ops, &as_user, call(N_VAR_STRUCT_OUT, 0, 1, 0, 5), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&new_ops, &as_user, call(N_VAR_STRUCT_OUT, 0, 0, 1, 5), TETHER_ERR_BAD_ARGUMENT);
}

static void new_scalar_counts_over_sixteen(void **state)
{
        /* VARIABLE means any count the wire can carry, not any count. */
        assert_refused(&new_ops, &as_user, call(N_VAR_SCALAR_IN, TETHER_MAX_SCALARS + 1, 0, 0, 0),
                       TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&new_ops, &as_user, call(N_VAR_SCALAR_IN, 0xffffffffu, 0, 0, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&new_ops, &as_user, call(N_VAR_SCALAR_OUT, 0, 0, TETHER_MAX_SCALARS + 1, 0),
                       TETHER_ERR_BAD_ARGUMENT);
}

static void new_null_function(void **state)
{
        assert_refused(&new_ops, &as_user, call(N_NULL, 0, 0, 0, 0), TETHER_ERR_UNSUPPORTED);
}

static void new_provider_target(void **state)
{
        tether_method_args a = call(N_PROVIDER, 0, 0, 1, 0);
        assert_int_equal(dispatch_call(&new_ops, &as_user, &a), TETHER_SUCCESS);
        assert_int_equal(runs, 1);
        assert_ptr_equal(seen_target, &provider_obj);
        assert_ptr_equal(seen_reference, &reference_obj);
        assert_refused(&new_ops, &provider_gone, call(N_PROVIDER, 0, 0, 1, 0), TETHER_ERR_NOT_ATTACHED);
        /* A user-client method does not need the provider. */
        assert_runs(&new_ops, &provider_gone, call(N_ASYNC, 0, 0, 0, 0));
        assert_ptr_equal(seen_target, &uc_obj);
}

static void new_output_over_capacity(void **state)
{
        tether_method_args a = call(N_OVER_SCALARS, 0, 0, 4, 0);
        assert_int_equal(dispatch_call(&new_ops, &as_user, &a), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(runs, 1); /* it ran: the damage is caught afterwards */
        assert_int_equal(a.scalar_output_count, 0);
        assert_int_equal(a.struct_output_size, 0);

        a = call(N_OVER_STRUCT, 0, 0, 0, 64);
        assert_int_equal(dispatch_call(&new_ops, &as_user, &a), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(runs, 2);
        assert_int_equal(a.scalar_output_count, 0);
        assert_int_equal(a.struct_output_size, 0);
}

static tether_ret_t n_echo(void *target, void *reference, tether_method_args *a)
{
        runs++;
        for (uint32_t i = 0; i < a->scalar_input_count && i < a->scalar_output_count; i++)
                a->scalar_output[i] = a->scalar_input[i];
        return TETHER_SUCCESS;
}

/* The contrast with the legacy KPI: nothing is cut. */
static void new_scalars_are_64_bits(void **state)
{
        static const tether_method_dispatch t[] = { { n_echo, 2, 0, 2, 0, 0 } };
        static const tether_user_client_ops ops = { .methods = t, .method_count = 1 };
        scin[0] = 0x100000005ull;
        scin[1] = 0xffffffffffffffffull;
        memset(sout, 0, sizeof(sout));
        tether_method_args a = call(0, 2, 0, 2, 0);
        assert_int_equal(dispatch_call(&ops, &as_user, &a), TETHER_SUCCESS);
        assert_int_equal(a.scalar_output_count, 2);
        assert_true(sout[0] == 0x100000005ull);
        assert_true(sout[1] == 0xffffffffffffffffull);
}

static void new_check_order(void **state)
{
        /* admin before async */
        tether_method_args a = call(N_ADMIN, 0, 0, 0, 0);
        a.async_ref = &aref;
        assert_refused(&new_ops, &as_user, a, TETHER_ERR_NOT_PRIVILEGED);
        /* async before the counts */
        a = call(N_EXACT, 9, 9, 9, 9);
        a.async_ref = &aref;
        assert_refused(&new_ops, &as_user, a, TETHER_ERR_UNSUPPORTED);
        /* counts before the NULL function */
        assert_refused(&new_ops, &as_user, call(N_NULL, 1, 0, 0, 0), TETHER_ERR_BAD_ARGUMENT);
        /* NULL function before the target */
        static const tether_method_dispatch t[] = { { NULL, 0, 0, 0, 0, TETHER_METHOD_TARGET_PROVIDER } };
        static const tether_user_client_ops ops = { .methods = t, .method_count = 1 };
        assert_refused(&ops, &provider_gone, call(0, 0, 0, 0, 0), TETHER_ERR_UNSUPPORTED);
}

static void new_inconsistent_args(void **state)
{
        tether_method_args a = call(N_EXACT, 2, 8, 3, 16);
        a.scalar_input = NULL;
        assert_refused(&new_ops, &as_user, a, TETHER_ERR_BAD_ARGUMENT);
        a = call(N_EXACT, 2, 8, 3, 16);
        a.struct_input = NULL;
        assert_refused(&new_ops, &as_user, a, TETHER_ERR_BAD_ARGUMENT);
        a = call(N_EXACT, 2, 8, 3, 16);
        a.scalar_output = NULL;
        assert_refused(&new_ops, &as_user, a, TETHER_ERR_BAD_ARGUMENT);
        a = call(N_EXACT, 2, 8, 3, 16);
        a.struct_output = NULL;
        assert_refused(&new_ops, &as_user, a, TETHER_ERR_BAD_ARGUMENT);
        /* Nothing to carry, nothing needed. */
        a = (tether_method_args){ .selector = N_ASYNC };
        assert_runs(&new_ops, &as_user, a);
}

static void null_arguments(void **state)
{
        tether_method_args a = call(N_EXACT, 2, 8, 3, 16);
        assert_refused(NULL, &as_user, a, TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&new_ops, NULL, a, TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(dispatch_call(&new_ops, &as_user, NULL), TETHER_ERR_BAD_ARGUMENT);
        /* No table at all: nothing is in range. */
        static const tether_user_client_ops empty = { 0 };
        assert_refused(&empty, &as_user, call(0, 0, 0, 0, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(runs, 0);
}

/* ==== legacy KPI ==== */

static void record(void *target, void *p1, void *p2, void *p3, void *p4, void *p5, void *p6)
{
        runs++;
        seen_target = target;
        void *p[6] = { p1, p2, p3, p4, p5, p6 };
        memcpy(slots, p, sizeof(slots));
}

static tether_ret_t l_record(void *target, void *p1, void *p2, void *p3, void *p4, void *p5, void *p6)
{
        record(target, p1, p2, p3, p4, p5, p6);
        return TETHER_SUCCESS;
}

/* scalar-in/scalar-out, 2 + 2: sum, and a value with the top bit set. */
static tether_ret_t l_add(void *target, void *p1, void *p2, void *p3, void *p4, void *p5, void *p6)
{
        record(target, p1, p2, p3, p4, p5, p6);
        *(uint32_t *)p3 = (uint32_t)(uintptr_t)p1 + (uint32_t)(uintptr_t)p2;
        *(uint32_t *)p4 = 0xffffffffu;
        return TETHER_SUCCESS;
}

/* scalar-in/scalar-out, 3 + 3: each output pointer gets its own value. */
static tether_ret_t l_ss33(void *target, void *p1, void *p2, void *p3, void *p4, void *p5, void *p6)
{
        record(target, p1, p2, p3, p4, p5, p6);
        *(uint32_t *)p4 = 0xa1;
        *(uint32_t *)p5 = 0xb2;
        *(uint32_t *)p6 = 0xc3;
        return TETHER_SUCCESS;
}

/* scalar-in/struct-out, 2 scalars: writes 10 bytes. */
static tether_ret_t l_sio(void *target, void *p1, void *p2, void *p3, void *p4, void *p5, void *p6)
{
        record(target, p1, p2, p3, p4, p5, p6);
        seen_capacity = *(uint32_t *)p4;
        memset(p3, 0x5a, 10);
        *(uint32_t *)p4 = 10;
        return TETHER_SUCCESS;
}

/* struct-in/struct-out, both: writes 12 bytes. */
static tether_ret_t l_io(void *target, void *p1, void *p2, void *p3, void *p4, void *p5, void *p6)
{
        record(target, p1, p2, p3, p4, p5, p6);
        seen_capacity = *(uint32_t *)p4;
        *(uint32_t *)p4 = 12;
        return TETHER_SUCCESS;
}

/* struct-in/struct-out, output only: writes 16 bytes. */
static tether_ret_t l_io_out(void *target, void *p1, void *p2, void *p3, void *p4, void *p5, void *p6)
{
        record(target, p1, p2, p3, p4, p5, p6);
        seen_capacity = *(uint32_t *)p2;
        *(uint32_t *)p2 = 16;
        return TETHER_SUCCESS;
}

/* The article's MyMethod: two 32-bit scalars in, a variable struct out;
 * gets the capacity, reports bytes written. */
static tether_ret_t l_my_method(void *target, void *p1, void *p2, void *p3, void *p4, void *p5, void *p6)
{
        record(target, p1, p2, p3, p4, p5, p6);
        uint32_t seed = (uint32_t)(uintptr_t)p1, want = (uint32_t)(uintptr_t)p2;
        uint8_t *out = p3;
        uint32_t *size = p4;
        seen_capacity = *size;
        if (want > *size)
                return TETHER_ERR_NO_SPACE;
        for (uint32_t i = 0; i < want; i++)
                out[i] = (uint8_t)(seed + i);
        *size = want;
        return TETHER_SUCCESS;
}

static tether_ret_t l_overclaim(void *target, void *p1, void *p2, void *p3, void *p4, void *p5, void *p6)
{
        record(target, p1, p2, p3, p4, p5, p6);
        *(uint32_t *)p2 += 1; /* a driver bug: one byte more than the room */
        return TETHER_SUCCESS;
}

enum {
        L_ADD,          /* scalar-in/scalar-out 2, 2 */
        L_SS33,         /* scalar-in/scalar-out 3, 3 */
        L_SIO,          /* scalar-in/struct-out 2, 16 */
        L_MY_METHOD,    /* scalar-in/struct-out 2, V */
        L_IO,           /* struct-in/struct-out 8, 16 */
        L_IO_OUT,       /* struct-in/struct-out 0, 16 */
        L_IO_IN,        /* struct-in/struct-out 8, 0 */
        L_VAR_IN,       /* struct-in/struct-out V, 0 */
        L_SSI,          /* scalar-in/struct-in 2, 8 */
        L_SSI_VAR,      /* scalar-in/struct-in 1, V */
        L_VAR_OUT,      /* struct-in/struct-out 0, V */
        L_NULL,
        L_OVERCLAIM,    /* struct-in/struct-out 0, V, writes one byte too many */
        L_PROVIDER,     /* scalar-in/scalar-out 0, 0 on the provider */
        L_COUNT
};
static const tether_external_method legacy_table[L_COUNT] = {
        [L_ADD] = { TETHER_TARGET_USER_CLIENT, l_add, TETHER_UC_SCALAR_I_SCALAR_O, 2, 2 },
        [L_SS33] = { TETHER_TARGET_USER_CLIENT, l_ss33, TETHER_UC_SCALAR_I_SCALAR_O, 3, 3 },
        [L_SIO] = { TETHER_TARGET_USER_CLIENT, l_sio, TETHER_UC_SCALAR_I_STRUCT_O, 2, 16 },
        [L_MY_METHOD] = { TETHER_TARGET_USER_CLIENT, l_my_method, TETHER_UC_SCALAR_I_STRUCT_O, 2, V },
        [L_IO] = { TETHER_TARGET_USER_CLIENT, l_io, TETHER_UC_STRUCT_I_STRUCT_O, 8, 16 },
        [L_IO_OUT] = { TETHER_TARGET_USER_CLIENT, l_io_out, TETHER_UC_STRUCT_I_STRUCT_O, 0, 16 },
        [L_IO_IN] = { TETHER_TARGET_USER_CLIENT, l_record, TETHER_UC_STRUCT_I_STRUCT_O, 8, 0 },
        [L_VAR_IN] = { TETHER_TARGET_USER_CLIENT, l_record, TETHER_UC_STRUCT_I_STRUCT_O, V, 0 },
        [L_SSI] = { TETHER_TARGET_USER_CLIENT, l_record, TETHER_UC_SCALAR_I_STRUCT_I, 2, 8 },
        [L_SSI_VAR] = { TETHER_TARGET_USER_CLIENT, l_record, TETHER_UC_SCALAR_I_STRUCT_I, 1, V },
        [L_PROVIDER] = { TETHER_TARGET_PROVIDER, l_record, TETHER_UC_SCALAR_I_SCALAR_O, 0, 0 },
        [L_VAR_OUT] = { TETHER_TARGET_USER_CLIENT, l_record, TETHER_UC_STRUCT_I_STRUCT_O, 0, V },
        [L_NULL] = { TETHER_TARGET_USER_CLIENT, NULL, TETHER_UC_SCALAR_I_SCALAR_O, 0, 0 },
        [L_OVERCLAIM] = { TETHER_TARGET_USER_CLIENT, l_overclaim, TETHER_UC_STRUCT_I_STRUCT_O, 0, V },
};
static const tether_user_client_ops legacy_ops = { .legacy_methods = legacy_table, .legacy_method_count = L_COUNT };

static void legacy_selector_out_of_range(void **state)
{
        assert_refused(&legacy_ops, &as_user, call(L_COUNT, 0, 0, 0, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&legacy_ops, &as_user, call(0xffffffffu, 0, 0, 0, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_runs(&legacy_ops, &as_user, call(L_COUNT - 1, 0, 0, 0, 0)); /* the last one is in range */
}

static void legacy_never_async(void **state)
{
        tether_method_args a = call(L_ADD, 2, 0, 2, 0);
        a.async_ref = &aref;
        assert_refused(&legacy_ops, &as_user, a, TETHER_ERR_UNSUPPORTED);
        a = call(L_PROVIDER, 0, 0, 0, 0);
        a.async_ref = &aref;
        assert_refused(&legacy_ops, &as_admin, a, TETHER_ERR_UNSUPPORTED);
}

static void legacy_scalar_input_count(void **state)
{
        assert_refused(&legacy_ops, &as_user, call(L_ADD, 1, 0, 2, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&legacy_ops, &as_user, call(L_ADD, 3, 0, 2, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&legacy_ops, &as_user, call(L_SSI, 1, 8, 0, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&legacy_ops, &as_user, call(L_SSI, 3, 8, 0, 0), TETHER_ERR_BAD_ARGUMENT);
        /* A struct-in/struct-out method takes no scalars. */
        assert_refused(&legacy_ops, &as_user, call(L_IO, 1, 8, 0, 16), TETHER_ERR_BAD_ARGUMENT);
}

static void legacy_struct_input_size(void **state)
{
        assert_refused(&legacy_ops, &as_user, call(L_IO_IN, 0, 7, 0, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&legacy_ops, &as_user, call(L_IO_IN, 0, 9, 0, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&legacy_ops, &as_user, call(L_SSI, 2, 7, 0, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&legacy_ops, &as_user, call(L_SSI, 2, 9, 0, 0), TETHER_ERR_BAD_ARGUMENT);
        /* A scalar method takes no struct. */
        assert_refused(&legacy_ops, &as_user, call(L_ADD, 2, 1, 2, 0), TETHER_ERR_BAD_ARGUMENT);
}

static void legacy_scalar_output_count(void **state)
{
        assert_refused(&legacy_ops, &as_user, call(L_ADD, 2, 0, 1, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&legacy_ops, &as_user, call(L_ADD, 2, 0, 3, 0), TETHER_ERR_BAD_ARGUMENT);
        /* A struct-out method gives no scalars back. */
        assert_refused(&legacy_ops, &as_user, call(L_SIO, 2, 0, 1, 16), TETHER_ERR_BAD_ARGUMENT);
}

static void legacy_struct_output_size(void **state)
{
        assert_refused(&legacy_ops, &as_user, call(L_SIO, 2, 0, 0, 15), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&legacy_ops, &as_user, call(L_SIO, 2, 0, 0, 17), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&legacy_ops, &as_user, call(L_IO_OUT, 0, 0, 0, 15), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&legacy_ops, &as_user, call(L_IO_OUT, 0, 0, 0, 17), TETHER_ERR_BAD_ARGUMENT);
        /* An input-only method gives no struct back. */
        assert_refused(&legacy_ops, &as_user, call(L_IO_IN, 0, 8, 0, 1), TETHER_ERR_BAD_ARGUMENT);
}

static void legacy_variable_size_is_per_check(void **state)
{
        static const uint32_t sizes[] = { 0, 1, 100, TETHER_MAX_INLINE_STRUCT };
        for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
                assert_runs(&legacy_ops, &as_user, call(L_VAR_IN, 0, sizes[i], 0, 0));
                assert_runs(&legacy_ops, &as_user, call(L_SSI_VAR, 1, sizes[i], 0, 0));
                assert_runs(&legacy_ops, &as_user, call(L_VAR_OUT, 0, 0, 0, sizes[i]));
        }
        /* count0 of the scalar-in form stays exact; the zero checks stay zero. */
        assert_refused(&legacy_ops, &as_user, call(L_SSI_VAR, 2, 5, 0, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&legacy_ops, &as_user, call(L_SSI_VAR, 1, 5, 0, 1), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&legacy_ops, &as_user, call(L_VAR_IN, 0, 5, 0, 1), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&legacy_ops, &as_user, call(L_VAR_IN, 1, 5, 0, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&legacy_ops, &as_user, call(L_VAR_OUT, 0, 1, 0, 5), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&legacy_ops, &as_user, call(L_VAR_OUT, 0, 0, 1, 5), TETHER_ERR_BAD_ARGUMENT);
}

static void legacy_null_function(void **state)
{
        assert_refused(&legacy_ops, &as_user, call(L_NULL, 0, 0, 0, 0), TETHER_ERR_UNSUPPORTED);
}

static void legacy_provider_target(void **state)
{
        assert_runs(&legacy_ops, &as_user, call(L_PROVIDER, 0, 0, 0, 0));
        assert_ptr_equal(seen_target, &provider_obj);
        assert_refused(&legacy_ops, &provider_gone, call(L_PROVIDER, 0, 0, 0, 0), TETHER_ERR_NOT_ATTACHED);
        assert_runs(&legacy_ops, &provider_gone, call(L_IO_IN, 0, 8, 0, 0));
        assert_ptr_equal(seen_target, &uc_obj);
}

static void legacy_output_over_capacity(void **state)
{
        tether_method_args a = call(L_OVERCLAIM, 0, 0, 0, 8);
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(runs, 1);
        assert_int_equal(a.scalar_output_count, 0);
        assert_int_equal(a.struct_output_size, 0);
}

static void legacy_scalars_are_32_bits(void **state)
{
        scin[0] = 0x100000005ull;
        scin[1] = 0xffffffff00000002ull;
        memset(sout, 0xee, sizeof(sout));
        tether_method_args a = call(L_ADD, 2, 0, 2, 0);
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_SUCCESS);
        assert_int_equal(runs, 1);
        assert_ptr_equal(slots[0], (void *)(uintptr_t)5);
        assert_ptr_equal(slots[1], (void *)(uintptr_t)2);
        assert_int_equal(a.scalar_output_count, 2);
        assert_true(sout[0] == 7);
        assert_true(sout[1] == 0xffffffffull); /* widened, not sign-extended */
}

static void legacy_marshal_scalar_i_scalar_o(void **state)
{
        scin[0] = 11;
        scin[1] = 22;
        scin[2] = 33;
        memset(sout, 0, sizeof(sout));
        tether_method_args a = call(L_SS33, 3, 0, 3, 0);
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_SUCCESS);
        assert_ptr_equal(seen_target, &uc_obj);
        assert_ptr_equal(slots[0], (void *)(uintptr_t)11);
        assert_ptr_equal(slots[1], (void *)(uintptr_t)22);
        assert_ptr_equal(slots[2], (void *)(uintptr_t)33);
        assert_non_null(slots[3]);
        assert_non_null(slots[4]);
        assert_non_null(slots[5]);
        assert_ptr_not_equal(slots[3], slots[4]);
        assert_ptr_not_equal(slots[4], slots[5]);
        /* Slot 4 is output 0, slot 5 output 1, slot 6 output 2. */
        assert_int_equal(a.scalar_output_count, 3);
        assert_true(sout[0] == 0xa1 && sout[1] == 0xb2 && sout[2] == 0xc3);
        assert_int_equal(a.struct_output_size, 0);

        /* 2 + 2: the last two slots are unused. */
        a = call(L_ADD, 2, 0, 2, 0);
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_SUCCESS);
        assert_null(slots[4]);
        assert_null(slots[5]);
}

static void legacy_marshal_scalar_i_struct_o(void **state)
{
        scin[0] = 0x1234;
        scin[1] = 0x100000077ull;
        memset(bout, 0, sizeof(bout));
        tether_method_args a = call(L_SIO, 2, 0, 0, 16);
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_SUCCESS);
        assert_ptr_equal(slots[0], (void *)(uintptr_t)0x1234);
        assert_ptr_equal(slots[1], (void *)(uintptr_t)0x77);
        assert_ptr_equal(slots[2], bout);
        assert_non_null(slots[3]);
        assert_null(slots[4]);
        assert_null(slots[5]);
        assert_int_equal(seen_capacity, 16);
        assert_int_equal(a.struct_output_size, 10);
        assert_int_equal(a.scalar_output_count, 0);
        assert_int_equal(bout[9], 0x5a);
        assert_int_equal(bout[10], 0);
}

static void legacy_marshal_struct_i_struct_o(void **state)
{
        /* both: input, output, input size, &output size */
        tether_method_args a = call(L_IO, 0, 8, 0, 16);
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_SUCCESS);
        assert_ptr_equal(slots[0], bin);
        assert_ptr_equal(slots[1], bout);
        assert_ptr_equal(slots[2], (void *)(uintptr_t)8);
        assert_non_null(slots[3]);
        assert_null(slots[4]);
        assert_null(slots[5]);
        assert_int_equal(seen_capacity, 16);
        assert_int_equal(a.struct_output_size, 12);

        /* output only: output, &output size */
        a = call(L_IO_OUT, 0, 0, 0, 16);
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_SUCCESS);
        assert_ptr_equal(slots[0], bout);
        assert_non_null(slots[1]);
        assert_null(slots[2]);
        assert_null(slots[3]);
        assert_int_equal(seen_capacity, 16);
        assert_int_equal(a.struct_output_size, 16);

        /* input only: input, input size */
        a = call(L_IO_IN, 0, 8, 0, 0);
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_SUCCESS);
        assert_ptr_equal(slots[0], bin);
        assert_ptr_equal(slots[1], (void *)(uintptr_t)8);
        assert_null(slots[2]);
        assert_null(slots[3]);
        assert_int_equal(a.struct_output_size, 0);
        assert_int_equal(runs, 3);
}

static void legacy_marshal_scalar_i_struct_i(void **state)
{
        scin[0] = 0x200000011ull;
        scin[1] = 22;
        tether_method_args a = call(L_SSI, 2, 8, 0, 0);
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_SUCCESS);
        assert_ptr_equal(slots[0], (void *)(uintptr_t)0x11);
        assert_ptr_equal(slots[1], (void *)(uintptr_t)22);
        assert_ptr_equal(slots[2], bin);
        assert_ptr_equal(slots[3], (void *)(uintptr_t)8);
        assert_null(slots[4]);
        assert_null(slots[5]);
        assert_int_equal(a.scalar_output_count, 0);
        assert_int_equal(a.struct_output_size, 0);
}

/* The article's example: MyMethod as a legacy scalar-in/struct-out with
 * count0 = 2 and count1 = VARIABLE, and the same method in the new KPI. */
static void article_example_both_kpis(void **state)
{
        static const tether_method_dispatch nt[] = { { n_my_method, 2, 0, 0, V, 0 } };
        static const tether_user_client_ops nops = { .methods = nt, .method_count = 1 };
        static const uint32_t capacities[] = { 64, 5 };
        uint8_t legacy_bytes[64];

        for (size_t i = 0; i < ARRAY_SIZE(capacities); i++) {
                scin[0] = 0x40;
                scin[1] = 5;
                memset(bout, 0, sizeof(bout));
                tether_method_args a = call(L_MY_METHOD, 2, 0, 0, capacities[i]);
                assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_SUCCESS);
                assert_ptr_equal(slots[0], (void *)(uintptr_t)0x40);
                assert_ptr_equal(slots[1], (void *)(uintptr_t)5);
                assert_ptr_equal(slots[2], bout);
                assert_int_equal(seen_capacity, capacities[i]);
                assert_int_equal(a.struct_output_size, 5);
                assert_int_equal(bout[0], 0x40);
                assert_int_equal(bout[4], 0x44);
                assert_int_equal(bout[5], 0);
                memcpy(legacy_bytes, bout, sizeof(legacy_bytes));

                memset(bout, 0, sizeof(bout));
                a = call(0, 2, 0, 0, capacities[i]);
                assert_int_equal(dispatch_call(&nops, &as_user, &a), TETHER_SUCCESS);
                assert_int_equal(a.struct_output_size, 5);
                assert_memory_equal(bout, legacy_bytes, sizeof(legacy_bytes));
        }
        assert_int_equal(runs, 4);

        /* Too little room: the method's own error, from both. */
        tether_method_args a = call(L_MY_METHOD, 2, 0, 0, 3);
        assert_int_equal(dispatch_call(&legacy_ops, &as_user, &a), TETHER_ERR_NO_SPACE);
        a = call(0, 2, 0, 0, 3);
        assert_int_equal(dispatch_call(&nops, &as_user, &a), TETHER_ERR_NO_SPACE);
        /* The scalar count is exact in both. */
        assert_refused(&legacy_ops, &as_user, call(L_MY_METHOD, 3, 0, 0, 64), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&nops, &as_user, call(0, 3, 0, 0, 64), TETHER_ERR_BAD_ARGUMENT);
}

/* A table that skipped dispatch_validate_ops still cannot get a bad entry run. */
static void legacy_bad_entry_refused_at_call(void **state)
{
        static const tether_external_method bad[] = {
                { 7, l_record, TETHER_UC_SCALAR_I_SCALAR_O, 0, 0 },                         /* unknown target */
                { TETHER_TARGET_USER_CLIENT, l_record, TETHER_UC_SCALAR_I_SCALAR_O, 4, 3 }, /* 7 slots */
                { TETHER_TARGET_USER_CLIENT, l_record, 1, 0, 0 },                           /* unknown type */
                { TETHER_TARGET_USER_CLIENT, l_record, TETHER_UC_SCALAR_I_SCALAR_O, V, 0 }, /* V scalars */
        };
        static const tether_user_client_ops ops = { .legacy_methods = bad, .legacy_method_count = ARRAY_SIZE(bad) };
        assert_refused(&ops, &as_user, call(0, 0, 0, 0, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&ops, &as_user, call(1, 4, 0, 3, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&ops, &as_user, call(2, 0, 0, 0, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&ops, &as_user, call(3, 7, 0, 0, 0), TETHER_ERR_BAD_ARGUMENT);
}

/* ==== dispatch_validate_ops ==== */

static tether_ret_t validate_legacy(tether_external_method m)
{
        tether_user_client_ops ops = { .legacy_methods = &m, .legacy_method_count = 1 };
        return dispatch_validate_ops(&ops);
}

static tether_ret_t validate_new(tether_method_dispatch m)
{
        tether_user_client_ops ops = { .methods = &m, .method_count = 1 };
        return dispatch_validate_ops(&ops);
}

static tether_external_method lm(uint32_t flags, uint32_t count0, uint32_t count1)
{
        return (tether_external_method){ TETHER_TARGET_USER_CLIENT, l_record, flags, count0, count1 };
}

static void validate_accepts_good_tables(void **state)
{
        assert_int_equal(dispatch_validate_ops(&new_ops), TETHER_SUCCESS);
        assert_int_equal(dispatch_validate_ops(&legacy_ops), TETHER_SUCCESS);
        tether_user_client_ops none = { 0 };
        assert_int_equal(dispatch_validate_ops(&none), TETHER_SUCCESS);
        assert_int_equal(validate_legacy(lm(TETHER_UC_SCALAR_I_SCALAR_O, 6, 0)), TETHER_SUCCESS);
        assert_int_equal(validate_legacy(lm(TETHER_UC_SCALAR_I_SCALAR_O, 0, 6)), TETHER_SUCCESS);
        assert_int_equal(validate_legacy(lm(TETHER_UC_SCALAR_I_SCALAR_O, 3, 3)), TETHER_SUCCESS);
        assert_int_equal(validate_legacy(lm(TETHER_UC_SCALAR_I_STRUCT_O, 4, V)), TETHER_SUCCESS);
        assert_int_equal(validate_legacy(lm(TETHER_UC_SCALAR_I_STRUCT_I, 4, V)), TETHER_SUCCESS);
        assert_int_equal(validate_legacy(lm(TETHER_UC_STRUCT_I_STRUCT_O, V, V)), TETHER_SUCCESS);
        assert_int_equal(validate_legacy((tether_external_method){ TETHER_TARGET_PROVIDER, NULL,
                                                                   TETHER_UC_STRUCT_I_STRUCT_O, 0, 0 }),
                         TETHER_SUCCESS);
        assert_int_equal(validate_new((tether_method_dispatch){ n_record, 16, V, 16, V,
                                                                TETHER_METHOD_ALLOW_ASYNC | TETHER_METHOD_ADMIN |
                                                                        TETHER_METHOD_TARGET_PROVIDER }),
                         TETHER_SUCCESS);
        assert_int_equal(validate_new((tether_method_dispatch){ n_record, V, 0, V, 0, 0 }), TETHER_SUCCESS);
}

static void validate_rejects_null(void **state)
{
        assert_int_equal(dispatch_validate_ops(NULL), TETHER_ERR_BAD_ARGUMENT);
}

static void validate_rejects_both_tables(void **state)
{
        tether_user_client_ops both = { .methods = new_table, .method_count = N_COUNT,
                                        .legacy_methods = legacy_table, .legacy_method_count = L_COUNT };
        assert_int_equal(dispatch_validate_ops(&both), TETHER_ERR_BAD_ARGUMENT);
        /* A stray pointer with no count is still a second table. */
        tether_user_client_ops stray = { .methods = new_table, .method_count = N_COUNT,
                                         .legacy_methods = legacy_table };
        assert_int_equal(dispatch_validate_ops(&stray), TETHER_ERR_BAD_ARGUMENT);
        /* dispatch_call refuses such ops too, and runs nothing. */
        assert_refused(&both, &as_admin, call(N_ASYNC, 0, 0, 0, 0), TETHER_ERR_BAD_ARGUMENT);
}

static void validate_rejects_count_without_table(void **state)
{
        tether_user_client_ops n = { .method_count = 3 };
        assert_int_equal(dispatch_validate_ops(&n), TETHER_ERR_BAD_ARGUMENT);
        tether_user_client_ops l = { .legacy_method_count = 3 };
        assert_int_equal(dispatch_validate_ops(&l), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&n, &as_user, call(0, 0, 0, 0, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_refused(&l, &as_user, call(0, 0, 0, 0, 0), TETHER_ERR_BAD_ARGUMENT);
}

static void validate_rejects_unknown_legacy_type(void **state)
{
        static const uint32_t unknown[] = { 1, 5, 6, 15 };
        for (size_t i = 0; i < ARRAY_SIZE(unknown); i++)
                assert_int_equal(validate_legacy(lm(unknown[i], 0, 0)), TETHER_ERR_BAD_ARGUMENT);
}

static void validate_rejects_unknown_target(void **state)
{
        tether_external_method m = lm(TETHER_UC_SCALAR_I_SCALAR_O, 0, 0);
        m.object = 2;
        assert_int_equal(validate_legacy(m), TETHER_ERR_BAD_ARGUMENT);
        m.object = UINTPTR_MAX;
        assert_int_equal(validate_legacy(m), TETHER_ERR_BAD_ARGUMENT);
}

static void validate_rejects_scalar_scalar_over_six(void **state)
{
        assert_int_equal(validate_legacy(lm(TETHER_UC_SCALAR_I_SCALAR_O, 4, 3)), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(validate_legacy(lm(TETHER_UC_SCALAR_I_SCALAR_O, 7, 0)), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(validate_legacy(lm(TETHER_UC_SCALAR_I_SCALAR_O, 0, 7)), TETHER_ERR_BAD_ARGUMENT);
        /* 0xfffffffe + 8 wraps to 6 in 32 bits. */
        assert_int_equal(validate_legacy(lm(TETHER_UC_SCALAR_I_SCALAR_O, 0xfffffffeu, 8)), TETHER_ERR_BAD_ARGUMENT);
}

static void validate_rejects_scalar_struct_over_four(void **state)
{
        assert_int_equal(validate_legacy(lm(TETHER_UC_SCALAR_I_STRUCT_O, 5, 8)), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(validate_legacy(lm(TETHER_UC_SCALAR_I_STRUCT_I, 5, 8)), TETHER_ERR_BAD_ARGUMENT);
}

static void validate_rejects_variable_legacy_scalars(void **state)
{
        assert_int_equal(validate_legacy(lm(TETHER_UC_SCALAR_I_SCALAR_O, V, 0)), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(validate_legacy(lm(TETHER_UC_SCALAR_I_SCALAR_O, 0, V)), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(validate_legacy(lm(TETHER_UC_SCALAR_I_STRUCT_O, V, 8)), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(validate_legacy(lm(TETHER_UC_SCALAR_I_STRUCT_I, V, 8)), TETHER_ERR_BAD_ARGUMENT);
}

static void validate_rejects_new_scalar_checks_over_sixteen(void **state)
{
        assert_int_equal(validate_new((tether_method_dispatch){ n_record, 17, 0, 0, 0, 0 }), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(validate_new((tether_method_dispatch){ n_record, 0, 0, 17, 0, 0 }), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(validate_new((tether_method_dispatch){ n_record, V - 1, 0, 0, 0, 0 }),
                         TETHER_ERR_BAD_ARGUMENT);
}

static void validate_rejects_unknown_method_flags(void **state)
{
        assert_int_equal(validate_new((tether_method_dispatch){ n_record, 0, 0, 0, 0, 1u << 3 }),
                         TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(validate_new((tether_method_dispatch){ n_record, 0, 0, 0, 0, 1u << 31 }),
                         TETHER_ERR_BAD_ARGUMENT);
}

/* The bad entry is found wherever it sits in the table. */
static void validate_checks_every_entry(void **state)
{
        tether_method_dispatch n[N_COUNT];
        memcpy(n, new_table, sizeof(n));
        n[N_COUNT - 1].check_scalar_output_count = 17;
        tether_user_client_ops nops = { .methods = n, .method_count = N_COUNT };
        assert_int_equal(dispatch_validate_ops(&nops), TETHER_ERR_BAD_ARGUMENT);

        tether_external_method l[L_COUNT];
        memcpy(l, legacy_table, sizeof(l));
        l[L_COUNT - 1].object = 9;
        tether_user_client_ops lops = { .legacy_methods = l, .legacy_method_count = L_COUNT };
        assert_int_equal(dispatch_validate_ops(&lops), TETHER_ERR_BAD_ARGUMENT);
}

/* Both KPIs, one rule: a flag bit this build does not implement fails
 * closed when the table is handed out, and the log says which. */
static void validate_rejects_legacy_flags_beyond_type(void **state)
{
        char why[128] = "";
        tether_external_method m = lm(TETHER_UC_SCALAR_I_SCALAR_O | TETHER_UC_FOREGROUND_ONLY, 1, 1);
        tether_user_client_ops ops = { .legacy_methods = &m, .legacy_method_count = 1 };
        assert_int_equal(dispatch_validate_ops_explain(&ops, why, sizeof(why)), TETHER_ERR_BAD_ARGUMENT);
        assert_non_null(strstr(why, "kIOUCForegroundOnly"));
        m.flags = TETHER_UC_SCALAR_I_STRUCT_O | 0xFFFE0u;
        assert_int_equal(dispatch_validate_ops_explain(&ops, why, sizeof(why)), TETHER_ERR_BAD_ARGUMENT);
        assert_non_null(strstr(why, "0xfffe0"));
        for (unsigned bit = 4; bit < 32; bit++)
                assert_int_equal(validate_legacy(lm(TETHER_UC_SCALAR_I_SCALAR_O | (1u << bit), 1, 1)),
                                 TETHER_ERR_BAD_ARGUMENT);
        /* The same type without the extra bits is fine. */
        assert_int_equal(validate_legacy(lm(TETHER_UC_SCALAR_I_SCALAR_O, 1, 1)), TETHER_SUCCESS);
}

/* dispatch_check runs every check and no driver code; dispatch_invoke runs
 * the method once. tetherd copies an out-of-line input between the two. */
static void check_then_invoke(void **state)
{
        dispatch_method m;
        tether_method_args a = call(N_EXACT, 2, 8, 3, 16);
        assert_int_equal(dispatch_check(&new_ops, &as_user, &a, &m), TETHER_SUCCESS);
        assert_int_equal(runs, 0);
        assert_int_equal(dispatch_invoke(&m, &a), TETHER_SUCCESS);
        assert_int_equal(runs, 1);
        /* A refused check leaves nothing to invoke and ran nothing. */
        a = call(N_EXACT, 2, 9, 3, 16);
        assert_int_equal(dispatch_check(&new_ops, &as_user, &a, &m), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(a.scalar_output_count, 0);
        assert_int_equal(runs, 1);
}

#define T(f) cmocka_unit_test_setup(f, reset)

int main(void)
{
        const struct CMUnitTest tests[] = {
                T(new_good_call),
                T(new_selector_out_of_range),
                T(new_not_privileged),
                T(new_async_needs_allow_async),
                T(new_scalar_input_count),
                T(new_struct_input_size),
                T(new_scalar_output_count),
                T(new_struct_output_size),
                T(new_variable_size_is_per_check),
                T(new_scalar_counts_over_sixteen),
                T(new_null_function),
                T(new_provider_target),
                T(new_output_over_capacity),
                T(new_scalars_are_64_bits),
                T(new_check_order),
                T(new_inconsistent_args),
                T(null_arguments),
                T(legacy_selector_out_of_range),
                T(legacy_never_async),
                T(legacy_scalar_input_count),
                T(legacy_struct_input_size),
                T(legacy_scalar_output_count),
                T(legacy_struct_output_size),
                T(legacy_variable_size_is_per_check),
                T(legacy_null_function),
                T(legacy_provider_target),
                T(legacy_output_over_capacity),
                T(legacy_scalars_are_32_bits),
                T(legacy_marshal_scalar_i_scalar_o),
                T(legacy_marshal_scalar_i_struct_o),
                T(legacy_marshal_struct_i_struct_o),
                T(legacy_marshal_scalar_i_struct_i),
                T(article_example_both_kpis),
                T(legacy_bad_entry_refused_at_call),
                T(validate_accepts_good_tables),
                T(validate_rejects_null),
                T(validate_rejects_both_tables),
                T(validate_rejects_count_without_table),
                T(validate_rejects_unknown_legacy_type),
                T(validate_rejects_unknown_target),
                T(validate_rejects_scalar_scalar_over_six),
                T(validate_rejects_scalar_struct_over_four),
                T(validate_rejects_variable_legacy_scalars),
                T(validate_rejects_new_scalar_checks_over_sixteen),
                T(validate_rejects_unknown_method_flags),
                T(validate_checks_every_entry),
                T(validate_rejects_legacy_flags_beyond_type),
                T(check_then_invoke),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
