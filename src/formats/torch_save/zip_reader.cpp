// Zip structures per PKWARE APPNOTE 6.3 (§4.3.7 local header, §4.3.12 central directory,
// §4.3.14-16 zip64 end records, §4.5.3 zip64 extra field).
#include "formats/torch_save/zip_reader.h"

#include <algorithm>

#include "core/error.h"

namespace ckconv {
namespace {

constexpr uint32_t kLocalHeaderSignature = 0x04034b50;
constexpr uint32_t kCentralHeaderSignature = 0x02014b50;
constexpr uint32_t kEndSignature = 0x06054b50;
constexpr uint32_t kZip64EndSignature = 0x06064b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint64_t kLocalHeaderSize = 30;
constexpr uint64_t kCentralHeaderSize = 46;
constexpr uint64_t kEndSize = 22;
constexpr uint64_t kZip64EndSize = 56;
constexpr uint64_t kZip64LocatorSize = 20;
constexpr uint64_t kMaxCommentSize = 0xffff;

uint64_t le(std::string_view bytes, size_t at, int size) {
  uint64_t value = 0;
  for (int i = 0; i < size; ++i)
    value |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[at + i])) << (8 * i);
  return value;
}

}  // namespace

ZipReader::ZipReader(const File& file, uint64_t offset, uint64_t length, std::string source)
    : file_(file), offset_(offset), length_(length), source_(std::move(source)) {
  uint64_t file_size = file_.size();
  if (offset > file_size || length > file_size - offset)
    fail("the archive at bytes [" + std::to_string(offset) + ", " + std::to_string(offset) + " + " +
         std::to_string(length) + ") lies beyond the file end (" + std::to_string(file_size) +
         " bytes; truncated?)");
  read_central_directory();
}

void ZipReader::fail(const std::string& message) const {
  fail_input(source_ + ": not a valid torch.save zip archive: " + message);
}

std::string ZipReader::read_range(uint64_t relative_offset, uint64_t size) const {
  if (relative_offset > length_ || size > length_ - relative_offset)
    fail("a record at byte " + std::to_string(relative_offset) + " of size " +
         std::to_string(size) + " lies outside the archive of " + std::to_string(length_) +
         " bytes");
  std::string bytes(size, '\0');
  file_.read_at(bytes.data(), bytes.size(), offset_ + relative_offset);
  return bytes;
}

ZipReader::DirectoryLocation ZipReader::read_end_record() const {
  if (length_ < kEndSize) fail("too short (" + std::to_string(length_) + " bytes)");
  // The end record sits in the last 22 + (comment length) bytes. PyTorch writes no comment,
  // so a short tail almost always holds it, and the longest possible tail is read only when it
  // does not (this runs once per chunk of a DCP checkpoint, which may have a million chunks).
  uint64_t tail_size = 0;
  std::string tail;
  size_t end_at = std::string::npos;
  for (uint64_t wanted : {uint64_t{1024}, kEndSize + kMaxCommentSize}) {
    if (tail_size == std::min(length_, wanted)) break;
    tail_size = std::min(length_, wanted);
    tail = read_range(length_ - tail_size, tail_size);
    for (size_t i = tail.size() - kEndSize + 1; i-- > 0;) {
      if (le(tail, i, 4) == kEndSignature && i + kEndSize + le(tail, i + 20, 2) == tail.size()) {
        end_at = i;
        break;
      }
    }
    if (end_at != std::string::npos) break;
  }
  if (end_at == std::string::npos) fail("no end-of-central-directory record");
  DirectoryLocation location;
  location.end_offset = length_ - tail_size + end_at;
  location.entry_count = le(tail, end_at + 10, 2);
  location.directory_size = le(tail, end_at + 12, 4);
  location.directory_offset = le(tail, end_at + 16, 4);
  if (le(tail, end_at + 4, 2) != 0 || le(tail, end_at + 6, 2) != 0 ||
      le(tail, end_at + 8, 2) != location.entry_count)
    fail("multi-disk archives are not supported");
  return location;
}

// A zip64 locator right before the end record points at the zip64 end record, whose 64-bit
// fields replace the saturated 16/32-bit ones.
void ZipReader::apply_zip64_end_record(DirectoryLocation& location) const {
  const uint64_t end_offset = location.end_offset;
  if (end_offset < kZip64LocatorSize) return;
  std::string locator = read_range(end_offset - kZip64LocatorSize, kZip64LocatorSize);
  if (le(locator, 0, 4) == kZip64LocatorSignature) {
    uint64_t zip64_end_offset = le(locator, 8, 8);
    if (zip64_end_offset > end_offset - kZip64LocatorSize ||
        end_offset - kZip64LocatorSize - zip64_end_offset < kZip64EndSize)
      fail("zip64 end record offset " + std::to_string(zip64_end_offset) + " is invalid");
    std::string end64 = read_range(zip64_end_offset, kZip64EndSize);
    if (le(end64, 0, 4) != kZip64EndSignature) fail("zip64 end record signature missing");
    location.entry_count = le(end64, 32, 8);
    location.directory_size = le(end64, 40, 8);
    location.directory_offset = le(end64, 48, 8);
    if (le(end64, 24, 8) != location.entry_count) fail("multi-disk archives are not supported");
  } else if (location.entry_count == 0xffff || location.directory_size == 0xffffffff ||
             location.directory_offset == 0xffffffff) {
    fail("end record needs zip64 fields but there is no zip64 locator");
  }
}

void ZipReader::check_directory_location(const DirectoryLocation& location) const {
  const uint64_t entry_count = location.entry_count;
  const uint64_t directory_size = location.directory_size;
  const uint64_t directory_offset = location.directory_offset;
  if (entry_count > kMaxZipEntries)
    fail(std::to_string(entry_count) + " entries, more than the limit of " +
         std::to_string(kMaxZipEntries));
  if (directory_size > kMaxZipCentralDirectoryBytes)
    fail("central directory of " + std::to_string(directory_size) + " bytes exceeds the limit");
  if (directory_offset > location.end_offset ||
      directory_size > location.end_offset - directory_offset)
    fail("central directory at " + std::to_string(directory_offset) + " (" +
         std::to_string(directory_size) + " bytes) overlaps the end records");
  if (entry_count * kCentralHeaderSize > directory_size)
    fail(std::to_string(entry_count) + " entries cannot fit in a central directory of " +
         std::to_string(directory_size) + " bytes");
}

// Zip64 extra field: 64-bit values for exactly the fields saturated at 0xffffffff, in the
// order uncompressed size, compressed size, local header offset.
void ZipReader::apply_zip64_extra(const std::string& directory, size_t extra, size_t extra_end,
                                  ZipEntry& entry) const {
  while (extra_end - extra >= 4) {
    uint64_t id = le(directory, extra, 2);
    uint64_t size = le(directory, extra + 2, 2);
    if (size > extra_end - extra - 4) fail("entry '" + entry.name + "' has a corrupt extra field");
    if (id == 0x0001) {
      size_t field = extra + 4;
      size_t field_end = field + size;
      auto take = [&](uint64_t* value) {
        if (*value != 0xffffffff) return;
        if (field_end - field < 8) fail("entry '" + entry.name + "' has a short zip64 field");
        *value = le(directory, field, 8);
        field += 8;
      };
      take(&entry.size_bytes);
      take(&entry.compressed_size);
      take(&entry.local_header_offset);
    }
    extra += 4 + size;
  }
}

size_t ZipReader::read_central_record(const std::string& directory, size_t at, uint64_t index,
                                      ZipEntry& entry) const {
  if (directory.size() - at < kCentralHeaderSize || le(directory, at, 4) != kCentralHeaderSignature)
    fail("central directory entry " + std::to_string(index) + " is corrupt");
  entry.flags = static_cast<uint16_t>(le(directory, at + 8, 2));
  entry.method = static_cast<uint16_t>(le(directory, at + 10, 2));
  entry.crc32 = static_cast<uint32_t>(le(directory, at + 16, 4));
  entry.compressed_size = le(directory, at + 20, 4);
  entry.size_bytes = le(directory, at + 24, 4);
  uint64_t name_size = le(directory, at + 28, 2);
  uint64_t extra_size = le(directory, at + 30, 2);
  uint64_t comment_size = le(directory, at + 32, 2);
  entry.local_header_offset = le(directory, at + 42, 4);
  if (directory.size() - at - kCentralHeaderSize < name_size + extra_size + comment_size)
    fail("central directory entry " + std::to_string(index) + " runs past the directory");
  entry.name = directory.substr(at + kCentralHeaderSize, name_size);
  size_t extra = at + kCentralHeaderSize + name_size;
  apply_zip64_extra(directory, extra, extra + extra_size, entry);
  return kCentralHeaderSize + name_size + extra_size + comment_size;
}

void ZipReader::read_central_directory() {
  DirectoryLocation location = read_end_record();
  apply_zip64_end_record(location);
  check_directory_location(location);

  std::string directory = read_range(location.directory_offset, location.directory_size);
  size_t at = 0;
  entries_.reserve(location.entry_count);
  for (uint64_t index = 0; index < location.entry_count; ++index) {
    ZipEntry entry;
    at += read_central_record(directory, at, index, entry);
    if (!index_.emplace(entry.name, entries_.size()).second)
      fail("duplicate entry '" + entry.name + "'");
    entries_.push_back(std::move(entry));
  }
}

const ZipEntry* ZipReader::find(std::string_view name) const {
  auto found = index_.find(std::string(name));
  return found == index_.end() ? nullptr : &entries_[found->second];
}

uint64_t ZipReader::data_offset(const ZipEntry& entry) const {
  if (entry.flags & 0x0001) fail("entry '" + entry.name + "' is encrypted");
  if (entry.method != 0)
    fail("entry '" + entry.name + "' is compressed (method " + std::to_string(entry.method) +
         "); torch.save archives store entries uncompressed and ckconv reads only those");
  if (entry.compressed_size != entry.size_bytes)
    fail("stored entry '" + entry.name + "' has compressed size " +
         std::to_string(entry.compressed_size) + " but size " + std::to_string(entry.size_bytes));
  std::string header = read_range(entry.local_header_offset, kLocalHeaderSize);
  if (le(header, 0, 4) != kLocalHeaderSignature)
    fail("entry '" + entry.name + "': no local header at byte " +
         std::to_string(entry.local_header_offset));
  uint64_t name_size = le(header, 26, 2);
  uint64_t extra_size = le(header, 28, 2);
  if (name_size != entry.name.size() ||
      read_range(entry.local_header_offset + kLocalHeaderSize, name_size) != entry.name)
    fail("entry '" + entry.name + "': local header names a different entry");
  uint64_t data = entry.local_header_offset + kLocalHeaderSize + name_size + extra_size;
  if (data > length_ || entry.size_bytes > length_ - data)
    fail("entry '" + entry.name + "' of " + std::to_string(entry.size_bytes) + " bytes at byte " +
         std::to_string(data) + " runs past the archive end (truncated?)");
  return offset_ + data;
}

std::string ZipReader::read(const ZipEntry& entry, uint64_t max_bytes) const {
  uint64_t data = data_offset(entry);
  if (entry.size_bytes > max_bytes)
    fail("entry '" + entry.name + "' of " + std::to_string(entry.size_bytes) +
         " bytes exceeds the limit of " + std::to_string(max_bytes));
  return read_range(data - offset_, entry.size_bytes);
}

}  // namespace ckconv
