#include "verify/scratch_space.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "core/error.h"
#include "pipeline/run_leftovers.h"

namespace ckconv {
namespace {

namespace fs = std::filesystem;

// "1486248 bytes (1.4 MiB)"
std::string bytes_text(uint64_t bytes) {
  char mib[32];
  std::snprintf(mib, sizeof(mib), "%.1f", static_cast<double>(bytes) / (1 << 20));
  return std::to_string(bytes) + " bytes (" + mib + " MiB)";
}

}  // namespace

fs::path default_temporary_directory() {
  const char* tmpdir = std::getenv("TMPDIR");
  return tmpdir != nullptr && *tmpdir != '\0' ? fs::path(tmpdir) : fs::path("/tmp");
}

uint64_t free_bytes(const fs::path& directory) {
  struct statvfs info;
  if (::statvfs(directory.c_str(), &info) != 0) return 0;
  return static_cast<uint64_t>(info.f_bavail) * info.f_frsize;
}

bool same_file_system(const fs::path& a, const fs::path& b) {
  struct stat first, second;
  return ::stat(a.c_str(), &first) == 0 && ::stat(b.c_str(), &second) == 0 &&
         first.st_dev == second.st_dev;
}

uint64_t round_trip_scratch_bytes(uint64_t first_output_bytes, bool first_already_written,
                                  bool starts_from_output) {
  const uint64_t back = first_output_bytes + first_output_bytes / 64 + (uint64_t{1} << 20);
  const uint64_t first = first_already_written ? 0 : first_output_bytes;
  // From the output: its own round trip's first conversion, then the conversion back.
  return first + (starts_from_output ? 2 * back : back);
}

uint64_t available_memory_bytes() {
  std::FILE* meminfo = std::fopen("/proc/meminfo", "r");
  if (meminfo == nullptr) return 0;
  char line[256];
  uint64_t kib = 0;
  while (std::fgets(line, sizeof line, meminfo) != nullptr)
    if (std::sscanf(line, "MemAvailable: %lu kB", &kib) == 1) break;
  std::fclose(meminfo);
  return kib * 1024;
}

bool scratch_through_page_cache(uint64_t scratch_bytes, uint64_t available_bytes) {
  return scratch_bytes <= available_bytes / 4 * 3;
}

ScratchChoice choose_scratch_directory(const std::vector<fs::path>& candidates,
                                       uint64_t needed_bytes) {
  std::string reasons;
  for (const fs::path& candidate : candidates) {
    std::error_code error;
    const fs::path directory = fs::absolute(candidate, error).lexically_normal();
    std::string reason;
    if (!fs::is_directory(directory, error))
      reason = "not a directory";
    else if (::access(directory.c_str(), W_OK | X_OK) != 0)
      reason = "not writable";
    else if (const uint64_t free = free_bytes(directory); free < needed_bytes)
      reason = "only " + bytes_text(free) + " free";
    if (reason.empty()) return {directory, remove_dead_leftovers(directory)};
    reasons += "; " + directory.string() + ": " + reason;
  }
  fail(ErrorKind::kIo, "no room for the round trip's scratch checkpoints: they need " +
                           bytes_text(needed_bytes) + reasons +
                           " (choose a directory with --scratch DIR)");
}

}  // namespace ckconv
