"""Helpers shared by the collective Python tests (test_qccl.py,
test_torch_group.py): every rank calls them in the same order."""
import torch
import torch.distributed as dist
import torch.nn as nn


def world():
    return dist.get_rank(), dist.get_world_size()


def same_on_every_rank(t, group=None):
    """Whether `t` holds the same bits on every rank of `group`."""
    n = dist.get_world_size(group)
    gathered = [torch.empty_like(t) for _ in range(n)]
    dist.all_gather(gathered, t, group=group)
    return all(torch.equal(gathered[0], g) for g in gathered)


def make_model():
    torch.manual_seed(0)  # same initial model on every rank
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 10))


def rank_batch(step):
    r, _ = world()
    g = torch.Generator().manual_seed(1000 * r + step)
    return torch.randn(32, 20, generator=g), torch.randint(0, 10, (32,), generator=g)


def train(model, steps=4, optimizer=None):
    """A few SGD steps on this rank's batches; returns the flat parameters."""
    opt = optimizer or torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(steps):
        x, y = rank_batch(step)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])
