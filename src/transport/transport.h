// How bytes move between ranks (docs/design.md §1, transport layer). The
// collective layer talks only to this interface: MpiTransport and
// CallbackTransport move host memory; NcclTransport also moves device
// memory.
//
// The contract, per buffer location:
// - Host memory: every call has completed when it returns (or failed with
//   a qcclResult_t).
// - Device memory (only where accepts_device_memory()): the call is
//   enqueued on the stream last given to set_stream() and returns before
//   it runs, like NCCL; its results are there for later work on that
//   stream. A failure that shows only once the work runs (a dead peer) is
//   reported by a later call that waits (every host-memory call waits).
// A transport that does not accept device memory is given host memory
// only: the collective layer stages device buffers through host memory
// for it (collective/staging_transport.h).
//
// A call that cannot complete within the transport's timeout
// (QCCL_TIMEOUT_S) returns qcclTimeout naming the operation; after that the
// transport is broken (MPI cannot cancel a collective, NCCL is aborted) and
// every later call returns an error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/method.h"
#include "core/result.h"

namespace qccl {

class Transport {
 public:
  virtual ~Transport() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Whether buffers may be device memory (see the contract above).
  virtual bool accepts_device_memory() const { return false; }
  // The stream device-memory calls are ordered on (a cudaStream_t, or a
  // test backend's stream); null is the default stream. Host transports
  // ignore it.
  virtual void set_stream(void* stream) { (void)stream; }

  // Variable-size allgather of bytes: rank r's `send_bytes` land at
  // recv + recv_offsets[r]; recv_bytes[r] must equal what rank r sends.
  virtual Result allgatherv(const void* send, uint64_t send_bytes, void* recv,
                            const uint64_t* recv_bytes, const uint64_t* recv_offsets) = 0;

  // All-to-all of bytes: send_bytes[r] bytes at send + send_offsets[r] go to
  // rank r; rank r's piece for this rank lands at recv + recv_offsets[r].
  virtual Result alltoallv(const void* send, const uint64_t* send_bytes,
                           const uint64_t* send_offsets, void* recv, const uint64_t* recv_bytes,
                           const uint64_t* recv_offsets) = 0;

  // In-place sum of a few doubles (statistics, norms).
  virtual Result allreduce_sum(double* values, size_t n) = 0;

  // Uncompressed sum of a user buffer. Equals the transport's native
  // allreduce bit for bit (MpiTransport: MPI_Allreduce; float16/bfloat16
  // are widened to float32, summed by MPI_Allreduce and rounded back to
  // nearest even). `send` may equal `recv`.
  virtual Result allreduce_passthrough(const void* send, void* recv, uint64_t count,
                                       DataType dtype) = 0;

  virtual Result barrier() = 0;

  // Collective: a new transport over the same ranks whose messages never
  // match this one's (MPI_Comm_dup-like), so another thread (the engine's)
  // can run collectives beside callers of this one. Transports that cannot
  // do this keep the default, which says so.
  virtual Result duplicate(std::unique_ptr<Transport>* out) {
    (void)out;
    return fail(qcclInvalidUsage, "this transport cannot be duplicated");
  }

  // This rank leaves the communicator's collectives for good (`reason`
  // says why, e.g. a qcclEngineStop that timed out): later calls are
  // refused, and a transport that can tell its peers does (MpiTransport),
  // so their pending waits end now instead of at their own timeouts.
  virtual void abandon(const std::string& reason) { (void)reason; }
};

}  // namespace qccl
