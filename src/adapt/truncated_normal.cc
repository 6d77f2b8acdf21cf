#include "adapt/truncated_normal.h"

#include <algorithm>
#include <cmath>

namespace qccl {
namespace {

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

double phi(double z) {
  return std::isinf(z) ? 0.0 : kInvSqrt2Pi * std::exp(-0.5 * z * z);
}

// Phi(b) - Phi(a) for a <= b, taken from the tail the interval lies in so
// that far-tail cells keep their relative precision.
double normal_mass(double a, double b) {
  if (a >= 0) return 0.5 * (std::erfc(a * kInvSqrt2) - std::erfc(b * kInvSqrt2));
  if (b <= 0) return 0.5 * (std::erfc(-b * kInvSqrt2) - std::erfc(-a * kInvSqrt2));
  return 1.0 - 0.5 * (std::erfc(-a * kInvSqrt2) + std::erfc(b * kInvSqrt2));
}

// z * phi(z), zero at the infinities.
double z_phi(double z) {
  return std::isinf(z) ? 0.0 : z * phi(z);
}

}  // namespace

TruncatedNormal::TruncatedNormal(double mu, double sigma)
    : mu_(mu), sigma_(std::max(sigma, kMinSigma)) {
  a_ = standard(-1.0);
  b_ = standard(1.0);
  z_ = normal_mass(a_, b_);
  if (!(z_ > 0)) {
    // mu far outside [-1, 1] (cannot come from normalised data): put all the
    // mass at the nearer end rather than divide by zero.
    mu_ = std::clamp(mu_, -1.0, 1.0);
    a_ = standard(-1.0);
    b_ = standard(1.0);
    z_ = normal_mass(a_, b_);
  }
}

double TruncatedNormal::cdf(double x) const {
  if (x <= -1.0) return 0.0;
  if (x >= 1.0) return 1.0;
  return std::clamp(normal_mass(a_, standard(x)) / z_, 0.0, 1.0);
}

double TruncatedNormal::pdf(double x) const {
  if (x < -1.0 || x > 1.0) return 0.0;
  return phi(standard(x)) / (sigma_ * z_);
}

TruncatedMoments TruncatedNormal::moments(double c, double d) const {
  c = std::max(c, -1.0);
  d = std::min(d, 1.0);
  TruncatedMoments m;
  if (!(d > c)) return m;
  // With r = mu + sigma z: INT phi = mass, INT z phi = phi(a) - phi(b),
  // INT z^2 phi = mass + a phi(a) - b phi(b).
  const double alpha = standard(c), beta = standard(d);
  const double mass = normal_mass(alpha, beta);
  const double dphi = phi(alpha) - phi(beta);
  const double z2 = mass + z_phi(alpha) - z_phi(beta);
  m.mass = mass / z_;
  m.first = (mu_ * mass + sigma_ * dphi) / z_;
  m.second = (mu_ * mu_ * mass + 2 * mu_ * sigma_ * dphi + sigma_ * sigma_ * z2) / z_;
  return m;
}

TruncatedNormalMixture::TruncatedNormalMixture(std::vector<TruncatedNormal> components,
                                               std::vector<double> weights) {
  double total = 0;
  for (size_t k = 0; k < components.size(); ++k) {
    if (weights[k] > 0) {
      components_.push_back(components[k]);
      weights_.push_back(weights[k]);
      total += weights[k];
    }
  }
  for (double& w : weights_) w /= total;
}

double TruncatedNormalMixture::cdf(double x) const {
  double f = 0;
  for (size_t k = 0; k < components_.size(); ++k) f += weights_[k] * components_[k].cdf(x);
  return std::clamp(f, 0.0, 1.0);
}

double TruncatedNormalMixture::pdf(double x) const {
  double f = 0;
  for (size_t k = 0; k < components_.size(); ++k) f += weights_[k] * components_[k].pdf(x);
  return f;
}

TruncatedMoments TruncatedNormalMixture::moments(double c, double d) const {
  TruncatedMoments sum;
  for (size_t k = 0; k < components_.size(); ++k) {
    const TruncatedMoments m = components_[k].moments(c, d);
    sum.mass += weights_[k] * m.mass;
    sum.first += weights_[k] * m.first;
    sum.second += weights_[k] * m.second;
  }
  return sum;
}

}  // namespace qccl
