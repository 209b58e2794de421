#!/usr/bin/env bash
# The MPI tests: the program swiftpool-mpi-check under mpirun, 3 ranks on this machine
# (oversubscribed), one scenario per job; then the same over 3 hosts in network
# namespaces (hosts.sh). Every mpirun runs under `timeout -k`: a rank that hangs or is
# cut off can keep mpirun waiting for ever. A scenario passes when rank 0 prints
# "PASS <scenario>" within its time.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-.build/debug/swiftpool-mpi-check}
source Tests/MPI/processes.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
log=$(mktemp -d)
# Open MPI's shared-memory files of jobs that were killed (a hung rank's) stay in
# /dev/shm: those this run made are removed at the end.
ls /dev/shm >"$log/shm-before" 2>/dev/null || true
remove_new_shm() {
  { ls /dev/shm 2>/dev/null | grep -vxF -f "$log/shm-before" | grep '^vader_segment\.' | sed 's|^|/dev/shm/|' \
      | xargs -r rm -f; } || true
  rm -rf "$log"
}
trap remove_new_shm EXIT
failed=0

# scenario, limit in seconds, extra mpirun options, environment (name=value or -)
run() {
  local scenario=$1 limit=$2 options=$3 env=$4
  local start end
  start=$(date +%s%N)
  # shellcheck disable=SC2086
  env ${env/#-/} timeout -k 5 "$limit" mpirun $options -np 3 "$bin" "$scenario" >"$log/$scenario" 2>&1 || true
  end=$(date +%s%N)
  if grep -q "^PASS $scenario" "$log/$scenario"; then
    echo "ok   $scenario ($(( (end - start) / 1000000 )) ms): $(grep -E "^(PASS|crash error|lost-rank error|$scenario:)" "$log/$scenario" | tr '\n' ' ' | cut -c1-400)"
  else
    echo "FAIL $scenario (limit ${limit} s); its output:"
    sed 's/^/    /' "$log/$scenario" | head -60
    failed=1
  fi
}

run basic 120 "" -
run mismatch 60 "" MISMATCH=1
run lost-fail 60 "--mca orte_enable_recovery 1" -
run lost-rerun 60 "--mca orte_enable_recovery 1" -
# A stopped rank stays stopped: rank 0 reports it and ends the job, but mpirun waits for
# the stopped process until the timeout kills it.
run hang-fail 20 "--mca orte_enable_recovery 1" -
# The stopped rank resumes: rank 0 is gone, so it must leave by itself within its
# rankTimeout (3 s), its workers with it.
for p in $(test_processes); do kill -CONT "$p" 2>/dev/null || true; done
check_left_behind 20 || failed=1

if [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null && command -v unshare >/dev/null; then
  Tests/MPI/hosts.sh "$bin" || failed=1
else
  echo "skip the hosts in network namespaces: they need root, ip and unshare"
fi
exit $failed
