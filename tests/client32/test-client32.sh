#!/usr/bin/env bash
# A 32-bit (i386) client against the 64-bit tetherd: libtether, the example
# client and tether-abi-client cross-built for i386 in a build dir of this
# test's own (meson, cross/i386-linux-gnu.ini, -Dclient_only=true), run under
# qemu-i386 against this build's tetherd and ExampleDriver. tether-abi-client
# checks its answers itself (both KPIs: 64-bit scalars with their top halves
# set, in and out; structs inline and out of line; the driver's shared
# memory; async results and a stream; a data queue; properties; and the word
# size init_with_task was told), and its output must be the 64-bit build's
# line for line, but for the word size. Where this kernel runs i386
# programs itself, the i386 client runs natively too (the kernel's compat
# layer, where qemu-i386 translates the system calls itself).
#
# test-client32.sh SOURCE-ROOT CROSS-BUILD-DIR TETHERD ABI-CLIENT-64 EXAMPLE-64
set -u
src=$1 b32=$2 tetherd=$3 abi64=$4 example64=$5
dir=$(mktemp -d)
chmod 755 "$dir"
sock=$dir/s.sock
pid=
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }

# ---- the cross toolchain: installed by scripts/install-deps.sh ----
missing=
command -v i686-linux-gnu-gcc >/dev/null || missing+=" i686-linux-gnu-gcc (gcc-i686-linux-gnu)"
command -v qemu-i386 >/dev/null || missing+=" qemu-i386 (qemu-user)"
[ -f /usr/lib/i386-linux-gnu/pkgconfig/libcbor.pc ] || missing+=" libcbor.pc for i386 (libcbor-dev:i386)"
if [ -n "$missing" ]; then
  # CI ran install-deps.sh, so there it is a failure, not a skip.
  [ "${CI:-}" = true ] && fail "missing:$missing (scripts/install-deps.sh installs them)"
  skip "no i386 cross build here; missing:$missing (scripts/install-deps.sh installs them)"
fi

# ---- the i386 build: libtether and its clients only ----
# Not this build's compiler, flags or sanitizers: its own cross file.
unset CC CFLAGS CPPFLAGS LDFLAGS PKG_CONFIG_PATH PKG_CONFIG_LIBDIR
setup32() {
  rm -rf "$b32"
  meson setup "$b32" "$src" --cross-file "$src/cross/i386-linux-gnu.ini" -Dclient_only=true -Dwerror=true \
    >"$dir/setup.log" 2>&1 || { cat "$dir/setup.log"; fail "meson setup of the i386 build"; }
}
[ -f "$b32/build.ninja" ] || setup32
# A build dir that no longer builds (a source tree moved, a meson upgraded)
# is made anew, once; a second failure is the code's.
if ! meson compile -C "$b32" >"$dir/compile.log" 2>&1; then
  setup32
  meson compile -C "$b32" >"$dir/compile.log" 2>&1 || { cat "$dir/compile.log"; fail "compiling the i386 build"; }
fi
abi32=$b32/tests/client32/tether-abi-client
example32=$b32/drivers/tether-example
lib32=$b32/src/libtether.so.0

# ELF class (byte 4: 1 = 32-bit, 2 = 64-bit) and machine (bytes 18-19: 3 =
# i386, 62 = x86-64), read from the files: not what the names say.
elf() { echo "$(od -An -tu1 -j4 -N1 "$1" | tr -d ' ')/$(od -An -tu2 -j18 -N2 "$1" | tr -d ' ')"; }
for f in "$abi32" "$example32" "$lib32"; do
  [ "$(elf "$f")" = 1/3 ] || fail "$f is not an i386 ELF file ($(elf "$f"))"
done
[ "$(elf "$tetherd")" = 2/62 ] || fail "$tetherd is not an x86-64 ELF file ($(elf "$tetherd"))"
echo "i386 build: libtether, tether-example and tether-abi-client are ELF32 i386; tetherd is ELF64 x86-64"

# ---- the 64-bit tetherd with the example driver ----
drivers=$TETHER_DRIVERS
unset TETHER_DRIVERS # tetherd would load them twice
"$tetherd" --socket "$sock" --no-usb --no-system-drivers --drivers "$drivers" \
  --ready-fd 4 4>"$dir/ready" 2>"$dir/log" &
pid=$!
for ((i = 0; i < 400; i++)); do
  grep -q READY "$dir/ready" 2>/dev/null && break
  sleep 0.05
done
grep -q READY "$dir/ready" || fail "tetherd did not start: $(cat "$dir/log")"

# run NAME COMMAND...: its output in $dir/NAME.out, errors in .err, status in rc.
run() {
  local name=$1
  shift
  "$@" >"$dir/$name.out" 2>"$dir/$name.err"
  rc=$?
}

run abi64 "$abi64" "$sock"
[ $rc -eq 0 ] || fail "the 64-bit client (exit $rc): $(cat "$dir/abi64.err")"
grep -qx 'task: 64-bit client' "$dir/abi64.out" || fail "64-bit task line: $(head -n1 "$dir/abi64.out")"

# meson points LD_LIBRARY_PATH at this build's (x86-64) libtether: the i386
# programs find theirs through their own run path.
run abi32 env -u LD_LIBRARY_PATH qemu-i386 "$abi32" "$sock"
[ $rc -eq 0 ] || fail "the i386 client under qemu-i386 (exit $rc): $(cat "$dir/abi32.err")"
grep -qx 'task: 32-bit client' "$dir/abi32.out" \
  || fail "init_with_task did not see a 32-bit client: $(head -n1 "$dir/abi32.out")"
grep -v '^task: ' "$dir/abi64.out" >"$dir/abi64.cmp"
grep -v '^task: ' "$dir/abi32.out" >"$dir/abi32.cmp"
[ "$(wc -l <"$dir/abi64.cmp")" -ge 30 ] || fail "the 64-bit client printed too little: $(cat "$dir/abi64.out")"
diff -u "$dir/abi64.cmp" "$dir/abi32.cmp" >"$dir/diff" \
  || fail "the i386 client's answers differ from the x86-64 client's: $(cat "$dir/diff")"
echo "tether-abi-client, i386 under qemu-i386: $(wc -l <"$dir/abi32.cmp") answers, each the same as x86-64's"
sed 's/^/  /' "$dir/abi32.out"

# The example client, as its README section shows it, built for i386: the
# same output as x86-64's but for the property table it prints first (the
# runs before it set BaudRate).
run ex64 "$example64" "$sock"
[ $rc -eq 0 ] || fail "tether-example, x86-64 (exit $rc): $(cat "$dir/ex64.err")"
run ex32 env -u LD_LIBRARY_PATH qemu-i386 "$example32" "$sock"
[ $rc -eq 0 ] || fail "tether-example, i386 (exit $rc): $(cat "$dir/ex32.err")"
grep -q '^  struct out (8 bytes): 10 11 12 13 14 15 16 17$' "$dir/ex32.out" || fail "tether-example i386: $(cat "$dir/ex32.out")"
grep -qx 'mapped 64 MiB; after FillMemory(0xab) the last byte is 0xab' "$dir/ex32.out" \
  || fail "tether-example i386 shared memory: $(cat "$dir/ex32.out")"
diff -u <(grep -v '^properties: ' "$dir/ex64.out") <(grep -v '^properties: ' "$dir/ex32.out") >"$dir/diff" \
  || fail "tether-example differs between x86-64 and i386: $(cat "$dir/diff")"
echo "tether-example, i386 under qemu-i386: the same as x86-64's"

# ---- natively, where the kernel runs i386 programs (IA32 emulation) ----
run native env -u LD_LIBRARY_PATH "$abi32" "$sock"
if [ $rc -eq 126 ] || grep -qi 'exec format error' "$dir/native.err"; then
  echo "note: this kernel does not run i386 programs itself (no IA32 emulation): qemu-i386 only"
else
  [ $rc -eq 0 ] || fail "the i386 client, run natively (exit $rc): $(cat "$dir/native.err")"
  grep -v '^task: ' "$dir/native.out" | diff -u "$dir/abi64.cmp" - >"$dir/diff" \
    || fail "the i386 client, run natively, differs from x86-64's: $(cat "$dir/diff")"
  grep -qx 'task: 32-bit client' "$dir/native.out" || fail "native i386 task line"
  echo "tether-abi-client, i386 on this kernel's IA32 emulation: the same answers"
fi

# tetherd logged no error for any of it, and stops cleanly (leaks included
# under ASan).
grep -E '(error|warning):' "$dir/log" && fail "tetherd complained (above)"
kill "$pid"
wait "$pid"
rc=$?
pid=
[ $rc -eq 0 ] || fail "tetherd exited $rc: $(tail -n 20 "$dir/log")"
echo "client32: all checks passed"
