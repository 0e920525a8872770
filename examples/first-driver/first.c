/* SPDX-License-Identifier: MIT */
/*
 * FirstDriver: the driver docs/first-driver.md builds, a simulated
 * thermometer. Every callback runs on the service's work loop, one at a
 * time, so nothing here needs a lock.
 */
#include <string.h>

#include <tether/driver.h>

#include "first.h"

/* ---- the service: start, stop, its properties ---- */

typedef struct first_service {
        uint64_t samples; /* readings taken, all connections together */
} first_service;

static tether_ret_t first_start(tether_service *svc)
{
        tether_ret_t r = tether_service_set_property_string(svc, "Model", "first-driver thermometer");
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_string(svc, FIRST_PROP_UNITS, "C");
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_double(svc, FIRST_PROP_CALIBRATION, 0.0);
        return r; /* an error: the service is detached, and stop() is not called */
}

static void first_stop(tether_service *svc)
{
        first_service *fs = tether_service_priv(svc);
        tether_service_log(svc, TETHER_LOG_INFO, "stopped after %llu readings", (unsigned long long)fs->samples);
}

/* Check every key first, then apply: a refused write changes nothing. */
static tether_ret_t first_set_properties(tether_service *svc, const tether_task *caller, const tether_value *dict)
{
        for (size_t i = 0; i < tether_value_count(dict); i++) {
                const char *key, *s;
                double d;
                tether_value *v;
                tether_value_dict_entry(dict, i, &key, &v);
                if (!strcmp(key, FIRST_PROP_UNITS)) {
                        if (tether_value_get_string(v, &s) != TETHER_SUCCESS || (strcmp(s, "C") && strcmp(s, "F")))
                                return tether_service_refuse(svc, TETHER_ERR_BAD_ARGUMENT, "Units must be C or F");
                } else if (!strcmp(key, FIRST_PROP_CALIBRATION)) {
                        /* It changes every client's readings: not for anyone. */
                        if (tether_task_has_privilege(caller, TETHER_PRIVILEGE_ADMINISTRATOR) != TETHER_SUCCESS)
                                return tether_service_refuse(svc, TETHER_ERR_NOT_PRIVILEGED,
                                                             "Calibration may be set by an administrator only");
                        if (tether_value_get_double(v, &d) != TETHER_SUCCESS || d < -5 || d > 5)
                                return tether_service_refuse(svc, TETHER_ERR_BAD_ARGUMENT,
                                                             "Calibration must be a double from -5 to 5");
                } else {
                        return tether_service_refuse(svc, TETHER_ERR_NOT_WRITABLE, "%s cannot be set", key);
                }
        }
        for (size_t i = 0; i < tether_value_count(dict); i++) {
                const char *key;
                tether_value *v;
                tether_value_dict_entry(dict, i, &key, &v);
                tether_ret_t r = tether_service_set_property(svc, key, v); /* staged: lands on return */
                if (r != TETHER_SUCCESS)
                        return r;
        }
        return TETHER_SUCCESS;
}

/* ---- the user client: one per connection, with state of its own ---- */

typedef struct first_client {
        uid_t uid;      /* who opened this connection */
        uint64_t reads; /* readings it took */
} first_client;

static tether_ret_t first_init_with_task(tether_user_client *uc, const tether_task *task, uint32_t type)
{
        (void)type;
        first_client *c = tether_user_client_priv(uc); /* zeroed, priv_size bytes */
        c->uid = task->uid;
        return TETHER_SUCCESS;
}

/* The article's check in start: the provider must be one of ours. */
static tether_ret_t first_uc_start(tether_user_client *uc, tether_service *provider)
{
        (void)uc;
        return strcmp(tether_service_class(provider), "FirstDriver") ? TETHER_ERR_BAD_ARGUMENT : TETHER_SUCCESS;
}

/* After a close, a client's death or the service's termination: the last call. */
static void first_uc_stop(tether_user_client *uc)
{
        first_client *c = tether_user_client_priv(uc);
        tether_service *svc = tether_user_client_provider(uc);
        if (svc)
                tether_service_log(svc, TETHER_LOG_INFO, "connection of uid %u ends after %llu readings",
                                   (unsigned)c->uid, (unsigned long long)c->reads);
}

/* The simulated sensor: 21.5 C and a small wobble, calibrated, in Units. */
static int32_t take_reading(tether_service *svc)
{
        first_service *fs = tether_service_priv(svc);
        tether_value *v = NULL;
        double cal = 0;
        const char *units = "C";
        if (tether_service_copy_property(svc, FIRST_PROP_CALIBRATION, &v) == TETHER_SUCCESS)
                tether_value_get_double(v, &cal);
        tether_value_unref(v);
        int32_t milli_c = 21500 + 10 * (int32_t)(fs->samples++ % 5) + (int32_t)(cal * 1000);
        v = NULL;
        if (tether_service_copy_property(svc, FIRST_PROP_UNITS, &v) == TETHER_SUCCESS)
                tether_value_get_string(v, &units);
        bool fahrenheit = !strcmp(units, "F");
        tether_value_unref(v);
        return fahrenheit ? milli_c * 9 / 5 + 32000 : milli_c;
}

/* Methods get the user client as target: TETHER_METHOD_TARGET_PROVIDER is not set. */
static tether_ret_t m_read(void *target, void *reference, tether_method_args *args)
{
        (void)reference;
        tether_service *svc = tether_user_client_provider(target);
        if (!svc)
                return TETHER_ERR_NOT_ATTACHED;
        /* The table said one scalar out: the array has room for it. A
         * negative reading travels as its two's complement. */
        args->scalar_output[0] = (uint64_t)(int64_t)take_reading(svc);
        ((first_client *)tether_user_client_priv(target))->reads++;
        return TETHER_SUCCESS;
}

/* The article's shape: a scalar in, a struct of variable size out. */
static tether_ret_t m_read_many(void *target, void *reference, tether_method_args *args)
{
        (void)reference;
        tether_service *svc = tether_user_client_provider(target);
        uint64_t count = args->scalar_input[0];
        if (count < 1 || count > FIRST_MAX_READINGS)
                return TETHER_ERR_BAD_ARGUMENT;
        if (count * sizeof(int32_t) > args->struct_output_size) /* in: the caller's capacity */
                return TETHER_ERR_NO_SPACE;
        if (!svc)
                return TETHER_ERR_NOT_ATTACHED;
        int32_t *out = args->struct_output;
        for (uint64_t i = 0; i < count; i++)
                out[i] = take_reading(svc);
        ((first_client *)tether_user_client_priv(target))->reads += count;
        args->struct_output_size = (uint32_t)(count * sizeof(int32_t)); /* out: what was written */
        return TETHER_SUCCESS;
}

/* Static and const: tether checks each call against it before a method runs. */
static const tether_method_dispatch first_methods[FIRST_METHOD_COUNT] = {
        /*                  function,    scalars in, struct in, scalars out, struct out,           flags */
        [FIRST_READ]      = { m_read,      0,          0,         1,           0,                    0 },
        [FIRST_READ_MANY] = { m_read_many, 1,          0,         0,           TETHER_VARIABLE_SIZE, 0 },
};
static const char *const first_method_names[FIRST_METHOD_COUNT] = { "read", "readMany" };

static const tether_user_client_ops first_client_ops = {
        .class_name = "FirstUserClient",
        .priv_size = sizeof(first_client),
        .init_with_task = first_init_with_task,
        .start = first_uc_start,
        .stop = first_uc_stop,
        .methods = first_methods,
        .method_count = FIRST_METHOD_COUNT,
        .method_names = first_method_names, /* for tether probe */
};

static tether_ret_t first_new_user_client(tether_service *svc, uint32_t type, const tether_user_client_ops **ret)
{
        (void)svc;
        if (type != 0) /* one kind of connection: type 0 */
                return TETHER_ERR_BAD_ARGUMENT;
        *ret = &first_client_ops;
        return TETHER_SUCCESS;
}

/* ---- the driver, and the bundle's one exported symbol ---- */

static const tether_driver first_driver = {
        .name = "org.example.first.FirstDriver",
        .class_name = "FirstDriver", /* the manifest's "driver" names it by this */
        .priv_size = sizeof(first_service),
        .start = first_start,
        .stop = first_stop,
        .set_properties = first_set_properties,
        .new_user_client = first_new_user_client,
};

TETHER_BUNDLE(&first_driver);
