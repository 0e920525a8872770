#!/usr/bin/env bash
# tetherd --simulate for each simulator, as a person sees it with tether
# reg: a simulated 34461A DMM and a DSO-X 2002A side by side, their nubs'
# ids and what stands behind them; --help naming the simulators; an
# unknown name refused with the known ones.
set -u
tetherd=$1 tether=$2
dir=$(mktemp -d)
export TETHER_SOCKET="$dir/s.sock"
fail() { echo "FAIL: $*"; exit 1; }

names=$("$tetherd" --help | grep -A2 -- "--simulate NAME   plug in a simulated instrument, optionally with :SERIAL; NAME is one of" \
  | tail -n +2 | tr -s ' \n' ' ')
[ "$names" = " dsox2002a, dsox2004a, dsox2012a, dsox2014a, dsox2022a, dsox2024a, msox2002a, msox2004a, msox2012a, msox2014a, msox2022a, msox2024a, 34461a " ] \
  || fail "--help's names: $names"
out=$("$tetherd" --socket "$dir/x.sock" --no-usb --simulate fluke87 2>&1) && fail "an unknown name started tetherd"
grep -q "unknown instrument 'fluke87' (known: dsox2002a, .*, 34461a)" <<<"$out" || fail "unknown name: $out"

"$tetherd" --socket "$TETHER_SOCKET" --no-usb --simulate 34461a:SIM0001 --simulate dsox2002a:SIM0002 \
  --ready-fd 4 4>"$dir/ready" 2>"$dir/log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do grep -q READY "$dir/ready" 2>/dev/null && break; sleep 0.05; done

out=$("$tether" reg -c TetherUSBDevice --json) || fail "reg --json: $out"
[ "$(jq -r '.entries | length' <<<"$out")" = 2 ] || fail "two nubs: $out"
dmm=$(jq -c '.entries[] | select(.properties."USB Serial Number" == "SIM0001")' <<<"$out")
jq -e '.name == "34461A" and .location == "sim0" and .properties.idVendor == 10893 and .properties.idProduct == 4865
       and .properties.bInterfaceClass == 254 and .properties.bInterfaceSubClass == 3 and .properties.bInterfaceProtocol == 1
       and .properties.TetherSimulated == true and .properties.TetherSimulator == "tether-sim-dmm"
       and .properties.TetherSimulatedModel == "34461a" and .properties."USB Product Name" == "34461A"' <<<"$dmm" >/dev/null \
  || fail "the DMM's nub: $dmm"
scope=$(jq -c '.entries[] | select(.properties."USB Serial Number" == "SIM0002")' <<<"$out")
jq -e '.location == "sim1" and .properties.idVendor == 2391 and .properties.idProduct == 6043
       and .properties.TetherSimulator == "tether-sim-scope" and .properties.TetherSimulatedModel == "dsox2002a"' \
  <<<"$scope" >/dev/null || fail "the scope's nub: $scope"
# The tree: a DSOX2000 on the scope; the one that tried the DMM let it go.
for _ in $(seq 100); do grep -q "34461A is not an InfiniiVision 2000 X" "$dir/log" && break; sleep 0.1; done
grep -q "Keysight Technologies 34461A is not an InfiniiVision 2000 X: not driving it" "$dir/log" \
  || fail "the DMM was not asked *IDN?: $(cat "$dir/log")"
out=$("$tether" reg -n 34461A@sim0 -l) || fail "reg -n: $out"
grep -q '"TetherSimulator" = "tether-sim-dmm"' <<<"$out" || fail "reg -l of the DMM: $out"
grep -q '"idVendor" = 10893' <<<"$out" || fail "reg -l idVendor: $out"
grep -Eq '^ *\+-o DSOX2000@sim1 ' <<<"$("$tether" reg)" || fail "DSOX2000 on the scope: $("$tether" reg)"
grep -Eq 'DSOX2000@sim0' <<<"$("$tether" reg)" && fail "a DSOX2000 stayed on the DMM"
echo "ok"
