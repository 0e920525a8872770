/* SPDX-License-Identifier: MIT */
#include "tcp-front.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bytes.h"

int sim_tcp_listen(const char *host, uint16_t port, uint16_t *ret_port)
{
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
        if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
                return -1;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        socklen_t len = sizeof(a);
        if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4) < 0 ||
            getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        if (ret_port)
                *ret_port = ntohs(a.sin_port);
        return fd;
}

static bool send_all(int fd, const uint8_t *p, size_t n)
{
        while (n) {
                ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return false;
                p += w;
                n -= (size_t)w;
        }
        return true;
}

static void serve_client(sim_scope *s, int fd, volatile sig_atomic_t *stop)
{
        bytes in = { 0 };
        uint8_t buf[4096];
        static uint8_t out[1 << 18];
        while (!*stop) {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                if (poll(&pfd, 1, 200) <= 0)
                        continue;
                ssize_t n = recv(fd, buf, sizeof(buf), 0);
                if (n <= 0)
                        break;
                if (!bytes_append(&in, buf, (size_t)n))
                        break;
                /* Every complete line is one program message. */
                uint8_t *nl;
                while ((nl = memchr(in.p, '\n', in.len))) {
                        size_t len = (size_t)(nl - in.p);
                        sim_scope_execute(s, (const char *)in.p, len);
                        memmove(in.p, nl + 1, in.len - len - 1);
                        in.len -= len + 1;
                        /* Answers behind an acquisition wait for its sweep. */
                        unsigned wait = sim_scope_output_ready_in_ms(s);
                        struct timespec ts = { .tv_sec = wait / 1000, .tv_nsec = (long)(wait % 1000) * 1000000L };
                        if (wait)
                                nanosleep(&ts, NULL);
                        size_t m;
                        while ((m = sim_scope_output_take(s, out, sizeof(out))))
                                if (!send_all(fd, out, m))
                                        goto done;
                }
        }
done:
        free(in.p);
        sim_scope_device_clear(s); /* a new client starts with empty queues */
}

void sim_tcp_serve(sim_scope *s, int listen_fd, volatile sig_atomic_t *stop)
{
        while (!*stop) {
                struct pollfd pfd = { .fd = listen_fd, .events = POLLIN };
                if (poll(&pfd, 1, 200) <= 0)
                        continue;
                int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        continue;
                serve_client(s, fd, stop);
                close(fd);
        }
}
