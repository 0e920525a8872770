#!/usr/bin/env bash
# tetherd's log in the journal. In a mount namespace of its own, the test
# plays journald: /run/systemd/journal/socket is sockhelper's, which prints
# each native entry it receives. With stderr the journal stream
# (JOURNAL_STREAM names it, as systemd sets it), tetherd and its driver
# hosts send entries with PRIORITY, SYSLOG_IDENTIFIER (tetherd or
# tether-driverhost) and TETHER_BUNDLE for lines about a bundle, and write
# nothing on stderr; a host killed is an error entry naming its bundle. If
# the journal's socket is missing when tetherd starts, the lines go to
# stderr with "<N>" prefixes;
# with JOURNAL_STREAM naming another file, or unset, to stderr as always.
set -u
if [ "${TETHER_TEST_IN_NS:-}" != 1 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (a mount namespace for a journal socket of the test's)"; exit 77; }
  exec unshare --mount --propagation private env TETHER_TEST_IN_NS=1 bash "$0" "$@"
fi
tetherd=$1 tether=$2 helper=$3
dir=$(mktemp -d)
chmod 755 "$dir"
export TETHER_SOCKET="$dir/s.sock"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$dir"/err* "$dir"/journal*; do [ -f "$f" ] && { echo "== $f"; tail -40 "$f"; }; done
  exit 1
}
. "$(dirname "$0")/../lib.sh" # wait_for
# entry FILE MESSAGE-REGEX: the fields of the first entry whose MESSAGE
# matches, one per line.
entry() {
  awk -v re="$2" '
    /^--$/ { if (hit) { print buf; exit } buf = ""; hit = 0; next }
    { buf = buf $0 "\n"; if ($0 ~ "^MESSAGE=" && $0 ~ re) hit = 1 }' "$1"
}
# A private /run: journald's socket is ours, the machine's is untouched.
mount -t tmpfs tmpfs /run || fail "cannot mount a tmpfs on /run in the test's namespace"
mkdir -p /run/systemd/journal
"$helper" journal /run/systemd/journal/socket >"$dir/journal" &
pids+=($!)
for ((i = 0; i < 100; i++)); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done

start() { # ERRFILE [ARGS...]
  local err=$1
  shift
  "$tetherd" --no-usb --no-system-drivers --socket "$TETHER_SOCKET" --simulate dsox2002a \
    --ready-fd 4 "$@" 4>"$dir/ready" 2>>"$err" &
  pid=$!
  pids+=($pid)
  wait_for "$dir/ready" READY 30 || fail "tetherd did not start"
}
stop() {
  kill -TERM $pid
  wait $pid
  local rc=$?
  [ $rc -eq 0 ] || fail "tetherd exit status $rc"
  rm -f "$dir/ready"
}

# ---- stderr is the journal stream ----
: >"$dir/err"
JOURNAL_STREAM=$(stat -c %d:%i "$dir/err")
export JOURNAL_STREAM
start "$dir/err"
e=$(entry "$dir/journal" "^MESSAGE=bundle org.tether.example .* loaded from")
[ -n "$e" ] || fail "no entry for the example bundle's load"
grep -qx "PRIORITY=6" <<<"$e" || fail "load entry: not PRIORITY=6: $e"
grep -qx "SYSLOG_IDENTIFIER=tetherd" <<<"$e" || fail "load entry: not tetherd's: $e"
grep -qx "TETHER_BUNDLE=org.tether.example" <<<"$e" || fail "load entry: no TETHER_BUNDLE: $e"
e=$(entry "$dir/journal" "^MESSAGE=org.tether.dsox2000 DSOX2000 started on DSO-X 2002A")
grep -qx "TETHER_BUNDLE=org.tether.dsox2000" <<<"$e" || fail "no started entry with TETHER_BUNDLE: $e"
# A line of the DSOX2000's, from its host: the host's own entry.
e=$(entry "$dir/journal" "^MESSAGE=bundle org.tether.dsox2000: DSOX2000 \\(0x[0-9a-f]+\\): .*serial")
[ -n "$e" ] || fail "no entry from the DSOX2000's host"
grep -qx "SYSLOG_IDENTIFIER=tether-driverhost" <<<"$e" || fail "host entry: not the host's: $e"
grep -qx "TETHER_BUNDLE=org.tether.dsox2000" <<<"$e" || fail "host entry: no TETHER_BUNDLE: $e"
e=$(entry "$dir/journal" "^MESSAGE=listening on $TETHER_SOCKET")
[ -n "$e" ] || fail "no listening entry"
grep -q "^TETHER_BUNDLE=" <<<"$e" && fail "a line about no bundle has TETHER_BUNDLE: $e"
# A host killed: an error, about its bundle.
hostpid=$("$tether" reg -c DSOX2000 -l 2>/dev/null | sed -n 's/.*"TetherHostPID" = \([0-9]*\).*/\1/p' | head -1)
[ -n "$hostpid" ] || fail "no TetherHostPID for the DSOX2000"
kill -KILL "$hostpid"
wait_for "$dir/journal" "^MESSAGE=bundle org.tether.dsox2000: host of DSOX2000 killed by signal 9" 10 ||
  fail "no entry for the killed host"
e=$(entry "$dir/journal" "^MESSAGE=bundle org.tether.dsox2000: host of DSOX2000 killed by signal 9")
grep -qx "PRIORITY=3" <<<"$e" || fail "killed host: not PRIORITY=3: $e"
grep -qx "TETHER_BUNDLE=org.tether.dsox2000" <<<"$e" || fail "killed host: no TETHER_BUNDLE: $e"
stop
grep -q "^MESSAGE=shutting down" "$dir/journal" || fail "no shutting-down entry"
[ -s "$dir/err" ] && fail "lines on stderr that the journal took: $(head -5 "$dir/err")"
echo "ok: entries with PRIORITY, SYSLOG_IDENTIFIER and TETHER_BUNDLE, tetherd's and a host's; stderr empty"

# ---- the journal's socket missing: stderr, with the level as "<N>" ----
mv /run/systemd/journal/socket /run/systemd/journal/gone
: >"$dir/err2"
JOURNAL_STREAM=$(stat -c %d:%i "$dir/err2")
start "$dir/err2"
stop
grep -Eq "^<6>bundle org.tether.example .* loaded from" "$dir/err2" || fail "no <6> line when the journal is away"
grep -q "^<6>listening on $TETHER_SOCKET" "$dir/err2" || fail "no <6> listening line"
grep -q "^tetherd: " "$dir/err2" && fail "plain lines on a journal stream"
mv /run/systemd/journal/gone /run/systemd/journal/socket
echo "ok: the journal away, its stream gets <N> lines"

# ---- JOURNAL_STREAM naming another file: a terminal's lines ----
: >"$dir/err3" >"$dir/other"
JOURNAL_STREAM=$(stat -c %d:%i "$dir/other")
n=$(grep -c '^--$' "$dir/journal")
start "$dir/err3"
stop
grep -q "^tetherd: info: listening on $TETHER_SOCKET" "$dir/err3" || fail "JOURNAL_STREAM of another file: no plain line"
grep -q "^<" "$dir/err3" && fail "JOURNAL_STREAM of another file: <N> lines"
[ "$(grep -c '^--$' "$dir/journal")" -eq "$n" ] || fail "JOURNAL_STREAM of another file: entries in the journal"

# ---- no JOURNAL_STREAM: as always ----
unset JOURNAL_STREAM
: >"$dir/err4"
start "$dir/err4"
stop
grep -q "^tetherd: info: listening on $TETHER_SOCKET" "$dir/err4" || fail "no JOURNAL_STREAM: no plain line"
[ "$(grep -c '^--$' "$dir/journal")" -eq "$n" ] || fail "no JOURNAL_STREAM: entries in the journal"
echo "ok: not the journal's stream, or none: plain lines on stderr, no entries"
exit 0
