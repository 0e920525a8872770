/* SPDX-License-Identifier: MIT */
/*
 * The processes tetherd starts on drivers' behalf (driver hosts,
 * simulators): unprivileged, with the environment they are given, one
 * socket at fd 3 and nothing else of tetherd's.
 *
 * The binary is opened here, by tetherd, and run from that fd (execveat):
 * the process's user then needs to be allowed to execute the file, not to
 * reach its path. A build tree under /root (mode 0700), where tests and the
 * demo run hosts from, is out of nobody's reach; the same goes for the
 * bundle libraries, which tetherd hands to hosts as fds too.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "daemon/daemon.h"

pid_t spawn_unprivileged(const char *bin, int channel, char *const argv[], char *const envp[], const spawn_user *who)
{
        /* At 5 or above: the child's dup2s onto 3 and 4 cannot clobber it. */
        int opened = open(bin, O_RDONLY | O_CLOEXEC);
        int exe = opened >= 0 ? fcntl(opened, F_DUPFD_CLOEXEC, 5) : -1;
        int saved = errno;
        if (opened >= 0)
                close(opened);
        if (exe < 0) {
                errno = saved;
                return -1;
        }
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid == 0) {
                /* Only async-signal-safe calls from here to exec. */
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
                        _exit(126);
                /* dup2 onto itself would leave close-on-exec set. */
                if (channel == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(channel, 3) < 0)
                        _exit(126);
                /* The binary at 4, closed by the exec that runs it. */
                if (dup2(exe, 4) < 0 || fcntl(4, F_SETFD, FD_CLOEXEC) < 0)
                        _exit(126);
                close_range(5, ~0u, 0); /* nothing else of tetherd's */
                if (who->drop && (setgroups(0, NULL) < 0 || setresgid(who->gid, who->gid, who->gid) < 0 ||
                                  setresuid(who->uid, who->uid, who->uid) < 0))
                        _exit(126);
                /* After the uid change, which clears it: a host or
                 * simulator must not outlive a tetherd that was killed.
                 * If tetherd died before this, no signal comes: look. */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                        _exit(126);
                prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                syscall(SYS_execveat, 4, "", argv, envp, AT_EMPTY_PATH);
                _exit(127);
        }
        saved = errno;
        close(exe);
        errno = saved;
        return pid;
}
