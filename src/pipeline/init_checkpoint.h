// `ckconv init`: a deterministic random-init native checkpoint for any flavor, so tests and
// benchmarks need no PyTorch. Values depend only on (seed, tensor name, element index), never
// on thread count or output format: norms are 1, expert_bias_E is 0, everything else is
// uniform with standard deviation 0.02.
#pragma once

#include <cstdint>
#include <filesystem>

#include "families/family.h"
#include "pipeline/convert.h"

namespace ckconv {

struct InitOptions {
  uint64_t seed = 0;
  DType dtype = DType::kF32;
};

// Writes the native tensors of `rules` (a flavor's table in one native scheme; values depend
// on the key names as that scheme spells them) into the existing empty `directory` in
// options.native_format. With `dry_run`, only plans: returns the files it would write.
ConversionSummary write_initial_checkpoint(const FamilyRules& rules, const InitOptions& init,
                                           const std::filesystem::path& directory,
                                           const WriteOptions& options, bool dry_run = false);

}  // namespace ckconv
