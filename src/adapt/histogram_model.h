// The non-parametric model of F (docs/algorithms.md §3, beyond the paper): the
// encoder's histogram of |r| (EncodeStats::hist, bin = floor(sqrt|r| *
// kHistBins), each coordinate weighted by its bucket's n^2) read as a
// symmetric density that is uniform inside each bin, so F is piecewise
// linear and every moment is a sum of polynomial pieces.
#pragma once

#include <vector>

#include "adapt/level_model.h"
#include "codec/cpu_codec.h"

namespace qccl {

class HistogramModel : public LevelModel {
 public:
  // `hist` has kHistBins non-negative weights with a positive sum.
  explicit HistogramModel(const double* hist);

  double cdf(double x) const override;
  double pdf(double x) const override;
  TruncatedMoments moments(double c, double d) const override;

  // Edges of bin b of |r|: [(b / kHistBins)^2, ((b + 1) / kHistBins)^2].
  static double bin_edge(int b);

 private:
  // Segment i of [-1, 1] is [edges_[i], edges_[i+1]] with density_[i];
  // cumulative_[i] = F(edges_[i]).
  int segment_of(double x) const;
  std::vector<double> edges_, density_, cumulative_;
};

}  // namespace qccl
