/* SPDX-License-Identifier: MIT */
/*
 * tether reg watch: arrivals, removals and property changes, one line each,
 * as they happen. Arrivals and removals are the matching notifications
 * (published, terminated); changes are TETHER_NOTIFY_PROPERTIES_CHANGED,
 * which carries only the service's id. Which keys changed is worked out
 * here, against the table this tool last saw: the message stays small and
 * fixed, a watcher that falls behind still prints the state it reaches
 * (never a stale value), and keys need no size limit on the port.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reg-private.h"
#include "tool.h"

typedef struct known {
        uint64_t id;
        char *class_name, *name;
        tether_value *props;
        struct known *next;
} known;

typedef struct watch {
        tether_session *s;
        known *list;
        bool gone;                 /* tetherd stopped answering inside a callback */
        bool json;                 /* one object per event (docs/reg-json.md, "watch") */
} watch;

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
        (void)sig;
        stop = 1;
}

static known *find(watch *w, uint64_t id)
{
        for (known *k = w->list; k; k = k->next)
                if (k->id == id)
                        return k;
        return NULL;
}

static void forget(watch *w, known *gone)
{
        for (known **pp = &w->list; *pp; pp = &(*pp)->next) {
                if (*pp == gone) {
                        *pp = gone->next;
                        break;
                }
        }
        free(gone->class_name);
        free(gone->name);
        tether_value_unref(gone->props);
        free(gone);
}

/* Reads the entry and its table into the list (new or refreshed). */
static tether_ret_t learn(watch *w, uint64_t id, known **ret)
{
        tether_entry_info *info = NULL;
        tether_value *props = NULL;
        tether_ret_t r = tether_registry_entry_get_info(w->s, id, &info);
        if (r == TETHER_SUCCESS)
                r = tether_registry_entry_get_properties(w->s, id, &props);
        known *k = r == TETHER_SUCCESS ? find(w, id) : NULL;
        if (r == TETHER_SUCCESS && !k) {
                k = calloc(1, sizeof(*k));
                if (k) {
                        k->id = id;
                        k->next = w->list;
                        w->list = k;
                } else {
                        r = TETHER_ERR_NO_MEMORY;
                }
        }
        if (r == TETHER_SUCCESS) {
                free(k->class_name);
                free(k->name);
                tether_value_unref(k->props);
                k->class_name = strdup(info->class_name);
                k->name = reg_display_name(info);
                k->props = props;
                props = NULL;
                *ret = k;
        }
        if (tool_daemon_gone(r))
                w->gone = true;
        tether_entry_info_free(info);
        tether_value_unref(props);
        return r;
}

/* The keys of after whose values differ from before's (all of them when
 * before is NULL), and the keys of before that after lacks. */
typedef void (*key_fn)(FILE *f, const char *key, const tether_value *v, const char **sep);

static void each_changed(FILE *f, const tether_value *before, const tether_value *after, key_fn fn)
{
        const char *sep = "";
        for (size_t i = 0; i < tether_value_count(after); i++) {
                const char *key;
                tether_value *v, *old = NULL;
                tether_value_dict_entry(after, i, &key, &v);
                if (before && tether_value_dict_get(before, key, &old) == TETHER_SUCCESS && tether_value_equal(old, v))
                        continue;
                fn(f, key, v, &sep);
        }
}

static void each_removed(FILE *f, const tether_value *before, const tether_value *after, key_fn fn, const char *sep)
{
        for (size_t i = 0; before && i < tether_value_count(before); i++) {
                const char *key;
                tether_value *v, *now = NULL;
                tether_value_dict_entry(before, i, &key, &v);
                if (tether_value_dict_get(after, key, &now) != TETHER_SUCCESS)
                        fn(f, key, NULL, &sep);
        }
}

static void json_changed(FILE *f, const char *key, const tether_value *v, const char **sep)
{
        fputs(*sep, f);
        tool_json_string(f, key, strlen(key));
        fputc(':', f);
        reg_json_value(f, v);
        *sep = ",";
}

static void json_removed(FILE *f, const char *key, const tether_value *v, const char **sep)
{
        fputs(*sep, f);
        tool_json_string(f, key, strlen(key));
        *sep = ",";
}

static void text_changed(FILE *f, const char *key, const tether_value *v, const char **sep)
{
        char *text = NULL;
        if (reg_value_text(v, false, &text) == TETHER_SUCCESS)
                fprintf(f, "%s%s = %s", *sep, key, text);
        free(text);
        *sep = "; ";
}

static void text_removed(FILE *f, const char *key, const tether_value *v, const char **sep)
{
        fprintf(f, "%s%s removed", *sep, key);
        *sep = "; ";
}

/* --json: {"schema", "time", "kind", "id", "class", "name", "changed", "removed"}; a change
 * names each key with its new value, and the keys that went. */
static void event_json(const char *kind, uint64_t id, const char *class_name, const char *name,
                       const tether_value *before, const tether_value *after)
{
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        printf("{\"schema\":1,\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"kind\":\"%s\",\"id\":\"0x%" PRIx64
               "\",\"class\":",
               tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, kind, id);
        if (class_name)
                tool_json_string(stdout, class_name, strlen(class_name));
        else
                fputs("null", stdout);
        fputs(",\"name\":", stdout);
        if (name)
                tool_json_string(stdout, name, strlen(name));
        else
                fputs("null", stdout);
        if (after) {
                fputs(",\"changed\":{", stdout);
                each_changed(stdout, before, after, json_changed);
                fputs("},\"removed\":[", stdout);
                each_removed(stdout, before, after, json_removed, "");
                putchar(']');
        }
        puts("}");
        fflush(stdout);
}

static void event(const char *kind, uint64_t id, const char *class_name, const char *name, const char *detail)
{
        struct timespec ts;
        struct tm tm;
        char when[32];
        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
        printf("%s.%03ld  %-7s  %s  %s  id 0x%" PRIx64 "%s%s\n", when, ts.tv_nsec / 1000000, kind,
               class_name ? class_name : "?", name ? name : "?", id, detail ? "  " : "", detail ? detail : "");
        /* One line per event even into a pipe: whoever reads it is waiting. */
        fflush(stdout);
}

/* "Key = value; Other removed" for what differs between two tables. */
static char *diff(const tether_value *before, const tether_value *after)
{
        char *s = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);
        if (!f)
                return NULL;
        each_changed(f, before, after, text_changed);
        /* The removals continue the same list: "; " unless nothing changed. */
        long at = ftell(f);
        each_removed(f, before, after, text_removed, at > 0 ? "; " : "");
        if (fclose(f) != 0) {
                free(s);
                return NULL;
        }
        return s;
}

static void on_service(void *refcon, uint32_t type, uint64_t id)
{
        watch *w = refcon;
        known *k = find(w, id);
        if (type == TETHER_NOTIFY_TERMINATED) {
                if (w->json)
                        event_json("removed", id, k ? k->class_name : NULL, k ? k->name : NULL, NULL, NULL);
                else
                        event("removed", id, k ? k->class_name : NULL, k ? k->name : NULL, NULL);
                if (k)
                        forget(w, k);
                return;
        }
        if (type != TETHER_NOTIFY_PROPERTIES_CHANGED) {
                if (learn(w, id, &k) != TETHER_SUCCESS)
                        return;
                if (w->json)
                        event_json("arrived", id, k->class_name, k->name, NULL, NULL);
                else
                        event("arrived", id, k->class_name, k->name, NULL);
                return;
        }
        tether_value *before = k ? tether_value_ref(k->props) : NULL;
        if (learn(w, id, &k) != TETHER_SUCCESS) {
                tether_value_unref(before);
                return; /* gone already: its removal follows */
        }
        char *what = before ? diff(before, k->props) : NULL;
        /* Changes that cancel out before we look show nothing. */
        if (w->json && (!before || (what && *what)))
                event_json("changed", id, k->class_name, k->name, before, k->props);
        else if (!before || (what && *what))
                event("changed", id, k->class_name, k->name, before ? what : "(not seen before)");
        free(what);
        tether_value_unref(before);
}

static tether_ret_t build_matching(const char *class_name, const char *name, tether_value **ret)
{
        tether_ret_t r = class_name ? tether_service_matching(class_name, ret) : tether_value_new_dict(ret);
        if (r == TETHER_SUCCESS && name)
                r = tether_value_dict_set_string(*ret, "IONameMatch", name);
        return r;
}

int reg_cmd_watch(int argc, char **argv)
{
        static const struct option opts[] = {
                { "class", required_argument, NULL, 'c' },
                { "name", required_argument, NULL, 'n' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        const char *class_name = NULL, *name = NULL;
        bool json = false;
        int c;
        while ((c = getopt_long(argc, argv, "c:n:jh", opts, NULL)) != -1) {
                if (c == 'c') {
                        class_name = optarg;
                } else if (c == 'n') {
                        name = optarg;
                } else if (c == 'j') {
                        json = true;
                } else {
                        fprintf(c == 'h' ? stdout : stderr, "usage: tether reg watch [-c CLASS] [-n NAME] [--json]\n");
                        return c == 'h' ? 0 : 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "usage: tether reg watch [-c CLASS] [-n NAME] [--json]\n");
                return 2;
        }
        /* Signals arrive only inside ppoll: a Ctrl-C never cuts a request
         * to tetherd in half and makes it look gone. */
        sigset_t mask, during_poll;
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigprocmask(SIG_BLOCK, &mask, &during_poll);
        sigdelset(&during_poll, SIGINT);
        sigdelset(&during_poll, SIGTERM);
        struct sigaction sa = { .sa_handler = on_signal };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);

        watch w = { .json = json };
        if (tool_open("tether reg", &w.s) != TETHER_SUCCESS)
                return 1;
        tether_notification_port *port = NULL;
        tether_notification *n[3] = { 0 };
        static const uint32_t types[3] = { TETHER_NOTIFY_PUBLISHED, TETHER_NOTIFY_TERMINATED,
                                           TETHER_NOTIFY_PROPERTIES_CHANGED };
        tether_value *matching = NULL;
        uint64_t *ids = NULL;
        size_t nids = 0;
        tether_ret_t r = build_matching(class_name, name, &matching);
        if (r == TETHER_SUCCESS)
                r = tether_notification_port_create(w.s, &port);
        for (int i = 0; r == TETHER_SUCCESS && i < 3; i++)
                r = tether_service_add_matching_notification(port, types[i], matching, on_service, &w, &n[i]);
        /* What is there already, read after the notifications are in place:
         * anything newer is in the port, nothing falls between. */
        if (r == TETHER_SUCCESS)
                r = tether_get_matching_services(w.s, matching, &ids, &nids);
        for (size_t i = 0; r == TETHER_SUCCESS && i < nids; i++) {
                known *k;
                tether_ret_t lr = learn(&w, ids[i], &k);
                if (lr != TETHER_SUCCESS && lr != TETHER_ERR_NOT_FOUND)
                        r = lr;
        }
        free(ids);
        int status = 0;
        if (r != TETHER_SUCCESS) {
                status = tool_fail("tether reg", "watch", r);
        } else {
                fprintf(stderr, "tether reg watch: watching " REG_PLANE "%s%s%s%s; Ctrl-C stops\n",
                        class_name ? " for class " : "", class_name ? class_name : "", name ? " named " : "",
                        name ? name : "");
                struct pollfd pfd = { .fd = tether_notification_port_get_fd(port), .events = POLLIN };
                while (!stop && !w.gone) {
                        int pr = ppoll(&pfd, 1, NULL, &during_poll);
                        if (pr < 0 && errno == EINTR)
                                continue;
                        if (pr < 0 || tether_notification_port_dispatch(port) != TETHER_SUCCESS)
                                w.gone = true;
                }
                if (w.gone && !stop) {
                        fprintf(stderr, "tether reg watch: tetherd went away\n");
                        status = 1;
                }
        }
        /* The port takes its notifications with it, and the session's end
         * tetherd's side of them. */
        tether_notification_port_destroy(port);
        tether_value_unref(matching);
        while (w.list)
                forget(&w, w.list);
        tether_session_close(w.s);
        return status;
}
