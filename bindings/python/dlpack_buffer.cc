#include "dlpack_buffer.h"

#include <string>

#include "qccl/qccl.h"
#ifdef QCCL_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace py = pybind11;

namespace qccl_python {
namespace {

const char* const kLegacyName = "dltensor";
const char* const kLegacyUsedName = "used_dltensor";
const char* const kVersionedName = "dltensor_versioned";
const char* const kVersionedUsedName = "used_dltensor_versioned";

std::string dtype_name(const DLDataType& d) {
  const char* kind = "unknown";
  switch (d.code) {
    case kDLInt: kind = "int"; break;
    case kDLUInt: kind = "uint"; break;
    case kDLFloat: kind = "float"; break;
    case kDLOpaqueHandle: kind = "opaque"; break;
    case kDLBfloat: kind = "bfloat"; break;
    case kDLComplex: kind = "complex"; break;
    case kDLBool: kind = "bool"; break;
  }
  std::string name = kind + std::to_string(d.bits);
  if (d.lanes != 1) name += "x" + std::to_string(d.lanes);
  return name;
}

int qccl_dtype(const DLDataType& d) {
  if (d.lanes == 1 && d.code == kDLFloat && d.bits == 32) return qcclFloat32;
  if (d.lanes == 1 && d.code == kDLFloat && d.bits == 16) return qcclFloat16;
  if (d.lanes == 1 && d.code == kDLBfloat && d.bits == 16) return qcclBfloat16;
  throw py::type_error("qccl reduces float32, float16 or bfloat16 buffers, got " + dtype_name(d) +
                       " (DLPack)");
}

std::string device_name(int32_t type) {
  switch (type) {
    case kDLCPU: return "CPU";
    case kDLCUDA: return "CUDA";
    case kDLCUDAHost: return "CUDA host (pinned)";
    case kDLROCM: return "ROCm";
    default: return "DLPack device type " + std::to_string(type);
  }
}

#ifdef QCCL_HAVE_CUDA
// What the CUDA runtime says `p` is: a producer labelling host memory as
// kDLCUDA (or a machine without a device) must not reach qcclAllReduce,
// which decides host or device from the pointer itself.
bool is_cuda_device_memory(const void* p) {
  cudaPointerAttributes attributes;
  if (cudaPointerGetAttributes(&attributes, p) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged;
}
#endif

// Host memory always; CUDA memory only where qcclAllReduce can take it.
void check_device(const DLDevice& device, const void* data) {
  if (device.device_type == kDLCPU || device.device_type == kDLCUDAHost) return;
#ifdef QCCL_HAVE_CUDA
  if (device.device_type == kDLCUDA) {
    if (is_cuda_device_memory(data)) return;
    throw py::value_error(
        "the DLPack buffer says it is CUDA device memory, but the CUDA runtime does not know "
        "its pointer as device memory (no CUDA device here, or another process's memory)");
  }
#else
  (void)data;
  if (device.device_type == kDLCUDA)
    throw py::value_error(
        "the DLPack buffer is CUDA device memory; device buffers need the CUDA build of qccl "
        "(this build reduces host memory only)");
#endif
  throw py::value_error("qccl cannot reduce " + device_name(device.device_type) +
                        " memory (DLPack buffer); pass host or CUDA memory");
}

// Row-major compact, so the buffer is `count` consecutive elements.
// Dimensions of size 1 may carry any stride (frameworks differ there).
bool is_contiguous(const DLTensor& t) {
  if (t.strides == nullptr) return true;
  int64_t expected = 1;
  for (int32_t d = t.ndim - 1; d >= 0; --d) {
    if (t.shape[d] == 0) return true;  // empty: nothing to address
    if (t.shape[d] != 1 && t.strides[d] != expected) return false;
    expected *= t.shape[d];
  }
  return true;
}

}  // namespace

DLPackBuffer::DLPackBuffer(const py::object& capsule) {
  PyObject* raw = capsule.ptr();
  if (!PyCapsule_CheckExact(raw))
    throw py::type_error("__dlpack__() must return a PyCapsule, got " +
                         std::string(Py_TYPE(raw)->tp_name));
  const char* name = PyCapsule_GetName(raw);
  const std::string capsule_name = name != nullptr ? name : "";
  if (capsule_name == kLegacyUsedName || capsule_name == kVersionedUsedName)
    throw py::value_error("this DLPack capsule was already consumed ('" + capsule_name +
                          "'); call __dlpack__() again for a fresh one");
  // Take ownership first (rename, keep the pointer): from here every
  // refusal runs the producer's deleter (the destructor does not run when
  // the constructor throws, hence the catch).
  if (capsule_name == kLegacyName) {
    legacy_ = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(raw, kLegacyName));
    if (legacy_ == nullptr) throw py::error_already_set();
    PyCapsule_SetName(raw, kLegacyUsedName);
  } else if (capsule_name == kVersionedName) {
    versioned_ = static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(raw, kVersionedName));
    if (versioned_ == nullptr) throw py::error_already_set();
    PyCapsule_SetName(raw, kVersionedUsedName);
  } else {
    throw py::type_error("not a DLPack capsule: its name is '" + capsule_name +
                         "', expected 'dltensor' or 'dltensor_versioned'");
  }
  try {
    if (legacy_ != nullptr) {
      describe(legacy_->dl_tensor, 0);
    } else {
      if (versioned_->version.major != 1)
        throw py::value_error("DLPack major version " + std::to_string(versioned_->version.major) +
                              " is not supported (qccl reads version 1)");
      describe(versioned_->dl_tensor, versioned_->flags);
    }
  } catch (...) {
    release();
    throw;
  }
}

void DLPackBuffer::describe(const DLTensor& t, uint64_t flags) {
  check_device(t.device, static_cast<const char*>(t.data) + t.byte_offset);
  dtype_ = qccl_dtype(t.dtype);
  if (t.ndim < 0 || (t.ndim > 0 && t.shape == nullptr))
    throw py::value_error("the DLPack tensor has no valid shape (ndim " + std::to_string(t.ndim) +
                          ")");
  if ((flags & kDLPackFlagReadOnly) != 0)
    throw py::value_error("the DLPack buffer is read-only; qccl reduces in place");
  if ((flags & kDLPackFlagIsCopied) != 0)
    throw py::value_error(
        "the DLPack producer exported a copy: an in-place reduction would not reach the "
        "original buffer");
  if (!is_contiguous(t))
    throw py::value_error(
        "the DLPack buffer must be contiguous (row-major, no gaps); make a contiguous copy "
        "first");
  size_t count = 1;
  for (int32_t d = 0; d < t.ndim; ++d) {
    if (t.shape[d] < 0)
      throw py::value_error("the DLPack tensor has a negative extent in dimension " +
                            std::to_string(d));
    count *= static_cast<size_t>(t.shape[d]);
  }
  count_ = count;
  device_type_ = t.device.device_type;
  pointer_ = reinterpret_cast<uintptr_t>(t.data) + static_cast<uintptr_t>(t.byte_offset);
}

void DLPackBuffer::release() {
  // The producer's deleter may need the GIL (numpy's takes it itself);
  // callers hold it: Python calls release(), pybind11 destroys with it.
  if (legacy_ != nullptr && legacy_->deleter != nullptr) legacy_->deleter(legacy_);
  if (versioned_ != nullptr && versioned_->deleter != nullptr) versioned_->deleter(versioned_);
  legacy_ = nullptr;
  versioned_ = nullptr;
}

}  // namespace qccl_python
