#!/usr/bin/env bash
# The main job: install what is missing, build, and run a 4-rank compressed
# allreduce on CPU under mpirun — the plain MPI baseline (method none) next
# to qccl's default method, in one nccl-tests-style table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install-deps.sh
bash ci/build.sh build
root_flag=()
[ "$(id -u)" -ne 0 ] || root_flag=(--allow-run-as-root)
mpirun -np 4 --oversubscribe "${root_flag[@]}" --bind-to none \
  build/perf/qccl_allreduce_perf -b 1K -e 64M -f 4 -m none,alq -q 3
