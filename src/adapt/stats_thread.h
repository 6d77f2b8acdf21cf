// The statistics thread (docs/design.md §7): fits posted statistics off the hot
// path and hands back versioned, immutable tables, each due at an agreed
// switch step. The only wait on it is take_due() for a step whose table is
// still being fitted.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "adapt/stats_summary.h"
#include "codec/level_table.h"

namespace qccl {

struct PublishedTable {
  std::shared_ptr<const LevelTable> table;
  double predicted_variance = -1;
};

class StatsThread {
 public:
  // `fit` runs on the thread, one job at a time in posting order; it returns
  // false to keep the previous table (nothing usable in the statistics).
  using FitFunction =
      std::function<bool(const StatsSummary& stats, uint32_t version, PublishedTable* out)>;

  explicit StatsThread(FitFunction fit);
  ~StatsThread();  // stops and joins; unfinished jobs are dropped
  StatsThread(const StatsThread&) = delete;
  StatsThread& operator=(const StatsThread&) = delete;

  // Queues a fit whose table takes effect at `switch_step`. Never blocks on a fit.
  void post(uint64_t switch_step, uint32_t version, StatsSummary stats);

  // Waits until every job due at or before `step` is fitted, then moves the
  // newest such table (if any new one) into *out and returns true.
  bool take_due(uint64_t step, PublishedTable* out);

 private:
  struct Job {
    uint64_t switch_step;
    uint32_t version;
    StatsSummary stats;
  };
  void run();

  FitFunction fit_;
  std::mutex mutex_;
  std::condition_variable work_ready_;  // a job was posted, or stop
  std::condition_variable fit_done_;    // a job finished
  std::deque<Job> queue_;
  std::multiset<uint64_t> in_flight_;             // switch steps of queued or running jobs
  std::multimap<uint64_t, PublishedTable> done_;  // by switch step, in posting order
  bool stop_ = false;
  std::thread thread_;  // last: starts after the state above exists
};

}  // namespace qccl
