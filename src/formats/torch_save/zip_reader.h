// Reads the directory of a stored (uncompressed) zip archive lying in a byte range of a file:
// a whole torch.save file, or one item of a DCP .distcp file (docs/formats.md "DCP directories",
// "torch.save zip archives"), whose zip offsets are relative to the item start. Handles zip64 (end
// record, locator and extra fields). Every offset and size is checked against the range before it
// is used, so a corrupt or hostile archive gives a kBadInput Error naming `source`, never a wild
// read. Entry data is not read here except on request; callers get absolute file offsets instead.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/file.h"

namespace ckconv {

// More entries than any torch.save file has (one per storage plus five records).
inline constexpr uint64_t kMaxZipEntries = uint64_t{1} << 22;
inline constexpr uint64_t kMaxZipCentralDirectoryBytes = uint64_t{1} << 30;

struct ZipEntry {
  std::string name;
  uint16_t flags = 0;
  uint16_t method = 0;  // 0 = stored
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t size_bytes = 0;           // uncompressed
  uint64_t local_header_offset = 0;  // relative to the archive start
};

class ZipReader {
 public:
  // Reads the central directory of the archive at [offset, offset + length) of `file`, which
  // must outlive the reader.
  ZipReader(const File& file, uint64_t offset, uint64_t length, std::string source);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(std::string_view name) const;
  // Absolute offset in the file of the entry's data, after checking its local header and
  // that the data lies within the archive. Compressed or encrypted entries are refused.
  uint64_t data_offset(const ZipEntry& entry) const;
  // The entry's bytes, refusing entries larger than `max_bytes`.
  std::string read(const ZipEntry& entry, uint64_t max_bytes) const;
  const std::string& source() const { return source_; }

 private:
  [[noreturn]] void fail(const std::string& message) const;
  std::string read_range(uint64_t relative_offset, uint64_t size) const;

  // Where the end records say the central directory is (offsets relative to the archive).
  struct DirectoryLocation {
    uint64_t end_offset = 0;  // of the end-of-central-directory record
    uint64_t entry_count = 0;
    uint64_t directory_size = 0;
    uint64_t directory_offset = 0;
  };
  DirectoryLocation read_end_record() const;
  void apply_zip64_end_record(DirectoryLocation& location) const;
  void check_directory_location(const DirectoryLocation& location) const;
  // Parses the central directory record at `at` of `directory`; returns its size in bytes.
  size_t read_central_record(const std::string& directory, size_t at, uint64_t index,
                             ZipEntry& entry) const;
  void apply_zip64_extra(const std::string& directory, size_t extra, size_t extra_end,
                         ZipEntry& entry) const;
  void read_central_directory();

  const File& file_;
  uint64_t offset_;
  uint64_t length_;
  std::string source_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> index_;  // entry name -> position in entries_
};

}  // namespace ckconv
