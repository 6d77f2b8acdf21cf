// Decode-accumulate (docs/design.md §6): unpack N payloads and add them into a
// float32 accumulator in rank order, in one launch, so the allgather and SRA
// steps cost one kernel, not one per rank. Each element's sum is formed in
// the same order with the same roundings as N calls of the CPU
// decode_accumulate (src/codec/cpu_codec.cc), so the result is bit-identical.
// Headers were validated on the host, or (uniform payloads) are checked on
// the device by check_headers_kernel before the decode; the kernel trusts the
// layout it is given, so it never reads outside a payload.
#pragma once

#include <cstdint>

#include "codec/half_cast.h"
#include "codec/payload_format.h"
#include "codec/quantize_math.h"
#include "core/method.h"
#include "kernel_args.cuh"

namespace qccl {
namespace kernels {

// Value of element e (lane = coordinate of its group of 32) of one payload.
// All 32 lanes of the warp must call it (shuffles).
__device__ inline float decode_element(const DecodeSource& s, uint64_t group, int lane, bool valid,
                                       uint32_t* error) {
  const uint64_t e = group * kGroupSize + lane;
  const Method method = static_cast<Method>(s.method);
  if (method == Method::kNone || method == Method::kFp16 || method == Method::kBf16) {
    if (!valid) return 0.0f;
    const unsigned char* body = s.payload + sizeof(PayloadHeader);
    if (method == Method::kNone) return reinterpret_cast<const float*>(body)[e];
    const uint16_t h = reinterpret_cast<const uint16_t*>(body)[e];
    return method == Method::kFp16 ? fp16_to_float(h) : bf16_to_float(h);
  }
  // A bucket is a whole number of groups, so a group lies in one bucket.
  const uint64_t bucket = group * kGroupSize / s.bucket_size;
  const uint64_t group_in_bucket = group - bucket * (s.bucket_size / kGroupSize);
  const uint32_t* words = reinterpret_cast<const uint32_t*>(s.payload + s.symbols_offset) +
                          bucket_word_offset(bucket, s.bucket_size, s.bits) +
                          group_in_bucket * s.bits;
  // Lane k loads word k (one coalesced load), then every lane collects bit
  // `lane` of each word: unpack_symbol's bit order.
  const uint32_t mine = lane < s.bits ? words[lane] : 0u;
  uint32_t sym = 0;
  for (int k = 0; k < s.bits; ++k) sym |= ((__shfl_sync(~0u, mine, k) >> lane) & 1u) << k;
  if (!valid) return 0.0f;
  const float norm = reinterpret_cast<const float*>(s.payload + s.norms_offset)[bucket];
  float level = 0.0f;  // the CPU decodes a symbol past the table through a zero-padded table
  if (sym < s.table_size) {
    level = reinterpret_cast<const float*>(s.payload + sizeof(PayloadHeader))[sym];
  } else {
    atomicOr(error, kErrorSymbolBeyondTable);
  }
  return norm == 0.0f ? 0.0f : mul_rn(norm, level);
}

__device__ inline DecodeSource source_at(const DecodeSources& sources, int p) {
  if (sources.list != nullptr) return sources.list[p];
  DecodeSource s = sources.uniform;
  s.payload += static_cast<uint64_t>(p) * sources.stride;
  return s;
}

// One thread per uniform payload: the fields that fix the layout must equal
// `expected`'s and the checksum (FNV-1a of header and table, as
// payload_checksum on the host) must hold. The fields that legitimately
// differ between ranks (table version and values, rank/stream, step, seed,
// index base) are covered by the checksum only. A mismatch sets *poisoned
// (this launch's decode writes NaN) and the error word (reported later).
__global__ void check_headers_kernel(DecodeSources sources, int n, PayloadHeader expected,
                                     uint32_t* poisoned, uint32_t* error) {
  const int p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= n) return;
  const unsigned char* payload = source_at(sources, p).payload;
  PayloadHeader h;  // payloads are 4-byte aligned only: copy word by word
  const uint32_t* words = reinterpret_cast<const uint32_t*>(payload);
  uint32_t* copy = reinterpret_cast<uint32_t*>(&h);
  for (int i = 0; i < static_cast<int>(sizeof(PayloadHeader) / 4); ++i) copy[i] = words[i];
  bool ok = h.magic == expected.magic && h.version == expected.version &&
            h.method == expected.method && h.bits == expected.bits && h.norm == expected.norm &&
            h.flags == expected.flags && h.table_size == expected.table_size &&
            h.bucket_size == expected.bucket_size && h.count == expected.count &&
            h.total_bytes == expected.total_bytes;
  if (ok) {
    const uint32_t carried = h.checksum;
    h.checksum = 0;
    uint32_t hash = fnv1a(kFnvOffset, reinterpret_cast<const unsigned char*>(&h), sizeof h);
    hash = fnv1a(hash, payload + sizeof(PayloadHeader), 4ull * h.table_size);
    ok = hash == carried;
  }
  if (!ok) {
    atomicOr(poisoned, 1u);
    atomicOr(error, kErrorHeaderMismatch);
  }
}

// acc[e] (+)= payload_0[e] + ... in rank order; assign_first: acc = payload_0.
// `poisoned` (uniform payloads only, else null): set by check_headers_kernel
// when a payload failed its check; the output is then NaN, never a plausible
// sum of garbage, and the error word says why.
__global__ void __launch_bounds__(kDecodeThreads)
    decode_accumulate_kernel(DecodeSources sources, int n, uint64_t count, float* acc,
                             bool assign_first, const uint32_t* poisoned, uint32_t* error) {
  const int lane = threadIdx.x & 31;
  const uint64_t groups = div_ceil(count, kGroupSize);
  const uint64_t warps_total = static_cast<uint64_t>(gridDim.x) * (blockDim.x / 32);
  const bool poison = poisoned != nullptr && *poisoned != 0;  // the same for the whole grid
  for (uint64_t group = (static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
       group < groups; group += warps_total) {
    const uint64_t e = group * kGroupSize + lane;
    const bool valid = e < count;
    if (poison) {
      if (valid) acc[e] = __int_as_float(0x7fc00000);  // quiet NaN
      continue;
    }
    float sum = (valid && !assign_first) ? acc[e] : 0.0f;
    for (int p = 0; p < n; ++p) {
      const float x = decode_element(source_at(sources, p), group, lane, valid, error);
      sum = (p == 0 && assign_first) ? x : add_rn(sum, x);
    }
    if (valid) acc[e] = canonical_nan(sum);  // the CPU's NaN bits, not CUDA's 0x7fffffff
  }
}

// Output dtype <-> float32 (round to nearest even, half_cast.h).
template <DataType kDtype>
__global__ void cast_from_float_kernel(const float* in, uint64_t count, void* out) {
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t i = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride) {
    const float x = in[i];
    if (kDtype == DataType::kFloat32) static_cast<float*>(out)[i] = x;
    if (kDtype == DataType::kFloat16) static_cast<uint16_t*>(out)[i] = float_to_fp16(x);
    if (kDtype == DataType::kBfloat16) static_cast<uint16_t*>(out)[i] = float_to_bf16(x);
  }
}

template <DataType kDtype>
__global__ void cast_to_float_kernel(const void* in, uint64_t count, float* out) {
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t i = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride) {
    if (kDtype == DataType::kFloat32) out[i] = static_cast<const float*>(in)[i];
    if (kDtype == DataType::kFloat16) out[i] = fp16_to_float(static_cast<const uint16_t*>(in)[i]);
    if (kDtype == DataType::kBfloat16) out[i] = bf16_to_float(static_cast<const uint16_t*>(in)[i]);
  }
}

}  // namespace kernels
}  // namespace qccl
