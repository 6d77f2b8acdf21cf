#include "core/method.h"

namespace qccl {
namespace {
constexpr const char* kMethodNames[kNumMethods] = {"none",    "fp16",   "bf16", "qsgd",
                                                   "qsgdinf", "nuqsgd", "trn",  "alq",
                                                   "alqn",    "amq",    "amqn", "dqsgd"};
}

const char* method_name(Method m) {
  const int i = static_cast<int>(m);
  return (i >= 0 && i < kNumMethods) ? kMethodNames[i] : "unknown";
}

bool parse_method(const std::string& text, Method* out) {
  for (int i = 0; i < kNumMethods; ++i) {
    if (text == kMethodNames[i]) {
      *out = static_cast<Method>(i);
      return true;
    }
  }
  return false;
}

const char* norm_name(NormKind n) {
  return n == NormKind::kL2 ? "l2" : "linf";
}

const char* algo_name(Algo a) {
  switch (a) {
    case Algo::kAuto: return "auto";
    case Algo::kAllgather: return "allgather";
    case Algo::kSra: return "sra";
  }
  return "unknown";
}

const char* dtype_name(DataType t) {
  switch (t) {
    case DataType::kFloat32: return "float32";
    case DataType::kFloat16: return "float16";
    case DataType::kBfloat16: return "bfloat16";
  }
  return "unknown";
}

bool valid_dtype(int t) {
  return t >= 0 && t < qcclNumTypes;
}

}  // namespace qccl
