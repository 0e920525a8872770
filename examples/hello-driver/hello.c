/* SPDX-License-Identifier: MIT */
/*
 * HelloDriver: the smallest useful tether driver, built outside tether's
 * source tree. Read it top to bottom.
 *
 * manifest.json says when it runs: on the ExampleDeviceNub whose "Unit" is
 * 42. tetherd matches that without loading this code; when the nub appears,
 * a driver host loads hello.so, looks up the bundle's drivers (the
 * TETHER_BUNDLE line at the end) and calls start() on a new HelloDriver
 * service attached below the nub.
 *
 * Every callback below runs on the service's own work loop, one at a time,
 * so nothing here needs a lock.
 */
#include <string.h>

#include <tether/driver.h>

/* The method selectors applications call. Put these in a header you share
 * with your applications; they are the driver's public contract. */
enum { HELLO_ADD, HELLO_GREET, HELLO_METHOD_COUNT };

#define GREETING_MAX 64 /* bytes */

/* ---- the service ---- */

/* Publish the properties applications see with `tether reg -l`. An error
 * here detaches the service, and the next matching driver may try. */
static tether_ret_t hello_start(tether_service *svc)
{
        tether_ret_t r = tether_service_set_property_string(svc, "Greeting", "hello");
        /* The nub's properties are readable through the provider. */
        tether_value *unit = NULL;
        if (r == TETHER_SUCCESS)
                r = tether_service_get_provider_property(svc, "Unit", &unit);
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property(svc, "Unit", unit); /* takes its own reference */
        tether_value_unref(unit);
        return r;
}

/* `tether reg set HelloDriver Greeting hi` lands here. caller is who
 * writes (uid, gid, pid): a greeting is harmless, so anyone may set it; a
 * key that changed what others get would first ask
 * tether_task_has_privilege(caller, TETHER_PRIVILEGE_ADMINISTRATOR).
 * dict holds only the keys the client wants to set: check all of them
 * first, and refuse the whole request if any is wrong, so a bad write
 * changes nothing. tether_service_refuse tells the writer why. */
static tether_ret_t hello_set_properties(tether_service *svc, const tether_task *caller, const tether_value *dict)
{
        (void)caller;
        for (size_t i = 0; i < tether_value_count(dict); i++) {
                const char *key, *s;
                tether_value *v;
                tether_value_dict_entry(dict, i, &key, &v);
                if (strcmp(key, "Greeting")) /* Unit, and keys we do not know */
                        return tether_service_refuse(svc, TETHER_ERR_NOT_WRITABLE, "only Greeting can be set");
                if (tether_value_get_string(v, &s) != TETHER_SUCCESS || !*s || strlen(s) > GREETING_MAX)
                        return tether_service_refuse(svc, TETHER_ERR_BAD_ARGUMENT,
                                                     "Greeting must be a string of 1 to %d bytes", GREETING_MAX);
        }
        tether_value *greeting = NULL;
        if (tether_value_dict_get(dict, "Greeting", &greeting) != TETHER_SUCCESS)
                return TETHER_SUCCESS; /* an empty request */
        return tether_service_set_property(svc, "Greeting", greeting);
}

/* ---- the user client: what a connection (tether_service_open) can call ---- */

/* add: two 64-bit scalars in, their sum out. tether has already checked the
 * counts against the table below, so the arrays are as long as it says. */
static tether_ret_t hello_add(void *target, void *reference, tether_method_args *args)
{
        (void)target, (void)reference; /* every method has this signature; add needs neither */
        args->scalar_output[0] = args->scalar_input[0] + args->scalar_input[1];
        return TETHER_SUCCESS;
}

/* greet: the Greeting property as a struct out of variable size (its bytes,
 * no terminating NUL). struct_output_size arrives as the caller's capacity
 * and goes back as what we wrote. target is this connection's user client. */
static tether_ret_t hello_greet(void *target, void *reference, tether_method_args *args)
{
        (void)reference;
        tether_service *svc = tether_user_client_provider(target);
        if (!svc)
                return TETHER_ERR_NOT_ATTACHED; /* the service is going away */
        tether_value *v = NULL;
        const char *s = NULL;
        tether_ret_t r = tether_service_copy_property(svc, "Greeting", &v);
        if (r == TETHER_SUCCESS)
                r = tether_value_get_string(v, &s);
        if (r == TETHER_SUCCESS && strlen(s) > args->struct_output_size)
                r = TETHER_ERR_NO_SPACE;
        if (r == TETHER_SUCCESS) {
                args->struct_output_size = (uint32_t)strlen(s);
                memcpy(args->struct_output, s, args->struct_output_size);
        }
        tether_value_unref(v);
        return r;
}

/* The method table (I/O Kit's IOExternalMethodDispatch). tether refuses a
 * call whose selector or argument shapes do not match it, before any of
 * our code runs. */
static const tether_method_dispatch hello_methods[HELLO_METHOD_COUNT] = {
        /*               function,    scalars in, struct in, scalars out, struct out,          flags */
        [HELLO_ADD]   = { hello_add,   2,          0,         1,           0,                   0 },
        [HELLO_GREET] = { hello_greet, 0,          0,         0,           TETHER_VARIABLE_SIZE, 0 },
};
static const char *const hello_method_names[HELLO_METHOD_COUNT] = { "add", "greet" }; /* for tether probe */

static const tether_user_client_ops hello_client_ops = {
        .class_name = "HelloUserClient",
        .methods = hello_methods,
        .method_count = HELLO_METHOD_COUNT,
        .method_names = hello_method_names,
};

/* One kind of connection, type 0. */
static tether_ret_t hello_new_user_client(tether_service *svc, uint32_t type, const tether_user_client_ops **ret)
{
        (void)svc;
        if (type != 0)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret = &hello_client_ops;
        return TETHER_SUCCESS;
}

/* ---- the driver, and the bundle's one exported symbol ---- */

static const tether_driver hello_driver = {
        .name = "org.example.hello.HelloDriver",
        .class_name = "HelloDriver", /* the manifest's "driver" names it by this */
        .start = hello_start,
        .set_properties = hello_set_properties,
        .new_user_client = hello_new_user_client,
};

TETHER_BUNDLE(&hello_driver);
