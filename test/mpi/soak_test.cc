// Soak (docs/collectives.md, docs/engine.md): a long schedule of mixed calls
// (sizes 0..16 MiB, every method, every dtype, QCCL_ALGO allgather / sra /
// auto, passthrough below QCCL_MIN_COMPRESS_BYTES; direct qcclAllReduce and
// qcclAllGather calls and bursts through the engine), drawn from a fixed
// seed so every rank makes the same calls. Every output must be identical on
// all ranks (hashes compared), equal the exact reference where the call was
// not compressed and lie within a method's error bound where it was, and the
// resident memory must stay flat after the warm-up.
//
// QCCL_SOAK_ITERS: calls in the schedule (default 100, the CI soak's);
// QCCL_SOAK_SECONDS: stop after the burst that crosses this wall time
// (default: no limit); QCCL_SOAK_MAX_BYTES: largest buffer (default 16 MiB,
// 4 MiB under ASan).
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <tuple>

#include "codec/cpu_codec.h"
#include "core/method.h"
#include "engine_test_util.h"

namespace qccl::test {
namespace {

// A "Rss...:" line of /proc/self/status in KiB (-1 if absent).
long status_kib(const char* field) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  long kib = -1;
  const size_t n = std::strlen(field);
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, field, n) == 0 && line[n] == ':') {
      kib = std::atol(line + n + 1);
      break;
    }
  }
  std::fclose(f);
  return kib;
}

// This rank's memory in KiB, measured after malloc_trim(0) hands the free
// memory of every malloc arena back to the system (the engine's threads
// allocate in arenas of their own, which otherwise keep what they freed):
// - rss_anon (RssAnon: heap, mappings, stacks) is what the process holds;
//   the rest of RSS (RssFile) grows as code pages of MPI and its plugins
//   are first executed, which says nothing about leaks;
// - live_heap: bytes malloc has handed out and not had back;
// - vm_rss: the whole RSS, for the record.
struct Memory {
  long rss_anon = 0, live_heap = 0, vm_rss = 0;
};

Memory measure_memory() {
  malloc_trim(0);
  const struct mallinfo2 m = mallinfo2();
  Memory out;
  out.rss_anon = status_kib("RssAnon");
  out.live_heap = static_cast<long>((m.uordblks + m.hblkhd) / 1024);
  out.vm_rss = status_kib("VmRSS");
  return out;
}

// Every rank's value, in rank order.
std::vector<long> gather_ranks(long value) {
  std::vector<long> all(world_size());
  MPI_Allgather(&value, 1, MPI_LONG, all.data(), 1, MPI_LONG, MPI_COMM_WORLD);
  return all;
}

std::string join(const std::vector<long>& values) {
  std::string out;
  for (long v : values) out += (out.empty() ? "" : " ") + std::to_string(v);
  return out;
}

double env_number(const char* name, double fallback) {
  const char* text = std::getenv(name);
  return text != nullptr && *text != '\0' ? std::atof(text) : fallback;
}

// One communicator setting of the soak: a method and an algorithm.
struct Setting {
  std::string method, algo;
};

std::vector<Setting> all_settings() {
  std::vector<Setting> out{{"none", "auto"}};
  for (const std::string& m : compressed_methods())
    for (const char* a : {"allgather", "sra", "auto"}) out.push_back({m, a});
  return out;
}

// Buffers of at least 4 KiB are compressed (smaller ones take passthrough).
constexpr uint64_t kMinCompressBytes = 4096;

// The soak's settings over the world communicator (4 bits, buckets of 256).
CommOptions soak_options(const Setting& s) {
  CommOptions o;
  o.method = s.method;
  o.algo = s.algo;
  o.bits = "4";
  o.bucket = "256";
  o.min_bytes = std::to_string(kMinCompressBytes);
  o.seed = "5";
  o.timeout = "300";
  return o;
}

struct SoakComm : Comm {
  explicit SoakComm(const Setting& s) : Comm(soak_options(s)), setting(s) {}
  Setting setting;
};

enum class Path { kAllReduce = 0, kAllGather = 1, kEngine = 2 };
const char* path_name(Path p) {
  return p == Path::kAllReduce   ? "qcclAllReduce"
         : p == Path::kAllGather ? "qcclAllGather"
                                 : "engine";
}

struct Call {
  uint64_t id = 0;  // index in the schedule: names the call and seeds its inputs
  size_t count = 0;
  DataType dtype = DataType::kFloat32;
  qcclRedOp_t op = qcclSum;
};

// Direct bursts hold one call; engine bursts 1..6 calls enqueued together
// (so the engine fuses them) between an engine start and stop.
struct Burst {
  size_t setting = 0;
  Path path = Path::kAllReduce;
  std::vector<Call> calls;
  uint64_t bytes() const {
    uint64_t b = 0;
    for (const Call& c : calls) b += c.count * dtype_size(c.dtype);
    return b;
  }
};

// Sizes: every 32nd call is large, log-uniform in [max_bytes / 4,
// max_bytes]; of the others 5% are empty, 25% below the compression
// threshold and the rest log-uniform between 4 KiB and 1 MiB. Large calls
// are what the CPU time goes to, so they are few and at fixed places (the
// CI's 100 calls hold 3).
constexpr uint64_t kUsualMaxBytes = 1 << 20;
size_t draw_count(std::mt19937_64& gen, DataType t, uint64_t max_bytes, bool large) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const size_t elem = dtype_size(t);
  const auto log_uniform = [&](double lo, double hi) {
    return static_cast<size_t>(std::exp(std::log(lo) + u(gen) * (std::log(hi) - std::log(lo))));
  };
  if (large) return log_uniform(max_bytes / 4.0, max_bytes) / elem;
  const double kind = u(gen);
  if (kind < 0.05) return 0;
  if (kind < 0.30) return 1 + static_cast<size_t>(u(gen) * (kMinCompressBytes / elem - 1));
  return log_uniform(kMinCompressBytes, std::min(kUsualMaxBytes, max_bytes)) / elem;
}

std::vector<Burst> draw_schedule(uint64_t calls, size_t num_settings, uint64_t max_bytes) {
  std::mt19937_64 gen(20261208);
  std::vector<Burst> out;
  uint64_t id = 0;
  while (id < calls) {
    Burst b;
    b.setting = gen() % num_settings;
    const uint64_t p = gen() % 10;  // 5 allreduce : 2 allgather : 3 engine
    b.path = p < 5 ? Path::kAllReduce : p < 7 ? Path::kAllGather : Path::kEngine;
    const uint64_t n = b.path == Path::kEngine ? 1 + gen() % 6 : 1;
    for (uint64_t k = 0; k < n && id < calls; ++k) {
      Call c;
      c.id = id++;
      c.dtype = static_cast<DataType>(gen() % 3);
      c.op = gen() % 4 == 0 ? qcclAvg : qcclSum;
      // qcclAllGather's receive buffer is N times the input: a quarter.
      c.count = draw_count(gen, c.dtype, b.path == Path::kAllGather ? max_bytes / 4 : max_bytes,
                           c.id % 32 == 5);
      b.calls.push_back(c);
    }
    out.push_back(std::move(b));
  }
  return out;
}

// The warm-up takes every workspace to the largest size the schedule will
// ask of it: for every (setting, path, dtype) the largest direct call; for
// the engine, which fuses by dtype, two tensors per (setting, dtype) that
// add up to the most elements of that dtype any burst enqueues.
std::vector<Burst> warmup_of(const std::vector<Burst>& schedule, uint64_t first_id) {
  std::map<std::tuple<size_t, int, int>, Burst> largest;
  for (const Burst& b : schedule) {
    if (b.path == Path::kEngine) continue;
    Burst& slot =
        largest[{b.setting, static_cast<int>(b.path), static_cast<int>(b.calls[0].dtype)}];
    if (slot.calls.empty() || b.bytes() > slot.bytes()) slot = b;
  }
  std::map<std::pair<size_t, int>, size_t> engine_elements;
  for (const Burst& b : schedule) {
    if (b.path != Path::kEngine) continue;
    size_t per_dtype[3] = {0, 0, 0};
    for (const Call& c : b.calls) per_dtype[static_cast<int>(c.dtype)] += c.count;
    for (int t = 0; t < 3; ++t) {
      size_t& most = engine_elements[{b.setting, t}];
      most = std::max(most, per_dtype[t]);
    }
  }
  std::vector<Burst> out;
  for (const auto& [key, burst] : largest) out.push_back(burst);
  for (const auto& [key, elements] : engine_elements) {
    if (elements == 0) continue;
    Burst b;
    b.setting = key.first;
    b.path = Path::kEngine;
    for (size_t part : {elements / 2, elements - elements / 2}) {
      Call c;
      c.id = first_id++;
      c.count = part;
      c.dtype = static_cast<DataType>(key.second);
      b.calls.push_back(c);
    }
    out.push_back(b);
  }
  return out;
}

// Rank `rank`'s input of call `id`: multiples of 1/64 in [-3.1, 3.9] (at
// most 8 significant bits: exact in float32, float16 and bfloat16, and a
// sum over 4 ranks is exact in float32), with a per-rank mean.
float input_value(int rank, uint64_t id, size_t i) {
  uint64_t z = (id * 0x9E3779B97F4A7C15ull) ^ (static_cast<uint64_t>(rank) << 48) ^ i;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(static_cast<int>(z % 401) - 200 + 10 * (rank + 1)) / 64.0f;
}

std::vector<unsigned char> input_bytes(int rank, const Call& c) {
  std::vector<float> v(c.count);
  for (size_t i = 0; i < c.count; ++i) v[i] = input_value(rank, c.id, i);
  std::vector<unsigned char> bytes(c.count * dtype_size(c.dtype));
  cast_from_float(v.data(), c.count, c.dtype, bytes.data());
  return bytes;
}

std::vector<float> widen(const void* bytes, size_t count, DataType t) {
  std::vector<float> v(count);
  cast_to_float(bytes, count, t, v.data());
  return v;
}

// The uncompressed allreduce's exact bytes (docs/collectives.md
// "Determinism"): the float32 sum (exact for these inputs) rounded once to
// the dtype; avg then widens, multiplies by the float 1/N and rounds again.
std::vector<unsigned char> exact_allreduce(const Call& c, int n) {
  std::vector<float> sum(c.count, 0.0f);
  for (int r = 0; r < n; ++r)
    for (size_t i = 0; i < c.count; ++i) sum[i] += input_value(r, c.id, i);
  std::vector<unsigned char> bytes(c.count * dtype_size(c.dtype));
  cast_from_float(sum.data(), c.count, c.dtype, bytes.data());
  if (c.op == qcclAvg) {
    std::vector<float> avg = widen(bytes.data(), c.count, c.dtype);
    const float inv = 1.0f / static_cast<float>(n);
    for (float& x : avg) x *= inv;
    cast_from_float(avg.data(), c.count, c.dtype, bytes.data());
  }
  return bytes;
}

// Bounds from AllReduce.EveryMethodAndAlgorithmGivesIdenticalBytesNearTheSum
// (4 bits, buckets of 256, sra quantising twice): the uniform tables have
// normalised variance up to ~2 (docs/algorithms.md §8 T2), TernGrad ignores
// bits; the casts round at most twice (2^-11 fp16, 2^-8 bf16). Far below
// what a lost, doubled or misplaced contribution gives (order 1 or more
// for the casts, several for the quantisers at these means).
double error_bound(const std::string& method) {
  if (method == "fp16") return 2e-3;
  if (method == "bf16") return 1.5e-2;
  if (method == "trn") return 4.0;
  if (method == "qsgd" || method == "qsgdinf" || method == "dqsgd") return 3.0;
  return 1.0;
}

uint64_t hash_bytes(const void* data, size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = 0xcbf29ce484222325ull ^ bytes;
  size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 0x100000001b3ull;
    h ^= h >> 29;
  }
  for (; i < bytes; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

// True on every rank iff every rank had `ok` and the same hash.
bool agreed_on_all_ranks(bool ok, uint64_t hash) {
  const uint64_t mine[2] = {ok ? 1u : 0u, hash};
  std::vector<uint64_t> all(2 * world_size());
  MPI_Allgather(mine, 2, MPI_UINT64_T, all.data(), 2, MPI_UINT64_T, MPI_COMM_WORLD);
  for (int r = 0; r < world_size(); ++r)
    if (all[2 * r] != 1 || all[2 * r + 1] != all[1]) return false;
  return true;
}

uint64_t compressed_calls(qcclComm_t comm, bool engine) {
  qcclStats_t s;
  const qcclResult_t r = engine ? qcclEngineGetStats(comm, &s) : qcclCommGetStats(comm, &s);
  return r == qcclSuccess ? s.compressedCalls : 0;
}

class Soak {
 public:
  explicit Soak(std::vector<std::unique_ptr<SoakComm>>* comms)
      : comms_(*comms), n_(world_size()), rank_(world_rank()) {}

  // Runs a burst; false (on every rank) when a call failed or disagreed.
  bool run(const Burst& b) {
    SoakComm& c = *comms_[b.setting];
    std::vector<std::vector<unsigned char>> outputs;
    bool compressed = false;
    const bool ok = b.path == Path::kEngine ? run_engine(c, b, &outputs, &compressed)
                                            : run_direct(c, b, &outputs, &compressed);
    bool all_ok = true;
    for (size_t k = 0; k < b.calls.size(); ++k) {
      const std::vector<unsigned char>& out = outputs.size() > k ? outputs[k] : empty_;
      if (!agreed_on_all_ranks(ok, hash_bytes(out.data(), out.size()))) {
        ADD_FAILURE() << describe(b, b.calls[k]) << ": failed or differs between ranks";
        all_ok = false;
        continue;
      }
      if (!check(c, b, b.calls[k], out, compressed)) all_ok = false;
      ++calls_;
    }
    return all_ok && ok;
  }

  uint64_t calls() const { return calls_; }
  double worst_error() const { return worst_; }

 private:
  std::string describe(const Burst& b, const Call& c) const {
    return std::string("call ") + std::to_string(c.id) + " (" + path_name(b.path) + ", " +
           comms_[b.setting]->setting.method + "/" + comms_[b.setting]->setting.algo + ", " +
           dtype_name(c.dtype) + ", " + std::to_string(c.count) + " elements, " +
           (c.op == qcclAvg ? "avg" : "sum") + ")";
  }

  bool run_direct(SoakComm& c, const Burst& b, std::vector<std::vector<unsigned char>>* outputs,
                  bool* compressed) {
    const Call& call = b.calls[0];
    const std::vector<unsigned char> in = input_bytes(rank_, call);
    const size_t out_count = b.path == Path::kAllGather ? call.count * n_ : call.count;
    std::vector<unsigned char> out(out_count * dtype_size(call.dtype) + 1);  // never empty
    const uint64_t before = compressed_calls(c.comm, false);
    const auto t = static_cast<qcclDataType_t>(call.dtype);
    const void* send = in.empty() ? out.data() : in.data();
    const qcclResult_t r =
        b.path == Path::kAllGather
            ? qcclAllGather(send, out.data(), call.count, t, c.comm, nullptr)
            : qcclAllReduce(send, out.data(), call.count, t, call.op, c.comm, nullptr);
    out.pop_back();
    *compressed = compressed_calls(c.comm, false) > before;
    outputs->push_back(std::move(out));
    if (r != qcclSuccess)
      ADD_FAILURE() << describe(b, call) << ": " << qcclGetErrorString(r) << ": "
                    << qcclGetLastError(c.comm);
    return r == qcclSuccess;
  }

  bool run_engine(SoakComm& c, const Burst& b, std::vector<std::vector<unsigned char>>* outputs,
                  bool* compressed) {
    qcclResult_t r = qcclEngineStart(c.comm);
    if (r != qcclSuccess) {
      ADD_FAILURE() << "engine start on " << c.setting.method << ": " << qcclGetLastError(c.comm);
      return false;
    }
    CallbackLog log;
    for (const Call& call : b.calls) {
      outputs->push_back(input_bytes(rank_, call));
      const std::string name = "soak." + std::to_string(call.id);
      r = qcclEnqueueAllReduce(c.comm, name.c_str(), outputs->back().data(), call.count,
                               static_cast<qcclDataType_t>(call.dtype), call.op,
                               &CallbackLog::callback, &log);
      if (r != qcclSuccess) {
        ADD_FAILURE() << describe(b, call) << ": enqueue: " << qcclGetLastError(c.comm);
        break;
      }
    }
    bool ok = r == qcclSuccess && log.wait_for(b.calls.size(), 600);
    if (!ok) ADD_FAILURE() << "engine burst: " << log.calls() << " callbacks";
    *compressed = compressed_calls(c.comm, true) > 0;
    for (const auto& [name, done] : log.done()) {
      if (done.result == qcclSuccess) continue;
      ADD_FAILURE() << name << ": " << qcclGetErrorString(done.result) << ": " << done.error;
      ok = false;
    }
    r = qcclEngineStop(c.comm);
    if (r != qcclSuccess) ADD_FAILURE() << "engine stop: " << qcclGetLastError(c.comm);
    return ok && r == qcclSuccess;
  }

  // Exact bytes when nothing in the call was compressed; else finite values
  // within the method's bound (buffers of 1024+ elements: an adaptive table
  // or a fused neighbour's norm is not meant for a tiny tensor).
  bool check(const SoakComm& c, const Burst& b, const Call& call,
             const std::vector<unsigned char>& out, bool compressed) {
    const bool gather = b.path == Path::kAllGather;
    if (!compressed) {
      std::vector<unsigned char> expected;
      if (gather) {
        for (int r = 0; r < n_; ++r) {
          const std::vector<unsigned char> slot = input_bytes(r, call);
          expected.insert(expected.end(), slot.begin(), slot.end());
        }
      } else {
        expected = exact_allreduce(call, n_);
      }
      if (expected == out) return true;
      ADD_FAILURE() << describe(b, call) << ": uncompressed result differs from the exact one";
      return false;
    }
    const std::vector<float> got =
        widen(out.data(), gather ? call.count * n_ : call.count, call.dtype);
    for (float x : got) {
      if (!std::isfinite(x)) {
        ADD_FAILURE() << describe(b, call) << ": non-finite output from finite inputs";
        return false;
      }
    }
    if (call.count < 1024) return true;
    const double bound = error_bound(c.setting.method);
    for (int slot = 0; slot < (gather ? n_ : 1); ++slot) {
      std::vector<double> exact(call.count, 0.0);
      for (int r = 0; r < n_; ++r) {
        if (gather && r != slot) continue;
        for (size_t i = 0; i < call.count; ++i) exact[i] += input_value(r, call.id, i);
      }
      if (call.op == qcclAvg && !gather)
        for (double& x : exact) x /= n_;
      const std::vector<float> part(got.begin() + slot * call.count,
                                    got.begin() + (slot + 1) * call.count);
      const double rel = relative_error(part, exact);
      worst_ = std::max(worst_, rel / bound);
      if (rel >= bound) {
        ADD_FAILURE() << describe(b, call) << ": relative error " << rel << " >= " << bound
                      << (gather ? " in slot " + std::to_string(slot) : std::string());
        return false;
      }
    }
    return true;
  }

  std::vector<std::unique_ptr<SoakComm>>& comms_;
  const int n_, rank_;
  const std::vector<unsigned char> empty_;
  uint64_t calls_ = 0;
  double worst_ = 0;  // the largest error seen, as a fraction of its bound
};

// Under ASan (CI's second pass over the MPI tests, several times slower)
// the large calls stop at 4 MiB: they take the same code paths as 16 MiB.
#if defined(__SANITIZE_ADDRESS__)
constexpr uint64_t kDefaultMaxBytes = 4 << 20;
#else
constexpr uint64_t kDefaultMaxBytes = 16 << 20;
#endif

TEST(Soak, MixedCallsAgreeMatchTheReferenceAndKeepMemoryFlat) {
  const auto iters = static_cast<uint64_t>(env_number("QCCL_SOAK_ITERS", 100));
  const double seconds = env_number("QCCL_SOAK_SECONDS", 0);
  const auto max_bytes = static_cast<uint64_t>(env_number("QCCL_SOAK_MAX_BYTES", kDefaultMaxBytes));
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  // Buffers of 1 MiB and more are mapped and unmapped by glibc every time
  // (instead of its default, which raises that threshold to the largest
  // buffer freed so far and keeps freed memory in the heap), so RSS counts
  // live memory rather than the allocator's cache of freed buffers.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  const Memory at_start = measure_memory();
  const std::vector<Setting> settings = all_settings();
  std::vector<std::unique_ptr<SoakComm>> comms;
  for (const Setting& s : settings) {
    comms.push_back(std::make_unique<SoakComm>(s));
    ASSERT_EQ(comms.back()->init_result, qcclSuccess)
        << s.method << "/" << s.algo << ": " << qcclGetLastError(nullptr);
  }
  const std::vector<Burst> schedule = draw_schedule(iters, settings.size(), max_bytes);
  Soak soak(&comms);
  for (const Burst& b : warmup_of(schedule, iters)) ASSERT_TRUE(soak.run(b)) << "in the warm-up";
  const uint64_t warmup_calls = soak.calls();
  const Memory warm = measure_memory();
  const double warmup_s = elapsed();
  // Growth since the warm-up, every rank's, in rank order (collective).
  const auto growth_report = [&](const Memory& now) {
    return "RssAnon " + join(gather_ranks(now.rss_anon - warm.rss_anon)) + "; live heap " +
           join(gather_ranks(now.live_heap - warm.live_heap)) + "; VmRSS " +
           join(gather_ranks(now.vm_rss - warm.vm_rss));
  };
  const uint64_t report_every = std::max<uint64_t>(100, iters / 20);
  uint64_t bursts = 0, next_report = report_every;
  for (const Burst& b : schedule) {
    ASSERT_TRUE(soak.run(b));
    ++bursts;
    // Rank 0's clock decides, so every rank stops after the same burst.
    int stop = seconds > 0 && elapsed() > seconds ? 1 : 0;
    MPI_Bcast(&stop, 1, MPI_INT, 0, MPI_COMM_WORLD);
    const uint64_t done = soak.calls() - warmup_calls;
    if (done >= next_report) {  // the same on every rank
      const std::string growth = growth_report(measure_memory());
      if (world_rank() == 0) {
        std::printf("soak: %llu calls, %.0f s; growth since the warm-up per rank (KiB): %s\n",
                    static_cast<unsigned long long>(done), elapsed(), growth.c_str());
        std::fflush(stdout);
      }
      next_report += report_every;
    }
    if (stop) break;
  }
  const uint64_t calls = soak.calls() - warmup_calls;
  const double run_s = elapsed() - warmup_s;
  const Memory at_end = measure_memory();
  // Workspaces only grow, and the warm-up took each to its largest size, so
  // the schedule allocates nothing that stays. 8 MiB allows for pages that
  // malloc_trim cannot return (freed memory sharing pages with live
  // allocations: measured at 4 ranks, 1-3 MiB over 300 calls while live
  // heap grew under 0.2 MiB); a leak of one buffer per call exceeds it
  // within a few hundred calls. Under ASan freed memory sits in its
  // quarantine, so RSS says nothing there.
#if !defined(__SANITIZE_ADDRESS__)
  const long growth = at_end.rss_anon - warm.rss_anon;
  EXPECT_LT(growth, 8 * 1024) << "RssAnon grew by " << growth << " KiB over " << calls << " calls";
#endif
  const std::string rss_warm = join(gather_ranks(warm.rss_anon));
  const std::string rss_end = join(gather_ranks(at_end.rss_anon));
  const std::string growths = growth_report(at_end);
  if (world_rank() == 0) {
    std::printf(
        "soak: %d ranks, %zu settings, %llu warm-up calls in %.1f s, then %llu calls in %llu "
        "bursts (of %llu scheduled) in %.1f s (%.1f calls/s); worst error %.2f of its bound\n"
        "soak: RssAnon KiB: rank 0 at start %ld; per rank after the warm-up %s; at the end %s\n"
        "soak: growth since the warm-up per rank (KiB): %s\n",
        world_size(), settings.size(), static_cast<unsigned long long>(warmup_calls), warmup_s,
        static_cast<unsigned long long>(calls), static_cast<unsigned long long>(bursts),
        static_cast<unsigned long long>(iters), run_s, calls / std::max(run_s, 1e-9),
        soak.worst_error(), at_start.rss_anon, rss_warm.c_str(), rss_end.c_str(), growths.c_str());
  }
}

}  // namespace
}  // namespace qccl::test
