// The per-rank summary of the encoder's sufficient statistics (docs/algorithms.md
// §3, docs/design.md §7) and the models fitted from it. One fixed layout serves
// every model, so a summary is a few KB whatever the buffer size:
//   totals    count, sum r, pooled within-bucket sum of squares,
//             sum n^2 * count, sum n^2 * sum r^2
//   top       the kMixtureBuckets largest-norm buckets (norm, sum r,
//             sum r^2, count; count 0 = empty slot), largest first
//   hist      EncodeStats::hist (weights n^2)
// Totals and histograms add; the top lists merge by norm. Merging in rank
// order is deterministic, so every rank fits the same model.
#pragma once

#include <memory>
#include <vector>

#include "adapt/level_model.h"
#include "codec/cpu_codec.h"
#include "core/config.h"
#include "core/result.h"

namespace qccl {

// Buckets kept for the mixture model (the reference uses 20-350).
constexpr int kMixtureBuckets = 64;

struct StatsSummary {
  double count = 0;              // coordinates
  double sum_r = 0;              // sum of normalised coordinates
  double within_ss = 0;          // sum_k (sum r^2 - (sum r)^2 / B_k)
  double weight = 0;             // sum_k n_k^2 B_k (the histogram's total weight)
  double energy = 0;             // sum_k n_k^2 sum r^2 = ||v||^2
  std::vector<BucketStats> top;  // <= kMixtureBuckets, by norm descending
  double hist[kHistBins] = {};

  static constexpr int kTotals = 5;
  static constexpr int kLength = kTotals + 4 * kMixtureBuckets + kHistBins;
};

// Buckets with a non-finite or zero norm carry no information and are skipped.
StatsSummary summarize(const EncodeStats& stats);
std::vector<double> to_vector(const StatsSummary& s);
// `values` must hold exactly StatsSummary::kLength entries.
Result from_vector(const double* values, size_t length, StatsSummary* out);
// a then b: totals add, top lists merge (larger norm first; ties keep a's
// entries, then order within each list).
StatsSummary merge(const StatsSummary& a, const StatsSummary& b);
// Rank-ordered fold of `nranks` gathered summaries.
Result combine_gathered(const std::vector<double>& gathered, int nranks, StatsSummary* out);

// How mixture components are weighted: the reference's n_k, or n_k^2 (the
// variance a bucket contributes scales with n_k^2).
enum class MixtureWeight { kNorm, kNormSquared };

// The model behind QCCL_MODEL=auto: the histogram for every method, chosen
// by measurement over the paper's per-method models (see the .cc).
ModelKind resolve_model(Method method, ModelKind requested);

// qcclInvalidArgument if the summary holds no coordinates (nothing to fit).
Result build_model(ModelKind kind, const StatsSummary& s, MixtureWeight weight,
                   std::unique_ptr<LevelModel>* out);

// V is per coordinate in units of n^2 under an n^2-weighted F; this converts
// it to the normalised variance E||Q(v) - v||^2 / ||v||^2 of the data.
double normalized_variance(const StatsSummary& s, double v);

}  // namespace qccl
