/* SPDX-License-Identifier: MIT */
#ifndef TETHER_CLIENT_HANDLE_H
#define TETHER_CLIENT_HANDLE_H

/*
 * Handles: what libtether gives out instead of heap addresses, as Mach gives
 * out port names. A handle's value is a name, [generation | index | 1],
 * looked up in a table whose slot records the object, its kind and the
 * generation it was handed out with. Closing a handle kills its slot and
 * bumps the generation, so the old name keeps failing after the slot is
 * reused, and an object of one kind is never taken for another.
 *
 * Objects are reference-counted: the table holds one reference while the
 * name is live and every lookup takes one more, so a close on one thread
 * never frees an object another thread is still using.
 */

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <tether/return.h>

typedef enum handle_kind {
        HANDLE_FREE = 0, /* a slot with no object */
        HANDLE_SESSION,
        HANDLE_CONNECT,
        HANDLE_PORT,
        HANDLE_NOTIFICATION,
        HANDLE_PROBE,
        HANDLE_DATA_QUEUE,
} handle_kind;

/* Embedded in every object a handle names. */
typedef struct handle_obj {
        atomic_uint refs;
        void (*free)(struct handle_obj *o); /* runs when the last reference goes */
} handle_obj;

/* One reference, the creator's. */
void handle_obj_init(handle_obj *o, void (*free_fn)(handle_obj *o));
void handle_obj_ref(handle_obj *o);
/* Drops a reference; the last one frees the object. NULL is ignored. */
void handle_obj_put(handle_obj *o);

/*
 * The name layout. The low bit is always 1: a name is never NULL and never
 * an aligned address, so a heap pointer that was never a name is refused.
 * 16 index bits bound a table at 65,536 live names. The generation takes
 * the rest, up to 32 bits: on a 64-bit build a slot's generation wraps after
 * 2^32 - 1 reuses (bits 49..63 stay 0); on a 32-bit build after
 * 2^15 - 1 = 32,767 reuses. Generation 0 is never used.
 *
 * A stale name is mistaken for a live one only once its slot has been reused
 * that many times (Mach's names have 8 generation bits: 255 reuses). Free
 * slots are reused first in, first out, so each reuse of a slot waits for
 * every other free slot to be taken: with F slots free, wrapping takes about
 * F times as many opens, where a last-in-first-out list would hand the same
 * slot back on every close/open pair.
 */
#define HANDLE_INDEX_BITS 16u
#define HANDLE_MAX_SLOTS  (1u << HANDLE_INDEX_BITS)
#if UINTPTR_MAX > 0xFFFFFFFFu
#define HANDLE_GEN_BITS 32u
#else
#define HANDLE_GEN_BITS 15u
#endif
_Static_assert(1 + HANDLE_INDEX_BITS + HANDLE_GEN_BITS <= sizeof(uintptr_t) * CHAR_BIT,
               "a name must fit in a pointer");

/* Tables grow this many slots at a time, up to their bound. */
#define HANDLE_CHUNK_SLOTS 256u
#define HANDLE_MAX_CHUNKS  (HANDLE_MAX_SLOTS / HANDLE_CHUNK_SLOTS)

static inline uintptr_t handle_name(uint32_t index, uint32_t generation)
{
        return ((uintptr_t)generation << (HANDLE_INDEX_BITS + 1)) | ((uintptr_t)index << 1) | 1u;
}

static inline uint32_t handle_name_index(uintptr_t name)
{
        return (uint32_t)(name >> 1) & (HANDLE_MAX_SLOTS - 1);
}

static inline uint32_t handle_name_generation(uintptr_t name)
{
        return (uint32_t)(name >> (HANDLE_INDEX_BITS + 1));
}

typedef struct handle_slot {
        handle_obj *obj;           /* NULL while free */
        uint32_t generation;       /* of the live name, or of the next one while free */
        uint32_t next_free;        /* index + 1 of the next free slot, 0 at the end */
        uint8_t kind;              /* handle_kind */
} handle_slot;

/* Defined here so a table can be a static object; use the functions. */
typedef struct handle_table {
        pthread_mutex_t lock;      /* everything below */
        uint32_t max_slots;        /* the bound: never more live names than this */
        uint32_t generation_max;   /* generations run 1 .. this, then wrap to 1 */
        uint32_t n_slots;          /* made so far, a chunk at a time */
        uint32_t n_live;
        uint32_t free_head, free_tail; /* index + 1; 0: none */
        handle_slot *chunks[HANDLE_MAX_CHUNKS];
} handle_table;

#define HANDLE_GEN_MAX(bits) ((uint32_t)(((uint64_t)1 << (bits)) - 1))
#define HANDLE_TABLE_INITIALIZER(max, gen_bits) \
        { .lock = PTHREAD_MUTEX_INITIALIZER, .max_slots = (max), .generation_max = HANDLE_GEN_MAX(gen_bits) }

/* A table of at most max_slots names (<= HANDLE_MAX_SLOTS) whose
 * generations have gen_bits bits (1 .. HANDLE_GEN_BITS). Smaller tables are
 * for tests. */
tether_ret_t handle_table_init(handle_table *t, uint32_t max_slots, unsigned gen_bits);
/* Frees the slots; objects still named keep the table's reference. */
void handle_table_fini(handle_table *t);

/* Names o. The table takes a reference of its own; the caller keeps its.
 * TETHER_ERR_NO_RESOURCES when max_slots names are live. */
tether_ret_t handle_table_add(handle_table *t, handle_obj *o, handle_kind kind, uintptr_t *ret_name);
/* The object a live name of this kind names, with a reference for the
 * caller; TETHER_ERR_BAD_ARGUMENT for anything else (NULL, closed, reused,
 * another kind, never a name). */
tether_ret_t handle_table_get(handle_table *t, uintptr_t name, handle_kind kind, handle_obj **ret);
/* Kills the name (later lookups fail) and hands the table's reference to
 * the caller, who tears the object down and puts it. Only one caller ever
 * gets it: a second close of the same name gets TETHER_ERR_BAD_ARGUMENT. */
tether_ret_t handle_table_remove(handle_table *t, uintptr_t name, handle_kind kind, handle_obj **ret);

/* libtether's table: every session, connection, port, notification and
 * probe of the process. */
extern handle_table handle_process_table;

static inline tether_ret_t handle_add(handle_obj *o, handle_kind kind, uintptr_t *ret_name)
{
        return handle_table_add(&handle_process_table, o, kind, ret_name);
}

static inline tether_ret_t handle_get(const void *h, handle_kind kind, handle_obj **ret)
{
        return handle_table_get(&handle_process_table, (uintptr_t)h, kind, ret);
}

static inline tether_ret_t handle_remove(const void *h, handle_kind kind, handle_obj **ret)
{
        return handle_table_remove(&handle_process_table, (uintptr_t)h, kind, ret);
}

/* The object that embeds a handle_obj `member`. */
#define handle_container(o, type, member) ((type *)((char *)(o) - offsetof(type, member)))

#endif
