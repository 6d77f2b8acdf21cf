// Helpers for the engine tests: communicators with engine settings, and a
// thread-safe record of callbacks that tests can wait on. The engine's
// cycle thread runs on its own duplicate of the communicator's transport
// (MPI_THREAD_MULTIPLE, mpi_test_main.cc), so tests may call MPI and the
// communicator while it runs.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>

#include "mpi_test_util.h"
#include "qccl/qccl.h"

namespace qccl::test {

struct EngineOptions {
  std::string method = "none", bits = "3", bucket = "256", min_bytes = "0";
  std::string error_feedback = "0", fusion = "67108864", cycle_ms = "1", timeout = "60";
  std::string timeline;
  std::string update_steps = "0,100,2000", update_every = "10000";  // the library's defaults
};

class EngineComm {
 public:
  explicit EngineComm(const EngineOptions& o = EngineOptions()) : options_(o) {
    qcclConfig_t c = QCCL_CONFIG_INITIALIZER;
    c.method = options_.method.c_str();
    c.bits = options_.bits.c_str();
    c.bucketSize = options_.bucket.c_str();
    c.minCompressBytes = options_.min_bytes.c_str();
    c.seed = "11";
    c.errorFeedback = options_.error_feedback.c_str();
    c.fusionThreshold = options_.fusion.c_str();
    c.cycleTimeMs = options_.cycle_ms.c_str();
    c.timeoutS = options_.timeout.c_str();
    c.updateSteps = options_.update_steps.c_str();
    c.updateEvery = options_.update_every.c_str();
    if (!options_.timeline.empty()) c.timeline = options_.timeline.c_str();
    MPI_Comm world = MPI_COMM_WORLD;
    init_result = qcclCommInitMpi(&comm, &world, &c);
    if (init_result == qcclSuccess) start_result = qcclEngineStart(comm);
  }
  ~EngineComm() {
    if (comm == nullptr) return;
    if (start_result == qcclSuccess && !stopped) qcclEngineStop(comm);
    qcclCommDestroy(comm);
  }
  qcclResult_t stop() {
    stopped = true;
    return qcclEngineStop(comm);
  }
  EngineComm(const EngineComm&) = delete;
  EngineComm& operator=(const EngineComm&) = delete;

  qcclComm_t comm = nullptr;
  qcclResult_t init_result = qcclInternalError, start_result = qcclInternalError;
  bool stopped = false;

 private:
  EngineOptions options_;
};

struct Completion {
  qcclResult_t result = qcclInternalError;
  std::string error;
};

// Records every callback; pass `this` as the callback's user pointer.
class CallbackLog {
 public:
  static void callback(qcclResult_t result, const char* name, const char* error, void* user) {
    auto* self = static_cast<CallbackLog*>(user);
    std::lock_guard<std::mutex> lock(self->mutex_);
    self->done_[name] = Completion{result, error};
    self->calls_++;
    self->changed_.notify_all();
  }
  // Waits until `n` callbacks have fired or `seconds` passed; true if they did.
  bool wait_for(size_t n, double seconds) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, std::chrono::duration<double>(seconds),
                             [&] { return calls_ >= n; });
  }
  size_t calls() {
    std::lock_guard<std::mutex> lock(mutex_);
    return calls_;
  }
  std::map<std::string, Completion> done() {
    std::lock_guard<std::mutex> lock(mutex_);
    return done_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, Completion> done_;
  size_t calls_ = 0;
};

}  // namespace qccl::test
