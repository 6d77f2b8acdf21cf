#include "codec/host_codec.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "codec/quantize_math.h"

namespace qccl {

HostCodec& host_codec() {
  static HostCodec codec;
  return codec;
}

Result HostCodec::encode(const void* in, DataType dtype, uint64_t count, const EncodeSpec& spec,
                         void* out, uint64_t capacity, EncodeStats* stats) {
  return qccl::encode(in, dtype, count, spec, out, capacity, stats);
}

Result HostCodec::decode_sum(const void* payloads, uint64_t stride, int n,
                             const PayloadHeader& expected, float* out, bool accumulate,
                             int* failed) {
  *failed = -1;
  if (n <= 0) return qcclSuccess;
  const auto* base = static_cast<const unsigned char*>(payloads);
  const uint64_t bytes = expected.total_bytes;
  if (!accumulate) {
    thread_local std::vector<const void*> list;
    thread_local std::vector<uint64_t> sizes;
    list.resize(n);
    sizes.assign(n, bytes);
    for (int p = 0; p < n; ++p) list[p] = base + p * stride;
    return qccl::decode_sum(list.data(), sizes.data(), n, expected.count, out, failed);
  }
  for (int p = 0; p < n; ++p) {
    const Result r = decode_accumulate(base + p * stride, bytes, expected.count, out);
    if (r != qcclSuccess) return *failed = p, r;
  }
  return qcclSuccess;
}

Result HostCodec::scale(float* x, uint64_t count, float factor) {
  // canonical_nan: a NaN gets the bit pattern the device's multiply gives.
  for (uint64_t i = 0; i < count; ++i) x[i] = canonical_nan(x[i] * factor);
  return qcclSuccess;
}

Result HostCodec::cast_from_float(const float* in, uint64_t count, DataType dtype, void* out) {
  if (static_cast<const void*>(in) != out) qccl::cast_from_float(in, count, dtype, out);
  return qcclSuccess;
}

Result HostCodec::cast_to_float(const void* in, uint64_t count, DataType dtype, float* out) {
  if (in != static_cast<const void*>(out)) qccl::cast_to_float(in, count, dtype, out);
  return qcclSuccess;
}

Result HostCodec::sum_of_squares(const void* in, DataType dtype, uint64_t count, double* out) {
  double squares = 0;
  if (dtype == DataType::kFloat32) {
    const float* v = static_cast<const float*>(in);
    for (uint64_t i = 0; i < count; ++i) squares += static_cast<double>(v[i]) * v[i];
  } else {
    // Widen in blocks: no buffer the size of the input.
    constexpr uint64_t kBlock = 4096;
    float widened[kBlock];
    const auto* bytes = static_cast<const unsigned char*>(in);
    for (uint64_t begin = 0; begin < count; begin += kBlock) {
      const uint64_t n = std::min(kBlock, count - begin);
      qccl::cast_to_float(bytes + begin * dtype_size(dtype), n, dtype, widened);
      for (uint64_t i = 0; i < n; ++i) squares += static_cast<double>(widened[i]) * widened[i];
    }
  }
  *out = squares;
  return qcclSuccess;
}

Result HostCodec::allocate(uint64_t bytes, void** out) {
  // 64-byte alignment: payload slots and SIMD loads.
  const uint64_t rounded = (std::max<uint64_t>(bytes, 1) + 63) / 64 * 64;
  if (rounded < bytes) return fail(qcclInvalidArgument, "allocation of {} bytes overflows", bytes);
  *out = std::aligned_alloc(64, rounded);
  if (*out == nullptr)
    return fail(qcclSystemError, "cannot allocate {} bytes of host workspace", bytes);
  return qcclSuccess;
}

void HostCodec::release(void* p) {
  std::free(p);
}

Result HostCodec::copy_to_host(void* host, const void* src, uint64_t bytes) {
  if (bytes > 0 && host != src) std::memmove(host, src, bytes);
  return qcclSuccess;
}

Result HostCodec::copy_from_host(void* dst, const void* host, uint64_t bytes) {
  if (bytes > 0 && dst != host) std::memmove(dst, host, bytes);
  return qcclSuccess;
}

}  // namespace qccl
