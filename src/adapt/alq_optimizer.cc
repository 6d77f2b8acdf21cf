#include "adapt/alq_optimizer.h"

#include <algorithm>
#include <cmath>

#include "codec/level_table.h"

namespace qccl {
namespace {

// A cell whose mass is below this holds nothing the step could balance.
constexpr double kEmptyCellMass = 1e-15;
// Below float resolution of the published levels (~6e-8 near 1).
constexpr double kConvergedStep = 1e-8;
// Coordinate descent moves information one level per sweep, so large
// tables need many sweeps from a poor start; they get the companding start
// (below) and a tighter cap that keeps an 8-bit fit well under a second.
constexpr int kAlqMaxSweeps = 2000;
constexpr int kAlqMaxSweepsLargeTable = 300;

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
  const int max_sweeps = start.size() > 16 ? std::max(sweeps, kAlqMaxSweepsLargeTable)
                                           : std::max(sweeps, kAlqMaxSweeps);
  // The reference stops after `sweeps`; coordinate descent on a narrow F can
  // still be creeping then (T3's outer level moves ~1e-5), so continue until
  // no level moves by more than kConvergedStep.
  for (int s = 0; s < max_sweeps; ++s) {
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

// High-resolution quantisation theory: for a cell of width w the added
// variance is ~ mass * w^2 / 6, like MSE, so the optimal level density is
// proportional to f^(1/3). Quantiles of f^(1/3) start near the optimum for
// large tables, where coordinate descent from the other starts is slow.
std::vector<double> companding_start(const LevelModel& model, int k) {
  constexpr int kGrid = 4096;
  std::vector<double> cumulative(kGrid + 1, 0.0);
  for (int i = 0; i < kGrid; ++i) {
    const double x = -1.0 + 2.0 * (i + 0.5) / kGrid;
    cumulative[i + 1] = cumulative[i] + std::cbrt(std::max(model.pdf(x), 0.0));
  }
  std::vector<double> levels(k);
  levels.front() = -1.0;
  levels.back() = 1.0;
  const double total = cumulative.back();
  if (!(total > 0)) return as_double(uniform_table(static_cast<int>(std::log2(k))));
  int i = 0;
  for (int j = 1; j + 1 < k; ++j) {
    const double target = total * j / (k - 1);
    while (i < kGrid && cumulative[i + 1] < target) ++i;
    const double frac =
        (target - cumulative[i]) / std::max(cumulative[i + 1] - cumulative[i], 1e-300);
    levels[j] = std::max(levels[j - 1], -1.0 + 2.0 * (i + std::clamp(frac, 0.0, 1.0)) / kGrid);
  }
  return levels;
}

std::vector<std::vector<double>> alq_starts(const LevelModel& model, int bits) {
  const int k = 1 << bits;
  std::vector<double> quantiles(k);
  for (int j = 0; j < k; ++j) quantiles[j] = model.quantile(static_cast<double>(j) / (k - 1));
  quantiles.front() = -1.0;
  quantiles.back() = 1.0;
  return {quantiles, as_double(uniform_table(bits)), as_double(exponential_table(bits, 0.5)),
          companding_start(model, k)};
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
