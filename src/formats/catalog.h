// The tensor catalog: what every format reader produces. It describes where each tensor's
// bytes live (files, offsets, strides, chunks) without reading any tensor data, so a whole
// conversion can be planned and checked from headers alone (docs/architecture.md: metadata first).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/shape.h"
#include "formats/checkpoint_format.h"

namespace ckconv {

// Most tensors one checkpoint may hold (DeepSeek-V3, the largest family, has ~92k); readers
// refuse more before building them, so a hostile header or pickle cannot list millions.
inline constexpr size_t kMaxCatalogTensors = size_t{1} << 20;
// Most chunks one tensor may be split into: one per rank of the largest training runs (~16k
// GPUs), with room to spare. Bounds the pairwise overlap check of validate_tensor_chunks.
inline constexpr size_t kMaxChunksPerTensor = size_t{1} << 16;
// Throws kBadInput naming `where` when a reader is about to hold more than kMaxCatalogTensors.
void check_tensor_count(size_t count, const std::string& where);

// One stored box of a tensor. The element at box index `i` (0 <= i[d] < sizes[d]) lives at
// byte `byte_offset + sum(i[d] * strides[d]) * dtype_size` of `files[file]`. A tensor saved
// whole has one chunk with offsets 0 and contiguous strides; DCP checkpoints from FSDP/TP runs
// have many chunks, possibly in different files, possibly with non-contiguous strides.
struct StoredChunk {
  Shape offsets;  // position of the box in the whole tensor
  Shape sizes;    // extent of the box
  Shape strides;  // element strides of the stored box
  uint32_t file = 0;
  uint64_t byte_offset = 0;
};

struct CatalogTensor {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  std::vector<StoredChunk> chunks;  // readers guarantee: boxes in bounds, disjoint, covering
};

// An item of the checkpoint that is not a tensor of the state dict (DCP byte items such as
// `train_state.step`, or tensors ckconv was told to ignore). Conversions skip these and the
// report lists them.
struct SkippedItem {
  std::string name;
  std::string reason;
};

struct Catalog {
  CheckpointFormat format = CheckpointFormat::kSafetensors;
  std::filesystem::path path;
  std::vector<std::filesystem::path> files;  // absolute or relative to the working directory
  std::vector<CatalogTensor> tensors;        // in the checkpoint's own order
  std::vector<SkippedItem> skipped;
  std::map<std::string, std::string> metadata;  // safetensors __metadata__ (first file)

  const CatalogTensor* find(const std::string& name) const;
};

// True when the tensor is one chunk covering it with contiguous strides, i.e. its bytes are
// one run in one file.
bool is_single_contiguous(const CatalogTensor& tensor);

// Checks that chunk boxes lie within the tensor, do not overlap and cover it exactly, that
// strides address only bytes within `file_sizes[chunk.file]`; throws kBadInput naming the
// tensor. Readers call this after parsing.
void validate_tensor_chunks(const CatalogTensor& tensor, const std::vector<uint64_t>& file_sizes,
                            const std::string& where);

}  // namespace ckconv
