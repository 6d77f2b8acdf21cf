// What the host passes to the codec kernels (kernel_dispatch.cuh), without
// the kernels themselves: those are defined once, in kernel_dispatch.cu.
#pragma once

#include <cstdint>

#include "codec/cpu_codec.h"
#include "codec/payload_format.h"
#include "codec/philox.h"
#include "codec/quantize_math.h"

namespace qccl {
namespace kernels {

constexpr int kEncodeThreads = kNormLanes;  // thread t is norm lane t
constexpr int kWarps = kEncodeThreads / 32;
// Buckets up to this size are staged in shared memory (32 KiB of float32):
// the input is read from global memory once, with 16-byte loads. Larger
// buckets read it twice (the second read mostly hits L2).
constexpr uint32_t kMaxStagedBucket = 8192;
constexpr int kMaxLevels = 256;

// Everything the encode kernels need, passed by value (about 1.2 KB of
// kernel parameters): the header and table are written by block 0, so
// encode needs no host-to-device copy and stays asynchronous.
struct EncodeArgs {
  const void* in;
  unsigned char* out;  // the payload
  uint64_t count;
  uint64_t index_base;
  DrawKey key;
  uint32_t bucket_size;
  int num_levels;
  int linf;  // NormKind::kLinf
  uint64_t norms_offset;
  uint64_t symbols_offset;
  BucketStats* stats;     // null: no statistics
  uint32_t* hist_counts;  // kHistBins per bucket, with stats
  PayloadHeader header;
  float levels[kMaxLevels];
};

constexpr int kDecodeThreads = 256;

// One validated payload, as the kernel reads it.
struct DecodeSource {
  const unsigned char* payload;  // device, 4-byte aligned
  uint64_t norms_offset;
  uint64_t symbols_offset;
  uint32_t bucket_size;
  uint16_t table_size;
  uint8_t bits;
  uint8_t method;  // qccl::Method
};

// Where the decode kernel finds payload p: a host-validated list in device
// memory (`list`), or, with list == nullptr, payloads that share one layout
// (`uniform`) at uniform.payload + p * stride, checked on the device by
// check_headers_kernel. The uniform form needs no host-written list, so it
// needs no synchronisation (docs/gpu.md "Synchronisation points").
struct DecodeSources {
  const DecodeSource* list;
  DecodeSource uniform;
  uint64_t stride;
};

// Bits of the device-side error word: a symbol indexed past the table; a
// payload whose header or table does not match the expected layout.
constexpr uint32_t kErrorSymbolBeyondTable = 1u;
constexpr uint32_t kErrorHeaderMismatch = 2u;

}  // namespace kernels
}  // namespace qccl
