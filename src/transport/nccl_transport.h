// Transport over an NCCL communicator (docs/design.md §1, issue 5): the GPU
// implementation of transport.h. Built only with CUDA and NCCL
// (QCCL_HAVE_NCCL); see docs/gpu.md "The NCCL path" and "NCCL faults".
//
// Buffers, as transport.h's contract puts it:
// - Device memory (accepts_device_memory() is true): every call is
//   enqueued on the stream given to set_stream() and returns before it
//   runs, stream-ordered like NCCL. Payloads take this path.
// - Host memory: the collective layer also exchanges small host data
//   through this interface (call descriptors, configuration hashes, adapter
//   summaries, norms). Host pointers are staged through a device scratch
//   buffer and the call waits for the stream before it returns, so host
//   results are ready. The wait is deadline_wait.h's, never
//   cudaStreamSynchronize: it polls the stream and ncclCommGetAsyncError
//   and gives up after QCCL_TIMEOUT_S (qcclTimeout).
//
// Faults. A failed wait or NCCL call breaks the transport: an owned
// communicator (qcclCommInitRank) is aborted with ncclCommAbort, which also
// frees it; a borrowed one (qcclCommInitNccl) is the caller's to abort.
// Every later call then fails at once with qcclInvalidUsage, naming what
// broke it. A non-blocking communicator's ncclInProgress (from its
// initialisation, an enqueue or ncclGroupEnd) is waited out under the same
// deadline before the next NCCL call. Every ncclGroupStart is matched by
// ncclGroupEnd on every path.
//
// Device. Each call runs with the communicator's CUDA device
// (ncclCommCuDevice) current and gives the caller's back afterwards.
//
// Mapping: allgatherv with equal sizes -> ncclAllGather (payload sizes are
// a function of count/method/bits, so compressed payloads are equal);
// unequal sizes or offsets that are not r * size -> grouped
// ncclBroadcast per rank; alltoallv -> grouped ncclSend/ncclRecv;
// allreduce_passthrough -> ncclAllReduce on float32/float16/bfloat16
// natively (bit-exact vs NCCL); allreduce_sum -> ncclAllReduce on doubles.
// NCCL errors become qcclTransportError (qcclRemoteError for
// ncclRemoteError) with ncclGetErrorString's and ncclGetLastError's text,
// in one place (nccl_transport.cc).
#pragma once

#include <cstdint>
#include <string>

#include "transport/transport.h"

// The libraries' own spellings, so this header needs neither nccl.h nor
// cuda_runtime.h.
struct ncclComm;
typedef struct ncclComm* ncclComm_t;
struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;
struct CUevent_st;
typedef struct CUevent_st* cudaEvent_t;

namespace qccl {

struct DeadlineWaitOps;

class NcclTransport final : public Transport {
 public:
  // Wraps `comm`, waiting (up to `timeout_s`, QCCL_TIMEOUT_S) for a
  // non-blocking one to finish initialising. With `owned` the communicator
  // belongs to the transport from this call on, failed or not: destroyed
  // with it (or aborted on a fault); without, it stays the caller's
  // (qcclCommInitNccl).
  static Result create(ncclComm_t comm, bool owned, double timeout_s,
                       std::unique_ptr<NcclTransport>* out);
  ~NcclTransport() override;
  NcclTransport(const NcclTransport&) = delete;
  NcclTransport& operator=(const NcclTransport&) = delete;

  bool accepts_device_memory() const override { return true; }
  // A cudaStream_t (null: the legacy default stream).
  void set_stream(void* stream) override { stream_ = static_cast<cudaStream_t>(stream); }
  cudaStream_t stream() const { return stream_; }
  // The communicator's CUDA device, current during every call.
  int cuda_device() const { return device_; }
  double timeout_s() const { return timeout_s_; }
  // QCCL_ON_TIMEOUT=abort: a timeout ends the job (abort_job.h).
  void set_abort_on_timeout(bool abort) { abort_on_timeout_ = abort; }

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
  NcclTransport(ncclComm_t comm, bool owned, double timeout_s)
      : comm_(comm), owned_(owned), timeout_s_(timeout_s) {}
  Result query_identity();

  // Fails (qcclInvalidUsage) once the transport is broken.
  Result check_usable(const char* op) const;
  // `nccl_result` (an ncclResult_t) of `call`, made inside `op`: success;
  // ncclInProgress waited out; anything else breaks the transport.
  Result completed(int nccl_result, const char* call, const char* op);
  // completed(), then marks the work enqueued (see done_event_).
  Result enqueued(int nccl_result, const char* call, const char* op);
  // The deadline-bounded waits: for the stream's work (host buffers), and
  // for a non-blocking communicator to leave ncclInProgress.
  Result wait_for_stream(const char* op);
  Result wait_for_comm(const char* op);
  DeadlineWaitOps wait_ops();
  // Records the first failure (already the thread's error), aborts an owned
  // communicator, and returns `code` with advice appended to the message.
  Result break_transport(Result code);
  void abort_comm();

  // Device scratch for host-pointer calls: allocated once, grown.
  Result scratch(uint64_t bytes, void** out);
  // Device views of possibly-host send/recv buffers: host ones are staged
  // through the scratch (send copied in on the stream); the caller copies
  // the received ranges back when *recv_staged and then waits.
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
  double timeout_s_;
  bool abort_on_timeout_ = false;
  int rank_ = -1;
  int size_ = 0;
  int device_ = -1;
  cudaStream_t stream_ = nullptr;
  void* scratch_ = nullptr;
  uint64_t scratch_bytes_ = 0;
  // Recorded behind every enqueue, on its stream: the destructor waits for
  // it (with the deadline) before ncclCommDestroy, which would otherwise
  // wait forever for work stuck on a dead peer. Null until the first one.
  cudaEvent_t done_event_ = nullptr;
  bool aborted_ = false;   // ncclCommAbort ran: comm_ is freed
  std::string broken_by_;  // the first failure's message, once broken
};
}  // namespace qccl
