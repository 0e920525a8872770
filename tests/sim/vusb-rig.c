/* SPDX-License-Identifier: MIT */
#include "vusb-rig.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "vusb-server.h"

char answer[4096];

static void *serve(void *arg)
{
        vusb_rig *r = arg;
        r->served = sim_vusb_serve(r->server_fd, r->dev, r->serial);
        return NULL;
}

void vusb_rig_serve(vusb_rig *r, sim_usbtmc *dev, const char *serial)
{
        memset(r, 0, sizeof(*r));
        r->dev = dev;
        r->serial = serial;
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        r->client_fd = sv[0];
        r->server_fd = sv[1];
        r->served = 99; /* not returned yet */
        assert_int_equal(pthread_create(&r->thread, NULL, serve, r), 0);
}

void vusb_rig_attach(vusb_rig *r)
{
        assert_int_equal(usbtmc_vusb_open(r->client_fd, &r->v), TETHER_SUCCESS);
        r->client_fd = -1;
        usbtmc_vusb_attach(&r->t, r->v);
}

void vusb_rig_stop(vusb_rig *r)
{
        usbtmc_vusb_close(r->v);
        if (r->client_fd >= 0)
                close(r->client_fd);
        pthread_join(r->thread, NULL);
        assert_int_equal(r->served, 0);
        close(r->server_fd);
}

pid_t sim_spawn(const char *env, const char *const *args, int *ret_fd)
{
        const char *path = getenv(env);
        assert_non_null(path);
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                /* dup2 clears close-on-exec on the copy. */
                if (dup2(sv[1], 3) != 3)
                        _exit(127);
                char *argv[16] = { (char *)path, "--usb-fd", "3" };
                int n = 3;
                for (int i = 0; args && args[i] && n < 15; i++)
                        argv[n++] = (char *)args[i];
                execv(path, argv);
                _exit(127);
        }
        close(sv[1]);
        *ret_fd = sv[0];
        return pid;
}

int sim_wait_exit(pid_t pid, unsigned ms)
{
        for (unsigned i = 0; i < ms / 10; i++) {
                int st;
                if (waitpid(pid, &st, WNOHANG) == pid)
                        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                struct timespec ts = { 0, 10000000 };
                nanosleep(&ts, NULL);
        }
        return -1;
}

double ms_now(void)
{
        return (double)clock_mono_ns() / 1e6;
}

tether_ret_t query(usbtmc *t, const char *cmd)
{
        tether_ret_t e = usbtmc_write(t, cmd, strlen(cmd));
        size_t n = 0;
        memset(answer, 0, sizeof(answer));
        if (e == TETHER_SUCCESS)
                e = usbtmc_read(t, answer, sizeof(answer) - 1, &n);
        return e;
}
