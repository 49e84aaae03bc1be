// Publishing a conversion written in parts (pipeline/part_writer.h): check that every part
// left its marker for the same plan and that every file is there at its planned size, patch
// in the zip CRC-32s (combined from the parts' markers), then hand the files to the same
// journaled publish a single-process conversion uses (pipeline/output_directory.h), so the
// index or DCP `.metadata` becomes visible last and a crash leaves the old output or the
// new one. Exactly one process publishes: the one that takes the staging's claim.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "pipeline/part_staging.h"

namespace ckconv {

struct PartPublishResult {
  std::filesystem::path target;
  uint32_t parts = 0;
  std::vector<std::pair<std::string, uint64_t>> files;  // relative path, size
  std::vector<std::string> replaced;                    // files of the previous output
  std::vector<std::string> notes;                       // leftovers of dead runs handled
};

// Publishes the parts in `staging` into `target`. kExists when another process holds the
// claim (naming it), or when `target` holds ckconv's files and not `replace`; kBadInput
// when a part is missing or incomplete (naming each; nothing is changed, the parts can be
// re-run) or the staging directory is not one. Removes the staging directory once published.
PartPublishResult publish_parts(const PartStaging& staging, const std::filesystem::path& target,
                                bool replace);
// The same, for a caller that already holds the claim (PartStaging::claim); releases it on
// failure.
PartPublishResult publish_claimed_parts(const PartStaging& staging,
                                        const std::filesystem::path& target, bool replace);

// The parts still missing a valid marker, 1-based, for messages ("2/4, 4/4").
std::vector<std::string> missing_parts(const PartStaging& staging, const PartPlan& plan);

}  // namespace ckconv
