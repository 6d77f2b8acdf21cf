// qcclAllReduce on 1-4 ranks: `none` is the rank-order sum bit for bit, every
// compressed method and algorithm leaves identical bytes on every rank,
// and the compressed error is the codec's predicted variance, unbiased.
#include <cmath>

#include "codec/cpu_codec.h"
#include "codec/level_table.h"
#include "codec/quantization_variance.h"
#include "mpi_test_util.h"

namespace qccl::test {
namespace {

// 2053: not a multiple of 2, 3, 4 or the bucket. Largest first: the
// adaptive methods fit their table on the first call's statistics, and a
// fit on one coordinate is (legitimately) a poor table for the rest.
const size_t kOddCounts[] = {2053, 1000, 31, 1};

std::vector<uint16_t> to_half(const std::vector<float>& v, DataType t) {
  std::vector<uint16_t> h(v.size());
  cast_from_float(v.data(), v.size(), t, h.data());
  return h;
}

// The rank-order sum (docs/collectives.md "Uncompressed sums"), computed
// here from every rank's input gathered with plain MPI: float32 additions
// rank 0, 1, ..., N-1.
std::vector<float> rank_order_sum(const std::vector<float>& mine) {
  const int n = world_size();
  std::vector<float> all(mine.size() * n);
  MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_FLOAT, all.data(),
                static_cast<int>(mine.size()), MPI_FLOAT, MPI_COMM_WORLD);
  std::vector<float> sum(all.begin(), all.begin() + mine.size());
  for (int r = 1; r < n; ++r)
    for (size_t i = 0; i < mine.size(); ++i) sum[i] += all[r * mine.size() + i];
  return sum;
}

TEST(AllReduce, NoneEqualsTheRankOrderSumBitForBit) {
  CommOptions o;
  o.method = "none";
  Comm c(o);
  ASSERT_EQ(c.init_result, qcclSuccess) << qcclGetLastError(nullptr);
  const int n = world_size();
  for (size_t count : {size_t{1}, size_t{7}, size_t{1001}, size_t{70001}}) {
    const std::vector<float> in = rank_input(world_rank(), 0, count);
    for (qcclRedOp_t op : {qcclSum, qcclAvg}) {
      // The reference: the float32 rank-order sum, then one multiply by 1/N.
      std::vector<float> ref = rank_order_sum(in);
      if (op == qcclAvg)
        for (float& x : ref) x *= 1.0f / static_cast<float>(n);
      std::vector<float> got(count);
      ASSERT_EQ(qcclAllReduce(in.data(), got.data(), count, qcclFloat32, op, c.comm, nullptr),
                qcclSuccess);
      EXPECT_EQ(std::memcmp(got.data(), ref.data(), count * 4), 0) << "float32 count " << count;
      // In place, the same bits.
      std::vector<float> inplace = in;
      ASSERT_EQ(
          qcclAllReduce(inplace.data(), inplace.data(), count, qcclFloat32, op, c.comm, nullptr),
          qcclSuccess);
      EXPECT_EQ(std::memcmp(inplace.data(), ref.data(), count * 4), 0) << "in place " << count;

      // Half types: widen to float32, the same rank-order sum, round back once.
      for (DataType t : {DataType::kFloat16, DataType::kBfloat16}) {
        const std::vector<uint16_t> half_in = to_half(in, t);
        std::vector<float> widened(count);
        cast_to_float(half_in.data(), count, t, widened.data());
        widened = rank_order_sum(widened);
        std::vector<uint16_t> half_ref = to_half(widened, t);
        if (op == qcclAvg) {
          cast_to_float(half_ref.data(), count, t, widened.data());
          for (float& x : widened) x *= 1.0f / static_cast<float>(n);
          half_ref = to_half(widened, t);
        }
        std::vector<uint16_t> half_got(count);
        ASSERT_EQ(qcclAllReduce(half_in.data(), half_got.data(), count,
                                static_cast<qcclDataType_t>(t), op, c.comm, nullptr),
                  qcclSuccess);
        EXPECT_EQ(std::memcmp(half_got.data(), half_ref.data(), count * 2), 0)
            << dtype_name(t) << " count " << count;
      }
    }
  }
}

// A coarse sanity bound (the exact variance checks are the tests below).
// At 4 bits and bucket 256 the uniform-table methods (qsgd, qsgdinf, dqsgd)
// have normalised variance up to sqrt(d)/s = 16/7.5 ~ 2 per quantisation
// (docs/algorithms.md §8 T2) and sra quantises twice, so they get 3; TernGrad
// ignores bits and gets 4; the non-uniform tables stay under 1.
TEST(AllReduce, EveryMethodAndAlgorithmGivesIdenticalBytesNearTheSum) {
  const int n = world_size();
  for (const std::string& method : compressed_methods()) {
    for (const char* algo : {"allgather", "sra"}) {
      CommOptions o;
      o.method = method;
      o.algo = algo;
      o.bits = "4";
      Comm c(o);
      ASSERT_EQ(c.init_result, qcclSuccess) << method << ": " << qcclGetLastError(nullptr);
      for (size_t count : kOddCounts) {
        const std::vector<float> in = rank_input(world_rank(), 1, count);
        std::vector<float> got(count);
        ASSERT_EQ(
            qcclAllReduce(in.data(), got.data(), count, qcclFloat32, qcclSum, c.comm, nullptr),
            qcclSuccess)
            << method << "/" << algo << " count " << count << ": " << qcclGetLastError(c.comm);
        EXPECT_TRUE(identical_on_all_ranks(got.data(), count * 4))
            << method << "/" << algo << " count " << count;
        const bool uniform = method == "qsgd" || method == "qsgdinf" || method == "dqsgd";
        const double bound = method == "trn" ? 4.0 : uniform ? 3.0 : 1.0;
        // Tiny buffers are checked for agreement only: an adaptive table
        // fitted on the first (2053-element) call is not meant for them.
        if (count >= 1000) {
          EXPECT_LT(relative_error(got, exact_sum(n, 1, count)), bound)
              << method << "/" << algo << " count " << count;
        }
      }
    }
  }
}

TEST(AllReduce, HalfInputsAndOutputsGoThroughTheCodec) {
  const int n = world_size();
  const size_t count = 2053;
  for (const char* method : {"qsgd", "fp16", "bf16"}) {
    for (const char* algo : {"allgather", "sra"}) {
      CommOptions o;
      o.method = method;
      o.algo = algo;
      o.bits = "8";
      Comm c(o);
      ASSERT_EQ(c.init_result, qcclSuccess);
      for (DataType t : {DataType::kFloat16, DataType::kBfloat16}) {
        const std::vector<uint16_t> in = to_half(rank_input(world_rank(), 2, count), t);
        std::vector<uint16_t> got(count);
        ASSERT_EQ(qcclAllReduce(in.data(), got.data(), count, static_cast<qcclDataType_t>(t),
                                qcclAvg, c.comm, nullptr),
                  qcclSuccess)
            << qcclGetLastError(c.comm);
        EXPECT_TRUE(identical_on_all_ranks(got.data(), count * 2));
        std::vector<float> widened(count);
        cast_to_float(got.data(), count, t, widened.data());
        std::vector<double> exact = exact_sum(n, 2, count);
        for (double& x : exact) x /= n;
        // bfloat16 inputs alone carry ~2^-8 relative rounding.
        EXPECT_LT(relative_error(widened, exact), 0.5)
            << method << "/" << algo << " " << dtype_name(t);
      }
    }
  }
}

TEST(AllReduce, CountZeroIsANoOp) {
  Comm c;
  ASSERT_EQ(c.init_result, qcclSuccess);
  float sentinel = 42.0f;
  EXPECT_EQ(qcclAllReduce(nullptr, nullptr, 0, qcclFloat32, qcclSum, c.comm, nullptr), qcclSuccess);
  EXPECT_EQ(qcclAllReduce(&sentinel, &sentinel, 0, qcclFloat32, qcclSum, c.comm, nullptr),
            qcclSuccess);
  EXPECT_EQ(sentinel, 42.0f);
  qcclStats_t stats;
  ASSERT_EQ(qcclCommGetStats(c.comm, &stats), qcclSuccess);
  EXPECT_EQ(stats.calls, 0u);
}

// With the step held by qcclCommMarkStep both calls draw the same random
// numbers, so in-place and out-of-place must give the same bytes.
TEST(AllReduce, InPlaceEqualsOutOfPlace) {
  for (const char* algo : {"allgather", "sra"}) {
    CommOptions o;
    o.algo = algo;
    Comm c(o);
    ASSERT_EQ(c.init_result, qcclSuccess);
    ASSERT_EQ(qcclCommMarkStep(c.comm), qcclSuccess);
    const std::vector<float> in = rank_input(world_rank(), 3, 2053);
    std::vector<float> out(in.size());
    std::vector<float> inplace = in;
    ASSERT_EQ(
        qcclAllReduce(in.data(), out.data(), in.size(), qcclFloat32, qcclSum, c.comm, nullptr),
        qcclSuccess);
    ASSERT_EQ(qcclAllReduce(inplace.data(), inplace.data(), in.size(), qcclFloat32, qcclSum, c.comm,
                            nullptr),
              qcclSuccess);
    EXPECT_EQ(std::memcmp(out.data(), inplace.data(), in.size() * 4), 0) << algo;
  }
}

// docs/algorithms.md §1: with `allgather` the error of the sum is the sum of the
// ranks' independent quantisation errors, so E||result - exact||^2 equals
// sum_r sum_i n_b^2 (l_{j+1} - r_i)(r_i - l_j), computable from the inputs.
// 16 trials x N x 4096 coordinates put the standard error of the measured
// mean near 1%; the tolerance is 10%.
TEST(AllReduce, QsgdSquaredErrorMatchesPredictedVariance) {
  const int n = world_size();
  if (n == 1) GTEST_SKIP() << "one rank sends nothing: the result is exact";
  CommOptions o;
  o.algo = "allgather";
  Comm c(o);
  ASSERT_EQ(c.init_result, qcclSuccess);
  const size_t count = 4096;
  const LevelTable table = uniform_table(3);
  const int trials = 16;
  double measured = 0, predicted = 0;
  for (int t = 0; t < trials; ++t) {
    const std::vector<float> in = rank_input(world_rank(), 10 + t, count);
    std::vector<float> got(count);
    ASSERT_EQ(qcclAllReduce(in.data(), got.data(), count, qcclFloat32, qcclSum, c.comm, nullptr),
              qcclSuccess);
    const std::vector<double> exact = exact_sum(n, 10 + t, count);
    for (size_t i = 0; i < count; ++i) measured += (got[i] - exact[i]) * (got[i] - exact[i]);
    std::vector<double> per_coordinate(count);
    for (int r = 0; r < n; ++r) {
      const std::vector<float> v = rank_input(r, 10 + t, count);
      coordinate_variances(v.data(), count, 256, NormKind::kL2, table.levels.data(), table.size(),
                           per_coordinate.data());
      for (double x : per_coordinate) predicted += x;
    }
  }
  EXPECT_NEAR(measured / predicted, 1.0, 0.10)
      << "measured " << measured / trials << " predicted " << predicted / trials;
}

// Unbiasedness: the mean of T independent results has squared error about
// 1/T of a single result's; a biased rounding would plateau instead. The
// bound (3/T) leaves a wide margin for the estimate's own spread.
TEST(AllReduce, MeanOverStepsConvergesToTheExactSum) {
  const int n = world_size();
  if (n == 1) GTEST_SKIP() << "one rank sends nothing: the result is exact";
  const size_t count = 1000;
  const int trials = 64;
  const std::vector<float> in = rank_input(world_rank(), 5, count);
  const std::vector<double> exact = exact_sum(n, 5, count);
  for (const char* method : {"qsgd", "nuqsgd", "trn"}) {
    for (const char* algo : {"allgather", "sra"}) {
      CommOptions o;
      o.method = method;
      o.algo = algo;
      o.bits = "2";
      Comm c(o);
      ASSERT_EQ(c.init_result, qcclSuccess);
      std::vector<double> mean(count, 0.0);
      double single = 0;
      for (int t = 0; t < trials; ++t) {
        std::vector<float> got(count);
        ASSERT_EQ(
            qcclAllReduce(in.data(), got.data(), count, qcclFloat32, qcclSum, c.comm, nullptr),
            qcclSuccess);
        for (size_t i = 0; i < count; ++i) {
          mean[i] += got[i] / trials;
          single += (got[i] - exact[i]) * (got[i] - exact[i]) / trials;
        }
      }
      double of_mean = 0;
      for (size_t i = 0; i < count; ++i) of_mean += (mean[i] - exact[i]) * (mean[i] - exact[i]);
      EXPECT_GT(single, 0.0) << method << "/" << algo << ": nothing was quantised";
      EXPECT_LT(of_mean, 3.0 * single / trials) << method << "/" << algo;
    }
  }
}

// QCCL_ALGO=auto with the half casts (docs/collectives.md "auto rule"): from
// 3 ranks it sends fewer bytes than allgather (which at 4 ranks sends as
// much as a float32 ring allreduce), with a result as close to the sum.
TEST(AllReduce, AutoSendsFewerBytesThanAllgatherForHalfCasts) {
  const int n = world_size();
  const size_t count = 3 * 4 * 256;  // every rank owns whole 256-element buckets
  const std::vector<float> in = rank_input(world_rank(), 6, count);
  const std::vector<double> exact = exact_sum(n, 6, count);
  for (const char* method : {"fp16", "bf16"}) {
    uint64_t wire[2] = {0, 0};
    const char* algos[2] = {"auto", "allgather"};
    for (int a = 0; a < 2; ++a) {
      CommOptions o;
      o.method = method;
      o.algo = algos[a];
      Comm c(o);
      ASSERT_EQ(c.init_result, qcclSuccess);
      std::vector<float> got(count);
      ASSERT_EQ(qcclAllReduce(in.data(), got.data(), count, qcclFloat32, qcclSum, c.comm, nullptr),
                qcclSuccess)
          << qcclGetLastError(c.comm);
      EXPECT_TRUE(identical_on_all_ranks(got.data(), count * 4)) << method << "/" << algos[a];
      // Half-precision rounding of the inputs (and for sra of the sum):
      // 2^-11 (fp16) / 2^-8 (bf16) relative per rounding.
      EXPECT_LT(relative_error(got, exact), std::string(method) == "fp16" ? 2e-3 : 1.5e-2)
          << method << "/" << algos[a];
      qcclStats_t stats;
      ASSERT_EQ(qcclCommGetStats(c.comm, &stats), qcclSuccess);
      wire[a] = stats.wireBytes;
    }
    if (n >= 3) {
      EXPECT_LT(wire[0], wire[1]) << method << " at " << n << " ranks: auto should be sra";
    } else {
      EXPECT_EQ(wire[0], wire[1]) << method << " at " << n << " ranks: auto should be allgather";
    }
  }
}

}  // namespace
}  // namespace qccl::test
