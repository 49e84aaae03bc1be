#include "pipeline/mapped_checkpoint.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace ckconv {

MappedCheckpoint::MappedCheckpoint(Catalog catalog) : catalog_(std::move(catalog)) {
  for (const auto& path : catalog_.files) files_.push_back(std::make_unique<MappedFile>(path));
}

const uint8_t* MappedCheckpoint::contiguous_data(const CatalogTensor& tensor) const {
  if (!is_single_contiguous(tensor)) return nullptr;
  const StoredChunk& chunk = tensor.chunks[0];
  return files_[chunk.file]->data() + chunk.byte_offset;
}

const MappedFile* MappedCheckpoint::locate(const uint8_t* data, uint64_t* offset) const {
  for (const auto& file : files_) {
    if (file->data() != nullptr && data >= file->data() && data < file->data() + file->size()) {
      *offset = static_cast<uint64_t>(data - file->data());
      return file.get();
    }
  }
  return nullptr;
}

void MappedCheckpoint::release(const uint8_t* data, uint64_t size) const {
  uint64_t offset = 0;
  if (const MappedFile* file = locate(data, &offset)) file->release(offset, size);
}

void MappedCheckpoint::release_elements(const CatalogTensor& tensor, int64_t first,
                                        int64_t count) const {
  if (count <= 0) return;
  const int64_t element_size = dtype_size(tensor.dtype);
  if (const uint8_t* base = contiguous_data(tensor)) {
    release(base + first * element_size, static_cast<uint64_t>(count * element_size));
    return;
  }
  // Chunks whose logical bounding range meets [first, first + count): their whole stored
  // extent (a superset of what was read; releasing more only costs a later page fault).
  const size_t rank = tensor.shape.size();
  const Shape logical_strides = contiguous_strides(tensor.shape);
  for (const StoredChunk& chunk : tensor.chunks) {
    int64_t low = 0, high = 0, extent = 0;
    bool empty = false;
    for (size_t d = 0; d < rank; ++d) {
      if (chunk.sizes[d] <= 0) empty = true;
      low += chunk.offsets[d] * logical_strides[d];
      high += (chunk.offsets[d] + chunk.sizes[d] - 1) * logical_strides[d];
      extent += (chunk.sizes[d] - 1) * chunk.strides[d];
    }
    if (empty || high < first || low >= first + count) continue;
    release(files_[chunk.file]->data() + chunk.byte_offset,
            static_cast<uint64_t>((extent + 1) * element_size));
  }
}

void MappedCheckpoint::read_elements(const CatalogTensor& tensor, int64_t first, int64_t count,
                                     uint8_t* out) const {
  const int64_t element_size = dtype_size(tensor.dtype);
  if (const uint8_t* base = contiguous_data(tensor)) {
    std::memcpy(out, base + first * element_size, static_cast<size_t>(count * element_size));
    return;
  }
  // General path: walk the logical range, finding for each position the chunk that holds it
  // and copying the longest run that is contiguous in both the logical order and the chunk.
  const size_t rank = tensor.shape.size();
  const Shape logical_strides = contiguous_strides(tensor.shape);
  Shape index(rank);
  while (count > 0) {
    int64_t rest = first;
    for (size_t d = 0; d < rank; ++d) {
      index[d] = rest / logical_strides[d];
      rest %= logical_strides[d];
    }
    const StoredChunk* holder = nullptr;
    for (const StoredChunk& chunk : tensor.chunks) {
      bool inside = true;
      for (size_t d = 0; d < rank && inside; ++d)
        inside = index[d] >= chunk.offsets[d] && index[d] < chunk.offsets[d] + chunk.sizes[d];
      if (inside) {
        holder = &chunk;
        break;
      }
    }
    if (holder == nullptr)
      fail_input("tensor '" + tensor.name + "': no stored chunk holds element " +
                 std::to_string(first));
    int64_t position = 0;
    for (size_t d = 0; d < rank; ++d)
      position += (index[d] - holder->offsets[d]) * holder->strides[d];
    int64_t run = 1;
    if (rank > 0 && holder->strides[rank - 1] == 1)
      run = holder->offsets[rank - 1] + holder->sizes[rank - 1] - index[rank - 1];
    run = std::min(run, count);
    const uint8_t* source = files_[holder->file]->data() + holder->byte_offset;
    std::memcpy(out, source + position * element_size, static_cast<size_t>(run * element_size));
    out += run * element_size;
    first += run;
    count -= run;
  }
}

}  // namespace ckconv
