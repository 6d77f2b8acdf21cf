// The CUDA codec (cuda_codec.cu, kernels in kernels/): the same payloads as
// the CPU reference codec (cpu_codec.h) for the same input, table and draw
// key (docs/design.md §5.2), for buffers in device memory. It implements
// the Codec face (codec.h) that the collective layer runs on; the
// *_device methods below are its lower-level form, with the stream
// explicit. Host C++ interface: includable from .cc files without the CUDA
// headers. See docs/gpu.md.
//
// Stream-ordered like NCCL: work is enqueued on `stream` and the call returns
// before it runs, except where noted (statistics, host-side payload
// validation of decode_accumulate_device).
// A CudaCodec owns its device workspace (allocated once, grown, never per
// call), so one codec serves one stream at a time, like a communicator.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "codec/codec.h"
#include "codec/cpu_codec.h"
#include "core/method.h"
#include "core/result.h"

// The runtime's own spelling of a stream handle, so no CUDA header is needed.
struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace qccl {

// True when the CUDA runtime sees at least one device. Otherwise false, with
// the reason (the CUDA error text, or "0 devices") in *why when given.
bool cuda_device_available(std::string* why = nullptr);

// True when `p` is memory a CUDA device owns (cudaMemoryTypeDevice or
// managed), per cudaPointerGetAttributes. Host, pinned host and unknown
// pointers are false; the CUDA error a plain host pointer may leave is
// cleared. Here, beside the codec's device checks, so that every layer that
// routes by buffer location (transport, collective, api) can ask without
// depending on the layers above it.
bool is_device_pointer(const void* p);

class CudaCodec final : public Codec {
 public:
  CudaCodec();
  ~CudaCodec() override;
  CudaCodec(const CudaCodec&) = delete;
  CudaCodec& operator=(const CudaCodec&) = delete;

  // ---- the Codec face, on the stream given to set_stream ----------------------
  const char* name() const override { return "cuda"; }
  bool on_device() const override { return true; }
  bool owns(const void* p) const override { return is_device_pointer(p); }
  void set_stream(void* stream) override { stream_ = static_cast<cudaStream_t>(stream); }
  Result encode(const void* in, DataType dtype, uint64_t count, const EncodeSpec& spec, void* out,
                uint64_t capacity, EncodeStats* stats) override {
    return encode_device(in, dtype, count, spec, out, capacity, stream_, stats);
  }
  Result decode_sum(const void* payloads, uint64_t stride, int n, const PayloadHeader& expected,
                    float* out, bool accumulate, int* failed) override {
    *failed = -1;  // checked on the device: reported by take_deferred_error
    return decode_accumulate_uniform_device(payloads, stride, n, expected, out, stream_,
                                            accumulate);
  }
  Result scale(float* x, uint64_t count, float factor) override;
  Result cast_from_float(const float* in, uint64_t count, DataType dtype, void* out) override {
    return cast_from_float_device(in, count, dtype, out, stream_);
  }
  Result cast_to_float(const void* in, uint64_t count, DataType dtype, float* out) override {
    return cast_to_float_device(in, count, dtype, out, stream_);
  }
  Result sum_of_squares(const void* in, DataType dtype, uint64_t count, double* out) override;
  Result take_deferred_error() override;
  Result allocate(uint64_t bytes, void** out) override;
  void release(void* p) override;
  Result copy_to_host(void* host, const void* src, uint64_t bytes) override;
  Result copy_from_host(void* dst, const void* host, uint64_t bytes) override;
  Result copy(void* dst, const void* src, uint64_t bytes) override;
  Result synchronize() override;

  // ---- the lower-level form ------------------------------------------------------

  // Encodes `count` elements of `dtype` at device pointer `in` into the
  // device buffer `out_device` (capacity bytes; payload_bytes(spec, count)
  // needed). Same checks and errors as qccl::encode. The header and table
  // are built on the host (they do not depend on the data) and copied in.
  // `stats`, if not null, receives the per-bucket statistics (appended, as
  // the CPU codec does); this synchronises `stream` because the statistics
  // are host data. Without stats the call is fully asynchronous.
  Result encode_device(const void* in, DataType dtype, uint64_t count, const EncodeSpec& spec,
                       void* out_device, uint64_t capacity, cudaStream_t stream,
                       EncodeStats* stats);

  // acc_device[i] += the decoded value of payload p, for p = 0 .. n-1 in
  // that order (rank order), in one kernel launch; float32 sums rounded
  // exactly as n calls of the CPU decode_accumulate. With accumulate ==
  // false payload 0 is assigned instead of added (the CPU decode()).
  // `payloads` are device pointers (4-byte aligned), `sizes` their bytes.
  // Headers and tables are validated on the host before the launch (copied
  // back, then qccl::validate_payload): this synchronises `stream` once.
  // A symbol beyond the table (only a crafted payload with a valid checksum
  // can carry one) decodes as 0 and is reported as qcclCorruptPayload by
  // a later decode call on this codec (this one's synchronisation reads the
  // errors of the launches before it).
  Result decode_accumulate_device(const void* const* payloads, const uint64_t* sizes, int n,
                                  uint64_t count, float* acc_device, cudaStream_t stream,
                                  bool accumulate = true);

  // The same sums for n payloads that share one layout, the one `expected`
  // describes (the header encode_device writes for the caller's own spec and
  // count, make_payload_header): payload p at payloads_device + p * stride.
  // This is what every rank of an agreed collective sends (the CPU path
  // requires it too: all payloads of a call have the same size). Fully
  // asynchronous: no read-back, no synchronisation. A kernel checks each
  // payload on the device first (magic, version, method, bits, norm, table
  // size, bucket size, count, size, and the header/table checksum); if one
  // fails, acc_device[0 .. count) is set to NaN and the next decode call on
  // this codec, of either kind, returns qcclCorruptPayload. The layout comes
  // from `expected`, so a bad payload is never read out of bounds.
  Result decode_accumulate_uniform_device(const void* payloads_device, uint64_t stride, int n,
                                          const PayloadHeader& expected, float* acc_device,
                                          cudaStream_t stream, bool accumulate = true);

  // out = in converted to/from float32, round to nearest even (half_cast.h).
  // In place works when the element sizes match (float32).
  Result cast_from_float_device(const float* in, uint64_t count, DataType dtype, void* out,
                                cudaStream_t stream);
  Result cast_to_float_device(const void* in, uint64_t count, DataType dtype, float* out,
                              cudaStream_t stream);

 private:
  struct Workspace;
  std::unique_ptr<Workspace> workspace_;
  cudaStream_t stream_ = nullptr;
};

}  // namespace qccl
