#include "core/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <vector>

#include "core/error.h"

namespace ckconv {

std::string errno_message(int error_number) {
  return std::strerror(error_number);
}

namespace {

[[noreturn]] void fail_errno(const std::string& what, const std::filesystem::path& path) {
  int saved = errno;
  fail(ErrorKind::kIo, what + " " + path.string() + ": " + errno_message(saved));
}

constexpr uint64_t kPage = 4096;
constexpr uint64_t kHugePage = uint64_t{2} << 20;

}  // namespace

File File::open_read(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) fail_input("missing file " + path.string());
    fail_errno("cannot open", path);
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail_input("not a regular file: " + path.string());
  }
  return File(fd, path);
}

File File::create(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail_errno("cannot create", path);
  return File(fd, path);
}

File File::create_unbuffered(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0644);
  if (fd >= 0) return File(fd, path, true);
  if (errno != EINVAL) fail_errno("cannot create", path);
  return create(path);  // the file system has no O_DIRECT (e.g. older tmpfs)
}

File File::open_shared_unbuffered(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_DIRECT, 0644);
  if (fd >= 0) return File(fd, path, true);
  if (errno != EINVAL) fail_errno("cannot open", path);
  fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) fail_errno("cannot open", path);
  return File(fd, path);
}

void File::stop_direct() {
  if (!direct_) return;
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT) != 0)
    fail_errno("cannot reconfigure", path_);
  direct_ = false;
}

File::File(File&& other) noexcept
    : fd_(other.fd_), path_(std::move(other.path_)), direct_(other.direct_) {
  other.fd_ = -1;
}

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    path_ = std::move(other.path_);
    direct_ = other.direct_;
    other.fd_ = -1;
  }
  return *this;
}

File::~File() {
  if (fd_ >= 0) ::close(fd_);
}

uint64_t File::size() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) fail_errno("cannot stat", path_);
  return static_cast<uint64_t>(st.st_size);
}

void File::read_at(void* buffer, size_t size, uint64_t offset) const {
  auto* out = static_cast<uint8_t*>(buffer);
  while (size > 0) {
    ssize_t got = ::pread(fd_, out, size, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      fail_errno("cannot read", path_);
    }
    if (got == 0) fail_input(path_.string() + ": truncated (unexpected end of file)");
    out += got;
    size -= static_cast<size_t>(got);
    offset += static_cast<uint64_t>(got);
  }
}

void File::write_at(const void* buffer, size_t size, uint64_t offset) {
  const auto* in = static_cast<const uint8_t*>(buffer);
  bool went_buffered = false;
  while (size > 0) {
    ssize_t put = ::pwrite(fd_, in, size, static_cast<off_t>(offset));
    if (put < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL && direct_ && !went_buffered) {
        // The device wants a larger alignment than kDirectAlignment: go buffered. fcntl acts
        // on the open file description, so concurrent writers switch too (direct_ itself
        // is left alone: other threads may be reading it).
        const int flags = ::fcntl(fd_, F_GETFL);
        if (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT) != 0)
          fail_errno("cannot reconfigure", path_);
        went_buffered = true;
        continue;
      }
      fail_errno("cannot write", path_);
    }
    in += put;
    size -= static_cast<size_t>(put);
    offset += static_cast<uint64_t>(put);
  }
}

void File::truncate(uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) fail_errno("cannot resize", path_);
}

void File::allocate(uint64_t size) {
  if (size == 0) return;
  int rc = ::posix_fallocate(fd_, 0, static_cast<off_t>(size));
  // Filesystems without fallocate support (EOPNOTSUPP/EINVAL) still work; ENOSPC is the point.
  if (rc == ENOSPC || rc == EFBIG || rc == EDQUOT) {
    errno = rc;
    fail_errno("not enough disk space for", path_);
  }
}

void File::allocate_shared(uint64_t size) {
  if (size == 0 || ::fallocate(fd_, 0, 0, static_cast<off_t>(size)) == 0) return;
  if (errno == ENOSPC || errno == EFBIG || errno == EDQUOT)
    fail_errno("not enough disk space for", path_);
}

void File::sync() {
  if (::fsync(fd_) != 0) fail_errno("cannot sync", path_);
}

void File::close() {
  if (fd_ < 0) return;
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail_errno("cannot close", path_);
}

AlignedBuffer::AlignedBuffer(size_t size) : size_(size) {
  const size_t alignment = size >= kHugePage ? kHugePage : File::kDirectAlignment;
  void* memory = nullptr;
  if (::posix_memalign(&memory, alignment, std::max<size_t>(size, 1)) != 0) throw std::bad_alloc();
  data_.reset(static_cast<uint8_t*>(memory));
  if (alignment == kHugePage) ::madvise(memory, size, MADV_HUGEPAGE);
}

void AlignedBuffer::Free::operator()(uint8_t* p) const {
  std::free(p);
}

MappedFile::MappedFile(const std::filesystem::path& path) : path_(path) {
  File file = File::open_read(path);
  size_ = file.size();
  if (size_ == 0) return;
  void* addr = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, file.fd(), 0);
  if (addr == MAP_FAILED) fail_errno("cannot map", path);
  data_ = static_cast<const uint8_t*>(addr);
  // Pages faulted in from disk then come in 2 MiB folios mapped by one PMD each, where the
  // kernel supports it: a transposing copy touches a page per source row, and with small
  // pages its TLB misses tripled its CPU time (docs/benchmarks.md). Pages already cached
  // keep their folios; a refusal changes nothing.
  ::madvise(addr, size_, MADV_HUGEPAGE);
  direct_fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);  // optional
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(other.data_),
      size_(other.size_),
      direct_fd_(other.direct_fd_),
      buffered_fd_(other.buffered_fd_.exchange(-1)) {
  other.data_ = nullptr;
  other.size_ = 0;
  other.direct_fd_ = -1;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  if (direct_fd_ >= 0) ::close(direct_fd_);
  if (buffered_fd_ >= 0) ::close(buffered_fd_);
}

namespace {

// cachestat(2) (Linux 6.5): page-cache statistics of a byte range of a file, counted per
// cached folio rather than per page. Not in every libc's headers, hence declared here.
struct CacheStatRange {
  uint64_t offset;
  uint64_t length;
};
struct CacheStat {
  uint64_t nr_cache;
  uint64_t nr_dirty;
  uint64_t nr_writeback;
  uint64_t nr_evicted;
  uint64_t nr_recently_evicted;
};
constexpr long kCacheStatSyscall = 451;  // the same number on every architecture

// Pages of [begin, begin + pages * kPage) of `fd`'s file in the page cache, or nullopt when
// the kernel has no cachestat (ENOSYS), a seccomp filter refuses it (EPERM: remembered too,
// like ENOSYS) or the file system does not support it.
std::optional<uint64_t> cached_pages(int fd, uint64_t begin, uint64_t pages) {
  static std::atomic<bool> unavailable{false};
  if (fd < 0 || unavailable.load(std::memory_order_relaxed)) return std::nullopt;
  CacheStatRange range{begin, pages * kPage};
  CacheStat stat{};
  if (::syscall(kCacheStatSyscall, fd, &range, &stat, 0) != 0) {
    if (errno == ENOSYS || errno == EPERM) unavailable = true;
    return std::nullopt;
  }
  return std::min(stat.nr_cache, pages);
}

}  // namespace

double MappedFile::resident_share(uint64_t offset, uint64_t length) const {
  if (data_ == nullptr || offset >= size_ || length == 0) return 1.0;
  length = std::min(length, size_ - offset);
  const uint64_t begin = offset / kPage * kPage;
  const uint64_t pages = (offset + length - begin + kPage - 1) / kPage;
  // cachestat looks each cached folio up once; mincore of pages that are not mapped looks
  // up every page (at 4 MiB blocks: 1024 lookups, 0.1-0.3 ms a call here).
  if (const std::optional<uint64_t> cached = cached_pages(direct_fd_, begin, pages))
    return static_cast<double>(*cached) / static_cast<double>(pages);
  std::vector<unsigned char> resident(pages);
  if (::mincore(const_cast<uint8_t*>(data_) + begin, pages * kPage, resident.data()) != 0)
    return 1.0;
  uint64_t count = 0;
  for (unsigned char page : resident) count += page & 1;
  return static_cast<double>(count) / static_cast<double>(pages);
}

uint64_t MappedFile::unbuffered_span(uint64_t offset, uint64_t length) {
  constexpr uint64_t kAlign = File::kDirectAlignment;
  const uint64_t begin = offset / kAlign * kAlign;
  const uint64_t end = (offset + length + kAlign - 1) / kAlign * kAlign;
  return end - begin;
}

const uint8_t* MappedFile::read_unbuffered(uint64_t offset, uint64_t length,
                                           uint8_t* buffer) const {
  if (direct_fd_ < 0 || offset + length > size_) return nullptr;
  constexpr uint64_t kAlign = File::kDirectAlignment;
  const uint64_t begin = offset / kAlign * kAlign;
  const uint64_t span = unbuffered_span(offset, length);
  uint64_t done = 0;
  while (done < offset + length - begin) {
    const ssize_t got =
        ::pread(direct_fd_, buffer + done, span - done, static_cast<off_t>(begin + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && errno == EINVAL) return nullptr;  // alignment the device does not accept
    if (got < 0) fail_errno("cannot read", path_);
    if (got == 0) fail_input(path_.string() + ": truncated (unexpected end of file)");
    done += static_cast<uint64_t>(got);
  }
  return buffer + (offset - begin);
}

int MappedFile::buffered_descriptor() const {
  int fd = buffered_fd_.load(std::memory_order_acquire);
  if (fd >= 0) return fd;
  const int opened = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (opened < 0) fail_errno("cannot open", path_);
  if (buffered_fd_.compare_exchange_strong(fd, opened, std::memory_order_acq_rel)) return opened;
  ::close(opened);  // another thread opened it first; `fd` now holds its descriptor
  return fd;
}

void MappedFile::drop_cached(uint64_t offset, uint64_t length) const {
  if (offset >= size_) return;
  const uint64_t first_page = (offset + kPage - 1) / kPage * kPage;
  if (length >= size_ - offset) {  // to the end of the file, its last partial page included
    if (first_page < size_)
      ::posix_fadvise(buffered_descriptor(), static_cast<off_t>(first_page), 0,
                      POSIX_FADV_DONTNEED);
    return;
  }
  const uint64_t last_page = (offset + length) / kPage * kPage;
  if (last_page <= first_page) return;
  ::posix_fadvise(buffered_descriptor(), static_cast<off_t>(first_page),
                  static_cast<off_t>(last_page - first_page), POSIX_FADV_DONTNEED);
}

void MappedFile::read_buffered(uint64_t offset, uint64_t length, uint8_t* out) const {
  if (offset > size_ || length > size_ - offset)
    fail(ErrorKind::kInternal, path_.string() + ": read_buffered past the end of the file");
  const int fd = buffered_descriptor();
  uint64_t done = 0;
  while (done < length) {
    const ssize_t got = ::pread(fd, out + done, length - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail_errno("cannot read", path_);
    if (got == 0) fail_input(path_.string() + ": truncated (unexpected end of file)");
    done += static_cast<uint64_t>(got);
  }
}

namespace {
// madvise of the mapping [base, base + size) over [offset, offset + length), clipped to the
// mapping and widened to the `alignment`-aligned addresses (a power of two, at least a page)
// around it.
void advise(const uint8_t* base, uint64_t size, uint64_t offset, uint64_t length, int advice,
            uint64_t alignment = kPage) {
  if (base == nullptr || offset >= size) return;
  if (length > size - offset) length = size - offset;
  const uintptr_t low = reinterpret_cast<uintptr_t>(base);
  const uintptr_t begin = std::max(low, (low + offset) / alignment * alignment);
  const uintptr_t end =
      std::min(low + size, (low + offset + length + alignment - 1) / alignment * alignment);
  ::madvise(reinterpret_cast<void*>(begin), end - begin, advice);
}
}  // namespace

void MappedFile::advise_sequential(uint64_t offset, uint64_t length) const {
  advise(data_, size_, offset, length, MADV_SEQUENTIAL);
}
void MappedFile::will_need(uint64_t offset, uint64_t length) const {
  advise(data_, size_, offset, length, MADV_WILLNEED);
}
void MappedFile::release(uint64_t offset, uint64_t length) const {
  // The page cache holds large files in folios of up to 2 MiB, which a mapping may map whole
  // (one PMD). Dropping part of one makes the kernel split it into 4 KiB entries first, with
  // a TLB flush on every CPU the process runs on; dropping whole ones does not, and costs
  // a neighbour at most one refault.
  advise(data_, size_, offset, length, MADV_DONTNEED, kHugePage);
}

std::string read_small_file(const std::filesystem::path& path, uint64_t max_bytes) {
  File file = File::open_read(path);
  uint64_t size = file.size();
  if (size > max_bytes)
    fail_input(path.string() + ": " + std::to_string(size) + " bytes, more than the limit of " +
               std::to_string(max_bytes));
  std::string content(size, '\0');
  file.read_at(content.data(), content.size(), 0);
  return content;
}

void write_small_file(const std::filesystem::path& path, const std::string& content) {
  File file = File::create(path);
  file.write_at(content.data(), content.size(), 0);
  file.close();
}

}  // namespace ckconv
