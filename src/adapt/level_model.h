// Models of F, the distribution of normalised coordinates r in [-1, 1] that
// level tables are fitted to (docs/algorithms.md §3). Every model gives F, its
// density and the truncated moments INT_c^d r^k dF in closed form, which is
// all the ALQ step, the AMQ derivative and V(levels) need.
#pragma once

#include <cstddef>
#include <vector>

namespace qccl {

// INT_c^d r^k dF(r) for k = 0, 1, 2.
struct TruncatedMoments {
  double mass = 0;
  double first = 0;
  double second = 0;
};

class LevelModel {
 public:
  virtual ~LevelModel() = default;
  virtual double cdf(double x) const = 0;
  virtual double pdf(double x) const = 0;
  virtual TruncatedMoments moments(double c, double d) const = 0;

  // F^{-1}(u) on [lo, hi] by bisection to double resolution: deterministic,
  // and where F is flat it returns a point of the flat part (any is optimal).
  double quantile(double u, double lo = -1.0, double hi = 1.0) const;
  // INT_c^d (r - c) dF: the partial moment of the ALQ step.
  double partial_moment(double c, double d) const;
  // INT_c^d (d - r)(r - c) dF: the variance one cell adds (docs/algorithms.md §1).
  double cell_variance(double c, double d) const;
};

// V(levels) = sum of cell variances over a sorted table (docs/algorithms.md §3).
double expected_variance(const LevelModel& model, const std::vector<double>& levels);

// dV/dl_j for interior level j = INT_c^x (r - c) dF - INT_x^d (d - r) dF with
// c, x, d = levels[j-1], levels[j], levels[j+1] (the integrands vanish at the
// cell ends, so only the integrands are differentiated).
double variance_gradient(const LevelModel& model, const std::vector<double>& levels, int j);

}  // namespace qccl
