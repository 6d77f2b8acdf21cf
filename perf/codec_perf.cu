// GPU codec throughput (issue 5): encode and decode-accumulate of float32
// input in GB/s (decimal) of input bytes, next to a device-to-device
// cudaMemcpy of the same bytes measured in the same run — the memory-system
// limit the fused kernels are held to (target: within 15% of it from 64 MB).
// CUDA events, warm-up launches, best-of and mean over the timed launches.
// Without a device it prints why and exits 0, so CI can run it anywhere.
//
//   qccl_codec_perf [-b min_bytes] [-e max_bytes] [-n iterations] [-B bucket]
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "codec/cpu_codec.h"
#include "codec/cuda_codec.h"
#include "codec/level_table.h"

namespace {

#define PERF_CUDA(call)                                                                          \
  do {                                                                                           \
    const cudaError_t e_ = (call);                                                               \
    if (e_ != cudaSuccess) {                                                                     \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(1);                                                                              \
    }                                                                                            \
  } while (0)

#define PERF_QCCL(call)                                                 \
  do {                                                                  \
    if ((call) != qcclSuccess) {                                        \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, \
                   qccl::thread_last_error().c_str());                  \
      std::exit(1);                                                     \
    }                                                                   \
  } while (0)

struct Options {
  uint64_t min_bytes = 1ull << 20;
  uint64_t max_bytes = 1ull << 30;
  int iterations = 20;
  uint32_t bucket = 8192;
};

uint64_t parse_size(const char* text) {
  char* end = nullptr;
  double v = std::strtod(text, &end);
  if (end && (*end == 'K' || *end == 'k')) v *= 1 << 10;
  if (end && (*end == 'M' || *end == 'm')) v *= 1 << 20;
  if (end && (*end == 'G' || *end == 'g')) v *= 1 << 30;
  return static_cast<uint64_t>(v);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "-b")
      o.min_bytes = parse_size(argv[i + 1]);
    else if (flag == "-e")
      o.max_bytes = parse_size(argv[i + 1]);
    else if (flag == "-n")
      o.iterations = std::atoi(argv[i + 1]);
    else if (flag == "-B")
      o.bucket = static_cast<uint32_t>(std::atoi(argv[i + 1]));
    else {
      std::fprintf(stderr, "usage: %s [-b min_bytes] [-e max_bytes] [-n iters] [-B bucket]\n",
                   argv[0]);
      std::exit(2);
    }
  }
  if (o.iterations < 1) o.iterations = 1;
  return o;
}

// Milliseconds per call of `body`, mean over `iterations` after 3 warm-ups.
template <typename Body>
float time_ms(cudaStream_t stream, int iterations, Body body) {
  for (int i = 0; i < 3; ++i) body();
  cudaEvent_t start, stop;
  PERF_CUDA(cudaEventCreate(&start));
  PERF_CUDA(cudaEventCreate(&stop));
  PERF_CUDA(cudaEventRecord(start, stream));
  for (int i = 0; i < iterations; ++i) body();
  PERF_CUDA(cudaEventRecord(stop, stream));
  PERF_CUDA(cudaEventSynchronize(stop));
  float ms = 0;
  PERF_CUDA(cudaEventElapsedTime(&ms, start, stop));
  PERF_CUDA(cudaEventDestroy(start));
  PERF_CUDA(cudaEventDestroy(stop));
  return ms / iterations;
}

__global__ void fill_gaussianish(float* x, uint64_t n) {
  // Cheap deterministic values with a spread like gradients; the codec's
  // speed does not depend on their distribution beyond the table search.
  for (uint64_t i = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u;
    h ^= h >> 15;
    x[i] = (static_cast<float>(h & 0xFFFF) - 32768.0f) * 1e-6f;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  std::string why;
  if (!qccl::cuda_device_available(&why)) {
    std::printf("# qccl_codec_perf: no CUDA device (%s); nothing measured.\n", why.c_str());
    return 0;
  }
  int device = 0;
  cudaDeviceProp prop;
  PERF_CUDA(cudaGetDevice(&device));
  PERF_CUDA(cudaGetDeviceProperties(&prop, device));
  std::printf("# qccl_codec_perf on %s (sm_%d%d), bucket %u, %d timed iterations, float32 input\n",
              prop.name, prop.major, prop.minor, opt.bucket, opt.iterations);
  std::printf("# GB/s = input bytes / time (1e9). decode = decode-accumulate of one payload.\n");
  std::printf("%12s %5s %10s %10s %8s %10s %8s %8s\n", "bytes", "bits", "copy GB/s", "enc GB/s",
              "enc/copy", "dec GB/s", "dec/copy", "ratio");

  const uint64_t max_count = opt.max_bytes / 4;
  cudaStream_t stream;
  PERF_CUDA(cudaStreamCreate(&stream));
  float *input = nullptr, *copy = nullptr, *acc = nullptr;
  void* payload = nullptr;
  qccl::EncodeSpec widest;
  widest.bits = 8;
  widest.bucket_size = opt.bucket;
  widest.num_levels = 256;
  const uint64_t max_payload = qccl::payload_bytes(widest, max_count);
  PERF_CUDA(cudaMalloc(&input, 4 * max_count));
  PERF_CUDA(cudaMalloc(&copy, 4 * max_count));
  PERF_CUDA(cudaMalloc(&acc, 4 * max_count));
  PERF_CUDA(cudaMalloc(&payload, max_payload));
  fill_gaussianish<<<1024, 256, 0, stream>>>(input, max_count);
  PERF_CUDA(cudaGetLastError());
  PERF_CUDA(cudaMemsetAsync(acc, 0, 4 * max_count, stream));

  qccl::CudaCodec codec;
  for (uint64_t bytes = opt.min_bytes; bytes <= opt.max_bytes; bytes *= 2) {
    const uint64_t count = bytes / 4;
    const float copy_ms = time_ms(stream, opt.iterations, [&] {
      PERF_CUDA(cudaMemcpyAsync(copy, input, 4 * count, cudaMemcpyDeviceToDevice, stream));
    });
    const double copy_gbs = bytes / (copy_ms * 1e6);
    for (const int bits : {2, 3, 4, 8}) {
      const qccl::LevelTable table = qccl::uniform_table(bits);
      qccl::EncodeSpec spec;
      spec.method = qccl::Method::kQsgd;
      spec.bits = bits;
      spec.bucket_size = opt.bucket;
      spec.levels = table.levels.data();
      spec.num_levels = table.size();
      const uint64_t size = qccl::payload_bytes(spec, count);
      const float enc_ms = time_ms(stream, opt.iterations, [&] {
        PERF_QCCL(codec.encode_device(input, qccl::DataType::kFloat32, count, spec, payload, size,
                                      stream, nullptr));
      });
      const void* payloads[1] = {payload};
      const uint64_t sizes[1] = {size};
      // Includes the host-side header validation (one stream sync per call).
      const float dec_ms = time_ms(stream, opt.iterations, [&] {
        PERF_QCCL(codec.decode_accumulate_device(payloads, sizes, 1, count, acc, stream));
      });
      const double enc_gbs = bytes / (enc_ms * 1e6);
      const double dec_gbs = bytes / (dec_ms * 1e6);
      std::printf("%12llu %5d %10.1f %10.1f %8.2f %10.1f %8.2f %8.2f\n",
                  static_cast<unsigned long long>(bytes), bits, copy_gbs, enc_gbs,
                  enc_gbs / copy_gbs, dec_gbs, dec_gbs / copy_gbs,
                  static_cast<double>(bytes) / size);
    }
  }
  PERF_CUDA(cudaStreamSynchronize(stream));
  cudaFree(input);
  cudaFree(copy);
  cudaFree(acc);
  cudaFree(payload);
  cudaStreamDestroy(stream);
  return 0;
}
