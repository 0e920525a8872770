/* SPDX-License-Identifier: MIT */
#ifndef TETHER_HOST_ENV_H
#define TETHER_HOST_ENV_H

/*
 * What the driver runtime (src/host: work loops, user clients and their
 * calls) asks of the process it runs in. A driver host answers by asking
 * tetherd over its channel (docs/bundles.md); tetherd answers itself for
 * the drivers it runs under --in-process; the driver test harness
 * (src/harness) from a registry of its own. Bound at link time: a process
 * has one.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <tether/driver.h>

#include "core/log.h"

/* A client session, as the process knows it: whoever opened connections.
 * Reference counted; the runtime holds one per open connection. */
typedef struct env_caller env_caller;

env_caller *env_caller_ref(env_caller *c);
void env_caller_unref(env_caller *c);
uint64_t env_caller_id(const env_caller *c);
const tether_task *env_caller_task(const env_caller *c);
/* Its rate-limited warnings, and the name they go by ("client pid N"). */
log_limit *env_caller_log(env_caller *c);
const char *env_caller_who(const env_caller *c);
/* Its session's count of outstanding async calls, over every connection. */
atomic_uint *env_caller_async(env_caller *c);
/* Async calls name a notification port: it must be this session's. */
bool env_caller_port_owned(env_caller *c, uint64_t port_id);
/* Answer an OPEN: on success with the connection's id and the client's end
 * of its socket (the caller keeps client_fd); on failure the open is over,
 * and its place among the caller's connections is free again. */
void env_caller_open_reply(env_caller *c, uint32_t serial, tether_ret_t r, uint64_t connection_id, int client_fd);
/* A connection of it closed, or an open failed after its fds were counted:
 * its limits (connections, fds) get the room back. */
void env_caller_connection_closed(env_caller *c);
/* The client's end of an opened connection is gone from this process. */
void env_caller_client_fd_passed(env_caller *c);
/* fds this process holds for c beyond its connections (a data queue's
 * memfd): n > 0 takes them, n < 0 gives them back. tetherd charges them to
 * c's uid as it does connections (TETHER_ERR_NO_RESOURCES past its share);
 * a driver host has no uid budgets and only counts them per session. */
tether_ret_t env_caller_charge_fds(env_caller *c, int n);

#define env_warn(c, ...) log_limited(env_caller_log(c), LOG_LVL_WARN, env_caller_who(c), __VA_ARGS__)

/* ---- a service's place in the registry ---- */

/* Its last reference went: what the process keeps for it, with it. */
void env_service_release(tether_service *s);
/* Its loop's last act, on the loop's thread, once it was terminated and
 * its last user client went (workloop_finish's `last`). */
void env_service_loop_exit(void *service);
/* Its open count, as `tether reg` shows it. */
void env_service_open_count(tether_service *s, int delta);
/* Merge changes (a dict) into its property table, all at once, and tell
 * whoever watches; remove one key; read one (a referenced value). */
tether_ret_t env_service_apply(tether_service *s, const tether_value *changes);
tether_ret_t env_service_remove(tether_service *s, const char *key);
tether_ret_t env_service_copy(tether_service *s, const char *key, tether_value **ret);
/* One property of its provider (nub); TETHER_ERR_NOT_ATTACHED once detached. */
tether_ret_t env_service_provider_property(tether_service *s, const char *key, tether_value **ret);
/* The device behind its provider, opened for its driver (the caller owns
 * *ret_fd). */
tether_ret_t env_service_open_device(tether_service *s, tether_device_kind *ret_kind, int *ret_fd);
/* A nub below it, matched at once; terminate one it published. */
tether_ret_t env_service_publish_nub(tether_service *s, const char *class_name, const char *name,
                                     const char *location, tether_value *props, uint64_t *ret_id);
tether_ret_t env_service_terminate_nub(tether_service *s, uint64_t nub_id);
/* Send an async result to a client's notification port, never blocking:
 * TETHER_ERR_NO_SPACE if the port is full (the message is dropped, and
 * counted), TETHER_ERR_NOT_ATTACHED if the port is gone. */
struct wire_msg;
tether_ret_t env_port_send(uint64_t port_id, const struct wire_msg *m);

#endif
