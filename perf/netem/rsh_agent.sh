#!/usr/bin/env bash
# OpenMPI rsh agent for the netem hosts (plm_rsh_agent): OpenMPI calls
#   rsh_agent.sh [options] HOST COMMAND...
# the way it would call ssh. Run COMMAND, as ssh would (one shell line), inside
# the network namespace that owns HOST's address. Only namespaces whose names
# start with $QCCL_NETEM_PREFIX (set by netem_bench.py) are considered.
set -u
while [[ $# -gt 0 && $1 == -* ]]; do shift; done  # ssh-style options: none apply
if [[ $# -lt 2 ]]; then
  echo "rsh_agent.sh: usage: rsh_agent.sh HOST COMMAND..." >&2
  exit 255
fi
host=$1
shift
prefix=${QCCL_NETEM_PREFIX:-qnet}
for ns in $(ip netns list | awk '{print $1}'); do
  [[ $ns == "$prefix"* ]] || continue
  if ip -n "$ns" -4 -o addr show | grep -q " inet $host/"; then
    exec ip netns exec "$ns" /bin/sh -c "$*"
  fi
done
echo "rsh_agent.sh: no namespace named $prefix* owns address $host" >&2
exit 255
