"""qccl for PyTorch (docs/design.md §9, docs/python.md).

* ``init_process_group_from_mpi()``: torch.distributed (gloo) from the
  mpirun environment, so DDP and qccl see the same ranks.
* ``init(group=None, **options)`` / ``communicator_from_group(group)``:
  qccl over an initialised torch.distributed process group (torchrun, no
  MPI); the transport is in qccl/_torch_group.py.
* ``ddp_comm_hook``: for ``DistributedDataParallel.register_comm_hook(state,
  hook)``. The bucket is already fused by DDP; qccl compresses it, averages
  it across ranks and returns a completed ``torch.futures.Future``.
* ``DistributedOptimizer(optimizer, named_parameters=...)``: Horovod-style;
  a hook per parameter enqueues its gradient by name on the qccl engine as
  soon as backward has accumulated it (overlapping the rest of backward);
  ``step()`` waits for them, then steps the wrapped optimizer.
"""
import os
import socket

import torch
import torch.distributed as dist

import qccl
from . import _qccl
from ._torch_group import communicator_from_group, init

__all__ = ["init_process_group_from_mpi", "init", "communicator_from_group", "ddp_comm_hook",
           "DistributedOptimizer"]


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
        comm.mark_step()  # docs/design.md §7: one step per backward pass
    future = torch.futures.Future()
    future.set_result(tensor)
    return future


class DistributedOptimizer:
    """Wraps `optimizer`; gradients are averaged by the qccl engine before
    each step, Horovod-style: a hook per parameter enqueues its gradient as
    soon as autograd has accumulated it, so communication overlaps the rest
    of the backward pass, and step() waits for them. Parameters with dim()
    <= 1 (biases, norms) stay uncompressed unless compress_1d=True. The
    engine is collective: construct on every rank.

    backward_passes_per_step=k: gradients are accumulated locally over k
    backward passes and enqueued on the k-th (the average over ranks of the
    local sums; scale the loss by 1/k for a mean). A parameter whose hook
    did not fire by step() (unused in this step's graph on this rank) is
    enqueued by step(), with zeros if it has no gradient, so every rank
    reduces the same names; it then holds the average (zeros if no rank
    used it), as in Horovod. synchronize() waits without stepping (e.g. to
    clip the averaged gradients); a step() right after it does not reduce
    again. zero_grad() while gradients are in flight (after backward,
    before step) raises RuntimeError, and so does a (k+1)-th backward pass
    before step(), before it touches any gradient."""

    def __init__(self, optimizer, named_parameters, communicator=None, compress_1d=False,
                 backward_passes_per_step=1):
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
        passes = backward_passes_per_step
        if not isinstance(passes, int) or isinstance(passes, bool) or passes < 1:
            raise ValueError(f"backward_passes_per_step must be an integer >= 1, "
                             f"got {backward_passes_per_step!r}")
        self._optimizer = optimizer
        self._named = [(n, p) for n, p in named if p.requires_grad]
        self._compress_1d = compress_1d
        self._passes_per_step = backward_passes_per_step
        self._passes_left = {n: backward_passes_per_step for n, _ in self._named}
        self._handles = {}  # name -> qccl.EngineHandle, enqueued since the last step
        self._synchronized = False  # synchronize() ran and no gradient was enqueued since
        self._comm = communicator if communicator is not None else qccl.communicator()
        # An engine already running (another optimizer's) is shared and left
        # running by close(); starting it twice would be QcclInvalidUsageError.
        self._owns_engine = not self._comm.engine_running()
        if self._owns_engine:
            self._comm.start_engine()
        self._hook_handles = []
        self._grad_accumulators = []  # the pre-2.1 hooks live on these nodes: keep them
        for name, p in self._named:
            self._register_hook(name, p)

    def _register_hook(self, name, p):
        # Before accumulation (a gradient for p arrives): refuse a pass too many
        # while p.grad is still untouched.
        self._hook_handles.append(p.register_hook(self._make_guard(name)))
        hook = self._make_hook(name, p)
        if hasattr(p, "register_post_accumulate_grad_hook"):  # torch >= 2.1
            self._hook_handles.append(p.register_post_accumulate_grad_hook(lambda _: hook()))
            return
        # Older torch: the AccumulateGrad node of `p` runs once per backward
        # pass, after the gradient is summed into p.grad; a hook on it fires
        # then. expand_as builds a throwaway graph to reach that node.
        accumulator = p.expand_as(p).grad_fn.next_functions[0][0]
        self._hook_handles.append(accumulator.register_hook(lambda *_: hook()))
        self._grad_accumulators.append(accumulator)

    def _make_guard(self, name):
        def guard(grad):
            if self._passes_left[name] <= 0:
                raise RuntimeError(
                    f"a gradient for '{name}' arrived after backward_passes_per_step="
                    f"{self._passes_per_step} backward pass(es) without step(): call step() "
                    f"(or synchronize()) after every {self._passes_per_step}, or raise "
                    f"backward_passes_per_step")
            return None  # the gradient itself is unchanged
        return guard

    def _make_hook(self, name, p):
        def hook():
            self._passes_left[name] -= 1
            if self._passes_left[name] == 0:
                self._handles[name] = self._enqueue(name, p)
                self._synchronized = False
        return hook

    def _enqueue(self, name, p):
        if p.grad is None:
            p.grad = torch.zeros_like(p, memory_format=torch.contiguous_format)
        elif not p.grad.is_contiguous():
            p.grad = p.grad.contiguous()
        compress = self._compress_1d or p.dim() > 1
        return self._comm.enqueue_allreduce(name, p.grad, op="avg", compress=compress)

    def synchronize(self):
        """Enqueues the gradients whose hooks did not fire (same names on
        every rank), then waits until every gradient is averaged."""
        for name, p in self._named:
            if name not in self._handles:
                self._handles[name] = self._enqueue(name, p)
        handles, self._handles = self._handles, {}
        self._passes_left = {n: self._passes_per_step for n, _ in self._named}
        error = None
        for h in handles.values():  # wait for all, even after a failure
            try:
                h.wait()
            except qccl.QcclError as e:
                error = error or e
        self._synchronized = True
        if error is not None:
            raise error

    def step(self, closure=None):
        if closure is not None:
            # The closure's backward pass would enqueue gradients that the
            # wrapped optimizer then reads while they are being reduced.
            raise ValueError("DistributedOptimizer.step() takes no closure: run the forward and "
                             "backward passes before step()")
        if not self._synchronized:
            self.synchronize()
        self._synchronized = False
        return self._optimizer.step()

    def zero_grad(self, set_to_none=False):
        if self._handles:
            raise RuntimeError(
                "zero_grad() was called while gradients are being averaged (after backward, "
                "before step()): the engine reduces them in place. Call step() or "
                "synchronize() first")
        return self._optimizer.zero_grad(set_to_none=set_to_none)

    def close(self):
        """Removes the hooks and stops the engine (collective). Call after
        the last step(): gradients still in flight are waited for."""
        if self._handles:
            self.synchronize()
        for h in self._hook_handles:
            h.remove()
        self._hook_handles, self._grad_accumulators = [], []
        if self._owns_engine:  # once: a second close() does nothing
            self._owns_engine = False
            self._comm.stop_engine()

    def __getattr__(self, item):
        return getattr(self._optimizer, item)
