// Owned file handles: positional reads and writes that either complete or throw an Error that
// names the path (kIo for the OS refusing, kBadInput for a file shorter than its metadata
// says), and read-only mappings whose pages can be released to keep the resident set bounded.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace ckconv {

class File {
 public:
  static File open_read(const std::filesystem::path& path);
  // Creates or truncates.
  static File create(const std::filesystem::path& path);
  // Creates or truncates for large block writes that bypass the page cache (O_DIRECT) when
  // the file system allows it. While direct() holds, write_at needs a buffer, size and
  // offset aligned to kDirectAlignment; a write the file system refuses as misaligned
  // switches the file to buffered writes and is retried, so callers never see the
  // difference. Buffered writes into a new file cost a page-cache allocation per page, which
  // on virtual machines is slower and far noisier than the device (docs/benchmarks.md).
  static File create_unbuffered(const std::filesystem::path& path);
  // As create_unbuffered, but an existing file keeps its bytes: for a file that several
  // processes fill at once, each its own aligned ranges (conversions split into parts).
  static File open_shared_unbuffered(const std::filesystem::path& path);
  static constexpr uint64_t kDirectAlignment = 4096;

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
  // As allocate, for a file other processes write at the same time: only the file system's
  // own fallocate(2), never glibc's emulation, which writes zero bytes into the file and
  // could overwrite another process's data.
  void allocate_shared(uint64_t size);
  void sync();
  void close();  // reports errors from close(2), unlike the destructor
  int fd() const { return fd_; }
  const std::filesystem::path& path() const { return path_; }
  bool direct() const { return direct_; }
  // Back to ordinary buffered writes (any size and offset), e.g. for small patches.
  void stop_direct();

 private:
  File(int fd, std::filesystem::path path, bool direct = false)
      : fd_(fd), path_(std::move(path)), direct_(direct) {}
  int fd_ = -1;
  std::filesystem::path path_;
  bool direct_ = false;
};

// A fixed-size heap buffer aligned for unbuffered I/O (to 2 MiB, with transparent huge
// pages, from 2 MiB up). Meant to be reused: first touches of fresh pages are slow on VMs.
class AlignedBuffer {
 public:
  explicit AlignedBuffer(size_t size);
  uint8_t* data() const { return data_.get(); }
  size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t, Free> data_;
  size_t size_;
};

// A whole file mapped read-only. release() drops mapped pages from this process's resident
// set (the page cache keeps them), which is how the executor keeps memory flat. It drops the
// whole 2 MiB-aligned spans the range touches, neighbours included: a later read of those
// maps them back in.
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

  // Share (0 to 1) of the pages of [offset, offset + length) that are in the page cache.
  double resident_share(uint64_t offset, uint64_t length) const;
  // Bytes of buffer read_unbuffered needs for [offset, offset + length).
  static uint64_t unbuffered_span(uint64_t offset, uint64_t length);
  // Reads [offset, offset + length) with unbuffered (O_DIRECT) reads into `buffer` (aligned
  // to File::kDirectAlignment, unbuffered_span bytes) and returns where byte `offset`
  // landed, or nullptr when the file system refuses unbuffered reads (then use data()). Meant
  // for bytes not in the page cache, where faulting fresh page-cache pages in can cost more
  // than the device read itself (docs/benchmarks.md).
  const uint8_t* read_unbuffered(uint64_t offset, uint64_t length, uint8_t* buffer) const;
  // Copies [offset, offset + length) into `out` with buffered reads (through the page cache,
  // with the kernel's readahead), mapping nothing. For bytes a computation consumes once
  // (dequantization): no page of the mapping joins the resident set, where the fault-around
  // of concurrent readers would otherwise map pages next to a released range and leave them
  // there. Thread-safe; opens its file descriptor on first use.
  void read_buffered(uint64_t offset, uint64_t length, uint8_t* out) const;
  // Asks the kernel to drop [offset, offset + length) of the file from the page cache, for
  // bytes this process has read for the last time (release() their mapping first). Only
  // pages wholly inside the range go, and of those not the ones still mapped, dirty, or in a
  // larger folio that reaches outside the range; a later read gets what went from the
  // device. Advisory: failures are ignored. Thread-safe, like read_buffered.
  void drop_cached(uint64_t offset, uint64_t length) const;

 private:
  // The file opened for buffered reads (read_buffered, drop_cached), opened on first use.
  int buffered_descriptor() const;

  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  int direct_fd_ = -1;                        // the same file opened O_DIRECT, or -1
  mutable std::atomic<int> buffered_fd_{-1};  // buffered_descriptor(), or -1 until its first call
};

// Reads a whole (small) file, e.g. a JSON index, refusing files above `max_bytes`.
std::string read_small_file(const std::filesystem::path& path, uint64_t max_bytes);
void write_small_file(const std::filesystem::path& path, const std::string& content);

std::string errno_message(int error_number);

}  // namespace ckconv
