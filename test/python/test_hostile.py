"""Hostile inputs through the Python bindings (docs/python.md "Refusals",
"Errors", "Buffer lifetime"): buffers qccl cannot reduce in place, wrong
dtypes and layouts, closed communicators, engines started or stopped out of
order, bad configuration keys and values, and buffers the caller drops while
the engine still writes into them. Each case asserts the exception type and
a fragment of its message.

Every case runs on its own one-rank Python transport (no MPI, no other
process), so the file gives the same results with and without mpirun.
pytest-timeout is not installed: an autouse watchdog (faulthandler) ends
the process with every thread's traceback when a case runs longer than
CASE_TIMEOUT_S, so a hang fails the run instead of stalling it.
"""
import faulthandler
import gc
import re
import threading
import weakref

import numpy as np
import pytest
import torch

import qccl
from qccl import _qccl

CASE_TIMEOUT_S = 60


@pytest.fixture(autouse=True)
def watchdog():
    faulthandler.dump_traceback_later(CASE_TIMEOUT_S, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


class Doubling:
    """One rank whose exact allreduce doubles the buffer, as two ranks with
    equal values would: a result that lands in place is visible. `gate`,
    when given, holds every reduction until it is set, so a test can drop
    references while the engine has the buffer. duplicate() (the engine's
    transport) shares the gate."""
    rank = 0
    size = 1

    def __init__(self, gate=None):
        self.gate = gate

    def allgatherv(self, send, recv, recv_bytes, recv_offsets):
        out = np.frombuffer(recv, dtype=np.uint8)
        out[recv_offsets[0]:recv_offsets[0] + recv_bytes[0]] = np.frombuffer(send, dtype=np.uint8)

    def allreduce_passthrough(self, buf, dtype):
        if self.gate is not None:
            assert self.gate.wait(CASE_TIMEOUT_S / 2), "the test never opened the gate"
        if dtype == "float32":
            values = np.frombuffer(buf, dtype=np.float32)
            values *= 2
        elif dtype == "float16":
            values = np.frombuffer(buf, dtype=np.float16)
            values *= 2
        else:  # bfloat16: doubling adds one to the exponent field
            halves = np.frombuffer(buf, dtype=np.uint16)
            nonzero = (halves & 0x7FFF) != 0
            halves[nonzero] += 0x80

    def duplicate(self):
        return Doubling(self.gate)


def new_comm(gate=None, **options):
    options.setdefault("method", "none")
    options.setdefault("cycle_time_ms", 1)
    options.setdefault("timeout_s", 30)
    return qccl.Communicator.from_transport(Doubling(gate), **options)


@pytest.fixture
def comm():
    c = new_comm()
    yield c
    c.close()


class DLPackOnly:
    """Speaks only DLPack (as CuPy or JAX arrays would)."""

    def __init__(self, inner):
        self.inner = inner

    def __dlpack__(self, **kwargs):
        try:
            return self.inner.__dlpack__(**kwargs)
        except TypeError:  # numpy 1.24 / torch 1.13 take no max_version
            return self.inner.__dlpack__()

    def __dlpack_device__(self):
        return self.inner.__dlpack_device__()


class CudaArrayInterfaceOnly:
    __cuda_array_interface__ = {"shape": (4,), "typestr": "<f4", "data": (1 << 40, False),
                                "version": 3}


class BufferObjectData:
    """__array_interface__ whose data is a buffer object, not a pointer."""

    def __init__(self):
        self.__array_interface__ = {"shape": (4,), "typestr": "<f4",
                                    "data": bytearray(16), "version": 3}


def read_only(a):
    a.flags.writeable = False
    return a


def requires_grad():
    return torch.ones(4, requires_grad=True)


def sparse_csr():
    return torch.eye(3).to_sparse_csr()


# (id, factory, exception, message fragment): what cannot be reduced in place.
BAD_BUFFERS = [
    # numpy and Python scalars: immutable, nothing to write through.
    ("numpy-float32-scalar", lambda: np.float32(1.0), TypeError, "numpy scalar (float32)"),
    ("numpy-float16-scalar", lambda: np.float16(1.0), TypeError, "numpy scalar (float16)"),
    ("numpy-float64-scalar", lambda: np.float64(1.0), TypeError, "numpy scalar (float64)"),
    ("python-float", lambda: 1.0, TypeError, "got float"),
    ("python-list", lambda: [1.0, 2.0], TypeError, "got list"),
    ("bytearray", lambda: bytearray(16), TypeError, "got bytearray"),
    ("none", lambda: None, TypeError, "got NoneType"),
    # wrong dtypes
    ("numpy-int32", lambda: np.ones(4, dtype=np.int32), TypeError, "got <i4"),
    ("numpy-float64", lambda: np.ones(4, dtype=np.float64), TypeError, "got <f8"),
    ("numpy-complex64", lambda: np.ones(4, dtype=np.complex64), TypeError, "got <c8"),
    ("numpy-bool", lambda: np.ones(4, dtype=bool), TypeError, "got |b1"),
    ("numpy-big-endian-float32", lambda: np.ones(4, dtype=">f4"), TypeError, "got >f4"),
    ("torch-int32", lambda: torch.ones(4, dtype=torch.int32), TypeError, "got int32"),
    ("torch-float64", lambda: torch.ones(4, dtype=torch.float64), TypeError, "got float64"),
    ("torch-complex64", lambda: torch.ones(4, dtype=torch.complex64), TypeError, "got complex64"),
    ("torch-uint8", lambda: torch.ones(4, dtype=torch.uint8), TypeError, "got uint8"),
    ("dlpack-int32", lambda: DLPackOnly(np.ones(4, dtype=np.int32)), TypeError, "got int32"),
    ("dlpack-float64", lambda: DLPackOnly(torch.ones(4, dtype=torch.float64)), TypeError,
     "got float64"),
    # wrong layout
    ("numpy-every-other", lambda: np.ones(8, dtype=np.float32)[::2], ValueError, "C-contiguous"),
    ("numpy-negative-stride", lambda: np.arange(8, dtype=np.float32)[::-1], ValueError,
     "C-contiguous"),
    ("numpy-negative-stride-2d", lambda: np.ones((3, 4), dtype=np.float32)[::-1], ValueError,
     "C-contiguous"),
    ("numpy-fortran-order", lambda: np.ones((3, 4), dtype=np.float32, order="F"), ValueError,
     "C-contiguous"),
    ("numpy-transposed", lambda: np.ones((3, 4), dtype=np.float32).T, ValueError,
     "C-contiguous"),
    ("numpy-column", lambda: np.ones((4, 4), dtype=np.float32)[:, 1], ValueError,
     "C-contiguous"),
    ("torch-transposed", lambda: torch.ones(3, 4).t(), ValueError, "contiguous"),
    ("torch-expanded", lambda: torch.ones(1).expand(4), ValueError, "contiguous"),
    ("torch-every-other", lambda: torch.ones(8)[::2], ValueError, "contiguous"),
    ("dlpack-column", lambda: DLPackOnly(np.ones((4, 4), dtype=np.float32)[:, 1]), ValueError,
     "contiguous"),
    ("dlpack-torch-transposed", lambda: DLPackOnly(torch.ones(3, 4).t()), ValueError,
     "contiguous"),
    # read-only memory
    ("numpy-read-only", lambda: read_only(np.ones(4, dtype=np.float32)), ValueError,
     "read-only"),
    ("numpy-read-only-0d", lambda: read_only(np.array(1.0, dtype=np.float32)), ValueError,
     "read-only"),
    ("numpy-frombuffer-bytes", lambda: np.frombuffer(bytes(16), dtype=np.float32), ValueError,
     "read-only"),
    ("numpy-broadcast", lambda: np.broadcast_to(np.ones(1, dtype=np.float32), (4,)), ValueError,
     "C-contiguous"),
    ("dlpack-read-only", lambda: DLPackOnly(read_only(np.ones(4, dtype=np.float32))), ValueError,
     "must be writable"),
    # torch tensors a write through data_ptr() would not reduce
    ("torch-sparse-coo", lambda: torch.ones(4).to_sparse(), ValueError, "sparse_coo tensor"),
    ("torch-sparse-csr", sparse_csr, ValueError, "sparse_csr tensor"),
    ("torch-meta-device", lambda: torch.empty(4, device="meta"), ValueError, "'meta' device"),
    ("torch-requires-grad", requires_grad, ValueError, "requires grad"),
    ("torch-requires-grad-non-leaf", lambda: requires_grad() * 2, ValueError, "requires grad"),
    ("torch-negated-view", lambda: torch.ones(4)._neg_view(), ValueError, "negated"),
    # device memory and malformed interfaces
    ("cuda-array-interface", CudaArrayInterfaceOnly, ValueError, "host (CPU) buffers only"),
    ("array-interface-buffer-data", BufferObjectData, TypeError,
     "must be a (pointer, read_only) tuple"),
]

ENTRY_POINTS = ["allreduce", "allgather", "enqueue_allreduce"]


def fragment_re(fragment):
    return re.escape(fragment)


def call(entry, comm, buf):
    if entry == "allreduce":
        return comm.allreduce(buf)
    if entry == "allgather":
        return comm.allgather(buf)
    if not comm.engine_running():
        comm.start_engine()
    return comm.enqueue_allreduce("hostile", buf).wait()


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("factory, error, fragment",
                         [case[1:] for case in BAD_BUFFERS], ids=[case[0] for case in BAD_BUFFERS])
def test_buffer_that_cannot_be_reduced_in_place_is_refused(comm, entry, factory, error, fragment):
    buf = factory()
    with pytest.raises(error, match=fragment_re(fragment)):
        call(entry, comm, buf)
    # The refusal left the communicator (and its engine) usable.
    good = np.full(4, 1.5, dtype=np.float32)
    assert call(entry, comm, good) is not None
    if entry != "allgather":
        assert good.tolist() == [3.0] * 4


def test_numpy_scalar_is_not_reduced_into_a_temporary(comm):
    # Before the refusal this "worked": the result went into a freed
    # temporary and the scalar kept its value.
    scalar = np.float32(2.0)
    with pytest.raises(TypeError, match=r"immutable.*numpy.array\(\[x\]\)"):
        comm.allreduce(scalar)
    assert scalar == np.float32(2.0)


# ---- what is accepted: the refusals above are not blanket ------------------------

ACCEPTED = [
    ("numpy-0d", lambda: np.array(1.5, dtype=np.float32), 3.0),
    ("numpy-float16", lambda: np.full(3, 1.5, dtype=np.float16), 3.0),
    ("numpy-size-1-dims", lambda: np.full((4, 1), 1.5, dtype=np.float32)[:, :1], 3.0),
    ("torch-0d", lambda: torch.tensor(1.5), 3.0),
    ("torch-bfloat16", lambda: torch.full((5,), 1.5, dtype=torch.bfloat16), 3.0),
    ("torch-offset-view", lambda: torch.full((10,), 1.5)[3:7], 3.0),
    ("dlpack-numpy", lambda: DLPackOnly(np.full(6, 1.5, dtype=np.float32)), 3.0),
]


def values_of(buf):
    if isinstance(buf, DLPackOnly):
        buf = buf.inner
    if isinstance(buf, torch.Tensor):
        return buf.float().reshape(-1).tolist()
    return np.asarray(buf, dtype=np.float32).reshape(-1).tolist()


@pytest.mark.parametrize("entry", ["allreduce", "enqueue_allreduce"])
@pytest.mark.parametrize("factory, expected", [c[1:] for c in ACCEPTED],
                         ids=[c[0] for c in ACCEPTED])
def test_writable_buffers_are_reduced_in_place(comm, entry, factory, expected):
    buf = factory()
    count = len(values_of(buf))
    call(entry, comm, buf)
    assert values_of(buf) == [expected] * count


def test_requires_grad_under_no_grad_is_reduced_as_torch_allows(comm):
    t = torch.full((4,), 1.5, requires_grad=True)
    with torch.no_grad():
        comm.allreduce(t)
    assert t.tolist() == [3.0] * 4


def test_empty_buffer_is_accepted(comm):
    assert comm.allreduce(np.empty(0, dtype=np.float32)).size == 0


# ---- allgather's out ----------------------------------------------------------------

BAD_OUTS = [
    ("wrong-dtype", lambda: np.empty(4, dtype=np.float16), ValueError, "same dtype"),
    ("too-small", lambda: np.empty(3, dtype=np.float32), ValueError, "size()*4 elements"),
    ("read-only", lambda: read_only(np.empty(4, dtype=np.float32)), ValueError, "read-only"),
    ("non-contiguous", lambda: np.empty(8, dtype=np.float32)[::2], ValueError, "C-contiguous"),
    ("int32", lambda: np.empty(4, dtype=np.int32), TypeError, "got <i4"),
]


@pytest.mark.parametrize("factory, error, fragment", [c[1:] for c in BAD_OUTS],
                         ids=[c[0] for c in BAD_OUTS])
def test_allgather_refuses_a_bad_out(comm, factory, error, fragment):
    with pytest.raises(error, match=fragment_re(fragment)):
        comm.allgather(np.ones(4, dtype=np.float32), out=factory())


# ---- arguments besides the buffer -----------------------------------------------------

@pytest.mark.parametrize("op", ["max", "SUM", None, 0])
def test_bad_op_is_refused(comm, op):
    with pytest.raises(ValueError, match="op must be 'sum' or 'avg'"):
        comm.allreduce(np.ones(4, dtype=np.float32), op=op)


@pytest.mark.parametrize("name", ["", None, 7, b"bytes"])
def test_bad_engine_name_is_refused(comm, name):
    comm.start_engine()
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        comm.enqueue_allreduce(name, np.ones(4, dtype=np.float32))


# ---- the engine out of order: what the C library returns ---------------------------

def test_starting_the_engine_twice_is_invalid_usage(comm):
    comm.start_engine()
    with pytest.raises(qccl.QcclInvalidUsageError, match="already started"):
        comm.start_engine()
    assert comm.engine_running()  # the first start stands
    a = np.ones(4, dtype=np.float32)
    comm.enqueue_allreduce("a", a).wait()
    assert a.tolist() == [2.0] * 4


def test_stopping_an_engine_never_started_is_invalid_usage(comm):
    with pytest.raises(qccl.QcclInvalidUsageError, match="engine of this communicator is not "
                                                         "started"):
        comm.stop_engine()


def test_stopping_the_engine_twice_is_invalid_usage(comm):
    comm.start_engine()
    comm.stop_engine()
    with pytest.raises(qccl.QcclInvalidUsageError, match="not started"):
        comm.stop_engine()


@pytest.mark.parametrize("when", ["before-start", "after-stop"])
def test_enqueue_without_a_running_engine_is_invalid_usage(comm, when):
    if when == "after-stop":
        comm.start_engine()
        comm.stop_engine()
    with pytest.raises(qccl.QcclInvalidUsageError, match="not started"):
        comm.enqueue_allreduce("a", np.ones(4, dtype=np.float32))


@pytest.mark.parametrize("when", ["before-start", "after-stop"])
def test_engine_stats_without_a_running_engine_are_invalid_usage(comm, when):
    if when == "after-stop":
        comm.start_engine()
        comm.stop_engine()
    with pytest.raises(qccl.QcclInvalidUsageError, match="not started"):
        comm.stats(engine=True)


def test_the_engine_can_start_again_after_a_stop(comm):
    for _ in range(2):
        comm.start_engine()
        a = np.ones(4, dtype=np.float32)
        comm.enqueue_allreduce("a", a).wait()
        assert a.tolist() == [2.0] * 4
        comm.stop_engine()


def test_invalid_usage_is_a_qccl_error_and_a_runtime_error(comm):
    with pytest.raises(qccl.QcclError) as info:
        comm.stop_engine()
    assert isinstance(info.value, RuntimeError)
    assert type(info.value) is qccl.QcclInvalidUsageError


def test_error_hint_names_a_debug_level_that_adds_detail(comm):
    # WARN is the default: a hint to set it would add nothing.
    with pytest.raises(qccl.QcclInvalidUsageError) as info:
        comm.stop_engine()
    assert "QCCL_DEBUG=WARN" not in str(info.value)
    assert "QCCL_DEBUG=DEBUG" in str(info.value)


# ---- closed communicators ------------------------------------------------------------

CLOSED_CALLS = {
    "rank": lambda c: c.rank(),
    "size": lambda c: c.size(),
    "allreduce": lambda c: c.allreduce(np.ones(4, dtype=np.float32)),
    "allgather": lambda c: c.allgather(np.ones(4, dtype=np.float32)),
    "mark_step": lambda c: c.mark_step(),
    "set_learning_rate": lambda c: c.set_learning_rate(0.1),
    "stats": lambda c: c.stats(),
    "engine-stats": lambda c: c.stats(engine=True),
    "start_engine": lambda c: c.start_engine(),
    "stop_engine": lambda c: c.stop_engine(),
    "enqueue_allreduce": lambda c: c.enqueue_allreduce("a", np.ones(4, dtype=np.float32)),
}


@pytest.mark.parametrize("engine", [False, True], ids=["idle", "engine-running"])
@pytest.mark.parametrize("name", list(CLOSED_CALLS))
def test_a_closed_communicator_refuses_every_call(name, engine):
    c = new_comm()
    if engine:
        c.start_engine()
    c.close()
    assert not c.engine_running()
    with pytest.raises(qccl.QcclClosedError, match=r"communicator is closed \(close\(\) was "
                                                   r"called\)"):
        CLOSED_CALLS[name](c)


def test_closed_error_is_invalid_usage():
    assert issubclass(qccl.QcclClosedError, qccl.QcclInvalidUsageError)
    assert issubclass(qccl.QcclInvalidUsageError, qccl.QcclError)


def test_close_twice_is_harmless():
    c = new_comm()
    c.start_engine()
    c.close()
    c.close()
    with pytest.raises(qccl.QcclClosedError):
        c.rank()


def test_default_communicator_before_init_is_invalid_usage(monkeypatch):
    monkeypatch.setattr(qccl, "_default", None)
    with pytest.raises(qccl.QcclInvalidUsageError, match=r"not initialised: call qccl.init\(\)"):
        qccl.allreduce(np.ones(4, dtype=np.float32))


def test_a_bad_mpi_comm_is_refused_before_mpi_starts():
    before = _qccl.mpi_initialized()
    with pytest.raises(TypeError, match="mpi4py communicator"):
        qccl.Communicator(comm="MPI_COMM_WORLD")
    assert _qccl.mpi_initialized() == before


# ---- configuration through keyword options --------------------------------------------

BAD_VALUES = [
    ("bits", 0, "QCCL_BITS must be an integer 1..8, got '0'"),
    ("bits", 9, "QCCL_BITS must be an integer 1..8, got '9'"),
    ("bits", "three", "QCCL_BITS must be an integer 1..8, got 'three'"),
    ("bits", 3.5, "QCCL_BITS must be an integer 1..8, got '3.5'"),
    ("method", "zip", "QCCL_METHOD must be one of"),
    ("norm", "l3", "QCCL_NORM must be one of auto, l2, linf, got 'l3'"),
    ("algo", "ring", "QCCL_ALGO must be one of auto, allgather, sra, got 'ring'"),
    ("bucket_size", 0, "QCCL_BUCKET_SIZE must be an integer 32..16777216"),
    ("bucket_size", 33, "(a multiple of 32), got '33'"),
    ("bucket_size", -32, "got '-32'"),
    ("min_compress_bytes", -1, "QCCL_MIN_COMPRESS_BYTES must be a byte count"),
    ("seed", -1, "QCCL_SEED must be an unsigned 64-bit integer"),
    ("update_steps", "10,5", "QCCL_UPDATE_STEPS must be a comma-separated ascending list"),
    ("update_every", "nan", "QCCL_UPDATE_EVERY must be an integer"),
    ("model", "gaussian", "QCCL_MODEL must be one of auto, truncnorm, mixture, histogram"),
    ("error_feedback", 2, "QCCL_ERROR_FEEDBACK must be 0 or 1, got '2'"),
    ("fusion_threshold", 0, "QCCL_FUSION_THRESHOLD must be a byte count 1.."),
    ("cycle_time_ms", 0, "QCCL_CYCLE_TIME_MS must be a decimal number > 0"),
    ("cycle_time_ms", "inf", "QCCL_CYCLE_TIME_MS must be a decimal number > 0"),
    ("cycle_time_ms", 10001, "and <= 10000, got '10001'"),
    ("timeout_s", -1, "QCCL_TIMEOUT_S must be a decimal number of seconds > 0"),
    ("timeout_s", 1e9, "<= 86400"),
    ("debug", "LOUD", "QCCL_DEBUG must be one of TRACE, DEBUG, INFO, WARN, ERROR, OFF"),
    ("compress_one_rank", 3, "QCCL_COMPRESS_ONE_RANK must be 0 or 1, got '3'"),
    ("timeline", "/nonexistent-dir/timeline.json", "its directory '/nonexistent-dir'"),
]


@pytest.mark.parametrize("key, value, fragment", BAD_VALUES,
                         ids=[f"{k}={v}" for k, v, _ in BAD_VALUES])
def test_bad_config_value_is_invalid_argument_naming_the_variable(key, value, fragment):
    with pytest.raises(qccl.QcclInvalidArgumentError, match=fragment_re(fragment)) as info:
        new_comm(**{key: value})
    assert "(config override)" in str(info.value)


@pytest.mark.parametrize("key", ["bitz", "QCCL_BITS", "Bits", "cycle_time", ""])
def test_unknown_config_key_is_a_value_error(key):
    with pytest.raises(ValueError, match=fragment_re(f"unknown qccl option '{key}'")):
        new_comm(**{key: 3})


def test_config_value_with_a_nul_is_refused_not_truncated():
    # "3\0junk" would otherwise reach the C library as "3".
    with pytest.raises(ValueError, match="'bits' contains a NUL character"):
        new_comm(bits="3\x00junk")


def test_boolean_and_none_options_are_accepted():
    c = new_comm(error_feedback=True, bits=None)
    c.close()


# ---- buffer lifetime: the engine keeps what it writes into ----------------------------

def numpy_buffer():
    a = np.full(64, 1.5, dtype=np.float32)
    return a, weakref.ref(a)


def torch_buffer():
    t = torch.full((64,), 1.5)
    return t, weakref.ref(t)


def dlpack_buffer():
    inner = np.full(64, 1.5, dtype=np.float32)
    return DLPackOnly(inner), weakref.ref(inner)  # the export references `inner`


BUFFER_KINDS = {"numpy": numpy_buffer, "torch": torch_buffer, "dlpack": dlpack_buffer}


@pytest.mark.parametrize("kind", list(BUFFER_KINDS))
def test_dropped_buffer_and_handle_stay_alive_until_the_engine_completes(kind):
    gate = threading.Event()  # the engine cannot finish before the test drops everything
    c = new_comm(gate)
    c.start_engine()
    buf, alive = BUFFER_KINDS[kind]()
    handle = c.enqueue_allreduce("dropped", buf)
    del buf, handle
    gc.collect()
    assert alive() is not None, "freed while the engine may still write into it"
    assert c._buffers_held() == 1
    gate.set()
    c.stop_engine()
    gc.collect()
    assert alive() is None, "still referenced after the engine completed"
    assert c._buffers_held() == 0
    c.close()


@pytest.mark.parametrize("kind", list(BUFFER_KINDS))
def test_result_lands_when_only_the_handle_is_kept(kind):
    gate = threading.Event()
    c = new_comm(gate)
    c.start_engine()
    buf, _ = BUFFER_KINDS[kind]()
    handle = c.enqueue_allreduce("kept", buf)
    del buf
    gc.collect()
    gate.set()
    out = handle.wait()  # the buffer, reduced in place
    assert values_of(out) == [3.0] * 64
    c.stop_engine()
    c.close()


def test_completed_buffers_are_released_at_the_next_enqueue():
    c = new_comm()
    c.start_engine()
    buf, alive = numpy_buffer()
    c.enqueue_allreduce("first", buf).wait()
    del buf
    gc.collect()
    assert alive() is not None  # completed, but nothing has polled yet
    second = np.ones(4, dtype=np.float32)
    c.enqueue_allreduce("second", second).wait()
    gc.collect()
    assert alive() is None
    assert c._buffers_held() == 1  # "second" until the next poll
    c.close()
    assert c._buffers_held() == 0


@pytest.mark.parametrize("ending", ["close", "garbage-collected"])
def test_closing_with_buffers_in_flight_releases_them_after_the_engine_stops(ending):
    gate = threading.Event()
    c = new_comm(gate)
    c.start_engine()
    refs = []
    for i in range(4):
        buf, alive = numpy_buffer()
        c.enqueue_allreduce(f"t{i}", buf)
        refs.append(alive)
        del buf
    gc.collect()
    assert all(r() is not None for r in refs)
    gate.set()
    if ending == "close":
        c.close()
    else:
        del c  # the native destructor stops the engine, then lets go
    gc.collect()
    assert all(r() is None for r in refs)


def test_repeated_enqueue_drop_collect_stop_cycles():
    for cycle in range(12):
        c = new_comm()
        c.start_engine()
        refs = []
        for i in range(3):
            for make in BUFFER_KINDS.values():
                buf, alive = make()
                c.enqueue_allreduce(f"c{cycle}.t{i}.{make.__name__}", buf)
                refs.append(alive)
                del buf
        gc.collect()
        if cycle % 2:
            c.stop_engine()
        c.close()
        gc.collect()
        assert all(r() is None for r in refs), f"cycle {cycle}"


def test_an_enqueue_the_c_library_refuses_holds_nothing(comm):
    buf, alive = numpy_buffer()
    with pytest.raises(qccl.QcclInvalidUsageError, match="not started"):
        comm.enqueue_allreduce("refused", buf)
    del buf
    gc.collect()
    assert alive() is None
    assert comm._buffers_held() == 0


# ---- DistributedOptimizer and the engine's state ----------------------------------------

def linear_and_optimizer(comm):
    import qccl.torch as qtorch
    model = torch.nn.Linear(3, 2)
    opt = qtorch.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1),
                                      named_parameters=model.named_parameters(),
                                      communicator=comm)
    return model, opt


def test_distributed_optimizer_stops_the_engine_it_started_once(comm):
    model, opt = linear_and_optimizer(comm)
    assert comm.engine_running()
    model(torch.ones(4, 3)).sum().backward()  # local gradients: 4 everywhere
    opt.synchronize()
    assert model.weight.grad.tolist() == [[8.0] * 3] * 2  # Doubling: as two equal ranks
    assert model.bias.grad.tolist() == [8.0] * 2
    opt.close()
    opt.close()
    assert not comm.engine_running()


def test_distributed_optimizer_shares_an_engine_already_running(comm):
    comm.start_engine()
    _, opt = linear_and_optimizer(comm)  # no "already started"
    opt.close()
    assert comm.engine_running()  # the starter stops it
    comm.stop_engine()
