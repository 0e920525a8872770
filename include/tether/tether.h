/* SPDX-License-Identifier: MIT */
#ifndef TETHER_TETHER_H
#define TETHER_TETHER_H

/*
 * libtether: the client library (the IOKitLib of Linux).
 *
 *   tether_session_open()                     connect to tetherd (IOMasterPort)
 *   tether_get_matching_services()            find services (IOServiceGetMatchingServices)
 *   tether_registry_entry_get_properties()    read a property table
 *   tether_registry_entry_set_properties()    write through the driver's hook
 *   tether_service_open()                     open a connection: one user client (IOServiceOpen)
 *   tether_call_method()                      call a method by selector (IOConnectCallMethod)
 *   tether_map_memory()                       map driver memory (IOConnectMapMemory64)
 *   tether_notification_port_create()         an fd for notifications and async results
 *   tether_call_async_method()                async calls and streams (IOConnectCallAsyncMethod)
 *
 * Every function returns a tether_ret_t and writes results through its
 * last arguments. A session may be used from several threads; calls on
 * different connections run concurrently in tetherd.
 *
 * Handles. tether_session *, tether_connect *, tether_notification_port *,
 * tether_notification * and tether_probe * are names, not addresses, as
 * Mach port names are: generation-checked entries in a table of the
 * process, never dereferenced by the caller. Once closed, a handle is dead
 * for good, even after a later open reuses its slot: every function given
 * it returns TETHER_ERR_BAD_ARGUMENT (functions returning void do nothing,
 * tether_connect_id() returns 0, the *_get_fd() functions -1), so a double
 * close is harmless and a call through a stale handle never reaches another
 * object. A handle of one kind passed as another kind (a session cast to a
 * tether_connect *) is refused the same way, as is NULL. Closing a session
 * closes its connections, ports and their notifications and kills their
 * handles too. A close racing a call on the same handle in another thread
 * is safe: the call completes or fails with TETHER_ERR_BAD_ARGUMENT, and the
 * object goes when the last call using it returns. At most 65,536 handles
 * are open at once in a process; an open past that returns
 * TETHER_ERR_NO_RESOURCES.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <tether/return.h>
#include <tether/value.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TETHER_DEFAULT_SOCKET "/run/tether/tetherd.sock"
/* The environment variable that overrides the socket path. */
#define TETHER_SOCKET_ENV     "TETHER_SOCKET"

typedef struct tether_session tether_session;
typedef struct tether_connect tether_connect;
typedef struct tether_notification_port tether_notification_port;
typedef struct tether_notification tether_notification;

/* ---- session ---- */

/* path NULL: $TETHER_SOCKET, else TETHER_DEFAULT_SOCKET. */
tether_ret_t tether_session_open(const char *path, tether_session **ret);
/* Closes every connection and port of the session still open (and their
 * notifications); their handles and s are dead afterwards. A stale s (closed
 * already, or never a session): nothing happens. Probes are not the
 * session's: tetherd ends them when the session goes. */
void tether_session_close(tether_session *s);

/* ---- registry ---- */

/* Entry states, as ioreg shows them. */
#define TETHER_ENTRY_REGISTERED (1u << 0)
#define TETHER_ENTRY_MATCHED    (1u << 1)
#define TETHER_ENTRY_ACTIVE     (1u << 2)
#define TETHER_ENTRY_INACTIVE   (1u << 3) /* terminated, kept while referenced */

typedef struct tether_entry_info {
        uint64_t id;
        uint64_t parent_id;      /* 0 for the root */
        char *class_name;
        char *name;
        char *location;          /* "" if none */
        char *path;              /* "TetherService:/Root/..." */
        uint32_t state;          /* TETHER_ENTRY_* */
        uint32_t busy;
        uint32_t open_count;     /* connections open to it */
        char *driver;            /* driver name for a service, "" otherwise */
} tether_entry_info;

tether_ret_t tether_registry_get_root(tether_session *s, uint64_t *ret_id);
tether_ret_t tether_registry_entry_get_info(tether_session *s, uint64_t id, tether_entry_info **ret);
void tether_entry_info_free(tether_entry_info *info);
/* *ret_ids is malloc()ed; free() it. */
tether_ret_t tether_registry_entry_get_children(tether_session *s, uint64_t id,
                                                uint64_t **ret_ids, size_t *ret_count);
tether_ret_t tether_registry_entry_get_parent(tether_session *s, uint64_t id, uint64_t *ret_id);
/* *ret_path is malloc()ed. */
tether_ret_t tether_registry_entry_get_path(tether_session *s, uint64_t id, char **ret_path);
tether_ret_t tether_registry_entry_from_path(tether_session *s, const char *path, uint64_t *ret_id);

/* Referenced snapshots; unref them. */
tether_ret_t tether_registry_entry_get_properties(tether_session *s, uint64_t id, tether_value **ret_dict);
tether_ret_t tether_registry_entry_get_property(tether_session *s, uint64_t id, const char *key,
                                                tether_value **ret);
/* The driver validates and applies all of dict, or refuses it whole. It
 * knows who writes (this process's uid, gid and pid, from the socket) and
 * may keep keys to administrators (root, or members of tetherd's admin
 * group): TETHER_ERR_NOT_PRIVILEGED for others. A bundle's access policy
 * may keep a service's writes to some users (docs/bundles.md). */
tether_ret_t tether_registry_entry_set_properties(tether_session *s, uint64_t id, const tether_value *dict);
/* The same; on failure, if ret_why is not NULL, *ret_why is why, in the
 * driver's (or tetherd's) words: "Units must be C or F" where the error
 * alone says BadArgument. malloc()ed, "" if none was given; at most
 * TETHER_MAX_REASON bytes of UTF-8 without control characters (libtether
 * drops a reason that is not), so it is safe to print. NULL on success. */
#ifndef TETHER_MAX_REASON
#define TETHER_MAX_REASON 200u
#endif
tether_ret_t tether_registry_entry_set_properties_why(tether_session *s, uint64_t id, const tether_value *dict,
                                                     char **ret_why);

/* ---- matching ---- */

/* Matching dictionaries: keys "IOProviderClass", "IONameMatch" (a string or
 * an array of strings), "IOPropertyMatch" (a dict every key of which must
 * equal the entry's property), "IOParentMatch" (a matching dict for the
 * provider), "IORegistryEntryID". All keys present must match. */
tether_ret_t tether_service_matching(const char *class_name, tether_value **ret_dict);
tether_ret_t tether_service_name_matching(const char *name, tether_value **ret_dict);
tether_ret_t tether_get_matching_services(tether_session *s, const tether_value *matching,
                                          uint64_t **ret_ids, size_t *ret_count);
/* The first match, or TETHER_ERR_NOT_FOUND. */
tether_ret_t tether_get_matching_service(tether_session *s, const tether_value *matching,
                                         uint64_t *ret_id);

/* ---- connections (user clients) ---- */

#define TETHER_OPEN_EXCLUSIVE (1u << 0)

tether_ret_t tether_service_open(tether_session *s, uint64_t service_id, uint32_t type,
                                 uint32_t options, tether_connect **ret);
/* clientClose, then c is dead whatever it returns; its mappings are
 * unmapped. A stale c (closed already, by this or by its session's close):
 * TETHER_ERR_BAD_ARGUMENT and nothing else happens. Of two threads closing
 * c at once, one closes it and the other gets TETHER_ERR_BAD_ARGUMENT. */
tether_ret_t tether_service_close(tether_connect *c);
/* tetherd's id of the connection; 0 for a stale c. */
uint64_t tether_connect_id(tether_connect *c);

/*
 * IOConnectCallMethod. Any pointer may be NULL with its count/size 0.
 * *scalar_output_count and *struct_output_size are capacities in and
 * produced amounts out. Structs over TETHER_MAX_INLINE_STRUCT travel
 * through shared memory without the caller doing anything.
 */
tether_ret_t tether_call_method(tether_connect *c, uint32_t selector,
                                const uint64_t *scalar_input, uint32_t scalar_input_count,
                                const void *struct_input, size_t struct_input_size,
                                uint64_t *scalar_output, uint32_t *scalar_output_count,
                                void *struct_output, size_t *struct_output_size);
tether_ret_t tether_call_scalar_method(tether_connect *c, uint32_t selector,
                                       const uint64_t *input, uint32_t input_count,
                                       uint64_t *output, uint32_t *output_count);
tether_ret_t tether_call_struct_method(tether_connect *c, uint32_t selector,
                                       const void *input, size_t input_size,
                                       void *output, size_t *output_size);

/*
 * Async calls and streams (IOConnectCallAsyncMethod, docs/async.md). The
 * call returns when the method has accepted (or refused) it; accepted, it
 * opens an async reference: every result the driver sends on it arrives on
 * port and runs callback(refcon, ...) from tether_notification_port_dispatch(),
 * in the order the driver sent them. One result, for a method that answers once;
 * many, for a stream (a device pushing samples). The reference stays open,
 * and callback registered, until
 *   - the driver sends its last result (which runs callback too),
 *   - tether_async_cancel() ends it,
 *   - c is closed, or port destroyed.
 * While open it counts against c's and its session's bounds on
 * outstanding async calls (64 and 256): a call past them gets
 * TETHER_ERR_NO_RESOURCES. A port that is not drained loses results once
 * its socket is full (as I/O Kit's kIOUserNotifyOptionCanDrop does): nothing
 * is queued for it in tetherd or the driver (whose send is told), and a
 * stream's later results arrive once it is read again. A last result lost so leaves its
 * callback registered until c or port closes.
 */
typedef void (*tether_async_callback)(void *refcon, tether_ret_t result,
                                      const uint64_t *args, uint32_t arg_count);
tether_ret_t tether_call_async_method(tether_connect *c, uint32_t selector,
                                      tether_notification_port *port,
                                      tether_async_callback callback, void *refcon,
                                      const uint64_t *scalar_input, uint32_t scalar_input_count,
                                      const void *struct_input, size_t struct_input_size,
                                      uint64_t *scalar_output, uint32_t *scalar_output_count,
                                      void *struct_output, size_t *struct_output_size);
/* End every open reference on port whose callback and refcon are these:
 * callback(refcon, ...) does not run for them again (results already on
 * the port are discarded), and each one's driver is told at its next
 * result (TETHER_ERR_ABORTED), so it can stop. Until then the reference
 * still counts against the bounds. May be called from a callback, its own
 * included. Called from another thread than the one dispatching port, it
 * does not wait for that thread: a callback that dispatch has already
 * taken a result for may still run once: free refcon on the dispatching
 * thread, or once a dispatch begun after the cancel has returned. TETHER_ERR_NOT_FOUND if
 * none was open (a stream that ended already, a call that was refused);
 * TETHER_ERR_BAD_ARGUMENT for a stale port or a NULL callback. */
tether_ret_t tether_async_cancel(tether_notification_port *port, tether_async_callback callback,
                                 void *refcon);

/* ---- shared memory ---- */

#ifndef TETHER_MAP_READ_ONLY
#define TETHER_MAP_READ_ONLY (1u << 0)
#endif

/* Maps the driver's memory of a type (clientMemoryForType). Read-only if
 * options or the driver say so. Mapping the same type again returns the
 * same address. The mapping lives until unmapped or until c is closed. */
tether_ret_t tether_map_memory(tether_connect *c, uint32_t type, uint32_t options,
                               void **ret_addr, size_t *ret_size);
/* TETHER_ERR_NOT_FOUND if addr is not c's mapping of type (unmapped
 * already, say); TETHER_ERR_BAD_ARGUMENT if c is stale: its mappings went
 * with it. */
tether_ret_t tether_unmap_memory(tether_connect *c, uint32_t type, void *addr);

/* ---- notifications ---- */

tether_ret_t tether_notification_port_create(tether_session *s, tether_notification_port **ret);
/* Removes the port's notifications and closes its open async references
 * (their callbacks never run again; their drivers are told at their next
 * result); port and their handles are dead afterwards. May be called from
 * one of its own callbacks. A stale port: nothing happens. */
void tether_notification_port_destroy(tether_notification_port *port);
/* Poll it for POLLIN, then call dispatch. -1 for a stale port. */
int tether_notification_port_get_fd(tether_notification_port *port);
/* Runs the callbacks of every message waiting; does not block. */
tether_ret_t tether_notification_port_dispatch(tether_notification_port *port);

#define TETHER_NOTIFY_MATCHED    1u /* existing matches first, then each new one */
#define TETHER_NOTIFY_PUBLISHED  2u /* only services published from now on */
#define TETHER_NOTIFY_TERMINATED 3u
/* The service's property table changed (kIOMessageServicePropertyChange):
 * a write accepted by its driver, or the driver setting or removing a
 * property itself; a refused write or one of the values already there sends
 * nothing. Only the id travels: read the table for what changed (by then it
 * may hold later changes too, each of which has its own message). */
#define TETHER_NOTIFY_PROPERTIES_CHANGED 4u

typedef void (*tether_service_callback)(void *refcon, uint32_t type, uint64_t service_id);
tether_ret_t tether_service_add_matching_notification(tether_notification_port *port, uint32_t type,
                                                      const tether_value *matching,
                                                      tether_service_callback callback,
                                                      void *refcon, tether_notification **ret);
/* n is dead afterwards. A stale n (removed already, or gone with its port
 * or session): nothing happens. */
void tether_notification_remove(tether_notification *n);

/* ---- data queues (IODataQueueClient; docs/dataqueue.md) ---- */

/*
 * A stream of items a driver enqueues into memory this process maps: no
 * message per item. A tether_mapped_queue * is a handle like the others:
 * it dies with tether_data_queue_unmap() or the close of its connection (or
 * session), and is refused afterwards. One consumer: a process maps a
 * queue once (TETHER_ERR_EXCLUSIVE_ACCESS for a second map), and its calls
 * run one at a time. The driver is not trusted: an impossible header or
 * item length breaks the queue for good (TETHER_ERR_IPC from every call),
 * never this process.
 */
typedef struct tether_mapped_queue tether_mapped_queue;

/* As in driver.h: a queue's capacity, and the largest item it takes. */
#ifndef TETHER_DATA_QUEUE_MAX_CAPACITY
#define TETHER_DATA_QUEUE_MIN_CAPACITY 4096u
#define TETHER_DATA_QUEUE_MAX_CAPACITY (16u << 20)
#define TETHER_DATA_QUEUE_MAX_ITEM(capacity) ((capacity) / 2u - 8u)
#endif
typedef void (*tether_data_queue_callback)(void *refcon, tether_mapped_queue *q);

/*
 * Map the queue the driver made as `type` on c. With a port, the driver
 * tells it when the queue goes from empty to non-empty (and at once if it
 * holds items already): callback (may be NULL) runs from
 * tether_notification_port_dispatch(); drain the queue each time, since
 * one message stands for every item that came before the next dequeue that
 * finds it empty. port NULL: no messages, poll the queue yourself.
 * TETHER_ERR_NOT_FOUND: the driver has no queue of that type (yet).
 */
tether_ret_t tether_data_queue_map(tether_connect *c, uint32_t type, tether_notification_port *port,
                                   tether_data_queue_callback callback, void *refcon,
                                   tether_mapped_queue **ret);
/*
 * IODataQueueDequeue: take the next item, copied into buf (cap bytes);
 * *ret_len (may be NULL) is its length. TETHER_ERR_UNDERRUN: empty.
 * TETHER_ERR_NO_SPACE: longer than cap; nothing taken, *ret_len says how
 * long. buf NULL with cap 0 drops the item. Taking items may tell a driver
 * that was refused for want of room that there is room again (one message
 * once the queue is down to half).
 */
tether_ret_t tether_data_queue_dequeue(tether_mapped_queue *q, void *buf, size_t cap, size_t *ret_len);
/* IODataQueuePeek: the next item in place, not taken: *ret_data stays
 * valid until it is dequeued, the queue unmapped or its connection closed.
 * A driver that misbehaves can change its bytes meanwhile; copy what must
 * not change. TETHER_ERR_UNDERRUN: empty. */
tether_ret_t tether_data_queue_peek(tether_mapped_queue *q, const void **ret_data, size_t *ret_len);
/*
 * IODataQueueWaitForAvailableData: return once an item waits, up to
 * timeout_ms (-1: no limit; TETHER_ERR_TIMEOUT after it). Polls the port
 * the queue was mapped with and dispatches it, so that port's other
 * callbacks run from here too: do not dispatch it on another thread
 * meanwhile. TETHER_ERR_BAD_ARGUMENT for a queue mapped without a port.
 */
tether_ret_t tether_data_queue_wait(tether_mapped_queue *q, int timeout_ms);
/* q is dead afterwards; TETHER_ERR_BAD_ARGUMENT if it was already. */
tether_ret_t tether_data_queue_unmap(tether_mapped_queue *q);

/* ---- probes: every call and USB transfer, live (tether probe) ---- */

typedef struct tether_probe tether_probe;

#define TETHER_PROBE_CALLS        (1u << 0) /* user-client calls and async completions */
#define TETHER_PROBE_USB          (1u << 1) /* USBTMC transfers */
#define TETHER_PROBE_ANY_SELECTOR 0xFFFFFFFFu
#define TETHER_PROBE_MAX_SNAPLEN  65280u

typedef struct tether_probe_filter {
        uint32_t kinds;          /* TETHER_PROBE_CALLS and/or TETHER_PROBE_USB */
        uint32_t snaplen;        /* USB data bytes kept per transfer (<= TETHER_PROBE_MAX_SNAPLEN) */
        uint64_t service_id;     /* 0: every service */
        int32_t pid;             /* 0: every client; else its calls and the transfers they make */
        uint32_t selector;       /* TETHER_PROBE_ANY_SELECTOR, or one selector's calls and transfers */
} tether_probe_filter;

#define TETHER_PROBE_EVENT_CALL     1u
#define TETHER_PROBE_EVENT_ASYNC    2u /* a driver sent an async result (see delivery) */
#define TETHER_PROBE_EVENT_USB      3u
#define TETHER_PROBE_EVENT_PROPERTY 4u /* a property write was answered (a TETHER_PROBE_CALLS kind) */

/* Async flags, as the driver sent them. */
#define TETHER_PROBE_ASYNC_LAST   (1u << 0) /* the reference's last result: the stream ended */

/* Call flags, as on the wire. */
#define TETHER_PROBE_CALL_ASYNC   (1u << 0)
#define TETHER_PROBE_CALL_OOL_IN  (1u << 1) /* struct input went through shared memory */
#define TETHER_PROBE_CALL_OOL_OUT (1u << 2)

typedef struct tether_probe_event {
        uint32_t kind;             /* TETHER_PROBE_EVENT_* */
        uint32_t dropped;          /* events this probe lost just before this one */
        uint64_t time_ns;          /* CLOCK_REALTIME: call start, completion, transfer submit */
        uint64_t duration_ns;      /* call: in tetherd and the driver; USB: submit to done */
        uint64_t service_id, session_id, connection_id; /* 0s outside a call */
        int32_t pid;
        uint32_t selector;         /* TETHER_PROBE_ANY_SELECTOR outside a call */
        tether_ret_t result;       /* of the call, the completion or the transfer */
        /* CALL */
        char method[32];           /* from the driver's method_names, or "" */
        uint32_t call_flags;       /* TETHER_PROBE_CALL_* */
        uint32_t scalar_in, scalar_out, struct_in, struct_out;
        /* ASYNC */
        uint32_t arg_count;
        uint64_t args[16];
        /* USB */
        uint16_t bus;              /* 0 for a simulated device */
        uint8_t address;
        uint8_t transfer_type;     /* 2 control, 3 bulk (usbmon's numbers) */
        uint8_t endpoint;          /* 0x80 set for IN */
        uint8_t setup[8];          /* control transfers */
        uint32_t requested;        /* OUT: length; IN: buffer size */
        uint32_t actual;           /* bytes moved */
        uint32_t captured;         /* bytes in data (snaplen) */
        const uint8_t *data;       /* valid until the next tether_probe_read() or the detach */
        /* ASYNC */
        uint32_t async_flags;      /* TETHER_PROBE_ASYNC_* */
        tether_ret_t delivery;     /* SUCCESS: on the client's port; NoSpace: dropped, the port was full;
                                    * NotAttached: the port or connection is gone; Aborted: cancelled */
        /* PROPERTY (result: the driver's answer; duration: request to answer) */
        char keys[96];             /* the keys written, comma-separated, cut with "..." */
        char reason[201];          /* why it was refused, as the driver (or the access policy) said; or "" */
} tether_probe_event;

/* Root or tetherd's own user only: TETHER_ERR_NOT_PRIVILEGED otherwise. */
tether_ret_t tether_probe_attach(tether_session *s, const tether_probe_filter *filter, tether_probe **ret);
/* Non-blocking: poll it for POLLIN, then read until TETHER_ERR_NOT_READY.
 * -1 for a stale p. */
int tether_probe_get_fd(tether_probe *p);
/* TETHER_ERR_NOT_READY when nothing waits; TETHER_ERR_NOT_ATTACHED once
 * tetherd or the session is gone. */
tether_ret_t tether_probe_read(tether_probe *p, tether_probe_event *ret);
/* p is dead afterwards; a stale p: nothing happens. */
void tether_probe_detach(tether_probe *p);

/* ---- driver bundles (kextstat, kextload, kextunload; docs/bundles.md) ---- */

/* One dict per loaded bundle: "bundle" (id), "version", "path", "state"
 * ("loaded" or "running"), "services" (how many run its drivers) and
 * "personalities" (an array of names). Referenced; unref it. */
tether_ret_t tether_driver_list(tether_session *s, tether_value **ret_array);
/* Load the bundle folder at path (as tetherd sees the file system): its
 * personalities match at once, nubs already published included. Root or
 * tetherd's own user only (TETHER_ERR_NOT_PRIVILEGED). On failure, if
 * ret_why is not NULL, *ret_why is tetherd's reason (malloc()ed; "" if it
 * gave none). */
tether_ret_t tether_driver_load(tether_session *s, const char *path, char **ret_why);
/* Unload a bundle by id: its services are terminated (their clients get
 * TETHER_ERR_NOT_ATTACHED, watchers TERMINATED) and its personalities stop
 * matching. Root or tetherd's own user only. */
tether_ret_t tether_driver_unload(tether_session *s, const char *bundle_id);

#ifdef __cplusplus
}
#endif
#endif
