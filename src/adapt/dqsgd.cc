#include "adapt/dqsgd.h"

#include <algorithm>
#include <cmath>

namespace qccl {
namespace {

double mean_bits(double c, const std::vector<double>& samples) {
  double sum = 0;
  for (double x : samples) sum += dqsgd_bits(c, x);
  return sum / samples.size();
}

}  // namespace

int dqsgd_bits(double c, double eta_times_norm) {
  const double s = c * eta_times_norm;  // levels per sign the error bound asks for
  if (!(s > 0)) return kDqsgdMinBits;   // also NaN: a non-finite step keeps the minimum
  if (!std::isfinite(s)) return kDqsgdMaxBits;
  const int bits = static_cast<int>(std::ceil(std::log2(1.0 + s))) + 1;
  return std::clamp(bits, kDqsgdMinBits, kDqsgdMaxBits);
}

double calibrate_dqsgd(const std::vector<double>& samples, int target_bits) {
  if (samples.empty()) return 0;
  // mean_bits is non-decreasing in C: bisect log C for the smallest C that
  // reaches the target, then compare it with the largest C below it.
  double lo = -700, hi = 700;  // log C
  if (mean_bits(std::exp(hi), samples) < target_bits) return std::exp(hi);
  if (mean_bits(std::exp(lo), samples) >= target_bits) return std::exp(lo);
  for (int it = 0; it < 200 && hi - lo > 1e-12; ++it) {
    const double mid = 0.5 * (lo + hi);
    if (mean_bits(std::exp(mid), samples) >= target_bits) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  const double above = mean_bits(std::exp(hi), samples) - target_bits;
  const double below = target_bits - mean_bits(std::exp(lo), samples);
  return below < above ? std::exp(lo) : std::exp(hi);
}

int DqsgdSchedule::next_bits(double global_norm, double learning_rate) {
  const double eta = learning_rate > 0 ? learning_rate : 1.0;
  const double x = eta * global_norm;
  if (!calibrated_) {
    if (observed_++ < window_) {
      if (std::isfinite(x)) samples_.push_back(x);
      return target_bits_;
    }
    c_ = calibrate_dqsgd(samples_, target_bits_);
    calibrated_ = true;
    samples_.clear();
    samples_.shrink_to_fit();
  }
  return dqsgd_bits(c_, x);
}

}  // namespace qccl
