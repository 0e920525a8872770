/* SPDX-License-Identifier: MIT */
#include "core/dispatch.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Legacy methods get six pointer-sized arguments after the target. */
#define LEGACY_SLOTS       6u
/* The scalar-in/struct-x forms spend two slots on the struct. */
#define LEGACY_MAX_SCALARS 4u

#define KNOWN_METHOD_FLAGS \
        (TETHER_METHOD_ALLOW_ASYNC | TETHER_METHOD_ADMIN | TETHER_METHOD_TARGET_PROVIDER)

/* The four checks of a method, whichever KPI it came from, so the rules
 * that compare them with a call live in one function. */
typedef struct method_checks {
        uint32_t scalar_in;
        uint32_t struct_in;
        uint32_t scalar_out;
        uint32_t struct_out;
} method_checks;

/* One method, whichever table it came from, after the selector check. */
typedef struct method_ref {
        const tether_method_dispatch *dispatch;   /* new KPI, else NULL */
        const tether_external_method *legacy;     /* legacy KPI, else NULL */
        method_checks checks;
} method_ref;

static bool check_passes(uint32_t check, uint32_t got)
{
        return check == TETHER_VARIABLE_SIZE || check == got;
}

static tether_ret_t run_checks(const method_checks *c, const tether_method_args *args)
{
        if (!check_passes(c->scalar_in, args->scalar_input_count))
                return TETHER_ERR_BAD_ARGUMENT;
        if (!check_passes(c->struct_in, args->struct_input_size))
                return TETHER_ERR_BAD_ARGUMENT;
        if (!check_passes(c->scalar_out, args->scalar_output_count))
                return TETHER_ERR_BAD_ARGUMENT;
        if (!check_passes(c->struct_out, args->struct_output_size))
                return TETHER_ERR_BAD_ARGUMENT;
        return TETHER_SUCCESS;
}

/* A legacy entry's flag and two counts, said as the four checks. */
static tether_ret_t legacy_to_checks(const tether_external_method *m, method_checks *ret)
{
        switch (m->flags & TETHER_UC_TYPE_MASK) {
        case TETHER_UC_SCALAR_I_SCALAR_O:
                *ret = (method_checks){ m->count0, 0, m->count1, 0 };
                return TETHER_SUCCESS;
        case TETHER_UC_SCALAR_I_STRUCT_O:
                *ret = (method_checks){ m->count0, 0, 0, m->count1 };
                return TETHER_SUCCESS;
        case TETHER_UC_STRUCT_I_STRUCT_O:
                *ret = (method_checks){ 0, m->count0, 0, m->count1 };
                return TETHER_SUCCESS;
        case TETHER_UC_SCALAR_I_STRUCT_I:
                *ret = (method_checks){ m->count0, m->count1, 0, 0 };
                return TETHER_SUCCESS;
        default:
                return TETHER_ERR_BAD_ARGUMENT;
        }
}

/* Whether the six slots can carry the entry's scalars. The marshaller
 * relies on this: it is checked again on every call, not only when the
 * table was handed out, so a table that skipped validation still cannot
 * make it write past its slots. */
static tether_ret_t legacy_shape_ok(const tether_external_method *m, method_checks *ret)
{
        method_checks c;
        if (legacy_to_checks(m, &c) != TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT;
        /* One slot per scalar: there is no way to say "any number". The
         * slot limits below imply this for today's types; said outright so
         * it does not hang on them. */
        if (c.scalar_in == TETHER_VARIABLE_SIZE || c.scalar_out == TETHER_VARIABLE_SIZE)
                return TETHER_ERR_BAD_ARGUMENT;
        switch (m->flags & TETHER_UC_TYPE_MASK) {
        case TETHER_UC_SCALAR_I_SCALAR_O:
                /* Both are below 2^32, so the sum cannot wrap in 64 bits. */
                if ((uint64_t)c.scalar_in + c.scalar_out > LEGACY_SLOTS)
                        return TETHER_ERR_BAD_ARGUMENT;
                break;
        case TETHER_UC_SCALAR_I_STRUCT_O:
        case TETHER_UC_SCALAR_I_STRUCT_I:
                if (c.scalar_in > LEGACY_MAX_SCALARS)
                        return TETHER_ERR_BAD_ARGUMENT;
                break;
        default:
                break;
        }
        if (ret)
                *ret = c;
        return TETHER_SUCCESS;
}

static bool legacy_object_known(uintptr_t object)
{
        return object == TETHER_TARGET_USER_CLIENT || object == TETHER_TARGET_PROVIDER;
}

static bool scalar_check_ok(uint32_t check)
{
        return check == TETHER_VARIABLE_SIZE || check <= TETHER_MAX_SCALARS;
}

/* A table problem, said once for the log that blames the driver. */
static tether_ret_t bad_table(char *why, size_t why_size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static tether_ret_t bad_table(char *why, size_t why_size, const char *fmt, ...)
{
        if (why && why_size) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(why, why_size, fmt, ap);
                va_end(ap);
        }
        return TETHER_ERR_BAD_ARGUMENT;
}

tether_ret_t dispatch_validate_ops_explain(const tether_user_client_ops *ops, char *why, size_t why_size)
{
        if (!ops)
                return bad_table(why, why_size, "no ops");
        bool has_legacy = ops->legacy_methods || ops->legacy_method_count;
        bool has_new = ops->methods || ops->method_count;
        if (has_legacy && has_new)
                return bad_table(why, why_size, "both a legacy and a new-KPI table");
        /* A count without a table would have dispatch index through NULL. */
        if ((ops->legacy_method_count && !ops->legacy_methods) || (ops->method_count && !ops->methods))
                return bad_table(why, why_size, "a method count without a table");

        for (uint32_t i = 0; i < ops->legacy_method_count; i++) {
                const tether_external_method *m = &ops->legacy_methods[i];
                /* Both KPIs follow one rule: a flag this build does not
                 * implement fails closed, never silently ignored. */
                if (m->flags & TETHER_UC_FOREGROUND_ONLY)
                        return bad_table(why, why_size,
                                         "legacy selector %u: kIOUCForegroundOnly is not implemented by tether", i);
                if (m->flags & ~TETHER_UC_TYPE_MASK)
                        return bad_table(why, why_size, "legacy selector %u: unknown flag bits 0x%x", i,
                                         m->flags & ~TETHER_UC_TYPE_MASK);
                if (!legacy_object_known(m->object))
                        return bad_table(why, why_size, "legacy selector %u: unknown target constant", i);
                if (legacy_shape_ok(m, NULL) != TETHER_SUCCESS)
                        return bad_table(why, why_size,
                                         "legacy selector %u: a type or counts the six slots cannot carry", i);
        }
        for (uint32_t i = 0; i < ops->method_count; i++) {
                const tether_method_dispatch *m = &ops->methods[i];
                if (!scalar_check_ok(m->check_scalar_input_count) ||
                    !scalar_check_ok(m->check_scalar_output_count))
                        return bad_table(why, why_size, "selector %u: more than %u scalars", i, TETHER_MAX_SCALARS);
                if (m->flags & ~KNOWN_METHOD_FLAGS)
                        return bad_table(why, why_size, "selector %u: unknown flag bits 0x%x", i,
                                         m->flags & ~KNOWN_METHOD_FLAGS);
        }
        return TETHER_SUCCESS;
}

tether_ret_t dispatch_validate_ops(const tether_user_client_ops *ops)
{
        return dispatch_validate_ops_explain(ops, NULL, 0);
}

/* Step 1 (and a malformed table): find the entry for the selector. */
static tether_ret_t lookup(const tether_user_client_ops *ops, uint32_t selector, method_ref *ret)
{
        bool has_legacy = ops->legacy_methods || ops->legacy_method_count;
        bool has_new = ops->methods || ops->method_count;
        if (has_legacy && has_new)
                return TETHER_ERR_BAD_ARGUMENT;

        memset(ret, 0, sizeof(*ret));
        if (has_new) {
                if (!ops->methods || selector >= ops->method_count)
                        return TETHER_ERR_BAD_ARGUMENT;
                const tether_method_dispatch *m = &ops->methods[selector];
                ret->dispatch = m;
                ret->checks = (method_checks){ m->check_scalar_input_count, m->check_struct_input_size,
                                               m->check_scalar_output_count, m->check_struct_output_size };
                return TETHER_SUCCESS;
        }
        /* No table at all: every selector is out of range. */
        if (!ops->legacy_methods || selector >= ops->legacy_method_count)
                return TETHER_ERR_BAD_ARGUMENT;
        ret->legacy = &ops->legacy_methods[selector];
        return legacy_shape_ok(ret->legacy, &ret->checks);
}

/* Pointers that disagree with their counts would have the method (or the
 * legacy marshaller) read or write through NULL. */
static bool args_consistent(const tether_method_args *args, uint32_t scalar_cap, uint32_t struct_cap)
{
        if (args->scalar_input_count > TETHER_MAX_SCALARS || scalar_cap > TETHER_MAX_SCALARS)
                return false;
        if (args->scalar_input_count && !args->scalar_input)
                return false;
        if (args->struct_input_size && !args->struct_input)
                return false;
        if (scalar_cap && !args->scalar_output)
                return false;
        if (struct_cap && !args->struct_output)
                return false;
        return true;
}

static tether_ret_t resolve_target(const method_ref *m, const dispatch_target *target, void **ret)
{
        void *t;
        if (m->legacy) {
                switch (m->legacy->object) {
                case TETHER_TARGET_USER_CLIENT:
                        t = target->user_client;
                        break;
                case TETHER_TARGET_PROVIDER:
                        t = target->provider;
                        break;
                default:
                        return TETHER_ERR_BAD_ARGUMENT;
                }
        } else {
                t = (m->dispatch->flags & TETHER_METHOD_TARGET_PROVIDER) ? target->provider
                                                                         : target->user_client;
        }
        if (!t)
                return TETHER_ERR_NOT_ATTACHED;
        *ret = t;
        return TETHER_SUCCESS;
}

static void *scalar_slot(uint64_t scalar)
{
        /* The legacy KPI is 32-bit: the top half is dropped, as I/O Kit does. */
        return (void *)(uintptr_t)(uint32_t)scalar;
}

/* Marshal into the six slots as driver.h documents, call, and bring the
 * outputs back. The checks have passed, so the call's counts equal the
 * entry's (never VARIABLE for scalars) and legacy_shape_ok bounded them. */
static tether_ret_t call_legacy(const tether_external_method *m, void *target, tether_method_args *args)
{
        void *slot[LEGACY_SLOTS] = { 0 };
        uint32_t scalar_out[LEGACY_SLOTS] = { 0 };
        uint32_t struct_out_size = args->struct_output_size;
        void *struct_in = (void *)(uintptr_t)args->struct_input; /* legacy functions take void * */
        void *struct_in_size = (void *)(uintptr_t)args->struct_input_size;
        uint32_t type = m->flags & TETHER_UC_TYPE_MASK;
        unsigned n = 0;

        switch (type) {
        case TETHER_UC_SCALAR_I_SCALAR_O:
                for (uint32_t i = 0; i < m->count0; i++)
                        slot[n++] = scalar_slot(args->scalar_input[i]);
                for (uint32_t i = 0; i < m->count1; i++)
                        slot[n++] = &scalar_out[i];
                break;
        case TETHER_UC_SCALAR_I_STRUCT_O:
                for (uint32_t i = 0; i < m->count0; i++)
                        slot[n++] = scalar_slot(args->scalar_input[i]);
                slot[n++] = args->struct_output;
                slot[n++] = &struct_out_size;
                break;
        case TETHER_UC_STRUCT_I_STRUCT_O:
                /* I/O Kit picks the form from the table's counts, not the call's. */
                if (m->count0 && m->count1) {
                        slot[0] = struct_in;
                        slot[1] = args->struct_output;
                        slot[2] = struct_in_size;
                        slot[3] = &struct_out_size;
                } else if (m->count1) {
                        slot[0] = args->struct_output;
                        slot[1] = &struct_out_size;
                } else {
                        slot[0] = struct_in;
                        slot[1] = struct_in_size;
                }
                break;
        case TETHER_UC_SCALAR_I_STRUCT_I:
                for (uint32_t i = 0; i < m->count0; i++)
                        slot[n++] = scalar_slot(args->scalar_input[i]);
                slot[n++] = struct_in;
                slot[n++] = struct_in_size;
                break;
        default:
                return TETHER_ERR_BAD_ARGUMENT; /* legacy_shape_ok refused it already */
        }

        tether_ret_t r = m->func(target, slot[0], slot[1], slot[2], slot[3], slot[4], slot[5]);

        if (type == TETHER_UC_SCALAR_I_SCALAR_O) {
                for (uint32_t i = 0; i < m->count1; i++)
                        args->scalar_output[i] = scalar_out[i];
                args->scalar_output_count = m->count1;
        }
        /* Whatever the method wrote, even more than the capacity: the
         * caller refuses that the same way for both KPIs. */
        if (type == TETHER_UC_SCALAR_I_STRUCT_O || (type == TETHER_UC_STRUCT_I_STRUCT_O && m->count1))
                args->struct_output_size = struct_out_size;
        return r;
}

static tether_ret_t refuse(tether_method_args *args, tether_ret_t r)
{
        args->scalar_output_count = 0;
        args->struct_output_size = 0;
        return r;
}

tether_ret_t dispatch_check(const tether_user_client_ops *ops, const dispatch_target *target,
                            tether_method_args *args, dispatch_method *ret)
{
        if (!args || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        if (!ops || !target)
                return refuse(args, TETHER_ERR_BAD_ARGUMENT);
        const uint32_t scalar_cap = args->scalar_output_count;
        const uint32_t struct_cap = args->struct_output_size;

        method_ref m;
        tether_ret_t r = lookup(ops, args->selector, &m);
        if (r != TETHER_SUCCESS)
                return refuse(args, r);

        uint32_t flags = m.dispatch ? m.dispatch->flags : 0;
        if ((flags & TETHER_METHOD_ADMIN) && !target->caller_is_admin)
                return refuse(args, TETHER_ERR_NOT_PRIVILEGED);
        /* Legacy methods have no flags word of ours, so never ALLOW_ASYNC. */
        if (args->async_ref && !(flags & TETHER_METHOD_ALLOW_ASYNC))
                return refuse(args, TETHER_ERR_UNSUPPORTED);
        if (!args_consistent(args, scalar_cap, struct_cap))
                return refuse(args, TETHER_ERR_BAD_ARGUMENT);
        r = run_checks(&m.checks, args);
        if (r != TETHER_SUCCESS)
                return refuse(args, r);
        if (m.dispatch ? !m.dispatch->function : !m.legacy->func)
                return refuse(args, TETHER_ERR_UNSUPPORTED);
        void *t = NULL;
        r = resolve_target(&m, target, &t);
        if (r != TETHER_SUCCESS)
                return refuse(args, r);
        *ret = (dispatch_method){ .dispatch = m.dispatch, .legacy = m.legacy, .target = t,
                                  .reference = target->reference, .scalar_cap = scalar_cap,
                                  .struct_cap = struct_cap };
        return TETHER_SUCCESS;
}

tether_ret_t dispatch_invoke(const dispatch_method *m, tether_method_args *args)
{
        if (!m || !args || (!m->dispatch == !m->legacy))
                return TETHER_ERR_BAD_ARGUMENT;
        tether_ret_t r;
        if (m->dispatch)
                r = m->dispatch->function(m->target, m->reference, args);
        else
                r = call_legacy(m->legacy, m->target, args);

        /* More than the caller has room for is a driver bug; sending it
         * back would leak or overrun, so nothing goes back. */
        if (args->scalar_output_count > m->scalar_cap || args->struct_output_size > m->struct_cap)
                return refuse(args, TETHER_ERR_BAD_ARGUMENT);
        return r;
}

tether_ret_t dispatch_call(const tether_user_client_ops *ops, const dispatch_target *target,
                           tether_method_args *args)
{
        dispatch_method m;
        tether_ret_t r = dispatch_check(ops, target, args, &m);
        return r == TETHER_SUCCESS ? dispatch_invoke(&m, args) : r;
}
