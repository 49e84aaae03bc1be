#include "formats/catalog.h"

#include <algorithm>

#include "core/error.h"

namespace ckconv {

const CatalogTensor* Catalog::find(const std::string& name) const {
  for (const auto& tensor : tensors)
    if (tensor.name == name) return &tensor;
  return nullptr;
}

void check_tensor_count(size_t count, const std::string& where) {
  if (count > kMaxCatalogTensors)
    fail_input(where + ": more than " + std::to_string(kMaxCatalogTensors) +
               " tensors, the limit of one checkpoint");
}

bool is_single_contiguous(const CatalogTensor& tensor) {
  if (tensor.chunks.size() != 1) return false;
  const StoredChunk& chunk = tensor.chunks[0];
  if (chunk.sizes != tensor.shape) return false;
  for (int64_t offset : chunk.offsets)
    if (offset != 0) return false;
  Shape expected = contiguous_strides(tensor.shape);
  for (size_t d = 0; d < expected.size(); ++d)
    if (tensor.shape[d] > 1 && chunk.strides[d] != expected[d]) return false;
  return true;
}

void validate_tensor_chunks(const CatalogTensor& tensor, const std::vector<uint64_t>& file_sizes,
                            const std::string& where) {
  const std::string what = where + ": tensor '" + tensor.name + "'";
  const size_t rank = tensor.shape.size();
  if (tensor.chunks.size() > kMaxChunksPerTensor)
    fail_input(what + ": " + std::to_string(tensor.chunks.size()) +
               " chunks, more than the limit of " + std::to_string(kMaxChunksPerTensor));
  int64_t total = checked_num_elements(tensor.shape, what);
  const int64_t element_size = dtype_size(tensor.dtype);
  if (element_size == 0 && total > 0)
    fail_input(what + ": dtype " + std::string(dtype_name(tensor.dtype)) +
               " has no whole-byte element size and cannot be converted");
  int64_t covered = 0;
  for (const StoredChunk& chunk : tensor.chunks) {
    if (chunk.offsets.size() != rank || chunk.sizes.size() != rank || chunk.strides.size() != rank)
      fail_input(what + ": chunk rank does not match the tensor rank " + std::to_string(rank));
    int64_t count = checked_num_elements(chunk.sizes, what);
    int64_t max_index = 0;  // largest element index reachable through the strides
    for (size_t d = 0; d < rank; ++d) {
      int64_t end = 0;
      if (chunk.offsets[d] < 0 || add_overflows(chunk.offsets[d], chunk.sizes[d], &end) ||
          end > tensor.shape[d])
        fail_input(what + ": chunk at " + shape_to_string(chunk.offsets) + " of size " +
                   shape_to_string(chunk.sizes) + " lies outside the tensor shape " +
                   shape_to_string(tensor.shape));
      if (chunk.strides[d] < 0) fail_input(what + ": negative stride");
      int64_t reach = 0;
      if (chunk.sizes[d] > 0 && (mul_overflows(chunk.sizes[d] - 1, chunk.strides[d], &reach) ||
                                 add_overflows(max_index, reach, &max_index)))
        fail_input(what + ": strides overflow");
    }
    if (chunk.file >= file_sizes.size()) fail_input(what + ": chunk names an unknown file");
    if (count > 0) {
      int64_t last_byte = 0;
      if (mul_overflows(max_index + 1, element_size, &last_byte) ||
          chunk.byte_offset > file_sizes[chunk.file] ||
          static_cast<uint64_t>(last_byte) > file_sizes[chunk.file] - chunk.byte_offset)
        fail_input(what + ": stored bytes reach past the end of the file (truncated?)");
    }
    covered += count;
  }
  if (covered != total)
    fail_input(what + ": chunks cover " + std::to_string(covered) + " of " + std::to_string(total) +
               " elements");
  // Disjointness: with the total covered count equal to numel, pairwise-disjoint boxes cover
  // the tensor exactly. Sorting by offsets keeps the pairwise test cheap for the usual
  // row-sharded case.
  if (tensor.chunks.size() > 1) {
    std::vector<const StoredChunk*> sorted;
    for (const auto& chunk : tensor.chunks) sorted.push_back(&chunk);
    std::sort(sorted.begin(), sorted.end(),
              [](const StoredChunk* a, const StoredChunk* b) { return a->offsets < b->offsets; });
    for (size_t i = 0; i < sorted.size(); ++i) {
      for (size_t j = i + 1; j < sorted.size(); ++j) {
        bool overlap = true;
        for (size_t d = 0; d < rank && overlap; ++d) {
          int64_t lo = std::max(sorted[i]->offsets[d], sorted[j]->offsets[d]);
          int64_t hi = std::min(sorted[i]->offsets[d] + sorted[i]->sizes[d],
                                sorted[j]->offsets[d] + sorted[j]->sizes[d]);
          overlap = lo < hi;
        }
        if (overlap && num_elements(sorted[i]->sizes) > 0 && num_elements(sorted[j]->sizes) > 0)
          fail_input(what + ": chunks at " + shape_to_string(sorted[i]->offsets) + " and " +
                     shape_to_string(sorted[j]->offsets) + " overlap");
        if (rank > 0 && sorted[j]->offsets[0] >= sorted[i]->offsets[0] + sorted[i]->sizes[0]) break;
      }
    }
  }
}

}  // namespace ckconv
