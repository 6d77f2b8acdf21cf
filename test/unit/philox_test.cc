// Philox4x32-10 against Random123's published known-answer vectors
// (kat_vectors: counter[4] key[2] -> output[4]).
#include "codec/philox.h"

#include <gtest/gtest.h>

namespace qccl {
namespace {

void ExpectKat(Philox4x32 ctr, uint32_t k0, uint32_t k1, Philox4x32 want) {
  const Philox4x32 got = philox4x32_10(ctr, k0, k1);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(got.v[i], want.v[i]) << "word " << i;
}

TEST(Philox, ZeroCounterAndKeyMatchesRandom123) {
  ExpectKat({{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}});
}

TEST(Philox, AllOnesMatchesRandom123) {
  ExpectKat({{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, 0xffffffff, 0xffffffff,
            {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}});
}

TEST(Philox, PiDigitsMatchesRandom123) {
  ExpectKat({{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, 0xa4093822, 0x299f31d0,
            {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}});
}

TEST(Philox, UniformIsInHalfOpenUnitInterval) {
  EXPECT_EQ(uniform_from_bits(0), 0.0f);
  EXPECT_LT(uniform_from_bits(0xffffffffu), 1.0f);
  EXPECT_EQ(uniform_from_bits(0x80000000u), 0.5f);
}

TEST(Philox, DrawKeyFieldsEachChangeTheDraw) {
  const DrawKey base{7, 1, 0, 5};
  const uint32_t w = draws_for_group(base, 3).v[0];
  EXPECT_NE(w, draws_for_group({8, 1, 0, 5}, 3).v[0]);
  EXPECT_NE(w, draws_for_group({7, 2, 0, 5}, 3).v[0]);
  EXPECT_NE(w, draws_for_group({7, 1, 1, 5}, 3).v[0]);
  EXPECT_NE(w, draws_for_group({7, 1, 0, 6}, 3).v[0]);
  EXPECT_NE(w, draws_for_group(base, 4).v[0]);
  EXPECT_EQ(w, draws_for_group(base, 3).v[0]);
}

}  // namespace
}  // namespace qccl
