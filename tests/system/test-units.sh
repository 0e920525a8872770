#!/usr/bin/env bash
# What `meson install` puts in place for tetherd as a system service, and
# whether systemd and udev accept it:
# - the units, the rule and the conf files land in the folders meson was
#   configured with (docs/systemd.md), the service's ExecStart naming the
#   installed tetherd;
# - systemd-analyze verify passes the units without a word (it exits 0 on
#   unknown keys and bad values, so any output fails), and fails a copy
#   with a mistake in it (the check can fail);
# - systemd-sysusers creates tether, tether-admin and tether-driver in a
#   scratch root, systemd-tmpfiles creates /run/tether 0755 in one;
# - udevadm test, on an emulated DSO-X 2002A (umockdev), applies the rule:
#   group tether, mode 0660, tag tether, ID_TETHER_USBTMC=1; on an emulated
#   keyboard, none of it; the rule file parses without a complaint.
set -u
builddir=$1 sbindir=$2 unitdir=$3 rulesdir=$4 sysusersdir=$5 tmpfilesdir=$6 scope=$7 keyboard=$8
for t in systemd-analyze systemd-sysusers systemd-tmpfiles udevadm; do
  command -v $t >/dev/null || { echo "FAIL: $t is missing (scripts/install-deps.sh installs systemd and udev)"; exit 1; }
done
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; for f in "$dir"/*.out; do [ -f "$f" ] && { echo "== $f"; tail -30 "$f"; }; done; exit 1; }
d=$dir/root

# ---- the installed files ----
meson install -C "$builddir" --no-rebuild --destdir "$d" >"$dir/install.out" 2>&1 || fail "meson install failed"
for f in "$unitdir/tetherd.service" "$unitdir/tetherd.socket" "$rulesdir/70-tether.rules" \
  "$sysusersdir/tether.conf" "$tmpfilesdir/tether.conf" "$sbindir/tetherd"; do
  [ -f "$d$f" ] || fail "not installed: $f"
done
grep -qx "ExecStart=$sbindir/tetherd" "$d$unitdir/tetherd.service" ||
  fail "ExecStart is not the installed tetherd ($sbindir/tetherd): $(grep ExecStart "$d$unitdir/tetherd.service")"
grep -v "^#" "$d$unitdir/tetherd.service" | grep -Eq "@[A-Za-z_]+@" && fail "an unsubstituted @VAR@ in tetherd.service"
grep -qx "ListenSequentialPacket=/run/tether/tetherd.sock" "$d$unitdir/tetherd.socket" ||
  fail "tetherd.socket does not listen where libtether connects"
echo "ok: installed in $unitdir, $rulesdir, $sysusersdir, $tmpfilesdir"

# ---- systemd-analyze verify ----
# verify checks that ExecStart's binary exists: the unit is copied with it
# pointing into the scratch install, and nothing else changed.
u=$dir/units
mkdir -p "$u"
cp "$d$unitdir/tetherd.socket" "$u/"
sed "s|^ExecStart=$sbindir/|ExecStart=$d$sbindir/|" "$d$unitdir/tetherd.service" >"$u/tetherd.service"
# --man=no: tetherd(8) is not installed by this build (yet).
systemd-analyze verify --man=no "$u/tetherd.socket" "$u/tetherd.service" >"$dir/verify.out" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "systemd-analyze verify: exit status $rc"
[ -s "$dir/verify.out" ] && fail "systemd-analyze verify complained"
# The same check fails a unit with a mistake: a misspelt key and a bad value.
mkdir -p "$u/bad"
sed -e 's/^ProtectSystem=strict/ProtectSystem=strictly/' -e 's/^NoNewPrivileges=/NoNewPrivilege=/' \
  "$u/tetherd.service" >"$u/bad/tetherd.service"
cp "$u/tetherd.socket" "$u/bad/"
systemd-analyze verify --man=no "$u/bad/tetherd.socket" "$u/bad/tetherd.service" >"$dir/verify-bad.out" 2>&1
grep -q "strictly" "$dir/verify-bad.out" && grep -q "NoNewPrivilege" "$dir/verify-bad.out" ||
  fail "systemd-analyze verify said nothing of a broken unit: $(cat "$dir/verify-bad.out")"
echo "ok: systemd-analyze verify: silent on the units, speaks up on a broken copy"
rm -f "$dir/verify-bad.out"

# ---- sysusers and tmpfiles, into a scratch root ----
s=$dir/sysroot
mkdir -p "$s/etc" "$s/run"
systemd-sysusers --root="$s" "$d$sysusersdir/tether.conf" >"$dir/sysusers.out" 2>&1 || fail "systemd-sysusers failed"
grep -q "^tether:" "$s/etc/group" || fail "sysusers: no tether group"
grep -q "^tether-admin:" "$s/etc/group" || fail "sysusers: no tether-admin group"
IFS=: read -r _ _ uid gid _ home shell < <(grep "^tether-driver:" "$s/etc/passwd")
[ -n "${uid:-}" ] || fail "sysusers: no tether-driver user"
[ "$uid" -gt 0 ] && [ "$uid" -lt 1000 ] || fail "sysusers: tether-driver is not a system user (uid $uid)"
grep -q "^tether-driver:x:$gid:" "$s/etc/group" || fail "sysusers: tether-driver has no group of its own"
grep "^tether:" "$s/etc/group" | grep -q "tether-driver" && fail "sysusers: tether-driver is in the tether group"
case "$shell" in */nologin | */false) ;; *) fail "sysusers: tether-driver has a shell: $shell" ;; esac
systemd-tmpfiles --root="$s" --create "$d$tmpfilesdir/tether.conf" >"$dir/tmpfiles.out" 2>&1 ||
  fail "systemd-tmpfiles failed"
[ "$(stat -c '%a %U %G' "$s/run/tether")" = "755 root root" ] ||
  fail "tmpfiles: /run/tether is $(stat -c '%a %U %G' "$s/run/tether")"
echo "ok: sysusers makes tether, tether-admin and tether-driver; tmpfiles makes /run/tether 0755"

# ---- the udev rule ----
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: the udev rule's check needs root (a mount namespace with the rule and the group)"
  exit 77
fi
command -v umockdev-run >/dev/null || fail "umockdev-run is missing (scripts/install-deps.sh installs umockdev)"
# In a mount namespace: the rule in /run/udev/rules.d (where udevadm test
# reads rules from) and a tether group in /etc/group, both the test's.
cat >"$dir/udev.sh" <<'INNER'
set -eu
rules=$1 devfile=$2 sysdev=$3
mount -t tmpfs tmpfs /run
mkdir -p /run/udev/rules.d
cp "$rules" /run/udev/rules.d/
cp /etc/group /run/group
if ! grep -q "^tether:" /run/group; then
  g=999 # a system group's id nobody has
  while cut -d: -f3 /run/group | grep -qx $g; do g=$((g - 1)); done
  echo "tether:x:$g:" >>/run/group
fi
mount --bind /run/group /etc/group
grep "^tether:" /etc/group | cut -d: -f3 >/run/tether-gid
echo "tether gid $(cat /run/tether-gid)"
umockdev-run --device "$devfile" -- udevadm test --action=add "$sysdev"
INNER
sysdev=/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1
unshare --mount --propagation private bash "$dir/udev.sh" "$d$rulesdir/70-tether.rules" "$scope" "$sysdev" \
  >"$dir/udev-scope.out" 2>&1 || fail "udevadm test on the scope failed"
gid=$(sed -n 's/^tether gid //p' "$dir/udev-scope.out")
grep -q "Reading rules file: /run/udev/rules.d/70-tether.rules" "$dir/udev-scope.out" || fail "udevadm did not read the rule"
grep "70-tether.rules" "$dir/udev-scope.out" | grep -Eiq "invalid|ignor|unknown|error|fail" &&
  fail "udevadm complained about the rule: $(grep 70-tether.rules "$dir/udev-scope.out")"
grep -q "^ID_USB_INTERFACES=:fe0301:$" "$dir/udev-scope.out" || fail "the scope's interfaces are not :fe0301:"
grep -q "70-tether.rules:[0-9]* GROUP $gid$" "$dir/udev-scope.out" || fail "the rule did not give the scope's node to tether"
grep -q "70-tether.rules:[0-9]* MODE 0660$" "$dir/udev-scope.out" || fail "the rule did not make the scope's node 0660"
grep -q "^ID_TETHER_USBTMC=1$" "$dir/udev-scope.out" || fail "no ID_TETHER_USBTMC=1 on the scope"
grep -Eq "^TAGS=.*:tether:" "$dir/udev-scope.out" || fail "the scope is not tagged tether"
kbdev=$(sed -n 's/^P: //p' "$keyboard" | head -1)
unshare --mount --propagation private bash "$dir/udev.sh" "$d$rulesdir/70-tether.rules" "$keyboard" "/sys$kbdev" \
  >"$dir/udev-keyboard.out" 2>&1 || fail "udevadm test on the keyboard failed"
grep -q "Reading rules file: /run/udev/rules.d/70-tether.rules" "$dir/udev-keyboard.out" || fail "udevadm did not read the rule (keyboard)"
grep -q "^ID_VENDOR_ID=046d$" "$dir/udev-keyboard.out" || fail "udevadm did not see the keyboard"
grep "70-tether.rules" "$dir/udev-keyboard.out" | grep -Eq "GROUP|MODE" && fail "the rule applied to the keyboard"
grep -Eq "^ID_TETHER_USBTMC=|^TAGS=.*:tether:" "$dir/udev-keyboard.out" && fail "the keyboard is tagged for tether"
echo "ok: udevadm test: the scope's node tether 0660 and tagged, the keyboard untouched"
exit 0
