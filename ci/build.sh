#!/usr/bin/env bash
# Configures and builds qccl: ci/build.sh [build-dir] [extra cmake args...]
# Default build dir: build (RelWithDebInfo, CUDA when nvcc is found).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
cmake --build "$dir" -j2
