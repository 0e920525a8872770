/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "daemon/daemon.h"
#include "daemon/server.h"

static void usage(FILE *f)
{
        fprintf(f,
                "usage: tetherd [--socket PATH] [--ready-fd FD] [--verbose]\n"
                "\n"
                "The tether driver host: registry, drivers, user clients.\n"
                "  -s, --socket PATH   listen here (default $" TETHER_SOCKET_ENV " or " TETHER_DEFAULT_SOCKET ")\n"
                "  -r, --ready-fd FD   write READY to FD once clients can connect\n"
                "  -v, --verbose       debug logging (also TETHER_LOG=debug)\n");
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "socket", required_argument, NULL, 's' },
                { "ready-fd", required_argument, NULL, 'r' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        const char *path = getenv(TETHER_SOCKET_ENV);
        int ready_fd = -1, c;
        log_init_from_env();
        while ((c = getopt_long(argc, argv, "s:r:vh", opts, NULL)) != -1) {
                switch (c) {
                case 's':
                        path = optarg;
                        break;
                case 'r':
                        ready_fd = atoi(optarg);
                        break;
                case 'v':
                        log_set_level(LOG_LVL_DEBUG);
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (!path)
                path = TETHER_DEFAULT_SOCKET;
        if (!strcmp(path, TETHER_DEFAULT_SOCKET) && mkdir("/run/tether", 0755) < 0 && errno != EEXIST) {
                log_err("cannot create /run/tether: %s", strerror(errno));
                return 1;
        }

        /* Before any thread exists, so every work loop inherits the mask and
         * SIGTERM/SIGINT reach only the main loop's signalfd. */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        if (registry_init() != TETHER_SUCCESS || service_load_drivers() != TETHER_SUCCESS) {
                log_err("tether: cannot initialise the registry");
                return 1;
        }
        /* TetherResources is the nub that drivers with no hardware of their
         * own match on, as IOResources is in I/O Kit. */
        entry *res = NULL;
        if (entry_new("TetherResources", "TetherResources", NULL, NULL, &res) != TETHER_SUCCESS)
                return 1;
        pthread_mutex_lock(&reg_lock);
        tether_ret_t r = registry_attach_locked(res, registry_root());
        if (r == TETHER_SUCCESS)
                res->state |= TETHER_ENTRY_ACTIVE;
        pthread_mutex_unlock(&reg_lock);
        if (r == TETHER_SUCCESS)
                service_match_nub(res);
        entry_unref(res);
        /* Clients that connect find every driver started (IOKitWaitQuiet). */
        registry_wait_quiet();

        int status = server_run(path, ready_fd);

        service_shutdown_all();
        server_close_sessions();
        notify_shutdown();
        registry_shutdown();
        service_unload_drivers();
        return status;
}
