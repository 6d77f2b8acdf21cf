// See producer_kernel.h.
#include <cstdint>

#include "producer_kernel.h"

namespace qccl::gpu_test {
namespace {

__device__ uint64_t global_timer_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// One block: thread 0 spins, then the block copies (byte loop: the tests'
// buffers are at most a few hundred KB, and may be misaligned).
__global__ void spin_then_copy(unsigned char* dst, const unsigned char* src, size_t bytes,
                               uint64_t spin_ns) {
  if (threadIdx.x == 0) {
    const uint64_t start_ns = global_timer_ns();
    const long long start_cycles = clock64();
    // 4 cycles per ns: at any clock below 4 GHz this bound is longer than
    // spin_ns, so it only ends the wait if the global timer is stuck.
    const long long max_cycles = static_cast<long long>(4 * spin_ns);
    while (global_timer_ns() - start_ns < spin_ns && clock64() - start_cycles < max_cycles) {
    }
  }
  __syncthreads();
  for (size_t i = threadIdx.x; i < bytes; i += blockDim.x) dst[i] = src[i];
}

}  // namespace

cudaError_t LaunchSlowProducer(void* dst, const void* src, size_t bytes, double milliseconds,
                               cudaStream_t stream) {
  const auto spin_ns = static_cast<uint64_t>(milliseconds * 1e6);
  spin_then_copy<<<1, 256, 0, stream>>>(static_cast<unsigned char*>(dst),
                                        static_cast<const unsigned char*>(src), bytes, spin_ns);
  return cudaGetLastError();
}

}  // namespace qccl::gpu_test
