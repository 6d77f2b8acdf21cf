#!/usr/bin/env python3
"""QSGD bucket quantiser in framework tensor ops vs qccl's codec, in one run.

The same maths as qccl's `qsgd` method (docs/algorithms.md §2, src/codec/):
buckets of B coordinates, each divided by its L2 norm, stochastically
rounded onto the uniform table of 2^bits levels on [-1, 1], the symbols
bit-packed at `bits` bits each; decode = table[symbol] * norm. Written once
with torch ops (vector_norm, divide, rand, floor, compare, shifts into
uint8) and timed next to qccl's own codec on the same sizes and bits, taken
from the codec benchmarks in the same run:

  CPU:  qccl_codec_cpu_perf (one core)      -> encode / decode GB/s
  CUDA: qccl_codec_perf (when torch.cuda.is_available())

GB/s is float32 input bytes / best time (1e9), as the codec benchmarks
print it. The torch packing is bit-plane per 8 coordinates (byte k of a
group holds bit k of its 8 symbols): the same density as qccl's payload
(bit-plane per 32), in uint8 with shifts.

  /usr/bin/python3 perf/torch_ops_compare.py --build build [--threads 1]
"""
import argparse
import os
import subprocess
import sys
import time

import torch

SIZES = [1 << 20, 8 << 20, 64 << 20]  # bytes of float32 input, as perf/results/*-cpu-codec.txt
BITS = [2, 3, 4, 8]
BUCKET = 8192


def levels_for(bits, device):
    # qccl's uniform_table(bits): -1 + 2i/(L-1), i = 0..L-1.
    return torch.linspace(-1.0, 1.0, 1 << bits, device=device, dtype=torch.float32)


def encode(x, bits, bucket):
    """x: float32 [n], n a multiple of 8 -> (norms [nb], packed uint8 [n/8, bits])."""
    n = x.numel()
    nb = (n + bucket - 1) // bucket
    xb = torch.nn.functional.pad(x, (0, nb * bucket - n)).view(nb, bucket)
    norms = torch.linalg.vector_norm(xb, dim=1)
    safe = torch.where(norms > 0, norms, torch.ones_like(norms))
    r = torch.div(xb, safe[:, None]).clamp_(-1.0, 1.0)
    # Position on the uniform grid, floor, and an unbiased coin: round up
    # with probability equal to the distance past the lower level.
    top = (1 << bits) - 1
    t = r.add_(1.0).mul_(top / 2.0)
    low = torch.floor(t).clamp_(max=top - 1)
    up = torch.rand_like(t) < t.sub_(low)
    sym = low.to(torch.uint8).add_(up).view(-1)[:n]
    return norms, pack(sym, bits)


def pack(sym, bits):
    """Bit planes per group of 8 symbols: byte k of a group holds bit k of
    its 8 symbols (lane l at bit l). Shifts and ors on uint8 columns."""
    lanes = sym.view(-1, 8)
    packed = torch.empty(lanes.shape[0], bits, dtype=torch.uint8, device=sym.device)
    for k in range(bits):
        plane = torch.bitwise_and(torch.bitwise_right_shift(lanes, k), 1)
        byte = plane[:, 0].clone()
        for lane in range(1, 8):
            byte.bitwise_or_(torch.bitwise_left_shift(plane[:, lane], lane))
        packed[:, k] = byte
    return packed


def unpack(packed, bits):
    lanes = torch.zeros(packed.shape[0], 8, dtype=torch.uint8, device=packed.device)
    for k in range(bits):
        byte = packed[:, k]
        for lane in range(8):
            bit = torch.bitwise_and(torch.bitwise_right_shift(byte, lane), 1)
            lanes[:, lane].bitwise_or_(torch.bitwise_left_shift(bit, k))
    return lanes.view(-1)


def decode(norms, packed, n, bits, bucket, table):
    values = table[unpack(packed, bits).long()]
    nb = norms.numel()
    out = torch.nn.functional.pad(values, (0, nb * bucket - n)).view(nb, bucket).mul_(norms[:, None])
    return out.view(-1)[:n]


def self_check(device):
    """The torch quantiser is the maths it claims: every value within one
    level step of its input, and unbiased (the mean of 200 draws within 6
    standard deviations of the input, per element)."""
    torch.manual_seed(0)
    x = torch.randn(3 * BUCKET + 40, device=device)
    trials = 200
    for bits in BITS:
        sym = torch.randint(0, 1 << bits, (8 * 1000,), dtype=torch.uint8, device=device)
        assert torch.equal(unpack(pack(sym, bits), bits), sym), f"bits {bits}: packing"
        table = levels_for(bits, device)
        step = 2.0 / ((1 << bits) - 1)
        mean = torch.zeros_like(x)
        for _ in range(trials):
            norms, packed = encode(x, bits, BUCKET)
            y = decode(norms, packed, x.numel(), bits, BUCKET, table)
            norm_of = norms.repeat_interleave(BUCKET)[: x.numel()]
            assert bool(((y - x).abs() <= step * norm_of * (1 + 1e-5)).all()), f"bits {bits}: step"
            mean += y / trials
        # One draw deviates by at most step*norm, with std <= step*norm/2.
        bound = 6 * step * norm_of / 2 / trials**0.5
        assert bool(((mean - x).abs() <= bound).all()), f"bits {bits}: biased"
    return ("torch quantiser: packing round-trips, values within one level step, unbiased over"
            " %d draws (bits %s)" % (
        trials, ",".join(map(str, BITS))))


def best_seconds(fn, iters, sync):
    fn()  # warm-up
    sync()
    best = float("inf")
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def torch_figures(device, iters):
    """(size, bits) -> (encode GB/s, decode GB/s) of the torch quantiser."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rows = {}
    for size in SIZES:
        n = size // 4
        x = torch.randn(n, device=device)
        for bits in BITS:
            table = levels_for(bits, device)
            last = {}

            def run_encode():
                last["payload"] = encode(x, bits, BUCKET)

            t_enc = best_seconds(run_encode, iters, sync)
            norms, packed = last.pop("payload")
            t_dec = best_seconds(lambda: decode(norms, packed, n, bits, BUCKET, table), iters, sync)
            rows[(size, bits)] = (size / t_enc / 1e9, size / t_dec / 1e9)
    return rows


def qccl_cpu_figures(binary, iters):
    """(size, bits) -> (encode GB/s, decode GB/s) from qccl_codec_cpu_perf."""
    cmd = [binary, "-b", str(SIZES[0]), "-e", str(SIZES[-1]), "-f", "8", "-n", str(iters),
           "-m", "qsgd", "-q", ",".join(map(str, BITS))]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 9 and f[0].isdigit():  # size bits memcpy encode decode dec-acc ...
            rows[(int(f[0]), int(f[1]))] = (float(f[3]), float(f[4]))
    return rows, " ".join(cmd)


def qccl_cuda_figures(binary, iters):
    """(size, bits) -> (encode GB/s, decode-accumulate GB/s) from qccl_codec_perf."""
    cmd = [binary, "-b", str(SIZES[0]), "-e", str(SIZES[-1]), "-n", str(iters)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 8 and f[0].isdigit():  # bytes bits copy enc enc/copy dec dec/copy ratio
            rows[(int(f[0]), int(f[1]))] = (float(f[3]), float(f[5]))
    if not rows:
        print("# qccl_codec_perf measured nothing: " + out.strip().replace("\n", " "))
    return rows, " ".join(cmd)


def print_table(title, torch_rows, qccl_rows):
    print(title)
    print("%12s %5s %10s %10s %8s %10s %10s %8s" % ("size(B)", "bits", "torch enc", "qccl enc",
                                                    "qccl/tch", "torch dec", "qccl dec",
                                                    "qccl/tch"))
    for (size, bits), (t_enc, t_dec) in sorted(torch_rows.items()):
        q = qccl_rows.get((size, bits))
        if q is None:
            print("%12d %5d %10.2f %10s %8s %10.2f %10s %8s" % (size, bits, t_enc, "-", "-", t_dec,
                                                                "-", "-"))
            continue
        print("%12d %5d %10.2f %10.2f %8.2f %10.2f %10.2f %8.2f" %
              (size, bits, t_enc, q[0], q[0] / t_enc, t_dec, q[1], q[1] / t_dec))
    sys.stdout.flush()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default=os.path.join(here, "..", "build"),
                   help="build directory holding perf/qccl_codec_cpu_perf (and qccl_codec_perf)")
    p.add_argument("--threads", type=int, nargs="*", default=[1, 0],
                   help="torch CPU thread counts to run, in order; 0 = torch's default")
    p.add_argument("--iters", type=int, default=5, help="best of this many runs")
    p.add_argument("--no-check", action="store_true", help="skip the quantiser self-check")
    args = p.parse_args()

    default_threads = torch.get_num_threads()
    print("# torch %s, default CPU threads %d; qccl's CPU codec runs on one core"
          % (torch.__version__, default_threads))
    print("# qsgd: L2 norm per bucket of %d, uniform table of 2^bits levels, stochastic rounding;"
          " GB/s = float32 input bytes / best of %d (1e9); qccl/tch > 1: qccl faster"
          % (BUCKET, args.iters))
    cpu = torch.device("cpu")
    if not args.no_check:
        print("# check: " + self_check(cpu))

    binary = os.path.join(args.build, "perf", "qccl_codec_cpu_perf")
    qccl_rows, cmd = qccl_cpu_figures(binary, args.iters)
    print("# qccl CPU figures: " + os.path.relpath(cmd.split()[0]) + " " + " ".join(cmd.split()[1:]))
    done = set()
    for threads in args.threads:
        count = threads if threads > 0 else default_threads
        if count in done:
            print("\n## CPU: torch's default is %d thread(s) here: that run is the one above"
                  % count)
            continue
        done.add(count)
        torch.set_num_threads(count)
        label = "%d thread(s), torch.set_num_threads(%d)%s" % (
            count, count, ", torch's default here" if count == default_threads else "")
        print_table("\n## CPU: torch on %s vs qccl CPU codec on one core" % label,
                    torch_figures(cpu, args.iters), qccl_rows)
    torch.set_num_threads(default_threads)

    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        binary = os.path.join(args.build, "perf", "qccl_codec_perf")
        qccl_rows, cmd = qccl_cuda_figures(binary, args.iters)
        print_table("\n## CUDA (%s): torch vs qccl_codec_perf (qccl dec = decode-accumulate)"
                    % torch.cuda.get_device_name(gpu), torch_figures(gpu, args.iters), qccl_rows)
    else:
        print("\n# CUDA: torch.cuda.is_available() is False here; GPU comparison not run")


if __name__ == "__main__":
    main()
