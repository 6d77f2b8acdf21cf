#include "adapt/amq_optimizer.h"

#include <algorithm>
#include <cmath>

namespace qccl {
namespace {

constexpr double kMinP = 1e-4;
constexpr double kMaxP = 1.0 - 1e-4;
constexpr double kStepSize = 0.7;
constexpr int kDescentSteps = 50;
constexpr int kGridPoints = 200;

AmqResult evaluate(const LevelModel& model, int bits, double p) {
  return AmqResult{p, amq_variance(model, bits, p)};
}

// Golden-section search for the minimum of V on [lo, hi].
AmqResult golden_section(const LevelModel& model, int bits, double lo, double hi) {
  const double ratio = 0.5 * (std::sqrt(5.0) - 1.0);
  double x1 = hi - ratio * (hi - lo), x2 = lo + ratio * (hi - lo);
  double v1 = amq_variance(model, bits, x1), v2 = amq_variance(model, bits, x2);
  for (int it = 0; it < 100 && hi - lo > 1e-12; ++it) {
    if (v1 <= v2) {
      hi = x2;
      x2 = x1;
      v2 = v1;
      x1 = hi - ratio * (hi - lo);
      v1 = amq_variance(model, bits, x1);
    } else {
      lo = x1;
      x1 = x2;
      v1 = v2;
      x2 = lo + ratio * (hi - lo);
      v2 = amq_variance(model, bits, x2);
    }
  }
  return v1 <= v2 ? AmqResult{x1, v1} : AmqResult{x2, v2};
}

}  // namespace

std::vector<double> amq_levels(int bits, double p) {
  const int s = (1 << bits) / 2;
  std::vector<double> l(2 * s);
  for (int k = 0; k < s; ++k) {
    const double m = std::pow(p, k);
    l[s + (s - 1 - k)] = m;  // +p^k, ascending from +p^(s-1) to +1
    l[k] = -m;               // -1 .. -p^(s-1)
  }
  return l;
}

double amq_variance(const LevelModel& model, int bits, double p) {
  return expected_variance(model, amq_levels(bits, p));
}

double amq_derivative(const LevelModel& model, int bits, double p) {
  const std::vector<double> l = amq_levels(bits, p);
  const int s = (1 << bits) / 2;
  double g = 0;
  for (int k = 1; k < s; ++k) {
    const double dl = k * std::pow(p, k - 1);  // d(p^k)/dp
    g += variance_gradient(model, l, s + (s - 1 - k)) * dl;
    g -= variance_gradient(model, l, k) * dl;
  }
  return g;
}

AmqResult amq_gradient_descent(const LevelModel& model, int bits, double previous_p) {
  std::vector<double> starts = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 0.9};
  if (previous_p > 0 && previous_p < 1) starts.push_back(previous_p);
  AmqResult best = evaluate(model, bits, starts[0]);
  for (double p : starts) {
    for (int it = 0; it < kDescentSteps; ++it) {
      p = std::clamp(p - kStepSize * amq_derivative(model, bits, p), kMinP, kMaxP);
    }
    const AmqResult r = evaluate(model, bits, p);
    if (r.variance < best.variance) best = r;
  }
  return best;
}

AmqResult optimise_amq(const LevelModel& model, int bits, double previous_p) {
  int best_i = 1;
  double best_v = amq_variance(model, bits, 1.0 / kGridPoints);
  for (int i = 2; i < kGridPoints; ++i) {
    const double v = amq_variance(model, bits, static_cast<double>(i) / kGridPoints);
    if (v < best_v) best_v = v, best_i = i;
  }
  const double lo = std::max(kMinP, static_cast<double>(best_i - 1) / kGridPoints);
  const double hi = std::min(kMaxP, static_cast<double>(best_i + 1) / kGridPoints);
  AmqResult best = golden_section(model, bits, lo, hi);
  const AmqResult descent = amq_gradient_descent(model, bits, previous_p);
  return descent.variance < best.variance ? descent : best;
}

}  // namespace qccl
