"""qccl over torch.distributed WITHOUT mpirun: two processes started by
torch.multiprocessing, a gloo group initialised from a file, and
qccl.torch.init over it. Proves that this path needs no MPI (qccl never
initialises it). Run by ctest `python_torch_spawn`, not under mpirun
(skipped there: every MPI rank would spawn its own pair).
"""
import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

UNDER_MPIRUN = any(v in os.environ for v in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"))

pytestmark = pytest.mark.skipif(UNDER_MPIRUN, reason="spawns its own processes; run without "
                                "mpirun (ctest python_torch_spawn)")

WORLD = 2


def _worker(rank, init_file):
    import qccl
    import qccl.torch as qtorch
    from qccl import _qccl

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD)
    comm = qtorch.init(method="none", timeout_s=60)
    assert (comm.rank(), comm.size()) == (rank, WORLD)

    g = torch.Generator().manual_seed(rank)
    mine = torch.randn(10_000, generator=g) * 1000
    expected = mine.clone()
    dist.all_reduce(expected)
    qccl.allreduce(mine)
    assert torch.equal(mine, expected), "method none differs from dist.all_reduce"

    alq = qtorch.communicator_from_group(method="alq", algo="sra", min_compress_bytes=0,
                                         timeout_s=60)
    t = torch.randn(20_000, generator=g)
    alq.allreduce(t, op="avg")
    gathered = [torch.empty_like(t) for _ in range(WORLD)]
    dist.all_gather(gathered, t)
    assert torch.equal(gathered[0], gathered[1]), "alq results differ between ranks"
    assert alq.stats()["compressed_calls"] == 1

    # The engine, on a group of its own (new_group through duplicate()).
    alq.start_engine()
    w = torch.full((100,), float(rank + 1))
    alq.enqueue_allreduce("w", w, op="sum").wait()
    assert torch.equal(w, torch.full((100,), 3.0))  # small: sent uncompressed
    alq.stop_engine()
    alq.close()

    assert not _qccl.mpi_initialized(), "qccl initialised MPI on the torch.distributed path"
    qccl.shutdown()
    dist.destroy_process_group()


def test_qccl_over_torch_distributed_without_mpi():
    with tempfile.TemporaryDirectory() as tmp:
        # A failing worker raises here with its traceback.
        mp.spawn(_worker, args=(os.path.join(tmp, "rendezvous"),), nprocs=WORLD, join=True)
