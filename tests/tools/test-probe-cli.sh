#!/usr/bin/env bash
# tether probe against tetherd with a simulated DSO-X 2002A: the lines a
# person reads, the filters, the errors, and a pcap that tshark dissects
# (with and without tether's USBTMC dissector).
set -u
tetherd=$1 tether=$2 lua=$3
dir=$(mktemp -d)
export TETHER_SOCKET="$dir/s.sock"
fail() { echo "FAIL: $*"; [ -f "$dir/probe.out" ] && tail -20 "$dir/probe.out"; exit 1; }

out=$("$tether" probe --count 1 2>&1) && fail "probe without a daemon succeeded"
grep -q "cannot reach tetherd" <<<"$out" || fail "no-daemon message: $out"
[ "$(wc -l <<<"$out")" -eq 1 ] || fail "no-daemon message is not one line: $out"

"$tetherd" --socket "$TETHER_SOCKET" --no-usb --simulate dsox2002a:PRB0001 --ready-fd 4 4>"$dir/ready" 2>"$dir/log" &
pid=$!
probe=
trap 'kill $pid $probe 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do grep -q READY "$dir/ready" 2>/dev/null && break; sleep 0.05; done

out=$("$tether" probe --service NoSuchThing 2>&1) && fail "unknown service succeeded"
grep -q "^tether probe: NoSuchThing: no such entry" <<<"$out" || fail "unknown service message: $out"
out=$("$tether" probe --pid x 2>&1) && fail "bad pid succeeded"
grep -q "bad number 'x'" <<<"$out" || fail "bad number message: $out"

# Start probing, wait until attached, make traffic, stop with Ctrl-C.
start_probe() {
  rm -f "$dir/probe.err"
  "$tether" probe "$@" >"$dir/probe.out" 2>"$dir/probe.err" &
  probe=$!
  for _ in $(seq 200); do grep -q attached "$dir/probe.err" 2>/dev/null && return; sleep 0.05; done
  fail "probe did not attach: $(cat "$dir/probe.err")"
}
stop_probe() {
  kill -INT $probe
  wait $probe || fail "probe exit status $?"
  probe=
}

start_probe --pcap "$dir/cap.pcap"
"$tether" scope capture --points 62500 --csv "$dir/w.csv" >/dev/null 2>&1 &
cap=$!
wait $cap || fail "capture"
stop_probe
grep -qE "tether probe: [0-9]+ events, 0 lost" "$dir/probe.err" || fail "summary: $(cat "$dir/probe.err")"
# A call line: pid, connection, class, selector and name, sizes, result, time.
grep -qE "call pid $cap conn [0-9]+ DSOX2000 sel 7 getVolts  in 2s/0B out 0s/250000B\(shm\)  success  [0-9.]+ (us|ms)" \
  "$dir/probe.out" || fail "getVolts call line"
# USB lines: the query as text, the request, the answer's size.
grep -qE 'usb  0\.0 bulk-out ep 02 .* DEV_DEP_MSG_OUT tag [0-9]+ size 16 EOM ":WAVeform:DATA\?\\n"' "$dir/probe.out" \
  || fail "DATA? line"
grep -qE 'usb  0\.0 bulk-in  ep 81 .* DEV_DEP_MSG_IN tag [0-9]+ size 625[0-9][0-9] EOM "#[1-9]0*62500' "$dir/probe.out" \
  || fail "waveform block line"
grep -qE 'usb  0\.0 ctrl-in .* GET_CAPABILITIES|usb  0\.0 bulk' "$dir/probe.out" || fail "usb lines"

# Wireshark's own dissector: a well-formed usbmon capture.
tshark=$(command -v tshark) || fail "tshark is not installed"
ts() { "$tshark" "$@" 2>/dev/null; }
[ "$(ts -r "$dir/cap.pcap" -Y '_ws.malformed || _ws.expert.severity >= error' | wc -l)" -eq 0 ] \
  || fail "tshark finds malformed packets"
frames=$(ts -r "$dir/cap.pcap" | wc -l)
[ "$frames" -gt 20 ] || fail "too few frames: $frames"
# Every transfer is a submission and a completion.
s=$(ts -r "$dir/cap.pcap" -Y "usb.urb_type == 'S'" | wc -l)
c=$(ts -r "$dir/cap.pcap" -Y "usb.urb_type == 'C'" | wc -l)
[ "$s" -eq "$c" ] && [ $((s + c)) -eq "$frames" ] || fail "submissions $s, completions $c, frames $frames"
# The query's bytes, as Wireshark sees them: header + ":WAVeform:DATA?\n".
ts -r "$dir/cap.pcap" -Y 'usb.transfer_type == 3 && usb.endpoint_address == 0x02' -T fields -e usb.capdata |
  grep -q "3a57415665666f726d3a444154413f0a" || fail "DATA? bytes in the pcap"
# The waveform arrives whole: one bulk-IN completion of >= 62,500 bytes.
ts -r "$dir/cap.pcap" -Y "usb.endpoint_address == 0x81 && usb.urb_type == 'C'" -T fields -e usb.data_len |
  awk '$1 >= 62500 {ok=1} END {exit !ok}' || fail "no whole waveform transfer"

# tether's USBTMC dissector: the conversation as SCPI.
tl() { ts -X lua_script:"$lua" "$@"; }
tl -r "$dir/cap.pcap" -Y 'usbtmc.msgid == 1' -T fields -e usbtmc.text | grep -qx ':WAVeform:DATA?\\n' \
  || fail "lua: DATA? text"
tl -r "$dir/cap.pcap" -Y 'usbtmc.message == "DEV_DEP_MSG_IN" && usbtmc.transfer_size >= 62500' -T fields \
  -e usbtmc.eom | grep -qx "1" || fail "lua: waveform block"
tl -r "$dir/cap.pcap" -Y 'usbtmc.message == "REQUEST_DEV_DEP_MSG_IN"' -T fields -e _ws.col.Info | grep -q "^REQUEST_DEV_DEP_MSG_IN bTag [0-9]* max [0-9]*$" || fail "lua: request"

# Filters: one selector only; calls only.
start_probe --calls --selector 7
"$tether" scope capture --points 1000 --csv "$dir/w2.csv" >/dev/null 2>&1 || fail "capture 2"
stop_probe
grep -q "sel 7 getVolts" "$dir/probe.out" || fail "selector filter lost its call"
if grep -v "sel 7 " "$dir/probe.out" | grep -q .; then fail "selector filter let others through"; fi

# --count stops by itself; --quiet prints nothing.
start_probe --calls --count 2 --quiet
"$tether" scope scpi '*IDN?' >/dev/null || fail "scpi"
"$tether" scope scpi '*IDN?' >/dev/null || fail "scpi"
wait $probe || fail "probe --count exit"
probe=
[ ! -s "$dir/probe.out" ] || fail "--quiet printed lines"
grep -q "2 events" "$dir/probe.err" || fail "--count: $(cat "$dir/probe.err")"

# A property write refused: its keys, the answer and the driver's reason.
start_probe --calls
"$tether" reg set DSOX2000 TimeoutMs 5 >/dev/null 2>&1 && fail "reg set TimeoutMs 5 succeeded"
stop_probe
grep -qE '^[0-9:.]+ set  pid [0-9]+ DSOX2000 "TimeoutMs"  invalid argument  [0-9.]+ (us|ms)  why: "TimeoutMs must be an unsigned integer from 100 to 600000 \(ms\)"$' \
  "$dir/probe.out" || fail "property write line: $(cat "$dir/probe.out")"

# --json: one object per line (docs/probe-json.md), for jq.
command -v jq >/dev/null || fail "jq is not installed"
start_probe --json
"$tether" scope capture --points 1000 --csv "$dir/w3.csv" >/dev/null 2>&1 &
cap=$!
wait $cap || fail "capture 3"
"$tether" reg set DSOX2000 TimeoutMs 5 >/dev/null 2>&1 && fail "reg set TimeoutMs 5 succeeded (json)"
stop_probe
jq -e . "$dir/probe.out" >/dev/null || fail "--json: not JSON lines"
[ "$(jq -s 'map(select(.schema != 1)) | length' "$dir/probe.out")" -eq 0 ] || fail "--json: schema"
# jq -e goes by the last input's result, so each check slurps and asks any().
jq -es --argjson pid "$cap" 'any(.[]; .kind == "call" and .method == "getVolts" and .pid == $pid and
  .selector == 7 and .result == "Success" and .structOut == 4000 and .async == false)' \
  "$dir/probe.out" >/dev/null || fail "--json: the getVolts call"
jq -es --argjson pid "$cap" 'any(.[]; .kind == "usb" and .direction == "out" and
  .usbtmc.message == "DEV_DEP_MSG_OUT" and .usbtmc.text == ":WAVeform:DATA?\n" and .pid == $pid and
  .selector == 7 and .usbtmc.eom == true)' "$dir/probe.out" >/dev/null || fail "--json: the DATA? transfer"
# The block's transfer: its bytes as hex, as many as the default snaplen (256) keeps.
jq -es 'any(.[]; .kind == "property" and .keys == "TimeoutMs" and .result == "BadArgument" and
  .selector == null and (.reason | test("from 100 to 600000")))' "$dir/probe.out" >/dev/null \
  || fail "--json: the property write"
jq -es 'any(.[]; .kind == "usb" and .direction == "in" and .usbtmc.transferSize >= 1000 and
  (.data | length) == 2 * ([.actual, 256] | min) and (.data | startswith("02")))' \
  "$dir/probe.out" >/dev/null || fail "--json: the waveform block"

# The daemon going away ends the probe with one line and status 1.
start_probe
kill $pid; wait $pid 2>/dev/null
wait $probe && fail "probe survived tetherd"
probe=
grep -q "tetherd went away" "$dir/probe.err" || fail "daemon-gone message: $(cat "$dir/probe.err")"
echo "tether probe CLI: all checks passed"
