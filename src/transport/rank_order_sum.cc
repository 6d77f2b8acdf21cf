#include "transport/rank_order_sum.h"

#include <algorithm>
#include <cstring>

#include "codec/cpu_codec.h"

namespace qccl {
namespace {

// Elements per round: each rank's messages stay far below MPI's int counts
// and the scratch below 4 x 64 MiB.
constexpr uint64_t kRoundElements = 1ull << 24;

}  // namespace

Result RankOrderSum::run(Transport& transport, const void* send, void* recv, uint64_t count,
                         DataType dtype) {
  const int n = transport.size();
  const int me = transport.rank();
  const uint64_t elem = dtype_size(dtype);
  const auto* in = static_cast<const unsigned char*>(send);
  auto* out = static_cast<unsigned char*>(recv);
  if (n == 1) {
    if (send != recv) std::memmove(recv, send, count * elem);
    return qcclSuccess;
  }
  send_bytes_.resize(n), send_offsets_.resize(n), recv_bytes_.resize(n), recv_offsets_.resize(n);
  for (uint64_t done = 0; done < count; done += kRoundElements) {
    const uint64_t m = std::min(kRoundElements, count - done);
    const auto first = [&](int r) { return m * r / n; };  // rank r's chunk: [first(r), first(r+1))
    const uint64_t mine = first(me + 1) - first(me);
    for (int r = 0; r < n; ++r) {
      send_offsets_[r] = first(r) * elem;
      send_bytes_[r] = (first(r + 1) - first(r)) * elem;
      recv_bytes_[r] = mine * elem;
      recv_offsets_[r] = r * mine * elem;
    }
    gathered_.resize(n * mine * elem);
    QCCL_CHECK(transport.alltoallv(in + done * elem, send_bytes_.data(), send_offsets_.data(),
                                   gathered_.data(), recv_bytes_.data(), recv_offsets_.data()));
    chunk_.resize(mine * elem);
    if (mine > 0) {  // a rank may own no element of a short round
      sum_.resize(mine);
      widened_.resize(dtype == DataType::kFloat32 ? 0 : mine);
      for (int r = 0; r < n; ++r) {
        const unsigned char* from = gathered_.data() + r * mine * elem;
        const float* values = reinterpret_cast<const float*>(from);
        if (dtype != DataType::kFloat32) {
          cast_to_float(from, mine, dtype, widened_.data());
          values = widened_.data();
        }
        if (r == 0) {
          std::copy(values, values + mine, sum_.begin());
        } else {
          for (uint64_t i = 0; i < mine; ++i) sum_[i] += values[i];
        }
      }
      cast_from_float(sum_.data(), mine, dtype, chunk_.data());
    }
    QCCL_CHECK(transport.allgatherv(chunk_.data(), mine * elem, out + done * elem,
                                    send_bytes_.data(), send_offsets_.data()));
  }
  return qcclSuccess;
}

}  // namespace qccl
