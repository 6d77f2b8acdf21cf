#include "adapt/stats_thread.h"

#include "core/logging.h"

namespace qccl {

StatsThread::StatsThread(FitFunction fit) : fit_(std::move(fit)), thread_([this] { run(); }) {}

StatsThread::~StatsThread() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_ready_.notify_all();
  fit_done_.notify_all();
  thread_.join();
}

void StatsThread::post(uint64_t switch_step, uint32_t version, StatsSummary stats) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    in_flight_.insert(switch_step);
    queue_.push_back(Job{switch_step, version, std::move(stats)});
  }
  work_ready_.notify_one();
}

bool StatsThread::take_due(uint64_t step, PublishedTable* out) {
  std::unique_lock<std::mutex> lock(mutex_);
  fit_done_.wait(lock, [&] { return stop_ || in_flight_.empty() || *in_flight_.begin() > step; });
  bool found = false;
  auto end = done_.upper_bound(step);
  for (auto it = done_.begin(); it != end; ++it) {
    if (it->second.table) {
      *out = std::move(it->second);
      found = true;
    }
  }
  done_.erase(done_.begin(), end);
  return found;
}

void StatsThread::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    work_ready_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    Job job = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    PublishedTable result;
    if (!fit_(job.stats, job.version, &result)) result = PublishedTable{};
    lock.lock();
    done_.emplace(job.switch_step, std::move(result));
    in_flight_.erase(in_flight_.find(job.switch_step));
    fit_done_.notify_all();
  }
}

}  // namespace qccl
