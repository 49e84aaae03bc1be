// The file plan: what a format writer decides before any tensor byte is written: the output
// files, their sizes, the literal bytes (headers, zip records, index JSON) and the byte offset
// where each tensor's row-major contiguous data goes. The executor then only fills tensor
// bytes, so every format shares one streaming write path.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/shape.h"

namespace ckconv {

struct OutputTensorSpec {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  int64_t size_bytes() const { return num_elements(shape) * dtype_size(dtype); }
};

struct LiteralBytes {
  uint64_t offset = 0;
  std::string bytes;
};

// Where tensor `tensor` (an index into the writer's input list) is stored.
struct TensorPlacement {
  size_t tensor = 0;
  uint32_t file = 0;
  uint64_t byte_offset = 0;
};

// After writing, the executor stores the CRC-32 (zip polynomial) of placement `placement`'s
// bytes as 4 little-endian bytes at `offset` of `file` (zip local descriptors and central
// directory entries need it).
struct Crc32Patch {
  size_t placement = 0;
  uint32_t file = 0;
  uint64_t offset = 0;
};

// One output file of a plan.
struct PlannedFile {
  std::string relative_path;  // relative to the output directory
  uint64_t size_bytes = 0;
  std::vector<LiteralBytes> literals;
};

// Every output file, where each tensor goes, and the CRC-32s to patch in after writing.
struct FilePlan {
  std::vector<PlannedFile> files;
  std::vector<TensorPlacement> placements;
  std::vector<Crc32Patch> crc_patches;
};

}  // namespace ckconv
