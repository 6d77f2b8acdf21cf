"""qccl over an initialised torch.distributed process group (docs/python.md
"torch.distributed groups"): a Python transport for
qccl.Communicator.from_transport whose operations are torch.distributed
collectives on CPU tensors, so a job launched with torchrun (no mpirun)
can use qccl. Public entry points: qccl.torch.init and
qccl.torch.communicator_from_group.
"""
import numpy as np
import torch
import torch.distributed as dist

import qccl

# Backends whose all_to_all_single takes CPU tensors with split sizes; with
# any other, alltoallv falls back to qccl's allgatherv-based version.
_ALLTOALL_BACKENDS = ("gloo", "mpi")

_TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _bytes_tensor(view):
    """A uint8 tensor sharing the memory of writable memoryview `view`."""
    if len(view) == 0:
        return torch.empty(0, dtype=torch.uint8)
    return torch.frombuffer(view, dtype=torch.uint8)


def _copy_in(dst, view):
    """Copies read-only memoryview `view` into the start of uint8 tensor `dst`
    (through numpy: torch warns on read-only buffers)."""
    if len(view):
        dst.numpy()[:len(view)] = np.frombuffer(view, dtype=np.uint8)


class GroupTransport:
    """The qccl transport protocol over `group` (host memory, CPU tensors).

    Collectives run on `group` itself, in the order the caller makes them, so
    they interleave correctly with the caller's own collectives on the group
    as long as every rank makes them in the same order (one thread); the
    engine gets its own group through duplicate()."""

    def __init__(self, group, ranks):
        self.group = group
        self.rank = dist.get_rank(group)
        self.size = dist.get_world_size(group)
        self._ranks = ranks  # global ranks of the group, for duplicate()
        self._backend = dist.get_backend(group)
        if self._backend not in _ALLTOALL_BACKENDS:
            self.alltoallv = None  # qccl falls back to allgatherv

    def allgatherv(self, send, recv, recv_bytes, recv_offsets):
        # all_gather needs equal sizes: every rank pads to the largest piece
        # (at least one byte: gloo fails on empty tensors).
        width = max(max(recv_bytes), 1)
        mine = torch.empty(width, dtype=torch.uint8)
        _copy_in(mine, send)
        gathered = [torch.empty(width, dtype=torch.uint8) for _ in range(self.size)]
        dist.all_gather(gathered, mine, group=self.group)
        out = _bytes_tensor(recv)
        for piece, nbytes, offset in zip(gathered, recv_bytes, recv_offsets):
            if nbytes:
                out[offset:offset + nbytes] = piece[:nbytes]

    def alltoallv(self, send, send_bytes, send_offsets, recv, recv_bytes, recv_offsets):
        source = np.frombuffer(send, dtype=np.uint8)
        packed = torch.empty(sum(send_bytes), dtype=torch.uint8)
        packed_np = packed.numpy()
        at = 0
        for nbytes, offset in zip(send_bytes, send_offsets):
            packed_np[at:at + nbytes] = source[offset:offset + nbytes]
            at += nbytes
        received = torch.empty(sum(recv_bytes), dtype=torch.uint8)
        dist.all_to_all_single(received, packed, output_split_sizes=list(recv_bytes),
                               input_split_sizes=list(send_bytes), group=self.group)
        out = _bytes_tensor(recv)
        at = 0
        for nbytes, offset in zip(recv_bytes, recv_offsets):
            if nbytes:
                out[offset:offset + nbytes] = received[at:at + nbytes]
            at += nbytes

    def allreduce_sum(self, values):
        if len(values):
            dist.all_reduce(torch.frombuffer(values, dtype=torch.float64), group=self.group)

    def allreduce_passthrough(self, buf, dtype):
        """In place: torch's own all_reduce on a view of the user's buffer, so
        method none equals dist.all_reduce bit for bit. bfloat16 is summed in
        float32 and rounded back (gloo has no bfloat16 sum)."""
        if not len(buf):
            return
        tensor = torch.frombuffer(buf, dtype=_TORCH_DTYPES[dtype])
        if dtype == "bfloat16":
            widened = tensor.float()
            dist.all_reduce(widened, group=self.group)
            tensor.copy_(widened)  # round to nearest even
        else:
            dist.all_reduce(tensor, group=self.group)

    def barrier(self):
        dist.barrier(group=self.group)

    def duplicate(self):
        """A transport over a new group of the same ranks (for the engine's
        thread). torch's new_group is collective over the *default* group:
        every process of the job must call it, members or not, which qccl
        cannot arrange for a subgroup."""
        if self.size != dist.get_world_size():
            raise RuntimeError(
                f"the qccl engine needs a second process group over this group's ranks, and "
                f"torch.distributed.new_group must be called by every process of the default "
                f"group ({dist.get_world_size()}), not only this group's {self.size}: start "
                f"the engine (DistributedOptimizer) on a communicator over the default group")
        return GroupTransport(dist.new_group(ranks=self._ranks, backend=self._backend),
                              self._ranks)


def _group_ranks(group):
    """Global ranks of `group`, in group-rank order."""
    if group is dist.group.WORLD or group is None:
        return list(range(dist.get_world_size()))
    return list(dist.get_process_group_ranks(group))


def communicator_from_group(group=None, **options):
    """A qccl.Communicator over an initialised torch.distributed process group
    (None: the default group), e.g. after torchrun + init_process_group: no
    MPI. Collective over the group's members; `options` as for
    qccl.Communicator. The group must be gloo or mpi (qccl's transport moves
    host memory; an NCCL group cannot)."""
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError("torch.distributed is not initialised: call "
                           "torch.distributed.init_process_group() first (or "
                           "qccl.torch.init_process_group_from_mpi() under mpirun)")
    if group is None:
        group = dist.group.WORLD
    # What new_group returns on processes outside the group.
    if group is dist.GroupMember.NON_GROUP_MEMBER or (
            isinstance(group, dist.ProcessGroup) and dist.get_rank(group) < 0):
        raise ValueError("this process is not a member of the group: only its members may "
                         "create a qccl communicator over it")
    if not isinstance(group, dist.ProcessGroup):
        raise TypeError(f"group must be a torch.distributed ProcessGroup or None (the default "
                        f"group), got {type(group).__name__}")
    backend = dist.get_backend(group)
    if backend == "nccl":
        raise ValueError("the group uses the nccl backend, which needs CUDA tensors; qccl's "
                         "torch.distributed transport moves host memory: pass a gloo group "
                         "(torch.distributed.new_group(backend='gloo'))")
    return qccl.Communicator.from_transport(GroupTransport(group, _group_ranks(group)), **options)


def init(group=None, **options):
    """Like qccl.init, over a torch.distributed process group instead of MPI:
    creates the default communicator (qccl.allreduce, the DDP hook with state
    None, DistributedOptimizer) with communicator_from_group."""
    if qccl.is_initialized():
        raise qccl.QcclInvalidUsageError(
            "qccl.init() was already called; call qccl.shutdown() first")
    return qccl._set_default(communicator_from_group(group, **options))
