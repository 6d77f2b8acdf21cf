// Device buffers over a transport that moves only host memory (MPI, a
// caller's callbacks): each device-memory buffer a call names is copied to
// host memory, the host transport runs, and received bytes are copied back
// (transport.h contract). Host-memory buffers (call descriptors, adapter
// summaries) pass straight through. The copies run on the device codec's
// stream and are waited for, so the call has completed when it returns.
#pragma once

#include <vector>

#include "codec/codec.h"
#include "transport/transport.h"

namespace qccl {

class StagingTransport final : public Transport {
 public:
  StagingTransport(Transport& inner, Codec& device) : inner_(inner), device_(device) {}

  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  bool accepts_device_memory() const override { return true; }

  Result allgatherv(const void* send, uint64_t send_bytes, void* recv, const uint64_t* recv_bytes,
                    const uint64_t* recv_offsets) override;
  Result alltoallv(const void* send, const uint64_t* send_bytes, const uint64_t* send_offsets,
                   void* recv, const uint64_t* recv_bytes, const uint64_t* recv_offsets) override;
  Result allreduce_sum(double* values, size_t n) override {
    return inner_.allreduce_sum(values, n);
  }
  Result allreduce_passthrough(const void* send, void* recv, uint64_t count,
                               DataType dtype) override;
  Result barrier() override { return inner_.barrier(); }

 private:
  // Host views of `send` (copied in when it is device memory) and `recv`.
  Result stage_in(const void* send, uint64_t send_extent, void* recv, uint64_t recv_extent,
                  const void** host_send, void** host_recv);
  // Copies the received extent back when `recv` is device memory.
  Result stage_out(void* recv, const void* host_recv, uint64_t recv_extent);

  Transport& inner_;
  Codec& device_;
  std::vector<unsigned char> send_stage_, recv_stage_;
};

}  // namespace qccl
