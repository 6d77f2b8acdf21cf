#!/usr/bin/env bash
# Smoke test of the netem harness (ctest): 2 namespaced hosts on a shaped
# 1 Gbit/s link, one 4 MiB buffer, baseline + qsgd 2-bit allgather; passes when
# both run across the two namespaces and produce a speed-up row. Seconds.
# Skips (exit 0, with a message) when not root or when network namespaces
# cannot be created here.
#   smoke.sh path/to/qccl_allreduce_perf
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bench=${1:-}
if [[ -z $bench || ! -x $bench ]]; then
  echo "smoke.sh: usage: smoke.sh path/to/qccl_allreduce_perf (got '${bench}')" >&2
  exit 2
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "netem smoke: SKIPPED: needs root to create network namespaces"
  exit 0
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Own prefix and subnet, so it cannot touch a full run's hosts.
set +e
python3 "$here/netem_bench.py" run --bench "$bench" --hosts 2 --rates 1gbit --sizes 4M:4M \
  --bits 2 --algos allgather --iters 2 --warmup 1 --check 1 --prefix qsmk --subnet 10.77.9 \
  --timeout 120 --out "$out/smoke" 2>&1 | tee "$out/log"
rc=${PIPESTATUS[0]}
set -e
if grep -q "^netem: skipped:" "$out/log"; then
  echo "netem smoke: SKIPPED (see above)"
  exit 0
fi
if [[ $rc -ne 0 ]]; then
  echo "netem smoke: FAILED: netem_bench.py exited $rc"
  exit 1
fi
python3 - "$out/smoke.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
rate = d["rates"][0]
assert rate["calibration"]["distinct_namespaces"] == 2, rate["calibration"]
# The shaped link must be slower than 1 Gbit/s and not absurdly so.
assert 0.3 < rate["calibration"]["p2p_gbit"] < 1.1, rate["calibration"]
s = d["speedups"]
assert len(s) == 1 and s[0]["size"] == 4 << 20 and s[0]["speedup"] > 0, s
assert 1 < s[0]["ideal"] < 32 and s[0]["relerr"] >= 0, s
print(f"netem smoke: PASSED (2 hosts, 1 Gbit/s, 4 MiB: speed-up {s[0]['speedup']:.2f}, "
      f"ideal {s[0]['ideal']:.2f})")
PY
