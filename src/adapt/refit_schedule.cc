#include "adapt/refit_schedule.h"

#include <algorithm>

namespace qccl {

bool is_refit_step(const std::vector<uint64_t>& steps, uint64_t every, uint64_t step) {
  if (std::binary_search(steps.begin(), steps.end(), step)) return true;
  if (every == 0) return false;
  const uint64_t last = steps.empty() ? 0 : steps.back();
  return step > last && (step - last) % every == 0;
}

}  // namespace qccl

namespace qccl {

bool refit_due_between(const std::vector<uint64_t>& steps, uint64_t every, uint64_t first,
                       uint64_t last) {
  if (first > last) return false;
  const auto it = std::lower_bound(steps.begin(), steps.end(), first);
  if (it != steps.end() && *it <= last) return true;
  if (every == 0) return false;
  const uint64_t base = steps.empty() ? 0 : steps.back();
  const uint64_t from = std::max(first, base + 1);
  const uint64_t k = (from - base + every - 1) / every;
  return base + k * every <= last;
}

}  // namespace qccl
