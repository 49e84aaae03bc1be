// The shared staging directory of a conversion split into parts (`--part I/N`): several
// processes, on one machine or many sharing a file system, each write their share of the
// same output files there; `ckconv publish` (or the last part to finish) checks that every
// part is complete and publishes. Layout, beside the output:
//   <parent>/.<name>.ckconv-parts/
//     plan                       what every part must agree on (fingerprint of the file plan,
//                                number of parts and blocks, files, CRC patches); written once
//     files/                     the output files, filled in by the parts
//     done/part-<i>-of-<n>       a part's completion marker (its blocks and their CRC parts),
//                                written atomically after its bytes are synced
//     publishing                 the claim of the process publishing (host and pid)
// The name holds no pid: every part must find it from the output path alone, and the
// clean-up of dead runs' leftovers (pipeline/run_leftovers.h) leaves it alone.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "formats/file_plan.h"
#include "pipeline/block_builder.h"

namespace ckconv {

// Part `index` (0-based) of `count`; shown to users 1-based ("2/4").
struct PartSpec {
  uint32_t index = 0;
  uint32_t count = 1;
  std::string label() const;
};

// Far above any cluster's node count; keeps the markers' names and the checks bounded.
inline constexpr uint32_t kMaxParts = 65536;

// "<parent>/.<name>.ckconv-parts" for the output `target`.
std::filesystem::path part_staging_path(const std::filesystem::path& target);
// The output of a staging directory named as above, or nothing for another name.
std::optional<std::filesystem::path> part_staging_target(const std::filesystem::path& staging);

// What every part of one conversion agrees on. `fingerprint` hashes the file plan (names,
// sizes, literal bytes, placements, CRC patches) and the block size, so parts run with
// other options, another flavor or a differently shaped input are refused; parts run on
// inputs of the same shapes but other values are not detected.
struct PartPlan {
  std::string fingerprint;
  uint32_t parts = 1;
  uint64_t blocks = 0;
  std::vector<std::pair<std::string, uint64_t>> files;  // relative path, size
  std::vector<Crc32Patch> crc_patches;
};

PartPlan make_part_plan(const FilePlan& file_plan, uint64_t block_bytes, uint64_t blocks,
                        uint32_t parts);

// A part's completion marker.
struct PartMarker {
  std::string fingerprint;
  PartSpec part;
  uint64_t first_block = 0;
  uint64_t end_block = 0;
  std::vector<CrcPart> crc_parts;  // in block order
};

class PartStaging {
 public:
  explicit PartStaging(std::filesystem::path directory) : directory_(std::move(directory)) {}
  const std::filesystem::path& directory() const { return directory_; }
  std::filesystem::path files() const { return directory_ / "files"; }

  // Creates the directories and records `plan`, or checks it equals the recorded one
  // (kUsage naming the directory when it differs: another conversion's parts are there).
  void adopt(const PartPlan& plan) const;
  // The recorded plan; kBadInput when missing or unreadable.
  PartPlan read_plan() const;

  // Atomic and durable: a marker that exists is complete.
  void write_marker(const PartMarker& marker) const;
  void remove_marker(PartSpec part) const;
  // The marker of `part`, or nothing when absent or unreadable.
  std::optional<PartMarker> read_marker(PartSpec part) const;
  // How many of `count` parts have a marker.
  uint32_t markers_present(uint32_t count) const;

  // Takes the claim to publish (O_EXCL create). False when another process holds it or the
  // directory is gone (another part published it); a claim left by a dead process on this
  // host is taken over.
  bool claim() const;
  void release_claim() const;
  // "host H pid P", the holder of the claim, or "" when none.
  std::string claim_holder() const;

 private:
  std::filesystem::path marker_path(PartSpec part) const;
  std::filesystem::path directory_;
};

}  // namespace ckconv
