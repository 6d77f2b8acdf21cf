#include "harness/harness.h"

#include <getopt.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
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
      "  [-m method[,method...] | all] (none = qccl uncompressed, mpi = raw MPI call,\n"
      "       mpi-fp16/mpi-bf16 = raw MPI call in half precision, as DDP's compress hooks)\n"
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

// The raw MPI baselines: "mpi" sums float32; "mpi-fp16" and "mpi-bf16" do
// what DDP's fp16/bf16 compress hooks do: cast to half precision, sum the
// halves with MPI, cast back.
const char* const kBaselines[] = {"mpi", "mpi-fp16", "mpi-bf16"};
constexpr int kNumBaselines = 3;

int baseline_index(const std::string& method) {
  for (int b = 0; b < kNumBaselines; ++b)
    if (method == kBaselines[b]) return b;
  return -1;
}

// The half-precision sum of MPI_Allreduce on 2-byte elements: widen to float,
// add, round back to nearest even, a chunk at a time (an MPI_User_function).
template <DataType kFormat>
void half_sum(void* in, void* inout, int* len, MPI_Datatype*) {
  constexpr int kChunk = 512;
  float a[kChunk], b[kChunk];
  const auto* src = static_cast<const uint16_t*>(in);
  auto* dst = static_cast<uint16_t*>(inout);
  for (int off = 0; off < *len; off += kChunk) {
    const int n = std::min(kChunk, *len - off);
    cast_to_float(src + off, n, kFormat, a);
    cast_to_float(dst + off, n, kFormat, b);
    for (int i = 0; i < n; ++i) b[i] += a[i];
    cast_from_float(b, n, kFormat, dst + off);
  }
}

// The MPI datatype and ops of the half-precision baselines, freed before
// MPI_Finalize.
class HalfMpi {
 public:
  HalfMpi() {
    MPI_Type_contiguous(2, MPI_BYTE, &type_);
    MPI_Type_commit(&type_);
    MPI_Op_create(&half_sum<DataType::kFloat16>, /*commute=*/1, &fp16_sum_);
    MPI_Op_create(&half_sum<DataType::kBfloat16>, /*commute=*/1, &bf16_sum_);
  }
  ~HalfMpi() {
    MPI_Op_free(&bf16_sum_);
    MPI_Op_free(&fp16_sum_);
    MPI_Type_free(&type_);
  }
  HalfMpi(const HalfMpi&) = delete;
  HalfMpi& operator=(const HalfMpi&) = delete;
  MPI_Datatype type() const { return type_; }
  MPI_Op sum(DataType format) const { return format == DataType::kFloat16 ? fp16_sum_ : bf16_sum_; }

 private:
  MPI_Datatype type_ = MPI_DATATYPE_NULL;
  MPI_Op fp16_sum_ = MPI_OP_NULL, bf16_sum_ = MPI_OP_NULL;
};

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
  // Out-of-place speed-up over each baseline of kBaselines at the same size
  // (baseline time / this row's time); -1 where that baseline did not run.
  double speedup[kNumBaselines] = {-1, -1, -1};
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
    const int baseline = baseline_index(method);
    const bool raw = baseline >= 0;
    // mpi-fp16/mpi-bf16: the half-precision copies of send and recv.
    const bool half = baseline > 0;
    const DataType format = baseline == 1 ? DataType::kFloat16 : DataType::kBfloat16;
    std::vector<uint16_t> send_half(half ? count : 0), recv_half(half ? recv_count : 0);
    // allreduce in place: send == recv; allgather: send is this rank's slot.
    const size_t slot_elems = recv_count == count ? 0 : rank_ * count;
    auto raw_call = [&](bool in_place) {
      if (!half) {
        if (d_.run_mpi(in_place ? nullptr : send.get(), recv.get(), count, MPI_COMM_WORLD) !=
            MPI_SUCCESS)
          return false;
        divide_for_avg(reinterpret_cast<float*>(recv.get()), recv_count);
        return true;
      }
      return mpi_half_call(format, in_place ? nullptr : reinterpret_cast<const float*>(send.get()),
                           reinterpret_cast<float*>(recv.get()), count, recv_count, slot_elems,
                           send_half.data(), recv_half.data());
    };
    for (int in_place = 0; in_place < 2; ++in_place) {
      unsigned char* slot = recv.get() + slot_elems * ts;
      if (in_place && !mode_.copy_in(slot, send_host.data(), count * ts)) return false;
      const void* sendp = in_place ? slot : send.get();
      auto call = [&] {
        if (raw) return raw_call(in_place);
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
      if (!raw_call(false)) return false;
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
      // A ring collective of the row's elements at 32 or 16 bits each.
      row->bits = half ? 16 : 32;
      row->wire_bytes = static_cast<uint64_t>(d_.bus_factor(nranks_) * row->bytes / (half ? 2 : 1));
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
                   "\"wire_bytes\": %llu, \"ratio\": %.4f, \"relerr\": %.6e, "
                   "\"speedup_vs_mpi\": %s, \"speedup_vs_mpi_fp16\": %s, "
                   "\"speedup_vs_mpi_bf16\": %s}%s\n",
                   r.bytes, r.count, r.method.c_str(), r.bits, r.time_us[0], r.algbw[0], r.busbw[0],
                   r.time_us[1], r.algbw[1], r.busbw[1],
                   static_cast<unsigned long long>(r.wire_bytes), r.ratio, r.relerr,
                   json_speedup(r.speedup[0]).c_str(), json_speedup(r.speedup[1]).c_str(),
                   json_speedup(r.speedup[2]).c_str(), i + 1 < rows.size() ? "," : "");
    }
    std::fprintf(f, "]}\n");
    std::fclose(f);
  }

  static std::string json_speedup(double s) {
    if (s < 0) return "null";
    char text[32];
    std::snprintf(text, sizeof text, "%.4f", s);
    return text;
  }

  // Fills every row's speed-ups over the baselines of its size.
  static void compute_speedups(std::vector<Row>* rows) {
    for (Row& r : *rows)
      for (const Row& base : *rows) {
        const int b = baseline_index(base.method);
        if (b >= 0 && base.bytes == r.bytes && &base != &r && r.time_us[0] > 0)
          r.speedup[b] = base.time_us[0] / r.time_us[0];
      }
  }

  // After the table: each row's out-of-place speed-up over the baselines
  // that ran (docs/perf.md), so qccl reads against float32 and bf16 MPI.
  static void print_speedups(const std::vector<Row>& rows) {
    bool any = false;
    for (const Row& r : rows)
      for (double s : r.speedup) any = any || s >= 0;
    if (!any) return;
    std::printf("#\n# speed-up = baseline time / method time (out-of-place), same size\n");
    std::printf("# %10s %9s %10s %10s %10s\n", "size", "method", "vs_mpi", "vs_fp16", "vs_bf16");
    for (const Row& r : rows) {
      std::printf("  %10zu %9s", r.bytes, r.method.c_str());
      for (double s : r.speedup) {
        if (s < 0)
          std::printf(" %10s", "N/A");
        else
          std::printf(" %10.2f", s);
      }
      std::printf("\n");
    }
    std::fflush(stdout);
  }

  int run() {
    if (rank_ == 0) print_header();
    std::vector<Row> rows;
    for (size_t bytes = o_.min_bytes; bytes <= o_.max_bytes;
         bytes = o_.step_factor > 1 ? static_cast<size_t>(bytes * o_.step_factor)
                                    : bytes + o_.step_bytes) {
      for (const std::string& method : o_.methods) {
        qcclComm_t comm = nullptr;
        if (baseline_index(method) < 0) {
          if (comm_for(method, &comm) != qcclSuccess) return 1;
        } else if (o_.type != qcclFloat32 || !mode_.host_buffers()) {
          continue;  // raw MPI: float32 input on host buffers only
        }
        Row row;
        if (!run_row(method, comm, bytes, &row)) continue;
        if (rank_ == 0) print_row(row);
        rows.push_back(row);
      }
    }
    for (auto& entry : comms_) qcclCommDestroy(entry.second);
    compute_speedups(&rows);
    if (rank_ == 0) print_speedups(rows);
    if (rank_ == 0 && !o_.json.empty()) write_json(rows);
    return 0;
  }

 private:
  // The raw baselines' average: MPI sums, then every rank divides.
  void divide_for_avg(float* recv, size_t n) const {
    if (!d_.has_redop || o_.op != qcclAvg) return;
    for (size_t i = 0; i < n; ++i) recv[i] /= static_cast<float>(nranks_);
  }

  // One mpi-fp16/mpi-bf16 call on the float32 buffers: cast to `format`, the
  // MPI call on 2-byte elements, cast back (and the average divided). The
  // casts are inside the timed call on purpose: a DDP compress hook pays
  // them too. send == nullptr: in place, the input is recv's slot at
  // `slot_elems`.
  bool mpi_half_call(DataType format, const float* send, float* recv, size_t count,
                     size_t recv_count, size_t slot_elems, uint16_t* send_half,
                     uint16_t* recv_half) const {
    const void* sendp = nullptr;
    if (send != nullptr) {
      cast_from_float(send, count, format, send_half);
      sendp = send_half;
    } else {
      cast_from_float(recv + slot_elems, count, format, recv_half + slot_elems);
    }
    if (d_.run_mpi_half(sendp, recv_half, count, half_mpi_.type(), half_mpi_.sum(format),
                        MPI_COMM_WORLD) != MPI_SUCCESS)
      return false;
    cast_to_float(recv_half, recv_count, format, recv);
    divide_for_avg(recv, recv_count);
    return true;
  }

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
  HalfMpi half_mpi_;
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
