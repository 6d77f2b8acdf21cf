// Method, norm, algorithm and dtype vocabulary shared by every layer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "qccl/qccl.h"

namespace qccl {

enum class Method : uint8_t {
  kNone = qcclMethodNone,
  kFp16 = qcclMethodFp16,
  kBf16 = qcclMethodBf16,
  kQsgd = qcclMethodQsgd,
  kQsgdInf = qcclMethodQsgdInf,
  kNuqsgd = qcclMethodNuqsgd,
  kTrn = qcclMethodTrn,
  kAlq = qcclMethodAlq,
  kAlqN = qcclMethodAlqN,
  kAmq = qcclMethodAmq,
  kAmqN = qcclMethodAmqN,
  kDqsgd = qcclMethodDqsgd,
};
constexpr int kNumMethods = qcclNumMethods;

enum class NormKind : uint8_t { kL2 = 0, kLinf = 1 };
enum class Algo : uint8_t { kAuto = 0, kAllgather = 1, kSra = 2 };
enum class DataType : uint8_t {
  kFloat32 = qcclFloat32,
  kFloat16 = qcclFloat16,
  kBfloat16 = qcclBfloat16
};

const char* method_name(Method m);
bool parse_method(const std::string& text, Method* out);
const char* norm_name(NormKind n);
const char* algo_name(Algo a);
const char* dtype_name(DataType t);
bool valid_dtype(int t);

// The integer a caller passed for a C enum parameter, read without an
// enum-typed load: a C caller may pass any int (qcclDataType_t 7), and
// loading that as the enum is undefined behaviour in C++ (UBSan: -fsanitize=enum).
template <typename Enum>
int raw_enum(const Enum* value) {
  static_assert(sizeof(Enum) == sizeof(int), "C enums are int-sized");
  int raw;
  __builtin_memcpy(&raw, value, sizeof raw);
  return raw;
}

inline size_t dtype_size(DataType t) {
  return t == DataType::kFloat32 ? 4 : 2;
}

// Methods that send symbols over a level table (as opposed to casts / none).
inline bool is_quantizing(Method m) {
  return m != Method::kNone && m != Method::kFp16 && m != Method::kBf16;
}
// Methods whose table is fitted by adapt/ (docs/algorithms.md §3–4).
inline bool is_adaptive(Method m) {
  return m == Method::kAlq || m == Method::kAlqN || m == Method::kAmq || m == Method::kAmqN;
}
// The norm a method uses when QCCL_NORM is "auto": docs/algorithms.md §2 for the
// fixed tables; Linf for the adaptive ones, chosen by measurement
// (docs/adaptive-levels.md, "Norm"): with L2 and 8192-coordinate buckets
// |r| << 1, so the pinned ±1 levels are wasted, and Linf gave 1.3–5.8x lower
// variance on Gaussian, Student-t(3) and sparse data at 2, 3 and 4 bits.
inline NormKind default_norm(Method m) {
  return (m == Method::kQsgdInf || m == Method::kTrn || is_adaptive(m)) ? NormKind::kLinf
                                                                        : NormKind::kL2;
}

}  // namespace qccl
