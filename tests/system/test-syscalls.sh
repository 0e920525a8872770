#!/usr/bin/env bash
# tetherd.service's SystemCallFilter= against what tetherd, its driver hosts
# and a simulator really call: every system call strace sees them make (at
# start-up, a registry listing, the example client's calls, a screenshot of
# the simulated scope through the DSO-X driver, shutdown) must be in the
# unit's filter, as systemd-analyze expands its groups. One outside it would
# fail with EPERM only on a machine running the service.
set -u
tetherd=$1 tether=$2 example=$3 unit=$4
command -v strace >/dev/null || { echo "FAIL: strace is missing (scripts/install-deps.sh installs it)"; exit 1; }
dir=$(mktemp -d)
chmod 755 "$dir"
export TETHER_SOCKET="$dir/s.sock"
spid=
trap '[ -n "$spid" ] && kill $spid 2>/dev/null; wait $spid 2>/dev/null; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; [ -f "$dir/log" ] && tail -20 "$dir/log"; exit 1; }
filter=$(sed -n 's/^SystemCallFilter=//p' "$unit")
[ -n "$filter" ] || fail "no SystemCallFilter= in $unit"
# Every group and its members, then the unit's expanded, groups within
# groups included.
systemd-analyze syscall-filter --no-pager >"$dir/groups" 2>/dev/null || fail "systemd-analyze syscall-filter failed"
awk -v want="$filter" '
  /^@/ { group = $1; next }
  /^ *#/ || NF == 0 { next }
  group != "" { members[group] = members[group] " " $1 }
  END {
    n = split(want, todo, " ")
    while (n > 0) {
      g = todo[n--]
      if (g !~ /^@/) { print g; continue }
      if (seen[g]++) continue
      m = split(members[g], list, " ")
      for (i = 1; i <= m; i++) todo[++n] = list[i]
    }
  }' "$dir/groups" | sort -u >"$dir/allowed"
[ "$(wc -l <"$dir/allowed")" -gt 100 ] || fail "the filter $filter expanded to only $(wc -l <"$dir/allowed") calls"

strace -f -qq -o "$dir/trace" "$tetherd" --no-usb --no-system-drivers --simulate dsox2002a \
  --ready-fd 4 4>"$dir/ready" 2>"$dir/log" &
spid=$!
for ((i = 0; i < 600; i++)); do grep -q READY "$dir/ready" 2>/dev/null && break; sleep 0.05; done
grep -q READY "$dir/ready" || fail "tetherd did not start under strace"
timeout 60 "$tether" reg -l >/dev/null || fail "tether reg -l"
timeout 60 "$example" >"$dir/example.out" 2>&1 || fail "the example client: $(tail -5 "$dir/example.out")"
timeout 60 "$tether" scope screenshot --png "$dir/screen.png" >/dev/null 2>&1 || fail "tether scope screenshot"
tpid=$(pgrep -P $spid -x tetherd)
[ -n "$tpid" ] || fail "no tetherd under strace"
kill -TERM "$tpid"
wait $spid
spid=
sed -nE 's/^[0-9]+ +([a-z_0-9]+)\(.*/\1/p' "$dir/trace" | sort -u >"$dir/used"
[ "$(wc -l <"$dir/used")" -gt 30 ] || fail "strace saw only $(wc -l <"$dir/used") calls"
grep -q '^execveat$' "$dir/used" || fail "strace did not follow tetherd into its hosts (no execveat)"
outside=$(comm -23 "$dir/used" "$dir/allowed" | tr '\n' ' ')
[ -z "$outside" ] || fail "called, but not in SystemCallFilter=$filter: $outside"
echo "ok: $(wc -l <"$dir/used") distinct system calls, all in $filter ($(wc -l <"$dir/allowed") calls)"
exit 0
