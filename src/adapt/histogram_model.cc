#include "adapt/histogram_model.h"

#include <algorithm>

namespace qccl {

double HistogramModel::bin_edge(int b) {
  const double t = static_cast<double>(b) / kHistBins;
  return t * t;
}

HistogramModel::HistogramModel(const double* hist) {
  double total = 0;
  for (int b = 0; b < kHistBins; ++b) total += hist[b];
  // Segments from -1 up to 0 mirror the bins from the top down; each side
  // holds half the mass of its bin.
  const int n = 2 * kHistBins;
  edges_.resize(n + 1);
  density_.resize(n);
  cumulative_.resize(n + 1);
  for (int b = 0; b <= kHistBins; ++b) {
    edges_[kHistBins + b] = bin_edge(b);
    edges_[kHistBins - b] = -bin_edge(b);
  }
  for (int b = 0; b < kHistBins; ++b) {
    const double width = bin_edge(b + 1) - bin_edge(b);
    const double d = 0.5 * hist[b] / total / width;
    density_[kHistBins + b] = d;
    density_[kHistBins - 1 - b] = d;
  }
  cumulative_[0] = 0;
  for (int i = 0; i < n; ++i) {
    cumulative_[i + 1] = cumulative_[i] + density_[i] * (edges_[i + 1] - edges_[i]);
  }
}

int HistogramModel::segment_of(double x) const {
  const int n = static_cast<int>(density_.size());
  const int i =
      static_cast<int>(std::upper_bound(edges_.begin(), edges_.end(), x) - edges_.begin()) - 1;
  return std::clamp(i, 0, n - 1);
}

double HistogramModel::cdf(double x) const {
  if (x <= -1.0) return 0.0;
  if (x >= 1.0) return 1.0;
  const int i = segment_of(x);
  return std::min(1.0, cumulative_[i] + density_[i] * (x - edges_[i]));
}

double HistogramModel::pdf(double x) const {
  if (x < -1.0 || x > 1.0) return 0.0;
  return density_[segment_of(x)];
}

TruncatedMoments HistogramModel::moments(double c, double d) const {
  c = std::max(c, -1.0);
  d = std::min(d, 1.0);
  TruncatedMoments m;
  if (!(d > c)) return m;
  const int last = segment_of(d);
  for (int i = segment_of(c); i <= last; ++i) {
    const double lo = std::max(c, edges_[i]), hi = std::min(d, edges_[i + 1]);
    if (!(hi > lo) || density_[i] == 0) continue;
    const double g = density_[i];
    m.mass += g * (hi - lo);
    m.first += g * (hi * hi - lo * lo) / 2;
    m.second += g * (hi * hi * hi - lo * lo * lo) / 3;
  }
  return m;
}

}  // namespace qccl
