// Decoded NaN has one bit pattern, 0x7fc00000, on every path: the CUDA
// decode stores it too (kernels/decode_kernel.cuh), so CPU and GPU results
// stay byte-identical when a gradient is non-finite (docs/payload-format.md
// "NaN").
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "codec/host_codec.h"
#include "codec_test_util.h"

namespace qccl {
namespace {

using testing_util::Encode;

constexpr uint32_t kCanonical = 0x7fc00000u;

uint32_t bits_of(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return b;
}

float nan_with_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

int count_nans_checking_bits(const std::vector<float>& v) {
  int nans = 0;
  for (float x : v) {
    if (!std::isnan(x)) continue;
    ++nans;
    EXPECT_EQ(bits_of(x), kCanonical);
  }
  return nans;
}

EncodeSpec spec64(int stream_rank) {
  EncodeSpec spec;
  spec.method = Method::kQsgd;
  spec.bits = 3;
  spec.bucket_size = 64;
  spec.rank = static_cast<uint32_t>(stream_rank);
  return spec;
}

TEST(NanBits, QuantisedNaNAndInfinityDecodeToTheCanonicalNaN) {
  std::vector<float> v = testing_util::GaussianVector(192, 3);
  v[5] = nan_with_bits(0xffc12345u);  // a negative NaN with a payload
  v[70] = std::numeric_limits<float>::infinity();
  const LevelTable table = uniform_table(3);
  const std::vector<unsigned char> payload = Encode(v, spec64(0), table);
  const std::vector<float> out = testing_util::Decode(payload, v.size());
  EXPECT_GE(count_nans_checking_bits(out), 64) << "bucket 0 (NaN norm) is all NaN";
  for (int i = 64; i < 128; ++i) EXPECT_FALSE(std::isfinite(out[i])) << "bucket 1 (Inf norm) " << i;
  for (int i = 128; i < 192; ++i) EXPECT_TRUE(std::isfinite(out[i])) << i;
}

TEST(NanBits, OppositeInfinitiesSummedGiveTheCanonicalNaN) {
  std::vector<float> a = testing_util::GaussianVector(64, 4), b = a;
  a[3] = std::numeric_limits<float>::infinity();
  b[3] = -std::numeric_limits<float>::infinity();
  const LevelTable table = uniform_table(3);
  const std::vector<unsigned char> pa = Encode(a, spec64(0), table),
                                   pb = Encode(b, spec64(1), table);
  ASSERT_EQ(pa.size(), pb.size());
  std::vector<unsigned char> both(pa);
  both.insert(both.end(), pb.begin(), pb.end());
  PayloadHeader expected;
  std::memcpy(&expected, pa.data(), sizeof expected);
  std::vector<float> sum(64);
  int failed = -1;
  ASSERT_EQ(
      host_codec().decode_sum(both.data(), pa.size(), 2, expected, sum.data(), false, &failed),
      qcclSuccess);
  EXPECT_GT(count_nans_checking_bits(sum), 0);
  // Payload by payload gives the same bits.
  std::vector<float> acc(64);
  ASSERT_EQ(host_codec().decode_sum(pa.data(), pa.size(), 1, expected, acc.data(), false, &failed),
            qcclSuccess);
  ASSERT_EQ(host_codec().decode_sum(pb.data(), pb.size(), 1, expected, acc.data(), true, &failed),
            qcclSuccess);
  EXPECT_EQ(std::memcmp(acc.data(), sum.data(), 64 * 4), 0);
}

TEST(NanBits, UncompressedAndScaledNaNsAreCanonical) {
  std::vector<float> v = {1.0f, nan_with_bits(0x7fa00001u), nan_with_bits(0xffc00000u), 2.0f};
  EncodeSpec spec;
  spec.method = Method::kNone;
  std::vector<unsigned char> payload(payload_bytes(spec, v.size()));
  ASSERT_EQ(
      encode(v.data(), DataType::kFloat32, v.size(), spec, payload.data(), payload.size(), nullptr),
      qcclSuccess);
  EXPECT_EQ(count_nans_checking_bits(testing_util::Decode(payload, v.size())), 2);
  ASSERT_EQ(host_codec().scale(v.data(), v.size(), 0.5f), qcclSuccess);
  EXPECT_EQ(count_nans_checking_bits(v), 2);
  EXPECT_EQ(v[3], 1.0f);
}

}  // namespace
}  // namespace qccl
