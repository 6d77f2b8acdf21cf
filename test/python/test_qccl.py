"""qccl Python bindings under mpirun (2 and 4 ranks):

    mpirun -n 2 python3 -m pytest -q test/python

Every rank runs the same tests in the same order (they are collective).
"""
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

import qccl
import qccl.torch as qtorch
from ddp_helpers import make_model, rank_batch, same_on_every_rank, train, world


@pytest.fixture(scope="session", autouse=True)
def process_group():
    qtorch.init_process_group_from_mpi("gloo")
    yield
    dist.barrier()


@pytest.fixture
def comm_none():
    c = qccl.Communicator(method="none", timeout_s=60)
    yield c
    c.close()


def test_allreduce_numpy_and_torch_sum_and_avg_exact(comm_none):
    r, n = world()
    a = np.arange(1000, dtype=np.float32) * (r + 1)
    comm_none.allreduce(a)
    expected = np.arange(1000, dtype=np.float32) * (n * (n + 1) / 2)
    assert np.array_equal(a, expected)
    t = torch.full((7, 3), float(r + 1), dtype=torch.float16)
    comm_none.allreduce(t, op="avg")
    assert torch.equal(t, torch.full((7, 3), (n + 1) / 2, dtype=torch.float16))
    b = torch.ones(5, dtype=torch.bfloat16) * (r + 1)
    comm_none.allreduce(b)
    assert b.float().tolist() == [n * (n + 1) / 2] * 5


def test_allgather_is_rank_major(comm_none):
    r, n = world()
    out = comm_none.allgather(np.full(3, r, dtype=np.float32))
    assert out.shape == (n, 3)
    assert out[:, 0].tolist() == list(range(n))


def test_stats_count_calls_and_bytes(comm_none):
    before = comm_none.stats()["calls"]
    comm_none.allreduce(np.ones(100, dtype=np.float32))
    s = comm_none.stats()
    assert s["calls"] == before + 1
    assert s["input_bytes"] >= 400


def test_bad_arguments_raise_clear_exceptions(comm_none):
    with pytest.raises(TypeError, match="float32, float16 or bfloat16"):
        comm_none.allreduce(np.ones(4, dtype=np.int32))
    with pytest.raises(ValueError, match="op must be 'sum' or 'avg'"):
        comm_none.allreduce(np.ones(4, dtype=np.float32), op="max")
    with pytest.raises(ValueError, match="C-contiguous"):
        comm_none.allreduce(np.ones((4, 4), dtype=np.float32)[:, 1])
    with pytest.raises(ValueError, match="contiguous"):
        comm_none.allreduce(torch.ones(4, 4).t())
    with pytest.raises(TypeError, match="numpy array, a torch tensor"):
        comm_none.allreduce([1.0, 2.0])
    with pytest.raises(ValueError, match="unknown qccl option 'bitz'"):
        qccl.Communicator(bitz=3)
    with pytest.raises(qccl.QcclError, match="QCCL_BITS"):
        qccl.Communicator(bits=12)
    with pytest.raises(TypeError, match="ddp_comm_hook state"):
        qtorch.ddp_comm_hook("not a communicator", None)
    with pytest.raises(TypeError, match="torch.optim.Optimizer"):
        qtorch.DistributedOptimizer("sgd", named_parameters=[])


def test_hook_with_method_none_reproduces_plain_ddp(comm_none):
    plain = train(DDP(make_model()))
    hooked_model = DDP(make_model())
    hooked_model.register_comm_hook(comm_none, qtorch.ddp_comm_hook)
    hooked = train(hooked_model)
    _, n = world()
    if n == 2:
        # a + b is one rounding whichever library adds it, and /2 is exact.
        assert torch.equal(plain, hooked)
    else:
        # gloo and MPI may associate a 4-term sum differently: last-bit
        # differences only (float32 eps 1.2e-7, 4 steps).
        assert torch.allclose(plain, hooked, rtol=1e-5, atol=1e-6)
    assert same_on_every_rank(hooked)


@pytest.mark.parametrize("method", ["qsgdinf", "alq"])
def test_compressed_hook_gives_the_same_model_on_every_rank(method):
    comm = qccl.Communicator(method=method, bits=3, min_compress_bytes=0, timeout_s=60)
    model = DDP(make_model())
    model.register_comm_hook(comm, qtorch.ddp_comm_hook)
    flat = train(model)
    assert same_on_every_rank(flat)
    s = comm.stats()
    assert s["compressed_calls"] > 0 and s["compression_ratio"] > 4
    comm.close()


def test_distributed_optimizer_none_matches_plain_ddp_and_compressed_agrees():
    plain = train(DDP(make_model()))
    for method in ("none", "qsgdinf"):
        comm = qccl.Communicator(method=method, min_compress_bytes=0, timeout_s=60)
        model = make_model()
        opt = qtorch.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1),
                                          named_parameters=model.named_parameters(),
                                          communicator=comm)
        flat = train(model, optimizer=opt)
        opt.close()
        assert same_on_every_rank(flat)
        if method == "none":
            assert torch.allclose(plain, flat, rtol=1e-5, atol=1e-6)
        comm.close()


def test_distributed_optimizer_rejects_bad_named_parameters():
    model = make_model()
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="named_parameters must be"):
        qtorch.DistributedOptimizer(sgd, named_parameters=[])
    other = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="parameters not in the optimizer"):
        qtorch.DistributedOptimizer(sgd, named_parameters=other.named_parameters())


# ---- DistributedOptimizer: overlap with backward, accumulation, unused ----
#
# Integer weights and inputs make every gradient below a small integer, so
# sums over passes and ranks are exact in float32 in any order, and so is
# /2 or /4: with method none the engine's average must equal the float64
# reference bit for bit.

class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(6, 5, bias=False)
        self.head = nn.Linear(5, 3, bias=False)
        self.extra = nn.Linear(5, 3, bias=False)  # used only where use_extra

    def forward(self, x, use_extra=True):
        h = self.body(x)
        return self.head(h) + self.extra(h) if use_extra else self.head(h)


def integer_model(dtype=torch.float32):
    torch.manual_seed(3)  # same on every rank
    model = TwoHeads().to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randint(-2, 3, p.shape))
    return model


def integer_batch(rank, index):
    g = torch.Generator().manual_seed(500 + 1000 * rank + index)
    return torch.randint(-4, 5, (8, 6), generator=g).float()


def uses_extra(rank):
    return rank != 0  # rank 0 never uses `extra`: its hook never fires there


def reference_average_grads(passes, n):
    """float64 average over ranks of each rank's gradients summed over
    `passes` backward passes, every rank's passes replayed here."""
    total = None
    for rank in range(n):
        model = integer_model(torch.float64)
        for i in range(passes):
            model(integer_batch(rank, i).double(), uses_extra(rank)).sum().backward()
        grads = {name: (p.grad if p.grad is not None else torch.zeros_like(p))
                 for name, p in model.named_parameters()}
        total = grads if total is None else {k: total[k] + grads[k] for k in total}
    return {k: v / n for k, v in total.items()}


@pytest.mark.parametrize("passes", [1, 2])
def test_distributed_optimizer_none_averages_gradients_exactly(comm_none, passes):
    r, n = world()
    model = integer_model()
    opt = qtorch.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.25),
                                      named_parameters=model.named_parameters(),
                                      communicator=comm_none, backward_passes_per_step=passes)
    for i in range(passes):
        model(integer_batch(r, i), uses_extra(r)).sum().backward()
    opt.synchronize()
    expected = reference_average_grads(passes, n)
    for name, p in model.named_parameters():
        assert p.grad is not None, name  # `extra` on rank 0 too
        assert torch.equal(p.grad.double(), expected[name]), name
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    opt.step()  # no second reduction after synchronize()
    for name, p in model.named_parameters():
        assert torch.equal(p.detach().double(), before[name].double() - 0.25 * expected[name])
    assert same_on_every_rank(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    opt.close()


def test_distributed_optimizer_enqueues_each_gradient_during_backward(comm_none):
    model = make_model()  # Linear(20, 64) -> ReLU -> Linear(64, 10)
    opt = qtorch.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1),
                                      named_parameters=model.named_parameters(),
                                      communicator=comm_none)
    events = []
    enqueue = comm_none.enqueue_allreduce

    def recording_enqueue(name, buf, **kwargs):
        events.append(name)
        return enqueue(name, buf, **kwargs)

    comm_none.enqueue_allreduce = recording_enqueue
    try:
        for step in range(2):
            events.clear()
            x, y = rank_batch(step)
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            during_backward = list(events)
            opt.step()
            # Every gradient was enqueued by its hook before backward()
            # returned, the last layer's first (autograd reaches it first),
            # and step() only waited.
            assert sorted(during_backward) == sorted(n for n, _ in model.named_parameters())
            assert during_backward.index("2.weight") < during_backward.index("0.weight")
            assert events == during_backward
    finally:
        del comm_none.enqueue_allreduce
        opt.close()
    assert same_on_every_rank(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))


def test_distributed_optimizer_refuses_races_with_its_reductions(comm_none):
    r, _ = world()
    model = integer_model()
    opt = qtorch.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.25),
                                      named_parameters=model.named_parameters(),
                                      communicator=comm_none)
    model(integer_batch(r, 0), uses_extra(r)).sum().backward()
    with pytest.raises(RuntimeError, match="zero_grad.*while gradients are being averaged"):
        opt.zero_grad()
    with pytest.raises(RuntimeError, match="arrived after backward_passes_per_step=1"):
        model(integer_batch(r, 1), uses_extra(r)).sum().backward()
    opt.synchronize()  # drains the first pass on every rank
    # Neither refusal touched a gradient: exactly the first pass's average.
    expected = reference_average_grads(1, world()[1])
    for name, p in model.named_parameters():
        assert torch.equal(p.grad.double(), expected[name]), name
    with pytest.raises(ValueError, match="takes no closure"):
        opt.step(lambda: 0.0)
    opt.zero_grad()
    opt.close()


def test_distributed_optimizer_rejects_bad_backward_passes_per_step():
    model = make_model()
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="backward_passes_per_step must be an integer >= 1"):
            qtorch.DistributedOptimizer(sgd, named_parameters=model.named_parameters(),
                                        backward_passes_per_step=bad)
