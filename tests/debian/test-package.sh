#!/usr/bin/env bash
# The Debian package (debian/): built from a pristine copy of the committed
# tree (git archive HEAD: the tree under test may be dirty), checked with
# lintian (an error fails), unpacked into a scratch root, and checked for
# where its files land against what the units, the udev rule, tetherd's
# compiled-in folders and the pkg-config files expect. Last, `debian/rules
# clean` must leave the copy exactly as it was, so a second build starts
# from the same tree.
# Usage: test-package.sh SOURCE_ROOT
set -uo pipefail

src=$1
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

if ! git -C "$src" rev-parse --verify -q HEAD >/dev/null; then
  echo "SKIP: $src is not a git checkout with a commit (the package is built from git archive HEAD)"
  exit 77
fi
for tool in dpkg-buildpackage dpkg-deb lintian objdump pkg-config; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool missing (scripts/install-deps.sh installs it)"; exit 77; }
done

scratch=$(mktemp -d /tmp/tether-deb.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
version=$(sed -n '1s/^tether (\([^)]*\)).*/\1/p' "$src/debian/changelog")
upstream=${version%-*}
tree=$scratch/tether-$upstream
mkdir -p "$tree" "$scratch/pristine"
git -C "$src" archive HEAD | tar -x -C "$tree"
git -C "$src" archive HEAD | tar -x -C "$scratch/pristine"
echo "building tether $version from $(git -C "$src" rev-parse --short HEAD) in $tree"

# ---- build ----
start=$(date +%s)
if ! (cd "$tree" && DEB_BUILD_OPTIONS="parallel=${DEB_PARALLEL:-2}" dpkg-buildpackage -b -us -uc) \
     >"$scratch/build.log" 2>&1; then
  tail -n 60 "$scratch/build.log"
  echo "FAIL: dpkg-buildpackage -b -us -uc"
  exit 1
fi
echo "dpkg-buildpackage: $(($(date +%s) - start)) s"
changes=$scratch/tether_${version}_$(dpkg --print-architecture).changes
[ -f "$changes" ] || { echo "FAIL: no $changes"; exit 1; }

# ---- lintian: errors fail, warnings are printed (README lists the known ones) ----
lintian_args=(--fail-on error)
if lintian "${lintian_args[@]}" "$changes" >"$scratch/lintian.log" 2>&1; then
  ok "lintian: no error ($(grep -c '^W:' "$scratch/lintian.log") warnings)"
else
  fail "lintian reports errors"
fi
cat "$scratch/lintian.log"

# ---- unpack ----
root=$scratch/root
mkdir -p "$root"
declare -A owner # file (relative to root) -> package
for deb in "$scratch"/*.deb; do
  pkg=$(dpkg-deb -f "$deb" Package)
  case $pkg in *-dbgsym) continue ;; esac
  dpkg-deb -x "$deb" "$root"
  while read -r f; do
    f=${f#./}
    f=${f%/}
    [ -n "$f" ] && owner[$f]=$pkg
  done < <(dpkg-deb -c "$deb" | awk '{print $6}')
done
for pkg in tetherd tether-tools libtether0 libtether-dev libtether-driver-test0 tether-drivers tether-simulators; do
  ls "$scratch/${pkg}_${version}_"*.deb >/dev/null 2>&1 || fail "no package $pkg"
done

in_pkg() { # path package: the file exists in the root and came from that package
  local p=${1#/}
  if [ ! -e "$root/$p" ]; then fail "$1 is not installed"; return 1; fi
  if [ "${owner[$p]:-}" != "$2" ]; then fail "$1 is in ${owner[$p]:-no package}, not $2"; return 1; fi
  return 0
}
first_dir() { # the first of the folders (relative to root) that exists
  local d
  for d in "$@"; do [ -d "$root/$d" ] && { echo "$d"; return; }; done
  echo "$1"
}

# ---- the units ----
unitdir=$(first_dir lib/systemd/system usr/lib/systemd/system)
service=$root/$unitdir/tetherd.service
socket=$root/$unitdir/tetherd.socket
in_pkg "$unitdir/tetherd.service" tetherd && in_pkg "$unitdir/tetherd.socket" tetherd
exec=$(sed -n 's/^ExecStart=[-@:+!]*\([^ ]\+\).*/\1/p' "$service" | head -n1)
if [ -n "$exec" ] && [ -x "$root$exec" ] && [ "${owner[${exec#/}]:-}" = tetherd ]; then
  ok "ExecStart=$exec is tetherd's, executable"
else
  fail "tetherd.service's ExecStart binary '$exec' is not an executable of tetherd's"
fi
sock=$(sed -n 's/^ListenSequentialPacket=//p' "$socket")
sockdir=$(dirname "$sock")
sysusers=$root/usr/lib/sysusers.d/tether.conf
tmpfiles=$root/usr/lib/tmpfiles.d/tether.conf
in_pkg usr/lib/sysusers.d/tether.conf tetherd
in_pkg usr/lib/tmpfiles.d/tether.conf tetherd
if awk -v d="$sockdir" '$1 == "d" && $2 == d {found = 1} END {exit !found}' "$tmpfiles"; then
  ok "the socket's folder $sockdir is tmpfiles.d's"
else
  fail "tmpfiles.d/tether.conf makes no folder $sockdir for $sock"
fi
group=$(sed -n 's/^SocketGroup=//p' "$socket")
if [ -n "$group" ] && awk -v g="$group" '$1 == "g" && $2 == g {found = 1} END {exit !found}' "$sysusers"; then
  ok "SocketGroup=$group is made by sysusers.d"
else
  fail "SocketGroup=$group is not a group of sysusers.d/tether.conf"
fi
# The package's maintainer scripts: users before the socket, the socket
# enabled, the service started by nothing but its socket.
ctl=$scratch/ctl
dpkg-deb -e "$scratch/tetherd_${version}_"*.deb "$ctl"
if grep -q 'systemd-sysusers.*tether.conf' "$ctl/postinst" &&
   grep -q "deb-systemd-helper enable 'tetherd.socket'" "$ctl/postinst" &&
   grep -q "deb-systemd-invoke \$_dh_action 'tetherd.socket'" "$ctl/postinst" &&
   ! grep -q "deb-systemd-invoke \$_dh_action 'tetherd.service'" "$ctl/postinst" &&
   [ "$(grep -n 'systemd-sysusers' "$ctl/postinst" | cut -d: -f1 | head -n1)" -lt \
     "$(grep -n "deb-systemd-invoke \$_dh_action 'tetherd.socket'" "$ctl/postinst" | cut -d: -f1)" ]; then
  ok "postinst: sysusers, then the socket enabled and started; the service not started"
else
  fail "tetherd's postinst does not create the users, then enable and start only the socket"
fi
grep -q "stop tetherd.service" "$ctl/prerm" || fail "tetherd's prerm does not stop tetherd.service"

# ---- the udev rule ----
rulesdir=$(first_dir lib/udev/rules.d usr/lib/udev/rules.d)
if in_pkg "$rulesdir/70-tether.rules" tetherd; then
  rgroup=$(grep -o 'GROUP="[^"]*"' "$root/$rulesdir/70-tether.rules" | head -n1 | cut -d'"' -f2)
  if awk -v g="$rgroup" '$1 == "g" && $2 == g {found = 1} END {exit !found}' "$sysusers"; then
    ok "the udev rule is in $rulesdir, its GROUP=$rgroup made by sysusers.d"
  else
    fail "the udev rule's GROUP=$rgroup is not a group of sysusers.d/tether.conf"
  fi
fi

# ---- tetherd's compiled-in paths ----
tetherd=$root$exec
help=$("$tetherd" --help 2>&1)
sysdrivers=$(printf '%s\n' "$help" | sed -n 's/.*--no-system-drivers *do not load the bundles in \([^ ]*\).*/\1/p')
if [ -z "$sysdrivers" ]; then
  fail "tetherd --help names no system driver folder"
else
  # Every bundle the source has (drivers/*/manifest.json), its manifest
  # and a library in a folder of tetherd's system folder.
  nb=0
  for m in "$src"/drivers/*/manifest.json; do
    nb=$((nb + 1))
    found=""
    for dir in "$root$sysdrivers"/*.tether; do
      cmp -s "$m" "$dir/manifest.json" && found=${dir#"$root"}
    done
    b=$(basename "$(dirname "$m")")
    if [ -n "$found" ] && in_pkg "$found/manifest.json" tether-drivers &&
       [ -n "$(find "$root$found" -maxdepth 1 -name '*.so' -print -quit)" ]; then
      ok "bundle $b: $found (tetherd's system folder, tether-drivers)"
    else
      fail "bundle $b (drivers/$b/manifest.json) has no folder with its manifest and library in $sysdrivers"
    fi
  done
  [ $nb -ge 2 ] || fail "only $nb bundles in the source's drivers/"
fi
for prog in tether-driverhost:tetherd tether-sim-scope:tether-simulators tether-sim-dmm:tether-simulators; do
  path=$(strings "$tetherd" | grep -m1 "^/.*/${prog%%:*}\$")
  if [ -n "$path" ] && [ -x "$root$path" ] && in_pkg "$path" "${prog#*:}"; then
    ok "tetherd starts $path (${prog#*:})"
  else
    fail "tetherd's ${prog%%:*} path '${path}' is not installed by ${prog#*:}"
  fi
done
in_pkg usr/bin/tether tether-tools
in_pkg usr/share/tether/wireshark/usbtmc.lua tether-tools

# ---- man pages and bash completion, those the source has ----
# Each page's package: the daemon's, the command's, the developers'.
declare -A page_pkg=([tetherd.8]=tetherd [tether.1]=tether-tools [libtether.3]=libtether-dev
                     [tether-driver.7]=libtether-dev)
for scd in "$src"/docs/man/*.scd; do
  [ -e "$scd" ] || continue
  name=$(basename "$scd" .scd)
  f=usr/share/man/man${name##*.}/$name.gz
  in_pkg "$f" "${page_pkg[$name]:-a known package}" || continue
  if ! gzip -t "$root/$f"; then fail "$f is not gzip"; continue; fi
  if command -v man >/dev/null; then
    if ! out=$(MANWIDTH=80 man -l "$root/$f" 2>&1 >/dev/null) || [ -n "$out" ]; then
      fail "man -l $f: $out"; continue
    fi
  fi
  ok "$f (${page_pkg[$name]})"
done
declare -A comp_pkg=([tether]=tether-tools [tetherd]=tetherd)
for c in "$src"/tools/completion/*; do
  [ -e "$c" ] || continue
  name=$(basename "$c")
  case $name in meson.build) continue ;; esac
  in_pkg "usr/share/bash-completion/completions/$name" "${comp_pkg[$name]:-a known package}" &&
    ok "bash completion for $name"
done

# ---- the library ----
lib=$(cd "$root" && ls usr/lib/*/libtether.so.0 2>/dev/null | head -n1)
if [ -n "$lib" ] && in_pkg "$lib" libtether0 &&
   objdump -p "$root/$lib" | grep -q 'SONAME *libtether\.so\.0$'; then
  ok "$lib, SONAME libtether.so.0, in libtether0"
else
  fail "libtether0 holds no libtether.so.0 with that SONAME"
fi
tlib=$(cd "$root" && ls usr/lib/*/libtether-driver-test.so.0 2>/dev/null | head -n1)
[ -n "$tlib" ] && in_pkg "$tlib" libtether-driver-test0 || fail "libtether-driver-test0 holds no libtether-driver-test.so.0"

# ---- pkg-config files: every path points at an installed file ----
pcdir=$(cd "$root" && ls -d usr/lib/*/pkgconfig | head -n1)
pcvar() { PKG_CONFIG_PATH=$root/$pcdir pkg-config --variable="$2" "$1"; }
check_pc() { # module package header library
  local mod=$1 pkg=$2 header=$3 library=$4 inc libd
  in_pkg "$pcdir/$mod.pc" "$pkg" || return
  inc=$(pcvar "$mod" includedir)
  libd=$(pcvar "$mod" libdir)
  if [ ! -f "$root$inc/tether/$header" ]; then fail "$mod.pc: includedir $inc has no tether/$header"; return; fi
  if [ -n "$library" ] && [ ! -e "$root$libd/$library" ]; then fail "$mod.pc: libdir $libd has no $library"; return; fi
  if ! PKG_CONFIG_PATH=$root/$pcdir pkg-config --cflags --libs "$mod" >/dev/null; then fail "pkg-config $mod"; return; fi
  ok "$mod.pc: $inc/tether/$header${library:+, $libd/$library}"
}
check_pc libtether libtether-dev tether.h libtether.so
check_pc tether-driver libtether-dev driver.h ""
check_pc tether-driver-test libtether-dev driver-test.h libtether-driver-test.so
[ -e "$root/$(cd "$root" && ls usr/lib/*/libtether.so | head -n1)" ] && in_pkg "$(cd "$root" && ls usr/lib/*/libtether.so | head -n1)" libtether-dev
bundledir=$(pcvar tether-driver bundledir)
if [ -n "$bundledir" ] && [ "$bundledir" = "$sysdrivers" ] && [ -d "$root$bundledir" ]; then
  ok "tether-driver.pc's bundledir is tetherd's system folder, $bundledir"
else
  fail "tether-driver.pc's bundledir '$bundledir' is not tetherd's '$sysdrivers'"
fi

# ---- a second build starts from the same tree ----
(cd "$tree" && debian/rules clean) >"$scratch/clean.log" 2>&1 || { cat "$scratch/clean.log"; fail "debian/rules clean"; }
if left=$(diff -rq "$scratch/pristine" "$tree"); then
  ok "debian/rules clean leaves the tree as git archive made it"
else
  fail "the tree differs from the pristine copy after clean:"
  printf '%s\n' "$left" | head -n 20
fi

if [ $fails -ne 0 ]; then
  echo "$fails checks failed"
  exit 1
fi
echo "all checks passed"
