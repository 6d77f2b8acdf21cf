#include "transport/mpi_transport.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>

#include "transport/finalize_hooks.h"

namespace qccl {

struct MpiTransport::Shared {
  std::mutex mutex;
  std::string broken;  // why the communicator is unusable; empty while usable
  MPI_Comm notices = MPI_COMM_NULL;
  ~Shared() {
    // A broken communicator may still have pending operations, which
    // MPI_Comm_free would wait on: it is left to MPI_Finalize.
    if (broken.empty() && !mpi_finalizing() && notices != MPI_COMM_NULL) MPI_Comm_free(&notices);
  }
};

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kNoticeTag = 7;

std::atomic<bool> finalizing{false};

// Runs at the start of MPI_Finalize (the attribute on MPI_COMM_SELF is
// deleted first): from then on transports refuse calls, then the hooks
// stop the threads that still use MPI (docs/engine.md "MPI_Finalize").
int on_mpi_finalize(MPI_Comm, int, void*, void*) {
  finalizing = true;
  run_finalize_hooks();
  return MPI_SUCCESS;
}

void watch_mpi_finalize() {
  static std::once_flag once;
  std::call_once(once, [] {
    int keyval = MPI_KEYVAL_INVALID;
    MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, on_mpi_finalize, &keyval, nullptr);
    MPI_Comm_set_attr(MPI_COMM_SELF, keyval, nullptr);
  });
}

// Memory a pending MPI operation may still write into after a timeout
// (see mpi_transport.h). Never freed: MPI may touch it until the process
// ends. Reachable from here, so leak checkers do not report it.
void keep_forever(std::shared_ptr<void> memory) {
  static std::mutex m;
  static auto* kept = new std::vector<std::shared_ptr<void>>;
  std::lock_guard<std::mutex> lock(m);
  kept->push_back(std::move(memory));
}
template <typename T>
void keep_forever(T&& value) {
  keep_forever(std::static_pointer_cast<void>(std::make_shared<std::decay_t<T>>(std::move(value))));
}

// Polls two requests (MPI_Comm_idup) until both complete or the deadline.
bool wait_both(MPI_Request* a, MPI_Request* b, double seconds) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  for (uint64_t spins = 0;; ++spins) {
    int done_a = 0, done_b = 0;
    MPI_Test(a, &done_a, MPI_STATUS_IGNORE);
    MPI_Test(b, &done_b, MPI_STATUS_IGNORE);
    if (done_a && done_b) return true;
    if (spins > 256) sched_yield();
    if ((spins & 63) == 63 && Clock::now() > deadline) return false;
  }
}

}  // namespace

bool MpiTransport::mpi_finalizing() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  return finalizing || finalized;
}

MpiTransport::MpiTransport(MPI_Comm comm, int rank, int size, const TimeoutPolicy& policy,
                           std::shared_ptr<Shared> shared)
    : comm_(comm), rank_(rank), size_(size), policy_(policy), shared_(std::move(shared)) {}

Result MpiTransport::create(MPI_Comm comm, const TimeoutPolicy& policy,
                            std::unique_ptr<MpiTransport>* out) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) return fail(qcclInvalidUsage, "MPI is not initialised: call MPI_Init first");
  if (mpi_finalizing())
    return fail(qcclInvalidUsage,
                "MPI_Finalize has been called: MPI cannot be used again in this process, so no "
                "communicator can be created over it");
  if (comm == MPI_COMM_NULL)
    return fail(qcclInvalidArgument, "the MPI communicator is MPI_COMM_NULL");
  watch_mpi_finalize();
  // Both duplicates at once, bounded: ranks that pass different
  // communicators (or a rank that never calls) time out instead of hanging.
  struct Pending {
    MPI_Comm comms[2] = {MPI_COMM_NULL, MPI_COMM_NULL};
    MPI_Request requests[2];
  };
  auto pending = std::make_shared<Pending>();
  MPI_Comm* comms = pending->comms;
  MPI_Request* requests = pending->requests;
  int rc = MPI_Comm_idup(comm, &comms[0], &requests[0]);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_idup(comm, &comms[1], &requests[1]);
  if (rc != MPI_SUCCESS) return fail(qcclTransportError, "MPI_Comm_idup failed (MPI error {})", rc);
  if (!wait_both(&requests[0], &requests[1], policy.seconds)) {
    keep_forever(std::static_pointer_cast<void>(pending));  // MPI writes the handles on completion
    const std::string report = fmt::format(
        "communicator creation (MPI_Comm_idup) did not complete within QCCL_TIMEOUT_S={} s: "
        "every rank of the MPI communicator must create a qccl communicator over it, at the "
        "same point",
        policy.seconds);
    if (policy.abort_job) abort_job(report);
    return fail(qcclTimeout, "{}", report);
  }
  for (int i = 0; i < 2; ++i) MPI_Comm_set_errhandler(comms[i], MPI_ERRORS_RETURN);
  int rank = 0, size = 0;
  MPI_Comm_rank(comms[0], &rank);
  MPI_Comm_size(comms[0], &size);
  auto shared = std::make_shared<Shared>();
  shared->notices = comms[1];
  out->reset(new MpiTransport(comms[0], rank, size, policy, std::move(shared)));
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
  auto dup = std::make_shared<MPI_Comm>(MPI_COMM_NULL);
  MPI_Request request;
  const int rc = MPI_Comm_idup(comm_, dup.get(), &request);
  if (rc != MPI_SUCCESS) return mpi_error(rc, op);
  const Result r = wait(&request, op);
  if (r != qcclSuccess) {
    keep_forever(std::static_pointer_cast<void>(dup));  // MPI writes the handle when it completes
    return r;
  }
  MPI_Comm_set_errhandler(*dup, MPI_ERRORS_RETURN);
  out->reset(new MpiTransport(*dup, rank_, size_, policy_, shared_));
  return qcclSuccess;
}

MpiTransport::~MpiTransport() {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  if (shared_->broken.empty() && !mpi_finalizing()) MPI_Comm_free(&comm_);
}

Result MpiTransport::check_usable(const char* op) {
  if (mpi_finalizing())
    return fail(qcclInvalidUsage,
                "{}: MPI_Finalize has been called; qccl calls over MPI must come before it", op);
  std::lock_guard<std::mutex> lock(shared_->mutex);
  if (shared_->broken.empty()) {
    // A peer that timed out says so on the notice communicator.
    int arrived = 0;
    MPI_Message message;
    MPI_Status status;
    MPI_Improbe(MPI_ANY_SOURCE, kNoticeTag, shared_->notices, &arrived, &message, &status);
    if (!arrived) return qcclSuccess;
    int length = 0;
    MPI_Get_count(&status, MPI_CHAR, &length);
    std::string text(static_cast<size_t>(std::max(length, 0)), '\0');
    MPI_Mrecv(text.data(), length, MPI_CHAR, &message, MPI_STATUS_IGNORE);
    shared_->broken = text;
  }
  return fail(qcclInvalidUsage,
              "{}: this communicator is unusable: {}. MPI cannot cancel a collective, so destroy "
              "it (qcclCommDestroy) and create a new one",
              op, shared_->broken);
}

Result MpiTransport::mpi_error(int code, const char* op) const {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  return fail(qcclTransportError, "{} failed: MPI error {} ({})", op, code, std::string(text, len));
}

void MpiTransport::abandon(const std::string& reason) {
  if (!mpi_finalizing()) break_everywhere(fmt::format("rank {}: {}", rank_, reason));
}

void MpiTransport::break_everywhere(const std::string& reason) {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  if (!shared_->broken.empty()) return;
  shared_->broken = reason;
  // Tell every peer (never waited on: the sends complete whenever the
  // peers' MPI makes progress, from buffers kept alive).
  auto text = std::make_shared<std::string>(reason);
  for (int r = 0; r < size_; ++r) {
    if (r == rank_) continue;
    MPI_Request request;
    if (MPI_Isend(text->data(), static_cast<int>(text->size()), MPI_CHAR, r, kNoticeTag,
                  shared_->notices, &request) == MPI_SUCCESS)
      MPI_Request_free(&request);
  }
  keep_forever(std::static_pointer_cast<void>(text));
}

void MpiTransport::keep_staging() {
  keep_forever(std::move(send_stage_));
  keep_forever(std::move(recv_stage_));
  keep_forever(std::move(counts_a_));
  keep_forever(std::move(displs_a_));
  keep_forever(std::move(counts_b_));
  keep_forever(std::move(displs_b_));
}

Result MpiTransport::timed_out(const char* op) {
  keep_staging();
  const std::string reason = fmt::format("'{}' timed out on rank {} after QCCL_TIMEOUT_S={} s", op,
                                         rank_, policy_.seconds);
  const std::string report = fmt::format(
      "{} did not complete within QCCL_TIMEOUT_S={} s: a rank stopped participating or is in a "
      "different collective; this communicator is now unusable on every rank: destroy it and "
      "create a new one",
      op, policy_.seconds);
  if (policy_.abort_job) abort_job(fmt::format("rank {}: {}", rank_, report));
  break_everywhere(reason);
  return fail(qcclTimeout, "{}", report);
}

Result MpiTransport::wait(MPI_Request* request, const char* op) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(policy_.seconds);
  for (uint64_t spins = 0;; ++spins) {
    int done = 0;
    const int rc = MPI_Test(request, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return mpi_error(rc, op);
    if (done) return qcclSuccess;
    // Ranks may outnumber cores (CI runs 4 ranks on 2): give the core away
    // once the peers are clearly not there yet.
    if (spins > 256) sched_yield();
    if ((spins & 63) != 63) continue;
    if (check_usable(op) != qcclSuccess) {
      // A peer timed out (or MPI is finalizing): this request will not
      // complete as the peers' did; abandon it like a timeout of our own.
      const std::string why = thread_last_error();
      keep_staging();
      if (mpi_finalizing()) return fail(qcclInvalidUsage, "{} abandoned: {}", op, why);
      return fail(qcclTimeout, "{} abandoned because a peer timed out: {}", op, why);
    }
    if (Clock::now() > deadline) return timed_out(op);
  }
}

Result MpiTransport::to_int(const uint64_t* values, int n, std::vector<int>* out,
                            const char* op) const {
  out->resize(n);
  for (int r = 0; r < n; ++r) {
    if (values[r] > static_cast<uint64_t>(INT_MAX))
      return fail(qcclInvalidArgument, "{}: {} bytes exceed the MPI count limit {}", op, values[r],
                  INT_MAX);
    (*out)[r] = static_cast<int>(values[r]);
  }
  return qcclSuccess;
}

unsigned char* MpiTransport::stage_send(const void* send, uint64_t bytes) {
  send_stage_.resize(std::max<uint64_t>(bytes, 1));
  if (bytes > 0) std::memcpy(send_stage_.data(), send, bytes);
  return send_stage_.data();
}

void MpiTransport::unstage_recv(void* recv, const uint64_t* recv_bytes,
                                const uint64_t* recv_offsets) const {
  for (int r = 0; r < size_; ++r)
    if (recv_bytes[r] > 0)  // an empty piece may come with a null buffer
      std::memcpy(static_cast<unsigned char*>(recv) + recv_offsets[r],
                  recv_stage_.data() + recv_offsets[r], recv_bytes[r]);
}

unsigned char* MpiTransport::stage_recv(uint64_t bytes) {
  recv_stage_.resize(std::max<uint64_t>(bytes, 1));
  return recv_stage_.data();
}

namespace {

// The bytes a (count, offset) layout spans.
uint64_t extent(const uint64_t* bytes, const uint64_t* offsets, int n) {
  uint64_t end = 0;
  for (int r = 0; r < n; ++r) end = std::max(end, offsets[r] + bytes[r]);
  return end;
}

}  // namespace

Result MpiTransport::allgatherv(const void* send, uint64_t send_bytes, void* recv,
                                const uint64_t* recv_bytes, const uint64_t* recv_offsets) {
  const char* op = "allgather (MPI_Iallgatherv)";
  QCCL_CHECK(check_usable(op));
  if (send_bytes > static_cast<uint64_t>(INT_MAX))
    return fail(qcclInvalidArgument, "{}: {} bytes exceed the MPI count limit", op, send_bytes);
  QCCL_CHECK(to_int(recv_bytes, size_, &counts_a_, op));
  QCCL_CHECK(to_int(recv_offsets, size_, &displs_a_, op));
  const uint64_t span = extent(recv_bytes, recv_offsets, size_);
  unsigned char* in = stage_send(send, send_bytes);
  unsigned char* out = stage_recv(span);
  MPI_Request request;
  int rc = MPI_Iallgatherv(in, static_cast<int>(send_bytes), MPI_BYTE, out, counts_a_.data(),
                           displs_a_.data(), MPI_BYTE, comm_, &request);
  if (rc != MPI_SUCCESS) return mpi_error(rc, op);
  QCCL_CHECK(wait(&request, op));
  unstage_recv(recv, recv_bytes, recv_offsets);
  return qcclSuccess;
}

Result MpiTransport::alltoallv(const void* send, const uint64_t* send_bytes,
                               const uint64_t* send_offsets, void* recv, const uint64_t* recv_bytes,
                               const uint64_t* recv_offsets) {
  const char* op = "all-to-all (MPI_Ialltoallv)";
  QCCL_CHECK(check_usable(op));
  QCCL_CHECK(to_int(send_bytes, size_, &counts_a_, op));
  QCCL_CHECK(to_int(send_offsets, size_, &displs_a_, op));
  QCCL_CHECK(to_int(recv_bytes, size_, &counts_b_, op));
  QCCL_CHECK(to_int(recv_offsets, size_, &displs_b_, op));
  unsigned char* in = stage_send(send, extent(send_bytes, send_offsets, size_));
  unsigned char* out = stage_recv(extent(recv_bytes, recv_offsets, size_));
  MPI_Request request;
  int rc = MPI_Ialltoallv(in, counts_a_.data(), displs_a_.data(), MPI_BYTE, out, counts_b_.data(),
                          displs_b_.data(), MPI_BYTE, comm_, &request);
  if (rc != MPI_SUCCESS) return mpi_error(rc, op);
  QCCL_CHECK(wait(&request, op));
  unstage_recv(recv, recv_bytes, recv_offsets);
  return qcclSuccess;
}

Result MpiTransport::allreduce_sum(double* values, size_t n) {
  const char* op = "statistics allreduce (MPI_Iallreduce)";
  QCCL_CHECK(check_usable(op));
  if (n > static_cast<size_t>(INT_MAX / sizeof(double)))
    return fail(qcclInvalidArgument, "{}: {} values exceed the MPI count limit", op, n);
  auto* staged = reinterpret_cast<double*>(stage_send(values, n * sizeof(double)));
  MPI_Request request;
  int rc = MPI_Iallreduce(MPI_IN_PLACE, staged, static_cast<int>(n), MPI_DOUBLE, MPI_SUM, comm_,
                          &request);
  if (rc != MPI_SUCCESS) return mpi_error(rc, op);
  QCCL_CHECK(wait(&request, op));
  std::memcpy(values, staged, n * sizeof(double));
  return qcclSuccess;
}

Result MpiTransport::allreduce_passthrough(const void* send, void* recv, uint64_t count,
                                           DataType dtype) {
  QCCL_CHECK(check_usable("uncompressed allreduce"));
  return rank_order_sum_.run(*this, send, recv, count, dtype);
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
