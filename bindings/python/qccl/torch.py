"""qccl for PyTorch (DESIGN.md §9, docs/python.md).

* ``init_process_group_from_mpi()``: torch.distributed (gloo) from the
  mpirun environment, so DDP and qccl see the same ranks.
* ``ddp_comm_hook``: for ``DistributedDataParallel.register_comm_hook(state,
  hook)``. The bucket is already fused by DDP; qccl compresses it, averages
  it across ranks and returns a completed ``torch.futures.Future``.
* ``DistributedOptimizer(optimizer, named_parameters=...)``: Horovod-style;
  ``step()`` enqueues every gradient by name on the qccl engine (in any
  order on each rank), waits, then steps the wrapped optimizer.
"""
import os
import socket

import torch
import torch.distributed as dist

import qccl
from . import _qccl

__all__ = ["init_process_group_from_mpi", "ddp_comm_hook", "DistributedOptimizer"]


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_process_group_from_mpi(backend="gloo", timeout=None):
    """Initialises torch.distributed over the MPI world (rank 0 picks a free
    port and broadcasts it). MASTER_ADDR/MASTER_PORT in the environment win."""
    if dist.is_initialized():
        return
    rank, size = _qccl.mpi_world()
    addr = os.environ.get("MASTER_ADDR", "127.0.0.1")
    port = int(os.environ.get("MASTER_PORT", "0")) or _qccl.mpi_broadcast_int(
        _free_port() if rank == 0 else 0, 0)
    kwargs = {} if timeout is None else {"timeout": timeout}
    dist.init_process_group(backend, init_method=f"tcp://{addr}:{port}", rank=rank,
                            world_size=size, **kwargs)


def _bucket_tensor(bucket):
    # torch >= 1.12: buffer(); older releases: get_tensor().
    return bucket.buffer() if hasattr(bucket, "buffer") else bucket.get_tensor()


def ddp_comm_hook(state, bucket):
    """DDP communication hook. `state`: a qccl.Communicator, or None for the
    default one (qccl.init()). Averages the bucket like DDP's own allreduce."""
    comm = state if state is not None else qccl.communicator()
    if not isinstance(comm, qccl.Communicator):
        raise TypeError(f"ddp_comm_hook state must be a qccl.Communicator or None, "
                        f"got {type(comm).__name__}")
    tensor = _bucket_tensor(bucket)
    comm.allreduce(tensor, op="avg")
    if bucket.is_last():
        comm.mark_step()  # DESIGN.md §7: one step per backward pass
    future = torch.futures.Future()
    future.set_result(tensor)
    return future


class DistributedOptimizer:
    """Wraps `optimizer`; gradients are averaged by the qccl engine before
    each step. Parameters with dim() <= 1 (biases, norms) stay uncompressed
    unless compress_1d=True. The engine is collective: construct on every rank."""

    def __init__(self, optimizer, named_parameters, communicator=None, compress_1d=False):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, "
                            f"got {type(optimizer).__name__}")
        named = list(named_parameters)
        if not named or not all(isinstance(n, str) and isinstance(p, torch.Tensor)
                                for n, p in named):
            raise ValueError("named_parameters must be a non-empty iterable of (name, tensor), "
                             "e.g. model.named_parameters()")
        names = [n for n, _ in named]
        if len(set(names)) != len(names):
            raise ValueError("named_parameters has duplicate names")
        in_optimizer = {id(p) for g in optimizer.param_groups for p in g["params"]}
        missing = [n for n, p in named if id(p) not in in_optimizer]
        if missing:
            raise ValueError(f"parameters not in the optimizer: {missing[:3]}")
        self._optimizer = optimizer
        self._named = named
        self._compress_1d = compress_1d
        self._comm = communicator if communicator is not None else qccl.communicator()
        self._comm.start_engine()

    def synchronize(self):
        """Averages every gradient across ranks through the engine."""
        handles = []
        for name, p in self._named:
            if p.grad is None:
                continue
            if not p.grad.is_contiguous():
                p.grad = p.grad.contiguous()
            compress = self._compress_1d or p.dim() > 1
            handles.append(self._comm.enqueue_allreduce(name, p.grad, op="avg",
                                                        compress=compress))
        for h in handles:
            h.wait()

    def step(self, closure=None):
        self.synchronize()
        return self._optimizer.step(closure)

    def zero_grad(self, set_to_none=False):
        return self._optimizer.zero_grad(set_to_none=set_to_none)

    def close(self):
        self._comm.stop_engine()

    def __getattr__(self, item):
        return getattr(self._optimizer, item)
