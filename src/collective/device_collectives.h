// Collectives on device buffers (issue 5, docs/gpu.md "The NCCL path").
// Declared everywhere, defined only in CUDA builds
// (device_collectives_cuda.cc): callers use them under QCCL_HAVE_CUDA.
//
// Over an NCCL transport the `allgather` algorithm (DESIGN.md §6) runs on
// the GPU: CudaCodec encode into device workspace -> ncclAllGather ->
// one decode-accumulate launch over the N payloads in rank order ->
// avg scale -> cast to the output dtype. Passthrough is ncclAllReduce.
// Over any other transport (MPI) device buffers are staged through pinned
// host memory: copy in, the CPU path unchanged, copy out.
#pragma once

#include <cstdint>
#include <memory>

#include "collective/collectives.h"

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace qccl {

class NcclTransport;

// Per-communicator device resources: the CUDA codec, device workspace and
// pinned staging, all allocated on first use and grown (never per call).
struct DeviceState;

// `nccl`: the communicator's transport when it is an NcclTransport (not
// owned), else null (device buffers are staged through host memory).
Result create_device_state(NcclTransport* nccl, std::shared_ptr<DeviceState>* out);

// qcclAllReduce / qcclAllGather with device send and recv buffers.
Result device_allreduce(Collectives& collectives, DeviceState& device, const AllreduceRequest& req,
                        cudaStream_t stream);
Result device_allgather(Collectives& collectives, DeviceState& device, const void* send, void* recv,
                        uint64_t count, DataType dtype, cudaStream_t stream);

}  // namespace qccl
