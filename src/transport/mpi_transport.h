// Transport over an MPI communicator (docs/design.md §1). The user's
// communicator is duplicated so qccl traffic never matches user messages,
// and set to MPI_ERRORS_RETURN so MPI failures become qcclTransportError.
//
// Timeouts (QCCL_TIMEOUT_S): payload collectives are nonblocking
// (MPI_Iallgather(v), MPI_Ialltoallv, MPI_Iallreduce, MPI_Ibarrier) polled
// with MPI_Test until a deadline. MPI cannot cancel a collective, so after a
// timeout the duplicated communicator is left with a pending request and
// this transport refuses further calls (qcclInvalidUsage).
//
// allreduce_passthrough is the blocking MPI_Allreduce on purpose: it is the
// bit-exact baseline, and Open MPI's nonblocking allreduce may sum in a
// different order. The collective layer exchanges a call descriptor (with
// the timeout) right before it, so a missing rank is caught there.
#pragma once

#include <mpi.h>

#include <memory>
#include <string>
#include <vector>

#include "transport/transport.h"

namespace qccl {

class MpiTransport final : public Transport {
 public:
  // Duplicates `comm` (collective over `comm`).
  static Result create(MPI_Comm comm, double timeout_s, std::unique_ptr<MpiTransport>* out);
  ~MpiTransport() override;

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
  // MPI_Comm_idup of this transport's communicator (with the timeout), for
  // a second thread: needs MPI_THREAD_MULTIPLE, which every rank checks
  // first so that all fail alike (docs/engine.md "Its own communicator").
  Result duplicate(std::unique_ptr<Transport>* out) override;

  // The error for an MPI initialised below MPI_THREAD_MULTIPLE (`provided`
  // as MPI_Query_thread gives it), success for MULTIPLE.
  static Result check_thread_multiple(int provided);

 private:
  MpiTransport(MPI_Comm comm, int rank, int size, double timeout_s)
      : comm_(comm), rank_(rank), size_(size), timeout_s_(timeout_s) {}

  Result check_usable(const char* op) const;
  // Polls `request` until done or the deadline; names `op` in errors.
  Result wait(MPI_Request* request, const char* op);
  Result mpi_error(int code, const char* op) const;
  // Converts byte counts/offsets to MPI ints, failing above INT_MAX.
  Result to_int(const uint64_t* values, std::vector<int>* out, const char* op) const;

  MPI_Comm comm_;
  int rank_;
  int size_;
  double timeout_s_;
  std::string broken_by_;  // the operation that timed out, if any
  std::vector<int> counts_a_, displs_a_, counts_b_, displs_b_;
  std::vector<float> widened_;  // float16/bfloat16 passthrough
};

}  // namespace qccl
