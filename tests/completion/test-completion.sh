#!/usr/bin/env bash
# The bash completion of tether and tetherd, run as bash runs it: the
# completion files sourced with bash-completion loaded, the completion
# function called with COMP_WORDS/COMP_CWORD/COMP_LINE/COMP_POINT for a
# prefix, COMPREPLY checked. Static parts (subcommands, verbs, options, their
# values), names, ids, paths, classes, keys, serials and bundle ids from a
# tetherd the test starts with a simulated DSO-X 2002A, and the bound on
# asking tetherd: none there (quick, no names), one that accepts and never
# answers (stopped: done within the timeout, no names, nothing left
# running). Every long option each --help prints is offered.
#   test-completion.sh BASH_COMPLETION TETHERD TETHER COMPLETIONS_DIR
set -u
bash_completion=$1 tetherd=$2 tether=$3 compdir=$4
fail() { echo "FAIL: $*"; exit 1; }
[ -r "$bash_completion" ] || fail "no bash-completion at $bash_completion (scripts/install-deps.sh installs it)"
command -v jq >/dev/null || fail "jq is not installed (scripts/install-deps.sh installs it)"
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && { kill -CONT $pid; kill $pid; wait $pid; } 2>/dev/null; rm -rf "$dir"' EXIT
export TETHER_SOCKET="$dir/tetherd.sock"

# shellcheck disable=SC1090
source "$bash_completion" || fail "cannot source $bash_completion"
source "$compdir/tether" || fail "cannot source $compdir/tether"
source "$compdir/tetherd" || fail "cannot source $compdir/tetherd"
[ "$(complete -p tether)" = "complete -F _tether tether" ] || fail "tether's completion: $(complete -p tether)"
[ "$(complete -p tetherd)" = "complete -F _tetherd tetherd" ] || fail "tetherd's completion: $(complete -p tetherd)"

# comp WORD...: complete the last WORD (may be "") after the others, as bash
# calls a completion function; the words as readline splits them. The
# candidates, one a line, sorted, in $got; the time taken in $ms.
comp() {
  COMP_WORDS=("$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  # The line as typed: a word-break character (":" and "=" are words of
  # their own to readline) has no blank on either side.
  local i prev=
  COMP_LINE=
  for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
    if ((i > 0)) && [[ ${COMP_WORDS[i]} != [:=] && $prev != [:=] ]]; then
      COMP_LINE+=" "
    fi
    COMP_LINE+=${COMP_WORDS[i]}
    prev=${COMP_WORDS[i]}
  done
  COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  local fn=_tether t0 t1
  [[ ${1##*/} == tetherd ]] && fn=_tetherd
  t0=$(date +%s%N)
  "$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
  t1=$(date +%s%N)
  ms=$(((t1 - t0) / 1000000))
  got=$(printf '%s\n' "${COMPREPLY[@]}" | sort)
}
# split WORD... :: LINE...: the words in $words, the lines in $lines.
split_args() {
  words=() lines=()
  while (($#)) && [ "$1" != "::" ]; do words+=("$1"); shift; done
  [ "${1-}" = "::" ] || fail "no :: in the test's arguments"
  shift
  lines=("$@")
}
# expect WORD... :: LINE...: completing the last WORD offers exactly LINEs.
expect() {
  local words lines want
  split_args "$@"
  want=$(printf '%s\n' "${lines[@]}" | sort)
  comp "${words[@]}"
  [ "$got" = "$want" ] || fail "completing [${words[*]}]: got [$(echo $got)], want [$(echo $want)]"
}
# offers WORD... :: LINE...: the candidates include every LINE.
offers() {
  local words lines w
  split_args "$@"
  comp "${words[@]}"
  for w in "${lines[@]}"; do
    grep -qxF -- "$w" <<<"$got" || fail "completing [${words[*]}]: [$w] not among [$(echo $got)]"
  done
}
longopts() { grep -oE -- '--[a-z][a-z0-9-]*[a-z0-9]' | sort -u; }

# ---- static: subcommands, verbs, options, values ----
T=$tether
expect "$T" re :: reg
expect "$T" probe --p :: --pid --pcap
expect "$T" scope --channel "" :: 1 2 3 4 both all
expect "$T" scope --serial X capt :: capture
expect "$T" driver "" :: list load unload
expect "$T" reg set -t uint :: uint8 uint16 uint32 uint64
expect "$T" reg -p "" :: TetherService
expect "$T" reg set --type = b :: bool
expect "$tetherd" --simulate msox201 :: msox2012a msox2014a
expect "$tetherd" --s :: --simulate --socket
offers "$tetherd" --admin-group "" :: root
mkdir "$dir/files" "$dir/files/bundle.tether" && touch "$dir/files/scope.pcap"
(cd "$dir/files" && expect "$T" probe --pcap s :: scope.pcap) || exit 1
(cd "$dir/files" && expect "$T" driver load "" :: bundle.tether) || exit 1
(cd "$dir/files" && expect "$T" scope capture --csv "" :: bundle.tether scope.pcap) || exit 1
echo "ok: subcommands, verbs, options and their values"

# Every subcommand tether --help lists, and every long option of every
# --help, is offered.
"$T" --help >"$dir/help" || fail "tether --help"
subs=$(grep -oE '^(usage:)? +tether [a-z]+' "$dir/help" | awk '{print $NF}' | sort -u)
offers "$T" "" :: $subs
for sub in $subs; do
  "$T" "$sub" --help >"$dir/help" || fail "tether $sub --help"
  offers "$T" "$sub" -- :: $(longopts <"$dir/help")
  for verb in $(grep -oE "tether $sub [a-z]+" "$dir/help" | awk '{print $3}' | sort -u); do
    [ "$sub $verb" = "reg set" ] || [ "$sub $verb" = "reg watch" ] || continue
    "$T" "$sub" "$verb" --help >"$dir/help.verb" || fail "tether $sub $verb --help"
    offers "$T" "$sub" "$verb" -- :: $(longopts <"$dir/help.verb")
  done
done
"$tetherd" --help >"$dir/help" || fail "tetherd --help"
offers "$tetherd" -- :: $(longopts <"$dir/help")
# --simulate offers exactly the simulators tetherd --help names ("NAME is one
# of a, b, c" up to the next option).
sims=$(sed -n '/--simulate NAME/,/--lan/p' "$dir/help" | sed '1s/.*one of//; $d' | tr ', ' '\n\n' |
  grep -E '^[a-z0-9]*[0-9][a-z0-9]*$')
[ "$(wc -l <<<"$sims")" -ge 2 ] || fail "cannot read the simulators from tetherd --help"
expect "$tetherd" --simulate "" :: $sims
echo "ok: every subcommand and long option of the --help texts"

# ---- no tetherd: at once, and no names ----
expect "$T" reg "" :: set watch
((ms < 1000)) || fail "with no tetherd, completing [tether reg] took $ms ms"
expect "$T" driver unload "" ::
expect "$T" probe --service "" ::
echo "ok: no tetherd: no names, in $ms ms"

# ---- a tetherd with a simulated DSO-X 2002A ----
"$tetherd" --socket "$TETHER_SOCKET" --no-usb --no-system-drivers --simulate dsox2002a:COMP0001 \
  --ready-fd 4 4>"$dir/ready" 2>"$dir/log" &
pid=$!
for ((i = 0; i < 400; i++)); do
  grep -q READY "$dir/ready" 2>/dev/null && break
  sleep 0.05
done
grep -q READY "$dir/ready" || fail "tetherd did not start: $(cat "$dir/log")"
"$T" reg -c DSOX2000 >/dev/null || fail "no DSOX2000 service: $("$T" reg)"
id=$("$T" reg --json -c DSOX2000 | jq -r '.entries[0].id')

offers "$T" reg "" :: set watch DSOX2000 DSOX2000@sim0 'DSO-X\ 2002A@sim0' ExampleDriver
expect "$T" reg DSOX :: DSOX2000 DSOX2000@sim0
# A name with a space, typed with its backslash: the word is one to readline.
expect "$T" reg 'DSO-X\ 2' :: 'DSO-X\ 2002A' 'DSO-X\ 2002A@sim0'
offers "$T" reg 0x :: "$id"
# A path: "TetherService" ":" "/..." are three words to readline (the colon
# breaks words); what is offered is what follows the colon.
expect "$T" reg TetherService : '/TetherUSB/DSO-X\ 2002A@sim0/' :: '/TetherUSB/DSO-X\ 2002A@sim0/DSOX2000@sim0'
expect "$T" reg '/TetherUSB/DSO-X\ 2002A@sim0/' :: '/TetherUSB/DSO-X\ 2002A@sim0/DSOX2000@sim0'
offers "$T" reg -c "" :: DSOX2000 TetherUSBDevice ExampleDriver
offers "$T" reg watch -n "" :: DSOX2000@sim0 ExampleDriver
expect "$T" reg set DSOX2000@sim0 Channel1 :: Channel1Coupling Channel1Offset Channel1Scale
expect "$T" reg set ExampleDriver Locked "" :: true false
expect "$T" probe --service DSO :: DSOX2000 DSOX2000@sim0
expect "$T" scope --serial "" :: COMP0001
offers "$T" scope set Trig :: TriggerLevel TriggerSource
# Exactly the bundles tetherd has loaded (the DSOX2000's among them).
bundles=$("$T" driver list --json | jq -r .bundle)
grep -qx org.tether.dsox2000 <<<"$bundles" || fail "tether driver list: no org.tether.dsox2000: $bundles"
expect "$T" driver unload "" :: $bundles
expect "$T" driver unload org.tether.dso :: org.tether.dsox2000
# tether scpi: the instruments, and their VISA resource strings as --list has them.
offers "$T" scpi "" :: DSOX2000 DSOX2000@sim0
resource=$("$T" scpi --list --json | jq -r '.[0].resource')
[[ $resource == USB0::0x0957::*::COMP0001::INSTR ]] || fail "tether scpi --list --json: $resource"
expect "$T" scpi --resource "" :: "$resource"
expect "$T" scpi -r "" :: "$resource"
echo "ok: names, ids, paths, classes, keys, serials, bundle ids and resources from tetherd"

# ---- a tetherd that never answers: bounded, no names, nothing left ----
kill -STOP $pid
expect "$T" reg "" :: set watch
((ms < 4000)) || fail "with tetherd stopped, completing [tether reg] took $ms ms"
pgrep -f "^$T reg --json" >/dev/null && fail "a tether reg outlived its completion"
expect "$T" driver unload "" ::
kill -CONT $pid
echo "ok: tetherd stopped: no names, in $ms ms"
echo "completion: all checks passed"
