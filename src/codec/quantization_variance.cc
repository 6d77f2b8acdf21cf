#include "codec/quantization_variance.h"

#include <vector>

#include "codec/quantize_math.h"

namespace qccl {

void coordinate_variances(const float* v, uint64_t count, uint32_t bucket_size, NormKind norm,
                          const float* levels, int num_levels, double* out) {
  for (uint64_t off = 0; off < count; off += bucket_size) {
    const uint32_t n = static_cast<uint32_t>(count - off < bucket_size ? count - off : bucket_size);
    const float nb = bucket_norm_reference(v + off, n, norm);
    for (uint32_t i = 0; i < n; ++i) {
      const float r = normalise(v[off + i], nb);
      const int j = find_cell(levels, num_levels, r);
      const double hi = levels[j + 1], lo = levels[j];
      out[off + i] = static_cast<double>(nb) * nb * (hi - r) * (r - lo);
    }
  }
}

double quantization_variance(const float* v, uint64_t count, uint32_t bucket_size, NormKind norm,
                             const float* levels, int num_levels) {
  std::vector<double> per(count);
  coordinate_variances(v, count, bucket_size, norm, levels, num_levels, per.data());
  double total = 0;
  for (double x : per) total += x;
  return total;
}

}  // namespace qccl
