// The codec face the collective layer uses (docs/architecture.md "One
// collective path"): encode, decode-sum, the float32 helpers around them,
// and the memory they work on. HostCodec (host_codec.h) implements it on
// host memory; CudaCodec (cuda_codec.h) on device memory; tests install a
// host-memory stand-in for a device (test/unit/fake_device.h). The
// collective algorithms are written once against this interface, so host
// and device buffers run the same orchestration.
//
// Ordering. A host codec completes every call before it returns. A device
// codec enqueues work on the stream last given to set_stream() and returns
// before it runs (stream-ordered, like NCCL); synchronize() waits for it.
// Calls marked "synchronous" wait themselves.
#pragma once

#include <cstdint>

#include "codec/cpu_codec.h"
#include "codec/payload_format.h"
#include "core/method.h"
#include "core/result.h"

namespace qccl {

class Codec {
 public:
  virtual ~Codec() = default;

  // "host", "cuda", or a test backend's name; for messages.
  virtual const char* name() const = 0;
  // Whether this codec's memory is device memory (transports that move only
  // host memory need it staged, collective/staging_transport.h).
  virtual bool on_device() const = 0;
  // Whether `p` lies in memory this codec works on directly.
  virtual bool owns(const void* p) const = 0;
  // The stream later calls are ordered on (device codecs; null = default).
  virtual void set_stream(void* stream) { (void)stream; }

  // ---- codec ----------------------------------------------------------------
  // encode() of cpu_codec.h: same payload bytes on every implementation.
  // `stats`, when not null, is host data: filling it is synchronous.
  virtual Result encode(const void* in, DataType dtype, uint64_t count, const EncodeSpec& spec,
                        void* out, uint64_t capacity, EncodeStats* stats) = 0;
  // out = the rank-order float32 sum of n payloads laid out as `expected`
  // (the header make_payload_header gives for the caller's own spec and
  // count), payload p at payloads + p * stride (4-byte aligned); with
  // `accumulate`, out += that sum. A payload that does not match `expected`
  // is an error naming it (*failed = p) where the codec checks on the host;
  // a device codec checks on the device, sets out to NaN and reports
  // qcclCorruptPayload from take_deferred_error() (*failed = -1).
  virtual Result decode_sum(const void* payloads, uint64_t stride, int n,
                            const PayloadHeader& expected, float* out, bool accumulate,
                            int* failed) = 0;
  // x[i] *= factor (one float32 multiply, round to nearest).
  virtual Result scale(float* x, uint64_t count, float factor) = 0;
  // Round-to-nearest-even conversions (half_cast.h); in place when the
  // element sizes match.
  virtual Result cast_from_float(const float* in, uint64_t count, DataType dtype, void* out) = 0;
  virtual Result cast_to_float(const void* in, uint64_t count, DataType dtype, float* out) = 0;
  // *out (host) = sum of x[i]^2 in double. Synchronous.
  virtual Result sum_of_squares(const void* in, DataType dtype, uint64_t count, double* out) = 0;
  // A failure detected after its call returned (a device-side payload
  // check); reported once. Host codecs have none.
  virtual Result take_deferred_error() { return qcclSuccess; }

  // ---- memory ---------------------------------------------------------------
  virtual Result allocate(uint64_t bytes, void** out) = 0;
  // Frees an allocate()d block; the caller has synchronised first.
  virtual void release(void* p) = 0;
  // Stream-ordered copies between this codec's memory and host memory.
  virtual Result copy_to_host(void* host, const void* src, uint64_t bytes) = 0;
  virtual Result copy_from_host(void* dst, const void* host, uint64_t bytes) = 0;
  // Stream-ordered copy within this codec's memory (regions may overlap).
  virtual Result copy(void* dst, const void* src, uint64_t bytes) = 0;
  // Waits for everything enqueued so far.
  virtual Result synchronize() = 0;
};

}  // namespace qccl
