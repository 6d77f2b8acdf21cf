// The device path in CPU CI (docs/gpu.md "Testing without a GPU"): device
// buffers of a stand-in device (fake_device.h) go through the same API,
// collective layer and algorithms a GPU's do, over both wire kinds: staged
// through host memory (a host transport, as MPI) and stream-ordered (as
// NCCL). Results must equal the host path byte for byte, every rank alike.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "api/comm.h"
#include "codec/half_cast.h"
#include "fake_device.h"
#include "fake_transport.h"
#include "transport/callback_transport.h"

namespace qccl {
namespace {

using fake::FakeDevice;
using fake::FakeRank;
using fake::FakeStream;
using fake::FakeWorld;
using fake::StreamOrderedTransport;

enum class Wire { kStaged, kStreamOrdered };

const char* wire_name(Wire w) {
  return w == Wire::kStaged ? "staged" : "ordered";
}

// A communicator for one rank. kStaged: qcclCommInitTransport over the fake
// callbacks (host memory only, so device buffers are staged). kStreamOrdered:
// the same callbacks behind a transport that takes device memory.
qcclComm_t make_comm(FakeWorld* world, int rank, const qcclConfig_t& config, Wire wire,
                     FakeDevice* device, StreamOrderedTransport** ordered_out = nullptr) {
  auto* ctx = new FakeRank(world, rank);
  const qcclTransportOps_t ops = fake::fake_ops(ctx);
  qcclComm_t comm = nullptr;
  if (wire == Wire::kStaged) {
    EXPECT_EQ(qcclCommInitTransport(&comm, &ops, &config), qcclSuccess)
        << qcclGetLastError(nullptr);
    return comm;
  }
  std::unique_ptr<CallbackTransport> callbacks;
  EXPECT_EQ(CallbackTransport::create(&ops, &callbacks), qcclSuccess);
  CallbackTransport* adopted = callbacks.get();
  auto ordered = std::make_unique<StreamOrderedTransport>(std::move(callbacks), *device);
  if (ordered_out != nullptr) *ordered_out = ordered.get();
  auto c = std::make_unique<qcclComm>();
  const Result resolved = resolve_config(&config, &c->config);
  EXPECT_EQ(finish_comm_init(std::move(c), resolved, thread_last_error(), std::move(ordered),
                             "stream-ordered fake", &comm),
            qcclSuccess)
      << thread_last_error();
  adopted->own_context();
  return comm;
}

qcclConfig_t base_config(const char* method, const char* algo) {
  qcclConfig_t config = QCCL_CONFIG_INITIALIZER;
  config.method = method;
  config.algo = algo;
  config.bucketSize = "256";
  config.minCompressBytes = "0";
  config.updateSteps = "0,1";  // adaptive methods re-fit within the test
  config.compressOneRank = "1";
  return config;
}

// Deterministic input of `count` elements of `dtype` for (rank, step).
std::vector<unsigned char> make_input(int rank, int step, uint64_t count, qcclDataType_t dtype,
                                      float magnitude = 1.0f) {
  const size_t elem = dtype == qcclFloat32 ? 4 : 2;
  std::vector<unsigned char> bytes(count * elem);
  uint64_t state = 0x9e3779b97f4a7c15ull * (rank + 1) + 7919ull * step;
  for (uint64_t i = 0; i < count; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const float u = static_cast<float>((state >> 40) & 0xffffff) / 16777216.0f - 0.5f;
    const float v = magnitude * u * (1.0f + static_cast<float>(i % 7));
    if (dtype == qcclFloat32) {
      std::memcpy(bytes.data() + 4 * i, &v, 4);
    } else {
      const uint16_t h = dtype == qcclFloat16 ? float_to_fp16(v) : float_to_bf16(v);
      std::memcpy(bytes.data() + 2 * i, &h, 2);
    }
  }
  return bytes;
}

size_t elem_size(qcclDataType_t dtype) {
  return dtype == qcclFloat32 ? 4 : 2;
}

// ---- device results equal host results ------------------------------------------------

using Case = std::tuple<int /*ranks*/, const char* /*method*/, const char* /*algo*/, Wire>;

class DevicePathMatchesHost : public ::testing::TestWithParam<Case> {};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  const auto [n, method, algo, wire] = info.param;
  return "n" + std::to_string(n) + "_" + method + "_" + algo + "_" + wire_name(wire);
}

INSTANTIATE_TEST_SUITE_P(Methods, DevicePathMatchesHost,
                         ::testing::Combine(::testing::Values(1, 3),
                                            ::testing::Values("fp16", "bf16", "qsgd", "qsgdinf",
                                                              "nuqsgd", "trn", "alq", "alqn", "amq",
                                                              "amqn", "dqsgd"),
                                            ::testing::Values("allgather", "sra"),
                                            ::testing::Values(Wire::kStaged, Wire::kStreamOrdered)),
                         case_name);

TEST_P(DevicePathMatchesHost, ByteForByteOnEveryRank) {
  const auto [n, method, algo, wire] = GetParam();
  FakeDevice device;
  FakeWorld host_world(n), device_world(n);
  // A ragged count (not a bucket multiple) with more than 64 buckets.
  constexpr uint64_t kCount = 256 * 70 + 37;
  constexpr int kSteps = 3;
  const qcclDataType_t dtypes[] = {qcclFloat32, qcclFloat16, qcclBfloat16};
  std::vector<std::vector<unsigned char>> device_results(n);
  fake::run_ranks(n, [&](int me) {
    const qcclConfig_t config = base_config(method, algo);
    qcclComm_t host = make_comm(&host_world, me, config, Wire::kStaged, &device);
    qcclComm_t dev = make_comm(&device_world, me, config, wire, &device);
    ASSERT_NE(host, nullptr);
    ASSERT_NE(dev, nullptr);
    std::unique_ptr<FakeStream> stream = device.create_stream();
    for (int step = 0; step < kSteps; ++step) {
      const qcclDataType_t dtype = dtypes[step % 3];
      const qcclRedOp_t op = step % 2 == 0 ? qcclSum : qcclAvg;
      const uint64_t bytes = kCount * elem_size(dtype);
      std::vector<unsigned char> expected = make_input(me, step, kCount, dtype);
      ASSERT_EQ(qcclAllReduce(expected.data(), expected.data(), kCount, dtype, op, host, nullptr),
                qcclSuccess)
          << qcclGetLastError(host);
      const std::vector<unsigned char> input = make_input(me, step, kCount, dtype);
      void* send = device.alloc(bytes);
      void* recv = device.alloc(bytes);
      std::memcpy(send, input.data(), bytes);
      ASSERT_EQ(qcclAllReduce(send, recv, kCount, dtype, op, dev, stream.get()), qcclSuccess)
          << qcclGetLastError(dev);
      stream->wait();
      EXPECT_EQ(std::memcmp(recv, expected.data(), bytes), 0)
          << "step " << step << ": the device result differs from the host result on rank " << me;
      device_results[me].assign(static_cast<unsigned char*>(recv),
                                static_cast<unsigned char*>(recv) + bytes);
      device.free(send);
      device.free(recv);
    }
    qcclStats_t host_stats, dev_stats;
    ASSERT_EQ(qcclCommGetStats(host, &host_stats), qcclSuccess);
    ASSERT_EQ(qcclCommGetStats(dev, &dev_stats), qcclSuccess);
    EXPECT_EQ(dev_stats.compressedCalls, static_cast<uint64_t>(kSteps));
    EXPECT_EQ(dev_stats.wireBytes, host_stats.wireBytes);
    EXPECT_EQ(qcclCommDestroy(dev), qcclSuccess);
    EXPECT_EQ(qcclCommDestroy(host), qcclSuccess);
  });
  for (int r = 1; r < n; ++r) EXPECT_EQ(device_results[r], device_results[0]) << "rank " << r;
}

// ---- one rank's device calls in detail ------------------------------------------------

class DevicePath : public ::testing::TestWithParam<Wire> {
 protected:
  // A device communicator on the wire under test and a host one with the
  // same configuration, for the reference results.
  void open_pair(const char* method, const char* algo) {
    const qcclConfig_t config = base_config(method, algo);
    dev_ = make_comm(&world_, 0, config, GetParam(), &device_);
    host_ = make_comm(&host_world_, 0, config, Wire::kStaged, &device_);
  }
  void TearDown() override {
    if (dev_ != nullptr) qcclCommDestroy(dev_);
    if (host_ != nullptr) qcclCommDestroy(host_);
  }

  FakeDevice device_;
  FakeWorld world_{1}, host_world_{1};
  qcclComm_t dev_ = nullptr, host_ = nullptr;
};

INSTANTIATE_TEST_SUITE_P(Wires, DevicePath, ::testing::Values(Wire::kStaged, Wire::kStreamOrdered),
                         [](const ::testing::TestParamInfo<Wire>& i) {
                           return wire_name(i.param);
                         });

// The caller's producer work is still running on the stream when the call
// is made: the call must read the input after it, in stream order.
TEST_P(DevicePath, WaitsForTheProducerOnTheCallersStream) {
  open_pair("alq", "allgather");
  qcclComm_t dev = dev_, host = host_;
  constexpr uint64_t kCount = 4096;
  std::vector<unsigned char> expected = make_input(0, 0, kCount, qcclFloat32);
  const std::vector<unsigned char> input = expected;
  ASSERT_EQ(
      qcclAllReduce(expected.data(), expected.data(), kCount, qcclFloat32, qcclSum, host, nullptr),
      qcclSuccess);
  std::unique_ptr<FakeStream> stream = device_.create_stream();
  void* buf = device_.alloc(kCount * 4);
  stream->enqueue([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    std::memcpy(buf, input.data(), kCount * 4);
  });
  ASSERT_EQ(qcclAllReduce(buf, buf, kCount, qcclFloat32, qcclSum, dev, stream.get()), qcclSuccess)
      << qcclGetLastError(dev);
  stream->wait();
  EXPECT_EQ(std::memcmp(buf, expected.data(), kCount * 4), 0);
  device_.free(buf);
}

// Inputs one element off alignment, in place, with guard bytes after the
// output; and device allgather against the host's.
TEST_P(DevicePath, MisalignedInPlaceAndAllGatherKeepTheirBounds) {
  open_pair("qsgdinf", "allgather");
  qcclComm_t dev = dev_, host = host_;
  constexpr uint64_t kCount = 1000;
  constexpr uint64_t kGuard = 64;
  for (qcclDataType_t dtype : {qcclFloat32, qcclFloat16, qcclBfloat16}) {
    const size_t elem = elem_size(dtype);
    const std::vector<unsigned char> input = make_input(0, 1, kCount, dtype);
    std::vector<unsigned char> expected = input;
    ASSERT_EQ(
        qcclAllReduce(expected.data(), expected.data(), kCount, dtype, qcclAvg, host, nullptr),
        qcclSuccess);
    auto* block = static_cast<unsigned char*>(device_.alloc((kCount + 1) * elem + kGuard));
    std::memset(block, 0xA5, (kCount + 1) * elem + kGuard);
    unsigned char* buf = block + elem;  // one element off
    std::memcpy(buf, input.data(), kCount * elem);
    ASSERT_EQ(qcclAllReduce(buf, buf, kCount, dtype, qcclAvg, dev, nullptr), qcclSuccess)
        << qcclGetLastError(dev);
    device_.default_stream().wait();
    EXPECT_EQ(std::memcmp(buf, expected.data(), kCount * elem), 0);
    for (uint64_t g = 0; g < kGuard; ++g) ASSERT_EQ(buf[kCount * elem + g], 0xA5) << g;
    EXPECT_EQ(block[0], 0xA5);

    std::vector<unsigned char> gathered_host(kCount * elem);
    ASSERT_EQ(qcclAllGather(input.data(), gathered_host.data(), kCount, dtype, host, nullptr),
              qcclSuccess);
    std::memcpy(buf, input.data(), kCount * elem);
    ASSERT_EQ(qcclAllGather(buf, buf, kCount, dtype, dev, nullptr), qcclSuccess)
        << qcclGetLastError(dev);
    device_.default_stream().wait();
    EXPECT_EQ(std::memcmp(buf, gathered_host.data(), kCount * elem), 0);
    for (uint64_t g = 0; g < kGuard; ++g) ASSERT_EQ(buf[kCount * elem + g], 0xA5) << g;
    device_.free(block);
  }
}

// Values whose squares underflow float: the norm's rescale path.
TEST_P(DevicePath, TinyValuesMatchTheHost) {
  open_pair("qsgd", "sra");
  qcclComm_t dev = dev_, host = host_;
  constexpr uint64_t kCount = 2048;
  std::vector<unsigned char> expected = make_input(0, 2, kCount, qcclFloat32, 1e-30f);
  const std::vector<unsigned char> input = expected;
  ASSERT_EQ(
      qcclAllReduce(expected.data(), expected.data(), kCount, qcclFloat32, qcclSum, host, nullptr),
      qcclSuccess);
  void* buf = device_.alloc(kCount * 4);
  std::memcpy(buf, input.data(), kCount * 4);
  ASSERT_EQ(qcclAllReduce(buf, buf, kCount, qcclFloat32, qcclSum, dev, nullptr), qcclSuccess);
  device_.default_stream().wait();
  EXPECT_EQ(std::memcmp(buf, expected.data(), kCount * 4), 0);
  float nonzero = 0;
  std::memcpy(&nonzero, expected.data() + 4 * 5, 4);
  EXPECT_NE(nonzero, 0.0f) << "the tiny values must survive, not flush to zero";
  device_.free(buf);
}

TEST_P(DevicePath, CountZeroTouchesNothing) {
  qcclComm_t dev = make_comm(&world_, 0, base_config("alq", "allgather"), GetParam(), &device_);
  void* buf = device_.alloc(16);
  EXPECT_EQ(qcclAllReduce(buf, buf, 0, qcclFloat32, qcclSum, dev, nullptr), qcclSuccess);
  EXPECT_EQ(qcclAllGather(buf, buf, 0, qcclFloat32, dev, nullptr), qcclSuccess);
  EXPECT_EQ(device_.codecs_made.load(), 0) << "count 0 must not set up the device path";
  EXPECT_EQ(device_.device_switches.load(), 0);
  device_.free(buf);
  qcclCommDestroy(dev);
}

TEST_P(DevicePath, HostAndDeviceBuffersMayNotBeMixed) {
  qcclComm_t dev = make_comm(&world_, 0, base_config("alq", "allgather"), GetParam(), &device_);
  void* on_device = device_.alloc(1024 * 4);
  std::vector<float> on_host(1024);
  EXPECT_EQ(qcclAllReduce(on_device, on_host.data(), 1024, qcclFloat32, qcclSum, dev, nullptr),
            qcclInvalidArgument);
  EXPECT_NE(std::string(qcclGetLastError(dev)).find("both must be host or both device"),
            std::string::npos)
      << qcclGetLastError(dev);
  device_.free(on_device);
  qcclCommDestroy(dev);
}

// Host-buffer calls never touch the device; device calls make the
// communicator's device current and restore the caller's.
TEST_P(DevicePath, OnlyDeviceCallsSwitchTheDeviceAndTheyRestoreIt) {
  qcclComm_t dev = make_comm(&world_, 0, base_config("qsgd", "allgather"), GetParam(), &device_);
  std::vector<float> host(4096, 1.0f);
  ASSERT_EQ(qcclAllReduce(host.data(), host.data(), 4096, qcclFloat32, qcclSum, dev, nullptr),
            qcclSuccess);
  EXPECT_EQ(device_.device_switches.load(), 0);
  EXPECT_EQ(device_.codecs_made.load(), 0);
  FakeDevice::current_device() = 7;  // the caller's
  void* buf = device_.alloc(4096 * 4);
  ASSERT_EQ(qcclAllReduce(buf, buf, 4096, qcclFloat32, qcclSum, dev, nullptr), qcclSuccess);
  EXPECT_EQ(device_.device_switches.load(), 2);  // to the communicator's, and back
  EXPECT_EQ(FakeDevice::current_device(), 7);
  device_.default_stream().wait();
  device_.free(buf);
  qcclCommDestroy(dev);
}

// Steady state: no allocation, and the synchronisations docs/gpu.md lists
// ("Synchronisations"): none over a stream-ordered wire; over a staged one,
// two per payload exchange (copy out before the host transport reads, copy
// back before the stage is reused).
TEST_P(DevicePath, SteadyStateNeitherAllocatesNorWaitsMoreThanDocumented) {
  for (const char* algo : {"allgather", "sra"}) {
    FakeDevice::current_device() = -1;
    FakeWorld world(1);
    qcclComm_t dev = make_comm(&world, 0, base_config("qsgd", algo), GetParam(), &device_);
    constexpr uint64_t kCount = 256 * 40;
    void* buf = device_.alloc(kCount * 4);
    ASSERT_EQ(qcclAllReduce(buf, buf, kCount, qcclFloat32, qcclSum, dev, nullptr), qcclSuccess);
    device_.default_stream().wait();
    const Workspace* ws = dev->collectives->device_workspace();
    ASSERT_NE(ws, nullptr);
    const uint64_t growths = ws->growths;
    const int allocations = device_.allocations.load();
    const int syncs = device_.syncs.load();
    constexpr int kCalls = 5;
    for (int i = 0; i < kCalls; ++i)
      ASSERT_EQ(qcclAllReduce(buf, buf, kCount, qcclFloat32, qcclSum, dev, nullptr), qcclSuccess);
    device_.default_stream().wait();
    EXPECT_EQ(ws->growths, growths) << algo;
    EXPECT_EQ(device_.allocations.load(), allocations) << algo;
    const int exchanges = std::string(algo) == "sra" ? 2 : 1;
    const int per_call = GetParam() == Wire::kStaged ? 2 * exchanges : 0;
    EXPECT_EQ(device_.syncs.load() - syncs, kCalls * per_call) << algo;
    // A larger call grows the workspace.
    void* big = device_.alloc(4 * kCount * 4);
    ASSERT_EQ(qcclAllReduce(big, big, 4 * kCount, qcclFloat32, qcclSum, dev, nullptr), qcclSuccess);
    device_.default_stream().wait();
    EXPECT_GT(ws->growths, growths) << algo;
    device_.free(big);
    device_.free(buf);
    qcclCommDestroy(dev);
  }
}

// Uncompressed calls on device buffers: the transport's own allreduce and
// allgather, staged or stream-ordered, equal to the host path's.
TEST_P(DevicePath, PassthroughMatchesTheHost) {
  open_pair("none", "allgather");
  constexpr uint64_t kCount = 3000;
  const std::vector<unsigned char> input = make_input(0, 4, kCount, qcclFloat32);
  std::vector<unsigned char> expected = input, gathered(kCount * 4);
  ASSERT_EQ(
      qcclAllReduce(expected.data(), expected.data(), kCount, qcclFloat32, qcclAvg, host_, nullptr),
      qcclSuccess);
  ASSERT_EQ(qcclAllGather(input.data(), gathered.data(), kCount, qcclFloat32, host_, nullptr),
            qcclSuccess);
  void* send = device_.alloc(kCount * 4);
  void* recv = device_.alloc(kCount * 4);
  std::memcpy(send, input.data(), kCount * 4);
  ASSERT_EQ(qcclAllReduce(send, recv, kCount, qcclFloat32, qcclAvg, dev_, nullptr), qcclSuccess)
      << qcclGetLastError(dev_);
  device_.default_stream().wait();
  EXPECT_EQ(std::memcmp(recv, expected.data(), kCount * 4), 0);
  ASSERT_EQ(qcclAllGather(send, send, kCount, qcclFloat32, dev_, nullptr), qcclSuccess)
      << qcclGetLastError(dev_);
  device_.default_stream().wait();
  EXPECT_EQ(std::memcmp(send, gathered.data(), kCount * 4), 0);
  qcclStats_t stats;
  ASSERT_EQ(qcclCommGetStats(dev_, &stats), qcclSuccess);
  EXPECT_EQ(stats.compressedCalls, 0u);
  device_.free(send);
  device_.free(recv);
}

// ---- the deferred corrupt-payload error -------------------------------------------------

// The corrupted rank's output is NaN, and the error is reported once: by
// the call itself when the device has already finished the decode by the
// time the call returns, else by the next device call (docs/gpu.md
// "Corrupt payloads on the device"). Either way the ranks stay in step.
TEST(DevicePathErrors, CorruptPayloadGivesNaNAndIsReportedOnce) {
  FakeDevice device;
  FakeWorld world(2);
  std::vector<std::vector<Result>> calls(2, std::vector<Result>(3, qcclSuccess));
  std::vector<std::string> messages(2);
  std::vector<float> first_output(2);
  fake::run_ranks(2, [&](int me) {
    StreamOrderedTransport* wire = nullptr;
    qcclComm_t dev = make_comm(&world, me, base_config("qsgd", "allgather"), Wire::kStreamOrdered,
                               &device, &wire);
    constexpr uint64_t kCount = 2048;
    void* buf = device.alloc(kCount * 4);
    const std::vector<unsigned char> input = make_input(me, 0, kCount, qcclFloat32);
    if (me == 1) wire->corrupt_next_payload = true;
    // No ASSERT here: a rank that left early would leave its peer waiting.
    for (int call = 0; call < 3; ++call) {
      std::memcpy(buf, input.data(), kCount * 4);
      calls[me][call] = qcclAllReduce(buf, buf, kCount, qcclFloat32, qcclSum, dev, nullptr);
      if (calls[me][call] != qcclSuccess) messages[me] = qcclGetLastError(dev);
      device.default_stream().wait();
      if (call == 0) std::memcpy(&first_output[me], buf, 4);
    }
    device.free(buf);
    qcclCommDestroy(dev);
  });
  EXPECT_TRUE(std::isnan(first_output[1])) << "the corrupted rank's output must be NaN";
  EXPECT_FALSE(std::isnan(first_output[0]));
  for (int call = 0; call < 3; ++call) EXPECT_EQ(calls[0][call], qcclSuccess) << call;
  const int reported = (calls[1][0] == qcclCorruptPayload) + (calls[1][1] == qcclCorruptPayload);
  EXPECT_EQ(reported, 1) << "reported by the first or the second call, once";
  EXPECT_TRUE(calls[1][0] == qcclSuccess || calls[1][1] == qcclSuccess);
  EXPECT_EQ(calls[1][2], qcclSuccess) << "the call after works again";
  EXPECT_NE(messages[1].find("NaN"), std::string::npos) << messages[1];
}

}  // namespace
}  // namespace qccl

namespace qccl {
namespace {

// The same corruption on host buffers is reported by the call itself, naming
// the rank whose payload failed.
TEST(DevicePathErrors, CorruptPayloadOnHostBuffersFailsTheCallNamingTheRank) {
  FakeDevice device;
  FakeWorld world(2);
  std::vector<Result> results(2);
  std::vector<std::string> messages(2);
  fake::run_ranks(2, [&](int me) {
    StreamOrderedTransport* wire = nullptr;
    qcclComm_t comm = make_comm(&world, me, base_config("qsgd", "allgather"), Wire::kStreamOrdered,
                                &device, &wire);
    std::vector<float> buf(2048, 1.0f + me);
    if (me == 1) wire->corrupt_next_payload = true;
    results[me] =
        qcclAllReduce(buf.data(), buf.data(), buf.size(), qcclFloat32, qcclSum, comm, nullptr);
    messages[me] = qcclGetLastError(comm);
    qcclCommDestroy(comm);
  });
  EXPECT_EQ(results[0], qcclSuccess);
  EXPECT_EQ(results[1], qcclCorruptPayload) << messages[1];
  EXPECT_NE(messages[1].find("payload from rank 0"), std::string::npos) << messages[1];
}

}  // namespace
}  // namespace qccl
