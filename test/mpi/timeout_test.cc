// QCCL_TIMEOUT_S: a rank that never joins a collective makes the others
// return qcclTimeout (not hang), after which their communicator refuses
// work with qcclInvalidUsage. Its own binary: the abandoned MPI request
// stays pending on the duplicated communicator until MPI_Finalize.
#include <chrono>

#include "mpi_test_util.h"

namespace qccl::test {
namespace {

TEST(Timeout, RanksWaitingOnAMissingRankGetTimeoutThenInvalidUsage) {
  if (world_size() == 1) GTEST_SKIP() << "needs two ranks";
  for (const char* method : {"qsgd"}) {
    CommOptions o;
    o.method = method;
    o.timeout = "2";
    Comm c(o);
    ASSERT_EQ(c.init_result, qcclSuccess);
    std::vector<float> in(4096, 1.0f), out(4096);
    if (world_rank() != 0) {  // rank 0 skips the call
      const auto start = std::chrono::steady_clock::now();
      EXPECT_EQ(
          qcclAllReduce(in.data(), out.data(), in.size(), qcclFloat32, qcclSum, c.comm, nullptr),
          qcclTimeout);
      const double waited =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      // Not much before the deadline: a peer that timed out first (they all
      // started at about the same time) ends this wait with its notice.
      EXPECT_GE(waited, 1.5);
      EXPECT_LT(waited, 10.0);
      const std::string message = qcclGetLastError(c.comm);
      EXPECT_NE(message.find("QCCL_TIMEOUT_S=2"), std::string::npos) << message;
      EXPECT_NE(message.find("allgather"), std::string::npos) << message;
      EXPECT_EQ(
          qcclAllReduce(in.data(), out.data(), in.size(), qcclFloat32, qcclSum, c.comm, nullptr),
          qcclInvalidUsage);
      EXPECT_NE(std::string(qcclGetLastError(c.comm)).find("unusable"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace qccl::test
