/* SPDX-License-Identifier: MIT */
#include "attack.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"

const char *attack_setpriv_path(void)
{
        static char path[256];
        if (path[0])
                return path;
        const char *dirs = getenv("PATH");
        char buf[1024];
        snprintf(buf, sizeof(buf), "%s", dirs && *dirs ? dirs : "/usr/bin:/bin");
        for (char *save = NULL, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                snprintf(path, sizeof(path), "%s/setpriv", d);
                if (access(path, X_OK) == 0)
                        return path;
        }
        path[0] = '\0';
        fail_msg("setpriv (util-linux) is not on PATH");
        return NULL;
}

void attack_spawn(attack *a, const char *prog, const char *sock, uid_t uid, const char *const *args)
{
        assert_int_equal(uid == 0 || uid == ATTACK_NOBODY, 1);
        const char *argv[32];
        int n = 0;
        if (uid != 0) {
                argv[n++] = attack_setpriv_path();
                argv[n++] = "--reuid=65534";
                argv[n++] = "--regid=65534";
                argv[n++] = "--clear-groups";
        }
        argv[n++] = prog;
        argv[n++] = sock;
        for (int i = 0; n < 31 && args[i]; i++)
                argv[n++] = args[i];
        argv[n] = NULL;
        memset(a, 0, sizeof(*a));
        a->mode = args[0] ? args[0] : prog;
        int out[2], in[2];
        assert_int_equal(pipe2(out, O_CLOEXEC), 0);
        assert_int_equal(pipe2(in, O_CLOEXEC), 0);
        a->pid = fork();
        assert_true(a->pid >= 0);
        if (a->pid == 0) {
                dup2(in[0], STDIN_FILENO);
                dup2(out[1], STDOUT_FILENO);
                execv(argv[0], (char *const *)argv);
                _exit(127);
        }
        close(out[1]);
        close(in[0]);
        a->out = out[0];
        a->in = in[1];
}

bool attack_read(attack *a, int ms)
{
        struct pollfd p = { .fd = a->out, .events = POLLIN };
        if (a->out < 0 || poll(&p, 1, ms) <= 0)
                return a->out >= 0;
        ssize_t n = read(a->out, a->buf + a->len, sizeof(a->buf) - 1 - a->len);
        if (n <= 0) {
                close(a->out);
                a->out = -1;
                return false;
        }
        a->len += (size_t)n;
        a->buf[a->len] = '\0';
        return true;
}

long attack_get(const attack *a, const char *key, long def)
{
        size_t k = strlen(key);
        long v = def;
        for (const char *p = a->buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (!strncmp(p, key, k) && p[k] == ' ')
                        v = strtol(p + k + 1, NULL, 10);
        return v;
}

bool attack_said(const attack *a, const char *word)
{
        size_t k = strlen(word);
        for (const char *p = a->buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (!strncmp(p, word, k) && (p[k] == '\n' || p[k] == ' '))
                        return true;
        return false;
}

bool attack_wait_for(attack *a, const char *word, int ms)
{
        uint64_t deadline = clock_mono_ms() + (uint64_t)ms;
        while (!attack_said(a, word) && clock_mono_ms() < deadline)
                if (!attack_read(a, 50))
                        break;
        if (attack_said(a, word))
                return true;
        print_message("---- attacker %s, still no \"%s\" after %d ms ----\n%s", a->mode, word, ms, a->buf);
        return false;
}
