// The engine's failure modes (docs/design.md §8): a tensor some ranks never
// submit is reported by name and rank list, a count/dtype mismatch comes
// back through the callback on every rank, bad arguments are rejected at
// enqueue, and the timeline is a well-formed trace with all four phases.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "engine_test_util.h"

namespace qccl::test {
namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(EngineErrors, EnqueueRejectsBadArguments) {
  float x[4] = {};
  CallbackLog log;
  EXPECT_EQ(qcclEnqueueAllReduce(nullptr, "a", x, 4, qcclFloat32, qcclSum, nullptr, nullptr),
            qcclInvalidArgument);
  EngineComm c;
  ASSERT_EQ(c.start_result, qcclSuccess);
  EXPECT_EQ(qcclEnqueueAllReduce(c.comm, nullptr, x, 4, qcclFloat32, qcclSum, nullptr, nullptr),
            qcclInvalidArgument);
  EXPECT_TRUE(contains(qcclGetLastError(c.comm), "name is NULL or empty"));
  EXPECT_EQ(qcclEnqueueAllReduce(c.comm, "a", nullptr, 4, qcclFloat32, qcclSum, nullptr, nullptr),
            qcclInvalidArgument);
  EXPECT_TRUE(contains(qcclGetLastError(c.comm), "buf of 'a' is NULL"));
  EXPECT_EQ(qcclEnqueueAllReduce(c.comm, "a", x, 4, static_cast<qcclDataType_t>(9), qcclSum,
                                 nullptr, nullptr),
            qcclInvalidArgument);
  EXPECT_TRUE(contains(qcclGetLastError(c.comm), "datatype 9 of 'a'"));
  EXPECT_EQ(qcclEnqueueAllReduce(c.comm, "a", x, 4, qcclFloat32, static_cast<qcclRedOp_t>(4),
                                 nullptr, nullptr),
            qcclInvalidArgument);
  EXPECT_EQ(
      qcclEnqueueAllReduceFlags(c.comm, "a", x, 4, qcclFloat32, qcclSum, 0x80, nullptr, nullptr),
      qcclInvalidArgument);
  EXPECT_EQ(qcclEngineStart(c.comm), qcclInvalidUsage);
  EXPECT_TRUE(contains(qcclGetLastError(c.comm), "already started"));
  // Destroying the communicator under a running engine is refused, not a
  // use-after-free on the cycle thread.
  EXPECT_EQ(qcclCommDestroy(c.comm), qcclInvalidUsage);
  EXPECT_TRUE(contains(qcclGetLastError(nullptr), "qcclEngineStop"));
  ASSERT_EQ(c.stop(), qcclSuccess);
  EXPECT_EQ(qcclEnqueueAllReduce(c.comm, "a", x, 4, qcclFloat32, qcclSum, nullptr, nullptr),
            qcclInvalidUsage);
  EXPECT_TRUE(contains(qcclGetLastError(c.comm), "not started"));
}

// A second enqueue of a name still pending is refused on the spot. Rank 0
// holds "dup" back from the others by submitting it only after a barrier
// that follows the check, so it is certainly still pending.
TEST(EngineErrors, SameNamePendingTwiceIsInvalidUsage) {
  // Alone, rank 0's own engine may reduce "dup" between the two enqueues.
  if (world_size() == 1) GTEST_SKIP() << "needs a peer that holds the name back";
  EngineComm c;
  ASSERT_EQ(c.start_result, qcclSuccess);
  float x[4] = {1, 2, 3, 4};
  CallbackLog log;
  if (world_rank() == 0) {
    ASSERT_EQ(qcclEnqueueAllReduce(c.comm, "dup", x, 4, qcclFloat32, qcclSum,
                                   &CallbackLog::callback, &log),
              qcclSuccess);
    EXPECT_EQ(qcclEnqueueAllReduce(c.comm, "dup", x, 4, qcclFloat32, qcclSum,
                                   &CallbackLog::callback, &log),
              qcclInvalidUsage);
    EXPECT_TRUE(contains(qcclGetLastError(c.comm), "'dup' is already pending"));
  }
  ASSERT_EQ(c.stop(), qcclSuccess);
  // Stopping fails what was never submitted everywhere.
  if (world_rank() == 0 && world_size() > 1) {
    ASSERT_EQ(log.calls(), 1u);
    EXPECT_EQ(log.done()["dup"].result, qcclInvalidUsage);
    EXPECT_TRUE(contains(log.done()["dup"].error, "stopped before every rank submitted it"));
  }
}

TEST(EngineErrors, CountOrDtypeMismatchFailsThroughCallbackOnEveryRank) {
  if (world_size() == 1) GTEST_SKIP() << "needs two ranks";
  EngineComm c;
  ASSERT_EQ(c.start_result, qcclSuccess);
  std::vector<float> a(101, 1.0f), b(100, 1.0f), ok(10, 1.0f);
  CallbackLog log;
  const size_t count = world_rank() == 1 ? 101 : 100;
  ASSERT_EQ(qcclEnqueueAllReduce(c.comm, "by_count", a.data(), count, qcclFloat32, qcclSum,
                                 &CallbackLog::callback, &log),
            qcclSuccess);
  const qcclDataType_t dtype = world_rank() == 1 ? qcclFloat16 : qcclFloat32;
  ASSERT_EQ(qcclEnqueueAllReduce(c.comm, "by_dtype", b.data(), 50, dtype, qcclSum,
                                 &CallbackLog::callback, &log),
            qcclSuccess);
  ASSERT_EQ(qcclEnqueueAllReduce(c.comm, "fine", ok.data(), ok.size(), qcclFloat32, qcclSum,
                                 &CallbackLog::callback, &log),
            qcclSuccess);
  ASSERT_TRUE(log.wait_for(3, 30)) << log.calls();
  ASSERT_EQ(c.stop(), qcclSuccess);
  auto done = log.done();
  EXPECT_EQ(done["by_count"].result, qcclInvalidUsage);
  EXPECT_TRUE(contains(done["by_count"].error,
                       "tensor 'by_count': count differs between ranks: rank 0 has 100, rank 1 "
                       "has 101"))
      << done["by_count"].error;
  EXPECT_EQ(done["by_dtype"].result, qcclInvalidUsage);
  EXPECT_TRUE(contains(done["by_dtype"].error, "dtype differs between ranks"))
      << done["by_dtype"].error;
  EXPECT_EQ(done["fine"].result, qcclSuccess);
  EXPECT_EQ(ok[0], static_cast<float>(world_size()));
}

// Rank 0 alone submits "orphan": after QCCL_TIMEOUT_S its callback gets
// qcclTimeout naming the tensor, the ranks that have it and those that do
// not; the engine keeps working.
TEST(EngineErrors, StalledTensorIsReportedByNameAndRanks) {
  if (world_size() == 1) GTEST_SKIP() << "needs two ranks";
  EngineOptions o;
  o.timeout = "2";
  EngineComm c(o);
  ASSERT_EQ(c.start_result, qcclSuccess);
  float orphan[3] = {1, 1, 1};
  CallbackLog log;
  if (world_rank() == 0) {
    ASSERT_EQ(qcclEnqueueAllReduce(c.comm, "orphan", orphan, 3, qcclFloat32, qcclSum,
                                   &CallbackLog::callback, &log),
              qcclSuccess);
    ASSERT_TRUE(log.wait_for(1, 20));
    const Completion got = log.done()["orphan"];
    EXPECT_EQ(got.result, qcclTimeout);
    std::string missing = "[1";
    for (int r = 2; r < world_size(); ++r) missing += ", " + std::to_string(r);
    EXPECT_TRUE(contains(
        got.error, "tensor 'orphan' was submitted on ranks [0] but not on ranks " + missing + "]"))
        << got.error;
  } else {
    // Past rank 0's report, so "after" itself is not stalled by the wait.
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  }
  float after[2] = {1, 2};
  CallbackLog log2;
  ASSERT_EQ(qcclEnqueueAllReduce(c.comm, "after", after, 2, qcclFloat32, qcclSum,
                                 &CallbackLog::callback, &log2),
            qcclSuccess);
  ASSERT_TRUE(log2.wait_for(1, 20));
  EXPECT_EQ(log2.done()["after"].result, qcclSuccess);
  ASSERT_EQ(c.stop(), qcclSuccess);
  EXPECT_EQ(after[1], 2.0f * world_size());
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The trace is a JSON array (chrome tracing "JSON Array Format") after
// every cycle, not only at the end: checked while the engine still runs.
TEST(EngineErrors, TimelineIsAClosedJsonArrayWithEveryPhase) {
  EngineOptions o;
  o.method = "qsgd";
  // Per process: the np1..np4 runs of this test may run at once (ctest -j).
  o.timeline = "engine_timeline_np" + std::to_string(world_size()) + "_rank" +
               std::to_string(world_rank()) + ".json";
  EngineComm c(o);
  ASSERT_EQ(c.start_result, qcclSuccess);
  std::vector<float> g = rank_input(world_rank(), 1, 5000);
  CallbackLog log;
  ASSERT_EQ(qcclEnqueueAllReduce(c.comm, "conv1.weight \"quoted\"", g.data(), g.size(), qcclFloat32,
                                 qcclSum, &CallbackLog::callback, &log),
            qcclSuccess);
  ASSERT_TRUE(log.wait_for(1, 30));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the cycle's flush
  const std::string running = read_file(o.timeline);
  ASSERT_EQ(c.stop(), qcclSuccess);
  for (const std::string& text : {running, read_file(o.timeline)}) {
    ASSERT_GE(text.size(), 4u);
    EXPECT_EQ(text.substr(0, 2), "[\n");
    EXPECT_EQ(text.substr(text.size() - 3), "\n]\n");
    for (const char* phase : {"NEGOTIATE", "QUANTIZE", "COMMUNICATE", "DEQUANTIZE"})
      EXPECT_TRUE(contains(text, std::string("\"name\":\"") + phase + "\"")) << phase;
    EXPECT_TRUE(contains(text, R"(conv1.weight \"quoted\")"));
    EXPECT_FALSE(contains(text, ",\n\n]")) << "dangling comma";
  }
  std::remove(o.timeline.c_str());
}

}  // namespace
}  // namespace qccl::test
