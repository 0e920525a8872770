#!/usr/bin/env bash
# IOMatchCategory through the real tetherd, with bundles made here from the
# example's library: drivers of different categories share TetherResources;
# within a category the best score that starts wins and each loser is told
# why in the log; a category whose best refuses start falls to its next
# driver, the other categories untouched; a crashed host or an unloaded
# bundle has its category matched again, and only its, and a bundle failed
# for crashing hands its category on; a nub has at most
# TETHERD_MAX_DRIVERS_PER_NUB drivers. Hosted, then the first checks again
# under --in-process.
set -u
tetherd=$1 tether=$2
bundles=$TETHER_DRIVERS
unset TETHER_DRIVERS TETHER_IN_PROCESS TETHER_ISOLATE # this test says which bundles, and where they run
dir=$(mktemp -d)
chmod 755 "$dir"
export TETHER_SOCKET="$dir/s.sock"
pid=
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; [ -f "$dir/log" ] && tail -30 "$dir/log"; exit 1; }
command -v jq >/dev/null || fail "jq is not installed (scripts/install-deps.sh installs it)"
. "$(dirname "$0")/../lib.sh" # wait_for
# bundle FOLDER ID PERSONALITIES: the example's library, and a manifest
# whose personalities are PERSONALITIES (JSON).
bundle() {
  mkdir -p "$1/$2.tether"
  cp "$bundles/org.tether.example.tether/example.so" "$1/$2.tether/"
  printf '{"schema":1,"bundle":"%s","version":"1","library":"example.so","personalities":%s}' "$2" "$3" \
    >"$1/$2.tether/manifest.json"
}
# A personality of the example's DRIVER on TetherResources.
on_resources() { # DRIVER CATEGORY|- SCORE
  local cat=
  [ "$2" != - ] && cat=",\"IOMatchCategory\":\"$2\""
  printf '{"driver":"%s","IOProviderClass":"TetherResources","IOProbeScore":%s%s}' "$1" "$3" "$cat"
}
start_tetherd() { # FOLDER [ARGS...]
  local folder=$1
  shift
  chmod -R a+rX "$folder"
  rm -f "$dir/ready" # the redirection below truncates in the child only: no stale READY
  "$tetherd" --socket "$TETHER_SOCKET" --no-usb --no-system-drivers --drivers "$folder" "$@" \
    --ready-fd 4 4>"$dir/ready" 2>"$dir/log" &
  pid=$!
  wait_for "$dir/ready" READY 20 || fail "tetherd did not start: $(cat "$dir/log")"
}
stop_tetherd() {
  kill $pid
  wait $pid
  local rc=$?
  pid=
  [ $rc -eq 0 ] || fail "tetherd exit status $rc"
}
# The services on TetherResources as "bundle category pid" lines, sorted.
on_nub() {
  "$tether" reg --json | jq -r '.. | objects | select(.class? == "TetherResources") | .children[]? | select(.state.active)
    | "\(.properties.CFBundleIdentifier) \(.properties.IOMatchCategory) \(.properties.TetherHostPID // 0)"' | sort
}
# Wait until on_nub's bundles and categories (the pids aside) are WANT.
wait_nub() { # WANT [SECONDS]
  local i got
  for ((i = 0; i < ${2:-10} * 10; i++)); do
    got=$(on_nub | cut -d' ' -f1,2)
    [ "$got" = "$1" ] && return 0
    sleep 0.1
  done
  fail "on TetherResources: $(printf '%s' "$got" | tr '\n' ';') wanted $(printf '%s' "$1" | tr '\n' ';')"
}
count() { grep -c -- "$1" "$dir/log"; }

# ---- four categories on TetherResources ----
# default: the example (0) alone; A: cata alone; S: hi (100) beats lo (5);
# R: refuse's ExampleDevice (50) refuses start (no "Unit" on
# TetherResources), so next (1) takes R, and last (0) loses to next.
d=$dir/d1
mkdir -p "$d"
cp -r "$bundles/org.tether.example.tether" "$d/"
bundle "$d" org.test.cata "{\"A\":$(on_resources ExampleDriver org_test_A 0)}"
bundle "$d" org.test.hi "{\"S\":$(on_resources ExampleDriver org_test_S 100)}"
bundle "$d" org.test.lo "{\"S\":$(on_resources ExampleDriver org_test_S 5)}"
bundle "$d" org.test.refuse "{\"R\":$(on_resources ExampleDevice org_test_R 50)}"
bundle "$d" org.test.next "{\"R\":$(on_resources ExampleDriver org_test_R 1)}"
bundle "$d" org.test.last "{\"R\":$(on_resources ExampleDriver org_test_R 0)}"
start_tetherd "$d"
want="org.test.cata org_test_A
org.test.hi org_test_S
org.test.next org_test_R
org.tether.example IODefaultMatchCategory"
wait_nub "$want"
# Every driver on the nub in `tether reg`'s tree, each in a host of its own.
tree=$("$tether" reg)
[ "$(grep -c "ExampleDriver  <class ExampleDriver" <<<"$tree")" -eq 4 ] || fail "reg: four ExampleDrivers expected: $tree"
[ "$(on_nub | cut -d' ' -f3 | sort -u | grep -vc '^0$')" -eq 4 ] || fail "not four hosts: $(on_nub)"
wait_for "$dir/log" "org.test.last: ExampleDriver matched TetherResources but is not started" 5 || fail "no line on last"
grep -q "info: bundle org.test.lo: ExampleDriver matched TetherResources but is not started: lost on probe score to org.test.hi ExampleDriver in category org_test_S (5 to 100)" "$dir/log" \
  || fail "the loser in S is not told why"
grep -Eq "bundle org.test.refuse: ExampleDevice: start refused the nub: .+ \(TetherResources, category org_test_R\)" "$dir/log" \
  || fail "the refusal in R is not logged"
grep -q "bundle org.test.last: ExampleDriver matched TetherResources but is not started: lost on probe score to org.test.next ExampleDriver in category org_test_R (0 to 1)" "$dir/log" \
  || fail "the loser in R is not told why"
# Losers lose only within their own category.
[ "$(count "not started")" -eq 2 ] || fail "two losers expected: $(grep "not started" "$dir/log")"
run_reg=$("$tether" reg -l -c ExampleDriver)
grep -Fq '"IOMatchCategory" = "org_test_A"' <<<"$run_reg" || fail "reg -l: no IOMatchCategory: $run_reg"

# ---- a crashed host: its category alone is matched again ----
before=$(on_nub)
victim=$(awk '$1 == "org.test.hi" { print $3 }' <<<"$before")
[ -n "$victim" ] && [ "$victim" -gt 0 ] || fail "no host for hi: $before"
kill -KILL "$victim"
for _ in $(seq 100); do
  now=$(on_nub)
  hi=$(awk '$1 == "org.test.hi" { print $3 }' <<<"$now")
  [ -n "$hi" ] && [ "$hi" != "$victim" ] && [ "$hi" != 0 ] && break
  sleep 0.1
done
[ -n "$hi" ] && [ "$hi" != "$victim" ] || fail "hi was not restarted: $now"
# The others kept their hosts; lo (S) still lost, to the restarted hi.
[ "$(grep -v '^org.test.hi ' <<<"$now")" = "$(grep -v '^org.test.hi ' <<<"$before")" ] \
  || fail "a crash in S touched other categories: $before / $now"
wait_nub "$want"
[ "$(count "org.test.lo: ExampleDriver matched TetherResources but is not started: lost on probe score")" -eq 2 ] \
  || fail "lo did not lose S again on the restart"
[ "$(count "org.test.last: ExampleDriver matched")" -eq 1 ] || fail "R was matched again for a crash in S"
[ "$(count "is held by")" -eq 0 ] || fail "other categories were matched again for a crash in S"

# ---- unload: the other categories' drivers run on ----
before=$(on_nub)
"$tether" driver unload org.test.cata >/dev/null || fail "unload cata"
wait_nub "org.test.hi org_test_S
org.test.next org_test_R
org.tether.example IODefaultMatchCategory"
[ "$(on_nub)" = "$(grep -v '^org.test.cata ' <<<"$before")" ] || fail "unloading A touched others: $before / $(on_nub)"
# Unloading S's winner hands S to the next driver of S, and no other.
"$tether" driver unload org.test.hi >/dev/null || fail "unload hi"
wait_nub "org.test.lo org_test_S
org.test.next org_test_R
org.tether.example IODefaultMatchCategory"
[ "$(grep -v '^org.test.lo ' <<<"$(on_nub)")" = "$(grep -Ev '^org.test.(cata|hi) ' <<<"$before")" ] \
  || fail "unloading hi touched other categories: $before / $(on_nub)"
# A bundle loaded into a category that has its driver is told so.
"$tether" driver load "$d/org.test.hi.tether" >/dev/null || fail "load hi"
wait_for "$dir/log" "info: bundle org.test.hi: ExampleDriver matched TetherResources but is not started: its category org_test_S is held by org.test.lo ExampleDriver \(probe score 100 to 5\)" 5 \
  || fail "a driver loaded into a held category is not told why"
# Old losers met again by that load, which would not have won, are left to
# debug level: a line each per load would drown the news.
grep -q "info: bundle org.test.last: ExampleDriver matched TetherResources but is not started: its category" "$dir/log" \
  && fail "a driver that would have lost anyway is logged at info on every load"
# (I/O Kit starts no driver in a category that has one, better score or not.)
wait_nub "org.test.lo org_test_S
org.test.next org_test_R
org.tether.example IODefaultMatchCategory"
stop_tetherd

# ---- a bundle failed for crashing: its category goes to the next driver of it ----
d=$dir/d4
mkdir -p "$d"
cp -r "$bundles/org.tether.example.tether" "$d/"
bundle "$d" org.test.hi "{\"S\":$(on_resources ExampleDriver org_test_S 100)}"
bundle "$d" org.test.lo "{\"S\":$(on_resources ExampleDriver org_test_S 5)}"
start_tetherd "$d"
wait_nub "org.test.hi org_test_S
org.tether.example IODefaultMatchCategory"
example=$(awk '$1 == "org.tether.example" { print $3 }' <<<"$(on_nub)")
for i in 1 2 3 4 5; do # five crashes within a minute: failed
  victim=
  for _ in $(seq 150); do
    victim=$(awk '$1 == "org.test.hi" { print $3 }' <<<"$(on_nub)")
    [ -n "$victim" ] && [ "$victim" != 0 ] && [ "$victim" != "${last:-}" ] && break
    victim=
    sleep 0.1
  done
  [ -n "$victim" ] || fail "hi was not restarted after crash $((i - 1))"
  last=$victim
  kill -KILL "$victim"
done
wait_for "$dir/log" "bundle org.test.hi: 5 crashes within 60 s; failed" 5 || fail "hi did not fail"
wait_nub "org.test.lo org_test_S
org.tether.example IODefaultMatchCategory"
[ "$(awk '$1 == "org.tether.example" { print $3 }' <<<"$(on_nub)")" = "$example" ] || fail "the example's host changed"
stop_tetherd

# ---- at most TETHERD_MAX_DRIVERS_PER_NUB (16) drivers on a nub ----
d=$dir/d2
mkdir -p "$d"
p=
for i in $(seq 20); do
  p="$p${p:+,}\"P$i\":$(on_resources ExampleDriver "org_test_$i" $((100 - i)))"
done
bundle "$d" org.test.many "{$p}"
start_tetherd "$d"
for _ in $(seq 200); do [ "$(on_nub | wc -l)" -ge 16 ] && break; sleep 0.1; done
wait_for "$dir/log" "TetherResources has 16 drivers, the most a nub may have \(one per match category\): category org_test_(17|18|19|20) is not matched" 10 || fail "the limit is not logged"
sleep 0.5
[ "$(on_nub | wc -l)" -eq 16 ] || fail "not 16 drivers on the nub: $(on_nub | wc -l)"
# The best categories have them: P1 .. P16 (scores 99 .. 84).
[ "$(on_nub | cut -d' ' -f2 | sort -t_ -k3 -n | tr '\n' ' ')" = "$(seq -f 'org_test_%g' 16 | tr '\n' ' ')" ] \
  || fail "the limit did not keep the best: $(on_nub)"
stop_tetherd

# ---- --in-process: the same rules with the drivers in tetherd ----
d=$dir/d3
mkdir -p "$d"
cp -r "$bundles/org.tether.example.tether" "$d/"
bundle "$d" org.test.cata "{\"A\":$(on_resources ExampleDriver org_test_A 0)}"
bundle "$d" org.test.hi "{\"S\":$(on_resources ExampleDriver org_test_S 100)}"
bundle "$d" org.test.lo "{\"S\":$(on_resources ExampleDriver org_test_S 5)}"
bundle "$d" org.test.refuse "{\"R\":$(on_resources ExampleDevice org_test_R 50)}"
bundle "$d" org.test.next "{\"R\":$(on_resources ExampleDriver org_test_R 1)}"
start_tetherd "$d" --in-process
wait_nub "org.test.cata org_test_A
org.test.hi org_test_S
org.test.next org_test_R
org.tether.example IODefaultMatchCategory"
grep -q "bundle org.test.lo: ExampleDriver matched TetherResources but is not started: lost on probe score to org.test.hi" "$dir/log" \
  || fail "--in-process: the loser in S is not told why"
"$tether" driver unload org.test.hi >/dev/null || fail "--in-process: unload hi"
wait_nub "org.test.cata org_test_A
org.test.lo org_test_S
org.test.next org_test_R
org.tether.example IODefaultMatchCategory"
stop_tetherd
echo "match-category: all checks passed"
