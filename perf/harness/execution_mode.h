// Where a benchmark's buffers live, how its calls are timed and how its
// communicators are made: host memory over MPI (the default, harness.cc) or,
// with -g, device memory over NCCL with one GPU per rank (device_mode.cc,
// the only file of the harness that calls CUDA). Everything else — the
// sizes, the methods, the check and the table — is the harness's, the same
// in both modes.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "qccl/qccl.h"

namespace qccl::perf {

class ExecutionMode {
 public:
  virtual ~ExecutionMode() = default;
  // For the table's first line, e.g. "host buffers, MPI".
  virtual const char* describe() const = 0;
  // Whether the buffers are host memory (the raw `mpi` rows need that).
  virtual bool host_buffers() const = 0;
  // nullptr on failure, with a message on stderr.
  virtual void* allocate(size_t bytes) = 0;
  virtual void release(void* p) = 0;
  virtual bool copy_in(void* dst, const void* host, size_t bytes) = 0;
  virtual bool copy_out(void* host, const void* src, size_t bytes) = 0;
  // The `stream` argument of the qccl calls (NULL for host buffers).
  virtual void* stream() const = 0;
  // A communicator over MPI_COMM_WORLD's ranks. Collective.
  virtual qcclResult_t init_comm(const qcclConfig_t* config, qcclComm_t* out) = 0;
  // Microseconds per call of `iters` calls of `call`, started together on
  // every rank; false as soon as a call fails.
  virtual bool time_calls(int iters, const std::function<bool()>& call, double* us) = 0;
};

// Exit code of a benchmark run with -g where GPU mode is unavailable (a
// build without CUDA or NCCL, no device, fewer GPUs than ranks on a node):
// distinct from a usage error (2) and a failed run (1).
constexpr int kExitGpuUnavailable = 3;

// GPU mode: GPU <local rank> of this node, a stream, device buffers, and
// communicators from qcclGetUniqueId (rank 0, sent with MPI_Bcast) +
// qcclCommInitRank. Collective: every rank gets null, with *why saying what
// this rank lacks, if any rank lacks something.
std::unique_ptr<ExecutionMode> make_device_mode(std::string* why);

}  // namespace qccl::perf
