/* SPDX-License-Identifier: MIT */
#ifndef TETHER_HOST_BUNDLE_LIB_H
#define TETHER_HOST_BUNDLE_LIB_H

/*
 * A bundle's shared object, opened for its drivers (docs/bundles.md, "The
 * library"): dlopen, the TETHER_BUNDLE entry and its ABI, a driver by
 * class. One implementation for both processes that run driver code, the
 * driver host and tetherd --in-process, so a library refused by one is
 * refused by the other, for the same reason.
 *
 * The caller logs: only it knows which bundle and which process the
 * failure belongs to. A library once opened stays loaded for the life of
 * the process: its code may still be referenced (user-client tables,
 * scheduled work) by whatever outlives the services it started.
 */

#include <stddef.h>
#include <tether/driver.h>

/* Long enough for any reason (dlerror() included); longer ones are cut. */
#define BUNDLE_LIB_WHY_SIZE 512u

/*
 * Load the shared object at path and check its entry.
 * TETHER_ERR_NOT_FOUND: it could not be loaded (missing, not an ELF object
 * for this machine, an unresolved symbol); TETHER_ERR_UNSUPPORTED: no
 * TETHER_BUNDLE entry, or one built for another TETHER_DRIVER_ABI.
 * On failure *ret is NULL and why (why_size bytes) says why.
 */
tether_ret_t bundle_lib_open(const char *path, const tether_bundle_entry **ret, char *why, size_t why_size);

/* The driver of entry whose class_name is class_name; TETHER_ERR_NOT_FOUND
 * (and why) when the library has none. */
tether_ret_t bundle_lib_driver(const tether_bundle_entry *entry, const char *class_name, const tether_driver **ret,
                               char *why, size_t why_size);

#endif
