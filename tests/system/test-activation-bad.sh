#!/usr/bin/env bash
# Activations tetherd cannot serve: each ends tetherd at once with a line
# saying what was wrong and exit status 1, never a hang and never a socket
# of its own in place of the one it was meant to serve. LISTEN_FDS naming
# an fd that is not open; LISTEN_FDS=0 or garbage; two sockets; a stream
# socket; a datagram socket; a connected socket instead of a listening one
# (Accept=yes); an fd that is not a socket.
set -u
tetherd=$1 helper=$2
command -v systemd-socket-activate >/dev/null ||
  { echo "FAIL: systemd-socket-activate is missing (scripts/install-deps.sh installs systemd)"; exit 1; }
dir=$(mktemp -d)
chmod 755 "$dir"
# Were tetherd to fall back to a socket of its own, it would be this one.
export TETHER_SOCKET="$dir/own.sock"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$dir/log" ] && { echo "== log"; cat "$dir/log"; }; exit 1; }
. "$(dirname "$0")/../lib.sh" # wait_for
sa_env=()
for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS; do
  [ -n "${!v+x}" ] && sa_env+=(-E "$v")
done
args=(--no-usb --no-system-drivers)

# direct NAME REGEX LISTEN_FDS [REDIRECTIONS...]: tetherd with LISTEN_PID its
# own pid and LISTEN_FDS as given, its fds 3... as the redirections make them.
direct() {
  local name=$1 want=$2 fds=$3
  shift 3
  timeout 30 bash -c 'export LISTEN_PID=$$ LISTEN_FDS="$1"; shift; exec "$@"' _ "$fds" \
    "$tetherd" "${args[@]}" "$@" 2>"$dir/log"
  local rc=$?
  [ $rc -eq 124 ] && fail "$name: tetherd hung"
  [ $rc -eq 1 ] || fail "$name: exit status $rc, wanted 1"
  grep -Eq -- "$want" "$dir/log" || fail "$name: no line matching '$want'"
  [ -e "$TETHER_SOCKET" ] && fail "$name: tetherd made a socket of its own"
  echo "ok: $name: $(grep -E -- "$want" "$dir/log" | head -1)"
}
direct "fd 3 not open" "LISTEN_FDS=1, but fd 3 is not open: no socket was passed" 1 3<&-
direct "LISTEN_FDS=0" "LISTEN_FDS=0 LISTEN_PID=[0-9]+ passes no socket" 0
direct "LISTEN_FDS garbage" "LISTEN_FDS=three LISTEN_PID=[0-9]+: LISTEN_FDS is not a number of sockets" three
direct "not a socket" "fd 3 is not a socket" 1 3</dev/null

# activated NAME REGEX POKE SOCKET-ACTIVATE-OPTIONS...: a socket made by
# systemd-socket-activate, tetherd started by `sockhelper poke POKE`.
activated() {
  local name=$1 want=$2 poke=$3
  shift 3
  rm -f "$dir"/a.sock "$dir"/b.sock
  : >"$dir/log"
  systemd-socket-activate "${sa_env[@]}" "$@" "$tetherd" "${args[@]}" 2>"$dir/log" &
  local sa=$!
  pids+=($sa)
  wait_for "$dir/log" "Listening on $dir/a.sock" || fail "$name: systemd-socket-activate did not listen"
  "$helper" poke "$poke" "$dir/a.sock" &
  pids+=($!)
  wait_for "$dir/log" "$want" 20 || fail "$name: no line matching '$want'"
  if grep -q -- --accept <<<"$*"; then
    # With --accept, systemd-socket-activate stays and forks a tetherd per
    # connection: that one's end is in the log, not in a status here.
    kill $sa
    wait $sa 2>/dev/null
  else
    local i
    for ((i = 0; i < 200; i++)); do kill -0 $sa 2>/dev/null || break; sleep 0.05; done
    kill -0 $sa 2>/dev/null && fail "$name: tetherd still runs 10 s after the line"
    wait $sa
    local rc=$?
    [ $rc -eq 1 ] || fail "$name: exit status $rc, wanted 1"
  fi
  [ -e "$TETHER_SOCKET" ] && fail "$name: tetherd made a socket of its own"
  echo "ok: $name: $(grep -E -- "$want" "$dir/log" | head -1)"
}
activated "two sockets" "2 sockets passed; tetherd serves exactly one" seqpacket \
  --seqpacket -l "$dir/a.sock" -l "$dir/b.sock"
activated "stream socket" "fd 3 is a stream \(SOCK_STREAM\) AF_UNIX socket" stream -l "$dir/a.sock"
activated "datagram socket" "fd 3 is a datagram \(SOCK_DGRAM\) AF_UNIX socket" dgram --datagram -l "$dir/a.sock"
activated "connected, not listening (Accept=yes)" "fd 3 is a SOCK_SEQPACKET AF_UNIX socket that is not listening" \
  seqpacket --seqpacket --accept -l "$dir/a.sock"
exit 0
