// The Horovod-style engine (docs/design.md §8, docs/engine.md). One per started
// communicator. The cycle reads like the design:
//   collect → negotiate → (stall check, mismatches) → fuse → execute → complete.
// It runs its own collective context (own step counter and counters) over
// a TimedTransport wrapping its own transport (a duplicate of the
// communicator's) with its own adapter, so direct calls on the
// communicator run beside it (docs/engine.md "Its own communicator").
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "collective/collectives.h"
#include "engine/error_feedback.h"
#include "engine/fusion_plan.h"
#include "engine/negotiation.h"
#include "engine/tensor_queue.h"
#include "engine/timed_transport.h"
#include "engine/timeline.h"

namespace qccl {

struct EngineCounters {
  CollectiveCounters collective;  // from the engine's collective context
  uint64_t step = 0;
  uint64_t tensors_completed = 0, cycles = 0;
};

class Engine {
 public:
  // `transport` and `adapter` are the engine's alone (Transport::duplicate,
  // create_adapter): nothing else may use them while it runs.
  Engine(const Config& config, std::unique_ptr<Transport> transport,
         std::unique_ptr<Adapter> adapter);
  ~Engine();  // stops (if still running) and joins
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  Result start();
  // Thread-safe. force_uncompressed keeps the tensor out of quantisation.
  Result enqueue(const std::string& name, void* buf, uint64_t count, DataType dtype, bool average,
                 bool force_uncompressed, qcclEngineCallback_t callback, void* user);
  // Collective: returns when every rank has asked to stop and the thread has exited.
  Result stop();
  EngineCounters counters();

 private:
  void run();
  // One cycle; false when the engine must exit.
  bool cycle();
  // Warns about, then fails, a tensor that not every rank has submitted.
  void check_stall(TensorEntry* e, const std::vector<RankAnnouncements>& all);
  bool stop_timed_out(const std::vector<RankAnnouncements>& all);
  void execute(const FusionGroup& group, int64_t negotiated_us);
  Result reduce_with_error_feedback(void* data, const FusionGroup& group,
                                    const std::vector<TensorEntry*>& members,
                                    const std::vector<ZeroRun>& padding);
  void complete(std::unique_ptr<TensorEntry> entry, Result result, const std::string& error);
  void fail_all_pending(Result result, const std::string& error);
  void publish_counters();
  void join();  // the cycle thread, once (stop, the destructor or MPI_Finalize)

  const Config& config_;
  // Declared before the members that use them, so destroyed after them.
  std::unique_ptr<Transport> own_transport_;
  std::unique_ptr<Adapter> adapter_;
  TimedTransport transport_;
  Collectives collectives_;
  TensorQueue queue_;
  Timeline timeline_;
  ErrorFeedbackStore error_feedback_;
  std::vector<unsigned char> fusion_buffer_;
  std::vector<float> widened_, own_decoded_;

  std::thread thread_;
  std::atomic<bool> stop_requested_{false};
  // When stop() was called (steady_clock ticks since its epoch).
  std::atomic<std::chrono::steady_clock::rep> stop_requested_ns_{0};
  std::atomic<bool> running_{false};
  std::mutex join_mutex_;
  int finalize_hook_ = 0;
  std::mutex state_mutex_;  // guards broken_*, counters_
  Result broken_ = qcclSuccess;
  std::string broken_message_;
  EngineCounters counters_;
  EngineCounters local_;  // cycle thread's working copy
};

}  // namespace qccl
