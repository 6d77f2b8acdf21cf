// AMQ: the multiplier p of the table ±{p^S, ..., p, 1} minimising V under a
// model of F (docs/algorithms.md §4).
#pragma once

#include <vector>

#include "adapt/level_model.h"

namespace qccl {

struct AmqResult {
  double p = 0.5;
  double variance = 0;
};

// ±{p^(s-1), ..., p, 1}, s = 2^(bits-1), ascending, in double (the float
// table of codec/level_table.h rounds these).
std::vector<double> amq_levels(int bits, double p);
double amq_variance(const LevelModel& model, int bits, double p);
// dV/dp = sum_j dV/dl_j * dl_j/dp with l = ±p^k (the §4 derivative, for any model).
double amq_derivative(const LevelModel& model, int bits, double p);

// The reference optimiser: p <- p - 0.7 dV/dp for 50 steps from each of
// {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 0.9} and `previous_p` (if in (0, 1)).
AmqResult amq_gradient_descent(const LevelModel& model, int bits, double previous_p = -1);

// The lowest V of: a grid over (0, 1) refined by golden section around its
// best point, and amq_gradient_descent — so never worse than the reference.
AmqResult optimise_amq(const LevelModel& model, int bits, double previous_p = -1);

}  // namespace qccl
