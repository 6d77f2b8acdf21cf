#include "engine/error_feedback.h"

#include <cmath>

#include "core/checked_alloc.h"

namespace qccl {

void ErrorFeedbackStore::add_residual(uint64_t name_hash, float* x, uint64_t count) {
  auto it = residuals_.find(name_hash);
  if (it == residuals_.end() || it->second.size() != count) return;
  const float* e = it->second.data();
  for (uint64_t i = 0; i < count; ++i) x[i] += e[i];
}

Result ErrorFeedbackStore::update(uint64_t name_hash, const float* sent, const float* own_decoded,
                                  uint64_t count) {
  std::vector<float>& e = residuals_[name_hash];
  if (e.size() != count) {
    e.clear();
    QCCL_CHECK(grow_vector(&e, count, "error-feedback residual"));
  }
  // A non-finite input already reached the result (docs/design.md §5); carrying
  // it in the residual would poison every later step of this name.
  for (uint64_t i = 0; i < count; ++i) {
    const float r = sent[i] - own_decoded[i];
    e[i] = std::isfinite(r) ? r : 0.0f;
  }
  return qcclSuccess;
}

}  // namespace qccl
