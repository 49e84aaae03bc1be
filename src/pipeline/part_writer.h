// One part of a conversion split across processes (`--part I/N`): the same deterministic
// plan cut into N contiguous runs of blocks of about equal bytes; part I builds and writes
// only its run into the shared staging directory (pipeline/part_staging.h), syncs it and
// leaves its completion marker. The bytes of every block are those a single process writes,
// so the published output is byte-identical whatever N.
#pragma once

#include <cstdint>
#include <filesystem>
#include <utility>
#include <vector>

#include "pipeline/block_builder.h"
#include "pipeline/convert.h"
#include "pipeline/part_staging.h"

namespace ckconv {

// Blocks [first, end) of `blocks` that `part` writes: block i goes to the part whose share
// of the total bytes holds the block's first byte, so the runs are contiguous, cover every
// block once and differ in size by at most a block. A run may be empty.
std::pair<size_t, size_t> part_block_range(const std::vector<Block>& blocks, PartSpec part);

struct PartWriteResult {
  uint64_t first_block = 0;
  uint64_t end_block = 0;
  uint64_t bytes_written = 0;
  std::vector<std::string> files_touched;  // relative paths
  uint32_t parts_complete = 0;             // markers present after ours
};

// Writes part `part` of `planned` into the staging directory of `target` and leaves its
// marker. Refuses (kExists) an output holding ckconv's files unless `replace`, as a
// single-process conversion does. A marker this part left earlier is removed first, so a
// re-run is complete only once it finishes. Interrupted or killed, the part leaves its
// partial bytes and no marker; running it again rewrites its run.
PartWriteResult write_part(const PlannedConversion& planned, const std::filesystem::path& target,
                           PartSpec part, const ExecuteOptions& options, bool replace);

// Refuses (kExists) what a single-process conversion would: an output that is a file, or
// holds files of ckconv's kinds unless `replace`; kIo when the parent is missing.
void check_part_output(const std::filesystem::path& target, bool replace);

}  // namespace ckconv
