// A checkpoint opened for reading tensor bytes: its catalog plus a read-only mapping of each
// of its files. Reads return tensors in logical row-major order whatever the stored layout
// (chunks across files, non-contiguous strides), so callers never see storage details.
#pragma once

#include <memory>
#include <vector>

#include "core/file.h"
#include "formats/catalog.h"

namespace ckconv {

class MappedCheckpoint {
 public:
  explicit MappedCheckpoint(Catalog catalog);
  const Catalog& catalog() const { return catalog_; }
  const MappedFile& file(uint32_t index) const { return *files_[index]; }

  // Copies elements [first, first + count) of `tensor` (logical row-major order) into `out`.
  void read_elements(const CatalogTensor& tensor, int64_t first, int64_t count, uint8_t* out) const;
  // Pointer to the tensor's bytes when it is stored as one contiguous run, else nullptr.
  const uint8_t* contiguous_data(const CatalogTensor& tensor) const;
  // Drops the pages of the byte range [data, data + size) from the resident set.
  void release(const uint8_t* data, uint64_t size) const;
  // The mapped file that holds `data` (a pointer into one of the mappings) and the offset of
  // `data` in it, or nullptr.
  const MappedFile* locate(const uint8_t* data, uint64_t* offset) const;
  // Drops the pages holding elements [first, first + count) of `tensor` (and possibly more
  // of its chunks) from the resident set; callers that stream a tensor through
  // read_elements call it after each read so memory stays flat.
  void release_elements(const CatalogTensor& tensor, int64_t first, int64_t count) const;

 private:
  Catalog catalog_;
  std::vector<std::unique_ptr<MappedFile>> files_;
};

}  // namespace ckconv
