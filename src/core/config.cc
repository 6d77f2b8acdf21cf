#include "core/config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <system_error>

namespace qccl {
namespace {

// Parses `text` into the config; on failure returns false (the caller builds
// the message from the parameter's `allowed` text).
using Parser = bool (*)(const std::string& text, Config* c);

// After a successful parse: "" if the value is usable, else why not (the
// error message quotes it after the usual "must be ..., got ...").
using Check = std::string (*)(const Config& c);

struct Param {
  ParamInfo info;
  const char* qcclConfig_t::*field;
  Parser parse;
  std::function<std::string(const Config&)> show;
  Check check = nullptr;
};

// Every number is read in exactly its documented form: no leading or
// trailing whitespace, no sign, no base prefix, nothing after it. The C
// library's strtoull would read " -1" as 2^64-1 and strtod takes "inf",
// "0x1p3" and locale-dependent forms, so the characters are checked here
// first and std::from_chars (locale-independent) converts them.
bool is_digits(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(),
                                      [](unsigned char ch) { return ch >= '0' && ch <= '9'; });
}

// Decimal digits only, value in [min, max]; overflow is an error.
bool parse_u64(const std::string& text, uint64_t min, uint64_t max, uint64_t* out) {
  if (!is_digits(text)) return false;
  uint64_t v = 0;
  const char* end = text.data() + text.size();
  const std::from_chars_result r = std::from_chars(text.data(), end, v, 10);
  if (r.ec != std::errc() || r.ptr != end || v < min || v > max) return false;
  *out = v;
  return true;
}

// Byte sizes: decimal digits with an optional binary suffix: 64K, 64M, 1G.
bool parse_bytes(const std::string& text, uint64_t max, uint64_t* out) {
  if (text.empty()) return false;
  uint64_t mult = 1;
  std::string digits = text;
  switch (text.back()) {
    case 'K':
    case 'k': mult = 1ull << 10; break;
    case 'M':
    case 'm': mult = 1ull << 20; break;
    case 'G':
    case 'g': mult = 1ull << 30; break;
    default: break;
  }
  if (mult != 1) digits.pop_back();
  uint64_t v = 0;
  if (!parse_u64(digits, 0, max / mult, &v)) return false;
  *out = v * mult;
  return true;
}

// A plain decimal number: digits with an optional fraction ("2", "2.5",
// ".5", "2.") and an optional exponent ("1e-05", what Python's str() gives
// for small floats). No sign, whitespace, hex, inf or nan.
bool is_decimal_number(const std::string& text) {
  size_t i = 0, mantissa_digits = 0;
  const size_t n = text.size();
  auto digit = [&](size_t k) { return k < n && text[k] >= '0' && text[k] <= '9'; };
  while (digit(i)) ++i, ++mantissa_digits;
  if (i < n && text[i] == '.') {
    ++i;
    while (digit(i)) ++i, ++mantissa_digits;
  }
  if (mantissa_digits == 0) return false;
  if (i < n && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < n && (text[i] == '+' || text[i] == '-')) ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
  }
  return i == n;
}

bool parse_positive_double(const std::string& text, double max, double* out) {
  if (!is_decimal_number(text)) return false;
  double v = 0;
  const char* end = text.data() + text.size();
  const std::from_chars_result r = std::from_chars(text.data(), end, v);
  if (r.ec != std::errc() || r.ptr != end || !std::isfinite(v) || v <= 0 || v > max) return false;
  *out = v;
  return true;
}

bool parse_bool(const std::string& text, bool* out) {
  if (text == "0" || text == "false" || text == "off") return *out = false, true;
  if (text == "1" || text == "true" || text == "on") return *out = true, true;
  return false;
}

// QCCL_TIMELINE is created (or truncated) when the engine starts. It is
// checked here, without creating anything, so that a path the engine could
// not write fails the communicator's creation on every rank (the
// configuration agreement) instead of one rank's qcclEngineStart. "" when
// the path looks writable (or is empty: no timeline), else why not.
std::string timeline_path_problem(const std::string& path) {
  if (path.empty()) return std::string();
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return "it is a directory";
    if (::access(path.c_str(), W_OK) != 0)
      return fmt::format("the file is not writable: {}", std::strerror(errno));
    return std::string();
  }
  if (errno != ENOENT) return fmt::format("cannot use the path: {}", std::strerror(errno));
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? std::string(".")
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  if (::stat(dir.c_str(), &st) != 0)
    return fmt::format("its directory '{}' cannot be used: {}", dir, std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) return fmt::format("'{}' is not a directory", dir);
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    return fmt::format("cannot create a file in '{}': {}", dir, std::strerror(errno));
  return std::string();
}

std::string join_steps(const std::vector<uint64_t>& steps) {
  std::string s;
  for (size_t i = 0; i < steps.size(); ++i) s += (i ? "," : "") + std::to_string(steps[i]);
  return s.empty() ? "none" : s;
}

const std::vector<Param>& params() {
  static const std::vector<Param> kParams = {
      {{"QCCL_METHOD", "alq",
        "one of none, fp16, bf16, qsgd, qsgdinf, nuqsgd, trn, alq, alqn, amq, amqn, dqsgd",
        "compression method"},
       &qcclConfig_t::method,
       [](const std::string& t, Config* c) { return parse_method(t, &c->method); },
       [](const Config& c) { return std::string(method_name(c.method)); }},
      {{"QCCL_BITS", "3", "an integer 1..8", "bits per coordinate (2^bits signed levels)"},
       &qcclConfig_t::bits,
       [](const std::string& t, Config* c) {
         uint64_t v;
         return parse_u64(t, 1, 8, &v) && (c->bits = static_cast<int>(v), true);
       },
       [](const Config& c) { return std::to_string(c.bits); }},
      {{"QCCL_BUCKET_SIZE", "8192", "an integer 32..16777216 (a multiple of 32)",
        "coordinates per normalisation bucket"},
       &qcclConfig_t::bucketSize,
       [](const std::string& t, Config* c) {
         uint64_t v;
         return parse_u64(t, 32, 1u << 24, &v) && v % 32 == 0 &&
                (c->bucket_size = static_cast<uint32_t>(v), true);
       },
       [](const Config& c) { return std::to_string(c.bucket_size); }},
      {{"QCCL_NORM", "auto", "one of auto, l2, linf", "bucket norm (auto: the method's own)"},
       &qcclConfig_t::norm,
       [](const std::string& t, Config* c) {
         if (t == "auto") return c->norm_auto = true, true;
         if (t == "l2") return c->norm_auto = false, c->norm = NormKind::kL2, true;
         if (t == "linf") return c->norm_auto = false, c->norm = NormKind::kLinf, true;
         return false;
       },
       [](const Config& c) { return c.norm_auto ? std::string("auto") : norm_name(c.norm); }},
      {{"QCCL_ALGO", "auto", "one of auto, allgather, sra",
        "compressed allreduce algorithm (docs/design.md §6)"},
       &qcclConfig_t::algo,
       [](const std::string& t, Config* c) {
         if (t == "auto") return c->algo = Algo::kAuto, true;
         if (t == "allgather") return c->algo = Algo::kAllgather, true;
         if (t == "sra") return c->algo = Algo::kSra, true;
         return false;
       },
       [](const Config& c) { return std::string(algo_name(c.algo)); }},
      {{"QCCL_MIN_COMPRESS_BYTES", "65536",
        "a byte count: decimal digits, optionally followed by K, M or G, at most "
        "18446744073709551615 bytes",
        "smaller buffers go uncompressed"},
       &qcclConfig_t::minCompressBytes,
       [](const std::string& t, Config* c) {
         return parse_bytes(t, ~0ull, &c->min_compress_bytes);
       },
       [](const Config& c) { return std::to_string(c.min_compress_bytes); }},
      {{"QCCL_SEED", "0", "an unsigned 64-bit integer 0..18446744073709551615",
        "base seed of the counter-based RNG"},
       &qcclConfig_t::seed,
       [](const std::string& t, Config* c) { return parse_u64(t, 0, ~0ull, &c->seed); },
       [](const Config& c) { return std::to_string(c.seed); }},
      {{"QCCL_UPDATE_STEPS", "0,100,2000",
        "a comma-separated ascending list of step numbers 0..18446744073709551615, or none",
        "steps at which adaptive level tables are re-fitted"},
       &qcclConfig_t::updateSteps,
       [](const std::string& t, Config* c) {
         std::vector<uint64_t> steps;
         if (t != "none") {
           size_t start = 0;
           while (true) {
             const size_t comma = t.find(',', start);
             uint64_t v;
             if (!parse_u64(t.substr(start, comma - start), 0, ~0ull, &v)) return false;
             if (!steps.empty() && v <= steps.back()) return false;
             steps.push_back(v);
             if (comma == std::string::npos) break;
             start = comma + 1;
           }
         }
         c->update_steps = steps;
         return true;
       },
       [](const Config& c) { return join_steps(c.update_steps); }},
      {{"QCCL_UPDATE_EVERY", "10000",
        "an integer 0..18446744073709551615 (0: never after QCCL_UPDATE_STEPS)",
        "re-fit period after the last listed step"},
       &qcclConfig_t::updateEvery,
       [](const std::string& t, Config* c) { return parse_u64(t, 0, ~0ull, &c->update_every); },
       [](const Config& c) { return std::to_string(c.update_every); }},
      {{"QCCL_MODEL", "auto", "one of auto, truncnorm, mixture, histogram",
        "model of the coordinate distribution for alq/amq (auto: per method)"},
       &qcclConfig_t::model,
       [](const std::string& t, Config* c) {
         for (ModelKind m : {ModelKind::kAuto, ModelKind::kTruncNorm, ModelKind::kMixture,
                             ModelKind::kHistogram}) {
           if (t == model_name(m)) return c->model = m, true;
         }
         return false;
       },
       [](const Config& c) { return std::string(model_name(c.model)); }},
      {{"QCCL_ERROR_FEEDBACK", "0", "0 or 1", "keep the quantisation residual per tensor"},
       &qcclConfig_t::errorFeedback,
       [](const std::string& t, Config* c) { return parse_bool(t, &c->error_feedback); },
       [](const Config& c) { return std::string(c.error_feedback ? "1" : "0"); }},
      {{"QCCL_FUSION_THRESHOLD", "64M",
        "a byte count 1..18446744073709551615: decimal digits, optionally followed by K, M or G",
        "engine fusion buffer size"},
       &qcclConfig_t::fusionThreshold,
       [](const std::string& t, Config* c) {
         return parse_bytes(t, ~0ull, &c->fusion_threshold) && c->fusion_threshold > 0;
       },
       [](const Config& c) { return std::to_string(c.fusion_threshold); }},
      {{"QCCL_CYCLE_TIME_MS", "1", "a decimal number > 0 and <= 10000", "engine cycle time"},
       &qcclConfig_t::cycleTimeMs,
       [](const std::string& t, Config* c) {
         return parse_positive_double(t, 1e4, &c->cycle_time_ms);
       },
       [](const Config& c) { return fmt::format("{}", c.cycle_time_ms); }},
      {{"QCCL_TIMELINE", "", "a writable file path", "chrome-tracing timeline output"},
       &qcclConfig_t::timeline,
       [](const std::string& t, Config* c) { return c->timeline = t, true; },
       [](const Config& c) { return c.timeline.empty() ? std::string("(unset)") : c.timeline; },
       [](const Config& c) { return timeline_path_problem(c.timeline); }},
      {{"QCCL_DEBUG", "WARN", "one of TRACE, DEBUG, INFO, WARN, ERROR, OFF", "log level"},
       &qcclConfig_t::debug,
       [](const std::string& t, Config* c) { return log::parse_level(t, &c->debug); },
       [](const Config& c) { return std::string(log::level_name(c.debug)); }},
      {{"QCCL_TIMEOUT_S", "300", "a decimal number of seconds > 0 and <= 86400",
        "a collective that cannot finish in this time errors out"},
       &qcclConfig_t::timeoutS,
       [](const std::string& t, Config* c) {
         return parse_positive_double(t, 86400, &c->timeout_s);
       },
       [](const Config& c) { return fmt::format("{}", c.timeout_s); }},
      {{"QCCL_ON_TIMEOUT", "error", "error or abort",
        "what a timeout does: return qcclTimeout, or print the stall report and MPI_Abort"},
       &qcclConfig_t::onTimeout,
       [](const std::string& t, Config* c) {
         if (t != "error" && t != "abort") return false;
         c->abort_on_timeout = t == "abort";
         return true;
       },
       [](const Config& c) { return std::string(c.abort_on_timeout ? "abort" : "error"); }},
      {{"QCCL_COMPRESS_ONE_RANK", "0", "0 or 1",
        "testing aid: compress on a one-rank communicator too"},
       &qcclConfig_t::compressOneRank,
       [](const std::string& t, Config* c) { return parse_bool(t, &c->compress_one_rank); },
       [](const Config& c) { return std::string(c.compress_one_rank ? "1" : "0"); }},
  };
  return kParams;
}

const char* real_getenv(const char* name) {
  return std::getenv(name);
}

}  // namespace

const char* model_name(ModelKind m) {
  switch (m) {
    case ModelKind::kAuto: return "auto";
    case ModelKind::kTruncNorm: return "truncnorm";
    case ModelKind::kMixture: return "mixture";
    case ModelKind::kHistogram: return "histogram";
  }
  return "unknown";
}

Result resolve_config(const qcclConfig_t* overrides, Config* out) {
  return resolve_config(overrides, &real_getenv, out);
}

Result resolve_config(const qcclConfig_t* overrides, EnvLookup env, Config* out) {
  if (out == nullptr) return fail(qcclInvalidArgument, "resolve_config: output is null");
  if (overrides != nullptr && overrides->size != sizeof(qcclConfig_t)) {
    return fail(qcclInvalidArgument,
                "qcclConfig_t.size is {}, expected {}: initialise it with QCCL_CONFIG_INITIALIZER",
                overrides->size, sizeof(qcclConfig_t));
  }
  Config c;
  for (const Param& p : params()) {
    const char* value = nullptr;
    const char* source = "environment variable";
    if (overrides != nullptr && overrides->*p.field != nullptr) {
      value = overrides->*p.field;
      source = "config override";
    } else if (env != nullptr) {
      value = env(p.info.name);
    }
    if (value == nullptr) continue;
    if (!p.parse(value, &c)) {
      return fail(qcclInvalidArgument, "{} must be {}, got '{}' ({})", p.info.name, p.info.allowed,
                  value, source);
    }
    const std::string problem = p.check != nullptr ? p.check(c) : std::string();
    if (!problem.empty()) {
      return fail(qcclInvalidArgument, "{} must be {}, got '{}' ({}): {}", p.info.name,
                  p.info.allowed, value, source, problem);
    }
  }
  // Cross-parameter rules.
  if (c.method == Method::kTrn && c.bits < 2) {
    return fail(qcclInvalidArgument,
                "QCCL_METHOD=trn needs QCCL_BITS >= 2 (three levels -1, 0, +1), got {}", c.bits);
  }
  if (c.model != ModelKind::kAuto && !is_adaptive(c.method)) {
    return fail(qcclInvalidArgument, "QCCL_MODEL={} applies only to alq, alqn, amq, amqn, not {}",
                model_name(c.model), method_name(c.method));
  }
  *out = c;
  return qcclSuccess;
}

std::string describe_config(const Config& config) {
  std::string s;
  for (const Param& p : params()) s += fmt::format("  {}={}\n", p.info.name, p.show(config));
  return s;
}

const std::vector<ParamInfo>& config_params() {
  static const std::vector<ParamInfo> kInfos = [] {
    std::vector<ParamInfo> v;
    for (const Param& p : params()) v.push_back(p.info);
    return v;
  }();
  return kInfos;
}

}  // namespace qccl
