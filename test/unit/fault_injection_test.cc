// Fails safe: no C++ exception crosses the C API or ends the engine's
// thread. The test-only hook (core/fault_injection.h) throws at the entry
// of an API call or at the top of an engine cycle / group reduction; the
// caller gets a result code and a message instead of std::terminate, and
// the communicator keeps working. Over the in-process fake transport.
#include "core/fault_injection.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <mutex>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "engine_completion.h"
#include "fake_transport.h"
#include "qccl/qccl.h"

namespace {

using namespace qccl::fake;
using qccl::testing::arm_fault;
using qccl::testing::Fault;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

using qccl::test::Completion;

class FaultInjection : public ::testing::Test {
 protected:
  void SetUp() override {
    auto* ctx = new FakeRank(&world_, 0);
    const qcclTransportOps_t ops = fake_ops(ctx);
    qcclConfig_t config = QCCL_CONFIG_INITIALIZER;
    config.method = "none";
    config.timeoutS = "60";
    ASSERT_EQ(qcclCommInitTransport(&comm_, &ops, &config), qcclSuccess)
        << qcclGetLastError(nullptr);
  }
  void TearDown() override {
    qccl::testing::disarm_fault();
    if (comm_ != nullptr) {
      EXPECT_EQ(qcclCommDestroy(comm_), qcclSuccess) << LastError();
    }
  }
  std::string LastError() const { return qcclGetLastError(comm_); }
  // A direct allreduce that must work: the communicator is still usable.
  void ExpectAllReduceWorks() {
    std::vector<float> x = {1.5f, -2.0f, 3.25f};
    EXPECT_EQ(qcclAllReduce(x.data(), x.data(), x.size(), qcclFloat32, qcclSum, comm_, nullptr),
              qcclSuccess)
        << LastError();
    EXPECT_EQ(x, (std::vector<float>{1.5f, -2.0f, 3.25f}));
  }

  FakeWorld world_{1};
  qcclComm_t comm_ = nullptr;
};

// ---- the C API ------------------------------------------------------------------

TEST_F(FaultInjection, BadAllocInAllReduceIsSystemErrorAndTheCommStillWorks) {
  std::vector<float> x = {1.0f, 2.0f};
  arm_fault("qcclAllReduce", Fault::kBadAlloc);
  EXPECT_EQ(qcclAllReduce(x.data(), x.data(), x.size(), qcclFloat32, qcclSum, comm_, nullptr),
            qcclSystemError);
  EXPECT_FALSE(qccl::testing::fault_armed());
  EXPECT_TRUE(contains(LastError(), "out of memory in qcclAllReduce")) << LastError();
  EXPECT_TRUE(contains(LastError(), "bad_alloc")) << LastError();
  ExpectAllReduceWorks();
}

TEST_F(FaultInjection, RuntimeErrorIsInternalErrorWithItsText) {
  std::vector<float> x = {1.0f, 2.0f};
  arm_fault("qcclAllReduce", Fault::kRuntimeError, "the codec tripped over itself");
  EXPECT_EQ(qcclAllReduce(x.data(), x.data(), x.size(), qcclFloat32, qcclSum, comm_, nullptr),
            qcclInternalError);
  EXPECT_TRUE(contains(LastError(), "qcclAllReduce")) << LastError();
  EXPECT_TRUE(contains(LastError(), "the codec tripped over itself")) << LastError();
  ExpectAllReduceWorks();
}

TEST_F(FaultInjection, UnknownExceptionIsInternalError) {
  std::vector<float> x(8, 1.0f);
  arm_fault("qcclAllGather", Fault::kUnknown);
  EXPECT_EQ(qcclAllGather(x.data(), x.data(), x.size(), qcclFloat32, comm_, nullptr),
            qcclInternalError);
  EXPECT_TRUE(contains(LastError(), "qcclAllGather: unexpected exception of an unknown type"))
      << LastError();
  ExpectAllReduceWorks();
}

// The hook fires for its own function only, once.
TEST_F(FaultInjection, OnlyTheArmedFunctionFailsAndOnlyOnce) {
  arm_fault("qcclCommMarkStep", Fault::kRuntimeError, "mark");
  int count = 0;
  EXPECT_EQ(qcclCommCount(comm_, &count), qcclSuccess);
  EXPECT_EQ(count, 1);
  EXPECT_TRUE(qccl::testing::fault_armed());
  EXPECT_EQ(qcclCommMarkStep(comm_), qcclInternalError);
  EXPECT_EQ(qcclCommMarkStep(comm_), qcclSuccess) << LastError();
}

// Without a communicator the text is the thread's (qcclGetLastError(NULL)).
TEST_F(FaultInjection, InitFailsCleanlyAndLeavesTheCtxToTheCaller) {
  FakeWorld world(1);
  auto* ctx = new FakeRank(&world, 0);
  const qcclTransportOps_t ops = fake_ops(ctx);
  const int destroyed = g_destroyed.load();
  qcclComm_t comm = reinterpret_cast<qcclComm_t>(ctx);
  arm_fault("qcclCommInitTransport", Fault::kBadAlloc);
  EXPECT_EQ(qcclCommInitTransport(&comm, &ops, nullptr), qcclSystemError);
  EXPECT_TRUE(contains(qcclGetLastError(nullptr), "out of memory in qcclCommInitTransport"))
      << qcclGetLastError(nullptr);
  EXPECT_EQ(g_destroyed.load(), destroyed);
  delete ctx;
}

// Every public function that returns qcclResult_t goes through api_call:
// an armed fault for its name turns into qcclInternalError naming it.
TEST_F(FaultInjection, EveryApiFunctionCatches) {
  float x[4] = {1, 2, 3, 4};
  int value = 0;
  qcclStats_t stats{};
  qcclUniqueId id{};
  qcclComm_t other = nullptr;
  const qcclTransportOps_t no_ops = QCCL_TRANSPORT_OPS_INITIALIZER;
  const std::vector<std::pair<std::string, std::function<qcclResult_t()>>> calls = {
      {"qcclGetVersion", [&] { return qcclGetVersion(&value); }},
      {"qcclConfigValidate", [&] { return qcclConfigValidate(nullptr); }},
      {"qcclCommInitMpi", [&] { return qcclCommInitMpi(&other, nullptr, nullptr); }},
      {"qcclGetUniqueId", [&] { return qcclGetUniqueId(&id); }},
      {"qcclCommInitRank", [&] { return qcclCommInitRank(&other, 1, id, 0, nullptr); }},
      {"qcclCommInitNccl", [&] { return qcclCommInitNccl(&other, nullptr, nullptr); }},
      {"qcclCommInitTransport", [&] { return qcclCommInitTransport(&other, &no_ops, nullptr); }},
      {"qcclCommDestroy", [&] { return qcclCommDestroy(comm_); }},
      {"qcclCommCount", [&] { return qcclCommCount(comm_, &value); }},
      {"qcclCommUserRank", [&] { return qcclCommUserRank(comm_, &value); }},
      {"qcclAllReduce",
       [&] { return qcclAllReduce(x, x, 4, qcclFloat32, qcclSum, comm_, nullptr); }},
      {"qcclAllGather", [&] { return qcclAllGather(x, x, 4, qcclFloat32, comm_, nullptr); }},
      {"qcclCommMarkStep", [&] { return qcclCommMarkStep(comm_); }},
      {"qcclCommSetLearningRate", [&] { return qcclCommSetLearningRate(comm_, 0.1); }},
      {"qcclCommGetStats", [&] { return qcclCommGetStats(comm_, &stats); }},
      {"qcclEngineStart", [&] { return qcclEngineStart(comm_); }},
      {"qcclEngineStop", [&] { return qcclEngineStop(comm_); }},
      {"qcclEnqueueAllReduce",
       [&] {
         return qcclEnqueueAllReduce(comm_, "x", x, 4, qcclFloat32, qcclSum, nullptr, nullptr);
       }},
      {"qcclEnqueueAllReduceFlags",
       [&] {
         return qcclEnqueueAllReduceFlags(comm_, "x", x, 4, qcclFloat32, qcclSum, 0, nullptr,
                                          nullptr);
       }},
      {"qcclEngineGetStats", [&] { return qcclEngineGetStats(comm_, &stats); }},
  };
  // The list is every qcclResult_t function of the public header.
  std::ifstream in(std::string(QCCL_SOURCE_DIR) + "/include/qccl/qccl.h");
  ASSERT_TRUE(in.good());
  std::stringstream header;
  header << in.rdbuf();
  const std::string text = header.str();
  const std::regex declaration(R"(qcclResult_t\s+(qccl\w+)\s*\()");
  int declared = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), declaration);
       it != std::sregex_iterator(); ++it, ++declared) {
    const std::string name = (*it)[1];
    EXPECT_TRUE(
        std::any_of(calls.begin(), calls.end(), [&](const auto& c) { return c.first == name; }))
        << name << " is missing from this test";
  }
  EXPECT_EQ(declared, static_cast<int>(calls.size()));
  for (const auto& [name, call] : calls) {
    arm_fault(name, Fault::kRuntimeError, "injected into " + name);
    EXPECT_EQ(call(), qcclInternalError) << name;
    EXPECT_FALSE(qccl::testing::fault_armed()) << name << " never reached api_call";
    EXPECT_TRUE(contains(qcclGetLastError(nullptr), name + ": unexpected exception: injected"))
        << name << ": " << qcclGetLastError(nullptr);
    qccl::testing::disarm_fault();
  }
  // The communicator survived all of it (the destroy above failed before
  // its body ran).
  ExpectAllReduceWorks();
}

// ---- the engine's thread --------------------------------------------------------

// Tensor `first` completes normally; its callback (on the engine's thread,
// inside a cycle) enqueues `second` and arms a fault at `site`, so the
// fault fires in the next cycle with `second` pending.
struct TwoTensors {
  std::vector<float> a = std::vector<float>(16, 1.0f), b = std::vector<float>(16, 2.0f);
  Completion first, second;
  qcclResult_t second_enqueued = qcclInternalError;

  void run(qcclComm_t comm, const std::string& site, Fault fault, const std::string& message) {
    first.then = [this, comm, site, fault, message] {
      second_enqueued = qcclEnqueueAllReduce(comm, "second", b.data(), b.size(), qcclFloat32,
                                             qcclSum, &Completion::callback, &second);
      arm_fault(site, fault, message);
    };
    ASSERT_EQ(qcclEnqueueAllReduce(comm, "first", a.data(), a.size(), qcclFloat32, qcclSum,
                                   &Completion::callback, &first),
              qcclSuccess)
        << qcclGetLastError(comm);
    ASSERT_TRUE(first.wait(60));
    ASSERT_TRUE(second.wait(60));
  }
};

TEST_F(FaultInjection, ExceptionInAnEngineCycleFailsPendingTensorsAndStop) {
  ASSERT_EQ(qcclEngineStart(comm_), qcclSuccess) << LastError();
  TwoTensors t;
  t.run(comm_, "engine cycle", Fault::kRuntimeError, "cycle blew up");
  EXPECT_EQ(t.first.result, qcclSuccess) << t.first.error;
  EXPECT_EQ(t.second_enqueued, qcclSuccess);
  EXPECT_EQ(t.second.result, qcclInternalError);
  EXPECT_TRUE(contains(t.second.error, "engine cycle: unexpected exception: cycle blew up"))
      << t.second.error;
  EXPECT_TRUE(contains(t.second.error, "'second'")) << t.second.error;
  // The engine is broken: enqueue refuses, stop returns the error.
  EXPECT_EQ(qcclEnqueueAllReduce(comm_, "third", t.a.data(), t.a.size(), qcclFloat32, qcclSum,
                                 nullptr, nullptr),
            qcclInternalError);
  EXPECT_TRUE(contains(LastError(), "cycle blew up")) << LastError();
  EXPECT_EQ(qcclEngineStop(comm_), qcclInternalError);
  EXPECT_TRUE(contains(LastError(), "cycle blew up")) << LastError();
  // The communicator is fine, and the engine can be started again.
  ExpectAllReduceWorks();
  ASSERT_EQ(qcclEngineStart(comm_), qcclSuccess) << LastError();
  Completion again;
  ASSERT_EQ(qcclEnqueueAllReduce(comm_, "again", t.a.data(), t.a.size(), qcclFloat32, qcclSum,
                                 &Completion::callback, &again),
            qcclSuccess)
      << LastError();
  ASSERT_TRUE(again.wait(60));
  EXPECT_EQ(again.result, qcclSuccess) << again.error;
  EXPECT_EQ(qcclEngineStop(comm_), qcclSuccess) << LastError();
}

TEST_F(FaultInjection, OutOfMemoryInAnEngineCycleIsSystemError) {
  ASSERT_EQ(qcclEngineStart(comm_), qcclSuccess) << LastError();
  TwoTensors t;
  t.run(comm_, "engine cycle", Fault::kBadAlloc, "");
  EXPECT_EQ(t.second.result, qcclSystemError);
  EXPECT_TRUE(contains(t.second.error, "out of memory in engine cycle")) << t.second.error;
  EXPECT_EQ(qcclEngineStop(comm_), qcclSystemError);
  EXPECT_TRUE(contains(LastError(), "out of memory in engine cycle")) << LastError();
}

// Thrown while a group is reduced (its tensors already out of the queue):
// they still get their callbacks, with the error.
TEST_F(FaultInjection, ExceptionWhileReducingAGroupFailsItsTensors) {
  ASSERT_EQ(qcclEngineStart(comm_), qcclSuccess) << LastError();
  TwoTensors t;
  t.run(comm_, "engine execute", Fault::kUnknown, "");
  EXPECT_EQ(t.first.result, qcclSuccess) << t.first.error;
  EXPECT_EQ(t.second.result, qcclInternalError);
  EXPECT_TRUE(contains(t.second.error, "engine execute: unexpected exception")) << t.second.error;
  EXPECT_EQ(qcclEngineStop(comm_), qcclInternalError);
  EXPECT_TRUE(contains(LastError(), "engine execute")) << LastError();
}

// A callback is the caller's code; one that throws is logged and the
// engine goes on.
void throwing_callback(qcclResult_t, const char*, const char*, void*) {
  throw std::runtime_error("the framework's callback threw");
}

TEST_F(FaultInjection, ThrowingCallbackDoesNotEndTheEngine) {
  ASSERT_EQ(qcclEngineStart(comm_), qcclSuccess) << LastError();
  std::vector<float> a(16, 1.0f), b(16, 2.0f);
  ASSERT_EQ(qcclEnqueueAllReduce(comm_, "throws", a.data(), a.size(), qcclFloat32, qcclSum,
                                 &throwing_callback, nullptr),
            qcclSuccess);
  Completion next;
  ASSERT_EQ(qcclEnqueueAllReduce(comm_, "next", b.data(), b.size(), qcclFloat32, qcclSum,
                                 &Completion::callback, &next),
            qcclSuccess);
  ASSERT_TRUE(next.wait(60));
  EXPECT_EQ(next.result, qcclSuccess) << next.error;
  EXPECT_EQ(qcclEngineStop(comm_), qcclSuccess) << LastError();
}

}  // namespace
