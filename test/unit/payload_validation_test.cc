// A payload that is truncated, corrupted or mismatched is qcclCorruptPayload
// with a message — never an out-of-bounds read (ASan runs these in CI).
#include <cstring>
#include <random>

#include "codec_test_util.h"

namespace qccl {
namespace {

using testing_util::Encode;
using testing_util::GaussianVector;

class PayloadValidation : public ::testing::Test {
 protected:
  void SetUp() override {
    v_ = GaussianVector(1000, 41);
    spec_.bucket_size = 256;
    spec_.bits = 3;
    table_ = exponential_table(3, 0.5);
    table_.levels = {-1, -0.5f, 0.5f, 1};  // 4 of 8 possible levels: symbols 4..7 are invalid
    payload_ = Encode(v_, spec_, table_);
    out_.resize(v_.size());
  }
  Result DecodeIt(const std::vector<unsigned char>& p, uint64_t n) {
    return decode(p.data(), p.size(), n, out_.data());
  }
  PayloadHeader Header() const {
    PayloadHeader h;
    std::memcpy(&h, payload_.data(), sizeof h);
    return h;
  }
  void SetHeader(const PayloadHeader& h, bool fix_checksum) {
    PayloadHeader copy = h;
    if (fix_checksum) {
      copy.checksum = payload_checksum(
          copy, reinterpret_cast<const float*>(payload_.data() + sizeof(PayloadHeader)));
    }
    std::memcpy(payload_.data(), &copy, sizeof copy);
  }
  void ExpectCorrupt(const char* fragment) {
    EXPECT_EQ(DecodeIt(payload_, v_.size()), qcclCorruptPayload);
    EXPECT_NE(thread_last_error().find(fragment), std::string::npos) << thread_last_error();
  }
  std::vector<float> v_;
  EncodeSpec spec_;
  LevelTable table_;
  std::vector<unsigned char> payload_;
  std::vector<float> out_;
};

TEST_F(PayloadValidation, IntactPayloadDecodes) {
  EXPECT_EQ(DecodeIt(payload_, 1000), qcclSuccess);
}

TEST_F(PayloadValidation, DecodeRejectsTruncatedPayload) {
  for (size_t cut : {size_t{0}, size_t{10}, size_t{63}, size_t{64}, payload_.size() - 1}) {
    EXPECT_EQ(decode(payload_.data(), cut, 1000, out_.data()), qcclCorruptPayload) << cut;
  }
}

TEST_F(PayloadValidation, DecodeRejectsTrailingBytes) {
  payload_.push_back(0);
  ExpectCorrupt("header says");
}

TEST_F(PayloadValidation, DecodeRejectsBadMagic) {
  payload_[0] ^= 0xFF;
  ExpectCorrupt("magic");
}

TEST_F(PayloadValidation, DecodeRejectsUnknownVersion) {
  PayloadHeader h = Header();
  h.version = 99;
  SetHeader(h, true);
  ExpectCorrupt("version");
}

TEST_F(PayloadValidation, DecodeRejectsFlippedHeaderByte) {
  payload_[offsetof(PayloadHeader, step)] ^= 1;
  ExpectCorrupt("checksum");
}

TEST_F(PayloadValidation, DecodeRejectsFlippedTableByte) {
  payload_[sizeof(PayloadHeader) + 5] ^= 1;
  ExpectCorrupt("checksum");
}

TEST_F(PayloadValidation, DecodeRejectsCountMismatch) {
  EXPECT_EQ(DecodeIt(payload_, 999), qcclCorruptPayload);
  EXPECT_NE(thread_last_error().find("expected 999"), std::string::npos);
}

TEST_F(PayloadValidation, DecodeRejectsInconsistentSizesEvenWithValidChecksum) {
  PayloadHeader h = Header();
  h.count = 1u << 30;
  h.total_bytes = payload_.size();
  SetHeader(h, true);
  EXPECT_EQ(DecodeIt(payload_, UINT64_MAX), qcclCorruptPayload);
  h = Header();
  h.bits = 9;
  SetHeader(h, true);
  EXPECT_EQ(DecodeIt(payload_, UINT64_MAX), qcclCorruptPayload);
}

TEST_F(PayloadValidation, DecodeRejectsUnsortedTableEvenWithValidChecksum) {
  float* table = reinterpret_cast<float*>(payload_.data() + sizeof(PayloadHeader));
  std::swap(table[1], table[2]);
  SetHeader(Header(), true);
  ExpectCorrupt("level table");
}

TEST_F(PayloadValidation, DecodeRejectsSymbolBeyondTable) {
  const QuantLayout l = quant_layout(1000, 256, 3, 4);
  // Set bit 2 of coordinate 0: symbol >= 4 with a 4-entry table.
  payload_[l.symbols_offset + 8] |= 1;
  ExpectCorrupt("beyond");
}

TEST_F(PayloadValidation, RandomCorruptionNeverCrashes) {
  std::mt19937 rng(51);
  const std::vector<unsigned char> good = payload_;
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<unsigned char> p = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f)
      p[rng() % p.size()] ^= static_cast<unsigned char>(1u << (rng() % 8));
    if (rng() % 4 == 0) p.resize(1 + rng() % p.size());
    const Result r = decode(p.data(), p.size(), UINT64_MAX, out_.data());
    EXPECT_TRUE(r == qcclSuccess || r == qcclCorruptPayload);
  }
}

TEST_F(PayloadValidation, CastPayloadsAreValidatedToo) {
  EncodeSpec spec;
  spec.method = Method::kFp16;
  auto p = Encode(v_, spec, LevelTable{});
  EXPECT_EQ(DecodeIt(p, 1000), qcclSuccess);
  p.pop_back();
  EXPECT_EQ(DecodeIt(p, 1000), qcclCorruptPayload);
}

}  // namespace
}  // namespace qccl
