#!/usr/bin/env bash
# Driver bundles through the real tetherd and `tether driver`: folders of
# good and bad bundles at start-up (each bad one refused with a line naming
# it, the rest loaded), list (text and --json), unload with a connection
# open (its calls then fail, the service leaves the registry), load at run
# time (nubs already published are matched), and who may do either. Last,
# where driver code runs: in hosts, never in tetherd, by default and under
# the old --isolate; in tetherd under --in-process, which refuses a bundle
# whose library it cannot load or that lacks a personality's driver.
set -u
tetherd=$1 tether=$2 devices=$3
bundles=$TETHER_DRIVERS
unset TETHER_DRIVERS # this test says which folders tetherd loads
unset TETHER_IN_PROCESS TETHER_ISOLATE # and where the drivers run
dir=$(mktemp -d)
chmod 755 "$dir"
export TETHER_SOCKET="$dir/s.sock"
pid=
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
command -v jq >/dev/null || fail "jq is not installed (scripts/install-deps.sh installs it)"
. "$(dirname "$0")/../lib.sh" # wait_for
run() {
  "$@" >"$dir/out" 2>"$dir/err"
  rc=$?
  out=$(cat "$dir/out") err=$(cat "$dir/err")
}
# bad NAME MANIFEST: a bundle folder whose manifest is MANIFEST, with the
# example's library beside it.
bad() {
  mkdir -p "$dir/drivers/$1"
  printf '%s' "$2" >"$dir/drivers/$1/manifest.json"
  cp "$bundles/org.tether.example.tether/example.so" "$dir/drivers/$1/"
}

# ---- a folder with one good bundle and bad ones ----
mkdir -p "$dir/drivers" "$dir/more"
cp -r "$bundles/org.tether.example.tether" "$dir/drivers/"
cp -r "$bundles/org.tether.dsox2000.tether" "$dir/more/"
cp -r "$bundles/org.tether.example.tether" "$dir/more/" # the same id again
mkdir -p "$dir/drivers/not-a-bundle" "$dir/drivers/org.tether.empty.tether"
bad org.tether.json.tether '{ "schema": 1, '
bad org.tether.key.tether '{"schema":1,"bundle":"org.tether.key","version":"1","library":"example.so","colour":"red",
  "personalities":{"P":{"driver":"ExampleDriver","IOProviderClass":"TetherResources"}}}'
bad org.tether.noclass.tether '{"schema":1,"bundle":"org.tether.noclass","version":"1","library":"example.so",
  "personalities":{"P":{"driver":"ExampleDriver"}}}'
bad org.tether.nolib.tether '{"schema":1,"bundle":"org.tether.nolib","version":"1","library":"missing.so",
  "personalities":{"P":{"driver":"ExampleDriver","IOProviderClass":"TetherResources"}}}'
bad org.tether.name.tether '{"schema":1,"bundle":"org.tether.other","version":"1","library":"example.so",
  "personalities":{"P":{"driver":"ExampleDriver","IOProviderClass":"TetherResources"}}}'

# Libraries that do not load, or lack the entry symbol: their personalities
# win TetherResources on score, their hosts refuse, the example takes it.
lib_bundle() { # ID LIBRARY-FILE SCORE
  mkdir -p "$dir/drivers/$1.tether"
  cp "$2" "$dir/drivers/$1.tether/lib.so"
  printf '{"schema":1,"bundle":"%s","version":"1","library":"lib.so","personalities":{"P":{"driver":"Nothing","IOProviderClass":"TetherResources","IOProbeScore":%s}}}' \
    "$1" "$3" >"$dir/drivers/$1.tether/manifest.json"
}
printf 'not an ELF file\n' >"$dir/garbage"
lib_bundle org.tether.badlib "$dir/garbage" 1000
lib_bundle org.tether.noentry "$(ls /usr/lib/*/libjson-c.so.* | head -n1)" 999
# Root's alone: a host (nobody) is run from an fd and given its library as
# one; it need not reach the bundle's folder, nor the build tree.
chmod 700 "$dir/drivers"

rm -f "$dir/ready" # the redirection below truncates in the child only: no stale READY
"$tetherd" --socket "$TETHER_SOCKET" --no-usb --no-system-drivers --drivers "$dir/drivers" --drivers "$dir/more" \
  --simulate dsox2002a:DRV0001 --ready-fd 4 4>"$dir/ready" 2>"$dir/log" &
pid=$!
wait_for "$dir/ready" READY 20 || fail "tetherd did not start: $(cat "$dir/log")"

for b in empty json key noclass nolib name; do
  grep -Eq "error: bundle $dir/drivers/org.tether.$b.tether refused: .+" "$dir/log" \
    || fail "no refusal naming org.tether.$b: $(cat "$dir/log")"
done
grep -q "org.tether.key.tether refused: .*colour" "$dir/log" || fail "the unknown key is not named: $(cat "$dir/log")"
grep -q "org.tether.noclass.tether refused: .*IOProviderClass" "$dir/log" || fail "the missing class is not named"
grep -q "$dir/more/org.tether.example.tether refused: bundle id org.tether.example is already loaded from $dir/drivers/org.tether.example.tether" "$dir/log" \
  || fail "the duplicate is not refused: $(cat "$dir/log")"
grep -q "not-a-bundle" "$dir/log" && fail "a folder that is no bundle was looked at"
grep -q "bundle library $dir/drivers/org.tether.badlib.tether/lib.so: " "$dir/log" || fail "no line on the bad library: $(cat "$dir/log")"
grep -q "bundle org.tether.badlib: Nothing: start refused the nub" "$dir/log" || fail "bad library not refused"
grep -q "bundle library $dir/drivers/org.tether.noentry.tether/lib.so: no tether_bundle" "$dir/log" || fail "no line on the missing entry"
grep -q "bundle org.tether.noentry: Nothing: start refused the nub" "$dir/log" || fail "missing entry not refused"

# ---- by default no driver code is loaded into tetherd: hosts run it ----
# (A library mapped into tetherd shows in its maps; --in-process, below, is
# the control that this would see one.)
grep -F ".tether/" "/proc/$pid/maps" && fail "tetherd mapped a bundle's file by default"
run "$tether" reg -l -c ExampleDriver
grep -Eq '"TetherHostPID" = [1-9][0-9]*' <<<"$out" || fail "ExampleDriver is not in a host by default: $out"

# ---- list ----
run "$tether" driver list
[ $rc -eq 0 ] || fail "list: $err"
[ "$(wc -l <<<"$out")" -eq 5 ] || fail "list: four bundles and a header expected: $out"
grep -Eq "^org.tether.example +0.1.0 +running +1 +0  $dir/drivers/org.tether.example.tether$" <<<"$out" || fail "list example: $out"
grep -Eq "^org.tether.dsox2000 +0.1.0 +running +1 +0  $dir/more/org.tether.dsox2000.tether$" <<<"$out" || fail "list dsox2000: $out"
run "$tether" driver list --json
# In load order: the folders as given, each in name order.
jq -se 'length == 4 and .[3].bundle == "org.tether.dsox2000" and .[0].bundle == "org.tether.badlib"
        and .[0].services == 0 and .[0].state == "loaded"
        and (.[] | select(.bundle == "org.tether.example") | .personalities == ["ExampleDriver", "ExampleDevice"]
             and .services == 1 and .state == "running")' <<<"$out" >/dev/null || fail "list --json: $out"
# Which bundle a service came from is in its table, as I/O Kit's CFBundleIdentifier.
run "$tether" reg -l -c DSOX2000
grep -Fq '"CFBundleIdentifier" = "org.tether.dsox2000"' <<<"$out" || fail "reg -l: no CFBundleIdentifier: $out"

# ---- only root loads and unloads ----
run setpriv --reuid=65534 --regid=65534 --clear-groups "$tether" driver unload org.tether.example
[ $rc -ne 0 ] && grep -q "NotPrivileged" <<<"$err" || fail "nobody unloaded a bundle: $rc $err"
run setpriv --reuid=65534 --regid=65534 --clear-groups "$tether" driver load "$bundles/org.tether.example.tether"
[ $rc -ne 0 ] && grep -q "NotPrivileged" <<<"$err" || fail "nobody loaded a bundle: $rc $err"

# ---- unload with a connection open: the client sees NotAttached ----
mkfifo "$dir/fifo"
"$devices" hold <"$dir/fifo" >"$dir/example.out" 2>&1 &
holder=$!
exec 5>"$dir/fifo"
wait_for "$dir/example.out" "holding" || fail "example client did not open: $(cat "$dir/example.out")"
run "$tether" driver unload org.tether.example
[ $rc -eq 0 ] && [ "$out" = "unloaded org.tether.example" ] || fail "unload: $rc $out $err"
exec 5>&- # the client calls again
wait "$holder"
grep -q "after unload: NotAttached" "$dir/example.out" || fail "call after unload: $(cat "$dir/example.out")"
run "$tether" reg -c ExampleDriver
[ -z "$out" ] || fail "ExampleDriver still in the registry: $out"
run "$tether" driver list --json
jq -se 'length == 3 and all(.[]; .bundle != "org.tether.example")' <<<"$out" >/dev/null || fail "list after unload: $out"
run "$tether" driver unload org.tether.example
[ $rc -ne 0 ] && grep -q "NotFound" <<<"$err" || fail "second unload: $rc $err"

# ---- load: TetherResources, already published, is matched at once ----
run "$tether" driver load "$bundles/org.tether.example.tether"
[ $rc -eq 0 ] || fail "load: $err"
for _ in $(seq 100); do "$tether" reg -c ExampleDriver | grep -q ExampleDriver && break; sleep 0.05; done
"$tether" reg -c ExampleDriver | grep -q "ExampleDriver  <class ExampleDriver" || fail "not matched after load"
run "$tether" driver load "$dir/drivers/org.tether.key.tether"
[ $rc -ne 0 ] && grep -q "colour" <<<"$err" || fail "a bad bundle's reason is not shown: $rc $err"
run "$tether" driver load "$dir/nowhere"
[ $rc -ne 0 ] || fail "loading nothing succeeded"

# ---- the access policy: only root may open the example's connections ----
cp -r "$bundles/org.tether.example.tether" "$dir/policy"
mkdir -p "$dir/policy2" && mv "$dir/policy" "$dir/policy2/org.tether.example.tether"
jq '.access = {"default": {"users": ["root"]}, "7": {"users": ["*"]}}' \
  "$bundles/org.tether.example.tether/manifest.json" >"$dir/policy2/org.tether.example.tether/manifest.json"
chmod -R a+rX "$dir/policy2"
run "$tether" driver unload org.tether.example
[ $rc -eq 0 ] || fail "unload before the policy: $err"
run "$tether" driver load "$dir/policy2/org.tether.example.tether"
[ $rc -eq 0 ] || fail "load with a policy: $err"
for _ in $(seq 100); do "$tether" reg -c ExampleDriver | grep -q ExampleDriver && break; sleep 0.05; done
run setpriv --reuid=65534 --regid=65534 --clear-groups "$devices" hold </dev/null
[ $rc -ne 0 ] && grep -q "privilege violation" <<<"$err$out" || fail "nobody opened a root-only type: $rc $out $err"
run "$devices" hold </dev/null
grep -q "holding" <<<"$out" || fail "root could not open: $out $err"
# The default entry keeps the service's property writes to root as well,
# before its driver hears of them; type 7's "*" opens a type, not writes.
run setpriv --reuid=65534 --regid=65534 --clear-groups "$tether" reg set ExampleDriver Greeting nobody
[ $rc -eq 1 ] && grep -q "NotPrivileged (privilege violation): the access policy of org.tether.example does not admit uid 65534$" <<<"$err" \
  || fail "nobody wrote outside the policy: $rc $out $err"
run "$tether" reg set ExampleDriver Greeting root
[ $rc -eq 0 ] || fail "root could not write: $rc $err"

stop_tetherd() {
  kill $pid
  wait $pid
  rc=$?
  pid=
  [ $rc -eq 0 ] || fail "tetherd exit status $rc: $(tail -5 "$dir/log")"
}
stop_tetherd

# ---- --isolate and TETHER_ISOLATE=1, from before hosts were the default:
# accepted, and the drivers are where they would be anyway ----
rm -f "$dir/ready" # the redirection below truncates in the child only: no stale READY
TETHER_ISOLATE=1 "$tetherd" --isolate --socket "$TETHER_SOCKET" --no-usb --no-system-drivers --drivers "$bundles" \
  --ready-fd 4 4>"$dir/ready" 2>"$dir/log" &
pid=$!
wait_for "$dir/ready" READY 20 || fail "tetherd --isolate did not start: $(cat "$dir/log")"
grep -F ".tether/" "/proc/$pid/maps" && fail "tetherd --isolate mapped a bundle's file"
run "$tether" reg -l -c ExampleDriver
grep -Eq '"TetherHostPID" = [1-9][0-9]*' <<<"$out" || fail "ExampleDriver is not in a host under --isolate: $out"
stop_tetherd

# ---- --in-process: the libraries in tetherd, and bundles it cannot run refused ----
mkdir -p "$dir/inproc"
cp -r "$bundles/org.tether.example.tether" "$bundles/org.tether.dsox2000.tether" \
  "$dir/drivers/org.tether.badlib.tether" "$dir/drivers/org.tether.noentry.tether" "$dir/inproc/"
# A library that loads, whose personality names a driver it does not have.
mkdir -p "$dir/inproc/org.tether.nodriver.tether"
cp "$bundles/org.tether.example.tether/example.so" "$dir/inproc/org.tether.nodriver.tether/"
printf '{"schema":1,"bundle":"org.tether.nodriver","version":"1","library":"example.so","personalities":{"P":{"driver":"Nothing","IOProviderClass":"TetherResources"}}}' \
  >"$dir/inproc/org.tether.nodriver.tether/manifest.json"
chmod -R a+rX "$dir/inproc"
rm -f "$dir/ready" # the redirection below truncates in the child only: no stale READY
"$tetherd" --in-process --socket "$TETHER_SOCKET" --no-usb --no-system-drivers --drivers "$dir/inproc" \
  --simulate dsox2002a:DRV0002 --ready-fd 4 4>"$dir/ready" 2>"$dir/log" &
pid=$!
wait_for "$dir/ready" READY 20 || fail "tetherd --in-process did not start: $(cat "$dir/log")"
for b in badlib noentry nodriver; do
  grep -Eq "error: bundle $dir/inproc/org.tether.$b.tether refused: org.tether.$b cannot run in tetherd \(--in-process\): .+" "$dir/log" \
    || fail "--in-process: no refusal naming org.tether.$b: $(cat "$dir/log")"
done
grep -q "org.tether.noentry.tether refused: .*no tether_bundle for driver ABI" "$dir/log" || fail "--in-process: the missing entry is not named"
grep -q "org.tether.nodriver.tether refused: .*no driver Nothing" "$dir/log" || fail "--in-process: the missing driver is not named"
grep -Fq "$dir/inproc/org.tether.example.tether/example.so" "/proc/$pid/maps" || fail "--in-process: example.so is not in tetherd"
grep -Fq "$dir/inproc/org.tether.dsox2000.tether/dsox2000.so" "/proc/$pid/maps" || fail "--in-process: dsox2000.so is not in tetherd"
run "$tether" driver list --json
jq -se 'length == 2 and all(.[]; .state == "running")' <<<"$out" >/dev/null || fail "--in-process list: $out"
run "$tether" reg -l -c ExampleDriver
grep -q '"Greeting" = "hello"' <<<"$out" || fail "--in-process: ExampleDriver did not start: $out"
grep -q TetherHostPID <<<"$out" && fail "--in-process: ExampleDriver is in a host: $out"
# Its children: the simulated scope's simulator, and no host.
[ -z "$(pgrep -a -P "$pid" | grep -v ' tether-sim-scope --usb-fd 3 ')" ] || fail "--in-process: tetherd started hosts: $(pgrep -a -P "$pid")"
nub=$("$devices" publish 5) || fail "--in-process: publish"
for _ in $(seq 100); do "$tether" reg -c ExampleDevice | grep -q ExampleDevice@5 && break; sleep 0.05; done
"$tether" reg -c ExampleDevice | grep -q "ExampleDevice@5  <class ExampleDevice" || fail "--in-process: ExampleDevice did not start"
# At run time the same refusal, its reason to the tool.
run "$tether" driver load "$dir/inproc/org.tether.nodriver.tether"
[ $rc -ne 0 ] && grep -q "org.tether.nodriver cannot run in tetherd (--in-process): no driver Nothing" <<<"$err" \
  || fail "--in-process: driver load of a bundle without its driver: $rc $out $err"
stop_tetherd
echo "driver-cli: all checks passed"
