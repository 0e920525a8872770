#!/usr/bin/env bash
# Installs the Debian 12 packages tether needs to build, test, fuzz and benchmark.
# Idempotent: safe to run on every invocation of the demo or test command.
set -euo pipefail

pkgs=(
  build-essential pkg-config meson ninja-build
  clang libclang-rt-14-dev       # libFuzzer and sanitizer runtimes
  libcmocka-dev                  # unit tests
  libcbor-dev                    # property tables and matching dictionaries on the wire
  libjson-c-dev                  # driver bundles: tetherd reads each bundle's manifest.json
  libusb-1.0-0-dev               # USBTMC transport
  libcairo2-dev                  # tether scope: waveform plots (PNG)
  umockdev                       # emulated USB devices for the libusb backend's tests
  tshark                         # tether probe's pcap files are checked with Wireshark's dissectors
  libumockdev-dev libglib2.0-dev # in-process umockdev testbeds with ioctl emulation (transfers, hotplug)
  jq                             # tether reg --json, checked in the tools tests
  scdoc                          # man pages (doc/man/*.scd -> tetherd(8), tether(1), libtether(3), tether-driver(7))
  man-db groff-base              # man -l renders each built page in the tests
  bash-completion                # the completion scripts' home (pkg-config completionsdir) and their tests
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
