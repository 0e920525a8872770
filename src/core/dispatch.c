/* SPDX-License-Identifier: MIT */
#include "core/dispatch.h"

#include <string.h>

/* The four checks of a method, whichever KPI it came from. */
typedef struct checks {
        uint32_t scalar_in, struct_in, scalar_out, struct_out;
} checks;

static bool fits(uint32_t check, uint32_t got)
{
        return check == TETHER_VARIABLE_SIZE || check == got;
}

/* The one checker: I/O Kit's four count checks, in I/O Kit's order. */
static tether_ret_t check_counts(const checks *c, const tether_method_args *a)
{
        if (!fits(c->scalar_in, a->scalar_input_count))
                return TETHER_ERR_BAD_ARGUMENT;
        if (!fits(c->struct_in, a->struct_input_size))
                return TETHER_ERR_BAD_ARGUMENT;
        if (!fits(c->scalar_out, a->scalar_output_count))
                return TETHER_ERR_BAD_ARGUMENT;
        if (!fits(c->struct_out, a->struct_output_size))
                return TETHER_ERR_BAD_ARGUMENT;
        return TETHER_SUCCESS;
}

/* What a legacy entry's flag and counts mean as the four checks. */
static bool legacy_checks(const tether_external_method *m, checks *ret)
{
        switch (m->flags & TETHER_UC_TYPE_MASK) {
        case TETHER_UC_SCALAR_I_SCALAR_O:
                *ret = (checks){ m->count0, 0, m->count1, 0 };
                return true;
        case TETHER_UC_SCALAR_I_STRUCT_O:
                *ret = (checks){ m->count0, 0, 0, m->count1 };
                return true;
        case TETHER_UC_STRUCT_I_STRUCT_O:
                *ret = (checks){ 0, m->count0, 0, m->count1 };
                return true;
        case TETHER_UC_SCALAR_I_STRUCT_I:
                *ret = (checks){ m->count0, m->count1, 0, 0 };
                return true;
        default:
                return false;
        }
}

static bool legacy_entry_ok(const tether_external_method *m)
{
        checks c;
        if (!legacy_checks(m, &c) || (m->object != TETHER_TARGET_USER_CLIENT && m->object != TETHER_TARGET_PROVIDER))
                return false;
        /* Legacy scalar counts are exact: the six slots have no "variable". */
        if (c.scalar_in == TETHER_VARIABLE_SIZE || c.scalar_out == TETHER_VARIABLE_SIZE)
                return false;
        switch (m->flags & TETHER_UC_TYPE_MASK) {
        case TETHER_UC_SCALAR_I_SCALAR_O:
                return (uint64_t)c.scalar_in + c.scalar_out <= 6;
        case TETHER_UC_SCALAR_I_STRUCT_O:
        case TETHER_UC_SCALAR_I_STRUCT_I:
                return c.scalar_in <= 4;
        default:
                return true;
        }
}

tether_ret_t dispatch_validate_ops(const tether_user_client_ops *ops)
{
        if (!ops)
                return TETHER_ERR_BAD_ARGUMENT;
        bool has_legacy = ops->legacy_methods || ops->legacy_method_count;
        bool has_new = ops->methods || ops->method_count;
        if (has_legacy && has_new)
                return TETHER_ERR_BAD_ARGUMENT;
        if ((ops->legacy_method_count && !ops->legacy_methods) || (ops->method_count && !ops->methods))
                return TETHER_ERR_BAD_ARGUMENT;
        for (uint32_t i = 0; i < ops->legacy_method_count; i++)
                if (!legacy_entry_ok(&ops->legacy_methods[i]))
                        return TETHER_ERR_BAD_ARGUMENT;
        for (uint32_t i = 0; i < ops->method_count; i++) {
                const tether_method_dispatch *m = &ops->methods[i];
                if ((m->check_scalar_input_count != TETHER_VARIABLE_SIZE && m->check_scalar_input_count > TETHER_MAX_SCALARS) ||
                    (m->check_scalar_output_count != TETHER_VARIABLE_SIZE && m->check_scalar_output_count > TETHER_MAX_SCALARS))
                        return TETHER_ERR_BAD_ARGUMENT;
        }
        return TETHER_SUCCESS;
}

/* Marshal into the six slots exactly as driver.h documents, call, and
 * bring the 32-bit outputs back. */
static tether_ret_t call_legacy(const tether_external_method *m, void *target, tether_method_args *a)
{
        void *p[6] = { 0 };
        uint32_t outs[6] = { 0 };
        uint32_t out_size = a->struct_output_size;
        unsigned k = 0;
        uint32_t type = m->flags & TETHER_UC_TYPE_MASK;

        switch (type) {
        case TETHER_UC_SCALAR_I_SCALAR_O:
                for (uint32_t i = 0; i < a->scalar_input_count; i++)
                        p[k++] = (void *)(uintptr_t)(uint32_t)a->scalar_input[i];
                for (uint32_t i = 0; i < a->scalar_output_count; i++)
                        p[k++] = &outs[i];
                break;
        case TETHER_UC_SCALAR_I_STRUCT_O:
                for (uint32_t i = 0; i < a->scalar_input_count; i++)
                        p[k++] = (void *)(uintptr_t)(uint32_t)a->scalar_input[i];
                p[k++] = a->struct_output;
                p[k++] = &out_size;
                break;
        case TETHER_UC_STRUCT_I_STRUCT_O:
                if (m->count0 && m->count1) {
                        p[0] = (void *)a->struct_input;
                        p[1] = a->struct_output;
                        p[2] = (void *)(uintptr_t)a->struct_input_size;
                        p[3] = &out_size;
                } else if (m->count1) {
                        p[0] = a->struct_output;
                        p[1] = &out_size;
                } else {
                        p[0] = (void *)a->struct_input;
                        p[1] = (void *)(uintptr_t)a->struct_input_size;
                }
                break;
        case TETHER_UC_SCALAR_I_STRUCT_I:
                for (uint32_t i = 0; i < a->scalar_input_count; i++)
                        p[k++] = (void *)(uintptr_t)(uint32_t)a->scalar_input[i];
                p[k++] = (void *)a->struct_input;
                p[k++] = (void *)(uintptr_t)a->struct_input_size;
                break;
        }

        tether_ret_t r = m->func(target, p[0], p[1], p[2], p[3], p[4], p[5]);
        /* An oversized out_size is reported as is: dispatch_call refuses it
         * the same way for both KPIs. */
        bool has_struct_out = type == TETHER_UC_SCALAR_I_STRUCT_O || type == TETHER_UC_STRUCT_I_STRUCT_O;
        for (uint32_t i = 0; type == TETHER_UC_SCALAR_I_SCALAR_O && i < a->scalar_output_count; i++)
                a->scalar_output[i] = outs[i];
        a->struct_output_size = has_struct_out ? out_size : 0;
        return r;
}

tether_ret_t dispatch_call(const tether_user_client_ops *ops, const dispatch_target *target, tether_method_args *a)
{
        if (!ops || !target || !a)
                return TETHER_ERR_BAD_ARGUMENT;
        const uint32_t scalar_cap = a->scalar_output_count, struct_cap = a->struct_output_size;
        /* Nothing goes back unless the method ran and stayed in bounds. */
        a->scalar_output_count = 0;
        a->struct_output_size = 0;

        const tether_method_dispatch *nm = NULL;
        const tether_external_method *lm = NULL;
        checks c = { 0 };
        bool admin = false, allow_async = false, provider = false, has_function;
        if (ops->methods) {
                if (a->selector >= ops->method_count)
                        return TETHER_ERR_BAD_ARGUMENT;
                nm = &ops->methods[a->selector];
                c = (checks){ nm->check_scalar_input_count, nm->check_struct_input_size,
                              nm->check_scalar_output_count, nm->check_struct_output_size };
                admin = nm->flags & TETHER_METHOD_ADMIN;
                allow_async = nm->flags & TETHER_METHOD_ALLOW_ASYNC;
                provider = nm->flags & TETHER_METHOD_TARGET_PROVIDER;
                has_function = nm->function != NULL;
        } else {
                if (!ops->legacy_methods || a->selector >= ops->legacy_method_count)
                        return TETHER_ERR_BAD_ARGUMENT;
                lm = &ops->legacy_methods[a->selector];
                if (!legacy_entry_ok(lm))
                        return TETHER_ERR_BAD_ARGUMENT;
                legacy_checks(lm, &c);
                provider = lm->object == TETHER_TARGET_PROVIDER;
                has_function = lm->func != NULL;
        }

        if (admin && !target->caller_is_admin)
                return TETHER_ERR_NOT_PRIVILEGED;
        if (a->async_ref && !allow_async)
                return TETHER_ERR_UNSUPPORTED;
        if (a->scalar_input_count > TETHER_MAX_SCALARS || scalar_cap > TETHER_MAX_SCALARS)
                return TETHER_ERR_BAD_ARGUMENT;
        a->scalar_output_count = scalar_cap;
        a->struct_output_size = struct_cap;
        tether_ret_t r = check_counts(&c, a);
        if (r == TETHER_SUCCESS && !has_function)
                r = TETHER_ERR_UNSUPPORTED;
        void *t = provider ? target->provider : target->user_client;
        if (r == TETHER_SUCCESS && !t)
                r = TETHER_ERR_NOT_ATTACHED;
        if (r != TETHER_SUCCESS) {
                a->scalar_output_count = 0;
                a->struct_output_size = 0;
                return r;
        }
        r = nm ? nm->function(t, target->reference, a) : call_legacy(lm, t, a);
        /* A method claiming more than the caller's room is a driver bug;
         * nothing of it goes back. */
        if (a->scalar_output_count > scalar_cap || a->struct_output_size > struct_cap) {
                a->scalar_output_count = 0;
                a->struct_output_size = 0;
                return TETHER_ERR_BAD_ARGUMENT;
        }
        return r;
}
