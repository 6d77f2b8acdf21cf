// The adapters of adapter.h: a fixed table (qsgd, qsgdinf, nuqsgd, trn, and
// no table for the casts), DQSGD's per-step bits (docs/algorithms.md §5), and the
// adaptive methods with their statistics thread (§3–4, docs/design.md §7).
#include "adapt/adapter.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <mutex>

#include "adapt/dqsgd.h"
#include "adapt/level_fit.h"
#include "adapt/refit_schedule.h"
#include "adapt/stats_thread.h"
#include "core/logging.h"

namespace qccl {
namespace {

class FixedTableAdapter : public Adapter {
 public:
  FixedTableAdapter(std::shared_ptr<const LevelTable> table, int bits)
      : table_(std::move(table)), bits_(bits) {}
  Result plan(uint64_t, double, double, EncodePlan* out) override {
    *out = EncodePlan{table_, bits_, false, -1};
    return qcclSuccess;
  }
  bool needs_global_norm() const override { return false; }
  std::vector<double> summary(const EncodeStats&) const override { return {}; }
  Result submit(uint64_t, const std::vector<double>&, int) override { return qcclSuccess; }

 private:
  std::shared_ptr<const LevelTable> table_;  // null for the casts
  int bits_;
};

class DqsgdAdapter : public Adapter {
 public:
  explicit DqsgdAdapter(int bits) : schedule_(bits) {
    for (int b = kDqsgdMinBits; b <= kDqsgdMaxBits; ++b) {
      // Version = bits: the table of each width never changes.
      LevelTable t = uniform_table(b);
      t.version = static_cast<uint32_t>(b);
      tables_[b] = std::make_shared<const LevelTable>(std::move(t));
    }
  }
  Result plan(uint64_t, double global_norm, double learning_rate, EncodePlan* out) override {
    std::lock_guard<std::mutex> lock(mutex_);
    const int bits = schedule_.next_bits(global_norm, learning_rate);
    *out = EncodePlan{tables_[bits], bits, false, -1};
    return qcclSuccess;
  }
  bool needs_global_norm() const override { return true; }
  std::vector<double> summary(const EncodeStats&) const override { return {}; }
  Result submit(uint64_t, const std::vector<double>&, int) override { return qcclSuccess; }

 private:
  std::mutex mutex_;
  DqsgdSchedule schedule_;
  std::shared_ptr<const LevelTable> tables_[kDqsgdMaxBits + 1];
};

std::string format_levels(const LevelTable& t) {
  return fmt::format("{}", fmt::join(t.levels, ", "));
}

class AdaptiveAdapter : public Adapter {
 public:
  // Fewer pooled coordinates than this and a fit would follow noise.
  static constexpr double kMinFitCoordinates = 4096;

  AdaptiveAdapter(const Config& config, LevelTable initial)
      : method_(config.method),
        bits_(config.bits),
        model_(resolve_model(config.method, config.model)),
        update_steps_(config.update_steps),
        update_every_(config.update_every),
        current_{std::make_shared<const LevelTable>(std::move(initial)), -1},
        thread_([this](const StatsSummary& s, uint32_t version, PublishedTable* out) {
          return fit(s, version, out);
        }) {}

  Result plan(uint64_t step, double, double, EncodePlan* out) override {
    std::lock_guard<std::mutex> lock(mutex_);
    seal_before(step);
    PublishedTable due;
    if (thread_.take_due(step, &due)) current_ = std::move(due);
    if (!planned_any_ || step != planned_step_) {
      // First call of a new step: a refit is due if one was scheduled since
      // the previous planned step (steps of uncompressed calls never plan).
      const uint64_t first = planned_any_ ? planned_step_ + 1 : 0;
      refit_due_ = refit_due_between(update_steps_, update_every_, first, step);
      planned_step_ = step;
      planned_any_ = true;
    }
    *out = EncodePlan{current_.table, bits_, pool_more_ || refit_due_, current_.predicted_variance};
    return qcclSuccess;
  }

  bool needs_global_norm() const override { return false; }

  std::vector<double> summary(const EncodeStats& stats) const override {
    return to_vector(summarize(stats));
  }

  Result submit(uint64_t step, const std::vector<double>& gathered, int nranks) override {
    StatsSummary combined;
    QCCL_CHECK(combine_gathered(gathered, nranks, &combined));
    std::lock_guard<std::mutex> lock(mutex_);
    if (has_pending_ && step < pending_step_) {
      return fail(qcclInvalidUsage, "statistics for step {} submitted after step {}", step,
                  pending_step_);
    }
    seal_before(step);
    // Several collective calls in one step (fused buckets) pool their
    // statistics; every rank sees the same calls in the same order.
    pending_ = has_pending_ ? merge(pending_, combined) : std::move(combined);
    pending_step_ = step;
    has_pending_ = true;
    return qcclSuccess;
  }

 private:
  // Statistics of a step are complete once a later step begins: hand them
  // to the thread with the next version, due kSwitchLag steps after theirs.
  // A step with too few coordinates (say a first call of a handful of
  // elements) would fit a table to noise and keep it until the next refit:
  // its statistics are pooled with the following steps' instead, which are
  // collected until the pool is large enough (every rank decides alike).
  void seal_before(uint64_t step) {
    if (!has_pending_ || pending_step_ >= step) return;
    if (pending_.count < kMinFitCoordinates) {
      pool_more_ = true;
      return;
    }
    thread_.post(pending_step_ + kSwitchLag, next_version_++, std::move(pending_));
    pending_ = StatsSummary{};
    has_pending_ = false;
    pool_more_ = false;
  }

  // Runs on the statistics thread only (previous_p_ is its state).
  bool fit(const StatsSummary& stats, uint32_t version, PublishedTable* out) {
    std::unique_ptr<LevelModel> model;
    LevelFit fit;
    if (build_model(model_, stats, MixtureWeight::kNorm, &model) != qcclSuccess ||
        fit_levels(method_, bits_, *model, previous_p_, &fit) != qcclSuccess) {
      QCCL_LOG_WARN("level fit {} for {} skipped, keeping the previous table: {}", version,
                    method_name(method_), thread_last_error());
      return false;
    }
    if (fit.multiplier > 0) previous_p_ = fit.multiplier;
    fit.table.version = version;
    QCCL_LOG_INFO("{} level table v{} ({} model): [{}], predicted V {:.6g}", method_name(method_),
                  version, model_name(model_), format_levels(fit.table), fit.variance);
    *out = PublishedTable{std::make_shared<const LevelTable>(std::move(fit.table)), fit.variance};
    return true;
  }

  const Method method_;
  const int bits_;
  const ModelKind model_;
  const std::vector<uint64_t> update_steps_;
  const uint64_t update_every_;
  double previous_p_ = -1;  // statistics thread only

  std::mutex mutex_;  // guards the members below against concurrent plan/submit
  PublishedTable current_;
  StatsSummary pending_;
  bool pool_more_ = false;  // pending_ is too small to fit: keep collecting
  bool planned_any_ = false;
  uint64_t planned_step_ = 0;  // step of the last plan() call
  bool refit_due_ = false;     // this step collects statistics for a refit
  uint64_t pending_step_ = 0;
  bool has_pending_ = false;
  uint32_t next_version_ = 1;  // 0 is the initial table

  StatsThread thread_;  // last: joined first on destruction, before the state it uses
};

}  // namespace

Result create_adapter(const Config& config, std::unique_ptr<Adapter>* out) {
  const Method m = config.method;
  if (!is_quantizing(m)) {
    *out = std::make_unique<FixedTableAdapter>(nullptr, m == Method::kNone ? 32 : 16);
    return qcclSuccess;
  }
  LevelTable initial;
  QCCL_CHECK(initial_table(m, config.bits, &initial));
  if (m == Method::kDqsgd) {
    *out = std::make_unique<DqsgdAdapter>(config.bits);
  } else if (is_adaptive(m)) {
    *out = std::make_unique<AdaptiveAdapter>(config, std::move(initial));
  } else {
    // TernGrad's three levels need 2 bits whatever QCCL_BITS says (§2).
    const int bits = m == Method::kTrn ? 2 : config.bits;
    *out = std::make_unique<FixedTableAdapter>(
        std::make_shared<const LevelTable>(std::move(initial)), bits);
  }
  return qcclSuccess;
}

}  // namespace qccl
