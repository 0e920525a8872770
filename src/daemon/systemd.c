/* SPDX-License-Identifier: MIT */
#include "daemon/systemd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "core/clock.h"
#include "core/log.h"

/* What a passed fd is, for a log line that says what was wrong with it. */
static void describe(int fd, char *buf, size_t size)
{
        struct stat st;
        if (fstat(fd, &st) < 0) {
                snprintf(buf, size, "not open");
                return;
        }
        if (!S_ISSOCK(st.st_mode)) {
                snprintf(buf, size, "not a socket");
                return;
        }
        int domain = 0, type = 0, listening = 0;
        socklen_t len = sizeof(int);
        getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
        len = sizeof(int);
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
        len = sizeof(int);
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
        const char *t = type == SOCK_STREAM ? "a stream (SOCK_STREAM)"
                      : type == SOCK_DGRAM ? "a datagram (SOCK_DGRAM)"
                      : type == SOCK_SEQPACKET ? "a SOCK_SEQPACKET" : "a raw or unknown";
        snprintf(buf, size, "%s %s socket%s", t, domain == AF_UNIX ? "AF_UNIX" : "non-AF_UNIX",
                 listening || type == SOCK_DGRAM ? "" : " that is not listening (with Accept=yes a unit passes connections, not the listener)");
}

tether_ret_t systemd_listener(int *ret_fd, char *path, size_t path_size)
{
        *ret_fd = -1;
        if (path_size)
                path[0] = '\0';
        const char *fds_env = getenv("LISTEN_FDS"), *pid_env = getenv("LISTEN_PID");
        if (!fds_env && !pid_env)
                return TETHER_SUCCESS;
        char fds_text[32], pid_text[32];
        snprintf(fds_text, sizeof(fds_text), "%s", fds_env ? fds_env : "(unset)");
        snprintf(pid_text, sizeof(pid_text), "%s", pid_env ? pid_env : "(unset)");
        /* Someone else's activation, inherited: not tetherd's sockets, and
         * maybe not even sockets any more. sd_listen_fds says 0 for it
         * too, so it is told apart here. */
        if (pid_env) {
                char *end = NULL;
                errno = 0;
                unsigned long long pid = strtoull(pid_env, &end, 10);
                if (!errno && end != pid_env && !*end && pid != (unsigned long long)getpid()) {
                        log_info("LISTEN_PID=%s is not tetherd's pid: its LISTEN_FDS are ignored", pid_env);
                        unsetenv("LISTEN_FDS");
                        unsetenv("LISTEN_PID");
                        unsetenv("LISTEN_FDNAMES");
                        return TETHER_SUCCESS;
                }
        }
        /* Said here rather than as sd_listen_fds's EINVAL: which one it is
         * tells the unit's author what to fix. */
        char *end = NULL;
        errno = 0;
        long count = fds_env ? strtol(fds_env, &end, 10) : -1;
        if (!fds_env || errno || end == fds_env || *end || count < 0) {
                log_err("socket activation: LISTEN_FDS=%s LISTEN_PID=%s: LISTEN_FDS is not a number of sockets",
                        fds_text, pid_text);
                return TETHER_ERR_BAD_ARGUMENT;
        }
        if (count == 0) {
                log_err("socket activation: LISTEN_FDS=0 LISTEN_PID=%s passes no socket; tetherd.socket "
                        "passes one (ListenSequentialPacket=)", pid_text);
                return TETHER_ERR_BAD_ARGUMENT;
        }
        int n = sd_listen_fds(1);
        if (n < 0) {
                if (n == -EBADF)
                        log_err("socket activation: LISTEN_FDS=%s, but fd %d is not open: no socket was passed",
                                fds_text, SD_LISTEN_FDS_START);
                else
                        log_err("socket activation: LISTEN_FDS=%s LISTEN_PID=%s: %s", fds_text, pid_text,
                                strerror(-n));
                return TETHER_ERR_BAD_ARGUMENT;
        }
        if (n == 0) { /* LISTEN_PID unset: no one said whose the fds are */
                log_err("socket activation: LISTEN_FDS=%s LISTEN_PID=%s: no socket passed to tetherd", fds_text,
                        pid_text);
                return TETHER_ERR_BAD_ARGUMENT;
        }
        if (n > 1) {
                log_err("socket activation: %d sockets passed; tetherd serves exactly one (one "
                        "ListenSequentialPacket= in tetherd.socket)", n);
                return TETHER_ERR_BAD_ARGUMENT;
        }
        int fd = SD_LISTEN_FDS_START;
        int ok = sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0);
        if (ok <= 0) {
                char what[160];
                describe(fd, what, sizeof(what));
                log_err("socket activation: fd %d is %s; tetherd needs a listening AF_UNIX SOCK_SEQPACKET "
                        "socket (ListenSequentialPacket=, Accept=no)", fd, what);
                return TETHER_ERR_BAD_ARGUMENT;
        }
        /* The main loop accepts only when epoll says so, and never blocks. */
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
                log_err("socket activation: fd %d: %s", fd, strerror(errno));
                return TETHER_ERR_IO;
        }
        struct sockaddr_un addr;
        socklen_t len = sizeof(addr);
        memset(&addr, 0, sizeof(addr));
        if (path_size && getsockname(fd, (struct sockaddr *)&addr, &len) == 0 && len > sizeof(sa_family_t)) {
                size_t n_path = len - sizeof(sa_family_t);
                if (addr.sun_path[0]) /* a path, NUL-terminated within the address or not */
                        snprintf(path, path_size, "%.*s", (int)strnlen(addr.sun_path, n_path), addr.sun_path);
                else /* abstract: shown as ss does */
                        snprintf(path, path_size, "@%.*s", (int)(n_path - 1), addr.sun_path + 1);
        }
        *ret_fd = fd;
        return TETHER_SUCCESS;
}

static bool notify_wanted(void)
{
        const char *s = getenv("NOTIFY_SOCKET");
        return s && *s;
}

void systemd_notify_ready(const char *path)
{
        if (!notify_wanted())
                return;
        int r = sd_notifyf(0, "READY=1\nSTATUS=Serving on %s; no clients", path);
        if (r < 0)
                log_warn("cannot tell the service manager tetherd is ready: %s", strerror(-r));
}

void systemd_notify_clients(size_t clients)
{
        static size_t told;
        static uint64_t told_ms;
        if (clients == told || !notify_wanted())
                return;
        uint64_t now = clock_mono_ms();
        if (told_ms && now - told_ms < 1000)
                return;
        told = clients;
        told_ms = now;
        sd_notifyf(0, "STATUS=Serving; %zu client%s connected", clients, clients == 1 ? "" : "s");
}

void systemd_notify_stopping(void)
{
        if (notify_wanted())
                sd_notify(0, "STOPPING=1\nSTATUS=Shutting down");
}
