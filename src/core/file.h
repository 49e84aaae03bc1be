// Owned file handles: positional reads and writes that either complete or throw an Error that
// names the path (kIo for the OS refusing, kBadInput for a file shorter than its metadata
// says), and read-only mappings whose pages can be released to keep the resident set bounded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace ckconv {

class File {
 public:
  static File open_read(const std::filesystem::path& path);
  // Creates or truncates.
  static File create(const std::filesystem::path& path);

  File() = default;
  File(File&& other) noexcept;
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  uint64_t size() const;
  // Reads exactly `size` bytes at `offset`; a short file is kBadInput ("truncated").
  void read_at(void* buffer, size_t size, uint64_t offset) const;
  void write_at(const void* buffer, size_t size, uint64_t offset);
  void truncate(uint64_t size);
  // Reserves disk blocks so a full disk is found before the conversion starts.
  void allocate(uint64_t size);
  void sync();
  void close();  // reports errors from close(2), unlike the destructor
  int fd() const { return fd_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  File(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::filesystem::path path_;
};

// A whole file mapped read-only. release() drops mapped pages from this process's resident
// set (the page cache keeps them), which is how the executor keeps memory flat.
class MappedFile {
 public:
  explicit MappedFile(const std::filesystem::path& path);
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&&) = delete;
  MappedFile(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }
  void advise_sequential(uint64_t offset, uint64_t length) const;
  void will_need(uint64_t offset, uint64_t length) const;
  void release(uint64_t offset, uint64_t length) const;

 private:
  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

// Reads a whole (small) file, e.g. a JSON index, refusing files above `max_bytes`.
std::string read_small_file(const std::filesystem::path& path, uint64_t max_bytes);
void write_small_file(const std::filesystem::path& path, const std::string& content);

std::string errno_message(int error_number);

}  // namespace ckconv
