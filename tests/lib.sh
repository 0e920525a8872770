# Shell helpers the script tests share; sourced, never run.

# wait_for FILE REGEX [SECONDS]: true once a line of FILE matches REGEX,
# false after SECONDS (10) without one.
wait_for() {
  local i
  for ((i = 0; i < ${3:-10} * 20; i++)); do
    grep -Eq -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# wait_exit PID [SECONDS]: true once PID (a child) has exited, its status
# in $rc; false after SECONDS (10) with it still running.
wait_exit() {
  local i
  for ((i = 0; i < ${2:-10} * 20; i++)); do
    if ! kill -0 "$1" 2>/dev/null; then
      wait "$1"
      rc=$?
      return 0
    fi
    sleep 0.05
  done
  return 1
}
