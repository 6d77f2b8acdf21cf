// A slow producer for the stream-ordering tests (device_path_test.cc): one
// kernel that spins for a given time on the GPU and only then writes a
// buffer. A collective enqueued on the same stream right after it, with no
// synchronisation in between, must see the written bytes; one that reads
// the input on another stream (the legacy default stream does not order a
// cudaStreamNonBlocking stream) or from the host before the stream gets
// there sees the stale ones.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

namespace qccl::gpu_test {

// Enqueues on `stream`: spin for `milliseconds` (GPU global timer, with a
// clock64 bound so a timer that does not advance cannot hang the test), then
// copy `bytes` bytes from device memory `src` to device memory `dst`. Returns
// the launch error, if any.
cudaError_t LaunchSlowProducer(void* dst, const void* src, size_t bytes, double milliseconds,
                               cudaStream_t stream);

}  // namespace qccl::gpu_test
