#!/usr/bin/env bash
# tetherd started by socket activation, as tetherd.socket starts it, with
# systemd-socket-activate in systemd's place (no PID 1 systemd here: this
# tests the protocol, not the manager): nothing runs until the first client
# connects, tetherd then serves the socket it was passed (tether reg works
# through it), tells NOTIFY_SOCKET READY=1 and STATUS= (the clients
# connected, then STOPPING=1), and leaves the socket in place at exit, for
# the next client to start it again. Without activation it still binds
# its own socket, and ignores LISTEN_* meant for another process.
set -u
tetherd=$1 tether=$2 helper=$3
command -v systemd-socket-activate >/dev/null ||
  { echo "FAIL: systemd-socket-activate is missing (scripts/install-deps.sh installs systemd)"; exit 1; }
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
  for f in "$dir"/log* "$dir"/notify*; do [ -f "$f" ] && { echo "== $f"; tail -20 "$f"; }; done
  exit 1
}
# wait_after FILE LINE REGEX [SECONDS]: REGEX on a line after the first LINE.
wait_after() {
  local i
  for ((i = 0; i < ${4:-10} * 20; i++)); do
    tail -n +"$(($2 + 1))" "$1" 2>/dev/null | grep -Eq -- "$3" && return 0
    sleep 0.05
  done
  return 1
}
. "$(dirname "$0")/../lib.sh" # wait_for
comm_of() { cat "/proc/$1/comm" 2>/dev/null; }
# stop PID: SIGTERM, and its exit status once it has ended; a tetherd that
# has not ended in 20 s fails the test with what its threads wait in
# (a hang at exit was seen once under ASan), instead of hanging the run.
stop() {
  local i
  kill -TERM "$1"
  for ((i = 0; i < 400; i++)); do
    kill -0 "$1" 2>/dev/null || break
    [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ] && break
    sleep 0.05
  done
  if kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; then
    echo "== pid $1 ($(comm_of "$1")) still running 20 s after SIGTERM; its threads:"
    for t in /proc/"$1"/task/*; do echo "$(cat "$t/comm") $(cat "$t/wchan" 2>/dev/null)"; done
    command -v gdb >/dev/null && timeout 30 gdb -p "$1" -batch -ex 'thread apply all bt' 2>/dev/null | grep -E '^(#|Thread)'
    ps -o pid,ppid,stat,comm --ppid "$1" 2>/dev/null
    kill -KILL "$1"
    wait "$1" 2>/dev/null
    return 255
  fi
  wait "$1"
}
args=(--no-usb --no-system-drivers)
# systemd-socket-activate passes on only the variables it is told to, as
# systemd does: the test's build paths and the sanitizers' options.
sa_env=()
for v in TETHER_DRIVERS TETHER_DRIVERHOST TETHER_SIM_SCOPE ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS; do
  [ -n "${!v+x}" ] && sa_env+=(-E "$v")
done

# ---- activated on the first connection ----
"$helper" notify "$dir/notify" >"$dir/notify.out" &
pids+=($!)
for ((i = 0; i < 100; i++)); do [ -S "$dir/notify" ] && break; sleep 0.05; done
systemd-socket-activate --seqpacket -l "$TETHER_SOCKET" "${sa_env[@]}" -E NOTIFY_SOCKET="$dir/notify" \
  "$tetherd" "${args[@]}" 2>"$dir/log" &
sa=$!
pids+=($sa)
wait_for "$dir/log" "Listening on $TETHER_SOCKET" || fail "systemd-socket-activate did not listen"
sleep 0.3
# Until someone connects, no tetherd: the socket is systemd's.
[ "$(comm_of $sa)" = systemd-socket- ] || fail "something ran before a client connected: $(comm_of $sa)"
grep -q . "$dir/notify.out" && fail "told the manager something before it ran: $(cat "$dir/notify.out")"
out=$(timeout 30 "$tether" reg 2>&1) || fail "tether reg through the passed socket: $out"
grep -q "TetherResources" <<<"$out" || fail "tether reg: no TetherResources in: $out"
grep -q "ExampleDriver" <<<"$out" || fail "tether reg: the example driver did not start: $out"
[ "$(comm_of $sa)" = tetherd ] || fail "tetherd is not what runs on the socket: $(comm_of $sa)"
grep -q "listening on $TETHER_SOCKET" "$dir/log" || fail "tetherd did not log the passed socket's path"
wait_for "$dir/notify.out" '^READY=1$' 5 || fail "no READY=1"
grep -qx "STATUS=Serving on $TETHER_SOCKET; no clients" "$dir/notify.out" ||
  fail "READY came without the STATUS naming the socket"
# READY comes once every driver has started, as --ready-fd's READY does:
# the example's service was active for the first client.
# A client that stays is counted (the status is said at most once a second).
# tether reg's own session has come and gone: said once the second since
# the last STATUS is over.
wait_for "$dir/notify.out" '^STATUS=Serving; 0 clients connected$' 5 || fail "no STATUS once tether reg left"
seen=$(wc -l <"$dir/notify.out")
timeout 20 "$tether" reg watch >/dev/null 2>&1 &
watcher=$!
pids+=($watcher)
wait_after "$dir/notify.out" "$seen" '^STATUS=Serving; 1 client connected$' 5 || fail "no STATUS with the client connected"
seen=$(wc -l <"$dir/notify.out")
kill $watcher
wait $watcher 2>/dev/null
wait_after "$dir/notify.out" "$seen" '^STATUS=Serving; 0 clients connected$' 5 || fail "no STATUS once the client left"
stop $sa
rc=$?
[ $rc -eq 0 ] || fail "tetherd exit status $rc"
wait_for "$dir/notify.out" '^STOPPING=1$' 2 || fail "no STOPPING=1"
# The socket is the manager's: still there for the next client.
[ -S "$TETHER_SOCKET" ] || fail "tetherd removed the socket systemd passed"
[ "$(grep -c '^READY=1$' "$dir/notify.out")" -eq 1 ] || fail "READY=1 said more than once"
echo "ok: activated on the first connection, READY=1 and STATUS=, the socket left in place"

# ---- started again on the same socket path: the next activation ----
rm -f "$TETHER_SOCKET"
systemd-socket-activate --seqpacket -l "$TETHER_SOCKET" "${sa_env[@]}" "$tetherd" "${args[@]}" 2>"$dir/log2" &
sa=$!
pids+=($sa)
wait_for "$dir/log2" "Listening on" || fail "systemd-socket-activate did not listen (2)"
out=$(timeout 30 "$tether" reg -c ExampleDriver 2>&1) || fail "tether reg (no NOTIFY_SOCKET): $out"
grep -q ExampleDriver <<<"$out" || fail "tether reg -c ExampleDriver: $out"
stop $sa
[ $? -eq 0 ] || fail "tetherd (2) exit status"
echo "ok: with no NOTIFY_SOCKET, nothing told and nothing missing"

# ---- not activated: its own socket, as before ----
rm -f "$TETHER_SOCKET"
# LISTEN_* of another process (a parent that was activated): ignored.
LISTEN_FDS=1 LISTEN_PID=1 "$tetherd" "${args[@]}" --socket "$TETHER_SOCKET" --ready-fd 4 4>"$dir/ready" 2>"$dir/log3" &
p=$!
pids+=($p)
wait_for "$dir/ready" READY 20 || fail "tetherd with another process's LISTEN_PID did not start"
grep -q "LISTEN_PID=1 is not tetherd's pid" "$dir/log3" || fail "no line saying LISTEN_FDS was ignored"
out=$(timeout 30 "$tether" reg -c ExampleDriver 2>&1) || fail "tether reg (own socket): $out"
stop $p
[ $? -eq 0 ] || fail "tetherd (3) exit status"
[ -e "$TETHER_SOCKET" ] && fail "tetherd left its own socket behind"
echo "ok: not activated, its own socket (made and removed)"
exit 0
