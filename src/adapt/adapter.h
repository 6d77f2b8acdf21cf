// The contract between the hot path (collective/) and the adaptation layer
// (docs/algorithms.md §3–5, docs/design.md §7). One Adapter per communicator.
//
// Per collective call at step s, the collective layer:
//   1. asks plan(s, ...) which table and bits to encode with; the returned
//      table is immutable and carries its version (never torn);
//   2. if plan.collect_stats, passes an EncodeStats to the encoder, turns it
//      into summary(stats) (a fixed-length vector of doubles), allgathers the
//      summaries of all ranks (rank order) and hands them to submit(s, ...);
//   3. the statistics thread fits and publishes a new table that takes effect
//      at step s + kSwitchLag on every rank (plan() waits for it there if the
//      fit is late — the only place the hot path can block on the thread).
// Every rank sees the same gathered summaries and runs the same
// deterministic fit, so tables agree byte for byte (docs/design.md §5.3).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "codec/cpu_codec.h"
#include "codec/level_table.h"
#include "core/config.h"

namespace qccl {

constexpr uint64_t kSwitchLag = 2;

struct EncodePlan {
  std::shared_ptr<const LevelTable> table;  // quantising methods
  int bits = 0;                             // may change per step (DQSGD)
  bool collect_stats = false;               // this step feeds a re-fit
  double predicted_variance = -1;           // model's V for `table`, <0 unknown
};

class Adapter {
 public:
  virtual ~Adapter() = default;

  // For DQSGD, `global_norm` is the L2 norm of the whole (all-rank summed)
  // gradient and `learning_rate` the last reported one (1 if never); other
  // methods ignore them. needs_global_norm() says whether to compute it.
  virtual Result plan(uint64_t step, double global_norm, double learning_rate, EncodePlan* out) = 0;
  virtual bool needs_global_norm() const = 0;

  // Fixed-length per-rank summary of the statistics (same length on every
  // rank for a given config).
  virtual std::vector<double> summary(const EncodeStats& stats) const = 0;
  // `gathered` holds nranks summaries back to back, in rank order.
  virtual Result submit(uint64_t step, const std::vector<double>& gathered, int nranks) = 0;
};

// Creates the adapter for config.method (a trivial fixed-table one for the
// non-adaptive methods). Starts the statistics thread where needed; the
// destructor stops and joins it.
Result create_adapter(const Config& config, std::unique_ptr<Adapter>* out);

}  // namespace qccl
