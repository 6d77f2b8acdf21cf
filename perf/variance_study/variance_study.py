#!/usr/bin/env python3
"""Normalised variance of every quantisation method at 2, 3, 4 bits, bucket 8192,
on Gaussian and Student-t(3) data (real gradients: pass --input NAME=FILE).

Each number is the variance measured by tools/qccl_levels: the data is
encoded and decoded with the fitted table (5 seeds) and
||Q(v) - v||^2 / ||v||^2 is averaged. Writes perf/results/variance_study.md,
.json and .png.

usage: variance_study.py --tool build/tools/qccl_levels [--out perf/results]
                         [--input NAME=FILE ...] [--buckets 64]
needs: python3-numpy python3-matplotlib
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

# (label, method, extra qccl_levels arguments); dqsgd at fixed bits is qsgd.
CONFIGS = [
    ("qsgd", "qsgd", []),
    ("qsgdinf", "qsgdinf", []),
    ("nuqsgd", "nuqsgd", []),
    ("trn", "trn", []),
    ("alqn (truncnorm)", "alqn", ["--model", "truncnorm"]),
    ("alq (mixture, n_k)", "alq", ["--model", "mixture", "--weight", "norm"]),
    ("alq (mixture, n_k^2)", "alq", ["--model", "mixture", "--weight", "norm2"]),
    ("alq (histogram)", "alq", ["--model", "histogram"]),
    ("amqn (truncnorm)", "amqn", ["--model", "truncnorm"]),
    ("amq (mixture, n_k)", "amq", ["--model", "mixture", "--weight", "norm"]),
    ("amq (histogram)", "amq", ["--model", "histogram"]),
]
BITS = [2, 3, 4]
BUCKET = 8192


def run_tool(tool, method, bits, path, extra):
    cmd = [tool, "--method", method, "--bits", str(bits), "--bucket", str(BUCKET),
           "--input", path, "--json"] + extra
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--out", default="perf/results")
    ap.add_argument("--input", action="append", default=[], help="NAME=FILE of float32 values")
    ap.add_argument("--buckets", type=int, default=64, help="buckets of synthetic data")
    args = ap.parse_args()

    rng = np.random.default_rng(2024)
    n = args.buckets * BUCKET
    tmp = tempfile.mkdtemp(prefix="qccl_variance_")
    datasets = []
    for name, values in [("gaussian", rng.standard_normal(n)),
                         ("student-t(3)", rng.standard_t(3, n))]:
        path = os.path.join(tmp, name.replace("(", "").replace(")", "") + ".f32")
        values.astype("<f4").tofile(path)
        datasets.append((name, path))
    for spec in args.input:
        name, path = spec.split("=", 1)
        datasets.append((name, path))

    results = []
    for name, path in datasets:
        for label, method, extra in CONFIGS:
            for bits in BITS:
                r = run_tool(args.tool, method, bits, path, extra)
                results.append({"data": name, "method": label, "bits": bits,
                                "measured": r["measured_normalized_variance"],
                                "predicted": r["predicted_normalized_variance"],
                                "levels": r["levels"]})
                print(f"{name:14s} {label:22s} {bits} bits: {r['measured_normalized_variance']:.4g}",
                      file=sys.stderr)

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "variance_study.json"), "w") as f:
        json.dump(results, f, indent=1)

    lines = ["# Normalised variance by method (bucket 8192)", "",
             f"{args.buckets} buckets of synthetic data per set; measured by encode+decode with "
             "tools/qccl_levels (mean of 5 seeds). Lower is better; in brackets the model's "
             "prediction.", ""]
    for name, _ in datasets:
        lines += [f"## {name}", "", "| method | " + " | ".join(f"{b} bits" for b in BITS) + " |",
                  "|---|" + "---|" * len(BITS)]
        for label, _, _ in CONFIGS:
            cells = []
            for b in BITS:
                r = next(x for x in results if x["data"] == name and x["method"] == label and x["bits"] == b)
                cells.append(f"{r['measured']:.4g} ({r['predicted']:.4g})")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    with open(os.path.join(args.out, "variance_study.md"), "w") as f:
        f.write("\n".join(lines))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 5), squeeze=False)
    for ax, (name, _) in zip(axes[0], datasets):
        for label, _, _ in CONFIGS:
            ys = [next(x["measured"] for x in results
                       if x["data"] == name and x["method"] == label and x["bits"] == b) for b in BITS]
            ax.plot(BITS, ys, marker="o", label=label)
        ax.set_yscale("log")
        ax.set_xticks(BITS)
        ax.set_xlabel("bits")
        ax.set_ylabel("normalised variance ||Q(v)-v||^2 / ||v||^2")
        ax.set_title(f"{name}, bucket {BUCKET}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "variance_study.png"), dpi=110)


if __name__ == "__main__":
    main()
