// Finite input whose bucket L2 norm exceeds FLT_MAX (docs/algorithms.md §1
// "Norm"): the stored norm falls back to the bucket's Linf norm, so no
// L2-norm method (qsgd, nuqsgd, dqsgd, or any method with QCCL_NORM=l2)
// turns finite gradients into NaN/Inf, the rounding stays unbiased, and
// the bytes follow the per-element definition (the CUDA kernel shares
// l2_from_rescaled, so it stores the same float).
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "codec/half_cast.h"
#include "codec/quantization_variance.h"
#include "codec/quantize_math.h"
#include "codec_test_util.h"

namespace qccl {
namespace {

using testing_util::Decode;
using testing_util::Encode;

// The L2-norm methods and their tables; dqsgd's per-step width is covered
// by its linspace table at several widths.
struct L2Case {
  const char* name;
  Method method;
  int bits;
  LevelTable table;
};

std::vector<L2Case> L2Cases() {
  std::vector<L2Case> cases;
  LevelTable t;
  EXPECT_EQ(initial_table(Method::kQsgd, 3, &t), qcclSuccess);
  cases.push_back({"qsgd", Method::kQsgd, 3, t});
  EXPECT_EQ(initial_table(Method::kNuqsgd, 3, &t), qcclSuccess);
  cases.push_back({"nuqsgd", Method::kNuqsgd, 3, t});
  for (int bits : {2, 4, 8}) cases.push_back({"dqsgd", Method::kDqsgd, bits, uniform_table(bits)});
  return cases;
}

EncodeSpec SpecFor(const L2Case& c, uint32_t bucket) {
  EncodeSpec spec;
  spec.method = c.method;
  spec.bits = c.bits;
  spec.norm = NormKind::kL2;
  spec.bucket_size = bucket;
  spec.seed = 2024;
  return spec;
}

// Magnitudes uniform in [lo, hi], random signs.
std::vector<float> MixedSigns(size_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mag(lo, hi);
  std::bernoulli_distribution neg(0.5);
  std::vector<float> v(n);
  for (float& x : v) x = neg(rng) ? -mag(rng) : mag(rng);
  return v;
}

double ExactL2(const float* x, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * x[i];
  return std::sqrt(s);
}

float Linf(const float* x, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; ++i) m = std::fmax(m, std::fabs(x[i]));
  return m;
}

std::vector<float> Norms(const std::vector<unsigned char>& payload, size_t n) {
  PayloadView view;
  EXPECT_EQ(validate_payload(payload.data(), payload.size(), n, &view), qcclSuccess);
  const size_t buckets = (n + view.header.bucket_size - 1) / view.header.bucket_size;
  return std::vector<float>(view.norms, view.norms + buckets);
}

// sum_i norm^2 (l_{j+1} - r_i)(r_i - l_j) for one bucket stored with `norm`.
double AddedVariance(const std::vector<float>& v, float norm, const LevelTable& t) {
  double total = 0;
  for (float x : v) {
    const float r = normalise(x, norm);
    const int j = find_cell(t.levels.data(), t.size(), r);
    total += static_cast<double>(norm) * norm * (t.levels[j + 1] - r) * (r - t.levels[j]);
  }
  return total;
}

// The canonical norm written out plainly (256 lanes, pairwise tree, rescale
// on overflow/underflow, Linf when the L2 norm exceeds FLT_MAX), to check
// the vectorised bucket_norm_reference against.
float DefinitionL2(const float* x, uint32_t n) {
  float linf = 0;
  for (uint32_t i = 0; i < n; ++i) linf = std::fmax(linf, std::fabs(x[i]));
  const auto canonical_sum = [&](bool scale) {
    float lanes[kNormLanes] = {};
    for (uint32_t i = 0; i < n; ++i) {
      const float e = scale ? x[i] / linf : x[i];
      lanes[i % kNormLanes] = add_rn(lanes[i % kNormLanes], mul_rn(e, e));
    }
    for (int stride = kNormLanes / 2; stride > 0; stride /= 2)
      for (int l = 0; l < stride; ++l) lanes[l] = add_rn(lanes[l], lanes[l + stride]);
    return lanes[0];
  };
  const float plain = canonical_sum(false);
  if (linf == 0 || (plain >= 1e-30f && plain <= FLT_MAX)) return std::sqrt(plain);
  const float l2 = mul_rn(linf, std::sqrt(canonical_sum(true)));
  return l2 <= FLT_MAX ? l2 : linf;
}

TEST(NormOverflow, L2FromRescaledFallsBackToLinfOnlyWhenTheProductOverflows) {
  EXPECT_EQ(l2_from_rescaled(3e38f, 2.0f), 3e38f);                    // sqrt(2) * 3e38 > FLT_MAX
  EXPECT_EQ(l2_from_rescaled(FLT_MAX, 1.0f), FLT_MAX);                // exactly representable
  EXPECT_EQ(l2_from_rescaled(2e38f, 2.0f), 2e38f * std::sqrt(2.0f));  // 2.83e38: kept
  EXPECT_EQ(l2_from_rescaled(1e30f, 64.0f), 8e30f);
  EXPECT_EQ(l2_from_rescaled(1.5e38f, 8192.0f), 1.5e38f);
}

TEST(NormOverflow, BucketNormMatchesTheDefinitionAcrossTheOverflowBoundary) {
  std::vector<std::vector<float>> inputs;
  inputs.push_back(MixedSigns(8192 + 77, 0.5e38f, 3.4e38f, 1));  // far beyond FLT_MAX
  inputs.push_back(std::vector<float>(2, 3e38f));                // 4.24e38: falls back
  inputs.push_back(std::vector<float>(2, 2e38f));                // 2.83e38: still L2
  inputs.push_back(MixedSigns(300, 1e36f, 3e36f, 2));            // ~3.6e37: still L2
  inputs.push_back(MixedSigns(8192, 3e36f, 6e36f, 3));           // ~4.1e38: falls back
  std::vector<float> lone(1000, 1.0f);
  lone[517] = -FLT_MAX;  // one huge element: L2 = FLT_MAX exactly
  inputs.push_back(lone);
  for (size_t k = 0; k < inputs.size(); ++k) {
    const std::vector<float>& v = inputs[k];
    const uint32_t n = static_cast<uint32_t>(v.size());
    const float got = bucket_norm_reference(v.data(), n, NormKind::kL2);
    ASSERT_TRUE(std::isfinite(got)) << k;
    EXPECT_EQ(got, DefinitionL2(v.data(), n)) << k;
    const double exact = ExactL2(v.data(), n);
    if (exact > FLT_MAX)
      EXPECT_EQ(got, Linf(v.data(), n)) << k;
    else
      EXPECT_NEAR(got / exact, 1.0, 1e-5) << k;
  }
}

// float32 around ±1e38 (bucket L2 ~1e40): every method, ragged sizes.
TEST(NormOverflow, Float32NearMaxDecodesFiniteWithLinfNorm) {
  for (const L2Case& c : L2Cases()) {
    for (uint32_t bucket : {64u, 8192u}) {
      const std::vector<float> v = MixedSigns(2 * bucket + 45, 0.5e38f, 3e38f, 10 + c.bits);
      const auto payload = Encode(v, SpecFor(c, bucket), c.table);
      const auto out = Decode(payload, v.size());
      for (size_t i = 0; i < v.size(); ++i)
        ASSERT_TRUE(std::isfinite(out[i])) << c.name << " bits " << c.bits << " at " << i;
      const auto norms = Norms(payload, v.size());
      for (size_t b = 0; b < norms.size(); ++b) {
        const size_t off = b * bucket, len = std::min<size_t>(bucket, v.size() - off);
        ASSERT_GT(ExactL2(v.data() + off, len), FLT_MAX);
        EXPECT_EQ(norms[b], Linf(v.data() + off, len)) << c.name << " bucket " << b;
      }
    }
  }
}

// fp16 near its max 65504 is widened to float32, where its L2 norm is far
// from overflowing: the stored norm is the ordinary L2 norm.
TEST(NormOverflow, Float16NearMaxKeepsTheL2Norm) {
  const std::vector<float> wide = MixedSigns(8192 + 13, 60000.0f, 65504.0f, 20);
  std::vector<uint16_t> h(wide.size());
  std::vector<float> hf(wide.size());
  for (size_t i = 0; i < wide.size(); ++i) {
    h[i] = float_to_fp16(wide[i]);
    hf[i] = fp16_to_float(h[i]);
    ASSERT_TRUE(std::isfinite(hf[i]));
  }
  for (const L2Case& c : L2Cases()) {
    EncodeSpec spec = SpecFor(c, 8192);
    spec.levels = c.table.levels.data();
    spec.num_levels = c.table.size();
    std::vector<unsigned char> p(payload_bytes(spec, h.size()));
    ASSERT_EQ(encode(h.data(), DataType::kFloat16, h.size(), spec, p.data(), p.size(), nullptr),
              qcclSuccess);
    EXPECT_EQ(p, Encode(hf, spec, c.table)) << c.name;  // encodes like its float value
    const auto out = Decode(p, h.size());
    for (size_t i = 0; i < out.size(); ++i) ASSERT_TRUE(std::isfinite(out[i])) << c.name << i;
    const auto norms = Norms(p, h.size());
    EXPECT_NEAR(norms[0] / ExactL2(hf.data(), 8192), 1.0, 1e-5) << c.name;
    EXPECT_NEAR(norms[1] / ExactL2(hf.data() + 8192, 13), 1.0, 1e-5) << c.name;
  }
}

// bf16 up to 3.3e38 widened to float32 overflows the L2 norm: Linf fallback.
TEST(NormOverflow, Bfloat16NearMaxDecodesFiniteWithLinfNorm) {
  const std::vector<float> wide = MixedSigns(8192 + 200, 1e38f, 3.3e38f, 30);
  std::vector<uint16_t> b(wide.size());
  std::vector<float> bf(wide.size());
  for (size_t i = 0; i < wide.size(); ++i) {
    b[i] = float_to_bf16(wide[i]);
    bf[i] = bf16_to_float(b[i]);
    ASSERT_TRUE(std::isfinite(bf[i]));
  }
  for (const L2Case& c : L2Cases()) {
    EncodeSpec spec = SpecFor(c, 8192);
    spec.levels = c.table.levels.data();
    spec.num_levels = c.table.size();
    std::vector<unsigned char> p(payload_bytes(spec, b.size()));
    ASSERT_EQ(encode(b.data(), DataType::kBfloat16, b.size(), spec, p.data(), p.size(), nullptr),
              qcclSuccess);
    EXPECT_EQ(p, Encode(bf, spec, c.table)) << c.name;
    const auto out = Decode(p, b.size());
    for (size_t i = 0; i < out.size(); ++i) ASSERT_TRUE(std::isfinite(out[i])) << c.name << i;
    const auto norms = Norms(p, b.size());
    EXPECT_EQ(norms[0], Linf(bf.data(), 8192)) << c.name;
    EXPECT_EQ(norms[1], Linf(bf.data() + 8192, 200)) << c.name;
  }
}

// Symbols of a fallback bucket are the per-element definition's:
// stochastic_symbol(normalise(v_i, linf), Philox draw of element i).
TEST(NormOverflow, FallbackSymbolsFollowTheDefinitionElementByElement) {
  for (const L2Case& c : L2Cases()) {
    const uint32_t bucket = 256;
    const std::vector<float> v = MixedSigns(1000, 1e37f, 3.4e38f, 40 + c.bits);
    EncodeSpec spec = SpecFor(c, bucket);
    spec.rank = 5;
    spec.step = 11;
    spec.index_base = 3;
    const auto payload = Encode(v, spec, c.table);
    PayloadView view;
    ASSERT_EQ(validate_payload(payload.data(), payload.size(), v.size(), &view), qcclSuccess);
    const DrawKey key{spec.seed, spec.rank, spec.stream, spec.step};
    for (size_t i = 0; i < v.size(); ++i) {
      const size_t b = i / bucket, k = i % bucket;
      const size_t off = b * bucket, len = std::min<size_t>(bucket, v.size() - off);
      ASSERT_EQ(view.norms[b], DefinitionL2(v.data() + off, static_cast<uint32_t>(len)));
      const float r = normalise(v[i], view.norms[b]);
      ASSERT_LE(std::fabs(r), 1.0f);
      const uint64_t idx = spec.index_base + i;
      const uint32_t draw = draws_for_group(key, idx >> 2).v[idx & 3];
      const uint32_t want = stochastic_symbol(c.table.levels.data(), c.table.size(), r, draw);
      const uint32_t* words =
          view.symbols + bucket_word_offset(b, bucket, c.bits) + (k / 32) * c.bits;
      ASSERT_EQ(unpack_symbol(words, c.bits, static_cast<int>(k % 32)), want) << c.name << " " << i;
    }
  }
}

// Unbiasedness of the fallback: over 2000 steps (independent draws) the mean
// decode of every coordinate is within 5 standard errors of the input, and
// the summed empirical variance is within 10% of the documented
// n_b^2 (l_{j+1} - r)(r - l_j) with n_b = Linf (quantization_variance).
TEST(NormOverflow, FallbackBucketIsUnbiasedWithTheDocumentedVariance) {
  constexpr int kDraws = 2000;
  const uint32_t bucket = 64;
  const std::vector<float> v = MixedSigns(bucket, 0.2e38f, 3e38f, 50);
  ASSERT_GT(ExactL2(v.data(), bucket), FLT_MAX);
  const double linf = Linf(v.data(), bucket);
  for (const L2Case& c : L2Cases()) {
    EncodeSpec spec = SpecFor(c, bucket);
    std::vector<std::vector<float>> outs;
    for (int d = 0; d < kDraws; ++d) {
      spec.step = static_cast<uint32_t>(d);
      outs.push_back(Decode(Encode(v, spec, c.table), bucket));
      for (float x : outs.back()) ASSERT_TRUE(std::isfinite(x));
    }
    double empirical_var = 0;
    for (uint32_t i = 0; i < bucket; ++i) {
      double mean = 0, var = 0;
      for (const auto& o : outs) mean += o[i];
      mean /= kDraws;
      for (const auto& o : outs) var += (o[i] - mean) * (o[i] - mean);
      var /= kDraws - 1;
      empirical_var += var;
      const double se = std::sqrt(var / kDraws);
      // The Linf element sits on a level (r = +-1) and never moves: se 0.
      // 1e-6 * linf covers float rounding of r, p and norm * level.
      EXPECT_LE(std::fabs(mean - v[i]), 5 * se + 1e-6 * linf)
          << c.name << " bits " << c.bits << " coordinate " << i;
    }
    const double want = quantization_variance(v.data(), bucket, bucket, NormKind::kL2,
                                              c.table.levels.data(), c.table.size());
    ASSERT_GT(want, 0.0);
    EXPECT_NEAR(empirical_var / want, 1.0, 0.1) << c.name << " bits " << c.bits;
    // The other valid fallback, FLT_MAX, would add more variance.
    EXPECT_LT(want, AddedVariance(v, FLT_MAX, c.table)) << c.name << " bits " << c.bits;
  }
}

// Fallback payloads of several ranks add up finite while the sum itself fits
// float (each decoded value is at most Linf); a sum beyond FLT_MAX is the
// range of the sum, not of the codec (docs/algorithms.md §1).
TEST(NormOverflow, SumOfRanksNearMaxStaysFiniteWhileItFits) {
  const L2Case c = L2Cases()[0];
  const std::vector<float> v = MixedSigns(128, 1e37f, 1e38f, 60);
  EncodeSpec spec = SpecFor(c, 64);
  std::vector<float> acc(v.size(), 0.0f);
  for (uint32_t rank = 0; rank < 3; ++rank) {  // |sum| <= 3 * 1e38 < FLT_MAX
    spec.rank = rank;
    const auto p = Encode(v, spec, c.table);
    ASSERT_EQ(decode_accumulate(p.data(), p.size(), v.size(), acc.data()), qcclSuccess);
  }
  for (float x : acc) EXPECT_TRUE(std::isfinite(x));
}

}  // namespace
}  // namespace qccl
