// CallbackTransport (src/transport/callback_transport.h) over the in-process
// fake transport: each optional callback's fallback delivers what the
// callback would, a failing callback is reported with its text and breaks
// the transport, and duplicates own their ctx. N = 1..4 threads as ranks.
#include "transport/callback_transport.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "codec/half_cast.h"
#include "fake_transport.h"

namespace qccl {
namespace {

using namespace fake;

// A transport over `rank` that owns it (the test's ctx is deleted by destroy).
std::unique_ptr<CallbackTransport> make_transport(FakeRank* rank, unsigned missing) {
  const qcclTransportOps_t ops = fake_ops(rank, missing);
  std::unique_ptr<CallbackTransport> t;
  EXPECT_EQ(CallbackTransport::create(&ops, &t), qcclSuccess) << thread_last_error();
  t->own_context();
  return t;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class CallbackTransportRanks : public ::testing::TestWithParam<int> {};
INSTANTIATE_TEST_SUITE_P(N, CallbackTransportRanks, ::testing::Values(1, 2, 3, 4));

// Bytes rank `from` sends rank `to`: uneven, some empty.
uint64_t piece_bytes(int from, int to) {
  return static_cast<uint64_t>((from * 3 + to * 5 + 1) % 7);
}
unsigned char piece_byte(int from, int to, uint64_t k) {
  return static_cast<unsigned char>(from * 64 + to * 16 + k);
}

TEST_P(CallbackTransportRanks, AlltoallvFallbackDeliversWhatTheCallbackDelivers) {
  const int n = GetParam();
  for (unsigned missing : {kAllPresent, kNoAlltoallv}) {
    FakeWorld world(n);
    run_ranks(n, [&](int me) {
      auto* ctx = new FakeRank(&world, me);
      auto t = make_transport(ctx, missing);
      // Pieces stored in reverse destination order with gaps, so neither
      // side's offsets are a prefix sum.
      std::vector<uint64_t> send_bytes(n), send_offsets(n), recv_bytes(n), recv_offsets(n);
      uint64_t at = 0;
      for (int j = n - 1; j >= 0; --j) {
        send_bytes[j] = piece_bytes(me, j);
        send_offsets[j] = at;
        at += send_bytes[j] + 3;
      }
      std::vector<unsigned char> send(at, 0xEE);
      for (int j = 0; j < n; ++j)
        for (uint64_t k = 0; k < send_bytes[j]; ++k)
          send[send_offsets[j] + k] = piece_byte(me, j, k);
      at = 2;
      for (int r = 0; r < n; ++r) {
        recv_bytes[r] = piece_bytes(r, me);
        recv_offsets[r] = at;
        at += recv_bytes[r] + 1;
      }
      std::vector<unsigned char> recv(at, 0xAA);
      ASSERT_EQ(t->alltoallv(send.data(), send_bytes.data(), send_offsets.data(), recv.data(),
                             recv_bytes.data(), recv_offsets.data()),
                qcclSuccess)
          << thread_last_error();
      std::vector<unsigned char> expected(at, 0xAA);  // gaps untouched
      for (int r = 0; r < n; ++r)
        for (uint64_t k = 0; k < recv_bytes[r]; ++k)
          expected[recv_offsets[r] + k] = piece_byte(r, me, k);
      EXPECT_EQ(recv, expected) << "rank " << me << " missing=" << missing;
      EXPECT_EQ(ctx->calls["alltoallv"], missing ? 0 : 1);
      EXPECT_EQ(ctx->calls["allgatherv"], missing ? 2 : 0);
    });
  }
}

std::vector<double> rank_doubles(int rank) {
  std::mt19937 rng(100 + rank);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> v(17);
  for (size_t i = 0; i < v.size(); ++i) v[i] = u(rng) * std::pow(10.0, static_cast<int>(i % 9) - 4);
  return v;
}

TEST_P(CallbackTransportRanks, AllreduceSumFallbackIsTheRankOrderedSum) {
  const int n = GetParam();
  std::vector<double> expected = rank_doubles(0);
  for (int r = 1; r < n; ++r)
    for (size_t i = 0; i < expected.size(); ++i) expected[i] += rank_doubles(r)[i];
  FakeWorld world(n);
  run_ranks(n, [&](int me) {
    auto* ctx = new FakeRank(&world, me);
    auto t = make_transport(ctx, kNoAllreduceSum);
    std::vector<double> v = rank_doubles(me);
    ASSERT_EQ(t->allreduce_sum(v.data(), v.size()), qcclSuccess) << thread_last_error();
    // Exact: the same additions in the same order on every rank.
    for (size_t i = 0; i < v.size(); ++i)
      EXPECT_EQ(v[i], expected[i]) << "rank " << me << " i=" << i;
    EXPECT_EQ(ctx->calls["allreduceSum"], 0);
    EXPECT_EQ(ctx->calls["allgatherv"], 1);
  });
}

// Float values of rank r, element i, spread over magnitudes so that the
// order of the additions shows in the bits.
float rank_value(int rank, size_t i) {
  std::mt19937 rng(static_cast<uint32_t>(7 + rank * 1000 + i));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  return u(rng) * std::pow(4.0f, static_cast<int>((i + rank) % 7) - 3);
}

uint16_t to_half(float f, DataType dtype) {
  return dtype == DataType::kFloat16 ? float_to_fp16(f) : float_to_bf16(f);
}
float from_half(uint16_t h, DataType dtype) {
  return dtype == DataType::kFloat16 ? fp16_to_float(h) : bf16_to_float(h);
}

TEST_P(CallbackTransportRanks, PassthroughFallbackIsARankOrderedFloatSum) {
  const int n = GetParam();
  constexpr size_t kCount = 1001;
  for (DataType dtype : {DataType::kFloat32, DataType::kFloat16, DataType::kBfloat16}) {
    // Input bytes per rank, and the expected sum: widened, summed in rank
    // order in float32, rounded back once.
    std::vector<std::vector<unsigned char>> inputs(n);
    std::vector<float> sum(kCount, 0.0f);
    const size_t elem = dtype == DataType::kFloat32 ? 4 : 2;
    for (int r = 0; r < n; ++r) {
      inputs[r].resize(kCount * elem);
      for (size_t i = 0; i < kCount; ++i) {
        float x = rank_value(r, i);
        if (dtype == DataType::kFloat32) {
          std::memcpy(&inputs[r][i * 4], &x, 4);
        } else {
          const uint16_t h = to_half(x, dtype);
          std::memcpy(&inputs[r][i * 2], &h, 2);
          x = from_half(h, dtype);
        }
        sum[i] = r == 0 ? x : sum[i] + x;
      }
    }
    std::vector<unsigned char> expected(kCount * elem);
    for (size_t i = 0; i < kCount; ++i) {
      if (dtype == DataType::kFloat32) {
        std::memcpy(&expected[i * 4], &sum[i], 4);
      } else {
        const uint16_t h = to_half(sum[i], dtype);
        std::memcpy(&expected[i * 2], &h, 2);
      }
    }
    FakeWorld world(n);
    run_ranks(n, [&](int me) {
      auto* ctx = new FakeRank(&world, me);
      auto t = make_transport(ctx, kNoPassthrough);
      std::vector<unsigned char> out(kCount * elem, 0);
      ASSERT_EQ(t->allreduce_passthrough(inputs[me].data(), out.data(), kCount, dtype), qcclSuccess)
          << thread_last_error();
      EXPECT_EQ(out, expected) << "rank " << me << " " << dtype_name(dtype);
      // In place gives the same bits.
      std::vector<unsigned char> in_place = inputs[me];
      ASSERT_EQ(t->allreduce_passthrough(in_place.data(), in_place.data(), kCount, dtype),
                qcclSuccess)
          << thread_last_error();
      EXPECT_EQ(in_place, expected) << "rank " << me << " in place " << dtype_name(dtype);
      EXPECT_EQ(ctx->calls["allreducePassthrough"], 0);
    });
  }
}

TEST_P(CallbackTransportRanks, BarrierFallbackIsOneAllgatherv) {
  const int n = GetParam();
  for (unsigned missing : {kAllPresent, kNoBarrier}) {
    FakeWorld world(n);
    run_ranks(n, [&](int me) {
      auto* ctx = new FakeRank(&world, me);
      auto t = make_transport(ctx, missing);
      ASSERT_EQ(t->barrier(), qcclSuccess) << thread_last_error();
      EXPECT_EQ(ctx->calls["barrier"], missing ? 0 : 1);
      EXPECT_EQ(ctx->calls["allgatherv"], missing ? 1 : 0);
    });
  }
}

TEST_P(CallbackTransportRanks, DuplicateOwnsItsContextAndUsesItsOwnWorld) {
  const int n = GetParam();
  FakeWorld world(n);
  const int destroyed_before = g_destroyed.load();
  run_ranks(n, [&](int me) {
    auto* ctx = new FakeRank(&world, me);
    auto t = make_transport(ctx, kAllPresent);
    std::unique_ptr<Transport> dup;
    ASSERT_EQ(t->duplicate(&dup), qcclSuccess) << thread_last_error();
    EXPECT_EQ(dup->rank(), me);
    EXPECT_EQ(dup->size(), n);
    const int mine = 10 * me + 1;
    std::vector<int> all(n, -1);
    std::vector<uint64_t> sizes(n, sizeof(int)), offsets(n);
    for (int r = 0; r < n; ++r) offsets[r] = r * sizeof(int);
    ASSERT_EQ(dup->allgatherv(&mine, sizeof mine, all.data(), sizes.data(), offsets.data()),
              qcclSuccess)
        << thread_last_error();
    for (int r = 0; r < n; ++r) EXPECT_EQ(all[r], 10 * r + 1);
    EXPECT_EQ(ctx->calls["duplicate"], 1);
    EXPECT_EQ(ctx->calls["allgatherv"], 0) << "the duplicate's calls went to the original ctx";
  });
  // Each rank destroyed its duplicate's ctx and its own.
  EXPECT_EQ(g_destroyed.load() - destroyed_before, 2 * n);
}

TEST(CallbackTransport, DuplicateWithoutTheCallbackIsInvalidUsage) {
  FakeWorld world(1);
  auto* ctx = new FakeRank(&world, 0);
  auto t = make_transport(ctx, kNoDuplicate);
  std::unique_ptr<Transport> dup;
  EXPECT_EQ(t->duplicate(&dup), qcclInvalidUsage);
  EXPECT_TRUE(contains(thread_last_error(), "duplicate is NULL")) << thread_last_error();
  EXPECT_EQ(dup, nullptr);
}

TEST(CallbackTransport, NotOwnedContextIsNotDestroyed) {
  FakeWorld world(1);
  FakeRank ctx(&world, 0);
  const qcclTransportOps_t ops = fake_ops(&ctx);
  const int destroyed_before = g_destroyed.load();
  {
    std::unique_ptr<CallbackTransport> t;
    ASSERT_EQ(CallbackTransport::create(&ops, &t), qcclSuccess);
  }
  EXPECT_EQ(g_destroyed.load(), destroyed_before);
}

// Every optional operation, with its callback and with its fallback (whose
// allgatherv then fails), and the callback-name it must be reported under.
struct FailureCase {
  const char* fail_op;
  unsigned missing;
  const char* reported_op;
};

Result run_op(Transport& t, const std::string& op) {
  const int n = t.size();
  std::vector<uint64_t> sizes(n, 4), offsets(n);
  for (int r = 0; r < n; ++r) offsets[r] = 4 * r;
  std::vector<float> in(n, 1.0f), out(n);
  double d = 1.0;
  std::unique_ptr<Transport> dup;
  if (op == "allgatherv")
    return t.allgatherv(in.data(), 4, out.data(), sizes.data(), offsets.data());
  if (op == "alltoallv")
    return t.alltoallv(in.data(), sizes.data(), offsets.data(), out.data(), sizes.data(),
                       offsets.data());
  if (op == "allreduceSum") return t.allreduce_sum(&d, 1);
  if (op == "allreducePassthrough")
    return t.allreduce_passthrough(in.data(), out.data(), n, DataType::kFloat32);
  if (op == "barrier") return t.barrier();
  return t.duplicate(&dup);
}

TEST(CallbackTransport, FailingCallbackIsTransportErrorQuotingItsTextThenRefusesEverything) {
  const FailureCase cases[] = {
      {"allgatherv", kAllPresent, "allgatherv"},
      {"alltoallv", kAllPresent, "alltoallv"},
      {"allgatherv", kNoAlltoallv, "allgatherv"},
      {"allreduceSum", kAllPresent, "allreduceSum"},
      {"allgatherv", kNoAllreduceSum, "allgatherv"},
      {"allreducePassthrough", kAllPresent, "allreducePassthrough"},
      {"allgatherv", kNoPassthrough, "allgatherv"},
      {"barrier", kAllPresent, "barrier"},
      {"allgatherv", kNoBarrier, "allgatherv"},
      {"duplicate", kAllPresent, "duplicate"},
  };
  const char* ops[] = {"allgatherv",           "alltoallv", "allreduceSum",
                       "allreducePassthrough", "barrier",   "duplicate"};
  for (const FailureCase& c : cases) {
    // The operation whose callback (or fallback) is made to fail.
    const std::string op = c.missing == kAllPresent       ? c.fail_op
                           : c.missing == kNoAlltoallv    ? "alltoallv"
                           : c.missing == kNoAllreduceSum ? "allreduceSum"
                           : c.missing == kNoPassthrough  ? "allreducePassthrough"
                                                          : "barrier";
    FakeWorld world(2);
    run_ranks(2, [&](int me) {
      auto* ctx = new FakeRank(&world, me);
      auto t = make_transport(ctx, c.missing);
      ctx->fail_op = c.fail_op;
      EXPECT_EQ(run_op(*t, op), qcclTransportError) << op;
      const std::string error = thread_last_error();
      EXPECT_TRUE(contains(error, std::string("transport callback ") + c.reported_op + " failed"))
          << error;
      EXPECT_TRUE(contains(error, std::string("fake link down during ") + c.fail_op + " on rank " +
                                      std::to_string(me)))
          << error;
      // From now on nothing reaches the callbacks, even once they would work.
      ctx->fail_op.clear();
      const std::map<std::string, int> calls = ctx->calls;
      for (const char* next : ops) {
        EXPECT_EQ(run_op(*t, next), qcclInvalidUsage) << next << " after " << op;
        EXPECT_TRUE(contains(thread_last_error(), "unusable after the transport callback " +
                                                      std::string(c.reported_op) + " failed"))
            << thread_last_error();
      }
      EXPECT_EQ(ctx->calls, calls);
    });
  }
}

TEST(CallbackTransport, FailureWithoutLastErrorSaysThereIsNoText) {
  FakeWorld world(1);
  auto* ctx = new FakeRank(&world, 0);
  auto t = make_transport(ctx, kNoLastError);
  ctx->fail_op = "barrier";
  EXPECT_EQ(t->barrier(), qcclTransportError);
  EXPECT_TRUE(contains(thread_last_error(), "(the transport gave no error text)"))
      << thread_last_error();
}

}  // namespace
}  // namespace qccl
