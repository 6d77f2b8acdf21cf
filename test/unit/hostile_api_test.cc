// Hostile input through the C API (fails safe, docs/api.md "Errors", "Size
// limits", "Aliasing"): NULL for every pointer argument, destroyed and
// foreign communicators, enum values out of range, zero and huge counts,
// overlapping buffers and configuration fields out of range. Every case is
// its own test (one ctest test each, so a hang fails as a hang under the
// per-test timeout) and asserts a specific result code and a fragment of
// the error text. Over a one-rank in-process fake transport; the cases of
// api_errors_test.cc, transport_comm_test.cc and nccl_api_errors_test.cc
// are not repeated here.
//
// Huge counts that are within the limit (2^31, 2^32, the largest valid
// count) are never backed by memory: the buffers are addresses far apart
// that nothing reads, because a fault armed at the first allocation the
// call makes (core/fault_injection.h) fails it first, which is also how the
// out-of-memory report (qcclSystemError naming the buffer and its bytes) is
// tested.
#include <gtest/gtest.h>

#include <chrono>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <mutex>
#include <ostream>
#include <string>
#include <vector>

#include "core/fault_injection.h"
#include "engine_completion.h"
#include "fake_transport.h"
#include "qccl/qccl.h"

namespace {

using namespace qccl::fake;

// The limit of docs/api.md "Size limits", written out here (not taken from
// the library): nranks × (4 × count + 4096) <= 2^56 bytes.
constexpr uint64_t kLimit = uint64_t{1} << 56;
constexpr uint64_t kLargestValidCount = (kLimit - 4096) / 4;  // one rank
constexpr uint64_t kTooLargeCount = kLargestValidCount + 1;

// Addresses that are never dereferenced (see the header comment), 2^57
// bytes apart so no claimed buffer overlaps another.
void* far_address(int which) {
  return reinterpret_cast<void*>((uintptr_t{1} << 57) * (which + 1));
}

struct Outcome {
  qcclResult_t result;
  std::string text;  // qcclGetLastError, or the engine callback's error
};

using qccl::test::Completion;

// The communicator a case runs on.
enum class Setup {
  kNone,         // no communicator
  kComm,         // method none
  kCompressed,   // qsgd, compressed on one rank
  kEngine,       // method none, engine started
  kEngineQsgd,   // qsgd compressed on one rank, engine started
  kEngineFused,  // as kEngineQsgd, with error feedback (every group is fused)
};

class Env;
struct Case {
  std::string name;
  Setup setup;
  std::function<Outcome(Env&)> call;
  qcclResult_t expected;
  std::string fragment;  // must appear in the text ("" : no text checked)
};

class Env {
 public:
  explicit Env(Setup setup) : setup_(setup) {}
  ~Env() {
    qccl::testing::disarm_fault();
    if (engine_) qcclEngineStop(comm_);
    if (comm_ != nullptr) qcclCommDestroy(comm_);
  }
  void start() {
    if (setup_ == Setup::kNone) return;
    auto* ctx = new FakeRank(&world_, 0);
    const qcclTransportOps_t ops = fake_ops(ctx);
    qcclConfig_t config = QCCL_CONFIG_INITIALIZER;
    config.timeoutS = "60";
    config.method = "none";
    if (setup_ == Setup::kCompressed || setup_ == Setup::kEngineQsgd ||
        setup_ == Setup::kEngineFused) {
      config.method = "qsgd";
      config.compressOneRank = "1";
      config.minCompressBytes = "0";
    }
    if (setup_ == Setup::kEngineFused) config.errorFeedback = "1";
    ASSERT_EQ(qcclCommInitTransport(&comm_, &ops, &config), qcclSuccess)
        << qcclGetLastError(nullptr);
    if (setup_ == Setup::kEngine || setup_ == Setup::kEngineQsgd || setup_ == Setup::kEngineFused) {
      ASSERT_EQ(qcclEngineStart(comm_), qcclSuccess) << qcclGetLastError(comm_);
      engine_ = true;
    }
  }
  qcclComm_t comm() const { return comm_; }
  // The outcome of a direct call on this communicator.
  Outcome direct(qcclResult_t r) const { return {r, qcclGetLastError(comm_)}; }
  // Enqueues `count` elements; on success, the callback's outcome.
  Outcome enqueue(void* buf, uint64_t count, qcclDataType_t dtype, unsigned flags = 0) {
    Completion done;
    const qcclResult_t r = qcclEnqueueAllReduceFlags(comm_, "t", buf, count, dtype, qcclSum, flags,
                                                     &Completion::callback, &done);
    if (r != qcclSuccess) return direct(r);
    if (!done.wait()) return {qcclInternalError, "the callback never came"};
    return {done.result, done.error};
  }

 private:
  Setup setup_;
  FakeWorld world_{1};
  qcclComm_t comm_ = nullptr;
  bool engine_ = false;
};

// gtest prints the case by its name.
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

class HostileApi : public ::testing::TestWithParam<Case> {};

TEST_P(HostileApi, FailsSafe) {
  const Case& c = GetParam();
  Env env(c.setup);
  env.start();
  if (HasFatalFailure()) return;
  const Outcome out = c.call(env);
  EXPECT_EQ(out.result, c.expected) << qcclGetErrorString(out.result) << ": " << out.text;
  EXPECT_NE(out.text.find(c.fragment), std::string::npos)
      << "expected '" << c.fragment << "' in: " << out.text;
}

// ---- the cases ------------------------------------------------------------------

const qcclDataType_t kDtypes[] = {qcclFloat32, qcclFloat16, qcclBfloat16};
const char* dtype_tag(qcclDataType_t t) {
  return t == qcclFloat32 ? "F32" : t == qcclFloat16 ? "F16" : "Bf16";
}
uint64_t elem_size(qcclDataType_t t) {
  return t == qcclFloat32 ? 4 : 2;
}

// Out-of-range enum values, made at the call (never stored as the enum
// type and loaded again, which UBSan rightly flags); the library reads
// them as ints (raw_enum).
qcclDataType_t bad_dtype(int v) {
  return static_cast<qcclDataType_t>(v);
}
qcclRedOp_t bad_op(int v) {
  return static_cast<qcclRedOp_t>(v);
}

std::string tag(long long v) {
  return v < 0 ? "Neg" + std::to_string(-v) : std::to_string(v);
}

// Calls that take a communicator, as run on `comm`.
struct CommCall {
  const char* name;
  std::function<qcclResult_t(qcclComm_t)> call;
};
std::vector<CommCall> comm_calls() {
  static float x[4] = {1, 2, 3, 4};
  static int value = 0;
  static qcclStats_t stats;
  return {
      {"AllReduce",
       [](qcclComm_t c) { return qcclAllReduce(x, x, 4, qcclFloat32, qcclSum, c, nullptr); }},
      {"AllGather", [](qcclComm_t c) { return qcclAllGather(x, x, 1, qcclFloat32, c, nullptr); }},
      {"CommCount", [](qcclComm_t c) { return qcclCommCount(c, &value); }},
      {"CommUserRank", [](qcclComm_t c) { return qcclCommUserRank(c, &value); }},
      {"CommMarkStep", [](qcclComm_t c) { return qcclCommMarkStep(c); }},
      {"CommSetLearningRate", [](qcclComm_t c) { return qcclCommSetLearningRate(c, 0.1); }},
      {"CommGetStats", [](qcclComm_t c) { return qcclCommGetStats(c, &stats); }},
      {"CommDestroy", [](qcclComm_t c) { return qcclCommDestroy(c); }},
      {"EngineStart", [](qcclComm_t c) { return qcclEngineStart(c); }},
      {"EngineStop", [](qcclComm_t c) { return qcclEngineStop(c); }},
      {"Enqueue",
       [](qcclComm_t c) {
         return qcclEnqueueAllReduce(c, "x", x, 4, qcclFloat32, qcclSum, nullptr, nullptr);
       }},
      {"EnqueueFlags",
       [](qcclComm_t c) {
         return qcclEnqueueAllReduceFlags(c, "x", x, 4, qcclFloat32, qcclSum, 0, nullptr, nullptr);
       }},
      {"EngineGetStats", [](qcclComm_t c) { return qcclEngineGetStats(c, &stats); }},
  };
}

void add_dead_comm_cases(std::vector<Case>* v) {
  for (const CommCall& cc : comm_calls()) {
    auto call = cc.call;
    // A communicator that was destroyed: the handle is looked up, not read.
    v->push_back({std::string("Destroyed") + cc.name, Setup::kNone,
                  [call](Env&) {
                    FakeWorld world(1);
                    auto* ctx = new FakeRank(&world, 0);
                    const qcclTransportOps_t ops = fake_ops(ctx);
                    qcclComm_t comm = nullptr;
                    if (qcclCommInitTransport(&comm, &ops, nullptr) != qcclSuccess)
                      return Outcome{qcclInternalError, "setup failed"};
                    if (qcclCommDestroy(comm) != qcclSuccess)
                      return Outcome{qcclInternalError, "setup destroy failed"};
                    const qcclResult_t r = call(comm);
                    return Outcome{r, qcclGetLastError(comm)};
                  },
                  qcclInvalidUsage, "is not a live communicator"});
    // A pointer that never was a communicator (its bytes are not read).
    v->push_back({std::string("Foreign") + cc.name, Setup::kNone,
                  [call](Env&) {
                    static uint64_t not_a_comm[64] = {};
                    auto comm = reinterpret_cast<qcclComm_t>(not_a_comm);
                    const qcclResult_t r = call(comm);
                    return Outcome{r, qcclGetLastError(comm)};
                  },
                  qcclInvalidUsage, "not a qcclComm_t"});
  }
}

void add_null_pointer_cases(std::vector<Case>* v) {
  static float x[8] = {};
  v->push_back({"NullCountOutput", Setup::kComm,
                [](Env& e) { return e.direct(qcclCommCount(e.comm(), nullptr)); },
                qcclInvalidArgument, "count is NULL"});
  v->push_back({"NullRankOutput", Setup::kComm,
                [](Env& e) { return e.direct(qcclCommUserRank(e.comm(), nullptr)); },
                qcclInvalidArgument, "rank is NULL"});
  v->push_back({"NullStatsOutput", Setup::kComm,
                [](Env& e) { return e.direct(qcclCommGetStats(e.comm(), nullptr)); },
                qcclInvalidArgument, "stats is NULL"});
  v->push_back({"NullEngineStatsOutput", Setup::kEngine,
                [](Env& e) { return e.direct(qcclEngineGetStats(e.comm(), nullptr)); },
                qcclInvalidArgument, "stats is NULL"});
#ifdef QCCL_HAVE_MPI
  v->push_back({"NullMpiComm", Setup::kNone,
                [](Env&) {
                  qcclComm_t comm = nullptr;
                  const qcclResult_t r = qcclCommInitMpi(&comm, nullptr, nullptr);
                  return Outcome{r, qcclGetLastError(nullptr)};
                },
                qcclInvalidArgument, "mpiComm is NULL"});
#endif
  v->push_back({"NullConfigIsTheEnvironment", Setup::kNone,
                [](Env&) {
                  return Outcome{qcclConfigValidate(nullptr), ""};
                },
                qcclSuccess, ""});
  for (qcclDataType_t t : kDtypes) {
    const std::string d = dtype_tag(t);
    v->push_back({"AllReduceNullSend" + d, Setup::kComm,
                  [t](Env& e) {
                    return e.direct(qcclAllReduce(nullptr, x, 4, t, qcclSum, e.comm(), nullptr));
                  },
                  qcclInvalidArgument, "sendbuff is NULL"});
    v->push_back({"AllReduceNullRecv" + d, Setup::kComm,
                  [t](Env& e) {
                    return e.direct(qcclAllReduce(x, nullptr, 4, t, qcclAvg, e.comm(), nullptr));
                  },
                  qcclInvalidArgument, "recvbuff is NULL"});
    v->push_back(
        {"AllGatherNullSend" + d, Setup::kComm,
         [t](Env& e) { return e.direct(qcclAllGather(nullptr, x, 4, t, e.comm(), nullptr)); },
         qcclInvalidArgument, "sendbuff is NULL"});
    v->push_back(
        {"AllGatherNullRecv" + d, Setup::kComm,
         [t](Env& e) { return e.direct(qcclAllGather(x, nullptr, 4, t, e.comm(), nullptr)); },
         qcclInvalidArgument, "recvbuff is NULL"});
    v->push_back({"EnqueueNullBuf" + d, Setup::kEngine,
                  [t](Env& e) {
                    return e.direct(qcclEnqueueAllReduce(e.comm(), "t", nullptr, 4, t, qcclSum,
                                                         nullptr, nullptr));
                  },
                  qcclInvalidArgument, "buf of 't' is NULL"});
  }
  v->push_back({"EnqueueNullName", Setup::kEngine,
                [](Env& e) {
                  return e.direct(qcclEnqueueAllReduce(e.comm(), nullptr, x, 4, qcclFloat32,
                                                       qcclSum, nullptr, nullptr));
                },
                qcclInvalidArgument, "name is NULL or empty"});
  v->push_back({"EnqueueFlagsNullName", Setup::kEngine,
                [](Env& e) {
                  return e.direct(qcclEnqueueAllReduceFlags(e.comm(), nullptr, x, 4, qcclFloat32,
                                                            qcclSum, 0, nullptr, nullptr));
                },
                qcclInvalidArgument, "name is NULL or empty"});
  v->push_back({"EnqueueEmptyName", Setup::kEngine,
                [](Env& e) {
                  return e.direct(qcclEnqueueAllReduce(e.comm(), "", x, 4, qcclFloat32, qcclSum,
                                                       nullptr, nullptr));
                },
                qcclInvalidArgument, "name is NULL or empty"});
  v->push_back({"EnqueueFlagsNullBuf", Setup::kEngine,
                [](Env& e) {
                  return e.direct(qcclEnqueueAllReduceFlags(e.comm(), "t", nullptr, 4, qcclFloat32,
                                                            qcclSum, QCCL_ENQUEUE_UNCOMPRESSED,
                                                            nullptr, nullptr));
                },
                qcclInvalidArgument, "buf of 't' is NULL"});
  // A NULL callback is allowed: the tensor is reduced, nobody is told.
  v->push_back({"EnqueueNullCallback", Setup::kEngine,
                [](Env& e) {
                  return e.direct(qcclEnqueueAllReduce(e.comm(), "t", x, 4, qcclFloat32, qcclSum,
                                                       nullptr, nullptr));
                },
                qcclSuccess, ""});
  // Without an engine, the engine calls say so (also with NULL outputs).
  v->push_back({"EngineStatsWithoutEngine", Setup::kComm,
                [](Env& e) { return e.direct(qcclEngineGetStats(e.comm(), nullptr)); },
                qcclInvalidUsage, "is not started"});
  v->push_back({"EnqueueWithoutEngine", Setup::kComm,
                [](Env& e) {
                  return e.direct(qcclEnqueueAllReduce(e.comm(), nullptr, nullptr, 4, qcclFloat32,
                                                       qcclSum, nullptr, nullptr));
                },
                qcclInvalidUsage, "is not started"});
  v->push_back({"EngineStopWithoutEngine", Setup::kComm,
                [](Env& e) { return e.direct(qcclEngineStop(e.comm())); }, qcclInvalidUsage,
                "is not started"});
  v->push_back({"EngineStartedTwice", Setup::kEngine,
                [](Env& e) { return e.direct(qcclEngineStart(e.comm())); }, qcclInvalidUsage,
                "already started"});
  v->push_back({"DestroyWhileEngineRuns", Setup::kEngine,
                [](Env& e) { return e.direct(qcclCommDestroy(e.comm())); }, qcclInvalidUsage,
                "qcclEngineStop"});
  // Null communicators for the engine calls (api_errors_test has the others).
  for (const CommCall& cc : comm_calls()) {
    const std::string n = cc.name;
    if (n.rfind("Engine", 0) != 0 && n.rfind("Enqueue", 0) != 0) continue;
    auto call = cc.call;
    v->push_back({"NullComm" + n, Setup::kNone,
                  [call](Env&) {
                    return Outcome{call(nullptr), qcclGetLastError(nullptr)};
                  },
                  qcclInvalidArgument, "comm is NULL"});
  }
}

void add_enum_cases(std::vector<Case>* v) {
  static float x[4] = {};
  for (int d : {-1, 3, 4, 100, INT_MAX, INT_MIN}) {
    const std::string fragment = "datatype " + std::to_string(d) + " ";
    v->push_back({"AllReduceDtype" + tag(d), Setup::kComm,
                  [d](Env& e) {
                    return e.direct(
                        qcclAllReduce(x, x, 4, bad_dtype(d), qcclSum, e.comm(), nullptr));
                  },
                  qcclInvalidArgument, fragment});
    v->push_back(
        {"AllGatherDtype" + tag(d), Setup::kComm,
         [d](Env& e) { return e.direct(qcclAllGather(x, x, 1, bad_dtype(d), e.comm(), nullptr)); },
         qcclInvalidArgument, fragment});
    v->push_back({"EnqueueDtype" + tag(d), Setup::kEngine,
                  [d](Env& e) {
                    return e.direct(qcclEnqueueAllReduce(e.comm(), "t", x, 4, bad_dtype(d), qcclSum,
                                                         nullptr, nullptr));
                  },
                  qcclInvalidArgument, fragment});
  }
  for (int o : {-1, 2, 3, INT_MAX, INT_MIN}) {
    const std::string fragment = "reduction op " + std::to_string(o) + " ";
    v->push_back({"AllReduceOp" + tag(o), Setup::kComm,
                  [o](Env& e) {
                    return e.direct(
                        qcclAllReduce(x, x, 4, qcclFloat32, bad_op(o), e.comm(), nullptr));
                  },
                  qcclInvalidArgument, fragment});
    v->push_back({"EnqueueOp" + tag(o), Setup::kEngine,
                  [o](Env& e) {
                    return e.direct(qcclEnqueueAllReduce(e.comm(), "t", x, 4, qcclFloat32,
                                                         bad_op(o), nullptr, nullptr));
                  },
                  qcclInvalidArgument, fragment});
    v->push_back({"EnqueueFlagsOp" + tag(o), Setup::kEngine,
                  [o](Env& e) {
                    return e.direct(qcclEnqueueAllReduceFlags(e.comm(), "t", x, 4, qcclFloat32,
                                                              bad_op(o), 0, nullptr, nullptr));
                  },
                  qcclInvalidArgument, fragment});
  }
  for (unsigned f : {2u, 3u, 0x80000000u, 0xffffffffu}) {
    v->push_back({"EnqueueFlags" + std::to_string(f), Setup::kEngine,
                  [f](Env& e) {
                    return e.direct(qcclEnqueueAllReduceFlags(e.comm(), "t", x, 4, qcclFloat32,
                                                              qcclSum, f, nullptr, nullptr));
                  },
                  qcclInvalidArgument, "unknown flags"});
  }
}

void add_zero_count_cases(std::vector<Case>* v) {
  static float x[4] = {};
  for (qcclDataType_t t : kDtypes) {
    const std::string d = dtype_tag(t);
    v->push_back({"AllReduceZeroCountNullBuffers" + d, Setup::kComm,
                  [t](Env& e) {
                    return e.direct(
                        qcclAllReduce(nullptr, nullptr, 0, t, qcclSum, e.comm(), nullptr));
                  },
                  qcclSuccess, ""});
    v->push_back(
        {"AllGatherZeroCountNullBuffers" + d, Setup::kCompressed,
         [t](Env& e) { return e.direct(qcclAllGather(nullptr, nullptr, 0, t, e.comm(), nullptr)); },
         qcclSuccess, ""});
    v->push_back({"EnqueueZeroCountNullBuf" + d, Setup::kEngine,
                  [t](Env& e) { return e.enqueue(nullptr, 0, t); }, qcclSuccess, ""});
  }
  // A zero count still checks what it can: the communicator and the enums.
  v->push_back({"AllReduceZeroCountBadDtype", Setup::kComm,
                [](Env& e) {
                  return e.direct(qcclAllReduce(x, x, 0, bad_dtype(7), qcclSum, e.comm(), nullptr));
                },
                qcclInvalidArgument, "datatype 7"});
  v->push_back({"AllReduceZeroCountBadOp", Setup::kComm,
                [](Env& e) {
                  return e.direct(
                      qcclAllReduce(x, x, 0, qcclFloat32, bad_op(9), e.comm(), nullptr));
                },
                qcclInvalidArgument, "reduction op 9"});
}

// Counts past the limit: rejected at the entry, naming the argument and
// the limit, whatever the method.
void add_rejected_count_cases(std::vector<Case>* v) {
  for (qcclDataType_t t : kDtypes) {
    const std::string d = dtype_tag(t);
    const std::vector<std::pair<std::string, uint64_t>> counts = {
        {"2Pow62", uint64_t{1} << 62},        {"2Pow63", uint64_t{1} << 63},
        {"2Pow64Minus1", UINT64_MAX},         {"SizeMaxOverElemPlus1", SIZE_MAX / elem_size(t) + 1},
        {"JustPastTheLimit", kTooLargeCount},
    };
    for (const auto& [label, count] : counts) {
      const uint64_t n = count;
      for (Setup s : {Setup::kComm, Setup::kCompressed}) {
        const std::string m = s == Setup::kComm ? "None" : "Qsgd";
        v->push_back({"AllReduce" + m + label + d, s,
                      [t, n](Env& e) {
                        return e.direct(qcclAllReduce(far_address(0), far_address(1), n, t, qcclSum,
                                                      e.comm(), nullptr));
                      },
                      qcclInvalidArgument, "count " + std::to_string(n) + " is too large"});
        v->push_back({"AllGather" + m + label + d, s,
                      [t, n](Env& e) {
                        return e.direct(
                            qcclAllGather(far_address(0), far_address(1), n, t, e.comm(), nullptr));
                      },
                      qcclInvalidArgument, "sendcount " + std::to_string(n) + " is too large"});
      }
      v->push_back({"Enqueue" + label + d, Setup::kEngineQsgd,
                    [t, n](Env& e) { return e.enqueue(far_address(0), n, t); }, qcclInvalidArgument,
                    "count of 't' " + std::to_string(n) + " is too large"});
    }
  }
  // The message names the limit.
  v->push_back({"AllReduceMessageNamesTheLimit", Setup::kComm,
                [](Env& e) {
                  return e.direct(qcclAllReduce(far_address(0), far_address(1), kTooLargeCount,
                                                qcclFloat32, qcclSum, e.comm(), nullptr));
                },
                qcclInvalidArgument, "2^56 bytes"});
}

// Counts within the limit but beyond any memory: the first allocation
// fails (armed fault) with qcclSystemError naming it and its bytes; the
// caller's buffers are never touched.
void add_valid_huge_count_cases(std::vector<Case>* v) {
  for (qcclDataType_t t : kDtypes) {
    const std::string d = dtype_tag(t);
    const std::vector<std::pair<std::string, uint64_t>> counts = {
        {"2Pow31", uint64_t{1} << 31},
        {"2Pow32", uint64_t{1} << 32},
        {"LargestValid", kLargestValidCount},
    };
    for (const auto& [label, count] : counts) {
      const uint64_t n = count;
      const std::string bytes = std::to_string(n * elem_size(t));
      // Method none: the gather copies the send buffer first.
      v->push_back(
          {"AllGatherOutOfMemory" + label + d, Setup::kComm,
           [t, n](Env& e) {
             qccl::testing::arm_fault("allgather send copy", qccl::testing::Fault::kBadAlloc);
             return e.direct(
                 qcclAllGather(far_address(0), far_address(1), n, t, e.comm(), nullptr));
           },
           qcclSystemError,
           "cannot allocate " + bytes + " bytes of host memory for the allgather send copy"});
      // Compressed: the encoded payload is the first buffer.
      v->push_back({"AllReduceOutOfMemory" + label + d, Setup::kCompressed,
                    [t, n](Env& e) {
                      qccl::testing::arm_fault("encoded payload", qccl::testing::Fault::kBadAlloc);
                      return e.direct(qcclAllReduce(far_address(0), far_address(1), n, t, qcclAvg,
                                                    e.comm(), nullptr));
                    },
                    qcclSystemError, "bytes of host memory for the encoded payload"});
      v->push_back({"EnqueueOutOfMemory" + label + d, Setup::kEngineQsgd,
                    [t, n](Env& e) {
                      qccl::testing::arm_fault("encoded payload", qccl::testing::Fault::kBadAlloc);
                      return e.enqueue(far_address(0), n, t);
                    },
                    qcclSystemError, "bytes of host memory for the encoded payload"});
      // Error feedback fuses every group: the fusion buffer comes first.
      v->push_back({"EnqueueFusionBufferOutOfMemory" + label + d, Setup::kEngineFused,
                    [t, n](Env& e) {
                      qccl::testing::arm_fault("fusion buffer", qccl::testing::Fault::kBadAlloc);
                      return e.enqueue(far_address(0), n, t);
                    },
                    qcclSystemError, "cannot allocate " + bytes + " bytes for the fusion buffer"});
    }
  }
}

// docs/api.md "Aliasing": exactly in place is allowed, any other overlap
// is an error.
void add_aliasing_cases(std::vector<Case>* v) {
  for (qcclDataType_t t : kDtypes) {
    const std::string d = dtype_tag(t);
    const uint64_t es = elem_size(t);
    // Success cases run compressed: the fake's passthrough sums float32 only.
    v->push_back({"AllReduceInPlace" + d, Setup::kCompressed,
                  [t](Env& e) {
                    std::vector<unsigned char> buf(64);
                    return e.direct(
                        qcclAllReduce(buf.data(), buf.data(), 8, t, qcclSum, e.comm(), nullptr));
                  },
                  qcclSuccess, ""});
    v->push_back({"AllReduceRecvOverlapsSendTail" + d, Setup::kComm,
                  [t, es](Env& e) {
                    std::vector<unsigned char> buf(64);
                    return e.direct(qcclAllReduce(buf.data(), buf.data() + es, 8, t, qcclSum,
                                                  e.comm(), nullptr));
                  },
                  qcclInvalidArgument, "overlap but the call is not in place"});
    v->push_back({"AllReduceSendOverlapsRecvTail" + d, Setup::kCompressed,
                  [t, es](Env& e) {
                    std::vector<unsigned char> buf(64);
                    return e.direct(qcclAllReduce(buf.data() + 3 * es, buf.data(), 8, t, qcclSum,
                                                  e.comm(), nullptr));
                  },
                  qcclInvalidArgument, "only sendbuff == recvbuff may share memory"});
    v->push_back({"AllReduceOneByteOverlap" + d, Setup::kComm,
                  [t, es](Env& e) {
                    std::vector<unsigned char> buf(64);
                    return e.direct(qcclAllReduce(buf.data(), buf.data() + 4 * es - 1, 4, t,
                                                  qcclSum, e.comm(), nullptr));
                  },
                  qcclInvalidArgument, "overlap"});
    v->push_back({"AllReduceAdjacentIsFine" + d, Setup::kCompressed,
                  [t, es](Env& e) {
                    std::vector<unsigned char> buf(64);
                    return e.direct(qcclAllReduce(buf.data(), buf.data() + 4 * es, 4, t, qcclSum,
                                                  e.comm(), nullptr));
                  },
                  qcclSuccess, ""});
    v->push_back({"AllGatherInPlace" + d, Setup::kCompressed,
                  [t](Env& e) {
                    std::vector<unsigned char> buf(64);
                    return e.direct(qcclAllGather(buf.data(), buf.data(), 4, t, e.comm(), nullptr));
                  },
                  qcclSuccess, ""});
    v->push_back({"AllGatherSendInsideRecvNotItsSlot" + d, Setup::kComm,
                  [t, es](Env& e) {
                    std::vector<unsigned char> buf(64);
                    return e.direct(
                        qcclAllGather(buf.data() + es, buf.data(), 4, t, e.comm(), nullptr));
                  },
                  qcclInvalidArgument, "sendbuff == recvbuff + rank × sendcount"});
    v->push_back({"AllGatherRecvInsideSend" + d, Setup::kComm,
                  [t, es](Env& e) {
                    std::vector<unsigned char> buf(64);
                    return e.direct(
                        qcclAllGather(buf.data(), buf.data() + es, 4, t, e.comm(), nullptr));
                  },
                  qcclInvalidArgument, "overlap"});
  }
  v->push_back({"AllReduceBufferWrapsTheAddressSpace", Setup::kComm,
                [](Env& e) {
                  void* top = reinterpret_cast<void*>(UINTPTR_MAX - 15);
                  return e.direct(qcclAllReduce(top, far_address(0), 16, qcclFloat32, qcclSum,
                                                e.comm(), nullptr));
                },
                qcclInvalidArgument, "wrap around the address space"});
  v->push_back({"AllGatherRecvWrapsTheAddressSpace", Setup::kComm,
                [](Env& e) {
                  void* top = reinterpret_cast<void*>(UINTPTR_MAX - 15);
                  return e.direct(
                      qcclAllGather(far_address(0), top, 16, qcclFloat32, e.comm(), nullptr));
                },
                qcclInvalidArgument, "wrap around the address space"});
}

// qcclConfig_t fields out of range: qcclConfigValidate and the init both
// reject them, naming the variable.
void add_config_cases(std::vector<Case>* v) {
  struct Field {
    const char* name;
    const char* qcclConfig_t::*field;
    std::vector<const char*> bad;
  };
  const std::vector<Field> fields = {
      {"QCCL_METHOD", &qcclConfig_t::method, {"", "bogus", "QSGD ", "none;"}},
      {"QCCL_BITS", &qcclConfig_t::bits, {"0", "9", "-1", "3.5", "18446744073709551617"}},
      {"QCCL_BUCKET_SIZE", &qcclConfig_t::bucketSize, {"0", "31", "33", "16777248", "1e3"}},
      {"QCCL_NORM", &qcclConfig_t::norm, {"l3", "L2x"}},
      {"QCCL_ALGO", &qcclConfig_t::algo, {"ring", "tree"}},
      {"QCCL_MIN_COMPRESS_BYTES",
       &qcclConfig_t::minCompressBytes,
       {"-1", "1T", "99999999999999999999"}},
      {"QCCL_SEED", &qcclConfig_t::seed, {"-1", "18446744073709551616", "seven"}},
      {"QCCL_UPDATE_STEPS", &qcclConfig_t::updateSteps, {"5,3", "1,,2", "-4"}},
      {"QCCL_UPDATE_EVERY", &qcclConfig_t::updateEvery, {"-1", "x"}},
      {"QCCL_MODEL", &qcclConfig_t::model, {"gaussian"}},
      {"QCCL_ERROR_FEEDBACK", &qcclConfig_t::errorFeedback, {"2", "yes please"}},
      {"QCCL_FUSION_THRESHOLD", &qcclConfig_t::fusionThreshold, {"0", "-5", "17179869184G"}},
      {"QCCL_CYCLE_TIME_MS", &qcclConfig_t::cycleTimeMs, {"0", "-1", "nan", "inf", "10001"}},
      {"QCCL_DEBUG", &qcclConfig_t::debug, {"LOUD"}},
      {"QCCL_TIMEOUT_S", &qcclConfig_t::timeoutS, {"0", "-3", "nan", "86401", "1e400"}},
      {"QCCL_COMPRESS_ONE_RANK", &qcclConfig_t::compressOneRank, {"2", "-1"}},
      {"QCCL_TIMELINE", &qcclConfig_t::timeline, {"/nonexistent-qccl-dir/timeline.json"}},
  };
  int k = 0;
  for (const Field& f : fields) {
    for (const char* bad : f.bad) {
      const auto field = f.field;
      const std::string name = f.name;
      const std::string value = bad;
      v->push_back({"ConfigValidate" + name.substr(5) + "Bad" + std::to_string(k++), Setup::kNone,
                    [field, value](Env&) {
                      qcclConfig_t c = QCCL_CONFIG_INITIALIZER;
                      c.*field = value.c_str();
                      return Outcome{qcclConfigValidate(&c), qcclGetLastError(nullptr)};
                    },
                    qcclInvalidArgument, name});
    }
  }
  // Through an init: the communicator stays NULL and the ctx the caller's.
  for (const Field& f : fields) {
    const auto field = f.field;
    const std::string name = f.name;
    const std::string value = f.bad[0];
    v->push_back({"InitTransport" + name.substr(5) + "Bad", Setup::kNone,
                  [field, value](Env&) {
                    FakeWorld world(1);
                    FakeRank rank(&world, 0);
                    const qcclTransportOps_t ops = fake_ops(&rank);
                    qcclConfig_t c = QCCL_CONFIG_INITIALIZER;
                    c.*field = value.c_str();
                    qcclComm_t comm = reinterpret_cast<qcclComm_t>(&rank);
                    const qcclResult_t r = qcclCommInitTransport(&comm, &ops, &c);
                    if (comm != nullptr) return Outcome{qcclInternalError, "comm was not cleared"};
                    return Outcome{r, qcclGetLastError(nullptr)};
                  },
                  qcclInvalidArgument, name});
  }
  for (size_t size :
       {size_t{0}, size_t{8}, sizeof(qcclConfig_t) - 1, sizeof(qcclConfig_t) + 8, SIZE_MAX}) {
    v->push_back({"ConfigValidateSize" + std::to_string(size % 100000), Setup::kNone,
                  [size](Env&) {
                    qcclConfig_t c = QCCL_CONFIG_INITIALIZER;
                    c.size = size;
                    return Outcome{qcclConfigValidate(&c), qcclGetLastError(nullptr)};
                  },
                  qcclInvalidArgument, "QCCL_CONFIG_INITIALIZER"});
  }
  // Cross-field rules.
  v->push_back({"ConfigTrnWithOneBit", Setup::kNone,
                [](Env&) {
                  qcclConfig_t c = QCCL_CONFIG_INITIALIZER;
                  c.method = "trn";
                  c.bits = "1";
                  return Outcome{qcclConfigValidate(&c), qcclGetLastError(nullptr)};
                },
                qcclInvalidArgument, "QCCL_METHOD=trn needs QCCL_BITS >= 2"});
  v->push_back({"ConfigModelForANonAdaptiveMethod", Setup::kNone,
                [](Env&) {
                  qcclConfig_t c = QCCL_CONFIG_INITIALIZER;
                  c.method = "qsgd";
                  c.model = "histogram";
                  return Outcome{qcclConfigValidate(&c), qcclGetLastError(nullptr)};
                },
                qcclInvalidArgument, "applies only to alq"});
}

void add_transport_ops_cases(std::vector<Case>* v) {
  struct Bad {
    std::string label;
    std::function<void(qcclTransportOps_t*)> edit;
    std::string fragment;
  };
  const std::vector<Bad> bads = {
      {"SizeZero", [](qcclTransportOps_t* o) { o->size = 0; }, "ops->size is 0"},
      {"SizeMax", [](qcclTransportOps_t* o) { o->size = SIZE_MAX; }, "ops->size is"},
      {"NranksMinus1", [](qcclTransportOps_t* o) { o->nranks = -1; }, "ops->nranks is -1"},
      {"NranksIntMin", [](qcclTransportOps_t* o) { o->nranks = INT_MIN; }, "must be >= 1"},
      {"RankMinus1", [](qcclTransportOps_t* o) { o->rank = -1; }, "ops->rank -1 is outside"},
      {"RankIntMax", [](qcclTransportOps_t* o) { o->rank = INT_MAX; }, "is outside [0"},
      {"RankIntMin", [](qcclTransportOps_t* o) { o->rank = INT_MIN; }, "is outside [0"},
  };
  for (const Bad& b : bads) {
    auto edit = b.edit;
    v->push_back(
        {"InitTransportOps" + b.label, Setup::kNone,
         [edit](Env&) {
           FakeWorld world(1);
           FakeRank rank(&world, 0);
           qcclTransportOps_t ops = fake_ops(&rank);
           edit(&ops);
           qcclComm_t comm = nullptr;
           return Outcome{qcclCommInitTransport(&comm, &ops, nullptr), qcclGetLastError(nullptr)};
         },
         qcclInvalidArgument, b.fragment});
  }
}

void add_learning_rate_cases(std::vector<Case>* v) {
  const std::vector<std::pair<std::string, double>> bad = {
      {"Zero", 0.0},
      {"MinusZero", -0.0},
      {"Negative", -1e-3},
      {"NaN", std::nan("")},
      {"PlusInf", std::numeric_limits<double>::infinity()},
      {"MinusInf", -std::numeric_limits<double>::infinity()},
  };
  for (const auto& [label, lr] : bad) {
    const double value = lr;
    v->push_back({"LearningRate" + label, Setup::kComm,
                  [value](Env& e) { return e.direct(qcclCommSetLearningRate(e.comm(), value)); },
                  qcclInvalidArgument, "learning rate must be finite and > 0"});
  }
  for (double ok :
       {std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::max()}) {
    v->push_back({std::string("LearningRateExtremeButValid") + (ok < 1 ? "Tiny" : "Huge"),
                  Setup::kComm,
                  [ok](Env& e) { return e.direct(qcclCommSetLearningRate(e.comm(), ok)); },
                  qcclSuccess, ""});
  }
}

void add_double_destroy_case(std::vector<Case>* v) {
  v->push_back({"DoubleDestroy", Setup::kNone,
                [](Env&) {
                  FakeWorld world(1);
                  auto* ctx = new FakeRank(&world, 0);
                  const qcclTransportOps_t ops = fake_ops(ctx);
                  qcclComm_t comm = nullptr;
                  if (qcclCommInitTransport(&comm, &ops, nullptr) != qcclSuccess)
                    return Outcome{qcclInternalError, "setup failed"};
                  if (qcclCommDestroy(comm) != qcclSuccess)
                    return Outcome{qcclInternalError, "first destroy failed"};
                  return Outcome{qcclCommDestroy(comm), qcclGetLastError(comm)};
                },
                qcclInvalidUsage, "destroyed already"});
}

std::vector<Case> all_cases() {
  std::vector<Case> v;
  add_null_pointer_cases(&v);
  add_dead_comm_cases(&v);
  add_double_destroy_case(&v);
  add_enum_cases(&v);
  add_zero_count_cases(&v);
  add_rejected_count_cases(&v);
  add_valid_huge_count_cases(&v);
  add_aliasing_cases(&v);
  add_config_cases(&v);
  add_transport_ops_cases(&v);
  add_learning_rate_cases(&v);
  return v;
}

// In place on a rank other than 0 (sendbuff == recvbuff + rank × sendcount)
// is allowed and gives every rank's values: the aliasing check uses the
// calling rank's index.
TEST(HostileApiTwoRanks, AllGatherInPlaceAtEachRanksOwnSlot) {
  FakeWorld world(2);
  std::vector<std::vector<float>> out(2);
  std::vector<qcclResult_t> results(2, qcclInternalError);
  run_ranks(2, [&](int r) {
    auto* ctx = new FakeRank(&world, r);
    const qcclTransportOps_t ops = fake_ops(ctx);
    qcclConfig_t config = QCCL_CONFIG_INITIALIZER;
    config.method = "none";
    config.timeoutS = "60";
    qcclComm_t comm = nullptr;
    if (qcclCommInitTransport(&comm, &ops, &config) != qcclSuccess) return;
    std::vector<float> recv(6, -1.0f);
    for (int i = 0; i < 3; ++i) recv[3 * r + i] = static_cast<float>(10 * r + i);
    results[r] = qcclAllGather(recv.data() + 3 * r, recv.data(), 3, qcclFloat32, comm, nullptr);
    out[r] = recv;
    qcclCommDestroy(comm);
  });
  const std::vector<float> expected = {0, 1, 2, 10, 11, 12};
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(results[r], qcclSuccess) << r;
    EXPECT_EQ(out[r], expected) << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, HostileApi, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.name;
                         });

}  // namespace
