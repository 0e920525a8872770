/* SPDX-License-Identifier: MIT */
#include "scpi.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SCPI_ERR_COMMAND        (-100)
#define SCPI_ERR_SYNTAX         (-102)
#define SCPI_ERR_PARAM_NOT_ALLOWED (-108)
#define SCPI_ERR_MISSING_PARAM  (-109)
#define SCPI_ERR_UNDEFINED      (-113)
#define MAX_NODES 6

/* node: the pattern's mnemonic, e.g. "CHANnel#". */
bool scpi_mnemonic(const char *w, size_t wlen, const char *node, size_t nlen, int *ret_suffix)
{
        bool has_suffix = nlen && node[nlen - 1] == '#';
        if (has_suffix)
                nlen--;
        /* Split the word into letters and a trailing number. */
        size_t letters = wlen;
        while (letters && isdigit((unsigned char)w[letters - 1]))
                letters--;
        int suffix = 1;
        if (letters != wlen) {
                if (!has_suffix || wlen - letters > 3)
                        return false;
                /* 0 is a suffix too (DIGital0); the handler decides
                 * whether its node has one by that number. */
                suffix = atoi(w + letters);
        }
        size_t short_len = 0;
        while (short_len < nlen && (isupper((unsigned char)node[short_len]) || node[short_len] == '*'))
                short_len++;
        bool is_long = letters == nlen && !strncasecmp(w, node, nlen);
        bool is_short = letters == short_len && !strncasecmp(w, node, short_len);
        if (!is_long && !is_short)
                return false;
        if (ret_suffix)
                *ret_suffix = suffix;
        return true;
}

/* One node of a pattern: its mnemonic, and whether it may be left out. */
typedef struct pattern_node {
        const char *p;
        size_t len;
        bool optional;
} pattern_node;

/* "[SENSe:]VOLTage[:DC]:RANGe" -> SENSe (optional), VOLTage, DC (optional),
 * RANGe. -1 when there are more than max. */
static int split_pattern(const char *pattern, pattern_node *out, int max)
{
        int n = 0;
        bool optional = false;
        for (const char *p = pattern; *p;) {
                if (*p == '[' || *p == ']' || *p == ':') {
                        if (*p != ':')
                                optional = *p == '[';
                        p++;
                        continue;
                }
                const char *start = p;
                while (*p && *p != ':' && *p != '[' && *p != ']')
                        p++;
                if (n == max)
                        return -1;
                out[n++] = (pattern_node){ start, (size_t)(p - start), optional };
        }
        return n;
}

/* Nodes i.. of the header against pattern nodes j..; suffixes from slot
 * s on. An optional node left out still takes its suffix slot (as 1), so
 * a handler finds each suffix where the pattern puts it. */
static bool match_from(const char *const *nodes, const size_t *lens, int n, int i, const pattern_node *pn, int np,
                       int j, int *suffix, int s)
{
        if (j == np)
                return i == n;
        bool numbered = pn[j].len && pn[j].p[pn[j].len - 1] == '#';
        int sfx = 1;
        if (i < n && scpi_mnemonic(nodes[i], lens[i], pn[j].p, pn[j].len, &sfx)) {
                if (numbered && s < 4)
                        suffix[s] = sfx;
                if (match_from(nodes, lens, n, i + 1, pn, np, j + 1, suffix, s + (numbered && s < 4)))
                        return true;
        }
        if (!pn[j].optional)
                return false;
        if (numbered && s < 4)
                suffix[s] = 1;
        return match_from(nodes, lens, n, i, pn, np, j + 1, suffix, s + (numbered && s < 4));
}

/* Does header (nodes) match pattern? Fills suffixes. */
static bool match_pattern(const char *const *nodes, const size_t *lens, int n, const char *pattern, int *suffix)
{
        pattern_node pn[MAX_NODES + 2];
        int np = split_pattern(pattern, pn, MAX_NODES + 2);
        return np > 0 && match_from(nodes, lens, n, 0, pn, np, 0, suffix, 0);
}

static char *trim(char *s)
{
        while (isspace((unsigned char)*s))
                s++;
        size_t n = strlen(s);
        while (n && isspace((unsigned char)s[n - 1]))
                s[--n] = '\0';
        return s;
}

/* Split one program message unit's parameters at top-level commas. */
static int split_args(char *s, const char **args)
{
        int n = 0;
        s = trim(s);
        if (!*s)
                return 0;
        bool quoted = false;
        char q = 0;
        char *start = s;
        for (char *p = s;; p++) {
                if (quoted) {
                        if (*p == q)
                                quoted = false;
                        else if (!*p)
                                return -1; /* unterminated string */
                        continue;
                }
                if (*p == '"' || *p == '\'') {
                        quoted = true;
                        q = *p;
                } else if (*p == ',' || !*p) {
                        bool end = !*p;
                        *p = '\0';
                        if (n == SCPI_MAX_ARGS)
                                return -1;
                        args[n++] = trim(start);
                        if (!*args[n - 1])
                                return -1; /* an empty parameter */
                        if (end)
                                break;
                        start = p + 1;
                }
        }
        return n;
}

/* Execute one unit, e.g. ":CHAN1:SCAL 0.5". path/path_len/npath carry the
 * subsystem context between units. */
static void unit(const scpi_command *table, void *dev, scpi_error_fn on_error, char *u, char path[MAX_NODES][32],
                 int *npath)
{
        u = trim(u);
        if (!*u)
                return;
        char *sp = u;
        while (*sp && !isspace((unsigned char)*sp))
                sp++;
        char *params = sp;
        if (*sp) {
                *sp = '\0';
                params = sp + 1;
        }
        char *header = u;
        scpi_call c = { 0 };
        size_t hl = strlen(header);
        if (hl && header[hl - 1] == '?') {
                c.query = true;
                header[--hl] = '\0';
        }
        const char *nodes[MAX_NODES + 1];
        size_t lens[MAX_NODES + 1];
        int n = 0;
        bool common = header[0] == '*';
        if (common) {
                nodes[n] = header;
                lens[n++] = hl;
        } else {
                bool absolute = header[0] == ':';
                if (!absolute) {
                        for (int i = 0; i < *npath; i++) {
                                nodes[n] = path[i];
                                lens[n++] = strlen(path[i]);
                        }
                }
                char *p = header + absolute;
                while (*p) {
                        char *colon = strchr(p, ':');
                        size_t l = colon ? (size_t)(colon - p) : strlen(p);
                        if (l == 0 || l >= 32 || n == MAX_NODES) {
                                on_error(dev, SCPI_ERR_SYNTAX);
                                return;
                        }
                        nodes[n] = p;
                        lens[n++] = l;
                        p += l;
                        if (*p == ':')
                                p++;
                }
        }
        if (n == 0) {
                on_error(dev, SCPI_ERR_SYNTAX);
                return;
        }
        const scpi_command *found = NULL;
        for (const scpi_command *cmd = table; cmd->pattern && !found; cmd++)
                if (match_pattern(nodes, lens, n, cmd->pattern, c.suffix))
                        found = cmd;
        /* The subsystem for the next unit: this header minus its leaf. */
        if (!common) {
                char next[MAX_NODES][32];
                int nn = 0;
                for (int i = 0; i < n - 1; i++, nn++) {
                        memcpy(next[nn], nodes[i], lens[i]);
                        next[nn][lens[i]] = '\0';
                }
                memcpy(path, next, sizeof(next));
                *npath = nn;
        }
        if (!found) {
                on_error(dev, SCPI_ERR_UNDEFINED);
                return;
        }
        c.n_args = split_args(params, c.args);
        if (c.n_args < 0) {
                on_error(dev, SCPI_ERR_SYNTAX);
                return;
        }
        c.arg = found->arg;
        scpi_handler h = c.query ? found->query : found->set;
        if (!h) {
                on_error(dev, SCPI_ERR_UNDEFINED);
                return;
        }
        int err = h(dev, &c);
        if (err)
                on_error(dev, err);
}

void scpi_execute(const scpi_command *table, void *dev, scpi_error_fn on_error, const char *msg, size_t len)
{
        char *copy = malloc(len + 1);
        if (!copy)
                return;
        memcpy(copy, msg, len);
        copy[len] = '\0';
        char path[MAX_NODES][32];
        int npath = 0;
        /* Split at ';' and newlines outside quotes and outside a block. */
        char *start = copy;
        bool quoted = false;
        char q = 0;
        for (char *p = copy;; p++) {
                if (quoted) {
                        if (*p == q)
                                quoted = false;
                        if (*p)
                                continue;
                }
                if (*p == '"' || *p == '\'') {
                        quoted = true;
                        q = *p;
                        continue;
                }
                if (*p == ';' || *p == '\n' || !*p) {
                        bool end = !*p;
                        bool newline = *p == '\n';
                        *p = '\0';
                        unit(table, dev, on_error, start, path, &npath);
                        if (newline)
                                npath = 0; /* a new program message starts at the root */
                        if (end)
                                break;
                        start = p + 1;
                }
        }
        free(copy);
}

bool scpi_number(const char *arg, double *ret)
{
        if (!arg || !*arg)
                return false;
        char *end = NULL;
        double v = strtod(arg, &end);
        if (end == arg || !isfinite(v))
                return false;
        while (isspace((unsigned char)*end))
                end++;
        /* SI multiplier, then an optional unit (V, S, HZ, OHM, A, PCT). */
        static const struct {
                const char *prefix;
                double mul;
        } mult[] = { { "MA", 1e6 }, { "G", 1e9 }, { "K", 1e3 }, { "M", 1e-3 }, { "U", 1e-6 },
                     { "N", 1e-9 }, { "P", 1e-12 } };
        static const char *units[] = { "V", "S", "HZ", "OHM", "A", "" };
        for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
                if (!strcasecmp(end, units[u])) {
                        *ret = v;
                        return true;
                }
        }
        for (size_t m = 0; m < sizeof(mult) / sizeof(mult[0]); m++) {
                size_t pl = strlen(mult[m].prefix);
                if (strncasecmp(end, mult[m].prefix, pl))
                        continue;
                for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
                        if (!strcasecmp(end + pl, units[u])) {
                                /* "MHZ" is mega-hertz, "MV"/"MS" milli: the SCPI rule. */
                                double mul = (!strcasecmp(mult[m].prefix, "M") && !strcasecmp(units[u], "HZ")) ? 1e6
                                                                                                          : mult[m].mul;
                                *ret = v * mul;
                                return true;
                        }
                }
        }
        return false;
}

bool scpi_keyword(const char *arg, const char *pattern)
{
        return arg && scpi_mnemonic(arg, strlen(arg), pattern, strlen(pattern), NULL);
}

bool scpi_bool(const char *arg, bool *ret)
{
        if (!arg)
                return false;
        if (!strcasecmp(arg, "ON") || !strcmp(arg, "1")) {
                *ret = true;
                return true;
        }
        if (!strcasecmp(arg, "OFF") || !strcmp(arg, "0")) {
                *ret = false;
                return true;
        }
        return false;
}
