// Helpers for the GPU tests: the skip-without-device (and without-NCCL)
// guards, a device buffer, and inputs in the three dtypes. The CPU codec is
// the reference.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "codec/cpu_codec.h"
#include "codec/cuda_codec.h"
#include "codec/half_cast.h"
#include "core/method.h"

// ---- Skips (docs/design.md §10) -------------------------------------------------
// GPU tests compile everywhere and skip, visibly, without a device (or, for
// the NCCL tests, without a usable libnccl). Every such skip goes through
// QCCL_GPU_SKIP, the one place that honours QCCL_TEST_REQUIRE_GPU: set to
// anything but "" or "0" (ci/gpu-check.sh sets 1), a skip becomes a failure
// with the same message, so a GPU machine cannot pass by skipping.
// Skips that are not about a missing GPU or NCCL (e.g. "4 ranks need 4
// GPUs" on a one-GPU machine) stay plain GTEST_SKIPs.

namespace qccl::gpu_test {

inline bool RequireGpu() {
  const char* v = std::getenv("QCCL_TEST_REQUIRE_GPU");
  return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
}

// Whether the text of a failed NCCL bootstrap (qcclGetUniqueId,
// qcclCommInitRank, ...) says that NCCL itself is missing: a build without
// NCCL ("built without NCCL") or a libnccl that cannot be loaded ("library
// not found", dlopen's "cannot open shared object file" for libnccl).
inline bool NcclMissing(const std::string& error) {
  std::string text(error);
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text.find("library not found") != std::string::npos ||
         text.find("built without nccl") != std::string::npos ||
         (text.find("libnccl") != std::string::npos &&
          text.find("cannot open shared object file") != std::string::npos);
}

}  // namespace qccl::gpu_test

// Skips the current test with `why` (a std::string or C string), or fails it
// with the same text under QCCL_TEST_REQUIRE_GPU=1. Use in a test body (it
// returns from the enclosing void function).
#define QCCL_GPU_SKIP(why)                                                               \
  do {                                                                                   \
    const std::string qccl_skip_why_(why);                                               \
    if (::qccl::gpu_test::RequireGpu()) {                                                \
      GTEST_FAIL() << "QCCL_TEST_REQUIRE_GPU is set, so this is a failure, not a skip: " \
                   << qccl_skip_why_;                                                    \
    } else {                                                                             \
      GTEST_SKIP() << qccl_skip_why_;                                                    \
    }                                                                                    \
  } while (0)

#define QCCL_REQUIRE_CUDA_DEVICE()                                \
  do {                                                            \
    std::string qccl_why_;                                        \
    if (!::qccl::cuda_device_available(&qccl_why_))               \
      QCCL_GPU_SKIP(std::string("no CUDA device: ") + qccl_why_); \
  } while (0)

// A CUDA build without libnccl at build time (QCCL_HAVE_NCCL undefined:
// every NCCL entry point is qcclInvalidUsage) skips the NCCL tests.
#ifdef QCCL_HAVE_NCCL
#define QCCL_REQUIRE_NCCL() \
  do {                      \
  } while (0)
#else
#define QCCL_REQUIRE_NCCL() \
  QCCL_GPU_SKIP("no NCCL: this qccl was built without NCCL (libnccl not found at build time)")
#endif

// After a failed NCCL bootstrap call: skip (or fail, see above) when its
// error text says NCCL is missing; otherwise the caller asserts as usual.
#define QCCL_SKIP_IF_NCCL_MISSING(error_text)                     \
  do {                                                            \
    const std::string qccl_nccl_error_(error_text);               \
    if (::qccl::gpu_test::NcclMissing(qccl_nccl_error_))          \
      QCCL_GPU_SKIP(std::string("no NCCL: ") + qccl_nccl_error_); \
  } while (0)

#define ASSERT_CUDA(call) ASSERT_EQ((call), cudaSuccess) << #call

namespace qccl::gpu_test {

// Device memory freed at scope exit.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (cudaMalloc(&ptr_, bytes == 0 ? 4 : bytes) != cudaSuccess) ptr_ = nullptr;
  }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  void upload(const void* host, size_t n) const {
    ASSERT_EQ(cudaMemcpy(ptr_, host, n, cudaMemcpyHostToDevice), cudaSuccess);
  }
  std::vector<unsigned char> download(size_t n) const {
    std::vector<unsigned char> out(n);
    EXPECT_EQ(cudaMemcpy(out.data(), ptr_, n, cudaMemcpyDeviceToHost), cudaSuccess);
    return out;
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_;
};

inline std::vector<float> GaussianValues(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// The bytes of `values` stored as `dtype` (half_cast.h rounding).
inline std::vector<unsigned char> AsDtype(const std::vector<float>& values, DataType dtype) {
  std::vector<unsigned char> out(values.size() * dtype_size(dtype));
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == DataType::kFloat32) {
      std::memcpy(out.data() + 4 * i, &values[i], 4);
    } else {
      const uint16_t h =
          dtype == DataType::kFloat16 ? float_to_fp16(values[i]) : float_to_bf16(values[i]);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  }
  return out;
}

}  // namespace qccl::gpu_test
