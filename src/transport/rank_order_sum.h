// The uncompressed allreduce of the host transports (docs/collectives.md
// "Uncompressed sums"): element i of the result is
//   ((x_0[i] + x_1[i]) + x_2[i]) + ... + x_{N-1}[i]
// in float32, rank by rank (float16/bfloat16 widened first and rounded back
// once), so every rank computes the same bits and a rerun gives them again.
// MPI_Allreduce promises neither the order nor that a wait on it can be
// bounded; this is built from the transport's own allgatherv/alltoallv,
// which are bounded by QCCL_TIMEOUT_S.
//
// Reduce-scatter, then allgather: the alltoallv hands rank r every rank's
// chunk r, rank r sums it, and the allgatherv shares the sums: 2(N-1)/N of
// the buffer per rank on the wire, as a ring allreduce.
#pragma once

#include <cstdint>
#include <vector>

#include "transport/transport.h"

namespace qccl {

class RankOrderSum {
 public:
  // `send` may equal `recv`.
  Result run(Transport& transport, const void* send, void* recv, uint64_t count, DataType dtype);

 private:
  std::vector<uint64_t> send_bytes_, send_offsets_, recv_bytes_, recv_offsets_;
  std::vector<unsigned char> gathered_, chunk_;
  std::vector<float> widened_, sum_;
};

}  // namespace qccl
