// Normal (mu, sigma) truncated to [-1, 1], and the norm-weighted mixture of
// such components: the parametric models of docs/algorithms.md §3 (alqn/amqn use
// one component, alq/amq a mixture over the largest-norm buckets).
#pragma once

#include <vector>

#include "adapt/level_model.h"

namespace qccl {

class TruncatedNormal : public LevelModel {
 public:
  // sigma is floored at kMinSigma so a constant bucket still has a density.
  TruncatedNormal(double mu, double sigma);
  static constexpr double kMinSigma = 1e-7;

  double cdf(double x) const override;
  double pdf(double x) const override;
  TruncatedMoments moments(double c, double d) const override;

  double mu() const { return mu_; }
  double sigma() const { return sigma_; }

 private:
  double standard(double x) const { return (x - mu_) / sigma_; }
  double mu_, sigma_;
  double a_, b_;  // standardised ends of [-1, 1]
  double z_;      // mass of the untruncated normal on [-1, 1]
};

// sum_k w_k TN(mu_k, sigma_k) with the weights normalised to sum 1.
class TruncatedNormalMixture : public LevelModel {
 public:
  // Components with weight <= 0 are dropped; at least one must remain.
  TruncatedNormalMixture(std::vector<TruncatedNormal> components, std::vector<double> weights);

  double cdf(double x) const override;
  double pdf(double x) const override;
  TruncatedMoments moments(double c, double d) const override;
  int size() const { return static_cast<int>(components_.size()); }

 private:
  std::vector<TruncatedNormal> components_;
  std::vector<double> weights_;
};

}  // namespace qccl
