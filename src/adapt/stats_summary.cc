#include "adapt/stats_summary.h"

#include <algorithm>
#include <cmath>

#include "adapt/histogram_model.h"
#include "adapt/truncated_normal.h"

namespace qccl {
namespace {

bool larger_norm(const BucketStats& x, const BucketStats& y) {
  return x.norm > y.norm;
}

void keep_top(std::vector<BucketStats>* top) {
  std::stable_sort(top->begin(), top->end(), larger_norm);
  if (top->size() > static_cast<size_t>(kMixtureBuckets)) top->resize(kMixtureBuckets);
}

// Unbiased within-bucket variance of a component (population variance for a
// single coordinate, which is 0).
double bucket_variance(const BucketStats& b) {
  const double n = b.count;
  const double ss = static_cast<double>(b.sum_r2) - static_cast<double>(b.sum_r) * b.sum_r / n;
  return std::max(0.0, n > 1 ? ss / (n - 1) : 0.0);
}

}  // namespace

StatsSummary summarize(const EncodeStats& stats) {
  StatsSummary s;
  for (const BucketStats& b : stats.buckets) {
    if (!std::isfinite(b.norm) || b.norm <= 0 || b.count == 0) continue;
    const double n = b.count, n2 = static_cast<double>(b.norm) * b.norm;
    s.count += n;
    s.sum_r += b.sum_r;
    s.within_ss += std::max(0.0, b.sum_r2 - static_cast<double>(b.sum_r) * b.sum_r / n);
    s.weight += n2 * n;
    s.energy += n2 * b.sum_r2;
    s.top.push_back(b);
  }
  keep_top(&s.top);
  std::copy(stats.hist, stats.hist + kHistBins, s.hist);
  return s;
}

std::vector<double> to_vector(const StatsSummary& s) {
  std::vector<double> v(StatsSummary::kLength, 0.0);
  v[0] = s.count;
  v[1] = s.sum_r;
  v[2] = s.within_ss;
  v[3] = s.weight;
  v[4] = s.energy;
  for (size_t k = 0; k < s.top.size(); ++k) {
    double* e = &v[StatsSummary::kTotals + 4 * k];
    e[0] = s.top[k].norm;
    e[1] = s.top[k].sum_r;
    e[2] = s.top[k].sum_r2;
    e[3] = s.top[k].count;
  }
  std::copy(s.hist, s.hist + kHistBins, v.begin() + StatsSummary::kTotals + 4 * kMixtureBuckets);
  return v;
}

Result from_vector(const double* values, size_t length, StatsSummary* out) {
  if (length != static_cast<size_t>(StatsSummary::kLength)) {
    return fail(qcclInvalidArgument, "statistics summary: expected {} values, got {}",
                StatsSummary::kLength, length);
  }
  StatsSummary s;
  s.count = values[0];
  s.sum_r = values[1];
  s.within_ss = values[2];
  s.weight = values[3];
  s.energy = values[4];
  for (int k = 0; k < kMixtureBuckets; ++k) {
    const double* e = values + StatsSummary::kTotals + 4 * k;
    if (!(e[3] >= 1)) continue;  // empty slot
    BucketStats b;
    b.norm = static_cast<float>(e[0]);
    b.sum_r = static_cast<float>(e[1]);
    b.sum_r2 = static_cast<float>(e[2]);
    b.count = static_cast<uint32_t>(e[3]);
    s.top.push_back(b);
  }
  keep_top(&s.top);
  const double* h = values + StatsSummary::kTotals + 4 * kMixtureBuckets;
  for (int i = 0; i < kHistBins; ++i) {
    if (!(h[i] >= 0) || !std::isfinite(h[i])) {
      return fail(qcclInvalidArgument, "statistics summary: histogram bin {} is {}", i, h[i]);
    }
    s.hist[i] = h[i];
  }
  if (!std::isfinite(s.count + s.sum_r + s.within_ss + s.weight + s.energy) || s.count < 0) {
    return fail(qcclInvalidArgument, "statistics summary: non-finite or negative totals");
  }
  *out = std::move(s);
  return qcclSuccess;
}

StatsSummary merge(const StatsSummary& a, const StatsSummary& b) {
  StatsSummary s;
  s.count = a.count + b.count;
  s.sum_r = a.sum_r + b.sum_r;
  s.within_ss = a.within_ss + b.within_ss;
  s.weight = a.weight + b.weight;
  s.energy = a.energy + b.energy;
  s.top = a.top;
  s.top.insert(s.top.end(), b.top.begin(), b.top.end());
  keep_top(&s.top);
  for (int i = 0; i < kHistBins; ++i) s.hist[i] = a.hist[i] + b.hist[i];
  return s;
}

Result combine_gathered(const std::vector<double>& gathered, int nranks, StatsSummary* out) {
  if (nranks < 1 || gathered.size() != static_cast<size_t>(nranks) * StatsSummary::kLength) {
    return fail(qcclInvalidArgument,
                "statistics: {} gathered values do not hold {} summaries of {} values",
                gathered.size(), nranks, StatsSummary::kLength);
  }
  StatsSummary total;
  for (int r = 0; r < nranks; ++r) {
    StatsSummary one;
    QCCL_CHECK(from_vector(gathered.data() + static_cast<size_t>(r) * StatsSummary::kLength,
                           StatsSummary::kLength, &one));
    total = r == 0 ? std::move(one) : merge(total, one);
  }
  *out = std::move(total);
  return qcclSuccess;
}

ModelKind resolve_model(Method, ModelKind requested) {
  // The paper's models are one truncated normal (alqn/amqn) and the mixture
  // (alq/amq). Measured (docs/adaptive-levels.md, perf/results/
  // variance_study.md): the histogram matches them on Gaussian data and is
  // 2.7-9x lower for ALQ on Student-t(3) data, so auto means histogram.
  return requested != ModelKind::kAuto ? requested : ModelKind::kHistogram;
}

Result build_model(ModelKind kind, const StatsSummary& s, MixtureWeight weight,
                   std::unique_ptr<LevelModel>* out) {
  if (!(s.count >= 1)) return fail(qcclInvalidArgument, "statistics hold no coordinates to fit");
  switch (kind) {
    case ModelKind::kAuto:
    case ModelKind::kTruncNorm:
      // mu = mean of all r; sigma^2 = pooled within-bucket variance (§3).
      *out = std::make_unique<TruncatedNormal>(s.sum_r / s.count, std::sqrt(s.within_ss / s.count));
      return qcclSuccess;
    case ModelKind::kMixture: {
      std::vector<TruncatedNormal> components;
      std::vector<double> weights;
      for (const BucketStats& b : s.top) {
        components.emplace_back(b.sum_r / b.count, std::sqrt(bucket_variance(b)));
        weights.push_back(weight == MixtureWeight::kNorm ? b.norm
                                                         : static_cast<double>(b.norm) * b.norm);
      }
      if (components.empty()) return fail(qcclInvalidArgument, "statistics hold no buckets");
      *out = std::make_unique<TruncatedNormalMixture>(std::move(components), std::move(weights));
      return qcclSuccess;
    }
    case ModelKind::kHistogram: {
      double total = 0;
      for (double h : s.hist) total += h;
      if (!(total > 0)) return fail(qcclInvalidArgument, "statistics histogram is empty");
      *out = std::make_unique<HistogramModel>(s.hist);
      return qcclSuccess;
    }
  }
  return fail(qcclInvalidArgument, "unknown model kind {}", static_cast<int>(kind));
}

double normalized_variance(const StatsSummary& s, double v) {
  return s.energy > 0 ? v * s.weight / s.energy : -1.0;
}

}  // namespace qccl
