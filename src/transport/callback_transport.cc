#include "transport/callback_transport.h"

#include <algorithm>
#include <cstring>

#include "codec/cpu_codec.h"
#include "core/checked_alloc.h"

namespace qccl {
namespace {

// Offsets of pieces packed back to back (the sizes' sum is checked by the caller).
std::vector<uint64_t> rank_major_offsets(const std::vector<uint64_t>& sizes) {
  std::vector<uint64_t> offsets(sizes.size());
  uint64_t at = 0;
  for (size_t r = 0; r < sizes.size(); ++r) {
    offsets[r] = at;
    at += sizes[r];
  }
  return offsets;
}

}  // namespace

Result CallbackTransport::create(const qcclTransportOps_t* ops,
                                 std::unique_ptr<CallbackTransport>* out) {
  if (ops == nullptr)
    return fail(qcclInvalidArgument,
                "ops is NULL (pass a qcclTransportOps_t initialised with "
                "QCCL_TRANSPORT_OPS_INITIALIZER)");
  if (ops->size != sizeof(qcclTransportOps_t))
    return fail(qcclInvalidArgument,
                "ops->size is {}, expected {} (initialise with QCCL_TRANSPORT_OPS_INITIALIZER)",
                ops->size, sizeof(qcclTransportOps_t));
  if (ops->nranks < 1)
    return fail(qcclInvalidArgument, "ops->nranks is {}, must be >= 1", ops->nranks);
  if (ops->rank < 0 || ops->rank >= ops->nranks)
    return fail(qcclInvalidArgument, "ops->rank {} is outside [0, ops->nranks = {})", ops->rank,
                ops->nranks);
  if (ops->allgatherv == nullptr)
    return fail(qcclInvalidArgument,
                "ops->allgatherv is NULL: it is the one required callback (the others fall back "
                "to it)");
  out->reset(new CallbackTransport(*ops));
  return qcclSuccess;
}

CallbackTransport::~CallbackTransport() {
  if (owns_ctx_ && ops_.destroy != nullptr) ops_.destroy(ops_.ctx);
}

Result CallbackTransport::check_usable(const char* op) const {
  if (broken_by_.empty()) return qcclSuccess;
  return fail(qcclInvalidUsage,
              "{}: this communicator is unusable after the transport callback {} failed (ranks "
              "may be out of step); destroy it and create a new one",
              op, broken_by_);
}

Result CallbackTransport::checked(qcclResult_t code, const char* op) {
  const int raw = raw_enum(&code);  // a C callback may return any int
  if (raw == qcclSuccess) return qcclSuccess;
  broken_by_ = op;
  const char* text = ops_.lastError != nullptr ? ops_.lastError(ops_.ctx) : nullptr;
  const std::string said = text != nullptr && text[0] != '\0'
                               ? std::string(text)
                               : std::string("(the transport gave no error text)");
  return fail(qcclTransportError,
              "transport callback {} failed (returned {}): {}; this communicator is now unusable",
              op, raw, said);
}

Result CallbackTransport::allgatherv(const void* send, uint64_t send_bytes, void* recv,
                                     const uint64_t* recv_bytes, const uint64_t* recv_offsets) {
  QCCL_CHECK(check_usable("allgatherv"));
  return checked(ops_.allgatherv(ops_.ctx, send, send_bytes, recv, recv_bytes, recv_offsets),
                 "allgatherv");
}

Result CallbackTransport::allgather_equal(const void* send, uint64_t bytes, void* recv) {
  const std::vector<uint64_t> sizes(size(), bytes);
  const std::vector<uint64_t> offsets = rank_major_offsets(sizes);
  return allgatherv(send, bytes, recv, sizes.data(), offsets.data());
}

Result CallbackTransport::alltoallv(const void* send, const uint64_t* send_bytes,
                                    const uint64_t* send_offsets, void* recv,
                                    const uint64_t* recv_bytes, const uint64_t* recv_offsets) {
  QCCL_CHECK(check_usable("alltoallv"));
  if (ops_.alltoallv == nullptr)
    return alltoallv_by_allgather(send, send_bytes, send_offsets, recv, recv_bytes, recv_offsets);
  return checked(
      ops_.alltoallv(ops_.ctx, send, send_bytes, send_offsets, recv, recv_bytes, recv_offsets),
      "alltoallv");
}

// Every rank learns every rank's send sizes, then gathers every rank's
// pieces packed in destination order and keeps its own: N times the bytes
// of a real all-to-all, documented as the price of leaving alltoallv out.
Result CallbackTransport::alltoallv_by_allgather(const void* send, const uint64_t* send_bytes,
                                                 const uint64_t* send_offsets, void* recv,
                                                 const uint64_t* recv_bytes,
                                                 const uint64_t* recv_offsets) {
  const int n = size();
  const int me = rank();
  std::vector<uint64_t> table(static_cast<size_t>(n) * n);  // [from][to] bytes
  QCCL_CHECK(allgather_equal(send_bytes, n * sizeof(uint64_t), table.data()));
  std::vector<uint64_t> totals(n, 0);
  for (int r = 0; r < n; ++r) {
    if (table[r * n + me] != recv_bytes[r])
      return fail(qcclInvalidUsage,
                  "alltoallv: rank {} sends {} bytes to rank {}, which expects {} (fallback over "
                  "allgatherv)",
                  r, table[r * n + me], me, recv_bytes[r]);
    for (int j = 0; j < n; ++j)
      if (!checked_add(totals[r], table[r * n + j], &totals[r]))
        return fail(qcclInvalidArgument,
                    "alltoallv: rank {} sends more than 2^64 bytes in all (fallback over "
                    "allgatherv)",
                    r);
  }
  uint64_t gathered_bytes = 0;
  for (int r = 0; r < n; ++r)
    if (!checked_add(gathered_bytes, totals[r], &gathered_bytes))
      return fail(qcclInvalidArgument,
                  "alltoallv: the ranks send more than 2^64 bytes in all (fallback over "
                  "allgatherv)");
  std::vector<unsigned char> packed;
  QCCL_CHECK(grow_vector(&packed, totals[me], "alltoallv fallback send buffer"));
  uint64_t at = 0;
  for (int j = 0; j < n; ++j) {
    if (send_bytes[j] > 0)
      std::memcpy(packed.data() + at, static_cast<const unsigned char*>(send) + send_offsets[j],
                  send_bytes[j]);
    at += send_bytes[j];
  }
  const std::vector<uint64_t> offsets = rank_major_offsets(totals);
  QCCL_CHECK(grow_vector(&gathered_, gathered_bytes, "alltoallv fallback receive buffer"));
  QCCL_CHECK(
      allgatherv(packed.data(), totals[me], gathered_.data(), totals.data(), offsets.data()));
  for (int r = 0; r < n; ++r) {
    uint64_t from = offsets[r];
    for (int j = 0; j < me; ++j) from += table[r * n + j];
    if (recv_bytes[r] > 0)
      std::memcpy(static_cast<unsigned char*>(recv) + recv_offsets[r], gathered_.data() + from,
                  recv_bytes[r]);
  }
  return qcclSuccess;
}

Result CallbackTransport::allreduce_sum(double* values, size_t n) {
  QCCL_CHECK(check_usable("allreduceSum"));
  if (ops_.allreduceSum == nullptr) return sum_by_allgather(values, n);
  return checked(ops_.allreduceSum(ops_.ctx, values, n), "allreduceSum");
}

Result CallbackTransport::sum_by_allgather(double* values, size_t n) {
  std::vector<double> all(n * size());
  QCCL_CHECK(allgather_equal(values, n * sizeof(double), all.data()));
  for (size_t i = 0; i < n; ++i) {
    double sum = all[i];
    for (int r = 1; r < size(); ++r) sum += all[r * n + i];  // rank order: same bits everywhere
    values[i] = sum;
  }
  return qcclSuccess;
}

Result CallbackTransport::allreduce_passthrough(const void* send, void* recv, uint64_t count,
                                                DataType dtype) {
  QCCL_CHECK(check_usable("allreducePassthrough"));
  if (ops_.allreducePassthrough == nullptr)
    return rank_order_sum_.run(*this, send, recv, count, dtype);  // the MPI transport's order
  return checked(
      ops_.allreducePassthrough(ops_.ctx, send, recv, count, static_cast<qcclDataType_t>(dtype)),
      "allreducePassthrough");
}

Result CallbackTransport::barrier() {
  QCCL_CHECK(check_usable("barrier"));
  if (ops_.barrier == nullptr) {
    const unsigned char mine = 0;
    gathered_.resize(size());
    return allgather_equal(&mine, 1, gathered_.data());
  }
  return checked(ops_.barrier(ops_.ctx), "barrier");
}

Result CallbackTransport::duplicate(std::unique_ptr<Transport>* out) {
  QCCL_CHECK(check_usable("duplicate"));
  if (ops_.duplicate == nullptr)
    return fail(qcclInvalidUsage,
                "this communicator's transport cannot be duplicated (qcclTransportOps_t.duplicate "
                "is NULL), which the engine needs for its own message space");
  void* new_ctx = nullptr;
  QCCL_CHECK(checked(ops_.duplicate(ops_.ctx, &new_ctx), "duplicate"));
  qcclTransportOps_t ops = ops_;
  ops.ctx = new_ctx;
  std::unique_ptr<CallbackTransport> copy(new CallbackTransport(ops));
  copy->own_context();
  *out = std::move(copy);
  return qcclSuccess;
}

}  // namespace qccl
