// QCCL_ERROR_FEEDBACK (docs/algorithms.md, error feedback): per tensor name, the
// part of last step's input that quantisation dropped on this rank,
// e = (x + e_prev) - Q(x + e_prev), is added to the next input under that
// name. Q(.) is this rank's own decoded payload, which the engine gets from
// a compressed allgather (see Engine::run_with_error_feedback).
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "core/result.h"

namespace qccl {

class ErrorFeedbackStore {
 public:
  // x += residual(name); a name seen for the first time (or with another
  // count) has a zero residual.
  void add_residual(uint64_t name_hash, float* x, uint64_t count);
  // residual(name) = sent - own_decoded. qcclSystemError (naming the
  // residual and its bytes) when its memory cannot be had.
  Result update(uint64_t name_hash, const float* sent, const float* own_decoded, uint64_t count);
  size_t size() const { return residuals_.size(); }

 private:
  std::unordered_map<uint64_t, std::vector<float>> residuals_;
};

}  // namespace qccl
