// The bands of the block builder (see block_builder.h and band_cache.h): which placements
// are built in bands, and how a block copies its range out of them.
#include <algorithm>
#include <cstring>

#include "pipeline/block_builder.h"

namespace ckconv {

// Elements of one band of placement `p` (whole rows of its view, about BandMemory::band_bytes()
// of them), or 0 when the placement is built block by block: when a source is not one contiguous
// mapped run (generated, dequantized or chunked sources take their own paths) or the tensor
// fits in one block (nothing to share).
int64_t BlockBuilder::band_elements(size_t p) const {
  const size_t tensor = file_plan_.placements[p].tensor;
  const TensorRecipe& recipe = plan_.recipes[tensor];
  const Shape& view = recipe.view_shape;
  if (view.size() < 2 || view.back() <= 0) return 0;
  const std::vector<SourceRef>& sources = plan_.sources[tensor];
  for (const Piece& piece : recipe.pieces) {
    if (piece.source == Piece::kZeros) continue;
    const SourceRef& source = sources[piece.source];
    if (source.generate || source.checkpoint->contiguous_data(*source.tensor) == nullptr) return 0;
  }
  const uint64_t element_size = static_cast<uint64_t>(dtype_size(piece_dtype(recipe)));
  const uint64_t row_bytes = static_cast<uint64_t>(view.back()) * element_size;
  if (static_cast<uint64_t>(num_elements(view)) * element_size <= block_bytes_) return 0;
  const uint64_t rows = std::max<uint64_t>(1, band_memory_->band_bytes() / row_bytes);
  return static_cast<int64_t>(rows) * view.back();
}

std::pair<int64_t, int64_t> BlockBuilder::bands_built(const TensorRecipe& recipe, size_t p,
                                                      int64_t first, int64_t count) const {
  const int64_t per_band = band_elements_[p];
  const int64_t bands = (num_elements(recipe.view_shape) + per_band - 1) / per_band;
  return {first / per_band, std::min((first + count - 1) / per_band + 1, bands - 1)};
}

// Copies elements [first, first + count) of banded placement `p` (in piece_dtype) from its
// bands to `out`, building the bands missing from the cache.
void BlockBuilder::copy_from_bands(const TensorRecipe& recipe, size_t p, int64_t first,
                                   int64_t count, uint8_t* out) const {
  const int64_t element_size = dtype_size(piece_dtype(recipe));
  const int64_t per_band = band_elements_[p];
  const int64_t total = num_elements(recipe.view_shape);
  auto key = [p](int64_t band) { return (static_cast<uint64_t>(p) << 32) | uint64_t(band); };
  auto bytes = [&](int64_t band) {
    return static_cast<uint64_t>((std::min(total, (band + 1) * per_band) - band * per_band) *
                                 element_size);
  };
  const int64_t last_built = bands_built(recipe, p, first, count).second;
  while (count > 0) {
    const int64_t band = first / per_band;
    const int64_t ahead = std::min(band + 1, last_built);
    const BandCache::Band data = bands_->get(
        key(band), bytes(band), [&](uint8_t* to) { build_band(recipe, p, band, to); }, key(ahead),
        bytes(ahead), ahead == band ? BandCache::Build() : BandCache::Build([&](uint8_t* to) {
          build_band(recipe, p, ahead, to);
        }));
    const int64_t n = std::min(count, (band + 1) * per_band - first);
    std::memcpy(out, data->data() + (first - band * per_band) * element_size,
                static_cast<size_t>(n * element_size));
    out += n * element_size;
    first += n;
    count -= n;
  }
}

}  // namespace ckconv
