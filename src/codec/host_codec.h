// The Codec face (codec.h) on host memory: the CPU reference codec
// (cpu_codec.h). Every call completes before it returns.
#pragma once

#include "codec/codec.h"

namespace qccl {

class HostCodec final : public Codec {
 public:
  const char* name() const override { return "host"; }
  bool on_device() const override { return false; }
  bool owns(const void*) const override { return true; }

  Result encode(const void* in, DataType dtype, uint64_t count, const EncodeSpec& spec, void* out,
                uint64_t capacity, EncodeStats* stats) override;
  Result decode_sum(const void* payloads, uint64_t stride, int n, const PayloadHeader& expected,
                    float* out, bool accumulate, int* failed) override;
  Result scale(float* x, uint64_t count, float factor) override;
  Result cast_from_float(const float* in, uint64_t count, DataType dtype, void* out) override;
  Result cast_to_float(const void* in, uint64_t count, DataType dtype, float* out) override;
  Result sum_of_squares(const void* in, DataType dtype, uint64_t count, double* out) override;

  Result allocate(uint64_t bytes, void** out) override;
  void release(void* p) override;
  Result copy_to_host(void* host, const void* src, uint64_t bytes) override;
  Result copy_from_host(void* dst, const void* host, uint64_t bytes) override;
  Result copy(void* dst, const void* src, uint64_t bytes) override {
    return copy_from_host(dst, src, bytes);
  }
  Result synchronize() override { return qcclSuccess; }
};

// The one process-wide host codec (it has no state).
HostCodec& host_codec();

}  // namespace qccl
