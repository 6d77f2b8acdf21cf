#include "collective/staging_transport.h"

#include <algorithm>

#include "collective/workspace.h"

namespace qccl {
namespace {

uint64_t extent(int n, const uint64_t* bytes, const uint64_t* offsets) {
  uint64_t end = 0;
  for (int r = 0; r < n; ++r)
    if (bytes[r] > 0) end = std::max(end, offsets[r] + bytes[r]);
  return end;
}

}  // namespace

Result StagingTransport::stage_in(const void* send, uint64_t send_extent, void* recv,
                                  uint64_t recv_extent, const void** host_send, void** host_recv) {
  *host_send = send;
  *host_recv = recv;
  if (device_.owns(send)) {
    unsigned char* staged = ensure_size(&send_stage_, send_extent);
    QCCL_CHECK(device_.copy_to_host(staged, send, send_extent));
    // The host transport reads it next: the copy must have landed.
    QCCL_CHECK(device_.synchronize());
    *host_send = staged;
  }
  if (device_.owns(recv)) *host_recv = ensure_size(&recv_stage_, recv_extent);
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
  const uint64_t recv_extent = extent(size(), recv_bytes, recv_offsets);
  const void* hs;
  void* hr;
  QCCL_CHECK(stage_in(send, send_bytes, recv, recv_extent, &hs, &hr));
  QCCL_CHECK(inner_.allgatherv(hs, send_bytes, hr, recv_bytes, recv_offsets));
  return stage_out(recv, hr, recv_extent);
}

Result StagingTransport::alltoallv(const void* send, const uint64_t* send_bytes,
                                   const uint64_t* send_offsets, void* recv,
                                   const uint64_t* recv_bytes, const uint64_t* recv_offsets) {
  const uint64_t send_extent = extent(size(), send_bytes, send_offsets);
  const uint64_t recv_extent = extent(size(), recv_bytes, recv_offsets);
  const void* hs;
  void* hr;
  QCCL_CHECK(stage_in(send, send_extent, recv, recv_extent, &hs, &hr));
  QCCL_CHECK(inner_.alltoallv(hs, send_bytes, send_offsets, hr, recv_bytes, recv_offsets));
  return stage_out(recv, hr, recv_extent);
}

Result StagingTransport::allreduce_passthrough(const void* send, void* recv, uint64_t count,
                                               DataType dtype) {
  const uint64_t bytes = count * dtype_size(dtype);
  const void* hs;
  void* hr;
  QCCL_CHECK(stage_in(send, bytes, recv, bytes, &hs, &hr));
  // In place on the device stays in place on the host (MPI_IN_PLACE).
  if (send == recv) hr = const_cast<void*>(hs);
  QCCL_CHECK(inner_.allreduce_passthrough(hs, hr, count, dtype));
  return stage_out(recv, hr, bytes);
}

}  // namespace qccl
