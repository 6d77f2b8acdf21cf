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
