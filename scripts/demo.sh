#!/usr/bin/env bash
# Installs what is needed, builds, starts tetherd on a private socket, and
# shows the model at work: the registry, a property write through the
# driver, and the example application calling its user client.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[ -d build ] || meson setup build >/dev/null
meson compile -C build >/dev/null

dir=$(mktemp -d)
export TETHER_SOCKET="$dir/tetherd.sock"
build/src/daemon/tetherd --socket "$TETHER_SOCKET" --ready-fd 4 4>"$dir/ready" 2>"$dir/tetherd.log" &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do grep -q READY "$dir/ready" 2>/dev/null && break; sleep 0.05; done

echo "\$ tether reg -l"
build/tools/tether reg -l
echo
echo "\$ tether-example"
build/drivers/tether-example
