/* SPDX-License-Identifier: MIT */
/*
 * tether scpi: one SCPI command or query to any instrument tether serves,
 * the list of them with their VISA resource strings, and an interactive
 * shell. It talks through scpi-link.h, whichever driver serves the
 * instrument.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <editline/readline.h>

#include "scpi-link.h"
#include "scpi.h"
#include "tool.h"

#define PROG "tether scpi"

/* ---- the instruments tether serves ---- */

typedef struct instrument {
        uint64_t id;
        const scpi_link_ops *ops;
        char resource[256];
        char vendor[128], model[128], serial[128];
        char path[512];
} instrument;

static void string_prop(tether_session *s, uint64_t id, const char *key, char *out, size_t cap)
{
        tether_value *v = NULL;
        const char *str = NULL;
        out[0] = '\0';
        if (tether_registry_entry_get_property(s, id, key, &v) == TETHER_SUCCESS &&
            tether_value_get_string(v, &str) == TETHER_SUCCESS)
                snprintf(out, cap, "%s", str);
        tether_value_unref(v);
}

static uint64_t uint_prop(tether_session *s, uint64_t id, const char *key)
{
        tether_value *v = NULL;
        uint64_t u = 0;
        if (tether_registry_entry_get_property(s, id, key, &v) == TETHER_SUCCESS)
                tether_value_get_uint(v, &u);
        tether_value_unref(v);
        return u;
}

/* The generic driver publishes VISAResource; for a model driver it is
 * made the same way from the USB nub the service sits on. */
static void resource_of(tether_session *s, instrument *in)
{
        string_prop(s, in->id, "VISAResource", in->resource, sizeof(in->resource));
        if (in->resource[0])
                return;
        uint64_t nub = 0;
        if (tether_registry_entry_get_parent(s, in->id, &nub) != TETHER_SUCCESS)
                return;
        char serial[128], ifnum[16] = "";
        string_prop(s, nub, "USB Serial Number", serial, sizeof(serial));
        if (!serial[0])
                snprintf(serial, sizeof(serial), "%s", in->serial[0] ? in->serial : "0");
        for (char *p = serial; *p; p++)
                if (*p == ':')
                        *p = '_';
        uint64_t interface = uint_prop(s, nub, "bInterfaceNumber");
        if (interface)
                snprintf(ifnum, sizeof(ifnum), "::%u", (unsigned)interface);
        snprintf(in->resource, sizeof(in->resource), "USB0::0x%04X::0x%04X::%s%s::INSTR",
                 (unsigned)(uint_prop(s, nub, "idVendor") & 0xffff), (unsigned)(uint_prop(s, nub, "idProduct") & 0xffff),
                 serial, ifnum);
}

static tether_ret_t describe(tether_session *s, uint64_t id, const scpi_link_ops *ops, instrument *in)
{
        *in = (instrument){ .id = id, .ops = ops };
        string_prop(s, id, "Vendor", in->vendor, sizeof(in->vendor));
        string_prop(s, id, "Model", in->model, sizeof(in->model));
        string_prop(s, id, "SerialNumber", in->serial, sizeof(in->serial));
        resource_of(s, in);
        char *path = NULL;
        tether_ret_t r = tether_registry_entry_get_path(s, id, &path);
        if (r == TETHER_SUCCESS)
                snprintf(in->path, sizeof(in->path), "%s", path);
        free(path);
        return r;
}

/* Every service of a class tether scpi talks to, in id order per class. */
static tether_ret_t list_all(tether_session *s, instrument **ret, size_t *ret_n)
{
        instrument *all = NULL;
        size_t n = 0;
        tether_ret_t r = TETHER_SUCCESS;
        for (const char *const *cls = scpi_link_classes; *cls && r == TETHER_SUCCESS; cls++) {
                tether_value *m = NULL;
                uint64_t *ids = NULL;
                size_t k = 0;
                r = tether_service_matching(*cls, &m);
                if (r == TETHER_SUCCESS)
                        r = tether_get_matching_services(s, m, &ids, &k);
                tether_value_unref(m);
                if (r == TETHER_SUCCESS && k) {
                        instrument *p = realloc(all, (n + k) * sizeof(*all));
                        if (!p)
                                r = TETHER_ERR_NO_MEMORY;
                        else
                                all = p;
                }
                for (size_t i = 0; r == TETHER_SUCCESS && i < k; i++) {
                        tether_ret_t dr = describe(s, ids[i], scpi_link_ops_for(*cls), &all[n]);
                        if (dr == TETHER_SUCCESS)
                                n++;
                        else if (dr != TETHER_ERR_NOT_FOUND) /* gone since: not an error */
                                r = dr;
                }
                free(ids);
        }
        if (r != TETHER_SUCCESS) {
                free(all);
                return r;
        }
        *ret = all;
        *ret_n = n;
        return TETHER_SUCCESS;
}

static void print_choices(const instrument *all, size_t n)
{
        for (size_t i = 0; i < n; i++)
                fprintf(stderr, "  %s  %s %s  (%s, id 0x%" PRIx64 ")\n", all[i].resource, all[i].vendor,
                        all[i].model, all[i].ops->class_name, all[i].id);
}

static int cmd_list(tether_session *s, bool json)
{
        instrument *all = NULL;
        size_t n = 0;
        tether_ret_t r = list_all(s, &all, &n);
        if (r != TETHER_SUCCESS)
                return tool_fail(PROG, "list", r);
        if (json) {
                printf("[");
                for (size_t i = 0; i < n; i++) {
                        const instrument *in = &all[i];
                        printf("%s\n  {\"resource\": ", i ? "," : "");
                        tool_json_string(stdout, in->resource, strlen(in->resource));
                        printf(", \"class\": ");
                        tool_json_string(stdout, in->ops->class_name, strlen(in->ops->class_name));
                        printf(", \"vendor\": ");
                        tool_json_string(stdout, in->vendor, strlen(in->vendor));
                        printf(", \"model\": ");
                        tool_json_string(stdout, in->model, strlen(in->model));
                        printf(", \"serial\": ");
                        tool_json_string(stdout, in->serial, strlen(in->serial));
                        printf(", \"id\": ");
                        tool_json_uint(stdout, in->id);
                        printf(", \"path\": ");
                        tool_json_string(stdout, in->path, strlen(in->path));
                        printf("}");
                }
                printf("%s]\n", n ? "\n" : "");
        } else {
                for (size_t i = 0; i < n; i++)
                        printf("%-44s %-17s %s %s  id 0x%" PRIx64 "\n", all[i].resource, all[i].ops->class_name,
                               all[i].vendor[0] ? all[i].vendor : "?", all[i].model[0] ? all[i].model : "?", all[i].id);
                if (!n)
                        fprintf(stderr, PROG ": no instruments (none plugged in, or no driver serves them)\n");
        }
        free(all);
        return 0;
}

/* The instrument the arguments name: --resource, an ENTRY (a class, a
 * path, an id, a name; a USB nub stands for the service on it), or the
 * only one there is. Says why not on stderr. */
static tether_ret_t pick(tether_session *s, const char *entry, const char *resource, instrument *ret)
{
        instrument *all = NULL;
        size_t n = 0;
        tether_ret_t r = list_all(s, &all, &n);
        if (r != TETHER_SUCCESS) {
                tool_fail(PROG, "list", r);
                return r;
        }
        const instrument *found = NULL;
        size_t hits = 0;
        if (resource) {
                for (size_t i = 0; i < n; i++)
                        if (!strcasecmp(all[i].resource, resource) && !hits++)
                                found = &all[i];
                if (!found)
                        fprintf(stderr, PROG ": no instrument with resource %s\n", resource);
        } else if (entry && scpi_link_ops_for(entry)) {
                for (size_t i = 0; i < n; i++)
                        if (!strcmp(all[i].ops->class_name, entry) && !hits++)
                                found = &all[i];
                if (!found)
                        fprintf(stderr, PROG ": no instrument is served by %s\n", entry);
        } else if (entry) {
                uint64_t id = 0;
                r = tool_resolve_entry(s, PROG, entry, &id);
                for (size_t i = 0; r == TETHER_SUCCESS && i < n; i++) {
                        uint64_t parent = 0;
                        bool below = tether_registry_entry_get_parent(s, all[i].id, &parent) == TETHER_SUCCESS &&
                                     parent == id;
                        if ((all[i].id == id || below) && !hits++)
                                found = &all[i];
                }
                if (r == TETHER_SUCCESS && !found)
                        fprintf(stderr, PROG ": %s is not an instrument tether serves (tether scpi --list shows them)\n",
                                entry);
        } else {
                hits = n;
                if (n == 1) {
                        found = &all[0];
                } else if (!n) {
                        fprintf(stderr, PROG ": no instruments (none plugged in, or no driver serves them)\n");
                } else {
                        fprintf(stderr, PROG ": %zu instruments; name one (ENTRY or --resource):\n", n);
                        print_choices(all, n);
                        found = NULL;
                }
        }
        if (found && hits > 1 && (resource || entry)) {
                fprintf(stderr, PROG ": %s names %zu instruments; name one:\n", resource ? resource : entry, hits);
                print_choices(all, n);
                found = NULL;
        }
        if (found)
                *ret = *found;
        free(all);
        return found ? TETHER_SUCCESS : (r != TETHER_SUCCESS ? r : TETHER_ERR_NOT_FOUND);
}

/* ---- talking ---- */

typedef struct session_state {
        scpi_link link;
        instrument in;
        bool locked;
} session_state;

/* One line, naming what failed in the user's terms. */
static void say_error(session_state *st, const char *what, tether_ret_t r)
{
        const char *why;
        char buf[160];
        switch (r) {
        case TETHER_ERR_TIMEOUT: {
                unsigned ms = 0;
                if (scpi_link_get_timeout(&st->link, &ms) == TETHER_SUCCESS)
                        snprintf(buf, sizeof(buf), "timeout: no answer within %u ms (the link was cleared; the "
                                                   "next command works)", ms);
                else
                        snprintf(buf, sizeof(buf), "timeout: no answer in time (the link was cleared)");
                why = buf;
                break;
        }
        case TETHER_ERR_BUSY:
                why = "busy: the instrument is locked by another client";
                break;
        case TETHER_ERR_NOT_ATTACHED:
        case TETHER_ERR_NO_DEVICE:
                why = "the instrument is gone (unplugged?)";
                break;
        case TETHER_ERR_UNSUPPORTED:
                snprintf(buf, sizeof(buf), "not supported by %s", st->in.ops->class_name);
                why = buf;
                break;
        case TETHER_ERR_NO_SPACE:
                why = "the answer is longer than tether scpi keeps (64 MiB)";
                break;
        case TETHER_ERR_NOT_OPEN:
                why = "this client does not hold the lock";
                break;
        default:
                if (tool_daemon_gone(r)) {
                        why = "tetherd went away";
                } else {
                        snprintf(buf, sizeof(buf), "%s (%s)", tether_strerror(r), tether_ret_name(r));
                        why = buf;
                }
        }
        fprintf(stderr, PROG ": %s: %s\n", what, why);
}

static tether_ret_t write_file(const char *path, const uint8_t *p, size_t n)
{
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
                fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
                if (f)
                        fclose(f);
                return TETHER_ERR_IO;
        }
        return TETHER_SUCCESS;
}

/* An answer: a block's data to the file (or raw to a non-terminal
 * stdout), text printed. */
static tether_ret_t show_answer(const uint8_t *p, size_t n, const char *output, bool interactive)
{
        const uint8_t *data = NULL;
        size_t len = 0;
        if (scpi_block(p, n, &data, &len)) {
                if (output) {
                        tether_ret_t r = write_file(output, data, len);
                        if (r == TETHER_SUCCESS)
                                printf("wrote %s (%zu bytes)\n", output, len);
                        return r;
                }
                if (interactive || isatty(STDOUT_FILENO)) {
                        printf("<a binary block of %zu bytes: give --output FILE for it>\n", len);
                        return TETHER_SUCCESS;
                }
                return fwrite(data, 1, len, stdout) == len ? TETHER_SUCCESS : TETHER_ERR_IO;
        }
        fwrite(p, 1, n, stdout);
        if (!n || p[n - 1] != '\n')
                putchar('\n');
        return TETHER_SUCCESS;
}

/* SYST:ERR? after a command: 0 (or +0) is no error. */
static tether_ret_t check_errors(session_state *st)
{
        uint8_t *ans = NULL;
        size_t n = 0;
        tether_ret_t r = st->link.ops->send(&st->link, "SYST:ERR?", true, &ans, &n);
        if (r != TETHER_SUCCESS) {
                say_error(st, "SYST:ERR?", r);
                return r;
        }
        while (n && (ans[n - 1] == '\n' || ans[n - 1] == '\r'))
                n--;
        long code = strtol((const char *)ans, NULL, 10);
        if (code != 0)
                fprintf(stderr, PROG ": the instrument reports: %.*s\n", (int)n, (const char *)ans);
        free(ans);
        return code ? TETHER_ERR_DEVICE_ERROR : TETHER_SUCCESS;
}

static tether_ret_t run(session_state *st, const char *msg, const char *output, bool check, bool interactive)
{
        bool query = scpi_is_query(msg);
        uint8_t *ans = NULL;
        size_t n = 0;
        tether_ret_t r = st->link.ops->send(&st->link, msg, query, &ans, &n);
        if (r != TETHER_SUCCESS) {
                say_error(st, msg, r);
                return r;
        }
        if (query) {
                r = show_answer(ans, n, output, interactive);
                free(ans);
        }
        if (r == TETHER_SUCCESS && check)
                r = check_errors(st);
        return r;
}

/* ---- the shell ---- */

static char *history_path(void)
{
        char *p = NULL;
        const char *state = getenv("XDG_STATE_HOME");
        if (state && *state) {
                if (asprintf(&p, "%s/tether", state) < 0)
                        return NULL;
                /* XDG: the base directory is made if missing, 0700. Either
                 * exists already, or history is not kept: both fine. */
                mkdir(state, 0700);
                mkdir(p, 0700);
                free(p);
                return asprintf(&p, "%s/tether/scpi_history", state) < 0 ? NULL : p;
        }
        const char *home = getenv("HOME");
        if (!home || !*home)
                return NULL;
        return asprintf(&p, "%s/.tether_scpi_history", home) < 0 ? NULL : p;
}

static void shell_help(void)
{
        printf("SCPI commands and queries go to the instrument (a query ends in '?' in its last header).\n"
               ":help             this\n"
               ":timeout [MS]     show or set the instrument's TimeoutMs\n"
               ":clear            device clear\n"
               ":stb              the status byte\n"
               ":lock, :unlock    the instrument's exclusive lock\n"
               ":quit             leave (so does end of input, Ctrl-D)\n");
}

/* A line starting with ':' and naming a shell command; false: SCPI. */
static bool shell_command(session_state *st, const char *line, bool *quit)
{
        char word[32] = "";
        const char *arg = NULL;
        size_t w = strcspn(line, " \t");
        if (w >= sizeof(word))
                return false;
        memcpy(word, line, w);
        word[w] = '\0';
        arg = line + w + strspn(line + w, " \t");
        static const char *const names[] = { ":help", ":quit", ":exit", ":timeout", ":clear", ":stb", ":lock", ":unlock" };
        bool known = false;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                known |= !strcasecmp(word, names[i]);
        if (!known)
                return false; /* ":MEAS:VOLT?" is SCPI */
        tether_ret_t r = TETHER_SUCCESS;
        if (!strcasecmp(word, ":help")) {
                shell_help();
        } else if (!strcasecmp(word, ":quit") || !strcasecmp(word, ":exit")) {
                *quit = true;
        } else if (!strcasecmp(word, ":timeout")) {
                unsigned ms = 0;
                if (!*arg) {
                        r = scpi_link_get_timeout(&st->link, &ms);
                        if (r == TETHER_SUCCESS)
                                printf("timeout %u ms\n", ms);
                        else
                                say_error(st, ":timeout", r);
                        return true;
                }
                char *end = NULL;
                unsigned long v = strtoul(arg, &end, 10);
                if (end == arg || *end || v > UINT32_MAX) {
                        fprintf(stderr, PROG ": :timeout takes milliseconds\n");
                        return true;
                }
                char *why = NULL;
                r = scpi_link_set_timeout(&st->link, (unsigned)v, &why);
                if (r == TETHER_SUCCESS)
                        printf("timeout %lu ms\n", v);
                else if (why && *why)
                        fprintf(stderr, PROG ": :timeout %lu: %s\n", v, why);
                else
                        say_error(st, ":timeout", r);
                free(why);
        } else if (!strcasecmp(word, ":clear")) {
                r = st->link.ops->clear(&st->link);
                if (r == TETHER_SUCCESS)
                        printf("cleared\n");
                else
                        say_error(st, ":clear", r);
        } else if (!strcasecmp(word, ":stb")) {
                uint8_t stb = 0;
                r = st->link.ops->status_byte(&st->link, &stb);
                if (r == TETHER_SUCCESS)
                        printf("status byte 0x%02x (%u)%s%s%s%s%s%s\n", stb, stb, stb & 0x04 ? " EAV" : "",
                               stb & 0x08 ? " QUES" : "", stb & 0x10 ? " MAV" : "", stb & 0x20 ? " ESB" : "",
                               stb & 0x40 ? " RQS" : "", stb & 0x80 ? " OPER" : "");
                else
                        say_error(st, ":stb", r);
        } else if (!strcasecmp(word, ":lock")) {
                r = st->link.ops->lock(&st->link);
                if (r == TETHER_SUCCESS)
                        printf("locked\n");
                else
                        say_error(st, ":lock", r);
        } else {
                r = st->link.ops->unlock(&st->link);
                if (r == TETHER_SUCCESS)
                        printf("unlocked\n");
                else
                        say_error(st, ":unlock", r);
        }
        return true;
}

static int shell(session_state *st)
{
        char prompt[300];
        snprintf(prompt, sizeof(prompt), "%s> ", st->in.model[0] ? st->in.model : st->in.resource);
        char *hist = history_path();
        using_history();
        stifle_history(1000);
        if (hist)
                read_history(hist);
        bool tty = isatty(STDIN_FILENO);
        if (tty)
                printf("%s %s (%s, %s). :help for help, :quit to leave.\n", st->in.vendor, st->in.model,
                       st->in.resource, st->in.ops->class_name);
        bool quit = false;
        char *line;
        while (!quit && (line = readline(prompt)) != NULL) {
                char *p = line + strspn(line, " \t");
                size_t n = strlen(p);
                while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
                        p[--n] = '\0';
                if (*p) {
                        add_history(p);
                        if (!shell_command(st, p, &quit))
                                run(st, p, NULL, false, true);
                        fflush(stdout);
                }
                free(line);
        }
        if (hist) {
                write_history(hist);
                free(hist);
        }
        if (!quit && tty)
                putchar('\n');
        return 0;
}

/* ---- the command ---- */

static void usage(FILE *f)
{
        fprintf(f,
                "usage: tether scpi [ENTRY | --resource RES] [--check] [--output FILE] 'COMMAND'\n"
                "       tether scpi [ENTRY | --resource RES]         an interactive SCPI shell\n"
                "       tether scpi --list [--json]\n"
                "Sends one SCPI program message to an instrument tether serves and prints the answer.\n"
                "A query is a message whose last header ends in '?' (\"*IDN?\", \"MEAS:VOLT? 10\"); a\n"
                "command prints nothing and exits 0.\n"
                "  ENTRY            the instrument: a driver class (DSOX2000, USBTMCInstrument), a\n"
                "                   registry path, an id or a name (a USB nub: the service on it);\n"
                "                   with no ENTRY and no --resource, the only instrument there is\n"
                "  -r, --resource RES  the instrument with this VISA resource string\n"
                "                   (USB0::0x0957::0x179B::MY57235663::INSTR, as --list shows)\n"
                "  -o, --output FILE   an IEEE 488.2 binary block answer's data (#<n><len>, #0) to FILE,\n"
                "                   the header stripped; a text answer is printed as always\n"
                "  -c, --check      after the message, ask SYST:ERR? and fail if it reports an error\n"
                "  -l, --list       every instrument: VISA resource string, serving driver, *IDN? model\n"
                "  -j, --json       --list as a JSON array\n"
                "With no COMMAND: a shell with line editing and history ($XDG_STATE_HOME/tether/\n"
                "scpi_history, else ~/.tether_scpi_history); :help lists its own commands\n"
                "(:timeout MS, :clear, :stb, :lock, :unlock, :quit).\n"
                "Exit status: 0 done; 1 the instrument or tetherd failed (timeout, locked by another\n"
                "client: busy, unplugged, an error --check found), one line on stderr; 2 bad usage.\n");
}

int cmd_scpi(int argc, char **argv)
{
        static const struct option opts[] = {
                { "resource", required_argument, NULL, 'r' }, { "output", required_argument, NULL, 'o' },
                { "check", no_argument, NULL, 'c' },          { "list", no_argument, NULL, 'l' },
                { "json", no_argument, NULL, 'j' },           { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        const char *resource = NULL, *output = NULL;
        bool check = false, list = false, json = false;
        int c;
        /* Options anywhere: a SCPI message never starts with '-' (its
         * arguments may, "VOLT -1", inside the one quoted operand). */
        while ((c = getopt_long(argc, argv, "r:o:cljh", opts, NULL)) != -1) {
                switch (c) {
                case 'r': resource = optarg; break;
                case 'o': output = optarg; break;
                case 'c': check = true; break;
                case 'l': list = true; break;
                case 'j': json = true; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        int rest = argc - optind;
        if ((json && !list) || (list && (rest || resource || output || check)) || rest > 2 ||
            (resource && rest > 1)) {
                usage(stderr);
                return 2;
        }
        const char *entry = NULL, *msg = NULL;
        if (rest == 2) {
                entry = argv[optind];
                msg = argv[optind + 1];
        } else if (rest == 1) {
                /* One operand is the message, unless it is a driver class or a
                 * registry path: then a shell on that instrument. */
                const char *a = argv[optind];
                if (!resource && (scpi_link_ops_for(a) || a[0] == '/' || strstr(a, ":/")))
                        entry = a;
                else
                        msg = a;
        }
        if (msg && !*msg) {
                fprintf(stderr, PROG ": an empty message\n");
                return 2;
        }
        if ((output || check) && !msg) {
                fprintf(stderr, PROG ": --output and --check go with a COMMAND\n");
                return 2;
        }
        tether_session *s = NULL;
        if (tool_open(PROG, &s) != TETHER_SUCCESS)
                return 1;
        int status;
        if (list) {
                status = cmd_list(s, json);
                tether_session_close(s);
                return status;
        }
        session_state st = { 0 };
        if (pick(s, entry, resource, &st.in) != TETHER_SUCCESS) {
                tether_session_close(s);
                return 1;
        }
        tether_ret_t r = scpi_link_open(s, st.in.id, st.in.ops, &st.link);
        if (r != TETHER_SUCCESS) {
                say_error(&st, "open", r);
                tether_session_close(s);
                return 1;
        }
        if (msg)
                status = run(&st, msg, output, check, false) == TETHER_SUCCESS ? 0 : 1;
        else
                status = shell(&st);
        scpi_link_close(&st.link);
        tether_session_close(s);
        return status;
}
