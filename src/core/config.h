// The resolved configuration of a communicator. Every QCCL_* variable is
// declared once in config.cc's parameter table (name, default, allowed
// values, description); the parser, the validation, the INFO dump and the
// README table (tools/config_table) all come from that table.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/logging.h"
#include "core/method.h"
#include "core/result.h"

namespace qccl {

// How adapt/ models the distribution of normalised coordinates (docs/algorithms.md §3).
enum class ModelKind : uint8_t { kAuto = 0, kTruncNorm = 1, kMixture = 2, kHistogram = 3 };
const char* model_name(ModelKind m);

struct Config {
  Method method = Method::kAlq;
  int bits = 3;
  uint32_t bucket_size = 8192;
  bool norm_auto = true;  // QCCL_NORM=auto: the method's own norm
  NormKind norm = NormKind::kL2;
  Algo algo = Algo::kAuto;
  uint64_t min_compress_bytes = 65536;
  uint64_t seed = 0;
  std::vector<uint64_t> update_steps{0, 100, 2000};
  uint64_t update_every = 10000;
  ModelKind model = ModelKind::kAuto;
  bool error_feedback = false;
  uint64_t fusion_threshold = 64ull << 20;
  double cycle_time_ms = 1.0;
  std::string timeline;
  log::Level debug = log::Level::kWarn;
  double timeout_s = 300.0;
  // QCCL_ON_TIMEOUT=abort: a timeout ends the job (MPI_Abort) instead of
  // returning qcclTimeout, so the launcher can restart it.
  bool abort_on_timeout = false;
  // A testing aid: a one-rank communicator compresses too (otherwise one
  // rank has nothing to send and goes uncompressed), so a single GPU runs
  // the compressed device path (docs/gpu.md "Testing on one GPU").
  bool compress_one_rank = false;

  // The norm actually used for `method`.
  NormKind effective_norm() const { return norm_auto ? default_norm(method) : norm; }
};

// Environment, then overrides (may be null), then defaults. A bad value is
// qcclInvalidArgument with a message naming the variable, the value and
// what is allowed.
Result resolve_config(const qcclConfig_t* overrides, Config* out);

// Same, with an explicit environment lookup (tests use this; nullptr entries
// mean "unset").
using EnvLookup = const char* (*)(const char* name);
Result resolve_config(const qcclConfig_t* overrides, EnvLookup env, Config* out);

// One line per variable: "QCCL_BITS=3 (default)". Logged at INFO by rank 0.
std::string describe_config(const Config& config);

// The parameter table, for documentation and tests.
struct ParamInfo {
  const char* name;
  const char* default_value;
  const char* allowed;
  const char* description;
};
const std::vector<ParamInfo>& config_params();

}  // namespace qccl
