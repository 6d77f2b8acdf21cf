// Transport over an NCCL communicator (DESIGN.md §1, issue 5): the GPU
// implementation of transport.h. Built only with CUDA and NCCL
// (QCCL_HAVE_NCCL); see docs/gpu.md "The NCCL path".
//
// Buffers. Payload buffers are device memory and every call on them is
// enqueued on the stream set by set_stream() and returns before it runs
// (stream-ordered, like NCCL). The collective layer also exchanges small
// host data through the same interface (call descriptors, configuration
// hashes, adapter summaries, norms); host pointers are staged through a
// device scratch buffer and the call synchronises the stream before it
// returns, so host results are ready, as transport.h promises.
//
// Mapping: allgatherv with equal sizes -> ncclAllGather (payload sizes are
// a function of count/method/bits, so compressed payloads are equal);
// unequal sizes or offsets that are not r * size -> grouped
// ncclBroadcast per rank; alltoallv -> grouped ncclSend/ncclRecv;
// allreduce_passthrough -> ncclAllReduce on float32/float16/bfloat16
// natively (bit-exact vs NCCL); allreduce_sum -> ncclAllReduce on doubles.
//
// NCCL errors become qcclTransportError (qcclRemoteError for
// ncclRemoteError) with ncclGetErrorString's text, in one place
// (nccl_failure). QCCL_TIMEOUT_S is not applied: NCCL has its own watchdog
// (NCCL_TIMEOUT / the framework's), documented in docs/gpu.md.
#pragma once

#include <cstdint>
#include <vector>

#include "transport/transport.h"

// The libraries' own spellings, so this header needs neither nccl.h nor
// cuda_runtime.h.
struct ncclComm;
typedef struct ncclComm* ncclComm_t;
struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace qccl {

class NcclTransport final : public Transport {
 public:
  // Wraps `comm`. With `owned` the communicator is destroyed with this
  // transport (qcclCommInitRank); without, it belongs to the caller
  // (qcclCommInitNccl).
  static Result create(ncclComm_t comm, bool owned, std::unique_ptr<NcclTransport>* out);
  ~NcclTransport() override;
  NcclTransport(const NcclTransport&) = delete;
  NcclTransport& operator=(const NcclTransport&) = delete;

  // The stream the next calls are enqueued on (the caller's; 0 = legacy default).
  void set_stream(cudaStream_t stream) { stream_ = stream; }
  cudaStream_t stream() const { return stream_; }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  Result allgatherv(const void* send, uint64_t send_bytes, void* recv, const uint64_t* recv_bytes,
                    const uint64_t* recv_offsets) override;
  Result alltoallv(const void* send, const uint64_t* send_bytes, const uint64_t* send_offsets,
                   void* recv, const uint64_t* recv_bytes, const uint64_t* recv_offsets) override;
  Result allreduce_sum(double* values, size_t n) override;
  Result allreduce_passthrough(const void* send, void* recv, uint64_t count,
                               DataType dtype) override;
  Result barrier() override;

 private:
  NcclTransport(ncclComm_t comm, bool owned, int rank, int size)
      : comm_(comm), owned_(owned), rank_(rank), size_(size) {}

  // Device scratch for host-pointer calls: allocated once, grown.
  Result scratch(uint64_t bytes, void** out);
  Result synchronize(const char* op);
  // Device views of possibly-host send/recv buffers: host ones are staged
  // through the scratch (send copied in on the stream); the caller copies
  // the received ranges back when *recv_staged and then synchronises.
  struct Staged {
    const void* send;
    void* recv;
    bool send_staged;
    bool recv_staged;
  };
  Result stage(const void* send, uint64_t send_total, void* recv, uint64_t recv_total, Staged* out);
  Result unstage(const Staged& staged, void* recv, const uint64_t* recv_bytes,
                 const uint64_t* recv_offsets, const char* op);

  ncclComm_t comm_;
  bool owned_;
  int rank_;
  int size_;
  cudaStream_t stream_ = nullptr;
  void* scratch_ = nullptr;
  uint64_t scratch_bytes_ = 0;
};
}  // namespace qccl
