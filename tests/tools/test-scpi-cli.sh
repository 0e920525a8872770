#!/usr/bin/env bash
# tether scpi against tetherd with both simulators (a DSO-X 2002A served by
# DSOX2000, a 34461A DMM served by the generic USBTMC driver): one-shot
# queries and commands, --list, --output, the errors a person meets, and
# the interactive shell through a pseudo-terminal.
set -u
tetherd=$1 tether=$2 pty=$3
dir=$(mktemp -d)
export TETHER_SOCKET="$dir/s.sock"
fail() { echo "FAIL: $*"; cat "$dir/log" 2>/dev/null | tail -20; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# The pid of a child of $1 whose name is $2 (the simulator tetherd started).
child_named() {
  local stat
  for stat in /proc/[0-9]*/stat; do
    read -r -a f <"$stat" 2>/dev/null || continue
    [ "${f[1]}" = "($2)" ] && [ "${f[3]}" = "$1" ] && { echo "${f[0]}"; return 0; }
  done
  return 1
}
scope=USB0::0x0957::0x179B::SCPI0001::INSTR
dmm=USB0::0x2A8D::0x1301::DMM0001::INSTR

out=$("$tether" scpi '*IDN?' 2>&1) && fail "a query without a daemon succeeded"
grep -q "cannot reach tetherd" <<<"$out" || fail "no-daemon message: $out"
out=$("$tether" scpi --json 2>&1); [ $? -eq 2 ] || fail "--json without --list: not a usage error"

"$tetherd" --socket "$TETHER_SOCKET" --no-usb --simulate dsox2002a:SCPI0001 --simulate 34461a:DMM0001 \
  --ready-fd 4 4>"$dir/ready" 2>"$dir/log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do grep -q READY "$dir/ready" 2>/dev/null && break; sleep 0.05; done
# Both drivers start their services after READY: wait for the two.
for _ in $(seq 200); do [ "$("$tether" scpi --list 2>/dev/null | wc -l)" -eq 2 ] && break; sleep 0.05; done

# --list: each with its resource string, driver and model.
out=$("$tether" scpi --list) || fail "list"
grep -Eq "^$scope +DSOX2000 +AGILENT TECHNOLOGIES DSO-X 2002A" <<<"$out" || fail "list: the scope: $out"
grep -Eq "^$dmm +USBTMCInstrument +Keysight Technologies 34461A" <<<"$out" || fail "list: the DMM: $out"
json=$("$tether" scpi --list --json) || fail "list --json"
[ "$(jq length <<<"$json")" = 2 ] || fail "json: two instruments: $json"
[ "$(jq -r '.[] | select(.class == "USBTMCInstrument") | .resource' <<<"$json")" = "$dmm" ] || fail "json: dmm resource"
[ "$(jq -r '.[] | select(.class == "DSOX2000") | .model' <<<"$json")" = "DSO-X 2002A" ] || fail "json: scope model"
[ "$(jq -r '.[] | select(.class == "DSOX2000") | .serial' <<<"$json")" = "SCPI0001" ] || fail "json: scope serial"

# Two instruments and none named: an error listing both.
out=$("$tether" scpi '*IDN?' 2>&1) && fail "an unnamed instrument out of two was picked"
grep -q "2 instruments; name one" <<<"$out" && grep -q "$scope" <<<"$out" && grep -q "$dmm" <<<"$out" \
  || fail "two-instrument message: $out"

# One-shot queries and commands, on both, each way of naming them.
[ "$("$tether" scpi USBTMCInstrument '*IDN?')" = "Keysight Technologies,34461A,DMM0001,A.02.08-02.37-02.08-00.49-01-01" ] \
  || fail "dmm *IDN?"
[ "$("$tether" scpi --resource "$scope" '*IDN?')" = "AGILENT TECHNOLOGIES,DSO-X 2002A,SCPI0001,02.42.2017032900" ] \
  || fail "scope *IDN? by resource"
# The resource is matched as VISA does, without regard to case.
"$tether" scpi -r "${dmm,,}" '*IDN?' | grep -q "^Keysight" || fail "resource in lower case"
"$tether" scpi 'TetherService:/TetherUSB/34461A@sim1' '*IDN?' | grep -q "^Keysight" || fail "the nub's path"
out=$("$tether" scpi USBTMCInstrument 'CONF:VOLT:DC 10') || fail "dmm command"
[ -z "$out" ] || fail "a command printed: $out"
[ "$("$tether" scpi USBTMCInstrument 'CONF?')" = '"VOLT +1.00000000E+01,+1.00000000E-05"' ] || fail "dmm CONF?"
reading=$("$tether" scpi USBTMCInstrument 'READ?') || fail "READ?"
awk -v r="$reading" 'BEGIN { exit !(r > 4.998 && r < 5.0) }' || fail "a DC reading near 4.99873 V: $reading"
"$tether" scpi DSOX2000 ':TIM:SCAL 0.002' || fail "scope command"
[ "$("$tether" scpi DSOX2000 ':TIM:SCAL?')" = "+2.00000000E-03" ] || fail "scope :TIM:SCAL?"
# Two units in one message: the last decides that it is a query.
[ "$("$tether" scpi USBTMCInstrument '*CLS;*OPC?')" = "1" ] || fail "*CLS;*OPC?"

# --output: the scope's screenshot (a PNG, its signature), a waveform block.
out=$("$tether" scpi DSOX2000 ':DISPlay:DATA? PNG' --output "$dir/s.png") || fail "screenshot: $out"
grep -q "^wrote $dir/s.png ([0-9]* bytes)" <<<"$out" || fail "screenshot message: $out"
[ "$(head -c 8 "$dir/s.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "png signature"
[ "$(od -An -tu1 -j16 -N8 "$dir/s.png" | tr -s ' ')" = " 0 0 3 32 0 0 1 224" ] || fail "png size 800x480"
"$tether" scpi DSOX2000 ':DIGitize CHAN1' || fail "digitize"
"$tether" scpi DSOX2000 ':WAV:SOUR CHAN1;:WAV:FORM BYTE;:WAV:POIN 1000' || fail "waveform settings"
"$tether" scpi DSOX2000 ':WAV:DATA?' -o "$dir/w.bin" >/dev/null || fail "waveform block"
[ "$(stat -c %s "$dir/w.bin")" = 1000 ] || fail "waveform: 1000 bytes, the header stripped: $(stat -c %s "$dir/w.bin")"
# A text answer with --output is printed, no file written.
[ "$("$tether" scpi DSOX2000 ':WAV:POIN?' -o "$dir/t.bin")" = 1000 ] && [ ! -e "$dir/t.bin" ] || fail "text with --output"
# The same block to a pipe: the raw data.
[ "$("$tether" scpi DSOX2000 ':WAV:DATA?' | wc -c)" = 1000 ] || fail "block to a pipe"

# Errors: one line each, exit 1.
out=$("$tether" scpi NoSuchThing '*IDN?' 2>&1); [ $? -eq 1 ] || fail "no such entry: status"
grep -q "NoSuchThing: no such entry" <<<"$out" || fail "no such entry: $out"
[ "$(wc -l <<<"$out")" = 1 ] || fail "no such entry: one line: $out"
out=$("$tether" scpi --resource USB0::0x1::0x2::X::INSTR '*IDN?' 2>&1) && fail "unknown resource"
grep -q "no instrument with resource" <<<"$out" || fail "unknown resource: $out"
# A query the instrument answers late, inside TimeoutMs: the answer as soon
# as it is made (4 readings of 10 PLC at 50 Hz: 0.8 s), not at the timeout.
"$tether" reg set USBTMCInstrument TimeoutMs 3000 >/dev/null || fail "TimeoutMs 3000"
"$tether" scpi USBTMCInstrument 'CONF:VOLT:DC 10;:VOLT:DC:NPLC 10;:SAMP:COUN 4' || fail "a slow configuration"
t0=$(now_ms)
out=$("$tether" scpi USBTMCInstrument 'READ?') || fail "a late answer: $out"
ms=$(( $(now_ms) - t0 ))
[ "$(tr ',' '\n' <<<"$out" | grep -c '^+4.998')" = 4 ] || fail "a late answer: four readings: $out"
[ "$ms" -ge 750 ] && [ "$ms" -lt 2500 ] || fail "a late answer came after $ms ms (made in 800 ms, timeout 3000)"
"$tether" scpi USBTMCInstrument 'SAMP:COUN 1' || fail "SAMP:COUN 1"
# Unanswered: the instrument NAKs until TimeoutMs is up, as a real one does;
# the timeout is said, and the next command works.
"$tether" reg set USBTMCInstrument TimeoutMs 300 >/dev/null || fail "TimeoutMs"
"$tether" scpi USBTMCInstrument '*CLS' || fail "*CLS"
t0=$(now_ms)
out=$("$tether" scpi USBTMCInstrument 'FOO:BAR?' 2>&1); [ $? -eq 1 ] || fail "an unanswered query: status"
ms=$(( $(now_ms) - t0 ))
[ "$out" = "tether scpi: FOO:BAR?: timeout: no answer within 300 ms (the link was cleared; the next command works)" ] \
  || fail "timeout message: $out"
[ "$ms" -ge 300 ] && [ "$ms" -lt 2000 ] || fail "an unanswered query failed after $ms ms (TimeoutMs 300)"
"$tether" scpi USBTMCInstrument '*IDN?' | grep -q "^Keysight" || fail "the query after a timeout"
[ "$("$tether" scpi USBTMCInstrument 'SYST:ERR?')" = '-113,"Undefined header"' ] || fail "SYST:ERR? after FOO:BAR?"
"$tether" scpi USBTMCInstrument '*CLS' || fail "*CLS"
out=$("$tether" scpi --check USBTMCInstrument 'FOO:BAR 1' 2>&1) && fail "--check let an unknown header pass"
grep -q 'the instrument reports: -113,"Undefined header"' <<<"$out" || fail "--check message: $out"
"$tether" scpi --check USBTMCInstrument 'CONF:VOLT:DC' || fail "--check on a good command"
"$tether" reg set DSOX2000 TimeoutMs 300 >/dev/null || fail "scope TimeoutMs"
t0=$(now_ms)
out=$("$tether" scpi DSOX2000 ':FOO?' 2>&1) && fail "scope: an unanswered query succeeded"
ms=$(( $(now_ms) - t0 ))
grep -q "timeout: no answer within 300 ms" <<<"$out" || fail "scope timeout: $out"
[ "$ms" -ge 300 ] && [ "$ms" -lt 2000 ] || fail "scope: an unanswered query failed after $ms ms (TimeoutMs 300)"
[ "$("$tether" scpi DSOX2000 ':SYST:ERR?')" = '-113,"Undefined header"' ] || fail "scope SYST:ERR?"

# Locked by another client: Busy, said so.
mkfifo "$dir/in"
"$tether" scpi USBTMCInstrument <"$dir/in" >"$dir/holder.out" 2>&1 &
holder=$!
exec 5>"$dir/in"
echo ":lock" >&5
for _ in $(seq 100); do grep -q locked "$dir/holder.out" && break; sleep 0.05; done
out=$("$tether" scpi USBTMCInstrument '*IDN?' 2>&1); [ $? -eq 1 ] || fail "a query to a locked instrument: status"
[ "$out" = "tether scpi: *IDN?: busy: the instrument is locked by another client" ] || fail "busy message: $out"
exec 5>&-
wait $holder
"$tether" scpi USBTMCInstrument '*IDN?' >/dev/null || fail "the lock was not released when its holder left"
# The scope's pass-through has no device clear nor status byte.
out=$(printf ':stb\n:clear\n:lock\n:unlock\n' | "$tether" scpi DSOX2000 2>&1)
grep -q ":stb: not supported by DSOX2000" <<<"$out" && grep -q ":clear: not supported by DSOX2000" <<<"$out" \
  && grep -q "^locked" <<<"$out" && grep -q "^unlocked" <<<"$out" || fail "the scope's shell commands: $out"

# The shell through a pseudo-terminal: history with the up arrow, :stb, :quit.
out=$(HOME="$dir" XDG_STATE_HOME="$dir/state" PROMPT="34461A> " python3 "$pty" "$tether" scpi USBTMCInstrument) \
  || fail "pty session: $out"
[ "$(grep -c "^Keysight Technologies,34461A,DMM0001" <<<"$(tr -d '\r' <<<"$out")")" = 2 ] \
  || fail "the up arrow did not send *IDN? again: $out"
grep -q "status byte 0x" <<<"$out" || fail ":stb in the shell: $out"
grep -qx '\*IDN?' "$dir/state/tether/scpi_history" || fail "history not kept in \$XDG_STATE_HOME"

# Unplugged while a query waits (the DMM's simulator killed, as a cable
# pulled): the wait ends at once, not at TimeoutMs, and tether scpi says so
# in one line, exit 1.
sim=$(child_named "$pid" tether-sim-dmm) || fail "the DMM simulator's pid"
"$tether" reg set USBTMCInstrument TimeoutMs 8000 >/dev/null || fail "TimeoutMs 8000"
"$tether" scpi USBTMCInstrument 'FOO:BAR?' >"$dir/unplug.out" 2>&1 &
waiting=$!
sleep 0.5
t0=$(now_ms)
kill -KILL "$sim"
wait "$waiting"; st=$?
ms=$(( $(now_ms) - t0 ))
out=$(cat "$dir/unplug.out")
[ "$st" -eq 1 ] || fail "unplugged mid-query: status $st: $out"
[ "$out" = "tether scpi: FOO:BAR?: the instrument is gone (unplugged?)" ] || fail "unplugged mid-query: $out"
[ "$ms" -lt 3000 ] || fail "unplugged mid-query: the query ended $ms ms after the unplug (TimeoutMs 8000)"
out=$("$tether" scpi USBTMCInstrument '*IDN?' 2>&1); [ $? -eq 1 ] || fail "a query after the unplug: status"
[ "$out" = "tether scpi: *IDN?: the instrument is gone (unplugged?)" ] || fail "a query after the unplug: $out"

echo "tether scpi CLI: all checks passed"
