#!/usr/bin/env bash
# The driver writer's SDK, end to end: `meson install` of this build into a
# scratch root; examples/hello-driver, copied out of the source tree, built
# against that root only (pkg-config's tether-driver; the compile line is
# checked), and its unit test on the driver test harness (tether-driver-test,
# no tetherd) built the same way and run, on the library and on the installed
# bundle folder; the bundle installed into a scratch folder, loaded into a
# running tetherd with `tether driver load`, matched against an
# ExampleDeviceNub with Unit 42, opened and called (hello-client), its
# properties read and written with `tether reg`, and unloaded with a
# connection open. Then examples/first-driver, docs/first-driver.md's
# driver, the same way: every excerpt the guide quotes compared with its
# file, the copy built against the scratch root (bundle, first-client, and
# its unit test, run), installed, loaded, read through both channels, its
# properties written as root and as nobody (the access policy, the
# administrator-only key, the driver's reasons), unloaded.
# Every wait polls with a deadline.
# Usage: test-sdk.sh BUILD_ROOT TETHERD TETHER EXAMPLE_DEVICES HELLO_CLIENT EXAMPLE_SOURCE FIRST_SOURCE GUIDE
set -u
build=$1 tetherd=$2 tether=$3 devices=$4 client=$5 example=$6 first=$7 guide=$8
unset TETHER_DRIVERS # this test says which folders tetherd loads
# meson test points the loader at the build tree; what runs against the SDK
# must find the scratch root's libraries (the build's own programs have
# their build rpath).
unset LD_LIBRARY_PATH
dir=$(mktemp -d)
chmod 755 "$dir" # a driver host runs as the bundle's user, who must reach the bundle
export TETHER_SOCKET="$dir/s.sock"
pid= holder=
trap 'exec 5>&- 2>/dev/null; kill $pid $holder 2>/dev/null; wait $pid $holder 2>/dev/null; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
step() { echo "-- $*"; }
command -v jq >/dev/null || fail "jq is not installed (scripts/install-deps.sh installs it)"
command -v meson >/dev/null || fail "meson is not on PATH"
command -v pkg-config >/dev/null || fail "pkg-config is not installed"

. "$(dirname "$0")/../lib.sh" # wait_for, wait_exit
# poll SECONDS CMD...: until CMD succeeds.
poll() {
  local i n=$1
  shift
  for ((i = 0; i < n * 20; i++)); do
    "$@" && return 0
    sleep 0.05
  done
  return 1
}
# run CMD...: stdout in $out, stderr in $err, status in $rc.
run() {
  "$@" >"$dir/out" 2>"$dir/err"
  rc=$?
  out=$(cat "$dir/out") err=$(cat "$dir/err")
}
# In the registry, and started: "active", not "!active" (start() still running).
in_registry() { "$tether" reg -c HelloDriver 2>/dev/null | grep -q "<class HelloDriver, .*, matched, active,"; }
first_in_registry() { "$tether" reg -c FirstDriver 2>/dev/null | grep -q "<class FirstDriver, .*, matched, active,"; }
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

# ---- docs/first-driver.md quotes the example's files as they are ----
# A code block introduced by a link to examples/first-driver/FILE#Lm-Ln
# must be lines m to n of FILE, byte for byte.
step "docs/first-driver.md's excerpts against examples/first-driver"
excerpts=0
while IFS=$'\t' read -r at file from to; do
  want=$(sed -n "${from},${to}p" "$first/$file")
  got=$(awk -v at="$at" 'NR > at && /^```/ { if (inside) exit; inside = 1; next } inside { print }' "$guide")
  [ -n "$want" ] && [ "$got" = "$want" ] \
    || fail "docs/first-driver.md line $at quotes $file lines $from-$to, which now read:
$want
  the guide has:
$got"
  excerpts=$((excerpts + 1))
done < <(grep -no '](\.\./examples/first-driver/[^)#]*#L[0-9]*-L[0-9]*)' "$guide" \
  | sed -E 's|^([0-9]+):\]\(\.\./examples/first-driver/([^#]+)#L([0-9]+)-L([0-9]+)\)$|\1\t\2\t\3\t\4|')
[ $excerpts -ge 8 ] || fail "docs/first-driver.md: only $excerpts excerpts found (linked as ](../examples/first-driver/FILE#Lm-Ln))"

# ---- the SDK, installed into a scratch root ----
step "meson install into a scratch root"
root=$dir/root
DESTDIR=$root meson install -C "$build" --quiet >"$dir/install.log" 2>&1 \
  || fail "meson install -C $build: $(tail -20 "$dir/install.log")"
pcdir=$(find "$root" -name tether-driver.pc -printf '%h\n' | head -n1)
[ -n "$pcdir" ] || fail "meson install put no tether-driver.pc under $root"
# pkg-config and meson see the scratch root only: nothing of the source tree,
# nothing installed on this machine.
export PKG_CONFIG_SYSROOT_DIR=$root PKG_CONFIG_PATH=$pcdir PKG_CONFIG_LIBDIR=$pcdir
cflags=$(pkg-config --cflags tether-driver) && cflags=${cflags%% } || fail "pkg-config --cflags tether-driver"
incdir=${cflags#-I}
[ "$incdir" != "$cflags" ] && [ "${incdir#"$root"/}" != "$incdir" ] || fail "tether-driver's Cflags are not -I<scratch root>/...: '$cflags'"
for h in driver.h value.h return.h; do
  [ -f "$incdir/tether/$h" ] || fail "tether/$h is not installed in $incdir"
done
[ -z "$(pkg-config --libs tether-driver)" ] || fail "tether-driver names libraries: $(pkg-config --libs tether-driver)"
bundledir=$(pkg-config --variable=bundledir tether-driver)
bundledir=${bundledir#"$root"} # as installed, whether or not pkg-config prefixed the sysroot
system_drivers=$("$tetherd" --help 2>&1 | sed -n 's/.*do not load the bundles in //p')
[ -n "$bundledir" ] && [ "$bundledir" = "$system_drivers" ] \
  || fail "tether-driver's bundledir '$bundledir' is not tetherd's system folder '$system_drivers'"

# The driver test harness: a library a driver's unit tests link, with libtether.
[ -f "$incdir/tether/driver-test.h" ] || fail "tether/driver-test.h is not installed in $incdir"
hlibs=$(pkg-config --libs tether-driver-test) || fail "pkg-config --libs tether-driver-test"
libdir=$(sed -n 's/^-L\([^ ]*\) .*/\1/p' <<<"$hlibs")
[ "${libdir#"$root"/}" != "$libdir" ] && grep -Fq -- " -ltether-driver-test -ltether" <<<"$hlibs " \
  || fail "tether-driver-test's Libs are not -L<scratch root>/... -ltether-driver-test -ltether: '$hlibs'"
[ "$(pkg-config --cflags tether-driver-test)" = "$(pkg-config --cflags tether-driver)" ] \
  || fail "tether-driver-test's Cflags differ from tether-driver's: $(pkg-config --cflags tether-driver-test)"

# ---- examples/hello-driver, built from a copy outside the source tree ----
step "build examples/hello-driver against the scratch root"
cp -r "$example" "$dir/hello-driver"
rm -rf "$dir/hello-driver/build"
meson setup "$dir/hello-build" "$dir/hello-driver" -Dwerror=true >"$dir/setup.log" 2>&1 \
  || fail "meson setup of hello-driver: $(tail -20 "$dir/setup.log")"
meson compile -C "$dir/hello-build" >"$dir/compile.log" 2>&1 \
  || fail "meson compile of hello-driver: $(tail -30 "$dir/compile.log")"
# The include path came from pkg-config, out of the scratch root.
line=$(jq -r '.[] | select(.file | endswith("hello.c")) | .command' "$dir/hello-build/compile_commands.json")
grep -Fq -- "-I$incdir " <<<"$line " || fail "hello.c was not compiled with -I$incdir: $line"
srcroot=$(cd "$example/../.." && pwd)
grep -Fq -- "-I$srcroot" <<<"$line" && fail "hello.c's compile line names the source tree: $line"
so=$dir/hello-build/hello.so
[ -f "$so" ] || fail "no hello.so in $dir/hello-build"
# It exports exactly TETHER_BUNDLE's symbol, and leaves the driver API
# undefined for the host that loads it: it links no tether library.
[ "$(nm -D --defined-only "$so" | awk '{print $3}')" = tether_bundle ] \
  || fail "hello.so should export tether_bundle and nothing else: $(nm -D --defined-only "$so")"
nm -D --undefined-only "$so" | grep -q ' tether_service_set_property_string$' \
  || fail "hello.so does not leave the driver API to its host: $(nm -D --undefined-only "$so")"
readelf -d "$so" | grep NEEDED | grep -q tether && fail "hello.so links a tether library: $(readelf -d "$so" | grep NEEDED)"

# ---- its unit test, on the harness, against the scratch root only ----
step "hello-driver's harness test (no tetherd), built and run against the scratch root"
[ -x "$dir/hello-build/test-hello" ] || fail "no test-hello: meson did not find tether-driver-test"
line=$(jq -r '.[] | select(.file | endswith("test-hello.c")) | .command' "$dir/hello-build/compile_commands.json")
grep -Fq -- "-I$incdir " <<<"$line " || fail "test-hello.c was not compiled with -I$incdir: $line"
grep -Fq -- "-I$srcroot" <<<"$line" && fail "test-hello.c's compile line names the source tree: $line"
# The harness and libtether it runs with are the scratch root's, not the build tree's.
for l in libtether-driver-test.so.0 libtether.so.0; do
  where=$(ldd "$dir/hello-build/test-hello" | awk -v l="$l" '$1 == l {print $3}')
  [ "${where#"$root"/}" != "$where" ] || fail "test-hello loads $l from '$where', not the scratch root"
done
# A sanitized tether's libraries want ASan's runtime first in the process:
# preloaded into the (plain) test, as for any program that loads them.
preload=env
hlib=$(find "$root" -name 'libtether-driver-test.so.*' -type f | head -n1)
asan=$(ldd "$hlib" | awk '$1 ~ /^libasan/ {print $3}')
[ -n "$asan" ] && preload="env LD_PRELOAD=$asan"
meson test -C "$dir/hello-build" --wrapper "$preload" --print-errorlogs >"$dir/hello-test.log" 2>&1 \
  || fail "meson test of hello-driver: $(tail -30 "$dir/hello-test.log")"
grep -Eq '^1/1 hello +OK' "$dir/hello-test.log" || fail "hello-driver's test did not run: $(cat "$dir/hello-test.log")"

# ---- examples/first-driver: the guide's driver, client and unit test ----
step "build examples/first-driver against the scratch root, run its unit test"
cp -r "$first" "$dir/first-driver"
rm -rf "$dir/first-driver/build"
# first-client links libtether, whose .pc requires libcbor's (for static
# links): the system's pkg-config folder holding it, and nothing else of it.
cborpc=$(env -u PKG_CONFIG_LIBDIR -u PKG_CONFIG_PATH -u PKG_CONFIG_SYSROOT_DIR pkg-config --variable=pcfiledir libcbor) \
  || fail "pkg-config finds no libcbor"
PKG_CONFIG_LIBDIR=$pcdir:$cborpc meson setup "$dir/first-build" "$dir/first-driver" -Dwerror=true \
  >"$dir/first-setup.log" 2>&1 || fail "meson setup of first-driver: $(tail -20 "$dir/first-setup.log")"
PKG_CONFIG_LIBDIR=$pcdir:$cborpc meson compile -C "$dir/first-build" >"$dir/first-compile.log" 2>&1 \
  || fail "meson compile of first-driver: $(tail -30 "$dir/first-compile.log")"
for f in first.c first-client.c test-first.c; do
  line=$(jq -r --arg f "$f" '.[] | select(.file | endswith("/" + $f)) | .command' "$dir/first-build/compile_commands.json")
  grep -Fq -- "-I$incdir " <<<"$line " || fail "$f was not compiled with -I$incdir: $line"
  grep -Fq -- "-I$srcroot" <<<"$line" && fail "$f's compile line names the source tree: $line"
done
[ "$(nm -D --defined-only "$dir/first-build/first.so" | awk '{print $3}')" = tether_bundle ] \
  || fail "first.so should export tether_bundle and nothing else"
for p in first-client test-first; do
  where=$(ldd "$dir/first-build/$p" | awk '$1 == "libtether.so.0" {print $3}')
  [ "${where#"$root"/}" != "$where" ] || fail "$p loads libtether from '$where', not the scratch root"
done
meson test -C "$dir/first-build" --wrapper "$preload" --print-errorlogs >"$dir/first-test.log" 2>&1 \
  || fail "meson test of first-driver: $(tail -30 "$dir/first-test.log")"
grep -Eq '^1/1 first +OK' "$dir/first-test.log" || fail "first-driver's test did not run: $(cat "$dir/first-test.log")"
DESTDIR=$dir/scratch meson install -C "$dir/first-build" --quiet >"$dir/first-install.log" 2>&1 \
  || fail "meson install of first-driver: $(tail -20 "$dir/first-install.log")"
first_bundle=$(find "$dir/scratch" -type d -name org.example.first.tether | head -n1)
[ -n "$first_bundle" ] && [ -f "$first_bundle/manifest.json" ] && [ -f "$first_bundle/first.so" ] \
  || fail "no org.example.first.tether with manifest.json and first.so under $dir/scratch"

step "install the bundle into a scratch folder"
DESTDIR=$dir/scratch meson install -C "$dir/hello-build" --quiet >"$dir/install2.log" 2>&1 \
  || fail "meson install of hello-driver: $(tail -20 "$dir/install2.log")"
bundle=$(find "$dir/scratch" -type d -name org.example.hello.tether | head -n1)
[ -n "$bundle" ] || fail "no org.example.hello.tether under $dir/scratch: $(find "$dir/scratch")"
# pkgconf prefixes the sysroot to bundledir, pkg-config 0.29 does not: either
# way the bundle lands in a folder ending with it.
[ "${bundle%"$bundledir/org.example.hello.tether"}" != "$bundle" ] \
  || fail "the bundle went to $bundle, not into bundledir $bundledir"
[ -f "$bundle/manifest.json" ] && [ -f "$bundle/hello.so" ] || fail "bundle folder: $(ls -l "$bundle")"
chmod -R a+rX "$dir/scratch"
# The installed folder, manifest and all, under the harness: its matching too.
run $preload "$dir/hello-build/test-hello" "$bundle"
[ $rc -eq 0 ] && [ "$out" = "test-hello: all checks passed (with the manifest)" ] \
  || fail "test-hello on the installed bundle: $rc $out $err"

# ---- tetherd, the bundle loaded at run time ----
step "start tetherd, tether driver load"
[ -d "$build/drivers/bundles/org.tether.example.tether" ] || fail "no example bundle in $build/drivers/bundles"
"$tetherd" --socket "$TETHER_SOCKET" --no-usb --no-system-drivers --drivers "$build/drivers/bundles" \
  --ready-fd 4 4>"$dir/ready" 2>"$dir/log" &
pid=$!
wait_for "$dir/ready" READY 20 || fail "tetherd did not start: $(cat "$dir/log")"
run "$tether" driver load "$bundle"
[ $rc -eq 0 ] && [ "$out" = "loaded $bundle" ] || fail "driver load: $rc $out $err"
run "$tether" driver list --json
jq -se 'any(.[]; .bundle == "org.example.hello" and .version == "1.0.0" and .personalities == ["HelloDriver"])' \
  <<<"$out" >/dev/null || fail "driver list --json: $out"

step "publish ExampleDeviceNub Unit 42"
run "$devices" publish 42
[ $rc -eq 0 ] || fail "example-devices publish 42: $err"
if ! poll 10 in_registry; then
  fail "no HelloDriver in the registry 10 s after ExampleDeviceNub Unit 42 was published.
  tetherd's log about it:
$(grep -E 'org.example.hello|HelloDriver|error' "$dir/log")
  the registry:
$("$tether" reg 2>&1)"
fi

# ---- what the driver published, and who won the nub ----
step "HelloDriver's properties"
run "$tether" reg -l -c HelloDriver
grep -Fq '"Greeting" = "hello"' <<<"$out" || fail "no Greeting = hello: $out"
grep -Fq '"Unit" = 42' <<<"$out" || fail "Unit not copied from the nub: $out"
grep -Fq '"CFBundleIdentifier" = "org.example.hello"' <<<"$out" || fail "no CFBundleIdentifier = org.example.hello: $out"
run "$tether" reg -c ExampleDevice
[ -z "$out" ] || fail "ExampleDevice attached to unit 42 too (HelloDriver's probe score 100 should win it): $out"

step "open, add, greet"
run "$client"
[ $rc -eq 0 ] || fail "hello-client: $err"
[ "$out" = $'add(40, 2) = 42\ngreet = "hello"' ] || fail "hello-client: $out"

step "tether reg set Greeting"
run "$tether" reg set HelloDriver Greeting hi
[ $rc -eq 0 ] || fail "set Greeting hi refused: $err"
long=$(printf '%065d' 0)
run "$tether" reg set HelloDriver Greeting "${long:1}"
[ $rc -eq 0 ] || fail "a 64-byte Greeting refused: $err"
run "$tether" reg set HelloDriver Greeting "$long"
[ $rc -ne 0 ] && grep -q BadArgument <<<"$err" || fail "a 65-byte Greeting: $rc $out $err"
run "$tether" reg set HelloDriver Greeting ""
[ $rc -ne 0 ] && grep -q BadArgument <<<"$err" || fail "an empty Greeting: $rc $out $err"
run "$tether" reg set -t uint32 HelloDriver Greeting 5
[ $rc -ne 0 ] && grep -q BadArgument <<<"$err" || fail "a uint32 Greeting: $rc $out $err"
run "$tether" reg set HelloDriver Unit 7
[ $rc -ne 0 ] && grep -q NotWritable <<<"$err" || fail "Unit written: $rc $out $err"
run "$tether" reg set HelloDriver Greeting hi
[ $rc -eq 0 ] || fail "set Greeting hi again: $err"
run "$tether" reg -l -c HelloDriver
grep -Fq '"Greeting" = "hi"' <<<"$out" || fail "Greeting after the refused writes: $out"

# ---- unload with a connection open ----
step "tether driver unload with a connection open"
mkfifo "$dir/fifo"
"$client" hold <"$dir/fifo" >"$dir/hold.out" 2>&1 &
holder=$!
exec 5>"$dir/fifo"
wait_for "$dir/hold.out" "^holding$" || fail "hello-client hold: $(cat "$dir/hold.out")"
grep -Fqx 'greet = "hi"' "$dir/hold.out" || fail "greet after the set: $(cat "$dir/hold.out")"
run "$tether" driver unload org.example.hello
[ $rc -eq 0 ] && [ "$out" = "unloaded org.example.hello" ] || fail "unload: $rc $out $err"
exec 5>&- # the client calls again
wait_exit "$holder" 10 || fail "hello-client hold did not finish"
holder=
grep -Fqx "after unload: NotAttached" "$dir/hold.out" || fail "call after unload: $(cat "$dir/hold.out")"
poll 10 eval '! "$tether" reg -c HelloDriver | grep -q "<class HelloDriver,"' || fail "HelloDriver still in the registry: $("$tether" reg -c HelloDriver)"
run "$tether" driver list --json
jq -se 'all(.[]; .bundle != "org.example.hello")' <<<"$out" >/dev/null || fail "list after unload: $out"

# ---- the guide's last steps: load, look, call, write, unload ----
step "first-driver: tether driver load, reg, first-client, reg set, unload"
run "$tether" driver load "$first_bundle"
[ $rc -eq 0 ] && [ "$out" = "loaded $first_bundle" ] || fail "driver load of first-driver: $rc $out $err"
poll 10 first_in_registry || fail "no FirstDriver 10 s after its load: $(grep -E 'org.example.first|error' "$dir/log")"
run "$tether" reg -l -c FirstDriver
for want in '"Units" = "C"' '"Calibration" = 0' '"Model" = "first-driver thermometer"' \
  '"IOMatchCategory" = "org_example_first"' '"CFBundleIdentifier" = "org.example.first"'; do
  grep -Fq -- "$want" <<<"$out" || fail "tether reg -l -c FirstDriver has no $want: $out"
done
run $preload "$dir/first-build/first-client"
[ $rc -eq 0 ] && [ "$out" = $'reading: 21.500 C\n4 readings: 21.510 21.520 21.530 21.540 C' ] \
  || fail "first-client: $rc $out $err"
run nobody $preload "$dir/first-build/first-client"
[ $rc -eq 1 ] && [ "$err" = "first-client: open: NotPrivileged (privilege violation)" ] \
  || fail "first-client as nobody (the access policy keeps type 0 to root and plugdev): $rc $out $err"
run "$tether" reg set FirstDriver Units K
[ $rc -eq 1 ] && grep -Fq "refused Units = \"K\" (string): BadArgument (invalid argument): Units must be C or F" <<<"$err" \
  || fail "Units K: $rc $out $err"
run nobody "$tether" reg set FirstDriver Calibration 1
[ $rc -eq 1 ] && grep -Fq "NotPrivileged (privilege violation): Calibration may be set by an administrator only" <<<"$err" \
  || fail "Calibration as nobody: $rc $out $err"
run nobody "$tether" reg set FirstDriver Units F
[ $rc -eq 0 ] && grep -Fq 'accepted Units = "F" (string)' <<<"$out" || fail "Units F as nobody: $rc $out $err"
run "$tether" reg set FirstDriver Calibration 1
[ $rc -eq 0 ] && grep -Fq 'accepted Calibration = 1 (double)' <<<"$out" || fail "Calibration 1 as root: $rc $out $err"
run $preload "$dir/first-build/first-client" 1
[ $rc -eq 0 ] && [ "$out" = $'reading: 72.500 F\n1 readings: 72.518 F' ] || fail "first-client in F: $rc $out $err"
run "$tether" driver unload org.example.first
[ $rc -eq 0 ] && [ "$out" = "unloaded org.example.first" ] || fail "unload of first-driver: $rc $out $err"
poll 10 eval '! "$tether" reg -c FirstDriver | grep -q "<class FirstDriver,"' || fail "FirstDriver still in the registry after its unload"
wait_for "$dir/log" "FirstDriver \(0x[0-9a-f]+\): stopped after 7 readings" \
  || fail "no 'stopped after 7 readings' from FirstDriver's stop(): $(grep FirstDriver "$dir/log")"

step "SIGTERM"
kill $pid
wait_exit "$pid" 10 || fail "tetherd did not exit on SIGTERM"
pid=
[ $rc -eq 0 ] || fail "tetherd exit status $rc: $(tail -5 "$dir/log")"

# The host that runs bundles is part of the install too.
find "$root" -name tether-driverhost -type f -perm -u+x | grep -q . || fail "meson install did not install tether-driverhost"
echo "sdk: all checks passed"
