/* SPDX-License-Identifier: MIT */
#ifndef TETHER_EXAMPLE_H
#define TETHER_EXAMPLE_H

#include <stddef.h>
#include <stdint.h>

/*
 * The example driver's interface, shared by the driver and its clients:
 * selectors, user-client types and memory types. An application includes
 * this header the way a macOS application includes its driver's
 * UserClientShared.h.
 */

/* tether_service_open() types */
enum example_client_type {
        EXAMPLE_CLIENT = 0,         /* new KPI: tether_method_dispatch table */
        EXAMPLE_CLIENT_LEGACY = 1,  /* legacy KPI: tether_external_method table */
        /* EXAMPLE_CLIENT whose start() makes a data queue at once,
         * EXAMPLE_EVENT_QUEUE (EXAMPLE_EVENT_QUEUE_SIZE bytes). */
        EXAMPLE_CLIENT_STREAMING = 2,
};
#define EXAMPLE_EVENT_QUEUE      0u
#define EXAMPLE_EVENT_QUEUE_SIZE 65536u

#define EXAMPLE_MAX_DELAY_MS 10000u /* EXAMPLE_DELAYED_ADD: longer is BAD_ARGUMENT */
/* EXAMPLE_STREAM: more results, or a longer interval, is BAD_ARGUMENT. */
#define EXAMPLE_MAX_STREAM_COUNT       100000u
#define EXAMPLE_MAX_STREAM_INTERVAL_MS 10000u

/* Selectors of EXAMPLE_CLIENT. */
enum example_selector {
        EXAMPLE_MY_METHOD = 0,      /* 2 scalars in -> variable struct out (the article's method) */
        EXAMPLE_ADD,                /* a, b -> a + b */
        EXAMPLE_ECHO,               /* variable struct in -> the same bytes out */
        EXAMPLE_SLEEP,              /* ms (<= 10000): holds the service's work loop */
        EXAMPLE_DELAYED_ADD,        /* async only: a, b, delay ms (<= 10000) -> completion (a + b, count) */
        EXAMPLE_RESET,              /* admin only: resets the service-wide call count */
        EXAMPLE_COUNT,              /* -> this connection's own counter, incremented */
        EXAMPLE_RESERVED,           /* a reserved slot: always UNSUPPORTED */
        EXAMPLE_WHO_AM_I,           /* -> pid, uid, gid, abi bits as init_with_task saw them */
        EXAMPLE_GET_BAUD_RATE,      /* runs on the provider: -> BaudRate */
        EXAMPLE_FILL_MEMORY,        /* memory type, byte value: fills that memory */
        EXAMPLE_PUBLISH_DEVICE,     /* admin only: unit -> nub id of a new ExampleDeviceNub */
        EXAMPLE_REMOVE_DEVICE,      /* admin only: nub id: terminates it and its driver */
        EXAMPLE_SUM,                /* any number of scalars -> their sum */
        EXAMPLE_PRODUCE,            /* -> the struct output filled from the service's sample memory */
        EXAMPLE_ACQUIRE,            /* bytes: copies that much sample memory into EXAMPLE_MEMORY_BUFFER */
        /* Data queues (tether_data_queue_map): a stream of numbered items. */
        EXAMPLE_QUEUE_CREATE,       /* queue type, capacity -> the capacity granted */
        EXAMPLE_QUEUE_PRODUCE,      /* queue type, count, item bytes, EXAMPLE_PRODUCE_* flags
                                     * -> items this call enqueued, its last enqueue's result */
        EXAMPLE_QUEUE_STATS,        /* queue type -> enqueued, refused, serviced, last error, left */
        EXAMPLE_QUEUE_DESTROY,      /* queue type */
        /* Async results: one reference, many results. */
        EXAMPLE_STREAM,             /* async only: count, interval ms -> count results, one per interval
                                     * (the first after one), each (seq 1..count, count), the last one
                                     * closing the reference (enum example_stream_arg) */
        EXAMPLE_STREAM_STATS,       /* -> the service's streams so far (enum example_stream_stat) */
        EXAMPLE_SELECTOR_COUNT
};

/* The args of each EXAMPLE_STREAM result. */
enum example_stream_arg {
        EXAMPLE_STREAM_SEQ = 0,       /* 1, 2, ... count: a gap is a result the client's port dropped */
        EXAMPLE_STREAM_COUNT,         /* the count asked for */
        EXAMPLE_STREAM_ARGS
};

/* EXAMPLE_STREAM_STATS' scalars out: how the service's streams went, by
 * what tether_async_send() told the driver. */
enum example_stream_stat {
        EXAMPLE_STATS_STARTED = 0,    /* streams accepted */
        EXAMPLE_STATS_FINISHED,       /* all results sent, the last flagged last */
        EXAMPLE_STATS_CANCELLED,      /* ended by TETHER_ERR_ABORTED: the client cancelled */
        EXAMPLE_STATS_DETACHED,       /* ended otherwise: TETHER_ERR_NOT_ATTACHED (connection or port
                                       * closed), TETHER_ERR_NOT_FOUND, or its next tick not scheduled */
        EXAMPLE_STATS_DROPPED,        /* results sent to a full port (TETHER_ERR_NO_SPACE) */
        EXAMPLE_STATS_RUNNING,        /* streams not yet ended */
        EXAMPLE_STATS_COUNT
};

/* Selectors of EXAMPLE_CLIENT_LEGACY. */
enum example_legacy_selector {
        EXAMPLE_LEGACY_MY_METHOD = 0, /* scalar-in/struct-out, count0 2, count1 variable */
        EXAMPLE_LEGACY_ADD,           /* scalar-in/scalar-out, 2 in, 1 out */
        EXAMPLE_LEGACY_ECHO,          /* struct-in/struct-out, variable/variable */
        EXAMPLE_LEGACY_SET_NAME,      /* scalar-in/struct-in, 1 scalar (flags), variable name */
        EXAMPLE_LEGACY_GET_BAUD_RATE, /* scalar-in/scalar-out on the provider, 0 in, 1 out */
        EXAMPLE_LEGACY_GET_NAME,      /* struct-in/struct-out, no input, variable output */
        EXAMPLE_LEGACY_SELECTOR_COUNT
};

/* Selectors of ExampleDevice's user client (any type). */
enum example_device_selector {
        EXAMPLE_DEVICE_GET_UNIT = 0,  /* -> the unit number it was published with */
        /* async only: period ms, count. A periodic timer (one per connection)
         * adds 1 to the service's Ticks property each period; after count
         * periods the call completes with TETHER_SUCCESS and (ticks). One at
         * a time per connection: TETHER_ERR_BUSY while one runs. If the
         * service is terminated first, it completes with TETHER_ERR_ABORTED
         * and the ticks so far, and nothing ticks after. */
        EXAMPLE_DEVICE_TICK,
        /* -> ticks so far: cancels this connection's TICK, which completes
         * with TETHER_ERR_ABORTED; TETHER_ERR_NOT_FOUND if none runs. */
        EXAMPLE_DEVICE_TICK_CANCEL,
        /* level (EXAMPLE_LOG_*), count (<= 1000): that many lines in tetherd's
         * log through tether_service_log, rate-limited as any driver's are. */
        EXAMPLE_DEVICE_LOG,
        EXAMPLE_DEVICE_SELECTOR_COUNT
};
#define EXAMPLE_TICK_MIN_MS    10u     /* EXAMPLE_DEVICE_TICK's period: 10 ms ... 10 s */
#define EXAMPLE_TICK_MAX_MS    10000u
#define EXAMPLE_TICK_MAX_COUNT 100000u
#define EXAMPLE_DEVICE_PROP_TICKS "Ticks" /* uint64: ticks of every TICK call so far */
/* EXAMPLE_DEVICE_LOG's levels, as the driver API's TETHER_LOG_* (syslog's numbers). */
enum example_log_level { EXAMPLE_LOG_ERROR = 3, EXAMPLE_LOG_WARNING = 4, EXAMPLE_LOG_INFO = 6, EXAMPLE_LOG_DEBUG = 7 };

/* tether_map_memory() types */
enum example_memory_type {
        EXAMPLE_MEMORY_BUFFER = 0,    /* 64 MiB, read-write, per connection */
        EXAMPLE_MEMORY_STATUS = 1,    /* one page, read-only for the client */
};
#define EXAMPLE_BUFFER_SIZE (64u << 20)
/* The service's sample memory: byte i holds example_sample(i). */
#define EXAMPLE_SAMPLES_SIZE (64u << 20)
static inline uint8_t example_sample(size_t i)
{
        return (uint8_t)(i * 7 + (i >> 12));
}

/*
 * EXAMPLE_QUEUE_PRODUCE: count items of the given size (8 bytes up to the
 * queue's largest item), numbered on from the queue's last. The driver
 * enqueues them as fast as the queue takes them, a batch per turn of its
 * work loop; when the queue is full it waits for its serviced handler (the
 * client drained it) and goes on, so nothing is lost. With
 * EXAMPLE_PRODUCE_UNTIL_FULL it stops at the first refusal instead, and the
 * call says how many went in. One stream per queue at a time (BUSY).
 * EXAMPLE_QUEUE_STATS' "refused" counts TETHER_ERR_NO_SPACE answers, "last
 * error" is the last enqueue error other than that (e.g. TETHER_ERR_IPC
 * once a client broke the queue), as a uint64 of the tether_ret_t.
 */
#define EXAMPLE_PRODUCE_UNTIL_FULL (1u << 0)
#define EXAMPLE_STREAM_BATCH       4096u  /* items per turn of the work loop */
#define EXAMPLE_ITEM_MIN           8u

/* Item seq of a stream: its number (little-endian) in the first 8 bytes,
 * then bytes that depend on it and their place. */
static inline uint8_t example_item_byte(uint64_t seq, size_t i)
{
        return (uint8_t)(seq * 31u + i);
}

static inline void example_item_fill(uint8_t *item, uint64_t seq, size_t size)
{
        for (size_t i = 0; i < 8; i++)
                item[i] = (uint8_t)(seq >> (8 * i));
        for (size_t i = 8; i < size; i++)
                item[i] = example_item_byte(seq, i);
}

/* True if item (size bytes) is item seq, whole. */
static inline int example_item_check(const uint8_t *item, uint64_t seq, size_t size)
{
        if (size < 8)
                return 0;
        uint64_t got = 0;
        for (size_t i = 0; i < 8; i++)
                got |= (uint64_t)item[i] << (8 * i);
        if (got != seq)
                return 0;
        for (size_t i = 8; i < size; i++)
                if (item[i] != example_item_byte(seq, i))
                        return 0;
        return 1;
}

/* Settable properties of ExampleDriver and their rules. */
#define EXAMPLE_PROP_BAUD_RATE "BaudRate"  /* uint32: 300 ... 115200, standard rates only */
#define EXAMPLE_PROP_GREETING  "Greeting"  /* string, 1..64 bytes */
#define EXAMPLE_PROP_LOCKED    "Locked"    /* bool: when true, new opens are refused */
/* bool: while true, the start of an ExampleDevice on a nub published
 * meanwhile waits until it is false again (at most 30 s, or until a driver
 * host's watchdog ends it), so tests and demos can see a service that is
 * still starting: busy, not yet matched. */
#define EXAMPLE_PROP_HOLD_DEVICE_START "HoldDeviceStart"
/* string, on an ExampleDeviceNub published under a hold: where its device
 * waits (the hold's socket; ExampleDriver and the device may be in two
 * processes). */
#define EXAMPLE_NUB_HOLD "HoldStart"

#endif
