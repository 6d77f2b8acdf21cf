// Per-communicator scratch memory: allocated on first use, grown when a
// larger call comes, never freed or shrunk between calls, so steady-state
// collectives do not allocate. Payload and float32 scratch live in the
// call's codec memory (host or device, one Workspace each); the small
// per-rank tables the transport takes are always host vectors.
#pragma once

#include <cstdint>
#include <vector>

#include "codec/codec.h"

namespace qccl {

// A host vector holding at least n elements (grown, never shrunk).
template <typename T>
T* ensure_size(std::vector<T>* buffer, uint64_t n) {
  if (buffer->size() < n) buffer->resize(n);
  return buffer->data();
}

// A block of one codec's memory that only grows.
class CodecBuffer {
 public:
  CodecBuffer() = default;
  ~CodecBuffer() { free(); }
  CodecBuffer(const CodecBuffer&) = delete;
  CodecBuffer& operator=(const CodecBuffer&) = delete;

  // Room for `bytes` (contents are not kept). Growing waits for the codec's
  // stream first: earlier work may still use the old block. A failed
  // allocation is qcclSystemError naming `what` and the bytes; `what` is
  // also its fault-injection site (core/fault_injection.h).
  Result reserve(Codec& codec, uint64_t bytes, const char* what);
  template <typename T = unsigned char>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  static Result try_allocate(Codec& codec, uint64_t bytes, const char* what, void** out);
  void free();
  Codec* codec_ = nullptr;
  void* ptr_ = nullptr;
  uint64_t bytes_ = 0;
};

struct Workspace {
  explicit Workspace(Codec& c) : codec(c) {}
  Codec& codec;
  CodecBuffer encoded;    // this rank's first-round payload(s)
  CodecBuffer received;   // payloads from all ranks
  CodecBuffer reduced;    // sra: this rank's re-encoded chunk
  CodecBuffer gathered;   // sra: every rank's re-encoded chunk
  CodecBuffer sum;        // float32 accumulator / decoded values
  CodecBuffer chunk_sum;  // sra: the chunk this rank reduces
  uint64_t growths = 0;   // how often a buffer grew (tests: steady state allocates nothing)

  // buffer->reserve on this workspace's codec, counted.
  Result reserve(CodecBuffer* buffer, uint64_t bytes, const char* what);
  // Room for n items of item_bytes each; a product that overflows 64 bits
  // is qcclInvalidArgument naming `what` (docs/api.md "Size limits").
  Result reserve_array(CodecBuffer* buffer, uint64_t n, uint64_t item_bytes, const char* what);
};

// The host tables of one call: per-rank sizes and offsets, gathered call
// descriptors and adapter summaries.
struct HostTables {
  std::vector<uint64_t> sizes, offsets, sizes_in, offsets_in;
  std::vector<double> summaries;
  std::vector<unsigned char> descriptors;
};

}  // namespace qccl
