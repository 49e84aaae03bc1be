// Comparisons used by verify: tensor-by-tensor (key set, dtype, shape, bits, with the first
// differing element and max |difference|) and file-by-file (bytes, first differing offset).
// Both stream through fixed-size buffers.
#pragma once

#include <filesystem>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "pipeline/mapped_checkpoint.h"

namespace ckconv {

struct Exclusion {
  std::regex pattern;
  std::string reason;
};

struct Comparison {
  std::vector<std::string> differences;  // empty = equal
  std::vector<std::string> notes;        // e.g. excluded keys and why
  bool equal() const { return differences.empty(); }
};

// `expected` vs `actual`. Keys matching an exclusion must exist on both sides with equal
// shape and dtype; their values are not compared, but in `actual` they must be all zeros.
// Keys matching `ignore` are left out on both sides.
Comparison compare_tensors(const MappedCheckpoint& expected, const MappedCheckpoint& actual,
                           const std::vector<Exclusion>& exclusions,
                           const std::vector<std::regex>& ignore = {});

// What compare_tensors(checkpoint, copy, exclusions) reports when `copy` has the same bytes
// as `checkpoint`: a note per excluded key, and a difference for each that is not all zeros.
Comparison check_excluded_zeros(const MappedCheckpoint& checkpoint,
                                const std::vector<Exclusion>& exclusions);

// Same relative file names and the same bytes in each.
Comparison compare_directories(const std::filesystem::path& expected, const std::filesystem::path& actual);

}  // namespace ckconv
