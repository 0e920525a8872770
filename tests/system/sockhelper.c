/* SPDX-License-Identifier: MIT */
/*
 * The other end of what tetherd says to systemd, for the system tests:
 *
 *   sockhelper notify PATH      a NOTIFY_SOCKET: bind a datagram socket at
 *                               PATH, print each message (sd_notify's
 *                               "KEY=VALUE" lines) and a line "--" after it
 *   sockhelper journal PATH     a journal socket (/run/systemd/journal/socket,
 *                               in a mount namespace of the test's): print
 *                               each native entry's fields, one per line,
 *                               and "--" after it
 *   sockhelper poke stream|dgram|seqpacket PATH
 *                               connect to (or send a datagram to) PATH and
 *                               hold the connection for a second: what makes
 *                               systemd-socket-activate start tetherd on a
 *                               socket of the wrong type
 *
 * notify and journal run until killed, flushing every line.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int unix_socket(int type, const char *path, struct sockaddr_un *addr)
{
        memset(addr, 0, sizeof(*addr));
        addr->sun_family = AF_UNIX;
        if (strlen(path) >= sizeof(addr->sun_path)) {
                fprintf(stderr, "sockhelper: path too long: %s\n", path);
                exit(2);
        }
        strcpy(addr->sun_path, path);
        int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                perror("sockhelper: socket");
                exit(2);
        }
        return fd;
}

static int bound(const char *path)
{
        struct sockaddr_un addr;
        int fd = unix_socket(SOCK_DGRAM, path, &addr);
        unlink(path);
        if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
                perror("sockhelper: bind");
                exit(2);
        }
        /* Whoever sends may not be root (a driver host). */
        chmod(path, 0666);
        return fd;
}

/* One native journal entry: "KEY=VALUE\n", or "KEY\n" + 64-bit LE size +
 * the value + "\n" for a value that may hold a newline. */
static void print_entry(const uint8_t *p, size_t n)
{
        size_t i = 0;
        while (i < n) {
                const uint8_t *nl = memchr(p + i, '\n', n - i);
                const uint8_t *eq = memchr(p + i, '=', n - i);
                if (!nl)
                        break;
                if (eq && eq < nl) {
                        fwrite(p + i, 1, (size_t)(nl - (p + i)), stdout);
                        putchar('\n');
                        i = (size_t)(nl - p) + 1;
                        continue;
                }
                size_t key_len = (size_t)(nl - (p + i));
                size_t at = (size_t)(nl - p) + 1;
                if (n - at < 8)
                        break;
                uint64_t len = 0;
                for (int b = 7; b >= 0; b--)
                        len = len << 8 | p[at + (size_t)b];
                at += 8;
                if (len > n - at)
                        break;
                fwrite(p + i, 1, key_len, stdout);
                putchar('=');
                for (uint64_t k = 0; k < len; k++)
                        putchar(p[at + k] == '\n' ? ' ' : p[at + k]);
                putchar('\n');
                i = at + (size_t)len + 1;
        }
        puts("--");
        fflush(stdout);
}

static int serve(const char *path, int journal)
{
        int fd = bound(path);
        static uint8_t buf[1 << 17];
        for (;;) {
                ssize_t n = recv(fd, buf, sizeof(buf), 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        perror("sockhelper: recv");
                        return 1;
                }
                if (journal) {
                        print_entry(buf, (size_t)n);
                } else {
                        fwrite(buf, 1, (size_t)n, stdout);
                        if (n && buf[n - 1] != '\n')
                                putchar('\n');
                        puts("--");
                        fflush(stdout);
                }
        }
}

static int poke(const char *kind, const char *path)
{
        int type = !strcmp(kind, "stream") ? SOCK_STREAM : !strcmp(kind, "dgram") ? SOCK_DGRAM
                 : !strcmp(kind, "seqpacket")                                   ? SOCK_SEQPACKET
                                                                                : -1;
        if (type < 0) {
                fprintf(stderr, "sockhelper: poke stream|dgram|seqpacket PATH\n");
                return 2;
        }
        struct sockaddr_un addr;
        int fd = unix_socket(type, path, &addr);
        if (type == SOCK_DGRAM) {
                if (sendto(fd, "x", 1, 0, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
                        perror("sockhelper: sendto");
                        return 1;
                }
        } else if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
                perror("sockhelper: connect");
                return 1;
        }
        sleep(1);
        close(fd);
        return 0;
}

int main(int argc, char **argv)
{
        if (argc == 3 && !strcmp(argv[1], "notify"))
                return serve(argv[2], 0);
        if (argc == 3 && !strcmp(argv[1], "journal"))
                return serve(argv[2], 1);
        if (argc == 4 && !strcmp(argv[1], "poke"))
                return poke(argv[2], argv[3]);
        fprintf(stderr, "usage: sockhelper notify PATH | journal PATH | poke stream|dgram|seqpacket PATH\n");
        return 2;
}
