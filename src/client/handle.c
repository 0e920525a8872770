/* SPDX-License-Identifier: MIT */
#include "client/handle.h"

#include <stdlib.h>
#include <string.h>

/* 65,536 live names per process: far more than the descriptors a process
 * may usually hold (every session, connection, port and probe has one). */
handle_table handle_process_table = HANDLE_TABLE_INITIALIZER(HANDLE_MAX_SLOTS, HANDLE_GEN_BITS);

void handle_obj_init(handle_obj *o, void (*free_fn)(handle_obj *o))
{
        atomic_init(&o->refs, 1);
        o->free = free_fn;
}

void handle_obj_ref(handle_obj *o)
{
        /* Relaxed is enough: whoever takes a reference holds one already, or
         * the table's lock while the table holds one, so the count cannot
         * reach 0 meanwhile. */
        atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
}

void handle_obj_put(handle_obj *o)
{
        if (!o)
                return;
        /* acq_rel: every thread's use of the object happens before the free
         * that the last one runs. */
        if (atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) == 1)
                o->free(o);
}

tether_ret_t handle_table_init(handle_table *t, uint32_t max_slots, unsigned gen_bits)
{
        if (!t || max_slots == 0 || max_slots > HANDLE_MAX_SLOTS || gen_bits == 0 || gen_bits > HANDLE_GEN_BITS)
                return TETHER_ERR_BAD_ARGUMENT;
        memset(t, 0, sizeof(*t));
        pthread_mutex_init(&t->lock, NULL);
        t->max_slots = max_slots;
        t->generation_max = HANDLE_GEN_MAX(gen_bits);
        return TETHER_SUCCESS;
}

void handle_table_fini(handle_table *t)
{
        for (uint32_t i = 0; i < HANDLE_MAX_CHUNKS; i++)
                free(t->chunks[i]);
        pthread_mutex_destroy(&t->lock);
        memset(t, 0, sizeof(*t));
}

static handle_slot *slot_at(handle_table *t, uint32_t index)
{
        return &t->chunks[index / HANDLE_CHUNK_SLOTS][index % HANDLE_CHUNK_SLOTS];
}

static void push_free(handle_table *t, uint32_t index)
{
        slot_at(t, index)->next_free = 0;
        if (t->free_tail)
                slot_at(t, t->free_tail - 1)->next_free = index + 1;
        else
                t->free_head = index + 1;
        t->free_tail = index + 1;
}

static uint32_t pop_free(handle_table *t)
{
        uint32_t index = t->free_head - 1;
        t->free_head = slot_at(t, index)->next_free;
        if (!t->free_head)
                t->free_tail = 0;
        return index;
}

/* One more chunk of slots, onto the free list; chunks never move, and the
 * last one is cut to the bound. */
static tether_ret_t grow(handle_table *t)
{
        if (t->n_slots >= t->max_slots)
                return TETHER_ERR_NO_RESOURCES;
        uint32_t n = t->max_slots - t->n_slots;
        if (n > HANDLE_CHUNK_SLOTS)
                n = HANDLE_CHUNK_SLOTS;
        handle_slot *chunk = calloc(n, sizeof(*chunk));
        if (!chunk)
                return TETHER_ERR_NO_MEMORY;
        t->chunks[t->n_slots / HANDLE_CHUNK_SLOTS] = chunk;
        uint32_t first = t->n_slots;
        t->n_slots += n;
        for (uint32_t i = 0; i < n; i++) {
                chunk[i].generation = 1;
                push_free(t, first + i);
        }
        return TETHER_SUCCESS;
}

tether_ret_t handle_table_add(handle_table *t, handle_obj *o, handle_kind kind, uintptr_t *ret_name)
{
        if (!o || kind == HANDLE_FREE || !ret_name)
                return TETHER_ERR_BAD_ARGUMENT;
        pthread_mutex_lock(&t->lock);
        tether_ret_t r = t->free_head ? TETHER_SUCCESS : grow(t);
        if (r == TETHER_SUCCESS) {
                uint32_t index = pop_free(t);
                handle_slot *s = slot_at(t, index);
                s->obj = o;
                s->kind = (uint8_t)kind;
                handle_obj_ref(o);
                t->n_live++;
                *ret_name = handle_name(index, s->generation);
        }
        pthread_mutex_unlock(&t->lock);
        return r;
}

/* With t->lock held. Anything but a live name of this kind is NULL. */
static handle_slot *find_locked(handle_table *t, uintptr_t name, handle_kind kind)
{
        uint32_t index = handle_name_index(name), generation = handle_name_generation(name);
        /* Re-encoding refuses stray bits (an address, a cast integer):
         * only values this layout can produce are names. */
        if (handle_name(index, generation) != name || index >= t->n_slots)
                return NULL;
        handle_slot *s = slot_at(t, index);
        return s->obj && s->generation == generation && s->kind == kind ? s : NULL;
}

tether_ret_t handle_table_get(handle_table *t, uintptr_t name, handle_kind kind, handle_obj **ret)
{
        pthread_mutex_lock(&t->lock);
        handle_slot *s = find_locked(t, name, kind);
        if (s) {
                handle_obj_ref(s->obj);
                *ret = s->obj;
        }
        pthread_mutex_unlock(&t->lock);
        return s ? TETHER_SUCCESS : TETHER_ERR_BAD_ARGUMENT;
}

tether_ret_t handle_table_remove(handle_table *t, uintptr_t name, handle_kind kind, handle_obj **ret)
{
        pthread_mutex_lock(&t->lock);
        handle_slot *s = find_locked(t, name, kind);
        if (s) {
                *ret = s->obj;
                s->obj = NULL;
                s->kind = HANDLE_FREE;
                s->generation = s->generation == t->generation_max ? 1 : s->generation + 1;
                t->n_live--;
                push_free(t, handle_name_index(name));
        }
        pthread_mutex_unlock(&t->lock);
        return s ? TETHER_SUCCESS : TETHER_ERR_BAD_ARGUMENT;
}
