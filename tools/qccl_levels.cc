// qccl_levels: the level table a method would use for some data, the model's
// predicted variance, and (for --input) the normalised variance measured by
// encoding and decoding the data with that table. See docs/adaptive-levels.md.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "adapt/levels_report.h"

namespace {

constexpr const char* kUsage =
    "usage: qccl_levels --method {alq,alqn,amq,amqn,qsgd,qsgdinf,nuqsgd,trn} --bits B\n"
    "                   --bucket N (--input FILE | --normal SIGMA)\n"
    "                   [--model truncnorm|mixture|histogram] [--weight norm|norm2]\n"
    "                   [--norm l2|linf]\n"
    "                   [--seeds S] [--json]\n"
    "  --input FILE    raw little-endian float32 values (e.g. a dumped gradient)\n"
    "  --normal SIGMA  F = normal(0, SIGMA) truncated to [-1, 1]\n";

int usage_error(const std::string& message) {
  std::fprintf(stderr, "qccl_levels: %s\n%s", message.c_str(), kUsage);
  return 2;
}

bool parse_int(const char* text, long lo, long hi, long* out) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool read_floats(const std::string& path, std::vector<float>* out, std::string* error) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return *error = "cannot open --input file " + path, false;
  const std::streamsize bytes = in.tellg();
  if (bytes <= 0 || bytes % 4 != 0) {
    return *error = fmt::format("--input file {} has {} bytes, not a positive multiple of 4", path,
                                static_cast<long long>(bytes)),
           false;
  }
  out->resize(static_cast<size_t>(bytes / 4));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(out->data()), bytes);  // host is little-endian (x86-64, arm64)
  return static_cast<bool>(in) || (*error = "cannot read " + path, false);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace qccl;
  LevelsRequest request;
  std::string method_text, input, model_text, weight_text;
  double sigma = -1;
  bool have_bits = false, have_bucket = false, have_normal = false, json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--json") {
      json = true;
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (!has_value) {
      return usage_error("missing value after " + arg);
    } else if (arg == "--method") {
      method_text = argv[++i];
    } else if (arg == "--bits") {
      long v;
      if (!parse_int(argv[++i], 1, 8, &v))
        return usage_error(fmt::format("--bits must be 1..8, got {}", argv[i]));
      request.bits = static_cast<int>(v), have_bits = true;
    } else if (arg == "--bucket") {
      long v;
      if (!parse_int(argv[++i], 32, 1 << 30, &v) || v % 32 != 0) {
        return usage_error(
            fmt::format("--bucket must be a multiple of 32 in 32..2^30, got {}", argv[i]));
      }
      request.bucket_size = static_cast<uint32_t>(v), have_bucket = true;
    } else if (arg == "--seeds") {
      long v;
      if (!parse_int(argv[++i], 1, 1000, &v))
        return usage_error(fmt::format("--seeds must be 1..1000, got {}", argv[i]));
      request.seeds = static_cast<int>(v);
    } else if (arg == "--input") {
      input = argv[++i];
    } else if (arg == "--normal") {
      char* end = nullptr;
      sigma = std::strtod(argv[++i], &end);
      if (end == argv[i] || *end != '\0' || !(sigma > 0)) {
        return usage_error(fmt::format("--normal needs a positive sigma, got {}", argv[i]));
      }
      have_normal = true;
    } else if (arg == "--model") {
      model_text = argv[++i];
    } else if (arg == "--weight") {
      weight_text = argv[++i];
    } else if (arg == "--norm") {
      const std::string norm = argv[++i];
      if (norm != "l2" && norm != "linf")
        return usage_error("--norm must be l2 or linf, got " + norm);
      request.norm_auto = false;
      request.norm = norm == "l2" ? NormKind::kL2 : NormKind::kLinf;
    } else {
      return usage_error("unknown argument " + arg);
    }
  }
  Method method;
  const std::vector<std::string> allowed = {"alq",  "alqn",    "amq",    "amqn",
                                            "qsgd", "qsgdinf", "nuqsgd", "trn"};
  if (method_text.empty()) return usage_error("--method is required");
  if (!parse_method(method_text, &method) ||
      std::find(allowed.begin(), allowed.end(), method_text) == allowed.end()) {
    return usage_error(
        "--method must be one of alq, alqn, amq, amqn, qsgd, qsgdinf, nuqsgd, trn; got " +
        method_text);
  }
  request.method = method;
  if (!have_bits) return usage_error("--bits is required");
  if (!have_bucket) return usage_error("--bucket is required");
  if (have_normal == !input.empty())
    return usage_error("give exactly one of --input FILE and --normal SIGMA");
  if (method == Method::kTrn && request.bits < 2) return usage_error("trn needs --bits >= 2");
  if (!model_text.empty()) {
    bool found = false;
    for (ModelKind m : {ModelKind::kTruncNorm, ModelKind::kMixture, ModelKind::kHistogram}) {
      if (model_text == model_name(m)) request.model = m, found = true;
    }
    if (!found)
      return usage_error("--model must be truncnorm, mixture or histogram, got " + model_text);
    if (have_normal)
      return usage_error("--model applies to --input only (--normal is the truncated normal)");
  }
  if (!weight_text.empty()) {
    if (weight_text != "norm" && weight_text != "norm2")
      return usage_error("--weight must be norm or norm2, got " + weight_text);
    request.weight = weight_text == "norm" ? MixtureWeight::kNorm : MixtureWeight::kNormSquared;
  }

  LevelsReport report;
  Result r;
  if (have_normal) {
    r = report_levels_for_normal(request, sigma, &report);
  } else {
    std::vector<float> data;
    std::string error;
    if (!read_floats(input, &data, &error)) {
      std::fprintf(stderr, "qccl_levels: %s\n", error.c_str());
      return 1;
    }
    r = report_levels_for_data(request, data, &report);
  }
  if (r != qcclSuccess) {
    std::fprintf(stderr, "qccl_levels: %s (%s)\n", thread_last_error().c_str(), result_name(r));
    return 1;
  }
  const auto& levels = report.fit.table.levels;
  if (json) {
    // Quantities that do not apply (no data, no multiplier) are null.
    const auto num = [](double v) {
      return v < 0 ? std::string("null") : fmt::format("{:.9g}", v);
    };
    fmt::print(
        "{{\"method\": \"{}\", \"bits\": {}, \"bucket\": {}, \"model\": \"{}\", "
        "\"levels\": [{:.9g}], \"predicted_v\": {:.9g}, \"multiplier\": {}, "
        "\"predicted_normalized_variance\": {}, \"exact_normalized_variance\": {}, "
        "\"measured_normalized_variance\": {}}}\n",
        method_text, request.bits, request.bucket_size, model_name(report.model),
        fmt::join(levels, ", "), report.fit.variance, num(report.fit.multiplier),
        num(report.predicted_normalized), num(report.exact_normalized),
        num(report.measured_normalized));
    return 0;
  }
  fmt::print("method {}  bits {}  bucket {}  model {}\n", method_text, request.bits,
             request.bucket_size, model_name(report.model));
  fmt::print("levels ({}): {:.6g}\n", levels.size(), fmt::join(levels, " "));
  if (report.fit.multiplier > 0) fmt::print("multiplier p: {:.6g}\n", report.fit.multiplier);
  fmt::print("predicted V per coordinate: {:.6g}\n", report.fit.variance);
  if (!have_normal) {
    fmt::print("predicted normalised variance: {:.6g}\n", report.predicted_normalized);
    fmt::print("exact normalised variance (this data, this table): {:.6g}\n",
               report.exact_normalized);
    fmt::print("measured normalised variance ({} seeds): {:.6g}\n", request.seeds,
               report.measured_normalized);
  }
  return 0;
}
