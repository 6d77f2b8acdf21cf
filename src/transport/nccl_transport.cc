// NcclTransport (nccl_transport.h). Compiled in CUDA builds; the body
// needs NCCL (QCCL_HAVE_NCCL), so a CUDA build without libnccl compiles
// this file to nothing.
#ifdef QCCL_HAVE_NCCL
#include "transport/nccl_transport.h"

#include <nccl.h>

#include <algorithm>
#include <cstring>

#include "codec/cuda_codec.h"
#include "cuda_check.cuh"

namespace qccl {
namespace {

// NCCL errors are translated once, here (STYLE.md "From NCCL"): a peer's
// failure is qcclRemoteError, anything else qcclTransportError, both with
// NCCL's own text and its last detailed message.
Result nccl_failure(ncclResult_t r, ncclComm_t comm, const char* op) {
  const Result code = r == ncclRemoteError ? qcclRemoteError : qcclTransportError;
  const char* detail = ncclGetLastError(comm);
  return fail(code, "NCCL {} failed: {}{}{}", op, ncclGetErrorString(r),
              detail != nullptr && detail[0] != '\0' ? ": " : "", detail != nullptr ? detail : "");
}

#define QCCL_NCCL_CHECK(call, op)                                                            \
  do {                                                                                       \
    const ncclResult_t qccl_nccl_result_ = (call);                                           \
    if (qccl_nccl_result_ != ncclSuccess) return nccl_failure(qccl_nccl_result_, comm_, op); \
  } while (0)

constexpr uint64_t kAlign = 256;  // keeps staged regions aligned for NCCL
uint64_t aligned(uint64_t bytes) {
  return (bytes + kAlign - 1) / kAlign * kAlign;
}

Result nccl_dtype(DataType dtype, ncclDataType_t* out) {
  switch (dtype) {
    case DataType::kFloat32: *out = ncclFloat32; return qcclSuccess;
    case DataType::kFloat16: *out = ncclFloat16; return qcclSuccess;
    case DataType::kBfloat16: *out = ncclBfloat16; return qcclSuccess;
  }
  return fail(qcclInvalidArgument, "datatype {} has no NCCL equivalent", static_cast<int>(dtype));
}

unsigned char* bytes_at(void* p, uint64_t offset) {
  return static_cast<unsigned char*>(p) + offset;
}
const unsigned char* bytes_at(const void* p, uint64_t offset) {
  return static_cast<const unsigned char*>(p) + offset;
}

}  // namespace

Result NcclTransport::create(ncclComm_t comm, bool owned, std::unique_ptr<NcclTransport>* out) {
  if (comm == nullptr) return fail(qcclInvalidArgument, "the NCCL communicator is NULL");
  int rank = 0, size = 0;
  ncclResult_t r = ncclCommUserRank(comm, &rank);
  if (r == ncclSuccess) r = ncclCommCount(comm, &size);
  if (r != ncclSuccess) return nccl_failure(r, comm, "ncclCommUserRank/ncclCommCount");
  out->reset(new NcclTransport(comm, owned, rank, size));
  return qcclSuccess;
}

NcclTransport::~NcclTransport() {
  if (scratch_ != nullptr) cudaFree(scratch_);
  if (owned_) ncclCommDestroy(comm_);
}

Result NcclTransport::scratch(uint64_t bytes, void** out) {
  if (scratch_bytes_ < bytes) {
    const uint64_t target = std::max(bytes, 2 * scratch_bytes_);
    // The stream may still read the old scratch.
    QCCL_CUDA_CHECK(cudaStreamSynchronize(stream_));
    if (scratch_ != nullptr) QCCL_CUDA_CHECK(cudaFree(scratch_));
    scratch_ = nullptr, scratch_bytes_ = 0;
    QCCL_CUDA_CHECK(cudaMalloc(&scratch_, target));
    scratch_bytes_ = target;
  }
  *out = scratch_;
  return qcclSuccess;
}

Result NcclTransport::synchronize(const char* op) {
  const cudaError_t e = cudaStreamSynchronize(stream_);
  if (e != cudaSuccess) return cuda_failure(e, op, __FILE__, __LINE__);
  return qcclSuccess;
}

Result NcclTransport::allgatherv(const void* send, uint64_t send_bytes, void* recv,
                                 const uint64_t* recv_bytes, const uint64_t* recv_offsets) {
  if (recv_bytes[rank_] != send_bytes)
    return fail(qcclInternalError,
                "allgatherv: this rank sends {} bytes but expects {} from itself", send_bytes,
                recv_bytes[rank_]);
  uint64_t total = 0;
  bool uniform = true;
  for (int r = 0; r < size_; ++r) {
    total = std::max(total, recv_offsets[r] + recv_bytes[r]);
    uniform = uniform && recv_bytes[r] == send_bytes && recv_offsets[r] == r * send_bytes;
  }
  Staged st;
  QCCL_CHECK(stage(send, send_bytes, recv, total, &st));
  const void* d_send = st.send;
  void* d_recv = st.recv;
  if (uniform) {
    QCCL_NCCL_CHECK(ncclAllGather(d_send, d_recv, send_bytes, ncclUint8, comm_, stream_),
                    "ncclAllGather");
  } else {
    // Ragged sizes: one broadcast per root, fused by the group.
    QCCL_NCCL_CHECK(ncclGroupStart(), "ncclGroupStart");
    for (int r = 0; r < size_; ++r) {
      if (recv_bytes[r] == 0) continue;
      QCCL_NCCL_CHECK(
          ncclBroadcast(r == rank_ ? d_send : nullptr, bytes_at(d_recv, recv_offsets[r]),
                        recv_bytes[r], ncclUint8, r, comm_, stream_),
          "ncclBroadcast");
    }
    QCCL_NCCL_CHECK(ncclGroupEnd(), "ncclGroupEnd (allgatherv)");
  }
  return unstage(st, recv, recv_bytes, recv_offsets, "allgatherv (host buffers)");
}

Result NcclTransport::alltoallv(const void* send, const uint64_t* send_bytes,
                                const uint64_t* send_offsets, void* recv,
                                const uint64_t* recv_bytes, const uint64_t* recv_offsets) {
  uint64_t send_total = 0, recv_total = 0;
  for (int r = 0; r < size_; ++r) {
    send_total = std::max(send_total, send_offsets[r] + send_bytes[r]);
    recv_total = std::max(recv_total, recv_offsets[r] + recv_bytes[r]);
  }
  Staged st;
  QCCL_CHECK(stage(send, send_total, recv, recv_total, &st));
  const void* d_send = st.send;
  void* d_recv = st.recv;
  QCCL_NCCL_CHECK(ncclGroupStart(), "ncclGroupStart");
  for (int r = 0; r < size_; ++r) {
    if (send_bytes[r] > 0)
      QCCL_NCCL_CHECK(
          ncclSend(bytes_at(d_send, send_offsets[r]), send_bytes[r], ncclUint8, r, comm_, stream_),
          "ncclSend");
    if (recv_bytes[r] > 0)
      QCCL_NCCL_CHECK(
          ncclRecv(bytes_at(d_recv, recv_offsets[r]), recv_bytes[r], ncclUint8, r, comm_, stream_),
          "ncclRecv");
  }
  QCCL_NCCL_CHECK(ncclGroupEnd(), "ncclGroupEnd (alltoallv)");
  return unstage(st, recv, recv_bytes, recv_offsets, "alltoallv (host buffers)");
}

Result NcclTransport::stage(const void* send, uint64_t send_total, void* recv, uint64_t recv_total,
                            Staged* out) {
  *out = Staged{send, recv, !is_device_pointer(send), !is_device_pointer(recv)};
  if (!out->send_staged && !out->recv_staged) return qcclSuccess;
  void* s = nullptr;
  QCCL_CHECK(scratch(aligned(send_total) + aligned(recv_total), &s));
  if (out->send_staged) {
    out->send = s;
    QCCL_CUDA_CHECK(cudaMemcpyAsync(s, send, send_total, cudaMemcpyHostToDevice, stream_));
  }
  if (out->recv_staged) out->recv = bytes_at(s, aligned(send_total));
  return qcclSuccess;
}

Result NcclTransport::unstage(const Staged& st, void* recv, const uint64_t* recv_bytes,
                              const uint64_t* recv_offsets, const char* op) {
  if (st.recv_staged) {
    for (int r = 0; r < size_; ++r)
      QCCL_CUDA_CHECK(cudaMemcpyAsync(bytes_at(recv, recv_offsets[r]),
                                      bytes_at(st.recv, recv_offsets[r]), recv_bytes[r],
                                      cudaMemcpyDeviceToHost, stream_));
  }
  return st.send_staged || st.recv_staged ? synchronize(op) : qcclSuccess;
}

Result NcclTransport::allreduce_sum(double* values, size_t n) {
  if (n == 0) return qcclSuccess;
  if (is_device_pointer(values)) {
    QCCL_NCCL_CHECK(ncclAllReduce(values, values, n, ncclFloat64, ncclSum, comm_, stream_),
                    "ncclAllReduce (double sum)");
    return qcclSuccess;
  }
  void* s = nullptr;
  QCCL_CHECK(scratch(n * sizeof(double), &s));
  QCCL_CUDA_CHECK(cudaMemcpyAsync(s, values, n * sizeof(double), cudaMemcpyHostToDevice, stream_));
  QCCL_NCCL_CHECK(ncclAllReduce(s, s, n, ncclFloat64, ncclSum, comm_, stream_),
                  "ncclAllReduce (double sum)");
  QCCL_CUDA_CHECK(cudaMemcpyAsync(values, s, n * sizeof(double), cudaMemcpyDeviceToHost, stream_));
  return synchronize("allreduce_sum");
}

Result NcclTransport::allreduce_passthrough(const void* send, void* recv, uint64_t count,
                                            DataType dtype) {
  ncclDataType_t type;
  QCCL_CHECK(nccl_dtype(dtype, &type));
  const uint64_t bytes = count * dtype_size(dtype);
  const bool stage_send = !is_device_pointer(send);
  const bool stage_recv = !is_device_pointer(recv);
  const void* d_send = send;
  void* d_recv = recv;
  if (stage_send || stage_recv) {
    void* s = nullptr;
    QCCL_CHECK(scratch(aligned(bytes) * 2, &s));
    if (stage_send) {
      d_send = s;
      QCCL_CUDA_CHECK(cudaMemcpyAsync(s, send, bytes, cudaMemcpyHostToDevice, stream_));
    }
    if (stage_recv) d_recv = bytes_at(s, aligned(bytes));
  }
  QCCL_NCCL_CHECK(ncclAllReduce(d_send, d_recv, count, type, ncclSum, comm_, stream_),
                  "ncclAllReduce (passthrough)");
  if (!stage_recv) return stage_send ? synchronize("allreduce_passthrough") : qcclSuccess;
  QCCL_CUDA_CHECK(cudaMemcpyAsync(recv, d_recv, bytes, cudaMemcpyDeviceToHost, stream_));
  return synchronize("allreduce_passthrough (host buffers)");
}

Result NcclTransport::barrier() {
  void* s = nullptr;
  QCCL_CHECK(scratch(sizeof(float), &s));
  QCCL_CUDA_CHECK(cudaMemsetAsync(s, 0, sizeof(float), stream_));
  QCCL_NCCL_CHECK(ncclAllReduce(s, s, 1, ncclFloat32, ncclSum, comm_, stream_), "barrier");
  return synchronize("barrier");
}

}  // namespace qccl
#endif  // QCCL_HAVE_NCCL
