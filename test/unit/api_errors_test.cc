// The C API without a communicator: error names, version, config checks
// and argument errors that need no MPI.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <memory>
#include <sstream>
#include <string>

#include "core/config.h"
#include "core/logging.h"
#include "qccl/qccl.h"

namespace {

TEST(ApiErrors, EveryCodeHasADistinctName) {
  for (int a = 0; a < qcclNumResults; ++a)
    for (int b = a + 1; b < qcclNumResults; ++b)
      EXPECT_STRNE(qcclGetErrorString(static_cast<qcclResult_t>(a)),
                   qcclGetErrorString(static_cast<qcclResult_t>(b)));
}

// A hint "run with QCCL_DEBUG=X" must name a level that logs more than the
// default, and at X a failing call must log more than its message: where
// it failed.
TEST(ApiErrors, DebugLevelHintsNameALevelThatAddsDetail) {
  const qccl::log::Level default_level = qccl::Config().debug;
  const std::string key = "QCCL_DEBUG=";
  int hints = 0;
  for (int code = 0; code < qcclNumResults; ++code) {
    const std::string text = qcclGetErrorString(static_cast<qcclResult_t>(code));
    const size_t at = text.find(key);
    if (at == std::string::npos) continue;
    ++hints;
    const size_t begin = at + key.size();
    const std::string name = text.substr(begin, text.find_first_of(" )", begin) - begin);
    qccl::log::Level hinted;
    ASSERT_TRUE(qccl::log::parse_level(name, &hinted)) << text;
    EXPECT_LT(static_cast<int>(hinted), static_cast<int>(default_level))
        << text << ": the default level " << qccl::log::level_name(default_level)
        << " adds nothing";

    std::ostringstream hinted_log, default_log;
    const auto capture = [](std::ostringstream* out, qccl::log::Level level) {
      auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*out);
      auto& sinks = qccl::log::logger().sinks();
      const qccl::log::Level before = qccl::log::level();
      qccl::log::set_level(level);
      sinks.push_back(sink);
      EXPECT_EQ(qcclEngineStop(nullptr), qcclInvalidArgument);  // fails two calls deep
      qccl::log::logger().flush();
      sinks.pop_back();
      qccl::log::set_level(before);
    };
    capture(&default_log, default_level);
    capture(&hinted_log, hinted);
    EXPECT_NE(default_log.str().find("comm is NULL"), std::string::npos) << default_log.str();
    EXPECT_EQ(default_log.str().find("check_comm"), std::string::npos) << default_log.str();
    EXPECT_NE(hinted_log.str().find("check_comm"), std::string::npos)
        << text << ": at " << name << " the log says only:\n"
        << hinted_log.str();
  }
  EXPECT_GE(hints, 2);  // invalid argument and invalid usage at least
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
