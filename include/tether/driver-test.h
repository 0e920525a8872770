/* SPDX-License-Identifier: MIT */
#ifndef TETHER_DRIVER_TEST_H
#define TETHER_DRIVER_TEST_H

/*
 * The driver test harness (libtether-driver-test, pkg-config
 * tether-driver-test): a driver's bundle run inside the test's own process,
 * with no tetherd and no driver host, for a driver writer's unit tests
 * (docs/driver-testing.md).
 *
 * What runs is the real thing on both sides. The driver runs in the same
 * driver runtime as in a driver host: each service on a work loop of its
 * own, its calls decoded and checked against its method table by the same
 * code, its timers, scheduled work and log as there. The test talks to it
 * through libtether: tether_test_session_open gives a tether_session *
 * connected to the harness, on which tether_service_open, tether_call_*
 * (async ones too, with a notification port), tether_map_memory and
 * tether_registry_entry_{get,set}_propert* work as against tetherd. A
 * driver's own client code can therefore be tested unchanged.
 *
 * What the harness does not do is tetherd's part: it matches nothing by
 * itself (the test says which driver starts on which nub; tether_test_match
 * checks the manifest's personalities), publishes no devices, and its
 * sessions answer only what a driver's client needs (below).
 *
 *     tether_test *t;
 *     tether_test_bundle *b;
 *     tether_test_nub *nub;
 *     tether_test_service *svc;
 *     tether_test_new(&t);
 *     tether_test_load(t, "build/org.example.hello.tether", &b);
 *     tether_test_nub_new(t, "ExampleDeviceNub", props, &nub);
 *     tether_test_start(b, "HelloDriver", nub, &svc);       // its start(), on its loop
 *     tether_session *s;
 *     tether_task user = { .uid = 1000, .gid = 1000 };       // no privileges
 *     tether_test_session_open(t, &user, &s);
 *     tether_connect *c;
 *     tether_service_open(s, tether_test_service_id(svc), 0, 0, &c);
 *     tether_call_scalar_method(c, HELLO_ADD, in, 2, out, &n);
 *     tether_service_close(c);
 *     tether_session_close(s);
 *     tether_test_free(t);                                  // stops it, frees everything
 *
 * Handles (tether_test *, bundles, nubs, services) are plain pointers,
 * valid until tether_test_free; stopping a service or terminating a nub
 * ends what runs (threads, the driver's state) at once and keeps the small
 * handle for the test to ask about. Call the functions from the test's
 * threads, never from driver code. Every function checks its arguments
 * (TETHER_ERR_BAD_ARGUMENT).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <tether/driver.h>
#include <tether/return.h>
#include <tether/tether.h>
#include <tether/value.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tether_test tether_test;
typedef struct tether_test_bundle tether_test_bundle;
typedef struct tether_test_nub tether_test_nub;
typedef struct tether_test_service tether_test_service;

/* ---- the harness ---- */

/*
 * The harness, with its session socket in a private temporary folder. One
 * per process at a time (TETHER_ERR_BUSY otherwise): the driver API is the
 * process's, as it is in a driver host. The log level is TETHER_LOG's
 * (debug, info, warning, error), as for tetherd.
 */
tether_ret_t tether_test_new(tether_test **ret);
/*
 * Everything ends, as when tetherd exits: every service still running is
 * stopped (armed timers told TETHER_ERR_ABORTED, user clients and driver
 * stopped), connections the test left open are cut, sessions hung up, the
 * socket removed, every handle freed. Bundle libraries stay loaded (as in
 * tetherd: code they started may still be referenced). NULL is fine.
 */
void tether_test_free(tether_test *t);
/* The session socket's path, for code that opens its session itself
 * (tether_session_open(path), or TETHER_SOCKET). Such a session is the
 * test process's own uid and gid. */
const char *tether_test_socket(tether_test *t);

/* ---- bundles ---- */

/*
 * Load a bundle: a bundle folder (<id>.tether with manifest.json: the
 * manifest is read and checked as tetherd checks it, every personality's
 * driver must be in the library, and its access policy applies to opens),
 * or a bare shared object (no manifest: no personalities, anyone may open).
 * TETHER_ERR_NOT_FOUND: no such folder or file, or a library that does not
 * load (dlopen's reason logged); TETHER_ERR_BAD_ARGUMENT: a manifest
 * tetherd would refuse (its reason logged); TETHER_ERR_UNSUPPORTED: no
 * TETHER_BUNDLE entry for this TETHER_DRIVER_ABI.
 */
tether_ret_t tether_test_load(tether_test *t, const char *path, tether_test_bundle **ret);
/*
 * Which driver tetherd would start on nub from this bundle: the driver of
 * the personality matching it (IOProviderClass, IOPropertyMatch, ...) with
 * the highest IOProbeScore, first in the manifest on a tie. *ret_driver is
 * the bundle's string. Personalities of every IOMatchCategory compete here:
 * tetherd would also start the best of each other category.
 * TETHER_ERR_NOT_FOUND if none matches,
 * TETHER_ERR_UNSUPPORTED for a bundle loaded without a manifest.
 */
tether_ret_t tether_test_match(tether_test_bundle *b, tether_test_nub *nub, const char **ret_driver);

/* ---- nubs: the providers drivers start on ---- */

/* A nub of class_name (also its name) with a copy of props (a dict, or
 * NULL for none): what a bus publishes for a device, as tetherd's
 * TetherResources or a USB nub. */
tether_ret_t tether_test_nub_new(tether_test *t, const char *class_name, const tether_value *props,
                                 tether_test_nub **ret);

typedef struct tether_test_nub_info {
        uint64_t id;
        const char *class_name, *name, *location; /* the nub's; location may be NULL */
        tether_test_service *publisher;            /* NULL for the test's own nubs */
        bool terminated;
} tether_test_nub_info;
tether_ret_t tether_test_nub_get_info(tether_test_nub *nub, tether_test_nub_info *ret);
/* A referenced copy of one property of the nub. */
tether_ret_t tether_test_nub_property(tether_test_nub *nub, const char *key, tether_value **ret);

/*
 * The device behind the nub (tether_service_open_provider_device). fn runs
 * on the driver's loop each time the driver asks, and answers as tetherd
 * would: a kind and a fd the driver then owns, or an error. Without one
 * (the default, or fn NULL) the driver gets TETHER_ERR_UNSUPPORTED, as for
 * any nub tetherd did not publish. For a simulated USB instrument: a
 * socketpair, one end to the driver as TETHER_DEVICE_VUSB, the other as fd
 * 3 of `tether-sim-scope --usb-fd 3`.
 */
typedef tether_ret_t (*tether_test_device_fn)(void *ctx, tether_test_nub *nub, tether_device_kind *ret_kind,
                                              int *ret_fd);
tether_ret_t tether_test_nub_set_device(tether_test_nub *nub, tether_test_device_fn fn, void *ctx);

/*
 * The nub goes away (a device unplugged): every service on it, and below
 * it on nubs those published, is stopped as by tether_test_stop, then the
 * nub is terminated. TETHER_ERR_NOT_ATTACHED if it was already.
 */
tether_ret_t tether_test_nub_terminate(tether_test_nub *nub);

/* ---- services ---- */

/*
 * Make a service of the bundle's driver class_name on nub, attached below
 * it, and run the driver's start() on the service's new work loop; returns
 * what start() returned. On success *ret is the running service. On failure
 * the service is gone (its timers told TETHER_ERR_ABORTED; no stop()) and
 * *ret is NULL. TETHER_ERR_NOT_FOUND: the bundle has no such driver;
 * TETHER_ERR_NOT_ATTACHED: nub is terminated. Waits as long as start() takes.
 */
tether_ret_t tether_test_start(tether_test_bundle *b, const char *class_name, tether_test_nub *nub,
                               tether_test_service **ret);
/* Its registry id: what tether_service_open and the registry calls take. */
uint64_t tether_test_service_id(tether_test_service *svc);
/* A referenced copy of one property of its table, or of the whole table
 * (key NULL). TETHER_ERR_NOT_FOUND for a key it does not have. */
tether_ret_t tether_test_property(tether_test_service *svc, const char *key, tether_value **ret);
/*
 * A client's write of the properties in dict, through the driver's
 * set_properties hook on its loop (tether_registry_entry_set_properties
 * without a session): all of it lands, or nothing. writer is who writes, as
 * the hook sees it (uid, gid, privileges: TETHER_PRIVILEGE_ADMINISTRATOR for
 * an administrator); NULL: the test process itself, an administrator if
 * root. First the bundle's access policy, as tetherd applies it
 * (TETHER_ERR_NOT_PRIVILEGED), then the hook's verdict; if ret_why is not
 * NULL (TETHER_MAX_REASON + 1 bytes) it gets the reason of a refusal
 * (tether_service_refuse), "" if none was given. TETHER_ERR_UNSUPPORTED if
 * the driver has no hook, TETHER_ERR_NOT_ATTACHED once stopped.
 */
tether_ret_t tether_test_set_properties(tether_test_service *svc, const tether_task *writer, const tether_value *dict,
                                       char *ret_why);
/*
 * Run fn(service, ctx) on the service's work loop, as a driver callback,
 * and wait for it: to look at or prod the driver's state (its
 * tether_service_priv) between calls, or to call the driver API as the
 * driver would. TETHER_ERR_NOT_ATTACHED once its loop has ended.
 */
tether_ret_t tether_test_on_loop(tether_test_service *svc, void (*fn)(tether_service *service, void *ctx),
                                 void *ctx);
/*
 * The i-th nub the service's driver published (tether_service_publish_nub),
 * in order, terminated ones included; TETHER_ERR_NOT_FOUND past the last.
 * Nothing is matched against them: start a driver on one with
 * tether_test_start (tether_test_match says which tetherd would).
 */
tether_ret_t tether_test_published(tether_test_service *svc, size_t index, tether_test_nub **ret);
/*
 * Terminate it as tetherd does (its nub went away, or its bundle was
 * unloaded): services on nubs it published first, then its own armed
 * timers told TETHER_ERR_ABORTED, its user clients' stop() and its
 * driver's stop(), all on its loop; its nubs are terminated. Returns when
 * its driver's stop() has returned. Connections still open get
 * TETHER_ERR_NOT_ATTACHED from then on; once the last is closed its loop
 * ends. TETHER_ERR_NOT_ATTACHED if it was stopped already.
 */
tether_ret_t tether_test_stop(tether_test_service *svc);
/* Stopped (by tether_test_stop, its nub's termination or its publisher's
 * tether_service_terminate_nub), whether or not stop() has run yet. */
bool tether_test_stopped(tether_test_service *svc);

/* ---- the client's side ---- */

/*
 * A libtether session to the harness for the caller as describes: its uid,
 * gid and privileges are what init_with_task and set_properties see, what
 * TETHER_METHOD_ADMIN checks (TETHER_PRIVILEGE_ADMINISTRATOR), what the
 * bundle's access policy admits; pid and word size are the connection's.
 * as NULL: the test process itself, an administrator if root. It answers
 * OPEN, PORT_CREATE, GET_PROPERTY, SET_PROPERTIES and GET_MATCHING (so
 * tether_service_open, notification ports and async calls,
 * tether_registry_entry_get_propert*, tether_registry_entry_set_properties
 * and its _why, tether_get_matching_service*); anything else gets
 * TETHER_ERR_UNSUPPORTED. Close it with tether_session_close.
 */
tether_ret_t tether_test_session_open(tether_test *t, const tether_task *as, tether_session **ret);

/*
 * Wait up to timeout_ms for a message on port, then dispatch what came
 * (async completions run their callbacks here, on this thread).
 * TETHER_ERR_TIMEOUT if nothing came.
 */
tether_ret_t tether_test_port_wait(tether_notification_port *port, uint32_t timeout_ms);
/*
 * Wait until cond(ctx) is true: checked now, then whenever a table changes
 * or a nub is published or terminated, and at least every 10 ms.
 * TETHER_ERR_TIMEOUT if it is still false after timeout_ms. cond runs on
 * this thread and may call any tether_test_ function but this one.
 */
tether_ret_t tether_test_wait(tether_test *t, bool (*cond)(void *ctx), void *ctx, uint32_t timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
