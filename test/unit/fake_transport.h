// An in-process qcclTransportOps_t for tests: N threads of one process are
// the N ranks and exchange bytes through shared memory, meeting at a
// mutex/condition-variable barrier (which also orders the shared reads and
// writes for TSan). Each callback can be made to fail on request, and every
// call and destroy is counted, so tests can tell a callback from its
// fallback and check who owns a ctx.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "qccl/qccl.h"

namespace qccl::fake {

// Shared by the N ranks of one fake transport (and one per duplicate).
class FakeWorld {
 public:
  explicit FakeWorld(int n) : n_(n), posted_(n) {}

  int size() const { return n_; }

  // Every rank waits here until all N have arrived; reusable.
  void sync() {
    std::unique_lock<std::mutex> lock(mutex_);
    const uint64_t generation = generation_;
    if (++arrived_ == n_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != generation; });
    }
  }

  // What a rank offers in the current exchange: written by that rank before
  // sync(), read by every rank after it.
  struct Post {
    const void* data = nullptr;
    uint64_t bytes = 0;
    const uint64_t* piece_bytes = nullptr;
    const uint64_t* piece_offsets = nullptr;
  };
  Post& post(int rank) { return posted_[rank]; }

  // The world behind every rank's k-th duplicate.
  FakeWorld* duplicate(size_t k) {
    std::lock_guard<std::mutex> lock(mutex_);
    while (children_.size() <= k) children_.push_back(std::make_unique<FakeWorld>(n_));
    return children_[k].get();
  }

 private:
  const int n_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
  std::vector<Post> posted_;
  std::vector<std::unique_ptr<FakeWorld>> children_;
};

inline std::atomic<int> g_destroyed{0};  // ctxs passed to destroy

// One rank's ctx. Touched only by that rank's thread.
struct FakeRank {
  FakeRank(FakeWorld* w, int r) : world(w), rank(r) {}
  FakeWorld* world;
  int rank;
  std::string fail_op;  // the callback of this name fails (until cleared)
  std::string error;    // lastError text
  std::map<std::string, int> calls;
  size_t duplicates = 0;
};

inline FakeRank* as_rank(void* ctx) {
  return static_cast<FakeRank*>(ctx);
}

// Counts the call; true (with the error text set) if it must fail.
inline bool fails(FakeRank* me, const char* op) {
  ++me->calls[op];
  if (me->fail_op != op) return false;
  me->error = std::string("fake link down during ") + op + " on rank " + std::to_string(me->rank);
  return true;
}

inline void copy_bytes(void* to, const void* from, uint64_t bytes) {
  // A rank's own slot of an in-place gather is both read by the others and
  // "written" here: skip the self-copy so it stays a read.
  if (bytes > 0 && to != from) std::memcpy(to, from, bytes);
}

inline qcclResult_t fake_allgatherv(void* ctx, const void* send, uint64_t send_bytes, void* recv,
                                    const uint64_t* recv_bytes, const uint64_t* recv_offsets) {
  FakeRank* me = as_rank(ctx);
  if (fails(me, "allgatherv")) return qcclSystemError;
  FakeWorld& w = *me->world;
  w.post(me->rank) = {send, send_bytes, nullptr, nullptr};
  w.sync();
  bool sizes_agree = true;
  for (int r = 0; r < w.size(); ++r) {
    if (w.post(r).bytes != recv_bytes[r]) sizes_agree = false;
    copy_bytes(static_cast<char*>(recv) + recv_offsets[r], w.post(r).data,
               std::min(w.post(r).bytes, recv_bytes[r]));
  }
  w.sync();
  if (!sizes_agree) me->error = "allgatherv: recvBytes differ from what the ranks send";
  return sizes_agree ? qcclSuccess : qcclInternalError;
}

inline qcclResult_t fake_alltoallv(void* ctx, const void* send, const uint64_t* send_bytes,
                                   const uint64_t* send_offsets, void* recv,
                                   const uint64_t* recv_bytes, const uint64_t* recv_offsets) {
  FakeRank* me = as_rank(ctx);
  if (fails(me, "alltoallv")) return qcclSystemError;
  FakeWorld& w = *me->world;
  w.post(me->rank) = {send, 0, send_bytes, send_offsets};
  w.sync();
  bool sizes_agree = true;
  for (int r = 0; r < w.size(); ++r) {
    const FakeWorld::Post& p = w.post(r);
    if (p.piece_bytes[me->rank] != recv_bytes[r]) sizes_agree = false;
    copy_bytes(static_cast<char*>(recv) + recv_offsets[r],
               static_cast<const char*>(p.data) + p.piece_offsets[me->rank],
               std::min(p.piece_bytes[me->rank], recv_bytes[r]));
  }
  w.sync();
  if (!sizes_agree) me->error = "alltoallv: recvBytes differ from what the ranks send";
  return sizes_agree ? qcclSuccess : qcclInternalError;
}

inline qcclResult_t fake_allreduce_sum(void* ctx, double* values, size_t count) {
  FakeRank* me = as_rank(ctx);
  if (fails(me, "allreduceSum")) return qcclSystemError;
  FakeWorld& w = *me->world;
  w.post(me->rank) = {values, count * sizeof(double), nullptr, nullptr};
  w.sync();
  std::vector<double> sum(count, 0.0);
  for (int r = 0; r < w.size(); ++r)
    for (size_t i = 0; i < count; ++i) sum[i] += static_cast<const double*>(w.post(r).data)[i];
  w.sync();  // every rank has read every input before any is overwritten
  std::copy(sum.begin(), sum.end(), values);
  return qcclSuccess;
}

// The "framework's own allreduce": float32 summed in rank order.
inline qcclResult_t fake_allreduce_passthrough(void* ctx, const void* send, void* recv,
                                               size_t count, qcclDataType_t datatype) {
  FakeRank* me = as_rank(ctx);
  if (fails(me, "allreducePassthrough")) return qcclSystemError;
  if (datatype != qcclFloat32) {
    me->error = "the fake passthrough sums float32 only";
    return qcclInvalidArgument;
  }
  FakeWorld& w = *me->world;
  w.post(me->rank) = {send, count * sizeof(float), nullptr, nullptr};
  w.sync();
  std::vector<float> sum(static_cast<const float*>(w.post(0).data),
                         static_cast<const float*>(w.post(0).data) + count);
  for (int r = 1; r < w.size(); ++r)
    for (size_t i = 0; i < count; ++i) sum[i] += static_cast<const float*>(w.post(r).data)[i];
  w.sync();
  std::copy(sum.begin(), sum.end(), static_cast<float*>(recv));
  return qcclSuccess;
}

inline qcclResult_t fake_barrier(void* ctx) {
  FakeRank* me = as_rank(ctx);
  if (fails(me, "barrier")) return qcclSystemError;
  me->world->sync();
  return qcclSuccess;
}

inline qcclResult_t fake_duplicate(void* ctx, void** new_ctx) {
  FakeRank* me = as_rank(ctx);
  if (fails(me, "duplicate")) return qcclSystemError;
  *new_ctx = new FakeRank(me->world->duplicate(me->duplicates++), me->rank);
  return qcclSuccess;
}

inline void fake_destroy(void* ctx) {
  delete as_rank(ctx);
  ++g_destroyed;
}

inline const char* fake_last_error(void* ctx) {
  return as_rank(ctx)->error.c_str();
}

// Optional callbacks a test leaves out (NULL) to get qccl's fallback.
enum Missing : unsigned {
  kAllPresent = 0,
  kNoAlltoallv = 1u << 0,
  kNoAllreduceSum = 1u << 1,
  kNoPassthrough = 1u << 2,
  kNoBarrier = 1u << 3,
  kNoDuplicate = 1u << 4,
  kNoLastError = 1u << 5,
  kNoDestroy = 1u << 6,
  kAllOptionalMissing = (1u << 7) - 1,
};

inline qcclTransportOps_t fake_ops(FakeRank* rank, unsigned missing = kAllPresent) {
  qcclTransportOps_t ops = QCCL_TRANSPORT_OPS_INITIALIZER;
  ops.rank = rank->rank;
  ops.nranks = rank->world->size();
  ops.ctx = rank;
  ops.allgatherv = fake_allgatherv;
  if (!(missing & kNoAlltoallv)) ops.alltoallv = fake_alltoallv;
  if (!(missing & kNoAllreduceSum)) ops.allreduceSum = fake_allreduce_sum;
  if (!(missing & kNoPassthrough)) ops.allreducePassthrough = fake_allreduce_passthrough;
  if (!(missing & kNoBarrier)) ops.barrier = fake_barrier;
  if (!(missing & kNoDuplicate)) ops.duplicate = fake_duplicate;
  if (!(missing & kNoLastError)) ops.lastError = fake_last_error;
  if (!(missing & kNoDestroy)) ops.destroy = fake_destroy;
  return ops;
}

// Runs body(rank) on n threads and joins them.
template <typename Body>
void run_ranks(int n, Body body) {
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) threads.emplace_back(body, r);
  for (std::thread& t : threads) t.join();
}

}  // namespace qccl::fake
