// Fused encode (docs/algorithms.md §1, docs/design.md §4): one 256-thread block per
// bucket reads the bucket, reduces its norm in the canonical order of
// quantize_math.h, normalises, draws, rounds and bit-packs, and (optionally)
// produces the bucket's sufficient statistics (docs/design.md §7). Every per-element
// step calls the same __host__ __device__ helper as the CPU codec
// (src/codec/cpu_codec.cc), so the payload bytes are the same.
#pragma once

#include <cstdint>

#include "codec/cpu_codec.h"
#include "codec/half_cast.h"
#include "codec/payload_format.h"
#include "codec/philox.h"
#include "codec/quantize_math.h"
#include "kernel_args.cuh"

namespace qccl {
namespace kernels {

// Input element conversion: float32, IEEE fp16 or bfloat16 (half_cast.h).
template <DataType kDtype>
struct InputTraits;
template <>
struct InputTraits<DataType::kFloat32> {
  using Storage = float;
  __device__ static float to_float(float x) { return x; }
};
template <>
struct InputTraits<DataType::kFloat16> {
  using Storage = uint16_t;
  __device__ static float to_float(uint16_t h) { return fp16_to_float(h); }
};
template <>
struct InputTraits<DataType::kBfloat16> {
  using Storage = uint16_t;
  __device__ static float to_float(uint16_t h) { return bf16_to_float(h); }
};

// Block 0 writes the header and table (host-built, identical to the CPU's).
__device__ inline void write_header_and_table(const EncodeArgs& a, int table_floats) {
  if (blockIdx.x != 0) return;
  const uint32_t* header_words = reinterpret_cast<const uint32_t*>(&a.header);
  uint32_t* out_words = reinterpret_cast<uint32_t*>(a.out);
  constexpr int kHeaderWords = sizeof(PayloadHeader) / 4;
  for (int i = threadIdx.x; i < kHeaderWords + table_floats; i += blockDim.x) {
    out_words[i] = i < kHeaderWords ? header_words[i] : float_bits(a.levels[i - kHeaderWords]);
  }
}

// The canonical tree of tree_sum_lanes (stride 128, 64, ..., 1: lanes[l] +=
// lanes[l + stride]) done by the block: shared memory down to stride 32,
// then warp 0 with shuffles (lane l reads lane l + stride: the same add).
// Every thread gets the result.
__device__ inline float block_tree_sum(float value, float* lanes, float* result) {
  const int t = threadIdx.x;
  lanes[t] = value;
  __syncthreads();
  for (int stride = kNormLanes / 2; stride >= 32; stride /= 2) {
    if (t < stride) lanes[t] = add_rn(lanes[t], lanes[t + stride]);
    __syncthreads();
  }
  if (t < 32) {
    float v = lanes[t];
    for (int stride = 16; stride > 0; stride /= 2) v = add_rn(v, __shfl_down_sync(~0u, v, stride));
    if (t == 0) *result = v;
  }
  __syncthreads();
  const float sum = *result;
  __syncthreads();  // lanes and result may be reused by the caller
  return sum;
}

// Max of non-negative, non-NaN partial maxima: order does not matter.
__device__ inline float block_max(float value, float* lanes, float* result) {
  const int t = threadIdx.x;
  for (int stride = 16; stride > 0; stride /= 2)
    value = fmaxf(value, __shfl_down_sync(~0u, value, stride));
  if ((t & 31) == 0) lanes[t / 32] = value;
  __syncthreads();
  if (t == 0) {
    float m = lanes[0];
    for (int w = 1; w < kWarps; ++w) m = fmaxf(m, lanes[w]);
    *result = m;
  }
  __syncthreads();
  const float m = *result;
  __syncthreads();
  return m;
}

// Word j (0..7) of two consecutive Philox outputs, by selects: indexing the
// arrays with a runtime j would put them on the stack.
__device__ inline uint32_t pick_draw(const Philox4x32& a, const Philox4x32& b, int j) {
  const uint32_t w0 = j < 4 ? a.v[0] : b.v[0];
  const uint32_t w1 = j < 4 ? a.v[1] : b.v[1];
  const uint32_t w2 = j < 4 ? a.v[2] : b.v[2];
  const uint32_t w3 = j < 4 ? a.v[3] : b.v[3];
  const int c = j & 3;
  return c == 0 ? w0 : (c == 1 ? w1 : (c == 2 ? w2 : w3));
}

// The elements of one 16-byte load (little-endian: lower address, lower bits).
template <typename Traits>
__device__ inline void stage_vector(const uint4 raw, float* dst) {
  using Storage = typename Traits::Storage;
  if constexpr (sizeof(Storage) == 4) {
    dst[0] = Traits::to_float(__uint_as_float(raw.x));
    dst[1] = Traits::to_float(__uint_as_float(raw.y));
    dst[2] = Traits::to_float(__uint_as_float(raw.z));
    dst[3] = Traits::to_float(__uint_as_float(raw.w));
  } else {
    const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      dst[2 * k] = Traits::to_float(static_cast<uint16_t>(words[k] & 0xFFFFu));
      dst[2 * k + 1] = Traits::to_float(static_cast<uint16_t>(words[k] >> 16));
    }
  }
}

template <int kBits, DataType kDtype, bool kStaged>
__global__ void __launch_bounds__(kEncodeThreads)
    encode_quantized_kernel(const __grid_constant__ EncodeArgs a) {
  using Traits = InputTraits<kDtype>;
  using Storage = typename Traits::Storage;
  extern __shared__ float staged[];  // kStaged: the bucket as float32
  __shared__ float levels[kMaxLevels];
  __shared__ float lanes[kNormLanes];
  __shared__ float broadcast;
  __shared__ int last_nan;
  __shared__ __align__(16) uint32_t warp_draws[kWarps][4 * 32];
  __shared__ uint32_t hist[kHistBins];

  write_header_and_table(a, a.num_levels);
  if (a.count == 0) return;
  const int t = threadIdx.x;
  const int lane = t & 31;
  const int warp = t / 32;
  const uint64_t b = blockIdx.x;
  const uint64_t off = b * a.bucket_size;
  const uint32_t n =
      static_cast<uint32_t>(a.count - off < a.bucket_size ? a.count - off : a.bucket_size);
  const Storage* in = static_cast<const Storage*>(a.in) + off;
  for (int i = t; i < a.num_levels; i += kEncodeThreads) levels[i] = a.levels[i];
  for (int i = t; i < kHistBins; i += kEncodeThreads) hist[i] = 0;
  if (t == 0) last_nan = -1;

  if (kStaged) {
    // 16-byte loads when the bucket start is aligned (bucket offsets are
    // multiples of 32 elements, so this is the alignment of `in` itself).
    constexpr int kPerVector = 16 / sizeof(Storage);
    const bool aligned = (reinterpret_cast<uintptr_t>(in) & 15) == 0;
    const uint32_t vectors = aligned ? n / kPerVector : 0;
    for (uint32_t v = t; v < vectors; v += kEncodeThreads) {
      stage_vector<Traits>(reinterpret_cast<const uint4*>(in)[v], staged + v * kPerVector);
    }
    for (uint32_t i = vectors * kPerVector + t; i < n; i += kEncodeThreads)
      staged[i] = Traits::to_float(in[i]);
  }
  __syncthreads();
  auto value = [&](uint32_t pos) -> float {
    return kStaged ? staged[pos] : Traits::to_float(in[pos]);
  };

  // Norm: lane t accumulates elements t, t + 256, ... in sequence
  // (quantize_math.h, kNormLanes), exactly as bucket_norm_reference does.
  float linf = 0.0f;
  float sum_squares = 0.0f;
  int my_last_nan = -1;
  for (uint32_t pos = t; pos < n; pos += kEncodeThreads) {
    const float x = value(pos);
    linf = abs_max_propagating_nan(linf, x);
    if (!a.linf) sum_squares = square_accumulate(sum_squares, x);
    if (x != x) my_last_nan = static_cast<int>(pos);
  }
  if (my_last_nan >= 0) atomicMax(&last_nan, my_last_nan);
  // The CPU's sequential abs_max_propagating_nan ends on the last NaN in
  // index order (its bits, unchanged); without a NaN the max is exact.
  const float finite_max = block_max(my_last_nan >= 0 ? 0.0f : linf, lanes, &broadcast);
  if (last_nan >= 0)
    linf = value(static_cast<uint32_t>(last_nan));
  else
    linf = finite_max;
  float norm = linf;
  if (!a.linf) {
    const float total = block_tree_sum(sum_squares, lanes, &broadcast);
    if (!l2_needs_rescale(total, linf)) {
      norm = sqrtf(total);
    } else {  // block-uniform branch: total and linf are the same in every thread
      float rescaled_sum = 0.0f;
      for (uint32_t pos = t; pos < n; pos += kEncodeThreads)
        rescaled_sum = square_accumulate(rescaled_sum, rescaled(value(pos), linf));
      // Linf when the L2 norm exceeds FLT_MAX: the CPU's float (quantize_math.h).
      norm = l2_from_rescaled(linf, block_tree_sum(rescaled_sum, lanes, &broadcast));
    }
  }
  norm = canonical_nan(norm);  // one NaN pattern on CPU and GPU
  if (t == 0) reinterpret_cast<float*>(a.out + a.norms_offset)[b] = norm;

  // Quantise in batches of 4 rows of 256: lane i of warp w draws Philox for
  // the 4 consecutive elements 4(i%8) .. 4(i%8)+3 of row i/8 in the warp's
  // 32-column slice (one Philox call per 4 elements, as the CPU's
  // fill_draws), then reads back the word of its own element.
  uint32_t* words = reinterpret_cast<uint32_t*>(a.out + a.symbols_offset) +
                    bucket_word_offset(b, a.bucket_size, kBits);
  const uint64_t first_index = a.index_base + off;
  const int shift = static_cast<int>(first_index & 3);
  float sum_r = 0.0f, sum_r2 = 0.0f;
  for (uint32_t row0 = 0; row0 * kEncodeThreads < n; row0 += 4) {
    {
      const uint32_t pos = (row0 + lane / 8) * kEncodeThreads + warp * 32 + 4 * (lane % 8);
      if (pos < n) {
        const uint64_t e = first_index + pos;
        const Philox4x32 lo = draws_for_group(a.key, e >> 2);
        const Philox4x32 hi = shift ? draws_for_group(a.key, (e >> 2) + 1) : lo;
        uint4 d;
        d.x = pick_draw(lo, hi, shift + 0);
        d.y = pick_draw(lo, hi, shift + 1);
        d.z = pick_draw(lo, hi, shift + 2);
        d.w = pick_draw(lo, hi, shift + 3);
        reinterpret_cast<uint4*>(warp_draws[warp])[lane] = d;
      }
    }
    __syncwarp();
    for (int q = 0; q < 4; ++q) {
      const uint32_t row = row0 + q;
      if (row * kEncodeThreads >= n) break;  // block-uniform
      const uint32_t pos = row * kEncodeThreads + t;
      uint32_t sym = 0;
      if (pos < n) {
        const float r = normalise(value(pos), norm);
        sym = stochastic_symbol(levels, a.num_levels, r, warp_draws[warp][32 * q + lane]);
        if (a.stats != nullptr) {
          sum_r = add_rn(sum_r, r);
          sum_r2 = square_accumulate(sum_r2, r);
          const float magnitude = fabsf(r);
          if (magnitude <= 1.0f) {  // not NaN
            const int bin =
                static_cast<int>(mul_rn(sqrtf(magnitude), static_cast<float>(kHistBins)));
            atomicAdd(&hist[bin < kHistBins ? bin : kHistBins - 1], 1u);
          }
        }
      }
      // Group g = 8 * row + warp holds positions 32g .. 32g+31, lane = coordinate.
      const uint32_t group = row * kWarps + warp;
      if (group * kGroupSize < n) {  // warp-uniform: padding lanes carry symbol 0
        uint32_t mine = 0;
#pragma unroll
        for (int k = 0; k < kBits; ++k) {
          const uint32_t word = __ballot_sync(~0u, (sym >> k) & 1u);
          if (lane == k) mine = word;
        }
        if (lane < kBits) words[static_cast<uint64_t>(group) * kBits + lane] = mine;
      }
    }
    __syncwarp();  // warp_draws is refilled by the next batch
  }

  if (a.stats != nullptr) {
    const float total_r = block_tree_sum(sum_r, lanes, &broadcast);
    const float total_r2 = block_tree_sum(sum_r2, lanes, &broadcast);
    if (t == 0) {
      BucketStats s;
      s.norm = norm;
      s.sum_r = total_r;
      s.sum_r2 = total_r2;
      s.count = n;
      a.stats[b] = s;
    }
    for (int i = t; i < kHistBins; i += kEncodeThreads) a.hist_counts[b * kHistBins + i] = hist[i];
  }
}

// fp16 / bf16 / none: a plain cast per element, no table (docs/algorithms.md §6).
template <DataType kDtype, Method kMethod>
__global__ void encode_cast_kernel(const __grid_constant__ EncodeArgs a) {
  using Traits = InputTraits<kDtype>;
  using Storage = typename Traits::Storage;
  write_header_and_table(a, 0);
  const Storage* in = static_cast<const Storage*>(a.in);
  unsigned char* body = a.out + sizeof(PayloadHeader);
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t i = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < a.count;
       i += stride) {
    const float x = Traits::to_float(in[i]);
    if (kMethod == Method::kNone) {
      reinterpret_cast<float*>(body)[i] = x;
    } else {
      reinterpret_cast<uint16_t*>(body)[i] =
          kMethod == Method::kFp16 ? float_to_fp16(x) : float_to_bf16(x);
    }
  }
  // A 16-bit body of odd length ends in 2 bytes of padding, defined as 0.
  if (kMethod != Method::kNone && blockIdx.x == 0 && threadIdx.x == 0 && (a.count & 1))
    reinterpret_cast<uint16_t*>(body)[a.count] = 0;
}

}  // namespace kernels
}  // namespace qccl
