// CPU reference codec (docs/design.md §4, docs/algorithms.md §1). The per-element maths
// lives in quantize_math.h, shared with kernels/; this file only arranges
// loops (bucket by bucket, in phases that vectorise) and the payload bytes.
#include "codec/cpu_codec.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "codec/half_cast.h"
#include "codec/level_table.h"
#include "codec/quantization_variance.h"
#include "codec/quantize_math.h"

namespace qccl {
namespace {

// Scratch for one bucket, reused across calls on a thread: no per-call or
// per-element allocation on the hot path.
struct BucketScratch {
  std::vector<float> values;
  std::vector<uint32_t> draws;
  std::vector<uint32_t> symbols;
  void reserve(uint32_t bucket) {
    if (values.size() < bucket) {
      values.resize(bucket);
      draws.resize(bucket + 40);
      symbols.resize(bucket + kGroupSize);
    }
  }
};
thread_local BucketScratch t_scratch;

bool is_cast(Method m) {
  return m == Method::kNone || m == Method::kFp16 || m == Method::kBf16;
}
int cast_bytes(Method m) {
  return m == Method::kNone ? 4 : 2;
}

void load_float(const void* in, DataType dtype, uint64_t offset, uint32_t n, float* out) {
  switch (dtype) {
    case DataType::kFloat32:
      std::memcpy(out, static_cast<const float*>(in) + offset, 4ull * n);
      break;
    case DataType::kFloat16: {
      const uint16_t* p = static_cast<const uint16_t*>(in) + offset;
      for (uint32_t i = 0; i < n; ++i) out[i] = fp16_to_float(p[i]);
      break;
    }
    case DataType::kBfloat16: {
      const uint16_t* p = static_cast<const uint16_t*>(in) + offset;
      for (uint32_t i = 0; i < n; ++i) out[i] = bf16_to_float(p[i]);
      break;
    }
  }
}

}  // namespace

// The bucket norm in the canonical order of quantize_math.h. The Linf pass
// uses lanes too: max is order-independent, and lanes let it vectorise.
QCCL_SIMD_CLONES float bucket_norm_reference(const float* x, uint32_t n, NormKind kind) {
  float lanes[kNormLanes] = {};
  for (uint32_t base = 0; base < n; base += kNormLanes) {
    const uint32_t width = n - base < kNormLanes ? n - base : kNormLanes;
    for (uint32_t l = 0; l < width; ++l) lanes[l] = abs_max_propagating_nan(lanes[l], x[base + l]);
  }
  float linf = 0.0f;
  for (int l = 0; l < kNormLanes; ++l) linf = abs_max_propagating_nan(linf, lanes[l]);
  if (kind == NormKind::kLinf) return linf;
  for (int l = 0; l < kNormLanes; ++l) lanes[l] = 0.0f;
  for (uint32_t base = 0; base < n; base += kNormLanes) {
    const uint32_t width = n - base < kNormLanes ? n - base : kNormLanes;
    for (uint32_t l = 0; l < width; ++l) lanes[l] = square_accumulate(lanes[l], x[base + l]);
  }
  const float sum_squares = tree_sum_lanes(lanes);
  if (!l2_needs_rescale(sum_squares, linf)) return sqrtf(sum_squares);
  for (int l = 0; l < kNormLanes; ++l) lanes[l] = 0.0f;
  for (uint32_t base = 0; base < n; base += kNormLanes) {
    const uint32_t width = n - base < kNormLanes ? n - base : kNormLanes;
    for (uint32_t l = 0; l < width; ++l)
      lanes[l] = square_accumulate(lanes[l], rescaled(x[base + l], linf));
  }
  return l2_from_rescaled(linf, tree_sum_lanes(lanes));
}

namespace {

// draws[i] = the Philox word for global element index0 + i. Counters are
// processed in blocks of 8 in structure-of-arrays form so the unrolled
// Philox rounds vectorise (AVX2 clone chosen at run time).
QCCL_SIMD_CLONES void fill_draws(const DrawKey& key, uint64_t index0, uint32_t n, uint32_t* draws) {
  const uint64_t first_group = index0 >> 2;
  const uint32_t skip = static_cast<uint32_t>(index0 & 3);
  const uint64_t groups = (skip + n + 3) >> 2;
  constexpr int kBlock = 8;
  uint32_t* out = draws;  // capacity n + 8 + 32: the first `skip` words are discarded
  const uint32_t k0 = static_cast<uint32_t>(key.seed), k1 = static_cast<uint32_t>(key.seed >> 32);
  const uint32_t c2 = key.rank | (key.stream << 24), c3 = key.step;
  for (uint64_t g0 = 0; g0 < groups; g0 += kBlock) {
    const uint64_t g = first_group + g0;
    const uint32_t lo = static_cast<uint32_t>(g), hi = static_cast<uint32_t>(g >> 32);
    uint32_t w[4][kBlock];
    if (lo <= 0xFFFFFFFFu - kBlock) {
      // Common case: the block's counters differ only in their low word, so
      // the lanes are plain 32-bit arithmetic that vectorises.
      for (uint32_t b = 0; b < kBlock; ++b) {
        const Philox4x32 r = philox4x32_10(Philox4x32{{lo + b, hi, c2, c3}}, k0, k1);
        w[0][b] = r.v[0];
        w[1][b] = r.v[1];
        w[2][b] = r.v[2];
        w[3][b] = r.v[3];
      }
    } else {
      for (uint32_t b = 0; b < kBlock; ++b) {
        const Philox4x32 r = draws_for_group(key, g + b);
        for (int k = 0; k < 4; ++k) w[k][b] = r.v[k];
      }
    }
    for (int b = 0; b < kBlock; ++b)
      for (int k = 0; k < 4; ++k) out[4 * (g0 + b) + k] = w[k][b];
  }
  if (skip) std::memmove(draws, draws + skip, 4ull * n);
}

void histogram_add(const float* r, uint32_t n, double weight, double* hist) {
  for (uint32_t i = 0; i < n; ++i) {
    const float a = std::fabs(r[i]);
    if (!(a <= 1.0f)) continue;  // NaN
    int bin = static_cast<int>(std::sqrt(a) * kHistBins);
    hist[bin < kHistBins ? bin : kHistBins - 1] += weight;
  }
}

// Symbols for n normalised coordinates. Separate and cloned for AVX2 so the
// cell search and the rounding run eight coordinates at a time.
QCCL_SIMD_CLONES void symbols_for(const float* levels, int num_levels, const float* r,
                                  const uint32_t* draws, uint32_t n, uint32_t* sym) {
  if (num_levels > 16) {
    for (uint32_t i = 0; i < n; ++i) sym[i] = stochastic_symbol(levels, num_levels, r[i], draws[i]);
    return;
  }
  // find_cell's counting form with the loops interchanged (level outer,
  // coordinate inner) so the compiler vectorises across coordinates.
  for (uint32_t i = 0; i < n; ++i) sym[i] = 0;
  for (int m = 1; m < num_levels - 1; ++m) {
    const float level = levels[m];
    for (uint32_t i = 0; i < n; ++i) sym[i] += level <= r[i] ? 1u : 0u;
  }
  for (uint32_t i = 0; i < n; ++i)
    sym[i] = round_in_cell(levels, static_cast<int>(sym[i]), r[i], draws[i]);
}

QCCL_SIMD_CLONES void pack_groups(const uint32_t* sym, uint32_t groups, int bits, uint32_t* words) {
  for (uint32_t g = 0; g < groups; ++g)
    pack_group(sym + g * kGroupSize, bits, words + static_cast<uint64_t>(g) * bits);
}

void encode_bucket(const EncodeSpec& spec, const DrawKey& key, uint64_t index0, uint32_t n,
                   BucketScratch& s, float* norm_out, uint32_t* words, EncodeStats* stats) {
  float* x = s.values.data();
  const float norm = canonical_nan(bucket_norm_reference(x, n, spec.norm));
  *norm_out = norm;
  for (uint32_t i = 0; i < n; ++i) x[i] = normalise(x[i], norm);  // x now holds r
  if (stats != nullptr) {
    BucketStats b;
    b.norm = norm;
    b.count = n;
    float sum = 0, sum2 = 0;
    for (uint32_t i = 0; i < n; ++i) {
      sum += x[i];
      sum2 += x[i] * x[i];
    }
    b.sum_r = sum;
    b.sum_r2 = sum2;
    stats->buckets.push_back(b);
    if (std::isfinite(norm)) histogram_add(x, n, static_cast<double>(norm) * norm, stats->hist);
  }
  fill_draws(key, index0, n, s.draws.data());
  uint32_t* sym = s.symbols.data();
  symbols_for(spec.levels, spec.num_levels, x, s.draws.data(), n, sym);
  const uint32_t groups = static_cast<uint32_t>(div_ceil(n, kGroupSize));
  for (uint32_t i = n; i < groups * kGroupSize; ++i) sym[i] = 0;
  pack_groups(sym, groups, spec.bits, words);
}

Result check_spec(const EncodeSpec& spec) {
  const int m = static_cast<int>(spec.method);
  if (m < 0 || m >= kNumMethods) return fail(qcclInvalidArgument, "encode: unknown method {}", m);
  if (is_cast(spec.method)) return qcclSuccess;
  if (spec.bits < 1 || spec.bits > 8)
    return fail(qcclInvalidArgument, "encode: bits must be 1..8, got {}", spec.bits);
  if (spec.bucket_size < kGroupSize || spec.bucket_size % kGroupSize != 0)
    return fail(qcclInvalidArgument,
                "encode: bucket size must be a positive multiple of 32, got {}", spec.bucket_size);
  if (spec.rank >= (1u << 24) || spec.stream >= 256)
    return fail(qcclInvalidArgument, "encode: rank {} / stream {} out of range", spec.rank,
                spec.stream);
  return validate_levels(spec.levels, spec.num_levels, spec.bits);
}

PayloadHeader make_header(const EncodeSpec& spec, uint64_t count, uint64_t total) {
  PayloadHeader h{};
  h.magic = kPayloadMagic;
  h.version = kPayloadVersion;
  h.method = static_cast<uint8_t>(spec.method);
  h.bits = static_cast<uint8_t>(is_cast(spec.method) ? 8 * cast_bytes(spec.method) : spec.bits);
  h.norm = static_cast<uint8_t>(spec.norm);
  h.table_size = static_cast<uint16_t>(is_cast(spec.method) ? 0 : spec.num_levels);
  h.bucket_size = is_cast(spec.method) ? 0 : spec.bucket_size;
  h.table_version = spec.table_version;
  h.rank_stream = spec.rank | (spec.stream << 24);
  h.step = spec.step;
  h.count = count;
  h.seed = spec.seed;
  h.index_base = spec.index_base;
  h.total_bytes = total;
  return h;
}

}  // namespace

uint32_t payload_checksum(const PayloadHeader& header, const float* table) {
  PayloadHeader h = header;
  h.checksum = 0;
  uint32_t hash = fnv1a(kFnvOffset, reinterpret_cast<const unsigned char*>(&h), sizeof h);
  return fnv1a(hash, reinterpret_cast<const unsigned char*>(table), 4ull * header.table_size);
}

Result make_payload_header(const EncodeSpec& spec, uint64_t count, PayloadHeader* out) {
  QCCL_CHECK(check_spec(spec));
  uint64_t total = 0;
  if (!checked_payload_bytes(spec, count, &total))
    return fail(qcclInvalidArgument,
                "encode: the {} payload of {} elements would exceed 2^64 bytes (docs/api.md "
                "\"Size limits\")",
                method_name(spec.method), count);
  PayloadHeader header = make_header(spec, count, total);
  header.checksum = payload_checksum(header, is_cast(spec.method) ? nullptr : spec.levels);
  *out = header;
  return qcclSuccess;
}

bool checked_payload_bytes(const EncodeSpec& spec, uint64_t count, uint64_t* out) {
  if (is_cast(spec.method)) return checked_cast_payload_bytes(count, cast_bytes(spec.method), out);
  QuantLayout layout;
  if (!checked_quant_layout(count, spec.bucket_size, spec.bits, spec.num_levels, &layout))
    return false;
  *out = layout.total_bytes;
  return true;
}

uint64_t payload_bytes(const EncodeSpec& spec, uint64_t count) {
  uint64_t bytes = UINT64_MAX;
  return checked_payload_bytes(spec, count, &bytes) ? bytes : UINT64_MAX;
}

Result encode(const void* in, DataType dtype, uint64_t count, const EncodeSpec& spec, void* out,
              uint64_t capacity, EncodeStats* stats) {
  if (!valid_dtype(static_cast<int>(dtype)))
    return fail(qcclInvalidArgument, "encode: unknown dtype {}", static_cast<int>(dtype));
  if ((in == nullptr && count > 0) || out == nullptr)
    return fail(qcclInvalidArgument, "encode: null {} buffer", out == nullptr ? "output" : "input");
  PayloadHeader header;
  QCCL_CHECK(make_payload_header(spec, count, &header));
  const uint64_t total = header.total_bytes;
  if (capacity < total)
    return fail(qcclInvalidArgument, "encode: output capacity {} bytes < payload size {} bytes",
                capacity, total);
  unsigned char* bytes = static_cast<unsigned char*>(out);
  std::memcpy(bytes, &header, sizeof header);

  if (is_cast(spec.method)) {
    unsigned char* body = bytes + sizeof(PayloadHeader);
    if (total > sizeof(PayloadHeader)) std::memset(bytes + total - 4, 0, 4);  // define the padding
    if (count == 0) return qcclSuccess;
    BucketScratch& s = t_scratch;
    constexpr uint32_t kChunk = 8192;
    s.reserve(kChunk);
    for (uint64_t off = 0; off < count; off += kChunk) {
      const uint32_t n = static_cast<uint32_t>(count - off < kChunk ? count - off : kChunk);
      load_float(in, dtype, off, n, s.values.data());
      if (spec.method == Method::kNone) {
        std::memcpy(body + 4 * off, s.values.data(), 4ull * n);
      } else {
        uint16_t* dst = reinterpret_cast<uint16_t*>(body) + off;
        for (uint32_t i = 0; i < n; ++i)
          dst[i] = spec.method == Method::kFp16 ? float_to_fp16(s.values[i])
                                                : float_to_bf16(s.values[i]);
        if (stats != nullptr && spec.method == Method::kFp16) {
          for (uint32_t i = 0; i < n; ++i)
            stats->cast_overflows +=
                (dst[i] & 0x7FFFu) == 0x7C00u && std::isfinite(s.values[i]) ? 1 : 0;
        }
      }
    }
    return qcclSuccess;
  }

  const QuantLayout layout = quant_layout(count, spec.bucket_size, spec.bits, spec.num_levels);
  std::memcpy(bytes + layout.table_offset, spec.levels, 4ull * spec.num_levels);
  float* norms = reinterpret_cast<float*>(bytes + layout.norms_offset);
  uint32_t* symbols = reinterpret_cast<uint32_t*>(bytes + layout.symbols_offset);
  const DrawKey key{spec.seed, spec.rank, spec.stream, spec.step};
  BucketScratch& s = t_scratch;
  s.reserve(spec.bucket_size);
  const uint64_t nb = num_buckets(count, spec.bucket_size);
  for (uint64_t b = 0; b < nb; ++b) {
    const uint64_t off = b * spec.bucket_size;
    const uint32_t n =
        static_cast<uint32_t>(count - off < spec.bucket_size ? count - off : spec.bucket_size);
    load_float(in, dtype, off, n, s.values.data());
    encode_bucket(spec, key, spec.index_base + off, n, s, &norms[b],
                  symbols + bucket_word_offset(b, spec.bucket_size, spec.bits), stats);
  }
  return qcclSuccess;
}

Result check_payload_header(const PayloadHeader& h, uint64_t bytes, Result code, const char* what,
                            QuantLayout* layout) {
  if (h.magic != kPayloadMagic)
    return fail(code, "{}: bad magic 0x{:08x} (expected 0x{:08x})", what, h.magic, kPayloadMagic);
  if (h.version != kPayloadVersion)
    return fail(code, "{}: format version {} not supported (this build reads {})", what, h.version,
                kPayloadVersion);
  if (h.method >= kNumMethods) return fail(code, "{}: unknown method {}", what, h.method);
  if (h.total_bytes != bytes)
    return fail(code, "{}: header says {} bytes, received {}", what, h.total_bytes, bytes);
  const Method method = static_cast<Method>(h.method);
  if (is_cast(method)) {
    const int width = cast_bytes(method);
    if (h.bits != 8 * width || h.table_size != 0 || h.count > bytes ||
        cast_payload_bytes(h.count, width) != bytes)
      return fail(code, "{}: inconsistent {} cast payload ({} elements, {} bytes)", what,
                  method_name(method), h.count, bytes);
    return qcclSuccess;
  }
  if (h.bits < 1 || h.bits > 8 || h.table_size < 2 || h.table_size > (1u << h.bits) ||
      h.bucket_size < kGroupSize || h.bucket_size % kGroupSize != 0 || h.norm > 1)
    return fail(code, "{}: bad parameters (bits {}, table size {}, bucket size {}, norm {})", what,
                h.bits, h.table_size, h.bucket_size, h.norm);
  // Guard the layout arithmetic against absurd counts before computing it.
  if (h.count / 8 > bytes)
    return fail(code, "{}: {} elements cannot fit in {} bytes", what, h.count, bytes);
  if (!checked_quant_layout(h.count, h.bucket_size, h.bits, h.table_size, layout))
    return fail(code, "{}: the layout of {} elements overflows 64 bits", what, h.count);
  if (layout->total_bytes != bytes)
    return fail(code, "{}: layout needs {} bytes, received {}", what, layout->total_bytes, bytes);
  return qcclSuccess;
}

Result validate_payload(const void* payload, uint64_t bytes, uint64_t expected_count,
                        PayloadView* view) {
  if (payload == nullptr) return fail(qcclInvalidArgument, "payload: null pointer");
  if (bytes < sizeof(PayloadHeader))
    return fail(qcclCorruptPayload, "payload: {} bytes is shorter than the {}-byte header", bytes,
                sizeof(PayloadHeader));
  const unsigned char* p = static_cast<const unsigned char*>(payload);
  PayloadHeader h;
  std::memcpy(&h, p, sizeof h);
  QuantLayout layout{};
  QCCL_CHECK(check_payload_header(h, bytes, qcclCorruptPayload, "payload", &layout));
  if (expected_count != std::numeric_limits<uint64_t>::max() && h.count != expected_count)
    return fail(qcclCorruptPayload, "payload: carries {} elements, expected {}", h.count,
                expected_count);
  view->header = h;
  if (is_cast(static_cast<Method>(h.method))) {
    if (payload_checksum(h, nullptr) != h.checksum)
      return fail(qcclCorruptPayload, "payload: header checksum mismatch");
    view->body = p + sizeof(PayloadHeader);
    return qcclSuccess;
  }
  const float* table = reinterpret_cast<const float*>(p + layout.table_offset);
  if (payload_checksum(h, table) != h.checksum)
    return fail(qcclCorruptPayload, "payload: header/table checksum mismatch");
  if (validate_levels(table, h.table_size, h.bits) != qcclSuccess)
    return fail(qcclCorruptPayload, "payload: invalid level table ({})", thread_last_error());
  view->table = table;
  view->norms = reinterpret_cast<const float*>(p + layout.norms_offset);
  view->symbols = reinterpret_cast<const uint32_t*>(p + layout.symbols_offset);
  return qcclSuccess;
}

namespace {

// A padded copy of a payload's table: symbols past the table (crafted
// payloads only) read 0 and are reported, never out of bounds.
struct PaddedTable {
  float levels[QCCL_MAX_LEVELS];
  explicit PaddedTable(const PayloadView& v) {
    for (int i = 0; i < QCCL_MAX_LEVELS; ++i)
      levels[i] = i < v.header.table_size ? v.table[i] : 0.0f;
  }
};

// Unpacks and scales one bucket: out[i] (+)= norm * table[symbol i].
// Returns the largest symbol seen (checked against the table by the caller).
// The products norm * table[s] are formed once per bucket (at most 2^bits
// of them, the same rounded products the per-element form gives), so the
// inner loop is a table gather and an add.
template <bool kAccumulate>
QCCL_SIMD_CLONES uint32_t decode_bucket(const uint32_t* words, int bits, uint64_t n, float norm,
                                        const float* table, float* out) {
  float scaled[QCCL_MAX_LEVELS];
  for (int s = 0; s < (1 << bits); ++s) scaled[s] = norm == 0.0f ? 0.0f : mul_rn(norm, table[s]);
  uint32_t max_symbol = 0;
  uint32_t sym[kGroupSize];
  for (uint64_t g = 0; g * kGroupSize < n; ++g) {
    const uint32_t* gw = words + g * bits;
    for (int i = 0; i < kGroupSize; ++i) sym[i] = 0;
    for (int k = 0; k < bits; ++k)
      for (int i = 0; i < kGroupSize; ++i) sym[i] |= ((gw[k] >> i) & 1u) << k;
    const uint64_t width = n - g * kGroupSize < kGroupSize ? n - g * kGroupSize : kGroupSize;
    float* o = out + g * kGroupSize;
    for (uint64_t i = 0; i < width; ++i) {
      max_symbol = sym[i] > max_symbol ? sym[i] : max_symbol;
      const float x = scaled[sym[i]];
      o[i] = kAccumulate ? o[i] + x : x;
    }
  }
  // Only a non-finite norm makes NaN (NaN·level, Inf·0, Inf + -Inf): give it
  // the one bit pattern the GPU stores too (docs/payload-format.md "NaN").
  if (!(std::fabs(norm) <= 3.4028235e38f))
    for (uint64_t i = 0; i < n; ++i) out[i] = canonical_nan(out[i]);
  return max_symbol;
}

// Decodes into out (accumulate = false) or adds into it.
template <bool kAccumulate>
Result decode_impl(const void* payload, uint64_t bytes, uint64_t expected_count, float* out) {
  PayloadView v;
  QCCL_CHECK(validate_payload(payload, bytes, expected_count, &v));
  const PayloadHeader& h = v.header;
  if (h.count > 0 && out == nullptr) return fail(qcclInvalidArgument, "decode: null output buffer");
  const Method method = static_cast<Method>(h.method);
  if (is_cast(method)) {
    for (uint64_t i = 0; i < h.count; ++i) {
      float x;
      if (method == Method::kNone) {
        std::memcpy(&x, v.body + 4 * i, 4);
      } else {
        uint16_t u;
        std::memcpy(&u, v.body + 2 * i, 2);
        x = method == Method::kFp16 ? fp16_to_float(u) : bf16_to_float(u);
      }
      out[i] = canonical_nan(kAccumulate ? out[i] + x : x);  // one NaN pattern, as the GPU
    }
    return qcclSuccess;
  }
  const PaddedTable table(v);
  uint32_t max_symbol = 0;
  const uint64_t nb = num_buckets(h.count, h.bucket_size);
  for (uint64_t b = 0; b < nb; ++b) {
    const uint64_t off = b * h.bucket_size;
    const uint64_t n = h.count - off < h.bucket_size ? h.count - off : h.bucket_size;
    const uint32_t m =
        decode_bucket<kAccumulate>(v.symbols + bucket_word_offset(b, h.bucket_size, h.bits), h.bits,
                                   n, v.norms[b], table.levels, out + off);
    max_symbol = m > max_symbol ? m : max_symbol;
  }
  if (max_symbol >= h.table_size)
    return fail(qcclCorruptPayload, "payload: symbol {} beyond the {}-entry table", max_symbol,
                h.table_size);
  return qcclSuccess;
}

}  // namespace

Result decode_sum(const void* const* payloads, const uint64_t* bytes, int n,
                  uint64_t expected_count, float* out, int* failed) {
  *failed = -1;
  if (n <= 0) return fail(qcclInvalidArgument, "decode_sum: {} payloads", n);
  thread_local std::vector<PayloadView> views;
  views.resize(n);
  bool fused = true;
  for (int r = 0; r < n; ++r) {
    if (validate_payload(payloads[r], bytes[r], expected_count, &views[r]) != qcclSuccess) {
      *failed = r;
      return qcclCorruptPayload;
    }
    fused = fused && is_quantizing(static_cast<Method>(views[r].header.method)) &&
            views[r].header.bucket_size == views[0].header.bucket_size;
  }
  if (!fused) {  // casts or mixed layouts: one payload after the other
    for (int r = 0; r < n; ++r) {
      const Result res = r == 0 ? decode(payloads[r], bytes[r], expected_count, out)
                                : decode_accumulate(payloads[r], bytes[r], expected_count, out);
      if (res != qcclSuccess) return *failed = r, res;
    }
    return qcclSuccess;
  }
  // Bucket by bucket over all payloads, so the bucket of `out` stays in
  // cache while the N payloads are added to it; the additions happen in the
  // same rank order as payload-by-payload decoding, so the bytes are equal.
  thread_local std::vector<PaddedTable> tables;
  tables.clear();
  for (int r = 0; r < n; ++r) tables.emplace_back(views[r]);
  std::vector<uint32_t> max_symbol(n, 0);
  const uint32_t bucket = views[0].header.bucket_size;
  const uint64_t nb = num_buckets(expected_count, bucket);
  for (uint64_t b = 0; b < nb; ++b) {
    const uint64_t off = b * bucket;
    const uint64_t len = expected_count - off < bucket ? expected_count - off : bucket;
    for (int r = 0; r < n; ++r) {
      const PayloadView& v = views[r];
      const int bits = v.header.bits;
      const uint32_t* words = v.symbols + bucket_word_offset(b, bucket, bits);
      const uint32_t m =
          r == 0 ? decode_bucket<false>(words, bits, len, v.norms[b], tables[r].levels, out + off)
                 : decode_bucket<true>(words, bits, len, v.norms[b], tables[r].levels, out + off);
      max_symbol[r] = m > max_symbol[r] ? m : max_symbol[r];
    }
  }
  for (int r = 0; r < n; ++r) {
    if (max_symbol[r] >= views[r].header.table_size) {
      *failed = r;
      return fail(qcclCorruptPayload, "payload: symbol {} beyond the {}-entry table", max_symbol[r],
                  views[r].header.table_size);
    }
  }
  return qcclSuccess;
}

Result decode(const void* payload, uint64_t bytes, uint64_t expected_count, float* out) {
  return decode_impl<false>(payload, bytes, expected_count, out);
}

Result decode_accumulate(const void* payload, uint64_t bytes, uint64_t expected_count, float* acc) {
  return decode_impl<true>(payload, bytes, expected_count, acc);
}

void cast_from_float(const float* in, uint64_t count, DataType dtype, void* out) {
  switch (dtype) {
    case DataType::kFloat32:
      if (out != in) std::memmove(out, in, 4ull * count);
      break;
    case DataType::kFloat16:
      for (uint64_t i = 0; i < count; ++i) static_cast<uint16_t*>(out)[i] = float_to_fp16(in[i]);
      break;
    case DataType::kBfloat16:
      for (uint64_t i = 0; i < count; ++i) static_cast<uint16_t*>(out)[i] = float_to_bf16(in[i]);
      break;
  }
}

void cast_to_float(const void* in, uint64_t count, DataType dtype, float* out) {
  for (uint64_t off = 0; off < count; off += (1u << 20)) {
    const uint32_t n = static_cast<uint32_t>(count - off < (1u << 20) ? count - off : (1u << 20));
    load_float(in, dtype, off, n, out + off);
  }
}

}  // namespace qccl
