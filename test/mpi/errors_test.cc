// Bad input and cross-rank disagreement: a specific code and message on
// every rank, never a crash or a hang. Also stats, allgather and the
// communicator queries.
#include <cmath>
#include <string>

#include "mpi_test_util.h"

namespace qccl::test {
namespace {

bool contains(const char* text, const char* part) {
  return std::string(text).find(part) != std::string::npos;
}

TEST(Errors, NullCommIsInvalidArgument) {
  float x = 1;
  EXPECT_EQ(qcclAllReduce(&x, &x, 1, qcclFloat32, qcclSum, nullptr, nullptr), qcclInvalidArgument);
  EXPECT_TRUE(contains(qcclGetLastError(nullptr), "comm is NULL")) << qcclGetLastError(nullptr);
}

TEST(Errors, NullBufferBadDtypeAndBadOpAreInvalidArgument) {
  Comm c;
  ASSERT_EQ(c.init_result, qcclSuccess);
  float x[4] = {};
  EXPECT_EQ(qcclAllReduce(nullptr, x, 4, qcclFloat32, qcclSum, c.comm, nullptr),
            qcclInvalidArgument);
  EXPECT_TRUE(contains(qcclGetLastError(c.comm), "sendbuff is NULL")) << qcclGetLastError(c.comm);
  EXPECT_EQ(qcclAllReduce(x, nullptr, 4, qcclFloat32, qcclSum, c.comm, nullptr),
            qcclInvalidArgument);
  EXPECT_TRUE(contains(qcclGetLastError(c.comm), "recvbuff is NULL"));
  EXPECT_EQ(qcclAllReduce(x, x, 4, static_cast<qcclDataType_t>(7), qcclSum, c.comm, nullptr),
            qcclInvalidArgument);
  EXPECT_TRUE(contains(qcclGetLastError(c.comm), "datatype 7"));
  EXPECT_EQ(qcclAllReduce(x, x, 4, qcclFloat32, static_cast<qcclRedOp_t>(5), c.comm, nullptr),
            qcclInvalidArgument);
  EXPECT_TRUE(contains(qcclGetLastError(c.comm), "reduction op 5"));
  EXPECT_EQ(qcclAllGather(x, nullptr, 4, qcclFloat32, c.comm, nullptr), qcclInvalidArgument);
  EXPECT_EQ(qcclCommGetStats(c.comm, nullptr), qcclInvalidArgument);
}

// Rank 1 passes one element more: every rank (not only rank 1) gets
// qcclInvalidUsage with the counts named, and the communicator stays usable.
TEST(Errors, CountDifferingBetweenRanksFailsOnEveryRank) {
  if (world_size() == 1) GTEST_SKIP() << "needs two ranks";
  for (const char* method : {"none", "qsgd"}) {
    for (const char* algo : {"allgather", "sra"}) {
      CommOptions o;
      o.method = method;
      o.algo = algo;
      Comm c(o);
      ASSERT_EQ(c.init_result, qcclSuccess);
      const size_t count = 1024 + (world_rank() == 1 ? 1 : 0);
      std::vector<float> in(1025, 1.0f), out(1025);
      EXPECT_EQ(qcclAllReduce(in.data(), out.data(), count, qcclFloat32, qcclSum, c.comm, nullptr),
                qcclInvalidUsage);
      EXPECT_TRUE(contains(qcclGetLastError(c.comm), "count differs between ranks"))
          << qcclGetLastError(c.comm);
      const std::string expected = world_rank() == 1 ? "rank 0 sent 1024, this rank has 1025"
                                                     : "rank 1 sent 1025, this rank has 1024";
      EXPECT_TRUE(contains(qcclGetLastError(c.comm), expected.c_str())) << qcclGetLastError(c.comm);
      EXPECT_EQ(qcclAllReduce(in.data(), out.data(), 1024, qcclFloat32, qcclSum, c.comm, nullptr),
                qcclSuccess)
          << qcclGetLastError(c.comm);
    }
  }
}

TEST(Errors, OpDifferingBetweenRanksFailsOnEveryRank) {
  if (world_size() == 1) GTEST_SKIP() << "needs two ranks";
  Comm c;
  ASSERT_EQ(c.init_result, qcclSuccess);
  std::vector<float> in(100, 1.0f), out(100);
  const qcclRedOp_t op = world_rank() == 0 ? qcclAvg : qcclSum;
  EXPECT_EQ(qcclAllReduce(in.data(), out.data(), 100, qcclFloat32, op, c.comm, nullptr),
            qcclInvalidUsage);
  EXPECT_TRUE(contains(qcclGetLastError(c.comm), "reduction op differs between ranks"));
}

TEST(Errors, MethodDifferingBetweenRanksFailsInitOnEveryRank) {
  if (world_size() == 1) GTEST_SKIP() << "needs two ranks";
  CommOptions o;
  o.method = world_rank() == 1 ? "qsgd" : "alq";
  Comm c(o);
  EXPECT_EQ(c.init_result, qcclInvalidUsage);
  EXPECT_EQ(c.comm, nullptr);
  EXPECT_TRUE(contains(qcclGetLastError(nullptr), "QCCL_METHOD")) << qcclGetLastError(nullptr);
  EXPECT_TRUE(contains(qcclGetLastError(nullptr), "differs between ranks"));
}

TEST(Errors, BadConfigOnOneRankFailsInitOnEveryRank) {
  CommOptions o;
  if (world_rank() == 0) o.bits = "12";
  Comm c(o);
  EXPECT_EQ(c.comm, nullptr);
  if (world_rank() == 0) {
    EXPECT_EQ(c.init_result, qcclInvalidArgument);
    EXPECT_TRUE(contains(qcclGetLastError(nullptr), "QCCL_BITS")) << qcclGetLastError(nullptr);
  } else {
    EXPECT_EQ(c.init_result, qcclInvalidUsage);
    EXPECT_TRUE(contains(qcclGetLastError(nullptr), "rank 0 rejected"));
  }
}

TEST(Comm, CountAndRankMatchMpi) {
  Comm c;
  ASSERT_EQ(c.init_result, qcclSuccess);
  int n = -1, r = -1;
  ASSERT_EQ(qcclCommCount(c.comm, &n), qcclSuccess);
  ASSERT_EQ(qcclCommUserRank(c.comm, &r), qcclSuccess);
  EXPECT_EQ(n, world_size());
  EXPECT_EQ(r, world_rank());
}

// qsgd, 3 bits, bucket 256, 4096 floats = 16 buckets: payload = 64-byte
// header + 8 levels + 16 norms + 16 x 3 x 8 words, all 4 bytes.
TEST(Stats, ReportWireBytesRatioAndTable) {
  CommOptions o;
  o.algo = "allgather";
  Comm c(o);
  ASSERT_EQ(c.init_result, qcclSuccess);
  const int n = world_size();
  std::vector<float> in = rank_input(world_rank(), 0, 4096), out(4096);
  ASSERT_EQ(qcclAllReduce(in.data(), out.data(), 4096, qcclFloat32, qcclSum, c.comm, nullptr),
            qcclSuccess);
  qcclStats_t s;
  ASSERT_EQ(qcclCommGetStats(c.comm, &s), qcclSuccess);
  EXPECT_EQ(s.calls, 1u);
  EXPECT_EQ(s.step, 1u);
  EXPECT_EQ(s.inputBytes, 4096u * 4);
  EXPECT_EQ(s.method, qcclMethodQsgd);
  if (n == 1) {
    EXPECT_EQ(s.compressedCalls, 0u);  // one rank: passthrough
    return;
  }
  const uint64_t payload = 64 + 8 * 4 + 16 * 4 + 16 * 3 * 8 * 4;
  EXPECT_EQ(s.compressedCalls, 1u);
  EXPECT_DOUBLE_EQ(s.compressionRatio, 4096.0 * 4 / payload);
  EXPECT_EQ(s.wireBytes, (n - 1) * payload);  // allgather: (N-1) payloads
  EXPECT_EQ(s.bits, 3);
  ASSERT_EQ(s.numLevels, 8);
  EXPECT_FLOAT_EQ(s.levels[0], -1.0f);
  EXPECT_FLOAT_EQ(s.levels[7], 1.0f);
}

TEST(AllGather, NoneEqualsMpiAllgatherInAndOutOfPlace) {
  CommOptions o;
  o.method = "none";
  Comm c(o);
  ASSERT_EQ(c.init_result, qcclSuccess);
  const int n = world_size(), me = world_rank();
  const size_t count = 1001;
  const std::vector<float> in = rank_input(me, 4, count);
  std::vector<float> ref(count * n), got(count * n);
  MPI_Allgather(in.data(), count, MPI_FLOAT, ref.data(), count, MPI_FLOAT, MPI_COMM_WORLD);
  ASSERT_EQ(qcclAllGather(in.data(), got.data(), count, qcclFloat32, c.comm, nullptr), qcclSuccess);
  EXPECT_EQ(std::memcmp(got.data(), ref.data(), ref.size() * 4), 0);
  std::vector<float> inplace(count * n);
  std::copy(in.begin(), in.end(), inplace.begin() + me * count);
  ASSERT_EQ(qcclAllGather(inplace.data() + me * count, inplace.data(), count, qcclFloat32, c.comm,
                          nullptr),
            qcclSuccess);
  EXPECT_EQ(std::memcmp(inplace.data(), ref.data(), ref.size() * 4), 0);
}

TEST(AllGather, CompressedSlotsAreIdenticalOnAllRanksAndNearTheInputs) {
  CommOptions o;
  o.method = "nuqsgd";
  o.bits = "4";
  Comm c(o);
  ASSERT_EQ(c.init_result, qcclSuccess);
  const int n = world_size();
  const size_t count = 2053;
  const std::vector<float> in = rank_input(world_rank(), 6, count);
  std::vector<float> got(count * n);
  ASSERT_EQ(qcclAllGather(in.data(), got.data(), count, qcclFloat32, c.comm, nullptr), qcclSuccess)
      << qcclGetLastError(c.comm);
  EXPECT_TRUE(identical_on_all_ranks(got.data(), got.size() * 4));
  for (int r = 0; r < n; ++r) {
    const std::vector<float> v = rank_input(r, 6, count);
    double err = 0, norm = 0;
    for (size_t i = 0; i < count; ++i) {
      err += (got[r * count + i] - v[i]) * (got[r * count + i] - v[i]);
      norm += v[i] * v[i];
    }
    // nuqsgd 4 bits, bucket 256: normalised variance well under 1.
    EXPECT_LT(std::sqrt(err / norm), 1.0) << "slot " << r;
  }
}

}  // namespace
}  // namespace qccl::test
