// The NCCL communicator calls (qcclGetUniqueId, qcclCommInitRank,
// qcclCommInitNccl) reject bad arguments with a specific code and a message
// naming the argument, in every build; a build without NCCL says so with
// qcclInvalidUsage. Needs no GPU and no MPI.
#include <gtest/gtest.h>

#include <string>

#include "qccl/qccl.h"

namespace {

std::string LastError() {
  return qcclGetLastError(nullptr);
}

TEST(NcclApiErrors, GetUniqueIdRejectsNullId) {
  EXPECT_EQ(qcclGetUniqueId(nullptr), qcclInvalidArgument);
  EXPECT_EQ(LastError(), "uniqueId is NULL");
}

TEST(NcclApiErrors, CommInitRankRejectsNullOutput) {
  qcclUniqueId id = {};
  EXPECT_EQ(qcclCommInitRank(nullptr, 1, id, 0, nullptr), qcclInvalidArgument);
  EXPECT_NE(LastError().find("comm (the output pointer) is NULL"), std::string::npos)
      << LastError();
}

TEST(NcclApiErrors, CommInitRankRejectsBadRankCountAndRank) {
  qcclUniqueId id = {};
  qcclComm_t comm = reinterpret_cast<qcclComm_t>(0x1);
  EXPECT_EQ(qcclCommInitRank(&comm, 0, id, 0, nullptr), qcclInvalidArgument);
  EXPECT_EQ(comm, nullptr);  // cleared on failure
  EXPECT_NE(LastError().find("nranks is 0"), std::string::npos) << LastError();
  EXPECT_EQ(qcclCommInitRank(&comm, 2, id, 2, nullptr), qcclInvalidArgument);
  EXPECT_NE(LastError().find("rank 2 is outside [0, nranks = 2)"), std::string::npos)
      << LastError();
  EXPECT_EQ(qcclCommInitRank(&comm, 2, id, -1, nullptr), qcclInvalidArgument);
}

TEST(NcclApiErrors, CommInitRankRejectsWrongConfigSize) {
  qcclUniqueId id = {};
  qcclComm_t comm = nullptr;
  qcclConfig_t config = QCCL_CONFIG_INITIALIZER;
  config.size = 3;
  EXPECT_EQ(qcclCommInitRank(&comm, 1, id, 0, &config), qcclInvalidArgument);
  EXPECT_NE(LastError().find("config->size is 3"), std::string::npos) << LastError();
}

TEST(NcclApiErrors, CommInitNcclRejectsNullArguments) {
  qcclComm_t comm = nullptr;
  int not_a_comm = 0;
  EXPECT_EQ(qcclCommInitNccl(nullptr, &not_a_comm, nullptr), qcclInvalidArgument);
  EXPECT_NE(LastError().find("comm (the output pointer) is NULL"), std::string::npos)
      << LastError();
  EXPECT_EQ(qcclCommInitNccl(&comm, nullptr, nullptr), qcclInvalidArgument);
  EXPECT_NE(LastError().find("ncclComm is NULL"), std::string::npos) << LastError();
  EXPECT_EQ(comm, nullptr);
}

#ifndef QCCL_HAVE_NCCL
TEST(NcclApiErrors, WithoutNcclEveryCallIsInvalidUsage) {
  qcclUniqueId id = {};
  qcclComm_t comm = nullptr;
  int not_a_comm = 0;
  EXPECT_EQ(qcclGetUniqueId(&id), qcclInvalidUsage);
  EXPECT_NE(LastError().find("built without NCCL"), std::string::npos) << LastError();
  EXPECT_EQ(qcclCommInitRank(&comm, 1, id, 0, nullptr), qcclInvalidUsage);
  EXPECT_NE(LastError().find("built without NCCL"), std::string::npos) << LastError();
  EXPECT_EQ(qcclCommInitNccl(&comm, &not_a_comm, nullptr), qcclInvalidUsage);
  EXPECT_NE(LastError().find("built without NCCL"), std::string::npos) << LastError();
  EXPECT_EQ(comm, nullptr);
}
#endif

}  // namespace
