// The block builder: cuts the files of a file plan into aligned blocks and builds each
// block's bytes in memory from the literals, the tensor tiles its recipes produce, and zeros
// for the padding. It reads sources but writes nothing; the executor decides what to do
// with a built block (write it, or compare it).
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "core/file.h"
#include "formats/file_plan.h"
#include "pipeline/band_cache.h"
#include "pipeline/executor.h"
#include "pipeline/strided_copy.h"

namespace ckconv {

// A source byte range a block read (in the mapping of `checkpoint`).
struct SourceRange {
  const MappedCheckpoint* checkpoint;
  const uint8_t* data;
  uint64_t size;
};

// The CRC-32 of the bytes of one placement inside one block.
struct CrcPart {
  size_t placement;
  uint32_t crc;
  uint64_t size_bytes;
};

// An aligned byte range [offset, offset + size_bytes) of one output file.
struct Block {
  uint32_t file;
  uint64_t offset;
  uint64_t size_bytes;
};

// Building blocks in file order keeps writes large, aligned and sequential whatever the
// tensor sizes, and a block's bytes do not depend on the thread that builds it: build() is
// const and may run for different blocks on several threads at once.
class BlockBuilder {
 public:
  // `plan` and `file_plan` must outlive the builder; block_bytes is rounded down to a multiple
  // of File::kDirectAlignment (at least one). Every file of size 0 has no block. Bands are
  // built in `band_memory` (which must outlive the builder), else in a BandMemory of the
  // builder's own with kBandBuilders slots.
  BlockBuilder(const ExecutionPlan& plan, const FilePlan& file_plan, uint64_t block_bytes,
               BandMemory* band_memory = nullptr);

  // The BandMemory of a builder without a shared one: two band builders keep a transposing
  // conversion at this machine's disk speed, more would add a band and a source stripe of
  // memory each; bands of 6 blocks map each source page about 7 times per llama4 expert
  // (docs/benchmarks.md).
  static constexpr size_t kBandBuilders = 2;
  static constexpr uint64_t kBandBlocks = 6;

  const std::vector<Block>& blocks() const { return blocks_; }
  uint64_t block_bytes() const { return block_bytes_; }

  // Builds block `index` in `buffer` (block_bytes() long): the file's bytes [offset,
  // offset + size_bytes), then zeros up to padded_size(). Source ranges mostly missing from
  // the page cache are first read unbuffered into `staging` (2 x block_bytes(); faulting
  // them in through the mapping is slower, see MappedFile::read_unbuffered), and the source
  // pages read are released from the mappings afterwards. Appends, in file order, the CRC
  // parts of the placements that have a Crc32Patch. Throws Error on read failures.
  void build(size_t index, const AlignedBuffer& buffer, const AlignedBuffer& staging,
             std::vector<CrcPart>* crcs) const;

  // The mapped source ranges that building block `index` reads when its sources are stored
  // contiguously: its own reads, and for a banded placement those of every band it copies
  // from and of the band after each (which a thread waiting for a band may build ahead).
  // Sources that are not one contiguous mapped run (generated, dequantized, chunked) are not
  // included: callers that need them take the tensor's stored chunks. `scratch` (block_bytes()
  // long) receives unspecified bytes.
  std::vector<SourceRange> read_ranges(size_t index, const AlignedBuffer& scratch) const;

  // The placements (indices into file_plan.placements) with bytes in block `index`, in
  // file order.
  std::vector<size_t> placements_in(size_t index) const;

  // The block's size rounded up to the alignment of unbuffered writes.
  static uint64_t padded_size(const Block& block);

 private:
  // A placement (index into file_plan.placements) or a literal (index into the file's
  // literals) as [begin, end) file offsets.
  struct Extent {
    uint64_t begin;
    uint64_t end;
    size_t index;
  };
  struct ExtentRange;
  struct SourceAccess;

  // Bands (see band_cache.h): a placement whose tensor is transposed from mapped sources
  // and spans more than one block is built BandMemory::band_bytes() worth of whole rows at a
  // time, and its blocks copy from the bands; at most kBandsKept built bands are
  // kept.
  static constexpr size_t kBandsKept = 2;
  int64_t band_elements(size_t p) const;
  // The bands copy_from_bands may build for elements [first, first + count) of banded
  // placement `p`: those holding the elements and the one after the last (built ahead by a
  // thread waiting for a band), as [first band, last band].
  std::pair<int64_t, int64_t> bands_built(const TensorRecipe& recipe, size_t p, int64_t first,
                                          int64_t count) const;
  void copy_from_bands(const TensorRecipe& recipe, size_t p, int64_t first, int64_t count,
                       uint8_t* out) const;
  void build_band(const TensorRecipe& recipe, size_t p, int64_t band, uint8_t* out) const;

  static ExtentRange overlapping(const std::vector<Extent>& list, uint64_t begin, uint64_t end);
  void collect_sources(size_t index, const AlignedBuffer& buffer, SourceAccess* access) const;
  void build_block(size_t index, const AlignedBuffer& buffer, std::vector<CrcPart>* crcs,
                   SourceAccess* access) const;
  void fill_placement(size_t p, uint64_t begin, uint64_t end, uint8_t* out,
                      SourceAccess* access) const;
  void fill_elements(const TensorRecipe& recipe, size_t p, int64_t first, int64_t count,
                     uint8_t* out, SourceAccess* access) const;
  void fill_moved_elements(const TensorRecipe& recipe, size_t p, int64_t first, int64_t count,
                           uint8_t* out, SourceAccess* access) const;
  void fill_unbanded(const TensorRecipe& recipe, size_t p, int64_t first, int64_t count,
                     uint8_t* out, SourceAccess* access) const;
  void fill_tiles(const TensorRecipe& recipe, size_t p, int64_t first, int64_t count, uint8_t* out,
                  SourceAccess* access) const;
  void run_tile(const TensorRecipe& recipe, size_t p, const Tile& tile, uint8_t* out,
                SourceAccess* access) const;

  const ExecutionPlan& plan_;
  const FilePlan& file_plan_;
  uint64_t block_bytes_ = 0;
  std::vector<bool> need_crc_;
  std::vector<std::vector<Extent>> extents_;          // per file: tensor placements
  std::vector<std::vector<Extent>> literal_extents_;  // per file: literal bytes
  std::vector<Block> blocks_;
  std::vector<int64_t> band_elements_;  // per placement: elements of one band, 0: not banded
  std::unique_ptr<BandMemory> own_band_memory_;  // when the caller gave none
  BandMemory* band_memory_ = nullptr;
  std::unique_ptr<BandCache> bands_;
};

}  // namespace ckconv
