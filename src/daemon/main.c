/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "core/log-journal.h"
#include "core/log.h"
#include "daemon/daemon.h"
#include "daemon/server.h"
#include "daemon/systemd.h"

static void usage(FILE *f)
{
        fprintf(f,
                "usage: tetherd [--socket PATH] [--ready-fd FD] [--simulate NAME[:SERIAL]]... [--verbose]\n"
                "\n"
                "The tether daemon: registry, matching, driver bundles and their hosts.\n"
                "Every driver runs in a driver host of its own (tether-driverhost); tetherd loads no driver code\n"
                "unless --in-process.\n"
                "  -s, --socket PATH     listen here (default $" TETHER_SOCKET_ENV " or " TETHER_DEFAULT_SOCKET "), unless\n"
                "                        systemd passed a socket (tetherd.socket: LISTEN_FDS)\n"
                "  -r, --ready-fd FD     write READY to FD once clients can connect\n"
                "  -S, --simulate NAME   plug in a simulated instrument, optionally with :SERIAL; NAME is one of\n"
                "%s\n"
                "  -L, --lan HOST:PORT   an instrument serving raw SCPI on TCP (e.g. a DSO-X on port 5025)\n"
                "      --no-usb          do not look for USBTMC instruments on the USB bus (at start-up or hotplugged)\n"
                "      --hello-timeout MS  close a client that has not said HELLO within MS (default %d)\n"
                "  -D, --drivers DIR     load the driver bundles in DIR too (also $" TETHER_DRIVERS_ENV ", colon-separated)\n"
                "      --no-system-drivers  do not load the bundles in " TETHER_SYSTEM_DRIVERS "\n"
                "      --in-process      load each bundle's library into tetherd and run its drivers here, not in\n"
                "                        hosts: for a debugger and emulated-USB tests; a library that cannot be\n"
                "                        loaded refuses its bundle (also TETHER_IN_PROCESS=1)\n"
                "      --isolate         drivers in hosts: the default now, a no-op kept for scripts (also TETHER_ISOLATE=1)\n"
                "      --watchdog MS     kill a driver host whose work loop has not answered for MS (default %d)\n"
                "      --admin-group NAME  its members are administrators for drivers, as root is (default %s)\n"
                "  -v, --verbose         debug logging (also TETHER_LOG=debug)\n"
                "\n"
                "Under systemd (docs/systemd.md): it serves the socket tetherd.socket passes, says READY=1 and\n"
                "STATUS= through sd_notify, and logs to the journal when its stderr is the journal.\n",
                simulator_names("                        ", 100), TETHERD_HELLO_TIMEOUT_MS, TETHERD_WATCHDOG_MS, TETHERD_ADMIN_GROUP);
}

/* Attach a nub under parent and let drivers match it. */
static tether_ret_t publish(entry *nub, entry *parent)
{
        pthread_mutex_lock(&reg_lock);
        tether_ret_t r = registry_attach_locked(nub, parent);
        if (r == TETHER_SUCCESS)
                nub->state |= TETHER_ENTRY_ACTIVE;
        pthread_mutex_unlock(&reg_lock);
        if (r == TETHER_SUCCESS)
                service_match_nub(nub);
        return r;
}

static tether_ret_t publish_new(entry *parent, const char *class_name, const char *name, const char *loc,
                                tether_value *props, const simulator *sim)
{
        entry *e = NULL;
        tether_ret_t r = entry_new(class_name, name, loc, props, &e);
        if (r == TETHER_SUCCESS) {
                e->simulator = sim; /* before drivers can see it */
                r = publish(e, parent);
        }
        entry_unref(e);
        return r;
}

tether_ret_t nub_publish_new(entry *parent, const char *class_name, const char *name, const char *loc,
                             tether_value *props)
{
        return publish_new(parent, class_name, name, loc, props, NULL);
}

tether_ret_t nub_publish_simulated(entry *parent, const char *name, const char *loc, tether_value *props,
                                   const simulator *sim)
{
        return publish_new(parent, "TetherUSBDevice", name, loc, props, sim);
}

/* A LAN instrument: a nub with its address; drivers ask it who it is. */
static tether_ret_t lan_device(entry *lan, const char *spec, unsigned index)
{
        char address[256] = "";
        unsigned port = 0;
        if (sscanf(spec, "%255[^:]:%u", address, &port) != 2 || !port || port > 65535) {
                log_err("--lan: expected HOST:PORT, got '%s'", spec);
                return TETHER_ERR_BAD_ARGUMENT;
        }
        tether_value *p = NULL;
        tether_ret_t r = tether_value_new_dict(&p);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_string(p, "Address", address);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_uint(p, "Port", port, 16);
        char loc[16];
        snprintf(loc, sizeof(loc), "lan%u", index);
        if (r == TETHER_SUCCESS)
                r = nub_publish_new(lan, "TetherLANDevice", "LANInstrument", loc, p);
        tether_value_unref(p);
        return r;
}

tether_ret_t usb_identity(uint16_t vendor, uint16_t product, uint8_t protocol, uint8_t interface,
                          const char *serial, tether_value **ret)
{
        tether_value *p = NULL;
        tether_ret_t r = tether_value_new_dict(&p);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_uint(p, "idVendor", vendor, 16);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_uint(p, "idProduct", product, 16);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_uint(p, "bInterfaceClass", 0xfe, 8);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_uint(p, "bInterfaceSubClass", 0x03, 8);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_uint(p, "bInterfaceProtocol", protocol, 8);
        if (r == TETHER_SUCCESS)
                r = tether_value_dict_set_uint(p, "bInterfaceNumber", interface, 8);
        if (r == TETHER_SUCCESS && serial && *serial)
                r = tether_value_dict_set_string(p, "USB Serial Number", serial);
        if (r != TETHER_SUCCESS)
                p = tether_value_unref(p);
        *ret = p;
        return r;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "socket", required_argument, NULL, 's' },
                { "ready-fd", required_argument, NULL, 'r' },
                { "simulate", required_argument, NULL, 'S' },
                { "lan", required_argument, NULL, 'L' },
                { "no-usb", no_argument, NULL, 'U' },
                { "hello-timeout", required_argument, NULL, 'H' },
                { "drivers", required_argument, NULL, 'D' },
                { "no-system-drivers", no_argument, NULL, 'N' },
                { "isolate", no_argument, NULL, 'I' },
                { "in-process", no_argument, NULL, 'P' },
                { "watchdog", required_argument, NULL, 'W' },
                { "admin-group", required_argument, NULL, 'A' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        const char *path = getenv(TETHER_SOCKET_ENV);
        const char *sims[8], *lans[8], *driver_dirs[16];
        unsigned n_sims = 0, n_lans = 0, n_driver_dirs = 0;
        bool system_drivers = true;
        bool usb_scan = true;
        unsigned hello_ms = 0;
        int ready_fd = -1, c;
        log_init_from_env();
        /* First: every line, the options' complaints included, is an entry
         * with its priority when tetherd runs as a service. */
        log_journal_use("tetherd");
        while ((c = getopt_long(argc, argv, "s:r:S:L:D:vh", opts, NULL)) != -1) {
                switch (c) {
                case 's':
                        path = optarg;
                        break;
                case 'r':
                        ready_fd = atoi(optarg);
                        break;
                case 'S':
                        if (n_sims == sizeof(sims) / sizeof(sims[0])) {
                                log_err("--simulate: at most %zu instruments", sizeof(sims) / sizeof(sims[0]));
                                return 2;
                        }
                        sims[n_sims++] = optarg;
                        break;
                case 'L':
                        if (n_lans == sizeof(lans) / sizeof(lans[0])) {
                                log_err("--lan: at most %zu instruments", sizeof(lans) / sizeof(lans[0]));
                                return 2;
                        }
                        lans[n_lans++] = optarg;
                        break;
                case 'U':
                        usb_scan = false;
                        break;
                case 'D':
                        if (n_driver_dirs == sizeof(driver_dirs) / sizeof(driver_dirs[0])) {
                                log_err("--drivers: at most %zu folders", sizeof(driver_dirs) / sizeof(driver_dirs[0]));
                                return 2;
                        }
                        driver_dirs[n_driver_dirs++] = optarg;
                        break;
                case 'N':
                        system_drivers = false;
                        break;
                case 'I':
                        /* What every driver gets now; nothing to do. */
                        break;
                case 'P':
                        hosts_in_process = true;
                        break;
                case 'W': {
                        char *end = NULL;
                        unsigned long ms = strtoul(optarg, &end, 10);
                        if (!*optarg || *end || ms < 100 || ms > 600000) {
                                log_err("--watchdog: expected 100..600000 ms, got '%s'", optarg);
                                return 2;
                        }
                        hosts_watchdog_ms = (unsigned)ms;
                        break;
                }
                case 'A':
                        if (!*optarg) {
                                log_err("--admin-group: expected a group name");
                                return 2;
                        }
                        tetherd_admin_group = optarg;
                        break;
                case 'H': {
                        char *end = NULL;
                        unsigned long ms = strtoul(optarg, &end, 10);
                        if (!*optarg || *end || !ms || ms > 600000) {
                                log_err("--hello-timeout: expected 1..600000 ms, got '%s'", optarg);
                                return 2;
                        }
                        hello_ms = (unsigned)ms;
                        break;
                }
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
        /* Asked for by name, it should exist: a typo would leave only root
         * an administrator, silently. (The default group is optional.) */
        if (strcmp(tetherd_admin_group, TETHERD_ADMIN_GROUP) && !getgrnam(tetherd_admin_group))
                log_warn("--admin-group: no group %s: only root is an administrator", tetherd_admin_group);
        /* TETHER_ISOLATE is not read: like --isolate, it asks for the default. */
        if (getenv("TETHER_IN_PROCESS") && !strcmp(getenv("TETHER_IN_PROCESS"), "1"))
                hosts_in_process = true;
        if (hosts_in_process)
                log_info("--in-process: bundles' libraries are loaded into tetherd and their drivers run here");
        /* Socket activation first: a socket passed that cannot be served
         * is a failure now, before any driver starts. */
        int listen_fd = -1;
        char activated[sizeof(((struct sockaddr_un *)0)->sun_path) + 2];
        if (systemd_listener(&listen_fd, activated, sizeof(activated)) != TETHER_SUCCESS)
                return 1;
        if (listen_fd >= 0) {
                if (!activated[0])
                        snprintf(activated, sizeof(activated), "the socket systemd passed");
                if (path && strcmp(path, activated))
                        log_warn("serving the socket systemd passed (%s), not %s", activated, path);
                path = activated;
        }
        if (!path)
                path = TETHER_DEFAULT_SOCKET;
        if (listen_fd < 0 && !strcmp(path, TETHER_DEFAULT_SOCKET) && mkdir("/run/tether", 0755) < 0 &&
            errno != EEXIST) {
                log_err("cannot create /run/tether: %s", strerror(errno));
                return 1;
        }

        /* Before anything opens fds: the limit sizes the clients' fd pool. */
        budget_raise_fd_limit();

        /* Before any thread exists, so every work loop inherits the mask and
         * SIGTERM/SIGINT reach only the main loop's signalfd. */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        if (registry_init() != TETHER_SUCCESS) {
                log_err("tether: cannot initialise the registry");
                return 1;
        }
        /* Bundles before any nub, so the first publication already matches.
         * Folders named explicitly first: a bundle id found again in the
         * system folder is refused there, so a developer's build wins over
         * what is installed. */
        for (unsigned i = 0; i < n_driver_dirs; i++)
                bundles_load_dir(driver_dirs[i], true);
        const char *env_dirs = getenv(TETHER_DRIVERS_ENV);
        if (env_dirs && *env_dirs) {
                char *copy = strdup(env_dirs), *save = NULL;
                for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save))
                        bundles_load_dir(d, true);
                free(copy);
        }
        if (system_drivers)
                bundles_load_dir(TETHER_SYSTEM_DRIVERS, false);
        /* TetherResources is the nub that drivers with no hardware of their
         * own match on, as IOResources is in I/O Kit. */
        entry *res = NULL, *usb = NULL;
        if (entry_new("TetherResources", "TetherResources", NULL, NULL, &res) != TETHER_SUCCESS ||
            publish(res, registry_root()) != TETHER_SUCCESS)
                return 1;
        entry_unref(res);
        /* The USB bus: libusb's instruments (found now and hotplugged
         * later) and simulated ones. */
        if (entry_new("TetherUSBBus", "TetherUSB", NULL, NULL, &usb) != TETHER_SUCCESS ||
            publish(usb, registry_root()) != TETHER_SUCCESS)
                return 1;
        if (usb_scan)
                usb_bus_start(usb);
        for (unsigned i = 0; i < n_sims; i++) {
                if (simulate_publish(usb, sims[i], i) != TETHER_SUCCESS) {
                        usb_bus_stop();
                        entry_unref(usb);
                        return 2;
                }
        }
        entry_unref(usb);
        if (n_lans) {
                entry *lan = NULL;
                if (entry_new("TetherLANBus", "TetherLAN", NULL, NULL, &lan) != TETHER_SUCCESS ||
                    publish(lan, registry_root()) != TETHER_SUCCESS) {
                        usb_bus_stop();
                        return 1;
                }
                for (unsigned i = 0; i < n_lans; i++) {
                        if (lan_device(lan, lans[i], i) != TETHER_SUCCESS) {
                                usb_bus_stop();
                                entry_unref(lan);
                                return 2;
                        }
                }
                entry_unref(lan);
        }
        int status = server_run(listen_fd, path, ready_fd, hello_ms);

        /* No hotplug publishing while the services go down. */
        usb_bus_stop();
        service_shutdown_all();
        server_close_sessions();
        notify_shutdown();
        probe_shutdown();
        registry_shutdown();
        bundles_shutdown();
        return status;
}
