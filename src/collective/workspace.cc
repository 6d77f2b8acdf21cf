#include "collective/workspace.h"

#include <algorithm>
#include <new>

#include "core/checked_math.h"
#include "core/fault_injection.h"

namespace qccl {

Result CodecBuffer::reserve(Codec& codec, uint64_t bytes, const char* what) {
  if (codec_ == &codec && bytes_ >= bytes) return qcclSuccess;
  // Doubling keeps a slowly growing sequence of calls from reallocating
  // every time.
  const uint64_t target = std::max(bytes, bytes_ > UINT64_MAX / 2 ? bytes : 2 * bytes_);
  if (ptr_ != nullptr) QCCL_CHECK(codec_->synchronize());
  free();
  void* p = nullptr;
  uint64_t got = target;
  Result allocated = try_allocate(codec, target, what, &p);
  if (allocated != qcclSuccess && target > bytes) {
    got = bytes;  // the doubled block did not fit; the one asked for may
    allocated = try_allocate(codec, bytes, what, &p);
  }
  if (allocated != qcclSuccess)
    return fail(qcclSystemError, "cannot allocate {} bytes of {} memory for the {}: {}", bytes,
                codec.name(), what, std::string(thread_last_error()));
  codec_ = &codec, ptr_ = p, bytes_ = got;
  return qcclSuccess;
}

// The allocation as a result: an exception (std::bad_alloc from a codec, or
// the fault a test armed at site `what`, core/fault_injection.h) is one too.
Result CodecBuffer::try_allocate(Codec& codec, uint64_t bytes, const char* what, void** out) {
  try {
    maybe_inject_fault(what);
    return codec.allocate(bytes, out);
  } catch (const std::bad_alloc&) {
    return set_error(qcclSystemError, "out of memory");
  }
}

void CodecBuffer::free() {
  if (ptr_ != nullptr) codec_->release(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
}

Result Workspace::reserve(CodecBuffer* buffer, uint64_t bytes, const char* what) {
  void* before = buffer->as();
  QCCL_CHECK(buffer->reserve(codec, bytes, what));
  if (buffer->as() != before) ++growths;
  return qcclSuccess;
}

Result Workspace::reserve_array(CodecBuffer* buffer, uint64_t n, uint64_t item_bytes,
                                const char* what) {
  uint64_t bytes = 0;
  if (!checked_mul(n, item_bytes, &bytes))
    return fail(qcclInvalidArgument,
                "the {} needs {} × {} bytes, which overflows 64 bits (docs/api.md \"Size "
                "limits\")",
                what, n, item_bytes);
  return reserve(buffer, bytes, what);
}

}  // namespace qccl
