// Helpers shared by the multi-rank tests: communicators with config
// overrides, deterministic per-rank inputs, cross-rank comparisons.
#pragma once

#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "qccl/qccl.h"

namespace qccl::test {

inline int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
inline int world_size() {
  int n = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

// Config overrides by field name; strings live as long as the options.
// Relative L2 error of `got` against the exact values (the absolute error
// when every exact value is 0).
inline double relative_error(const std::vector<float>& got, const std::vector<double>& exact) {
  double err = 0, norm = 0;
  for (size_t i = 0; i < exact.size(); ++i) {
    err += (got[i] - exact[i]) * (got[i] - exact[i]);
    norm += exact[i] * exact[i];
  }
  return norm > 0 ? std::sqrt(err / norm) : std::sqrt(err);
}

struct CommOptions {
  std::string method = "qsgd", algo = "auto", bits = "3", bucket = "256", min_bytes = "0";
  std::string seed = "7", timeout = "60";
};

// Owns a communicator; destroys it at scope end.
class Comm {
 public:
  explicit Comm(const CommOptions& o = CommOptions()) {
    qcclConfig_t c = QCCL_CONFIG_INITIALIZER;
    c.method = o.method.c_str();
    c.algo = o.algo.c_str();
    c.bits = o.bits.c_str();
    c.bucketSize = o.bucket.c_str();
    c.minCompressBytes = o.min_bytes.c_str();
    c.seed = o.seed.c_str();
    c.timeoutS = o.timeout.c_str();
    MPI_Comm world = MPI_COMM_WORLD;
    init_result = qcclCommInitMpi(&comm, &world, &c);
  }
  ~Comm() {
    if (comm != nullptr) qcclCommDestroy(comm);
  }
  Comm(const Comm&) = delete;
  Comm& operator=(const Comm&) = delete;

  qcclComm_t comm = nullptr;
  qcclResult_t init_result = qcclInternalError;
};

// Rank `rank`'s input for `trial`: Gaussian with a per-rank mean, so the
// sum is not zero-mean. Every rank can regenerate every rank's input.
inline std::vector<float> rank_input(int rank, int trial, size_t count) {
  std::mt19937_64 gen(1000003ull * trial + 7919ull * rank + 1);
  std::normal_distribution<float> normal(0.1f * (rank + 1), 1.0f);
  std::vector<float> v(count);
  for (float& x : v) x = normal(gen);
  return v;
}

// Exact (fp64) sum over ranks of rank_input.
inline std::vector<double> exact_sum(int nranks, int trial, size_t count) {
  std::vector<double> s(count, 0.0);
  for (int r = 0; r < nranks; ++r) {
    const std::vector<float> v = rank_input(r, trial, count);
    for (size_t i = 0; i < count; ++i) s[i] += v[i];
  }
  return s;
}

// True on every rank iff every rank holds the same `bytes` bytes.
inline bool identical_on_all_ranks(const void* data, size_t bytes) {
  std::vector<unsigned char> root(static_cast<const unsigned char*>(data),
                                  static_cast<const unsigned char*>(data) + bytes);
  MPI_Bcast(root.data(), static_cast<int>(bytes), MPI_BYTE, 0, MPI_COMM_WORLD);
  int same = std::memcmp(root.data(), data, bytes) == 0 ? 1 : 0;
  int all_same = 0;
  MPI_Allreduce(&same, &all_same, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return all_same == 1;
}

inline const std::vector<std::string>& compressed_methods() {
  static const std::vector<std::string> kMethods = {
      "fp16", "bf16", "qsgd", "qsgdinf", "nuqsgd", "trn", "alq", "alqn", "amq", "amqn", "dqsgd"};
  return kMethods;
}

}  // namespace qccl::test
