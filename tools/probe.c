/* SPDX-License-Identifier: MIT */
/*
 * tether probe: every user-client call and every USBTMC transfer, live, as
 * one line each; the USB traffic also as a pcap Wireshark reads.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tether/tether.h>

#include "probe.h"
#include "tool.h"
#include "usbpcap.h"
#include "usbtmc/usbtmc.h"

typedef struct probe_opts {
        tether_probe_filter filter;
        const char *service;
        const char *pcap;
        unsigned long count;      /* stop after this many events (0: never) */
        double duration;          /* stop after this many seconds (0: never) */
        bool quiet;
        bool json;                /* JSON lines, docs/probe-json.md */
} probe_opts;

/* Service names seen so far: a probe shows a few services, over and over. */
typedef struct name_cache {
        uint64_t id[32];
        char name[32][64];
        unsigned n;
} name_cache;

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
        (void)sig;
        stop = 1;
}

static const char *service_name(tether_session *s, name_cache *c, uint64_t id)
{
        for (unsigned i = 0; i < c->n; i++)
                if (c->id[i] == id)
                        return c->name[i];
        unsigned slot = c->n < 32 ? c->n++ : id % 32;
        tether_entry_info *info = NULL;
        c->id[slot] = id;
        if (tether_registry_entry_get_info(s, id, &info) == TETHER_SUCCESS)
                snprintf(c->name[slot], sizeof(c->name[slot]), "%s", info->class_name);
        else
                snprintf(c->name[slot], sizeof(c->name[slot]), "0x%" PRIx64, id);
        tether_entry_info_free(info);
        return c->name[slot];
}

static void print_time(uint64_t ns)
{
        time_t sec = (time_t)(ns / 1000000000u);
        struct tm tm;
        localtime_r(&sec, &tm);
        printf("%02d:%02d:%02d.%06u ", tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(ns % 1000000000u / 1000u));
}

static void print_duration(uint64_t ns)
{
        if (ns >= 1000000u)
                printf("%.2f ms", (double)ns / 1e6);
        else
                printf("%.1f us", (double)ns / 1e3);
}

/* Text as SCPI users read it: printable bytes, escapes for the rest. */
static void print_text(const uint8_t *p, size_t n, size_t max)
{
        putchar('"');
        for (size_t i = 0; i < n && i < max; i++) {
                if (p[i] == '\n')
                        fputs("\\n", stdout);
                else if (p[i] == '"' || p[i] == '\\')
                        printf("\\%c", p[i]);
                else if (isprint(p[i]))
                        putchar(p[i]);
                else
                        printf("\\x%02x", p[i]);
        }
        putchar('"');
        if (n > max)
                printf("...");
}

/* MsgIDs 2 and 127 mean the request on bulk-OUT and the answer on bulk-IN. */
static const char *msg_name(uint8_t id, bool in)
{
        switch (id) {
        case USBTMC_DEV_DEP_MSG_OUT:
                return "DEV_DEP_MSG_OUT";
        case USBTMC_DEV_DEP_MSG_IN:
                return in ? "DEV_DEP_MSG_IN" : "REQUEST_DEV_DEP_MSG_IN";
        case USBTMC_VENDOR_SPECIFIC_OUT:
                return "VENDOR_SPECIFIC_OUT";
        case USBTMC_VENDOR_SPECIFIC_IN:
                return in ? "VENDOR_SPECIFIC_IN" : "REQUEST_VENDOR_SPECIFIC_IN";
        case USB488_TRIGGER:
                return "TRIGGER";
        default:
                return "?";
        }
}

static const char *request_name(const uint8_t setup[8])
{
        if (setup[0] == 0x02 && setup[1] == 0x01)
                return "CLEAR_FEATURE(ENDPOINT_HALT)";
        switch (setup[1]) {
        case USBTMC_INITIATE_ABORT_BULK_OUT:
                return "INITIATE_ABORT_BULK_OUT";
        case USBTMC_CHECK_ABORT_BULK_OUT_STATUS:
                return "CHECK_ABORT_BULK_OUT_STATUS";
        case USBTMC_INITIATE_ABORT_BULK_IN:
                return "INITIATE_ABORT_BULK_IN";
        case USBTMC_CHECK_ABORT_BULK_IN_STATUS:
                return "CHECK_ABORT_BULK_IN_STATUS";
        case USBTMC_INITIATE_CLEAR:
                return "INITIATE_CLEAR";
        case USBTMC_CHECK_CLEAR_STATUS:
                return "CHECK_CLEAR_STATUS";
        case USBTMC_GET_CAPABILITIES:
                return "GET_CAPABILITIES";
        case USBTMC_INDICATOR_PULSE:
                return "INDICATOR_PULSE";
        case USB488_READ_STATUS_BYTE:
                return "READ_STATUS_BYTE";
        case USB488_REN_CONTROL:
                return "REN_CONTROL";
        case USB488_GO_TO_LOCAL:
                return "GO_TO_LOCAL";
        case USB488_LOCAL_LOCKOUT:
                return "LOCAL_LOCKOUT";
        default:
                return "?";
        }
}

/* A bulk transfer's USBTMC message, when it starts with a valid header. */
typedef struct usbtmc_view {
        usbtmc_header h;
        const char *name;
        bool request;          /* REQUEST_DEV_DEP_MSG_IN: transfer_size is the most the host takes */
        bool eom;
        const uint8_t *body;   /* the message bytes captured; none for a request */
        size_t body_len;
} usbtmc_view;

static bool usbtmc_view_of(const tether_probe_event *e, usbtmc_view *v)
{
        bool in = e->endpoint & 0x80;
        if (e->transfer_type != 3 || e->captured < USBTMC_HEADER_SIZE ||
            usbtmc_header_decode(e->data, e->captured, &v->h) != TETHER_SUCCESS)
                return false;
        v->name = msg_name(v->h.msg_id, in);
        v->request = !in && v->h.msg_id == USBTMC_REQUEST_DEV_DEP_MSG_IN;
        v->eom = !v->request && (v->h.attributes & USBTMC_ATTR_EOM);
        size_t captured = e->captured - USBTMC_HEADER_SIZE;
        v->body = e->data + USBTMC_HEADER_SIZE;
        v->body_len = v->request ? 0 : v->h.transfer_size < captured ? v->h.transfer_size : captured;
        return true;
}

static void print_usb(const tether_probe_event *e)
{
        bool in = e->endpoint & 0x80;
        const char *kind = e->transfer_type == 2   ? (in ? "ctrl-in " : "ctrl-out")
                           : e->transfer_type == 1 ? "intr-in "
                                                   : (in ? "bulk-in " : "bulk-out");
        printf("usb  %u.%u %s ep %02x %6" PRIu32 "/%-6" PRIu32 " %-8s ", e->bus, e->address, kind, e->endpoint,
               e->actual, e->requested, e->result == TETHER_SUCCESS ? "ok" : tether_strerror(e->result));
        print_duration(e->duration_ns);
        if (e->transfer_type == 2) {
                printf("  %s bmRequestType %02x wValue %u wIndex %u", request_name(e->setup), e->setup[0],
                       e->setup[2] | e->setup[3] << 8, e->setup[4] | e->setup[5] << 8);
                if (e->captured)
                        printf(" status %02x", e->data[0]);
        } else if (e->transfer_type == 1) {
                /* USB488 notifications: bNotify1, bNotify2. */
                if (e->captured >= 2 && e->data[0] == 0x81)
                        printf("  SRQ STB %02x", e->data[1]);
                else if (e->captured >= 2 && (e->data[0] & 0x80))
                        printf("  READ_STATUS_BYTE tag %u STB %02x", e->data[0] & 0x7f, e->data[1]);
        } else {
                usbtmc_view v;
                if (usbtmc_view_of(e, &v)) {
                        printf("  %s tag %u %s %" PRIu32 "%s", v.name, v.h.btag, v.request ? "max" : "size",
                               v.h.transfer_size, v.eom ? " EOM" : "");
                        if (v.body_len) {
                                putchar(' ');
                                print_text(v.body, v.body_len, 64);
                        }
                } else if (e->captured) {
                        printf("  (continued) ");
                        print_text(e->data, e->captured, 32);
                }
        }
        putchar('\n');
}

static void print_call(tether_session *s, name_cache *c, const tether_probe_event *e)
{
        printf("call pid %" PRId32 " conn %" PRIu64 " %s sel %" PRIu32 " %s%s", e->pid, e->connection_id,
               service_name(s, c, e->service_id), e->selector, e->method[0] ? e->method : "-",
               e->call_flags & TETHER_PROBE_CALL_ASYNC ? " (async)" : "");
        printf("  in %" PRIu32 "s/%" PRIu32 "B%s out %" PRIu32 "s/%" PRIu32 "B%s  %s  ", e->scalar_in, e->struct_in,
               e->call_flags & TETHER_PROBE_CALL_OOL_IN ? "(shm)" : "", e->scalar_out, e->struct_out,
               e->call_flags & TETHER_PROBE_CALL_OOL_OUT ? "(shm)" : "", tether_strerror(e->result));
        print_duration(e->duration_ns);
        putchar('\n');
}

static void print_async(tether_session *s, name_cache *c, const tether_probe_event *e)
{
        printf("done conn %" PRIu64 " %s  %s  args", e->connection_id, service_name(s, c, e->service_id),
               tether_strerror(e->result));
        for (uint32_t i = 0; i < e->arg_count; i++)
                printf(" %" PRIu64, e->args[i]);
        if (e->async_flags & TETHER_PROBE_ASYNC_LAST)
                fputs("  (last)", stdout);
        /* A result that never reached the client is the line to notice. */
        if (e->delivery == TETHER_ERR_NO_SPACE)
                fputs("  DROPPED: the client's port is full", stdout);
        else if (e->delivery == TETHER_ERR_ABORTED)
                fputs("  DROPPED: the client cancelled the stream", stdout);
        else if (e->delivery != TETHER_SUCCESS)
                printf("  DROPPED: %s", tether_strerror(e->delivery));
        putchar('\n');
}

static void print_property(tether_session *s, name_cache *c, const tether_probe_event *e)
{
        printf("set  pid %" PRId32 " %s ", e->pid, service_name(s, c, e->service_id));
        print_text((const uint8_t *)e->keys, strlen(e->keys), sizeof(e->keys));
        printf("  %s  ", tether_strerror(e->result));
        print_duration(e->duration_ns);
        if (e->reason[0]) {
                fputs("  why: ", stdout);
                print_text((const uint8_t *)e->reason, strlen(e->reason), sizeof(e->reason));
        }
        putchar('\n');
}

/* ---- --json: one object per event (docs/probe-json.md) ---- */

#define PROBE_JSON_SCHEMA 1

static void json_time(uint64_t ns)
{
        time_t sec = (time_t)(ns / 1000000000u);
        struct tm tm;
        gmtime_r(&sec, &tm);
        printf("\"%04d-%02d-%02dT%02d:%02d:%02d.%06uZ\"", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
               tm.tm_min, tm.tm_sec, (unsigned)(ns % 1000000000u / 1000u));
}

static void json_usbtmc(const tether_probe_event *e)
{
        usbtmc_view v;
        if (!usbtmc_view_of(e, &v)) {
                fputs("null", stdout);
                return;
        }
        printf("{\"message\":\"%s\",\"msgId\":%u,\"bTag\":%u,\"transferSize\":%" PRIu32 ",\"eom\":%s,\"text\":",
               v.name, v.h.msg_id, v.h.btag, v.h.transfer_size, v.eom ? "true" : "false");
        size_t text = 0;
        while (text < v.body_len && (isprint(v.body[text]) || isspace(v.body[text])))
                text++;
        if (text)
                tool_json_string(stdout, (const char *)v.body, text);
        else
                fputs("null", stdout);
        putchar('}');
}

static void print_json(tether_session *s, name_cache *c, const tether_probe_event *e)
{
        static const char *const kinds[] = { "?", "call", "async", "usb", "property" };
        printf("{\"schema\":%d,\"kind\":\"%s\",\"time\":", PROBE_JSON_SCHEMA, kinds[e->kind <= 4 ? e->kind : 0]);
        json_time(e->time_ns);
        printf(",\"durationNs\":");
        tool_json_uint(stdout, e->duration_ns);
        const char *service = service_name(s, c, e->service_id);
        printf(",\"service\":\"0x%" PRIx64 "\",\"serviceClass\":", e->service_id);
        tool_json_string(stdout, service, strlen(service));
        bool in_call = e->selector != TETHER_PROBE_ANY_SELECTOR;
        if (in_call) {
                printf(",\"session\":%" PRIu64 ",\"connection\":%" PRIu64 ",\"pid\":%" PRId32 ",\"selector\":%" PRIu32,
                       e->session_id, e->connection_id, e->pid, e->selector);
        } else if (e->kind == TETHER_PROBE_EVENT_PROPERTY) {
                /* A session's request, on no connection. */
                printf(",\"session\":%" PRIu64 ",\"connection\":null,\"pid\":%" PRId32 ",\"selector\":null",
                       e->session_id, e->pid);
        } else {
                /* A driver's own work (start, a timer); an async completion
                 * still names the connection it completes. */
                printf(",\"session\":null,\"connection\":");
                if (e->connection_id)
                        printf("%" PRIu64, e->connection_id);
                else
                        fputs("null", stdout);
                printf(",\"pid\":null,\"selector\":null");
        }
        printf(",\"result\":\"%s\",\"resultCode\":%d,\"lost\":%" PRIu32, tether_ret_name(e->result), (int)e->result,
               e->dropped);
        if (e->kind == TETHER_PROBE_EVENT_CALL) {
                printf(",\"method\":");
                if (e->method[0])
                        tool_json_string(stdout, e->method, strlen(e->method));
                else
                        fputs("null", stdout);
                printf(",\"async\":%s,\"scalarsIn\":%" PRIu32 ",\"scalarsOut\":%" PRIu32 ",\"structIn\":%" PRIu32
                       ",\"structOut\":%" PRIu32 ",\"structInShm\":%s,\"structOutShm\":%s",
                       e->call_flags & TETHER_PROBE_CALL_ASYNC ? "true" : "false", e->scalar_in, e->scalar_out,
                       e->struct_in, e->struct_out, e->call_flags & TETHER_PROBE_CALL_OOL_IN ? "true" : "false",
                       e->call_flags & TETHER_PROBE_CALL_OOL_OUT ? "true" : "false");
        } else if (e->kind == TETHER_PROBE_EVENT_ASYNC) {
                printf(",\"args\":[");
                for (uint32_t i = 0; i < e->arg_count; i++) {
                        if (i)
                                putchar(',');
                        tool_json_uint(stdout, e->args[i]);
                }
                printf("],\"last\":%s,\"delivery\":\"%s\"", e->async_flags & TETHER_PROBE_ASYNC_LAST ? "true" : "false",
                       tether_ret_name(e->delivery));
        } else if (e->kind == TETHER_PROBE_EVENT_PROPERTY) {
                printf(",\"keys\":");
                tool_json_string(stdout, e->keys, strlen(e->keys));
                printf(",\"reason\":");
                if (e->reason[0])
                        tool_json_string(stdout, e->reason, strlen(e->reason));
                else
                        fputs("null", stdout);
        } else {
                static const char *const types[] = { "isochronous", "interrupt", "control", "bulk" };
                printf(",\"bus\":%u,\"address\":%u,\"transfer\":\"%s\",\"endpoint\":%u,\"direction\":\"%s\","
                       "\"requested\":%" PRIu32 ",\"actual\":%" PRIu32 ",\"setup\":",
                       e->bus, e->address, types[e->transfer_type & 3], e->endpoint, e->endpoint & 0x80 ? "in" : "out",
                       e->requested, e->actual);
                if (e->transfer_type == 2)
                        tool_json_hex(stdout, e->setup, sizeof(e->setup));
                else
                        fputs("null", stdout);
                printf(",\"data\":");
                tool_json_hex(stdout, e->data, e->captured);
                printf(",\"usbtmc\":");
                json_usbtmc(e);
        }
        puts("}");
}

static int usage(FILE *f, int code)
{
        fprintf(f,
                "usage: tether probe [options]   follow user-client calls and USB transfers, live\n"
                "  -s, --service ENTRY   only this service (registry path, id, class or name)\n"
                "  -p, --pid PID         only this client's calls (and the transfers they make)\n"
                "  -S, --selector N      only calls of this selector (and their transfers)\n"
                "      --calls           calls, async results and property writes only\n"
                "      --usb             USB transfers only\n"
                "  -w, --pcap FILE       also write the USB traffic to FILE (Wireshark: usbmon format)\n"
                "      --snaplen N       USB data bytes kept per transfer (default 256, or all with --pcap)\n"
                "  -c, --count N         stop after N events\n"
                "  -t, --duration SEC    stop after SEC seconds\n"
                "  -q, --quiet           no lines (with --pcap)\n"
                "  -j, --json            one JSON object per event instead (docs/probe-json.md)\n"
                "Ctrl-C stops. Needs root or tetherd's user.\n");
        return code;
}

static int parse(int argc, char **argv, probe_opts *o)
{
        enum { OPT_CALLS = 256, OPT_USB, OPT_SNAPLEN };
        static const struct option opts[] = {
                { "service", required_argument, NULL, 's' }, { "pid", required_argument, NULL, 'p' },
                { "selector", required_argument, NULL, 'S' }, { "calls", no_argument, NULL, OPT_CALLS },
                { "usb", no_argument, NULL, OPT_USB },       { "pcap", required_argument, NULL, 'w' },
                { "snaplen", required_argument, NULL, OPT_SNAPLEN }, { "count", required_argument, NULL, 'c' },
                { "duration", required_argument, NULL, 't' }, { "quiet", no_argument, NULL, 'q' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },           { 0 },
        };
        uint32_t kinds = 0;
        long snaplen = -1;
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "s:p:S:w:c:t:qjh", opts, NULL)) != -1) {
                char *end = NULL;
                errno = 0;
                switch (c) {
                case 's':
                        o->service = optarg;
                        break;
                case 'p':
                        o->filter.pid = (int32_t)strtol(optarg, &end, 10);
                        break;
                case 'S':
                        o->filter.selector = (uint32_t)strtoul(optarg, &end, 0);
                        break;
                case OPT_CALLS:
                        kinds |= TETHER_PROBE_CALLS;
                        break;
                case OPT_USB:
                        kinds |= TETHER_PROBE_USB;
                        break;
                case 'w':
                        o->pcap = optarg;
                        break;
                case OPT_SNAPLEN:
                        snaplen = strtol(optarg, &end, 0);
                        break;
                case 'c':
                        o->count = strtoul(optarg, &end, 0);
                        break;
                case 't':
                        o->duration = strtod(optarg, &end);
                        break;
                case 'q':
                        o->quiet = true;
                        break;
                case 'j':
                        o->json = true;
                        break;
                case 'h':
                        exit(usage(stdout, 0));
                default:
                        return usage(stderr, 2);
                }
                if (end && (*end || errno || end == optarg)) {
                        fprintf(stderr, "tether probe: bad number '%s'\n", optarg);
                        return 2;
                }
        }
        if (optind < argc)
                return usage(stderr, 2);
        o->filter.kinds = kinds ? kinds : TETHER_PROBE_CALLS | TETHER_PROBE_USB;
        if (snaplen < 0)
                snaplen = o->pcap ? TETHER_PROBE_MAX_SNAPLEN : 256;
        o->filter.snaplen = snaplen > TETHER_PROBE_MAX_SNAPLEN ? TETHER_PROBE_MAX_SNAPLEN : (uint32_t)snaplen;
        return 0;
}

static int run(tether_session *s, tether_probe *p, usbpcap *pcap, const probe_opts *o)
{
        name_cache names = { .n = 0 };
        unsigned long events = 0, dropped = 0;
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int status = 0;
        while (!stop && (!o->count || events < o->count)) {
                int wait_ms = -1;
                if (o->duration > 0) {
                        struct timespec now;
                        clock_gettime(CLOCK_MONOTONIC, &now);
                        double left = o->duration - (double)(now.tv_sec - t0.tv_sec) - (now.tv_nsec - t0.tv_nsec) / 1e9;
                        if (left <= 0)
                                break;
                        wait_ms = (int)(left * 1000) + 1;
                }
                struct pollfd pfd = { .fd = tether_probe_get_fd(p), .events = POLLIN };
                if (poll(&pfd, 1, wait_ms) < 0 && errno != EINTR)
                        break;
                tether_probe_event e;
                tether_ret_t r = TETHER_ERR_NOT_READY;
                while ((!o->count || events < o->count) && (r = tether_probe_read(p, &e)) == TETHER_SUCCESS) {
                        events++;
                        dropped += e.dropped;
                        if (pcap && usbpcap_write(pcap, &e) != TETHER_SUCCESS) {
                                fprintf(stderr, "tether probe: %s: write failed\n", o->pcap);
                                return 1;
                        }
                        if (o->quiet)
                                continue;
                        if (o->json) {
                                print_json(s, &names, &e);
                                continue;
                        }
                        if (e.dropped)
                                printf("-- %" PRIu32 " events lost (tether probe fell behind)\n", e.dropped);
                        print_time(e.time_ns);
                        if (e.kind == TETHER_PROBE_EVENT_USB)
                                print_usb(&e);
                        else if (e.kind == TETHER_PROBE_EVENT_CALL)
                                print_call(s, &names, &e);
                        else if (e.kind == TETHER_PROBE_EVENT_PROPERTY)
                                print_property(s, &names, &e);
                        else
                                print_async(s, &names, &e);
                }
                fflush(stdout);
                if (r == TETHER_ERR_NOT_ATTACHED) {
                        fprintf(stderr, "tether probe: tetherd went away\n");
                        status = 1;
                        break;
                }
                if (r != TETHER_SUCCESS && r != TETHER_ERR_NOT_READY) {
                        fprintf(stderr, "tether probe: %s\n", tether_strerror(r));
                        status = 1;
                        break;
                }
        }
        fprintf(stderr, "tether probe: %lu events, %lu lost\n", events, dropped);
        return status;
}

int cmd_probe(int argc, char **argv)
{
        probe_opts o = { .filter = { .selector = TETHER_PROBE_ANY_SELECTOR } };
        int rc = parse(argc, argv, &o);
        if (rc)
                return rc;
        tether_session *s = NULL;
        if (tool_open("tether probe", &s) != TETHER_SUCCESS)
                return 1;
        tether_ret_t r;
        if (o.service && tool_resolve_entry(s, "tether probe", o.service, &o.filter.service_id) != TETHER_SUCCESS) {
                tether_session_close(s);
                return 1;
        }
        tether_probe *p = NULL;
        r = tether_probe_attach(s, &o.filter, &p);
        if (r != TETHER_SUCCESS) {
                tether_session_close(s);
                if (r == TETHER_ERR_NOT_PRIVILEGED) {
                        fprintf(stderr, "tether probe: cannot attach: only root and tetherd's user may probe\n");
                        return 1;
                }
                return tool_fail("tether probe", "cannot attach", r);
        }
        usbpcap *pcap = NULL;
        if (o.pcap && (r = usbpcap_open(o.pcap, &pcap)) != TETHER_SUCCESS) {
                tether_probe_detach(p);
                tether_session_close(s);
                return tool_fail("tether probe", o.pcap, r);
        }
        struct sigaction sa = { .sa_handler = on_signal };
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        /* Scripts wait for this line before making traffic. */
        fprintf(stderr, "tether probe: attached (%s%s%s); Ctrl-C stops\n",
                o.filter.kinds & TETHER_PROBE_CALLS ? "calls" : "",
                o.filter.kinds == (TETHER_PROBE_CALLS | TETHER_PROBE_USB) ? ", " : "",
                o.filter.kinds & TETHER_PROBE_USB ? "usb" : "");
        rc = run(s, p, pcap, &o);
        if (pcap && usbpcap_close(pcap) != TETHER_SUCCESS) {
                fprintf(stderr, "tether probe: %s: write failed\n", o.pcap);
                rc = 1;
        }
        tether_probe_detach(p);
        tether_session_close(s);
        return rc;
}
