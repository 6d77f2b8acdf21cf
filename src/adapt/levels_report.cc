#include "adapt/levels_report.h"

#include <cmath>

#include "adapt/truncated_normal.h"
#include "codec/quantization_variance.h"

namespace qccl {
namespace {

EncodeSpec spec_for(Method method, int bits, uint32_t bucket_size, NormKind norm,
                    const LevelTable& table, uint64_t seed) {
  EncodeSpec spec;
  spec.method = method;
  spec.bits = bits;
  spec.bucket_size = bucket_size;
  spec.norm = norm;
  spec.levels = table.levels.data();
  spec.num_levels = table.size();
  spec.table_version = table.version;
  spec.seed = seed;
  return spec;
}

// Methods whose table needs fewer bits than asked (TernGrad: 2).
int wire_bits(Method method, int bits) {
  return method == Method::kTrn ? 2 : bits;
}

}  // namespace

Result measure_normalized_variance(const std::vector<float>& data, Method method, int bits,
                                   uint32_t bucket_size, NormKind norm, const LevelTable& table,
                                   int seeds, double* out) {
  double energy = 0;
  for (float x : data) energy += static_cast<double>(x) * x;
  if (!(energy > 0)) return fail(qcclInvalidArgument, "data has zero norm");
  std::vector<float> decoded(data.size());
  std::vector<unsigned char> payload;
  double sum = 0;
  for (int s = 0; s < seeds; ++s) {
    const EncodeSpec spec = spec_for(method, bits, bucket_size, norm, table, 1000 + s);
    payload.resize(payload_bytes(spec, data.size()));
    QCCL_CHECK(encode(data.data(), DataType::kFloat32, data.size(), spec, payload.data(),
                      payload.size(), nullptr));
    QCCL_CHECK(decode(payload.data(), payload.size(), data.size(), decoded.data()));
    double err = 0;
    for (size_t i = 0; i < data.size(); ++i) {
      const double e = static_cast<double>(decoded[i]) - data[i];
      err += e * e;
    }
    sum += err / energy;
  }
  *out = sum / seeds;
  return qcclSuccess;
}

Result report_levels_for_data(const LevelsRequest& request, const std::vector<float>& data,
                              LevelsReport* out) {
  if (data.empty()) return fail(qcclInvalidArgument, "no input values");
  const NormKind norm = request.norm_auto ? default_norm(request.method) : request.norm;
  const int bits = wire_bits(request.method, request.bits);
  // Statistics come from a real encode with the method's starting table.
  LevelTable start;
  QCCL_CHECK(initial_table(request.method, request.bits, &start));
  EncodeStats stats;
  {
    const EncodeSpec spec = spec_for(request.method, bits, request.bucket_size, norm, start, 0);
    std::vector<unsigned char> payload(payload_bytes(spec, data.size()));
    QCCL_CHECK(encode(data.data(), DataType::kFloat32, data.size(), spec, payload.data(),
                      payload.size(), &stats));
  }
  const StatsSummary summary = summarize(stats);
  LevelsReport r;
  r.model = resolve_model(request.method, request.model);
  std::unique_ptr<LevelModel> model;
  QCCL_CHECK(build_model(r.model, summary, request.weight, &model));
  QCCL_CHECK(fit_levels(request.method, request.bits, *model, -1, &r.fit));
  r.predicted_normalized = normalized_variance(summary, r.fit.variance);
  double energy = 0;
  for (float x : data) energy += static_cast<double>(x) * x;
  r.exact_normalized = quantization_variance(data.data(), data.size(), request.bucket_size, norm,
                                             r.fit.table.levels.data(), r.fit.table.size()) /
                       energy;
  QCCL_CHECK(measure_normalized_variance(data, request.method, bits, request.bucket_size, norm,
                                         r.fit.table, request.seeds, &r.measured_normalized));
  *out = std::move(r);
  return qcclSuccess;
}

Result report_levels_for_normal(const LevelsRequest& request, double sigma, LevelsReport* out) {
  if (!(sigma > 0) || !std::isfinite(sigma)) {
    return fail(qcclInvalidArgument, "--normal sigma must be a positive number, got {}", sigma);
  }
  LevelsReport r;
  r.model = ModelKind::kTruncNorm;
  const TruncatedNormal model(0.0, sigma);
  QCCL_CHECK(fit_levels(request.method, request.bits, model, -1, &r.fit));
  *out = std::move(r);
  return qcclSuccess;
}

}  // namespace qccl
