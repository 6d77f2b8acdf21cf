// The CPU reference codec: encode a buffer into one payload, decode or
// decode-accumulate payloads. The CUDA codec (kernels/) produces the same
// bytes for the same input, table and draw key.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "codec/payload_format.h"
#include "core/method.h"
#include "core/result.h"

namespace qccl {

// Everything that determines a payload besides the input values.
struct EncodeSpec {
  Method method = Method::kQsgd;
  int bits = 3;
  uint32_t bucket_size = 8192;
  NormKind norm = NormKind::kL2;
  const float* levels = nullptr;  // quantising methods: the table (validated)
  int num_levels = 0;
  uint32_t table_version = 0;
  uint64_t seed = 0;
  uint32_t rank = 0;    // < 2^24
  uint32_t stream = 0;  // < 256
  uint32_t step = 0;
  uint64_t index_base = 0;  // global index of element 0 of this buffer
};

// Histogram of |r| used by the non-parametric model (docs/algorithms.md §3):
// bin = floor(sqrt(|r|) * kHistBins), so bins are finer near 0 where
// normalised gradients live; each coordinate adds n_b^2.
constexpr int kHistBins = 128;

// Per-bucket sufficient statistics (docs/algorithms.md §3), produced by encode.
struct BucketStats {
  float norm = 0;
  float sum_r = 0;
  float sum_r2 = 0;
  uint32_t count = 0;
};

struct EncodeStats {
  std::vector<BucketStats> buckets;
  double hist[kHistBins] = {};  // weighted by norm^2, summed over buckets
  // fp16 cast: finite inputs that rounded to ±Inf (|x| >= 65520,
  // docs/algorithms.md §6). Counted by the host codec only.
  uint64_t cast_overflows = 0;
};

// Bytes of the payload for `count` elements; false when that does not fit
// in 64 bits.
bool checked_payload_bytes(const EncodeSpec& spec, uint64_t count, uint64_t* out);
// The same, UINT64_MAX when it overflows (no buffer has that capacity).
uint64_t payload_bytes(const EncodeSpec& spec, uint64_t count);

// Encodes `count` elements of `dtype` at `in` into `out` (capacity bytes).
// `stats`, if not null, receives the sufficient statistics (appended).
Result encode(const void* in, DataType dtype, uint64_t count, const EncodeSpec& spec, void* out,
              uint64_t capacity, EncodeStats* stats);

// A payload that passed validation.
struct PayloadView {
  PayloadHeader header;
  const float* table = nullptr;
  const float* norms = nullptr;
  const uint32_t* symbols = nullptr;
  const unsigned char* body = nullptr;  // casts
};

// The header's own consistency, without reading the payload: known format
// and method, parameters in range, and a layout of exactly `bytes` (filled
// in `layout` for quantising methods). Failures return `code` with messages
// that start with `what`: qcclCorruptPayload for a received payload
// (validate_payload), qcclInvalidArgument for a caller's expected header
// (CudaCodec::decode_accumulate_uniform_device).
Result check_payload_header(const PayloadHeader& header, uint64_t bytes, Result code,
                            const char* what, QuantLayout* layout);

// Checks magic, version, sizes, checksum and table. `expected_count` is the
// element count the caller expects (UINT64_MAX: any). Never reads outside
// [payload, payload + bytes).
Result validate_payload(const void* payload, uint64_t bytes, uint64_t expected_count,
                        PayloadView* view);

// out[i] = decoded value (float32).
Result decode(const void* payload, uint64_t bytes, uint64_t expected_count, float* out);
// acc[i] += decoded value.
Result decode_accumulate(const void* payload, uint64_t bytes, uint64_t expected_count, float* acc);

// The header (checksum included) of the payload `spec` gives for `count`
// elements, after the same checks encode() makes. The CUDA codec writes the
// identical header from it.
Result make_payload_header(const EncodeSpec& spec, uint64_t count, PayloadHeader* out);

// out = sum over r = 0..n-1 of decode(payloads[r]), added in rank order
// (bit-identical to decode then decode_accumulate one payload after the
// other), bucket by bucket so `out` stays in cache. On failure *failed is
// the index of the offending payload.
Result decode_sum(const void* const* payloads, const uint64_t* bytes, int n,
                  uint64_t expected_count, float* out, int* failed);

// Stamp the checksum into a header whose table follows it (used by encode
// and by tests that craft payloads).
uint32_t payload_checksum(const PayloadHeader& header, const float* table);

// Converts float32 to the output dtype (round to nearest even).
void cast_from_float(const float* in, uint64_t count, DataType dtype, void* out);
void cast_to_float(const void* in, uint64_t count, DataType dtype, float* out);

}  // namespace qccl
