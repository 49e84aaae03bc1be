// What a conversion has written so far, for a reader that runs alongside it: verify's third
// conversion reads the second one's output back while the second still writes it. The writer
// reports its file plan and each block once written; readers wait for the bytes they need.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <vector>

#include "formats/file_plan.h"
#include "pipeline/convert.h"
#include "pipeline/executor.h"

namespace ckconv {

class WrittenRanges : public SourceGate {
 public:
  // `directory`: where the writer writes its file plan's files.
  explicit WrittenRanges(const std::filesystem::path& directory);

  // Writer side. begin() with the file plan before any block (OutputInspector::begin),
  // written() after each block's write (WriteOptions::block_written), then finish() once the
  // files are complete (CRC patches included) or fail() when the writer stopped.
  void begin(const FilePlan& file_plan);
  void written(uint32_t file, uint64_t offset, uint64_t size);
  void finish();
  void fail();

  // Waits until every literal byte of the file plan (headers, index and metadata files: what
  // reading the output's catalog needs) is written. False, at once or when the writer failed,
  // when the catalog cannot be read before the writer is done: a file plan with CRC patches
  // (zip records) has literal bytes that are only final at the end.
  bool wait_for_headers() const;

  // SourceGate: the writer writes its blocks in file order.
  void wait_written(const std::filesystem::path& path, uint64_t offset,
                    uint64_t size) const override;
  uint64_t write_order(const std::filesystem::path& path, uint64_t offset) const override;

 private:
  // The file plan's index of `path`, or -1; callers hold mutex_.
  int64_t file_index(const std::filesystem::path& path) const;
  // Whether [begin, end) of file `file` is written; callers hold mutex_.
  bool covered(uint32_t file, uint64_t begin, uint64_t end) const;

  std::filesystem::path directory_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  bool begun_ = false;
  bool finished_ = false;
  bool failed_ = false;
  bool has_crc_patches_ = false;
  std::map<std::filesystem::path, uint32_t> files_;    // absolute, normal path -> plan index
  std::vector<uint64_t> sizes_;                        // per file
  std::vector<uint64_t> first_byte_order_;             // per file: write_order of its byte 0
  std::vector<std::map<uint64_t, uint64_t>> written_;  // per file: disjoint [begin, end)
  std::vector<std::pair<uint32_t, std::pair<uint64_t, uint64_t>>> literals_;
};

// An inspector that hands the file plan to `ranges` and everything to `inner`.
class WrittenRangesInspector : public OutputInspector {
 public:
  WrittenRangesInspector(OutputInspector& inner, WrittenRanges& ranges)
      : inner_(inner), ranges_(ranges) {}
  void begin(const std::vector<OutputTensorSpec>& tensors, const FilePlan& file_plan) override {
    inner_.begin(tensors, file_plan);
    ranges_.begin(file_plan);
  }
  void block(uint32_t file, uint64_t offset, const uint8_t* data, uint64_t size) override {
    inner_.block(file, offset, data, size);
  }

 private:
  OutputInspector& inner_;
  WrittenRanges& ranges_;
};

}  // namespace ckconv
