#include "collective/workspace.h"

#include <algorithm>

namespace qccl {

Result CodecBuffer::reserve(Codec& codec, uint64_t bytes, const char* what) {
  if (codec_ == &codec && bytes_ >= bytes) return qcclSuccess;
  // Doubling keeps a slowly growing sequence of calls from reallocating
  // every time.
  const uint64_t target = std::max(bytes, bytes_ > UINT64_MAX / 2 ? bytes : 2 * bytes_);
  if (ptr_ != nullptr) QCCL_CHECK(codec_->synchronize());
  free();
  void* p = nullptr;
  if (codec.allocate(target, &p) != qcclSuccess)
    return fail(qcclSystemError, "cannot allocate {} bytes of {} memory for the {}: {}", target,
                codec.name(), what, std::string(thread_last_error()));
  codec_ = &codec, ptr_ = p, bytes_ = target;
  return qcclSuccess;
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

}  // namespace qccl
