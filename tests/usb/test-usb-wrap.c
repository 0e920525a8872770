/* SPDX-License-Identifier: MIT */
/* The fd path of a driver host, both ends: tetherd opens the device node,
 * takes the USBTMC interface and drops the fd's privileges
 * (usbfs_open_for_driver); the host wraps the fd (usbtmc_usb_wrap) and
 * speaks USBTMC through libusb on it. Against the emulated DSO-X 2002A:
 * mock-usb.c plays usbfs, with devio.c's rules for dropped privileges
 * (this machine has no USB controller, so no real kernel checks them
 * here). An executable of its own because a host's libusb context (no
 * device discovery) is, in libusb 1.0.26, for the whole process.
 * Run as: umockdev-wrapper test-usb-wrap */
#include <errno.h>
#include <fcntl.h>
#include <linux/usbdevice_fs.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mock-usb.h"
#include "scope-check.h"
#include "usbtmc/backend-libusb.h"
#include "usbtmc/usbfs.h"

#define NODE "/dev/bus/usb/001/002"
#define BUS 1
#define ADDRESS 2
#define IFACE_MASK (1u << 0) /* the scope's USBTMC interface */

extern char **environ;

typedef struct fixture {
        mock_usb *mock;
        libusb_context *ctx;
} fixture;

static int setup_with(void **state, bool kernel_driver)
{
        fixture *f = calloc(1, sizeof(*f));
        if (!f || mock_usb_new(&f->mock) || mock_usb_plug(f->mock, kernel_driver))
                return -1;
        if (usbtmc_usb_context_for_host(&f->ctx) != TETHER_SUCCESS)
                return -1;
        *state = f;
        return 0;
}

/* The kernel's usbtmc driver has the interface, as on a real machine. */
static int setup(void **state)
{
        return setup_with(state, true);
}

static int setup_unbound(void **state)
{
        return setup_with(state, false);
}

static int teardown(void **state)
{
        fixture *f = *state;
        libusb_exit(f->ctx);
        mock_usb_free(f->mock);
        free(f);
        return 0;
}

static int open_node(void)
{
        int fd = open(NODE, O_RDWR | O_CLOEXEC);
        assert_true(fd >= 0);
        return fd;
}

/* umockdev tells the handler a file is closed from its own thread, a
 * little after close() returns; the kernel would have released its claims
 * within close(). */
static void wait_all_closed(mock_usb *m)
{
        mock_usb_stats st;
        for (int i = 0; i < 500; i++) {
                mock_usb_stats_get(m, &st);
                if (st.closes == st.clients)
                        return;
                usleep(10 * 1000);
        }
        fail_msg("%u of %u files still open", st.clients - st.closes, st.clients);
}

/* errno of one raw ioctl, 0 when it succeeded. */
static int ioctl_errno(int fd, unsigned long request, void *arg)
{
        return ioctl(fd, request, arg) == 0 ? 0 : errno;
}

static int usbfs_ioctl_errno(int fd, int code)
{
        struct usbdevfs_ioctl io = { .ifno = 0, .ioctl_code = code, .data = NULL };
        return ioctl(fd, USBDEVFS_IOCTL, &io) >= 0 ? 0 : errno;
}

static void check_described(const usbtmc_usb_device *d)
{
        assert_int_equal(d->vendor, 0x0957);
        assert_int_equal(d->product, 0x1799);
        assert_string_equal(d->serial, "MY57235663"); /* a string-descriptor request through the fd */
        assert_int_equal(d->interface, 0);
        assert_int_equal(d->protocol, 1); /* USB488 */
        assert_int_equal(d->ep_out, 0x02);
        assert_int_equal(d->ep_in, 0x81);
        assert_int_equal(d->ep_interrupt, 0x83);
        /* libusb finds the bus in the fd's path, which under umockdev is
         * the testbed's; the kernel (CONNINFO_EX) says it. */
        assert_int_equal(d->bus, BUS);
        assert_int_equal(d->address, ADDRESS);
}

static void check_waveform(usbtmc *t)
{
        enum { CAP = 70000 };
        uint8_t *got = malloc(CAP), *want = malloc(CAP);
        assert_non_null(got);
        assert_non_null(want);
        size_t n = 0;
        scope_check_idn(t);
        assert_int_equal(usbtmc_write(t, scope_wave_cmds, strlen(scope_wave_cmds)), TETHER_SUCCESS);
        assert_int_equal(usbtmc_read(t, got, CAP, &n), TETHER_SUCCESS);
        assert_int_equal(n, 7 + 62500 + 1);
        assert_memory_equal(got, "#562500", 7);
        assert_int_equal(scope_reference_waveform(scope_wave_cmds, want, CAP), n);
        assert_memory_equal(got, want, n);
        free(got);
        free(want);
}

/* A node opened by path, with full rights: the wrap reads the descriptors
 * and the serial through the fd, takes the interface from the kernel
 * driver, runs USBTMC, and on close gives the interface back and closes
 * the fd it was given. */
static void wrap_runs_usbtmc(void **state)
{
        fixture *f = *state;
        int fd = open_node();
        usbtmc_usb *u = NULL;
        assert_int_equal(usbtmc_usb_wrap(f->ctx, fd, &u), TETHER_SUCCESS);
        usbtmc_usb_device d;
        assert_int_equal(usbtmc_usb_get_device(u, &d), TETHER_SUCCESS);
        check_described(&d);
        assert_false(mock_usb_kernel_driver_bound(f->mock));
        assert_true(mock_usb_claimed(f->mock));

        usbtmc t;
        usbtmc_usb_attach(&t, u);
        usbtmc_caps caps;
        assert_int_equal(usbtmc_get_capabilities(&t, &caps), TETHER_SUCCESS);
        assert_true(caps.usb488_interface_caps & USB488_CAP_IS_488_2);
        check_waveform(&t);
        uint8_t stb = 0;
        assert_int_equal(usbtmc_read_status_byte(&t, &stb), TETHER_SUCCESS); /* the interrupt endpoint */

        usbtmc_usb_close(u);
        wait_all_closed(f->mock); /* the fd went with it */
        mock_usb_stats st;
        mock_usb_stats_get(f->mock, &st);
        assert_int_equal(st.driver_detached, 1);
        assert_int_equal(st.driver_attached, 1);
        assert_true(mock_usb_kernel_driver_bound(f->mock));
        assert_int_equal(st.clients, 1); /* libusb opened nothing itself */
        assert_int_equal(st.unknown, 0);
}

/* The real flow: tetherd takes the interface and drops the fd's rights,
 * the host wraps what it was given and runs a capture (and a stall
 * recovery: CLEAR_HALT on its own endpoints is allowed), but may not
 * detach or rebind drivers. After it closes, tetherd gives the interface
 * back to the kernel. */
static void host_flow_with_dropped_privileges(void **state)
{
        fixture *f = *state;
        int fd = -1;
        assert_int_equal(usbfs_open_for_driver(BUS, ADDRESS, IFACE_MASK, &fd), TETHER_SUCCESS);
        mock_usb_stats st;
        mock_usb_stats_get(f->mock, &st);
        assert_int_equal(st.driver_detached, 1);
        assert_int_equal(st.drops, 1);
        assert_true(mock_usb_claimed(f->mock));
        uint32_t caps = 0;
        assert_int_equal(usbfs_capabilities(fd, &caps), TETHER_SUCCESS);
        assert_true(caps & USBDEVFS_CAP_DROP_PRIVILEGES);

        usbtmc_usb *u = NULL;
        assert_int_equal(usbtmc_usb_wrap(f->ctx, fd, &u), TETHER_SUCCESS);
        usbtmc_usb_device d;
        assert_int_equal(usbtmc_usb_get_device(u, &d), TETHER_SUCCESS);
        check_described(&d);
        usbtmc t;
        usbtmc_usb_attach(&t, u);
        check_waveform(&t);
        mock_usb_inject(f->mock, SIM_FAULT_STALL);
        char buf[128];
        size_t n = 0;
        assert_int_equal(usbtmc_write(&t, "*IDN?\n", 6), TETHER_SUCCESS);
        assert_int_equal(usbtmc_read(&t, buf, sizeof(buf), &n), TETHER_ERR_IO);
        scope_check_idn(&t);

        /* What the host may not do with this fd. */
        assert_int_equal(usbfs_ioctl_errno(fd, USBDEVFS_DISCONNECT), EACCES);
        assert_int_equal(usbfs_ioctl_errno(fd, USBDEVFS_CONNECT), EACCES);

        usbtmc_usb_close(u);
        wait_all_closed(f->mock);
        mock_usb_stats_get(f->mock, &st);
        assert_int_equal(st.clients, 1); /* everything went through tetherd's fd */
        assert_false(mock_usb_claimed(f->mock));
        assert_false(mock_usb_kernel_driver_bound(f->mock)); /* the host could not give it back */
        assert_int_equal(usbfs_give_back(BUS, ADDRESS, IFACE_MASK), TETHER_SUCCESS);
        assert_true(mock_usb_kernel_driver_bound(f->mock));
        mock_usb_stats_get(f->mock, &st);
        assert_int_equal(st.driver_attached, 1);
        assert_int_equal(st.unknown, 0);
}

/* A fd whose rights were dropped before anyone took the interface from
 * the kernel driver: the wrap cannot take it either, and says so. The fd
 * is still the caller's. */
static void dropped_fd_cannot_detach(void **state)
{
        fixture *f = *state;
        int fd = open_node();
        uint32_t mask = IFACE_MASK;
        assert_int_equal(ioctl_errno(fd, USBDEVFS_DROP_PRIVILEGES, &mask), 0);
        usbtmc_usb *u = NULL;
        assert_int_equal(usbtmc_usb_wrap(f->ctx, fd, &u), TETHER_ERR_NOT_PERMITTED);
        assert_null(u);
        assert_true(mock_usb_kernel_driver_bound(f->mock));
        uint32_t caps = 0;
        assert_int_equal(usbfs_capabilities(fd, &caps), TETHER_SUCCESS); /* not closed */
        close(fd);
}

/* The mask holds: another interface cannot be claimed (EACCES, where an
 * allowed but absent one would be ENOENT), a second drop narrows but never
 * widens, and even this file's own claim cannot be turned into a detach. A
 * fd dropped to another interface cannot wrap the scope's. */
static void dropped_mask_enforced(void **state)
{
        fixture *f = *state;
        int fd = -1;
        assert_int_equal(usbfs_open_for_driver(BUS, ADDRESS, IFACE_MASK, &fd), TETHER_SUCCESS);
        unsigned iface = 1;
        assert_int_equal(ioctl_errno(fd, USBDEVFS_CLAIMINTERFACE, &iface), EACCES);
        uint32_t wider = 0x3;
        assert_int_equal(ioctl_errno(fd, USBDEVFS_DROP_PRIVILEGES, &wider), 0);
        assert_int_equal(ioctl_errno(fd, USBDEVFS_CLAIMINTERFACE, &iface), EACCES);
        struct usbdevfs_disconnect_claim dc = { .interface = 0 };
        assert_int_equal(ioctl_errno(fd, USBDEVFS_DISCONNECT_CLAIM, &dc), EACCES);
        close(fd);
        wait_all_closed(f->mock);

        int other = open_node();
        uint32_t mask = 1u << 1;
        assert_int_equal(ioctl_errno(other, USBDEVFS_DROP_PRIVILEGES, &mask), 0);
        usbtmc_usb *u = NULL;
        assert_int_equal(usbtmc_usb_wrap(f->ctx, other, &u), TETHER_ERR_NOT_PERMITTED);
        assert_false(mock_usb_claimed(f->mock));
        close(other);

        /* The same claim on an undropped fd goes through. */
        int full = open_node();
        iface = 0;
        assert_int_equal(ioctl_errno(full, USBDEVFS_CLAIMINTERFACE, &iface), 0);
        close(full);
        mock_usb_stats st;
        mock_usb_stats_get(f->mock, &st);
        assert_int_equal(st.refused, 4);
}

/* Another program has the interface through usbfs: tetherd does not take
 * it (nor would a wrap), and cannot give it to the kernel until that
 * program lets go. */
static void held_by_another_program(void **state)
{
        fixture *f = *state;
        int other = open_node();
        unsigned iface = 0;
        assert_int_equal(ioctl_errno(other, USBDEVFS_CLAIMINTERFACE, &iface), 0);
        int fd = -1;
        assert_int_equal(usbfs_open_for_driver(BUS, ADDRESS, IFACE_MASK, &fd), TETHER_ERR_EXCLUSIVE_ACCESS);
        assert_int_equal(fd, -1);
        int mine = open_node();
        usbtmc_usb *u = NULL;
        assert_int_equal(usbtmc_usb_wrap(f->ctx, mine, &u), TETHER_ERR_EXCLUSIVE_ACCESS);
        close(mine);
        assert_true(mock_usb_claimed(f->mock)); /* still the other program's */
        assert_int_equal(usbfs_give_back(BUS, ADDRESS, IFACE_MASK), TETHER_ERR_EXCLUSIVE_ACCESS);

        close(other);
        wait_all_closed(f->mock);
        assert_int_equal(usbfs_give_back(BUS, ADDRESS, IFACE_MASK), TETHER_SUCCESS);
        assert_true(mock_usb_kernel_driver_bound(f->mock));
}

/* Before Linux 4.6 there is nothing to drop: the fd comes back claimed
 * but unrestricted, which the caller can see in its capabilities. */
static void kernel_without_drop_privileges(void **state)
{
        fixture *f = *state;
        mock_usb_set_old_kernel(f->mock, true);
        int fd = -1;
        assert_int_equal(usbfs_open_for_driver(BUS, ADDRESS, IFACE_MASK, &fd), TETHER_SUCCESS);
        uint32_t caps = 0;
        assert_int_equal(usbfs_capabilities(fd, &caps), TETHER_SUCCESS);
        assert_false(caps & USBDEVFS_CAP_DROP_PRIVILEGES);
        /* Not refused, only busy: this fd may still (un)bind drivers. */
        assert_int_equal(usbfs_ioctl_errno(fd, USBDEVFS_CONNECT), EBUSY);
        usbtmc_usb *u = NULL;
        assert_int_equal(usbtmc_usb_wrap(f->ctx, fd, &u), TETHER_SUCCESS);
        usbtmc t;
        usbtmc_usb_attach(&t, u);
        scope_check_idn(&t);
        usbtmc_usb_close(u);
        mock_usb_stats st;
        mock_usb_stats_get(f->mock, &st);
        assert_int_equal(st.drops, 0);
        assert_int_equal(st.refused, 0);
}

/* Bad requests, a device gone, and a mask naming an interface the device
 * lacks: then what was taken on the way is given back. */
static void open_for_driver_errors(void **state)
{
        fixture *f = *state;
        int fd = -1;
        assert_int_equal(usbfs_open_for_driver(BUS, ADDRESS, 0, &fd), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(usbfs_open_for_driver(0, ADDRESS, IFACE_MASK, &fd), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(usbfs_open_for_driver(BUS, ADDRESS, IFACE_MASK, NULL), TETHER_ERR_BAD_ARGUMENT);
        /* Bus 99: the kernel numbers at most 64, so no real device answers either. */
        assert_int_equal(usbfs_open_for_driver(99, ADDRESS, IFACE_MASK, &fd), TETHER_ERR_NO_DEVICE);
        assert_int_equal(usbfs_give_back(99, ADDRESS, IFACE_MASK), TETHER_ERR_NO_DEVICE);

        assert_int_equal(usbfs_open_for_driver(BUS, ADDRESS, IFACE_MASK | 1u << 3, &fd), TETHER_ERR_NOT_FOUND);
        assert_int_equal(fd, -1);
        mock_usb_stats st;
        mock_usb_stats_get(f->mock, &st);
        assert_int_equal(st.driver_detached, 1);
        assert_int_equal(st.driver_attached, 1);
        assert_true(mock_usb_kernel_driver_bound(f->mock));
        assert_false(mock_usb_claimed(f->mock));
        assert_int_equal(st.drops, 0);

        usbtmc_usb *u = NULL;
        assert_int_equal(usbtmc_usb_wrap(f->ctx, -1, &u), TETHER_ERR_BAD_ARGUMENT);
        assert_int_equal(usbtmc_usb_wrap(NULL, 0, &u), TETHER_ERR_BAD_ARGUMENT);
        usbtmc_usb_device d;
        assert_int_equal(usbtmc_usb_get_device(NULL, &d), TETHER_ERR_BAD_ARGUMENT);
}

/* The host's context finds nothing on the bus, though the testbed has the
 * scope: it never scans. In libusb 1.0.26 that is the whole process's lot:
 * a context made afterwards without asking does not scan either. */
static void host_context_skips_discovery(void **state)
{
        fixture *f = *state;
        libusb_device **list = NULL;
        assert_int_equal(libusb_get_device_list(f->ctx, &list), 0);
        libusb_free_device_list(list, 1);

        libusb_context *plain = NULL;
        assert_int_equal(libusb_init(&plain), 0);
        ssize_t n = libusb_get_device_list(plain, &list);
        libusb_free_device_list(list, 1);
        libusb_exit(plain);
        const struct libusb_version *v = libusb_get_version();
        if (v->major == 1 && v->minor == 0 && v->micro <= 26)
                assert_int_equal(n, 0);
}

/* What a process under the same preload makes of a fd passed to it with
 * SCM_RIGHTS, answered by a child (this program again, exec'd as a host
 * would be), as numbers: errno of CONNECTINFO on the passed fd, whether
 * it is a character device, libusb_wrap_sys_device's result on it; then
 * the same for the node the child opens by path itself. */
typedef struct receiver_report {
        int passed_errno, passed_is_chr, passed_wrap;
        int own_errno, own_devnum, own_wrap;
} receiver_report;

static int receive_fd(int sock)
{
        char byte;
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } c;
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof(c.buf) };
        if (recvmsg(sock, &msg, 0) != 1)
                return -1;
        struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
        if (!h || h->cmsg_type != SCM_RIGHTS)
                return -1;
        int fd;
        memcpy(&fd, CMSG_DATA(h), sizeof(fd));
        return fd;
}

static int wrap_result(libusb_context *ctx, int fd)
{
        libusb_device_handle *h = NULL;
        int e = libusb_wrap_sys_device(ctx, (intptr_t)fd, &h);
        if (e == 0)
                libusb_close(h);
        return e;
}

static int receiver_main(int sock)
{
        receiver_report rep = { 0 };
        libusb_context *ctx = NULL;
        int fd = receive_fd(sock);
        if (fd < 0 || usbtmc_usb_context_for_host(&ctx) != TETHER_SUCCESS)
                return 1;
        struct usbdevfs_connectinfo ci = { 0 };
        struct stat sb;
        rep.passed_errno = ioctl(fd, USBDEVFS_CONNECTINFO, &ci) == 0 ? 0 : errno;
        rep.passed_is_chr = fstat(fd, &sb) == 0 && S_ISCHR(sb.st_mode);
        rep.passed_wrap = wrap_result(ctx, fd);
        int own = open(NODE, O_RDWR | O_CLOEXEC);
        rep.own_errno = own < 0 ? errno : ioctl(own, USBDEVFS_CONNECTINFO, &ci) == 0 ? 0 : errno;
        rep.own_devnum = (int)ci.devnum;
        rep.own_wrap = own < 0 ? -99 : wrap_result(ctx, own);
        if (own >= 0)
                close(own);
        close(fd);
        libusb_exit(ctx);
        return write(sock, &rep, sizeof(rep)) == sizeof(rep) ? 0 : 1;
}

static void send_fd(int sock, int fd)
{
        char byte = 0;
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } c;
        memset(&c, 0, sizeof(c));
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof(c.buf) };
        struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(h), &fd, sizeof(fd));
        assert_int_equal(sendmsg(sock, &msg, 0), 1);
}

/* umockdev's preload emulates a fd by its number, in the process that
 * opened it; a fd passed to another process is umockdev's plain file
 * there, and its ioctls reach the real kernel: ENOTTY. So libusb cannot
 * wrap it, and a host under test opens the node by path instead. */
static void passed_fd_is_not_emulated(void **state)
{
        fixture *f = *state;
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        int child_end = dup(sv[1]); /* without CLOEXEC: the child's */
        assert_true(child_end >= 0);
        char arg[16];
        snprintf(arg, sizeof(arg), "%d", child_end);
        char *argv[] = { "test-usb-wrap", "--receive", arg, NULL };
        pid_t pid;
        assert_int_equal(posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ), 0);
        close(child_end);
        close(sv[1]);

        int fd = -1;
        assert_int_equal(usbfs_open_for_driver(BUS, ADDRESS, IFACE_MASK, &fd), TETHER_SUCCESS);
        send_fd(sv[0], fd);
        close(fd);
        receiver_report rep;
        assert_int_equal(read(sv[0], &rep, sizeof(rep)), sizeof(rep));
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        close(sv[0]);

        assert_int_equal(rep.passed_errno, ENOTTY);
        assert_false(rep.passed_is_chr);
        assert_int_equal(rep.passed_wrap, LIBUSB_ERROR_IO);
        assert_int_equal(rep.own_errno, 0);
        assert_int_equal(rep.own_devnum, ADDRESS);
        assert_int_equal(rep.own_wrap, 0);
        (void)f;
}

int main(int argc, char **argv)
{
        if (argc == 3 && !strcmp(argv[1], "--receive"))
                return receiver_main(atoi(argv[2]));
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(wrap_runs_usbtmc, setup, teardown),
                cmocka_unit_test_setup_teardown(host_flow_with_dropped_privileges, setup, teardown),
                cmocka_unit_test_setup_teardown(dropped_fd_cannot_detach, setup, teardown),
                cmocka_unit_test_setup_teardown(dropped_mask_enforced, setup_unbound, teardown),
                cmocka_unit_test_setup_teardown(held_by_another_program, setup_unbound, teardown),
                cmocka_unit_test_setup_teardown(kernel_without_drop_privileges, setup, teardown),
                cmocka_unit_test_setup_teardown(open_for_driver_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(host_context_skips_discovery, setup, teardown),
                cmocka_unit_test_setup_teardown(passed_fd_is_not_emulated, setup_unbound, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
