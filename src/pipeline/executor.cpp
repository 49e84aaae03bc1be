#include "pipeline/executor.h"

#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/file.h"

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

template <typename T>
void copy_typed(uint8_t* target_bytes, const uint8_t* source_bytes, const std::vector<Dim>& dims) {
  T* target = reinterpret_cast<T*>(target_bytes);
  const T* source = reinterpret_cast<const T*>(source_bytes);
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
            T* out = target + t0 + i * rows.target;
            const T* in = source + s0 + i * rows.source;
            for (int64_t j = j0; j < j1; ++j) out[j] = in[j * cols.source];
          }
        }
      }
    });
    return;
  }
  const Dim& inner = dims[rank - 1];
  for_each_outer(dims, rank - 1, [&](int64_t t0, int64_t s0) {
    for (int64_t j = 0; j < inner.size; ++j) target[t0 + j * inner.target] = source[s0 + j * inner.source];
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
// dims before it (flattened), all of the dims after it.
struct Tile {
  size_t placement;
  size_t dim;
  int64_t outer;
  int64_t begin;
  int64_t end;
};

struct TileResult {
  uint32_t crc = 0;
  uint64_t size_bytes = 0;
};

class Runner {
 public:
  Runner(const ExecutionPlan& plan, const OutputLayout& layout, std::vector<File>& files,
         const ExecuteOptions& options)
      : plan_(plan), layout_(layout), files_(files), options_(options) {}

  std::vector<Tile> make_tiles(uint64_t* total_bytes) const {
    std::vector<Tile> tiles;
    *total_bytes = 0;
    for (size_t p = 0; p < layout_.placements.size(); ++p) {
      const TensorRecipe& recipe = plan_.recipes[layout_.placements[p].tensor];
      const Shape& view = recipe.view_shape;
      const int64_t element_size = dtype_size(recipe.dtype);
      if (num_elements(view) == 0) continue;
      *total_bytes += static_cast<uint64_t>(num_elements(view) * element_size);
      // Smallest dim whose trailing block fits a tile; tiles step along it.
      size_t dim = 0;
      int64_t trailing = num_elements(view) * element_size;
      while (dim < view.size() && static_cast<uint64_t>(trailing) > options_.tile_bytes) {
        trailing /= view[dim];
        ++dim;
      }
      // `trailing` is now the bytes of one step along dim-1; tiles step along dim-1 unless
      // the whole tensor fits (dim == 0).
      if (dim == 0) {
        tiles.push_back(Tile{p, 0, 0, 0, view[0]});
        continue;
      }
      const size_t step_dim = dim - 1;
      const int64_t step_bytes = trailing;  // bytes of one index along step_dim
      const int64_t per_tile =
          std::max<int64_t>(1, static_cast<int64_t>(options_.tile_bytes) / std::max<int64_t>(1, step_bytes));
      int64_t outer_count = 1;
      for (size_t d = 0; d < step_dim; ++d) outer_count *= view[d];
      for (int64_t outer = 0; outer < outer_count; ++outer)
        for (int64_t begin = 0; begin < view[step_dim]; begin += per_tile)
          tiles.push_back(Tile{p, step_dim, outer, begin, std::min(view[step_dim], begin + per_tile)});
    }
    return tiles;
  }

  void run_tile(const Tile& tile, std::vector<uint8_t>& buffer, TileResult* result) const {
    const TensorPlacement& placement = layout_.placements[tile.placement];
    const TensorRecipe& recipe = plan_.recipes[placement.tensor];
    const std::vector<SourceRef>& sources = plan_.sources[placement.tensor];
    const Shape& view = recipe.view_shape;
    const size_t rank = view.size();
    const int element_size = dtype_size(recipe.dtype);
    const Shape view_strides = contiguous_strides(view);

    Shape low(rank), high(rank);
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
    int64_t tile_first = 0;
    for (size_t d = 0; d < rank; ++d) tile_first += low[d] * view_strides[d];
    int64_t tile_count = tile.end - tile.begin;
    for (size_t d = tile.dim + 1; d < rank; ++d) tile_count *= view[d];
    const size_t tile_bytes = static_cast<size_t>(tile_count * element_size);
    if (buffer.size() < tile_bytes) buffer.resize(tile_bytes);
    uint8_t* out = buffer.data();

    std::vector<std::pair<const MappedCheckpoint*, std::pair<const uint8_t*, uint64_t>>> touched;
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
        fill_zeros(target, view_strides, sub_sizes, element_size);
        continue;
      }
      int64_t source_first = piece.source_offset;
      for (size_t d = 0; d < rank; ++d)
        source_first += (sub_low[d] - piece.offsets[d]) * piece.source_strides[d];
      const SourceRef& source = sources[piece.source];
      const uint8_t* base = source.generate ? nullptr : source.checkpoint->contiguous_data(*source.tensor);
      if (base != nullptr) {
        copy_strided(target, view_strides, base + source_first * element_size, piece.source_strides,
                     sub_sizes, element_size);
        int64_t reach = 0;
        for (size_t d = 0; d < rank; ++d) reach += (sub_sizes[d] - 1) * piece.source_strides[d];
        touched.push_back({source.checkpoint,
                           {base + source_first * element_size,
                            static_cast<uint64_t>((reach + 1) * element_size)}});
      } else {
        copy_from_chunks(target, view_strides, source, source_first, piece.source_strides,
                         sub_sizes, element_size);
      }
    }
    File& file = files_[placement.file];
    file.write_at(out, tile_bytes, placement.byte_offset + static_cast<uint64_t>(tile_first * element_size));
    result->size_bytes = tile_bytes;
    result->crc = static_cast<uint32_t>(crc32_z(0, out, tile_bytes));
    for (const auto& [checkpoint, span] : touched) checkpoint->release(span.first, span.second);
  }

 private:
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
  const ExecuteOptions& options_;
};

void put_u32_le(uint8_t* out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<uint8_t>(value >> (8 * i));
}

}  // namespace

void execute(const ExecutionPlan& plan, const OutputLayout& layout,
             const std::filesystem::path& directory, const ExecuteOptions& options) {
  CKCONV_CHECK(plan.recipes.size() == plan.sources.size());
  for (const TensorPlacement& placement : layout.placements) {
    CKCONV_CHECK(placement.tensor < plan.recipes.size() && placement.file < layout.files.size());
    const TensorRecipe& recipe = plan.recipes[placement.tensor];
    CKCONV_CHECK(placement.byte_offset + num_elements(recipe.shape) * dtype_size(recipe.dtype) <=
                 layout.files[placement.file].size_bytes);
  }
  std::vector<File> files;
  for (const OutputFile& spec : layout.files) {
    std::filesystem::path path = directory / spec.relative_path;
    std::filesystem::create_directories(path.parent_path());
    File file = File::create(path);
    file.allocate(spec.size_bytes);
    file.truncate(spec.size_bytes);
    for (const LiteralBytes& literal : spec.literals)
      file.write_at(literal.bytes.data(), literal.bytes.size(), literal.offset);
    files.push_back(std::move(file));
  }

  Runner runner(plan, layout, files, options);
  uint64_t total_bytes = 0;
  const std::vector<Tile> tiles = runner.make_tiles(&total_bytes);
  std::vector<TileResult> results(tiles.size());
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> done_bytes{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first_error;
  std::mutex mutex;
  auto last_report = std::chrono::steady_clock::now();
  auto worker = [&]() {
    std::vector<uint8_t> buffer;
    try {
      while (!failed.load()) {
        const size_t index = next.fetch_add(1);
        if (index >= tiles.size()) break;
        runner.run_tile(tiles[index], buffer, &results[index]);
        const uint64_t done = done_bytes.fetch_add(results[index].size_bytes) + results[index].size_bytes;
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
  const int threads = std::max(1, options.threads);
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& thread : pool) thread.join();
  if (first_error) std::rethrow_exception(first_error);

  if (!layout.crc_patches.empty()) {
    std::vector<uint32_t> crcs(layout.placements.size(), 0);
    for (size_t i = 0; i < tiles.size(); ++i) {
      uint32_t& crc = crcs[tiles[i].placement];
      crc = static_cast<uint32_t>(crc32_combine(crc, results[i].crc, static_cast<z_off_t>(results[i].size_bytes)));
    }
    for (const Crc32Patch& patch : layout.crc_patches) {
      uint8_t bytes[4];
      put_u32_le(bytes, crcs.at(patch.placement));
      files.at(patch.file).write_at(bytes, 4, patch.offset);
    }
  }
  for (File& file : files) {
    if (options.sync) file.sync();
    file.close();
  }
}

}  // namespace ckconv
