// The C API without a communicator: error names, version, config checks
// and argument errors that need no MPI.
#include <gtest/gtest.h>

#include <string>

#include "qccl/qccl.h"

namespace {

TEST(ApiErrors, EveryCodeHasADistinctName) {
  for (int a = 0; a < qcclNumResults; ++a)
    for (int b = a + 1; b < qcclNumResults; ++b)
      EXPECT_STRNE(qcclGetErrorString(static_cast<qcclResult_t>(a)),
                   qcclGetErrorString(static_cast<qcclResult_t>(b)));
}

TEST(ApiErrors, VersionIsTheHeadersCode) {
  int v = -1;
  ASSERT_EQ(qcclGetVersion(&v), qcclSuccess);
  EXPECT_EQ(v, QCCL_MAJOR * 10000 + QCCL_MINOR * 100 + QCCL_PATCH);
  EXPECT_EQ(qcclGetVersion(nullptr), qcclInvalidArgument);
  EXPECT_NE(std::string(qcclGetLastError(nullptr)).find("version is NULL"), std::string::npos);
}

TEST(ApiErrors, ConfigValidateNamesTheBadVariable) {
  qcclConfig_t c = QCCL_CONFIG_INITIALIZER;
  c.bits = "12";
  EXPECT_EQ(qcclConfigValidate(&c), qcclInvalidArgument);
  EXPECT_NE(std::string(qcclGetLastError(nullptr)).find("QCCL_BITS"), std::string::npos)
      << qcclGetLastError(nullptr);
  c.bits = "4";
  EXPECT_EQ(qcclConfigValidate(&c), qcclSuccess);
}

TEST(ApiErrors, NullCommIsInvalidArgumentForEveryCall) {
  float x = 0;
  int n = 0;
  qcclStats_t s;
  EXPECT_EQ(qcclAllReduce(&x, &x, 1, qcclFloat32, qcclSum, nullptr, nullptr), qcclInvalidArgument);
  EXPECT_EQ(qcclAllGather(&x, &x, 1, qcclFloat32, nullptr, nullptr), qcclInvalidArgument);
  EXPECT_EQ(qcclCommCount(nullptr, &n), qcclInvalidArgument);
  EXPECT_EQ(qcclCommUserRank(nullptr, &n), qcclInvalidArgument);
  EXPECT_EQ(qcclCommMarkStep(nullptr), qcclInvalidArgument);
  EXPECT_EQ(qcclCommSetLearningRate(nullptr, 0.1), qcclInvalidArgument);
  EXPECT_EQ(qcclCommGetStats(nullptr, &s), qcclInvalidArgument);
  EXPECT_EQ(qcclCommDestroy(nullptr), qcclInvalidArgument);
  EXPECT_STREQ(qcclGetLastError(nullptr), "comm is NULL");
}

TEST(ApiErrors, InitWithoutMpiInitIsInvalidUsage) {
  qcclComm_t comm = nullptr;
  EXPECT_EQ(qcclCommInitMpi(nullptr, nullptr, nullptr), qcclInvalidArgument);
  void* fake_comm = nullptr;  // an MPI_Comm-sized stand-in; MPI is not initialised
  EXPECT_EQ(qcclCommInitMpi(&comm, &fake_comm, nullptr), qcclInvalidUsage);
  EXPECT_NE(std::string(qcclGetLastError(nullptr)).find("MPI_Init"), std::string::npos)
      << qcclGetLastError(nullptr);
  EXPECT_EQ(comm, nullptr);
}

}  // namespace
