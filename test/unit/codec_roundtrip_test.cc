// Encode/decode mechanics: packing at every width, ragged sizes, dtypes,
// casts, determinism of the draws, non-finite and zero buckets.
#include <cmath>
#include <cstring>
#include <limits>

#include "codec/half_cast.h"
#include "codec/quantize_math.h"
#include "codec_test_util.h"

namespace qccl {
namespace {

using testing_util::Decode;
using testing_util::Encode;
using testing_util::GaussianVector;

TEST(BitPlanePacking, RoundTripsEverySymbolAtEveryWidth) {
  for (int bits = 1; bits <= 8; ++bits) {
    uint32_t symbols[kGroupSize], words[8] = {};
    for (int i = 0; i < kGroupSize; ++i) symbols[i] = (i * 37u + bits) % (1u << bits);
    pack_group(symbols, bits, words);
    for (int i = 0; i < kGroupSize; ++i) EXPECT_EQ(unpack_symbol(words, bits, i), symbols[i]);
  }
}

TEST(BitPlanePacking, WordKHoldsBitKOfEachCoordinate) {
  uint32_t symbols[kGroupSize] = {};
  symbols[0] = 0b101;   // coordinate 0: bits 0 and 2
  symbols[31] = 0b010;  // coordinate 31: bit 1
  uint32_t words[3];
  pack_group(symbols, 3, words);
  EXPECT_EQ(words[0], 1u);
  EXPECT_EQ(words[1], 1u << 31);
  EXPECT_EQ(words[2], 1u);
}

// Values that sit exactly on levels are rounded deterministically, so the
// decode must reproduce them exactly: this checks packing and layout for
// every width, bucket size and ragged length.
TEST(CodecRoundTrip, ValuesOnLevelsDecodeExactlyForEveryWidthAndSize) {
  for (int bits = 1; bits <= 8; ++bits) {
    const LevelTable table = uniform_table(bits);
    for (uint32_t bucket : {32u, 64u, 8192u}) {
      for (size_t n : {1, 31, 32, 33, 100, 8191, 8192, 8193, 3 * 8192 + 5}) {
        std::vector<float> v(n);
        for (size_t i = 0; i < n; ++i) v[i] = table.levels[(i * 7 + 3) % table.levels.size()];
        // Linf norm 1 in every bucket: put a +1 at the start of each bucket.
        for (size_t b = 0; b < n; b += bucket) v[b] = 1.0f;
        EncodeSpec spec;
        spec.method = Method::kQsgdInf;
        spec.norm = NormKind::kLinf;
        spec.bits = bits;
        spec.bucket_size = bucket;
        const auto payload = Encode(v, spec, table);
        EXPECT_EQ(payload.size(), quant_layout(n, bucket, bits, table.size()).total_bytes);
        ASSERT_EQ(Decode(payload, n), v) << "bits " << bits << " bucket " << bucket << " n " << n;
      }
    }
  }
}

TEST(CodecRoundTrip, PayloadSizeIsBitsPerCoordinatePlusNormAndTable) {
  EncodeSpec spec;
  spec.bits = 3;
  const LevelTable t = uniform_table(3);
  spec.num_levels = t.size();
  const uint64_t n = 1 << 20;
  // docs/algorithms.md §7: 32 bits of norm + 3 bits per coordinate per bucket.
  EXPECT_EQ(payload_bytes(spec, n), 64 + 8 * 4 + (n / 8192) * 4 + n * 3 / 8);
  const double ratio = 4.0 * n / payload_bytes(spec, n);
  EXPECT_LT(ratio, 32.0 / 3);
  EXPECT_GT(ratio, 10.6);
}

TEST(CodecRoundTrip, ZeroBucketDecodesToExactZeros) {
  std::vector<float> v = GaussianVector(3 * 64, 1);
  std::fill(v.begin() + 64, v.begin() + 128, 0.0f);
  EncodeSpec spec;
  spec.bucket_size = 64;
  const auto out = Decode(Encode(v, spec, uniform_table(3)), v.size());
  for (int i = 64; i < 128; ++i) EXPECT_EQ(out[i], 0.0f);
  for (int i = 0; i < 64; ++i) EXPECT_NE(out[i], 0.0f);  // uniform 3-bit table has no 0 level
}

TEST(CodecRoundTrip, NonFiniteInputStaysNonFiniteAndOtherBucketsAreUntouched) {
  for (Method m : {Method::kQsgd, Method::kQsgdInf, Method::kTrn, Method::kNuqsgd, Method::kFp16,
                   Method::kBf16, Method::kNone}) {
    for (float bad :
         {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
          -std::numeric_limits<float>::infinity()}) {
      std::vector<float> v = GaussianVector(128, 2);
      v[70] = bad;
      EncodeSpec spec;
      spec.method = m;
      spec.bucket_size = 64;
      spec.norm = default_norm(m);
      LevelTable table;
      if (is_quantizing(m)) {
        ASSERT_EQ(initial_table(m, 3, &table), qcclSuccess);
      }
      const auto out = Decode(Encode(v, spec, table), v.size());
      EXPECT_FALSE(std::isfinite(out[70])) << method_name(m) << " " << bad;
      for (int i = 0; i < 64; ++i) EXPECT_TRUE(std::isfinite(out[i])) << method_name(m);
    }
  }
}

TEST(CodecRoundTrip, HugeFiniteValuesDoNotOverflowTheNorm) {
  std::vector<float> v(64, 3e30f);
  v[1] = -4e30f;
  EncodeSpec spec;
  spec.bucket_size = 64;
  const auto payload = Encode(v, spec, uniform_table(3));
  const auto out = Decode(payload, v.size());
  for (float x : out) EXPECT_TRUE(std::isfinite(x));
  double norm = 0;
  for (float x : v) norm += static_cast<double>(x) * x;
  PayloadView view;
  ASSERT_EQ(validate_payload(payload.data(), payload.size(), v.size(), &view), qcclSuccess);
  EXPECT_NEAR(view.norms[0] / std::sqrt(norm), 1.0, 1e-6);  // rescaled pass, float accuracy
  EXPECT_LT(out[1], 0.0f);
}

TEST(CodecRoundTrip, TinyValuesDoNotUnderflowTheNorm) {
  std::vector<float> v(64, 1e-25f);
  EncodeSpec spec;
  spec.bucket_size = 64;
  const auto out = Decode(Encode(v, spec, uniform_table(3)), v.size());
  double sum = 0;
  for (float x : out) sum += x;
  EXPECT_GT(sum, 0.0);  // not flushed to zero
}

TEST(CodecRoundTrip, HalfPrecisionInputEncodesLikeItsFloatValue) {
  const std::vector<float> v = GaussianVector(1000, 3);
  std::vector<uint16_t> h(v.size()), b(v.size());
  std::vector<float> hf(v.size()), bf(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    h[i] = float_to_fp16(v[i]);
    hf[i] = fp16_to_float(h[i]);
    b[i] = float_to_bf16(v[i]);
    bf[i] = bf16_to_float(b[i]);
  }
  EncodeSpec spec;
  spec.bucket_size = 256;
  const LevelTable table = uniform_table(4);
  spec.bits = 4;
  spec.levels = table.levels.data();
  spec.num_levels = table.size();
  for (auto [dtype, raw, as_float] :
       {std::tuple{DataType::kFloat16, &h, &hf}, std::tuple{DataType::kBfloat16, &b, &bf}}) {
    std::vector<unsigned char> p(payload_bytes(spec, v.size()));
    ASSERT_EQ(encode(raw->data(), dtype, v.size(), spec, p.data(), p.size(), nullptr), qcclSuccess);
    EXPECT_EQ(p, Encode(*as_float, spec, table)) << dtype_name(dtype);
  }
}

TEST(CodecCasts, Fp16AndBf16MethodsRoundToNearestEven) {
  const std::vector<float> v = GaussianVector(777, 4, 100.0f);
  for (Method m : {Method::kFp16, Method::kBf16, Method::kNone}) {
    EncodeSpec spec;
    spec.method = m;
    const auto payload = Encode(v, spec, LevelTable{});
    EXPECT_EQ(payload.size(), cast_payload_bytes(v.size(), m == Method::kNone ? 4 : 2));
    const auto out = Decode(payload, v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      const float want = m == Method::kFp16   ? fp16_to_float(float_to_fp16(v[i]))
                         : m == Method::kBf16 ? bf16_to_float(float_to_bf16(v[i]))
                                              : v[i];
      ASSERT_EQ(out[i], want) << method_name(m) << " at " << i;
    }
  }
}

TEST(CodecDeterminism, SameInputsGiveSameBytes) {
  const std::vector<float> v = GaussianVector(5000, 5);
  EncodeSpec spec;
  spec.bucket_size = 512;
  spec.seed = 99;
  spec.step = 3;
  EXPECT_EQ(Encode(v, spec, uniform_table(3)), Encode(v, spec, uniform_table(3)));
}

TEST(CodecDeterminism, RankStepStreamAndSeedEachChangeTheDraws) {
  const std::vector<float> v = GaussianVector(5000, 6);
  EncodeSpec base;
  base.bucket_size = 512;
  const LevelTable t = uniform_table(3);
  const auto symbols_of = [&](EncodeSpec s) {
    auto p = Encode(v, s, t);
    // Compare only the symbol area; the header differs anyway.
    const QuantLayout l = quant_layout(v.size(), s.bucket_size, s.bits, t.size());
    return std::vector<unsigned char>(p.begin() + l.symbols_offset, p.end());
  };
  const auto ref = symbols_of(base);
  EncodeSpec s = base;
  s.rank = 1;
  EXPECT_NE(symbols_of(s), ref);
  s = base;
  s.step = 1;
  EXPECT_NE(symbols_of(s), ref);
  s = base;
  s.stream = 1;
  EXPECT_NE(symbols_of(s), ref);
  s = base;
  s.seed = 1;
  EXPECT_NE(symbols_of(s), ref);
}

// A chunk encoded on its own with index_base draws the same numbers as the
// same coordinates inside the whole buffer (what SRA relies on).
TEST(CodecDeterminism, IndexBaseMakesDrawsIndependentOfChunking) {
  const std::vector<float> v = GaussianVector(4 * 64, 7);
  EncodeSpec spec;
  spec.bucket_size = 64;
  const LevelTable t = uniform_table(3);
  const auto whole = Decode(Encode(v, spec, t), v.size());
  const std::vector<float> tail(v.begin() + 128, v.end());
  spec.index_base = 128;
  const auto part = Decode(Encode(tail, spec, t), tail.size());
  for (size_t i = 0; i < tail.size(); ++i) EXPECT_EQ(part[i], whole[128 + i]) << i;
}

TEST(CodecDecode, AccumulateAddsToExistingValues) {
  const std::vector<float> v = GaussianVector(300, 8);
  EncodeSpec spec;
  spec.bucket_size = 64;
  const auto payload = Encode(v, spec, uniform_table(3));
  const auto once = Decode(payload, v.size());
  std::vector<float> acc(v.size(), 1.5f);
  ASSERT_EQ(decode_accumulate(payload.data(), payload.size(), v.size(), acc.data()), qcclSuccess);
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(acc[i], 1.5f + once[i]);
}

TEST(CodecEncode, RejectsBadSpecsWithMessages) {
  const std::vector<float> v(100, 1.0f);
  std::vector<unsigned char> out(4096);
  const LevelTable t = uniform_table(3);
  EncodeSpec spec;
  spec.levels = t.levels.data();
  spec.num_levels = t.size();
  EncodeSpec bad = spec;
  bad.bits = 9;
  EXPECT_EQ(encode(v.data(), DataType::kFloat32, v.size(), bad, out.data(), out.size(), nullptr),
            qcclInvalidArgument);
  bad = spec;
  bad.bucket_size = 100;
  EXPECT_EQ(encode(v.data(), DataType::kFloat32, v.size(), bad, out.data(), out.size(), nullptr),
            qcclInvalidArgument);
  EXPECT_NE(thread_last_error().find("bucket size"), std::string::npos);
  EXPECT_EQ(encode(v.data(), DataType::kFloat32, v.size(), spec, out.data(), 10, nullptr),
            qcclInvalidArgument);
  EXPECT_NE(thread_last_error().find("capacity"), std::string::npos);
  EXPECT_EQ(encode(nullptr, DataType::kFloat32, v.size(), spec, out.data(), out.size(), nullptr),
            qcclInvalidArgument);
  EXPECT_EQ(
      encode(v.data(), static_cast<DataType>(7), v.size(), spec, out.data(), out.size(), nullptr),
      qcclInvalidArgument);
  const float unsorted[] = {-1.0f, 0.5f, 0.2f, 1.0f};
  bad = spec;
  bad.levels = unsorted;
  bad.num_levels = 4;
  EXPECT_EQ(encode(v.data(), DataType::kFloat32, v.size(), bad, out.data(), out.size(), nullptr),
            qcclInvalidArgument);
  EXPECT_NE(thread_last_error().find("ascending"), std::string::npos);
}

TEST(LevelTables, FixedTablesMatchAlgorithmsSection2) {
  const std::vector<float> qsgd3 = {-1, -5.f / 7, -3.f / 7, -1.f / 7, 1.f / 7, 3.f / 7, 5.f / 7, 1};
  const LevelTable u = uniform_table(3);
  ASSERT_EQ(u.size(), 8);
  for (int i = 0; i < 8; ++i) EXPECT_FLOAT_EQ(u.levels[i], qsgd3[i]);
  const std::vector<float> nuq3 = {-1, -0.5f, -0.25f, -0.125f, 0.125f, 0.25f, 0.5f, 1};
  EXPECT_EQ(exponential_table(3, 0.5).levels, nuq3);
  EXPECT_EQ(ternary_table().levels, (std::vector<float>{-1, 0, 1}));
  EXPECT_EQ(uniform_table(1).levels, (std::vector<float>{-1, 1}));
  LevelTable t;
  EXPECT_EQ(initial_table(Method::kTrn, 1, &t), qcclInvalidArgument);
  EXPECT_EQ(initial_table(Method::kFp16, 3, &t), qcclInvalidArgument);
}

}  // namespace
}  // namespace qccl

namespace qccl {
namespace {

// The payload's symbols are exactly the spec's: symbol i = stochastic_symbol
// of r_i with Philox draw (seed, rank, stream, step, index_base + i),
// whatever loop arrangement the encoder uses (small and large tables).
TEST(CodecSpec, SymbolsFollowTheDefinitionElementByElement) {
  for (int bits : {2, 3, 4, 5, 8}) {
    const std::vector<float> v = GaussianVector(1000, 60 + bits);
    EncodeSpec spec;
    spec.bits = bits;
    spec.bucket_size = 256;
    spec.seed = 77;
    spec.rank = 3;
    spec.step = 9;
    spec.index_base = 5;
    const LevelTable t = exponential_table(bits, 0.6);
    const auto payload = Encode(v, spec, t);
    PayloadView view;
    ASSERT_EQ(validate_payload(payload.data(), payload.size(), v.size(), &view), qcclSuccess);
    const DrawKey key{spec.seed, spec.rank, spec.stream, spec.step};
    for (size_t i = 0; i < v.size(); ++i) {
      const size_t b = i / 256, k = i % 256;
      const float r = normalise(v[i], view.norms[b]);
      const uint64_t idx = spec.index_base + i;
      const uint32_t draw = draws_for_group(key, idx >> 2).v[idx & 3];
      const uint32_t want = stochastic_symbol(t.levels.data(), t.size(), r, draw);
      const uint32_t* words = view.symbols + bucket_word_offset(b, 256, bits) + (k / 32) * bits;
      ASSERT_EQ(unpack_symbol(words, bits, static_cast<int>(k % 32)), want) << bits << " " << i;
    }
  }
}

}  // namespace
}  // namespace qccl

namespace qccl {
namespace {

// The fused N-payload decode adds in rank order, so it equals decoding the
// first payload and accumulating the others one after the other, bit for bit.
TEST(CodecDecodeSum, EqualsPayloadByPayloadDecodingBitForBit) {
  const size_t n = 3 * 256 + 17;
  std::vector<std::vector<unsigned char>> payloads;
  const LevelTable t = exponential_table(3, 0.5);
  for (uint32_t rank = 0; rank < 4; ++rank) {
    EncodeSpec spec;
    spec.bucket_size = 256;
    spec.rank = rank;
    payloads.push_back(Encode(GaussianVector(n, 90 + rank), spec, t));
  }
  std::vector<float> want(n);
  ASSERT_EQ(decode(payloads[0].data(), payloads[0].size(), n, want.data()), qcclSuccess);
  for (int r = 1; r < 4; ++r)
    ASSERT_EQ(decode_accumulate(payloads[r].data(), payloads[r].size(), n, want.data()),
              qcclSuccess);
  std::vector<const void*> ptrs;
  std::vector<uint64_t> sizes;
  for (const auto& p : payloads) ptrs.push_back(p.data()), sizes.push_back(p.size());
  std::vector<float> got(n, -1.0f);
  int failed = 7;
  ASSERT_EQ(decode_sum(ptrs.data(), sizes.data(), 4, n, got.data(), &failed), qcclSuccess);
  EXPECT_EQ(failed, -1);
  EXPECT_EQ(0, std::memcmp(got.data(), want.data(), 4 * n));
}

TEST(CodecDecodeSum, NamesTheCorruptPayload) {
  const std::vector<float> v = GaussianVector(300, 95);
  EncodeSpec spec;
  spec.bucket_size = 64;
  auto a = Encode(v, spec, uniform_table(3));
  auto b = a;
  b[0] ^= 0xFF;  // bad magic in payload 1
  const void* ptrs[] = {a.data(), b.data()};
  const uint64_t sizes[] = {a.size(), b.size()};
  std::vector<float> out(v.size());
  int failed = -1;
  EXPECT_EQ(decode_sum(ptrs, sizes, 2, v.size(), out.data(), &failed), qcclCorruptPayload);
  EXPECT_EQ(failed, 1);
}

}  // namespace
}  // namespace qccl
