// Overflow-checked unsigned arithmetic for byte counts (docs/api.md "Size
// limits"): every count × element size and every size derived from it goes
// through these, so a huge count is an error, never a wrapped value. Also
// compiled by nvcc for the payload layout (codec/payload_format.h).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define QCCL_CHECKED_HD __host__ __device__ __forceinline__
#else
#define QCCL_CHECKED_HD inline
#endif

namespace qccl {

// *out = a * b; false (and *out untouched) when it does not fit in 64 bits.
QCCL_CHECKED_HD bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  if (b != 0 && a > UINT64_MAX / b) return false;
  *out = a * b;
  return true;
}

// *out = a + b; false (and *out untouched) when it does not fit in 64 bits.
QCCL_CHECKED_HD bool checked_add(uint64_t a, uint64_t b, uint64_t* out) {
  if (a > UINT64_MAX - b) return false;
  *out = a + b;
  return true;
}

}  // namespace qccl
