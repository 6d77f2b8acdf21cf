// Transport over an MPI communicator (docs/design.md §1, docs/collectives.md
// "Timeouts and broken communicators"). The user's communicator is
// duplicated (MPI_Comm_idup, bounded by QCCL_TIMEOUT_S) so qccl traffic
// never matches user messages, and set to MPI_ERRORS_RETURN so MPI failures
// become qcclTransportError.
//
// Every collective is nonblocking and polled until a deadline, the
// uncompressed sum included (RankOrderSum, built on allgatherv/alltoallv).
// MPI cannot cancel a collective, so after a timeout:
// - MPI only ever touches memory this transport owns (sends and receives are
//   staged through its buffers), and on a timeout those buffers are handed
//   to a keeper that never frees them: a peer that resumes later writes into
//   live memory, not into a freed workspace or a user buffer;
// - the transport and its duplicates refuse every later call, and the rank
//   tells every other rank so on a side communicator: their waits end at
//   once and their later calls are refused too, naming the call that broke.
// QCCL_ON_TIMEOUT=abort turns a timeout into MPI_Abort instead.
#pragma once

#include <mpi.h>

#include <memory>
#include <string>
#include <vector>

#include "transport/abort_job.h"
#include "transport/rank_order_sum.h"
#include "transport/transport.h"

namespace qccl {

class MpiTransport final : public Transport {
 public:
  // Duplicates `comm` (collective over `comm`, bounded by the timeout).
  static Result create(MPI_Comm comm, const TimeoutPolicy& policy,
                       std::unique_ptr<MpiTransport>* out);
  ~MpiTransport() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  Result allgatherv(const void* send, uint64_t send_bytes, void* recv, const uint64_t* recv_bytes,
                    const uint64_t* recv_offsets) override;
  Result alltoallv(const void* send, const uint64_t* send_bytes, const uint64_t* send_offsets,
                   void* recv, const uint64_t* recv_bytes, const uint64_t* recv_offsets) override;
  Result allreduce_sum(double* values, size_t n) override;
  // RankOrderSum: a defined summation order, the same bits on every rank.
  Result allreduce_passthrough(const void* send, void* recv, uint64_t count,
                               DataType dtype) override;
  Result barrier() override;
  // MPI_Comm_idup of this transport's communicator (with the timeout), for
  // a second thread: needs MPI_THREAD_MULTIPLE, which every rank checks
  // first so that all fail alike (docs/engine.md "Its own communicator").
  // The duplicate shares this transport's broken state.
  Result duplicate(std::unique_ptr<Transport>* out) override;
  void abandon(const std::string& reason) override;

  // The error for an MPI initialised below MPI_THREAD_MULTIPLE (`provided`
  // as MPI_Query_thread gives it), success for MULTIPLE.
  static Result check_thread_multiple(int provided);

  // Whether MPI_Finalize has begun (this process's transports then refuse
  // every call and the finalize hooks have run).
  static bool mpi_finalizing();

  struct Shared;  // broken state and the notice communicator, per qccl communicator

 private:
  MpiTransport(MPI_Comm comm, int rank, int size, const TimeoutPolicy& policy,
               std::shared_ptr<Shared> shared);

  Result check_usable(const char* op);
  // Polls `request` until done, the deadline, or a peer's broken notice.
  Result wait(MPI_Request* request, const char* op);
  // This rank timed out: keep the buffers alive, break, tell the peers.
  Result timed_out(const char* op);
  // Marks the communicator unusable (first reason wins) and tells every peer.
  void break_everywhere(const std::string& reason);
  // Hands the buffers a pending request may use to a keeper that never frees them.
  void keep_staging();
  Result mpi_error(int code, const char* op) const;
  // Converts byte counts/offsets to MPI ints, failing above INT_MAX.
  Result to_int(const uint64_t* values, int n, std::vector<int>* out, const char* op) const;
  // Staging: MPI sees only these buffers (see the header comment).
  unsigned char* stage_send(const void* send, uint64_t bytes);
  unsigned char* stage_recv(uint64_t bytes);
  // Copies the received pieces from the staging buffer to `recv`.
  void unstage_recv(void* recv, const uint64_t* recv_bytes, const uint64_t* recv_offsets) const;

  MPI_Comm comm_;
  int rank_;
  int size_;
  TimeoutPolicy policy_;
  std::shared_ptr<Shared> shared_;
  std::vector<int> counts_a_, displs_a_, counts_b_, displs_b_;
  std::vector<unsigned char> send_stage_, recv_stage_;
  RankOrderSum rank_order_sum_;
};

}  // namespace qccl
