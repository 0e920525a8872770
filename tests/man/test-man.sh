#!/usr/bin/env bash
# The man pages as a reader gets them: each built page renders with man -l
# (status 0, no groff warning, NAME and SYNOPSIS there, no line past the
# width), and the pages say what the binaries say: every long option that
# tetherd's and each tether subcommand's --help prints is in the page that
# documents the program, every subcommand `tether --help` lists has its
# section in tether(1), and no page names an option no binary has.
#   test-man.sh TETHERD TETHER PAGE...
set -u
tetherd=$1 tether=$2
shift 2
fail() { echo "FAIL: $*"; exit 1; }
command -v man >/dev/null || fail "man is not installed (scripts/install-deps.sh installs man-db)"
(($# == 4)) || fail "expected the 4 pages, got $#: $*"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

declare -A page
for p in "$@"; do
  [ -s "$p" ] || fail "$p: missing or empty"
  page[$(basename "$p")]=$p
done
for want in tetherd.8 tether.1 libtether.3 tether-driver.7; do
  [ -n "${page[$want]:-}" ] || fail "no $want among the pages"
done

# render PAGE WIDTH OUT: plain text, ASCII, no hyphenation; status and
# groff's warnings checked.
render() {
  LC_ALL=C MANWIDTH=$2 MAN_KEEP_FORMATTING= man --warnings --nh --nj -l "$1" >"$3" 2>"$dir/err"
  local rc=$?
  [ $rc -eq 0 ] || fail "man -l $1 (width $2) exited $rc: $(cat "$dir/err")"
  [ ! -s "$dir/err" ] || fail "man -l $1 (width $2) warns: $(cat "$dir/err")"
}

# ---- every page renders ----
for name in "${!page[@]}"; do
  p=${page[$name]}
  title=${name%.*}
  section=${name##*.}
  render "$p" 80 "$dir/$name.txt"
  grep -qx 'NAME' "$dir/$name.txt" || fail "$name: no NAME section"
  grep -qx 'SYNOPSIS' "$dir/$name.txt" || fail "$name: no SYNOPSIS section"
  grep -qx 'DESCRIPTION' "$dir/$name.txt" || fail "$name: no DESCRIPTION section"
  grep -qx 'SEE ALSO' "$dir/$name.txt" || fail "$name: no SEE ALSO section"
  head -1 "$dir/$name.txt" | grep -q "^$title($section) " || fail "$name: header is $(head -1 "$dir/$name.txt")"
  # NAME says which page it is: "title - what".
  sed -n '/^NAME$/{n;p}' "$dir/$name.txt" | grep -q "^ *$title - ." || fail "$name: NAME line is wrong"
  long=$(awk 'length($0) > 80' "$dir/$name.txt")
  [ -z "$long" ] || fail "$name: lines past 80 columns:"$'\n'"$long"
  # Wide, for the option checks: no paragraph is broken, so no option is
  # split at one of its hyphens.
  render "$p" 2000 "$dir/$name.wide"
  echo "ok: $name renders"
done

# ---- what the binaries print ----
longopts() { grep -oE -- '--[a-z][a-z0-9-]*[a-z0-9]' | sort -u; }
help_of() {
  "$@" --help >"$dir/help" 2>&1 || fail "$* --help exited $?"
  cat "$dir/help"
}

help_of "$tetherd" >"$dir/tetherd.help"
longopts <"$dir/tetherd.help" >"$dir/tetherd.opts"
[ "$(wc -l <"$dir/tetherd.opts")" -ge 10 ] || fail "tetherd --help lists too few options: $(cat "$dir/tetherd.opts")"

help_of "$tether" >"$dir/tether.help"
subs=$(grep -oE '^(usage:)? +tether [a-z]+' "$dir/tether.help" | awk '{print $NF}' | sort -u)
[ -n "$subs" ] || fail "tether --help lists no subcommand"
: >"$dir/tether.allhelp"
cat "$dir/tether.help" >>"$dir/tether.allhelp"
for sub in $subs; do
  help_of "$tether" "$sub" >"$dir/sub.help"
  cat "$dir/sub.help" >>"$dir/tether.allhelp"
  # Verbs with usage of their own: tether reg set, tether reg watch, ...
  verbs=$(grep -oE "tether $sub [a-z]+" "$dir/sub.help" | awk '{print $3}' | sort -u)
  for verb in $verbs; do
    help_of "$tether" "$sub" "$verb" >>"$dir/tether.allhelp"
    grep -q "tether $sub $verb" "$dir/tether.1.wide" || fail "tether(1) does not describe tether $sub $verb"
  done
  # tether(1) has a section (or subsection) for it.
  grep -qE "^ *tether $sub( |$)" "$dir/tether.1.wide" || fail "tether(1) has no section for tether $sub"
done
longopts <"$dir/tether.allhelp" >"$dir/tether.opts"
[ "$(wc -l <"$dir/tether.opts")" -ge 20 ] || fail "tether's --help texts list too few options: $(cat "$dir/tether.opts")"
echo "ok: subcommands $(echo $subs)"

# covered OPTS PAGE: each option is in the page.
covered() {
  local missing=() o
  while read -r o; do
    grep -qe "$o\b" "$dir/$2.wide" || missing+=("$o")
  done <"$dir/$1"
  ((${#missing[@]} == 0)) || fail "$2 does not document ${missing[*]} (printed by ${1%.opts} --help)"
}
covered tetherd.opts tetherd.8
covered tether.opts tether.1
echo "ok: every long option in the --help texts is in its page"

# ---- and no page names an option nobody has ----
# A subcommand tether(1) documents that this tether lacks (one written ahead
# of its code) is left out of this check, and said so.
for sub in $(grep -oE '^tether [a-z]+$' "$dir/tether.1.wide" | awk '{print $2}'); do
  grep -qx "$sub" <<<"$subs" && continue
  echo "note: tether(1) documents tether $sub, which this tether does not have: its options are not checked"
  awk -v h="tether $sub" '$0 == h {skip = 1; next} /^[A-Za-z]/ {skip = 0} !skip && index($0, h) == 0' \
    "$dir/tether.1.wide" >"$dir/cut" && mv "$dir/cut" "$dir/tether.1.wide"
done
# Options of other programs the pages quote (gdb --args, pkg-config's), and
# one tether accepts without printing it: reg set's --type (its usage shows -t).
cat "$dir/tetherd.opts" "$dir/tether.opts" - <<'EOF' | sort -u >"$dir/known"
--args
--cflags
--libs
--variable
--type
EOF
for name in "${!page[@]}"; do
  unknown=$(longopts <"$dir/$name.wide" | grep -vxFf "$dir/known")
  [ -z "$unknown" ] || fail "$name names options no binary has: $unknown"
done
echo "ok: every option the pages name is a binary's"
echo "man pages: all checks passed"
