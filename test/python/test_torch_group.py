"""qccl over a torch.distributed process group (qccl.torch.init /
communicator_from_group), under mpirun at 2 and 4 ranks: torch.distributed
(gloo) is initialised from the MPI environment, but qccl's communicators
here move every byte through torch.distributed, not MPI.

Every rank runs the same tests in the same order (they are collective).
"""
import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

import qccl
import qccl.torch as qtorch
from ddp_helpers import make_model, same_on_every_rank, train, world


@pytest.fixture(scope="module", autouse=True)
def process_group():
    qtorch.init_process_group_from_mpi("gloo")
    yield
    dist.barrier()


@pytest.fixture
def default_none():
    """qccl.torch.init over the default group, method none."""
    comm = qtorch.init(method="none", timeout_s=60)
    yield comm
    qccl.shutdown()


def rank_tensor(count, dtype=torch.float32, seed=0):
    """Values of this rank spread over 2^-8..2^8, so that the order in which
    ranks are added shows in the bits."""
    r, _ = world()
    g = torch.Generator().manual_seed(100 * r + seed)
    scale = torch.pow(2.0, torch.randint(-8, 9, (count,), generator=g).float())
    return (torch.randn(count, generator=g) * scale).to(dtype)


def test_init_sets_the_default_communicator_over_the_group(default_none):
    r, n = world()
    assert qccl.is_initialized() and qccl.communicator() is default_none
    assert (qccl.rank(), qccl.size()) == (r, n)
    with pytest.raises(qccl.QcclError, match="already called"):
        qtorch.init(method="none")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_method_none_equals_torch_all_reduce_bit_for_bit(default_none, dtype):
    for count in (1, 1000, 300_000):
        mine = rank_tensor(count, dtype, seed=count)
        expected = mine.clone()
        dist.all_reduce(expected)
        qccl.allreduce(mine)
        assert torch.equal(mine, expected), (dtype, count)


def test_method_none_bfloat16_is_the_float32_sum_rounded_once(default_none):
    mine = rank_tensor(5000, torch.bfloat16)
    widened = mine.float()
    dist.all_reduce(widened)
    qccl.allreduce(mine)
    assert torch.equal(mine, widened.to(torch.bfloat16))


def test_numpy_buffers_and_allgather_over_the_group(default_none):
    r, n = world()
    a = np.arange(100, dtype=np.float32) * (r + 1)
    qccl.allreduce(a)
    assert np.array_equal(a, np.arange(100, dtype=np.float32) * (n * (n + 1) / 2))
    out = qccl.allgather(np.full(3, r, dtype=np.float32))
    assert out[:, 0].tolist() == list(range(n))


@pytest.mark.parametrize("method,algo", [("alq", "allgather"), ("alq", "sra"),
                                         ("qsgdinf", "sra")])
def test_compressed_results_are_identical_on_every_rank(method, algo):
    comm = qtorch.communicator_from_group(method=method, algo=algo, bits=3,
                                          min_compress_bytes=0, update_steps="0,1",
                                          timeout_s=60)
    for step in range(3):
        t = rank_tensor(20_000, seed=step)
        comm.allreduce(t, op="avg")
        comm.mark_step()
        assert same_on_every_rank(t), (method, algo, step)
    s = comm.stats()
    assert s["compressed_calls"] == 3 and s["compression_ratio"] > 4
    comm.close()


def test_communicator_over_a_subgroup():
    r, n = world()
    members = list(range(max(n - 1, 1)))
    sub = dist.new_group(members)  # every process takes part, as torch requires
    if r not in members:
        with pytest.raises(ValueError, match="not a member of the group"):
            qtorch.communicator_from_group(sub)
        return
    comm = qtorch.communicator_from_group(sub, method="none", timeout_s=60)
    assert (comm.rank(), comm.size()) == (members.index(r), len(members))
    mine = rank_tensor(777)
    expected = mine.clone()
    dist.all_reduce(expected, group=sub)
    comm.allreduce(mine)
    assert torch.equal(mine, expected)
    if len(members) < n:
        # The engine would need a torch.distributed.new_group that the
        # processes outside the subgroup never call.
        with pytest.raises(qccl.QcclError, match="new_group must be called by every process"):
            comm.start_engine()
    comm.close()


def test_ddp_hook_with_method_none_reproduces_plain_ddp_exactly(default_none):
    plain = train(DDP(make_model()))
    hooked_model = DDP(make_model())
    hooked_model.register_comm_hook(None, qtorch.ddp_comm_hook)  # the default communicator
    hooked = train(hooked_model)
    # The same gloo all_reduce sums the same bucket; DDP divides by N before
    # it and qccl multiplies by 1/N after, which is the same for N = 2, 4.
    assert torch.equal(plain, hooked)


def test_ddp_hook_with_alq_trains_identically_on_every_rank():
    comm = qtorch.communicator_from_group(method="alq", bits=3, min_compress_bytes=0,
                                          timeout_s=60)
    model = DDP(make_model())
    model.register_comm_hook(comm, qtorch.ddp_comm_hook)
    flat = train(model)
    assert same_on_every_rank(flat)
    assert comm.stats()["compressed_calls"] > 0
    comm.close()


def test_distributed_optimizer_over_the_group_runs_the_engine_on_a_new_group():
    plain = train(DDP(make_model()))
    for method in ("none", "alq"):
        comm = qtorch.communicator_from_group(method=method, min_compress_bytes=0,
                                              timeout_s=60)
        model = make_model()
        opt = qtorch.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1),
                                          named_parameters=model.named_parameters(),
                                          communicator=comm)
        flat = train(model, optimizer=opt)
        # Direct calls keep working beside the engine (its own group).
        t = torch.ones(10)
        comm.allreduce(t)
        assert torch.equal(t, torch.full((10,), float(dist.get_world_size())))
        opt.close()
        assert same_on_every_rank(flat)
        if method == "none":
            assert torch.allclose(plain, flat, rtol=1e-5, atol=1e-6)
        comm.close()


def test_bad_groups_raise_clear_exceptions():
    with pytest.raises(TypeError, match="group must be a torch.distributed ProcessGroup"):
        qtorch.communicator_from_group("not a group")
    with pytest.raises(TypeError, match="group must be a torch.distributed ProcessGroup"):
        qtorch.init(group=object())
    assert not qccl.is_initialized()
    with pytest.raises(ValueError, match="unknown qccl option 'bitz'"):
        qtorch.communicator_from_group(bitz=3)
    # A bad setting fails on every rank (agreed through the group).
    with pytest.raises(qccl.QcclError, match="QCCL_BITS"):
        qtorch.communicator_from_group(bits=12)
