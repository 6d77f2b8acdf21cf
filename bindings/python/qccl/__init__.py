"""qccl: quantized collective communication (docs/design.md §9, docs/python.md).

    import qccl
    qccl.init(method="alq", bits=3)      # MPI_COMM_WORLD (or comm=mpi4py comm)
    qccl.allreduce(array_or_tensor, op="avg")   # in place
    qccl.stats()

Buffers: numpy arrays (and anything with __array_interface__), torch CPU
tensors and any object speaking DLPack (__dlpack__ + __dlpack_device__:
CuPy, JAX, ...), contiguous, writable, float32 / float16 / bfloat16. What
cannot be reduced in place (numpy scalars, read-only or strided arrays,
sparse tensors, ...) is refused with an exception saying why. Device (CUDA)
buffers need the CUDA build and are refused here with a clear error.

Errors from the C library raise QcclError or its subclass for the result
code (QcclInvalidArgumentError, QcclInvalidUsageError, ...); a closed
communicator raises QcclClosedError (docs/python.md "Errors").
"""
import atexit
import sys
import weakref

from . import _qccl
from ._qccl import (QcclClosedError, QcclCorruptPayloadError, QcclCudaError, QcclError,
                    QcclInternalError, QcclInvalidArgumentError, QcclInvalidUsageError,
                    QcclRemoteError, QcclSystemError, QcclTimeoutError, QcclTransportError)

__all__ = ["QcclError", "QcclInvalidArgumentError", "QcclInvalidUsageError", "QcclClosedError",
           "QcclTimeoutError", "QcclTransportError", "QcclCorruptPayloadError", "QcclRemoteError",
           "QcclSystemError", "QcclCudaError", "QcclInternalError", "init", "shutdown",
           "is_initialized", "rank", "size", "allreduce", "allgather", "stats", "mark_step",
           "set_learning_rate", "communicator", "Communicator"]

_OPS = {"sum": 0, "avg": 1}
_default = None
_live = weakref.WeakSet()  # closed at exit, before MPI_Finalize


@atexit.register
def _close_everything():
    for c in list(_live):
        c.close()
    _qccl.mpi_finalize_if_initialized_here()


def _dtype_code(dtype_name):
    codes = {"float32": 0, "float16": 1, "bfloat16": 2}
    if dtype_name not in codes:
        raise TypeError(f"qccl reduces float32, float16 or bfloat16 buffers, got {dtype_name}")
    return codes[dtype_name]


_DLPACK_DEVICE_CUDA = 2
_DLPACK_DEVICE_ROCM = 10


def _has(buf, name):
    """hasattr that reads a property raising anything but AttributeError
    (torch's __cuda_array_interface__ on a sparse CSR tensor raises
    RuntimeError) as absent."""
    try:
        return hasattr(buf, name)
    except Exception:
        return False


def _speaks_dlpack(buf):
    return _has(buf, "__dlpack__") and _has(buf, "__dlpack_device__")


def _dlpack_buffer(buf):
    """The native DLPackBuffer of `buf` (owns the capsule's tensor until
    release()). Asks for a versioned (DLPack 1.0) capsule, which can say
    read-only or copied, and falls back to the legacy call."""
    device_type, _ = buf.__dlpack_device__()
    # Device memory: qccl's calls run on the legacy default stream (1).
    kwargs = {"stream": 1} if device_type in (_DLPACK_DEVICE_CUDA, _DLPACK_DEVICE_ROCM) else {}
    try:
        try:
            capsule = buf.__dlpack__(max_version=(1, 0), **kwargs)
        except TypeError:  # producers before DLPack 1.0 take no max_version
            capsule = buf.__dlpack__(**kwargs)
    except BufferError as e:  # e.g. numpy refuses read-only arrays
        raise ValueError(f"the {type(buf).__name__} cannot be exported through DLPack: {e} "
                         f"(qccl reduces in place: the buffer must be writable)") from e
    return _qccl.DLPackBuffer(capsule)


def _refuse_numpy_scalar(buf):
    # A numpy scalar's __array_interface__ points into a temporary array
    # that is freed before qccl would write the result into it.
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(buf, numpy.generic):
        raise TypeError(f"a numpy scalar ({type(buf).__name__}) is immutable: qccl reduces in "
                        f"place and cannot write into it; pass an array, e.g. numpy.array([x])")


def _check_torch_tensor(t):
    """Refuses torch tensors that a write through data_ptr() would not
    reduce in place correctly (the dtype is checked by the caller)."""
    layout = str(t.layout).replace("torch.", "")
    if layout != "strided":
        raise ValueError(f"qccl reduces dense tensors in place, got a {layout} tensor "
                         f"(reduce a dense copy: .to_dense())")
    device = t.device.type
    if device != "cpu":
        raise ValueError(f"qccl cannot reduce a tensor on the '{device}' device; pass a CPU "
                         f"tensor (or a CUDA one with the CUDA build)")
    if not t.is_contiguous():
        raise ValueError("the torch tensor must be contiguous (call .contiguous())")
    if (hasattr(t, "is_neg") and t.is_neg()) or (hasattr(t, "is_conj") and t.is_conj()):
        raise ValueError("the torch tensor is a lazily negated or conjugated view: its memory "
                         "does not hold its values (call .resolve_neg() / .resolve_conj())")
    torch = sys.modules.get("torch")
    if t.requires_grad and (torch is None or torch.is_grad_enabled()):
        # As torch refuses in-place operations on leaves that require grad.
        raise ValueError("the torch tensor requires grad: qccl writes into it in place, "
                         "behind autograd's back; reduce tensor.detach() (the same memory) "
                         "or call under torch.no_grad()")


def _describe(buf):
    """(pointer, element count, dtype code, owner) of a writable contiguous
    buffer. `owner` is None or a DLPack buffer to keep alive while the
    pointer is in use and release() after (_released)."""
    _refuse_numpy_scalar(buf)
    is_torch = _has(buf, "data_ptr") and _has(buf, "is_contiguous")
    on_device = _has(buf, "__cuda_array_interface__") or (
        _has(buf, "is_cuda") and getattr(buf, "is_cuda"))
    if _speaks_dlpack(buf) and (on_device or not (is_torch or _has(buf, "__array_interface__"))):
        # CuPy, JAX, torch CUDA tensors and other producers; the native side
        # refuses device memory in builds without CUDA.
        owner = _dlpack_buffer(buf)
        return owner.pointer, owner.count, owner.dtype, owner
    if on_device:
        raise ValueError("this qccl build supports host (CPU) buffers only; "
                         "device tensors need the CUDA build")
    if is_torch:
        name = str(buf.dtype).replace("torch.", "")
        code = _dtype_code(name)
        _check_torch_tensor(buf)
        return buf.data_ptr(), buf.numel(), code, None
    if _has(buf, "__array_interface__"):
        ai = buf.__array_interface__
        if ai.get("strides") is not None:
            raise ValueError("the array must be C-contiguous (numpy.ascontiguousarray)")
        data = ai.get("data")
        if not (isinstance(data, tuple) and len(data) == 2):
            raise TypeError(f"__array_interface__['data'] must be a (pointer, read_only) "
                            f"tuple, got {type(data).__name__}")
        ptr, readonly = data
        if readonly:
            raise ValueError("the array is read-only; qccl reduces in place")
        typestr = ai["typestr"]
        names = {"<f4": "float32", "<f2": "float16", "<V2": "bfloat16"}
        if typestr not in names:
            raise TypeError(f"qccl reduces float32, float16 or bfloat16 buffers, got {typestr}")
        count = 1
        for d in ai["shape"]:
            count *= d
        return ptr, count, _dtype_code(names[typestr]), None
    raise TypeError(f"qccl needs a numpy array, a torch tensor or an object with "
                    f"__array_interface__ or __dlpack__, got {type(buf).__name__}")


class _released:
    """`with _released(owner):` releases a DLPack owner (if any) at exit."""

    def __init__(self, *owners):
        self._owners = owners

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for owner in self._owners:
            if owner is not None:
                owner.release()
        return False


class EngineHandle:
    """Completion of an enqueued tensor: wait() returns the reduced buffer
    (raises qccl.QcclError on failure) and done(). Holds the buffer, and its
    DLPack export until wait(). The communicator holds them too until the
    engine completes the tensor, so dropping both the buffer and the handle
    is safe (docs/python.md "Buffer lifetime")."""

    def __init__(self, native, buf, owner):
        self._native = native
        self._buf = buf
        self._owner = owner

    def done(self):
        return self._native.done()

    def wait(self):
        try:
            self._native.wait()
        finally:
            if self._owner is not None:
                self._owner.release()
                self._owner = None
        return self._buf


def _op_code(op):
    if op not in _OPS:
        raise ValueError(f"op must be 'sum' or 'avg', got {op!r}")
    return _OPS[op]


def _string_options(options):
    """Keyword options as the strings the QCCL_* variables take (None: unset)."""
    opts = {}
    for key, value in options.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = int(value)
        opts[key] = str(value)
    return opts


class Communicator:
    """A qccl communicator over an MPI communicator (or, through
    from_transport, over a Python transport such as qccl.torch's process
    groups); keyword options are the QCCL_* settings in lower case
    (method="trn", bits=2, bucket_size=512, ...)."""

    def __init__(self, comm=None, **options):
        self._native = _qccl.Communicator(comm, _string_options(options))
        _live.add(self)

    @classmethod
    def from_transport(cls, transport, **options):
        """A communicator whose bytes move through `transport`, an object with
        `rank`, `size` and allgatherv(send, recv, recv_bytes, recv_offsets)
        and optionally alltoallv, allreduce_sum, allreduce_passthrough,
        barrier and duplicate (docs/python.md "Bring your own transport").
        Collective over the transport's ranks; needs no MPI."""
        self = cls.__new__(cls)
        self._native = _qccl.Communicator.over_transport(transport, _string_options(options))
        _live.add(self)
        return self

    def rank(self):
        return self._native.rank()

    def size(self):
        return self._native.size()

    def allreduce(self, buf, op="sum"):
        """In-place allreduce of `buf`; returns `buf`."""
        code = _op_code(op)
        ptr, count, dtype, owner = _describe(buf)
        with _released(owner):
            self._native.allreduce(ptr, ptr, count, dtype, code)
        return buf

    def allgather(self, buf, out=None):
        """Gathers `buf` from every rank: returns (or fills) an array/tensor of
        shape (size, *buf.shape), rank-major."""
        ptr, count, dtype, owner = _describe(buf)
        with _released(owner):
            if out is None:
                if owner is not None:
                    raise ValueError("allgather of a DLPack buffer needs `out` (a buffer of "
                                     "size() * its elements)")
                n = self.size()
                if hasattr(buf, "new_empty"):
                    out = buf.new_empty((n,) + tuple(buf.shape))
                else:
                    import numpy as np
                    out = np.empty((n,) + tuple(buf.shape), dtype=buf.dtype)
            optr, ocount, odtype, oowner = _describe(out)
            with _released(oowner):
                if odtype != dtype or ocount != count * self.size():
                    raise ValueError(f"out must hold size()*{count} elements of the same "
                                     f"dtype, got {ocount}")
                self._native.allgather(ptr, optr, count, dtype)
        return out

    def stats(self, engine=False):
        return self._native.stats(engine)

    def mark_step(self):
        self._native.mark_step()

    def set_learning_rate(self, lr):
        self._native.set_learning_rate(float(lr))

    def start_engine(self):
        """Collective: starts the background engine, on its own duplicate of
        this communicator's transport, so direct calls keep working."""
        self._native.start_engine()

    def stop_engine(self):
        """Collective: stops the engine; every enqueued tensor has completed
        (or failed) afterwards. Raises QcclInvalidUsageError when the engine
        is not running."""
        self._native.stop_engine()

    def engine_running(self):
        return self._native.engine_running()

    def enqueue_allreduce(self, name, buf, op="sum", compress=True):
        """Asynchronous named in-place allreduce through the engine; returns a
        handle with wait() (returns `buf`, reduced) and done(). qccl keeps
        `buf` alive until the engine has completed it; do not read or write
        it before wait()."""
        if not isinstance(name, str) or not name:
            raise ValueError("name must be a non-empty string")
        code = _op_code(op)
        ptr, count, dtype, owner = _describe(buf)
        try:
            native = self._native.enqueue(name, ptr, count, dtype, code, not compress,
                                          (buf, owner))
        except BaseException:
            if owner is not None:
                owner.release()
            raise
        return EngineHandle(native, buf, owner)

    def _buffers_held(self):
        """Enqueued buffers the communicator still references (tests)."""
        return self._native.buffers_held()

    def close(self):
        """Stops the engine if it runs, then frees the communicator. A second
        close() does nothing; any other call afterwards raises
        QcclClosedError."""
        self._native.close()


def init(comm=None, **options):
    """Creates the default communicator (collective over `comm`, default
    MPI_COMM_WORLD; MPI is initialised with MPI_THREAD_MULTIPLE if needed)."""
    global _default
    if _default is not None:
        raise QcclInvalidUsageError("qccl.init() was already called; call qccl.shutdown() first")
    _default = Communicator(comm, **options)
    return _default


def _set_default(comm):
    """Makes `comm` the default communicator (qccl.torch.init)."""
    global _default
    if _default is not None:
        raise QcclInvalidUsageError("qccl.init() was already called; call qccl.shutdown() first")
    _default = comm
    return comm


def shutdown():
    global _default
    if _default is not None:
        _default.close()
        _default = None


def is_initialized():
    return _default is not None


def communicator():
    if _default is None:
        raise QcclInvalidUsageError("qccl is not initialised: call qccl.init() first")
    return _default


def rank():
    return communicator().rank()


def size():
    return communicator().size()


def allreduce(buf, op="sum"):
    return communicator().allreduce(buf, op)


def allgather(buf, out=None):
    return communicator().allgather(buf, out)


def stats():
    return communicator().stats()


def mark_step():
    communicator().mark_step()


def set_learning_rate(lr):
    communicator().set_learning_rate(lr)
