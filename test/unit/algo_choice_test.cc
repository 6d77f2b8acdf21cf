// QCCL_ALGO=auto (choose_compressed_algo, docs/collectives.md "auto rule"):
// sra where it sends fewer bytes and its second quantisation is affordable.
#include <gtest/gtest.h>

#include "collective/algorithm.h"

namespace qccl {
namespace {

Config ConfigFor(Method method, Algo algo = Algo::kAuto) {
  Config c;
  c.method = method;
  c.algo = algo;
  c.bucket_size = 8192;
  return c;
}

// Enough elements for every rank to own a whole bucket.
uint64_t Balanced(int nranks) {
  return static_cast<uint64_t>(nranks) * 8192;
}

// The casts send C = S/2 per payload: allgather's (N-1)·C at N = 4 is a
// float32 ring allreduce's 2(N-1)/N·S, while sra's 2(N-1)/N·C is half that.
TEST(AutoAlgorithm, HalfCastsUseSraFromThreeRanks) {
  for (Method m : {Method::kFp16, Method::kBf16}) {
    for (int n : {3, 4, 5, 8, 64}) {
      EXPECT_EQ(choose_compressed_algo(ConfigFor(m), n, Balanced(n)), Algo::kSra)
          << method_name(m) << " at " << n << " ranks";
    }
  }
}

// At two ranks both algorithms send one payload per rank: allgather, which
// rounds once.
TEST(AutoAlgorithm, HalfCastsKeepAllgatherAtTwoRanks) {
  for (Method m : {Method::kFp16, Method::kBf16})
    EXPECT_EQ(choose_compressed_algo(ConfigFor(m), 2, Balanced(2)), Algo::kAllgather)
        << method_name(m);
}

// Fewer buckets than ranks: sra's chunks would be unbalanced (some empty),
// so its busiest rank sends more than allgather's.
TEST(AutoAlgorithm, HalfCastsKeepAllgatherWhenARankWouldOwnNoBucket) {
  EXPECT_EQ(choose_compressed_algo(ConfigFor(Method::kFp16), 4, Balanced(4) - 1), Algo::kAllgather);
}

// The quantising methods keep the measured rule: allgather below 8 ranks.
TEST(AutoAlgorithm, QuantisingMethodsUseSraFromEightRanks) {
  for (Method m : {Method::kQsgd, Method::kAlq, Method::kAmq, Method::kTrn}) {
    EXPECT_EQ(choose_compressed_algo(ConfigFor(m), 4, Balanced(4)), Algo::kAllgather)
        << method_name(m);
    EXPECT_EQ(choose_compressed_algo(ConfigFor(m), 7, Balanced(7)), Algo::kAllgather)
        << method_name(m);
    EXPECT_EQ(choose_compressed_algo(ConfigFor(m), 8, Balanced(8)), Algo::kSra) << method_name(m);
    EXPECT_EQ(choose_compressed_algo(ConfigFor(m), 8, Balanced(8) - 1), Algo::kAllgather)
        << method_name(m);
  }
}

TEST(AutoAlgorithm, AnExplicitChoiceIsKept) {
  EXPECT_EQ(choose_compressed_algo(ConfigFor(Method::kFp16, Algo::kAllgather), 4, Balanced(4)),
            Algo::kAllgather);
  EXPECT_EQ(choose_compressed_algo(ConfigFor(Method::kQsgd, Algo::kSra), 2, 1), Algo::kSra);
}

}  // namespace
}  // namespace qccl
