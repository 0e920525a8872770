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
  libedit-dev                    # tether scpi: line editing and history (BSD-licensed, unlike GNU readline's GPL, so the MIT tool stays MIT)
  # The Debian package (debian/, tests/debian): dpkg-buildpackage -b with
  # debhelper's meson build system, lintian on the result; fakeroot for the
  # root-owned files of a package built as a plain user.
  debhelper dpkg-dev fakeroot lintian
  libsystemd-dev                 # tetherd under systemd: sd_notify, sd_listen_fds, the journal (docs/systemd.md)
  systemd                        # the units' tests: systemd-analyze verify, systemd-socket-activate, sysusers, tmpfiles
  udev                           # udevadm: the udev rule is checked (udevadm test) in the system tests
  strace                         # the system tests check tetherd.service's SystemCallFilter= against real calls
  scdoc                          # man pages (docs/man/*.scd -> tetherd(8), tether(1), libtether(3), tether-driver(7))
  man-db groff-base              # man -l renders each built page in the tests
  bash-completion                # the completion scripts' home (pkg-config completionsdir) and their tests
)

# libcbor-dev:i386 needs the i386 architecture; adding it again is harmless,
# but a new one needs an apt-get update, which a missing package brings below.
if ! dpkg --print-foreign-architectures | grep -qx i386; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO dpkg --add-architecture i386
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The 32-bit client's cross toolchain and i386 libcbor come from Debian's
# i386 archive, whose lists a mirror may serve half-synced: their install
# may fail without stopping the rest (tests/client32 then says what is
# missing).
pkgs_i386=(
  # The 32-bit client test (tests/client32): libtether and a client cross-built
  # for i386 (cross/i386-linux-gnu.ini) and run under qemu-i386 against the
  # 64-bit tetherd. A cross compiler rather than gcc -m32: Debian's cross
  # toolchains search the multiarch folders that libcbor-dev:i386 installs into.
  gcc-i686-linux-gnu libc6-dev-i386-cross
  libcbor-dev:i386               # Debian multiarch: i386 beside amd64 (added above)
  qemu-user                      # qemu-i386 runs the i386 client whatever the kernel allows
)
missing_i386=()
for p in "${pkgs_i386[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing_i386+=("$p")
done
if ((${#missing[@]} + ${#missing_i386[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # One index that fails (a mirror caught mid-sync: "File has unexpected
  # size") need not stop the install: apt uses the lists it has, and the
  # install below fails by itself if a package is really not to be had.
  $SUDO apt-get update -qq || echo "install-deps: apt-get update failed in part; going on with the lists apt has" >&2
  if ((${#missing[@]})); then
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  if ((${#missing_i386[@]})); then
    $SUDO apt-get install -y -qq --no-install-recommends "${missing_i386[@]}" ||
      echo "install-deps: the i386 packages (${missing_i386[*]}) could not be installed; the 32-bit client test will say so" >&2
  fi
fi
