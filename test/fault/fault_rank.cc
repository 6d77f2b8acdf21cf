// One rank of a fault scenario (docs/collectives.md "Timeouts and broken
// communicators"), run under mpirun by run_fault.py, which checks what each
// rank prints and the job's exit status and wall time.
//
//   fault_rank <scenario> <compressed|uncompressed> <direct|engine>
//
// Every rank makes a warm-up call, then call 1 (where rank 1 misbehaves as
// the scenario says), then call 2 (the same call on every rank), printing
//   RESULT rank=<r> call=<k> code=<qcclResult_t> elapsed=<s> sum=<hash> message=<text>
// for each, then destroys the communicator and finalizes MPI. QCCL_TIMEOUT_S
// comes from the environment.
#include <mpi.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "qccl/qccl.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string scenario;
  bool compressed = true;
  bool engine = false;
};

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int world_size() {
  int n = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

double timeout_s() {
  const char* t = std::getenv("QCCL_TIMEOUT_S");
  return t != nullptr ? std::atof(t) : 300.0;
}

// FNV-1a of the output, so the driver can compare ranks.
uint64_t hash_of(const std::vector<float>& v) {
  uint64_t h = 1469598103934665603ull;
  const auto* p = reinterpret_cast<const unsigned char*>(v.data());
  for (size_t i = 0; i < v.size() * sizeof(float); ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

void report(int call, qcclResult_t code, double elapsed, uint64_t sum, const char* message) {
  std::string text = message != nullptr ? message : "";
  for (char& c : text)
    if (c == '\n') c = ' ';
  std::printf("RESULT rank=%d call=%d code=%d elapsed=%.3f sum=%016llx message=%s\n", world_rank(),
              call, static_cast<int>(code), elapsed, static_cast<unsigned long long>(sum),
              text.c_str());
  std::fflush(stdout);
}

// Resumes this process after `seconds` (a stopped process cannot resume
// itself): a shell sends SIGCONT.
void resume_after(double seconds) {
  const std::string script =
      "sleep " + std::to_string(seconds) + "; kill -CONT " + std::to_string(getpid());
  const char* argv[] = {"/bin/sh", "-c", script.c_str(), nullptr};
  pid_t child = 0;
  posix_spawn(&child, "/bin/sh", nullptr, nullptr, const_cast<char* const*>(argv), environ);
}

struct EngineWait {
  std::atomic<bool> done{false};
  std::atomic<int> code{0};
  char message[512] = {};
};

void on_engine_done(qcclResult_t result, const char*, const char* error, void* user) {
  auto* w = static_cast<EngineWait*>(user);
  std::snprintf(w->message, sizeof w->message, "%s", error);
  w->code = result;
  w->done = true;
}

// One allreduce of `data`, direct or through the engine (waiting for the
// callback at most a generous bound, so a lost callback shows as code -1).
qcclResult_t allreduce(qcclComm_t comm, const Options& o, std::vector<float>& data,
                       const char* name, std::string* message) {
  if (!o.engine) {
    const qcclResult_t r =
        qcclAllReduce(data.data(), data.data(), data.size(), qcclFloat32, qcclSum, comm, nullptr);
    *message = qcclGetLastError(comm);
    return r;
  }
  EngineWait w;
  const qcclResult_t r = qcclEnqueueAllReduce(comm, name, data.data(), data.size(), qcclFloat32,
                                              qcclSum, on_engine_done, &w);
  if (r != qcclSuccess) {
    *message = qcclGetLastError(comm);
    return r;
  }
  const auto deadline = Clock::now() + std::chrono::duration<double>(4 * timeout_s() + 10);
  while (!w.done && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (!w.done) {
    *message = "the engine never completed the tensor";
    return static_cast<qcclResult_t>(-1);
  }
  *message = w.message;
  return static_cast<qcclResult_t>(w.code.load());
}

std::vector<float> input(size_t count, int call) {
  std::vector<float> v(count);
  for (size_t i = 0; i < count; ++i)
    v[i] = static_cast<float>(((i * 2654435761u + world_rank() * 97 + call) % 2001) - 1000) / 512;
  return v;
}

int run(const Options& o) {
  const int me = world_rank();
  const bool faulty = me == 1;
  qcclConfig_t config = QCCL_CONFIG_INITIALIZER;
  config.method = o.compressed ? "qsgd" : "none";
  config.bucketSize = "256";
  config.minCompressBytes = "0";
  if (o.scenario == "abort") config.onTimeout = "abort";
  const size_t count = o.compressed ? (1u << 20) : (1u << 16);

  // Creation over communicators that do not match: rank 0 alone on SELF.
  MPI_Comm over = o.scenario == "init_mismatch" && me == 0 ? MPI_COMM_SELF : MPI_COMM_WORLD;
  qcclComm_t comm = nullptr;
  auto start = Clock::now();
  qcclResult_t r = qcclCommInitMpi(&comm, &over, &config);
  auto seconds = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  report(0, r, seconds(), 0, qcclGetLastError(nullptr));
  if (r != qcclSuccess || o.scenario == "init_mismatch") {
    if (comm != nullptr) qcclCommDestroy(comm);
    return 0;
  }
  if (o.engine) {
    r = qcclEngineStart(comm);
    if (r != qcclSuccess) {
      report(0, r, 0, 0, qcclGetLastError(comm));
      return 1;
    }
  }
  std::string message;
  std::vector<float> warm = input(count, 0);
  r = allreduce(comm, o, warm, "warm-up", &message);
  if (r != qcclSuccess) {
    report(0, r, 0, 0, message.c_str());
    return 1;
  }

  // Call 1: rank 1 misbehaves.
  std::vector<float> data = input(count, 1);
  start = Clock::now();
  if (faulty && o.scenario == "stop") {
    resume_after(2 * timeout_s() + 1);
    raise(SIGSTOP);
  }
  if (faulty && o.scenario == "kill") raise(SIGKILL);
  // QCCL_ON_TIMEOUT=abort: the peers' timeout must end the job meanwhile.
  if (faulty && o.scenario == "abort") std::this_thread::sleep_for(std::chrono::seconds(60));
  if (faulty && o.scenario == "exit") {
    if (o.engine) qcclEngineStop(comm);
    qcclCommDestroy(comm);
    MPI_Finalize();
    std::exit(0);
  }
  if (faulty && o.scenario == "different") {
    std::vector<float> gathered(count * world_size());
    r = qcclAllGather(data.data(), gathered.data(), count, qcclFloat32, comm, nullptr);
    message = qcclGetLastError(comm);
  } else if (faulty && o.scenario == "reject") {
    r = qcclAllReduce(nullptr, data.data(), count, qcclFloat32, qcclSum, comm, nullptr);
    message = qcclGetLastError(comm);
  } else if (faulty && o.scenario == "engine_start") {
    r = qcclEngineStart(comm);
    message = qcclGetLastError(comm);
  } else {
    r = allreduce(comm, o, data, "call-1", &message);
  }
  report(1, r, seconds(), r == qcclSuccess ? hash_of(data) : 0, message.c_str());

  // Call 2: the same on every rank.
  data = input(count, 2);
  start = Clock::now();
  r = allreduce(comm, o, data, "call-2", &message);
  report(2, r, seconds(), r == qcclSuccess ? hash_of(data) : 0, message.c_str());

  if (o.engine) {
    // no_stop: rank 1 is late to the collective qcclEngineStop.
    if (faulty && o.scenario == "no_stop")
      std::this_thread::sleep_for(std::chrono::duration<double>(2 * timeout_s()));
    start = Clock::now();
    r = qcclEngineStop(comm);
    report(3, r, seconds(), 0, qcclGetLastError(comm));
  }
  if (o.scenario == "destroy_engine") {
    qcclEngineStart(comm);
    // Destroy refuses while the engine runs; MPI_Finalize must still stop it.
    const qcclResult_t destroyed = qcclCommDestroy(comm);
    report(4, destroyed, 0, 0, qcclGetLastError(comm));
    return 0;
  }
  qcclCommDestroy(comm);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s <scenario> <compressed|uncompressed> <direct|engine>\n",
                 argv[0]);
    return 2;
  }
  Options o;
  o.scenario = argv[1];
  o.compressed = std::strcmp(argv[2], "compressed") == 0;
  o.engine = std::strcmp(argv[3], "engine") == 0;
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  if (o.scenario == "after_finalize") {
    MPI_Finalize();
    qcclComm_t comm = nullptr;
    MPI_Comm world = MPI_COMM_WORLD;
    const qcclResult_t r = qcclCommInitMpi(&comm, &world, nullptr);
    std::printf("RESULT rank=0 call=0 code=%d elapsed=0 sum=0 message=%s\n", static_cast<int>(r),
                qcclGetLastError(nullptr));
    return 0;
  }
  const int rc = run(o);
  MPI_Finalize();
  return rc;
}
