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
  libsystemd-dev                 # tetherd under systemd: sd_notify, sd_listen_fds, the journal (docs/systemd.md)
  systemd                        # the units' tests: systemd-analyze verify, systemd-socket-activate, sysusers, tmpfiles
  udev                           # udevadm: the udev rule is checked (udevadm test) in the system tests
  strace                         # the system tests check tetherd.service's SystemCallFilter= against real calls
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
