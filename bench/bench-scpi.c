/* SPDX-License-Identifier: MIT */
/*
 * A SCPI query's round trip (*IDN?), the same simulated DSO-X 2002A every
 * time, three ways in one run:
 *   - the USBTMC framing alone: src/usbtmc over the vusb socket straight
 *     to tether-sim-scope, no tetherd (the baseline);
 *   - through tetherd and the DSOX2000 driver's pass-through (DSO_SCPI);
 *   - through tetherd and the generic USBTMC driver (TMC_QUERY), after
 *     DSOX2000 is unloaded and the generic driver takes the scope over.
 * Drivers in their own hosts, as deployed. Not a test: it prints figures.
 * TETHERD names the daemon.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tether/tether.h>
#include <tether/usbtmc-instrument.h>

#include "bench-util.h"
#include "dsox2000/dsox2000.h"
#include "usbtmc/backend-vusb.h"
#include "usbtmc/usbtmc.h"

#define IDN_PREFIX "AGILENT TECHNOLOGIES,DSO-X 2002A"

static double framing_alone_us(int reps)
{
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -1;
        pid_t pid = fork();
        if (pid == 0) {
                dup2(sv[1], 3); /* dup2 clears CLOEXEC on the copy */
                execl(BENCH_SIM_SCOPE, "tether-sim-scope", "--usb-fd", "3", "--serial", "BENCH0001", (char *)NULL);
                _exit(127);
        }
        close(sv[1]);
        usbtmc_vusb *v = NULL;
        usbtmc t;
        double per = -1;
        char buf[256];
        size_t n = 0;
        if (pid > 0 && usbtmc_vusb_open(sv[0], &v) == TETHER_SUCCESS) {
                usbtmc_vusb_attach(&t, v);
                bool ok = usbtmc_write(&t, "*IDN?\n", 6) == TETHER_SUCCESS &&
                          usbtmc_read(&t, buf, sizeof(buf), &n) == TETHER_SUCCESS; /* warm-up */
                double t0 = bench_now_us();
                for (int i = 0; ok && i < reps; i++)
                        ok = usbtmc_write(&t, "*IDN?\n", 6) == TETHER_SUCCESS &&
                             usbtmc_read(&t, buf, sizeof(buf), &n) == TETHER_SUCCESS &&
                             !strncmp(buf, IDN_PREFIX, strlen(IDN_PREFIX));
                if (ok)
                        per = (bench_now_us() - t0) / reps;
                usbtmc_vusb_close(v);
        } else {
                close(sv[0]);
        }
        if (pid > 0) {
                kill(pid, SIGTERM);
                waitpid(pid, NULL, 0);
        }
        return per;
}

static double dso_us(tether_connect *c, int reps)
{
        char buf[256];
        size_t n = sizeof(buf);
        bool ok = tether_call_struct_method(c, DSO_SCPI, "*IDN?", 5, buf, &n) == TETHER_SUCCESS;
        double t0 = bench_now_us();
        for (int i = 0; ok && i < reps; i++) {
                n = sizeof(buf);
                ok = tether_call_struct_method(c, DSO_SCPI, "*IDN?", 5, buf, &n) == TETHER_SUCCESS &&
                     !strncmp(buf, IDN_PREFIX, strlen(IDN_PREFIX));
        }
        return ok ? (bench_now_us() - t0) / reps : -1;
}

static double tmc_us(tether_connect *c, int reps)
{
        char buf[256];
        size_t n = sizeof(buf);
        uint64_t end = 0;
        uint32_t n_end = 1;
        bool ok = tether_call_method(c, TMC_QUERY, NULL, 0, "*IDN?\n", 6, &end, &n_end, buf, &n) == TETHER_SUCCESS;
        double t0 = bench_now_us();
        for (int i = 0; ok && i < reps; i++) {
                n = sizeof(buf);
                n_end = 1;
                ok = tether_call_method(c, TMC_QUERY, NULL, 0, "*IDN?\n", 6, &end, &n_end, buf, &n) == TETHER_SUCCESS &&
                     !strncmp(buf, IDN_PREFIX, strlen(IDN_PREFIX));
        }
        return ok ? (bench_now_us() - t0) / reps : -1;
}

int main(int argc, char **argv)
{
        int reps = argc > 1 ? atoi(argv[1]) : 2000;
        double alone = framing_alone_us(reps);
        if (alone < 0) {
                fprintf(stderr, "bench: the framing alone failed (" BENCH_SIM_SCOPE ")\n");
                return 1;
        }
        harness h = { .simulate = "dsox2002a" };
        tether_session *s = NULL;
        tether_connect *c = NULL;
        if (bench_open(&h, DSO_CLASS, 0, &s, &c) != 0)
                return 1;
        double dso = dso_us(c, reps);
        tether_service_close(c);
        c = NULL;
        /* The same scope, now the generic driver's. */
        double tmc = -1;
        if (dso >= 0 && tether_driver_unload(s, "org.tether.dsox2000") == TETHER_SUCCESS) {
                tether_value *m = NULL;
                uint64_t id = 0;
                tether_service_matching(TMC_CLASS, &m);
                for (int i = 0; i < 500 && tether_get_matching_service(s, m, &id) != TETHER_SUCCESS; i++)
                        usleep(20000);
                tether_value_unref(m);
                for (int i = 0; id && i < 250 && tether_service_open(s, id, 0, 0, &c) != TETHER_SUCCESS; i++)
                        usleep(20000);
                if (c)
                        tmc = tmc_us(c, reps);
        }
        if (dso < 0 || tmc < 0) {
                fprintf(stderr, "bench: a query failed (DSOX2000 %.1f, generic %.1f us)\n", dso, tmc);
                bench_close(&h, s, c);
                return 1;
        }
        printf("*IDN? round trip to the simulated DSO-X 2002A (%d queries each; drivers in their own hosts)\n", reps);
        printf("  USBTMC framing alone (src/usbtmc, no tetherd) %8.1f us   (1.00x, the baseline)\n", alone);
        printf("  DSOX2000 pass-through (DSO_SCPI)              %8.1f us   (%.2fx)\n", dso, dso / alone);
        printf("  generic USBTMC driver (TMC_QUERY)             %8.1f us   (%.2fx; %.2fx the pass-through)\n", tmc,
               tmc / alone, tmc / dso);
        return bench_close(&h, s, c);
}
