#!/usr/bin/env bash
# Smoke test of the netem harness (ctest): 2 namespaced hosts on a shaped
# 1 Gbit/s link, one 4 MiB buffer, the baselines (mpi, mpi-fp16, mpi-bf16) +
# qsgd 2-bit allgather; passes when they run across the two namespaces and
# produce their speed-up rows (vs mpi and vs mpi-bf16). Seconds.
# `delayline` runs the same on the delay-line link with 0.5 ms one way and
# also checks that the link's round trip holds the 1 ms it adds.
# Skips (exit 0, with a message) when not root or when network namespaces
# cannot be created here.
#   smoke.sh path/to/qccl_allreduce_perf [veth|delayline]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bench=${1:-}
link=${2:-veth}
if [[ -z $bench || ! -x $bench ]]; then
  echo "smoke.sh: usage: smoke.sh path/to/qccl_allreduce_perf [veth|delayline] (got '${bench}')" >&2
  exit 2
fi
case $link in
  # Own prefix and subnet per case, so neither can touch a full run's hosts.
  veth) link_args=(--link veth --prefix qsmk --subnet 10.77.9) ;;
  delayline) link_args=(--link delayline --delay-ms 0.5 --prefix qsmd --subnet 10.77.10) ;;
  *)
    echo "smoke.sh: link '$link': expected veth or delayline" >&2
    exit 2
    ;;
esac
if [[ $(id -u) -ne 0 ]]; then
  echo "netem smoke: SKIPPED: needs root to create network namespaces"
  exit 0
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
set +e
python3 "$here/netem_bench.py" run --bench "$bench" --hosts 2 --rates 1gbit --sizes 4M:4M \
  --bits 2 --algos allgather --iters 2 --warmup 1 --check 1 "${link_args[@]}" \
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
python3 - "$out/smoke.json" "$link" <<'PY'
import json, sys
d, link = json.load(open(sys.argv[1])), sys.argv[2]
rate = d["rates"][0]
assert d["meta"]["link_model"] == link, d["meta"]
assert rate["calibration"]["distinct_namespaces"] == 2, rate["calibration"]
# The shaped link must be slower than 1 Gbit/s and not absurdly so.
assert 0.3 < rate["calibration"]["p2p_gbit"] < 1.1, rate["calibration"]
extra = ""
if link == "delayline":
    # 0.5 ms each way: a TCP round trip cannot take less than 1 ms; the upper
    # bound only catches a delay applied several times (the cores are shared).
    rtt = rate["calibration"]["tcp_rtt_us"]
    assert 1000 <= rtt < 10000, rate["calibration"]
    dl = rate["delayline"]
    assert dl["tx_frames"] > 0 and dl["cpu_s"] > 0, dl
    extra = f", TCP rtt {rtt:.0f} us, delay line {dl['cpu_s']:.2f} s CPU"
# One row per compared config: the half-precision baselines, then qsgd.
s = {x["config"]: x for x in d["speedups"]}
assert sorted(s) == ["mpi-bf16", "mpi-fp16", "qsgd-2b-allgather"], s
for x in s.values():
    assert x["size"] == 4 << 20 and x["speedup"] > 0 and x["relerr"] >= 0, x
assert s["mpi-bf16"]["speedup_vs_bf16"] is None and abs(s["mpi-bf16"]["ideal"] - 2) < 1e-3, s
q = s["qsgd-2b-allgather"]
assert 1 < q["ideal"] < 32 and q["speedup_vs_bf16"] > 0, q
print(f"netem smoke: PASSED ({link}, 2 hosts, 1 Gbit/s, 4 MiB: speed-up {q['speedup']:.2f}, "
      f"vs bf16 {q['speedup_vs_bf16']:.2f}, ideal {q['ideal']:.2f}{extra})")
PY
