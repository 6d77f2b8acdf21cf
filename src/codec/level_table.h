// Level tables (docs/algorithms.md §1–2): sorted signed levels, -1 first, +1
// last, at most 2^bits entries. Fixed tables for the classic methods; the
// adaptive methods fill the same type (adapt/).
#pragma once

#include <cstdint>
#include <vector>

#include "core/method.h"
#include "core/result.h"

namespace qccl {

struct LevelTable {
  std::vector<float> levels;
  uint32_t version = 0;
  int size() const { return static_cast<int>(levels.size()); }
};

// qcclSuccess if `levels` is a usable table for `bits`: 2 <= n <= 2^bits,
// finite, strictly ascending, levels[0] == -1 and levels[n-1] == +1.
Result validate_levels(const float* levels, int n, int bits);

// linspace(-1, 1, 2^bits): qsgd, qsgdinf, dqsgd.
LevelTable uniform_table(int bits);
// ±{p^(s-1), ..., p, 1}, s = 2^(bits-1): nuqsgd (p = 1/2) and amq. bits >= 1.
LevelTable exponential_table(int bits, double p);
// {-1, 0, +1}: TernGrad.
LevelTable ternary_table();

// The fixed table of a quantising method; for the adaptive methods, the
// table they start from before their first fit (the exponential p = 1/2).
Result initial_table(Method method, int bits, LevelTable* out);

}  // namespace qccl
