#include "harness/harness.h"

#include <getopt.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "codec/cpu_codec.h"
#include "harness/execution_mode.h"

namespace qccl::perf {
namespace {

struct Options {
  size_t min_bytes = 32 << 20, max_bytes = 32 << 20;
  double step_factor = 1;
  size_t step_bytes = 1 << 20;
  int iters = 20, warmup = 5, check = 1;
  qcclDataType_t type = qcclFloat32;
  qcclRedOp_t op = qcclSum;
  std::vector<std::string> methods;
  std::string bits, algo, json;
  bool gpu = false;  // -g: device buffers over NCCL (execution_mode.h)
};

// nccl-tests size syntax: 1K, 64M, 1G (binary multiples).
size_t parse_size(const char* text) {
  char* end = nullptr;
  double v = std::strtod(text, &end);
  switch (*end) {
    case 'K':
    case 'k': v *= 1 << 10; break;
    case 'M':
    case 'm': v *= 1 << 20; break;
    case 'G':
    case 'g': v *= 1 << 30; break;
    default: break;
  }
  return static_cast<size_t>(v);
}

const char* kAllMethods = "none,fp16,bf16,qsgd,qsgdinf,nuqsgd,trn,alq,alqn,amq,amqn,dqsgd";

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= list.size()) {
    const size_t comma = list.find(',', pos);
    const std::string item = list.substr(pos, comma == std::string::npos ? comma : comma - pos);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

void usage() {
  std::printf(
      "usage: mpirun -np N <bench> [-b minbytes] [-e maxbytes] [-f stepfactor | -i stepbytes]\n"
      "  [-n iters] [-w warmup] [-c check 0/1] [-d float|half|bfloat16] [-o sum|avg]\n"
      "  [-m method[,method...] | all] (none = qccl uncompressed, mpi = raw MPI call)\n"
      "  [-q bits] [-a auto|allgather|sra] [-J results.json]\n"
      "  [-g] (device buffers, one GPU per rank, communicators over NCCL; exits %d\n"
      "       where that is unavailable: no CUDA/NCCL build, no GPU)\n",
      kExitGpuUnavailable);
}

bool parse(int argc, char** argv, Options* o) {
  std::string methods;
  int c;
  while ((c = getopt(argc, argv, "b:e:f:i:n:w:c:d:o:m:q:a:J:gh")) != -1) {
    switch (c) {
      case 'b': o->min_bytes = parse_size(optarg); break;
      case 'e': o->max_bytes = parse_size(optarg); break;
      case 'f': o->step_factor = std::atof(optarg); break;
      case 'i':
        o->step_bytes = parse_size(optarg);
        o->step_factor = 1;
        break;
      case 'n': o->iters = std::atoi(optarg); break;
      case 'w': o->warmup = std::atoi(optarg); break;
      case 'c': o->check = std::atoi(optarg); break;
      case 'd':
        if (!std::strcmp(optarg, "float"))
          o->type = qcclFloat32;
        else if (!std::strcmp(optarg, "half"))
          o->type = qcclFloat16;
        else if (!std::strcmp(optarg, "bfloat16"))
          o->type = qcclBfloat16;
        else
          return false;
        break;
      case 'o':
        if (!std::strcmp(optarg, "sum"))
          o->op = qcclSum;
        else if (!std::strcmp(optarg, "avg"))
          o->op = qcclAvg;
        else
          return false;
        break;
      case 'm': methods = optarg; break;
      case 'q': o->bits = optarg; break;
      case 'a': o->algo = optarg; break;
      case 'J': o->json = optarg; break;
      case 'g': o->gpu = true; break;
      default: return false;
    }
  }
  if (methods.empty()) {
    const char* env = std::getenv("QCCL_METHOD");
    methods = std::string("none,") + (env ? env : "alq");
  }
  if (methods == "all") methods = kAllMethods;
  o->methods = split(methods);
  return o->iters > 0 && o->min_bytes > 0 && o->max_bytes >= o->min_bytes;
}

size_t type_size(qcclDataType_t t) {
  return t == qcclFloat32 ? 4 : 2;
}
const char* type_name(qcclDataType_t t) {
  return t == qcclFloat32 ? "float" : t == qcclFloat16 ? "half" : "bfloat16";
}

// Rank r's element i: uniform in [-1, 1) plus a per-rank offset, from a
// hash so any rank can recompute any other rank's data.
double input_value(int rank, size_t i) {
  uint64_t x = (static_cast<uint64_t>(rank) << 40) ^ (i * 0x9E3779B97F4A7C15ull);
  x ^= x >> 33, x *= 0xff51afd7ed558ccdull, x ^= x >> 33;
  return static_cast<double>(x >> 40) / static_cast<double>(1ull << 23) - 1.0 + 0.05 * rank;
}

// The codec's own conversions (round to nearest even).
void to_type(const std::vector<float>& v, qcclDataType_t t, void* out) {
  cast_from_float(v.data(), v.size(), static_cast<DataType>(t), out);
}
void from_type(const void* in, size_t n, qcclDataType_t t, std::vector<float>* v) {
  v->resize(n);
  cast_to_float(in, n, static_cast<DataType>(t), v->data());
}

// The default execution mode: host buffers, communicators over MPI, wall
// time between a barrier and the last call's return.
class HostMode final : public ExecutionMode {
 public:
  const char* describe() const override { return "host buffers, communicators over MPI"; }
  bool host_buffers() const override { return true; }
  void* allocate(size_t bytes) override {
    void* p = std::calloc(bytes == 0 ? 1 : bytes, 1);
    if (p == nullptr) std::fprintf(stderr, "cannot allocate %zu bytes\n", bytes);
    return p;
  }
  void release(void* p) override { std::free(p); }
  bool copy_in(void* dst, const void* host, size_t bytes) override {
    std::memcpy(dst, host, bytes);
    return true;
  }
  bool copy_out(void* host, const void* src, size_t bytes) override {
    std::memcpy(host, src, bytes);
    return true;
  }
  void* stream() const override { return nullptr; }
  qcclResult_t init_comm(const qcclConfig_t* config, qcclComm_t* out) override {
    MPI_Comm world = MPI_COMM_WORLD;
    return qcclCommInitMpi(out, &world, config);
  }
  bool time_calls(int iters, const std::function<bool()>& call, double* us) override {
    MPI_Barrier(MPI_COMM_WORLD);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i)
      if (!call()) return false;
    *us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
              .count() /
          iters;
    return true;
  }
};

// A buffer of the execution mode, released at scope exit.
class Buffer {
 public:
  Buffer(ExecutionMode& mode, size_t bytes)
      : mode_(mode), ptr_(static_cast<unsigned char*>(mode.allocate(bytes))) {}
  ~Buffer() {
    if (ptr_ != nullptr) mode_.release(ptr_);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  unsigned char* get() const { return ptr_; }

 private:
  ExecutionMode& mode_;
  unsigned char* ptr_;
};

struct Row {
  size_t bytes = 0, count = 0;
  double time_us[2] = {0, 0};  // out-of-place, in-place
  double algbw[2] = {0, 0}, busbw[2] = {0, 0};
  std::string method;
  int bits = 0;
  uint64_t wire_bytes = 0;
  double ratio = 0, relerr = -1;
};

class Bench {
 public:
  Bench(const Options& o, const CollectiveDescription& d, ExecutionMode& mode)
      : o_(o), d_(d), mode_(mode) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks_);
  }

  // One row: timing out-of-place and in-place, then a checked call.
  bool run_row(const std::string& method, qcclComm_t comm, size_t bytes, Row* row) {
    const size_t ts = type_size(o_.type);
    const size_t count = d_.send_count(bytes, ts, nranks_);
    if (count == 0) return false;
    const size_t recv_count = d_.recv_count(count, nranks_);
    std::vector<float> values(count);
    for (size_t i = 0; i < count; ++i) values[i] = static_cast<float>(input_value(rank_, i));
    std::vector<unsigned char> send_host(count * ts);
    to_type(values, o_.type, send_host.data());
    const Buffer send(mode_, count * ts), recv(mode_, recv_count * ts);
    if (send.get() == nullptr || recv.get() == nullptr ||
        !mode_.copy_in(send.get(), send_host.data(), send_host.size()))
      return false;
    row->bytes = count * ts * (recv_count / count);
    row->count = count;
    row->method = method;
    const bool raw = method == "mpi";
    for (int in_place = 0; in_place < 2; ++in_place) {
      // allreduce in place: send == recv; allgather: send is this rank's slot.
      unsigned char* slot = recv.get() + (recv_count == count ? 0 : rank_ * count * ts);
      if (in_place && !mode_.copy_in(slot, send_host.data(), count * ts)) return false;
      const void* sendp = in_place ? (raw ? nullptr : slot) : send.get();
      auto call = [&] {
        if (raw) return d_.run_mpi(sendp, recv.get(), count, MPI_COMM_WORLD) == MPI_SUCCESS;
        const qcclResult_t r =
            d_.run(sendp, recv.get(), count, o_.type, o_.op, comm, mode_.stream());
        if (r != qcclSuccess && rank_ == 0)
          std::fprintf(stderr, "%s: %s\n", method.c_str(), qcclGetLastError(comm));
        return r == qcclSuccess;
      };
      for (int i = 0; i < o_.warmup; ++i)
        if (!call()) return false;
      double us = 0;
      if (!mode_.time_calls(o_.iters, call, &us)) return false;
      MPI_Allreduce(MPI_IN_PLACE, &us, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      row->time_us[in_place] = us;
      row->algbw[in_place] = static_cast<double>(row->bytes) / us / 1e3;
      row->busbw[in_place] = row->algbw[in_place] * d_.bus_factor(nranks_);
    }
    // The checked call, out of place, with its wire bytes from the stats.
    qcclStats_t before{}, after{};
    if (!raw) qcclCommGetStats(comm, &before);
    if (raw) {
      d_.run_mpi(send.get(), recv.get(), count, MPI_COMM_WORLD);
    } else if (d_.run(send.get(), recv.get(), count, o_.type, o_.op, comm, mode_.stream()) !=
               qcclSuccess) {
      return false;
    }
    if (!raw) {
      qcclCommGetStats(comm, &after);
      // A call below QCCL_MIN_COMPRESS_BYTES went uncompressed: 32 bits.
      row->bits = after.compressedCalls == before.compressedCalls ? 32 : after.bits;
      row->wire_bytes = after.wireBytes - before.wireBytes;
    } else {
      row->bits = 32;
      row->wire_bytes = static_cast<uint64_t>(d_.bus_factor(nranks_) * row->bytes);
    }
    // Wire ratio: an uncompressed ring collective's bytes per rank over ours.
    row->ratio = row->wire_bytes ? d_.bus_factor(nranks_) * row->bytes / row->wire_bytes : 0;
    if (o_.check) {
      std::vector<unsigned char> recv_host(recv_count * ts);
      if (!mode_.copy_out(recv_host.data(), recv.get(), recv_host.size())) return false;
      std::vector<float> got;
      from_type(recv_host.data(), recv_count, o_.type, &got);
      double err = 0, norm = 0;
      for (size_t i = 0; i < recv_count; ++i) {
        const double e = d_.expected(i, count, nranks_, o_.op, input_value);
        err += (got[i] - e) * (got[i] - e);
        norm += e * e;
      }
      row->relerr = norm > 0 ? std::sqrt(err / norm) : 0;
    }
    return true;
  }

  void print_header() const {
    std::printf("# qccl %s benchmark: %d ranks, %d iters, %d warmup, %s\n", d_.name, nranks_,
                o_.iters, o_.warmup, mode_.describe());
    std::printf("# %10s %12s %8s %6s %33s %33s %7s %4s %12s %7s %9s\n", "", "", "", "",
                "out-of-place", "in-place", "", "", "", "", "");
    std::printf("# %10s %12s %8s %6s %10s %10s %10s  %10s %10s %10s %7s %4s %12s %7s %9s\n", "size",
                "count", "type", "redop", "time", "algbw", "busbw", "time", "algbw", "busbw",
                "method", "bits", "wirebytes", "ratio", "relerr");
    std::printf("# %10s %12s %8s %6s %10s %10s %10s  %10s %10s %10s %7s %4s %12s %7s %9s\n", "(B)",
                "(elements)", "", "", "(us)", "(GB/s)", "(GB/s)", "(us)", "(GB/s)", "(GB/s)", "",
                "", "(B)", "", "");
  }

  void print_row(const Row& r) const {
    char relerr[32];
    if (r.relerr < 0)
      std::snprintf(relerr, sizeof relerr, "%9s", "N/A");
    else
      std::snprintf(relerr, sizeof relerr, "%9.2e", r.relerr);
    std::printf(
        "  %10zu %12zu %8s %6s %10.1f %10.3f %10.3f  %10.1f %10.3f %10.3f %7s %4d %12llu %7.2f "
        "%s\n",
        r.bytes, r.count, type_name(o_.type),
        d_.has_redop ? (o_.op == qcclSum ? "sum" : "avg") : "none", r.time_us[0], r.algbw[0],
        r.busbw[0], r.time_us[1], r.algbw[1], r.busbw[1], r.method.c_str(), r.bits,
        static_cast<unsigned long long>(r.wire_bytes), r.ratio, relerr);
    std::fflush(stdout);
  }

  void write_json(const std::vector<Row>& rows) const {
    FILE* f = std::fopen(o_.json.c_str(), "w");
    if (f == nullptr) {
      std::fprintf(stderr, "cannot write %s\n", o_.json.c_str());
      return;
    }
    std::fprintf(f, "{\"collective\": \"%s\", \"nranks\": %d, \"type\": \"%s\", \"rows\": [\n",
                 d_.name, nranks_, type_name(o_.type));
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      std::fprintf(f,
                   "  {\"size\": %zu, \"count\": %zu, \"method\": \"%s\", \"bits\": %d, "
                   "\"oop_time_us\": %.3f, \"oop_algbw\": %.6f, \"oop_busbw\": %.6f, "
                   "\"ip_time_us\": %.3f, \"ip_algbw\": %.6f, \"ip_busbw\": %.6f, "
                   "\"wire_bytes\": %llu, \"ratio\": %.4f, \"relerr\": %.6e}%s\n",
                   r.bytes, r.count, r.method.c_str(), r.bits, r.time_us[0], r.algbw[0], r.busbw[0],
                   r.time_us[1], r.algbw[1], r.busbw[1],
                   static_cast<unsigned long long>(r.wire_bytes), r.ratio, r.relerr,
                   i + 1 < rows.size() ? "," : "");
    }
    std::fprintf(f, "]}\n");
    std::fclose(f);
  }

  int run() {
    if (rank_ == 0) print_header();
    std::vector<Row> rows;
    for (size_t bytes = o_.min_bytes; bytes <= o_.max_bytes;
         bytes = o_.step_factor > 1 ? static_cast<size_t>(bytes * o_.step_factor)
                                    : bytes + o_.step_bytes) {
      for (const std::string& method : o_.methods) {
        qcclComm_t comm = nullptr;
        if (method != "mpi") {
          if (comm_for(method, &comm) != qcclSuccess) return 1;
        } else if (o_.type != qcclFloat32 || !mode_.host_buffers()) {
          continue;  // raw MPI: no half-precision sum, and host buffers only
        }
        Row row;
        if (!run_row(method, comm, bytes, &row)) continue;
        if (rank_ == 0) print_row(row);
        rows.push_back(row);
      }
    }
    for (auto& entry : comms_) qcclCommDestroy(entry.second);
    if (rank_ == 0 && !o_.json.empty()) write_json(rows);
    return 0;
  }

 private:
  // One communicator per method, created on first use and kept, so the
  // adaptive methods keep their fitted tables across sizes.
  qcclResult_t comm_for(const std::string& method, qcclComm_t* out) {
    for (auto& entry : comms_)
      if (entry.first == method) return *out = entry.second, qcclSuccess;
    qcclConfig_t c = QCCL_CONFIG_INITIALIZER;
    c.method = method.c_str();
    if (!o_.bits.empty()) c.bits = o_.bits.c_str();
    if (!o_.algo.empty()) c.algo = o_.algo.c_str();
    const qcclResult_t r = mode_.init_comm(&c, out);
    if (r != qcclSuccess) {
      if (rank_ == 0)
        std::fprintf(stderr, "method %s: %s\n", method.c_str(), qcclGetLastError(nullptr));
      return r;
    }
    comms_.emplace_back(method, *out);
    return r;
  }

  const Options& o_;
  const CollectiveDescription& d_;
  ExecutionMode& mode_;
  int rank_ = 0, nranks_ = 1;
  std::vector<std::pair<std::string, qcclComm_t>> comms_;
};

}  // namespace

int run_benchmark(int argc, char** argv, const CollectiveDescription& collective) {
  MPI_Init(&argc, &argv);
  Options o;
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (!parse(argc, argv, &o)) {
    if (rank == 0) usage();
    MPI_Finalize();
    return 2;
  }
  std::unique_ptr<ExecutionMode> mode;
  if (o.gpu) {
    std::string why;
    mode = make_device_mode(&why);
    if (mode == nullptr) {
      std::fprintf(stderr, "%s: GPU mode (-g) is unavailable on rank %d: %s\n", argv[0], rank,
                   why.c_str());
      MPI_Finalize();
      return kExitGpuUnavailable;
    }
  } else {
    mode = std::make_unique<HostMode>();
  }
  int rc = 0;
  {
    Bench bench(o, collective, *mode);
    rc = bench.run();
  }
  mode.reset();  // CUDA resources before MPI_Finalize
  MPI_Finalize();
  return rc;
}

}  // namespace qccl::perf
