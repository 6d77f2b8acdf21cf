// The exact expected squared error of the quantiser (docs/algorithms.md §1):
// E||Q(v) - v||^2 = sum_b n_b^2 sum_{i in b} (l_{j+1} - r_i)(r_i - l_j).
// Used by tests and tools to check measured errors against prediction.
#pragma once

#include <cstdint>

#include "core/method.h"

namespace qccl {

// Computed in double from the same float norm and r the encoder uses.
double quantization_variance(const float* v, uint64_t count, uint32_t bucket_size, NormKind norm,
                             const float* levels, int num_levels);

// Per-coordinate variance of the same (out has `count` entries).
void coordinate_variances(const float* v, uint64_t count, uint32_t bucket_size, NormKind norm,
                          const float* levels, int num_levels, double* out);

// The float bucket norm exactly as the encoder computes it.
float bucket_norm_reference(const float* v, uint32_t n, NormKind norm);

}  // namespace qccl
