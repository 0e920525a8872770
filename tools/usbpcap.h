/* SPDX-License-Identifier: MIT */
#ifndef TETHER_TOOLS_USBPCAP_H
#define TETHER_TOOLS_USBPCAP_H

/*
 * USB traffic as a pcap file in the Linux usbmon format (link type 220,
 * LINKTYPE_USB_LINUX_MMAPPED: the 64-byte header usbmon's binary interface
 * gives), so Wireshark and tshark dissect it as they dissect a capture
 * taken on usbmonN. Each transfer becomes a submission and a completion
 * record with the same URB id, as usbmon reports them.
 */

#include <stdio.h>
#include <tether/tether.h>

typedef struct usbpcap usbpcap;

tether_ret_t usbpcap_open(const char *path, usbpcap **ret);
/* A USB event of a probe (other kinds are ignored). */
tether_ret_t usbpcap_write(usbpcap *p, const tether_probe_event *e);
/* Flushes; TETHER_ERR_IO if anything failed to reach the file. */
tether_ret_t usbpcap_close(usbpcap *p);

#endif
