/* SPDX-License-Identifier: MIT */
#ifndef TETHER_CORE_DISPATCH_H
#define TETHER_CORE_DISPATCH_H

/*
 * Table-driven dispatch of user-client methods, both KPIs, one checker.
 *
 * Every check is table data and runs before any driver code. The order, for
 * both KPIs, and the code each failure returns:
 *   1. selector >= table length                     TETHER_ERR_BAD_ARGUMENT
 *   2. method needs admin, caller is not             TETHER_ERR_NOT_PRIVILEGED
 *   3. async call, method lacks ALLOW_ASYNC
 *      (legacy methods are never async)              TETHER_ERR_UNSUPPORTED
 *   4. scalar input count != check                   TETHER_ERR_BAD_ARGUMENT
 *   5. struct input size != check                    TETHER_ERR_BAD_ARGUMENT
 *   6. scalar output count != check                  TETHER_ERR_BAD_ARGUMENT
 *   7. struct output size != check                   TETHER_ERR_BAD_ARGUMENT
 *   8. NULL function (reserved slot)                 TETHER_ERR_UNSUPPORTED
 *   9. target cannot be resolved (provider gone)     TETHER_ERR_NOT_ATTACHED
 * then the method runs, and afterwards
 *  10. it reported more output than the capacity     TETHER_ERR_BAD_ARGUMENT
 * TETHER_VARIABLE_SIZE in a check means "any" for that one check. Scalar
 * counts over TETHER_MAX_SCALARS never reach here (the wire decoder refuses
 * them) but are refused here too.
 */

#include <stdbool.h>
#include <tether/driver.h>

typedef struct dispatch_target {
        void *user_client;     /* target for TETHER_TARGET_USER_CLIENT */
        void *provider;        /* target for TETHER_TARGET_PROVIDER; NULL once terminated */
        void *reference;       /* passed as `reference` to new-KPI functions */
        bool caller_is_admin;
} dispatch_target;

/*
 * Validate args against ops' table, then call the method.
 *
 * On entry args holds what the client sent: scalar_output_count and
 * struct_output_size are the client's capacities, scalar_output has room
 * for TETHER_MAX_SCALARS values and struct_output for struct_output_size
 * bytes; async_ref is non-NULL for an async call. On return they hold what
 * the method produced (counts are left at 0 when a check fails).
 *
 * Legacy methods: the 64-bit scalars are cut to 32 bits, marshalled into
 * the six slots as driver.h describes, and the 32-bit outputs widened back.
 */
tether_ret_t dispatch_call(const tether_user_client_ops *ops, const dispatch_target *target,
                           tether_method_args *args);

/*
 * The same in two steps, for a caller that has work to do between the
 * checks and the call: tetherd copies an out-of-line input only once every
 * check has passed, so a call the table refuses costs nothing however
 * large the input it names. dispatch_check runs steps 1-9 (on failure args
 * is left as dispatch_call leaves it); dispatch_invoke runs the method and
 * step 10. args may change between them only in where struct_input points.
 */
typedef struct dispatch_method {
        const tether_method_dispatch *dispatch;   /* new KPI, else NULL */
        const tether_external_method *legacy;     /* legacy KPI, else NULL */
        void *target;
        void *reference;
        uint32_t scalar_cap, struct_cap;          /* the caller's capacities */
} dispatch_method;

tether_ret_t dispatch_check(const tether_user_client_ops *ops, const dispatch_target *target,
                            tether_method_args *args, dispatch_method *ret);
tether_ret_t dispatch_invoke(const dispatch_method *m, tether_method_args *args);

/*
 * Check a user client's tables once, when a driver hands them out: exactly
 * one table (or none); legacy entries with a known type, a known target
 * constant, and counts the six slots can carry (scalar-in/scalar-out:
 * in + out <= 6; scalar-in/struct-x: in <= 4; scalar counts never
 * VARIABLE; no flag bits beyond the type: unknown ones and
 * TETHER_UC_FOREGROUND_ONLY, which tether does not implement, fail closed);
 * new-KPI scalar checks <= TETHER_MAX_SCALARS or VARIABLE, and
 * no TETHER_METHOD_* bit this build does not know (a policy it cannot
 * enforce fails closed rather than being ignored).
 * TETHER_ERR_BAD_ARGUMENT for a bad table (a driver bug).
 */
tether_ret_t dispatch_validate_ops(const tether_user_client_ops *ops);
/* The same, writing what is wrong (which selector, which rule) into why. */
tether_ret_t dispatch_validate_ops_explain(const tether_user_client_ops *ops, char *why, size_t why_size);

#endif
