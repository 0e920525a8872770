/* SPDX-License-Identifier: MIT */
/* libtether's handle table on its own: names, kinds, references, slot
 * reuse, generation wrap-around, the bound, and lookups racing a close. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "client/handle.h"

typedef struct thing {
        handle_obj obj;
        int *freed; /* counts frees, so a double free or a leak shows */
} thing;

static void thing_free(handle_obj *o)
{
        thing *t = handle_container(o, thing, obj);
        (*t->freed)++;
        free(t);
}

static thing *thing_new(int *freed)
{
        thing *t = calloc(1, sizeof(*t));
        assert_non_null(t);
        handle_obj_init(&t->obj, thing_free);
        t->freed = freed;
        return t;
}

/* Adds a new object and leaves the table's reference as its only one. */
static uintptr_t add_thing(handle_table *tab, handle_kind kind, int *freed)
{
        thing *t = thing_new(freed);
        uintptr_t name = 0;
        assert_int_equal(handle_table_add(tab, &t->obj, kind, &name), TETHER_SUCCESS);
        handle_obj_put(&t->obj);
        return name;
}

static void remove_thing(handle_table *tab, uintptr_t name, handle_kind kind)
{
        handle_obj *o = NULL;
        assert_int_equal(handle_table_remove(tab, name, kind, &o), TETHER_SUCCESS);
        handle_obj_put(o);
}

static void init_checks_its_limits(void **state)
{
        handle_table t;
        assert_int_equal(handle_table_init(&t, 0, 8), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(handle_table_init(&t, HANDLE_MAX_SLOTS + 1, 8), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(handle_table_init(&t, 16, 0), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(handle_table_init(&t, 16, HANDLE_GEN_BITS + 1), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(handle_table_init(&t, HANDLE_MAX_SLOTS, HANDLE_GEN_BITS), TETHER_SUCCESS);
        handle_table_fini(&t);
        /* The layout a 32-bit build gets is one this build can check. */
        assert_true(HANDLE_GEN_BITS >= 15);
        assert_int_equal(1 + HANDLE_INDEX_BITS + 15, 32);
}

static void names_are_never_null_or_addresses(void **state)
{
        handle_table t;
        assert_int_equal(handle_table_init(&t, 64, HANDLE_GEN_BITS), TETHER_SUCCESS);
        int freed = 0;
        thing *obj = thing_new(&freed);
        uintptr_t name = 0;
        assert_int_equal(handle_table_add(&t, &obj->obj, HANDLE_CONNECT, &name), TETHER_SUCCESS);
        assert_int_not_equal(name, 0);
        assert_int_equal(name & 1, 1);
        assert_int_not_equal(name, (uintptr_t)obj);
        handle_obj *o = NULL;
        assert_int_equal(handle_table_get(&t, 0, HANDLE_CONNECT, &o), TETHER_ERR_BAD_ARGUMENT);
        /* The object's own address, the way a raw-pointer handle looked. */
        assert_int_equal(handle_table_get(&t, (uintptr_t)obj, HANDLE_CONNECT, &o), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(handle_table_get(&t, name + 2, HANDLE_CONNECT, &o), TETHER_ERR_BAD_ARGUMENT);
#if UINTPTR_MAX > 0xFFFFFFFFu
        /* Bits above the layout: never a name, even if the rest matches. */
        assert_int_equal(handle_table_get(&t, name | ((uintptr_t)1 << 60), HANDLE_CONNECT, &o),
                         TETHER_ERR_BAD_ARGUMENT);
#endif
        assert_int_equal(handle_table_get(&t, name, HANDLE_CONNECT, &o), TETHER_SUCCESS);
        assert_ptr_equal(o, &obj->obj);
        handle_obj_put(o);
        handle_obj_put(&obj->obj);
        remove_thing(&t, name, HANDLE_CONNECT);
        assert_int_equal(freed, 1);
        handle_table_fini(&t);
}

static void a_close_kills_the_name_once(void **state)
{
        handle_table t;
        assert_int_equal(handle_table_init(&t, 64, HANDLE_GEN_BITS), TETHER_SUCCESS);
        int freed = 0;
        uintptr_t name = add_thing(&t, HANDLE_PORT, &freed);
        handle_obj *in_flight = NULL, *o = NULL;
        assert_int_equal(handle_table_get(&t, name, HANDLE_PORT, &in_flight), TETHER_SUCCESS);
        assert_int_equal(handle_table_remove(&t, name, HANDLE_PORT, &o), TETHER_SUCCESS);
        assert_ptr_equal(o, in_flight);
        assert_int_equal(t.n_live, 0);
        /* Dead to lookups and to a second close at once ... */
        handle_obj *again = NULL;
        assert_int_equal(handle_table_get(&t, name, HANDLE_PORT, &again), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(handle_table_remove(&t, name, HANDLE_PORT, &again), TETHER_ERR_BAD_ARGUMENT);
        assert_null(again);
        /* ... but alive until the last user lets go. */
        handle_obj_put(o);
        assert_int_equal(freed, 0);
        handle_obj_put(in_flight);
        assert_int_equal(freed, 1);
        handle_table_fini(&t);
}

static void a_kind_is_not_another(void **state)
{
        handle_table t;
        assert_int_equal(handle_table_init(&t, 64, HANDLE_GEN_BITS), TETHER_SUCCESS);
        int freed = 0;
        uintptr_t name = add_thing(&t, HANDLE_SESSION, &freed);
        handle_obj *o = NULL;
        for (handle_kind k = HANDLE_FREE; k <= HANDLE_PROBE; k++) {
                if (k == HANDLE_SESSION)
                        continue;
                assert_int_equal(handle_table_get(&t, name, k, &o), TETHER_ERR_BAD_ARGUMENT);
                assert_int_equal(handle_table_remove(&t, name, k, &o), TETHER_ERR_BAD_ARGUMENT);
        }
        assert_int_equal(freed, 0);
        remove_thing(&t, name, HANDLE_SESSION);
        assert_int_equal(freed, 1);
        /* HANDLE_FREE names nothing: it cannot be added. */
        thing *x = thing_new(&freed);
        uintptr_t n = 0;
        assert_int_equal(handle_table_add(&t, &x->obj, HANDLE_FREE, &n), TETHER_ERR_BAD_ARGUMENT);
        handle_obj_put(&x->obj);
        handle_table_fini(&t);
}

/* A reused slot comes back with the next generation: the old name fails,
 * the new one works. Free slots are reused first in, first out. */
static void reuse_is_fifo_with_a_new_generation(void **state)
{
        handle_table t;
        assert_int_equal(handle_table_init(&t, 4, HANDLE_GEN_BITS), TETHER_SUCCESS);
        int freed = 0;
        uintptr_t a = add_thing(&t, HANDLE_CONNECT, &freed);
        remove_thing(&t, a, HANDLE_CONNECT);
        uintptr_t names[4];
        for (int i = 0; i < 4; i++)
                names[i] = add_thing(&t, HANDLE_CONNECT, &freed);
        /* Slots 1, 2, 3 were free before slot 0 was: they go first. */
        for (int i = 0; i < 3; i++)
                assert_int_equal(handle_name_index(names[i]), i + 1);
        assert_int_equal(handle_name_index(names[3]), handle_name_index(a));
        assert_int_equal(handle_name_generation(names[3]), handle_name_generation(a) + 1);
        handle_obj *o = NULL;
        assert_int_equal(handle_table_get(&t, a, HANDLE_CONNECT, &o), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(handle_table_remove(&t, a, HANDLE_CONNECT, &o), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(handle_table_get(&t, names[3], HANDLE_CONNECT, &o), TETHER_SUCCESS);
        handle_obj_put(o);
        for (int i = 0; i < 4; i++)
                remove_thing(&t, names[i], HANDLE_CONNECT);
        assert_int_equal(freed, 5);
        handle_table_fini(&t);
}

/* Generations run 1 .. 2^bits - 1 and wrap to 1, never 0: a stale name
 * comes back to life after that many reuses of its slot, as documented. */
static void wrap_after(unsigned bits)
{
        handle_table t;
        assert_int_equal(handle_table_init(&t, 1, bits), TETHER_SUCCESS);
        int freed = 0;
        uint32_t reuses = (uint32_t)(((uint64_t)1 << bits) - 1);
        uintptr_t first = add_thing(&t, HANDLE_NOTIFICATION, &freed);
        assert_int_equal(handle_name_generation(first), 1);
        remove_thing(&t, first, HANDLE_NOTIFICATION);
        uintptr_t prev = first;
        for (uint32_t i = 1; i < reuses; i++) {
                uintptr_t n = add_thing(&t, HANDLE_NOTIFICATION, &freed);
                assert_int_equal(handle_name_index(n), 0);
                assert_int_equal(handle_name_generation(n), handle_name_generation(prev) + 1);
                assert_int_not_equal(n, first);
                remove_thing(&t, n, HANDLE_NOTIFICATION);
                prev = n;
        }
        assert_int_equal(handle_name_generation(prev), reuses);
        /* The 2^bits-th name of the slot is the first again. */
        uintptr_t wrapped = add_thing(&t, HANDLE_NOTIFICATION, &freed);
        assert_int_equal(wrapped, first);
        remove_thing(&t, wrapped, HANDLE_NOTIFICATION);
        assert_int_equal(freed, (int)reuses + 1);
        handle_table_fini(&t);
}

static void generations_wrap_around(void **state)
{
        wrap_after(1); /* 1 only: every reuse gives the same name (the degenerate case) */
        wrap_after(3);
        wrap_after(15); /* a 32-bit build: 32,767 reuses */
}

/* The top generation wraps on a 64-bit build too: 2^32 - 1 reuses are too
 * many to run, so step to the edge through the slot. */
static void the_largest_generation_wraps(void **state)
{
        handle_table t;
        assert_int_equal(handle_table_init(&t, 1, HANDLE_GEN_BITS), TETHER_SUCCESS);
        int freed = 0;
        uintptr_t n = add_thing(&t, HANDLE_SESSION, &freed);
        remove_thing(&t, n, HANDLE_SESSION);
        t.chunks[0][0].generation = t.generation_max;
        n = add_thing(&t, HANDLE_SESSION, &freed);
        assert_int_equal(handle_name_generation(n), t.generation_max);
        handle_obj *o = NULL;
        assert_int_equal(handle_table_get(&t, n, HANDLE_SESSION, &o), TETHER_SUCCESS);
        handle_obj_put(o);
        remove_thing(&t, n, HANDLE_SESSION);
        n = add_thing(&t, HANDLE_SESSION, &freed);
        assert_int_equal(handle_name_generation(n), 1);
        remove_thing(&t, n, HANDLE_SESSION);
        handle_table_fini(&t);
}

/* The table grows a chunk at a time, up to its bound, then says
 * NO_RESOURCES until a name is closed. */
static void bounded_and_grown_in_chunks(void **state)
{
        enum { MAX = HANDLE_CHUNK_SLOTS + 44 };
        handle_table t;
        assert_int_equal(handle_table_init(&t, MAX, HANDLE_GEN_BITS), TETHER_SUCCESS);
        assert_int_equal(t.n_slots, 0);
        int freed = 0;
        uintptr_t *names = calloc(MAX, sizeof(*names));
        names[0] = add_thing(&t, HANDLE_PROBE, &freed);
        assert_int_equal(t.n_slots, HANDLE_CHUNK_SLOTS);
        for (int i = 1; i < MAX; i++)
                names[i] = add_thing(&t, HANDLE_PROBE, &freed);
        assert_int_equal(t.n_slots, MAX);
        assert_int_equal(t.n_live, MAX);
        thing *x = thing_new(&freed);
        uintptr_t extra = 0;
        assert_int_equal(handle_table_add(&t, &x->obj, HANDLE_PROBE, &extra), TETHER_ERR_NO_RESOURCES);
        remove_thing(&t, names[7], HANDLE_PROBE);
        assert_int_equal(handle_table_add(&t, &x->obj, HANDLE_PROBE, &extra), TETHER_SUCCESS);
        assert_int_equal(handle_name_index(extra), 7);
        handle_obj_put(&x->obj);
        names[7] = extra;
        for (int i = 0; i < MAX; i++)
                remove_thing(&t, names[i], HANDLE_PROBE);
        assert_int_equal(freed, MAX + 1);
        free(names);
        handle_table_fini(&t);
}

/* libtether's own table: 65,536 live names, then NO_RESOURCES. */
static void the_process_table_is_bounded(void **state)
{
        handle_table *t = &handle_process_table;
        int freed = 0;
        uintptr_t *names = calloc(HANDLE_MAX_SLOTS, sizeof(*names));
        assert_non_null(names);
        thing *x = thing_new(&freed);
        for (uint32_t i = 0; i < HANDLE_MAX_SLOTS; i++)
                assert_int_equal(handle_add(&x->obj, HANDLE_CONNECT, &names[i]), TETHER_SUCCESS);
        assert_int_equal(t->n_slots, HANDLE_MAX_SLOTS);
        uintptr_t extra = 0;
        assert_int_equal(handle_add(&x->obj, HANDLE_CONNECT, &extra), TETHER_ERR_NO_RESOURCES);
        for (uint32_t i = 0; i < HANDLE_MAX_SLOTS; i++) {
                handle_obj *o = NULL;
                assert_int_equal(handle_remove((const void *)names[i], HANDLE_CONNECT, &o), TETHER_SUCCESS);
                handle_obj_put(o);
        }
        assert_int_equal(freed, 0);
        handle_obj_put(&x->obj);
        assert_int_equal(freed, 1);
        free(names);
}

/* Lookups racing a close: every lookup either fails or gets an object that
 * stays alive until it is put; the object is freed once, after the last. */
typedef struct racer {
        handle_table *t;
        uintptr_t name;
        atomic_int *done;
        atomic_long hits;
        long misses, freed_seen;
} racer;

static void *race(void *arg)
{
        racer *r = arg;
        while (!atomic_load(r->done) || r->misses == 0) {
                handle_obj *o = NULL;
                if (handle_table_get(r->t, r->name, HANDLE_CONNECT, &o) == TETHER_SUCCESS) {
                        /* Touch it: ASan sees a use after free here. */
                        thing *x = handle_container(o, thing, obj);
                        r->freed_seen += *x->freed;
                        handle_obj_put(o);
                        atomic_fetch_add(&r->hits, 1);
                } else {
                        r->misses++;
                }
        }
        return NULL;
}

static void lookups_racing_a_close(void **state)
{
        for (int round = 0; round < 20; round++) {
                handle_table t;
                assert_int_equal(handle_table_init(&t, 8, HANDLE_GEN_BITS), TETHER_SUCCESS);
                int freed = 0;
                uintptr_t name = add_thing(&t, HANDLE_CONNECT, &freed);
                atomic_int done = 0;
                racer r[3];
                pthread_t th[3];
                for (int i = 0; i < 3; i++) {
                        r[i] = (racer){ .t = &t, .name = name, .done = &done };
                        pthread_create(&th[i], NULL, race, &r[i]);
                }
                while (atomic_load(&r[0].hits) + atomic_load(&r[1].hits) + atomic_load(&r[2].hits) < 100)
                        sched_yield();
                remove_thing(&t, name, HANDLE_CONNECT);
                atomic_store(&done, 1);
                for (int i = 0; i < 3; i++) {
                        pthread_join(th[i], NULL);
                        assert_int_equal(r[i].freed_seen, 0);
                }
                assert_int_equal(freed, 1);
                handle_table_fini(&t);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(init_checks_its_limits),
                cmocka_unit_test(names_are_never_null_or_addresses),
                cmocka_unit_test(a_close_kills_the_name_once),
                cmocka_unit_test(a_kind_is_not_another),
                cmocka_unit_test(reuse_is_fifo_with_a_new_generation),
                cmocka_unit_test(generations_wrap_around),
                cmocka_unit_test(the_largest_generation_wraps),
                cmocka_unit_test(bounded_and_grown_in_chunks),
                cmocka_unit_test(the_process_table_is_bounded),
                cmocka_unit_test(lookups_racing_a_close),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
