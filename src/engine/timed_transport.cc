#include "engine/timed_transport.h"

#include "engine/timeline.h"

namespace qccl {

template <typename Call>
Result TimedTransport::timed(uint64_t bytes, Call&& call) {
  TransferRecord r;
  r.bytes = bytes;
  r.start_us = Timeline::now_us();
  const Result result = call();
  r.end_us = Timeline::now_us();
  records_.push_back(r);
  return result;
}

Result TimedTransport::allgatherv(const void* send, uint64_t send_bytes, void* recv,
                                  const uint64_t* recv_bytes, const uint64_t* recv_offsets) {
  uint64_t total = 0;
  for (int r = 0; r < size(); ++r) total += recv_bytes[r];
  return timed(total,
               [&] { return inner_.allgatherv(send, send_bytes, recv, recv_bytes, recv_offsets); });
}

Result TimedTransport::alltoallv(const void* send, const uint64_t* send_bytes,
                                 const uint64_t* send_offsets, void* recv,
                                 const uint64_t* recv_bytes, const uint64_t* recv_offsets) {
  uint64_t total = 0;
  for (int r = 0; r < size(); ++r) total += send_bytes[r] + recv_bytes[r];
  return timed(total, [&] {
    return inner_.alltoallv(send, send_bytes, send_offsets, recv, recv_bytes, recv_offsets);
  });
}

Result TimedTransport::allreduce_sum(double* values, size_t n) {
  return timed(n * sizeof(double), [&] { return inner_.allreduce_sum(values, n); });
}

Result TimedTransport::allreduce_passthrough(const void* send, void* recv, uint64_t count,
                                             DataType dtype) {
  return timed(count * dtype_size(dtype),
               [&] { return inner_.allreduce_passthrough(send, recv, count, dtype); });
}

Result TimedTransport::barrier() {
  return timed(0, [&] { return inner_.barrier(); });
}

const TransferRecord* TimedTransport::largest() const {
  const TransferRecord* best = nullptr;
  for (const TransferRecord& r : records_)
    if (best == nullptr || r.bytes > best->bytes) best = &r;
  return best;
}

}  // namespace qccl
