"""Test accuracy vs bytes on the wire for the Fashion-MNIST comparison.

    python3 examples/fashion_mnist/plot.py results.csv results.png

One line per (method, bits) through its epochs: x = cumulative bytes rank 0
sent (qccl stats), y = test accuracy after that epoch.
"""
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(path_csv, path_png):
    runs = defaultdict(list)
    with open(path_csv) as f:
        for row in csv.DictReader(f):
            runs[(row["method"], int(row["bits"]))].append(
                (int(row["epoch"]), float(row["wire_bytes"]), float(row["test_acc"])))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (method, bits), points in sorted(runs.items()):
        points.sort()
        label = "none (fp32)" if method == "none" else f"{method} {bits}b"
        style = "--" if bits == 2 else "-"
        ax.plot([p[1] / 2**20 for p in points], [p[2] for p in points], style, marker="o",
                label=label, color="black" if method == "none" else None)
    ax.set_xscale("log")
    ax.set_xlabel("bytes sent by rank 0 (MiB, cumulative, log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Fashion-MNIST MLP, 4 ranks, DDP + qccl hook")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path_png, dpi=120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
