# Sourced by run.sh and hosts.sh: the processes of the MPI test program, matched by
# executable (the scripts' own command lines name it too). Needs $bin.

# Prints the pids of every process running $bin (ranks and their workers).
test_processes() {
  local exe p
  exe=$(realpath "$bin")
  for p in $(pgrep -f "$(basename "$bin")" || true); do
    [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$exe" ] && echo "$p"
  done
  true
}

# Waits up to $1 seconds for every such process to leave by itself; those still there
# are reported with their stacks (when gdb is there) and killed. Returns 1 then.
check_left_behind() {
  local limit=$1 left p
  for _ in $(seq 1 $((limit * 10))); do [ -z "$(test_processes)" ] && return 0; sleep 0.1; done
  left=$(test_processes)
  [ -z "$left" ] && return 0
  for p in $left; do
    echo "== left behind: $p (parent $(awk '/^PPid/ {print $2}' "/proc/$p/status" 2>/dev/null))"
    command -v gdb >/dev/null && gdb -p "$p" -batch -ex "thread apply all bt 12" 2>/dev/null \
      | grep -E '^#[0-9]+ +0x.* in [A-Za-z_$]' | cut -c1-160 | head -30
  done
  echo "FAIL processes of the MPI tests left behind: $(echo $left)"
  kill -9 $left 2>/dev/null || true
  return 1
}
