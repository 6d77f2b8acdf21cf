// Per-communicator scratch memory: allocated on first use, grown when a
// larger call comes, never freed or shrunk between calls, so steady-state
// collectives do not allocate.
#pragma once

#include <cstdint>
#include <vector>

namespace qccl {

template <typename T>
T* grow(std::vector<T>* buffer, uint64_t n) {
  if (buffer->size() < n) buffer->resize(n);
  return buffer->data();
}

struct Workspace {
  std::vector<unsigned char> encoded;   // this rank's first-round payload(s)
  std::vector<unsigned char> received;  // payloads from all ranks
  std::vector<unsigned char> reduced;   // SRA: this rank's re-encoded chunk
  std::vector<unsigned char> gathered;  // SRA: every rank's re-encoded chunk
  std::vector<float> sum;               // float32 accumulator / decoded values
  std::vector<float> chunk_sum;         // SRA: the chunk this rank reduces
  std::vector<uint64_t> sizes, offsets, sizes_in, offsets_in;
  std::vector<double> summaries;  // gathered adapter summaries
  std::vector<unsigned char> descriptors;
};

}  // namespace qccl
