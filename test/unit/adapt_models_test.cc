// Models of F (docs/algorithms.md §3): closed forms against numerical
// integration, and predicted V against Monte-Carlo quantisation of samples
// drawn from the model.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "adapt/alq_optimizer.h"
#include "adapt/histogram_model.h"
#include "adapt/truncated_normal.h"
#include "codec/quantize_math.h"

namespace qccl {
namespace {

// Midpoint rule on [c, d] with n cells: independent of the closed forms.
TruncatedMoments integrate(const LevelModel& f, double c, double d, int n = 200000) {
  TruncatedMoments m;
  const double h = (d - c) / n;
  for (int i = 0; i < n; ++i) {
    const double x = c + (i + 0.5) * h;
    const double w = f.pdf(x) * h;
    m.mass += w;
    m.first += w * x;
    m.second += w * x * x;
  }
  return m;
}

void expect_moments_match(const LevelModel& f, double c, double d) {
  const TruncatedMoments closed = f.moments(c, d), numeric = integrate(f, c, d);
  EXPECT_NEAR(closed.mass, numeric.mass, 1e-7) << c << ".." << d;
  EXPECT_NEAR(closed.first, numeric.first, 1e-7) << c << ".." << d;
  EXPECT_NEAR(closed.second, numeric.second, 1e-7) << c << ".." << d;
  EXPECT_NEAR(f.cdf(d) - f.cdf(c), closed.mass, 1e-12);
}

TEST(AdaptModels, TruncatedNormalMomentsMatchIntegration) {
  const TruncatedNormal f(0.05, 0.2);
  EXPECT_NEAR(f.cdf(1.0), 1.0, 0);
  expect_moments_match(f, -1, 1);
  expect_moments_match(f, -0.3, 0.1);
  expect_moments_match(f, 0.4, 0.9);
}

TEST(AdaptModels, TruncatedNormalPartialMomentMatchesAlgorithmsFormula) {
  // docs/algorithms.md §3: INT_c^d (r-c) dF = (mu - c)(F(d) - F(c)) + sigma^2 (f(c) - f(d)).
  const TruncatedNormal f(0.1, 0.3);
  const double c = -0.2, d = 0.6;
  const double formula = (0.1 - c) * (f.cdf(d) - f.cdf(c)) + 0.3 * 0.3 * (f.pdf(c) - f.pdf(d));
  EXPECT_NEAR(f.partial_moment(c, d), formula, 1e-14);
}

TEST(AdaptModels, MixtureMomentsAreWeightedComponentMoments) {
  const TruncatedNormalMixture f({TruncatedNormal(0.0, 0.05), TruncatedNormal(0.2, 0.1)},
                                 {1.0, 3.0});
  expect_moments_match(f, -1, 1);
  expect_moments_match(f, 0.0, 0.3);
  EXPECT_NEAR(f.cdf(0.0), 0.25 * 0.5 + 0.75 * TruncatedNormal(0.2, 0.1).cdf(0.0), 1e-14);
}

TEST(AdaptModels, HistogramModelIsSymmetricPiecewiseUniform) {
  double hist[kHistBins] = {};
  hist[3] = 2.0;   // |r| in [9/16384, 16/16384]
  hist[40] = 6.0;  // |r| in [0.0977, 0.1026]
  const HistogramModel f(hist);
  EXPECT_NEAR(f.cdf(0.0), 0.5, 1e-15);
  EXPECT_NEAR(f.cdf(HistogramModel::bin_edge(4)) - 0.5, 0.125, 1e-15);
  EXPECT_NEAR(f.cdf(-HistogramModel::bin_edge(40)), 0.375, 1e-15);  // all of bin 40's negative half
  EXPECT_NEAR(f.cdf(0.5), 1.0, 1e-15);
  EXPECT_EQ(f.pdf(0.05), 0.0);
  // [0.0001, 0.1]: all of bin 3's positive half, part of bin 40's, each uniform.
  const double e3 = HistogramModel::bin_edge(3), e4 = HistogramModel::bin_edge(4);
  const double e40 = HistogramModel::bin_edge(40), e41 = HistogramModel::bin_edge(41);
  const double g3 = 0.125 / (e4 - e3), g40 = 0.375 / (e41 - e40);
  const TruncatedMoments m = f.moments(0.0001, 0.1);
  EXPECT_NEAR(m.mass, g3 * (e4 - e3) + g40 * (0.1 - e40), 1e-14);
  EXPECT_NEAR(m.first, g3 * (e4 * e4 - e3 * e3) / 2 + g40 * (0.01 - e40 * e40) / 2, 1e-14);
  EXPECT_NEAR(m.second,
              g3 * (e4 * e4 * e4 - e3 * e3 * e3) / 3 + g40 * (0.001 - e40 * e40 * e40) / 3, 1e-14);
}

// Draws r from F by inverting its CDF.
std::vector<double> sample(const LevelModel& f, int n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> r(n);
  for (double& x : r) x = f.quantile(u(rng));
  return r;
}

// Mean squared error of unbiased stochastic rounding (the codec's own
// stochastic_symbol) over samples of F.
double monte_carlo_variance(const LevelModel& f, const std::vector<float>& levels, int n) {
  std::mt19937 rng(7);
  double sum = 0;
  for (double r : sample(f, n, 11)) {
    const float x = static_cast<float>(r);
    const uint32_t sym =
        stochastic_symbol(levels.data(), static_cast<int>(levels.size()), x, rng());
    const double e = static_cast<double>(levels[sym]) - x;
    sum += e * e;
  }
  return sum / n;
}

// 400k samples: the per-sample squared error has a coefficient of variation
// of ~2-3, so the mean is within ~0.5% (1 sigma); 2% is > 4 sigma.
constexpr int kSamples = 400000;
constexpr double kMonteCarloTolerance = 0.02;

void expect_prediction_matches_monte_carlo(const LevelModel& f, int bits) {
  const AlqResult fit = optimise_alq(f, bits);
  const std::vector<float> levels(fit.levels.begin(), fit.levels.end());
  const double measured = monte_carlo_variance(f, levels, kSamples);
  EXPECT_NEAR(measured / fit.variance, 1.0, kMonteCarloTolerance);
}

TEST(AdaptModels, PredictedVarianceMatchesMonteCarloTruncatedNormal) {
  expect_prediction_matches_monte_carlo(TruncatedNormal(0.0, 0.1), 3);
}

TEST(AdaptModels, PredictedVarianceMatchesMonteCarloMixture) {
  expect_prediction_matches_monte_carlo(
      TruncatedNormalMixture({TruncatedNormal(0.0, 0.02), TruncatedNormal(0.01, 0.2)}, {2.0, 1.0}),
      2);
}

TEST(AdaptModels, PredictedVarianceMatchesMonteCarloHistogram) {
  double hist[kHistBins];
  for (int b = 0; b < kHistBins; ++b) hist[b] = std::exp(-0.1 * b);
  expect_prediction_matches_monte_carlo(HistogramModel(hist), 4);
}

}  // namespace
}  // namespace qccl
