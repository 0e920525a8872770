/* SPDX-License-Identifier: MIT */
/*
 * The harness's answers to what the driver runtime asks of its process
 * (host/env.h), for a service: its table, its provider, its device, the
 * nubs it publishes. A driver host asks tetherd these over its channel;
 * here the registry is the harness's own, in memory. The session half of
 * env.h (env_caller_*, env_port_send) is in server.c.
 */
#include "harness/harness.h"

#include <unistd.h>

#include "core/log.h"
#include "host/probes.h"

/* ---- a service's place in the registry ---- */

void env_service_release(tether_service *s)
{
        /* The handle outlives it (until tether_test_free): nothing to let go. */
}

void env_service_loop_exit(void *arg)
{
        tether_test_service *h = handle_of(arg);
        pthread_mutex_lock(&h->t->lock);
        h->loop_ended = true; /* the test's thread joins it (reap) */
        harness_changed_locked(h->t);
        pthread_mutex_unlock(&h->t->lock);
}

void env_service_open_count(tether_service *s, int delta)
{
        /* `tether reg`'s open count: no registry tool looks at a harness. */
}

/* Replace the table with a changed copy: readers holding the old one keep
 * a consistent snapshot, as in tetherd. */
static tether_ret_t change_table(tether_service *s, const tether_value *merge, const char *remove)
{
        tether_test_service *h = handle_of(s);
        tether_test *t = h->t;
        pthread_mutex_lock(&t->lock);
        tether_value *next = NULL;
        tether_ret_t r = tether_value_copy(h->e.props, &next);
        if (r == TETHER_SUCCESS)
                r = merge ? tether_value_dict_merge(next, merge) : tether_value_dict_remove(next, remove);
        if (r == TETHER_SUCCESS) {
                tether_value_unref(h->e.props);
                h->e.props = next;
                next = NULL;
                harness_changed_locked(t);
        }
        pthread_mutex_unlock(&t->lock);
        tether_value_unref(next);
        return r;
}

tether_ret_t env_service_apply(tether_service *s, const tether_value *changes)
{
        return change_table(s, changes, NULL);
}

tether_ret_t env_service_remove(tether_service *s, const char *key)
{
        return change_table(s, NULL, key);
}

tether_ret_t env_service_copy(tether_service *s, const char *key, tether_value **ret)
{
        tether_test_service *h = handle_of(s);
        pthread_mutex_lock(&h->t->lock);
        tether_value *v = NULL;
        tether_ret_t r = tether_value_dict_get(h->e.props, key, &v);
        *ret = tether_value_ref(v);
        pthread_mutex_unlock(&h->t->lock);
        return r;
}

tether_ret_t env_service_provider_property(tether_service *s, const char *key, tether_value **ret)
{
        tether_test_nub *nub = handle_of(s)->nub;
        pthread_mutex_lock(&nub->t->lock);
        tether_value *v = NULL;
        tether_ret_t r = nub->terminated ? TETHER_ERR_NOT_ATTACHED : tether_value_dict_get(nub->e.props, key, &v);
        *ret = tether_value_ref(v);
        pthread_mutex_unlock(&nub->t->lock);
        return r;
}

tether_ret_t env_service_open_device(tether_service *s, tether_device_kind *ret_kind, int *ret_fd)
{
        tether_test_nub *nub = handle_of(s)->nub;
        pthread_mutex_lock(&nub->t->lock);
        tether_test_device_fn fn = nub->device;
        void *ctx = nub->device_ctx;
        bool gone = nub->terminated;
        pthread_mutex_unlock(&nub->t->lock);
        if (gone)
                return TETHER_ERR_NOT_ATTACHED;
        if (!fn)
                return TETHER_ERR_UNSUPPORTED; /* a nub tetherd did not publish for a device */
        tether_device_kind kind = 0;
        int fd = -1;
        /* Outside the lock: the test's function may take its time (start a
         * simulator) and call the harness. */
        tether_ret_t r = fn(ctx, nub, &kind, &fd);
        if (r == TETHER_SUCCESS && (fd < 0 || (kind != TETHER_DEVICE_USBFS && kind != TETHER_DEVICE_VUSB))) {
                log_err("tether-test: the device function of nub %s answered kind %d, fd %d (test bug)",
                        nub->e.name, (int)kind, fd);
                r = TETHER_ERR_INTERNAL;
        }
        if (r != TETHER_SUCCESS) {
                if (fd >= 0)
                        close(fd);
                return r;
        }
        *ret_kind = kind;
        *ret_fd = fd;
        return TETHER_SUCCESS;
}

tether_ret_t env_service_publish_nub(tether_service *s, const char *class_name, const char *name,
                                     const char *location, tether_value *props, uint64_t *ret_id)
{
        tether_test_service *h = handle_of(s);
        if (props && tether_value_get_type(props) != TETHER_TYPE_DICT)
                return TETHER_ERR_BAD_ARGUMENT;
        pthread_mutex_lock(&h->t->lock);
        tether_ret_t r = harness_publish_locked(h, class_name, name, location, props, ret_id);
        pthread_mutex_unlock(&h->t->lock);
        return r;
}

tether_ret_t env_service_terminate_nub(tether_service *s, uint64_t nub_id)
{
        tether_test_service *h = handle_of(s);
        tether_test *t = h->t;
        pthread_mutex_lock(&t->lock);
        tether_ret_t r = TETHER_ERR_NOT_FOUND;
        for (tether_test_nub *n = t->nubs; n; n = n->next) {
                if (n->e.id != nub_id || n->terminated)
                        continue;
                /* As tetherd: only the nubs it published are its to end. */
                if (n->publisher != h) {
                        r = TETHER_ERR_NOT_PERMITTED;
                } else {
                        /* Posted, not waited for: this is the publisher's
                         * loop, and the services below have loops of
                         * their own. */
                        harness_terminate_nub_locked(n);
                        r = TETHER_SUCCESS;
                }
                break;
        }
        pthread_mutex_unlock(&t->lock);
        return r;
}

/* ---- probes ---- */

/*
 * `tether probe` attaches to tetherd; a harness has none, so probe_count
 * stays 0, probe_on() is false, and the runtime builds no event. These
 * are what the runtime links against, as tetherd's probe.c and the host's
 * forwarding are elsewhere.
 */
atomic_uint probe_count;
__thread probe_context probe_current;

uint64_t probe_now_ns(void)
{
        return 0;
}

uint64_t probe_mono_ns(void)
{
        return 0;
}

void probe_call(const probe_call_event *e)
{
}

void probe_async(const tether_async_ref *ref, tether_ret_t result, const uint64_t *args, uint32_t count,
                 uint32_t flags, tether_ret_t delivery)
{
}
