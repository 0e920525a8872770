/* SPDX-License-Identifier: MIT */
#include <tether/driver.h>

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/memory.h"

struct tether_memory {
        atomic_uint refs;
        int fd;
        void *ptr;
        size_t size;
};

tether_ret_t tether_memory_create(size_t size, const char *name, tether_memory **ret)
{
        if (!ret || size == 0 || size > TETHER_MAX_OOL_STRUCT * 4ull)
                return TETHER_ERR_BAD_ARGUMENT;
        long page = sysconf(_SC_PAGESIZE);
        size_t rounded = (size + (size_t)page - 1) & ~((size_t)page - 1);

        tether_memory *m = calloc(1, sizeof(*m));
        if (!m)
                return TETHER_ERR_NO_MEMORY;
        m->fd = memfd_create(name ? name : "tether-memory", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (m->fd < 0)
                goto fail;
        if (ftruncate(m->fd, (off_t)rounded) < 0)
                goto fail;
        /* The size is fixed for the object's life: a client must not be able
         * to shrink it under a driver that is writing (SIGBUS in the daemon). */
        (void)fcntl(m->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
        m->ptr = mmap(NULL, rounded, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
        if (m->ptr == MAP_FAILED)
                goto fail;
        m->size = rounded;
        atomic_init(&m->refs, 1);
        *ret = m;
        return TETHER_SUCCESS;
fail:
        if (m->fd >= 0)
                close(m->fd);
        free(m);
        return errno == ENOMEM ? TETHER_ERR_NO_MEMORY : TETHER_ERR_NO_RESOURCES;
}

tether_memory *tether_memory_ref(tether_memory *m)
{
        if (m)
                atomic_fetch_add(&m->refs, 1);
        return m;
}

tether_memory *tether_memory_unref(tether_memory *m)
{
        if (m && atomic_fetch_sub(&m->refs, 1) == 1) {
                munmap(m->ptr, m->size);
                close(m->fd);
                free(m);
        }
        return NULL;
}

void *tether_memory_ptr(tether_memory *m)
{
        return m ? m->ptr : NULL;
}

size_t tether_memory_size(tether_memory *m)
{
        return m ? m->size : 0;
}

int memory_fd(tether_memory *m)
{
        return m ? m->fd : -1;
}
