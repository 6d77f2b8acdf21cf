// ALQ / AMQ optimisers against the public vectors of docs/algorithms.md §8 (T3)
// and the invariants of §3–4.
#include <gtest/gtest.h>

#include <vector>

#include "adapt/alq_optimizer.h"
#include "adapt/amq_optimizer.h"
#include "adapt/histogram_model.h"
#include "adapt/level_fit.h"
#include "adapt/truncated_normal.h"
#include "codec/level_table.h"

namespace qccl {
namespace {

std::vector<double> levels_of(const LevelTable& t) {
  return table_levels(t);
}

// T3: F = normal(0, 0.1) truncated to [-1, 1], 3 bits. The reference values
// are given to 5 significant digits, so compare to half a unit of the last one.
TEST(AdaptT3, UniformTableVariance) {
  const TruncatedNormal f(0.0, 0.1);
  EXPECT_NEAR(expected_variance(f, levels_of(uniform_table(3))), 1.4342e-2, 0.00005e-2);
}

TEST(AdaptT3, NuqsgdTableVariance) {
  const TruncatedNormal f(0.0, 0.1);
  EXPECT_NEAR(expected_variance(f, levels_of(exponential_table(3, 0.5))), 9.5693e-3, 0.00005e-3);
}

TEST(AdaptT3, AlqOptimumLevelsAndVariance) {
  const TruncatedNormal f(0.0, 0.1);
  const AlqResult r = optimise_alq(f, 3);
  const std::vector<double> expected = {0.03803, 0.12229, 0.25065, 1.0};
  ASSERT_EQ(r.levels.size(), 8u);
  for (int k = 0; k < 4; ++k) {
    EXPECT_NEAR(r.levels[4 + k], expected[k], 0.000005) << "positive level " << k;
    EXPECT_NEAR(r.levels[3 - k], -expected[k], 0.000005) << "negative level " << k;
  }
  EXPECT_NEAR(r.variance, 1.6756e-3, 0.00005e-3);
}

TEST(AdaptT3, AmqOptimumMultiplierAndVariance) {
  const TruncatedNormal f(0.0, 0.1);
  const AmqResult r = optimise_amq(f, 3);
  EXPECT_NEAR(r.p, 0.360, 0.0005);
  EXPECT_NEAR(r.variance, 2.4044e-3, 0.00005e-3);
}

// Invariants of §8 on several spreads (tiny sigma is the bucket-8192 regime).
class AdaptInvariants : public ::testing::TestWithParam<std::tuple<double, int>> {};

TEST_P(AdaptInvariants, AlqBeatsAmqBeatsNuqsgdAndAlqBeatsUniform) {
  const auto [sigma, bits] = GetParam();
  const TruncatedNormal f(0.0, sigma);
  const double alq = optimise_alq(f, bits).variance;
  const double amq = optimise_amq(f, bits).variance;
  const double nuqsgd = expected_variance(f, levels_of(exponential_table(bits, 0.5)));
  const double uniform = expected_variance(f, levels_of(uniform_table(bits)));
  EXPECT_LE(alq, amq * (1 + 1e-9));
  EXPECT_LE(amq, nuqsgd * (1 + 1e-9));
  EXPECT_LE(alq, uniform * (1 + 1e-9));
}

TEST_P(AdaptInvariants, CoordinateDescentNeverIncreasesVariance) {
  const auto [sigma, bits] = GetParam();
  const TruncatedNormal f(0.0, sigma);
  for (std::vector<double> levels : alq_starts(f, bits)) {
    double before = expected_variance(f, levels);
    for (int sweep = 0; sweep < kAlqSweeps; ++sweep) {
      alq_sweep(f, &levels);
      const double after = expected_variance(f, levels);
      EXPECT_LE(after, before * (1 + 1e-12) + 1e-300) << "sweep " << sweep;
      before = after;
    }
  }
}

TEST_P(AdaptInvariants, BracketedAmqIsNeverWorseThanReferenceDescent) {
  const auto [sigma, bits] = GetParam();
  const TruncatedNormal f(0.0, sigma);
  EXPECT_LE(optimise_amq(f, bits).variance, amq_gradient_descent(f, bits).variance);
}

INSTANTIATE_TEST_SUITE_P(SigmaAndBits, AdaptInvariants,
                         ::testing::Combine(::testing::Values(0.01, 0.1, 0.3),
                                            ::testing::Values(2, 3, 4)));

TEST(AdaptInvariantsFixed, OptimalMultiplierGrowsWithBits) {
  for (double sigma : {0.01, 0.1, 0.3}) {
    const TruncatedNormal f(0.0, sigma);
    double previous = 0;
    for (int bits = 2; bits <= 5; ++bits) {
      const double p = optimise_amq(f, bits).p;
      EXPECT_GT(p, previous) << "sigma " << sigma << " bits " << bits;
      previous = p;
    }
  }
}

TEST(AdaptInvariantsFixed, OptimalMultiplierShrinksWithSigma) {
  EXPECT_LT(optimise_amq(TruncatedNormal(0.0, 0.01), 3).p,
            optimise_amq(TruncatedNormal(0.0, 0.1), 3).p);
}

TEST(AdaptInvariantsFixed, UniformDistributionGivesUniformTable) {
  // A flat histogram of r: |r| uniform on [0, 1] puts weight in bin b
  // proportional to its width ((b+1)^2 - b^2) / kHistBins^2.
  double hist[kHistBins];
  for (int b = 0; b < kHistBins; ++b)
    hist[b] = HistogramModel::bin_edge(b + 1) - HistogramModel::bin_edge(b);
  const HistogramModel f(hist);
  for (int bits = 2; bits <= 4; ++bits) {
    const AlqResult r = optimise_alq(f, bits);
    const LevelTable uniform = uniform_table(bits);
    for (size_t j = 0; j < r.levels.size(); ++j) EXPECT_NEAR(r.levels[j], uniform.levels[j], 1e-6);
  }
}

TEST(AdaptFit, TinySpreadStillGivesValidDistinctLevels) {
  const TruncatedNormal f(0.0, 0.001);
  LevelFit fit;
  ASSERT_EQ(fit_levels(Method::kAlq, 3, f, -1, &fit), qcclSuccess);
  EXPECT_EQ(validate_levels(fit.table.levels.data(), fit.table.size(), 3), qcclSuccess);
  EXPECT_EQ(fit.table.size(), 8);
  // The inner levels sit inside a few sigma, where the mass is.
  EXPECT_LT(fit.table.levels[4], 0.005f);
}

}  // namespace
}  // namespace qccl

namespace qccl {
namespace {

// High-resolution theory says levels with density ~ f^(1/3) are near
// optimal for large tables: at 8 bits the companding start alone is within
// 10% of the fitted V, and the fit is never worse than that start.
TEST(AdaptLargeTables, CompandingStartIsNearOptimalAtEightBits) {
  const TruncatedNormal f(0.0, 0.1);
  const std::vector<double> start = companding_start(f, 256);
  ASSERT_EQ(start.size(), 256u);
  EXPECT_EQ(start.front(), -1.0);
  EXPECT_EQ(start.back(), 1.0);
  for (size_t j = 1; j < start.size(); ++j) EXPECT_GE(start[j], start[j - 1]);
  const double v_start = expected_variance(f, start);
  const AlqResult fitted = optimise_alq(f, 8);
  EXPECT_LE(fitted.variance, v_start);
  EXPECT_LT(v_start, 1.10 * fitted.variance);
}

}  // namespace
}  // namespace qccl
