// The adapters of src/adapt/adapter.h: schedule, switch at s + kSwitchLag,
// identical tables on simulated ranks, no torn tables under concurrency,
// DQSGD's calibrated bits, and the fixed-table methods.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <map>
#include <random>
#include <thread>

#include "adapt/adapter.h"
#include "adapt/dqsgd.h"
#include "adapt/refit_schedule.h"
#include "adapt/stats_summary.h"

namespace qccl {
namespace {

Config adaptive_config(Method method, ModelKind model = ModelKind::kAuto) {
  Config c;
  c.method = method;
  c.bits = 3;
  c.bucket_size = 1024;
  c.model = model;
  return c;
}

// Encodes `values` with the adapter's current table and returns the stats.
EncodeStats encode_stats(const std::vector<float>& values, const EncodePlan& plan,
                         uint32_t bucket_size) {
  EncodeSpec spec;
  spec.method = Method::kAlq;
  spec.bits = plan.bits;
  spec.bucket_size = bucket_size;
  spec.levels = plan.table->levels.data();
  spec.num_levels = plan.table->size();
  spec.table_version = plan.table->version;
  std::vector<unsigned char> payload(payload_bytes(spec, values.size()));
  EncodeStats stats;
  EXPECT_EQ(encode(values.data(), DataType::kFloat32, values.size(), spec, payload.data(),
                   payload.size(), &stats),
            qcclSuccess);
  return stats;
}

std::vector<float> local_gradient(int rank, size_t n) {
  std::mt19937 rng(100 + rank);
  std::student_t_distribution<float> t(3.0f + rank);
  std::vector<float> v(n);
  for (float& x : v) x = t(rng) * (1.0f + 0.5f * rank);
  return v;
}

TEST(AdaptSchedule, PaperScheduleByDefault) {
  const Config c;
  std::vector<uint64_t> refits;
  for (uint64_t s = 0; s <= 40000; ++s) {
    if (is_refit_step(c.update_steps, c.update_every, s)) refits.push_back(s);
  }
  EXPECT_EQ(refits, (std::vector<uint64_t>{0, 100, 2000, 12000, 22000, 32000}));
  EXPECT_FALSE(is_refit_step({0, 5}, 0, 10));
  EXPECT_TRUE(is_refit_step({}, 7, 14));
}

// Runs `nranks` adapters in lock step over `steps` steps, each rank encoding
// its own data, gathering summaries in rank order; returns each rank's table
// per step.
std::vector<std::vector<std::shared_ptr<const LevelTable>>> simulate_ranks(const Config& config,
                                                                           int nranks, int steps) {
  std::vector<std::unique_ptr<Adapter>> ranks(nranks);
  for (auto& a : ranks) EXPECT_EQ(create_adapter(config, &a), qcclSuccess);
  std::vector<std::vector<std::shared_ptr<const LevelTable>>> seen(nranks);
  for (int step = 0; step < steps; ++step) {
    std::vector<double> gathered;
    bool collect = false;
    for (int r = 0; r < nranks; ++r) {
      EncodePlan plan;
      EXPECT_EQ(ranks[r]->plan(step, 0, 1, &plan), qcclSuccess);
      seen[r].push_back(plan.table);
      collect = plan.collect_stats;
      if (collect) {
        const std::vector<double> s = ranks[r]->summary(encode_stats(
            local_gradient(r + step, 8 * config.bucket_size), plan, config.bucket_size));
        gathered.insert(gathered.end(), s.begin(), s.end());
      }
    }
    if (collect) {
      for (auto& a : ranks) EXPECT_EQ(a->submit(step, gathered, nranks), qcclSuccess);
    }
  }
  return seen;
}

class AdaptRanks : public ::testing::TestWithParam<std::tuple<Method, ModelKind>> {};

TEST_P(AdaptRanks, RanksWithDifferentDataReachByteIdenticalTables) {
  Config c = adaptive_config(std::get<0>(GetParam()), std::get<1>(GetParam()));
  c.update_steps = {0, 3};
  c.update_every = 4;  // refits at 0, 3, 7
  const auto seen = simulate_ranks(c, 3, 12);
  for (int step = 0; step < 12; ++step) {
    const LevelTable& t0 = *seen[0][step];
    for (int r = 1; r < 3; ++r) {
      const LevelTable& t = *seen[r][step];
      ASSERT_EQ(t.version, t0.version) << "rank " << r << " step " << step;
      ASSERT_EQ(t.levels.size(), t0.levels.size());
      EXPECT_EQ(std::memcmp(t.levels.data(), t0.levels.data(), 4 * t.levels.size()), 0)
          << "rank " << r << " step " << step;
    }
  }
  // Tables switch exactly kSwitchLag steps after each refit: 0 -> 2, 3 -> 5, 7 -> 9.
  const std::vector<uint32_t> expected = {0, 0, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3};
  for (int step = 0; step < 12; ++step) EXPECT_EQ(seen[0][step]->version, expected[step]) << step;
  EXPECT_NE(seen[0][2]->levels, seen[0][0]->levels);  // the fit moved the levels
}

INSTANTIATE_TEST_SUITE_P(MethodsAndModels, AdaptRanks,
                         ::testing::Values(std::make_tuple(Method::kAlq, ModelKind::kMixture),
                                           std::make_tuple(Method::kAlqN, ModelKind::kTruncNorm),
                                           std::make_tuple(Method::kAlq, ModelKind::kHistogram),
                                           std::make_tuple(Method::kAmq, ModelKind::kAuto),
                                           std::make_tuple(Method::kAmqN, ModelKind::kTruncNorm)));

TEST(AdaptAdapter, ConcurrentPlansNeverSeeATornTable) {
  Config c = adaptive_config(Method::kAlq, ModelKind::kMixture);
  c.update_steps = {};
  c.update_every = 1;  // refit every step: the thread publishes constantly
  std::unique_ptr<Adapter> adapter;
  ASSERT_EQ(create_adapter(c, &adapter), qcclSuccess);
  std::atomic<uint64_t> step{0};
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::mutex seen_mutex;
  std::map<uint32_t, std::vector<float>> seen;  // version -> levels
  auto reader = [&] {
    while (!done.load()) {
      EncodePlan plan;
      if (adapter->plan(step.load(), 0, 1, &plan) != qcclSuccess) ++bad;
      const LevelTable& t = *plan.table;
      if (validate_levels(t.levels.data(), t.size(), 3) != qcclSuccess) ++bad;
      std::lock_guard<std::mutex> lock(seen_mutex);
      auto [it, inserted] = seen.emplace(t.version, t.levels);
      if (!inserted && it->second != t.levels) ++bad;  // one version, one table
    }
  };
  std::thread r1(reader), r2(reader);
  for (int s = 0; s < 40; ++s) {
    EncodePlan plan;
    ASSERT_EQ(adapter->plan(s, 0, 1, &plan), qcclSuccess);
    {
      // The hot path's own view counts too: readers may be starved on a busy
      // machine, but every step's plan waits for the fit of step s-2.
      std::lock_guard<std::mutex> lock(seen_mutex);
      auto [it, inserted] = seen.emplace(plan.table->version, plan.table->levels);
      if (!inserted && it->second != plan.table->levels) ++bad;
    }
    const auto stats = encode_stats(local_gradient(s, 4 * c.bucket_size), plan, c.bucket_size);
    ASSERT_EQ(adapter->submit(s, adapter->summary(stats), 1), qcclSuccess);
    step.store(s + 1);
  }
  done.store(true);
  r1.join();
  r2.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(seen.size(), 10u);
}

TEST(AdaptAdapter, DestroyWhileFitPendingJoinsCleanly) {
  Config c = adaptive_config(Method::kAlq, ModelKind::kMixture);
  std::unique_ptr<Adapter> adapter;
  ASSERT_EQ(create_adapter(c, &adapter), qcclSuccess);
  EncodePlan plan;
  ASSERT_EQ(adapter->plan(0, 0, 1, &plan), qcclSuccess);
  EXPECT_TRUE(plan.collect_stats);
  const auto stats = encode_stats(local_gradient(0, 4 * c.bucket_size), plan, c.bucket_size);
  ASSERT_EQ(adapter->submit(0, adapter->summary(stats), 1), qcclSuccess);
  ASSERT_EQ(adapter->plan(1, 0, 1, &plan), qcclSuccess);  // seals step 0: fit posted
  adapter.reset();
}

TEST(AdaptAdapter, SubmitRejectsWrongLengthAndOldSteps) {
  std::unique_ptr<Adapter> adapter;
  ASSERT_EQ(create_adapter(adaptive_config(Method::kAlqN), &adapter), qcclSuccess);
  EXPECT_EQ(adapter->submit(0, std::vector<double>(7, 0.0), 1), qcclInvalidArgument);
  const std::vector<double> empty = to_vector(StatsSummary{});
  EXPECT_EQ(adapter->submit(5, empty, 1), qcclSuccess);
  EXPECT_EQ(adapter->submit(4, empty, 1), qcclInvalidUsage);
}

TEST(AdaptAdapter, FitWithoutDataKeepsThePreviousTable) {
  std::unique_ptr<Adapter> adapter;
  ASSERT_EQ(create_adapter(adaptive_config(Method::kAlqN), &adapter), qcclSuccess);
  ASSERT_EQ(adapter->submit(0, to_vector(StatsSummary{}), 1), qcclSuccess);
  EncodePlan plan;
  ASSERT_EQ(adapter->plan(kSwitchLag, 0, 1, &plan), qcclSuccess);
  EXPECT_EQ(plan.table->version, 0u);
  EXPECT_LT(plan.predicted_variance, 0);
}

TEST(AdaptAdapter, FixedMethodsUseTheirTables) {
  Config c;
  c.method = Method::kNuqsgd;
  std::unique_ptr<Adapter> adapter;
  ASSERT_EQ(create_adapter(c, &adapter), qcclSuccess);
  EncodePlan plan;
  ASSERT_EQ(adapter->plan(0, 0, 1, &plan), qcclSuccess);
  EXPECT_EQ(plan.table->levels, exponential_table(3, 0.5).levels);
  EXPECT_FALSE(plan.collect_stats);
  c.method = Method::kTrn;
  ASSERT_EQ(create_adapter(c, &adapter), qcclSuccess);
  ASSERT_EQ(adapter->plan(0, 0, 1, &plan), qcclSuccess);
  EXPECT_EQ(plan.table->levels, ternary_table().levels);
  EXPECT_EQ(plan.bits, 2);
  c.method = Method::kFp16;
  ASSERT_EQ(create_adapter(c, &adapter), qcclSuccess);
  ASSERT_EQ(adapter->plan(0, 0, 1, &plan), qcclSuccess);
  EXPECT_EQ(plan.table, nullptr);
}

TEST(AdaptDqsgd, BitsRuleFollowsStepSize) {
  EXPECT_EQ(dqsgd_bits(1.0, 0.0), 1);  // ceil(log2 1) + 1
  EXPECT_EQ(dqsgd_bits(1.0, 1.0), 2);  // ceil(log2 2) + 1
  EXPECT_EQ(dqsgd_bits(1.0, 6.0), 4);  // ceil(log2 7) + 1
  EXPECT_EQ(dqsgd_bits(1.0, 1e9), 8);  // clamped
}

TEST(AdaptDqsgd, CalibrationHitsTargetMeanOverFirstWindow) {
  std::mt19937 rng(3);
  std::lognormal_distribution<double> norms(0.0, 1.0);
  std::vector<double> window(kDqsgdWindow);
  for (double& x : window) x = norms(rng);
  for (int target = 2; target <= 6; ++target) {
    const double c = calibrate_dqsgd(window, target);
    double mean = 0;
    for (double x : window) mean += dqsgd_bits(c, x);
    mean /= window.size();
    EXPECT_NEAR(mean, target, 0.1)
        << "target " << target;  // bits are integers: within a step of the mix
  }
}

TEST(AdaptDqsgd, AdapterIsDeterministicAndCalibrated) {
  Config c;
  c.method = Method::kDqsgd;
  c.bits = 4;
  std::unique_ptr<Adapter> a, b;
  ASSERT_EQ(create_adapter(c, &a), qcclSuccess);
  ASSERT_EQ(create_adapter(c, &b), qcclSuccess);
  EXPECT_TRUE(a->needs_global_norm());
  std::mt19937 rng(5);
  std::lognormal_distribution<double> norms(0.0, 0.5);
  double mean_after = 0;
  const int steps = 2 * kDqsgdWindow;
  for (int s = 0; s < steps; ++s) {
    const double norm = norms(rng);
    EncodePlan pa, pb;
    ASSERT_EQ(a->plan(s, norm, 0.1, &pa), qcclSuccess);
    ASSERT_EQ(b->plan(s, norm, 0.1, &pb), qcclSuccess);
    EXPECT_EQ(pa.bits, pb.bits);
    EXPECT_EQ(pa.table->levels, uniform_table(pa.bits).levels);
    if (s < kDqsgdWindow)
      EXPECT_EQ(pa.bits, 4);
    else
      mean_after += pa.bits;
  }
  // Same distribution of norms after the window: the mean stays near the target.
  EXPECT_NEAR(mean_after / kDqsgdWindow, 4.0, 0.5);
}

}  // namespace
}  // namespace qccl

namespace qccl {
namespace {

// A first call of a handful of elements must not fix the table until the
// next scheduled refit: its statistics are pooled with later steps', which
// keep being collected until there are enough coordinates to fit.
TEST(AdaptAdapter, TinyStepsArePooledBeforeFitting) {
  Config c = adaptive_config(Method::kAlq, ModelKind::kHistogram);
  c.update_steps = {0};
  c.update_every = 0;
  std::unique_ptr<Adapter> adapter;
  ASSERT_EQ(create_adapter(c, &adapter), qcclSuccess);
  EncodePlan plan;
  ASSERT_EQ(adapter->plan(0, 0, 1, &plan), qcclSuccess);
  ASSERT_TRUE(plan.collect_stats);
  const uint32_t initial_version = plan.table->version;
  auto stats = encode_stats(local_gradient(0, 10), plan, c.bucket_size);
  ASSERT_EQ(adapter->submit(0, adapter->summary(stats), 1), qcclSuccess);
  // Step 1 is not a scheduled refit, but the pool is too small: collect again.
  ASSERT_EQ(adapter->plan(1, 0, 1, &plan), qcclSuccess);
  EXPECT_TRUE(plan.collect_stats);
  stats = encode_stats(local_gradient(1, 4 * c.bucket_size), plan, c.bucket_size);
  ASSERT_EQ(adapter->submit(1, adapter->summary(stats), 1), qcclSuccess);
  ASSERT_EQ(adapter->plan(2, 0, 1, &plan), qcclSuccess);
  EXPECT_FALSE(plan.collect_stats);  // the pool was fitted; schedule has no more steps
  EXPECT_EQ(plan.table->version, initial_version);  // takes effect kSwitchLag after step 1
  ASSERT_EQ(adapter->plan(1 + kSwitchLag, 0, 1, &plan), qcclSuccess);
  EXPECT_GT(plan.table->version, initial_version);
}

}  // namespace
}  // namespace qccl

namespace qccl {
namespace {

TEST(AdaptSchedule, RefitDueBetweenFindsListedAndPeriodicSteps) {
  const std::vector<uint64_t> steps = {0, 100, 2000};
  EXPECT_TRUE(refit_due_between(steps, 10000, 0, 0));
  EXPECT_FALSE(refit_due_between(steps, 10000, 1, 99));
  EXPECT_TRUE(refit_due_between(steps, 10000, 1, 150));
  EXPECT_FALSE(refit_due_between(steps, 10000, 2001, 11999));
  EXPECT_TRUE(refit_due_between(steps, 10000, 2001, 12000));
  EXPECT_TRUE(refit_due_between(steps, 10000, 12001, 22005));
  EXPECT_FALSE(refit_due_between(steps, 0, 2001, 1000000));
  EXPECT_TRUE(refit_due_between({}, 7, 1, 7));
  EXPECT_FALSE(refit_due_between({}, 7, 8, 13));
  EXPECT_FALSE(refit_due_between(steps, 10000, 5, 4));
}

// Steps whose calls were all uncompressed never reach plan(); the refit
// scheduled on one of them happens on the next compressed call instead.
TEST(AdaptAdapter, RefitScheduledOnAnUnplannedStepIsNotLost) {
  Config c = adaptive_config(Method::kAlq, ModelKind::kHistogram);
  c.update_steps = {0, 100};
  c.update_every = 0;
  std::unique_ptr<Adapter> adapter;
  ASSERT_EQ(create_adapter(c, &adapter), qcclSuccess);
  EncodePlan plan;
  ASSERT_EQ(adapter->plan(150, 0, 1, &plan), qcclSuccess);  // steps 0..149 never planned
  EXPECT_TRUE(plan.collect_stats);
  ASSERT_EQ(adapter->plan(150, 0, 1, &plan), qcclSuccess);  // a second call in the same step
  EXPECT_TRUE(plan.collect_stats);
  ASSERT_EQ(adapter->plan(151, 0, 1, &plan), qcclSuccess);
  EXPECT_FALSE(plan.collect_stats);
}

}  // namespace
}  // namespace qccl
