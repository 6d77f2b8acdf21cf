#include "collective/staging_transport.h"

#include <algorithm>

#include "collective/workspace.h"
#include "core/checked_alloc.h"

namespace qccl {
namespace {

// The end of the furthest piece; false when an offset + size overflows.
bool extent(int n, const uint64_t* bytes, const uint64_t* offsets, uint64_t* out) {
  uint64_t end = 0;
  for (int r = 0; r < n; ++r) {
    uint64_t piece_end = 0;
    if (bytes[r] == 0) continue;
    if (!checked_add(offsets[r], bytes[r], &piece_end)) return false;
    end = std::max(end, piece_end);
  }
  *out = end;
  return true;
}

Result extent_overflow(const char* op) {
  return fail(qcclInvalidArgument, "staging {}: a piece's offset + size overflows 64 bits", op);
}

}  // namespace

Result StagingTransport::stage_in(const void* send, uint64_t send_extent, void* recv,
                                  uint64_t recv_extent, const void** host_send, void** host_recv) {
  *host_send = send;
  *host_recv = recv;
  if (device_.owns(send)) {
    QCCL_CHECK(grow_vector(&send_stage_, send_extent, "host staging copy of a device send buffer"));
    unsigned char* staged = send_stage_.data();
    QCCL_CHECK(device_.copy_to_host(staged, send, send_extent));
    // The host transport reads it next: the copy must have landed.
    QCCL_CHECK(device_.synchronize());
    *host_send = staged;
  }
  if (device_.owns(recv)) {
    QCCL_CHECK(
        grow_vector(&recv_stage_, recv_extent, "host staging copy of a device receive buffer"));
    *host_recv = recv_stage_.data();
  }
  return qcclSuccess;
}

Result StagingTransport::stage_out(void* recv, const void* host_recv, uint64_t recv_extent) {
  if (host_recv == recv) return qcclSuccess;
  QCCL_CHECK(device_.copy_from_host(recv, host_recv, recv_extent));
  // The stage is reused by the next call.
  return device_.synchronize();
}

Result StagingTransport::allgatherv(const void* send, uint64_t send_bytes, void* recv,
                                    const uint64_t* recv_bytes, const uint64_t* recv_offsets) {
  uint64_t recv_extent = 0;
  if (!extent(size(), recv_bytes, recv_offsets, &recv_extent)) return extent_overflow("allgatherv");
  const void* hs;
  void* hr;
  QCCL_CHECK(stage_in(send, send_bytes, recv, recv_extent, &hs, &hr));
  QCCL_CHECK(inner_.allgatherv(hs, send_bytes, hr, recv_bytes, recv_offsets));
  return stage_out(recv, hr, recv_extent);
}

Result StagingTransport::alltoallv(const void* send, const uint64_t* send_bytes,
                                   const uint64_t* send_offsets, void* recv,
                                   const uint64_t* recv_bytes, const uint64_t* recv_offsets) {
  uint64_t send_extent = 0, recv_extent = 0;
  if (!extent(size(), send_bytes, send_offsets, &send_extent) ||
      !extent(size(), recv_bytes, recv_offsets, &recv_extent))
    return extent_overflow("alltoallv");
  const void* hs;
  void* hr;
  QCCL_CHECK(stage_in(send, send_extent, recv, recv_extent, &hs, &hr));
  QCCL_CHECK(inner_.alltoallv(hs, send_bytes, send_offsets, hr, recv_bytes, recv_offsets));
  return stage_out(recv, hr, recv_extent);
}

Result StagingTransport::allreduce_passthrough(const void* send, void* recv, uint64_t count,
                                               DataType dtype) {
  uint64_t bytes = 0;
  if (!checked_mul(count, dtype_size(dtype), &bytes))
    return fail(qcclInvalidArgument, "staging allreduce: {} elements overflow 64-bit bytes", count);
  const void* hs;
  void* hr;
  QCCL_CHECK(stage_in(send, bytes, recv, bytes, &hs, &hr));
  // In place on the device stays in place on the host (MPI_IN_PLACE).
  if (send == recv) hr = const_cast<void*>(hs);
  QCCL_CHECK(inner_.allreduce_passthrough(hs, hr, count, dtype));
  return stage_out(recv, hr, bytes);
}

}  // namespace qccl
