// Comparisons used by verify: tensor-by-tensor (key set, dtype, shape, bits, with the first
// differing element and max |difference|) and file-by-file (bytes, first differing offset).
// Both stream through fixed-size buffers.
#pragma once

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "pipeline/convert.h"
#include "pipeline/mapped_checkpoint.h"

namespace ckconv {

struct Exclusion {
  std::regex pattern;
  std::string reason;
};

struct Comparison {
  std::vector<std::string> differences;  // empty = equal
  std::vector<std::string> notes;        // e.g. excluded keys and why
  bool equal() const { return differences.empty(); }
};

// `expected` vs `actual`. Keys matching an exclusion must exist on both sides with equal
// shape and dtype; their values are not compared, but in `actual` they must be all zeros.
// Keys matching `ignore` are left out on both sides.
Comparison compare_tensors(const MappedCheckpoint& expected, const MappedCheckpoint& actual,
                           const std::vector<Exclusion>& exclusions,
                           const std::vector<std::regex>& ignore = {});

// The key-set, dtype and shape part of compare_tensors: what compare_tensors would report
// before looking at any value.
Comparison compare_key_sets(const MappedCheckpoint& expected, const MappedCheckpoint& actual,
                            const std::vector<std::regex>& ignore = {});

// The value part of compare_tensors, done on a conversion's output while it is written
// (WriteOptions::inspector), so the output is never read back for it: each output tensor's
// bytes, as the writer places them, against the same-named tensor of `expected`. Tensors
// absent from `expected`, of another dtype or shape (compare_key_sets reports those),
// matching an exclusion or `ignore` are skipped. With `forget_compared`, for a comparison
// that is the last to read `expected`: each 2 MiB-aligned span of its files leaves the page
// cache (MappedFile::drop_cached) once every compared byte in it has been compared, other
// bytes of the span with it (headers, skipped tensors, and tensors stored in several chunks,
// which take no part: a chunk still to be compared is then read from the device again).
// Thread-safe; result() after the conversion.
class StreamingComparison : public OutputInspector {
 public:
  StreamingComparison(const MappedCheckpoint& expected, const std::vector<Exclusion>& exclusions,
                      const std::vector<std::regex>& ignore = {}, bool forget_compared = false);
  void begin(const std::vector<OutputTensorSpec>& tensors, const FilePlan& file_plan) override;
  void block(uint32_t file, uint64_t offset, const uint8_t* data, uint64_t size) override;
  Comparison result() const;

 private:
  struct Target {
    std::string name;
    const CatalogTensor* expected = nullptr;
    uint32_t file = 0;
    uint64_t offset = 0;  // of the tensor's bytes in the output file
    uint64_t size = 0;
    // With forget_compared and a tensor stored as one run: the file of `expected` holding
    // it and the offset of its bytes there.
    const MappedFile* source = nullptr;
    uint64_t source_offset = 0;
  };
  struct Stats {
    int64_t first_difference = -1;
    int64_t count = 0;
    double max_abs = 0;
  };
  void compare_range(size_t target, uint64_t begin, uint64_t end, const uint8_t* actual);
  // Counts bytes [begin, end) of target `target` (offsets in the tensor) as compared and
  // drops the spans of its source file that are done (forget_compared).
  void forget(const Target& target, uint64_t begin, uint64_t end);

  const MappedCheckpoint& expected_;
  bool forget_compared_;
  std::vector<Exclusion> exclusions_;
  std::vector<std::regex> ignore_;
  std::vector<Target> targets_;  // sorted by (file, offset)
  std::vector<Stats> stats_;     // parallel to targets_
  // forget_compared: per source file, the bytes of each 2 MiB span still to be compared.
  // Fixed by begin(); the counts change concurrently.
  std::map<const MappedFile*, std::unique_ptr<std::atomic<uint64_t>[]>> pending_;
  mutable std::mutex mutex_;
};

// What compare_tensors(checkpoint, copy, exclusions) reports when `copy` has the same bytes
// as `checkpoint`: a note per excluded key, and a difference for each that is not all zeros.
Comparison check_excluded_zeros(const MappedCheckpoint& checkpoint,
                                const std::vector<Exclusion>& exclusions);

// Same relative file names and the same bytes in each.
Comparison compare_directories(const std::filesystem::path& expected,
                               const std::filesystem::path& actual);

}  // namespace ckconv
