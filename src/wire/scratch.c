/* SPDX-License-Identifier: MIT */
#include "wire/scratch.h"

#include <pthread.h>
#include <stdlib.h>

static __thread wire_msg *slots[WIRE_SCRATCH_USES];
static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static bool key_ok;

/* A thread's exit: its messages go with it. (The main thread's stay until
 * the process ends, reachable from its TLS.) */
static void release(void *arg)
{
        wire_msg **s = arg;
        for (int i = 0; i < WIRE_SCRATCH_USES; i++) {
                free(s[i]);
                s[i] = NULL;
        }
}

static void make_key(void)
{
        key_ok = pthread_key_create(&key, release) == 0;
}

wire_msg *wire_scratch(wire_scratch_use use)
{
        wire_msg *m = slots[use];
        if (m)
                return m;
        pthread_once(&key_once, make_key);
        /* Without the key the message would outlive its thread: none. */
        if (!key_ok || pthread_setspecific(key, slots) != 0)
                return NULL;
        /* Not zeroed: a message is built from its header on, and pages a
         * thread never writes stay untouched. */
        m = malloc(sizeof(*m));
        slots[use] = m;
        return m;
}
