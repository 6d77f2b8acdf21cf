// NcclTransport (nccl_transport.h). Compiled in CUDA builds; the body
// needs NCCL (QCCL_HAVE_NCCL), so a CUDA build without libnccl compiles
// this file to nothing.
#ifdef QCCL_HAVE_NCCL
#include "transport/nccl_transport.h"

#include <nccl.h>

#include <algorithm>
#include <cstring>

#include "codec/cuda_codec.h"
#include "core/cuda_check.h"
#include "core/logging.h"
#include "transport/abort_job.h"
#include "transport/deadline_wait.h"

namespace qccl {
namespace {

// NCCL errors are translated once, here (docs/style.md "From NCCL"): a
// peer's failure is qcclRemoteError, anything else qcclTransportError, both
// with NCCL's own text and its last detailed message.
Result nccl_code(ncclResult_t r) {
  return r == ncclRemoteError ? qcclRemoteError : qcclTransportError;
}

std::string nccl_text(ncclResult_t r) {
  const char* detail = ncclGetLastError(nullptr);  // the argument is unused by NCCL
  return fmt::format("{}{}{}", ncclGetErrorString(r),
                     detail != nullptr && detail[0] != '\0' ? ": " : "",
                     detail != nullptr ? detail : "");
}

Result nccl_failure(ncclResult_t r, const char* call, const char* op) {
  return fail(nccl_code(r), "NCCL {} failed in {}: {}", call, op, nccl_text(r));
}

// An enqueue that worked or (non-blocking communicator) is still running.
bool accepted(ncclResult_t r) {
  return r == ncclSuccess || r == ncclInProgress;
}

// The communicator's asynchronous state, for wait_with_deadline.
Poll comm_state(ncclComm_t comm) {
  ncclResult_t async = ncclSuccess;
  const ncclResult_t r = ncclCommGetAsyncError(comm, &async);
  if (r != ncclSuccess)
    return Poll::failed(nccl_code(r), "ncclCommGetAsyncError failed: " + nccl_text(r));
  if (async == ncclSuccess) return Poll::ready();
  if (async == ncclInProgress) return Poll::pending();
  return Poll::failed(
      nccl_code(async),
      "NCCL reported an asynchronous error on the communicator: " + nccl_text(async));
}

// A stream's (or an event's) work, for wait_with_deadline.
Poll work_state(cudaError_t e, const char* query) {
  if (e == cudaSuccess) return Poll::ready();
  if (e == cudaErrorNotReady) {
    // Not an error: leave nothing behind for the next launch check.
    if (cudaPeekAtLastError() == cudaErrorNotReady) (void)cudaGetLastError();
    return Poll::pending();
  }
  return Poll::failed(
      qcclUnhandledCudaError,
      fmt::format("CUDA error {} ({}) in {}", cudaGetErrorName(e), cudaGetErrorString(e), query));
}

// Makes the communicator's device current for a scope and gives the
// caller's back at its end.
class DeviceScope {
 public:
  DeviceScope() = default;
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;
  ~DeviceScope() {
    if (restore_) cudaSetDevice(previous_);
  }
  Result enter(int device) {
    QCCL_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) {
      QCCL_CUDA_CHECK(cudaSetDevice(device));
      restore_ = true;
    }
    return qcclSuccess;
  }

 private:
  int previous_ = 0;
  bool restore_ = false;
};

// ncclGroupStart ... ncclGroupEnd on every path: a group left open (an
// enqueue inside it failed) is ended by the destructor, whose result is
// dropped so the first error is the one reported. It ends before that
// error is handled, so ncclCommAbort never runs inside a group.
class NcclGroup {
 public:
  NcclGroup() = default;
  NcclGroup(const NcclGroup&) = delete;
  NcclGroup& operator=(const NcclGroup&) = delete;
  ~NcclGroup() {
    if (open_) (void)ncclGroupEnd();
  }
  ncclResult_t start() {
    const ncclResult_t r = ncclGroupStart();
    open_ = accepted(r);
    return r;
  }
  ncclResult_t end() {
    open_ = false;
    return ncclGroupEnd();
  }

 private:
  bool open_ = false;
};

// Runs `enqueue` (which returns its first failing call's result and names
// that call in *call) inside a group; returns the first failure, or
// ncclGroupEnd's result.
template <typename Enqueue>
ncclResult_t in_group(const char** call, Enqueue&& enqueue) {
  NcclGroup group;
  *call = "ncclGroupStart";
  ncclResult_t r = group.start();
  if (!accepted(r)) return r;
  r = enqueue(call);
  if (!accepted(r)) return r;
  *call = "ncclGroupEnd";
  return group.end();
}

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

// ---- life cycle ---------------------------------------------------------------

Result NcclTransport::create(ncclComm_t comm, bool owned, double timeout_s,
                             std::unique_ptr<NcclTransport>* out) {
  if (comm == nullptr) return fail(qcclInvalidArgument, "the NCCL communicator is NULL");
  // From here on the transport owns an owned communicator: on failure its
  // destructor releases it (query_identity has aborted it by then).
  std::unique_ptr<NcclTransport> transport(new NcclTransport(comm, owned, timeout_s));
  QCCL_CHECK(transport->query_identity());
  *out = std::move(transport);
  return qcclSuccess;
}

Result NcclTransport::query_identity() {
  const char* op = "creating the communicator";
  // A non-blocking communicator (NCCL_COMM_BLOCKING=0, or a framework's)
  // may still be initialising; its peers may never arrive.
  QCCL_CHECK(wait_for_comm("communicator initialisation"));
  QCCL_CHECK(completed(ncclCommCuDevice(comm_, &device_), "ncclCommCuDevice", op));
  QCCL_CHECK(completed(ncclCommUserRank(comm_, &rank_), "ncclCommUserRank", op));
  QCCL_CHECK(completed(ncclCommCount(comm_, &size_), "ncclCommCount", op));
  return qcclSuccess;
}

NcclTransport::~NcclTransport() {
  DeviceScope device;
  if (device_ >= 0) (void)device.enter(device_);
  // Work still queued (device-buffer calls nobody waited for) may be stuck
  // on a dead peer: ncclCommDestroy and cudaFree would wait for it forever.
  // Wait with the deadline instead; on failure the owned communicator is
  // aborted (which ends its kernels) and a borrowed one's scratch leaked.
  bool idle = aborted_;
  if (!aborted_ && broken_by_.empty()) {
    DeadlineWaitOps ops = wait_ops();
    if (done_event_ != nullptr)
      ops.query_work = [this] { return work_state(cudaEventQuery(done_event_), "cudaEventQuery"); };
    idle =
        wait_with_deadline(ops, timeout_s_, "qcclCommDestroy (work still queued)") == qcclSuccess;
    if (!idle) QCCL_LOG_WARN("{}", thread_last_error());
  } else if (!aborted_) {
    // Broken, borrowed: no second wait of QCCL_TIMEOUT_S, one look.
    idle = done_event_ == nullptr || cudaEventQuery(done_event_) == cudaSuccess;
  }
  if (scratch_ != nullptr) {
    if (idle || aborted_) {
      cudaFree(scratch_);
    } else {
      QCCL_LOG_WARN(
          "NCCL transport: {} bytes of device scratch left allocated: work on the caller's "
          "communicator may still use it",
          scratch_bytes_);
    }
  }
  if (done_event_ != nullptr) cudaEventDestroy(done_event_);
  if (owned_ && !aborted_) ncclCommDestroy(comm_);
}

// ---- faults ------------------------------------------------------------------------

Result NcclTransport::check_usable(const char* op) const {
  if (broken_by_.empty()) return qcclSuccess;
  return fail(qcclInvalidUsage,
              "{}: this NCCL communicator is unusable after an earlier failure ({}); destroy it "
              "(qcclCommDestroy) and create a new one{}",
              op, broken_by_,
              owned_ ? "" : "; the ncclComm_t is the caller's: abort it (ncclCommAbort)");
}

void NcclTransport::abort_comm() {
  if (!owned_ || aborted_) return;
  aborted_ = true;
  ncclCommAbort(comm_);  // frees comm_: no NCCL call may use it again
}

Result NcclTransport::break_transport(Result code) {
  if (broken_by_.empty()) broken_by_ = thread_last_error();
  abort_comm();
  std::string message = thread_last_error();
  message += aborted_ ? "; the NCCL communicator has been aborted"
                      : "; the NCCL communicator is the caller's and was not aborted: abort it "
                        "(ncclCommAbort)";
  // During creation (no rank yet) there is no qccl communicator to destroy.
  if (rank_ >= 0) message += "; destroy this qccl communicator and create a new one";
  if (code == qcclTimeout && abort_on_timeout_) abort_job(message);
  return set_error(code, std::move(message));
}

Result NcclTransport::completed(int nccl_result, const char* call, const char* op) {
  const auto r = static_cast<ncclResult_t>(nccl_result);
  if (r == ncclSuccess) return qcclSuccess;
  if (r == ncclInProgress) return wait_for_comm(op);
  // The ranks are out of step now (this one did not enqueue what the
  // others did), and NCCL asks for an abort after most errors anyway.
  return break_transport(nccl_failure(r, call, op));
}

Result NcclTransport::enqueued(int nccl_result, const char* call, const char* op) {
  QCCL_CHECK(completed(nccl_result, call, op));
  if (done_event_ == nullptr)
    QCCL_CUDA_CHECK(cudaEventCreateWithFlags(&done_event_, cudaEventDisableTiming));
  QCCL_CUDA_CHECK(cudaEventRecord(done_event_, stream_));
  return qcclSuccess;
}

DeadlineWaitOps NcclTransport::wait_ops() {
  DeadlineWaitOps ops;
  ops.query_comm = [this] { return comm_state(comm_); };
  if (owned_) ops.abort = [this] { abort_comm(); };
  return ops;
}

Result NcclTransport::wait_for_stream(const char* op) {
  DeadlineWaitOps ops = wait_ops();
  ops.query_work = [this] { return work_state(cudaStreamQuery(stream_), "cudaStreamQuery"); };
  const Result r = wait_with_deadline(ops, timeout_s_, op);
  return r == qcclSuccess ? r : break_transport(r);
}

Result NcclTransport::wait_for_comm(const char* op) {
  const Result r = wait_with_deadline(wait_ops(), timeout_s_, op);
  return r == qcclSuccess ? r : break_transport(r);
}

// ---- staging -----------------------------------------------------------------------

Result NcclTransport::scratch(uint64_t bytes, void** out) {
  if (scratch_bytes_ < bytes) {
    const uint64_t target = std::max(bytes, 2 * scratch_bytes_);
    // The stream may still read the old scratch.
    if (scratch_ != nullptr) {
      QCCL_CHECK(wait_for_stream("growing the staging buffer"));
      QCCL_CUDA_CHECK(cudaFree(scratch_));
    }
    scratch_ = nullptr, scratch_bytes_ = 0;
    QCCL_CUDA_CHECK(cudaMalloc(&scratch_, target));
    scratch_bytes_ = target;
  }
  *out = scratch_;
  return qcclSuccess;
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
  return st.send_staged || st.recv_staged ? wait_for_stream(op) : qcclSuccess;
}

// ---- the calls ----------------------------------------------------------------------

Result NcclTransport::allgatherv(const void* send, uint64_t send_bytes, void* recv,
                                 const uint64_t* recv_bytes, const uint64_t* recv_offsets) {
  const char* op = "allgatherv";
  QCCL_CHECK(check_usable(op));
  DeviceScope device;
  QCCL_CHECK(device.enter(device_));
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
    QCCL_CHECK(enqueued(ncclAllGather(d_send, d_recv, send_bytes, ncclUint8, comm_, stream_),
                        "ncclAllGather", op));
  } else {
    // Ragged sizes: one broadcast per root, fused by the group.
    const char* call = nullptr;
    const ncclResult_t r = in_group(&call, [&](const char** failed) {
      *failed = "ncclBroadcast";
      for (int root = 0; root < size_; ++root) {
        if (recv_bytes[root] == 0) continue;
        const ncclResult_t e =
            ncclBroadcast(root == rank_ ? d_send : nullptr, bytes_at(d_recv, recv_offsets[root]),
                          recv_bytes[root], ncclUint8, root, comm_, stream_);
        if (!accepted(e)) return e;
      }
      return ncclSuccess;
    });
    QCCL_CHECK(enqueued(r, call, op));
  }
  return unstage(st, recv, recv_bytes, recv_offsets, "allgatherv (host buffers)");
}

Result NcclTransport::alltoallv(const void* send, const uint64_t* send_bytes,
                                const uint64_t* send_offsets, void* recv,
                                const uint64_t* recv_bytes, const uint64_t* recv_offsets) {
  const char* op = "alltoallv";
  QCCL_CHECK(check_usable(op));
  DeviceScope device;
  QCCL_CHECK(device.enter(device_));
  uint64_t send_total = 0, recv_total = 0;
  for (int r = 0; r < size_; ++r) {
    send_total = std::max(send_total, send_offsets[r] + send_bytes[r]);
    recv_total = std::max(recv_total, recv_offsets[r] + recv_bytes[r]);
  }
  Staged st;
  QCCL_CHECK(stage(send, send_total, recv, recv_total, &st));
  const void* d_send = st.send;
  void* d_recv = st.recv;
  const char* call = nullptr;
  const ncclResult_t result = in_group(&call, [&](const char** failed) {
    for (int r = 0; r < size_; ++r) {
      if (send_bytes[r] > 0) {
        *failed = "ncclSend";
        const ncclResult_t e = ncclSend(bytes_at(d_send, send_offsets[r]), send_bytes[r], ncclUint8,
                                        r, comm_, stream_);
        if (!accepted(e)) return e;
      }
      if (recv_bytes[r] > 0) {
        *failed = "ncclRecv";
        const ncclResult_t e = ncclRecv(bytes_at(d_recv, recv_offsets[r]), recv_bytes[r], ncclUint8,
                                        r, comm_, stream_);
        if (!accepted(e)) return e;
      }
    }
    return ncclSuccess;
  });
  QCCL_CHECK(enqueued(result, call, op));
  return unstage(st, recv, recv_bytes, recv_offsets, "alltoallv (host buffers)");
}

Result NcclTransport::allreduce_sum(double* values, size_t n) {
  const char* op = "allreduce_sum";
  QCCL_CHECK(check_usable(op));
  if (n == 0) return qcclSuccess;
  DeviceScope device;
  QCCL_CHECK(device.enter(device_));
  if (is_device_pointer(values)) {
    return enqueued(ncclAllReduce(values, values, n, ncclFloat64, ncclSum, comm_, stream_),
                    "ncclAllReduce", op);
  }
  void* s = nullptr;
  QCCL_CHECK(scratch(n * sizeof(double), &s));
  QCCL_CUDA_CHECK(cudaMemcpyAsync(s, values, n * sizeof(double), cudaMemcpyHostToDevice, stream_));
  QCCL_CHECK(
      enqueued(ncclAllReduce(s, s, n, ncclFloat64, ncclSum, comm_, stream_), "ncclAllReduce", op));
  QCCL_CUDA_CHECK(cudaMemcpyAsync(values, s, n * sizeof(double), cudaMemcpyDeviceToHost, stream_));
  return wait_for_stream("allreduce_sum (host buffers)");
}

Result NcclTransport::allreduce_passthrough(const void* send, void* recv, uint64_t count,
                                            DataType dtype) {
  const char* op = "allreduce_passthrough";
  QCCL_CHECK(check_usable(op));
  DeviceScope device;
  QCCL_CHECK(device.enter(device_));
  ncclDataType_t type = ncclFloat32;
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
  QCCL_CHECK(enqueued(ncclAllReduce(d_send, d_recv, count, type, ncclSum, comm_, stream_),
                      "ncclAllReduce", op));
  if (!stage_recv)
    return stage_send ? wait_for_stream("allreduce_passthrough (host send buffer)") : qcclSuccess;
  QCCL_CUDA_CHECK(cudaMemcpyAsync(recv, d_recv, bytes, cudaMemcpyDeviceToHost, stream_));
  return wait_for_stream("allreduce_passthrough (host buffers)");
}

Result NcclTransport::barrier() {
  const char* op = "barrier";
  QCCL_CHECK(check_usable(op));
  DeviceScope device;
  QCCL_CHECK(device.enter(device_));
  void* s = nullptr;
  QCCL_CHECK(scratch(sizeof(float), &s));
  QCCL_CUDA_CHECK(cudaMemsetAsync(s, 0, sizeof(float), stream_));
  QCCL_CHECK(
      enqueued(ncclAllReduce(s, s, 1, ncclFloat32, ncclSum, comm_, stream_), "ncclAllReduce", op));
  return wait_for_stream(op);
}

}  // namespace qccl
#endif  // QCCL_HAVE_NCCL
