#include "adapt/level_fit.h"

#include "adapt/alq_optimizer.h"
#include "adapt/amq_optimizer.h"

namespace qccl {

std::vector<double> table_levels(const LevelTable& table) {
  return std::vector<double>(table.levels.begin(), table.levels.end());
}

Result to_level_table(const std::vector<double>& levels, int bits, LevelTable* out) {
  LevelTable t;
  t.levels.push_back(-1.0f);
  for (size_t j = 1; j + 1 < levels.size(); ++j) {
    const float x = static_cast<float>(levels[j]);
    if (x > t.levels.back() && x < 1.0f) t.levels.push_back(x);
  }
  t.levels.push_back(1.0f);
  QCCL_CHECK(validate_levels(t.levels.data(), t.size(), bits));
  *out = std::move(t);
  return qcclSuccess;
}

Result fit_levels(Method method, int bits, const LevelModel& model, double previous_p,
                  LevelFit* out) {
  LevelFit fit;
  switch (method) {
    case Method::kAlq:
    case Method::kAlqN: {
      const AlqResult r = optimise_alq(model, bits);
      QCCL_CHECK(to_level_table(r.levels, bits, &fit.table));
      break;
    }
    case Method::kAmq:
    case Method::kAmqN: {
      const AmqResult r = optimise_amq(model, bits, previous_p);
      fit.multiplier = r.p;
      fit.table = exponential_table(bits, r.p);
      // A tiny p can round neighbouring magnitudes together in float.
      QCCL_CHECK(to_level_table(table_levels(fit.table), bits, &fit.table));
      break;
    }
    default: QCCL_CHECK(initial_table(method, bits, &fit.table)); break;
  }
  fit.variance = expected_variance(model, table_levels(fit.table));
  *out = std::move(fit);
  return qcclSuccess;
}

}  // namespace qccl
