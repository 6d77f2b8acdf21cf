// The compressed device path on one GPU, end to end through the public C API
// (qccl.h and the CUDA runtime only; gpu_test_util.h for the skips).
//
// A one-rank communicator normally passes through; with the configuration
// override compressOneRank = "1" (QCCL_COMPRESS_ONE_RANK) it encodes,
// "exchanges" and decodes like a multi-rank one, so a single GPU exercises
// the whole device path. Two transports:
//   nccl  qcclGetUniqueId + qcclCommInitRank(1 rank): device memory native;
//   mpi   qcclCommInitMpi over MPI_COMM_SELF (when the binary has MPI; MPI is
//         initialised on first use as a singleton): device buffers staged
//         through the host.
// The reference is a second communicator with the identical configuration
// that gets the same sequence of calls on host buffers: the CPU and CUDA
// codecs produce the same payload bytes and decode-accumulate in the same
// order (docs/gpu.md, design.md §5.2), so the device result must equal the
// host result byte for byte, and the two communicators' counters must agree.
//
// Every device buffer is [lead][data][256 guard bytes], filled with 0xA5
// first; `lead` is one element when the case is misaligned (the pointers
// handed to qccl are one element past cudaMalloc's). The guards, the lead
// and, out of place, the input must be unchanged afterwards.
//
// The adaptive methods run with re-fits off in the matrix (their statistics
// sums may differ from the CPU's in rounding, docs/gpu.md "Known
// differences"); AdaptiveRefit covers re-fits on their own.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#ifdef QCCL_GPU_TEST_WITH_MPI
#include <mpi.h>
#endif

#include "gpu_test_util.h"
#include "producer_kernel.h"
#include "qccl/qccl.h"

namespace qccl::gpu_test {
namespace {

constexpr size_t kGuardBytes = 256;
constexpr unsigned char kGuard = 0xA5;
constexpr double kProducerMs = 50;  // long enough that an unordered read would see stale data
constexpr int kMaxFailuresPerConfig = 8;

enum class Transport { kNccl, kMpi };

const char* TransportName(Transport t) {
  return t == Transport::kNccl ? "nccl" : "mpi";
}

const char* const kMethods[] = {"none", "fp16", "bf16", "qsgd", "qsgdinf", "nuqsgd",
                                "trn",  "alq",  "alqn", "amq",  "amqn",    "dqsgd"};
static_assert(sizeof(kMethods) / sizeof(kMethods[0]) == qcclNumMethods,
              "one entry per qcclMethod_t");

const qcclDataType_t kTypes[] = {qcclFloat32, qcclFloat16, qcclBfloat16};

const char* TypeName(qcclDataType_t t) {
  return t == qcclFloat32 ? "float32" : t == qcclFloat16 ? "float16" : "bfloat16";
}
size_t TypeSize(qcclDataType_t t) {
  return t == qcclFloat32 ? 4 : 2;
}

// ---- inputs ------------------------------------------------------------------

// IEEE binary16 and bfloat16, round to nearest even. Any bytes would do as
// input (host and device get the same ones); finite values in the intended
// range make the tiny and huge inputs mean what they say.
uint16_t ToHalf(float f) {
  if (std::isnan(f)) return 0x7e00;
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  const double a = std::fabs(static_cast<double>(f));
  if (a >= 65520.0) return sign | 0x7c00;
  if (a < std::ldexp(1.0, -14))  // subnormal: units of 2^-24 (1024 is the smallest normal)
    return sign | static_cast<uint16_t>(std::nearbyint(std::ldexp(a, 24)));
  int e;
  std::frexp(a, &e);
  e -= 1;  // a = 1.m * 2^e
  const int mant = static_cast<int>(std::nearbyint((std::ldexp(a, -e) - 1.0) * 1024.0));
  return sign | static_cast<uint16_t>(((e + 15) << 10) + mant);  // a carry rounds up the exponent
}

uint16_t ToBf16(float f) {
  if (std::isnan(f)) return 0x7fc0;
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

enum class Pattern {
  kGaussian,
  kTiny,  // 1e-30 scale plus subnormals: the squares underflow, the L2 norm takes the rescaled path
  kHuge,  // 1e30 scale: the squares overflow, the same fallback from the other side
};

const char* PatternName(Pattern p) {
  return p == Pattern::kGaussian ? "gaussian" : p == Pattern::kTiny ? "tiny" : "huge";
}

std::vector<unsigned char> Input(size_t n, uint32_t seed, Pattern pattern, qcclDataType_t type) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  const bool half = type == qcclFloat16;  // float16 cannot hold 1e-30 or 1e30
  float scale = 1.0f;
  if (pattern == Pattern::kTiny) scale = half ? 1e-6f : 1e-30f;
  if (pattern == Pattern::kHuge) scale = half ? 1e4f : 1e30f;
  std::vector<unsigned char> out(n * TypeSize(type));
  for (size_t i = 0; i < n; ++i) {
    float v = gauss(rng) * scale;
    if (pattern == Pattern::kTiny && i % 17 == 3) v = half ? 6e-8f : 1e-40f;  // subnormal
    if (half) v = std::clamp(v, -6e4f, 6e4f);
    if (type == qcclFloat32) {
      std::memcpy(out.data() + 4 * i, &v, 4);
    } else {
      const uint16_t h = half ? ToHalf(v) : ToBf16(v);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  }
  return out;
}

// ---- communicators and streams -------------------------------------------------

#ifdef QCCL_GPU_TEST_WITH_MPI
// MPI is initialised on first use (singleton, no mpirun) and finalised after
// the last test; gtest_discover_tests' listing run never touches it.
bool g_mpi_initialised_here = false;

void EnsureMpi() {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (initialised) return;
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
  g_mpi_initialised_here = true;
}

class MpiFinalizer : public ::testing::Environment {
 public:
  void TearDown() override {
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (g_mpi_initialised_here && !finalised) MPI_Finalize();
  }
};
[[maybe_unused]] ::testing::Environment* const g_mpi_finalizer =
    ::testing::AddGlobalTestEnvironment(new MpiFinalizer);
#endif

std::string ResultText(const char* call, qcclResult_t r, qcclComm_t comm) {
  return std::string(call) + ": " + qcclGetErrorString(r) + ": " + qcclGetLastError(comm);
}

qcclConfig_t Config(const char* method, const char* algo, const char* bucket, bool refits) {
  qcclConfig_t c = QCCL_CONFIG_INITIALIZER;
  c.method = method;
  c.algo = algo;
  c.bucketSize = bucket;
  c.minCompressBytes = "0";  // compress every size
  c.compressOneRank = "1";   // ... on one rank too
  c.seed = "20261123";
  c.errorFeedback = "0";  // the two communicators see the same calls, but keep it plain
  if (!refits) {
    c.updateSteps = "none";
    c.updateEvery = "0";
  }
  return c;
}

// The communicator under test (device buffers) and its host-buffer twin.
class CommPair {
 public:
  CommPair() = default;
  CommPair(const CommPair&) = delete;
  CommPair& operator=(const CommPair&) = delete;
  ~CommPair() {
    if (device_ != nullptr) qcclCommDestroy(device_);
    if (host_ != nullptr) qcclCommDestroy(host_);
  }
  // Returns "" on success, else what failed.
  std::string Open(Transport transport, const qcclConfig_t& config) {
    std::string error = OpenOne(transport, config, &device_);
    if (error.empty()) error = OpenOne(transport, config, &host_);
    return error;
  }
  qcclComm_t device() const { return device_; }
  qcclComm_t host() const { return host_; }

 private:
  static std::string OpenOne(Transport transport, const qcclConfig_t& config, qcclComm_t* comm) {
    if (transport == Transport::kNccl) {
      qcclUniqueId id;
      qcclResult_t r = qcclGetUniqueId(&id);
      if (r != qcclSuccess) return ResultText("qcclGetUniqueId", r, nullptr);
      r = qcclCommInitRank(comm, 1, id, 0, &config);
      if (r != qcclSuccess) return ResultText("qcclCommInitRank(1 rank)", r, nullptr);
      return "";
    }
#ifdef QCCL_GPU_TEST_WITH_MPI
    EnsureMpi();
    MPI_Comm self = MPI_COMM_SELF;
    const qcclResult_t r = qcclCommInitMpi(comm, &self, &config);
    if (r != qcclSuccess) return ResultText("qcclCommInitMpi(MPI_COMM_SELF)", r, nullptr);
    return "";
#else
    return "this test binary has no MPI";
#endif
  }

  qcclComm_t device_ = nullptr;
  qcclComm_t host_ = nullptr;
};

// Opens `comms`; where NCCL is missing the test skips (or fails under
// QCCL_TEST_REQUIRE_GPU=1, gpu_test_util.h), on any other error it fails.
#define OPEN_COMM_PAIR(comms, transport, config)                                   \
  do {                                                                             \
    if ((transport) == Transport::kNccl) QCCL_REQUIRE_NCCL();                      \
    const std::string open_error_ = (comms).Open((transport), (config));           \
    if (!open_error_.empty()) {                                                    \
      if ((transport) == Transport::kNccl) QCCL_SKIP_IF_NCCL_MISSING(open_error_); \
      FAIL() << open_error_;                                                       \
    }                                                                              \
  } while (0)

class NonBlockingStream {
 public:
  NonBlockingStream() { created_ = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking); }
  ~NonBlockingStream() {
    if (created_ == cudaSuccess) cudaStreamDestroy(stream_);
  }
  NonBlockingStream(const NonBlockingStream&) = delete;
  NonBlockingStream& operator=(const NonBlockingStream&) = delete;
  cudaError_t created() const { return created_; }
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
  cudaError_t created_ = cudaErrorUnknown;
};

// ---- one call on both communicators ---------------------------------------------

enum class Collective { kAllReduce, kAllGather };

struct Case {
  Collective collective = Collective::kAllReduce;
  qcclDataType_t type = qcclFloat32;
  size_t count = 0;
  qcclRedOp_t op = qcclSum;
  bool in_place = false;
  bool misaligned = false;  // pointers one element past cudaMalloc's
  Pattern pattern = Pattern::kGaussian;
  bool producer = false;        // input written by a ~50 ms kernel just before the call
  bool default_stream = false;  // the legacy default stream instead of the non-blocking one
  uint32_t seed = 1;

  std::string Describe() const {
    char text[256];
    std::snprintf(text, sizeof text, "%s %s count=%zu%s%s%s %s%s on %s stream",
                  collective == Collective::kAllReduce ? "allreduce" : "allgather", TypeName(type),
                  count,
                  collective == Collective::kAllReduce ? (op == qcclSum ? " sum" : " avg") : "",
                  in_place ? " in-place" : " out-of-place", misaligned ? " misaligned" : "",
                  PatternName(pattern), producer ? " after a slow producer kernel" : "",
                  default_stream ? "the default" : "a non-blocking");
    return text;
  }
};

qcclResult_t Call(const Case& c, const void* send, void* recv, qcclComm_t comm,
                  cudaStream_t stream) {
  if (c.collective == Collective::kAllReduce)
    return qcclAllReduce(send, recv, c.count, c.type, c.op, comm, stream);
  return qcclAllGather(send, recv, c.count, c.type, comm, stream);
}

::testing::AssertionResult CudaOk(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << ": " << cudaGetErrorName(e) << ": " << cudaGetErrorString(e);
}

#define RETURN_IF_CUDA_FAILS(call)                          \
  do {                                                      \
    ::testing::AssertionResult ok_ = CudaOk((call), #call); \
    if (!ok_) return ok_;                                   \
  } while (0)

// Whether bytes [from, to) of `buf` are all guard bytes.
::testing::AssertionResult GuardIntact(const std::vector<unsigned char>& buf, size_t from,
                                       size_t to, const char* where) {
  for (size_t i = from; i < to; ++i) {
    if (buf[i] != kGuard) {
      return ::testing::AssertionFailure()
             << where << ": byte " << (i - from) << " of " << (to - from) << " overwritten (0x"
             << std::hex << static_cast<int>(buf[i]) << std::dec << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult SameBytes(const unsigned char* device, const unsigned char* host,
                                     size_t bytes, size_t element, const char* what) {
  if (bytes == 0 || std::memcmp(device, host, bytes) == 0) return ::testing::AssertionSuccess();
  size_t first = bytes, differing = 0;
  for (size_t e = 0; e < bytes / element; ++e) {
    if (std::memcmp(device + e * element, host + e * element, element) != 0) {
      if (first == bytes) first = e;
      ++differing;
    }
  }
  auto hex = [&](const unsigned char* p) {
    std::string s;
    char b[3];
    for (size_t i = element; i-- > 0;) {  // little-endian: print the value's bits
      std::snprintf(b, sizeof b, "%02x", p[i]);
      s += b;
    }
    return s;
  };
  return ::testing::AssertionFailure()
         << what << ": " << differing << " of " << bytes / element
         << " elements differ; first at element " << first << ": device 0x"
         << hex(device + first * element) << ", host 0x" << hex(host + first * element);
}

::testing::AssertionResult SameCounters(qcclComm_t device, qcclComm_t host) {
  qcclStats_t d, h;
  if (qcclCommGetStats(device, &d) != qcclSuccess || qcclCommGetStats(host, &h) != qcclSuccess)
    return ::testing::AssertionFailure() << "qcclCommGetStats failed";
  auto differs = [](const char* name, uint64_t dv, uint64_t hv) {
    return ::testing::AssertionFailure()
           << "counter " << name << ": device communicator " << dv << ", host communicator " << hv;
  };
  if (d.calls != h.calls) return differs("calls", d.calls, h.calls);
  if (d.compressedCalls != h.compressedCalls)
    return differs("compressedCalls", d.compressedCalls, h.compressedCalls);
  if (d.inputBytes != h.inputBytes) return differs("inputBytes", d.inputBytes, h.inputBytes);
  if (d.wireBytes != h.wireBytes) return differs("wireBytes", d.wireBytes, h.wireBytes);
  if (d.step != h.step) return differs("step", d.step, h.step);
  if (d.bits != h.bits) return differs("bits", d.bits, h.bits);
  if (d.tableVersion != h.tableVersion)
    return differs("tableVersion", d.tableVersion, h.tableVersion);
  return ::testing::AssertionSuccess();
}

// Runs `c` on device buffers (comms.device(), `stream`) and on host buffers
// (comms.host()), then compares results, guards and counters.
::testing::AssertionResult RunCase(const CommPair& comms, const Case& c, cudaStream_t stream) {
  const size_t element = TypeSize(c.type);
  const size_t bytes = c.count * element;  // one rank: allgather's output is 1 x sendcount too
  const size_t lead = c.misaligned ? element : 0;
  const size_t total = lead + bytes + kGuardBytes;
  const std::vector<unsigned char> input = Input(c.count, c.seed, c.pattern, c.type);

  // ---- device ----
  DeviceBuffer send_buf(total), recv_buf(total), staged(bytes + 1);
  if (send_buf.get() == nullptr || recv_buf.get() == nullptr || staged.get() == nullptr)
    return ::testing::AssertionFailure() << "cudaMalloc failed";
  auto* send = static_cast<unsigned char*>(send_buf.get()) + lead;
  auto* recv = static_cast<unsigned char*>(recv_buf.get()) + lead;
  unsigned char* in = c.in_place ? recv : send;
  RETURN_IF_CUDA_FAILS(cudaMemset(send_buf.get(), kGuard, total));
  RETURN_IF_CUDA_FAILS(cudaMemset(recv_buf.get(), kGuard, total));
  if (c.producer && bytes > 0) {
    // Stale values where the input goes; the real ones arrive by the kernel.
    const std::vector<unsigned char> stale =
        Input(c.count, c.seed ^ 0x9e3779b9u, c.pattern, c.type);
    RETURN_IF_CUDA_FAILS(cudaMemcpy(in, stale.data(), bytes, cudaMemcpyHostToDevice));
    RETURN_IF_CUDA_FAILS(cudaMemcpy(staged.get(), input.data(), bytes, cudaMemcpyHostToDevice));
  } else if (bytes > 0) {
    RETURN_IF_CUDA_FAILS(cudaMemcpy(in, input.data(), bytes, cudaMemcpyHostToDevice));
  }
  // cudaMemset is asynchronous to the host, and a non-blocking stream does
  // not wait for the legacy default stream: settle the set-up first.
  RETURN_IF_CUDA_FAILS(cudaDeviceSynchronize());
  if (c.producer)
    RETURN_IF_CUDA_FAILS(LaunchSlowProducer(in, staged.get(), bytes, kProducerMs, stream));
  const qcclResult_t r = Call(c, in, recv, comms.device(), stream);
  if (r != qcclSuccess)
    return ::testing::AssertionFailure() << ResultText("device call", r, comms.device());
  RETURN_IF_CUDA_FAILS(cudaStreamSynchronize(stream));
  RETURN_IF_CUDA_FAILS(cudaGetLastError());
  const std::vector<unsigned char> device_recv = recv_buf.download(total);
  const std::vector<unsigned char> device_send = send_buf.download(total);

  // ---- host twin ----
  std::vector<unsigned char> host_send(total, kGuard), host_recv(total, kGuard);
  unsigned char* host_in = (c.in_place ? host_recv.data() : host_send.data()) + lead;
  std::copy(input.begin(), input.end(), host_in);
  const qcclResult_t hr = Call(c, host_in, host_recv.data() + lead, comms.host(), nullptr);
  if (hr != qcclSuccess)
    return ::testing::AssertionFailure() << ResultText("host call", hr, comms.host());

  // ---- compare ----
  ::testing::AssertionResult ok = SameBytes(device_recv.data() + lead, host_recv.data() + lead,
                                            bytes, element, "device result vs host result");
  if (!ok) return ok;
  if (!(ok = GuardIntact(device_recv, 0, lead, "device output: the element before it"))) return ok;
  if (!(ok = GuardIntact(device_recv, lead + bytes, total, "device output: guard after it")))
    return ok;
  if (!(ok = GuardIntact(host_recv, lead + bytes, total, "host output: guard after it"))) return ok;
  if (!c.in_place) {
    if (!(ok = SameBytes(device_send.data() + lead, input.data(), bytes, element,
                         "device input after the call vs before")))
      return ok;
    if (!(ok = GuardIntact(device_send, 0, lead, "device input: the element before it"))) return ok;
    if (!(ok = GuardIntact(device_send, lead + bytes, total, "device input: guard after it")))
      return ok;
  }
  return SameCounters(comms.device(), comms.host());
}

uint64_t CompressedCalls(qcclComm_t comm) {
  qcclStats_t s;
  return qcclCommGetStats(comm, &s) == qcclSuccess ? s.compressedCalls : 0;
}

std::string TransportParamName(Transport t) {
  return TransportName(t);
}

std::vector<Transport> Transports() {
#ifdef QCCL_GPU_TEST_WITH_MPI
  return {Transport::kNccl, Transport::kMpi};
#else
  return {Transport::kNccl};
#endif
}

// ---- the matrix: every method x dtype x algo, sizes, layouts, values --------------

// The calls one configuration gets. `small_bucket`: QCCL_BUCKET_SIZE 32, so
// that 64*32*3 elements are 192 buckets (more than 64 per buffer).
std::vector<Case> MatrixCases(bool small_bucket, int config_index) {
  const std::vector<size_t> sizes =
      small_bucket ? std::vector<size_t>{65, 64 * 32 * 3, 64 * 32 * 3 + 7}
                   : std::vector<size_t>{1, 31, 33, 1000, 8193, 16384, 3 * 8192 + 5};
  const Pattern patterns[] = {Pattern::kTiny, Pattern::kHuge, Pattern::kGaussian};
  std::vector<Case> cases;
  uint32_t seed = 100 + 1000 * config_index;
  for (qcclDataType_t type : kTypes) {
    for (size_t i = 0; i < sizes.size(); ++i) {
      Case plain;
      plain.type = type;
      plain.count = sizes[i];
      plain.op = i % 2 ? qcclAvg : qcclSum;
      plain.default_stream = i % 3 == 0;
      plain.seed = ++seed;
      cases.push_back(plain);
      Case awkward = plain;  // in place, one element off, extreme values
      awkward.in_place = true;
      awkward.misaligned = true;
      awkward.op = i % 2 ? qcclSum : qcclAvg;
      awkward.pattern = patterns[i % 3];
      awkward.default_stream = false;
      awkward.seed = ++seed;
      cases.push_back(awkward);
    }
    Case gather;
    gather.collective = Collective::kAllGather;
    gather.type = type;
    gather.count = sizes.back();
    gather.seed = ++seed;
    cases.push_back(gather);
    gather.count = sizes[sizes.size() / 2];
    gather.in_place = true;
    gather.misaligned = true;
    gather.pattern = Pattern::kTiny;
    gather.seed = ++seed;
    cases.push_back(gather);
  }
  for (Collective collective : {Collective::kAllReduce, Collective::kAllGather}) {
    Case empty;  // count 0: success, nothing touched
    empty.collective = collective;
    empty.count = 0;
    empty.misaligned = true;
    cases.push_back(empty);
  }
  Case produced;  // the input is written by a slow kernel on the same stream
  produced.type = kTypes[config_index % 3];
  produced.count = sizes.back();
  produced.in_place = config_index % 2 == 1;
  produced.producer = true;
  produced.seed = ++seed;
  cases.push_back(produced);
  return cases;
}

using MatrixParam = std::tuple<Transport, const char*>;

class DevicePathMatrix : public ::testing::TestWithParam<MatrixParam> {};

TEST_P(DevicePathMatrix, CompressedDeviceResultEqualsHostPathBitForBit) {
  QCCL_REQUIRE_CUDA_DEVICE();
  const auto [transport, method] = GetParam();
  NonBlockingStream stream;
  ASSERT_EQ(stream.created(), cudaSuccess);
  int config_index = 0;
  for (const char* algo : {"allgather", "sra"}) {
    for (const char* bucket : {"8192", "32"}) {
      SCOPED_TRACE(std::string("algo ") + algo + ", bucket " + bucket);
      CommPair comms;
      OPEN_COMM_PAIR(comms, transport, Config(method, algo, bucket, /*refits=*/false));
      int failures = 0;
      for (const Case& c : MatrixCases(std::strcmp(bucket, "32") == 0, config_index)) {
        const ::testing::AssertionResult ok =
            RunCase(comms, c, c.default_stream ? nullptr : stream.get());
        EXPECT_TRUE(ok) << c.Describe();
        if (!ok && ++failures == kMaxFailuresPerConfig) {
          ADD_FAILURE() << "stopping this configuration after " << failures << " failures";
          break;
        }
      }
      // The override took effect: a one-rank communicator compressed.
      if (std::strcmp(method, "none") != 0 && failures == 0) {
        EXPECT_GT(CompressedCalls(comms.device()), 0u)
            << "compressOneRank = 1, yet no call on the device communicator was compressed";
      }
      ++config_index;
    }
  }
}

std::string MatrixParamName(const ::testing::TestParamInfo<MatrixParam>& info) {
  return std::string(TransportName(std::get<0>(info.param))) + "_" + std::get<1>(info.param);
}

INSTANTIATE_TEST_SUITE_P(EveryMethod, DevicePathMatrix,
                         ::testing::Combine(::testing::ValuesIn(Transports()),
                                            ::testing::ValuesIn(kMethods)),
                         MatrixParamName);

// ---- focused cases ------------------------------------------------------------------

class DevicePath : public ::testing::TestWithParam<Transport> {};

TEST_P(DevicePath, CountZeroSucceedsAndTouchesNothing) {
  QCCL_REQUIRE_CUDA_DEVICE();
  NonBlockingStream stream;
  ASSERT_EQ(stream.created(), cudaSuccess);
  CommPair comms;
  OPEN_COMM_PAIR(comms, GetParam(), Config("qsgd", "allgather", "8192", false));
  for (Collective collective : {Collective::kAllReduce, Collective::kAllGather}) {
    for (qcclDataType_t type : kTypes) {
      for (bool in_place : {false, true}) {
        Case c;
        c.collective = collective;
        c.type = type;
        c.count = 0;
        c.in_place = in_place;
        c.misaligned = true;
        EXPECT_TRUE(RunCase(comms, c, stream.get())) << c.Describe();
      }
    }
  }
}

// The input is produced by a ~50 ms kernel on a cudaStreamNonBlocking stream
// and the collective is called right after it with no synchronisation: it
// must read the produced bytes. dqsgd also reads the buffer for its norm
// (a host copy), the MPI transport stages it through the host.
TEST_P(DevicePath, WaitsForAProducerKernelOnANonBlockingStream) {
  QCCL_REQUIRE_CUDA_DEVICE();
  NonBlockingStream stream;
  ASSERT_EQ(stream.created(), cudaSuccess);
  uint32_t seed = 7;
  for (const char* method : {"qsgd", "alq", "dqsgd", "fp16", "none"}) {
    SCOPED_TRACE(method);
    CommPair comms;
    OPEN_COMM_PAIR(comms, GetParam(), Config(method, "allgather", "8192", false));
    for (Collective collective : {Collective::kAllReduce, Collective::kAllGather}) {
      Case c;
      c.collective = collective;
      c.type = collective == Collective::kAllReduce ? qcclFloat32 : qcclBfloat16;
      c.count = 3 * 8192 + 5;
      c.in_place = collective == Collective::kAllGather;
      c.misaligned = collective == Collective::kAllGather;
      c.producer = true;
      c.seed = ++seed;
      EXPECT_TRUE(RunCase(comms, c, stream.get())) << c.Describe();
    }
  }
}

// Adaptive methods with re-fits (steps 0, 2, 4; a table fitted at step s is
// in force from s + 2). Steps 0 and 1 use the initial table on both
// communicators and must match byte for byte. Later tables are fitted from
// statistics that the GPU sums in lane order and the CPU sequentially
// (docs/gpu.md "Known differences"), so the two tables may differ in the
// last bits: then the results may too, but the levels must agree to 1e-4
// relative. With identical tables the results must be identical.
TEST_P(DevicePath, AdaptiveRefitsKeepDeviceAndHostInStep) {
  QCCL_REQUIRE_CUDA_DEVICE();
  NonBlockingStream stream;
  ASSERT_EQ(stream.created(), cudaSuccess);
  for (const char* method : {"alq", "alqn", "amq", "amqn"}) {
    SCOPED_TRACE(method);
    qcclConfig_t config = Config(method, "allgather", "8192", /*refits=*/true);
    config.updateSteps = "0,2,4";
    config.updateEvery = "0";
    CommPair comms;
    OPEN_COMM_PAIR(comms, GetParam(), config);
    for (int step = 0; step < 8; ++step) {
      Case c;
      c.count = 3 * 8192 + 5;
      c.seed = 500 + step;
      const ::testing::AssertionResult ok = RunCase(comms, c, stream.get());
      if (ok || step < 2) {
        EXPECT_TRUE(ok) << "step " << step << ": " << c.Describe();
        continue;
      }
      qcclStats_t d, h;
      ASSERT_EQ(qcclCommGetStats(comms.device(), &d), qcclSuccess);
      ASSERT_EQ(qcclCommGetStats(comms.host(), &h), qcclSuccess);
      const bool same_table =
          d.numLevels == h.numLevels &&
          std::memcmp(d.levels, h.levels, sizeof(float) * std::max(0, d.numLevels)) == 0;
      if (same_table) {
        ADD_FAILURE() << "step " << step << ", identical level tables: " << ok.message();
        continue;
      }
      ASSERT_EQ(d.numLevels, h.numLevels) << "step " << step;
      for (int i = 0; i < d.numLevels; ++i) {
        EXPECT_NEAR(d.levels[i], h.levels[i], 1e-4 * std::max(1.0f, std::fabs(h.levels[i])))
            << "step " << step << ", level " << i;
      }
      std::printf(
          "[   NOTE   ] %s step %d: device and host tables differ in rounding "
          "(statistics sums), so the results may: %s\n",
          method, step, ok.message());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Transports, DevicePath, ::testing::ValuesIn(Transports()),
                         [](const ::testing::TestParamInfo<Transport>& info) {
                           return TransportParamName(info.param);
                         });

}  // namespace
}  // namespace qccl::gpu_test
