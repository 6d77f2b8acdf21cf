// ALQ: the K - 2 interior levels minimising V under a model of F, by exact
// coordinate descent (docs/algorithms.md §3).
#pragma once

#include <vector>

#include "adapt/level_model.h"

namespace qccl {

constexpr int kAlqSweeps = 30;  // the reference code's count

struct AlqResult {
  std::vector<double> levels;  // sorted, -1 .. +1, 2^bits entries
  double variance = 0;         // V(levels) under the model
};

// One sweep: every interior level in turn moves to the exact minimiser of V
// with its neighbours fixed, l_j <- F^{-1}(F(d) - INT_c^d (r - c) dF / (d - c)).
// Levels of an (almost) empty cell stay. V never increases.
void alq_sweep(const LevelModel& model, std::vector<double>* levels);

// At least `sweeps` sweeps from `start` (sorted, ends at -1 and +1), then on
// until converged (at most 2000).
AlqResult alq_descend(const LevelModel& model, std::vector<double> start, int sweeps = kAlqSweeps);

// The three starts of §3 — quantiles of F, uniform, exponential p = 1/2 —
// plus quantiles of f^(1/3) (near-optimal for large tables).
std::vector<std::vector<double>> alq_starts(const LevelModel& model, int bits);
std::vector<double> companding_start(const LevelModel& model, int num_levels);

// Best of alq_descend from the four starts (lowest V; ties to the earlier start).
AlqResult optimise_alq(const LevelModel& model, int bits, int sweeps = kAlqSweeps);

}  // namespace qccl
