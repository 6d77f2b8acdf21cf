// A Transport that forwards to the communicator's and remembers when each
// call ran and how many bytes it moved. The engine's collective context
// runs on it so the timeline can split one compressed allreduce into
// QUANTIZE (up to the largest transfer), COMMUNICATE (the largest
// transfer) and DEQUANTIZE (after it) without hooks in collective/.
#pragma once

#include <cstdint>
#include <vector>

#include "transport/transport.h"

namespace qccl {

struct TransferRecord {
  int64_t start_us = 0, end_us = 0;
  uint64_t bytes = 0;
};

class TimedTransport final : public Transport {
 public:
  explicit TimedTransport(Transport& inner) : inner_(inner) {}

  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  void abandon(const std::string& reason) override { inner_.abandon(reason); }
  Result allgatherv(const void* send, uint64_t send_bytes, void* recv, const uint64_t* recv_bytes,
                    const uint64_t* recv_offsets) override;
  Result alltoallv(const void* send, const uint64_t* send_bytes, const uint64_t* send_offsets,
                   void* recv, const uint64_t* recv_bytes, const uint64_t* recv_offsets) override;
  Result allreduce_sum(double* values, size_t n) override;
  Result allreduce_passthrough(const void* send, void* recv, uint64_t count,
                               DataType dtype) override;
  Result barrier() override;

  void clear() { records_.clear(); }
  // The record that moved the most bytes, or null when none ran.
  const TransferRecord* largest() const;

 private:
  template <typename Call>
  Result timed(uint64_t bytes, Call&& call);

  Transport& inner_;
  std::vector<TransferRecord> records_;
};

}  // namespace qccl
