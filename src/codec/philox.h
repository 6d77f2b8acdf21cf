// Philox4x32-10 (Salmon et al., SC'11), the counter-based RNG behind every
// stochastic rounding draw. Written once for host and device so the CPU and
// CUDA encoders draw the same numbers (docs/design.md §5, promise 2).
#pragma once

#include <cstdint>

#include "codec/host_device.h"

namespace qccl {

struct Philox4x32 {
  uint32_t v[4];
};

namespace philox_detail {
constexpr uint32_t kMul0 = 0xD2511F53u;
constexpr uint32_t kMul1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kWeyl1 = 0xBB67AE85u;  // sqrt(3) - 1

QCCL_HD void mulhilo(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  const uint64_t product = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  *hi = static_cast<uint32_t>(product >> 32);
  *lo = static_cast<uint32_t>(product);
}
}  // namespace philox_detail

QCCL_HD Philox4x32 philox4x32_10(Philox4x32 ctr, uint32_t key0, uint32_t key1) {
  using namespace philox_detail;
  // Fully unrolled so a CPU loop over many counters can vectorise.
#if defined(__CUDACC__)
#pragma unroll
#elif defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 10
#endif
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kMul0, ctr.v[0], &hi0, &lo0);
    mulhilo(kMul1, ctr.v[2], &hi1, &lo1);
    ctr = Philox4x32{{hi1 ^ ctr.v[1] ^ key0, lo1, hi0 ^ ctr.v[3] ^ key1, lo0}};
    key0 += kWeyl0;
    key1 += kWeyl1;
  }
  return ctr;
}

// Where a draw comes from. Stream separates the independent quantisations of
// one step (e.g. SRA's first encode and its re-encode of the reduced chunk).
struct DrawKey {
  uint64_t seed;
  uint32_t rank;    // < 2^24
  uint32_t stream;  // < 256
  uint32_t step;    // the step counter, modulo 2^32
};

// The four 32-bit draws for elements 4g .. 4g+3 (element index = global
// index in the caller's buffer).
QCCL_HD Philox4x32 draws_for_group(const DrawKey& key, uint64_t group) {
  const Philox4x32 ctr{{static_cast<uint32_t>(group), static_cast<uint32_t>(group >> 32),
                        key.rank | (key.stream << 24), key.step}};
  return philox4x32_10(ctr, static_cast<uint32_t>(key.seed), static_cast<uint32_t>(key.seed >> 32));
}

// A uniform float in [0, 1) with 24 random bits: exact on any IEEE device.
QCCL_HD float uniform_from_bits(uint32_t bits) {
  return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f);
}

}  // namespace qccl
