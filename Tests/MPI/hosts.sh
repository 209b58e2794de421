#!/usr/bin/env bash
# The MPI tests over 3 hosts on one machine: each host a network namespace with its own
# host name (node1..node3), joined by veth pairs to a bridge in a namespace of its own,
# on a private /24 that exists only inside these namespaces. mpirun starts in node1 and
# reaches node2 and node3 through an rsh agent that enters their namespaces; the ranks
# talk TCP. Scenarios: basic (results, crash tagged with its host), and a cut link (node3's
# cable unplugged mid-map: rank 0 reports rank 2 lost within its timeout). Root only.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "${1:-.build/debug/swiftpool-mpi-check}")
source Tests/MPI/processes.sh
prefix=swpmpi$$
subnet=10.231.77
work=$(mktemp -d)
cleanup() {
  # A host cut off keeps its Open MPI daemon: end every process of the namespaces first.
  for i in 1 2 3; do
    ip netns pids "$prefix-n$i" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$prefix-n$i" 2>/dev/null || true
  done
  ip netns del "$prefix-br" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$prefix-br"
ip -n "$prefix-br" link add br0 type bridge
ip -n "$prefix-br" link set br0 up
for i in 1 2 3; do
  ns=$prefix-n$i
  ip netns add "$ns"
  ip link add "v$i-$$" type veth peer name "b$i-$$"
  ip link set "v$i-$$" netns "$ns"
  ip link set "b$i-$$" netns "$prefix-br"
  ip -n "$ns" link set "v$i-$$" name eth0
  ip -n "$ns" addr add "$subnet.$i/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  ip -n "$prefix-br" link set "b$i-$$" master br0
  ip -n "$prefix-br" link set "b$i-$$" up
  echo "$subnet.$i slots=1" >>"$work/hostfile"
done

# The rsh agent: "agent [options] host command...": runs the command in that host's
# namespace under its host name.
cat >"$work/agent" <<AGENT
#!/bin/sh
while [ "\${1#-}" != "\$1" ]; do shift; done
host=\$1; shift
n=\${host##*.}
exec ip netns exec $prefix-n\$n unshare --uts sh -c "hostname node\$n; exec sh -c '\$*'"
AGENT
chmod +x "$work/agent"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi=(--hostfile "$work/hostfile" --mca plm_rsh_agent "$work/agent" --mca btl tcp,self
     --mca btl_tcp_if_include "$subnet.0/24" --mca oob_tcp_if_include "$subnet.0/24"
     --mca orte_enable_recovery 1 -np 3)
failed=0

in_node1() { ip netns exec "$prefix-n1" unshare --uts sh -c 'hostname node1; exec "$@"' sh "$@"; }

report() {
  local scenario=$1 file=$2
  if grep -q "^PASS $scenario" "$file"; then
    echo "ok   hosts/$scenario: $(grep -E "^(PASS|crash error|lost-rank error|cut:)" "$file" | tr '\n' ' ' | cut -c1-400)"
  else
    echo "FAIL hosts/$scenario; its output:"
    sed 's/^/    /' "$file" | head -60
    failed=1
  fi
}

in_node1 timeout -k 5 120 mpirun "${mpi[@]}" "$bin" basic >"$work/basic" 2>&1 || true
grep -q "on 0@node1 1@node2 2@node3" "$work/basic" || { echo "FAIL hosts/basic: the ranks are not on node1..node3"; failed=1; }
report basic "$work/basic"

# Cut node3's cable once rank 0 says every rank has answered.
marker=$work/cut-marker
(in_node1 env CUT_MARKER="$marker" RANK_TIMEOUT=3 timeout -k 5 40 mpirun "${mpi[@]}" "$bin" cut >"$work/cut" 2>&1 || true) &
job=$!
for _ in $(seq 1 300); do [ -e "$marker" ] && break; sleep 0.1; done
ip -n "$prefix-br" link set "b3-$$" down
wait $job || true
report cut "$work/cut"

# The cut-off rank leaves by itself once rank 0 has been silent for its rankTimeout and
# its chunk has ended: it gets 20 s.
check_left_behind 20 || failed=1
exit $failed
