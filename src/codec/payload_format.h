// The compressed payload (docs/design.md §4, spec in docs/payload-format.md).
// Offsets are computed here, once, for the CPU codec and the CUDA kernels.
//
//   PayloadHeader (64 bytes, little-endian)
//   level table   table_size x float32           (quantising methods)
//   norms         num_buckets x float32          (quantising methods)
//   symbols       per bucket ceil(len/32)*bits uint32 words, bit-plane groups
// or, for the casts, count x uint16 (fp16/bf16) / float32 (none), padded to 4.
#pragma once

#include <cstddef>
#include <cstdint>

#include "codec/host_device.h"
#include "core/checked_math.h"

namespace qccl {

constexpr uint32_t kPayloadMagic = 0x4C434351u;  // "QCCL" little-endian
constexpr uint16_t kPayloadVersion = 1;

struct PayloadHeader {
  uint32_t magic;
  uint16_t version;
  uint8_t method;  // qccl::Method
  uint8_t bits;    // 1..8 (16 for the half casts, 32 for none)
  uint8_t norm;    // qccl::NormKind
  uint8_t flags;   // reserved, 0
  uint16_t table_size;
  uint32_t bucket_size;
  uint32_t table_version;
  uint32_t rank_stream;  // rank | stream << 24 of the draws
  uint32_t step;
  uint32_t checksum;  // FNV-1a of header (checksum field = 0) and table
  uint64_t count;
  uint64_t seed;
  uint64_t index_base;   // global index of element 0 (for the draws)
  uint64_t total_bytes;  // the whole payload
};
static_assert(sizeof(PayloadHeader) == 64, "payload header must be 64 bytes");

// Never overflows (a + b - 1 would, for a near 2^64).
QCCL_HD uint64_t div_ceil(uint64_t a, uint64_t b) {
  return a / b + (a % b != 0 ? 1 : 0);
}

QCCL_HD uint64_t num_buckets(uint64_t count, uint32_t bucket_size) {
  return div_ceil(count, bucket_size);
}

// Words of packed symbols for a bucket of `len` coordinates (bits <= 8:
// at most len/4 + 8, no overflow).
QCCL_HD uint64_t bucket_words(uint64_t len, int bits) {
  return div_ceil(len, 32) * bits;
}

// Byte layout of a quantised payload; all offsets from the payload start.
struct QuantLayout {
  uint64_t table_offset;
  uint64_t norms_offset;
  uint64_t symbols_offset;
  uint64_t total_bytes;
};

// The layout, or false when one of its byte counts does not fit in 64 bits
// (docs/payload-format.md; a count that large is rejected, never wrapped).
QCCL_HD bool checked_quant_layout(uint64_t count, uint32_t bucket_size, int bits, int table_size,
                                  QuantLayout* out) {
  QuantLayout l;
  l.table_offset = sizeof(PayloadHeader);
  l.norms_offset = l.table_offset + 4ull * static_cast<uint32_t>(table_size);
  const uint64_t nb = num_buckets(count, bucket_size);
  uint64_t norm_bytes = 0;
  if (!checked_mul(nb, 4, &norm_bytes) ||
      !checked_add(l.norms_offset, norm_bytes, &l.symbols_offset))
    return false;
  // Bucket size is a multiple of 32, so every full bucket has the same words.
  const uint64_t full = count / bucket_size;
  const uint64_t tail = count - full * bucket_size;
  uint64_t words = 0, word_bytes = 0;
  if (!checked_mul(full, bucket_words(bucket_size, bits), &words) ||
      !checked_add(words, bucket_words(tail, bits), &words) ||
      !checked_mul(words, 4, &word_bytes) ||
      !checked_add(l.symbols_offset, word_bytes, &l.total_bytes))
    return false;
  *out = l;
  return true;
}

// Callers that have checked the count (make_payload_header) use this; an
// overflowing layout has total_bytes == UINT64_MAX, which no buffer matches.
QCCL_HD QuantLayout quant_layout(uint64_t count, uint32_t bucket_size, int bits, int table_size) {
  QuantLayout l{};
  if (!checked_quant_layout(count, bucket_size, bits, table_size, &l)) l.total_bytes = UINT64_MAX;
  return l;
}

// Word offset of bucket b inside the symbol area.
QCCL_HD uint64_t bucket_word_offset(uint64_t b, uint32_t bucket_size, int bits) {
  return b * bucket_words(bucket_size, bits);
}

// Payload size of the casts: none (4 bytes/elem) and fp16/bf16 (2 bytes/elem),
// or false when it does not fit in 64 bits.
QCCL_HD bool checked_cast_payload_bytes(uint64_t count, int bytes_per_element, uint64_t* out) {
  uint64_t body = 0;
  if (!checked_mul(count, static_cast<uint64_t>(bytes_per_element), &body)) return false;
  const uint64_t padded = div_ceil(body, 4);  // words
  uint64_t bytes = 0;
  if (!checked_mul(padded, 4, &bytes) || !checked_add(bytes, sizeof(PayloadHeader), out))
    return false;
  return true;
}

// UINT64_MAX when it overflows (see quant_layout).
QCCL_HD uint64_t cast_payload_bytes(uint64_t count, int bytes_per_element) {
  uint64_t bytes = UINT64_MAX;
  return checked_cast_payload_bytes(count, bytes_per_element, &bytes) ? bytes : UINT64_MAX;
}

QCCL_HD uint32_t fnv1a(uint32_t hash, const unsigned char* data, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) hash = (hash ^ data[i]) * 16777619u;
  return hash;
}
constexpr uint32_t kFnvOffset = 2166136261u;

}  // namespace qccl
