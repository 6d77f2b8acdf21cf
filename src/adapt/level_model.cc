#include "adapt/level_model.h"

namespace qccl {

double LevelModel::quantile(double u, double lo, double hi) const {
  // F is non-decreasing; keep F(lo) < u <= F(hi) until the bracket stops
  // shrinking in double (at most ~64 halvings on [-1, 1]).
  for (int it = 0; it < 200; ++it) {
    const double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    if (cdf(mid) < u) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return 0.5 * (lo + hi);
}

double LevelModel::partial_moment(double c, double d) const {
  const TruncatedMoments m = moments(c, d);
  return m.first - c * m.mass;
}

double LevelModel::cell_variance(double c, double d) const {
  // (d - r)(r - c) = -r^2 + (c + d) r - c d.
  const TruncatedMoments m = moments(c, d);
  const double v = -m.second + (c + d) * m.first - c * d * m.mass;
  return v > 0 ? v : 0;  // rounding can give -1e-19 on an empty cell
}

double expected_variance(const LevelModel& model, const std::vector<double>& levels) {
  double v = 0;
  for (size_t j = 0; j + 1 < levels.size(); ++j) v += model.cell_variance(levels[j], levels[j + 1]);
  return v;
}

double variance_gradient(const LevelModel& model, const std::vector<double>& levels, int j) {
  const double c = levels[j - 1], x = levels[j], d = levels[j + 1];
  const double left = model.partial_moment(c, x);
  const TruncatedMoments right = model.moments(x, d);
  const double right_term = d * right.mass - right.first;  // INT_x^d (d - r) dF
  return left - right_term;
}

}  // namespace qccl
