// Float32 helpers of the device codec (src/codec/cuda_codec.h) around the
// encode/decode kernels: the avg scaling and DQSGD's sum of squares.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/method.h"
#include "core/result.h"

namespace qccl {
namespace kernels {

// x[i] *= factor: one float32 multiply per element, round to nearest,
// exactly the host codec's loop, so every rank and memory scales alike.
Result launch_scale(float* x, uint64_t count, float factor, cudaStream_t stream);

// Blocks of the sum of squares (kSquaresBlocks partial sums, then one).
constexpr unsigned kSquaresBlocks = 256;

// *out_device = sum of in[i]^2 in double (in widened from `dtype`), in a
// fixed order (grid-stride partials per block, a fixed tree in each, then
// one block over the partials), so the same input gives the same bits.
// `partials` holds kSquaresBlocks doubles of device memory.
Result launch_sum_of_squares(const void* in, DataType dtype, uint64_t count, double* partials,
                             double* out_device, cudaStream_t stream);

}  // namespace kernels
}  // namespace qccl
