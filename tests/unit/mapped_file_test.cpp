// MappedFile::resident_share: the share of a range's pages in the page cache, which decides
// whether a block's bytes are compared in place or read unbuffered, and whether verify's
// scratch comparisons run extra workers; MappedFile::drop_cached, which takes the input's
// compared pages out of the page cache during verify.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <string>

#include "core/file.h"
#include "format_test_helpers.h"

using namespace ckconv;

TEST_CASE("resident_share counts the cached pages of the range asked about") {
  test::TempDir dir;
  const auto path = dir / "data.bin";
  constexpr uint64_t kHalf = uint64_t{4} << 20;
  test::write_file(path, std::string(2 * kHalf, 'x'));
  {
    const int fd = ::open(path.c_str(), O_RDONLY);
    REQUIRE(fd >= 0);
    REQUIRE(::fsync(fd) == 0);  // clean pages: fadvise below can drop them
    ::close(fd);
  }
  const MappedFile mapped(path);
  // Just written: every page is cached, whatever the range's alignment.
  CHECK(mapped.resident_share(0, 2 * kHalf) == 1.0);
  CHECK(mapped.resident_share(123, 4567) == 1.0);
  CHECK(mapped.resident_share(2 * kHalf, 10) == 1.0);  // past the end: nothing to read
  // Clean pages dropped from the cache (file systems in memory keep them: nothing to check).
  struct statfs fs_info {};
  REQUIRE(::statfs(dir.path().c_str(), &fs_info) == 0);
  if (fs_info.f_type == TMPFS_MAGIC || fs_info.f_type == RAMFS_MAGIC) {
    MESSAGE("temp dir in memory: eviction not checked");
    return;
  }
  const int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  REQUIRE(::posix_fadvise(fd, kHalf, kHalf, POSIX_FADV_DONTNEED) == 0);
  ::close(fd);
  CHECK(mapped.resident_share(0, kHalf) == 1.0);
  CHECK(mapped.resident_share(kHalf, kHalf) < 0.5);
  CHECK(mapped.resident_share(0, 2 * kHalf) == doctest::Approx(0.5).epsilon(0.25));
}

TEST_CASE("drop_cached drops the whole pages inside the range, and only those") {
  test::TempDir dir;
  const auto path = dir / "data.bin";
  constexpr uint64_t kHalf = uint64_t{4} << 20;
  test::write_file(path, std::string(2 * kHalf + 100, 'x'));  // a partial last page
  {
    const int fd = ::open(path.c_str(), O_RDONLY);
    REQUIRE(fd >= 0);
    REQUIRE(::fsync(fd) == 0);  // clean pages: they can be dropped
    ::close(fd);
  }
  const MappedFile mapped(path);
  REQUIRE(mapped.resident_share(0, 2 * kHalf + 100) == 1.0);
  struct statfs fs_info {};
  REQUIRE(::statfs(dir.path().c_str(), &fs_info) == 0);
  if (fs_info.f_type == TMPFS_MAGIC || fs_info.f_type == RAMFS_MAGIC) {
    MESSAGE("temp dir in memory: eviction not checked");
    return;
  }
  // Within one page, or across a page boundary without a whole page: nothing goes.
  mapped.drop_cached(100, 200);
  mapped.drop_cached(4000, 4196);
  CHECK(mapped.resident_share(0, 8192) == 1.0);
  // The second half to the end of the file (its partial last page too) goes; the first stays.
  mapped.drop_cached(kHalf, kHalf + 100);
  CHECK(mapped.resident_share(0, kHalf) == 1.0);
  CHECK(mapped.resident_share(kHalf, kHalf + 100) < 0.5);
  CHECK(mapped.resident_share(2 * kHalf, 100) == 0.0);
  // Past the end: nothing to do, no error.
  mapped.drop_cached(3 * kHalf, 10);
}
