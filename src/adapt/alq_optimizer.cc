#include "adapt/alq_optimizer.h"

#include <algorithm>
#include <cmath>

#include "codec/level_table.h"

namespace qccl {
namespace {

// A cell whose mass is below this holds nothing the step could balance.
constexpr double kEmptyCellMass = 1e-15;
constexpr double kConvergedStep = 1e-10;
constexpr int kAlqMaxSweeps = 2000;

std::vector<double> as_double(const LevelTable& t) {
  return std::vector<double>(t.levels.begin(), t.levels.end());
}

}  // namespace

void alq_sweep(const LevelModel& model, std::vector<double>* levels) {
  std::vector<double>& l = *levels;
  for (size_t j = 1; j + 1 < l.size(); ++j) {
    const double c = l[j - 1], d = l[j + 1];
    if (!(d > c)) continue;
    const TruncatedMoments m = model.moments(c, d);
    if (m.mass < kEmptyCellMass) continue;
    const double fc = model.cdf(c);
    const double target = fc + m.mass - (m.first - c * m.mass) / (d - c);
    const double x = model.quantile(std::clamp(target, fc, fc + m.mass), c, d);
    // The step is exact, so it only loses by rounding; keep the old level then.
    const double before = model.cell_variance(c, l[j]) + model.cell_variance(l[j], d);
    const double after = model.cell_variance(c, x) + model.cell_variance(x, d);
    if (after <= before) l[j] = x;
  }
}

AlqResult alq_descend(const LevelModel& model, std::vector<double> start, int sweeps) {
  // The reference stops after `sweeps`; coordinate descent on a narrow F can
  // still be creeping then (T3's outer level moves ~1e-5), so continue until
  // no level moves by more than kConvergedStep.
  for (int s = 0; s < kAlqMaxSweeps; ++s) {
    const std::vector<double> before = start;
    alq_sweep(model, &start);
    double moved = 0;
    for (size_t j = 0; j < start.size(); ++j)
      moved = std::max(moved, std::abs(start[j] - before[j]));
    if (s + 1 >= sweeps && moved <= kConvergedStep) break;
  }
  AlqResult r;
  r.variance = expected_variance(model, start);
  r.levels = std::move(start);
  return r;
}

std::vector<std::vector<double>> alq_starts(const LevelModel& model, int bits) {
  const int k = 1 << bits;
  std::vector<double> quantiles(k);
  for (int j = 0; j < k; ++j) quantiles[j] = model.quantile(static_cast<double>(j) / (k - 1));
  quantiles.front() = -1.0;
  quantiles.back() = 1.0;
  return {quantiles, as_double(uniform_table(bits)), as_double(exponential_table(bits, 0.5))};
}

AlqResult optimise_alq(const LevelModel& model, int bits, int sweeps) {
  AlqResult best;
  bool have = false;
  for (std::vector<double>& start : alq_starts(model, bits)) {
    AlqResult r = alq_descend(model, std::move(start), sweeps);
    if (!have || r.variance < best.variance) {
      best = std::move(r);
      have = true;
    }
  }
  return best;
}

}  // namespace qccl
