// The streaming executor: runs tensor recipes (layout/recipe.h) from mapped source
// checkpoints into the files of an output layout (formats/output_layout.h). Output is built in
// fixed-size tiles, each a contiguous byte range of one output tensor, and written with
// pwrite at its final offset; source pages touched by a tile are released after it is
// written. Peak memory is threads x tile size, whatever the model size. Output bytes do not
// depend on the thread count.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <vector>

#include "formats/output_layout.h"
#include "layout/recipe.h"
#include "pipeline/mapped_checkpoint.h"

namespace ckconv {

// A recipe source: a tensor of a mapped checkpoint, or a generator that produces elements
// [first, first + count) in row-major order (used by `init`).
struct SourceRef {
  const MappedCheckpoint* checkpoint = nullptr;
  const CatalogTensor* tensor = nullptr;
  std::function<void(int64_t first, int64_t count, uint8_t* out)> generate;
};

// recipes[i] is the recipe of the layout's tensor i; sources[i][k] binds recipes[i].sources[k].
struct ExecutionPlan {
  std::vector<TensorRecipe> recipes;
  std::vector<std::vector<SourceRef>> sources;
};

struct ExecuteOptions {
  uint64_t tile_bytes = uint64_t{16} << 20;
  int threads = 1;
  bool sync = true;  // fsync every file before returning
  // Called now and then from worker threads with (bytes done, bytes total).
  std::function<void(uint64_t, uint64_t)> progress;
};

// Creates every file of `layout` in `directory` (which must exist) and fills it. Throws
// Error; on failure the caller removes the directory.
void execute(const ExecutionPlan& plan, const OutputLayout& layout,
             const std::filesystem::path& directory, const ExecuteOptions& options);

// Strided copy kernel, exposed for tests: copies a box of `sizes` elements from `source`
// (element strides `source_strides`) to `target` (element strides `target_strides`).
void copy_strided(uint8_t* target, const Shape& target_strides, const uint8_t* source,
                  const Shape& source_strides, const Shape& sizes, int element_size);

}  // namespace ckconv
