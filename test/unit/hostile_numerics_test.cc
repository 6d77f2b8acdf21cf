// Hostile inputs through qcclAllReduce (qccl issue "Fails safe", numbers):
// every method x dtype x input pattern x rank layout, over the in-process
// fake transport (fake_transport.h). What every case asserts, the rule of
// docs/payload-format.md ("NaN") and docs/algorithms.md §1, §6:
//   - the call returns qcclSuccess (twice: the second call uses a table
//     fitted from the first call's statistics, for the adaptive methods);
//   - a finite input element never becomes NaN;
//   - non-finite where it must be: quantising methods poison the whole
//     bucket (of QCCL_BUCKET_SIZE elements) that holds a NaN/Inf on any
//     rank, as non-finite values, and no other bucket; none/fp16/bf16 keep
//     the element itself: NaN where any rank has NaN or +Inf meets -Inf,
//     else the sign of the Inf;
//   - everything else is finite and within a loose error bound:
//     |out - exact| <= sum over ranks of 2 ||x_r,b||_2 (quantising; x
//     sqrt(B) more for sra's second quantisation) or 2^-7 |x| (casts), plus
//     the output dtype's rounding. An element may be ±Inf (never NaN) only
//     where its largest possible decoded magnitude passes the output
//     dtype's range: the fp16 cast of |x| >= 65520, the bf16 cast of
//     |x| >= 3.3961775e38 (docs/algorithms.md §6), a sum beyond the range,
//     or an L2-norm bucket of float16 data whose norm passes 65504 (a
//     decoded value is at most the bucket norm).
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "codec/half_cast.h"
#include "core/logging.h"
#include "fake_transport.h"
#include "qccl/qccl.h"

namespace qccl {
namespace {

constexpr uint32_t kBucket = 256;
constexpr uint64_t kCount = 4 * kBucket + 100;  // 5 buckets, the last one short
constexpr float kFp16Max = 65504.0f;
constexpr float kBf16Max = 3.38953139e38f;

enum class Pattern {
  kZeros,
  kConstant,
  kDenormals,
  kNearMax,
  kHugeTiny,
  kOneNan,
  kOnePosInf,
  kOneNegInf,
  kPosAndNegInf,
  kAllNan,
};

const char* pattern_name(Pattern p) {
  switch (p) {
    case Pattern::kZeros: return "zeros";
    case Pattern::kConstant: return "constant";
    case Pattern::kDenormals: return "denormals";
    case Pattern::kNearMax: return "near_max";
    case Pattern::kHugeTiny: return "huge_tiny";
    case Pattern::kOneNan: return "one_nan";
    case Pattern::kOnePosInf: return "one_pos_inf";
    case Pattern::kOneNegInf: return "one_neg_inf";
    case Pattern::kPosAndNegInf: return "pos_and_neg_inf";
    case Pattern::kAllNan: return "all_nan";
  }
  return "?";
}

// 1 rank (compression forced), 2 ranks (allgather), 3 ranks (sra).
enum class Layout { kOne, kTwo, kThreeSra };

int layout_ranks(Layout l) {
  return l == Layout::kOne ? 1 : (l == Layout::kTwo ? 2 : 3);
}
const char* layout_name(Layout l) {
  return l == Layout::kOne ? "n1" : (l == Layout::kTwo ? "n2" : "n3sra");
}

const char* dtype_label(qcclDataType_t t) {
  return t == qcclFloat32 ? "float32" : (t == qcclFloat16 ? "float16" : "bfloat16");
}

float dtype_max(qcclDataType_t t) {
  return t == qcclFloat32 ? FLT_MAX : (t == qcclFloat16 ? kFp16Max : kBf16Max);
}

// The smallest positive subnormal of the dtype, as float.
float dtype_denormal(qcclDataType_t t) {
  return t == qcclFloat16 ? 5.96046448e-8f : 1.40129846e-45f;
}

// Values written in the dtype and read back, so `exact` is the sum of what
// the call really receives.
float round_to(qcclDataType_t t, float v) {
  if (t == qcclFloat16) return fp16_to_float(float_to_fp16(v));
  if (t == qcclBfloat16) return bf16_to_float(float_to_bf16(v));
  return v;
}

std::vector<unsigned char> to_bytes(qcclDataType_t t, const std::vector<float>& v) {
  const size_t elem = t == qcclFloat32 ? 4 : 2;
  std::vector<unsigned char> out(v.size() * elem);
  for (size_t i = 0; i < v.size(); ++i) {
    if (t == qcclFloat32) {
      std::memcpy(&out[4 * i], &v[i], 4);
    } else {
      const uint16_t h = t == qcclFloat16 ? float_to_fp16(v[i]) : float_to_bf16(v[i]);
      std::memcpy(&out[2 * i], &h, 2);
    }
  }
  return out;
}

std::vector<float> from_bytes(qcclDataType_t t, const std::vector<unsigned char>& b) {
  const size_t elem = t == qcclFloat32 ? 4 : 2;
  std::vector<float> out(b.size() / elem);
  for (size_t i = 0; i < out.size(); ++i) {
    if (t == qcclFloat32) {
      std::memcpy(&out[i], &b[4 * i], 4);
    } else {
      uint16_t h;
      std::memcpy(&h, &b[2 * i], 2);
      out[i] = t == qcclFloat16 ? fp16_to_float(h) : bf16_to_float(h);
    }
  }
  return out;
}

// Uniform in [-1, 1), deterministic per (rank, i).
float uniform(int rank, uint64_t i) {
  uint64_t s = (0x9e3779b97f4a7c15ull * (rank + 1)) ^ (i * 0xbf58476d1ce4e5b9ull);
  s ^= s >> 31;
  s *= 0x94d049bb133111ebull;
  s ^= s >> 29;
  return static_cast<float>((s >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

// Rank 0 carries the pattern; the other ranks carry it too for the
// range patterns that cannot overflow a sum (zeros, constant, denormals),
// and benign values in [-1, 1] otherwise.
std::vector<float> make_input(Pattern p, qcclDataType_t t, int rank) {
  std::vector<float> v(kCount);
  const float max = dtype_max(t);
  const bool carries =
      rank == 0 || p == Pattern::kZeros || p == Pattern::kConstant || p == Pattern::kDenormals;
  for (uint64_t i = 0; i < kCount; ++i) {
    const float u = uniform(rank, i);
    float x = u;
    if (carries) {
      switch (p) {
        case Pattern::kZeros: x = 0.0f; break;
        case Pattern::kConstant: x = 1.5f; break;
        case Pattern::kDenormals:
          x = dtype_denormal(t) * static_cast<float>(1 + (i % 7)) * (u < 0 ? -1.0f : 1.0f);
          break;
        case Pattern::kNearMax:
          // The exact maximum on a few elements, 0.5..1 x max elsewhere.
          x = (i % 97 == 0) ? (u < 0 ? -max : max) : max * (0.75f + 0.25f * u);
          break;
        case Pattern::kHugeTiny: {
          // Bucket 1 all tiny; elsewhere every third element huge.
          const float tiny = 1e-4f * (t == qcclFloat16 ? 1.0f : 1e-30f) * u;
          const float huge = max * 0.25f * u;
          x = (i / kBucket == 1 || i % 3 != 0) ? tiny : huge;
          break;
        }
        case Pattern::kOneNan:
          if (i == 300) x = NAN;
          break;
        case Pattern::kOnePosInf:
          if (i == 300) x = INFINITY;
          break;
        case Pattern::kOneNegInf:
          if (i == 300) x = -INFINITY;
          break;
        case Pattern::kPosAndNegInf:
          // +Inf and -Inf in one bucket (1), a lone -Inf in another (3).
          if (i == 300) x = INFINITY;
          if (i == 310 || i == 800) x = -INFINITY;
          break;
        case Pattern::kAllNan: x = NAN; break;
      }
    }
    v[i] = round_to(t, x);
  }
  return v;
}

bool is_quantizing_method(const std::string& m) {
  return m != "none" && m != "fp16" && m != "bf16";
}
bool uses_l2(const std::string& m) {
  return m == "qsgd" || m == "nuqsgd" || m == "dqsgd";
}

// Whether the method's wire turns the finite value x into ±Inf.
bool wire_overflows(const std::string& m, float x) {
  if (!std::isfinite(x)) return false;
  if (m == "fp16") return std::fabs(x) >= 65520.0f;
  if (m == "bf16") return std::fabs(x) >= 3.3961775e38f;
  return false;
}

using Case = std::tuple<const char*, qcclDataType_t, Pattern, Layout>;

class HostileNumerics : public ::testing::TestWithParam<Case> {};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  const auto [method, dtype, pattern, layout] = info.param;
  return std::string(method) + "_" + dtype_label(dtype) + "_" + pattern_name(pattern) + "_" +
         layout_name(layout);
}

INSTANTIATE_TEST_SUITE_P(
    AllMethods, HostileNumerics,
    ::testing::Combine(::testing::Values("none", "fp16", "bf16", "qsgd", "qsgdinf", "nuqsgd", "trn",
                                         "alq", "alqn", "amq", "amqn", "dqsgd"),
                       ::testing::Values(qcclFloat32, qcclFloat16, qcclBfloat16),
                       ::testing::Values(Pattern::kZeros, Pattern::kConstant, Pattern::kDenormals,
                                         Pattern::kNearMax, Pattern::kHugeTiny, Pattern::kOneNan,
                                         Pattern::kOnePosInf, Pattern::kOneNegInf,
                                         Pattern::kPosAndNegInf, Pattern::kAllNan),
                       ::testing::Values(Layout::kOne, Layout::kTwo, Layout::kThreeSra)),
    case_name);

// What the output at each element may be.
struct Expectation {
  std::vector<bool> non_finite;    // must be NaN or ±Inf
  std::vector<int> inf_sign;       // casts: +1/-1 must be that Inf, 2 must be NaN, 0 free
  std::vector<bool> may_overflow;  // may be ±Inf (never NaN)
  std::vector<double> exact, tolerance;
};

Expectation expect(const std::string& method, qcclDataType_t dtype,
                   const std::vector<std::vector<float>>& in, bool sra) {
  const int n = static_cast<int>(in.size());
  Expectation e;
  e.non_finite.assign(kCount, false);
  e.inf_sign.assign(kCount, 0);
  e.may_overflow.assign(kCount, false);
  e.exact.assign(kCount, 0.0);
  e.tolerance.assign(kCount, 0.0);
  const double out_max = dtype_max(dtype);
  const double out_rel = dtype == qcclFloat32 ? 0x1p-22 : (dtype == qcclFloat16 ? 0x1p-10 : 0x1p-7);
  const bool quantising = is_quantizing_method(method);
  const uint64_t buckets = (kCount + kBucket - 1) / kBucket;
  for (uint64_t b = 0; b < buckets; ++b) {
    const uint64_t lo = b * kBucket, hi = std::min<uint64_t>(kCount, lo + kBucket);
    bool bucket_bad = false;
    double error = 0, magnitude = 0;  // bounds over the ranks
    for (int r = 0; r < n; ++r) {
      double l2 = 0, linf = 0;
      for (uint64_t i = lo; i < hi; ++i) {
        const double x = in[r][i];
        if (!std::isfinite(x)) bucket_bad = true;
        l2 += x * x;
        linf = std::max(linf, std::fabs(x));
      }
      l2 = std::sqrt(l2);
      // The norm the codec stores: L2 (Linf once L2 passes FLT_MAX) or Linf.
      const double norm = uses_l2(method) && l2 <= FLT_MAX ? l2 : linf;
      error += 2 * l2;
      magnitude += norm;
    }
    if (sra && quantising) {
      error *= 1 + 2 * std::sqrt(static_cast<double>(kBucket));
      magnitude *= std::sqrt(static_cast<double>(kBucket));
    }
    for (uint64_t i = lo; i < hi; ++i) {
      bool nan = false, pos = false, neg = false;
      double sum = 0, abs_sum = 0;
      for (int r = 0; r < n; ++r) {
        const float x = in[r][i];
        if (std::isnan(x)) nan = true;
        if (std::isinf(x) || wire_overflows(method, x)) (x > 0 ? pos : neg) = true;
        if (std::isfinite(x)) sum += x, abs_sum += std::fabs(x);
      }
      e.exact[i] = sum;
      if (quantising) {
        e.non_finite[i] = bucket_bad;
        e.tolerance[i] = error + out_rel * std::fabs(sum) + 1e-37;
        e.may_overflow[i] = magnitude * (1 + out_rel) >= out_max;
      } else {
        const bool bad = nan || pos || neg;
        e.non_finite[i] = bad;
        if (bad) e.inf_sign[i] = (nan || (pos && neg)) ? 2 : (pos ? 1 : -1);
        const double cast_rel = method == "none" ? 0x1p-23 : 0x1p-7;
        // Plus the subnormal grids: a value below the wire format's
        // normal range rounds to its subnormal spacing (fp16 2^-24, bf16
        // 2^-133), and so does the output dtype's.
        const double wire_grid = method == "fp16" ? 0x1p-24 : (method == "bf16" ? 0x1p-133 : 0);
        const double out_grid = dtype == qcclFloat16 ? 0x1p-24 : 0x1p-133;
        e.tolerance[i] = (cast_rel + out_rel) * abs_sum + n * wire_grid + out_grid;
        e.may_overflow[i] = abs_sum * (1 + cast_rel) * (1 + out_rel) >= out_max;
      }
    }
  }
  return e;
}

qcclConfig_t config_for(const char* method, Layout layout) {
  qcclConfig_t c = QCCL_CONFIG_INITIALIZER;
  c.method = method;
  c.bucketSize = "256";
  c.minCompressBytes = "0";
  c.compressOneRank = "1";
  c.updateSteps = "0,1";  // the second call encodes with a table fitted from the first
  c.algo = layout == Layout::kThreeSra ? "sra" : "allgather";
  return c;
}

TEST_P(HostileNumerics, FiniteStaysFiniteAndNonFiniteStaysWhereItWas) {
  const auto [method, dtype, pattern, layout] = GetParam();
  const int n = layout_ranks(layout);
  std::vector<std::vector<float>> inputs(n);
  for (int r = 0; r < n; ++r) inputs[r] = make_input(pattern, dtype, r);
  const Expectation e = expect(method, dtype, inputs, layout == Layout::kThreeSra);
  constexpr int kCalls = 2;
  std::vector<std::vector<std::vector<float>>> outputs(n);
  fake::FakeWorld world(n);
  fake::run_ranks(n, [&](int me) {
    auto* ctx = new fake::FakeRank(&world, me);
    // The fake's own passthrough sums float32 only: qccl's fallback instead.
    const qcclTransportOps_t ops = fake::fake_ops(ctx, fake::kNoPassthrough);
    const qcclConfig_t config = config_for(method, layout);
    qcclComm_t comm = nullptr;
    ASSERT_EQ(qcclCommInitTransport(&comm, &ops, &config), qcclSuccess)
        << qcclGetLastError(nullptr);
    for (int call = 0; call < kCalls; ++call) {
      std::vector<unsigned char> buf = to_bytes(dtype, inputs[me]);
      ASSERT_EQ(qcclAllReduce(buf.data(), buf.data(), kCount, dtype, qcclSum, comm, nullptr),
                qcclSuccess)
          << "call " << call << ": " << qcclGetLastError(comm);
      outputs[me].push_back(from_bytes(dtype, buf));
    }
    EXPECT_EQ(qcclCommDestroy(comm), qcclSuccess);
  });
  ASSERT_FALSE(HasFatalFailure());
  int reported = 0;
  for (int r = 0; r < n; ++r) {
    for (int call = 0; call < kCalls; ++call) {
      const std::vector<float>& out = outputs[r][call];
      ASSERT_EQ(out.size(), kCount);
      for (uint64_t i = 0; i < kCount && reported < 5; ++i) {
        const float y = out[i];
        const std::string where = "rank " + std::to_string(r) + " call " + std::to_string(call) +
                                  " element " + std::to_string(i) + " (bucket " +
                                  std::to_string(i / kBucket) + "): got " + std::to_string(y) +
                                  ", exact " + std::to_string(e.exact[i]);
        bool ok = true;
        if (e.non_finite[i]) {
          ok = !std::isfinite(y);
          if (ok && e.inf_sign[i] == 2) ok = std::isnan(y);
          if (ok && (e.inf_sign[i] == 1 || e.inf_sign[i] == -1))
            ok = std::isinf(y) && (y > 0) == (e.inf_sign[i] > 0);
          EXPECT_TRUE(ok) << "must be non-finite (" << e.inf_sign[i] << "): " << where;
        } else if (std::isnan(y)) {
          ok = false;
          ADD_FAILURE() << "finite input became NaN: " << where;
        } else if (std::isinf(y)) {
          ok = e.may_overflow[i];
          EXPECT_TRUE(ok) << "finite input became Inf within the range: " << where;
        } else {
          ok = std::fabs(y - e.exact[i]) <= e.tolerance[i];
          EXPECT_TRUE(ok) << "error beyond the bound " << e.tolerance[i] << ": " << where;
        }
        if (!ok) ++reported;
      }
    }
  }
  // Every rank holds the same result.
  for (int r = 1; r < n; ++r)
    for (int call = 0; call < kCalls; ++call)
      EXPECT_EQ(std::memcmp(outputs[r][call].data(), outputs[0][call].data(), kCount * 4), 0)
          << "rank " << r << " call " << call << " differs from rank 0";
}

// ---- fp16's range (docs/algorithms.md §6) ---------------------------------------------

// Collects what qccl logs while it lives.
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(text_)) {
    log::logger().sinks().push_back(sink_);
  }
  ~LogCapture() {
    auto& sinks = log::logger().sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  // Occurrences of `what` so far.
  int count(const std::string& what) {
    log::logger().flush();
    const std::string all = text_.str();
    int n = 0;
    for (size_t at = all.find(what); at != std::string::npos; at = all.find(what, at + 1)) ++n;
    return n;
  }

 private:
  std::ostringstream text_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

constexpr const char* kRangeWarning = "beyond the float16 range";

// One rank with compression forced (fp16 on the wire), `calls` in-place
// sums of `values`; returns the last result.
std::vector<float> one_rank_sums(const char* method, const std::vector<float>& values, int calls) {
  fake::FakeWorld world(1);
  auto* ctx = new fake::FakeRank(&world, 0);
  const qcclTransportOps_t ops = fake::fake_ops(ctx);
  qcclConfig_t config = QCCL_CONFIG_INITIALIZER;
  config.method = method;
  config.minCompressBytes = "0";
  config.compressOneRank = "1";
  config.debug = "WARN";
  qcclComm_t comm = nullptr;
  EXPECT_EQ(qcclCommInitTransport(&comm, &ops, &config), qcclSuccess) << qcclGetLastError(nullptr);
  std::vector<float> buf;
  for (int c = 0; c < calls; ++c) {
    buf = values;
    EXPECT_EQ(
        qcclAllReduce(buf.data(), buf.data(), buf.size(), qcclFloat32, qcclSum, comm, nullptr),
        qcclSuccess)
        << qcclGetLastError(comm);
  }
  EXPECT_EQ(qcclCommDestroy(comm), qcclSuccess);
  return buf;
}

TEST(Fp16Range, FiniteValuesBeyondTheRangeBecomeInfOfTheirSignAndWarnOnce) {
  LogCapture log;
  const std::vector<float> in = {1e5f, -7e4f, 65520.0f, 3e38f, 1.0f, 65504.0f, -2.5f};
  const std::vector<float> out = one_rank_sums("fp16", in, 3);
  ASSERT_EQ(out.size(), in.size());
  EXPECT_EQ(out[0], INFINITY);
  EXPECT_EQ(out[1], -INFINITY);
  EXPECT_EQ(out[2], INFINITY);
  EXPECT_EQ(out[3], INFINITY);
  EXPECT_EQ(out[4], 1.0f);
  EXPECT_EQ(out[5], 65504.0f);
  EXPECT_EQ(out[6], -2.5f);
  EXPECT_EQ(log.count(kRangeWarning), 1) << "three calls, one warning per communicator";
  EXPECT_EQ(log.count("4 finite value(s)"), 1);
}

TEST(Fp16Range, ValuesInsideTheRangeDoNotWarn) {
  LogCapture log;
  // 65519 is finite in float16 (it rounds to 65504).
  const std::vector<float> out = one_rank_sums("fp16", {65519.0f, -65504.0f, 1e-9f}, 2);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0], 65504.0f);
  EXPECT_EQ(out[1], -65504.0f);
  EXPECT_EQ(log.count(kRangeWarning), 0);
}

// Inputs inside the range whose sum is not: `allgather` sums the decoded
// values in float32 (finite), `sra` casts the reduced chunk to float16
// again (±Inf, and its own warning on every rank that owns a chunk).
TEST(Fp16Range, SraReencodesASumBeyondTheRangeAsInf) {
  for (const char* algo : {"allgather", "sra"}) {
    LogCapture log;
    constexpr int kN = 3;
    constexpr uint64_t kCount = 96;  // one 32-element chunk per rank under sra
    fake::FakeWorld world(kN);
    std::vector<std::vector<float>> out(kN, std::vector<float>(kCount, 40000.0f));
    fake::run_ranks(kN, [&](int me) {
      auto* ctx = new fake::FakeRank(&world, me);
      const qcclTransportOps_t ops = fake::fake_ops(ctx);
      qcclConfig_t config = QCCL_CONFIG_INITIALIZER;
      config.method = "fp16";
      config.algo = algo;
      config.bucketSize = "32";
      config.minCompressBytes = "0";
      config.debug = "WARN";
      qcclComm_t comm = nullptr;
      ASSERT_EQ(qcclCommInitTransport(&comm, &ops, &config), qcclSuccess);
      EXPECT_EQ(qcclAllReduce(out[me].data(), out[me].data(), kCount, qcclFloat32, qcclSum, comm,
                              nullptr),
                qcclSuccess)
          << qcclGetLastError(comm);
      EXPECT_EQ(qcclCommDestroy(comm), qcclSuccess);
    });
    const bool sra = std::string(algo) == "sra";
    for (int r = 0; r < kN; ++r)
      for (uint64_t i = 0; i < kCount; ++i)
        ASSERT_EQ(out[r][i], sra ? INFINITY : 120000.0f) << algo << " rank " << r << " " << i;
    EXPECT_EQ(log.count(kRangeWarning), sra ? kN : 0) << algo;
    EXPECT_EQ(log.count("of the reduced sum"), sra ? kN : 0) << algo;
  }
}

TEST(Fp16Range, Bf16HasTheRange) {
  LogCapture log;
  const std::vector<float> out = one_rank_sums("bf16", {1e5f, -3e38f}, 1);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(std::isfinite(out[0]));
  EXPECT_NEAR(out[0], 1e5f, 1e5f * 0x1p-8f);
  EXPECT_NEAR(out[1], -3e38f, 3e38f * 0x1p-8f);
  EXPECT_EQ(log.count(kRangeWarning), 0);
}

}  // namespace
}  // namespace qccl
