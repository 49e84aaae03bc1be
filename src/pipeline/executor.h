// The streaming executor: runs tensor recipes (layout/recipe.h) from mapped source
// checkpoints into the files of a file plan (formats/file_plan.h). Each file is
// built in fixed-size aligned blocks (pipeline/block_builder.h: literal bytes, then the
// tensor tiles overlapping the block, zeros elsewhere) by a pool of workers
// (pipeline/block_pool.h), each block written with one pwrite at its offset, unbuffered
// (O_DIRECT) where the file system allows; source pages read for a block are released once
// it is built.
// Peak memory is (3 x threads + writes_in_flight) x block size (block and staging buffers),
// plus the bands of transposed tensors (pipeline/band_cache.h: the band builders plus the
// kept bands, whatever the thread count), whatever the model size. Output bytes do not
// depend on the thread count or the block size.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <vector>

#include "formats/file_plan.h"
#include "layout/recipe.h"
#include "pipeline/mapped_checkpoint.h"

namespace ckconv {

// A recipe source: a tensor of a mapped checkpoint, or a generator that produces elements
// [first, first + count) in row-major order (used by `init`).
class BandMemory;  // pipeline/band_cache.h

struct SourceRef {
  const MappedCheckpoint* checkpoint = nullptr;
  const CatalogTensor* tensor = nullptr;
  std::function<void(int64_t first, int64_t count, uint8_t* out)> generate;
};

// recipes[i] is the recipe of the file plan's tensor i; sources[i][k] binds recipes[i].sources[k].
struct ExecutionPlan {
  std::vector<TensorRecipe> recipes;
  std::vector<std::vector<SourceRef>> sources;
};

// The bytes of sources that another conversion, running alongside, is still writing (verify
// reads its second conversion's output back while that conversion goes on). Implementations
// are thread-safe.
class SourceGate {
 public:
  virtual ~SourceGate() = default;
  // Returns once bytes [offset, offset + size) of the file at `path` are written (at once for
  // a file the writer does not write); throws Error when the writer failed.
  virtual void wait_written(const std::filesystem::path& path, uint64_t offset,
                            uint64_t size) const = 0;
  // A key that grows with the time the writer writes byte `offset` of `path` (0 for a file
  // it does not write).
  virtual uint64_t write_order(const std::filesystem::path& path, uint64_t offset) const = 0;
};

struct ExecuteOptions {
  uint64_t block_bytes = uint64_t{4} << 20;  // block size (rounded down to 4 KiB)
  int threads = 1;                           // blocks built at once
  // Workers beyond `threads`, each with its own block buffer, so that this many more blocks
  // are being written while others are built. The default comes from measurement
  // (docs/benchmarks.md).
  int writes_in_flight = 6;
  bool sync = true;  // fsync every file before returning
  // Write the files through the page cache (verify's scratch outputs that fit in memory,
  // read back at once) instead of unbuffered (File::create_unbuffered).
  bool buffered = false;
  // When set, receives a 64-bit hash (XXH64, from libxxhash) of every block, for matches_files.
  std::vector<uint64_t>* block_digests = nullptr;
  // When set, sees every block once built and before it is written: file index, offset in
  // the file and bytes. Called from the worker threads, concurrently. verify checks tensor
  // bytes here instead of reading the output back.
  std::function<void(uint32_t file, uint64_t offset, const uint8_t* data, uint64_t size)>
      inspect_block;
  // When set, called from the worker threads once each block is written (not for
  // matches_files): file index, offset in the file and size, before the CRC patches.
  std::function<void(uint32_t file, uint64_t offset, uint64_t size)> block_written;
  // When set (matches_files only), each block waits for the source bytes it reads, and the
  // blocks start in the order those bytes are written.
  const SourceGate* source_gate = nullptr;
  // Called now and then from worker threads with (bytes done, bytes total).
  std::function<void(uint64_t, uint64_t)> progress;
  // When set, the bands of transposed tensors are built in this memory (BlockBuilder), which
  // conversions running at once share so that their band memory stays that of one.
  BandMemory* band_memory = nullptr;
};

// Creates every file of `file_plan` in `directory` (which must exist) and fills it. Throws
// Error; on failure the caller removes the directory.
void execute(const ExecutionPlan& plan, const FilePlan& file_plan,
             const std::filesystem::path& directory, const ExecuteOptions& options);

// Builds the bytes execute() would write and, instead of writing them, compares them with
// the files already in `directory`: true when it holds exactly the file plan's files (no more,
// no fewer) with exactly these bytes. Verify uses it for its last conversion, which then
// needs no disk space. With `expected_digests` (the block_digests of the execute() that
// wrote `directory`, with the same block size), blocks are compared by digest and the files'
// bytes are not read again. Throws Error on I/O failures.
bool matches_files(const ExecutionPlan& plan, const FilePlan& file_plan,
                   const std::filesystem::path& directory, const ExecuteOptions& options,
                   const std::vector<uint64_t>* expected_digests = nullptr);

// Waits (SourceGate::wait_written) for every stored byte of `tensor`, a tensor of `checkpoint`.
void wait_for_tensor(const SourceGate& gate, const MappedCheckpoint& checkpoint,
                     const CatalogTensor& tensor);

// The digest ExecuteOptions::block_digests holds for a block's bytes: XXH64 with seed 0.
uint64_t block_digest(const uint8_t* data, size_t size);

}  // namespace ckconv
