#!/usr/bin/env bash
# tether scope against tetherd with a simulated DSO-X 2002A: what a person
# sees (measurements, files) and the errors they get.
set -u
tetherd=$1 tether=$2 simscope=$3
dir=$(mktemp -d)
export TETHER_SOCKET="$dir/s.sock"
fail() { echo "FAIL: $*"; exit 1; }

# No daemon: one clear line, non-zero exit.
out=$("$tether" scope list 2>&1) && fail "list without a daemon succeeded"
grep -q "cannot reach tetherd" <<<"$out" || fail "no-daemon message: $out"

"$tetherd" --socket "$TETHER_SOCKET" --no-usb --simulate dsox2002a:CLI0001 --ready-fd 4 4>"$dir/ready" 2>"$dir/log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do grep -q READY "$dir/ready" 2>/dev/null && break; sleep 0.05; done

"$tether" scope list | grep -q "DSO-X 2002A  CLI0001" || fail "list"
out=$("$tether" scope capture --autoscale --channel both --points 2000 --csv "$dir/w.csv" --png "$dir/w.png" 2>/dev/null) \
  || fail "capture: $out"
grep -q "channel 1:  frequency 1000 Hz" <<<"$out" || fail "ch1 measurements: $out"
grep -q "channel 2:  frequency 10000 Hz" <<<"$out" || fail "ch2 measurements: $out"
[ "$(head -n1 "$dir/w.csv")" = "time_s,ch1_V,ch2_V" ] || fail "csv header"
[ "$(wc -l <"$dir/w.csv")" -eq 2001 ] || fail "csv rows: $(wc -l <"$dir/w.csv")"
# The time axis spans the 5 ms screen and is centred on the trigger.
awk -F, 'NR==2 {if ($1 != "-2.500000000e-03") exit 1} NR==2001 {if ($1 != "2.497500000e-03") exit 1}' "$dir/w.csv" \
  || fail "csv time axis"
# The square wave: only ~0 V and ~2.5 V on channel 1.
awk -F, 'NR>1 && !($2 < 0.1 && $2 > -0.1) && !($2 > 2.4 && $2 < 2.6) {bad=1} END {exit bad}' "$dir/w.csv" \
  || fail "csv channel 1 values"
# A PNG of 800 x 480.
[ "$(head -c 8 "$dir/w.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "png signature"
[ "$(od -An -tu1 -j16 -N8 "$dir/w.png" | tr -s ' ')" = " 0 0 3 32 0 0 1 224" ] || fail "png size"

"$tether" scope screenshot --png "$dir/screen.png" | grep -q "the scope's screen" || fail "screenshot"
[ "$(od -An -tu1 -j16 -N8 "$dir/screen.png" | tr -s ' ')" = " 0 0 3 32 0 0 1 224" ] || fail "screenshot size"
out=$("$tether" scope set TimebaseScale 100 2>&1) && fail "out-of-range set succeeded"
grep -q "refused by the driver: invalid argument: TimebaseScale must be a number from 5e-9 to 50 (s/div)$" <<<"$out" \
  || fail "refusal message: $out"
"$tether" scope set TimebaseScale 0.001 | grep -q accepted || fail "set"
"$tether" scope show | grep -q "TimebaseScale *0.001" || fail "show after set"
[ "$("$tether" scope scpi ':TIM:SCAL?')" = "+1.00000000E-03" ] || fail "scpi"
out=$("$tether" scope --serial NOPE show 2>&1) && fail "unknown serial succeeded"
grep -q "no DSO-X 2000 scope with serial NOPE" <<<"$out" || fail "unknown serial message"
# Whose end a failure was: the driver killed mid-capture (its nub stays),
# then the simulated scope itself (its driver stays, its link is gone).
# (With the driver inside tetherd, --in-process, it has no host of its own to kill.)
if [ -z "${TETHER_IN_PROCESS:-}" ]; then
  "$tether" scope set TimebaseScale 0.5 >/dev/null || fail "set a 5 s sweep"
  host=$("$tether" reg -c DSOX2000 | awk '/"TetherHostPID"/ {print $NF}')
  [ -n "$host" ] || fail "no TetherHostPID"
  (sleep 1; kill -KILL "$host") &
  killer=$!
  out=$("$tether" scope capture --csv "$dir/k.csv" 2>&1) && fail "capture survived its driver's death"
  wait $killer
  grep -q "capture: the scope's driver stopped (it crashed" <<<"$out" || fail "driver killed: $out"
  for _ in $(seq 100); do "$tether" reg -c DSOX2000 >/dev/null 2>&1 && break; sleep 0.1; done
fi
"$tether" scope set TimebaseScale 0.5 >/dev/null || fail "set a 5 s sweep"
sim=$(pgrep -f -- "--usb-fd 3 --serial CLI0001 ")
[ -n "$sim" ] || fail "no simulator for CLI0001"
(sleep 1; kill -KILL $sim) &
killer=$!
out=$("$tether" scope capture --csv "$dir/k.csv" 2>&1) && fail "capture survived its scope's death"
wait $killer
grep -q "capture: the scope stopped answering its link" <<<"$out" || fail "scope killed: $out"

# --channel: lists, all, and the model's own count.
out=$("$tether" scope measure --channel 3 2>&1) && fail "channel 3 of a 2-channel scope succeeded"
grep -qx "tether scope: --channel 3: this scope has 2 channels" <<<"$out" || fail "channel 3 message: $out"
for bad in 5 0 1, ,1 12 1,,2 x; do
  "$tether" scope measure --channel "$bad" >/dev/null 2>&1
  [ $? -eq 2 ] || fail "--channel $bad was not refused as usage"
done
[ "$("$tether" scope measure --channel all | grep -c '^channel [12]:')" -eq 2 ] || fail "all: not channels 1 and 2"
# A 4-channel model: channels 3 and 4 start off, and are switched on to be digitized.
kill $pid; wait $pid 2>/dev/null
rm -f "$dir/ready"
"$tetherd" --socket "$TETHER_SOCKET" --no-usb --simulate dsox2004a:CLI0004 --ready-fd 4 4>"$dir/ready" 2>"$dir/log" &
pid=$!
for _ in $(seq 200); do grep -q READY "$dir/ready" 2>/dev/null && break; sleep 0.05; done
out=$("$tether" scope capture --channel 3,4 --points 1000 --csv "$dir/w4.csv" --png "$dir/w4.png" 2>&1) ||
  fail "capture of channels 3 and 4: $out"
[ "$(head -n1 "$dir/w4.csv")" = "time_s,ch3_V,ch4_V" ] || fail "4-channel csv header: $(head -n1 "$dir/w4.csv")"
[ "$(wc -l <"$dir/w4.csv")" -eq 1001 ] || fail "4-channel csv rows"
grep -q "channel 3:  frequency 5" <<<"$out" || fail "channel 3 measured: $out"
[ "$("$tether" scope measure --channel all | grep -c '^channel [1-4]:')" -eq 4 ] || fail "all: not 4 channels"
[ "$(od -An -tu1 -j16 -N8 "$dir/w4.png" | tr -s ' ')" = " 0 0 3 32 0 0 1 224" ] || fail "4-channel png size"

# The LAN option: the simulator serving raw SCPI on TCP, tetherd --lan.
kill $pid; wait $pid 2>/dev/null
"$simscope" --listen 127.0.0.1:0 --serial LAN0001 >"$dir/sim.out" &
sim=$!
trap 'kill $pid $sim 2>/dev/null; wait $pid $sim 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do grep -q LISTENING "$dir/sim.out" 2>/dev/null && break; sleep 0.05; done
port=$(awk '{print $2}' "$dir/sim.out")
rm -f "$dir/ready"
"$tetherd" --socket "$TETHER_SOCKET" --no-usb --lan "127.0.0.1:$port" --ready-fd 4 4>"$dir/ready" 2>"$dir/log" &
pid=$!
for _ in $(seq 200); do grep -q READY "$dir/ready" 2>/dev/null && break; sleep 0.05; done
"$tether" scope list | grep -q "DSO-X 2002A  LAN0001 .*TetherLAN" || fail "lan list"
out=$("$tether" scope capture --autoscale --points 62500 --csv "$dir/lan.csv" 2>/dev/null) || fail "lan capture: $out"
grep -q "channel 1:  frequency 1000 Hz" <<<"$out" || fail "lan measurements: $out"
[ "$(wc -l <"$dir/lan.csv")" -eq 62501 ] || fail "lan csv rows"
echo "tether scope CLI: all checks passed"
