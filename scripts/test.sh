#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test: unit and integration
# tests (plain, then under AddressSanitizer + UndefinedBehaviorSanitizer),
# the libFuzzer targets for a short run, and an install + pkg-config check.
# Usage: scripts/test.sh [--quick]   (--quick: skip sanitizers and fuzzing)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1

bash scripts/install-deps.sh

# The tests run clients as nobody (setpriv) from the build tree: a clone
# nobody cannot reach (under /root, mode 0700) is built where it can be.
out=.
if ! setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$PWD/scripts" 2>/dev/null; then
  out=/var/tmp/tether-test-$(printf '%s' "$PWD" | sha256sum | cut -c1-12)
  mkdir -p "$out"
  chmod 755 "$out"
  cp tests/lsan.supp "$out/lsan.supp"
  echo "note: user nobody cannot reach $PWD; building in $out"
fi

passed=0
failed=0
# meson test's summary lines, added up over the runs.
count() {
  local log=$1
  local ok fail
  ok=$(awk '/^Ok:/ {print $2}' "$log" | tail -n1)
  fail=$(awk '/^(Fail|Unexpected Pass|Timeout):/ {s += $NF} END {print s+0}' "$log")
  passed=$((passed + ${ok:-0}))
  failed=$((failed + ${fail:-0}))
}

run_suite() { # name builddir meson-options...
  local name=$1 dir=$2
  shift 2
  echo "=== $name ==="
  if [ -d "$dir" ]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
  fi
  meson compile -C "$dir"
  local log status=0
  log=$(mktemp)
  meson test -C "$dir" --print-errorlogs --num-processes 2 "${TEST_ARGS[@]}" 2>&1 | tee "$log" || status=$?
  count "$log"
  rm -f "$log"
  return $status
}

status=0
TEST_ARGS=()
# -Dman=enabled: the man pages must build here (scdoc is in install-deps.sh).
run_suite "build and test (gcc, -Werror)" "$out/build" -Dwerror=true -Dman=enabled || status=1

if [ $quick -eq 0 ]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  supp=$PWD/tests/lsan.supp
  [ "$out" = . ] || supp=$out/lsan.supp # sanitized attackers run as nobody and read it
  export LSAN_OPTIONS="suppressions=$supp:print_suppressions=0"
  TEST_ARGS=(--timeout-multiplier 3)
  run_suite "AddressSanitizer + UndefinedBehaviorSanitizer" "$out/build-asan" -Dwerror=true \
    -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug || status=1
  TEST_ARGS=()

  echo "=== fuzzing (libFuzzer, short runs) ==="
  if [ -d "$out/build-fuzz" ]; then
    CC=clang meson setup --reconfigure "$out/build-fuzz" -Dfuzz=true -Dtests=false >/dev/null
  else
    CC=clang meson setup "$out/build-fuzz" -Dfuzz=true -Dtests=false >/dev/null
  fi
  meson compile -C "$out/build-fuzz" fuzz/fuzz-wire fuzz/fuzz-value fuzz/fuzz-scpi fuzz/fuzz-manifest fuzz/fuzz-host fuzz/fuzz-vusb
  for target in wire value scpi manifest host vusb; do
    corpus=$(mktemp -d)
    cp fuzz/corpus/"$target"/* "$corpus"/
    if "$out/build-fuzz/fuzz/fuzz-$target" -max_total_time="${FUZZ_SECONDS:-30}" -print_final_stats=1 \
         "$corpus" >"$corpus.log" 2>&1; then
      echo "fuzz-$target: $(grep -E 'stat::number_of_executed_units' "$corpus.log" | awk '{print $2}') runs, no crash"
      passed=$((passed + 1))
    else
      tail -n 40 "$corpus.log"
      echo "fuzz-$target: FAILED"
      failed=$((failed + 1))
      status=1
    fi
    rm -rf "$corpus" "$corpus.log"
  done

  echo "=== install + pkg-config ==="
  dest=$(mktemp -d)
  DESTDIR="$dest" meson install -C "$out/build" --quiet
  prefix=$(meson introspect "$out/build" --buildoptions | tr ',' '\n' | grep -A3 '"name": "prefix"' | sed -n 's/.*"value": "\(.*\)".*/\1/p' | head -n1)
  libdir=$(find "$dest" -name 'libtether.pc' -printf '%h\n' | head -n1)
  if [ -n "$libdir" ] && [ -x "$dest$prefix/sbin/tetherd" ] && [ -f "$dest$prefix/include/tether/tether.h" ]; then
    # Build a client against the installed headers and library, via pkg-config.
    cat >"$dest/check.c" <<'C'
#include <tether/tether.h>
int main(void) { return tether_ret_to_ioreturn(TETHER_ERR_BAD_ARGUMENT) == 0xE00002C2u ? 0 : 1; }
C
    flags=$(PKG_CONFIG_SYSROOT_DIR="$dest" PKG_CONFIG_PATH="$libdir" pkg-config --cflags --libs libtether)
    if cc "$dest/check.c" -o "$dest/check" $flags && LD_LIBRARY_PATH=$(dirname "$libdir") "$dest/check"; then
      echo "installed library builds and runs a client"
      passed=$((passed + 1))
    else
      echo "install check: FAILED"; failed=$((failed + 1)); status=1
    fi
  else
    echo "install check: FAILED (missing files under $dest)"; failed=$((failed + 1)); status=1
  fi
  rm -rf "$dest"
fi

echo
echo "$passed passed, $failed failed"
exit $status
