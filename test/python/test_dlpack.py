"""DLPack buffers (docs/python.md "Buffers") under mpirun, 2 and 4 ranks.

Objects that expose only ``__dlpack__`` / ``__dlpack_device__`` are reduced
in place; what real producers here (numpy 1.24, torch 1.13) cannot export
(device memory, DLPack 1.0 flags and versions) comes from hand-made
capsules built with ctypes from the public spec, which also count how
often the producer's deleter runs. Every rank runs every test in the same
order (they are collective).
"""
import ctypes

import numpy as np
import pytest
import torch

import qccl


@pytest.fixture(scope="module")
def comm():
    c = qccl.Communicator(method="none", timeout_s=60)
    yield c
    c.close()


class DLPackOnly:
    """Exposes another object's DLPack export and nothing else."""

    def __init__(self, inner):
        self._inner = inner

    def __dlpack__(self, **kwargs):
        return self._inner.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._inner.__dlpack_device__()


# ---- hand-made capsules (DLPack ABI, https://dmlc.github.io/dlpack/latest/) --

class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


DELETER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", DELETER)]


class DLPackVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


class DLManagedTensorVersioned(ctypes.Structure):
    _fields_ = [("version", DLPackVersion), ("manager_ctx", ctypes.c_void_p),
                ("deleter", DELETER), ("flags", ctypes.c_uint64), ("dl_tensor", DLTensor)]


_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
_capsule_name = ctypes.pythonapi.PyCapsule_GetName
_capsule_name.restype = ctypes.c_char_p
_capsule_name.argtypes = [ctypes.py_object]
LEGACY, VERSIONED = b"dltensor", b"dltensor_versioned"  # alive as long as the module
READ_ONLY, IS_COPIED = 1, 2
CPU, CUDA = 1, 2
_DTYPES = {np.dtype(np.float32): (2, 32), np.dtype(np.float16): (2, 16),
           np.dtype(np.int32): (0, 32)}


class HandMadeExport:
    """Exports a C-contiguous numpy array's memory (or part of it) through a
    ctypes capsule: legacy, or versioned when the consumer asks for it and
    `versioned` is set."""

    def __init__(self, array, device_type=CPU, versioned=False, flags=0, major=1,
                 byte_offset=0, count=None, strides=None):
        self.array = array
        self.device_type = device_type
        self.versioned = versioned
        self.flags = flags
        self.major = major
        self.byte_offset = byte_offset
        self.count = array.size if count is None else count
        self.strides = strides
        self.deleted = 0
        self.capsule = None
        self._deleter = DELETER(self._on_delete)  # kept alive with the export

    def _on_delete(self, _):
        self.deleted += 1

    def __dlpack_device__(self):
        return (self.device_type, 0)

    def __dlpack__(self, stream=None, max_version=None):
        self._shape = (ctypes.c_int64 * 1)(self.count)
        self._strides = None if self.strides is None else (ctypes.c_int64 * 1)(self.strides)
        code, bits = _DTYPES[self.array.dtype]
        tensor = DLTensor(self.array.ctypes.data, DLDevice(self.device_type, 0), 1,
                          DLDataType(code, bits, 1), self._shape, self._strides,
                          self.byte_offset)
        if self.versioned and max_version is not None:
            self._managed = DLManagedTensorVersioned(DLPackVersion(self.major, 0), None,
                                                     self._deleter, self.flags, tensor)
            name = VERSIONED
        else:
            self._managed = DLManagedTensor(tensor, None, self._deleter)
            name = LEGACY
        self.capsule = _capsule_new(ctypes.addressof(self._managed), name, None)
        return self.capsule

    def capsule_name(self):
        return _capsule_name(self.capsule)


# ---- real producers ------------------------------------------------------------

def test_numpy_export_is_reduced_in_place_exactly(comm):
    r, n = comm.rank(), comm.size()
    a = np.arange(1000, dtype=np.float32).reshape(10, 100) * (r + 1)
    wrapper = DLPackOnly(a)
    assert comm.allreduce(wrapper) is wrapper
    expected = np.arange(1000, dtype=np.float32).reshape(10, 100) * (n * (n + 1) / 2)
    assert np.array_equal(a, expected)
    h = np.full(37, r + 1, dtype=np.float16)
    comm.allreduce(DLPackOnly(h), op="avg")
    assert np.array_equal(h, np.full(37, (n + 1) / 2, dtype=np.float16))


def test_numpy_export_with_an_offset_reduces_only_the_view(comm):
    r, n = comm.rank(), comm.size()
    a = np.full(20, r + 1, dtype=np.float32)
    comm.allreduce(DLPackOnly(a[5:15]))
    assert a[:5].tolist() == [r + 1] * 5 and a[15:].tolist() == [r + 1] * 5
    assert a[5:15].tolist() == [n * (n + 1) / 2] * 10


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_torch_export_is_reduced_in_place_exactly(comm, dtype):
    r, n = comm.rank(), comm.size()
    t = torch.arange(64, dtype=torch.float32).reshape(8, 8).to(dtype) * (r + 1)
    comm.allreduce(DLPackOnly(t))
    expected = torch.arange(64, dtype=torch.float32).reshape(8, 8).to(dtype) * (n * (n + 1) // 2)
    assert torch.equal(t, expected)


def test_dlpack_buffer_goes_through_the_engine_beside_direct_calls(comm):
    # The engine runs on the same communicator as the direct call.
    r, n = comm.rank(), comm.size()
    comm.start_engine()
    try:
        a = np.full(300, r + 1, dtype=np.float32)
        export = HandMadeExport(a)
        handle = comm.enqueue_allreduce("dlpack.a", export)
        b = np.full(50, 2 * (r + 1), dtype=np.float32)
        comm.allreduce(DLPackOnly(b))
        assert export.deleted == 0  # held until wait()
        handle.wait()
        assert export.deleted == 1
        assert a.tolist() == [n * (n + 1) / 2] * 300
        assert b.tolist() == [n * (n + 1)] * 50
    finally:
        comm.stop_engine()


# ---- protocol: ownership and deleter ------------------------------------------

@pytest.mark.parametrize("versioned", [False, True])
def test_capsule_is_marked_used_and_its_deleter_runs_once(comm, versioned):
    r, n = comm.rank(), comm.size()
    a = np.full(8, r + 1, dtype=np.float32)
    export = HandMadeExport(a, versioned=versioned, byte_offset=8, count=6)
    comm.allreduce(export)
    assert export.deleted == 1
    assert export.capsule_name() == (b"used_dltensor_versioned" if versioned
                                     else b"used_dltensor")
    # byte_offset 8 = two float32 elements skipped
    assert a.tolist() == [r + 1] * 2 + [n * (n + 1) / 2] * 6
    with pytest.raises(ValueError, match="already consumed"):
        qccl._qccl.DLPackBuffer(export.capsule)
    assert export.deleted == 1


# ---- refusals: clear exceptions, deleter still runs, nothing is reduced ------

def test_non_contiguous_exports_are_refused(comm):
    with pytest.raises(ValueError, match="contiguous"):
        comm.allreduce(DLPackOnly(np.ones((4, 4), dtype=np.float32)[:, 1]))
    with pytest.raises(ValueError, match="contiguous"):
        comm.allreduce(DLPackOnly(torch.ones(4, 4).t()))
    export = HandMadeExport(np.ones(8, dtype=np.float32), count=4, strides=2)
    with pytest.raises(ValueError, match="contiguous"):
        comm.allreduce(export)
    assert export.deleted == 1


def test_wrong_dtypes_are_refused(comm):
    with pytest.raises(TypeError, match="float32, float16 or bfloat16 buffers, got int32"):
        comm.allreduce(DLPackOnly(np.ones(4, dtype=np.int32)))
    with pytest.raises(TypeError, match="got float64"):
        comm.allreduce(DLPackOnly(torch.ones(4, dtype=torch.float64)))
    export = HandMadeExport(np.ones(4, dtype=np.int32))
    with pytest.raises(TypeError, match="got int32"):
        comm.allreduce(export)
    assert export.deleted == 1


def test_read_only_and_copied_exports_are_refused(comm):
    ro = np.ones(4, dtype=np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-?only"):  # numpy refuses to export it
        comm.allreduce(DLPackOnly(ro))
    for flag, message in ((READ_ONLY, "read-only"), (IS_COPIED, "exported a copy")):
        a = np.ones(4, dtype=np.float32)
        export = HandMadeExport(a, versioned=True, flags=flag)
        with pytest.raises(ValueError, match=message):
            comm.allreduce(export)
        assert export.deleted == 1
        assert a.tolist() == [1.0] * 4


def test_unknown_major_version_is_refused(comm):
    export = HandMadeExport(np.ones(4, dtype=np.float32), versioned=True, major=2)
    with pytest.raises(ValueError, match="major version 2"):
        comm.allreduce(export)
    assert export.deleted == 1


def test_cuda_device_memory_needs_the_cuda_build(comm):
    # Host memory labelled kDLCUDA: a CPU build refuses any CUDA buffer; a
    # CUDA build refuses a pointer the CUDA runtime does not know as device
    # memory (always the case here: the array lives on the host).
    export = HandMadeExport(np.ones(4, dtype=np.float32), device_type=CUDA)
    with pytest.raises(ValueError, match="CUDA build|not know its pointer as device memory"):
        comm.allreduce(export)
    assert export.deleted == 1


def test_not_a_dlpack_capsule_is_refused():
    with pytest.raises(TypeError, match="PyCapsule"):
        qccl._qccl.DLPackBuffer(object())
