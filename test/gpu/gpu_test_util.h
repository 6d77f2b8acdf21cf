// Helpers for the GPU codec tests: the skip-without-device guard, a device
// buffer, and inputs in the three dtypes. The CPU codec is the reference.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "codec/cpu_codec.h"
#include "codec/cuda_codec.h"
#include "codec/half_cast.h"
#include "core/method.h"

// DESIGN.md §10: GPU tests compile everywhere and skip, visibly, without a device.
#define QCCL_REQUIRE_CUDA_DEVICE()                     \
  do {                                                 \
    std::string qccl_why_;                             \
    if (!::qccl::cuda_device_available(&qccl_why_))    \
      GTEST_SKIP() << "no CUDA device: " << qccl_why_; \
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
