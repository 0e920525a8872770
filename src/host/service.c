/* SPDX-License-Identifier: MIT */
/*
 * A service as its driver sees it: its life on its work loop (start, stop),
 * property writes through the driver's hook, and the driver API
 * (include/tether/driver.h). What touches the registry goes through the
 * env (host/env.h), so the same code serves in tetherd and in a driver host.
 */
#include "host/runtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "host/probes.h"
#include "wire/message.h"
#include "wire/reason.h"

_Static_assert(TETHER_MAX_REASON == WIRE_MAX_REASON, "the driver API's bound is the wire's");

void service_runtime_init(tether_service *s, const char *bundle_id)
{
        log_limit_init(&s->log);
        log_limit_set_bundle(&s->log, bundle_id);
        if (bundle_id)
                snprintf(s->log_who, sizeof(s->log_who), "bundle %s: %s (0x%llx)", bundle_id, s->class_name,
                         (unsigned long long)s->id);
        else
                snprintf(s->log_who, sizeof(s->log_who), "%s (0x%llx)", s->class_name, (unsigned long long)s->id);
}

tether_service *service_ref(tether_service *s)
{
        if (s)
                atomic_fetch_add(&s->refs, 1);
        return s;
}

tether_service *service_unref(tether_service *s)
{
        if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
                return NULL;
        env_service_release(s);
        workloop_free(s->loop);
        service_timers_release(s);
        log_limit_flush(&s->log, s->log_who);
        log_limit_destroy(&s->log);
        tether_value_unref(s->staged);
        free(s->priv);
        free(s);
        return NULL;
}

/* The service whose work loop this thread is, if it is one: a loop serves
 * only its service, and a log line about a driver's async results names
 * the driver from it. */
static __thread const tether_service *loop_service;

tether_ret_t service_run_start(tether_service *s)
{
        probe_current.service_id = s->id; /* this loop serves only s */
        loop_service = s;
        if (s->terminated)
                return TETHER_ERR_ABORTED;
        tether_ret_t r = s->driver->start ? s->driver->start(s) : TETHER_SUCCESS;
        if (r != TETHER_SUCCESS) {
                /* No stop() follows a failed start: timers it left armed are
                 * told now, and can be armed no more. */
                service_timers_abort(s);
        }
        return r;
}

bool service_run_stop(tether_service *s)
{
        if (s->terminated)
                return false;
        s->terminated = true;
        /* Timers first, while every stop() is still to come: an owner told
         * its timer is aborted finds its state as it left it. */
        service_timers_abort(s);
        user_client_stop_all(s);
        if (s->started && s->driver->stop)
                s->driver->stop(s);
        log_limit_flush(&s->log, s->log_who); /* its last word: what was held back */
        return true;
}

void service_finish_if_idle(tether_service *s)
{
        if (s->terminated && !s->clients)
                workloop_finish(s->loop, env_service_loop_exit, s);
}

/* ---- properties ---- */

tether_ret_t service_set_properties(tether_service *s, const tether_task *caller, const tether_value *dict,
                                    char *reason)
{
        reason[0] = '\0';
        if (s->terminated)
                return TETHER_ERR_NOT_ATTACHED;
        if (!s->driver->set_properties)
                return TETHER_ERR_UNSUPPORTED;
        tether_ret_t r = tether_value_new_dict(&s->staged);
        if (r != TETHER_SUCCESS)
                return r;
        s->refusal = reason;
        r = s->driver->set_properties(s, caller, dict);
        s->refusal = NULL;
        if (r == TETHER_SUCCESS) {
                reason[0] = '\0'; /* a reason goes only with a refusal */
                r = env_service_apply(s, s->staged);
        }
        s->staged = tether_value_unref(s->staged);
        return r;
}

tether_ret_t tether_service_refuse(tether_service *svc, tether_ret_t err, const char *fmt, ...)
{
        if (err == TETHER_SUCCESS)
                return TETHER_ERR_BAD_ARGUMENT;
        /* Only the hook's own thread may write the reason: it is the hook's. */
        if (!svc || !fmt || !svc->refusal || !workloop_on_thread(svc->loop))
                return err;
        /* Formatted in full first, so a cut is noticed and its size told. */
        char text[1024];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        if (n < 0)
                return err;
        bool cut = false;
        wire_reason_clean(text, svc->refusal, &cut);
        if (cut && !svc->refusal_cut_logged) {
                svc->refusal_cut_logged = true;
                log_warn("driver %s (%s): a refusal reason of %d bytes was cut to %u "
                         "(TETHER_MAX_REASON; logged once per service)",
                         svc->driver->name, svc->class_name, n, TETHER_MAX_REASON);
        }
        return err;
}

/* ---- who asks ---- */

tether_ret_t tether_task_has_privilege(const tether_task *task, uint32_t privilege)
{
        if (!task || privilege != TETHER_PRIVILEGE_ADMINISTRATOR)
                return TETHER_ERR_BAD_ARGUMENT;
        /* tetherd decided when the client came (uid 0, or its admin
         * group): one decision, whichever process the driver runs in. */
        return (task->privileges & privilege) ? TETHER_SUCCESS : TETHER_ERR_NOT_PRIVILEGED;
}

/* ---- the driver API ---- */

void *tether_service_priv(tether_service *svc)
{
        return svc ? svc->priv : NULL;
}

uint64_t tether_service_id(tether_service *svc)
{
        return svc ? svc->id : 0;
}

const char *tether_service_class(tether_service *svc)
{
        return svc ? svc->class_name : NULL;
}

tether_ret_t tether_service_get_provider_property(tether_service *svc, const char *key, tether_value **ret)
{
        if (!svc || !key || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        return env_service_provider_property(svc, key, ret);
}

tether_ret_t tether_service_open_provider_device(tether_service *svc, tether_device_kind *ret_kind, int *ret_fd)
{
        if (!svc || !ret_kind || !ret_fd)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret_fd = -1;
        return env_service_open_device(svc, ret_kind, ret_fd);
}

tether_ret_t tether_service_set_property(tether_service *svc, const char *key, tether_value *v)
{
        if (!svc || !key || !v)
                return TETHER_ERR_BAD_ARGUMENT;
        /* Inside set_properties the change is staged and lands with the rest. */
        if (svc->staged && workloop_on_thread(svc->loop))
                return tether_value_dict_set(svc->staged, key, v);
        tether_value *one = NULL;
        tether_ret_t r = tether_value_new_dict(&one);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set(one, key, v);
        if (r == TETHER_SUCCESS)
                r = env_service_apply(svc, one);
        tether_value_unref(one);
        return r;
}

/* Set a freshly made value (made: its constructor's result) and drop our
 * reference: each shorthand below is this. */
static tether_ret_t set_made(tether_service *svc, const char *key, tether_ret_t made, tether_value *v)
{
        tether_ret_t r = made == TETHER_SUCCESS ? tether_service_set_property(svc, key, v) : made;
        tether_value_unref(v);
        return r;
}

tether_ret_t tether_service_set_property_string(tether_service *svc, const char *key, const char *s)
{
        tether_value *v = NULL;
        tether_ret_t r = tether_value_new_string(s, &v);
        return set_made(svc, key, r, v);
}

tether_ret_t tether_service_set_property_uint(tether_service *svc, const char *key, uint64_t x, unsigned bits)
{
        tether_value *v = NULL;
        tether_ret_t r = tether_value_new_uint(x, bits, &v);
        return set_made(svc, key, r, v);
}

tether_ret_t tether_service_set_property_double(tether_service *svc, const char *key, double x)
{
        tether_value *v = NULL;
        tether_ret_t r = tether_value_new_double(x, &v);
        return set_made(svc, key, r, v);
}

tether_ret_t tether_service_set_property_bool(tether_service *svc, const char *key, bool x)
{
        tether_value *v = NULL;
        tether_ret_t r = tether_value_new_bool(x, &v);
        return set_made(svc, key, r, v);
}

tether_ret_t tether_service_remove_property(tether_service *svc, const char *key)
{
        if (!svc || !key)
                return TETHER_ERR_BAD_ARGUMENT;
        return env_service_remove(svc, key);
}

tether_ret_t tether_service_copy_property(tether_service *svc, const char *key, tether_value **ret)
{
        if (!svc || !key || !ret)
                return TETHER_ERR_BAD_ARGUMENT;
        return env_service_copy(svc, key, ret);
}

tether_ret_t tether_service_publish_nub(tether_service *svc, const char *class_name, const char *name,
                                        const char *location, tether_value *props, uint64_t *ret_id)
{
        if (!svc || !class_name || !name)
                return TETHER_ERR_BAD_ARGUMENT;
        return env_service_publish_nub(svc, class_name, name, location, props, ret_id);
}

tether_ret_t tether_service_terminate_nub(tether_service *svc, uint64_t nub_id)
{
        if (!svc)
                return TETHER_ERR_BAD_ARGUMENT;
        return env_service_terminate_nub(svc, nub_id);
}

typedef struct scheduled {
        tether_service *svc;      /* referenced */
        void (*fn)(tether_service *, void *);
        void *ctx;
} scheduled;

static void run_scheduled(void *arg)
{
        scheduled *j = arg;
        /* A terminated service's timers are dropped, not run: its driver
         * has been stopped. */
        if (!j->svc->terminated)
                j->fn(j->svc, j->ctx);
        service_unref(j->svc);
        free(j);
}

tether_ret_t tether_service_schedule(tether_service *svc, uint32_t delay_ms,
                                     void (*fn)(tether_service *svc, void *ctx), void *ctx)
{
        if (!svc || !fn)
                return TETHER_ERR_BAD_ARGUMENT;
        /* Work a stopped service would drop: refused instead, so ctx stays
         * with whoever can still free it. (Off the loop the flag cannot be
         * read safely; such work is dropped when it comes due.) */
        if (workloop_on_thread(svc->loop) && svc->terminated) {
                service_log_bug(svc, "tether_service_schedule on a stopped service: refused (NotAttached)");
                return TETHER_ERR_NOT_ATTACHED;
        }
        scheduled *j = malloc(sizeof(*j));
        if (!j)
                return TETHER_ERR_NO_MEMORY;
        *j = (scheduled){ .svc = service_ref(svc), .fn = fn, .ctx = ctx };
        tether_ret_t r = workloop_post(svc->loop, delay_ms, run_scheduled, j);
        if (r != TETHER_SUCCESS) {
                service_unref(j->svc);
                free(j);
        }
        return r;
}

/* Drivers sending on connections that closed, however many, are said at
 * most a burst per window: a stream's timer may fire after its client left,
 * which is no fault, but a driver that keeps sending after it was told is. */
static log_limit closed_log = { .lock = PTHREAD_MUTEX_INITIALIZER };

tether_ret_t tether_async_send(const tether_async_ref *ref, tether_ret_t result, const uint64_t *args,
                               uint32_t count, uint32_t flags)
{
        if (!ref || count > TETHER_MAX_ASYNC_ARGS || (count && !args) || (flags & ~TETHER_ASYNC_LAST))
                return TETHER_ERR_BAD_ARGUMENT;
        bool last = flags & TETHER_ASYNC_LAST;
        static __thread wire_msg m;
        wire_msg_init(&m, WIRE_NOTIFY_ASYNC, 0, TETHER_SUCCESS);
        wire_put_bytes(&m, ref->words, sizeof(ref->words));
        wire_put_u32(&m, (uint32_t)result);
        wire_put_u32(&m, count);
        wire_put_u32(&m, last ? WIRE_ASYNC_LAST : 0);
        wire_put_u32(&m, 0);
        wire_put_bytes(&m, args, count * sizeof(uint64_t));
        wire_msg_finish(&m);
        bool conn_closed = false;
        tether_ret_t r = user_client_async_send(ref, &m, last, &conn_closed);
        if (r == TETHER_ERR_NOT_ATTACHED) {
                /* Named as the driver's own lines are (tether_service_log),
                 * but limited apart from them: a client closing streams
                 * must not be able to silence what the driver says. */
                const char *who = loop_service ? loop_service->log_who : "a driver (not on its work loop)";
                log_limited(&closed_log, LOG_LVL_INFO, "drivers' late async results",
                            "%s: async result for connection %llu, %s: dropped (NotAttached)", who,
                            (unsigned long long)ref->connection,
                            conn_closed ? "which has closed" : "whose client closed the notification port");
        }
        /* Probes see every result sent and what became of it: a stream
         * whose results are dropped at a full port shows as such. */
        if (probe_on())
                probe_async(ref, result, args, count, last ? WIRE_ASYNC_LAST : 0, r);
        return r;
}

tether_ret_t tether_async_complete(const tether_async_ref *ref, tether_ret_t result, const uint64_t *args,
                                   uint32_t count)
{
        return tether_async_send(ref, result, args, count, TETHER_ASYNC_LAST);
}
