#!/usr/bin/env bash
# tetherd with the capabilities tetherd.service leaves it, and no more:
# the unit's CapabilityBoundingSet= (read from the configured unit, so the
# two cannot drift apart) as the bounding set, no_new_privs set, as
# systemd would start it. It starts hosts and a simulator as another user
# (CAP_SETUID, CAP_SETGID), the DSO-X driver reads the simulated scope, and
# the watchdog kills a stopped host and starts another (CAP_KILL; without
# it tetherd would wait forever for a host it could not kill). The hosts
# and the simulator run with no capability at all. And when tetherd is
# killed, none of them outlives it.
set -u
tetherd=$1 tether=$2 unit=$3
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (tetherd changes users only as root)"; exit 77; }
command -v setpriv >/dev/null || { echo "FAIL: setpriv is missing (util-linux)"; exit 1; }
dir=$(mktemp -d)
chmod 755 "$dir"
export TETHER_SOCKET="$dir/s.sock"
pid=
trap '[ -n "$pid" ] && kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; [ -f "$dir/log" ] && tail -20 "$dir/log"; exit 1; }
. "$(dirname "$0")/../lib.sh" # wait_for
field() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status"; }
# The unit's bounding set: CAP_X names, as setpriv wants them and as a mask.
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit")
[ -n "$caps" ] || fail "no CapabilityBoundingSet= in $unit"
bounding=-all mask=0
for c in $caps; do
  n=$(sed -n "s/^#define $c[[:space:]]\+\([0-9]\+\).*/\1/p" /usr/include/linux/capability.h)
  [ -n "$n" ] || fail "unknown capability $c"
  bounding+=",+$(tr 'A-Z' 'a-z' <<<"${c#CAP_}")"
  mask=$((mask | 1 << n))
done
want=$(printf '%016x' $mask)

setpriv --bounding-set "$bounding" --no-new-privs -- "$tetherd" --no-usb --no-system-drivers \
  --simulate dsox2002a --watchdog 1000 --ready-fd 4 4>"$dir/ready" 2>"$dir/log" &
pid=$!
wait_for "$dir/ready" READY 30 || fail "tetherd did not start with $caps"
[ "$(field $pid CapEff)" = "$want" ] || fail "tetherd's effective set is $(field $pid CapEff), not $want ($caps)"
[ "$(field $pid CapBnd)" = "$want" ] || fail "tetherd's bounding set is $(field $pid CapBnd), not $want"
[ "$(field $pid NoNewPrivs)" = 1 ] || fail "tetherd without no_new_privs"
echo "ok: tetherd runs with $caps ($want), no_new_privs"

host_pid() { "$tether" reg -c DSOX2000 -l 2>/dev/null | sed -n 's/.*"TetherHostPID" = \([0-9]*\).*/\1/p' | head -1; }
out=$(timeout 20 "$tether" reg -c DSOX2000 -l 2>&1) || fail "tether reg: $out"
grep -q '"Model" = "DSO-X 2002A"' <<<"$out" || fail "the DSOX2000 did not read the simulated scope: $out"
host=$(host_pid)
sim=$(for p in /proc/[0-9]*; do
  [ "$(sed -n 's/^PPid:[[:space:]]*//p' "$p/status" 2>/dev/null)" = "$pid" ] &&
    [ "$(cat "$p/comm" 2>/dev/null)" = tether-sim-scop ] && echo "${p#/proc/}"
done | head -1)
[ -n "$host" ] && [ -n "$sim" ] || fail "no host ($host) or simulator ($sim) found"
for p in $host $sim; do
  what="$(cat /proc/$p/comm) ($p)"
  [ "$(field $p Uid | cut -f1)" != 0 ] || fail "$what runs as root"
  for set in CapPrm CapEff CapAmb CapInh; do
    [ "$(field $p $set)" = 0000000000000000 ] || fail "$what has $set $(field $p $set)"
  done
  [ "$(field $p NoNewPrivs)" = 1 ] || fail "$what without no_new_privs"
done
echo "ok: the driver read the simulated scope; its host and the simulator run as uid $(field $host Uid | cut -f1), no capability"

# The watchdog: a host stopped is killed (another uid's process) and replaced.
kill -STOP "$host"
for ((i = 0; i < 200; i++)); do
  new=$(host_pid)
  [ -n "$new" ] && [ "$new" != "$host" ] && break
  sleep 0.05
done
[ -n "$new" ] && [ "$new" != "$host" ] || fail "the stopped host ($host) was not replaced"
for ((i = 0; i < 40; i++)); do [ -d /proc/$host ] || break; sleep 0.05; done
[ -d /proc/$host ] && fail "the stopped host ($host) still exists"
grep -q "host of DSOX2000 .*killed" "$dir/log" || fail "no line about the host killed"
# The new host's driver has started (and its simulator with it) only once
# tetherd says so: its TetherHostPID is there before.
for ((i = 0; i < 200; i++)); do
  [ "$(grep -c "DSOX2000 started on DSO-X 2002A" "$dir/log")" -ge 2 ] && break
  sleep 0.05
done
[ "$(grep -c "DSOX2000 started on DSO-X 2002A" "$dir/log")" -ge 2 ] || fail "the new host's driver did not start"
echo "ok: the watchdog killed the stopped host and started another ($new)"

# Killed, tetherd takes its processes with it, even those that would not
# notice (stopped, or stuck).
kids=$(for p in /proc/[0-9]*; do
  [ "$(sed -n 's/^PPid:[[:space:]]*//p' "$p/status" 2>/dev/null)" = "$pid" ] && echo "${p#/proc/}"
done)
[ "$(wc -w <<<"$kids")" -ge 3 ] || fail "expected two hosts and a simulator, found: $kids"
# Stopped, they cannot see tetherd's end of their sockets close: only the
# parent-death signal (set after the uid change, which clears it) ends them.
for k in $kids; do kill -STOP $k; done
kill -KILL $pid
wait $pid 2>/dev/null
pid=
for ((i = 0; i < 40; i++)); do
  left=
  for k in $kids; do [ -d /proc/$k ] && left+=" $k"; done
  [ -z "$left" ] && break
  sleep 0.05
done
if [ -n "$left" ]; then
  msg="outlived a killed tetherd:$(for k in $left; do printf ' %s(%s)' $k "$(cat /proc/$k/comm)"; done)"
  kill -KILL $left # the test's own, stopped above
  fail "$msg"
fi
echo "ok: tetherd killed, its hosts and simulator are gone"
exit 0
