/* SPDX-License-Identifier: MIT */
/* Starting and stopping a real tetherd: shared by the integration tests
 * and the benchmarks, so it uses no test framework. */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

int harness_start(harness *h)
{
        const char *bin = getenv("TETHERD");
        if (!bin) {
                fprintf(stderr, "harness: set TETHERD to the tetherd binary\n");
                return -1;
        }
        strcpy(h->dir, "/tmp/tether-test-XXXXXX");
        if (!mkdtemp(h->dir))
                return -1;
        /* Reachable by the tests that drop privileges to prove a refusal. */
        chmod(h->dir, 0755);
        snprintf(h->sock, sizeof(h->sock), "%s/tetherd.sock", h->dir);
        if (h->log_to_file)
                snprintf(h->log, sizeof(h->log), "%s/tetherd.log", h->dir);
        int p[2];
        if (pipe(p) < 0)
                return -1;
        h->pid = fork();
        if (h->pid == 0) {
                close(p[0]);
                char fd[16], hello[16];
                snprintf(fd, sizeof(fd), "%d", p[1]);
                /* --no-usb: a scope plugged into this machine must not
                 * join the tests. */
                /* room for 5 fixed, 8 args, --no-usb, 2 each for --simulate and
                 * --hello-timeout, and the NULL */
                const char *argv[24] = { bin, "--socket", h->sock, "--ready-fd", fd };
                int n = 5;
                for (int i = 0; h->args && h->args[i] && i < 8; i++)
                        argv[n++] = h->args[i];
                /* An emulated bus (umockdev) exists only in the process
                 * that opens the device: a fd tetherd opened or passed is
                 * a plain file in a driver host, even one under the same
                 * preload. The driver that claims the emulated scope must
                 * run in tetherd, so these tests ask for --in-process. */
                argv[n++] = h->with_usb ? "--in-process" : "--no-usb";
                if (h->simulate) {
                        argv[n++] = "--simulate";
                        argv[n++] = h->simulate;
                }
                if (h->hello_timeout_ms > 0) {
                        snprintf(hello, sizeof(hello), "%d", h->hello_timeout_ms);
                        argv[n++] = "--hello-timeout";
                        argv[n++] = hello;
                }
                if (h->nofile > 0) {
                        rlim_t soft = h->nofile_soft > 0 ? (rlim_t)h->nofile_soft : (rlim_t)h->nofile;
                        struct rlimit rl = { soft, (rlim_t)h->nofile };
                        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                                _exit(126);
                }
                if (h->log_to_file) {
                        int log = open(h->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
                        if (log < 0 || dup2(log, STDERR_FILENO) < 0)
                                _exit(126);
                        close(log);
                }
                execv(bin, (char *const *)argv);
                _exit(127);
        }
        close(p[1]);
        struct pollfd pfd = { .fd = p[0], .events = POLLIN };
        char buf[8] = { 0 };
        int ok = poll(&pfd, 1, 20000) == 1 && read(p[0], buf, sizeof(buf) - 1) > 0 && !strncmp(buf, "READY", 5);
        close(p[0]);
        if (!ok) {
                kill(h->pid, SIGKILL);
                waitpid(h->pid, NULL, 0);
                return -1;
        }
        return 0;
}

int harness_stop(harness *h)
{
        int status = 0;
        kill(h->pid, SIGTERM);
        for (int i = 0; i < 2000; i++) {
                if (waitpid(h->pid, &status, WNOHANG) == h->pid) {
                        if (h->log_to_file)
                                unlink(h->log);
                        rmdir(h->dir);
                        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                }
                usleep(10000);
        }
        kill(h->pid, SIGKILL);
        waitpid(h->pid, &status, 0);
        return -1; /* did not stop within 20 s: a hang */
}

int harness_fd_count(const harness *h)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/fd", (int)h->pid);
        DIR *d = opendir(path);
        if (!d)
                return -1;
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d)))
                if (e->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

