// The CUDA codec against the CPU reference (docs/design.md §5, promise 2): same
// input, table and draw key give the same payload bytes; decode-accumulate
// gives the same float32 sums. Skips without a device.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <tuple>

#include "codec/level_table.h"
#include "gpu_test_util.h"

namespace qccl {
namespace {

using gpu_test::AsDtype;
using gpu_test::DeviceBuffer;
using gpu_test::GaussianValues;

const uint64_t kRaggedSizes[] = {1, 31, 33, 8191, 8193, 3 * 8192 + 5};
const DataType kDtypes[] = {DataType::kFloat32, DataType::kFloat16, DataType::kBfloat16};
const Method kQuantizingMethods[] = {Method::kQsgd, Method::kQsgdInf, Method::kNuqsgd,
                                     Method::kTrn,  Method::kAlq,     Method::kAlqN,
                                     Method::kAmq,  Method::kAmqN,    Method::kDqsgd};

EncodeSpec SpecFor(Method method, int bits, const LevelTable& table) {
  EncodeSpec spec;
  spec.method = method;
  spec.bits = bits;
  spec.norm = default_norm(method);
  spec.levels = table.levels.data();
  spec.num_levels = table.size();
  spec.table_version = 7;
  spec.seed = 0x0123456789ABCDEFull;
  spec.rank = 5;
  spec.stream = 1;
  spec.step = 42;
  return spec;
}

std::vector<unsigned char> CpuPayload(const std::vector<unsigned char>& input, DataType dtype,
                                      uint64_t count, const EncodeSpec& spec,
                                      EncodeStats* stats = nullptr) {
  std::vector<unsigned char> payload(payload_bytes(spec, count));
  EXPECT_EQ(encode(input.data(), dtype, count, spec, payload.data(), payload.size(), stats),
            qcclSuccess)
      << thread_last_error();
  return payload;
}

std::vector<unsigned char> GpuPayload(CudaCodec& codec, const std::vector<unsigned char>& input,
                                      DataType dtype, uint64_t count, const EncodeSpec& spec,
                                      EncodeStats* stats = nullptr) {
  const uint64_t bytes = payload_bytes(spec, count);
  DeviceBuffer in(input.size());
  DeviceBuffer out(bytes);
  in.upload(input.data(), input.size());
  // Poison the output so bytes the kernel fails to write cannot match by luck.
  EXPECT_EQ(cudaMemset(out.get(), 0xA5, bytes), cudaSuccess);
  EXPECT_EQ(codec.encode_device(in.get(), dtype, count, spec, out.get(), bytes, nullptr, stats),
            qcclSuccess)
      << thread_last_error();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  return out.download(bytes);
}

// Byte equality, except that a NaN bucket norm may carry another NaN's bits:
// CUDA arithmetic returns the canonical NaN where x86 propagates the input's
// payload (docs/gpu.md). Symbols, header and table must match exactly.
void ExpectSamePayload(const std::vector<unsigned char>& cpu, const std::vector<unsigned char>& gpu,
                       const std::string& what) {
  ASSERT_EQ(cpu.size(), gpu.size()) << what;
  PayloadHeader h;
  std::memcpy(&h, cpu.data(), sizeof h);
  uint64_t norms_begin = 0, norms_end = 0;
  if (is_quantizing(static_cast<Method>(h.method))) {
    const QuantLayout l = quant_layout(h.count, h.bucket_size, h.bits, h.table_size);
    norms_begin = l.norms_offset;
    norms_end = l.symbols_offset;
  }
  for (size_t i = 0; i < cpu.size(); ++i) {
    if (i >= norms_begin && i < norms_end) {
      const size_t at = i - (i - norms_begin) % 4;
      float a, b;
      std::memcpy(&a, cpu.data() + at, 4);
      std::memcpy(&b, gpu.data() + at, 4);
      if (std::isnan(a) && std::isnan(b)) continue;
    }
    ASSERT_EQ(cpu[i], gpu[i]) << what << ": first difference at byte " << i << " of " << cpu.size();
  }
}

class GpuEncodeMatchesCpu : public ::testing::TestWithParam<std::tuple<Method, int>> {};

TEST_P(GpuEncodeMatchesCpu, ForEveryDtypeAndRaggedSize) {
  QCCL_REQUIRE_CUDA_DEVICE();
  const auto [method, bits] = GetParam();
  LevelTable table;
  ASSERT_EQ(initial_table(method, bits, &table), qcclSuccess) << thread_last_error();
  CudaCodec codec;
  for (const DataType dtype : kDtypes) {
    for (const uint64_t count : kRaggedSizes) {
      const std::string what = fmt::format("{} bits {} {} count {}", method_name(method), bits,
                                           dtype_name(dtype), count);
      const auto input = AsDtype(GaussianValues(count, static_cast<uint32_t>(count)), dtype);
      const EncodeSpec spec = SpecFor(method, bits, table);
      ExpectSamePayload(CpuPayload(input, dtype, count, spec),
                        GpuPayload(codec, input, dtype, count, spec), what);
    }
  }
}

std::vector<std::tuple<Method, int>> MethodsAndBits() {
  std::vector<std::tuple<Method, int>> cases;
  for (const Method m : kQuantizingMethods)
    for (int bits = (m == Method::kTrn ? 2 : 1); bits <= 8; ++bits) cases.emplace_back(m, bits);
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllMethods, GpuEncodeMatchesCpu, ::testing::ValuesIn(MethodsAndBits()),
                         [](const auto& info) {
                           return fmt::format("{}_{}bits", method_name(std::get<0>(info.param)),
                                              std::get<1>(info.param));
                         });

// Draw keys whose element index is not a multiple of 4 (a Philox group spans
// two buckets' elements), bucket sizes that take the unstaged path (> 8192)
// and the smallest bucket.
TEST(GpuEncode, MatchesCpuForUnalignedIndexBaseAndOtherBucketSizes) {
  QCCL_REQUIRE_CUDA_DEVICE();
  const LevelTable table = uniform_table(3);
  CudaCodec codec;
  for (const uint32_t bucket : {32u, 8192u, 16384u, 65536u}) {
    for (const uint64_t index_base : {0ull, 1ull, 2ull, 4099ull, (1ull << 33) + 3}) {
      EncodeSpec spec = SpecFor(Method::kQsgd, 3, table);
      spec.bucket_size = bucket;
      spec.index_base = index_base;
      const uint64_t count = 3 * 16384 + 77;
      const auto input = AsDtype(GaussianValues(count, 11), DataType::kFloat32);
      ExpectSamePayload(CpuPayload(input, DataType::kFloat32, count, spec),
                        GpuPayload(codec, input, DataType::kFloat32, count, spec),
                        fmt::format("bucket {} index_base {}", bucket, index_base));
    }
  }
}

// A fitted ALQ table is any sorted table with ±1 ends (docs/algorithms.md §3).
TEST(GpuEncode, MatchesCpuForAnIrregularTable) {
  QCCL_REQUIRE_CUDA_DEVICE();
  LevelTable table;
  table.levels = {-1.0f, -0.25065f, -0.12229f, -0.03803f, 0.03803f, 0.12229f, 0.25065f, 1.0f};
  CudaCodec codec;
  const EncodeSpec spec = SpecFor(Method::kAlq, 3, table);
  const auto input = AsDtype(GaussianValues(20000, 3, 0.01f), DataType::kFloat32);
  ExpectSamePayload(CpuPayload(input, DataType::kFloat32, 20000, spec),
                    GpuPayload(codec, input, DataType::kFloat32, 20000, spec), "alq table");
}

TEST(GpuEncode, CastPayloadsMatchCpu) {
  QCCL_REQUIRE_CUDA_DEVICE();
  CudaCodec codec;
  for (const Method method : {Method::kNone, Method::kFp16, Method::kBf16}) {
    for (const DataType dtype : kDtypes) {
      for (const uint64_t count : {0ull, 1ull, 33ull, 8193ull}) {
        EncodeSpec spec;
        spec.method = method;
        const auto input = AsDtype(GaussianValues(count, 5), dtype);
        ExpectSamePayload(CpuPayload(input, dtype, count, spec),
                          GpuPayload(codec, input, dtype, count, spec),
                          fmt::format("{} {} {}", method_name(method), dtype_name(dtype), count));
      }
    }
  }
}

TEST(GpuEncode, ZeroBucketsMatchCpuAndDecodeToExactZeros) {
  QCCL_REQUIRE_CUDA_DEVICE();
  const LevelTable table = uniform_table(4);
  CudaCodec codec;
  std::vector<float> values = GaussianValues(3 * 8192, 9);
  for (int i = 8192; i < 2 * 8192; ++i) values[i] = (i % 2) ? 0.0f : -0.0f;  // bucket 1 is zero
  const auto input = AsDtype(values, DataType::kFloat32);
  const EncodeSpec spec = SpecFor(Method::kQsgd, 4, table);
  const auto gpu = GpuPayload(codec, input, DataType::kFloat32, values.size(), spec);
  ExpectSamePayload(CpuPayload(input, DataType::kFloat32, values.size(), spec), gpu, "zero bucket");
  std::vector<float> decoded(values.size());
  ASSERT_EQ(decode(gpu.data(), gpu.size(), values.size(), decoded.data()), qcclSuccess);
  for (int i = 8192; i < 2 * 8192; ++i) ASSERT_EQ(decoded[i], 0.0f) << i;
}

// Non-finite input must stay non-finite (docs/design.md §5); the symbols match the
// CPU's and the decoded values are non-finite in the same places.
TEST(GpuEncode, NanAndInfPropagateLikeTheCpu) {
  QCCL_REQUIRE_CUDA_DEVICE();
  CudaCodec codec;
  for (const Method method : {Method::kQsgd, Method::kQsgdInf, Method::kTrn}) {
    LevelTable table;
    ASSERT_EQ(initial_table(method, 3, &table), qcclSuccess);
    std::vector<float> values = GaussianValues(4 * 8192, 13);
    values[100] = std::numeric_limits<float>::quiet_NaN();
    values[8192 + 7] = std::numeric_limits<float>::infinity();
    values[2 * 8192 + 9] = -std::numeric_limits<float>::infinity();
    values[3 * 8192 + 1] = 3e38f;  // finite, but its square overflows: the rescaled norm path
    values[3 * 8192 + 2] = -3e38f;
    for (const DataType dtype : {DataType::kFloat32, DataType::kBfloat16}) {
      const auto input = AsDtype(values, dtype);
      const EncodeSpec spec = SpecFor(method, 3, table);
      const auto cpu = CpuPayload(input, dtype, values.size(), spec);
      const auto gpu = GpuPayload(codec, input, dtype, values.size(), spec);
      ExpectSamePayload(cpu, gpu, fmt::format("{} {}", method_name(method), dtype_name(dtype)));
      std::vector<float> from_cpu(values.size()), from_gpu(values.size());
      ASSERT_EQ(decode(cpu.data(), cpu.size(), values.size(), from_cpu.data()), qcclSuccess);
      ASSERT_EQ(decode(gpu.data(), gpu.size(), values.size(), from_gpu.data()), qcclSuccess);
      EXPECT_TRUE(std::isnan(from_gpu[100]));
      EXPECT_FALSE(std::isfinite(from_gpu[8192 + 7]));
      for (size_t i = 0; i < values.size(); ++i) {
        ASSERT_EQ(std::isfinite(from_cpu[i]), std::isfinite(from_gpu[i])) << i;
        if (std::isfinite(from_cpu[i])) {
          ASSERT_EQ(from_cpu[i], from_gpu[i]) << i;
        }
      }
    }
  }
}

// Statistics feed the level fit (docs/design.md §7). The norm and count are exact.
// The GPU sums r and r^2 per norm lane then by the canonical tree; the CPU
// sums sequentially, so those differ by rounding only: tolerance 1e-5 of the
// bucket's sum |r| / sum r^2 (float32 over 8192 terms, a few ulps per term).
// The histogram counts are exact; the GPU weights a bin's count once where
// the CPU adds the weight per coordinate: relative tolerance 1e-12.
TEST(GpuEncode, StatisticsMatchCpu) {
  QCCL_REQUIRE_CUDA_DEVICE();
  const LevelTable table = uniform_table(3);
  const EncodeSpec spec = SpecFor(Method::kQsgd, 3, table);
  std::vector<float> values = GaussianValues(3 * 8192 + 5, 17, 0.5f);
  for (size_t i = 0; i < values.size(); i += 3) values[i] += 0.2f;  // a non-zero mean
  const auto input = AsDtype(values, DataType::kFloat32);
  EncodeStats cpu_stats, gpu_stats;
  CudaCodec codec;
  CpuPayload(input, DataType::kFloat32, values.size(), spec, &cpu_stats);
  GpuPayload(codec, input, DataType::kFloat32, values.size(), spec, &gpu_stats);
  ASSERT_EQ(cpu_stats.buckets.size(), 4u);
  ASSERT_EQ(gpu_stats.buckets.size(), 4u);
  for (size_t b = 0; b < 4; ++b) {
    const BucketStats& c = cpu_stats.buckets[b];
    const BucketStats& g = gpu_stats.buckets[b];
    EXPECT_EQ(c.norm, g.norm) << b;
    EXPECT_EQ(c.count, g.count) << b;
    EXPECT_NEAR(c.sum_r, g.sum_r, 1e-5 * c.count) << b;
    EXPECT_NEAR(c.sum_r2, g.sum_r2, 1e-5 * c.sum_r2) << b;
  }
  for (int i = 0; i < kHistBins; ++i)
    EXPECT_NEAR(cpu_stats.hist[i], gpu_stats.hist[i], 1e-12 * std::abs(cpu_stats.hist[i])) << i;
}

// Four ranks' payloads summed in rank order into an existing accumulator:
// the float32 result equals four CPU decode_accumulate calls bit for bit.
TEST(GpuDecodeAccumulate, EqualsCpuDecodeAccumulateInRankOrder) {
  QCCL_REQUIRE_CUDA_DEVICE();
  const uint64_t count = 2 * 8192 + 333;
  CudaCodec codec;
  for (const int bits : {1, 2, 3, 4, 8}) {
    const LevelTable table = uniform_table(bits);
    std::vector<std::vector<unsigned char>> payloads;
    for (uint32_t rank = 0; rank < 4; ++rank) {
      EncodeSpec spec = SpecFor(Method::kQsgd, bits, table);
      spec.rank = rank;
      const auto input = AsDtype(GaussianValues(count, 100 + rank), DataType::kFloat32);
      payloads.push_back(CpuPayload(input, DataType::kFloat32, count, spec));
    }
    payloads.push_back(CpuPayload(AsDtype(GaussianValues(count, 7), DataType::kFloat32),
                                  DataType::kFloat32, count, EncodeSpec{Method::kBf16}));
    const std::vector<float> start = GaussianValues(count, 99);
    std::vector<float> expected = start;
    for (const auto& p : payloads)
      ASSERT_EQ(decode_accumulate(p.data(), p.size(), count, expected.data()), qcclSuccess);

    std::vector<std::unique_ptr<DeviceBuffer>> device_payloads;
    std::vector<const void*> pointers;
    std::vector<uint64_t> sizes;
    for (const auto& p : payloads) {
      device_payloads.push_back(std::make_unique<DeviceBuffer>(p.size()));
      device_payloads.back()->upload(p.data(), p.size());
      pointers.push_back(device_payloads.back()->get());
      sizes.push_back(p.size());
    }
    DeviceBuffer acc(4 * count);
    acc.upload(start.data(), 4 * count);
    ASSERT_EQ(codec.decode_accumulate_device(pointers.data(), sizes.data(),
                                             static_cast<int>(pointers.size()), count,
                                             static_cast<float*>(acc.get()), nullptr),
              qcclSuccess)
        << thread_last_error();
    const auto got = acc.download(4 * count);
    ASSERT_EQ(std::memcmp(got.data(), expected.data(), 4 * count), 0) << "bits " << bits;

    // assign_first: the CPU decode() of payload 0, then accumulate the rest.
    std::vector<float> assigned(count);
    ASSERT_EQ(decode(payloads[0].data(), payloads[0].size(), count, assigned.data()), qcclSuccess);
    for (size_t p = 1; p < payloads.size(); ++p)
      ASSERT_EQ(decode_accumulate(payloads[p].data(), payloads[p].size(), count, assigned.data()),
                qcclSuccess);
    ASSERT_EQ(codec.decode_accumulate_device(pointers.data(), sizes.data(),
                                             static_cast<int>(pointers.size()), count,
                                             static_cast<float*>(acc.get()), nullptr, false),
              qcclSuccess);
    const auto got_assigned = acc.download(4 * count);
    ASSERT_EQ(std::memcmp(got_assigned.data(), assigned.data(), 4 * count), 0) << "bits " << bits;
  }
}

TEST(GpuDecodeAccumulate, RejectsACorruptHeaderWithoutLaunching) {
  QCCL_REQUIRE_CUDA_DEVICE();
  const LevelTable table = uniform_table(3);
  const uint64_t count = 1000;
  auto payload = CpuPayload(AsDtype(GaussianValues(count, 1), DataType::kFloat32),
                            DataType::kFloat32, count, SpecFor(Method::kQsgd, 3, table));
  payload[sizeof(PayloadHeader) + 5] ^= 0x40;  // a table byte: the checksum no longer holds
  DeviceBuffer device_payload(payload.size());
  device_payload.upload(payload.data(), payload.size());
  const std::vector<float> start(count, 1.5f);
  DeviceBuffer acc(4 * count);
  acc.upload(start.data(), 4 * count);
  const void* pointer = device_payload.get();
  const uint64_t size = payload.size();
  CudaCodec codec;
  EXPECT_EQ(codec.decode_accumulate_device(&pointer, &size, 1, count,
                                           static_cast<float*>(acc.get()), nullptr),
            qcclCorruptPayload);
  EXPECT_NE(thread_last_error().find("checksum"), std::string::npos) << thread_last_error();
  const auto after = acc.download(4 * count);
  EXPECT_EQ(std::memcmp(after.data(), start.data(), 4 * count), 0) << "accumulator was modified";
}

// The device path's decode (docs/gpu.md "Synchronisation points"): N ranks'
// payloads of one layout, back to back, with a different table on one rank
// (a rank one table version behind) and different draw keys. The sums equal
// N CPU decode_accumulate calls bit for bit, assigned or accumulated.
TEST(GpuDecodeUniform, EqualsCpuDecodeAccumulateInRankOrder) {
  QCCL_REQUIRE_CUDA_DEVICE();
  const uint64_t count = 2 * 8192 + 333;
  LevelTable behind;
  behind.levels = {-1.0f, -0.25065f, -0.12229f, -0.03803f, 0.03803f, 0.12229f, 0.25065f, 1.0f};
  const LevelTable current = uniform_table(3);
  std::vector<unsigned char> all;
  PayloadHeader expected{};
  for (uint32_t rank = 0; rank < 4; ++rank) {
    EncodeSpec spec = SpecFor(Method::kAlq, 3, rank == 2 ? behind : current);
    spec.rank = rank;
    spec.table_version = rank == 2 ? 6 : 7;
    const auto input = AsDtype(GaussianValues(count, 100 + rank), DataType::kFloat32);
    const auto payload = CpuPayload(input, DataType::kFloat32, count, spec);
    all.insert(all.end(), payload.begin(), payload.end());
    if (rank == 0) {
      ASSERT_EQ(make_payload_header(spec, count, &expected), qcclSuccess);
    }
  }
  const uint64_t stride = expected.total_bytes;
  ASSERT_EQ(all.size(), 4 * stride);
  DeviceBuffer payloads(all.size());
  payloads.upload(all.data(), all.size());
  CudaCodec codec;
  for (const bool accumulate : {true, false}) {
    const std::vector<float> start = GaussianValues(count, 99);
    std::vector<float> want = start;
    for (int p = 0; p < 4; ++p) {
      const unsigned char* payload = all.data() + p * stride;
      const Result r = p == 0 && !accumulate
                           ? decode(payload, stride, count, want.data())
                           : decode_accumulate(payload, stride, count, want.data());
      ASSERT_EQ(r, qcclSuccess) << thread_last_error();
    }
    DeviceBuffer acc(4 * count);
    acc.upload(start.data(), 4 * count);
    ASSERT_EQ(
        codec.decode_accumulate_uniform_device(payloads.get(), stride, 4, expected,
                                               static_cast<float*>(acc.get()), nullptr, accumulate),
        qcclSuccess)
        << thread_last_error();
    const auto got = acc.download(4 * count);
    EXPECT_EQ(std::memcmp(got.data(), want.data(), 4 * count), 0) << "accumulate " << accumulate;
  }
}

// A payload that fails the device-side check: the call itself cannot know
// (it does not synchronise), so the output becomes NaN at once and the next
// decode call reports qcclCorruptPayload; the one after that is clean.
TEST(GpuDecodeUniform, ACorruptPayloadPoisonsTheOutputAndTheNextCallReportsIt) {
  QCCL_REQUIRE_CUDA_DEVICE();
  const LevelTable table = uniform_table(3);
  const uint64_t count = 1000;
  const EncodeSpec spec = SpecFor(Method::kQsgd, 3, table);
  auto payload = CpuPayload(AsDtype(GaussianValues(count, 1), DataType::kFloat32),
                            DataType::kFloat32, count, spec);
  PayloadHeader expected{};
  ASSERT_EQ(make_payload_header(spec, count, &expected), qcclSuccess);
  const uint64_t stride = payload.size();
  std::vector<unsigned char> two = payload;
  two.insert(two.end(), payload.begin(), payload.end());
  two[stride + sizeof(PayloadHeader) + 5] ^= 0x40;  // rank 1's table: the checksum fails
  DeviceBuffer corrupt(two.size()), clean(payload.size());
  corrupt.upload(two.data(), two.size());
  clean.upload(payload.data(), payload.size());
  DeviceBuffer acc(4 * count);
  CudaCodec codec;

  ASSERT_EQ(codec.decode_accumulate_uniform_device(corrupt.get(), stride, 2, expected,
                                                   static_cast<float*>(acc.get()), nullptr, false),
            qcclSuccess);
  const auto poisoned = acc.download(4 * count);
  for (uint64_t i = 0; i < count; ++i) {
    float x;
    std::memcpy(&x, poisoned.data() + 4 * i, 4);
    ASSERT_TRUE(std::isnan(x)) << "element " << i << " = " << x;
  }
  EXPECT_EQ(codec.decode_accumulate_uniform_device(clean.get(), stride, 1, expected,
                                                   static_cast<float*>(acc.get()), nullptr, false),
            qcclCorruptPayload);
  EXPECT_NE(thread_last_error().find("checksum"), std::string::npos) << thread_last_error();
  ASSERT_EQ(codec.decode_accumulate_uniform_device(clean.get(), stride, 1, expected,
                                                   static_cast<float*>(acc.get()), nullptr, false),
            qcclSuccess)
      << thread_last_error();
  std::vector<float> want(count);
  ASSERT_EQ(decode(payload.data(), payload.size(), count, want.data()), qcclSuccess);
  const auto got = acc.download(4 * count);
  EXPECT_EQ(std::memcmp(got.data(), want.data(), 4 * count), 0);
}

// Argument checks that come before any CUDA call, so they run here without
// a device too: an expected header whose size disagrees with its own layout,
// and a stride shorter than a payload.
TEST(GpuDecodeUniform, RejectsAnInconsistentExpectedHeaderOrShortStride) {
  const LevelTable table = uniform_table(3);
  const EncodeSpec spec = SpecFor(Method::kQsgd, 3, table);
  PayloadHeader expected{};
  ASSERT_EQ(make_payload_header(spec, 1000, &expected), qcclSuccess);
  std::vector<unsigned char> host(2 * expected.total_bytes);  // never read: the checks fail first
  std::vector<float> acc(1000);
  CudaCodec codec;
  PayloadHeader wrong_size = expected;
  wrong_size.total_bytes += 4;
  EXPECT_EQ(codec.decode_accumulate_uniform_device(host.data(), wrong_size.total_bytes, 2,
                                                   wrong_size, acc.data(), nullptr),
            qcclInvalidArgument);
  EXPECT_NE(thread_last_error().find("layout needs"), std::string::npos) << thread_last_error();
  EXPECT_EQ(codec.decode_accumulate_uniform_device(host.data(), expected.total_bytes - 4, 2,
                                                   expected, acc.data(), nullptr),
            qcclInvalidArgument);
  EXPECT_NE(thread_last_error().find("stride"), std::string::npos) << thread_last_error();
}

TEST(GpuEncode, RejectsHostMemoryAndSmallCapacity) {
  QCCL_REQUIRE_CUDA_DEVICE();
  const LevelTable table = uniform_table(3);
  const EncodeSpec spec = SpecFor(Method::kQsgd, 3, table);
  std::vector<float> host(100, 1.0f);
  DeviceBuffer in(400), out(payload_bytes(spec, 100));
  CudaCodec codec;
  EXPECT_EQ(codec.encode_device(host.data(), DataType::kFloat32, 100, spec, out.get(), out.bytes(),
                                nullptr, nullptr),
            qcclInvalidArgument);
  EXPECT_EQ(codec.encode_device(in.get(), DataType::kFloat32, 100, spec, out.get(), out.bytes() - 4,
                                nullptr, nullptr),
            qcclInvalidArgument);
  EXPECT_NE(thread_last_error().find("capacity"), std::string::npos) << thread_last_error();
}

TEST(GpuCast, RoundTripsMatchHostConversions) {
  QCCL_REQUIRE_CUDA_DEVICE();
  const uint64_t count = 10007;
  std::vector<float> values = GaussianValues(count, 21, 1000.0f);
  values[3] = std::numeric_limits<float>::infinity();
  values[4] = 1e-6f;  // an fp16 subnormal
  CudaCodec codec;
  DeviceBuffer in(4 * count), half(2 * count), back(4 * count);
  in.upload(values.data(), 4 * count);
  for (const DataType dtype : {DataType::kFloat16, DataType::kBfloat16}) {
    ASSERT_EQ(codec.cast_from_float_device(static_cast<const float*>(in.get()), count, dtype,
                                           half.get(), nullptr),
              qcclSuccess);
    ASSERT_EQ(codec.cast_to_float_device(half.get(), count, dtype, static_cast<float*>(back.get()),
                                         nullptr),
              qcclSuccess);
    std::vector<unsigned char> expected_half = AsDtype(values, dtype);
    std::vector<float> expected_back(count);
    cast_to_float(expected_half.data(), count, dtype, expected_back.data());
    EXPECT_EQ(half.download(2 * count), expected_half) << dtype_name(dtype);
    const auto got = back.download(4 * count);
    EXPECT_EQ(std::memcmp(got.data(), expected_back.data(), 4 * count), 0) << dtype_name(dtype);
  }
}

}  // namespace
}  // namespace qccl
