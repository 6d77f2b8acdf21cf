// DQSGD bits per step (docs/algorithms.md §5, derivation in docs/adaptive-levels.md):
//   bits_t = clamp(ceil(log2(1 + C * eta_t * ||g_t||)) + 1, 1, 8)
// with C calibrated on the first window of steps so that the mean bits over
// that window equals the configured bits. Depends only on the reduced global
// norm and the learning rate, so every rank picks the same bits.
#pragma once

#include <cstdint>
#include <vector>

namespace qccl {

constexpr int kDqsgdWindow = 100;  // plan() calls observed before calibrating
constexpr int kDqsgdMinBits = 1;
constexpr int kDqsgdMaxBits = 8;

int dqsgd_bits(double c, double eta_times_norm);

// The C whose mean bits over `samples` (eta_t * ||g_t||) is closest to
// `target_bits`, the smallest such C on ties. 0 if there are no samples.
double calibrate_dqsgd(const std::vector<double>& samples, int target_bits);

// The per-call state: configured bits while the window fills, then the rule.
class DqsgdSchedule {
 public:
  explicit DqsgdSchedule(int target_bits, int window = kDqsgdWindow)
      : target_bits_(target_bits), window_(window) {}
  // One plan() call's choice.
  int next_bits(double global_norm, double learning_rate);
  bool calibrated() const { return calibrated_; }
  double constant() const { return c_; }

 private:
  int target_bits_;
  int window_;
  int observed_ = 0;
  bool calibrated_ = false;
  double c_ = 0;
  std::vector<double> samples_;
};

}  // namespace qccl
