// execute() and matches_files(): open or map the output files, run every block of the
// file plan through the block pool, then patch (or compare) the zip CRC-32s and sync.
#include "pipeline/executor.h"

#include <xxhash.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "core/error.h"
#include "core/file.h"
#include "pipeline/block_builder.h"
#include "pipeline/block_pool.h"

namespace ckconv {
namespace {

void put_u32_le(uint8_t* out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<uint8_t>(value >> (8 * i));
}

// The CRC-32 of every placement, combined from the per-block parts (blocks are in file
// order, so each placement's parts come in byte order).
std::vector<uint32_t> placement_crcs(const FilePlan& file_plan,
                                     const std::vector<std::vector<CrcPart>>& parts) {
  std::vector<uint32_t> crcs(file_plan.placements.size(), 0);
  for (const auto& block_parts : parts)
    for (const CrcPart& part : block_parts) {
      uint32_t& crc = crcs[part.placement];
      crc = static_cast<uint32_t>(
          crc32_combine(crc, part.crc, static_cast<z_off_t>(part.size_bytes)));
    }
  return crcs;
}

void check_file_plan(const ExecutionPlan& plan, const FilePlan& file_plan) {
  CKCONV_CHECK(plan.recipes.size() == plan.sources.size());
  for (const TensorPlacement& placement : file_plan.placements) {
    CKCONV_CHECK(placement.tensor < plan.recipes.size() && placement.file < file_plan.files.size());
    const TensorRecipe& recipe = plan.recipes[placement.tensor];
    CKCONV_CHECK(placement.byte_offset + num_elements(recipe.shape) * dtype_size(recipe.dtype) <=
                 file_plan.files[placement.file].size_bytes);
  }
}

// Writes a built block; the short last block of a file is written padded when the file is
// unbuffered, and execute() truncates the file back to its size.
void write_block(File& file, const Block& block, const AlignedBuffer& buffer) {
  file.write_at(buffer.data(), file.direct() ? BlockBuilder::padded_size(block) : block.size_bytes,
                block.offset);
}

// Whether the built block equals the bytes of `file` at its offset, the bytes at
// `patch_offsets` (CRC patches, 4 bytes each) excepted: those are copied from the file into
// `buffer`, since the built block holds them unpatched.
bool block_matches_file(const MappedFile& file, const Block& block, const AlignedBuffer& buffer,
                        const std::vector<uint64_t>& patch_offsets) {
  // Cached bytes are compared in place; others are read unbuffered (see
  // MappedFile::read_unbuffered) into a per-worker buffer.
  const uint8_t* existing = file.data() + block.offset;
  if (file.resident_share(block.offset, block.size_bytes) < 0.5) {
    thread_local std::unique_ptr<AlignedBuffer> scratch;
    const uint64_t span = MappedFile::unbuffered_span(block.offset, block.size_bytes);
    if (!scratch || scratch->size() < span) scratch = std::make_unique<AlignedBuffer>(span);
    if (const uint8_t* copy = file.read_unbuffered(block.offset, block.size_bytes, scratch->data()))
      existing = copy;
  }
  for (uint64_t offset : patch_offsets)
    for (uint64_t i = offset; i < offset + 4; ++i)
      if (i >= block.offset && i < block.offset + block.size_bytes)
        buffer.data()[i - block.offset] = existing[i - block.offset];
  const bool equal = std::memcmp(existing, buffer.data(), block.size_bytes) == 0;
  file.release(block.offset, block.size_bytes);
  return equal;
}

// Maps the file plan's files in `directory`; nullopt when the directory holds other regular
// files or a file is missing or of another size.
std::optional<std::vector<std::unique_ptr<MappedFile>>> map_expected_files(
    const FilePlan& file_plan, const std::filesystem::path& directory) {
  std::set<std::string> expected_names;
  for (const PlannedFile& spec : file_plan.files) expected_names.insert(spec.relative_path);
  std::error_code error;
  for (auto it = std::filesystem::recursive_directory_iterator(directory, error);
       !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error))
    if (it->is_regular_file() &&
        !expected_names.count(std::filesystem::relative(it->path(), directory).string()))
      return std::nullopt;
  if (error) return std::nullopt;
  std::vector<std::unique_ptr<MappedFile>> files;
  for (const PlannedFile& spec : file_plan.files) {
    const std::filesystem::path path = directory / spec.relative_path;
    if (!std::filesystem::is_regular_file(path, error)) return std::nullopt;
    files.push_back(std::make_unique<MappedFile>(path));
    if (files.back()->size() != spec.size_bytes) return std::nullopt;
  }
  return files;
}

uint64_t digest_of_block(const AlignedBuffer& buffer, const Block& block) {
  return block_digest(buffer.data(), block.size_bytes);
}

// A byte range of a source file that a block reads.
struct SourceBytes {
  std::filesystem::path path;
  uint64_t offset = 0;
  uint64_t size = 0;
};

// The stored byte ranges of `tensor`: per chunk, from its first to its last element.
void add_tensor_ranges(const MappedCheckpoint& checkpoint, const CatalogTensor& tensor,
                       std::vector<SourceBytes>& ranges) {
  for (const StoredChunk& chunk : tensor.chunks) {
    int64_t last = 0;
    bool empty = false;
    for (size_t d = 0; d < chunk.sizes.size(); ++d) {
      empty = empty || chunk.sizes[d] == 0;
      last += (chunk.sizes[d] - 1) * chunk.strides[d];
    }
    if (empty) continue;
    const uint64_t size = static_cast<uint64_t>(last + 1) * dtype_size(tensor.dtype);
    ranges.push_back({checkpoint.catalog().files.at(chunk.file), chunk.byte_offset, size});
  }
}

// Per block, the source byte ranges it reads (SourceBytes), and an order of the blocks by
// when the last of those bytes is written (SourceGate::write_order).
struct GatedBlocks {
  std::vector<std::vector<SourceBytes>> sources;
  std::vector<size_t> order;
};

// The ranges of a block are those the builder reads (BlockBuilder::read_ranges: for a
// transposed expert, its expert's rows rather than the whole stacked tensor, so that the
// block starts as soon as that expert is written), plus the whole stored chunks of every
// source the builder does not read as one contiguous run.
GatedBlocks gate_blocks(const ExecutionPlan& plan, const FilePlan& file_plan,
                        const BlockBuilder& builder, const SourceGate& gate) {
  const std::vector<Block>& blocks = builder.blocks();
  GatedBlocks gated;
  gated.sources.resize(blocks.size());
  std::vector<uint64_t> ready(blocks.size(), 0);
  const AlignedBuffer scratch(builder.block_bytes());
  for (size_t b = 0; b < blocks.size(); ++b) {
    // The block's placements come from the builder's index of them (a scan of every
    // placement per block would take hours at a 671B model's ~10^5 of each).
    for (size_t p : builder.placements_in(b))
      for (const SourceRef& source : plan.sources[file_plan.placements[p].tensor])
        if (source.checkpoint && source.tensor &&
            (source.generate || source.checkpoint->contiguous_data(*source.tensor) == nullptr))
          add_tensor_ranges(*source.checkpoint, *source.tensor, gated.sources[b]);
    for (const SourceRange& range : builder.read_ranges(b, scratch)) {
      uint64_t offset = 0;
      if (const MappedFile* file = range.checkpoint->locate(range.data, &offset))
        gated.sources[b].push_back({file->path(), offset, range.size});
    }
    for (const SourceBytes& range : gated.sources[b])
      ready[b] = std::max(ready[b], gate.write_order(range.path, range.offset + range.size - 1));
  }
  gated.order.resize(blocks.size());
  for (size_t b = 0; b < blocks.size(); ++b) gated.order[b] = b;
  std::stable_sort(gated.order.begin(), gated.order.end(),
                   [&](size_t x, size_t y) { return ready[x] < ready[y]; });
  return gated;
}

}  // namespace

// XXH64 is fast (~10 GB/s, little next to writing at ~2-3 GB/s) and, at 64 bits, makes an
// accidental match of two different blocks negligible.
uint64_t block_digest(const uint8_t* data, size_t size) {
  return XXH64(data, size, 0);
}

void wait_for_tensor(const SourceGate& gate, const MappedCheckpoint& checkpoint,
                     const CatalogTensor& tensor) {
  std::vector<SourceBytes> ranges;
  add_tensor_ranges(checkpoint, tensor, ranges);
  for (const SourceBytes& range : ranges) gate.wait_written(range.path, range.offset, range.size);
}

void execute(const ExecutionPlan& plan, const FilePlan& file_plan,
             const std::filesystem::path& directory, const ExecuteOptions& options) {
  check_file_plan(plan, file_plan);
  std::vector<File> files;
  for (const PlannedFile& spec : file_plan.files) {
    std::filesystem::path path = directory / spec.relative_path;
    std::filesystem::create_directories(path.parent_path());
    File file = options.buffered ? File::create(path) : File::create_unbuffered(path);
    file.allocate(spec.size_bytes);
    file.truncate(spec.size_bytes);
    files.push_back(std::move(file));
  }

  const BlockBuilder builder(plan, file_plan, options.block_bytes, options.band_memory);
  const std::vector<Block>& blocks = builder.blocks();
  std::vector<std::vector<CrcPart>> crcs(blocks.size());
  if (options.block_digests) options.block_digests->assign(blocks.size(), 0);
  for_each_block(
      blocks, builder.block_bytes(), options,
      [&](size_t index, const AlignedBuffer& buffer, const AlignedBuffer& staging) {
        builder.build(index, buffer, staging, &crcs[index]);
        const Block& block = blocks[index];
        if (options.block_digests) (*options.block_digests)[index] = digest_of_block(buffer, block);
        if (options.inspect_block)
          options.inspect_block(block.file, block.offset, buffer.data(), block.size_bytes);
      },
      [&](size_t index, const AlignedBuffer& buffer) {
        const Block& block = blocks[index];
        write_block(files[block.file], block, buffer);
        if (options.block_written)
          options.block_written(block.file, block.offset, block.size_bytes);
      });

  for (size_t f = 0; f < files.size(); ++f) {
    files[f].stop_direct();
    if (file_plan.files[f].size_bytes % File::kDirectAlignment != 0)
      files[f].truncate(file_plan.files[f].size_bytes);
  }
  if (!file_plan.crc_patches.empty()) {
    const std::vector<uint32_t> crc = placement_crcs(file_plan, crcs);
    for (const Crc32Patch& patch : file_plan.crc_patches) {
      uint8_t bytes[4];
      put_u32_le(bytes, crc.at(patch.placement));
      files.at(patch.file).write_at(bytes, 4, patch.offset);
    }
  }
  for (File& file : files) {
    if (options.sync) file.sync();
    file.close();
  }
}

bool matches_files(const ExecutionPlan& plan, const FilePlan& file_plan,
                   const std::filesystem::path& directory, const ExecuteOptions& options,
                   const std::vector<uint64_t>* expected_digests) {
  check_file_plan(plan, file_plan);
  const auto mapped = map_expected_files(file_plan, directory);
  if (!mapped) return false;
  const std::vector<std::unique_ptr<MappedFile>>& files = *mapped;

  const BlockBuilder builder(plan, file_plan, options.block_bytes, options.band_memory);
  const std::vector<Block>& blocks = builder.blocks();
  if (expected_digests && expected_digests->size() != blocks.size()) expected_digests = nullptr;

  // The bytes at CRC patch offsets are only known at the end (and digests are taken before
  // they are patched): blocks are compared with those bytes taken from the existing files,
  // and the CRCs are compared last.
  std::vector<std::vector<uint64_t>> patch_offsets(file_plan.files.size());
  for (const Crc32Patch& patch : file_plan.crc_patches)
    patch_offsets.at(patch.file).push_back(patch.offset);
  std::vector<std::vector<CrcPart>> crcs(blocks.size());
  std::atomic<bool> equal{true};
  const GatedBlocks gated = options.source_gate
                                ? gate_blocks(plan, file_plan, builder, *options.source_gate)
                                : GatedBlocks{};
  // Compared by digest, a block is finished once built, and compared with files that are
  // in the page cache, its comparison is a read of memory: in both cases workers beyond the
  // builders would only hold more block buffers (and mapped pages). Extra workers overlap
  // the comparisons' reads of files that are not cached.
  // Residency is looked up only without digests, where it decides.
  const bool compared_in_memory =
      !expected_digests && std::all_of(files.begin(), files.end(), [](const auto& file) {
        return file->resident_share(0, file->size()) >= 0.5;
      });
  ExecuteOptions pool = options;
  if (expected_digests || compared_in_memory) pool.writes_in_flight = 0;
  for_each_block(
      blocks, builder.block_bytes(), pool,
      [&](size_t index, const AlignedBuffer& buffer, const AlignedBuffer& staging) {
        if (!equal.load()) return;
        if (options.source_gate)
          for (const SourceBytes& range : gated.sources[index])
            options.source_gate->wait_written(range.path, range.offset, range.size);
        builder.build(index, buffer, staging, &crcs[index]);
        if (expected_digests &&
            digest_of_block(buffer, blocks[index]) != (*expected_digests)[index])
          equal = false;
      },
      [&](size_t index, const AlignedBuffer& buffer) {
        if (!equal.load() || expected_digests) return;
        const Block& block = blocks[index];
        if (!block_matches_file(*files[block.file], block, buffer, patch_offsets[block.file]))
          equal = false;
      },
      gated.order);
  if (!equal) return false;
  if (!file_plan.crc_patches.empty()) {
    const std::vector<uint32_t> crc = placement_crcs(file_plan, crcs);
    for (const Crc32Patch& patch : file_plan.crc_patches) {
      uint8_t bytes[4];
      put_u32_le(bytes, crc.at(patch.placement));
      if (std::memcmp(bytes, files.at(patch.file)->data() + patch.offset, 4) != 0) return false;
    }
  }
  return true;
}

}  // namespace ckconv
