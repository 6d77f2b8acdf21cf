// Host-side launchers of the codec kernels. kernel_dispatch.cu is the one
// place where the kernel templates (bits x input dtype, docs/style.md "From CUB /
// CUTLASS") are instantiated, by the switches that pick them.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/method.h"
#include "core/result.h"
#include "kernel_args.cuh"

namespace qccl {
namespace kernels {

// One block per bucket (at least one, so block 0 writes the header).
Result launch_encode_quantized(const EncodeArgs& args, DataType dtype, int bits,
                               cudaStream_t stream);
Result launch_encode_cast(const EncodeArgs& args, DataType dtype, Method method,
                          cudaStream_t stream);
// `poisoned`: null, or the word launch_check_headers set for these sources.
Result launch_decode_accumulate(const DecodeSources& sources, int n, uint64_t count, float* acc,
                                bool assign_first, const uint32_t* poisoned, uint32_t* error,
                                cudaStream_t stream);
// Uniform sources (list == nullptr) against `expected`; *poisoned must be 0
// before the launch.
Result launch_check_headers(const DecodeSources& sources, int n, const PayloadHeader& expected,
                            uint32_t* poisoned, uint32_t* error, cudaStream_t stream);
Result launch_cast_from_float(const float* in, uint64_t count, DataType dtype, void* out,
                              cudaStream_t stream);
Result launch_cast_to_float(const void* in, uint64_t count, DataType dtype, float* out,
                            cudaStream_t stream);

}  // namespace kernels
}  // namespace qccl
