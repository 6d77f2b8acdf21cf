// CUDA errors are translated once, here, into qcclUnhandledCudaError with the
// runtime's own text (docs/style.md "From NCCL"). Every runtime call and every
// launch in kernels/ goes through QCCL_CUDA_CHECK.
#pragma once

#include <cuda_runtime.h>

#include "core/result.h"

namespace qccl {

inline Result cuda_failure(cudaError_t error, const char* call, const char* file, int line) {
  note_failure_site(qcclUnhandledCudaError, file, line, call);
  return fail(qcclUnhandledCudaError, "CUDA error {} ({}) in {}", cudaGetErrorName(error),
              cudaGetErrorString(error), call);
}

}  // namespace qccl

#define QCCL_CUDA_CHECK(call)                                                   \
  do {                                                                          \
    const cudaError_t qccl_cuda_error_ = (call);                                \
    if (qccl_cuda_error_ != cudaSuccess)                                        \
      return ::qccl::cuda_failure(qccl_cuda_error_, #call, __FILE__, __LINE__); \
  } while (0)

// After a <<<>>> launch: configuration errors surface from cudaGetLastError;
// the message names the kernel.
#define QCCL_CUDA_CHECK_LAUNCH(kernel_name)                                                        \
  do {                                                                                             \
    const cudaError_t qccl_cuda_error_ = cudaGetLastError();                                       \
    if (qccl_cuda_error_ != cudaSuccess)                                                           \
      return ::qccl::cuda_failure(qccl_cuda_error_, "launch of " kernel_name, __FILE__, __LINE__); \
  } while (0)
