// Helpers shared by the codec tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "codec/cpu_codec.h"
#include "codec/level_table.h"

namespace qccl::testing_util {

inline std::vector<float> GaussianVector(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Encodes float32 `v` with `spec` (table taken from `table`), returns the payload.
inline std::vector<unsigned char> Encode(const std::vector<float>& v, EncodeSpec spec,
                                         const LevelTable& table, EncodeStats* stats = nullptr) {
  spec.levels = table.levels.data();
  spec.num_levels = table.size();
  std::vector<unsigned char> payload(payload_bytes(spec, v.size()));
  const Result r =
      encode(v.data(), DataType::kFloat32, v.size(), spec, payload.data(), payload.size(), stats);
  EXPECT_EQ(r, qcclSuccess) << thread_last_error();
  return payload;
}

inline std::vector<float> Decode(const std::vector<unsigned char>& payload, size_t n) {
  std::vector<float> out(n, -12345.0f);
  const Result r = decode(payload.data(), payload.size(), n, out.data());
  EXPECT_EQ(r, qcclSuccess) << thread_last_error();
  return out;
}

}  // namespace qccl::testing_util
