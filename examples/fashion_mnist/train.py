"""Fashion-MNIST data-parallel training with DDP + the qccl comm hook.

    mpirun -n 4 python3 examples/fashion_mnist/train.py --method alq --bits 3 \
        --epochs 2 --csv results.csv

Every rank trains on its own shard of the real Fashion-MNIST training set
(IDX files from the Debian package dataset-fashion-mnist); gradients are
averaged by qccl inside DDP (qccl.torch.ddp_comm_hook). Rank 0 prints per
epoch: mean training loss, test accuracy (full 10k test set), bytes this
rank put on the wire (qccl stats, docs/design.md §6 accounting) and wall time,
and appends the same to --csv. --dump-grad writes the gradient bucket of
step --dump-step as raw float32 (input for tools/qccl_levels --input).
"""
import argparse
import csv
import gzip
import os
import struct
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

import qccl
import qccl.torch as qtorch

DATA_DIR = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """IDX format: magic (0, 0, dtype 0x08 = ubyte, ndim), big-endian dims, data."""
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        zero, dtype, ndim = struct.unpack(">HBB", f.read(4))
        if zero != 0 or dtype != 0x08:
            raise ValueError(f"{path}: not an unsigned-byte IDX file")
        dims = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)


def load(data_dir, split):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(images.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    x = (x - 0.2860) / 0.3530  # Fashion-MNIST mean / std
    return x, torch.from_numpy(labels.astype(np.int64))


def make_model(kind):
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128),
                             nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def evaluate(model, x, y):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), 1000):
            correct += (model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum().item()
    model.train()
    return correct / len(x)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--method", default="alq")
    p.add_argument("--bits", type=int, default=3)
    p.add_argument("--bucket-size", type=int, default=8192)
    p.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64, help="per rank")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--train-subset", type=int, default=0, help="use the first N training images")
    p.add_argument("--data", default=DATA_DIR)
    p.add_argument("--csv", default="")
    p.add_argument("--dump-grad", default="", help="write a gradient bucket (raw float32)")
    p.add_argument("--dump-step", type=int, default=0, help="the step whose bucket --dump-grad writes")
    args = p.parse_args()

    torch.set_num_threads(1)  # several ranks share few cores
    qtorch.init_process_group_from_mpi("gloo")
    rank, size = dist.get_rank(), dist.get_world_size()
    comm = qccl.Communicator(method=args.method, bits=args.bits, bucket_size=args.bucket_size,
                             min_compress_bytes=0, seed=1)

    x_train, y_train = load(args.data, "train")
    if args.train_subset:
        x_train, y_train = x_train[:args.train_subset], y_train[:args.train_subset]
    x_test, y_test = load(args.data, "test")
    shard = torch.arange(rank, len(x_train), size)  # disjoint shards
    x_train, y_train = x_train[shard], y_train[shard]

    torch.manual_seed(0)  # same initial model everywhere (DDP also broadcasts it)
    model = DDP(make_model(args.model))
    dumped = {"done": not args.dump_grad, "calls": 0}

    def hook(state, bucket):
        dumped["calls"] += 1
        if not dumped["done"] and rank == 0 and dumped["calls"] > args.dump_step:
            qtorch._bucket_tensor(bucket).detach().numpy().astype(np.float32).tofile(
                args.dump_grad)
            dumped["done"] = True
        return qtorch.ddp_comm_hook(state, bucket)

    model.register_comm_hook(comm, hook)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    gen = torch.Generator().manual_seed(100 + rank)
    steps = len(x_train) // args.batch_size
    rows = []
    start = time.time()
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(x_train), generator=gen)
        total_loss = 0.0
        for s in range(steps):
            idx = order[s * args.batch_size:(s + 1) * args.batch_size]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
            total_loss += loss.item()
        mean_loss = torch.tensor([total_loss / steps])
        dist.all_reduce(mean_loss)
        acc = evaluate(model.module, x_test, y_test)
        st = comm.stats()
        row = {"method": args.method, "bits": args.bits if args.method != "none" else 32,
               "model": args.model, "ranks": size, "epoch": epoch,
               "train_loss": round(mean_loss.item() / size, 5), "test_acc": round(acc, 4),
               "wire_bytes": st["wire_bytes"], "compression_ratio": round(st["compression_ratio"], 2),
               "time_s": round(time.time() - start, 2)}
        rows.append(row)
        if rank == 0:
            print(f"[{args.method} {args.bits}b] epoch {epoch}: loss {row['train_loss']:.4f} "
                  f"test acc {acc:.4f} wire {st['wire_bytes'] / 2**20:.1f} MiB "
                  f"time {row['time_s']:.1f} s", flush=True)
    if rank == 0 and args.csv:
        new = not os.path.exists(args.csv)
        with open(args.csv, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            if new:
                w.writeheader()
            w.writerows(rows)
    comm.close()
    dist.barrier()


if __name__ == "__main__":
    main()
