#!/usr/bin/env bash
# Line coverage of the CPU build (docs/gpu.md "Coverage"): configures
# build-coverage with -DQCCL_COVERAGE=ON (no CUDA, no benchmarks, no Python
# bindings), builds it (-j2), runs the unit tests (ctest -L unit) and the MPI
# tests (ctest -L mpi, under mpirun at 1-4 ranks), then prints the line
# coverage of each src/ folder with gcovr.
#
# Gated folders: src/collective, src/engine and src/api must each reach
# QCCL_COVERAGE_THRESHOLD percent of their lines (default 90); the other
# src/ folders are listed for information. Exit status: 0 tests passed and
# every gated folder reached the threshold, 1 otherwise, 2 usage or a
# missing tool.
#
# usage: ci/coverage.sh [--write] [--no-build] [-h|--help]
#   --write      also write the report to perf/results/<date>-cpu-coverage.txt
#   --no-build   reuse build-coverage as it is (counters are still reset)
# environment: QCCL_COVERAGE_THRESHOLD (percent, default 90),
#   QCCL_COVERAGE_BUILD_DIR (default build-coverage).
set -euo pipefail
cd "$(dirname "$0")/.."

threshold=${QCCL_COVERAGE_THRESHOLD:-90}
build_dir=${QCCL_COVERAGE_BUILD_DIR:-build-coverage}
gated="collective engine api"
write=0
do_build=1
for arg in "$@"; do
  case $arg in
    --write) write=1 ;;
    --no-build) do_build=0 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "coverage: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
if ! [[ $threshold =~ ^[0-9]+([.][0-9]+)?$ ]]; then
  echo "coverage: QCCL_COVERAGE_THRESHOLD='$threshold' is not a percentage" >&2
  exit 2
fi
for tool in gcovr gcov cmake ctest python3; do
  if ! command -v "$tool" > /dev/null 2>&1; then
    echo "coverage: $tool not found (bash ci/install-deps.sh installs gcovr)" >&2
    exit 2
  fi
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1

if [ "$do_build" -eq 1 ]; then
  echo "=== configure and build $build_dir (QCCL_COVERAGE=ON, CPU only)"
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQCCL_WITH_CUDA=OFF \
    -DQCCL_COVERAGE=ON -DQCCL_BUILD_PERF=OFF -DQCCL_WITH_PYTHON=OFF
  cmake --build "$build_dir" -j2
elif [ ! -f "$build_dir/CMakeCache.txt" ]; then
  echo "coverage: --no-build, but $build_dir is not configured" >&2
  exit 2
fi
if ! grep -q '^QCCL_COVERAGE:BOOL=ON' "$build_dir/CMakeCache.txt"; then
  echo "coverage: $build_dir is not a QCCL_COVERAGE=ON build" >&2
  exit 2
fi

# Counters from earlier runs would add up with this one's.
find "$build_dir" -name '*.gcda' -delete

tests_ok=1
echo "=== unit tests"
(cd "$build_dir" && ctest --output-on-failure --timeout 900 -j2 -L unit) || tests_ok=0
echo "=== MPI tests"
(cd "$build_dir" && ctest --output-on-failure --timeout 900 -L mpi) || tests_ok=0

echo "=== gcovr"
summary_json=$build_dir/coverage-summary.json
# Lines only: --gcov-ignore-parse-errors keeps a bad branch record (e.g. a
# negative count from a counter race) from stopping the run.
rm -f "$summary_json"
timeout 1800 gcovr --root . --object-directory "$build_dir" --filter 'src/' -j 2 \
  --gcov-ignore-parse-errors --json-summary "$summary_json"

report=$(mktemp)
trap 'rm -f "$report" "$report.full"' EXIT
# The table: one row per src/ folder (lines covered / lines with code), the
# gated folders marked, then the gated folders' files, least covered first.
gate_ok=1
python3 - "$summary_json" "$threshold" "$gated" > "$report" << 'EOF' || gate_ok=0
import collections, json, sys

summary_path, threshold, gated = sys.argv[1], float(sys.argv[2]), sys.argv[3].split()
with open(summary_path) as f:
    files = json.load(f)["files"]

folders = collections.OrderedDict()
per_file = collections.defaultdict(list)
for entry in sorted(files, key=lambda e: e["filename"]):
    parts = entry["filename"].split("/")
    folder = parts[1] if len(parts) > 2 and parts[0] == "src" else "(other)"
    covered, total = entry["line_covered"], entry["line_total"]
    c, t = folders.get(folder, (0, 0))
    folders[folder] = (c + covered, t + total)
    per_file[folder].append((entry["filename"], covered, total))

def pct(c, t):
    return 100.0 * c / t if t else 100.0

failed = []
print(f"{'folder':<16} {'lines':>7} {'covered':>8} {'line %':>7}  gate")
for folder in gated + sorted(f for f in folders if f not in gated):
    c, t = folders.get(folder, (0, 0))
    if folder in gated:
        if t == 0:
            verdict = "FAIL (no lines: not built or not run)"
            failed.append(folder)
        elif pct(c, t) + 1e-9 < threshold:
            verdict = f"FAIL (< {threshold:g}%)"
            failed.append(folder)
        else:
            verdict = f"ok (>= {threshold:g}%)"
    else:
        verdict = "info"
    print(f"{'src/' + folder:<16} {t:>7} {c:>8} {pct(c, t):>6.1f}%  {verdict}")
all_c = sum(c for c, _ in folders.values())
all_t = sum(t for _, t in folders.values())
print(f"{'src/ (all)':<16} {all_t:>7} {all_c:>8} {pct(all_c, all_t):>6.1f}%  info")

print()
print("Gated folders, per file, least covered first:")
for folder in gated:
    rows = sorted(per_file.get(folder, []), key=lambda r: (pct(r[1], r[2]), r[0]))
    for name, c, t in rows:
        print(f"  {name:<48} {t:>6} {c:>6} {pct(c, t):>6.1f}%  ({t - c} lines not run)")

if failed:
    print()
    print(f"below the {threshold:g}% line-coverage threshold: " + ", ".join("src/" + f for f in failed))
    sys.exit(1)
EOF

{
  echo "# qccl CPU line coverage, $(date +%F), $(uname -n)"
  echo "# commit $(git rev-parse --short HEAD 2> /dev/null || echo unknown)$(git diff --quiet HEAD 2> /dev/null || echo ' + local changes')," \
    "build $build_dir (QCCL_COVERAGE=ON, RelWithDebInfo, no CUDA), gcovr $(gcovr --version | head -n 1 | awk '{print $2}')"
  echo "# tests: ctest -L unit, ctest -L mpi: $([ "$tests_ok" -eq 1 ] && echo passed || echo 'SOME FAILED')"
  echo "# lines: executable lines gcov counts in files compiled into this build"
  cat "$report"
} | tee "$report.full"
if [ "$write" -eq 1 ]; then
  out=perf/results/$(date +%F)-cpu-coverage.txt
  cp "$report.full" "$out"
  echo "coverage: written to $out"
fi

if [ "$tests_ok" -ne 1 ]; then
  echo "coverage: some tests failed (see above)" >&2
  exit 1
fi
if [ "$gate_ok" -ne 1 ]; then
  echo "coverage: a gated folder is below ${threshold}% (QCCL_COVERAGE_THRESHOLD)" >&2
  exit 1
fi
echo "coverage: src/collective, src/engine and src/api at or above ${threshold}%"
