#!/bin/sh
# Instructions one scalar call costs, counted by callgrind (user space only,
# and the same from run to run, however loaded the machine is): the client
# (libtether) and the side that runs the call (tetherd --in-process, or a
# driver host with --hosted), each as the difference between a run of N calls
# and a run of none, divided by N.
# Usage: bench/callgrind-call.sh BUILDDIR [N] [--hosted]
set -eu
build=${1:?usage: $0 BUILDDIR [N] [--hosted]}
n=${2:-20000}
mode=${3:-}
tmp=$(mktemp -d /tmp/tether-callgrind-XXXXXX)
chmod 0777 "$tmp" # a driver host runs as another user, and writes its log here
trap 'kill $daemon 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
sock=$tmp/tetherd.sock
vg="/usr/bin/valgrind --tool=callgrind --callgrind-out-file=/dev/null"

total() { sed -n 's/^==[0-9]*== Collected : \([0-9]*\).*/\1/p' "$1" | tail -n 1; }

# One daemon (or host) run of k calls: its total instructions on stdout.
server_run() {
        k=$1
        rm -f "$sock"
        if [ "$mode" = --hosted ]; then
                # tetherd runs a host from an fd (execveat), which a script
                # cannot be run from: a small binary puts valgrind in front.
                # valgrind runs as its child, so that tetherd's SIGKILL at
                # shutdown ends the wrapper and the host under valgrind
                # finishes on its own (its channel closed) and counts.
                cat >"$tmp/host.c" <<EOC
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv)
{
        char *v[] = { "/usr/bin/valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                      "--log-file=$tmp/server.%p.log", "$(realpath "$build/src/daemon/tether-driverhost")",
                      argc > 1 ? argv[1] : (char *)0, (char *)0 };
        pid_t pid = fork();
        if (pid == 0) {
                execv(v[0], v);
                _exit(127);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
EOC
                cc -o "$tmp/host" "$tmp/host.c"
                TETHER_DRIVERHOST=$tmp/host "$build/src/daemon/tetherd" --socket "$sock" --no-usb \
                        --no-system-drivers --drivers "$build/drivers/bundles" --watchdog 60000 2>/dev/null &
        else
                $vg --log-file="$tmp/server.%p.log" "$build/src/daemon/tetherd" --socket "$sock" --no-usb \
                        --no-system-drivers --drivers "$build/drivers/bundles" --in-process 2>/dev/null &
        fi
        daemon=$!
        i=0
        until "$build/bench/bench-calls" "$sock" 0 2>/dev/null; do
                i=$((i + 1))
                [ $i -lt 300 ] || { echo "tetherd did not come up" >&2; exit 1; }
                sleep 0.1
        done
        "$build/bench/bench-calls" "$sock" "$k"
        kill -TERM $daemon
        wait $daemon || true
        # The host ends when tetherd does; its log is the one with the calls.
        i=0
        while [ "$mode" = --hosted ] && ! grep -q Collected "$tmp"/server.*.log 2>/dev/null; do
                i=$((i + 1)); [ $i -lt 300 ] || break; sleep 0.1
        done
        best=0
        for f in "$tmp"/server.*.log; do
                t=$(total "$f")
                if [ -n "$t" ] && [ "$t" -gt "$best" ]; then best=$t; fi
        done
        rm -f "$tmp"/server.*.log
        echo "$best"
}

client_run() {
        $vg --log-file="$tmp/client.log" "$build/bench/bench-calls" "$sock" "$1"
        total "$tmp/client.log"
}

s0=$(server_run 0)
s1=$(server_run "$n")
# A plain daemon for the client's runs.
rm -f "$sock"
if [ "$mode" = --hosted ]; then inproc=; else inproc=--in-process; fi
TETHER_DRIVERHOST=$(realpath "$build/src/daemon/tether-driverhost") "$build/src/daemon/tetherd" --socket "$sock" \
        --no-usb --no-system-drivers --drivers "$build/drivers/bundles" $inproc 2>/dev/null &
daemon=$!
i=0
until "$build/bench/bench-calls" "$sock" 0 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 300 ] || exit 1; sleep 0.1
done
c0=$(client_run 0)
c1=$(client_run "$n")
echo "instructions per call (callgrind, $n calls${mode:+, $mode}):"
echo "  client (libtether):          $(( (c1 - c0) / n ))"
echo "  $( [ "$mode" = --hosted ] && echo "driver host:               " || echo "tetherd --in-process:        ") $(( (s1 - s0) / n ))"
