#!/usr/bin/env bash
# Installs what is needed, builds, starts tetherd with a simulated Keysight
# DSO-X 2002A, shows the registry, and captures channel 1 (the probe-
# compensation square wave): measurements on the terminal, wave.csv and
# wave.png in the current directory.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bash "$repo/scripts/install-deps.sh"
[ -d "$repo/build" ] || meson setup "$repo/build" "$repo" >/dev/null
meson compile -C "$repo/build" >/dev/null

dir=$(mktemp -d)
export TETHER_SOCKET="$dir/tetherd.sock"
# From the build tree: the driver host and the simulators tetherd starts.
export TETHER_DRIVERHOST="$repo/build/src/daemon/tether-driverhost" TETHER_SIM_DIR="$repo/build/sim"
"$repo/build/src/daemon/tetherd" --socket "$TETHER_SOCKET" --drivers "$repo/build/drivers/bundles" \
  --simulate dsox2002a --ready-fd 4 \
  4>"$dir/ready" 2>"$dir/tetherd.log" &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do grep -q READY "$dir/ready" 2>/dev/null && break; sleep 0.05; done

tether="$repo/build/tools/tether"
echo "\$ tether reg"
"$tether" reg
echo
echo "\$ tether scope list"
"$tether" scope list
echo
echo "\$ tether scope capture --autoscale --channel 1 --csv wave.csv --png wave.png"
"$tether" scope capture --autoscale --channel 1 --csv wave.csv --png wave.png
