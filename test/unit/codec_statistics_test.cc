// The quantiser's statistical promises (docs/algorithms.md §1, §8): exact
// variance (T1), the QSGD bound (T2), unbiasedness of every method and a
// measured variance that matches the exact one.
#include <cmath>

#include "codec/quantization_variance.h"
#include "codec_test_util.h"

namespace qccl {
namespace {

using testing_util::Decode;
using testing_util::Encode;
using testing_util::GaussianVector;

double Variance(const std::vector<float>& v, const std::vector<float>& levels) {
  return quantization_variance(v.data(), v.size(), 8192, NormKind::kL2, levels.data(),
                               static_cast<int>(levels.size()));
}

TEST(QuantizationVariance, T1ExactValues) {
  const std::vector<float> v = {3, 4};
  EXPECT_NEAR(Variance(v, {-1, -0.5f, 0, 0.5f, 1}), 2.5, 1e-6);
  EXPECT_NEAR(Variance(v, uniform_table(3).levels), 0.9184, 5e-5);
  EXPECT_NEAR(Variance(v, {-1, -0.5f, -0.25f, -0.125f, 0.125f, 0.25f, 0.5f, 1}), 2.5, 1e-6);
}

// T1 measured: the mean squared error over many seeded encodes converges to
// the exact variance. 20000 trials; the squared error of a 2-vector has a
// relative spread below 2, so 5 standard errors is under 7%.
TEST(QuantizationVariance, T1MeasuredMatchesExact) {
  const std::vector<float> v = {3, 4};
  const LevelTable tables[] = {LevelTable{{-1, -0.5f, 0, 0.5f, 1}}, uniform_table(3),
                               exponential_table(3, 0.5)};
  for (const LevelTable& t : tables) {
    const double exact = Variance(v, t.levels);
    double sum = 0, sum2 = 0;
    const int trials = 20000;
    EncodeSpec spec;
    spec.bucket_size = 32;
    for (int s = 0; s < trials; ++s) {
      spec.step = static_cast<uint32_t>(s);
      const auto out = Decode(Encode(v, spec, t), v.size());
      const double e = std::pow(out[0] - 3.0, 2) + std::pow(out[1] - 4.0, 2);
      sum += e;
      sum2 += e * e;
    }
    const double mean = sum / trials;
    const double se = std::sqrt((sum2 / trials - mean * mean) / trials);
    EXPECT_NEAR(mean, exact, 5 * se) << "table of " << t.size();
  }
}

// T2: for s uniform magnitudes plus zero (2s+1 levels) the normalised
// variance is <= min(d/s^2, sqrt(d)/s); on Gaussian data with d = 8192 it is
// about 0.8 sqrt(d)/s. More precisely, while every |r| < 1/s (here |r| is
// ~N(0, 1/d), so up to s ~ 15) each coordinate contributes |r|/s - r^2, so
// the sum is E|g|/(s sigma) sqrt(d) - 1 = sqrt(2/pi) sqrt(d)/s - 1.
TEST(QuantizationVariance, T2QsgdBoundOnGaussianData) {
  const size_t d = 8192;
  const std::vector<float> v = GaussianVector(d, 11);
  double norm2 = 0;
  for (float x : v) norm2 += static_cast<double>(x) * x;
  for (int s : {1, 2, 3, 7, 15}) {
    std::vector<float> levels(2 * s + 1);
    for (int i = 0; i <= 2 * s; ++i)
      levels[i] = static_cast<float>(-1.0 + static_cast<double>(i) / s);
    levels[0] = -1;
    levels[2 * s] = 1;
    levels[s] = 0;
    const double normalised = Variance(v, levels) / norm2;
    const double bound = std::min(d / double(s * s), std::sqrt(double(d)) / s);
    EXPECT_LE(normalised, bound) << "s = " << s;
    const double predicted = std::sqrt(2.0 / M_PI) * std::sqrt(double(d)) / s - 1.0;
    // 3%: the sample's mean |g| differs from its expectation by ~1/sqrt(d).
    EXPECT_NEAR(normalised, predicted, 0.03 * predicted) << "s = " << s;
    if (s <= 3) {
      EXPECT_NEAR(normalised / (std::sqrt(double(d)) / s), 0.8, 0.05) << "s = " << s;
    }
  }
}

struct MethodCase {
  Method method;
  int bits;
};

class Unbiasedness : public ::testing::TestWithParam<MethodCase> {};

// E[Q(v)] = v: the mean of T decodes differs from v by at most 5 standard
// errors in every coordinate, the standard error from the exact
// per-coordinate variance. With 256 coordinates the chance of a false
// failure is below 256 * 6e-7.
TEST_P(Unbiasedness, MeanOfManyEncodesConvergesToInput) {
  const auto [method, bits] = GetParam();
  const size_t n = 256;
  std::vector<float> v = GaussianVector(n, 21);
  v[5] = 0.0f;  // zero coordinate and a heavy one
  v[9] = 6.0f;
  LevelTable table;
  ASSERT_EQ(initial_table(method, bits, &table), qcclSuccess);
  EncodeSpec spec;
  spec.method = method;
  spec.bits = bits;
  spec.bucket_size = 128;
  spec.norm = default_norm(method);
  spec.seed = 1234;
  std::vector<double> var(n);
  coordinate_variances(v.data(), n, spec.bucket_size, spec.norm, table.levels.data(), table.size(),
                       var.data());
  const int trials = 4000;
  std::vector<double> mean(n, 0.0);
  for (int t = 0; t < trials; ++t) {
    spec.step = static_cast<uint32_t>(t);
    const auto out = Decode(Encode(v, spec, table), n);
    for (size_t i = 0; i < n; ++i) mean[i] += out[i];
  }
  for (size_t i = 0; i < n; ++i) {
    mean[i] /= trials;
    const double se = std::sqrt(var[i] / trials);
    // A coordinate on a level has zero variance and must be exact (up to
    // float rounding of norm * level).
    EXPECT_NEAR(mean[i], v[i], 5 * se + 1e-5 * std::fabs(v[i]) + 1e-6)
        << method_name(method) << " coordinate " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    EveryQuantizingMethod, Unbiasedness,
    ::testing::Values(MethodCase{Method::kQsgd, 3}, MethodCase{Method::kQsgd, 1},
                      MethodCase{Method::kQsgd, 8}, MethodCase{Method::kQsgdInf, 2},
                      MethodCase{Method::kNuqsgd, 3}, MethodCase{Method::kNuqsgd, 4},
                      MethodCase{Method::kTrn, 2}, MethodCase{Method::kAlq, 3},
                      MethodCase{Method::kAlqN, 3}, MethodCase{Method::kAmq, 3},
                      MethodCase{Method::kAmqN, 2}, MethodCase{Method::kDqsgd, 4}),
    [](const auto& info) {
      return std::string(method_name(info.param.method)) + "_" + std::to_string(info.param.bits);
    });

// The measured squared error of a Gaussian vector matches the exact
// variance: 2000 trials, 5 standard errors.
TEST(QuantizationVariance, MeasuredErrorMatchesExactOnGaussianBuckets) {
  const std::vector<float> v = GaussianVector(2048, 31);
  const LevelTable t = exponential_table(3, 0.5);
  EncodeSpec spec;
  spec.bucket_size = 512;
  const double exact =
      quantization_variance(v.data(), v.size(), 512, NormKind::kL2, t.levels.data(), t.size());
  double sum = 0, sum2 = 0;
  const int trials = 2000;
  for (int s = 0; s < trials; ++s) {
    spec.step = static_cast<uint32_t>(s);
    const auto out = Decode(Encode(v, spec, t), v.size());
    double e = 0;
    for (size_t i = 0; i < v.size(); ++i) e += std::pow(out[i] - v[i], 2);
    sum += e;
    sum2 += e * e;
  }
  const double mean = sum / trials;
  const double se = std::sqrt((sum2 / trials - mean * mean) / trials);
  EXPECT_NEAR(mean, exact, 5 * se);
}

}  // namespace
}  // namespace qccl
