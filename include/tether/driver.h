/* SPDX-License-Identifier: MIT */
#ifndef TETHER_DRIVER_H
#define TETHER_DRIVER_H

/*
 * The driver API: what a driver hosted by tetherd implements and may call.
 *
 * The model is I/O Kit's, packaged as DriverKit packages it. A driver ships
 * in a bundle (docs/bundles.md): a folder with a manifest whose
 * personalities (matching dictionaries) tetherd reads without loading any
 * code, and a shared object that exports its drivers with TETHER_BUNDLE().
 * When a provider entry (a "nub") that a personality matches is published,
 * tetherd creates a service for the personality's driver, attached below
 * the nub, and calls start(). Applications find the service in the registry, read its
 * properties, write them through set_properties(), and open connections to
 * it; each connection gets its own user client, whose methods they call by
 * selector through a static method table that tetherd checks before the
 * driver runs.
 *
 * Threading: every service has its own work loop (a thread). Every driver
 * callback of a service and of its user clients runs on that loop, one at a
 * time, so driver code needs no locks of its own for its service's state.
 * A slow callback delays only its own service.
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <tether/return.h>
#include <tether/value.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- limits (as I/O Kit) ---- */
#define TETHER_VARIABLE_SIZE       0xFFFFFFFFu /* kIOUCVariableStructureSize */
#define TETHER_MAX_SCALARS         16u         /* io_scalar_inband64_t */
#define TETHER_MAX_INLINE_STRUCT   4096u       /* io_struct_inband_t */
#define TETHER_ASYNC_REF_COUNT     8u          /* kOSAsyncRef64Count */
#define TETHER_MAX_ASYNC_ARGS      16u         /* kMaxAsyncArgs */
/* Largest out-of-line struct a call may carry (shared memory). */
#define TETHER_MAX_OOL_STRUCT      (1u << 30)

typedef struct tether_service tether_service;
typedef struct tether_user_client tether_user_client;
typedef struct tether_memory tether_memory;

/*
 * Who is asking: the client that opened a connection (init_with_task, every
 * method call's args->task, tether_user_client_task) or that writes
 * properties (set_properties). One notion for both: pid, uid and gid from
 * SO_PEERCRED of the client's session, its word size from the session's
 * handshake, and the privileges tetherd granted it. tetherd fills it in;
 * a driver in its own process gets tetherd's word for it.
 */
typedef struct tether_task {
        pid_t pid;
        uid_t uid;
        gid_t gid;
        uint32_t abi_word_bits; /* 32 or 64: the word size the client was built for */
        uint32_t privileges;    /* TETHER_PRIVILEGE_*: ask tether_task_has_privilege() */
} tether_task;

/*
 * An administrator (kIOClientPrivilegeAdministrator): uid 0, or a member of
 * tetherd's admin group, `tether-admin` unless tetherd --admin-group names
 * another (its gid, or a group of its passwd entry, as the manifest's
 * access lists count groups; docs/bundles.md). What TETHER_METHOD_ADMIN
 * asks of a caller, and what a driver asks before an administrator-only
 * property write.
 */
#define TETHER_PRIVILEGE_ADMINISTRATOR (1u << 0)

/* IOUserClient::clientHasPrivilege: TETHER_SUCCESS if task holds privilege,
 * TETHER_ERR_NOT_PRIVILEGED if not, TETHER_ERR_BAD_ARGUMENT for a NULL task
 * or a privilege tether does not know. */
tether_ret_t tether_task_has_privilege(const tether_task *task, uint32_t privilege);

/* ==== Legacy KPI: IOExternalMethod ==== */

/* flags & TETHER_UC_TYPE_MASK */
#define TETHER_UC_SCALAR_I_SCALAR_O  0u /* count0 = scalars in, count1 = scalars out; in+out <= 6 */
#define TETHER_UC_SCALAR_I_STRUCT_O  2u /* count0 = scalars in (<= 4), count1 = struct out size */
#define TETHER_UC_STRUCT_I_STRUCT_O  3u /* count0 = struct in size, count1 = struct out size */
#define TETHER_UC_SCALAR_I_STRUCT_I  4u /* count0 = scalars in (<= 4), count1 = struct in size */
#define TETHER_UC_TYPE_MASK          0xfu
/* kIOUCForegroundOnly: known, but tether has no notion of a foreground
 * task, so a table with it is refused (as any bit beyond the type is). */
#define TETHER_UC_FOREGROUND_ONLY    0x10u

/* Where a legacy method runs, resolved when it is called, so a table can be
 * static const (what IOUSBFamily's user clients do with their constant
 * `object` field). The target passed to the function is the
 * tether_user_client * or the provider's tether_service *. */
#define TETHER_TARGET_USER_CLIENT  ((uintptr_t)0)
#define TETHER_TARGET_PROVIDER     ((uintptr_t)1)

/*
 * A legacy method receives six pointer-sized arguments after its target,
 * filled in the order the flag says (unused slots are NULL):
 *   SCALAR_I_SCALAR_O: each input as (void *)(uintptr_t)uint32, then a
 *                      uint32_t * per output
 *   SCALAR_I_STRUCT_O: each input, then the output buffer, then a
 *                      uint32_t * to its size (in: capacity, out: written)
 *   STRUCT_I_STRUCT_O: in+out: input, output, (void *)input size, uint32_t *
 *                      output size; out only: output, uint32_t * output size;
 *                      in only: input, (void *)input size
 *   SCALAR_I_STRUCT_I: each input, then the input struct, then its size
 * Legacy scalars are 32 bits: the top half of a 64-bit scalar is dropped,
 * exactly as I/O Kit does (the reason the new KPI exists).
 */
typedef tether_ret_t (*tether_method)(void *target, void *p1, void *p2, void *p3,
                                      void *p4, void *p5, void *p6);

typedef struct tether_external_method {
        uintptr_t object;    /* TETHER_TARGET_* */
        tether_method func;
        uint32_t flags;      /* TETHER_UC_* */
        uint32_t count0;
        uint32_t count1;
} tether_external_method;

/* ==== New KPI: IOExternalMethodDispatch (+ IOUserClient2022's checks) ==== */

/* What one call carries. Counts and sizes marked in/out arrive as the
 * caller's capacity and go back as what the method produced. */
typedef struct tether_method_args {
        uint32_t selector;

        const uint64_t *scalar_input;
        uint32_t scalar_input_count;

        /* Inline (<= 4096 bytes) or out of line; either way a private copy
         * the client cannot change while the method reads it. Both buffers
         * here are aligned for any type, as malloc's memory is. */
        const void *struct_input;
        uint32_t struct_input_size;
        bool struct_input_out_of_line;

        uint64_t *scalar_output;
        uint32_t scalar_output_count;          /* in/out */

        /* For a large output this points straight into memory shared with
         * the client (no copy). */
        void *struct_output;
        uint32_t struct_output_size;           /* in/out */
        bool struct_output_out_of_line;

        /* Non-NULL for an async call: keep a copy (it is a plain struct) and
         * send its results later with tether_async_send() or
         * tether_async_complete(). */
        const struct tether_async_ref *async_ref;

        const tether_task *task;
} tether_method_args;

typedef tether_ret_t (*tether_dispatch_function)(void *target, void *reference,
                                                 tether_method_args *args);

/* Per-method policy, checked by tetherd before the function runs. */
#define TETHER_METHOD_ALLOW_ASYNC     (1u << 0) /* may be called async; else refused */
#define TETHER_METHOD_ADMIN           (1u << 1) /* caller must be an administrator
                                                 * (TETHER_PRIVILEGE_ADMINISTRATOR): else NOT_PRIVILEGED */
#define TETHER_METHOD_TARGET_PROVIDER (1u << 2) /* target is the provider service */

typedef struct tether_method_dispatch {
        tether_dispatch_function function;   /* NULL: a reserved slot, UNSUPPORTED */
        uint32_t check_scalar_input_count;   /* exact, or TETHER_VARIABLE_SIZE */
        uint32_t check_struct_input_size;
        uint32_t check_scalar_output_count;
        uint32_t check_struct_output_size;
        uint32_t flags;                      /* TETHER_METHOD_* */
} tether_method_dispatch;

/* An async reference: where its results go. A plain value: copy it, keep
 * the copy for as long as the reference is open, send on the copy. */
typedef struct tether_async_ref {
        uint64_t words[TETHER_ASYNC_REF_COUNT]; /* the client's, echoed in each result: [0] its port,
                                                 * [1] its token for (callback, refcon) */
        uint64_t connection;                    /* tetherd's id of the user client */
} tether_async_ref;

/*
 * Async results (IOUserClient::sendAsyncResult64). An async call that its
 * method accepts opens its reference, and every result sent on it runs the
 * client's callback, in the order sent, until the reference closes: when
 * the driver sends a result flagged TETHER_ASYNC_LAST, when the client
 * cancels it (tether_async_cancel), or when its connection or its port
 * closes. A stream (a device pushing samples) is one reference and many
 * results; an async call that answers once sends one last result
 * (tether_async_complete). A method that returns an error opened nothing:
 * its reference is closed, whatever it sent on it. While open, a reference
 * counts against its connection's and session's bounds on outstanding
 * async calls (64 / 256, docs/limits.md), so a call past them is refused
 * before the method runs; a stream that never ends holds its place until
 * the client cancels it or closes. docs/async.md has the whole model.
 *
 * Callable from any thread; results sent on one reference from one thread
 * (the service's work loop, typically a tether_service_schedule()
 * callback) arrive in that order. Nothing is queued for a client: a
 * result its port has no room for is dropped. What came of it:
 *   TETHER_SUCCESS           on the client's port.
 *   TETHER_ERR_NO_SPACE      the client's port is full (it is not reading
 *                            it): this result was dropped and counted; the
 *                            reference stays open (unless this was its
 *                            last), so later results may get through.
 *   TETHER_ERR_ABORTED       the client cancelled the reference: nothing
 *                            was sent, and the reference is closed. Stop.
 *   TETHER_ERR_NOT_ATTACHED  its connection or its client's port has
 *                            closed: nothing was sent, and the log says so,
 *                            naming the driver (a few lines a window, for
 *                            all drivers of the process). Stop.
 *   TETHER_ERR_NOT_FOUND     the reference is not open: its last result
 *                            went already, or its method refused the call.
 *                            Stop.
 *   TETHER_ERR_BAD_ARGUMENT  ref NULL, count over TETHER_MAX_ASYNC_ARGS,
 *                            or args NULL with a count, or unknown flags.
 * A driver keeps no other state for the client's sake: after its last
 * result, whatever came of it, and on any error but TETHER_ERR_NO_SPACE,
 * it frees what it kept for the reference.
 */
#define TETHER_ASYNC_LAST (1u << 0) /* the reference's last result: it closes */

tether_ret_t tether_async_send(const tether_async_ref *ref, tether_ret_t result, const uint64_t *args,
                               uint32_t count, uint32_t flags);
/* The one result of an async call that answers once: tether_async_send()
 * with TETHER_ASYNC_LAST. A second on the same reference gets
 * TETHER_ERR_NOT_FOUND; use tether_async_send() for a stream. */
tether_ret_t tether_async_complete(const tether_async_ref *ref, tether_ret_t result,
                                   const uint64_t *args, uint32_t count);

/* ==== User clients ==== */

typedef struct tether_user_client_ops {
        const char *class_name;   /* registry class of the user client, e.g. "ExampleUserClient" */
        size_t priv_size;         /* zeroed private state per connection */

        /* Refuse with an error to fail the open. type is the open's type. */
        tether_ret_t (*init_with_task)(tether_user_client *uc, const tether_task *task, uint32_t type);
        /* Check the provider is of your family; an error fails the open. */
        tether_ret_t (*start)(tether_user_client *uc, tether_service *provider);
        /* The application closed the connection. */
        void (*client_close)(tether_user_client *uc);
        /* The application exited or crashed. NULL: client_close is called. */
        void (*client_died)(tether_user_client *uc);
        /* Last call before the private state is freed. */
        void (*stop)(tether_user_client *uc);

        /* Exactly one of the two tables; the other NULL with count 0. */
        const tether_external_method *legacy_methods;
        uint32_t legacy_method_count;
        const tether_method_dispatch *methods;
        uint32_t method_count;
        /* Optional: a name per selector (same count as the table), shown by
         * `tether probe`. NULL entries and a NULL array are fine. */
        const char *const *method_names;

        /* Shared memory of a type (IOUserClient::clientMemoryForType). Return
         * a referenced memory object; set TETHER_MAP_READ_ONLY in *options to
         * give the client a read-only mapping. */
        tether_ret_t (*client_memory_for_type)(tether_user_client *uc, uint32_t type,
                                               uint32_t *options, tether_memory **ret_memory);
} tether_user_client_ops;

void *tether_user_client_priv(tether_user_client *uc);
tether_service *tether_user_client_provider(tether_user_client *uc);
const tether_task *tether_user_client_task(tether_user_client *uc);
uint64_t tether_user_client_id(tether_user_client *uc);

/* ==== Shared memory ==== */

#ifndef TETHER_MAP_READ_ONLY
#define TETHER_MAP_READ_ONLY (1u << 0)
#endif

/* memfd-backed, zero-filled, reference counted; size is rounded up to pages. */
tether_ret_t tether_memory_create(size_t size, const char *name, tether_memory **ret);
tether_memory *tether_memory_ref(tether_memory *m);
tether_memory *tether_memory_unref(tether_memory *m);
void *tether_memory_ptr(tether_memory *m);
size_t tether_memory_size(tether_memory *m);

/* ==== Data queues (IOSharedDataQueue, DriverKit's IODataQueueDispatchSource) ==== */

/*
 * A ring in memory shared with one connection's client, for a stream of
 * items: the driver enqueues on its work loop, the client maps the queue
 * (tether_data_queue_map() in tether.h) and dequeues with no message per
 * item. The client is told when the queue goes from empty to non-empty
 * (one message, however many items follow before it looks), never when an
 * item lands in a queue that already had some. docs/dataqueue.md has the
 * layout, the rules and where tether differs from I/O Kit.
 *
 * A full queue refuses: nothing is ever overwritten. The driver learns when
 * there is room again from its serviced handler (DataServiced), which runs
 * on the work loop once the client has drained a queue that refused an
 * item to half its capacity; it is not called for a queue that refused
 * nothing, and not after the queue or its user client is gone.
 *
 * The client writes half of the queue's header, and the driver trusts none
 * of it: a head the client set to garbage breaks that queue for good
 * (TETHER_ERR_IPC from every enqueue, one warning logged), never the driver.
 */
typedef struct tether_data_queue tether_data_queue;

/* tether.h has these too, for clients. */
#ifndef TETHER_DATA_QUEUE_MAX_CAPACITY
#define TETHER_DATA_QUEUE_MIN_CAPACITY 4096u
#define TETHER_DATA_QUEUE_MAX_CAPACITY (16u << 20)
/* The largest item a queue of this capacity takes: half of it, less the
 * item's 8-byte header. */
#define TETHER_DATA_QUEUE_MAX_ITEM(capacity) ((capacity) / 2u - 8u)
#endif
/* Bounds on what the queues of one connection, and of one session's
 * connections to this driver process, may hold (docs/limits.md). Each
 * queue also holds an fd of the driver's process: inside tetherd, one of
 * the caller's uid's share. */
#define TETHER_DATA_QUEUES_PER_CONNECTION      8u
#define TETHER_DATA_QUEUE_BYTES_PER_CONNECTION (16u << 20)
#define TETHER_DATA_QUEUE_BYTES_PER_SESSION    (64u << 20)
#define TETHER_DATA_QUEUES_PER_SESSION         64u

typedef void (*tether_data_queue_serviced)(tether_data_queue *q, void *ctx);

/*
 * A queue of at least capacity bytes (rounded up to a power of two, at
 * least TETHER_DATA_QUEUE_MIN_CAPACITY) for uc's client, who maps it as
 * `type` (a number of the driver's choosing, one queue per type and
 * connection). serviced may be NULL. Call it on the work loop, e.g. from the
 * user client's start() or a method. Its memory counts against the bounds
 * above (TETHER_ERR_NO_RESOURCES past them); TETHER_ERR_BAD_ARGUMENT for a
 * capacity over TETHER_DATA_QUEUE_MAX_CAPACITY or a type uc already has.
 * The queue is uc's: it goes when uc's stop() has returned, if the driver
 * has not destroyed it before.
 */
tether_ret_t tether_data_queue_create(tether_user_client *uc, uint32_t type, size_t capacity,
                                      tether_data_queue_serviced serviced, void *ctx,
                                      tether_data_queue **ret);
/*
 * Copy one item of len bytes (0 ... TETHER_DATA_QUEUE_MAX_ITEM) into the
 * queue, on the work loop. TETHER_ERR_NO_SPACE: it does not fit now (wait
 * for the serviced handler); TETHER_ERR_IPC: the client broke the queue;
 * TETHER_ERR_NOT_ATTACHED: the connection is closing or its provider was
 * terminated. The data-available message, when one is due, is sent from
 * here; a client that has not mapped the queue yet gets none (it finds the
 * items when it maps it).
 */
tether_ret_t tether_data_queue_enqueue(tether_data_queue *q, const void *data, size_t len);
/*
 * DriverKit's EnqueueWithCoalesce and SendDataAvailable: the same enqueue,
 * but a data-available message that falls due is held back until
 * tether_data_queue_send_data_available() (which sends nothing if none is
 * due), so a burst of items costs the client one wake-up. Send before the
 * callback that enqueued returns: the client may be asleep on the empty
 * queue, waiting for exactly that message.
 */
tether_ret_t tether_data_queue_enqueue_coalesced(tether_data_queue *q, const void *data, size_t len);
void tether_data_queue_send_data_available(tether_data_queue *q);
/* Its capacity in bytes (0 for NULL). */
size_t tether_data_queue_capacity(tether_data_queue *q);
/* Before its user client's stop() returns, if at all. A client that mapped
 * it keeps its mapping but gets nothing more. */
void tether_data_queue_destroy(tether_data_queue *q);

/* ==== Drivers and services ==== */

typedef struct tether_driver {
        const char *name;          /* e.g. "com.example.ExampleDriver" */
        /* Registry class of the service it publishes; a manifest's
         * personality names the driver it starts by this (its "driver"). */
        const char *class_name;
        size_t priv_size;

        /* Called with the service attached to its provider; fill properties
         * here. An error detaches it (the next matching driver may try). */
        tether_ret_t (*start)(tether_service *svc);
        /* The service is being terminated (provider gone or daemon exit). */
        void (*stop)(tether_service *svc);

        /* IORegistryEntry::setProperties. caller is who writes (valid
         * during the call): the socket is open to every local user, so a
         * key that changes what others get (a lock, a hold) should ask
         * tether_task_has_privilege(caller, TETHER_PRIVILEGE_ADMINISTRATOR)
         * first, as an I/O Kit driver asks clientHasPrivilege. dict holds
         * only keys the client asked to set. Validate every key, type and
         * range; apply with tether_service_set_property(). Return an error
         * to refuse the whole request (nothing applied), best through
         * tether_service_refuse(), which tells the writer why. NULL:
         * writes are UNSUPPORTED. */
        tether_ret_t (*set_properties)(tether_service *svc, const tether_task *caller, const tether_value *dict);

        /* newUserClient: the ops for a connection of this type, or an error. */
        tether_ret_t (*new_user_client)(tether_service *svc, uint32_t type,
                                        const tether_user_client_ops **ret_ops);
} tether_driver;

void *tether_service_priv(tether_service *svc);
uint64_t tether_service_id(tether_service *svc);
const char *tether_service_class(tether_service *svc);
/* The provider's entry (nub) properties are readable through this. */
tether_ret_t tether_service_get_provider_property(tether_service *svc, const char *key,
                                                  tether_value **ret);

/*
 * The device the provider stands for, opened by tetherd and handed over as
 * a file descriptor the driver owns (and closes). A driver opens no device
 * itself: its process runs unprivileged, with no /dev/bus/usb, and the same
 * driver code serves a real device and a simulated one.
 *   TETHER_DEVICE_USBFS  a /dev/bus/usb node, its USB interface (the nub's
 *                        bInterfaceNumber) already claimed on the file and
 *                        the file's rights dropped to it: wrap it with
 *                        libusb_wrap_sys_device.
 *   TETHER_DEVICE_VUSB   a simulated USB device served by a process of its
 *                        own over this socket (docs/vusb.md).
 * One file at a time: opening again while the last fd is still open gives
 * TETHER_ERR_EXCLUSIVE_ACCESS (USB) or TETHER_ERR_NO_RESOURCES (simulated).
 * TETHER_ERR_UNSUPPORTED: the provider is no device tetherd opens (a LAN
 * nub, whose address the driver connects to; a nub some driver published).
 * Blocks while tetherd opens it: call it from start(), not per method call.
 */
typedef enum tether_device_kind {
        TETHER_DEVICE_USBFS = 1,
        TETHER_DEVICE_VUSB = 2,
} tether_device_kind;
tether_ret_t tether_service_open_provider_device(tether_service *svc, tether_device_kind *ret_kind, int *ret_fd);

/* Properties of a service. Readers see each change whole and at once. */
tether_ret_t tether_service_set_property(tether_service *svc, const char *key, tether_value *v);
tether_ret_t tether_service_remove_property(tether_service *svc, const char *key);
/* Shorthands: build the value and set it (as tether_value_dict_set_*). */
tether_ret_t tether_service_set_property_string(tether_service *svc, const char *key, const char *s);
tether_ret_t tether_service_set_property_uint(tether_service *svc, const char *key, uint64_t v, unsigned bits);
tether_ret_t tether_service_set_property_double(tether_service *svc, const char *key, double v);
tether_ret_t tether_service_set_property_bool(tether_service *svc, const char *key, bool v);
/* A referenced snapshot of one property. */
tether_ret_t tether_service_copy_property(tether_service *svc, const char *key, tether_value **ret);

/*
 * Why set_properties refuses, for the writer to read (`tether reg set`
 * prints it; tether_registry_entry_set_properties_why() returns it):
 *     return tether_service_refuse(svc, TETHER_ERR_BAD_ARGUMENT, "Units must be C or F");
 * Returns err, so the hook can return it; err must be an error
 * (TETHER_ERR_BAD_ARGUMENT otherwise, and nothing is kept). The reason is
 * printf-formatted text: past TETHER_MAX_REASON bytes it is cut (at a
 * character boundary) and the driver named in a log line; control
 * characters and bytes that are not UTF-8 become '?'. Called again, the
 * last reason counts. Outside set_properties (or once the hook returns
 * success) it is dropped: a reason goes only with a refused write.
 */
#ifndef TETHER_MAX_REASON
#define TETHER_MAX_REASON 200u
#endif
tether_ret_t tether_service_refuse(tether_service *svc, tether_ret_t err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Publish a nub below svc (as a bus driver does for a device it found);
 * drivers are matched against it at once. class_name and name are required,
 * location may be NULL, props may be NULL.
 * Cost: a nub a driver matches becomes a service with its own work loop (a
 * thread and two fds) that lives until the nub is terminated, whoever's
 * call caused it. A method that publishes for its caller must therefore be
 * TETHER_METHOD_ADMIN (or bound what each caller may publish). tetherd
 * bounds a service to 64 nubs and a driver to 256 services:
 * TETHER_ERR_NO_RESOURCES past either. */
tether_ret_t tether_service_publish_nub(tether_service *svc, const char *class_name,
                                        const char *name, const char *location,
                                        tether_value *props, uint64_t *ret_id);
/* Terminate an entry published by svc, and everything attached below it:
 * their open user clients are told (client_died-like close on their next
 * turn), calls to them fail with TETHER_ERR_NOT_ATTACHED, and terminated
 * notifications go out. */
tether_ret_t tether_service_terminate_nub(tether_service *svc, uint64_t nub_id);

/*
 * Run fn(svc, ctx) on svc's work loop after delay_ms (0: as soon as the
 * loop is free). Callable from any thread: it is how a driver's own
 * thread hands work to its loop. It cannot be cancelled; for a timeout,
 * a periodic job, or anything that must be told the service went away,
 * use a timer (below).
 * At stop: work that has not run when the service starts to stop is
 * dropped, never called, not after stop() either. So stop() sees exactly
 * what is outstanding: a driver that allocated ctx keeps track of it and
 * frees it there (drivers/example/api.c, the delayed adds); the runtime
 * frees its own part. Called on the loop once the service has started to
 * stop (from a stop(), say), it returns TETHER_ERR_NOT_ATTACHED and ctx
 * stays the caller's; a driver's own threads are its to end in stop().
 */
tether_ret_t tether_service_schedule(tether_service *svc, uint32_t delay_ms,
                                     void (*fn)(tether_service *svc, void *ctx), void *ctx);

/* ==== Timers: IOTimerEventSource, DriverKit's IOTimerDispatchSource ==== */

/*
 * A timer belongs to a service and calls its callback on the service's
 * work loop, one callback at a time with everything else the driver does,
 * as an IOTimerEventSource's action runs with its work loop's gate closed.
 *
 *   status TETHER_SUCCESS        it fired.
 *   status TETHER_ERR_ABORTED    the service is stopping (or its start()
 *                                failed) while the timer was armed: it is
 *                                disarmed and told, once, so its owner can
 *                                let go of refcon. This comes before any
 *                                stop(), user clients' and the driver's, so
 *                                what refcon points to is still intact. No
 *                                callback ever comes after.
 *
 * A timer fires at most once per arming (periodic: once per period); it
 * never fires early. The callback may re-arm, cancel or free its own timer,
 * or any other. Every function here must be called on the service's work
 * loop (from a driver callback): elsewhere it returns
 * TETHER_ERR_NOT_PERMITTED, and tether_timer_free does nothing (and logs),
 * since a callback might be running. A driver's own thread gets onto the
 * loop with tether_service_schedule.
 *
 * Cost: a service holds at most TETHER_MAX_TIMERS_PER_SERVICE timers at once
 * (made and not freed; TETHER_ERR_NO_RESOURCES past it): a driver that
 * needs more keeps its own queue behind one timer. Each is a small
 * allocation and, while armed, one entry in the loop's heap: arming,
 * re-arming and cancelling cost O(log n) and leave nothing behind.
 */
#define TETHER_MAX_TIMERS_PER_SERVICE 256u

typedef struct tether_timer tether_timer;
typedef void (*tether_timer_fn)(tether_service *svc, tether_timer *timer, void *refcon,
                                tether_ret_t status);

/* A disarmed timer of svc. TETHER_ERR_NOT_ATTACHED once svc has started to
 * stop (logged, naming the driver). */
tether_ret_t tether_timer_create(tether_service *svc, tether_timer_fn fn, void *refcon,
                                 tether_timer **ret_timer);
/* Fire once, delay_ms from now (0: on the loop's next turn). Re-arming
 * replaces whatever was pending, one-shot or periodic (setTimeoutMS). On
 * a service that has started to stop: TETHER_ERR_NOT_ATTACHED, logged with
 * the driver's name, and the timer stays disarmed. */
tether_ret_t tether_timer_arm(tether_timer *timer, uint32_t delay_ms);
/* Fire every period_ms (>= 1), the first time period_ms from now, until
 * cancelled, re-armed or freed. The period is kept from one due time to
 * the next, so it does not drift; periods missed while the loop was busy
 * are skipped, not run in a burst. Errors as tether_timer_arm. */
tether_ret_t tether_timer_arm_periodic(tether_timer *timer, uint32_t period_ms);
/* Disarm (cancelTimeout): the callback is not called for what was
 * pending. A disarmed timer may be armed again. Cancelling one that is
 * not armed is fine. */
tether_ret_t tether_timer_cancel(tether_timer *timer);
/* Armed and not yet fired (periodic: until cancelled). */
bool tether_timer_is_armed(tether_timer *timer);
/* Cancel without a callback and free it; NULL is fine. Allowed inside the
 * timer's own callback (the memory goes when the callback returns).
 * Timers a driver never frees go with its service. */
void tether_timer_free(tether_timer *timer);

/* ==== Logging ==== */

/* syslog's numbers, as tetherd's own lines use. */
typedef enum tether_log_level {
        TETHER_LOG_ERROR = 3,
        TETHER_LOG_WARNING = 4,
        TETHER_LOG_INFO = 6,
        TETHER_LOG_DEBUG = 7,
} tether_log_level;

/*
 * One line in tetherd's log, wherever the driver runs (a driver host's
 * stderr is tetherd's), naming the service, as
 *     tetherd: warning: bundle org.tether.example: ExampleDriver (0x2a): ...
 * Debug lines show only when tetherd runs with --verbose or TETHER_LOG=debug.
 * Rate-limited per service, as tetherd limits what it says about a client:
 * 10 lines per 5 s, then one "N messages suppressed" line when the next gets
 * through or the service stops. Control characters in the message become
 * '?', so a line cannot pretend to be another. Any thread. Returns
 * TETHER_ERR_BAD_ARGUMENT for a NULL svc or fmt or an unknown level, else
 * TETHER_SUCCESS (also when the line was filtered or suppressed).
 */
tether_ret_t tether_service_log(tether_service *svc, tether_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
tether_ret_t tether_service_logv(tether_service *svc, tether_log_level level, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));

/* ==== Bundles ==== */

/* The driver ABI a bundle's library was built for; a host refuses another.
 * 2: set_properties is told who writes, tether_task has privileges. */
#define TETHER_DRIVER_ABI 2u

typedef struct tether_bundle_entry {
        uint32_t abi;                          /* TETHER_DRIVER_ABI when built */
        const tether_driver *const *drivers;   /* NULL-terminated */
} tether_bundle_entry;

/* The symbol looked up in a bundle's library by whoever loads it: a driver
 * host, or tetherd under --in-process. */
#define TETHER_BUNDLE_SYMBOL "tether_bundle"

/* In one source file of a bundle's library, name its drivers:
 *     TETHER_BUNDLE(&my_driver, &my_other_driver);
 * A manifest personality's "driver" picks one by its class_name. */
#define TETHER_BUNDLE(...)                                                                         \
        static const tether_driver *const tether_bundle_drivers_[] = { __VA_ARGS__, NULL };       \
        __attribute__((visibility("default"))) extern const tether_bundle_entry tether_bundle;   \
        const tether_bundle_entry tether_bundle = { TETHER_DRIVER_ABI, tether_bundle_drivers_ }

#ifdef __cplusplus
}
#endif
#endif
