/* SPDX-License-Identifier: MIT */
#ifndef TETHER_RETURN_H
#define TETHER_RETURN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * One error space for the whole project. Every code is the negated low bits
 * of the matching I/O Kit IOReturn (kIOReturnBadArgument = 0xE00002C2 is
 * TETHER_ERR_BAD_ARGUMENT = -0x2C2), so ported code and logs stay readable
 * and tether_ret_to_ioreturn() is a pure function.
 */
typedef int32_t tether_ret_t;

#define TETHER_SUCCESS                 0
#define TETHER_ERR_INVALID            (-0x001)
#define TETHER_ERR_ERROR              (-0x2bc)
#define TETHER_ERR_NO_MEMORY          (-0x2bd)
#define TETHER_ERR_NO_RESOURCES       (-0x2be)
#define TETHER_ERR_IPC                (-0x2bf)
#define TETHER_ERR_NO_DEVICE          (-0x2c0)
#define TETHER_ERR_NOT_PRIVILEGED     (-0x2c1)
#define TETHER_ERR_BAD_ARGUMENT       (-0x2c2)
#define TETHER_ERR_LOCKED_READ        (-0x2c3)
#define TETHER_ERR_LOCKED_WRITE       (-0x2c4)
#define TETHER_ERR_EXCLUSIVE_ACCESS   (-0x2c5)
#define TETHER_ERR_BAD_MESSAGE_ID     (-0x2c6)
#define TETHER_ERR_UNSUPPORTED        (-0x2c7)
#define TETHER_ERR_VM                 (-0x2c8)
#define TETHER_ERR_INTERNAL           (-0x2c9)
#define TETHER_ERR_IO                 (-0x2ca)
#define TETHER_ERR_CANNOT_LOCK        (-0x2cc)
#define TETHER_ERR_NOT_OPEN           (-0x2cd)
#define TETHER_ERR_NOT_READABLE       (-0x2ce)
#define TETHER_ERR_NOT_WRITABLE       (-0x2cf)
#define TETHER_ERR_NOT_ALIGNED        (-0x2d0)
#define TETHER_ERR_STILL_OPEN         (-0x2d2)
#define TETHER_ERR_BUSY               (-0x2d5)
#define TETHER_ERR_TIMEOUT            (-0x2d6)
#define TETHER_ERR_OFFLINE            (-0x2d7)
#define TETHER_ERR_NOT_READY          (-0x2d8)
#define TETHER_ERR_NOT_ATTACHED       (-0x2d9)
#define TETHER_ERR_NO_SPACE           (-0x2db)
#define TETHER_ERR_CANNOT_WIRE        (-0x2de)
#define TETHER_ERR_MESSAGE_TOO_LARGE  (-0x2e1)
#define TETHER_ERR_NOT_PERMITTED      (-0x2e2)
#define TETHER_ERR_UNDERRUN           (-0x2e7)
#define TETHER_ERR_OVERRUN            (-0x2e8)
#define TETHER_ERR_DEVICE_ERROR       (-0x2e9)
#define TETHER_ERR_NO_COMPLETION      (-0x2ea)
#define TETHER_ERR_ABORTED            (-0x2eb)
#define TETHER_ERR_NOT_RESPONDING     (-0x2ed)
#define TETHER_ERR_NOT_FOUND          (-0x2f0)

/* A sentence for people, e.g. "invalid argument". Never NULL. */
const char *tether_strerror(tether_ret_t ret);

/* The I/O Kit constant name without its prefix, e.g. "BadArgument"; "Unknown" if not ours. */
const char *tether_ret_name(tether_ret_t ret);

/* The IOReturn value: 0 for success, 0xE0000000 | -ret otherwise. */
uint32_t tether_ret_to_ioreturn(tether_ret_t ret);

#ifdef __cplusplus
}
#endif
#endif
