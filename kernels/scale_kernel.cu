#include <algorithm>

#include "cuda_check.cuh"
#include "scale_kernel.cuh"

namespace qccl {
namespace kernels {
namespace {

__global__ void scale_kernel(float* x, uint64_t count, float factor) {
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t i = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; i < count;
       i += stride)
    x[i] = __fmul_rn(x[i], factor);
}

}  // namespace

Result launch_scale(float* x, uint64_t count, float factor, cudaStream_t stream) {
  if (count == 0) return qcclSuccess;
  constexpr unsigned kThreads = 256;
  const uint64_t blocks = std::min<uint64_t>((count + kThreads - 1) / kThreads, 65536);
  scale_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(x, count, factor);
  QCCL_CUDA_CHECK_LAUNCH("scale_kernel");
  return qcclSuccess;
}

}  // namespace kernels
}  // namespace qccl
