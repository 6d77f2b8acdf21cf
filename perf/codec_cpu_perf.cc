// CPU codec throughput, one core: encode, decode and decode-accumulate of
// float32 input in GB/s (input bytes / time), next to memcpy of the same
// bytes measured in the same run — the per-core memory-bandwidth ceiling.
//
//   qccl_codec_cpu_perf [-b bytes] [-e bytes] [-f factor] [-q bits,...] [-m method] [-n iters]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "codec/cpu_codec.h"
#include "codec/level_table.h"

namespace {

using Clock = std::chrono::steady_clock;

template <typename F>
double best_seconds(int iters, F&& f) {
  f();  // warm-up: page faults, caches
  double best = 1e30;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = Clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return best;
}

uint64_t parse_size(const char* s) {
  char* end;
  double v = std::strtod(s, &end);
  switch (*end) {
    case 'K': v *= 1 << 10; break;
    case 'M': v *= 1 << 20; break;
    case 'G': v *= 1 << 30; break;
    default: break;
  }
  return static_cast<uint64_t>(v);
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t min_bytes = 1 << 20, max_bytes = 64 << 20;
  int factor = 4, iters = 5;
  std::vector<int> bits_list = {2, 3, 4, 8};
  std::string method_name = "qsgd";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "-b")
      min_bytes = parse_size(argv[i + 1]);
    else if (flag == "-e")
      max_bytes = parse_size(argv[i + 1]);
    else if (flag == "-f")
      factor = std::atoi(argv[i + 1]);
    else if (flag == "-n")
      iters = std::atoi(argv[i + 1]);
    else if (flag == "-m")
      method_name = argv[i + 1];
    else if (flag == "-q") {
      bits_list.clear();
      for (const char* p = argv[i + 1]; *p;) {
        bits_list.push_back(std::atoi(p));
        while (*p && *p != ',') ++p;
        if (*p == ',') ++p;
      }
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  qccl::Method method;
  if (!qccl::parse_method(method_name, &method) || !qccl::is_quantizing(method) || factor < 2) {
    std::fprintf(stderr, "-m must be a quantising method and -f >= 2\n");
    return 2;
  }
  std::printf("# qccl CPU codec, one core, method %s, bucket 8192, float32 input\n",
              method_name.c_str());
  std::printf("# GB/s = input bytes / best of %d runs; ratio = codec / memcpy\n", iters);
  std::printf("%12s %5s %10s %10s %10s %10s %8s %8s %8s\n", "size(B)", "bits", "memcpy", "encode",
              "decode", "dec-acc", "enc/cp", "dec/cp", "acc/cp");
  for (uint64_t bytes = min_bytes; bytes <= max_bytes; bytes *= factor) {
    const uint64_t n = bytes / 4;
    std::vector<float> in(n), out(n), copy(n);
    std::mt19937 rng(1);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    for (float& x : in) x = dist(rng);
    const double t_copy = best_seconds(iters, [&] { std::memcpy(copy.data(), in.data(), bytes); });
    for (int bits : bits_list) {
      qccl::LevelTable table;
      if (qccl::initial_table(method, bits, &table) != qcclSuccess) continue;
      qccl::EncodeSpec spec;
      spec.method = method;
      spec.bits = bits;
      spec.norm = qccl::default_norm(method);
      spec.levels = table.levels.data();
      spec.num_levels = table.size();
      std::vector<unsigned char> payload(qccl::payload_bytes(spec, n));
      uint32_t step = 0;
      const double t_enc = best_seconds(iters, [&] {
        spec.step = step++;
        qccl::encode(in.data(), qccl::DataType::kFloat32, n, spec, payload.data(), payload.size(),
                     nullptr);
      });
      const double t_dec =
          best_seconds(iters, [&] { qccl::decode(payload.data(), payload.size(), n, out.data()); });
      const double t_acc = best_seconds(
          iters, [&] { qccl::decode_accumulate(payload.data(), payload.size(), n, out.data()); });
      const auto gbs = [&](double t) { return bytes / t / 1e9; };
      std::printf("%12llu %5d %10.2f %10.2f %10.2f %10.2f %8.3f %8.3f %8.3f\n",
                  static_cast<unsigned long long>(bytes), bits, gbs(t_copy), gbs(t_enc), gbs(t_dec),
                  gbs(t_acc), t_copy / t_enc, t_copy / t_dec, t_copy / t_acc);
    }
  }
  return 0;
}
