// When adaptive tables are re-fitted (docs/algorithms.md §3 "Schedule"): at the
// listed steps (QCCL_UPDATE_STEPS, default {0, 100, 2000}) and then every
// QCCL_UPDATE_EVERY steps after the last listed one (default 10000: 12000,
// 22000, ...; 0 = never). With no listed steps the period counts from 0.
#pragma once

#include <cstdint>
#include <vector>

namespace qccl {

bool is_refit_step(const std::vector<uint64_t>& steps, uint64_t every, uint64_t step);

// Whether any refit step lies in [first, last]. A scheduled step on which no
// compressed call happens (only small, uncompressed buffers) must not be
// lost: the next compressed call collects for it.
bool refit_due_between(const std::vector<uint64_t>& steps, uint64_t every, uint64_t first,
                       uint64_t last);

}  // namespace qccl
