// The block builder (see block_builder.h): per block, a first pass collects the source
// ranges the block reads, the uncached ones are staged with unbuffered reads, a second pass
// copies literals and tensor tiles, and the source pages are released.
#include "pipeline/block_builder.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "core/crc32.h"
#include "core/error.h"
#include "core/float_convert.h"

namespace ckconv {

// How a block reaches its source bytes. A first pass (collect_only) records the ranges the
// block reads; ranges mostly missing from the page cache are then read unbuffered into a
// staging buffer, and the copy pass reads those from staging, the others from the mappings.
struct BlockBuilder::SourceAccess {
  struct Staged {
    const uint8_t* begin;  // the range in the mapping
    const uint8_t* end;
    const uint8_t* data;  // its copy in the staging buffer
  };
  bool collect_only = false;
  // With collect_only: record the sources of the bands a banded placement copies from.
  bool collect_bands = false;
  std::vector<SourceRange> touched;
  std::vector<Staged> staged;

  const uint8_t* translate(const uint8_t* data, uint64_t size) const {
    for (const Staged& range : staged)
      if (data >= range.begin && data + size <= range.end) return range.data + (data - range.begin);
    return data;
  }
};

struct BlockBuilder::ExtentRange {
  const Extent* first;
  const Extent* last;
  const Extent* begin() const { return first; }
  const Extent* end() const { return last; }
};

namespace {

// Reading a gap this small with its neighbours is cheaper than a second read.
constexpr uint64_t kStagingGapBytes = uint64_t{64} << 10;

bool same_file(const SourceRange& a, const SourceRange& b) {
  uint64_t offset = 0;
  return a.checkpoint->locate(a.data, &offset) == b.checkpoint->locate(b.data, &offset);
}

// Sorts the ranges and merges those of one file less than `gap` bytes apart.
void merge(std::vector<SourceRange>& ranges, uint64_t gap) {
  std::sort(ranges.begin(), ranges.end(), [](const SourceRange& a, const SourceRange& b) {
    return a.checkpoint != b.checkpoint ? a.checkpoint < b.checkpoint : a.data < b.data;
  });
  size_t kept = 0;
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (kept > 0 && ranges[kept - 1].checkpoint == ranges[i].checkpoint &&
        ranges[i].data <= ranges[kept - 1].data + ranges[kept - 1].size + gap &&
        same_file(ranges[kept - 1], ranges[i])) {
      SourceRange& last = ranges[kept - 1];
      const uint8_t* end = std::max(last.data + last.size, ranges[i].data + ranges[i].size);
      last.size = static_cast<uint64_t>(end - last.data);
      continue;
    }
    ranges[kept++] = ranges[i];
  }
  ranges.resize(kept);
}

// Reads the ranges that are mostly not in the page cache into `staging` (unbuffered), as far
// as it has room, records them in `staged`, and clears `ranges`.
template <typename Staged>
void stage_sources(std::vector<SourceRange>& ranges, const AlignedBuffer& staging,
                   std::vector<Staged>* staged) {
  merge(ranges, kStagingGapBytes);
  uint64_t used = 0;
  for (const SourceRange& range : ranges) {
    uint64_t offset = 0;
    const MappedFile* file = range.checkpoint->locate(range.data, &offset);
    if (file == nullptr || file->resident_share(offset, range.size) >= 0.5) continue;
    const uint64_t span = MappedFile::unbuffered_span(offset, range.size);
    if (used + span > staging.size()) continue;
    const uint8_t* copy = file->read_unbuffered(offset, range.size, staging.data() + used);
    if (copy == nullptr) continue;
    staged->push_back({range.data, range.data + range.size, copy});
    used += span;
  }
  ranges.clear();
}

// Drops the source pages a block read, merging neighbouring ranges into one call each.
void release(std::vector<SourceRange>& touched) {
  merge(touched, 0);
  for (const SourceRange& range : touched) range.checkpoint->release(range.data, range.size);
}

// True when a piece of the recipe reads the view's last dim with a source stride other than
// 1 (a transpose): one element per source row.
bool reads_across_rows(const TensorRecipe& recipe) {
  for (const Piece& piece : recipe.pieces)
    if (piece.source != Piece::kZeros && !piece.source_strides.empty() &&
        piece.source_strides.back() != 1)
      return true;
  return false;
}

void fill_zeros(uint8_t* target, const Shape& strides, const Shape& sizes, int element_size) {
  // A zero source broadcast over the box: stride 0 reads the same zero element.
  static const uint8_t kZero[16] = {};
  copy_strided(target, strides, kZero, Shape(sizes.size(), 0), sizes, element_size);
}

// Slow path for sources stored in several chunks or with non-contiguous strides, and for
// generated sources: element runs through MappedCheckpoint::read_elements or the generator.
ElementReader element_reader(const SourceRef& source) {
  return [&source](int64_t first, int64_t count, uint8_t* out) {
    if (source.generate)
      source.generate(first, count, out);
    else
      source.checkpoint->read_elements(*source.tensor, first, count, out);
  };
}

}  // namespace

BlockBuilder::BlockBuilder(const ExecutionPlan& plan, const FilePlan& file_plan,
                           uint64_t block_bytes, BandMemory* band_memory)
    : plan_(plan), file_plan_(file_plan) {
  block_bytes_ = std::max<uint64_t>(File::kDirectAlignment,
                                    block_bytes / File::kDirectAlignment * File::kDirectAlignment);
  need_crc_.assign(file_plan.placements.size(), false);
  for (const Crc32Patch& patch : file_plan.crc_patches) need_crc_.at(patch.placement) = true;
  extents_.resize(file_plan.files.size());
  literal_extents_.resize(file_plan.files.size());
  for (size_t p = 0; p < file_plan.placements.size(); ++p) {
    const TensorPlacement& placement = file_plan.placements[p];
    const TensorRecipe& recipe = plan.recipes[placement.tensor];
    const uint64_t size =
        static_cast<uint64_t>(num_elements(recipe.view_shape) * dtype_size(recipe.dtype));
    if (size > 0)
      extents_[placement.file].push_back({placement.byte_offset, placement.byte_offset + size, p});
  }
  for (size_t f = 0; f < file_plan.files.size(); ++f) {
    const auto& literals = file_plan.files[f].literals;
    for (size_t l = 0; l < literals.size(); ++l)
      if (!literals[l].bytes.empty())
        literal_extents_[f].push_back(
            {literals[l].offset, literals[l].offset + literals[l].bytes.size(), l});
  }
  auto by_begin = [](const Extent& a, const Extent& b) { return a.begin < b.begin; };
  for (auto& list : extents_) std::sort(list.begin(), list.end(), by_begin);
  for (auto& list : literal_extents_) std::sort(list.begin(), list.end(), by_begin);
  band_memory_ = band_memory;
  if (band_memory_ == nullptr) {
    own_band_memory_ = std::make_unique<BandMemory>(kBandBuilders, kBandBlocks * block_bytes_);
    band_memory_ = own_band_memory_.get();
  }
  band_elements_.assign(file_plan.placements.size(), 0);
  for (size_t p = 0; p < file_plan.placements.size(); ++p)
    if (reads_across_rows(plan.recipes[file_plan.placements[p].tensor]))
      band_elements_[p] = band_elements(p);
  bands_ = std::make_unique<BandCache>(kBandsKept, *band_memory_);
  for (size_t f = 0; f < file_plan.files.size(); ++f)
    for (uint64_t offset = 0; offset < file_plan.files[f].size_bytes; offset += block_bytes_)
      blocks_.push_back({static_cast<uint32_t>(f), offset,
                         std::min(block_bytes_, file_plan.files[f].size_bytes - offset)});
}

void BlockBuilder::build(size_t index, const AlignedBuffer& buffer, const AlignedBuffer& staging,
                         std::vector<CrcPart>* crcs) const {
  SourceAccess access;
  collect_sources(index, buffer, &access);
  stage_sources(access.touched, staging, &access.staged);
  build_block(index, buffer, crcs, &access);
  release(access.touched);
}

uint64_t BlockBuilder::padded_size(const Block& block) {
  return (block.size_bytes + File::kDirectAlignment - 1) / File::kDirectAlignment *
         File::kDirectAlignment;
}

// The extents of a list sorted by `begin` (and disjoint) that overlap [begin, end).
BlockBuilder::ExtentRange BlockBuilder::overlapping(const std::vector<Extent>& list, uint64_t begin,
                                                    uint64_t end) {
  const Extent* const list_end = list.data() + list.size();
  const Extent* first =
      std::partition_point(list.data(), list_end, [&](const Extent& e) { return e.end <= begin; });
  const Extent* last = first;
  while (last != list_end && last->begin < end) ++last;
  return ExtentRange{first, last};
}

// Records in access->touched the source ranges block `index` reads, copying nothing.
void BlockBuilder::collect_sources(size_t index, const AlignedBuffer& buffer,
                                   SourceAccess* access) const {
  const Block& block = blocks_[index];
  const uint64_t block_end = block.offset + block.size_bytes;
  access->collect_only = true;
  for (const Extent& extent : overlapping(extents_[block.file], block.offset, block_end)) {
    const uint64_t begin = std::max(extent.begin, block.offset);
    const uint64_t end = std::min(extent.end, block_end);
    fill_placement(extent.index, begin - extent.begin, end - extent.begin,
                   buffer.data() + (begin - block.offset), access);
  }
  access->collect_only = false;
}

std::vector<SourceRange> BlockBuilder::read_ranges(size_t index,
                                                   const AlignedBuffer& scratch) const {
  SourceAccess access;
  access.collect_bands = true;
  collect_sources(index, scratch, &access);
  return std::move(access.touched);
}

std::vector<size_t> BlockBuilder::placements_in(size_t index) const {
  const Block& block = blocks_[index];
  std::vector<size_t> placements;
  for (const Extent& extent :
       overlapping(extents_[block.file], block.offset, block.offset + block.size_bytes))
    placements.push_back(extent.index);
  return placements;
}

// Builds block `index` in `buffer`: the file's bytes [offset, offset + size_bytes), then
// zeros up to the next multiple of the alignment. Appends the CRC parts of the placements
// that need one, in file order, and the source ranges it read to access->touched.
void BlockBuilder::build_block(size_t index, const AlignedBuffer& buffer,
                               std::vector<CrcPart>* crcs, SourceAccess* access) const {
  const Block& block = blocks_[index];
  const uint64_t block_end = block.offset + block.size_bytes;
  uint8_t* out = buffer.data();
  // Literals never overlap tensors; what neither covers (padding) is zeros.
  std::vector<std::pair<uint64_t, uint64_t>> filled;
  const auto& literals = file_plan_.files[block.file].literals;
  for (const Extent& extent : overlapping(literal_extents_[block.file], block.offset, block_end)) {
    const uint64_t begin = std::max(extent.begin, block.offset),
                   end = std::min(extent.end, block_end);
    std::memcpy(out + (begin - block.offset),
                literals[extent.index].bytes.data() + (begin - extent.begin), end - begin);
    filled.push_back({begin, end});
  }
  for (const Extent& extent : overlapping(extents_[block.file], block.offset, block_end)) {
    const uint64_t begin = std::max(extent.begin, block.offset),
                   end = std::min(extent.end, block_end);
    fill_placement(extent.index, begin - extent.begin, end - extent.begin,
                   out + (begin - block.offset), access);
    filled.push_back({begin, end});
    if (need_crc_[extent.index])
      crcs->push_back(
          {extent.index, crc32_update(0, out + (begin - block.offset), end - begin), end - begin});
  }
  std::sort(filled.begin(), filled.end());
  uint64_t covered = block.offset;  // bytes before this are filled
  auto zero_until = [&](uint64_t position) {
    if (position > covered) std::memset(out + (covered - block.offset), 0, position - covered);
  };
  for (const auto& [begin, end] : filled) {
    zero_until(begin);
    covered = std::max(covered, end);
  }
  zero_until(block.offset + padded_size(block));
}

// Writes bytes [begin, end) of placement `p`'s tensor (row-major) to `out`. Elements cut
// by the block edges are built whole in a scratch buffer and copied in part.
void BlockBuilder::fill_placement(size_t p, uint64_t begin, uint64_t end, uint8_t* out,
                                  SourceAccess* access) const {
  const TensorRecipe& recipe = plan_.recipes[file_plan_.placements[p].tensor];
  const uint64_t element_size = static_cast<uint64_t>(dtype_size(recipe.dtype));
  uint64_t first = (begin + element_size - 1) / element_size;  // first whole element
  uint64_t last = end / element_size;                          // one past the last whole element
  if (first > last) {                                          // the range lies inside one element
    uint8_t scratch[16];
    fill_elements(recipe, p, begin / element_size, 1, scratch, access);
    std::memcpy(out, scratch + begin % element_size, end - begin);
    return;
  }
  if (begin % element_size != 0) {
    uint8_t scratch[16];
    fill_elements(recipe, p, first - 1, 1, scratch, access);
    std::memcpy(out, scratch + begin % element_size, element_size - begin % element_size);
  }
  fill_elements(recipe, p, static_cast<int64_t>(first), static_cast<int64_t>(last - first),
                out + (first * element_size - begin), access);
  if (end % element_size != 0) {
    uint8_t scratch[16];
    fill_elements(recipe, p, last, 1, scratch, access);
    std::memcpy(out + (last * element_size - begin), scratch, end % element_size);
  }
}

// Writes elements [first, first + count) of the recipe's view (row-major) to `out`.
void BlockBuilder::fill_elements(const TensorRecipe& recipe, size_t p, int64_t first, int64_t count,
                                 uint8_t* out, SourceAccess* access) const {
  if (count <= 0) return;
  if (recipe.cast_from && *recipe.cast_from != recipe.dtype) {
    // Moved in the source dtype into scratch (count elements: bounded by the block), then
    // converted into place.
    thread_local std::vector<uint8_t> scratch;
    scratch.resize(static_cast<size_t>(count * dtype_size(*recipe.cast_from)));
    fill_moved_elements(recipe, p, first, count, scratch.data(), access);
    if (!access->collect_only)
      convert_floats(*recipe.cast_from, scratch.data(), recipe.dtype, out, count);
    return;
  }
  fill_moved_elements(recipe, p, first, count, out, access);
}

// fill_elements without the cast: elements of piece_dtype(recipe). A banded placement's
// come from its bands, which read their sources themselves: the collect pass records none,
// unless it collects for read_ranges.
void BlockBuilder::fill_moved_elements(const TensorRecipe& recipe, size_t p, int64_t first,
                                       int64_t count, uint8_t* out, SourceAccess* access) const {
  if (band_elements_[p] > 0) {
    if (!access->collect_only) {
      copy_from_bands(recipe, p, first, count, out);
    } else if (access->collect_bands) {
      const int64_t per_band = band_elements_[p];
      const int64_t total = num_elements(recipe.view_shape);
      const auto [first_band, last_band] = bands_built(recipe, p, first, count);
      for (int64_t band = first_band; band <= last_band; ++band)
        fill_unbanded(recipe, p, band * per_band, std::min(per_band, total - band * per_band), out,
                      access);
    }
    return;
  }
  fill_unbanded(recipe, p, first, count, out, access);
}

// Builds band `band` of placement `p` (see band_elements) at `out`, reading its sources
// through the mappings and releasing the pages read.
void BlockBuilder::build_band(const TensorRecipe& recipe, size_t p, int64_t band,
                              uint8_t* out) const {
  const int64_t first = band * band_elements_[p];
  const int64_t count = std::min(band_elements_[p], num_elements(recipe.view_shape) - first);
  SourceAccess access;
  fill_unbanded(recipe, p, first, count, out, &access);
  release(access.touched);
}

// fill_moved_elements of a placement without bands.
void BlockBuilder::fill_unbanded(const TensorRecipe& recipe, size_t p, int64_t first, int64_t count,
                                 uint8_t* out, SourceAccess* access) const {
  const Shape& view = recipe.view_shape;
  if (view.empty()) {  // a scalar: one element, one tile
    run_tile(recipe, p, Tile{0, 0, 0, 1}, out, access);
    return;
  }
  const int64_t element_size = dtype_size(piece_dtype(recipe));
  const int64_t row = view.back();
  if (view.size() >= 2 && row > 1 && (first % row != 0 || (first + count) % row != 0) &&
      reads_across_rows(recipe)) {
    // A partial row of a transposed piece reads one element from each of up to `row` source
    // rows, a cache (and TLB) miss each. Built as part of the whole rows around it, it
    // shares those misses with its neighbours: fill the whole rows in scratch and copy the
    // range out.
    const int64_t begin = first / row * row, end = (first + count + row - 1) / row * row;
    thread_local std::vector<uint8_t> rows;
    rows.resize(static_cast<size_t>((end - begin) * element_size));
    fill_tiles(recipe, p, begin, end - begin, rows.data(), access);
    if (!access->collect_only)
      std::memcpy(out, rows.data() + (first - begin) * element_size,
                  static_cast<size_t>(count * element_size));
    return;
  }
  fill_tiles(recipe, p, first, count, out, access);
}

// fill_moved_elements over the whole-index tiles of the range.
void BlockBuilder::fill_tiles(const TensorRecipe& recipe, size_t p, int64_t first, int64_t count,
                              uint8_t* out, SourceAccess* access) const {
  const Shape& view = recipe.view_shape;
  const int64_t element_size = dtype_size(piece_dtype(recipe));
  const Shape view_strides = contiguous_strides(view);
  split_into_tiles(view, 0, 0, first, count, [&](const Tile& tile) {
    int64_t tile_first = tile.begin * view_strides[tile.dim];
    int64_t outer = tile.outer;
    for (size_t d = tile.dim; d-- > 0;) {
      tile_first += (outer % view[d]) * view_strides[d];
      outer /= view[d];
    }
    run_tile(recipe, p, tile, out + (tile_first - first) * element_size, access);
  });
}

// Fills the tile's elements (contiguous in the view) at `out`.
void BlockBuilder::run_tile(const TensorRecipe& recipe, size_t p, const Tile& tile, uint8_t* out,
                            SourceAccess* access) const {
  const std::vector<SourceRef>& sources = plan_.sources[file_plan_.placements[p].tensor];
  const Shape& view = recipe.view_shape;
  const size_t rank = view.size();
  const int element_size = dtype_size(piece_dtype(recipe));
  const Shape view_strides = contiguous_strides(view);

  Shape low(rank), high(rank);
  if (rank > 0) {
    int64_t outer = tile.outer;
    for (size_t d = tile.dim; d-- > 0;) {
      low[d] = outer % view[d];
      high[d] = low[d] + 1;
      outer /= view[d];
    }
    low[tile.dim] = tile.begin;
    high[tile.dim] = tile.end;
    for (size_t d = tile.dim + 1; d < rank; ++d) {
      low[d] = 0;
      high[d] = view[d];
    }
  }
  int64_t tile_first = 0;
  for (size_t d = 0; d < rank; ++d) tile_first += low[d] * view_strides[d];

  Shape sub_low(rank), sub_sizes(rank);
  for (const Piece& piece : recipe.pieces) {
    bool empty = false;
    for (size_t d = 0; d < rank; ++d) {
      sub_low[d] = std::max(low[d], piece.offsets[d]);
      const int64_t sub_high = std::min(high[d], piece.offsets[d] + piece.sizes[d]);
      sub_sizes[d] = sub_high - sub_low[d];
      if (sub_sizes[d] <= 0) empty = true;
    }
    if (empty) continue;
    int64_t target_first = -tile_first;
    for (size_t d = 0; d < rank; ++d) target_first += sub_low[d] * view_strides[d];
    uint8_t* target = out + target_first * element_size;
    if (piece.source == Piece::kZeros) {
      if (!access->collect_only) fill_zeros(target, view_strides, sub_sizes, element_size);
      continue;
    }
    int64_t source_first = piece.source_offset;
    int64_t reach = 0;  // elements from the first source element to the last one read
    for (size_t d = 0; d < rank; ++d) {
      source_first += (sub_low[d] - piece.offsets[d]) * piece.source_strides[d];
      reach += (sub_sizes[d] - 1) * piece.source_strides[d];
    }
    const SourceRef& source = sources[piece.source];
    const uint8_t* base =
        source.generate ? nullptr : source.checkpoint->contiguous_data(*source.tensor);
    if (base != nullptr) {
      const uint8_t* first = base + source_first * element_size;
      const uint64_t size = static_cast<uint64_t>((reach + 1) * element_size);
      access->touched.push_back({source.checkpoint, first, size});
      if (access->collect_only) continue;
      const uint8_t* data = access->translate(first, size);
      if (data == first && size > band_memory_->stripe_bytes()) {
        copy_in_stripes(target, view_strides, *source.checkpoint, first, piece.source_strides,
                        sub_sizes, element_size, band_memory_->stripe_bytes());
      } else {
        copy_strided(target, view_strides, data, piece.source_strides, sub_sizes, element_size);
      }
    } else if (!access->collect_only) {
      copy_strided_runs(target, view_strides, element_reader(source), source_first,
                        piece.source_strides, sub_sizes, element_size);
      if (!source.generate)
        source.checkpoint->release_elements(*source.tensor, source_first, reach + 1);
    }
  }
}

}  // namespace ckconv
