/* SPDX-License-Identifier: MIT */
#ifndef TETHER_SIM_VUSB_SERVER_H
#define TETHER_SIM_VUSB_SERVER_H

/*
 * A simulated instrument's USB side served over virtual USB
 * (usbtmc/vusb.h): requests from a socket carried out on a sim_usbtmc
 * as a USB host controller would carry them to the device, IN transfers
 * held while the device NAKs; DESCRIBE answers from the device's profile. The client (a
 * driver host) is not trusted: whatever it sends gets an answer or ends
 * the session, never more memory than a session's fixed buffers (two
 * transfers held at most), never a crash.
 */

#include "usbtmc-dev.h"
#include "usbtmc/vusb.h"

/* What DESCRIBE answers for a device of this profile with this serial
 * (NULL or "" for none). TETHER_ERR_BAD_ARGUMENT: the serial is longer
 * than VUSB_MAX_SERIAL or not printable ASCII. */
tether_ret_t sim_vusb_profile_info(const sim_usbtmc_profile *p, const char *serial, vusb_info *ret);

/*
 * One session's server side, with no I/O of its own: requests go in with
 * the time they came, replies come out through send (called 0, 1 or more
 * times per call, each reply a whole datagram in a buffer good for the
 * call). Every request gets exactly one reply. Most get it at once; an IN
 * transfer (BULK_IN, INTERRUPT_IN) the device has nothing for is held, as
 * a host controller keeps an URB on an endpoint that NAKs, and answered
 * when the device has something for it (an answer made, a short packet
 * after an abort or clear, a notification), when it stalls or is gone, or
 * with Timeout when its timeout_ms has passed. One transfer is held per
 * IN endpoint: another on the same endpoint ends the one held (Timeout:
 * its client gave up on it), and so do, for bulk-IN, a bulk-OUT transfer
 * and a CLEAR_HALT of bulk-IN (a host does either only once it has stopped
 * reading). Other requests that come while one is held (the control
 * requests, the other endpoint) are carried out at once, ahead of it. Times are ms on one clock for every call; a held
 * transfer's timeout counts from its request's time.
 */
typedef struct sim_vusb sim_vusb;
typedef void (*sim_vusb_send_fn)(void *ctx, const uint8_t *reply, size_t len);

/* For dev (used by the session only from its calls), answering DESCRIBE
 * with info. */
tether_ret_t sim_vusb_new(sim_usbtmc *dev, const vusb_info *info, sim_vusb_send_fn send, void *send_ctx,
                          sim_vusb **ret);
void sim_vusb_free(sim_vusb *s);

/* One request (len bytes, any content: a malformed one is answered with
 * an error) at now_ms. len above VUSB_MAX_MSG means the datagram was
 * bigger than that (only its start is in req); it is answered
 * TETHER_ERR_MESSAGE_TOO_LARGE. */
void sim_vusb_request(sim_vusb *s, const uint8_t *req, size_t len, uint64_t now_ms);

/* What is due at now_ms answered (held transfers whose device has
 * something now, or whose time is up). The ms until it should be called
 * again, -1 when nothing is held (then only a request changes anything). */
int64_t sim_vusb_tick(sim_vusb *s, uint64_t now_ms);

/* Transfers held now (0..2), for tests. */
unsigned sim_vusb_held(const sim_vusb *s);

/* Answer requests on fd (a SOCK_SEQPACKET socket, left open) until the
 * peer hangs up: 0. -1 when the socket fails or serial is refused (see
 * sim_vusb_profile_info). Runs on the caller's thread; dev is used on it
 * only, and only while a request is carried out or a transfer is held:
 * between calls of a client that waits for each reply, the device is the
 * caller's to touch. The one wait is poll on fd, until the next request
 * or the next time a held transfer is due. */
int sim_vusb_serve(int fd, sim_usbtmc *dev, const char *serial);

/* For a simulator's --usb-fd N: the fd number, if arg is digits only and
 * names an open fd; -1 otherwise. */
int sim_vusb_fd_arg(const char *arg);
/* A simulator process's life with --usb-fd: fd must be a SOCK_SEQPACKET
 * socket (said on stderr, naming prog, if not); serves it until the peer
 * hangs up, then closes it. The exit status to give: 0 on hang-up, 1 when
 * the socket failed, 2 for a bad fd. */
int sim_vusb_run(const char *prog, int fd, sim_usbtmc *dev, const char *serial);

#endif
