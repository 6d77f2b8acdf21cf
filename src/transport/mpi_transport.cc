#include "transport/mpi_transport.h"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <memory>

#include "codec/cpu_codec.h"

namespace qccl {

Result MpiTransport::create(MPI_Comm comm, double timeout_s, std::unique_ptr<MpiTransport>* out) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) return fail(qcclInvalidUsage, "MPI is not initialised: call MPI_Init first");
  if (comm == MPI_COMM_NULL)
    return fail(qcclInvalidArgument, "the MPI communicator is MPI_COMM_NULL");
  MPI_Comm dup = MPI_COMM_NULL;
  int rc = MPI_Comm_dup(comm, &dup);
  if (rc != MPI_SUCCESS) return fail(qcclTransportError, "MPI_Comm_dup failed (MPI error {})", rc);
  MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);
  int rank = 0, size = 0;
  MPI_Comm_rank(dup, &rank);
  MPI_Comm_size(dup, &size);
  out->reset(new MpiTransport(dup, rank, size, timeout_s));
  return qcclSuccess;
}

Result MpiTransport::check_thread_multiple(int provided) {
  if (provided == MPI_THREAD_MULTIPLE) return qcclSuccess;
  const char* name = provided == MPI_THREAD_SINGLE       ? "MPI_THREAD_SINGLE"
                     : provided == MPI_THREAD_FUNNELED   ? "MPI_THREAD_FUNNELED"
                     : provided == MPI_THREAD_SERIALIZED ? "MPI_THREAD_SERIALIZED"
                                                         : "an unknown thread level";
  return fail(qcclInvalidUsage,
              "MPI provides {}, but a duplicated transport (the engine's) runs MPI collectives on "
              "its own thread beside the caller's, which needs MPI_THREAD_MULTIPLE: initialise "
              "MPI with MPI_Init_thread(..., MPI_THREAD_MULTIPLE, &provided)",
              name);
}

Result MpiTransport::duplicate(std::unique_ptr<Transport>* out) {
  const char* op = "duplicate (MPI_Comm_idup)";
  QCCL_CHECK(check_usable(op));
  int provided = MPI_THREAD_SINGLE;
  MPI_Query_thread(&provided);
  // Every rank learns whether every rank can: a rank failing alone would
  // leave the others waiting in MPI_Comm_idup until the timeout.
  double lacking = provided == MPI_THREAD_MULTIPLE ? 0 : 1;
  QCCL_CHECK(allreduce_sum(&lacking, 1));
  QCCL_CHECK(check_thread_multiple(provided));
  if (lacking > 0)
    return fail(qcclInvalidUsage,
                "{} of {} ranks initialised MPI without MPI_THREAD_MULTIPLE, which a duplicated "
                "transport (the engine's) needs (see their logs)",
                lacking, size_);
  MPI_Comm dup = MPI_COMM_NULL;
  MPI_Request request;
  const int rc = MPI_Comm_idup(comm_, &dup, &request);
  if (rc != MPI_SUCCESS) return mpi_error(rc, op);
  QCCL_CHECK(wait(&request, op));
  MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);
  out->reset(new MpiTransport(dup, rank_, size_, timeout_s_));
  return qcclSuccess;
}

MpiTransport::~MpiTransport() {
  // A communicator with a pending collective (after a timeout) must not be
  // freed: MPI_Comm_free would wait on it. It is left to MPI_Finalize.
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (broken_by_.empty() && !finalized) MPI_Comm_free(&comm_);
}

Result MpiTransport::check_usable(const char* op) const {
  if (broken_by_.empty()) return qcclSuccess;
  return fail(qcclInvalidUsage,
              "{}: this communicator is unusable after '{}' timed out (MPI cannot cancel a "
              "collective); destroy it and create a new one",
              op, broken_by_);
}

Result MpiTransport::mpi_error(int code, const char* op) const {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  return fail(qcclTransportError, "{} failed: MPI error {} ({})", op, code, std::string(text, len));
}

Result MpiTransport::wait(MPI_Request* request, const char* op) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s_);
  for (uint64_t spins = 0;; ++spins) {
    int done = 0;
    const int rc = MPI_Test(request, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return mpi_error(rc, op);
    if (done) return qcclSuccess;
    // Ranks may outnumber cores (CI runs 4 ranks on 2): give the core away
    // once the peers are clearly not there yet.
    if (spins > 256) sched_yield();
    if ((spins & 63) == 63 && Clock::now() > deadline) {
      broken_by_ = op;
      return fail(qcclTimeout,
                  "{} did not complete within QCCL_TIMEOUT_S={} s: a rank stopped participating "
                  "or is in a different collective; this communicator is now unusable",
                  op, timeout_s_);
    }
  }
}

Result MpiTransport::to_int(const uint64_t* values, std::vector<int>* out, const char* op) const {
  out->resize(size_);
  for (int r = 0; r < size_; ++r) {
    if (values[r] > static_cast<uint64_t>(INT_MAX))
      return fail(qcclInvalidArgument, "{}: {} bytes exceed the MPI count limit {}", op, values[r],
                  INT_MAX);
    (*out)[r] = static_cast<int>(values[r]);
  }
  return qcclSuccess;
}

Result MpiTransport::allgatherv(const void* send, uint64_t send_bytes, void* recv,
                                const uint64_t* recv_bytes, const uint64_t* recv_offsets) {
  const char* op = "allgather (MPI_Iallgatherv)";
  QCCL_CHECK(check_usable(op));
  if (send_bytes > static_cast<uint64_t>(INT_MAX))
    return fail(qcclInvalidArgument, "{}: {} bytes exceed the MPI count limit", op, send_bytes);
  QCCL_CHECK(to_int(recv_bytes, &counts_a_, op));
  QCCL_CHECK(to_int(recv_offsets, &displs_a_, op));
  MPI_Request request;
  int rc = MPI_Iallgatherv(send, static_cast<int>(send_bytes), MPI_BYTE, recv, counts_a_.data(),
                           displs_a_.data(), MPI_BYTE, comm_, &request);
  if (rc != MPI_SUCCESS) return mpi_error(rc, op);
  return wait(&request, op);
}

Result MpiTransport::alltoallv(const void* send, const uint64_t* send_bytes,
                               const uint64_t* send_offsets, void* recv, const uint64_t* recv_bytes,
                               const uint64_t* recv_offsets) {
  const char* op = "all-to-all (MPI_Ialltoallv)";
  QCCL_CHECK(check_usable(op));
  QCCL_CHECK(to_int(send_bytes, &counts_a_, op));
  QCCL_CHECK(to_int(send_offsets, &displs_a_, op));
  QCCL_CHECK(to_int(recv_bytes, &counts_b_, op));
  QCCL_CHECK(to_int(recv_offsets, &displs_b_, op));
  MPI_Request request;
  int rc = MPI_Ialltoallv(send, counts_a_.data(), displs_a_.data(), MPI_BYTE, recv,
                          counts_b_.data(), displs_b_.data(), MPI_BYTE, comm_, &request);
  if (rc != MPI_SUCCESS) return mpi_error(rc, op);
  return wait(&request, op);
}

Result MpiTransport::allreduce_sum(double* values, size_t n) {
  const char* op = "statistics allreduce (MPI_Iallreduce)";
  QCCL_CHECK(check_usable(op));
  MPI_Request request;
  int rc = MPI_Iallreduce(MPI_IN_PLACE, values, static_cast<int>(n), MPI_DOUBLE, MPI_SUM, comm_,
                          &request);
  if (rc != MPI_SUCCESS) return mpi_error(rc, op);
  return wait(&request, op);
}

Result MpiTransport::allreduce_passthrough(const void* send, void* recv, uint64_t count,
                                           DataType dtype) {
  const char* op = "uncompressed allreduce (MPI_Allreduce)";
  QCCL_CHECK(check_usable(op));
  // MPI counts are int: large buffers go in pieces (each piece is still the
  // same MPI_Allreduce elementwise, so the result is unchanged).
  constexpr uint64_t kPiece = 1ull << 30;
  if (dtype == DataType::kFloat32) {
    const float* in = static_cast<const float*>(send);
    float* out = static_cast<float*>(recv);
    for (uint64_t done = 0; done < count; done += kPiece) {
      const int n = static_cast<int>(std::min(kPiece, count - done));
      const void* src = (send == recv) ? MPI_IN_PLACE : static_cast<const void*>(in + done);
      const int rc = MPI_Allreduce(src, out + done, n, MPI_FLOAT, MPI_SUM, comm_);
      if (rc != MPI_SUCCESS) return mpi_error(rc, op);
    }
    return qcclSuccess;
  }
  // float16/bfloat16: MPI has no such sum; widen, sum in float32, round back.
  if (widened_.size() < count) widened_.resize(count);
  cast_to_float(send, count, dtype, widened_.data());
  for (uint64_t done = 0; done < count; done += kPiece) {
    const int n = static_cast<int>(std::min(kPiece, count - done));
    const int rc =
        MPI_Allreduce(MPI_IN_PLACE, widened_.data() + done, n, MPI_FLOAT, MPI_SUM, comm_);
    if (rc != MPI_SUCCESS) return mpi_error(rc, op);
  }
  cast_from_float(widened_.data(), count, dtype, recv);
  return qcclSuccess;
}

Result MpiTransport::barrier() {
  const char* op = "barrier (MPI_Ibarrier)";
  QCCL_CHECK(check_usable(op));
  MPI_Request request;
  int rc = MPI_Ibarrier(comm_, &request);
  if (rc != MPI_SUCCESS) return mpi_error(rc, op);
  return wait(&request, op);
}

}  // namespace qccl
