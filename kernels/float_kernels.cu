#include <algorithm>

#include "codec/half_cast.h"
#include "codec/quantize_math.h"
#include "core/cuda_check.h"
#include "float_kernels.cuh"

namespace qccl {
namespace kernels {
namespace {

constexpr unsigned kThreads = 256;

__global__ void scale_kernel(float* x, uint64_t count, float factor) {
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t i = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; i < count;
       i += stride)
    x[i] = canonical_nan(__fmul_rn(x[i], factor));  // the host's NaN bits
}

__device__ float widen(const void* in, DataType dtype, uint64_t i) {
  switch (dtype) {
    case DataType::kFloat16: return fp16_to_float(static_cast<const uint16_t*>(in)[i]);
    case DataType::kBfloat16: return bf16_to_float(static_cast<const uint16_t*>(in)[i]);
    default: return static_cast<const float*>(in)[i];
  }
}

// The fixed pairwise tree of one block's kThreads values in shared memory.
__device__ double block_sum(double mine, double* shared) {
  shared[threadIdx.x] = mine;
  __syncthreads();
  for (unsigned half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half)
      shared[threadIdx.x] = __dadd_rn(shared[threadIdx.x], shared[threadIdx.x + half]);
    __syncthreads();
  }
  return shared[0];
}

__global__ void squares_partial_kernel(const void* in, DataType dtype, uint64_t count,
                                       double* partials) {
  __shared__ double shared[kThreads];
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * kThreads;
  double mine = 0;
  for (uint64_t i = blockIdx.x * static_cast<uint64_t>(kThreads) + threadIdx.x; i < count;
       i += stride) {
    const double v = widen(in, dtype, i);
    mine = __dadd_rn(mine, __dmul_rn(v, v));
  }
  const double total = block_sum(mine, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

__global__ void squares_final_kernel(const double* partials, double* out) {
  __shared__ double shared[kThreads];
  double mine = 0;
  for (unsigned b = threadIdx.x; b < kSquaresBlocks; b += kThreads)
    mine = __dadd_rn(mine, partials[b]);
  const double total = block_sum(mine, shared);
  if (threadIdx.x == 0) *out = total;
}

}  // namespace

Result launch_scale(float* x, uint64_t count, float factor, cudaStream_t stream) {
  if (count == 0) return qcclSuccess;
  const uint64_t blocks = std::min<uint64_t>((count + kThreads - 1) / kThreads, 65536);
  scale_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(x, count, factor);
  QCCL_CUDA_CHECK_LAUNCH("scale_kernel");
  return qcclSuccess;
}

Result launch_sum_of_squares(const void* in, DataType dtype, uint64_t count, double* partials,
                             double* out_device, cudaStream_t stream) {
  squares_partial_kernel<<<kSquaresBlocks, kThreads, 0, stream>>>(in, dtype, count, partials);
  QCCL_CUDA_CHECK_LAUNCH("squares_partial_kernel");
  squares_final_kernel<<<1, kThreads, 0, stream>>>(partials, out_device);
  QCCL_CUDA_CHECK_LAUNCH("squares_final_kernel");
  return qcclSuccess;
}

}  // namespace kernels
}  // namespace qccl
