// Transport over the caller's callbacks (qcclTransportOps_t, "bring your own
// transport", docs/api.md): the adapter between the public ops table and
// the Transport interface. Missing optional callbacks get fallbacks built on
// allgatherv that give every rank the same bits.
//
// A callback that fails is qcclTransportError naming the operation and
// quoting the ops' lastError text. The ranks may then be out of step (one
// rank's callback failed while another's went on), so, like MpiTransport
// after a timeout, this transport refuses every later call.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "transport/rank_order_sum.h"
#include "transport/transport.h"

namespace qccl {

class CallbackTransport final : public Transport {
 public:
  // Validates `ops` (NULL, size, nranks, rank, allgatherv) and copies it.
  // The result does not own ops->ctx until own_context(): a failed
  // qcclCommInitTransport leaves ctx to its caller.
  static Result create(const qcclTransportOps_t* ops, std::unique_ptr<CallbackTransport>* out);
  ~CallbackTransport() override;

  // From now on the destructor calls ops.destroy(ctx).
  void own_context() { owns_ctx_ = true; }

  int rank() const override { return ops_.rank; }
  int size() const override { return ops_.nranks; }

  Result allgatherv(const void* send, uint64_t send_bytes, void* recv, const uint64_t* recv_bytes,
                    const uint64_t* recv_offsets) override;
  Result alltoallv(const void* send, const uint64_t* send_bytes, const uint64_t* send_offsets,
                   void* recv, const uint64_t* recv_bytes, const uint64_t* recv_offsets) override;
  Result allreduce_sum(double* values, size_t n) override;
  Result allreduce_passthrough(const void* send, void* recv, uint64_t count,
                               DataType dtype) override;
  Result barrier() override;
  // Through ops.duplicate; the new transport owns the new ctx.
  Result duplicate(std::unique_ptr<Transport>* out) override;

 private:
  explicit CallbackTransport(const qcclTransportOps_t& ops) : ops_(ops) {}

  Result check_usable(const char* op) const;
  // Turns a callback's return code into ours (and breaks the transport).
  Result checked(qcclResult_t code, const char* op);
  // Equal-size allgatherv: every rank sends `bytes`, lands rank-major in recv.
  Result allgather_equal(const void* send, uint64_t bytes, void* recv);

  // The fallbacks, used when the optional callback is NULL.
  Result alltoallv_by_allgather(const void* send, const uint64_t* send_bytes,
                                const uint64_t* send_offsets, void* recv,
                                const uint64_t* recv_bytes, const uint64_t* recv_offsets);
  Result sum_by_allgather(double* values, size_t n);

  qcclTransportOps_t ops_;
  bool owns_ctx_ = false;
  std::string broken_by_;  // the callback that failed, if any
  std::vector<uint64_t> sizes_, offsets_;
  std::vector<unsigned char> gathered_;
  RankOrderSum rank_order_sum_;
};

}  // namespace qccl
