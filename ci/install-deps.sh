#!/usr/bin/env bash
# Installs every Debian package qccl's build, tests and benchmarks need.
# Idempotent: installs only what is missing (apt-get update first when it
# has to install). nvcc and NCCL come with the CUDA toolkit in /usr/local/cuda
# where present; without them the CUDA parts are simply not built.
set -euo pipefail

PACKAGES=(
  build-essential cmake git pkg-config
  clang libclang-rt-14-dev            # libFuzzer target, sanitizer runtimes
  clang-format
  libgtest-dev libgmock-dev libbenchmark-dev
  libspdlog-dev libfmt-dev
  libopenmpi-dev openmpi-bin
  pybind11-dev python3-dev python3-numpy python3-matplotlib python3-pytest
  python3-mpi4py python3-torch        # Python bindings, DDP hook and their tests
  dataset-fashion-mnist               # the training example (examples/fashion_mnist)
  iproute2
  gcovr                               # line coverage tables (ci/coverage.sh)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
