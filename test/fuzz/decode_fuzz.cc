// libFuzzer target for the payload decoder (docs/design.md §4: a payload that
// fails validation is qcclCorruptPayload, never an out-of-bounds read).
//
// Input byte 0 picks a mode:
//   even  — bytes 1.. are a raw payload; bit 1 set: fix its checksum first so
//           the fuzzer gets past the header check into the body;
//   odd   — bytes 1..4 pick method/bits/bucket, the next bytes are float32
//           data that is encoded; the rest are (offset, xor) corruptions of
//           the encoded payload, checksum then optionally fixed.
#include <cstdint>
#include <cstring>
#include <vector>

#include "codec/cpu_codec.h"
#include "codec/level_table.h"

namespace {

void fix_checksum(std::vector<unsigned char>& p) {
  if (p.size() < sizeof(qccl::PayloadHeader)) return;
  qccl::PayloadHeader h;
  std::memcpy(&h, p.data(), sizeof h);
  const uint64_t table_bytes = 4ull * h.table_size;
  if (sizeof h + table_bytes > p.size()) return;
  h.checksum = qccl::payload_checksum(
      h, reinterpret_cast<const float*>(p.data() + sizeof(qccl::PayloadHeader)));
  std::memcpy(p.data(), &h, sizeof h);
}

void decode_all_ways(const std::vector<unsigned char>& p) {
  qccl::PayloadView view;
  if (qccl::validate_payload(p.data(), p.size(), UINT64_MAX, &view) != qcclSuccess) return;
  if (view.header.count > (1u << 16)) return;  // valid but too large to bother
  // Exactly `count` floats, so ASan flags a decoder writing one past the end.
  std::vector<float> out(view.header.count);
  (void)qccl::decode(p.data(), p.size(), view.header.count, out.data());
  (void)qccl::decode_accumulate(p.data(), p.size(), view.header.count, out.data());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  if ((mode & 1) == 0) {
    std::vector<unsigned char> p(data + 1, data + size);
    if (mode & 2) fix_checksum(p);
    decode_all_ways(p);
    return 0;
  }
  if (size < 6) return 0;
  using namespace qccl;
  const Method methods[] = {Method::kQsgd, Method::kNuqsgd, Method::kTrn,    Method::kFp16,
                            Method::kBf16, Method::kNone,   Method::kQsgdInf};
  EncodeSpec spec;
  spec.method = methods[data[1] % 7];
  spec.bits = 2 + data[2] % 7;
  spec.bucket_size = 32u * (1 + data[3] % 4);
  spec.norm = default_norm(spec.method);
  const size_t nfloats = std::min<size_t>((size - 5) / 4, 1 + data[4] % 200);
  if (nfloats == 0) return 0;
  std::vector<float> values(nfloats);
  std::memcpy(values.data(), data + 5, 4 * nfloats);
  LevelTable table;
  if (is_quantizing(spec.method)) {
    if (initial_table(spec.method, spec.bits, &table) != qcclSuccess) return 0;
    spec.levels = table.levels.data();
    spec.num_levels = table.size();
  }
  std::vector<unsigned char> p(payload_bytes(spec, nfloats));
  if (encode(values.data(), DataType::kFloat32, nfloats, spec, p.data(), p.size(), nullptr) !=
      qcclSuccess)
    return 0;
  const uint8_t* edits = data + 5 + 4 * nfloats;
  const size_t nedits = (size - 5 - 4 * nfloats) / 3;
  for (size_t e = 0; e < nedits; ++e) {
    const size_t at = (edits[3 * e] | (edits[3 * e + 1] << 8)) % (p.size() + 1);
    if (at == p.size()) {
      p.resize(p.size() / 2 + edits[3 * e + 2] % (p.size() / 2 + 1));  // truncate or keep
      if (p.empty()) return 0;
    } else {
      p[at] ^= edits[3 * e + 2];
    }
  }
  if (mode & 2) fix_checksum(p);
  decode_all_ways(p);
  return 0;
}
