// Configuration: defaults, environment, overrides, and one clear error per
// bad value naming the variable, the value and what is allowed.
#include "core/config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace qccl {
namespace {

std::map<std::string, std::string>* g_env = nullptr;
const char* FakeEnv(const char* name) {
  auto it = g_env->find(name);
  return it == g_env->end() ? nullptr : it->second.c_str();
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override { g_env = &env_; }
  Result Resolve(const qcclConfig_t* overrides = nullptr) {
    return resolve_config(overrides, &FakeEnv, &config_);
  }
  std::map<std::string, std::string> env_;
  Config config_;
};

TEST_F(ConfigTest, DefaultsFollowTheDesign) {
  ASSERT_EQ(Resolve(), qcclSuccess);
  EXPECT_EQ(config_.method, Method::kAlq);
  EXPECT_EQ(config_.bits, 3);
  EXPECT_EQ(config_.bucket_size, 8192u);
  EXPECT_EQ(config_.algo, Algo::kAuto);
  EXPECT_EQ(config_.min_compress_bytes, 65536u);
  EXPECT_EQ(config_.seed, 0u);
  EXPECT_EQ(config_.update_steps, (std::vector<uint64_t>{0, 100, 2000}));
  EXPECT_EQ(config_.update_every, 10000u);
  EXPECT_FALSE(config_.error_feedback);
  EXPECT_EQ(config_.fusion_threshold, 64ull << 20);
  EXPECT_DOUBLE_EQ(config_.cycle_time_ms, 1.0);
  EXPECT_EQ(config_.debug, log::Level::kWarn);
  EXPECT_DOUBLE_EQ(config_.timeout_s, 300.0);
  // Adaptive methods default to Linf (measured, docs/adaptive-levels.md).
  EXPECT_EQ(config_.effective_norm(), NormKind::kLinf);
}

TEST_F(ConfigTest, EnvironmentValuesAreParsed) {
  env_ = {{"QCCL_METHOD", "qsgdinf"},
          {"QCCL_BITS", "4"},
          {"QCCL_BUCKET_SIZE", "1024"},
          {"QCCL_ALGO", "sra"},
          {"QCCL_SEED", "42"},
          {"QCCL_UPDATE_STEPS", "5,10"},
          {"QCCL_UPDATE_EVERY", "0"},
          {"QCCL_FUSION_THRESHOLD", "8M"},
          {"QCCL_MIN_COMPRESS_BYTES", "1K"},
          {"QCCL_DEBUG", "info"},
          {"QCCL_TIMEOUT_S", "2.5"},
          {"QCCL_ERROR_FEEDBACK", "1"},
          {"QCCL_TIMELINE", "/tmp/t.json"}};
  ASSERT_EQ(Resolve(), qcclSuccess) << thread_last_error();
  EXPECT_EQ(config_.method, Method::kQsgdInf);
  EXPECT_EQ(config_.effective_norm(), NormKind::kLinf);
  EXPECT_EQ(config_.bits, 4);
  EXPECT_EQ(config_.bucket_size, 1024u);
  EXPECT_EQ(config_.algo, Algo::kSra);
  EXPECT_EQ(config_.seed, 42u);
  EXPECT_EQ(config_.update_steps, (std::vector<uint64_t>{5, 10}));
  EXPECT_EQ(config_.update_every, 0u);
  EXPECT_EQ(config_.fusion_threshold, 8ull << 20);
  EXPECT_EQ(config_.min_compress_bytes, 1024u);
  EXPECT_EQ(config_.debug, log::Level::kInfo);
  EXPECT_DOUBLE_EQ(config_.timeout_s, 2.5);
  EXPECT_TRUE(config_.error_feedback);
  EXPECT_EQ(config_.timeline, "/tmp/t.json");
}

TEST_F(ConfigTest, OverridesBeatTheEnvironment) {
  env_ = {{"QCCL_BITS", "4"}, {"QCCL_METHOD", "qsgd"}};
  qcclConfig_t overrides = QCCL_CONFIG_INITIALIZER;
  overrides.bits = "2";
  ASSERT_EQ(Resolve(&overrides), qcclSuccess);
  EXPECT_EQ(config_.bits, 2);
  EXPECT_EQ(config_.method, Method::kQsgd);
}

TEST_F(ConfigTest, OverrideWithWrongSizeIsRejected) {
  qcclConfig_t overrides = QCCL_CONFIG_INITIALIZER;
  overrides.size = 3;
  EXPECT_EQ(Resolve(&overrides), qcclInvalidArgument);
  EXPECT_NE(thread_last_error().find("QCCL_CONFIG_INITIALIZER"), std::string::npos);
}

struct BadValue {
  const char* name;
  const char* value;
};

class ConfigBadValueTest : public ConfigTest, public ::testing::WithParamInterface<BadValue> {};

TEST_P(ConfigBadValueTest, ErrorNamesVariableValueAndAllowed) {
  env_ = {{GetParam().name, GetParam().value}};
  ASSERT_EQ(Resolve(), qcclInvalidArgument);
  const std::string& msg = thread_last_error();
  EXPECT_NE(msg.find(GetParam().name), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::string("'") + GetParam().value + "'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("must be"), std::string::npos) << msg;
}

// The qcclConfig_t field of each variable.
const char* qcclConfig_t::*override_field(const std::string& name) {
  static const std::map<std::string, const char* qcclConfig_t::*> fields = {
      {"QCCL_METHOD", &qcclConfig_t::method},
      {"QCCL_BITS", &qcclConfig_t::bits},
      {"QCCL_BUCKET_SIZE", &qcclConfig_t::bucketSize},
      {"QCCL_NORM", &qcclConfig_t::norm},
      {"QCCL_ALGO", &qcclConfig_t::algo},
      {"QCCL_MIN_COMPRESS_BYTES", &qcclConfig_t::minCompressBytes},
      {"QCCL_SEED", &qcclConfig_t::seed},
      {"QCCL_UPDATE_STEPS", &qcclConfig_t::updateSteps},
      {"QCCL_UPDATE_EVERY", &qcclConfig_t::updateEvery},
      {"QCCL_MODEL", &qcclConfig_t::model},
      {"QCCL_ERROR_FEEDBACK", &qcclConfig_t::errorFeedback},
      {"QCCL_FUSION_THRESHOLD", &qcclConfig_t::fusionThreshold},
      {"QCCL_CYCLE_TIME_MS", &qcclConfig_t::cycleTimeMs},
      {"QCCL_TIMELINE", &qcclConfig_t::timeline},
      {"QCCL_DEBUG", &qcclConfig_t::debug},
      {"QCCL_TIMEOUT_S", &qcclConfig_t::timeoutS},
      {"QCCL_COMPRESS_ONE_RANK", &qcclConfig_t::compressOneRank},
      {"QCCL_ON_TIMEOUT", &qcclConfig_t::onTimeout}};
  return fields.at(name);
}

TEST_P(ConfigBadValueTest, SameErrorThroughTheOverrideStruct) {
  qcclConfig_t overrides = QCCL_CONFIG_INITIALIZER;
  // Point the matching override field at the bad value.
  overrides.*override_field(GetParam().name) = GetParam().value;
  ASSERT_EQ(Resolve(&overrides), qcclInvalidArgument);
  EXPECT_NE(thread_last_error().find(GetParam().name), std::string::npos);
  EXPECT_NE(thread_last_error().find("config override"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    EveryVariable, ConfigBadValueTest,
    ::testing::Values(BadValue{"QCCL_METHOD", "zip"}, BadValue{"QCCL_BITS", "12"},
                      BadValue{"QCCL_BITS", "0"}, BadValue{"QCCL_BITS", "3x"},
                      BadValue{"QCCL_BUCKET_SIZE", "100"}, BadValue{"QCCL_BUCKET_SIZE", "-64"},
                      BadValue{"QCCL_NORM", "l1"}, BadValue{"QCCL_ALGO", "ring"},
                      BadValue{"QCCL_MIN_COMPRESS_BYTES", "12Q"}, BadValue{"QCCL_SEED", "-1"},
                      BadValue{"QCCL_UPDATE_STEPS", "100,5"}, BadValue{"QCCL_UPDATE_STEPS", "a,b"},
                      BadValue{"QCCL_UPDATE_EVERY", "often"}, BadValue{"QCCL_MODEL", "gauss"},
                      BadValue{"QCCL_ERROR_FEEDBACK", "yes please"},
                      BadValue{"QCCL_FUSION_THRESHOLD", "0"}, BadValue{"QCCL_CYCLE_TIME_MS", "-1"},
                      BadValue{"QCCL_DEBUG", "LOUD"}, BadValue{"QCCL_TIMEOUT_S", "0"},
                      BadValue{"QCCL_TIMEOUT_S", "nan"}));

// Fails safe (strictness): every variable is read in exactly its
// documented form. Whitespace, signs, exponents on integers, overflow and
// garbage are rejected for every variable of the parameter table, through
// the environment and through qcclConfig_t alike; the error names the
// variable, quotes the value and says what is allowed.
struct StrictCase {
  std::string name;
  std::string value;
  std::string label;  // for the test name
};

// Values that are valid for no variable, plus "1e3" where a number is an
// integer or a byte count (QCCL_CYCLE_TIME_MS and QCCL_TIMEOUT_S take a
// decimal number, and 1e3 is in their range).
std::vector<StrictCase> strict_cases() {
  const std::vector<std::pair<std::string, std::string>> common = {
      {"", "empty"},
      {" 1", "leading_space"},
      {"1 ", "trailing_space"},
      {"\t1", "leading_tab"},
      {"1\n", "trailing_newline"},
      {"+1", "plus_sign"},
      {"-1", "minus_sign"},
      {" -1", "space_minus"},
      {"99999999999999999999999", "overflow"},
      {"abc", "garbage"},
      {"0x10", "hex"},
      {"1,", "trailing_comma"}};
  std::vector<StrictCase> cases;
  for (const ParamInfo& p : config_params()) {
    const std::string name = p.name;
    if (name == "QCCL_TIMELINE") {
      // A path: any name is a file name, so only unwritable paths are bad
      // (empty means no timeline). More in timeline_check_test.cc.
      cases.push_back({name, "/nonexistent-qccl-dir/x.json", "missing_directory"});
      cases.push_back({name, "/", "root_directory"});
      cases.push_back({name, "/tmp", "a_directory"});
      cases.push_back({name, "/dev/null/x.json", "file_as_directory"});
      continue;
    }
    for (const auto& [value, label] : common) cases.push_back({name, value, label});
    if (name != "QCCL_CYCLE_TIME_MS" && name != "QCCL_TIMEOUT_S") {
      cases.push_back({name, "1e3", "exponent"});
      cases.push_back({name, "1.0", "fraction"});
    } else {
      for (const auto& [value, label] :
           std::vector<std::pair<std::string, std::string>>{{"inf", "inf"},
                                                            {"nan", "nan"},
                                                            {"0x1p3", "hex_float"},
                                                            {"1e", "bare_exponent"},
                                                            {".", "lone_point"},
                                                            {"1e999", "double_overflow"},
                                                            {"1.5.2", "two_points"}})
        cases.push_back({name, value, label});
    }
  }
  return cases;
}

class ConfigStrictTest : public ConfigTest, public ::testing::WithParamInterface<StrictCase> {};

TEST_P(ConfigStrictTest, RejectedFromTheEnvironment) {
  env_ = {{GetParam().name, GetParam().value}};
  ASSERT_EQ(Resolve(), qcclInvalidArgument) << GetParam().name << "='" << GetParam().value << "'";
  const std::string& msg = thread_last_error();
  EXPECT_NE(msg.find(GetParam().name + " must be "), std::string::npos) << msg;
  EXPECT_NE(msg.find("got '" + GetParam().value + "'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("environment variable"), std::string::npos) << msg;
}

TEST_P(ConfigStrictTest, RejectedAsAConfigOverride) {
  qcclConfig_t overrides = QCCL_CONFIG_INITIALIZER;
  overrides.*override_field(GetParam().name) = GetParam().value.c_str();
  ASSERT_EQ(Resolve(&overrides), qcclInvalidArgument)
      << GetParam().name << "='" << GetParam().value << "'";
  const std::string& msg = thread_last_error();
  EXPECT_NE(msg.find(GetParam().name + " must be "), std::string::npos) << msg;
  EXPECT_NE(msg.find("got '" + GetParam().value + "'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("config override"), std::string::npos) << msg;
}

INSTANTIATE_TEST_SUITE_P(EveryVariable, ConfigStrictTest, ::testing::ValuesIn(strict_cases()),
                         [](const ::testing::TestParamInfo<StrictCase>& info) {
                           return info.param.name + "_" + info.param.label;
                         });

TEST(ConfigStrict, EveryVariableOfTheTableIsCovered) {
  const std::vector<StrictCase> cases = strict_cases();
  for (const ParamInfo& p : config_params()) {
    const bool covered = std::any_of(cases.begin(), cases.end(),
                                     [&](const StrictCase& c) { return c.name == p.name; });
    EXPECT_TRUE(covered) << p.name;
  }
}

// The error names the range, so an overflowing value says what fits.
TEST_F(ConfigTest, OverflowErrorNamesTheRange) {
  env_ = {{"QCCL_SEED", "18446744073709551616"}};
  ASSERT_EQ(Resolve(), qcclInvalidArgument);
  EXPECT_NE(thread_last_error().find("0..18446744073709551615"), std::string::npos)
      << thread_last_error();
  env_ = {{"QCCL_MIN_COMPRESS_BYTES", "17179869184G"}};  // 2^64 bytes
  ASSERT_EQ(Resolve(), qcclInvalidArgument);
  EXPECT_NE(thread_last_error().find("18446744073709551615 bytes"), std::string::npos)
      << thread_last_error();
}

// The documented forms (and the existing case rules) still parse.
TEST_F(ConfigTest, DocumentedFormsStillParse) {
  env_ = {{"QCCL_SEED", "18446744073709551615"},
          {"QCCL_MIN_COMPRESS_BYTES", "16777215G"},
          {"QCCL_FUSION_THRESHOLD", "64k"},
          {"QCCL_UPDATE_STEPS", "none"},
          {"QCCL_UPDATE_EVERY", "007"},
          {"QCCL_CYCLE_TIME_MS", "1e-05"},  // Python's str(0.00001)
          {"QCCL_TIMEOUT_S", "100.0"},
          {"QCCL_DEBUG", "Info"},
          {"QCCL_ERROR_FEEDBACK", "true"},
          {"QCCL_COMPRESS_ONE_RANK", "0"},
          {"QCCL_ON_TIMEOUT", "abort"}};
  ASSERT_EQ(Resolve(), qcclSuccess) << thread_last_error();
  EXPECT_TRUE(config_.abort_on_timeout);
  EXPECT_EQ(config_.seed, ~0ull);
  EXPECT_EQ(config_.min_compress_bytes, 16777215ull << 30);
  EXPECT_EQ(config_.fusion_threshold, 64ull << 10);
  EXPECT_TRUE(config_.update_steps.empty());
  EXPECT_EQ(config_.update_every, 7u);
  EXPECT_DOUBLE_EQ(config_.cycle_time_ms, 1e-5);
  EXPECT_DOUBLE_EQ(config_.timeout_s, 100.0);
  EXPECT_EQ(config_.debug, log::Level::kInfo);
  EXPECT_TRUE(config_.error_feedback);
  for (const char* t : {"2.5", ".5", "2.", "1E2", "3e+1"}) {
    env_ = {{"QCCL_TIMEOUT_S", t}};
    EXPECT_EQ(Resolve(), qcclSuccess) << t << ": " << thread_last_error();
  }
  EXPECT_DOUBLE_EQ(config_.timeout_s, 30.0);
}

TEST_F(ConfigTest, TernGradNeedsTwoBits) {
  env_ = {{"QCCL_METHOD", "trn"}, {"QCCL_BITS", "1"}};
  EXPECT_EQ(Resolve(), qcclInvalidArgument);
  EXPECT_NE(thread_last_error().find("trn"), std::string::npos);
}

TEST_F(ConfigTest, ModelOnlyForAdaptiveMethods) {
  env_ = {{"QCCL_METHOD", "qsgd"}, {"QCCL_MODEL", "histogram"}};
  EXPECT_EQ(Resolve(), qcclInvalidArgument);
  EXPECT_NE(thread_last_error().find("QCCL_MODEL"), std::string::npos);
}

TEST_F(ConfigTest, DescribeListsEveryParameter) {
  ASSERT_EQ(Resolve(), qcclSuccess);
  const std::string text = describe_config(config_);
  for (const ParamInfo& p : config_params()) EXPECT_NE(text.find(p.name), std::string::npos);
}

}  // namespace
}  // namespace qccl

#include <fstream>
#include <sstream>

namespace qccl {
namespace {

// The README's configuration table lists every parameter with its default
// (docs/style.md: the table is checked against the one parameter table).
TEST(ConfigDocs, ReadmeDocumentsEveryVariable) {
  std::ifstream in(std::string(QCCL_SOURCE_DIR) + "/README.md");
  ASSERT_TRUE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  const std::string readme = text.str();
  for (const ParamInfo& p : config_params()) {
    const std::string row = std::string("| `") + p.name + "` | ";
    const size_t at = readme.find(row);
    ASSERT_NE(at, std::string::npos) << p.name << " missing from README";
    const std::string rest = readme.substr(at + row.size(), 40);
    if (p.default_value[0] != '\0') {
      EXPECT_EQ(rest.rfind(std::string("`") + p.default_value + "`", 0), 0u)
          << p.name << " default in README differs from " << p.default_value;
    }
  }
}

}  // namespace
}  // namespace qccl
