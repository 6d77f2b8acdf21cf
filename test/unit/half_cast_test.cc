// fp16 / bf16 conversions: round to nearest even, checked against the
// compiler's own _Float16 conversion and hand-derived edge cases.
#include "codec/half_cast.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

namespace qccl {
namespace {

TEST(HalfCast, Fp16EdgeCases) {
  EXPECT_EQ(float_to_fp16(1.0f), 0x3C00);
  EXPECT_EQ(float_to_fp16(-2.0f), 0xC000);
  EXPECT_EQ(float_to_fp16(65504.0f), 0x7BFF);               // largest finite
  EXPECT_EQ(float_to_fp16(65519.0f), 0x7BFF);               // rounds down
  EXPECT_EQ(float_to_fp16(65520.0f), 0x7C00);               // ties to even: Inf
  EXPECT_EQ(float_to_fp16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(float_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // tie to even: zero
  EXPECT_EQ(float_to_fp16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(float_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(float_to_fp16(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(float_to_fp16(std::nanf("")) & 0x7C00, 0x7C00);
  EXPECT_NE(float_to_fp16(std::nanf("")) & 0x03FF, 0);
}

TEST(HalfCast, Fp16RoundTripsEveryHalfValue) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_float(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(fp16_to_float(float_to_fp16(f)))) << h;
    } else {
      EXPECT_EQ(float_to_fp16(f), h) << h;
    }
  }
}

#if defined(__FLT16_MAX__)
TEST(HalfCast, Fp16MatchesCompilerConversionOnRandomFloats) {
  std::mt19937 rng(12345);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    uint32_t u = bits(rng);
    // Bias the exponent towards the fp16 range so subnormal/normal/overflow all occur.
    u = (u & 0x807FFFFFu) | ((100u + (u >> 23) % 50u) << 23);
    float f;
    std::memcpy(&f, &u, 4);
    const _Float16 ref = static_cast<_Float16>(f);
    uint16_t ref_bits;
    std::memcpy(&ref_bits, &ref, 2);
    ASSERT_EQ(float_to_fp16(f), ref_bits) << f;
    ASSERT_EQ(fp16_to_float(ref_bits), static_cast<float>(ref));
  }
}
#endif

TEST(HalfCast, Bf16RoundsToNearestEven) {
  EXPECT_EQ(float_to_bf16(1.0f), 0x3F80);
  // 1 + 2^-8 is exactly half way between bf16 1.0 and 1.0078125: ties to even.
  EXPECT_EQ(float_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);
  EXPECT_EQ(float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::max()), 0x7F80);  // overflows to Inf
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::nanf("")))));
  EXPECT_EQ(bf16_to_float(0x4049), 3.140625f);
}

}  // namespace
}  // namespace qccl
