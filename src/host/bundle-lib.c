/* SPDX-License-Identifier: MIT */
#include "host/bundle-lib.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

tether_ret_t bundle_lib_open(const char *path, const tether_bundle_entry **ret, char *why, size_t why_size)
{
        if (!ret)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret = NULL;
        if (!path || !*path) {
                snprintf(why, why_size, "no library");
                return TETHER_ERR_BAD_ARGUMENT;
        }
        /* RTLD_NOW: an unresolved symbol refuses the library here, not as
         * a crash in the middle of some later call. RTLD_LOCAL: two
         * bundles' own symbols never satisfy each other. */
        void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!so) {
                const char *e = dlerror();
                snprintf(why, why_size, "%s", e ? e : "cannot be loaded");
                return TETHER_ERR_NOT_FOUND;
        }
        const tether_bundle_entry *entry = dlsym(so, TETHER_BUNDLE_SYMBOL);
        if (!entry || entry->abi != TETHER_DRIVER_ABI || !entry->drivers) {
                /* Not closed: its constructors have run, and whatever they
                 * started may not survive its code going away. Opening the
                 * same path again gets the same handle, so refusals do not
                 * pile up. */
                snprintf(why, why_size, "no %s for driver ABI %u", TETHER_BUNDLE_SYMBOL, TETHER_DRIVER_ABI);
                return TETHER_ERR_UNSUPPORTED;
        }
        *ret = entry;
        return TETHER_SUCCESS;
}

tether_ret_t bundle_lib_driver(const tether_bundle_entry *entry, const char *class_name, const tether_driver **ret,
                               char *why, size_t why_size)
{
        if (!ret)
                return TETHER_ERR_BAD_ARGUMENT;
        *ret = NULL;
        if (!entry || !entry->drivers || !class_name)
                return TETHER_ERR_BAD_ARGUMENT;
        for (size_t i = 0; entry->drivers[i]; i++) {
                if (entry->drivers[i]->class_name && !strcmp(entry->drivers[i]->class_name, class_name)) {
                        *ret = entry->drivers[i];
                        return TETHER_SUCCESS;
                }
        }
        snprintf(why, why_size, "no driver %s", class_name);
        return TETHER_ERR_NOT_FOUND;
}
