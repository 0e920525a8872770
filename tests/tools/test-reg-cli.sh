#!/usr/bin/env bash
# tether reg against tetherd with the example driver and a simulated
# DSO-X 2002A: the tree and its flags, --json through jq, set (accepted and
# refused), watch (arrivals, removals, property changes, the daemon going
# away), and the errors. Waits poll for a condition with a deadline; none
# sleeps a fixed time and hopes.
set -u
tetherd=$1 tether=$2 devices=$3
dir=$(mktemp -d)
export TETHER_SOCKET="$dir/s.sock"
pid= watch=
trap 'kill $pid $watch 2>/dev/null; wait $pid $watch 2>/dev/null; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
command -v jq >/dev/null || fail "jq is not installed (scripts/install-deps.sh installs it)"

. "$(dirname "$0")/../lib.sh" # wait_for, wait_exit
# run CMD...: stdout in $out, stderr in $err, status in $rc.
run() {
  "$@" >"$dir/out" 2>"$dir/err"
  rc=$?
  out=$(cat "$dir/out") err=$(cat "$dir/err")
}

# ---- no daemon: one clear line, non-zero ----
run "$tether" reg
[ $rc -ne 0 ] || fail "reg without a daemon succeeded"
[ "$err" = "tether reg: cannot reach tetherd at $TETHER_SOCKET: no such socket (is tetherd running? \$TETHER_SOCKET names its socket)" ] \
  || fail "no-daemon message: $err"

"$tetherd" --socket "$TETHER_SOCKET" --no-usb --simulate dsox2002a:REG0001 --ready-fd 4 4>"$dir/ready" 2>"$dir/log" &
pid=$!
wait_for "$dir/ready" READY 20 || fail "tetherd did not start: $(cat "$dir/log")"

# ---- the tree ----
state='registered, (!)?matched, active, busy 0, open 0>'
run "$tether" reg
[ $rc -eq 0 ] || fail "reg: $err"
expect=(
  "\+-o Root  <class TetherRegistryRoot, id 0x[0-9a-f]+, registered, !matched, active, busy 0, open 0>"
  "  \+-o TetherResources  <class TetherResources, id 0x[0-9a-f]+, registered, matched, active, busy 0, open 0>"
  "  \| \+-o ExampleDriver  <class ExampleDriver, id 0x[0-9a-f]+, registered, matched, active, busy 0, open 0>"
  "  \+-o TetherUSB  <class TetherUSBBus, id 0x[0-9a-f]+, $state"
  "    \+-o DSO-X 2002A@sim0  <class TetherUSBDevice, id 0x[0-9a-f]+, $state"
  "      \+-o DSOX2000@sim0  <class DSOX2000, id 0x[0-9a-f]+, registered, matched, active, busy 0, open 0>"
)
[ "$(wc -l <<<"$out")" -eq ${#expect[@]} ] || fail "tree lines: $out"
for i in "${!expect[@]}"; do
  sed -n "$((i + 1))p" <<<"$out" | grep -Eqx -- "${expect[$i]}" || fail "tree line $((i + 1)): $(sed -n "$((i + 1))p" <<<"$out")"
done
grep -q BaudRate <<<"$out" && fail "properties without -l"

run "$tether" reg -l
grep -Fqx '  |       "BaudRate" = 9600' <<<"$out" || fail "-l BaudRate: $out"
grep -Fqx '            "SerialNumber" = "REG0001"' <<<"$out" || fail "-l SerialNumber"
grep -Fqx '  |   "TetherVersion" = "0.1.0"' <<<"$out" || fail "-l root properties"

# -c: the path to each match, and the match's properties (as ioreg).
run "$tether" reg -c DSOX2000
[ $rc -eq 0 ] || fail "-c: $err"
grep -c -- '+-o' <<<"$out" | grep -qx 4 || fail "-c lines: $out"
grep -q "ExampleDriver" <<<"$out" && fail "-c shows a non-matching branch"
grep -Fq '"SerialNumber" = "REG0001"' <<<"$out" || fail "-c shows the match's properties"
grep -q TetherVersion <<<"$out" && fail "-c shows an ancestor's properties"
# -r: the subtrees rooted at the matches.
run "$tether" reg -r -c TetherUSBDevice
head -n1 <<<"$out" | grep -Eq '^\+-o DSO-X 2002A@sim0  <class TetherUSBDevice' || fail "-r root: $out"
grep -Eq '^  \+-o DSOX2000@sim0' <<<"$out" || fail "-r child: $out"
grep -q Root <<<"$out" && fail "-r shows ancestors"
run "$tether" reg -r -n 'DSO-X 2002A@sim0' -d 1
[ "$(grep -c -- '+-o' <<<"$out")" -eq 1 ] || fail "-n name@location -d 1: $out"
run "$tether" reg -d 2
[ "$(wc -l <<<"$out")" -eq 3 ] || fail "-d 2: $out"
run "$tether" reg -x -n ExampleDriver
grep -Fq '"BaudRate" = 0x2580' <<<"$out" || fail "-x: $out"
run "$tether" reg -c NoSuchClass
[ $rc -ne 0 ] && [ "$err" = "tether reg: no entry of class NoSuchClass" ] || fail "no match: $rc $err"

# -w clips every line; without it (not a terminal) nothing is clipped.
run "$tether" reg -l
full=$out
run "$tether" reg -l -w 30
[ -z "$(awk 'length > 30' <<<"$out")" ] || fail "-w 30 left long lines"
[ "$(head -n1 <<<"$out")" = "$(head -n1 <<<"$full" | cut -c1-30)" ] || fail "-w 30 first line: $(head -n1 <<<"$out")"
[ -n "$(awk 'length > 30' <<<"$full")" ] || fail "lines clipped without -w"

# Planes.
run "$tether" reg -p TetherService
[ $rc -eq 0 ] && [ "$out" = "$("$tether" reg)" ] || fail "-p TetherService"
run "$tether" reg -p IODeviceTree
[ $rc -ne 0 ] && [ "$err" = 'tether reg: unknown plane "IODeviceTree" (the only plane is TetherService)' ] || fail "-p unknown: $err"

# ---- --json ----
run "$tether" reg --json
[ $rc -eq 0 ] || fail "--json: $err"
jq -e . <<<"$out" >/dev/null || fail "--json is not JSON"
jq -e '.schema == 1 and .plane == "TetherService" and (.entries | length) == 1' <<<"$out" >/dev/null || fail "json header"
jq -e '.entries[0] | .class == "TetherRegistryRoot" and .parent == null and .path == "TetherService:/"' <<<"$out" >/dev/null \
  || fail "json root"
drv_json=$(jq -c '.. | objects | select(.class? == "ExampleDriver")' <<<"$out")
jq -e '.properties.BaudRate == 9600 and .propertyTypes.BaudRate == "uint32" and .driver == "org.tether.example"
       and .state == {registered: true, matched: true, active: true, inactive: false} and .openCount == 0
       and .busy == 0 and .childCount == 0 and .children == [] and (.id | test("^0x[0-9a-f]+$"))
       and .path == "TetherService:/TetherResources/ExampleDriver" and .location == ""' <<<"$drv_json" >/dev/null \
  || fail "json ExampleDriver: $drv_json"
drv_id=$(jq -r .id <<<"$drv_json")
jq -e '[.. | objects | select(.class? == "TetherUSBDevice")][0] | .driver == null and .location == "sim0"
       and .properties.TetherSimulated == true and .propertyTypes.idVendor == "uint16" and .properties.idVendor == 2391' \
  <<<"$out" >/dev/null || fail "json nub"
run "$tether" reg -c DSOX2000 --json
[ "$(jq -r '.entries | length' <<<"$out")" = 1 ] || fail "json -c count"
[ "$(jq -r '.entries[0].properties.SerialNumber' <<<"$out")" = REG0001 ] || fail "json -c serial"
jq -e '.entries[0] | .children == [] and .childCount == 0 and .propertyTypes.TimebaseScale == "double"' <<<"$out" >/dev/null \
  || fail "json -c entry"
run "$tether" reg -r -c TetherUSBBus -d 2 --json
jq -e '.entries[0].children[0].class == "TetherUSBDevice" and .entries[0].children[0].children == []
       and .entries[0].children[0].childCount == 1' <<<"$out" >/dev/null || fail "json -r -d: $out"

# ---- entry arguments: a path, an id, a name ----
run "$tether" reg TetherService:/TetherUSB
head -n1 <<<"$out" | grep -q '^+-o TetherUSB  <class TetherUSBBus' || fail "reg PATH: $out"
run "$tether" reg "$drv_id"
[ "$(grep -c -- '+-o' <<<"$out")" -eq 1 ] && grep -q '^+-o ExampleDriver' <<<"$out" || fail "reg ID: $out"
run "$tether" reg "$((drv_id))"
grep -q '^+-o ExampleDriver' <<<"$out" || fail "reg decimal ID: $out"
run "$tether" reg NoSuchThing
[ $rc -ne 0 ] && grep -q "^tether reg: NoSuchThing: no such entry" <<<"$err" || fail "unknown entry: $err"
run "$tether" reg 0x7777
[ $rc -ne 0 ] && [ "$err" = "tether reg: 0x7777: no entry with id 0x7777" ] || fail "unknown id: $err"
run "$tether" reg TetherService:/Nope
[ $rc -ne 0 ] && [ "$err" = "tether reg: TetherService:/Nope: no such entry" ] || fail "unknown path: $err"

# ---- set ----
baud() { "$tether" reg -c ExampleDriver --json | jq -r '.entries[0].properties.BaudRate'; }
run "$tether" reg set ExampleDriver BaudRate 19200
[ $rc -eq 0 ] && [ "$out" = "ExampleDriver (id $drv_id) accepted BaudRate = 19200 (uint32)" ] \
  || fail "set accepted: $rc $out $err"
[ "$(baud)" = 19200 ] || fail "BaudRate after set"
run "$tether" reg set "$drv_id" BaudRate 12345
[ $rc -eq 1 ] && [ -z "$out" ] || fail "refused set: $rc $out"
[ "$err" = "tether reg set: ExampleDriver (id $drv_id) refused BaudRate = 12345 (uint32): BadArgument (invalid argument): BaudRate must be a standard rate: 300, 1200, 2400, 4800, 9600, 19200, 38400, 57600 or 115200" ] \
  || fail "refusal message: $err"
[ "$(baud)" = 19200 ] || fail "a refused write changed BaudRate"
run "$tether" reg set TetherService:/TetherResources/ExampleDriver Model other
[ $rc -eq 1 ] && grep -q "refused Model = \"other\" (string): NotWritable" <<<"$err" || fail "NotWritable: $err"
run "$tether" reg set TetherResources X 1
[ $rc -eq 1 ] && grep -q "Unsupported (unsupported function): not a service" <<<"$err" || fail "set on a nub: $err"
run "$tether" reg set ExampleDriver BaudRate fast
[ $rc -eq 2 ] && [ "$err" = 'tether reg set: "fast" is not a uint32 (the type it has now; -t sets another)' ] \
  || fail "unparsable value: $err"
run "$tether" reg set -t string ExampleDriver BaudRate 9600
[ $rc -eq 1 ] && grep -q 'refused BaudRate = "9600" (string): BadArgument' <<<"$err" || fail "set -t string: $err"
run "$tether" reg set ExampleDriver Greeting "hi there"
[ $rc -eq 0 ] && grep -q 'accepted Greeting = "hi there" (string)$' <<<"$out" || fail "set string: $out $err"
# The scope checks its ranges, sends the setting, and reads it back.
run "$tether" reg set DSOX2000 Channel1Scale 100
[ $rc -eq 1 ] && grep -q "refused Channel1Scale = 100 (double): BadArgument" <<<"$err" || fail "scope refused: $err"
run "$tether" reg set DSOX2000@sim0 Channel1Scale 0.5
[ $rc -eq 0 ] && grep -q "^DSOX2000@sim0 (id 0x[0-9a-f]*) accepted Channel1Scale = 0.5 (double)$" <<<"$out" \
  || fail "scope accepted: $out $err"
run "$tether" reg set DSOX2000 TriggerSource CHAN3
[ $rc -eq 1 ] && grep -q 'refused TriggerSource = "CHAN3" (string): BadArgument' <<<"$err" || fail "scope string: $err"
[ "$("$tether" reg -c DSOX2000 --json | jq -r '.entries[0].properties.Channel1Scale')" = 0.5 ] || fail "scope read back"
# The driver's reason, cut to 200 bytes when longer (and logged, naming the driver).
run "$tether" reg set ExampleDriver "$(printf 'K%.0s' {1..300})" 1
reason=${err#*NotWritable (write not supported): }
[ $rc -eq 1 ] && [ "${#reason}" -eq 200 ] && [ "${reason:0:44}" = 'ExampleDriver has no writable property "KKKK' ] \
  || fail "over-long reason: ${#reason} $err"
grep -q "driver org.tether.example (ExampleDriver): a refusal reason of 341 bytes was cut to 200" "$dir/log" \
  || fail "the cut is not logged: $(cat "$dir/log")"

# ---- who writes: the socket is everyone's, some keys are administrators' ----
# Locked and HoldDeviceStart would let one user shut the others out; the
# scope's link timeout holds everyone's calls. Root is an administrator;
# uid 65534 is not, but may set the ordinary keys.
locked() { "$tether" reg -c ExampleDriver --json | jq -r '.entries[0].properties.Locked'; }
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
  pub=$(mktemp -d)
  chmod 755 "$pub" "$dir"
  cp "$tether" "$(dirname "$tether")/../src/libtether.so.0" "$pub/"
  as_nobody() {
    run setpriv --reuid=65534 --regid=65534 --clear-groups env LD_LIBRARY_PATH="$pub" ASAN_OPTIONS=detect_leaks=0 \
      "$pub/tether" "$@"
  }
  admin_only="may be set by an administrator only (root, or tetherd's admin group); uid 65534 is not one"
  as_nobody reg set ExampleDriver Locked true
  [ $rc -eq 1 ] && [ -z "$out" ] && [ "$err" = "tether reg set: ExampleDriver (id $drv_id) refused Locked = Yes (bool): NotPrivileged (privilege violation): Locked $admin_only" ] \
    || fail "nobody set Locked: $rc $out $err"
  [ "$(locked)" = false ] || fail "a refused Locked changed the table"
  as_nobody reg set ExampleDriver HoldDeviceStart true
  [ $rc -eq 1 ] && grep -q "NotPrivileged (privilege violation): HoldDeviceStart $admin_only\$" <<<"$err" \
    || fail "nobody set HoldDeviceStart: $rc $err"
  [ "$("$tether" reg -c ExampleDriver --json | jq -r '.entries[0].properties.HoldDeviceStart')" = null ] \
    || fail "a refused HoldDeviceStart changed the table"
  as_nobody reg set ExampleDriver Greeting "from nobody"
  [ $rc -eq 0 ] && [ "$out" = "ExampleDriver (id $drv_id) accepted Greeting = \"from nobody\" (string)" ] \
    || fail "nobody set Greeting: $rc $out $err"
  as_nobody reg set ExampleDriver BaudRate 7
  [ $rc -eq 1 ] && grep -q "BadArgument (invalid argument): BaudRate must be a standard rate" <<<"$err" \
    || fail "nobody's bad BaudRate: $rc $err"
  as_nobody reg set DSOX2000 TimeoutMs 1000
  [ $rc -eq 1 ] && grep -q "NotPrivileged (privilege violation): TimeoutMs $admin_only\$" <<<"$err" \
    || fail "nobody set TimeoutMs: $rc $err"
  as_nobody reg set DSOX2000 TimebaseScale 0.002
  [ $rc -eq 0 ] && grep -q "accepted TimebaseScale = 0.002 (double)$" <<<"$out" || fail "nobody set TimebaseScale: $rc $out $err"
  as_nobody reg set DSOX2000 TimebaseScale 1000
  [ $rc -eq 1 ] && grep -q "BadArgument (invalid argument): TimebaseScale must be a number from 5e-9 to 50 (s/div)$" <<<"$err" \
    || fail "nobody's bad TimebaseScale: $rc $err"
  chmod 700 "$dir"
  rm -rf "$pub"
  run "$tether" reg set ExampleDriver Locked true
  [ $rc -eq 0 ] && [ "$(locked)" = true ] || fail "root set Locked: $rc $err"
  run "$tether" reg set DSOX2000 TimeoutMs 4000
  [ $rc -eq 0 ] || fail "root set TimeoutMs: $rc $err"
  run "$tether" reg set ExampleDriver Locked false
  [ $rc -eq 0 ] && [ "$(locked)" = false ] || fail "root cleared Locked: $rc $err"
fi

# ---- watch ----
"$tether" reg watch >"$dir/w.out" 2>"$dir/w.err" &
watch=$!
wait_for "$dir/w.err" "^tether reg watch: watching TetherService; Ctrl-C stops$" || fail "watch did not start: $(cat "$dir/w.err")"
ts='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}  '
"$tether" reg set ExampleDriver BaudRate 38400 >/dev/null || fail "set for watch"
wait_for "$dir/w.out" "${ts}changed  ExampleDriver  ExampleDriver  id $drv_id  BaudRate = 38400$" || fail "watch change: $(cat "$dir/w.out")"
# A write of the same value, and a refused one, are no change: the next
# line must be the device's arrival, not a second BaudRate.
"$tether" reg set ExampleDriver BaudRate 38400 >/dev/null || fail "same-value set"
"$tether" reg set ExampleDriver BaudRate 1 2>/dev/null && fail "BaudRate 1 accepted"
nub=$("$devices" publish 7) || fail "publish"
wait_for "$dir/w.out" "${ts}arrived  ExampleDevice  ExampleDevice@7  id 0x[0-9a-f]+$" || fail "watch arrival: $(cat "$dir/w.out")"
[ "$(sed -n 2p "$dir/w.out" | cut -c26-)" = "arrived  ExampleDevice  ExampleDevice@7  id $(jq -r '.entries[0].id' <<<"$("$tether" reg -c ExampleDevice --json)")" ] \
  || fail "watch line 2: $(cat "$dir/w.out")"
"$devices" remove "$nub" || fail "remove"
wait_for "$dir/w.out" "${ts}removed  ExampleDevice  ExampleDevice@7  id 0x[0-9a-f]+$" || fail "watch removal: $(cat "$dir/w.out")"
"$tether" reg set DSOX2000 Channel2Scale 0.2 >/dev/null || fail "scope set for watch"
wait_for "$dir/w.out" "${ts}changed  DSOX2000  DSOX2000@sim0  id 0x[0-9a-f]+  Channel2Scale = 0.2$" || fail "watch scope: $(cat "$dir/w.out")"
"$tether" reg set -t uint32 ExampleDriver BaudRate 300 >/dev/null || fail "set -t uint32"
"$tether" reg set ExampleDriver Greeting "hello again" >/dev/null || fail "set Greeting"
wait_for "$dir/w.out" 'Greeting = "hello again"$' || fail "watch greeting"
[ "$(grep -c 'BaudRate' "$dir/w.out")" -eq 2 ] || fail "watch BaudRate lines: $(cat "$dir/w.out")"
[ "$(wc -l <"$dir/w.out")" -eq 6 ] || fail "watch lines: $(cat "$dir/w.out")"
kill -INT $watch
wait_exit $watch || fail "watch ignored SIGINT"
[ $rc -eq 0 ] || fail "watch exit status after SIGINT: $rc"
watch=

# ---- watch --json: the same events as objects, for jq ----
"$tether" reg watch --json >"$dir/wj.out" 2>"$dir/wj.err" &
watch=$!
wait_for "$dir/wj.err" "^tether reg watch: watching TetherService; Ctrl-C stops$" || fail "watch --json did not start"
"$tether" reg set ExampleDriver BaudRate 57600 >/dev/null || fail "set for watch --json"
nub=$("$devices" publish 8) || fail "publish for watch --json"
# A nub removed before its driver has started never arrives, so never leaves.
wait_for "$dir/wj.out" '"kind":"arrived"' || fail "watch --json arrival: $(cat "$dir/wj.out")"
"$devices" remove "$nub" || fail "remove for watch --json"
wait_for "$dir/wj.out" '"kind":"removed"' || fail "watch --json removal: $(cat "$dir/wj.out")"
kill -INT $watch
wait_exit $watch || fail "watch --json ignored SIGINT"
watch=
[ "$(wc -l <"$dir/wj.out")" -eq 3 ] || fail "watch --json lines: $(cat "$dir/wj.out")"
[ "$(jq -c 'select(.kind == "changed") | [.schema, .class, .id, .changed, .removed]' "$dir/wj.out")" = \
  "[1,\"ExampleDriver\",\"$drv_id\",{\"BaudRate\":57600},[]]" ] || fail "watch --json change: $(cat "$dir/wj.out")"
[ "$(jq -r 'select(.kind != "changed") | "\(.kind) \(.class) \(.name)"' "$dir/wj.out")" = \
  "$(printf 'arrived ExampleDevice ExampleDevice@8\nremoved ExampleDevice ExampleDevice@8')" ] \
  || fail "watch --json arrival/removal: $(cat "$dir/wj.out")"
jq -es 'all(.[]; .time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z$"))' "$dir/wj.out" >/dev/null \
  || fail "watch --json time"

# ---- busy: a service still starting counts at it and every ancestor ----
# (After the first watch: the held device's removal is announced late, after
# its entry has left the tree, and must not land in that watch's count.)
"$tether" reg set ExampleDriver HoldDeviceStart true >/dev/null || fail "hold device starts"
held=$("$devices" publish 9) || fail "publish held device"
# The device is attached when publish returns; its start waits for the flag.
run "$tether" reg -c ExampleDevice
grep -Eqx '        \+-o ExampleDevice@9  <class ExampleDevice, id 0x[0-9a-f]+, registered, !matched, !active, busy 1, open 0>' <<<"$out" \
  || fail "starting device: $out"
grep -Eqx '\+-o Root  <class TetherRegistryRoot, id 0x[0-9a-f]+, registered, !matched, active, busy 1, open 0>' <<<"$out" \
  || fail "root not busy: $out"
run "$tether" reg --json
[ "$(jq -c '[.. | objects | select(.busy? > 0) | .class]' <<<"$out")" = \
  '["TetherRegistryRoot","TetherResources","ExampleDriver","ExampleDeviceNub","ExampleDevice"]' ] \
  || fail "json busy: $(jq -c '[.. | objects | select(.busy? > 0) | .class]' <<<"$out")"
"$tether" reg set ExampleDriver HoldDeviceStart false >/dev/null || fail "release device starts"
ok=0
for ((i = 0; i < 200; i++)); do
  "$tether" reg -n ExampleDevice@9 >"$dir/busy" 2>&1
  if grep -Eq 'ExampleDevice@9  <class ExampleDevice, id 0x[0-9a-f]+, registered, matched, active, busy 0, open 0>' "$dir/busy" &&
     grep -Eq '^\+-o Root  .*, busy 0, open 0>$' "$dir/busy"; then ok=1; break; fi
  sleep 0.05
done
[ $ok -eq 1 ] || fail "device never finished starting: $(cat "$dir/busy")"
"$devices" remove "$held" || fail "remove held device"

# -c filters; and when tetherd goes away, watch says so and fails.
"$tether" reg watch -c ExampleDriver >"$dir/w2.out" 2>"$dir/w2.err" &
watch=$!
wait_for "$dir/w2.err" "watching TetherService for class ExampleDriver" || fail "watch -c did not start"
"$tether" reg set DSOX2000 Channel2Scale 0.5 >/dev/null || fail "scope set for watch -c"
"$tether" reg set ExampleDriver BaudRate 1200 >/dev/null || fail "set for watch -c"
wait_for "$dir/w2.out" "BaudRate = 1200$" || fail "watch -c change"
grep -q DSOX2000 "$dir/w2.out" && fail "watch -c showed another class"
kill $pid
wait $pid 2>/dev/null
pid=
wait_exit $watch || fail "watch outlived tetherd"
[ $rc -eq 1 ] || fail "watch exit status when tetherd left: $rc"
grep -qx "tether reg watch: tetherd went away" "$dir/w2.err" || fail "watch message: $(cat "$dir/w2.err")"
watch=

# ---- permission: a socket the user may not reach ----
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
  "$tetherd" --socket "$TETHER_SOCKET" --no-usb --ready-fd 4 4>"$dir/ready2" 2>>"$dir/log" &
  pid=$!
  wait_for "$dir/ready2" READY 20 || fail "tetherd restart"
  pub=$(mktemp -d)
  chmod 755 "$pub"
  lib=$(dirname "$tether")/../src/libtether.so.0
  cp "$tether" "$lib" "$pub/"
  chmod 700 "$dir"
  # (Leak checking as another user is not what this checks.)
  run setpriv --reuid=65534 --regid=65534 --clear-groups env LD_LIBRARY_PATH="$pub" ASAN_OPTIONS=detect_leaks=0 \
    "$pub/tether" reg
  rm -rf "$pub"
  [ $rc -eq 1 ] && [ "$err" = "tether reg: cannot reach tetherd at $TETHER_SOCKET: permission denied" ] \
    || fail "permission: $rc $err"
fi
echo "tether reg CLI: all checks passed"
