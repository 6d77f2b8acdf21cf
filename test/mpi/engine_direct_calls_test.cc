// Direct collectives on a communicator whose engine is running
// (docs/engine.md "Its own communicator"): the engine runs on a duplicate
// of the communicator's transport with its own adapter, so one thread can
// call qcclAllReduce while the engine reduces enqueued tensors on the same
// qcclComm_t. Run under TSan in CI (engine_.*_np[234]).
#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine_test_util.h"

namespace qccl::test {
namespace {

// Small integers: sums over 4 ranks are exact in float32, so method none
// must return them exactly.
float exact_value(int rank, int call, size_t i) {
  return static_cast<float>((rank + 1) * static_cast<int>((i + call) % 11) - 5);
}

std::vector<float> exact_input(int rank, int call, size_t count) {
  std::vector<float> v(count);
  for (size_t i = 0; i < count; ++i) v[i] = exact_value(rank, call, i);
  return v;
}

// Describes the first element of `got` that differs from the exact sum
// over ranks of exact_input(.., call, ..); empty when all match.
std::string first_wrong_element(const std::vector<float>& got, int call, const std::string& what) {
  for (size_t i = 0; i < got.size(); ++i) {
    float sum = 0;
    for (int r = 0; r < world_size(); ++r) sum += exact_value(r, call, i);
    if (got[i] != sum)
      return what + "[" + std::to_string(i) + "] = " + std::to_string(got[i]) + ", expected " +
             std::to_string(sum);
  }
  return {};
}

// Engine tensor names and call ids never collide with the direct calls'.
constexpr int kEngineCallBase = 100000;

TEST(EngineDirectCalls, DirectAllReduceBesideTheEngineOnTheSameCommunicatorIsExact) {
  EngineComm c;  // method none
  ASSERT_EQ(c.init_result, qcclSuccess);
  ASSERT_EQ(c.start_result, qcclSuccess) << qcclGetLastError(c.comm);
  const int rank = world_rank();
  constexpr int kDirectCalls = 60, kRounds = 6, kPerRound = 12;

  std::vector<std::string> direct_errors;  // owned by the direct thread until join
  std::thread direct([&] {
    for (int call = 0; call < kDirectCalls; ++call) {
      const size_t count = 1 + (static_cast<size_t>(call) * 977) % 6000;
      std::vector<float> v = exact_input(rank, call, count);
      const qcclResult_t r =
          qcclAllReduce(v.data(), v.data(), count, qcclFloat32, qcclSum, c.comm, nullptr);
      if (r != qcclSuccess) {
        // This thread's own message (the communicator's is shared).
        direct_errors.push_back("call " + std::to_string(call) + ": " + qcclGetErrorString(r) +
                                ": " + qcclGetLastError(nullptr));
        return;
      }
      const std::string wrong = first_wrong_element(v, call, "direct call " + std::to_string(call));
      if (!wrong.empty()) direct_errors.push_back(wrong);
    }
  });

  // Meanwhile: rounds of named tensors, each round in a per-rank order.
  std::mt19937 shuffle(4242 + 13 * rank);
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::vector<float>> tensors(kPerRound);
    std::vector<int> order(kPerRound);
    for (int k = 0; k < kPerRound; ++k) {
      const int id = kEngineCallBase + round * kPerRound + k;
      tensors[k] = exact_input(rank, id, 1 + (static_cast<size_t>(id) * 131) % 3000);
      order[k] = k;
    }
    std::shuffle(order.begin(), order.end(), shuffle);
    CallbackLog log;
    for (int k : order) {
      const std::string name = "r" + std::to_string(round) + ".t" + std::to_string(k);
      ASSERT_EQ(qcclEnqueueAllReduce(c.comm, name.c_str(), tensors[k].data(), tensors[k].size(),
                                     qcclFloat32, qcclSum, &CallbackLog::callback, &log),
                qcclSuccess)
          << qcclGetLastError(c.comm);
    }
    ASSERT_TRUE(log.wait_for(kPerRound, 120)) << log.calls() << " callbacks in round " << round;
    for (const auto& [name, completion] : log.done())
      EXPECT_EQ(completion.result, qcclSuccess) << name << ": " << completion.error;
    for (int k = 0; k < kPerRound; ++k) {
      const int id = kEngineCallBase + round * kPerRound + k;
      EXPECT_EQ(first_wrong_element(tensors[k], id, "engine tensor " + std::to_string(id)), "");
    }
  }
  direct.join();
  for (const std::string& e : direct_errors) ADD_FAILURE() << e;

  // The engine's calls count in its own context, not the communicator's.
  qcclStats_t comm_stats;
  ASSERT_EQ(qcclCommGetStats(c.comm, &comm_stats), qcclSuccess);
  EXPECT_EQ(comm_stats.calls, static_cast<uint64_t>(kDirectCalls));
  ASSERT_EQ(c.stop(), qcclSuccess) << qcclGetLastError(c.comm);
}

// Adaptive levels (alq, refitted every step): the engine and the direct
// calls each refit their own table from their own statistics and steps.
// One adapter shared between them would see two step counters advancing at
// different rates (3 direct steps per engine step here) and a per-rank
// interleaving of calls: statistics submitted for an older step fail, and
// tables diverge between ranks. Checked: every call succeeds, every result
// is identical on every rank, both have refitted (table version > 0) and
// the results are near the exact sum (3-bit alq on 256-element buckets:
// relative error ~0.3 for these inputs; 0.6 catches a wrong table or a
// lost tensor, which give errors of order 1).
TEST(EngineDirectCalls, AdaptiveLevelsOfEngineAndDirectCallsAgreeAcrossRanks) {
  if (world_size() == 1) GTEST_SKIP() << "one rank never compresses";
  EngineOptions o;
  o.method = "alq";
  o.bits = "3";
  o.update_steps = "0";  // and then every step
  o.update_every = "1";
  EngineComm c(o);
  ASSERT_EQ(c.init_result, qcclSuccess);
  ASSERT_EQ(c.start_result, qcclSuccess) << qcclGetLastError(c.comm);
  const int rank = world_rank();
  constexpr int kSteps = 8, kDirectSteps = 3 * kSteps;
  constexpr size_t kCount = 6000;  // above the adapter's 4096-coordinate minimum fit

  std::vector<std::vector<float>> direct_results(kDirectSteps);
  std::vector<std::string> direct_errors;
  std::thread direct([&] {
    for (int step = 0; step < kDirectSteps; ++step) {
      direct_results[step] = rank_input(rank, step, kCount);
      const qcclResult_t r = qcclAllReduce(direct_results[step].data(), direct_results[step].data(),
                                           kCount, qcclFloat32, qcclSum, c.comm, nullptr);
      if (r != qcclSuccess) {
        direct_errors.push_back("step " + std::to_string(step) + ": " + qcclGetErrorString(r) +
                                ": " + qcclGetLastError(nullptr));
        return;
      }
      if (qcclCommMarkStep(c.comm) != qcclSuccess) direct_errors.push_back("mark step failed");
    }
  });
  std::vector<std::vector<float>> engine_results(kSteps);
  for (int step = 0; step < kSteps; ++step) {
    engine_results[step] = rank_input(rank, kEngineCallBase + step, kCount);
    CallbackLog log;
    ASSERT_EQ(qcclEnqueueAllReduce(c.comm, "w", engine_results[step].data(), kCount, qcclFloat32,
                                   qcclSum, &CallbackLog::callback, &log),
              qcclSuccess);
    ASSERT_TRUE(log.wait_for(1, 120));
    EXPECT_EQ(log.done()["w"].result, qcclSuccess) << log.done()["w"].error;
  }
  direct.join();
  for (const std::string& e : direct_errors) ADD_FAILURE() << e;
  ASSERT_TRUE(direct_errors.empty());

  qcclStats_t comm_stats, engine_stats;
  ASSERT_EQ(qcclCommGetStats(c.comm, &comm_stats), qcclSuccess);
  ASSERT_EQ(qcclEngineGetStats(c.comm, &engine_stats), qcclSuccess);
  ASSERT_EQ(c.stop(), qcclSuccess) << qcclGetLastError(c.comm);
  EXPECT_EQ(comm_stats.compressedCalls, static_cast<uint64_t>(kDirectSteps));
  EXPECT_EQ(engine_stats.compressedCalls, static_cast<uint64_t>(kSteps));
  // Each adapter posts one refit per step of its own (version s + 1 from
  // step s's statistics), due kSwitchLag = 2 steps later: the last call of
  // step S encodes with version S - 1. A shared adapter would count the
  // versions of both streams.
  EXPECT_EQ(comm_stats.tableVersion, static_cast<uint32_t>(kDirectSteps - 2))
      << "the direct calls' adapter refits once per direct step";
  EXPECT_EQ(engine_stats.tableVersion, static_cast<uint32_t>(kSteps - 2))
      << "the engine's adapter refits once per engine step";

  for (int step = 0; step < kDirectSteps; ++step) {
    EXPECT_TRUE(identical_on_all_ranks(direct_results[step].data(), kCount * sizeof(float)))
        << "direct step " << step;
    EXPECT_LT(relative_error(direct_results[step], exact_sum(world_size(), step, kCount)), 0.6)
        << "direct step " << step;
  }
  for (int step = 0; step < kSteps; ++step) {
    EXPECT_TRUE(identical_on_all_ranks(engine_results[step].data(), kCount * sizeof(float)))
        << "engine step " << step;
    EXPECT_LT(relative_error(engine_results[step],
                             exact_sum(world_size(), kEngineCallBase + step, kCount)),
              0.6)
        << "engine step " << step;
  }
}

// The engine's thread runs MPI beside the caller's: MPI must provide
// MPI_THREAD_MULTIPLE. Default runs check the start succeeds; the
// engine_direct_calls_serialized_np2 entry (MPI_THREAD_SERIALIZED) checks
// the refusal, on every rank, and that the communicator stays usable.
TEST(EngineDirectCalls, StartNeedsMpiThreadMultiple) {
  int provided = 0;
  MPI_Query_thread(&provided);
  EngineComm c;
  ASSERT_EQ(c.init_result, qcclSuccess);
  if (provided == MPI_THREAD_MULTIPLE) {
    EXPECT_EQ(c.start_result, qcclSuccess) << qcclGetLastError(c.comm);
    return;
  }
  EXPECT_EQ(c.start_result, qcclInvalidUsage);
  const std::string error = qcclGetLastError(c.comm);
  EXPECT_NE(error.find("needs MPI_THREAD_MULTIPLE"), std::string::npos) << error;
  EXPECT_NE(error.find("MPI_THREAD_SERIALIZED"), std::string::npos) << error;
  std::vector<float> v = exact_input(world_rank(), 7, 100);
  ASSERT_EQ(qcclAllReduce(v.data(), v.data(), v.size(), qcclFloat32, qcclSum, c.comm, nullptr),
            qcclSuccess);
  EXPECT_EQ(first_wrong_element(v, 7, "after the refused start"), "");
}

}  // namespace
}  // namespace qccl::test
