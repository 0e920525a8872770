/* SPDX-License-Identifier: MIT */
/*
 * ExampleDriver: the article's example user client, in both KPIs, on a
 * driver with a property-configured setting (a baud rate). It matches
 * TetherResources, so it runs on every tetherd; read it as a template.
 *
 * Everything here runs on the service's work loop, one callback at a time,
 * which is why no state below has a lock.
 */
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <tether/driver.h>

#include "example/example.h"
#include "example/queue.h"

/* ---- the service ---- */

struct delayed;
struct stream;

typedef struct example_service {
        uint64_t calls;          /* service-wide; reset by the admin method */
        struct delayed *pending; /* delayed adds scheduled and not yet run */
        struct stream *streams;  /* streams not yet ended */
        uint64_t stream_stats[EXAMPLE_STATS_COUNT];
        uint8_t *samples;        /* EXAMPLE_SAMPLES_SIZE bytes, made on first use; a
                                  * stand-in for an instrument's acquisition memory */
        bool holding;            /* EXAMPLE_PROP_HOLD_DEVICE_START is true: */
        int hold_fd;             /* a listening socket devices wait on, and */
        char hold_name[16];      /* its abstract name, for the nubs */
} example_service;

static const uint8_t *samples(tether_service *svc)
{
        example_service *es = tether_service_priv(svc);
        if (!es->samples && (es->samples = malloc(EXAMPLE_SAMPLES_SIZE)))
                for (size_t i = 0; i < EXAMPLE_SAMPLES_SIZE; i++)
                        es->samples[i] = example_sample(i);
        return es->samples;
}

static void delayed_free_all(example_service *es);
static void streams_free_all(example_service *es);
static void hold_release(example_service *es);

static void example_stop(tether_service *svc)
{
        example_service *es = tether_service_priv(svc);
        hold_release(es);
        free(es->samples);
        es->samples = NULL;
        /* Work still scheduled when a service stops is dropped, never run:
         * its context is the driver's to free. */
        delayed_free_all(es);
        streams_free_all(es);
}

static const uint32_t standard_rates[] = { 300, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200 };

/*
 * EXAMPLE_PROP_HOLD_DEVICE_START. ExampleDriver and each ExampleDevice may
 * run in different processes (one driver host per service), so they share
 * no memory, only what the registry carries. While the hold is on,
 * ExampleDriver listens on an abstract socket and names it in each nub it
 * publishes; a device's start connects and waits until that socket goes
 * away, which it does when the hold is released (or ExampleDriver stops).
 * The kernel picks the name (autobind), so two tetherds never collide.
 */
static tether_ret_t hold_take(example_service *es)
{
        if (es->holding)
                return TETHER_SUCCESS;
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return TETHER_ERR_NO_RESOURCES;
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        socklen_t len = sizeof(a);
        /* Binding just the family asks the kernel for a fresh name. */
        bool ok = bind(fd, (struct sockaddr *)&a, sizeof(sa_family_t)) == 0 && listen(fd, SOMAXCONN) == 0 &&
                  getsockname(fd, (struct sockaddr *)&a, &len) == 0;
        /* An abstract name is a NUL and then (autobind) five hex digits. */
        size_t at = offsetof(struct sockaddr_un, sun_path) + 1;
        size_t n = ok && len > at ? len - at : 0;
        if (!n || n >= sizeof(es->hold_name)) {
                close(fd);
                return TETHER_ERR_NO_RESOURCES;
        }
        memcpy(es->hold_name, a.sun_path + 1, n);
        es->hold_name[n] = '\0';
        es->hold_fd = fd;
        es->holding = true;
        return TETHER_SUCCESS;
}

static void hold_release(example_service *es)
{
        if (!es->holding)
                return;
        close(es->hold_fd); /* connected devices see it hang up */
        es->holding = false;
}

/* A device's start: wait, at most 30 s, while its nub names a hold that is
 * still on. Bounded, so a hold never forgotten cannot hang a device. */
static void hold_wait(tether_service *svc)
{
        tether_value *v = NULL;
        const char *name = NULL;
        if (tether_service_get_provider_property(svc, EXAMPLE_NUB_HOLD, &v) != TETHER_SUCCESS ||
            tether_value_get_string(v, &name) != TETHER_SUCCESS || !*name ||
            strlen(name) >= sizeof(((struct sockaddr_un *)0)->sun_path) - 1) {
                tether_value_unref(v);
                return;
        }
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        memcpy(a.sun_path + 1, name, strlen(name));
        socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
        tether_value_unref(v);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return;
        /* Refused: the hold was released before this device started. */
        if (connect(fd, (struct sockaddr *)&a, len) == 0) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                poll(&p, 1, 30000);
        }
        close(fd);
}

static tether_ret_t example_start(tether_service *svc)
{
        tether_ret_t r = tether_service_set_property_string(svc, "Model", "tether example");
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_uint(svc, EXAMPLE_PROP_BAUD_RATE, 9600, 32);
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_string(svc, EXAMPLE_PROP_GREETING, "hello");
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_bool(svc, EXAMPLE_PROP_LOCKED, false);
        return r;
}

/* Locked refuses every new open and HoldDeviceStart stalls every device's
 * start: either lets its writer deny the driver to every other user, and
 * the socket is open to all of them. So they are administrators' (root,
 * or tetherd's admin group), as an I/O Kit driver keeps such a switch
 * behind clientHasPrivilege. BaudRate and Greeting are anyone's. */
static bool admin_only(const char *key)
{
        return !strcmp(key, EXAMPLE_PROP_LOCKED) || !strcmp(key, EXAMPLE_PROP_HOLD_DEVICE_START);
}

/* setProperties: check everything first, apply only when all of it is
 * good, so a refused request changes nothing. Each refusal says why: the
 * writer sees the error and this text (tether reg set prints both). */
static tether_ret_t example_set_properties(tether_service *svc, const tether_task *caller, const tether_value *dict)
{
        bool admin = tether_task_has_privilege(caller, TETHER_PRIVILEGE_ADMINISTRATOR) == TETHER_SUCCESS;
        for (size_t i = 0; i < tether_value_count(dict); i++) {
                const char *key;
                tether_value *v;
                tether_value_dict_entry(dict, i, &key, &v);
                /* Privilege before the value: whoever may not set a key
                 * learns nothing about what it would take. */
                if (admin_only(key) && !admin)
                        return tether_service_refuse(svc, TETHER_ERR_NOT_PRIVILEGED,
                                                     "%s may be set by an administrator only (root, or tetherd's "
                                                     "admin group); uid %u is not one",
                                                     key, (unsigned)caller->uid);
                if (!strcmp(key, EXAMPLE_PROP_BAUD_RATE)) {
                        uint64_t rate = 0;
                        bool ok = false;
                        if (tether_value_get_uint(v, &rate) == TETHER_SUCCESS)
                                for (size_t k = 0; k < sizeof(standard_rates) / sizeof(standard_rates[0]); k++)
                                        ok |= rate == standard_rates[k];
                        if (!ok)
                                return tether_service_refuse(svc, TETHER_ERR_BAD_ARGUMENT,
                                                             "BaudRate must be a standard rate: 300, 1200, 2400, 4800, "
                                                             "9600, 19200, 38400, 57600 or 115200");
                } else if (!strcmp(key, EXAMPLE_PROP_GREETING)) {
                        const char *s;
                        if (tether_value_get_string(v, &s) != TETHER_SUCCESS || !*s || strlen(s) > 64)
                                return tether_service_refuse(svc, TETHER_ERR_BAD_ARGUMENT,
                                                             "Greeting must be a string of 1 to 64 bytes");
                } else if (admin_only(key)) {
                        bool b;
                        if (tether_value_get_bool(v, &b) != TETHER_SUCCESS)
                                return tether_service_refuse(svc, TETHER_ERR_BAD_ARGUMENT, "%s must be a boolean", key);
                } else if (!strcmp(key, "Model")) {
                        return tether_service_refuse(svc, TETHER_ERR_NOT_WRITABLE, "Model is read-only");
                } else {
                        /* The key as sent: the writer's typo is the point. */
                        return tether_service_refuse(svc, TETHER_ERR_NOT_WRITABLE,
                                                     "ExampleDriver has no writable property \"%s\"", key);
                }
        }
        for (size_t i = 0; i < tether_value_count(dict); i++) {
                const char *key;
                tether_value *v;
                tether_value_dict_entry(dict, i, &key, &v);
                tether_ret_t r;
                if (!strcmp(key, EXAMPLE_PROP_BAUD_RATE)) {
                        uint64_t rate;
                        tether_value_get_uint(v, &rate);
                        /* Stored with the width the driver publishes,
                         * whatever width the client sent. */
                        r = tether_service_set_property_uint(svc, key, rate, 32);
                } else {
                        r = tether_service_set_property(svc, key, v);
                }
                if (r != TETHER_SUCCESS)
                        return r;
                bool hold;
                if (!strcmp(key, EXAMPLE_PROP_HOLD_DEVICE_START) && tether_value_get_bool(v, &hold) == TETHER_SUCCESS) {
                        if (!hold)
                                hold_release(tether_service_priv(svc));
                        else if ((r = hold_take(tether_service_priv(svc))) != TETHER_SUCCESS)
                                return r;
                }
        }
        return TETHER_SUCCESS;
}

/* ---- per-connection state ---- */

typedef struct example_client {
        tether_task task;
        uint64_t counter;
        char name[64];
        tether_memory *buffer;   /* EXAMPLE_MEMORY_BUFFER, made on first map */
        tether_memory *status;   /* EXAMPLE_MEMORY_STATUS */
        example_streams streams; /* its data queues (queue.c) */
} example_client;

example_streams *example_streams_of(tether_user_client *uc)
{
        return &((example_client *)tether_user_client_priv(uc))->streams;
}

static tether_ret_t example_init_with_task(tether_user_client *uc, const tether_task *task, uint32_t type)
{
        example_client *c = tether_user_client_priv(uc);
        c->task = *task;
        strcpy(c->name, "unnamed");
        return TETHER_SUCCESS;
}

/* The provider must be one of ours, and not locked against new clients. */
static tether_ret_t example_uc_start(tether_user_client *uc, tether_service *provider)
{
        if (strcmp(tether_service_class(provider), "ExampleDriver"))
                return TETHER_ERR_BAD_ARGUMENT;
        tether_value *locked = NULL;
        bool is_locked = false;
        if (tether_service_copy_property(provider, EXAMPLE_PROP_LOCKED, &locked) == TETHER_SUCCESS)
                tether_value_get_bool(locked, &is_locked);
        tether_value_unref(locked);
        if (is_locked)
                return TETHER_ERR_NOT_PERMITTED;
        example_streams_start(example_streams_of(uc), uc);
        return TETHER_SUCCESS;
}

/* A connection that streams from the start: its queue is there before
 * the client's first call (and counts against its bounds: too many, and
 * the open fails). */
static tether_ret_t example_streaming_uc_start(tether_user_client *uc, tether_service *provider)
{
        tether_ret_t r = example_uc_start(uc, provider);
        if (r == TETHER_SUCCESS && (r = example_streams_start_queue(uc)) != TETHER_SUCCESS)
                example_streams_stop(example_streams_of(uc));
        return r;
}

static void example_uc_stop(tether_user_client *uc)
{
        example_client *c = tether_user_client_priv(uc);
        c->buffer = tether_memory_unref(c->buffer);
        c->status = tether_memory_unref(c->status);
        example_streams_stop(&c->streams);
}

static tether_ret_t example_memory(tether_user_client *uc, uint32_t type, uint32_t *options,
                                   tether_memory **ret)
{
        example_client *c = tether_user_client_priv(uc);
        tether_memory **slot;
        size_t size;
        switch (type) {
        case EXAMPLE_MEMORY_BUFFER:
                slot = &c->buffer;
                size = EXAMPLE_BUFFER_SIZE;
                break;
        case EXAMPLE_MEMORY_STATUS:
                slot = &c->status;
                size = 4096;
                *options |= TETHER_MAP_READ_ONLY;
                break;
        default:
                return TETHER_ERR_BAD_ARGUMENT;
        }
        if (!*slot) {
                tether_ret_t r = tether_memory_create(size, "example", slot);
                if (r != TETHER_SUCCESS)
                        return r;
        }
        *ret = tether_memory_ref(*slot);
        return TETHER_SUCCESS;
}

static void count_call(tether_user_client *uc)
{
        tether_service *svc = tether_user_client_provider(uc);
        if (svc)
                ((example_service *)tether_service_priv(svc))->calls++;
        example_client *c = tether_user_client_priv(uc);
        if (c->status)
                memcpy(tether_memory_ptr(c->status), &c->counter, sizeof(c->counter));
}

/* ==== new KPI ==== */

/* The article's method: two 32-bit scalars in, a variable-size struct out.
 * in[0] seeds a byte pattern, in[1] asks for that many bytes. */
static tether_ret_t m_my_method(void *target, void *ref, tether_method_args *a)
{
        uint64_t want = a->scalar_input[1];
        if (want > a->struct_output_size)
                return TETHER_ERR_NO_SPACE;
        uint8_t *out = a->struct_output;
        for (uint64_t i = 0; i < want; i++)
                out[i] = (uint8_t)(a->scalar_input[0] + i);
        a->struct_output_size = (uint32_t)want;
        count_call(target);
        return TETHER_SUCCESS;
}

static tether_ret_t m_add(void *target, void *ref, tether_method_args *a)
{
        a->scalar_output[0] = a->scalar_input[0] + a->scalar_input[1];
        count_call(target);
        return TETHER_SUCCESS;
}

static tether_ret_t m_echo(void *target, void *ref, tether_method_args *a)
{
        if (a->struct_input_size > a->struct_output_size)
                return TETHER_ERR_NO_SPACE;
        /* An empty input may come with no buffer at all: memcpy must
         * not see NULL, even for 0 bytes. */
        if (a->struct_input_size)
                memcpy(a->struct_output, a->struct_input, a->struct_input_size);
        a->struct_output_size = a->struct_input_size;
        return TETHER_SUCCESS;
}

static tether_ret_t m_sleep(void *target, void *ref, tether_method_args *a)
{
        uint64_t ms = a->scalar_input[0];
        if (ms > 10000)
                return TETHER_ERR_BAD_ARGUMENT;
        struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) != 0)
                ;
        return TETHER_SUCCESS;
}

typedef struct delayed {
        tether_async_ref ref;
        uint64_t sum, count;
        struct delayed *prev, *next;  /* the service's pending list */
} delayed;

static void delayed_unlink(example_service *es, delayed *d)
{
        if (d->prev)
                d->prev->next = d->next;
        else
                es->pending = d->next;
        if (d->next)
                d->next->prev = d->prev;
}

static void delayed_free_all(example_service *es)
{
        while (es->pending) {
                delayed *d = es->pending;
                delayed_unlink(es, d);
                free(d);
        }
}

static void complete_delayed(tether_service *svc, void *ctx)
{
        delayed *d = ctx;
        uint64_t args[2] = { d->sum, d->count };
        tether_async_complete(&d->ref, TETHER_SUCCESS, args, 2);
        delayed_unlink(tether_service_priv(svc), d);
        free(d);
}

static tether_ret_t m_delayed_add(void *target, void *ref, tether_method_args *a)
{
        if (!a->async_ref)
                return TETHER_ERR_BAD_ARGUMENT; /* only makes sense async */
        if (a->scalar_input[2] > EXAMPLE_MAX_DELAY_MS)
                return TETHER_ERR_BAD_ARGUMENT;
        tether_service *svc = tether_user_client_provider(target);
        example_client *c = tether_user_client_priv(target);
        delayed *d = malloc(sizeof(*d));
        if (!svc || !d) {
                free(d);
                return svc ? TETHER_ERR_NO_MEMORY : TETHER_ERR_NOT_ATTACHED;
        }
        d->ref = *a->async_ref;
        d->sum = a->scalar_input[0] + a->scalar_input[1];
        d->count = ++c->counter;
        tether_ret_t r = tether_service_schedule(svc, (uint32_t)a->scalar_input[2], complete_delayed, d);
        if (r != TETHER_SUCCESS) {
                free(d);
                return r;
        }
        example_service *es = tether_service_priv(svc);
        d->prev = NULL;
        d->next = es->pending;
        if (es->pending)
                es->pending->prev = d;
        es->pending = d;
        return r;
}

/*
 * A stream: one async call, many results, as a device pushing samples
 * would send them. Each tick sends one and schedules the next; what
 * tether_async_send() answers decides whether there is a next. The driver
 * never tracks its client: a cancel, a close or a port destroyed reaches it
 * as its next send's error, and the stream's state goes then.
 */
typedef struct stream {
        tether_async_ref ref;
        uint64_t sent, count;
        uint32_t interval_ms;
        struct stream *prev, *next;  /* the service's list, for stop() */
} stream;

static void stream_unlink(example_service *es, stream *st)
{
        if (st->prev)
                st->prev->next = st->next;
        else
                es->streams = st->next;
        if (st->next)
                st->next->prev = st->prev;
}

static void streams_free_all(example_service *es)
{
        while (es->streams) {
                stream *st = es->streams;
                stream_unlink(es, st);
                free(st);
        }
        es->stream_stats[EXAMPLE_STATS_RUNNING] = 0;
}

static void stream_end(example_service *es, stream *st, enum example_stream_stat how)
{
        es->stream_stats[how]++;
        es->stream_stats[EXAMPLE_STATS_RUNNING]--;
        stream_unlink(es, st);
        free(st);
}

static void stream_tick(tether_service *svc, void *ctx)
{
        example_service *es = tether_service_priv(svc);
        stream *st = ctx;
        uint64_t args[EXAMPLE_STREAM_ARGS] = { [EXAMPLE_STREAM_SEQ] = ++st->sent, [EXAMPLE_STREAM_COUNT] = st->count };
        bool last = st->sent == st->count;
        tether_ret_t r = tether_async_send(&st->ref, TETHER_SUCCESS, args, EXAMPLE_STREAM_ARGS,
                                           last ? TETHER_ASYNC_LAST : 0);
        if (r == TETHER_ERR_NO_SPACE) {
                /* The client is not reading its port: this sample is lost
                 * to it, and a device does not wait. */
                es->stream_stats[EXAMPLE_STATS_DROPPED]++;
                r = TETHER_SUCCESS;
        }
        if (r == TETHER_SUCCESS && last) {
                stream_end(es, st, EXAMPLE_STATS_FINISHED);
        } else if (r == TETHER_ERR_ABORTED) {
                stream_end(es, st, EXAMPLE_STATS_CANCELLED);
        } else if (r != TETHER_SUCCESS) {
                stream_end(es, st, EXAMPLE_STATS_DETACHED); /* NotAttached, or NotFound: nobody listens */
        } else if ((r = tether_service_schedule(svc, st->interval_ms, stream_tick, st)) != TETHER_SUCCESS) {
                /* Cannot go on: the client hears why, as the last result. */
                tether_async_send(&st->ref, r, NULL, 0, TETHER_ASYNC_LAST);
                stream_end(es, st, EXAMPLE_STATS_DETACHED);
        }
}

static tether_ret_t m_stream(void *target, void *ref, tether_method_args *a)
{
        if (!a->async_ref)
                return TETHER_ERR_BAD_ARGUMENT; /* results come only as results */
        uint64_t count = a->scalar_input[0], interval = a->scalar_input[1];
        if (count == 0 || count > EXAMPLE_MAX_STREAM_COUNT || interval > EXAMPLE_MAX_STREAM_INTERVAL_MS)
                return TETHER_ERR_BAD_ARGUMENT;
        tether_service *svc = tether_user_client_provider(target);
        if (!svc)
                return TETHER_ERR_NOT_ATTACHED;
        /* No bound of its own: each stream holds its reference open, and
         * the runtime bounds those per connection and per session. */
        stream *st = calloc(1, sizeof(*st));
        if (!st)
                return TETHER_ERR_NO_MEMORY;
        st->ref = *a->async_ref;
        st->count = count;
        st->interval_ms = (uint32_t)interval;
        tether_ret_t r = tether_service_schedule(svc, st->interval_ms, stream_tick, st);
        if (r != TETHER_SUCCESS) {
                free(st);
                return r;
        }
        example_service *es = tether_service_priv(svc);
        st->next = es->streams;
        if (es->streams)
                es->streams->prev = st;
        es->streams = st;
        es->stream_stats[EXAMPLE_STATS_STARTED]++;
        es->stream_stats[EXAMPLE_STATS_RUNNING]++;
        return TETHER_SUCCESS;
}

static tether_ret_t m_stream_stats(void *target, void *ref, tether_method_args *a)
{
        tether_service *svc = tether_user_client_provider(target);
        if (!svc)
                return TETHER_ERR_NOT_ATTACHED;
        memcpy(a->scalar_output, ((example_service *)tether_service_priv(svc))->stream_stats,
               sizeof(uint64_t) * EXAMPLE_STATS_COUNT);
        return TETHER_SUCCESS;
}

static tether_ret_t m_reset(void *target, void *ref, tether_method_args *a)
{
        tether_service *svc = tether_user_client_provider(target);
        if (!svc)
                return TETHER_ERR_NOT_ATTACHED;
        ((example_service *)tether_service_priv(svc))->calls = 0;
        return TETHER_SUCCESS;
}

static tether_ret_t m_count(void *target, void *ref, tether_method_args *a)
{
        example_client *c = tether_user_client_priv(target);
        a->scalar_output[0] = ++c->counter;
        count_call(target);
        return TETHER_SUCCESS;
}

static tether_ret_t m_who_am_i(void *target, void *ref, tether_method_args *a)
{
        example_client *c = tether_user_client_priv(target);
        a->scalar_output[0] = (uint64_t)c->task.pid;
        a->scalar_output[1] = c->task.uid;
        a->scalar_output[2] = c->task.gid;
        a->scalar_output[3] = c->task.abi_word_bits;
        return TETHER_SUCCESS;
}

/* Runs with the provider as its target (TETHER_METHOD_TARGET_PROVIDER). */
static tether_ret_t m_get_baud_rate(void *target, void *ref, tether_method_args *a)
{
        tether_value *v = NULL;
        tether_ret_t r = tether_service_copy_property(target, EXAMPLE_PROP_BAUD_RATE, &v);
        if (r == TETHER_SUCCESS)
                r = tether_value_get_uint(v, &a->scalar_output[0]);
        tether_value_unref(v);
        return r;
}

static tether_ret_t m_fill_memory(void *target, void *ref, tether_method_args *a)
{
        example_client *c = tether_user_client_priv(target);
        tether_memory *m = a->scalar_input[0] == EXAMPLE_MEMORY_BUFFER   ? c->buffer
                           : a->scalar_input[0] == EXAMPLE_MEMORY_STATUS ? c->status
                                                                         : NULL;
        if (!m)
                return TETHER_ERR_NOT_READY; /* map it first */
        memset(tether_memory_ptr(m), (int)(uint8_t)a->scalar_input[1], tether_memory_size(m));
        return TETHER_SUCCESS;
}

static tether_ret_t m_publish_device(void *target, void *ref, tether_method_args *a)
{
        tether_service *svc = tether_user_client_provider(target);
        if (!svc)
                return TETHER_ERR_NOT_ATTACHED;
        char loc[24];
        snprintf(loc, sizeof(loc), "%llu", (unsigned long long)a->scalar_input[0]);
        tether_value *props = NULL;
        tether_ret_t r = tether_value_new_dict(&props);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_uint(props, "Unit", a->scalar_input[0], 32);
        example_service *es = tether_service_priv(svc);
        if (r == TETHER_SUCCESS && es->holding)
                r = tether_value_dict_set_string(props, EXAMPLE_NUB_HOLD, es->hold_name);
        if (r == TETHER_SUCCESS)
                r = tether_service_publish_nub(svc, "ExampleDeviceNub", "ExampleDeviceNub", loc, props,
                                               &a->scalar_output[0]);
        tether_value_unref(props);
        return r;
}

static tether_ret_t m_remove_device(void *target, void *ref, tether_method_args *a)
{
        tether_service *svc = tether_user_client_provider(target);
        return svc ? tether_service_terminate_nub(svc, a->scalar_input[0]) : TETHER_ERR_NOT_ATTACHED;
}

static tether_ret_t m_sum(void *target, void *ref, tether_method_args *a)
{
        uint64_t s = 0;
        for (uint32_t i = 0; i < a->scalar_input_count; i++)
                s += a->scalar_input[i];
        a->scalar_output[0] = s;
        return TETHER_SUCCESS;
}

static tether_ret_t m_produce(void *target, void *ref, tether_method_args *a)
{
        tether_service *svc = tether_user_client_provider(target);
        const uint8_t *src = svc ? samples(svc) : NULL;
        if (!src)
                return svc ? TETHER_ERR_NO_MEMORY : TETHER_ERR_NOT_ATTACHED;
        if (a->struct_output_size > EXAMPLE_SAMPLES_SIZE)
                return TETHER_ERR_NO_SPACE;
        if (a->struct_output_size)
                memcpy(a->struct_output, src, a->struct_output_size);
        return TETHER_SUCCESS;
}

static tether_ret_t m_acquire(void *target, void *ref, tether_method_args *a)
{
        example_client *c = tether_user_client_priv(target);
        tether_service *svc = tether_user_client_provider(target);
        const uint8_t *src = svc ? samples(svc) : NULL;
        if (!c->buffer)
                return TETHER_ERR_NOT_READY; /* map it first */
        if (!src)
                return svc ? TETHER_ERR_NO_MEMORY : TETHER_ERR_NOT_ATTACHED;
        if (a->scalar_input[0] > EXAMPLE_SAMPLES_SIZE || a->scalar_input[0] > tether_memory_size(c->buffer))
                return TETHER_ERR_BAD_ARGUMENT;
        memcpy(tether_memory_ptr(c->buffer), src, a->scalar_input[0]);
        return TETHER_SUCCESS;
}

#define V TETHER_VARIABLE_SIZE
/* function, scalars in, struct in, scalars out, struct out, flags */
static const tether_method_dispatch example_methods[EXAMPLE_SELECTOR_COUNT] = {
        [EXAMPLE_MY_METHOD] = { m_my_method, 2, 0, 0, V, 0 },
        [EXAMPLE_ADD] = { m_add, 2, 0, 1, 0, 0 },
        [EXAMPLE_ECHO] = { m_echo, 0, V, 0, V, 0 },
        [EXAMPLE_SLEEP] = { m_sleep, 1, 0, 0, 0, 0 },
        [EXAMPLE_DELAYED_ADD] = { m_delayed_add, 3, 0, 0, 0, TETHER_METHOD_ALLOW_ASYNC },
        [EXAMPLE_RESET] = { m_reset, 0, 0, 0, 0, TETHER_METHOD_ADMIN },
        [EXAMPLE_COUNT] = { m_count, 0, 0, 1, 0, 0 },
        [EXAMPLE_RESERVED] = { NULL, 0, 0, 0, 0, 0 },
        [EXAMPLE_WHO_AM_I] = { m_who_am_i, 0, 0, 4, 0, 0 },
        [EXAMPLE_GET_BAUD_RATE] = { m_get_baud_rate, 0, 0, 1, 0, TETHER_METHOD_TARGET_PROVIDER },
        [EXAMPLE_FILL_MEMORY] = { m_fill_memory, 2, 0, 0, 0, 0 },
        /* Each device published costs tetherd a service with its own
         * thread and fds, and outlives the connection: not for anyone. */
        [EXAMPLE_PUBLISH_DEVICE] = { m_publish_device, 1, 0, 1, 0, TETHER_METHOD_ADMIN },
        [EXAMPLE_REMOVE_DEVICE] = { m_remove_device, 1, 0, 0, 0, TETHER_METHOD_ADMIN },
        [EXAMPLE_SUM] = { m_sum, V, 0, 1, 0, 0 },
        [EXAMPLE_PRODUCE] = { m_produce, 0, 0, 0, V, 0 },
        [EXAMPLE_ACQUIRE] = { m_acquire, 1, 0, 0, 0, 0 },
        /* A queue's memory counts against the connection's and the
         * session's data-queue bounds, so anyone may make one. */
        [EXAMPLE_QUEUE_CREATE] = { example_m_queue_create, 2, 0, 1, 0, 0 },
        [EXAMPLE_QUEUE_PRODUCE] = { example_m_queue_produce, 4, 0, 2, 0, 0 },
        [EXAMPLE_QUEUE_STATS] = { example_m_queue_stats, 1, 0, 5, 0, 0 },
        [EXAMPLE_QUEUE_DESTROY] = { example_m_queue_destroy, 1, 0, 0, 0, 0 },
        [EXAMPLE_STREAM] = { m_stream, 2, 0, 0, 0, TETHER_METHOD_ALLOW_ASYNC },
        [EXAMPLE_STREAM_STATS] = { m_stream_stats, 0, 0, EXAMPLE_STATS_COUNT, 0, 0 },
};

static const char *const example_method_names[EXAMPLE_SELECTOR_COUNT] = {
        [EXAMPLE_MY_METHOD] = "myMethod", [EXAMPLE_ADD] = "add", [EXAMPLE_ECHO] = "echo",
        [EXAMPLE_SLEEP] = "sleep", [EXAMPLE_DELAYED_ADD] = "delayedAdd", [EXAMPLE_RESET] = "reset",
        [EXAMPLE_COUNT] = "count", [EXAMPLE_WHO_AM_I] = "whoAmI", [EXAMPLE_GET_BAUD_RATE] = "getBaudRate",
        [EXAMPLE_FILL_MEMORY] = "fillMemory", [EXAMPLE_PUBLISH_DEVICE] = "publishDevice",
        [EXAMPLE_REMOVE_DEVICE] = "removeDevice", [EXAMPLE_SUM] = "sum", [EXAMPLE_PRODUCE] = "produce",
        [EXAMPLE_ACQUIRE] = "acquire", [EXAMPLE_QUEUE_CREATE] = "queueCreate",
        [EXAMPLE_QUEUE_PRODUCE] = "queueProduce", [EXAMPLE_QUEUE_STATS] = "queueStats",
        [EXAMPLE_QUEUE_DESTROY] = "queueDestroy", [EXAMPLE_STREAM] = "stream",
        [EXAMPLE_STREAM_STATS] = "streamStats",
};

static const tether_user_client_ops example_client_ops = {
        .class_name = "ExampleUserClient",
        .priv_size = sizeof(example_client),
        .init_with_task = example_init_with_task,
        .start = example_uc_start,
        .stop = example_uc_stop,
        .methods = example_methods,
        .method_count = EXAMPLE_SELECTOR_COUNT,
        .method_names = example_method_names,
        .client_memory_for_type = example_memory,
};

static const tether_user_client_ops example_streaming_ops = {
        .class_name = "ExampleStreamingUserClient",
        .priv_size = sizeof(example_client),
        .init_with_task = example_init_with_task,
        .start = example_streaming_uc_start,
        .stop = example_uc_stop,
        .methods = example_methods,
        .method_count = EXAMPLE_SELECTOR_COUNT,
        .method_names = example_method_names,
        .client_memory_for_type = example_memory,
};

/* ==== legacy KPI ==== */

/* The article's MyMethod, with the legacy signature: each scalar input,
 * then the output buffer and a pointer to its size. */
static tether_ret_t l_my_method(void *target, void *p1, void *p2, void *p3, void *p4, void *p5, void *p6)
{
        uint32_t seed = (uint32_t)(uintptr_t)p1, want = (uint32_t)(uintptr_t)p2;
        uint8_t *out = p3;
        uint32_t *out_size = p4;
        if (want > *out_size)
                return TETHER_ERR_NO_SPACE;
        for (uint32_t i = 0; i < want; i++)
                out[i] = (uint8_t)(seed + i);
        *out_size = want;
        count_call(target);
        return TETHER_SUCCESS;
}

static tether_ret_t l_add(void *target, void *p1, void *p2, void *p3, void *p4, void *p5, void *p6)
{
        *(uint32_t *)p3 = (uint32_t)(uintptr_t)p1 + (uint32_t)(uintptr_t)p2;
        return TETHER_SUCCESS;
}

static tether_ret_t l_echo(void *target, void *p1, void *p2, void *p3, void *p4, void *p5, void *p6)
{
        uint32_t in_size = (uint32_t)(uintptr_t)p3, *out_size = p4;
        if (in_size > *out_size)
                return TETHER_ERR_NO_SPACE;
        if (in_size)
                memcpy(p2, p1, in_size);
        *out_size = in_size;
        return TETHER_SUCCESS;
}

static tether_ret_t l_set_name(void *target, void *p1, void *p2, void *p3, void *p4, void *p5, void *p6)
{
        example_client *c = tether_user_client_priv(target);
        uint32_t size = (uint32_t)(uintptr_t)p3;
        if (size == 0 || size >= sizeof(c->name) || memchr(p2, 0, size))
                return TETHER_ERR_BAD_ARGUMENT;
        memcpy(c->name, p2, size);
        c->name[size] = '\0';
        return TETHER_SUCCESS;
}

static tether_ret_t l_get_baud_rate(void *target, void *p1, void *p2, void *p3, void *p4, void *p5, void *p6)
{
        tether_value *v = NULL;
        uint64_t rate = 0;
        tether_ret_t r = tether_service_copy_property(target, EXAMPLE_PROP_BAUD_RATE, &v);
        if (r == TETHER_SUCCESS)
                r = tether_value_get_uint(v, &rate);
        tether_value_unref(v);
        *(uint32_t *)p1 = (uint32_t)rate;
        return r;
}

static tether_ret_t l_get_name(void *target, void *p1, void *p2, void *p3, void *p4, void *p5, void *p6)
{
        example_client *c = tether_user_client_priv(target);
        uint32_t *out_size = p2, n = (uint32_t)strlen(c->name);
        if (n > *out_size)
                return TETHER_ERR_NO_SPACE;
        if (n)
                memcpy(p1, c->name, n);
        *out_size = n;
        return TETHER_SUCCESS;
}

/* Static and const: the target is a constant resolved at call time, the
 * trick the article describes from Apple's USB user clients. */
static const tether_external_method example_legacy_methods[EXAMPLE_LEGACY_SELECTOR_COUNT] = {
        [EXAMPLE_LEGACY_MY_METHOD] = { TETHER_TARGET_USER_CLIENT, l_my_method, TETHER_UC_SCALAR_I_STRUCT_O, 2, V },
        [EXAMPLE_LEGACY_ADD] = { TETHER_TARGET_USER_CLIENT, l_add, TETHER_UC_SCALAR_I_SCALAR_O, 2, 1 },
        [EXAMPLE_LEGACY_ECHO] = { TETHER_TARGET_USER_CLIENT, l_echo, TETHER_UC_STRUCT_I_STRUCT_O, V, V },
        [EXAMPLE_LEGACY_SET_NAME] = { TETHER_TARGET_USER_CLIENT, l_set_name, TETHER_UC_SCALAR_I_STRUCT_I, 1, V },
        [EXAMPLE_LEGACY_GET_BAUD_RATE] = { TETHER_TARGET_PROVIDER, l_get_baud_rate, TETHER_UC_SCALAR_I_SCALAR_O, 0, 1 },
        [EXAMPLE_LEGACY_GET_NAME] = { TETHER_TARGET_USER_CLIENT, l_get_name, TETHER_UC_STRUCT_I_STRUCT_O, 0, V },
};
#undef V

static const char *const example_legacy_names[EXAMPLE_LEGACY_SELECTOR_COUNT] = {
        [EXAMPLE_LEGACY_MY_METHOD] = "myMethod", [EXAMPLE_LEGACY_ADD] = "add", [EXAMPLE_LEGACY_ECHO] = "echo",
        [EXAMPLE_LEGACY_SET_NAME] = "setName", [EXAMPLE_LEGACY_GET_BAUD_RATE] = "getBaudRate",
        [EXAMPLE_LEGACY_GET_NAME] = "getName",
};

static const tether_user_client_ops example_legacy_ops = {
        .class_name = "ExampleLegacyUserClient",
        .priv_size = sizeof(example_client),
        .init_with_task = example_init_with_task,
        .start = example_uc_start,
        .stop = example_uc_stop,
        .legacy_methods = example_legacy_methods,
        .legacy_method_count = EXAMPLE_LEGACY_SELECTOR_COUNT,
        .method_names = example_legacy_names,
};

static tether_ret_t example_new_user_client(tether_service *svc, uint32_t type, const tether_user_client_ops **ret)
{
        switch (type) {
        case EXAMPLE_CLIENT:
                *ret = &example_client_ops;
                return TETHER_SUCCESS;
        case EXAMPLE_CLIENT_STREAMING:
                *ret = &example_streaming_ops;
                return TETHER_SUCCESS;
        case EXAMPLE_CLIENT_LEGACY:
                *ret = &example_legacy_ops;
                return TETHER_SUCCESS;
        default:
                return TETHER_ERR_BAD_ARGUMENT;
        }
}

const tether_driver example_driver = {
        .name = "org.tether.example",
        .class_name = "ExampleDriver",
        .priv_size = sizeof(example_service),
        .start = example_start,
        .stop = example_stop,
        .set_properties = example_set_properties,
        .new_user_client = example_new_user_client,
};

/* ==== ExampleDevice: a driver for the nubs ExampleDriver publishes ==== */


typedef struct example_device {
        uint64_t ticks;              /* EXAMPLE_DEVICE_PROP_TICKS */
} example_device;

static tether_ret_t device_start(tether_service *svc)
{
        hold_wait(svc);
        tether_value *unit = NULL;
        tether_ret_t r = tether_service_get_provider_property(svc, "Unit", &unit);
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property(svc, "Unit", unit);
        tether_value_unref(unit);
        if (r == TETHER_SUCCESS)
                r = tether_service_set_property_uint(svc, EXAMPLE_DEVICE_PROP_TICKS, 0, 64);
        if (r != TETHER_SUCCESS)
                tether_service_log(svc, TETHER_LOG_ERROR, "cannot start: %s", tether_strerror(r));
        return r;
}

/*
 * A ticker per connection: a periodic timer, the TICK call it completes,
 * and its count. The timer is made on the first TICK and freed in the
 * connection's stop(). Who completes the call:
 *   - the timer's callback, after `want` ticks (SUCCESS);
 *   - TICK_CANCEL (ABORTED);
 *   - the timer's callback told TETHER_ERR_ABORTED: the service is being
 *     terminated. That comes before this connection's stop(), so the call
 *     is completed there, and the client hears of it.
 * A connection closed with a TICK running: stop() frees the timer (no
 * callback), and the call is dropped with its connection.
 */
typedef struct device_client {
        tether_timer *ticker;
        tether_async_ref ref;
        bool running;                /* ref accepted and not yet completed */
        uint64_t ticks, want;
} device_client;

static void tick_done(device_client *c, tether_ret_t result)
{
        if (!c->running)
                return;
        c->running = false;
        tether_async_complete(&c->ref, result, &c->ticks, 1);
}

static void tick(tether_service *svc, tether_timer *t, void *refcon, tether_ret_t status)
{
        device_client *c = refcon;
        if (status != TETHER_SUCCESS) {
                tether_service_log(svc, TETHER_LOG_INFO, "ticker stopped after %llu ticks: %s",
                                   (unsigned long long)c->ticks, tether_strerror(status));
                tick_done(c, status);
                return;
        }
        if (!c->running) {
                /* Cancelled, completed or aborted, yet called: the timer
                 * API promises this never happens (the tests look for it). */
                tether_service_log(svc, TETHER_LOG_WARNING, "tick with no TICK call running");
                tether_timer_cancel(t);
                return;
        }
        example_device *d = tether_service_priv(svc);
        c->ticks++;
        tether_service_set_property_uint(svc, EXAMPLE_DEVICE_PROP_TICKS, ++d->ticks, 64);
        if (c->ticks == c->want) {
                tether_timer_cancel(t);
                tick_done(c, TETHER_SUCCESS);
        }
}

static tether_ret_t d_tick(void *target, void *ref, tether_method_args *a)
{
        tether_service *svc = tether_user_client_provider(target);
        device_client *c = tether_user_client_priv(target);
        uint64_t period = a->scalar_input[0], count = a->scalar_input[1];
        if (!a->async_ref || period < EXAMPLE_TICK_MIN_MS || period > EXAMPLE_TICK_MAX_MS || !count ||
            count > EXAMPLE_TICK_MAX_COUNT)
                return TETHER_ERR_BAD_ARGUMENT;
        if (!svc)
                return TETHER_ERR_NOT_ATTACHED;
        if (c->running)
                return TETHER_ERR_BUSY;
        tether_ret_t r = c->ticker ? TETHER_SUCCESS : tether_timer_create(svc, tick, c, &c->ticker);
        if (r == TETHER_SUCCESS)
                r = tether_timer_arm_periodic(c->ticker, (uint32_t)period);
        if (r != TETHER_SUCCESS)
                return r;
        c->ref = *a->async_ref;
        c->ticks = 0;
        c->want = count;
        c->running = true;
        return TETHER_SUCCESS;
}

static tether_ret_t d_tick_cancel(void *target, void *ref, tether_method_args *a)
{
        device_client *c = tether_user_client_priv(target);
        if (!c->running)
                return TETHER_ERR_NOT_FOUND;
        tether_timer_cancel(c->ticker);
        a->scalar_output[0] = c->ticks;
        tick_done(c, TETHER_ERR_ABORTED);
        return TETHER_SUCCESS;
}

static tether_ret_t d_log(void *target, void *ref, tether_method_args *a)
{
        tether_service *svc = tether_user_client_provider(target);
        uint64_t count = a->scalar_input[1];
        tether_log_level level;
        switch (a->scalar_input[0]) {
        case EXAMPLE_LOG_ERROR:
                level = TETHER_LOG_ERROR;
                break;
        case EXAMPLE_LOG_WARNING:
                level = TETHER_LOG_WARNING;
                break;
        case EXAMPLE_LOG_INFO:
                level = TETHER_LOG_INFO;
                break;
        case EXAMPLE_LOG_DEBUG:
                level = TETHER_LOG_DEBUG;
                break;
        default:
                return TETHER_ERR_BAD_ARGUMENT;
        }
        if (count > 1000)
                return TETHER_ERR_BAD_ARGUMENT;
        if (!svc)
                return TETHER_ERR_NOT_ATTACHED;
        for (uint64_t i = 0; i < count; i++)
                tether_service_log(svc, level, "log line %llu of %llu for client pid %d",
                                   (unsigned long long)i + 1, (unsigned long long)count, (int)a->task->pid);
        return TETHER_SUCCESS;
}

static void device_uc_stop(tether_user_client *uc)
{
        device_client *c = tether_user_client_priv(uc);
        tether_timer_free(c->ticker);
        c->ticker = NULL;
}

static tether_ret_t d_get_unit(void *target, void *ref, tether_method_args *a)
{
        tether_service *svc = tether_user_client_provider(target);
        tether_value *v = NULL;
        tether_ret_t r = svc ? tether_service_copy_property(svc, "Unit", &v) : TETHER_ERR_NOT_ATTACHED;
        if (r == TETHER_SUCCESS)
                r = tether_value_get_uint(v, &a->scalar_output[0]);
        tether_value_unref(v);
        return r;
}

static const tether_method_dispatch device_methods[EXAMPLE_DEVICE_SELECTOR_COUNT] = {
        [EXAMPLE_DEVICE_GET_UNIT] = { d_get_unit, 0, 0, 1, 0, 0 },
        [EXAMPLE_DEVICE_TICK] = { d_tick, 2, 0, 0, 0, TETHER_METHOD_ALLOW_ASYNC },
        [EXAMPLE_DEVICE_TICK_CANCEL] = { d_tick_cancel, 0, 0, 1, 0, 0 },
        [EXAMPLE_DEVICE_LOG] = { d_log, 2, 0, 0, 0, 0 },
};

static const char *const device_method_names[EXAMPLE_DEVICE_SELECTOR_COUNT] = {
        [EXAMPLE_DEVICE_GET_UNIT] = "getUnit", [EXAMPLE_DEVICE_TICK] = "tick",
        [EXAMPLE_DEVICE_TICK_CANCEL] = "tickCancel", [EXAMPLE_DEVICE_LOG] = "log",
};

static const tether_user_client_ops device_client_ops = {
        .class_name = "ExampleDeviceUserClient",
        .priv_size = sizeof(device_client),
        .stop = device_uc_stop,
        .methods = device_methods,
        .method_count = EXAMPLE_DEVICE_SELECTOR_COUNT,
        .method_names = device_method_names,
};

static tether_ret_t device_new_user_client(tether_service *svc, uint32_t type, const tether_user_client_ops **ret)
{
        *ret = &device_client_ops;
        return TETHER_SUCCESS;
}

const tether_driver example_device_driver = {
        .name = "org.tether.example.device",
        .class_name = "ExampleDevice",
        .priv_size = sizeof(example_device),
        .start = device_start,
        .new_user_client = device_new_user_client,
};
