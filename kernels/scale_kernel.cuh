// x[i] *= factor on the device: the avg of the device-buffer collectives
// (src/collective/device_collectives_cuda.cc). One float32 multiply per
// element, round to nearest, exactly the CPU's finish_reduction loop, so
// every rank (and the CPU path) scales identically.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/result.h"

namespace qccl {
namespace kernels {

Result launch_scale(float* x, uint64_t count, float factor, cudaStream_t stream);

}  // namespace kernels
}  // namespace qccl
