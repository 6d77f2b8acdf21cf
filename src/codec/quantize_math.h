// The quantiser of docs/algorithms.md §1, one definition for the CPU codec and
// the CUDA kernels: bucket norm in a fixed reduction order, cell search,
// unbiased stochastic rounding, and the bit-plane packing of symbols.
#pragma once

#include <cmath>
#include <cstdint>

#include "codec/host_device.h"
#include "codec/philox.h"

namespace qccl {

// The bucket norm is reduced in one fixed order so CPU and GPU get the same
// float: lane l (0..255) accumulates elements l, l+256, l+512, ... in
// sequence, then lanes are combined by a pairwise tree (stride 128, 64, ...,
// 1). A 256-thread CUDA block maps onto it directly; on the CPU the lane
// loop vectorises.
constexpr int kNormLanes = 256;

// Symbols are packed in groups of 32 coordinates as `bits` 32-bit words; word
// k holds bit k of each of the 32 symbols (coordinate i of the group at bit
// i). Exactly `bits` bits per coordinate; a warp packs a group with one
// ballot per bit.
constexpr int kGroupSize = 32;

// Combines kNormLanes partial sums in the canonical tree order. `lanes` is
// overwritten.
QCCL_HD float tree_sum_lanes(float* lanes) {
  for (int stride = kNormLanes / 2; stride > 0; stride /= 2) {
    for (int l = 0; l < stride; ++l) lanes[l] = add_rn(lanes[l], lanes[l + stride]);
  }
  return lanes[0];
}

// One lane step of the L2 reduction: acc + x*x, rounded twice (no FMA).
QCCL_HD float square_accumulate(float acc, float x) {
  return add_rn(acc, mul_rn(x, x));
}

// max(m, |x|) that propagates NaN (fmaxf would drop it and a NaN gradient
// would decode finite): once m is NaN it stays NaN.
QCCL_HD float abs_max_propagating_nan(float m, float x) {
  const float a = x < 0.0f ? -x : x;
  return (a > m || a != a) ? a : m;
}

// The plain sum of squares overflowed (|x| >~ 1e19) or underflowed (all
// |x| <~ 1e-20): redo it on x / linf so the norm stays exact-ish and finite
// (l2_from_rescaled; an L2 norm beyond FLT_MAX falls back to linf).
// A NaN or Inf input keeps the non-finite result (linf is then non-finite).
QCCL_HD bool l2_needs_rescale(float sum_squares, float linf) {
  const bool finite_linf = linf - linf == 0.0f;
  return finite_linf && linf > 0.0f &&
         !(sum_squares >= 1e-30f && sum_squares - sum_squares == 0.0f);
}

// One NaN bit pattern for a NaN norm: CUDA's sqrt returns the canonical NaN
// while x86 keeps the input's payload, and the stored norm must match.
QCCL_HD float canonical_nan(float x) {
  if (x == x) return x;
#if defined(__CUDA_ARCH__)
  return __uint_as_float(0x7FC00000u);
#else
  const uint32_t bits = 0x7FC00000u;
  float f;
  __builtin_memcpy(&f, &bits, sizeof f);
  return f;
#endif
}

// Element of the rescaled pass and the norm it yields.
QCCL_HD float rescaled(float x, float linf) {
  return x / linf;
}
// linf * sqrt(sum (x/linf)^2). The rescaled sum is >= 1 (the largest element
// contributes exactly 1), so the result is >= linf. For a finite bucket whose
// exact L2 norm exceeds FLT_MAX (e.g. two elements of 3e38) the product
// overflows to Inf, and an Inf norm would decode to NaN: the stored norm is
// then linf instead. Any norm >= max|x_i| keeps r_i in [-1, 1] and the
// rounding unbiased; linf is the smallest such norm, so its grid of decoded
// values n_b * l_j is the finest and the added variance (n_b^2 (l_{j+1} -
// r)(r - l_j) per coordinate) lower than with e.g. FLT_MAX. Decoded values
// are then at most linf in magnitude, hence finite. Shared by the CPU codec
// and the CUDA kernel (one float, same bytes on both).
QCCL_HD float l2_from_rescaled(float linf, float rescaled_sum_squares) {
  const float norm = mul_rn(linf, sqrtf(rescaled_sum_squares));
  return norm - norm == 0.0f ? norm : linf;
}

// Largest j in [0, K-2] with levels[j] <= r (levels sorted, levels[0] = -1).
// A NaN r lands in cell 0; the caller's NaN norm keeps the output NaN.
// Small tables count the levels at or below r (branch-free, vectorises on
// the CPU); large ones bisect. Both compute the same j for a sorted table.
QCCL_HD int find_cell(const float* levels, int num_levels, float r) {
  if (num_levels <= 16) {
    int j = 0;
    for (int m = 1; m < num_levels - 1; ++m) j += levels[m] <= r ? 1 : 0;
    return j;
  }
  int lo = 0;
  int n = num_levels - 1;  // number of cells
  while (n > 1) {
    const int half = n / 2;
    lo = (levels[lo + half] <= r) ? lo + half : lo;
    n -= half;
  }
  return lo;
}

// Rounds r inside cell j: the upper level with probability
// (r - lo) / (hi - lo), which makes E[level] = r (unbiased).
QCCL_HD uint32_t round_in_cell(const float* levels, int j, float r, uint32_t random_bits) {
  const float lo = levels[j];
  const float hi = levels[j + 1];
  const float p = (r - lo) / (hi - lo);
  return static_cast<uint32_t>(j) + (uniform_from_bits(random_bits) < p ? 1u : 0u);
}

// Unbiased stochastic rounding of r in [-1, 1] onto the table.
QCCL_HD uint32_t stochastic_symbol(const float* levels, int num_levels, float r,
                                   uint32_t random_bits) {
  return round_in_cell(levels, find_cell(levels, num_levels, r), r, random_bits);
}

// r = v / norm, clamped into [-1, 1] (rounding can push |v|/||v|| a hair
// past 1). NaN passes through; a zero norm gives 0.
QCCL_HD float normalise(float v, float norm) {
  if (norm == 0.0f) return 0.0f;
  const float r = v / norm;
  return r > 1.0f ? 1.0f : (r < -1.0f ? -1.0f : r);
}

// Writes the `bits` words of one group from 32 symbols.
QCCL_HD void pack_group(const uint32_t* symbols, int bits, uint32_t* words) {
  for (int k = 0; k < bits; ++k) {
    uint32_t w = 0;
    for (int i = 0; i < kGroupSize; ++i) w |= ((symbols[i] >> k) & 1u) << i;
    words[k] = w;
  }
}

// Symbol of coordinate i (0..31) of a group.
QCCL_HD uint32_t unpack_symbol(const uint32_t* words, int bits, int i) {
  uint32_t s = 0;
  for (int k = 0; k < bits; ++k) s |= ((words[k] >> i) & 1u) << k;
  return s;
}

}  // namespace qccl
