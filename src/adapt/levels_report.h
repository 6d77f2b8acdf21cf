// What tools/qccl_levels prints (and tests check): the table a method would
// use for some data, the model's predicted variance, and the normalised
// variance measured by actually encoding and decoding the data with it.
#pragma once

#include <cstdint>
#include <vector>

#include "adapt/level_fit.h"
#include "adapt/stats_summary.h"
#include "core/config.h"

namespace qccl {

struct LevelsRequest {
  Method method = Method::kAlq;
  int bits = 3;
  uint32_t bucket_size = 8192;
  ModelKind model = ModelKind::kAuto;
  MixtureWeight weight = MixtureWeight::kNorm;
  bool norm_auto = true;          // the method's own norm (default_norm)
  NormKind norm = NormKind::kL2;  // used when !norm_auto
  int seeds = 5;                  // encode/decode repetitions for the measurement
};

struct LevelsReport {
  ModelKind model = ModelKind::kAuto;  // the model used
  LevelFit fit;
  double predicted_normalized = -1;  // fit.variance as E||Q(v)-v||^2/||v||^2
  double exact_normalized = -1;      // exact expectation for this data and table
  double measured_normalized = -1;   // mean over seeds of encode+decode
};

// Encodes `data` with the method's norm to collect EncodeStats, fits, and
// measures. qcclInvalidArgument for empty or all-zero data.
Result report_levels_for_data(const LevelsRequest& request, const std::vector<float>& data,
                              LevelsReport* out);

// The table for F = normal(0, sigma) truncated to [-1, 1] (no measurement).
Result report_levels_for_normal(const LevelsRequest& request, double sigma, LevelsReport* out);

// Mean over `seeds` of ||decode(encode(v)) - v||^2 / ||v||^2 with `table`.
Result measure_normalized_variance(const std::vector<float>& data, Method method, int bits,
                                   uint32_t bucket_size, NormKind norm, const LevelTable& table,
                                   int seeds, double* out);

}  // namespace qccl
