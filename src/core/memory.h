/* SPDX-License-Identifier: MIT */
#ifndef TETHER_CORE_MEMORY_H
#define TETHER_CORE_MEMORY_H

#include <tether/driver.h>

/* The memfd behind m, borrowed: for passing to a client. */
int memory_fd(tether_memory *m);

#endif
