// From a model of F to a level table: the optimiser of the method (ALQ
// coordinate descent, AMQ multiplier) or, for the fixed-table methods, their
// table with its V under the model. Used by the statistics thread and by
// tools/qccl_levels, so both print and use the same tables.
#pragma once

#include "adapt/level_model.h"
#include "adapt/stats_summary.h"
#include "codec/level_table.h"
#include "core/method.h"
#include "core/result.h"

namespace qccl {

struct LevelFit {
  LevelTable table;        // validated float table (version left 0)
  double variance = 0;     // V of the float table under the model
  double multiplier = -1;  // AMQ's p, -1 for other methods
};

// `previous_p` warm-starts AMQ (§4); ignored elsewhere.
Result fit_levels(Method method, int bits, const LevelModel& model, double previous_p,
                  LevelFit* out);

// Doubles to a float table: rounded, deduplicated where rounding (or an
// empty region of F) made neighbours collide, ends pinned to ±1.
Result to_level_table(const std::vector<double>& levels, int bits, LevelTable* out);

std::vector<double> table_levels(const LevelTable& table);

}  // namespace qccl
