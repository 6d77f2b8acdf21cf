#include "codec/level_table.h"

#include <cmath>

namespace qccl {

Result validate_levels(const float* levels, int n, int bits) {
  if (bits < 1 || bits > 8)
    return fail(qcclInvalidArgument, "level table: bits must be 1..8, got {}", bits);
  const int max_levels = 1 << bits;
  if (levels == nullptr || n < 2 || n > max_levels) {
    return fail(qcclInvalidArgument, "level table: needs 2..{} levels for {} bits, got {}",
                max_levels, bits, n);
  }
  if (levels[0] != -1.0f || levels[n - 1] != 1.0f) {
    return fail(qcclInvalidArgument, "level table: must start at -1 and end at +1, got {} .. {}",
                levels[0], levels[n - 1]);
  }
  for (int i = 1; i < n; ++i) {
    if (!std::isfinite(levels[i]) || !(levels[i] > levels[i - 1])) {
      return fail(
          qcclInvalidArgument,
          "level table: levels must be finite and strictly ascending, got {} after {} at {}",
          levels[i], levels[i - 1], i);
    }
  }
  return qcclSuccess;
}

LevelTable uniform_table(int bits) {
  const int k = 1 << bits;
  LevelTable t;
  t.levels.resize(k);
  for (int i = 0; i < k; ++i) t.levels[i] = static_cast<float>(-1.0 + 2.0 * i / (k - 1));
  t.levels.front() = -1.0f;
  t.levels.back() = 1.0f;
  return t;
}

LevelTable exponential_table(int bits, double p) {
  // s magnitudes p^(s-1) .. p^0 per sign; with 1 bit just {-1, +1}.
  const int s = (1 << bits) / 2;
  LevelTable t;
  t.levels.resize(2 * s);
  for (int j = 0; j < s; ++j) {
    const float m = static_cast<float>(std::pow(p, j));
    t.levels[s + (s - 1 - j)] = m;
    t.levels[(s - 1) - (s - 1 - j)] = -m;
  }
  return t;
}

LevelTable ternary_table() {
  LevelTable t;
  t.levels = {-1.0f, 0.0f, 1.0f};
  return t;
}

Result initial_table(Method method, int bits, LevelTable* out) {
  if (bits < 1 || bits > 8) return fail(qcclInvalidArgument, "bits must be 1..8, got {}", bits);
  switch (method) {
    case Method::kQsgd:
    case Method::kQsgdInf:
    case Method::kDqsgd: *out = uniform_table(bits); return qcclSuccess;
    case Method::kNuqsgd:
    case Method::kAlq:
    case Method::kAlqN:
    case Method::kAmq:
    case Method::kAmqN: *out = exponential_table(bits, 0.5); return qcclSuccess;
    case Method::kTrn:
      if (bits < 2) return fail(qcclInvalidArgument, "trn needs bits >= 2, got {}", bits);
      *out = ternary_table();
      return qcclSuccess;
    default: return fail(qcclInvalidArgument, "method {} has no level table", method_name(method));
  }
}

}  // namespace qccl
