#include "pipeline/part_writer.h"

#include <map>

#include "core/error.h"
#include "core/interrupt.h"
#include "pipeline/block_pool.h"
#include "pipeline/publish.h"

namespace ckconv {
namespace {

namespace fs = std::filesystem;

// Opens (creating, never truncating) the files `blocks` touch, reserved and sized.
std::map<uint32_t, File> open_part_files(const FilePlan& file_plan, const fs::path& directory,
                                         const std::vector<Block>& blocks) {
  std::map<uint32_t, File> files;
  for (const Block& block : blocks) {
    if (files.count(block.file)) continue;
    const PlannedFile& spec = file_plan.files[block.file];
    File file = File::open_shared_unbuffered(directory / spec.relative_path);
    file.allocate_shared(spec.size_bytes);
    // Only ever grows the file, or cuts the padding of an unbuffered last block (written
    // past the size by the part that owns it, which truncates again when done).
    file.truncate(spec.size_bytes);
    files.emplace(block.file, std::move(file));
  }
  return files;
}

}  // namespace

std::pair<size_t, size_t> part_block_range(const std::vector<Block>& blocks, PartSpec part) {
  CKCONV_CHECK(part.count > 0 && part.index < part.count);
  unsigned __int128 total = 0;
  for (const Block& block : blocks) total += block.size_bytes;
  // Block i belongs to part floor(start_i * count / total), start_i its first byte's place
  // in the concatenation of all blocks: monotonic in i, hence contiguous runs.
  auto owner = [&](unsigned __int128 start) {
    return total == 0 ? 0u : static_cast<uint32_t>(start * part.count / total);
  };
  size_t first = blocks.size(), end = blocks.size();
  unsigned __int128 start = 0;
  for (size_t i = 0; i < blocks.size(); ++i) {
    const uint32_t who = owner(start);
    if (who >= part.index && first == blocks.size()) first = i;
    if (who > part.index) {
      end = i;
      break;
    }
    start += blocks[i].size_bytes;
  }
  if (first > end) first = end;
  return {first, end};
}

void check_part_output(const fs::path& raw_target, bool replace) {
  fs::path target = fs::absolute(raw_target).lexically_normal();
  if (!target.has_filename()) target = target.parent_path();
  std::error_code error;
  if (!fs::is_directory(target.parent_path(), error))
    fail(ErrorKind::kIo, "output parent directory " + target.parent_path().string() +
                             " does not exist or is not a directory");
  if (!fs::exists(fs::symlink_status(target, error))) return;
  if (!fs::is_directory(target, error))
    fail(ErrorKind::kExists, "output " + target.string() + " exists and is not a directory");
  const std::vector<std::string> own = list_ckconv_files(target);
  if (!own.empty() && !replace)
    fail(ErrorKind::kExists, "output " + target.string() + " already holds " + own.front() +
                                 (own.size() > 1 ? " and other checkpoint files" : "") +
                                 " (use --force to replace them; other files in it are kept)");
}

PartWriteResult write_part(const PlannedConversion& planned, const fs::path& target, PartSpec part,
                           const ExecuteOptions& options, bool replace) {
  check_part_output(target, replace);
  const BlockBuilder builder(planned.execution, planned.file_plan, options.block_bytes);
  const std::vector<Block>& all = builder.blocks();
  const PartPlan plan =
      make_part_plan(planned.file_plan, builder.block_bytes(), all.size(), part.count);
  const PartStaging staging(part_staging_path(target));
  staging.adopt(plan);
  staging.remove_marker(part);

  PartWriteResult result;
  std::tie(result.first_block, result.end_block) = part_block_range(all, part);
  const std::vector<Block> mine(all.begin() + static_cast<ptrdiff_t>(result.first_block),
                                all.begin() + static_cast<ptrdiff_t>(result.end_block));
  std::map<uint32_t, File> files = open_part_files(planned.file_plan, staging.files(), mine);
  std::vector<std::vector<CrcPart>> crcs(mine.size());
  for_each_block(
      mine, builder.block_bytes(), options,
      [&](size_t index, const AlignedBuffer& buffer, const AlignedBuffer& staging_buffer) {
        builder.build(result.first_block + index, buffer, staging_buffer, &crcs[index]);
      },
      [&](size_t index, const AlignedBuffer& buffer) {
        const Block& block = mine[index];
        File& file = files.at(block.file);
        file.write_at(buffer.data(),
                      file.direct() ? BlockBuilder::padded_size(block) : block.size_bytes,
                      block.offset);
      });
  for (auto& [index, file] : files) {
    const uint64_t size = planned.file_plan.files[index].size_bytes;
    file.stop_direct();
    if (size % File::kDirectAlignment != 0) file.truncate(size);
    if (options.sync) file.sync();
    file.close();
    result.files_touched.push_back(planned.file_plan.files[index].relative_path);
  }
  for (const Block& block : mine) result.bytes_written += block.size_bytes;

  PartMarker marker{plan.fingerprint, part, result.first_block, result.end_block, {}};
  for (const auto& block_crcs : crcs)
    marker.crc_parts.insert(marker.crc_parts.end(), block_crcs.begin(), block_crcs.end());
  throw_if_interrupted();
  test_pause_point("part-marker");
  staging.write_marker(marker);
  result.parts_complete = staging.markers_present(part.count);
  return result;
}

}  // namespace ckconv
