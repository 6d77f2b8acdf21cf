// Byte counts near 2^64 (docs/api.md "Size limits"): the checked arithmetic,
// the payload layout formulas, the call's size check, fusion planning and
// the allocations, below the C API (hostile_api_test.cc has the entry
// checks). Expected values are written out, not computed by the code under
// test.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "codec/cpu_codec.h"
#include "codec/host_codec.h"
#include "codec/payload_format.h"
#include "collective/call_size.h"
#include "collective/workspace.h"
#include "core/checked_alloc.h"
#include "core/checked_math.h"
#include "core/fault_injection.h"
#include "engine/error_feedback.h"
#include "engine/fusion_plan.h"

namespace qccl {
namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

constexpr uint64_t k2Pow(int e) {
  return uint64_t{1} << e;
}

TEST(CheckedMath, MulAndAddReportOverflowAndLeaveTheOutputAlone) {
  uint64_t out = 7;
  EXPECT_FALSE(checked_mul(k2Pow(32), k2Pow(32), &out));
  EXPECT_FALSE(checked_mul(UINT64_MAX, 2, &out));
  EXPECT_FALSE(checked_add(UINT64_MAX, 1, &out));
  EXPECT_FALSE(checked_add(k2Pow(63), k2Pow(63), &out));
  EXPECT_EQ(out, 7u);
  EXPECT_TRUE(checked_mul(k2Pow(32), k2Pow(31), &out));
  EXPECT_EQ(out, k2Pow(63));
  EXPECT_TRUE(checked_mul(UINT64_MAX, 0, &out));
  EXPECT_EQ(out, 0u);
  EXPECT_TRUE(checked_add(UINT64_MAX - 1, 1, &out));
  EXPECT_EQ(out, UINT64_MAX);
}

// (a + b - 1) / b wrapped for a near 2^64: 2^64 - 1 elements made 0 buckets.
TEST(PayloadLayout, DivCeilDoesNotWrapNearTwoToThe64) {
  EXPECT_EQ(div_ceil(UINT64_MAX, 32), k2Pow(59));
  EXPECT_EQ(num_buckets(UINT64_MAX, 8192), k2Pow(51));
  EXPECT_EQ(num_buckets(UINT64_MAX - 8190, 8192), k2Pow(51));
  EXPECT_EQ(div_ceil(0, 32), 0u);
  EXPECT_EQ(div_ceil(64, 32), 2u);
  EXPECT_EQ(div_ceil(65, 32), 3u);
}

TEST(PayloadLayout, CastPayloadBytesOverflowIsReported) {
  uint64_t bytes = 0;
  // 2^61 float32: 2^63 body bytes + the 64-byte header fits.
  ASSERT_TRUE(checked_cast_payload_bytes(k2Pow(61), 4, &bytes));
  EXPECT_EQ(bytes, k2Pow(63) + 64);
  EXPECT_FALSE(checked_cast_payload_bytes(k2Pow(62), 4, &bytes));  // 2^64 body bytes
  EXPECT_FALSE(checked_cast_payload_bytes(k2Pow(63), 2, &bytes));
  EXPECT_FALSE(checked_cast_payload_bytes(UINT64_MAX, 2, &bytes));
  EXPECT_EQ(cast_payload_bytes(k2Pow(62), 4), UINT64_MAX);
  EXPECT_EQ(cast_payload_bytes(3, 2), 64u + 8u);  // 6 bytes padded to 8
}

TEST(PayloadLayout, QuantLayoutOfASmallCount) {
  // 100 coordinates, bucket 32, 3 bits, 8 levels: 4 buckets; symbols are 3
  // words per started 32-group: 4 groups x 3 = 12 words.
  QuantLayout l{};
  ASSERT_TRUE(checked_quant_layout(100, 32, 3, 8, &l));
  EXPECT_EQ(l.table_offset, 64u);
  EXPECT_EQ(l.norms_offset, 64u + 32u);
  EXPECT_EQ(l.symbols_offset, 96u + 16u);
  EXPECT_EQ(l.total_bytes, 112u + 48u);
}

TEST(PayloadLayout, QuantLayoutOverflowIsReported) {
  QuantLayout l{};
  // 2^64 - 1 coordinates at 8 bits: 2^62 words = 2^64 bytes.
  EXPECT_FALSE(checked_quant_layout(UINT64_MAX, 32, 8, 256, &l));
  EXPECT_EQ(quant_layout(UINT64_MAX, 32, 8, 256).total_bytes, UINT64_MAX);
  // 2^60 coordinates at 1 bit: 2^55 words + 2^55 norms: fits.
  ASSERT_TRUE(checked_quant_layout(k2Pow(60), 32, 1, 2, &l));
  EXPECT_EQ(l.total_bytes, 64u + 8u + 4 * k2Pow(55) + 4 * k2Pow(55));
}

EncodeSpec none_spec() {
  EncodeSpec spec;
  spec.method = Method::kNone;
  return spec;
}

TEST(PayloadLayout, PayloadHeaderOfAnOverflowingCountIsAnError) {
  PayloadHeader h{};
  EXPECT_EQ(make_payload_header(none_spec(), k2Pow(62), &h), qcclInvalidArgument);
  EXPECT_TRUE(contains(thread_last_error(), "exceed 2^64 bytes")) << thread_last_error();
  EXPECT_EQ(payload_bytes(none_spec(), UINT64_MAX), UINT64_MAX);
  uint64_t bytes = 0;
  EXPECT_FALSE(checked_payload_bytes(none_spec(), UINT64_MAX, &bytes));
  ASSERT_EQ(make_payload_header(none_spec(), 10, &h), qcclSuccess);
  EXPECT_EQ(h.total_bytes, 64u + 40u);
}

// A received header that claims a count whose layout overflows is corrupt,
// whatever byte count arrived.
TEST(PayloadLayout, CorruptHeaderWithAHugeCountIsRejected) {
  PayloadHeader h{};
  h.magic = kPayloadMagic;
  h.version = kPayloadVersion;
  h.method = static_cast<uint8_t>(Method::kQsgd);
  h.bits = 8;
  h.table_size = 4;
  h.bucket_size = 32;
  h.count = UINT64_MAX;
  h.total_bytes = UINT64_MAX;
  QuantLayout layout{};
  EXPECT_EQ(check_payload_header(h, UINT64_MAX, qcclCorruptPayload, "payload", &layout),
            qcclCorruptPayload);
}

// ---- the call's size check (collective/call_size.h) ---------------------------

constexpr uint64_t kLimit = k2Pow(56);

TEST(CallSize, TheLimitIsInclusive) {
  const uint64_t largest = (kLimit - 4096) / 4;
  EXPECT_EQ(check_call_size(CollectiveKind::kAllReduce, largest, DataType::kFloat32, 1, "count"),
            qcclSuccess);
  EXPECT_EQ(
      check_call_size(CollectiveKind::kAllReduce, largest + 1, DataType::kFloat32, 1, "count"),
      qcclInvalidArgument);
  EXPECT_TRUE(contains(thread_last_error(), "2^56 bytes")) << thread_last_error();
  EXPECT_TRUE(contains(thread_last_error(), "count " + std::to_string(largest + 1)))
      << thread_last_error();
}

TEST(CallSize, TheLimitCountsEveryRanksPayload) {
  const uint64_t per_rank = (kLimit / 2 - 4096) / 4;  // fits two ranks exactly
  EXPECT_EQ(check_call_size(CollectiveKind::kAllGather, per_rank, DataType::kFloat16, 2, "x"),
            qcclSuccess);
  EXPECT_EQ(check_call_size(CollectiveKind::kAllGather, per_rank + 1, DataType::kFloat16, 2, "x"),
            qcclInvalidArgument);
  EXPECT_TRUE(contains(thread_last_error(), "gathered payloads")) << thread_last_error();
  // Many ranks: 2^31 - 1 ranks x (4 x 2^24 + 4096) bytes is past 2^56.
  EXPECT_EQ(check_call_size(CollectiveKind::kAllReduce, k2Pow(24), DataType::kFloat32, INT32_MAX,
                            "count"),
            qcclInvalidArgument);
  EXPECT_EQ(
      check_call_size(CollectiveKind::kAllReduce, 1024, DataType::kFloat32, INT32_MAX, "count"),
      qcclSuccess);
}

TEST(CallSize, CountsThatOverflowSixtyFourBitsAreRejected) {
  for (uint64_t count : {k2Pow(62), k2Pow(63), UINT64_MAX, UINT64_MAX / 2 + 1, UINT64_MAX / 4 + 1})
    for (DataType t : {DataType::kFloat32, DataType::kFloat16, DataType::kBfloat16}) {
      EXPECT_EQ(check_call_size(CollectiveKind::kAllReduce, count, t, 1, "count"),
                qcclInvalidArgument)
          << count;
      EXPECT_TRUE(contains(thread_last_error(), "is too large")) << thread_last_error();
    }
}

// ---- engine fusion ----------------------------------------------------------------

TensorAnnouncement announce(uint64_t hash, uint64_t count) {
  TensorAnnouncement a;
  a.name_hash = hash;
  a.count = count;
  a.dtype = static_cast<uint8_t>(DataType::kFloat32);
  a.op = qcclSum;
  a.compress = 1;
  return a;
}

// 2^62 float32 is 2^64 bytes: the sum used to wrap to a small number, so
// the two fused into one group of 2^63 elements.
TEST(FusionPlan, SizesPastTwoToThe64CloseTheGroup) {
  const std::vector<FusionGroup> groups =
      plan_fusion({announce(1, k2Pow(62)), announce(2, k2Pow(62))}, UINT64_MAX, 1);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].count, k2Pow(62));
  EXPECT_EQ(groups[1].count, k2Pow(62));
  // Counts whose sum overflows the count itself.
  const std::vector<FusionGroup> wrapped =
      plan_fusion({announce(1, UINT64_MAX), announce(2, 2)}, UINT64_MAX, 256);
  ASSERT_EQ(wrapped.size(), 2u);
  EXPECT_EQ(wrapped[1].count, 2u);
  // Small tensors still fuse.
  const std::vector<FusionGroup> small =
      plan_fusion({announce(1, 10), announce(2, 20)}, UINT64_MAX, 1);
  ASSERT_EQ(small.size(), 1u);
  EXPECT_EQ(small[0].count, 30u);
  // With buckets, the second starts on a bucket boundary (fusion_plan.h).
  const std::vector<FusionGroup> padded =
      plan_fusion({announce(1, 10), announce(2, 20)}, UINT64_MAX, 256);
  ASSERT_EQ(padded.size(), 1u);
  EXPECT_EQ(padded[0].count, 276u);
}

// ---- allocations ------------------------------------------------------------------

class Allocations : public ::testing::Test {
 protected:
  void TearDown() override { testing::disarm_fault(); }
};

TEST_F(Allocations, VectorSizeThatOverflowsNamesTheBuffer) {
  std::vector<float> v;
  EXPECT_EQ(grow_vector(&v, UINT64_MAX / 2, "test vector"), qcclSystemError);
  EXPECT_TRUE(contains(thread_last_error(), "for the test vector")) << thread_last_error();
  EXPECT_TRUE(contains(thread_last_error(), "overflows 64 bits")) << thread_last_error();
  // 2^61 floats (2^63 bytes) is past max_size: no allocation is tried.
  EXPECT_EQ(grow_vector(&v, k2Pow(61), "test vector"), qcclSystemError);
  EXPECT_EQ(thread_last_error(),
            "cannot allocate 9223372036854775808 bytes for the test vector: larger than a vector "
            "can hold");
  EXPECT_TRUE(v.empty());
}

TEST_F(Allocations, OutOfMemoryInAVectorNamesTheBufferAndItsBytes) {
  std::vector<double> v(3, 1.0);
  testing::arm_fault("test vector", testing::Fault::kBadAlloc);
  EXPECT_EQ(grow_vector(&v, 1000, "test vector"), qcclSystemError);
  EXPECT_EQ(thread_last_error(), "cannot allocate 8000 bytes for the test vector: out of memory");
  EXPECT_EQ(v.size(), 3u);  // unchanged
  EXPECT_EQ(grow_vector(&v, 1000, "test vector"), qcclSuccess);
  EXPECT_EQ(v.size(), 1000u);
  EXPECT_EQ(v[2], 1.0);
}

TEST_F(Allocations, WorkspaceGrowthFailureNamesTheBufferAndItsBytes) {
  Workspace ws(host_codec());
  testing::arm_fault("test scratch", testing::Fault::kBadAlloc);
  EXPECT_EQ(ws.reserve(&ws.sum, 4096, "test scratch"), qcclSystemError);
  EXPECT_TRUE(contains(thread_last_error(),
                       "cannot allocate 4096 bytes of host memory for the test scratch"))
      << thread_last_error();
  EXPECT_EQ(ws.reserve(&ws.sum, 4096, "test scratch"), qcclSuccess);
  EXPECT_NE(ws.sum.as(), nullptr);
}

// A doubled block that cannot be had falls back to the size asked for.
TEST_F(Allocations, WorkspaceGrowthFallsBackFromDoubling) {
  Workspace ws(host_codec());
  ASSERT_EQ(ws.reserve(&ws.sum, 1000, "test scratch"), qcclSuccess);
  testing::arm_fault("test scratch", testing::Fault::kBadAlloc);  // the doubled 2000 fails
  EXPECT_EQ(ws.reserve(&ws.sum, 1500, "test scratch"), qcclSuccess) << thread_last_error();
  EXPECT_FALSE(testing::fault_armed());
}

TEST_F(Allocations, WorkspaceArrayThatOverflowsIsInvalidArgument) {
  Workspace ws(host_codec());
  EXPECT_EQ(ws.reserve_array(&ws.received, k2Pow(40), k2Pow(30), "received payloads"),
            qcclInvalidArgument);
  EXPECT_TRUE(contains(thread_last_error(),
                       "the received payloads needs 1099511627776 × "
                       "1073741824 bytes, which overflows 64 bits"))
      << thread_last_error();
  EXPECT_EQ(ws.received.as(), nullptr);
}

TEST_F(Allocations, ErrorFeedbackResidualFailureIsSystemError) {
  ErrorFeedbackStore store;
  const std::vector<float> sent(16, 1.0f), decoded(16, 0.5f);
  testing::arm_fault("error-feedback residual", testing::Fault::kBadAlloc);
  EXPECT_EQ(store.update(7, sent.data(), decoded.data(), 16), qcclSystemError);
  EXPECT_TRUE(contains(thread_last_error(), "64 bytes for the error-feedback residual"))
      << thread_last_error();
  ASSERT_EQ(store.update(7, sent.data(), decoded.data(), 16), qcclSuccess);
  std::vector<float> x(16, 0.0f);
  store.add_residual(7, x.data(), 16);
  EXPECT_EQ(x[0], 0.5f);
}

}  // namespace
}  // namespace qccl
