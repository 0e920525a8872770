/* SPDX-License-Identifier: MIT */
/*
 * The device behind a nub, opened by tetherd for the driver matched to it
 * (tether_service_open_provider_device). A driver opens no device itself:
 * its host runs unprivileged, with no /dev/bus/usb, and the driver runs the
 * same code whatever stands behind its nub.
 *
 * - A USB device tetherd found: the node opened here, still root, with the
 *   nub's interface taken from any kernel driver and claimed on the file,
 *   then the file's privileges dropped to that interface (usbfs.h); the
 *   driver wraps it with libusb. When the driver is gone, the interface is
 *   given back to the kernel.
 * - A simulated one (--simulate): a simulator process of its own (the
 *   program simulate.c's table names for the nub, e.g. tether-sim-scope
 *   --usb-fd 3 --serial S --model dsox2002a, unprivileged) serving the
 *   device's USB side over a socket pair (docs/vusb.md); the driver gets
 *   the other end. A process, not a thread of tetherd's: the simulator
 *   parses what an untrusted driver sends it.
 *
 * Only nubs tetherd published itself stand for a device: a driver may
 * publish nubs with any properties ("USB Bus" and "USB Address" of
 * someone's keyboard), and must not get tetherd to open them.
 */
#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/usbdevice_fs.h>

#include "daemon/daemon.h"
#include "daemon/manifest.h"
#include "usbtmc/usbfs.h"

/* What a service holds through tetherd, to be given back after it. */
typedef struct device_claim {
        uint8_t bus, address;
        uint32_t interfaces; /* bit n: interface n */
} device_claim;

typedef struct sim_proc {
        pid_t pid;
        uint64_t service_id;
        struct sim_proc *next;
} sim_proc;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static sim_proc *sims;
static unsigned n_sims;

/* What tetherd knows of the nub: its own record, never the driver's word. */
typedef struct nub_facts {
        bool ours, usb;
        const simulator *sim; /* the nub's record, not its properties */
        uint64_t bus, address, interface;
        char serial[64];
} nub_facts;

static uint64_t uint_prop(const tether_value *props, const char *key, bool *found)
{
        tether_value *v = NULL;
        uint64_t u = 0;
        if (tether_value_dict_get(props, key, &v) == TETHER_SUCCESS && tether_value_get_uint(v, &u) == TETHER_SUCCESS)
                *found = true;
        return u;
}

static tether_ret_t nub_of(tether_service *s, nub_facts *f)
{
        memset(f, 0, sizeof(*f));
        pthread_mutex_lock(&reg_lock);
        entry *nub = s->entry ? s->entry->parent : NULL;
        if (!nub || s->terminated) {
                pthread_mutex_unlock(&reg_lock);
                return TETHER_ERR_NOT_ATTACHED;
        }
        f->ours = nub->publisher_id == 0 && !strcmp(nub->class_name, "TetherUSBDevice");
        f->sim = nub->simulator;
        bool has_bus = false, has_address = false, has_interface = false;
        f->bus = uint_prop(nub->props, "USB Bus", &has_bus);
        f->address = uint_prop(nub->props, "USB Address", &has_address);
        f->interface = uint_prop(nub->props, "bInterfaceNumber", &has_interface);
        f->usb = has_bus && has_address && has_interface;
        const char *sn = tether_value_dict_string(nub->props, "USB Serial Number");
        snprintf(f->serial, sizeof(f->serial), "%s", sn ? sn : "");
        pthread_mutex_unlock(&reg_lock);
        return TETHER_SUCCESS;
}

/* ---- USB ---- */

static tether_ret_t open_usb(tether_service *s, const nub_facts *f, int *ret_fd)
{
        if (f->bus > 255 || f->address > 255 || f->interface > 31)
                return TETHER_ERR_BAD_ARGUMENT;
        device_claim want = { .bus = (uint8_t)f->bus, .address = (uint8_t)f->address, .interfaces = 1u << f->interface };
        /* Opened again (the driver recovering): the kernel refuses while
         * the driver's old file still claims the interface, so a driver
         * holds one file at a time. */
        int fd = -1;
        tether_ret_t r = usbfs_open_for_driver(want.bus, want.address, want.interfaces, &fd);
        uint32_t caps = 0;
        if (r == TETHER_SUCCESS && usbfs_capabilities(fd, &caps) == TETHER_SUCCESS &&
            !(caps & USBDEVFS_CAP_DROP_PRIVILEGES))
                /* USBDEVFS_CAP_DROP_PRIVILEGES missing (before 4.6): the
                 * fd could reach the device's other interfaces. Said once
                 * per open, as the device's owner should know. */
                log_warn("tether: USB %03u/%03u: this kernel cannot restrict a usbfs fd to one interface",
                         want.bus, want.address);
        if (r != TETHER_SUCCESS)
                return r;
        pthread_mutex_lock(&lock);
        device_claim *c = s->device ? s->device : malloc(sizeof(*c));
        if (c) {
                *c = want;
                s->device = c;
        }
        pthread_mutex_unlock(&lock);
        if (!c) {
                close(fd);
                return TETHER_ERR_NO_MEMORY;
        }
        *ret_fd = fd;
        return TETHER_SUCCESS;
}

/* ---- simulated ---- */

static bool sim_user(uid_t *uid, gid_t *gid)
{
        const char *names[] = { MANIFEST_DEFAULT_USER, MANIFEST_FALLBACK_USER };
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                struct passwd *pw = getpwnam(names[i]);
                if (pw && pw->pw_uid != 0) {
                        *uid = pw->pw_uid;
                        *gid = pw->pw_gid;
                        return true;
                }
        }
        return false;
}

/* Simulators that exited, waited for; the caller holds lock. */
static void reap_locked(void)
{
        for (sim_proc **pp = &sims; *pp;) {
                sim_proc *p = *pp;
                if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
                        *pp = p->next;
                        n_sims--;
                        free(p);
                } else {
                        pp = &p->next;
                }
        }
}

static tether_ret_t open_simulated(tether_service *s, const nub_facts *f, int *ret_fd)
{
        uid_t uid = 0;
        gid_t gid = 0;
        bool drop = geteuid() == 0;
        if (drop && !sim_user(&uid, &gid))
                return TETHER_ERR_NOT_PERMITTED;
        pthread_mutex_lock(&lock);
        reap_locked();
        unsigned mine = 0;
        for (sim_proc *p = sims; p; p = p->next)
                mine += p->service_id == s->id;
        /* A driver that reopens its device after an error may overlap the
         * old simulator's exit by a moment; more is a driver spawning
         * processes through tetherd. */
        tether_ret_t r = mine >= TETHERD_MAX_SIMS_PER_SERVICE || n_sims >= TETHERD_MAX_SIMS ? TETHER_ERR_NO_RESOURCES
                                                                                             : TETHER_SUCCESS;
        sim_proc *p = r == TETHER_SUCCESS ? calloc(1, sizeof(*p)) : NULL;
        if (r == TETHER_SUCCESS && !p)
                r = TETHER_ERR_NO_MEMORY;
        int sv[2] = { -1, -1 };
        if (r == TETHER_SUCCESS && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                r = errno == EMFILE || errno == ENFILE ? TETHER_ERR_NO_RESOURCES : TETHER_ERR_IPC;
        if (r != TETHER_SUCCESS) {
                pthread_mutex_unlock(&lock);
                free(p);
                return r;
        }
        char path[4096];
        const char *bin = simulator_binary(f->sim, path, sizeof(path));
        char serial[72];
        snprintf(serial, sizeof(serial), "%s", f->serial[0] ? f->serial : f->sim->default_serial);
        char *const argv[] = { (char *)f->sim->program, (char *)"--usb-fd", (char *)"3", (char *)"--serial", serial,
                               (char *)"--model", (char *)f->sim->name, NULL };
        char *const envp[] = { NULL };
        spawn_user who = { .drop = drop, .uid = uid, .gid = gid };
        pid_t pid = spawn_unprivileged(bin, sv[1], argv, envp, &who);
        /* tetherd keeps no end: the simulator sees the driver's hang-up. */
        close(sv[1]);
        if (pid < 0) {
                pthread_mutex_unlock(&lock);
                close(sv[0]);
                free(p);
                log_err("tether: cannot start a simulator (%s): %s", bin, strerror(errno));
                return TETHER_ERR_NO_RESOURCES;
        }
        *p = (sim_proc){ .pid = pid, .service_id = s->id, .next = sims };
        sims = p;
        n_sims++;
        pthread_mutex_unlock(&lock);
        *ret_fd = sv[0];
        return TETHER_SUCCESS;
}

tether_ret_t device_open(tether_service *s, tether_device_kind *ret_kind, int *ret_fd)
{
        nub_facts f;
        tether_ret_t r = nub_of(s, &f);
        if (r != TETHER_SUCCESS)
                return r;
        if (!f.ours)
                return TETHER_ERR_UNSUPPORTED;
        if (f.sim) {
                *ret_kind = TETHER_DEVICE_VUSB;
                return open_simulated(s, &f, ret_fd);
        }
        if (f.usb) {
                *ret_kind = TETHER_DEVICE_USBFS;
                return open_usb(s, &f, ret_fd);
        }
        return TETHER_ERR_UNSUPPORTED;
}

void device_release(tether_service *s)
{
        pthread_mutex_lock(&lock);
        device_claim *c = s->device;
        s->device = NULL;
        pthread_mutex_unlock(&lock);
        if (!c)
                return;
        tether_ret_t r = usbfs_give_back(c->bus, c->address, c->interfaces);
        /* Gone, or (its address taken again by a device plugged in since)
         * claimed by another file: nothing of ours to give back. */
        if (r == TETHER_ERR_NO_DEVICE || r == TETHER_ERR_UNSUPPORTED || r == TETHER_ERR_EXCLUSIVE_ACCESS)
                log_info("tether: USB %03u/%03u: interfaces 0x%x left as they are: %s", c->bus, c->address,
                         c->interfaces, tether_strerror(r));
        else if (r != TETHER_SUCCESS)
                log_warn("tether: USB %03u/%03u: interfaces 0x%x not given back to the kernel: %s", c->bus,
                         c->address, c->interfaces, tether_strerror(r));
        free(c);
}

void devices_tick(void)
{
        pthread_mutex_lock(&lock);
        if (sims)
                reap_locked();
        pthread_mutex_unlock(&lock);
}

void devices_shutdown(void)
{
        /* Their drivers are gone, so they are exiting: wait, briefly. */
        for (int i = 0; i < 100; i++) {
                pthread_mutex_lock(&lock);
                reap_locked();
                bool left = sims != NULL;
                pthread_mutex_unlock(&lock);
                if (!left)
                        return;
                usleep(10000);
        }
        pthread_mutex_lock(&lock);
        for (sim_proc *p = sims; p; p = p->next)
                kill(p->pid, SIGKILL);
        while (sims) {
                sim_proc *p = sims;
                sims = p->next;
                waitpid(p->pid, NULL, 0);
                free(p);
        }
        n_sims = 0;
        pthread_mutex_unlock(&lock);
}
