// Buffers handed to qccl through DLPack (`__dlpack__` / `__dlpack_device__`:
// CuPy, JAX, numpy >= 1.22, torch, ...). The capsule is parsed here rather
// than through a framework so any producer works; the structs are the
// public DLPack ABI (https://dmlc.github.io/dlpack/latest/, dlpack.h 1.0),
// only the parts qccl reads, so no dependency is added.
#pragma once

#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>

namespace qccl_python {

// ---- DLPack ABI (field order and widths are the contract) -----------------
enum DLDeviceTypeCode : int32_t { kDLCPU = 1, kDLCUDA = 2, kDLCUDAHost = 3, kDLROCM = 10 };
enum DLDataTypeCodeValue : uint8_t {
  kDLInt = 0,
  kDLUInt = 1,
  kDLFloat = 2,
  kDLOpaqueHandle = 3,
  kDLBfloat = 4,
  kDLComplex = 5,
  kDLBool = 6
};

struct DLDevice {
  int32_t device_type;  // DLDeviceType
  int32_t device_id;
};

struct DLDataType {
  uint8_t code;  // DLDataTypeCode
  uint8_t bits;
  uint16_t lanes;
};

struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;  // in elements; NULL: compact row-major
  uint64_t byte_offset;
};

// Legacy capsules, named "dltensor" (numpy < 2, torch < 2.4 and others).
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};

struct DLPackVersion {
  uint32_t major;
  uint32_t minor;
};

// DLPack >= 1.0 capsules, named "dltensor_versioned". Everything up to
// `flags` stays ABI-stable across major versions, so the deleter of an
// unknown major version can still be called.
struct DLManagedTensorVersioned {
  DLPackVersion version;
  void* manager_ctx;
  void (*deleter)(DLManagedTensorVersioned* self);
  uint64_t flags;
  DLTensor dl_tensor;
};

constexpr uint64_t kDLPackFlagReadOnly = 1ull << 0;
constexpr uint64_t kDLPackFlagIsCopied = 1ull << 1;

// ---- the consumer ------------------------------------------------------------

// Takes over a DLPack capsule (renamed "used_dltensor[_versioned]" as the
// protocol asks) and describes it as a qccl buffer: pointer (data +
// byte_offset), element count and qccl dtype code. Owns the managed tensor
// until release() (or destruction), which calls the producer's deleter
// exactly once: keep it alive for as long as qccl uses the pointer.
//
// Refused, with the reason: capsules not named "dltensor" or
// "dltensor_versioned" (TypeError; a used one: ValueError), dtypes other
// than float32/float16/bfloat16 (TypeError), non-contiguous strides,
// read-only or copied tensors (versioned flags), unknown major versions,
// and devices other than the host (ValueError). kDLCUDA memory is passed
// through in CUDA builds (qcclAllReduce takes device pointers) and refused
// here otherwise.
class DLPackBuffer {
 public:
  explicit DLPackBuffer(const pybind11::object& capsule);
  ~DLPackBuffer() { release(); }
  DLPackBuffer(const DLPackBuffer&) = delete;
  DLPackBuffer& operator=(const DLPackBuffer&) = delete;

  void release();

  uintptr_t pointer() const { return pointer_; }
  size_t count() const { return count_; }
  int dtype() const { return dtype_; }
  int device_type() const { return device_type_; }

 private:
  void describe(const DLTensor& t, uint64_t flags);

  DLManagedTensor* legacy_ = nullptr;
  DLManagedTensorVersioned* versioned_ = nullptr;
  uintptr_t pointer_ = 0;
  size_t count_ = 0;
  int dtype_ = -1;
  int device_type_ = 0;
};

}  // namespace qccl_python
