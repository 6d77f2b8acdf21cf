#include "engine/engine.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <unordered_set>

#include "codec/cpu_codec.h"
#include "collective/call_size.h"
#include "core/checked_alloc.h"
#include "core/fault_injection.h"
#include "core/logging.h"
#include "transport/abort_job.h"
#include "transport/finalize_hooks.h"

namespace qccl {
namespace {

using Clock = std::chrono::steady_clock;

std::string rank_list(const std::vector<int>& ranks) {
  return fmt::format("[{}]", fmt::join(ranks, ", "));
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Records the first error that breaks the engine (this rank's cycle can no
// longer be trusted to match the other ranks'): enqueue then refuses,
// pending tensors fail with it, qcclEngineStop returns it. The message is
// this thread's last error. Never throws.
void record_broken(std::mutex& mutex, Result* broken, std::string* message, Result r) noexcept {
  std::lock_guard<std::mutex> lock(mutex);
  if (*broken != qcclSuccess) return;
  *broken = r;
  try {
    *message = thread_last_error();
    QCCL_LOG_WARN("{}", *message);
  } catch (...) {
    message->clear();  // out of memory: the code alone
  }
}

}  // namespace

Engine::Engine(const Config& config, std::unique_ptr<Transport> transport,
               std::unique_ptr<Adapter> adapter)
    : config_(config),
      own_transport_(std::move(transport)),
      adapter_(std::move(adapter)),
      transport_(*own_transport_),
      collectives_(config, transport_, *adapter_) {}

Engine::~Engine() {
  if (thread_.joinable()) stop();
  remove_finalize_hook(finalize_hook_);
}

void Engine::join() {
  std::lock_guard<std::mutex> lock(join_mutex_);
  if (thread_.joinable()) thread_.join();
}

Result Engine::start() {
  if (thread_.joinable())
    return fail(qcclInvalidUsage, "the engine of this communicator is already started");
  QCCL_CHECK(timeline_.open(config_.timeline, collectives_.rank()));
  running_ = true;
  thread_ = std::thread(&Engine::run, this);
  // MPI_Finalize with the engine still running (docs/engine.md
  // "MPI_Finalize"): the transport refuses calls from then on, so the
  // thread's next cycle fails and it exits before MPI is torn down.
  finalize_hook_ = add_finalize_hook([this] {
    stop_requested_ = true;
    join();
  });
  return qcclSuccess;
}

Result Engine::enqueue(const std::string& name, void* buf, uint64_t count, DataType dtype,
                       bool average, bool force_uncompressed, qcclEngineCallback_t callback,
                       void* user) {
  auto entry = std::make_unique<TensorEntry>();
  entry->name = name;
  entry->name_hash = hash_name(name);
  entry->buf = buf;
  entry->count = count;
  entry->dtype = dtype;
  entry->average = average;
  // docs/engine.md, compression policy: small tensors and those the caller
  // marks (biases, norms) go through the transport's exact allreduce.
  entry->compress = config_.method != Method::kNone && !force_uncompressed &&
                    entry->bytes() >= std::max<uint64_t>(config_.min_compress_bytes, 1);
  entry->callback = callback;
  entry->user = user;
  entry->submitted = Clock::now();
  entry->submitted_us = Timeline::now_us();
  std::lock_guard<std::mutex> lock(state_mutex_);
  if (broken_ != qcclSuccess)
    return fail(broken_, "the engine stopped after an error: {}", broken_message_);
  if (!running_ || stop_requested_)
    return fail(qcclInvalidUsage,
                "cannot enqueue '{}': the engine is not running (qcclEngineStart "
                "first; qcclEngineStop was called)",
                name);
  return queue_.push(std::move(entry));
}

// A timeline that could not be written (disk full, ...) is an error of
// the stop, not dropped: the tensors were reduced, but the trace the
// caller asked for is incomplete.
Result Engine::stop() {
  stop_requested_ns_ = Clock::now().time_since_epoch().count();
  stop_requested_ = true;
  remove_finalize_hook(finalize_hook_);
  join();
  const Result timeline = timeline_.close();
  const std::string timeline_error = timeline == qcclSuccess ? std::string() : thread_last_error();
  std::lock_guard<std::mutex> lock(state_mutex_);
  if (broken_ != qcclSuccess)
    return set_error(broken_, timeline_error.empty() ? broken_message_
                                                     : broken_message_ + "; " + timeline_error);
  if (timeline != qcclSuccess) return set_error(timeline, timeline_error);
  return qcclSuccess;
}

EngineCounters Engine::counters() {
  std::lock_guard<std::mutex> lock(state_mutex_);
  return counters_;
}

// No exception leaves the thread (it would end the process): one thrown by
// a cycle (out of memory, a bug) breaks the engine like a transport
// failure: the pending tensors fail with it and qcclEngineStop returns it.
void Engine::run() {
  const auto period = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double, std::milli>(config_.cycle_time_ms));
  auto next = Clock::now();
  while (true) {
    bool again = false;
    try {
      again = cycle();
    } catch (...) {
      const Result r = exception_result("engine cycle");
      record_broken(state_mutex_, &broken_, &broken_message_, r);
    }
    if (!again) break;
    next += period;
    const auto now = Clock::now();
    if (next < now) next = now;  // behind schedule: do not burst to catch up
    std::this_thread::sleep_until(next);
  }
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    running_ = false;
  }
  // From here enqueue refuses, so nothing can be left without a callback.
  try {
    Result result;
    std::string message;
    {
      std::lock_guard<std::mutex> lock(state_mutex_);
      result = broken_ != qcclSuccess ? broken_ : qcclInvalidUsage;
      message = broken_ != qcclSuccess ? broken_message_
                                       : "the engine was stopped before every rank submitted it";
    }
    fail_all_pending(result, message);
    publish_counters();
    timeline_.flush();
  } catch (...) {
    const Result r = exception_result("engine shutdown");
    record_broken(state_mutex_, &broken_, &broken_message_, r);
  }
}

// collect → negotiate → (mismatches, stall check) → fuse → execute → complete.
bool Engine::cycle() {
  maybe_inject_fault("engine cycle");
  const std::vector<TensorEntry*> pending = queue_.snapshot();
  RankAnnouncements mine;
  mine.flags = stop_requested_ ? kFlagStopRequested : 0;
  for (const TensorEntry* e : pending) {
    TensorAnnouncement a;
    a.name_hash = e->name_hash;
    a.count = e->count;
    a.dtype = static_cast<uint8_t>(e->dtype);
    a.op = e->average ? qcclAvg : qcclSum;
    a.compress = e->compress ? 1 : 0;
    mine.tensors.push_back(a);
  }
  std::vector<RankAnnouncements> all;
  const Result negotiated = exchange_announcements(collectives_, mine, &all);
  if (negotiated != qcclSuccess) {
    std::lock_guard<std::mutex> lock(state_mutex_);
    broken_ = negotiated;
    broken_message_ = "engine negotiation failed: " + thread_last_error();
    QCCL_LOG_WARN("{}", broken_message_);
    return false;
  }
  const int64_t negotiated_us = Timeline::now_us();
  const CycleDecision decision = decide_cycle(all);

  for (const Mismatch& m : decision.mismatched) {
    std::unique_ptr<TensorEntry> e = queue_.take(m.name_hash);
    const std::string message = fmt::format("tensor '{}': {}", e->name, m.description);
    QCCL_LOG_WARN("engine: {}", message);
    complete(std::move(e), qcclInvalidUsage, message);
  }
  // A group that broke the engine (an exception while reducing it) ends the
  // cycle: the rest stay pending and fail in run().
  auto broken = [&] {
    std::lock_guard<std::mutex> lock(state_mutex_);
    return broken_ != qcclSuccess;
  };
  // Members of compressed groups start on bucket boundaries when the method
  // has buckets (fusion_plan.h).
  const uint64_t align = is_quantizing(config_.method) ? config_.bucket_size : 1;
  for (const FusionGroup& group : plan_fusion(decision.ready, config_.fusion_threshold, align)) {
    execute(group, negotiated_us);
    if (broken()) return false;
  }
  if (decision.drains_everything && !(decision.ready.empty() && decision.mismatched.empty()))
    collectives_.mark_step();  // docs/design.md §7: a cycle that completes every name is a step

  // What is still pending was not announced by every rank.
  std::unordered_set<uint64_t> announced;
  for (const TensorAnnouncement& a : mine.tensors) announced.insert(a.name_hash);
  for (TensorEntry* e : queue_.snapshot())
    if (announced.count(e->name_hash) != 0) check_stall(e, all);
  local_.cycles++;
  publish_counters();
  timeline_.flush();
  if (!decision.all_stop_requested && stop_requested_) return !stop_timed_out(all);
  return !decision.all_stop_requested;
}

// qcclEngineStop is collective: it waits for every rank's stop request,
// but no longer than QCCL_TIMEOUT_S (a rank that never stops would keep it
// forever). True when the wait is over: the engine breaks with qcclTimeout.
bool Engine::stop_timed_out(const std::vector<RankAnnouncements>& all) {
  const double waited = std::chrono::duration<double>(Clock::now().time_since_epoch() -
                                                      Clock::duration(stop_requested_ns_.load()))
                            .count();
  if (waited < config_.timeout_s) return false;
  std::vector<int> missing;
  for (int r = 0; r < static_cast<int>(all.size()); ++r)
    if ((all[r].flags & kFlagStopRequested) == 0) missing.push_back(r);
  const std::string message = fmt::format(
      "qcclEngineStop: ranks {} did not call qcclEngineStop within QCCL_TIMEOUT_S={} s; the "
      "engine stopped on this rank without them",
      rank_list(missing), config_.timeout_s);
  if (config_.abort_on_timeout) abort_job(message);
  // The others' engines wait on this one's negotiation: end their waits.
  transport_.abandon(message);
  record_broken(state_mutex_, &broken_, &broken_message_, set_error(qcclTimeout, message));
  return true;
}

void Engine::check_stall(TensorEntry* e, const std::vector<RankAnnouncements>& all) {
  const double age = seconds_since(e->submitted);
  const double warn_after = std::min(60.0, config_.timeout_s / 2);
  if (age < warn_after) return;
  const std::vector<int> have = ranks_announcing(all, e->name_hash);
  std::vector<int> missing;
  for (int r = 0; r < collectives_.size(); ++r)
    if (!std::binary_search(have.begin(), have.end(), r)) missing.push_back(r);
  if (age >= config_.timeout_s) {
    const std::string message = fmt::format(
        "stall: tensor '{}' was submitted on ranks {} but not on ranks {} within "
        "QCCL_TIMEOUT_S={} s",
        e->name, rank_list(have), rank_list(missing), config_.timeout_s);
    QCCL_LOG_WARN("engine: {}", message);
    if (config_.abort_on_timeout) abort_job(message);
    complete(queue_.take(e->name_hash), qcclTimeout, message);
  } else if (!e->stall_warned) {
    e->stall_warned = true;
    QCCL_LOG_WARN(
        "engine stall: tensor '{}' is submitted on ranks {} but not yet on ranks {} after {:.1f} "
        "s (it fails at QCCL_TIMEOUT_S={} s)",
        e->name, rank_list(have), rank_list(missing), age, config_.timeout_s);
  }
}

// The members are out of the queue from here on, so an exception thrown
// while reducing them is caught here, not in run(): they still get their
// callbacks (with the error), and the engine breaks (ranks may be out of
// step).
void Engine::execute(const FusionGroup& group, int64_t negotiated_us) {
  std::vector<std::unique_ptr<TensorEntry>> members;
  std::vector<TensorEntry*> raw;
  members.reserve(group.name_hashes.size());
  raw.reserve(group.name_hashes.size());
  for (uint64_t h : group.name_hashes) {
    members.push_back(queue_.take(h));
    raw.push_back(members.back().get());
  }
  // Copies into the fusion buffer, reduces, copies back, records the
  // timeline spans.
  auto reduce = [&]() -> Result {
    const uint64_t elem = dtype_size(group.dtype);
    const int64_t start_us = Timeline::now_us();
    // Each tensor passed the size check at enqueue; their sum must too
    // (docs/api.md "Size limits"). Every rank fuses alike, so fails alike.
    QCCL_CHECK(check_call_size(CollectiveKind::kAllReduce, group.count, group.dtype,
                               collectives_.size(), "fused count"));
    // A lone tensor is reduced in place; several go through the fusion
    // buffer, each at its planned offset with zeros in the gaps
    // (fusion_plan.h: no bucket spans two tensors).
    const bool fused = raw.size() > 1 || config_.error_feedback;
    void* data = raw[0]->buf;
    std::vector<ZeroRun> padding;
    if (fused) {
      QCCL_CHECK(grow_vector(&fusion_buffer_, group.count * elem, "fusion buffer"));
      unsigned char* buffer = fusion_buffer_.data();
      data = buffer;
      uint64_t end = 0;  // of the previous member
      for (size_t k = 0; k < raw.size(); ++k) {
        const uint64_t offset = group.offsets[k];
        if (offset > end) {
          std::memset(buffer + end * elem, 0, (offset - end) * elem);
          padding.push_back(ZeroRun{end, offset - end});
        }
        if (raw[k]->count > 0) std::memcpy(buffer + offset * elem, raw[k]->buf, raw[k]->bytes());
        end = offset + raw[k]->count;
      }
    }
    transport_.clear();
    // Every group goes through the collective layer: one set of counters, the
    // call agreement, and the same passthrough rule as direct calls.
    Result result = qcclSuccess;
    if (group.count > 0 && group.compress && config_.error_feedback) {
      result = reduce_with_error_feedback(data, group, raw, padding);
    } else if (group.count > 0) {
      CollectiveRequest req;
      req.send = data;
      req.recv = data;
      req.count = group.count;
      req.dtype = group.dtype;
      req.average = group.average;
      req.compress = group.compress;
      req.padding = padding;
      result = collectives_.run(req);
    }
    if (fused && result == qcclSuccess) {
      for (size_t k = 0; k < raw.size(); ++k) {
        if (raw[k]->count > 0)
          std::memcpy(raw[k]->buf, fusion_buffer_.data() + group.offsets[k] * elem,
                      raw[k]->bytes());
      }
    }
    const int64_t end_us = Timeline::now_us();
    if (timeline_.enabled()) {
      const TransferRecord* wire = transport_.largest();
      const int64_t comm_start = wire ? wire->start_us : start_us;
      const int64_t comm_end = wire ? wire->end_us : end_us;
      for (const TensorEntry* e : raw) {
        timeline_.span(e->name, "NEGOTIATE", e->submitted_us, negotiated_us);
        timeline_.span(e->name, "QUANTIZE", start_us, comm_start);
        timeline_.span(e->name, "COMMUNICATE", comm_start, comm_end);
        timeline_.span(e->name, "DEQUANTIZE", comm_end, end_us);
      }
    }
    return result;
  };
  Result result = qcclSuccess;
  std::string error;
  try {
    maybe_inject_fault("engine execute");
    result = reduce();
    if (result != qcclSuccess) error = thread_last_error();
  } catch (...) {
    result = exception_result("engine execute");
    record_broken(state_mutex_, &broken_, &broken_message_, result);
    error = thread_last_error();
  }
  try {
    publish_counters();  // before the callbacks, so a callback's waiter sees this call's stats
  } catch (...) {
  }
  for (auto& e : members) complete(std::move(e), result, error);
}

// Error feedback (docs/algorithms.md §6): the residual kept under each
// tensor's name is added before the allreduce, and x - Q(x) is kept after
// it; Q(x), this rank's own quantised input, comes out of the same
// allreduce (CollectiveRequest::own_decoded).
Result Engine::reduce_with_error_feedback(void* data, const FusionGroup& group,
                                          const std::vector<TensorEntry*>& members,
                                          const std::vector<ZeroRun>& padding) {
  const uint64_t count = group.count;
  QCCL_CHECK(grow_vector(&widened_, count, "error-feedback float32 input"));
  float* sent = widened_.data();
  cast_to_float(data, count, group.dtype, sent);
  for (size_t k = 0; k < members.size(); ++k)
    error_feedback_.add_residual(members[k]->name_hash, sent + group.offsets[k], members[k]->count);
  cast_from_float(sent, count, group.dtype, data);
  cast_to_float(data, count, group.dtype, sent);  // what is actually sent, after rounding
  // A call that goes uncompressed leaves own_decoded alone: no residual.
  QCCL_CHECK(grow_vector(&own_decoded_, count, "error-feedback decoded copy"));
  float* own = own_decoded_.data();
  std::copy(sent, sent + count, own);
  CollectiveRequest req;
  req.send = data;
  req.recv = data;
  req.count = count;
  req.dtype = group.dtype;
  req.average = group.average;
  req.own_decoded = own;
  req.padding = padding;
  QCCL_CHECK(collectives_.run(req));
  for (size_t k = 0; k < members.size(); ++k) {
    const uint64_t offset = group.offsets[k];
    QCCL_CHECK(error_feedback_.update(members[k]->name_hash, sent + offset, own + offset,
                                      members[k]->count));
  }
  return qcclSuccess;
}

// A callback is the caller's code: one that throws (a C++ function behind
// the C pointer) is logged, not allowed to end the engine's thread.
void Engine::complete(std::unique_ptr<TensorEntry> entry, Result result, const std::string& error) {
  if (entry == nullptr) return;
  local_.tensors_completed++;
  if (entry->callback == nullptr) return;
  try {
    entry->callback(result, entry->name.c_str(), error.c_str(), entry->user);
  } catch (...) {
    exception_result("engine callback");
    try {
      QCCL_LOG_WARN("the callback of tensor '{}' threw ({}); ignored", entry->name,
                    thread_last_error());
    } catch (...) {
    }
  }
}

void Engine::fail_all_pending(Result result, const std::string& error) {
  for (TensorEntry* e : queue_.snapshot()) {
    std::unique_ptr<TensorEntry> entry = queue_.take(e->name_hash);
    const std::string message = fmt::format("tensor '{}': {}", entry->name, error);
    complete(std::move(entry), result, message);
  }
}

void Engine::publish_counters() {
  local_.collective = collectives_.context().counters;
  local_.step = collectives_.context().step;
  std::lock_guard<std::mutex> lock(state_mutex_);
  counters_ = local_;
}

}  // namespace qccl
