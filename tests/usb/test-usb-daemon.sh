#!/usr/bin/env bash
# tetherd on a USB bus with an emulated DSO-X 2002A and a keyboard (run
# under umockdev-run): the scope's USBTMC interface becomes a nub with its
# ids and location, the keyboard does not, and the DSOX2000 driver's
# attempt to claim it (umockdev-run emulates no ioctls here) is refused
# cleanly, leaving the nub unmatched and the daemon serving. Transfers and
# hotplug are tested with an ioctl handler in test-usb-transfer/-stack.
# --in-process: umockdev emulates the bus only inside the processes it
# preloads, and a driver host starts with an empty environment (no
# LD_PRELOAD): there the DSOX2000 driver would meet the real, empty bus and
# fail for a reason this test is not about. In tetherd it meets the
# emulated device, as the checks below expect.
set -u
tetherd=$1 tether=$2
dir=$(mktemp -d)
export TETHER_SOCKET="$dir/s.sock"
fail() { echo "FAIL: $*"; cat "$dir/log" 2>/dev/null; exit 1; }
"$tetherd" --in-process --socket "$TETHER_SOCKET" --ready-fd 4 4>"$dir/ready" 2>"$dir/log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do grep -q READY "$dir/ready" 2>/dev/null && break; sleep 0.05; done
out=$("$tether" reg -l) || fail "reg"
grep -q "+-o USBTMC-0957-1799@1-2  <class TetherUSBDevice, .*registered, !matched, active" <<<"$out" || fail "nub: $out"
grep -q '"idVendor" = 2391' <<<"$out" || fail "idVendor"
grep -q '"bInterfaceProtocol" = 1' <<<"$out" || fail "USB488 protocol"
grep -q '"USB Address" = 2' <<<"$out" || fail "address"
grep -q "046d" <<<"$out" && fail "the keyboard was published"
grep -q "USB: USBTMC instrument 0957:1799 at 1-2" "$dir/log" || fail "scan log"
grep -q "bundle org.tether.dsox2000: DSOX2000: start refused the nub" "$dir/log" || fail "driver attempt"
# Refused at the claim, by the emulated device: not for want of a device,
# which is all a driver outside the emulation (in a host) would find.
grep -q "DSOX2000: start refused the nub: no such device" "$dir/log" && fail "the driver did not reach the emulated device"
"$tether" scope list >/dev/null 2>&1 && fail "a scope was listed without a working link"
kill -0 $pid || fail "tetherd died"
echo "tetherd USB scan under umockdev: all checks passed"
