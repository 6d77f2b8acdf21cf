#!/usr/bin/env bash
# The GPU check, in one script, for a machine with an NVIDIA GPU
# (docs/gpu.md "ci/gpu-check.sh"):
#   1. build      configure (CUDA ON, default archs sm_80/sm_90) and build the
#                 GPU tests and the two benchmarks, -j<cores>;
#   2. gpu-tests  ctest -L gpu with QCCL_TEST_REQUIRE_GPU=1 (a skip for want
#                 of a GPU or of NCCL is a failure);
#   3. codec-perf qccl_codec_perf (encode / decode GB/s next to a D2D copy);
#   4-5. allreduce-perf  mpirun -np 1 qccl_allreduce_perf -g, passthrough and
#                 compressed (QCCL_COMPRESS_ONE_RANK=1);
#   6-8. compute-sanitizer memcheck, racecheck, synccheck over a subset of the
#                 codec tests in qccl_gpu_tests (last: the slowest).
# Every step runs under `timeout`, and the whole run within a budget of
# QCCL_GPU_CHECK_BUDGET_S seconds (default 590: under 10 minutes). Each
# step's output goes to <results>/<date>-<device-slug>-gpu-check-<step>.txt
# (results: perf/results, or $QCCL_GPU_CHECK_RESULTS_DIR), and a summary
# table of steps, pass/FAIL and seconds is printed and written as
# ...-gpu-check-summary.txt. Exit status: 0 all steps passed, 1 a step
# failed, 2 usage, 3 no GPU on this machine (checked first: nothing is built).
#
# usage: ci/gpu-check.sh [--build-dir DIR] [--no-build] [-h|--help]
# environment: QCCL_GPU_CHECK_BUDGET_S, QCCL_GPU_CHECK_RESULTS_DIR,
#   QCCL_GPU_CHECK_JOBS (build -j, default nproc), QCCL_GPU_CHECK_CTEST_J
#   (parallel GPU tests, default 4; 1 when the GPU is in an exclusive mode),
#   QCCL_GPU_CHECK_CUDA_ARCHS (CMAKE_CUDA_ARCHITECTURES, default the
#   project's 80-real;90), QCCL_GPU_CHECK_ASSUME_GPU=1 (run the steps even
#   where no GPU is found: for testing this script; they fail).
set -euo pipefail
cd "$(dirname "$0")/.."
readonly EXIT_FAILED=1 EXIT_USAGE=2 EXIT_NO_GPU=3
self=ci/gpu-check.sh

# ---- steps that are more than one command: run as `gpu-check.sh --step-...`
# so that `timeout` can time them (it cannot run a shell function).

# --step-build <dir> <jobs> <cmake configure command...>
step_build() {
  local dir=$1 jobs=$2
  shift 2
  "$@"
  # Whether NCCL was found: without it the NCCL tests fail below, by design.
  grep -E '^(QCCL_NCCL_LIBRARY|CMAKE_CUDA_ARCHITECTURES|CMAKE_CUDA_COMPILER):' \
    "$dir/CMakeCache.txt" || true
  cmake --build "$dir" -j "$jobs" --target qccl_gpu_tests qccl_codec_perf qccl_allreduce_perf
}

# --step-codec-perf <qccl_codec_perf>: it exits 0 without a device (so CI can
# run it anywhere), so "no CUDA device" is checked here. Its "copy GB/s"
# column is a D2D cudaMemcpy of the same bytes in the same run.
step_codec_perf() {
  local out rc=0
  out=$("$1" -b 1M -e 1G -n 20) || rc=$?
  printf '%s\n' "$out"
  [ "$rc" -eq 0 ] || return "$rc"
  if printf '%s\n' "$out" | grep -q 'no CUDA device'; then
    echo "gpu-check: qccl_codec_perf found no CUDA device"
    return 1
  fi
  if ! printf '%s\n' "$out" | grep -q 'copy GB/s'; then
    echo "gpu-check: qccl_codec_perf printed no D2D copy column; its output is recorded as is"
    return 0
  fi
  # Columns: bytes bits copy enc enc/copy dec dec/copy ratio. Informational
  # (docs/gpu.md's target: within 15% of the copy from 64 MB), not pass/fail.
  printf '%s\n' "$out" | awk '
    $1 ~ /^[0-9]+$/ && $1 >= 64 * 1024 * 1024 {
      if (n == 0 || $5 < enc) enc = $5
      if (n == 0 || $7 < dec) dec = $7
      n++
    }
    END {
      if (n) printf "gpu-check: against the D2D copy, from 64 MB: worst enc/copy %.2f, worst dec/copy %.2f (%d rows)\n", enc, dec, n
      else print "gpu-check: no rows from 64 MB up to compare with the D2D copy"
    }'
}

case ${1:-} in
  --step-build) shift; step_build "$@"; exit ;;
  --step-codec-perf) shift; step_codec_perf "$@"; exit ;;
esac

build_dir=build-gpu-check
do_build=1
while [ $# -gt 0 ]; do
  case $1 in
    --build-dir)
      [ $# -ge 2 ] || { echo "gpu-check: --build-dir needs a directory" >&2; exit "$EXIT_USAGE"; }
      build_dir=$2
      shift 2
      ;;
    --no-build) do_build=0; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check: unknown argument '$1' (see --help)" >&2; exit "$EXIT_USAGE" ;;
  esac
done

# ---- 0. a GPU, or refuse before building anything ---------------------------
# Evidence, in order: nvidia-smi listing a GPU; NVIDIA device nodes; the
# driver's per-GPU entries. The CUDA runtime itself confirms it later: the
# tests fail under QCCL_TEST_REQUIRE_GPU=1 and qccl_codec_perf reports "no
# CUDA device" where the runtime sees none.
gpu_evidence=""
if command -v nvidia-smi > /dev/null 2>&1 && nvidia-smi -L 2> /dev/null | grep -q '^GPU '; then
  gpu_evidence="nvidia-smi: $(nvidia-smi -L 2> /dev/null | head -n 1)"
elif compgen -G '/dev/nvidia[0-9]*' > /dev/null; then
  gpu_evidence="device node $(compgen -G '/dev/nvidia[0-9]*' | head -n 1) (no usable nvidia-smi)"
elif compgen -G '/proc/driver/nvidia/gpus/*' > /dev/null; then
  gpu_evidence="driver entry $(compgen -G '/proc/driver/nvidia/gpus/*' | head -n 1)"
fi
# For testing this script on a machine without a GPU only: every GPU step
# then runs and fails, honestly.
if [ -z "$gpu_evidence" ] && [ "${QCCL_GPU_CHECK_ASSUME_GPU:-0}" = 1 ]; then
  gpu_evidence="none found; assumed (QCCL_GPU_CHECK_ASSUME_GPU=1), so the GPU steps should fail"
fi
if [ -z "$gpu_evidence" ]; then
  echo "gpu-check: no NVIDIA GPU on this machine (no GPU from nvidia-smi -L, no /dev/nvidia<N>," >&2
  echo "gpu-check: no /proc/driver/nvidia/gpus/*): refusing. Nothing was built, run or written." >&2
  exit "$EXIT_NO_GPU"
fi
echo "gpu-check: GPU found ($gpu_evidence)"

# ---- set-up -------------------------------------------------------------------
budget_s=${QCCL_GPU_CHECK_BUDGET_S:-590}
results_dir=${QCCL_GPU_CHECK_RESULTS_DIR:-perf/results}
jobs=${QCCL_GPU_CHECK_JOBS:-$(nproc)}
ctest_j=${QCCL_GPU_CHECK_CTEST_J:-4}
date_tag=$(date +%F)
deadline=$((SECONDS + budget_s))
log_dir=$(mktemp -d)
summary_rows=()
failed=0
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1

find_tool() {  # find_tool <name>: /usr/local/cuda/bin/<name>, else PATH; prints the path
  if [ -x "/usr/local/cuda/bin/$1" ]; then
    echo "/usr/local/cuda/bin/$1"
  else
    command -v "$1" || true
  fi
}
nvcc=$(find_tool nvcc)
sanitizer=$(find_tool compute-sanitizer)
mpirun_bin=$(command -v mpirun || true)

gpu_name=""
if command -v nvidia-smi > /dev/null 2>&1; then
  gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2> /dev/null | head -n 1 || true)
  if nvidia-smi --query-gpu=compute_mode --format=csv,noheader 2> /dev/null | grep -qi exclusive; then
    echo "gpu-check: the GPU is in an exclusive compute mode: GPU tests one at a time"
    ctest_j=1
  fi
fi

# record <step> <result> <seconds>
record() {
  summary_rows+=("$(printf '%-32s %-24s %6s' "$1" "$2" "$3")")
  case $2 in pass | reused*) ;; *) failed=1 ;; esac
}

# run_step <step> <limit-s> <command...>: runs the command under timeout
# (capped by what is left of the budget), output to the console and to the
# step's log; records pass / FAIL (exit N) / FAIL (timeout).
run_step() {
  local step=$1 limit=$2
  shift 2
  local left=$((deadline - SECONDS))
  if [ "$left" -lt 15 ]; then
    echo "=== $step: not run, the ${budget_s}s budget is spent" | tee "$log_dir/$step.txt"
    record "$step" "FAIL (no time left)" 0
    return 1
  fi
  [ "$limit" -le "$left" ] || limit=$left
  echo "=== $step (limit ${limit}s): $*"
  {
    echo "# gpu-check step $step, $(date -Is), $(uname -n), GPU: ${gpu_name:-unknown}"
    echo "# command: $*"
  } > "$log_dir/$step.txt"
  local start=$SECONDS rc
  set +e
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$log_dir/$step.txt"
  rc=${PIPESTATUS[0]}
  set -e
  local took=$((SECONDS - start))
  echo "# exit status $rc after ${took}s" >> "$log_dir/$step.txt"
  if [ "$rc" -eq 0 ]; then
    record "$step" pass "$took"
  elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    record "$step" "FAIL (timeout ${limit}s)" "$took"
  else
    record "$step" "FAIL (exit $rc)" "$took"
  fi
  return "$rc"
}

not_run() {  # not_run <step> <why>
  echo "=== $1: not run: $2" | tee "$log_dir/$1.txt"
  record "$1" "FAIL (not run)" 0
}

slug() {  # "NVIDIA H100 80GB HBM3" -> nvidia-h100-80gb-hbm3
  printf '%s' "$1" | tr '[:upper:]' '[:lower:]' | tr -cs 'a-z0-9' '-' | sed 's/^-*//; s/-*$//'
}

# Copies the logs to <results>/<date>-<slug>-gpu-check-<step>.txt, writes the
# summary there and prints it. Runs on every exit after the set-up.
finish() {
  local status=$?
  if [ "$status" -ne 0 ]; then failed=1; fi
  local name=${gpu_name:-unknown-gpu}
  local prefix
  prefix="$results_dir/$date_tag-$(slug "$name")-gpu-check"
  mkdir -p "$results_dir"
  local f
  for f in "$log_dir"/*.txt; do
    [ -e "$f" ] || continue
    cp "$f" "$prefix-$(basename "$f")"
  done
  {
    echo "# ci/gpu-check.sh on $(uname -n), $(date -Is)"
    echo "# GPU: $name (${gpu_evidence})"
    echo "# commit: $(git rev-parse --short HEAD 2> /dev/null || echo unknown)$(git diff --quiet HEAD 2> /dev/null || echo ' + local changes')"
    printf '%-32s %-24s %6s\n' step result seconds
    printf '%s\n' "${summary_rows[@]}"
    echo "# total ${SECONDS}s of a ${budget_s}s budget; logs: $prefix-<step>.txt"
    if [ "$failed" -eq 0 ]; then echo "# all steps passed"; else echo "# FAILED"; fi
  } > "$prefix-summary.txt"
  echo
  cat "$prefix-summary.txt"
  rm -rf "$log_dir"
  if [ "$failed" -ne 0 ]; then exit "$EXIT_FAILED"; fi
  exit 0
}
trap finish EXIT

# ---- 1. build -------------------------------------------------------------------
gpu_tests=$build_dir/test/gpu/qccl_gpu_tests
codec_perf=$build_dir/perf/qccl_codec_perf
allreduce_perf=$build_dir/perf/qccl_allreduce_perf
build_ok=1
if [ "$do_build" -eq 1 ]; then
  if [ -z "$nvcc" ]; then
    not_run build "no nvcc (neither /usr/local/cuda/bin/nvcc nor on PATH)"
    build_ok=0
  else
    configure=(cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQCCL_WITH_CUDA=ON
      "-DCMAKE_CUDA_COMPILER=$nvcc" -DQCCL_WITH_PYTHON=OFF -DQCCL_BUILD_TESTS=ON
      -DQCCL_BUILD_PERF=ON)
    if [ -n "${QCCL_GPU_CHECK_CUDA_ARCHS:-}" ]; then
      configure+=("-DCMAKE_CUDA_ARCHITECTURES=$QCCL_GPU_CHECK_CUDA_ARCHS")
    fi
    run_step build 300 bash "$self" --step-build "$build_dir" "$jobs" "${configure[@]}" ||
      build_ok=0
  fi
elif [ ! -x "$gpu_tests" ] || [ ! -x "$codec_perf" ] || [ ! -x "$allreduce_perf" ]; then
  not_run build "--no-build, and $build_dir lacks a binary ($gpu_tests, $codec_perf, $allreduce_perf)"
  build_ok=0
else
  echo "=== build: reusing $build_dir (--no-build)" | tee "$log_dir/build.txt"
  record build "reused (--no-build)" 0
fi

# The device name from the CUDA runtime when nvidia-smi gave none.
if [ -z "$gpu_name" ] && [ -x "$codec_perf" ]; then
  gpu_name=$(timeout 60 "$codec_perf" -b 1M -e 1M -n 1 2> /dev/null |
    sed -n 's/^# qccl_codec_perf on \(.*\) (sm_[0-9]*).*/\1/p' | head -n 1 || true)
fi

# ---- 2. GPU tests ---------------------------------------------------------------
if [ "$build_ok" -eq 1 ]; then
  # --no-tests=error: a build that found no CUDA registers no gpu tests.
  run_step gpu-tests 240 env QCCL_TEST_REQUIRE_GPU=1 \
    ctest --test-dir "$build_dir" -L gpu --no-tests=error --output-on-failure \
    --timeout 180 -j "$ctest_j" || true
else
  not_run gpu-tests "the build failed"
fi

# ---- 3. codec throughput next to a device-to-device copy ---------------------------
if [ "$build_ok" -eq 1 ]; then
  run_step codec-perf 90 bash "$self" --step-codec-perf "$codec_perf" || true
else
  not_run codec-perf "the build failed"
fi

# ---- 4-5. qccl_allreduce_perf -g on one rank ------------------------------------
mpi_flags=(-np 1 --bind-to none)
[ "$(id -u)" -ne 0 ] || mpi_flags+=(--allow-run-as-root)
bench_flags=(-g -b 4K -e 256M -f 4 -n 20 -w 5)
for variant in 1rank 1rank-compressed; do
  step=allreduce-perf-$variant
  if [ "$build_ok" -ne 1 ]; then
    not_run "$step" "the build failed"
  elif [ -z "$mpirun_bin" ]; then
    not_run "$step" "mpirun not found"
  elif [ "$variant" = 1rank ]; then
    # One rank passes through (ncclAllReduce) whatever the method.
    run_step "$step" 120 "$mpirun_bin" "${mpi_flags[@]}" -x QCCL_COMPRESS_ONE_RANK=0 \
      "$allreduce_perf" "${bench_flags[@]}" -m none,qsgd,alq || true
  else
    run_step "$step" 180 "$mpirun_bin" "${mpi_flags[@]}" -x QCCL_COMPRESS_ONE_RANK=1 \
      "$allreduce_perf" "${bench_flags[@]}" -m all || true
  fi
done
# ---- 6-8. compute-sanitizer over the codec tests ----------------------------------
# The codec tests (not the NCCL / device-path ones: NCCL's own kernels and
# proxy thread are not ours to check), a few method/bits instances of the
# parametrised encode test instead of all of them, to stay within minutes.
codec_filter='GpuEncode.*:GpuDecodeAccumulate.*:GpuDecodeUniform.*:GpuCast.*'
codec_filter+=':AllMethods/GpuEncodeMatchesCpu.*/qsgd_3bits:AllMethods/GpuEncodeMatchesCpu.*/alq_2bits'
codec_filter+=':AllMethods/GpuEncodeMatchesCpu.*/trn_2bits:AllMethods/GpuEncodeMatchesCpu.*/qsgdinf_8bits'
for tool in memcheck racecheck synccheck; do
  if [ "$build_ok" -ne 1 ]; then
    not_run "sanitizer-$tool" "the build failed"
  elif [ -z "$sanitizer" ]; then
    not_run "sanitizer-$tool" "compute-sanitizer not found (/usr/local/cuda/bin or PATH)"
  else
    extra=()
    [ "$tool" != memcheck ] || extra=(--leak-check full)
    run_step "sanitizer-$tool" 120 env QCCL_TEST_REQUIRE_GPU=1 \
      "$sanitizer" --tool "$tool" "${extra[@]}" --error-exitcode 1 \
      "$gpu_tests" "--gtest_filter=$codec_filter" || true
  fi
done

# finish (trap) writes the summary and sets the exit status.
