#include "pipeline/executor.h"

#include <sys/mman.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <semaphore>
#include <set>
#include <string>
#include <thread>

#include "core/error.h"
#include "core/file.h"
#include "core/interrupt.h"

namespace ckconv {
namespace {

struct Dim {
  int64_t size;
  int64_t target;
  int64_t source;
};

// Drops unit dims and merges neighbours that are contiguous in both layouts, so a plain
// rename becomes one memcpy and a row permutation becomes a loop of row copies.
std::vector<Dim> simplify(const Shape& sizes, const Shape& target_strides,
                          const Shape& source_strides, bool* empty) {
  std::vector<Dim> dims;
  *empty = false;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 0) *empty = true;
    if (sizes[d] == 1) continue;
    Dim dim{sizes[d], target_strides[d], source_strides[d]};
    if (!dims.empty()) {
      Dim& outer = dims.back();
      if (outer.target == dim.target * dim.size && outer.source == dim.source * dim.size) {
        outer = Dim{outer.size * dim.size, dim.target, dim.source};
        continue;
      }
    }
    dims.push_back(dim);
  }
  return dims;
}

// Calls body(target_offset, source_offset) for every index of dims[0, count), in row-major
// order (offsets in elements).
template <typename Body>
void for_each_outer(const std::vector<Dim>& dims, size_t count, Body body) {
  std::vector<int64_t> index(count, 0);
  int64_t target = 0;
  int64_t source = 0;
  while (true) {
    body(target, source);
    size_t d = count;
    while (d > 0) {
      --d;
      if (++index[d] < dims[d].size) {
        target += dims[d].target;
        source += dims[d].source;
        break;
      }
      target -= dims[d].target * (dims[d].size - 1);
      source -= dims[d].source * (dims[d].size - 1);
      index[d] = 0;
      if (d == 0) return;
    }
    if (count == 0) return;
  }
}

// Copies one element of type T between byte addresses. Sources are mapped files whose tensor
// offsets need not be aligned to T, so the copy goes through memcpy (a plain load and store
// where the target allows unaligned access), never through a T* dereference.
template <typename T>
inline void copy_element(uint8_t* target, const uint8_t* source) {
  T value;
  std::memcpy(&value, source, sizeof(T));
  std::memcpy(target, &value, sizeof(T));
}

template <typename T>
void copy_typed(uint8_t* target, const uint8_t* source, const std::vector<Dim>& dims) {
  constexpr int64_t kSize = sizeof(T);
  const size_t rank = dims.size();
  if (rank >= 2 && dims[rank - 1].target == 1) {
    // Transpose-like: blocked over the last two dims so both sides stay in cache.
    constexpr int64_t kBlock = 32;
    const Dim& rows = dims[rank - 2];
    const Dim& cols = dims[rank - 1];
    for_each_outer(dims, rank - 2, [&](int64_t t0, int64_t s0) {
      for (int64_t i0 = 0; i0 < rows.size; i0 += kBlock) {
        const int64_t i1 = std::min(rows.size, i0 + kBlock);
        for (int64_t j0 = 0; j0 < cols.size; j0 += kBlock) {
          const int64_t j1 = std::min(cols.size, j0 + kBlock);
          for (int64_t i = i0; i < i1; ++i) {
            uint8_t* out = target + (t0 + i * rows.target) * kSize;
            const uint8_t* in = source + (s0 + i * rows.source) * kSize;
            for (int64_t j = j0; j < j1; ++j) copy_element<T>(out + j * kSize, in + j * cols.source * kSize);
          }
        }
      }
    });
    return;
  }
  const Dim& inner = dims[rank - 1];
  for_each_outer(dims, rank - 1, [&](int64_t t0, int64_t s0) {
    for (int64_t j = 0; j < inner.size; ++j) {
      copy_element<T>(target + (t0 + j * inner.target) * kSize, source + (s0 + j * inner.source) * kSize);
    }
  });
}

struct Uint128 {
  uint64_t low, high;
};

}  // namespace

void copy_strided(uint8_t* target, const Shape& target_strides, const uint8_t* source,
                  const Shape& source_strides, const Shape& sizes, int element_size) {
  bool empty = false;
  std::vector<Dim> dims = simplify(sizes, target_strides, source_strides, &empty);
  if (empty) return;
  if (dims.empty()) {
    std::memcpy(target, source, static_cast<size_t>(element_size));
    return;
  }
  const Dim& inner = dims.back();
  if (inner.target == 1 && inner.source == 1) {
    const size_t run = static_cast<size_t>(inner.size * element_size);
    for_each_outer(dims, dims.size() - 1, [&](int64_t t0, int64_t s0) {
      std::memcpy(target + t0 * element_size, source + s0 * element_size, run);
    });
    return;
  }
  switch (element_size) {
    case 1: return copy_typed<uint8_t>(target, source, dims);
    case 2: return copy_typed<uint16_t>(target, source, dims);
    case 4: return copy_typed<uint32_t>(target, source, dims);
    case 8: return copy_typed<uint64_t>(target, source, dims);
    case 16: return copy_typed<Uint128>(target, source, dims);
    default: fail(ErrorKind::kInternal, "unsupported element size " + std::to_string(element_size));
  }
}

namespace {

// One tile: view indices [begin, end) along dim `dim`, at the single index `outer` of the
// dims before it (flattened), all of the dims after it. Its elements are contiguous in the
// row-major view.
struct Tile {
  size_t dim;
  int64_t outer;
  int64_t begin;
  int64_t end;
};

// Splits the row-major element range [first, first + count) of a tensor of shape `view`
// (restricted to index `outer` of the dims before `dim`) into at most 2 x rank tiles, in order.
template <typename Emit>
void split_into_tiles(const Shape& view, size_t dim, int64_t outer, int64_t first, int64_t count,
                      Emit emit) {
  if (count <= 0) return;
  int64_t inner = 1;  // elements of one index along `dim`
  for (size_t d = dim + 1; d < view.size(); ++d) inner *= view[d];
  if (first % inner != 0) {  // head: the end of one index
    const int64_t head = std::min(count, inner - first % inner);
    split_into_tiles(view, dim + 1, outer * view[dim] + first / inner, first % inner, head, emit);
    first += head;
    count -= head;
  }
  if (count >= inner) {
    const int64_t whole = count / inner;
    emit(Tile{dim, outer, first / inner, first / inner + whole});
    first += whole * inner;
    count -= whole * inner;
  }
  if (count > 0) split_into_tiles(view, dim + 1, outer * view[dim] + first / inner, 0, count, emit);
}

// A strided read spanning more source bytes than this (a transpose reads a few columns of
// every source row: one 4 MiB block of llama4's gate_up_proj spans a whole 168 MB expert) is
// copied in stripes of source rows, each released from the mapping once copied, so that the
// source pages a block keeps mapped stay bounded whatever the tensor's size. (Released pages
// stay in the page cache; the next block's columns fault them in again.)
constexpr uint64_t kMaxSparseSpanBytes = uint64_t{48} << 20;

// copy_strided from the mapping of `checkpoint` at `source`, a stripe of rows of the
// largest-stride dimension at a time, releasing each stripe's source span after copying it.
void copy_in_stripes(uint8_t* target, const Shape& target_strides, const MappedCheckpoint& checkpoint,
                     const uint8_t* source, const Shape& source_strides, const Shape& sizes,
                     int element_size) {
  for (int64_t stride : source_strides)
    if (stride < 0) return copy_strided(target, target_strides, source, source_strides, sizes, element_size);
  size_t widest = 0;
  for (size_t d = 0; d < sizes.size(); ++d)
    if (sizes[d] > 1 && (sizes[widest] <= 1 || source_strides[d] > source_strides[widest])) widest = d;
  const int64_t row_bytes = std::max<int64_t>(1, source_strides[widest] * element_size);
  const int64_t rows = std::max<int64_t>(1, static_cast<int64_t>(kMaxSparseSpanBytes) / row_bytes);
  Shape stripe = sizes;
  for (int64_t first = 0; first < sizes[widest]; first += rows) {
    stripe[widest] = std::min(rows, sizes[widest] - first);
    const uint8_t* from = source + first * row_bytes;
    copy_strided(target + first * target_strides[widest] * element_size, target_strides, from, source_strides,
                 stripe, element_size);
    int64_t reach = 0;
    for (size_t d = 0; d < stripe.size(); ++d) reach += (stripe[d] - 1) * source_strides[d];
    checkpoint.release(from, static_cast<uint64_t>((reach + 1) * element_size));
  }
}

// A source byte range read by a block; released from the resident set once the block is
// built.
struct Touched {
  const MappedCheckpoint* checkpoint;
  const uint8_t* data;
  uint64_t size;
};

// How a block reaches its source bytes. A first pass (collect_only) records the ranges the
// block reads; ranges mostly missing from the page cache are then read unbuffered into a
// staging buffer (faulting them into the cache through the mapping is slower; see
// MappedFile::read_unbuffered), and the copy pass reads those from staging, the others
// from the mappings.
struct SourceAccess {
  struct Staged {
    const uint8_t* begin;  // the range in the mapping
    const uint8_t* end;
    const uint8_t* data;  // its copy in the staging buffer
  };
  bool collect_only = false;
  std::vector<Touched> touched;
  std::vector<Staged> staged;

  const uint8_t* translate(const uint8_t* data, uint64_t size) const {
    for (const Staged& range : staged)
      if (data >= range.begin && data + size <= range.end) return range.data + (data - range.begin);
    return data;
  }
};

// A part of a file (a tensor placement or a literal) as [begin, end) file offsets.
struct Extent {
  uint64_t begin;
  uint64_t end;
  size_t index;
};

// CRC-32 of the bytes of one placement inside one block.
struct CrcPart {
  size_t placement;
  uint32_t crc;
  uint64_t size_bytes;
};

// The output is cut into blocks: aligned byte ranges of one file, each built in memory from
// the literals and tensor tiles that overlap it, then written with one large pwrite
// (O_DIRECT when possible). Building blocks in file order keeps writes large, aligned and
// sequential whatever the tensor sizes, and a block's bytes do not depend on the thread
// that builds it.
class Runner {
 public:
  Runner(const ExecutionPlan& plan, const OutputLayout& layout, std::vector<File>& files,
         const ExecuteOptions& options)
      : plan_(plan), layout_(layout), files_(files) {
    block_bytes_ =
        std::max<uint64_t>(File::kDirectAlignment,
                           options.tile_bytes / File::kDirectAlignment * File::kDirectAlignment);
    need_crc_.assign(layout.placements.size(), false);
    for (const Crc32Patch& patch : layout.crc_patches) need_crc_.at(patch.placement) = true;
    extents_.resize(layout.files.size());
    literal_extents_.resize(layout.files.size());
    for (size_t p = 0; p < layout.placements.size(); ++p) {
      const TensorPlacement& placement = layout.placements[p];
      const TensorRecipe& recipe = plan.recipes[placement.tensor];
      const uint64_t size =
          static_cast<uint64_t>(num_elements(recipe.view_shape) * dtype_size(recipe.dtype));
      if (size > 0)
        extents_[placement.file].push_back(
            {placement.byte_offset, placement.byte_offset + size, p});
    }
    for (size_t f = 0; f < layout.files.size(); ++f) {
      const auto& literals = layout.files[f].literals;
      for (size_t l = 0; l < literals.size(); ++l)
        if (!literals[l].bytes.empty())
          literal_extents_[f].push_back(
              {literals[l].offset, literals[l].offset + literals[l].bytes.size(), l});
    }
    auto by_begin = [](const Extent& a, const Extent& b) { return a.begin < b.begin; };
    for (auto& list : extents_) std::sort(list.begin(), list.end(), by_begin);
    for (auto& list : literal_extents_) std::sort(list.begin(), list.end(), by_begin);
    for (size_t f = 0; f < layout.files.size(); ++f)
      for (uint64_t offset = 0; offset < layout.files[f].size_bytes; offset += block_bytes_)
        blocks_.push_back({static_cast<uint32_t>(f), offset,
                           std::min(block_bytes_, layout.files[f].size_bytes - offset)});
  }

  struct Block {
    uint32_t file;
    uint64_t offset;
    uint64_t size_bytes;
  };
  const std::vector<Block>& blocks() const { return blocks_; }
  uint64_t block_bytes() const { return block_bytes_; }

  // Builds block `index` in `buffer`: the file's bytes [offset, offset + size_bytes), then
  // zeros up to the next multiple of the alignment. Appends the CRC parts of the placements
  // that need one, in file order, and the source ranges it read to access->touched.
  void build_block(size_t index, const AlignedBuffer& buffer, std::vector<CrcPart>* crcs,
                   SourceAccess* access) const {
    const Block& block = blocks_[index];
    const uint64_t block_end = block.offset + block.size_bytes;
    uint8_t* out = buffer.data();
    // Literals never overlap tensors; what neither covers (padding) is zeros.
    std::vector<std::pair<uint64_t, uint64_t>> filled;
    const auto& literals = layout_.files[block.file].literals;
    for (const Extent& extent :
         overlapping(literal_extents_[block.file], block.offset, block_end)) {
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
            {extent.index,
             static_cast<uint32_t>(crc32_z(0, out + (begin - block.offset), end - begin)),
             end - begin});
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

  // Records in access->touched the source ranges block `index` reads, copying nothing.
  void collect_sources(size_t index, const AlignedBuffer& buffer, SourceAccess* access) const {
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

  // Reads the collected ranges that are mostly not in the page cache into `staging`
  // (unbuffered), as far as it has room, and clears the collected ranges.
  static void stage_sources(SourceAccess* access, const AlignedBuffer& staging) {
    std::vector<Touched>& ranges = access->touched;
    merge(ranges, kStagingGapBytes);
    uint64_t used = 0;
    for (const Touched& range : ranges) {
      uint64_t offset = 0;
      const MappedFile* file = range.checkpoint->locate(range.data, &offset);
      if (file == nullptr || file->resident_share(offset, range.size) >= 0.5) continue;
      const uint64_t span = MappedFile::unbuffered_span(offset, range.size);
      if (used + span > staging.size()) continue;
      const uint8_t* copy = file->read_unbuffered(offset, range.size, staging.data() + used);
      if (copy == nullptr) continue;
      access->staged.push_back({range.data, range.data + range.size, copy});
      used += span;
    }
    ranges.clear();
  }

  // The block's size rounded up to the alignment of unbuffered writes.
  static uint64_t padded_size(const Block& block) {
    return (block.size_bytes + File::kDirectAlignment - 1) / File::kDirectAlignment *
           File::kDirectAlignment;
  }

  // Writes block `index`, built in `buffer`; the short last block of a file is written
  // padded when the file is unbuffered, and execute() truncates the file back to its size.
  void write_block(size_t index, const AlignedBuffer& buffer) const {
    const Block& block = blocks_[index];
    File& file = files_[block.file];
    file.write_at(buffer.data(), file.direct() ? padded_size(block) : block.size_bytes,
                  block.offset);
  }

  // Drops the source pages a block read, merging neighbouring ranges into one call each.
  static void release(std::vector<Touched>& touched) {
    merge(touched, 0);
    for (const Touched& range : touched) range.checkpoint->release(range.data, range.size);
  }

 private:
  // Reading a gap this small with its neighbours is cheaper than a second read.
  static constexpr uint64_t kStagingGapBytes = uint64_t{64} << 10;

  static bool same_file(const Touched& a, const Touched& b) {
    uint64_t offset = 0;
    return a.checkpoint->locate(a.data, &offset) == b.checkpoint->locate(b.data, &offset);
  }

  // Sorts the ranges and merges those of one file less than `gap` bytes apart.
  static void merge(std::vector<Touched>& ranges, uint64_t gap) {
    std::sort(ranges.begin(), ranges.end(), [](const Touched& a, const Touched& b) {
      return a.checkpoint != b.checkpoint ? a.checkpoint < b.checkpoint : a.data < b.data;
    });
    size_t kept = 0;
    for (size_t i = 0; i < ranges.size(); ++i) {
      if (kept > 0 && ranges[kept - 1].checkpoint == ranges[i].checkpoint &&
          ranges[i].data <= ranges[kept - 1].data + ranges[kept - 1].size + gap &&
          same_file(ranges[kept - 1], ranges[i])) {
        Touched& last = ranges[kept - 1];
        const uint8_t* end = std::max(last.data + last.size, ranges[i].data + ranges[i].size);
        last.size = static_cast<uint64_t>(end - last.data);
        continue;
      }
      ranges[kept++] = ranges[i];
    }
    ranges.resize(kept);
  }

  struct ExtentRange {
    const Extent* first;
    const Extent* last;
    const Extent* begin() const { return first; }
    const Extent* end() const { return last; }
  };
  // The extents of a list sorted by `begin` (and disjoint) that overlap [begin, end).
  static ExtentRange overlapping(const std::vector<Extent>& list, uint64_t begin, uint64_t end) {
    const Extent* const list_end = list.data() + list.size();
    const Extent* first = std::partition_point(list.data(), list_end,
                                               [&](const Extent& e) { return e.end <= begin; });
    const Extent* last = first;
    while (last != list_end && last->begin < end) ++last;
    return ExtentRange{first, last};
  }

  // Writes bytes [begin, end) of placement `p`'s tensor (row-major) to `out`. Elements cut
  // by the block edges are built whole in a scratch buffer and copied in part.
  void fill_placement(size_t p, uint64_t begin, uint64_t end, uint8_t* out,
                      SourceAccess* access) const {
    const TensorRecipe& recipe = plan_.recipes[layout_.placements[p].tensor];
    const uint64_t element_size = static_cast<uint64_t>(dtype_size(recipe.dtype));
    uint64_t first = (begin + element_size - 1) / element_size;  // first whole element
    uint64_t last = end / element_size;                          // one past the last whole element
    if (first > last) {  // the range lies inside one element
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
  void fill_elements(const TensorRecipe& recipe, size_t p, int64_t first, int64_t count,
                     uint8_t* out, SourceAccess* access) const {
    if (count <= 0) return;
    const Shape& view = recipe.view_shape;
    if (view.empty()) {  // a scalar: one element, one tile
      run_tile(recipe, p, Tile{0, 0, 0, 1}, out, access);
      return;
    }
    const int64_t element_size = dtype_size(recipe.dtype);
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
  void run_tile(const TensorRecipe& recipe, size_t p, const Tile& tile, uint8_t* out,
                SourceAccess* access) const {
    const std::vector<SourceRef>& sources = plan_.sources[layout_.placements[p].tensor];
    const Shape& view = recipe.view_shape;
    const size_t rank = view.size();
    const int element_size = dtype_size(recipe.dtype);
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
        if (data == first && size > kMaxSparseSpanBytes) {
          copy_in_stripes(target, view_strides, *source.checkpoint, first, piece.source_strides, sub_sizes,
                          element_size);
        } else {
          copy_strided(target, view_strides, data, piece.source_strides, sub_sizes, element_size);
        }
      } else if (!access->collect_only) {
        copy_from_chunks(target, view_strides, source, source_first, piece.source_strides,
                         sub_sizes, element_size);
        if (!source.generate)
          source.checkpoint->release_elements(*source.tensor, source_first, reach + 1);
      }
    }
  }

  static void fill_zeros(uint8_t* target, const Shape& strides, const Shape& sizes, int element_size) {
    // A zero source broadcast over the box: stride 0 reads the same zero element.
    static const uint8_t kZero[16] = {};
    copy_strided(target, strides, kZero, Shape(sizes.size(), 0), sizes, element_size);
  }

  // Slow path for sources stored in several chunks or with non-contiguous strides: copy run
  // by run through MappedCheckpoint::read_elements.
  static void copy_from_chunks(uint8_t* target, const Shape& target_strides, const SourceRef& source,
                               int64_t source_first, const Shape& source_strides,
                               const Shape& sizes, int element_size) {
    auto read = [&](int64_t first, int64_t count, uint8_t* out) {
      if (source.generate) source.generate(first, count, out);
      else source.checkpoint->read_elements(*source.tensor, first, count, out);
    };
    bool empty = false;
    std::vector<Dim> dims = simplify(sizes, target_strides, source_strides, &empty);
    if (empty) return;
    if (dims.empty()) {
      read(source_first, 1, target);
      return;
    }
    const Dim inner = dims.back();
    for_each_outer(dims, dims.size() - 1, [&](int64_t t0, int64_t s0) {
      if (inner.target == 1 && inner.source == 1) {
        read(source_first + s0, inner.size, target + t0 * element_size);
        return;
      }
      for (int64_t j = 0; j < inner.size; ++j)
        read(source_first + s0 + j * inner.source, 1, target + (t0 + j * inner.target) * element_size);
    });
  }

  const ExecutionPlan& plan_;
  const OutputLayout& layout_;
  std::vector<File>& files_;
  uint64_t block_bytes_ = 0;
  std::vector<bool> need_crc_;
  std::vector<std::vector<Extent>> extents_;          // per file: tensor placements
  std::vector<std::vector<Extent>> literal_extents_;  // per file: literal bytes
  std::vector<Block> blocks_;
};

// XXH64 (github.com/Cyan4973/xxHash, xxhash_spec.md), seed 0: a fast 64-bit hash for
// comparing blocks of two outputs without keeping both (~10 GB/s, so it adds little to a
// conversion that writes at ~2-3 GB/s).
uint64_t hash64(const uint8_t* data, size_t size) {
  constexpr uint64_t kPrime1 = 0x9E3779B185EBCA87ULL, kPrime2 = 0xC2B2AE3D27D4EB4FULL,
                     kPrime3 = 0x165667B19E3779F9ULL, kPrime4 = 0x85EBCA77C2B2AE63ULL,
                     kPrime5 = 0x27D4EB2F165667C5ULL;
  auto rotl = [](uint64_t x, int r) { return (x << r) | (x >> (64 - r)); };
  auto read64 = [](const uint8_t* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;  // little-endian hosts only, like the rest of ckconv's byte handling
  };
  auto round = [&](uint64_t acc, uint64_t input) {
    return rotl(acc + input * kPrime2, 31) * kPrime1;
  };
  auto merge = [&](uint64_t acc, uint64_t value) {
    return (acc ^ round(0, value)) * kPrime1 + kPrime4;
  };
  const uint8_t* p = data;
  const uint8_t* const end = data + size;
  uint64_t hash;
  if (size >= 32) {
    uint64_t v1 = kPrime1 + kPrime2, v2 = kPrime2, v3 = 0, v4 = 0 - kPrime1;
    for (; p + 32 <= end; p += 32) {
      v1 = round(v1, read64(p));
      v2 = round(v2, read64(p + 8));
      v3 = round(v3, read64(p + 16));
      v4 = round(v4, read64(p + 24));
    }
    hash = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
    hash = merge(merge(merge(merge(hash, v1), v2), v3), v4);
  } else {
    hash = kPrime5;
  }
  hash += size;
  for (; p + 8 <= end; p += 8) hash = rotl(hash ^ round(0, read64(p)), 27) * kPrime1 + kPrime4;
  if (p + 4 <= end) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    hash = rotl(hash ^ (uint64_t{v} * kPrime1), 23) * kPrime2 + kPrime3;
    p += 4;
  }
  for (; p < end; ++p) hash = rotl(hash ^ (*p * kPrime5), 11) * kPrime1;
  hash ^= hash >> 33;
  hash *= kPrime2;
  hash ^= hash >> 29;
  hash *= kPrime3;
  hash ^= hash >> 32;
  return hash;
}

void put_u32_le(uint8_t* out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<uint8_t>(value >> (8 * i));
}

// Runs build(block index, buffer, staging) then finish(block index, buffer) for every block.
// Each worker owns one reused block buffer; at most options.threads workers build at once
// (reading sources and copying: the CPU part), each with one of options.threads staging
// buffers, while the others wait on their finish (the block's write or read), so up to
// options.writes_in_flight more blocks are in flight. Reports progress; rethrows the first
// failure.
template <typename Build, typename Finish>
void for_each_block(const Runner& runner, const OutputLayout& layout, const ExecuteOptions& options,
                    Build build, Finish finish) {
  const auto& blocks = runner.blocks();
  uint64_t total_bytes = 0;
  for (const OutputFile& spec : layout.files) total_bytes += spec.size_bytes;
  const int threads = std::max(1, options.threads);
  const size_t workers =
      std::min(blocks.size(), static_cast<size_t>(threads + options.writes_in_flight));
  std::counting_semaphore<> building(threads);
  // Staging buffers are only touched (and so only resident) when sources are not cached.
  std::vector<std::unique_ptr<AlignedBuffer>> staging_free;
  for (int t = 0; t < threads; ++t)
    staging_free.push_back(std::make_unique<AlignedBuffer>(2 * runner.block_bytes()));
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> done_bytes{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first_error;
  std::mutex mutex;
  auto last_report = std::chrono::steady_clock::now();
  auto worker = [&]() {
    try {
      AlignedBuffer buffer(runner.block_bytes());
      while (!failed.load()) {
        throw_if_interrupted();  // SIGINT/SIGTERM/SIGHUP: stop at the next block
        building.acquire();
        std::unique_ptr<AlignedBuffer> staging;
        {
          std::lock_guard<std::mutex> lock(mutex);
          staging = std::move(staging_free.back());
          staging_free.pop_back();
        }
        auto give_back = [&]() {
          {
            std::lock_guard<std::mutex> lock(mutex);
            staging_free.push_back(std::move(staging));
          }
          building.release();
        };
        const size_t index = next.fetch_add(1);
        if (index >= blocks.size()) {
          give_back();
          break;
        }
        try {
          build(index, buffer, *staging);
        } catch (...) {
          give_back();
          throw;
        }
        give_back();
        finish(index, buffer);
        const uint64_t done =
            done_bytes.fetch_add(blocks[index].size_bytes) + blocks[index].size_bytes;
        if (options.progress) {
          std::lock_guard<std::mutex> lock(mutex);
          auto now = std::chrono::steady_clock::now();
          if (now - last_report > std::chrono::milliseconds(500) || done == total_bytes) {
            last_report = now;
            options.progress(done, total_bytes);
          }
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      if (!first_error) first_error = std::current_exception();
      failed = true;
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < workers; ++t) pool.emplace_back(worker);
  worker();
  for (auto& thread : pool) thread.join();
  if (first_error) std::rethrow_exception(first_error);
}

// Builds block `index`: collects its source ranges, stages the uncached ones, copies, and
// drops the source pages it mapped.
void build_with_staging(const Runner& runner, size_t index, const AlignedBuffer& buffer,
                        const AlignedBuffer& staging, std::vector<CrcPart>* crcs) {
  SourceAccess access;
  runner.collect_sources(index, buffer, &access);
  Runner::stage_sources(&access, staging);
  runner.build_block(index, buffer, crcs, &access);
  Runner::release(access.touched);
}

// The CRC-32 of every placement, combined from the per-block parts (blocks are in file
// order, so each placement's parts come in byte order).
std::vector<uint32_t> placement_crcs(const OutputLayout& layout,
                                     const std::vector<std::vector<CrcPart>>& parts) {
  std::vector<uint32_t> crcs(layout.placements.size(), 0);
  for (const auto& block_parts : parts)
    for (const CrcPart& part : block_parts) {
      uint32_t& crc = crcs[part.placement];
      crc = static_cast<uint32_t>(
          crc32_combine(crc, part.crc, static_cast<z_off_t>(part.size_bytes)));
    }
  return crcs;
}

void check_layout(const ExecutionPlan& plan, const OutputLayout& layout) {
  CKCONV_CHECK(plan.recipes.size() == plan.sources.size());
  for (const TensorPlacement& placement : layout.placements) {
    CKCONV_CHECK(placement.tensor < plan.recipes.size() && placement.file < layout.files.size());
    const TensorRecipe& recipe = plan.recipes[placement.tensor];
    CKCONV_CHECK(placement.byte_offset + num_elements(recipe.shape) * dtype_size(recipe.dtype) <=
                 layout.files[placement.file].size_bytes);
  }
}

}  // namespace

void execute(const ExecutionPlan& plan, const OutputLayout& layout,
             const std::filesystem::path& directory, const ExecuteOptions& options) {
  check_layout(plan, layout);
  std::vector<File> files;
  for (const OutputFile& spec : layout.files) {
    std::filesystem::path path = directory / spec.relative_path;
    std::filesystem::create_directories(path.parent_path());
    File file = File::create_unbuffered(path);
    file.allocate(spec.size_bytes);
    file.truncate(spec.size_bytes);
    files.push_back(std::move(file));
  }

  Runner runner(plan, layout, files, options);
  std::vector<std::vector<CrcPart>> crcs(runner.blocks().size());
  if (options.block_digests) options.block_digests->assign(runner.blocks().size(), 0);
  for_each_block(
      runner, layout, options,
      [&](size_t index, const AlignedBuffer& buffer, const AlignedBuffer& staging) {
        build_with_staging(runner, index, buffer, staging, &crcs[index]);
        const auto& block = runner.blocks()[index];
        if (options.block_digests) (*options.block_digests)[index] = hash64(buffer.data(), block.size_bytes);
        if (options.inspect_block) options.inspect_block(block.file, block.offset, buffer.data(), block.size_bytes);
      },
      [&](size_t index, const AlignedBuffer& buffer) { runner.write_block(index, buffer); });

  for (size_t f = 0; f < files.size(); ++f) {
    files[f].stop_direct();
    if (layout.files[f].size_bytes % File::kDirectAlignment != 0)
      files[f].truncate(layout.files[f].size_bytes);
  }
  if (!layout.crc_patches.empty()) {
    const std::vector<uint32_t> crc = placement_crcs(layout, crcs);
    for (const Crc32Patch& patch : layout.crc_patches) {
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

bool matches_files(const ExecutionPlan& plan, const OutputLayout& layout,
                   const std::filesystem::path& directory, const ExecuteOptions& options,
                   const std::vector<uint64_t>* expected_digests) {
  check_layout(plan, layout);
  std::set<std::string> expected_names;
  for (const OutputFile& spec : layout.files) expected_names.insert(spec.relative_path);
  std::error_code error;
  for (auto it = std::filesystem::recursive_directory_iterator(directory, error);
       !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error))
    if (it->is_regular_file() &&
        !expected_names.count(std::filesystem::relative(it->path(), directory).string()))
      return false;
  if (error) return false;
  std::vector<std::unique_ptr<MappedFile>> files;
  for (const OutputFile& spec : layout.files) {
    const std::filesystem::path path = directory / spec.relative_path;
    if (!std::filesystem::is_regular_file(path, error)) return false;
    files.push_back(std::make_unique<MappedFile>(path));
    if (files.back()->size() != spec.size_bytes) return false;
  }

  std::vector<File> no_output;
  Runner runner(plan, layout, no_output, options);
  const auto& blocks = runner.blocks();
  if (expected_digests && expected_digests->size() != blocks.size()) expected_digests = nullptr;

  // The bytes at CRC patch offsets are only known at the end (and digests are taken before
  // they are patched): blocks are compared with those bytes taken from the existing files,
  // and the CRCs are compared last.
  std::vector<std::vector<uint64_t>> patch_offsets(layout.files.size());
  for (const Crc32Patch& patch : layout.crc_patches)
    patch_offsets.at(patch.file).push_back(patch.offset);
  std::vector<std::vector<CrcPart>> crcs(blocks.size());
  std::atomic<bool> equal{true};
  for_each_block(
      runner, layout, options,
      [&](size_t index, const AlignedBuffer& buffer, const AlignedBuffer& staging) {
        if (!equal.load()) return;
        build_with_staging(runner, index, buffer, staging, &crcs[index]);
        if (expected_digests &&
            hash64(buffer.data(), blocks[index].size_bytes) != (*expected_digests)[index])
          equal = false;
      },
      [&](size_t index, const AlignedBuffer& buffer) {
        if (!equal.load() || expected_digests) return;
        const auto& block = blocks[index];
        const MappedFile& file = *files[block.file];
        // Cached bytes are compared in place; others are read unbuffered (see
        // MappedFile::read_unbuffered) into a per-worker buffer.
        const uint8_t* existing = file.data() + block.offset;
        if (file.resident_share(block.offset, block.size_bytes) < 0.5) {
          thread_local std::unique_ptr<AlignedBuffer> scratch;
          const uint64_t span = MappedFile::unbuffered_span(block.offset, block.size_bytes);
          if (!scratch || scratch->size() < span) scratch = std::make_unique<AlignedBuffer>(span);
          if (const uint8_t* copy =
                  file.read_unbuffered(block.offset, block.size_bytes, scratch->data()))
            existing = copy;
        }
        for (uint64_t offset : patch_offsets[block.file])
          for (uint64_t i = offset; i < offset + 4; ++i)
            if (i >= block.offset && i < block.offset + block.size_bytes)
              buffer.data()[i - block.offset] = existing[i - block.offset];
        if (std::memcmp(existing, buffer.data(), block.size_bytes) != 0) equal = false;
        file.release(block.offset, block.size_bytes);
      });
  if (!equal) return false;
  if (!layout.crc_patches.empty()) {
    const std::vector<uint32_t> crc = placement_crcs(layout, crcs);
    for (const Crc32Patch& patch : layout.crc_patches) {
      uint8_t bytes[4];
      put_u32_le(bytes, crc.at(patch.placement));
      if (std::memcmp(bytes, files.at(patch.file)->data() + patch.offset, 4) != 0) return false;
    }
  }
  return true;
}

}  // namespace ckconv
